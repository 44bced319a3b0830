"""Run the command blocks of a stage page's "Try it" section, as a learner would.

A page marks a block that CI runs with the class try-it, and may follow it with the
output it expects, marked try-it-output (pymdownx.superfences reads the braces):

    ```{.bash .try-it}
    curl -s http://127.0.0.1:5000/api/messages
    ```

    ```{.text .try-it-output}
    ...
    "messages": [...]
    ```

Every line of an output block must appear, in that order, in what the block printed;
`...` stands for anything, a whole line or part of one. The blocks of a page run in
order, in one folder (the stage's worktree) and one set of shell variables, as in one
terminal. A line that starts the chat (`make run`, `make serve`) starts it in the
background and waits until it answers, as a learner would open a second terminal; the
server stops (Ctrl-C) when the next one starts and when the page ends. The ports a page
prints (5000 for the chat, 5001 for v0.18's second process, 8000 for nginx) become free
ones: PORT, WEB_PORT and PROXY_PORT tell the Makefile, and the commands' addresses change
to match. The lines that run the tests (`make test`, `make test-all`) and that switch
commits (`git checkout`) are left out: the stage checker runs the tests at the stage's
commit, in the worktree these blocks run in.

stage.py imports this module: `stage.py check` runs each stage's Try it after its tests,
and `stage.py try-it vX.Y` runs it alone. Only the standard library is used.
"""

import dataclasses
import os
import re
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from ports import free_port, free_ports_in_a_row

TRY_IT_HEADING = "## Try it"
FENCE_RE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,})\{(?P<attrs>[^}]*)\}\s*$")
SNIPPET_RE = re.compile(r'^ *--8<-- "(?P<path>[^"]+)"\s*$')
# The address of the chat, of v0.18's second web process and of nginx, as pages print them.
PAGE_PORTS = {"5000": "PORT", "5001": "SECOND_PORT", "8000": "PROXY_PORT"}
ADDRESS_RE = re.compile(r"(?<=127\.0\.0\.1:)(5000|5001|8000)\b|(?<=localhost:)(5000|5001|8000)\b")
# A command that starts the chat and runs until Ctrl-C: `make run`, `make serve`, the
# development server or honcho, after the variables it is given and before a comment.
SERVER_RE = re.compile(r"^(?:make +(?:run|serve)|\.venv/bin/python manage\.py runserver"
                       r"|(?:\.venv/bin/)?honcho start)(?: +[^#|;&<>]*)?(?:#.*)?$")
ASSIGNMENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
LEFT_TO_CHECKER_RE = re.compile(r"^(?:make +(?:test|test-all)|git +checkout +\S+)\s*(?:#.*)?$")
SERVER_START_SECONDS = 240
SERVER_STOP_SECONDS = 30
BLOCK_SECONDS = 120


class TryItError(Exception):
    """A Try it block failed, printed the wrong thing, or could not be read."""


@dataclasses.dataclass
class Block:
    """A marked block of a page: commands to run, or the output they should print."""

    kind: str      # "commands" or "output"
    text: str
    where: str     # the page (or snippet) and line, for messages
    exit: int = 0  # the exit status the commands end with: data-exit="28" in the braces


def try_it_section(text):
    """Return the page's lines with all but its "Try it" section blanked, to keep line numbers."""
    lines = text.splitlines()
    if TRY_IT_HEADING not in lines:
        return []
    start = lines.index(TRY_IT_HEADING) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [""] * start + lines[start:end]


def marked_blocks(lines, where, include):
    """Return the try-it blocks in lines, following --8<-- includes through include(path).

    include(path) returns the text of an included file, or None for one that holds no
    Try it block (a generated table, say).
    """
    blocks = []
    i = 0
    while i < len(lines):
        snippet = SNIPPET_RE.match(lines[i])
        fence = FENCE_RE.match(lines[i])
        if snippet:
            text = include(snippet["path"])
            if text is not None:
                blocks.extend(marked_blocks(text.splitlines(), snippet["path"], include))
            i += 1
            continue
        if not fence:
            i += 1
            continue
        classes = fence["attrs"].split()
        end = next((j for j in range(i + 1, len(lines))
                    if lines[j].strip() == fence["fence"]), None)
        if end is None:
            raise TryItError(f"{where}:{i + 1}: a code block that never ends")
        body = "\n".join(line[len(fence["indent"]):] for line in lines[i + 1:end])
        if ".try-it" in classes:
            exit_status = re.search(r'\bdata-exit="(\d+)"', fence["attrs"])
            blocks.append(Block("commands", body, f"{where}:{i + 1}",
                                int(exit_status[1]) if exit_status else 0))
        elif ".try-it-output" in classes:
            if not blocks or blocks[-1].kind != "commands":
                raise TryItError(f"{where}:{i + 1}: a try-it-output block follows no try-it block")
            blocks.append(Block("output", body, f"{where}:{i + 1}"))
        i = end + 1
    return blocks


def output_matches(expected, actual):
    """Whether every line of expected appears in actual, in order; `...` matches anything."""
    patterns = [re.compile(".*".join(re.escape(part) for part in line.strip().split("...")))
                for line in expected.splitlines() if line.strip() not in ("", "...")]
    lines = iter(actual.splitlines())
    return all(any(pattern.search(line) for line in lines) for pattern in patterns)


def with_ports(text, ports):
    """Return text with the page's port numbers replaced by the run's free ones."""
    return ADDRESS_RE.sub(lambda match: str(ports[PAGE_PORTS[match.group()]]), text)


def answers(url):
    """Whether url answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Terminal:
    """The worktree, the shell variables and the server of one page's Try it run."""

    def __init__(self, tree, env, log):
        self.tree = Path(tree)
        self.env = env
        self.log = log
        self.server = None
        self.ports = {}

    def write(self, text):
        """Append text to the log."""
        self.log.write(text)
        self.log.flush()

    def run(self, script, where, exit_status=0):
        """Run a script with bash -e, keeping the shell variables it sets; return its output.

        The script must end with exit_status: 0, or the status of a command the page
        says fails (a curl that gives up, say), which then ends the script.
        """
        state = shlex.quote(str(self.tree / ".try-it-variables"))
        # The variables the script sets go to a file that the next script reads first,
        # so that the blocks of a page share them as in one terminal.
        full = (f"__before=$(compgen -v)\n"
                f"[ -f {state} ] && . {state}\n"
                f"set -eo pipefail\n{script}\nset +e\n"
                f"for __name in $(compgen -v); do\n"
                f"  case $__name in __*|BASH*|_|PIPESTATUS) continue;; esac\n"
                f"  grep -qx \"$__name\" <<<\"$__before\" || declare -p \"$__name\"\n"
                f"done > {state}.new; mv {state}.new {state}\n")
        self.write(f"$ {script}\n")
        try:
            result = subprocess.run(["bash", "-c", full], cwd=self.tree, env=self.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, timeout=BLOCK_SECONDS, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TryItError(f"{where}: still running after {BLOCK_SECONDS} s") from None
        printed = result.stdout
        self.write(printed + "\n")
        if result.returncode != exit_status:
            raise TryItError(f"{where}: exit status {result.returncode}, not {exit_status}:\n"
                             f"{printed.strip()}")
        return printed

    def start_server(self, command, where):
        """Start a command that serves the chat in the background; wait until it answers."""
        self.stop_server()
        self.write(f"$ {command}   (in the background)\n")
        self.server_log = open(self.tree / ".try-it-server.log", "w", encoding="utf-8")
        self.server = subprocess.Popen(["bash", "-c", command], cwd=self.tree,
                                       env=dict(self.env, **self.ports_env()),
                                       stdout=self.server_log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        behind_nginx = "PROXY_PORT" in (self.tree / "Makefile").read_text(encoding="utf-8")
        serve = re.search(r"\bmake +serve\b", command)
        port = self.ports["PROXY_PORT" if serve and behind_nginx else "PORT"]
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not answers(url):
            if self.server.poll() is not None:
                raise TryItError(f"{where}: {command} stopped before it answered:\n"
                                 + self.server_output())
            if time.monotonic() > deadline:
                raise TryItError(f"{where}: {command} did not answer {url} within "
                                 f"{SERVER_START_SECONDS} s:\n" + self.server_output())
            time.sleep(0.5)
        self.write(f"  {url} answers\n")

    def server_output(self, lines=30):
        """Return the last lines the server printed (all of them for lines=None)."""
        text = Path(self.server_log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:] if lines else text.splitlines())

    def stop_server(self):
        """Stop the server as Ctrl-C would; kill what is left after a while."""
        if self.server is None:
            return
        server, self.server = self.server, None
        try:
            os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=SERVER_STOP_SECONDS)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.write(f"  the server did not stop within {SERVER_STOP_SECONDS} s of Ctrl-C\n")
        finally:
            with_kill(server.pid)
            server.wait()
            self.write(self.server_output(200) + "\n")
            self.server_log.close()

    def ports_env(self):
        """Return the variables that put the Makefile's servers on the run's ports."""
        return {"PORT": str(self.ports["PORT"]), "WEB_PORT": str(self.ports["PORT"]),
                "PROXY_PORT": str(self.ports["PROXY_PORT"])}


def with_kill(pid):
    """Kill a process group, if anything of it is left."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def pick_ports():
    """Return free ports for the chat, the second web process (the next one) and nginx."""
    port = free_ports_in_a_row(2)
    return {"PORT": port, "SECOND_PORT": port + 1, "PROXY_PORT": free_port()}


def logical_lines(text):
    """Return the lines of a script, each joined with the lines its backslashes continue."""
    lines = []
    for line in text.splitlines():
        if lines and lines[-1].rstrip().endswith("\\"):
            lines[-1] += "\n" + line
        else:
            lines.append(line)
    return lines


def without_assignments(line):
    """Return a command line without the variable assignments before its command."""
    while ASSIGNMENT_RE.match(line):
        depth, quote, i = 0, None, 0
        while i < len(line) and (quote or depth or not line[i].isspace()):
            char = line[i]
            if quote:
                quote = None if char == quote else quote
            elif char in "'\"":
                quote = char
            elif line.startswith("$(", i):
                depth, i = depth + 1, i + 1
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            i += 1
        line = line[i:].lstrip()
    return line


def steps(text):
    """Split a commands block into ("server", line), ("left", line) and ("script", text) steps."""
    found = []
    script = []
    for line in logical_lines(text):
        flat = re.sub(r"\s*\\\n\s*", " ", line).strip()
        server = SERVER_RE.match(without_assignments(flat)) and "--help" not in flat
        kind = "server" if server else "left" if LEFT_TO_CHECKER_RE.match(flat) else None
        if kind:
            if any(part.strip() for part in script):
                found.append(("script", "\n".join(script)))
            script = []
            found.append((kind, flat))
        else:
            script.append(line)
    if any(line.strip() for line in script):
        found.append(("script", "\n".join(script)))
    return found


def run_blocks(blocks, tree, env, log):
    """Run a page's blocks in tree; return (lines run, lines left to the checker)."""
    terminal = Terminal(tree, env, log)
    terminal.ports = pick_ports()
    ran = left = 0
    printed = ""
    try:
        for block in blocks:
            if block.kind == "output":
                if not output_matches(with_ports(block.text, terminal.ports), printed):
                    raise TryItError(f"{block.where}: the output differs from the page's. "
                                     f"Expected:\n{block.text}\nPrinted:\n{printed.strip()}")
                continue
            printed = ""
            text = with_ports(block.text, terminal.ports)
            # A block that the page says fails (a server that refuses to start) runs as is.
            block_steps = steps(text) if block.exit == 0 else [("script", text)]
            if any(step[0] == "server" for step in block_steps):
                terminal.stop_server()  # "stop the server, then:", as the pages say
            for step in block_steps:
                if step[0] == "server":
                    terminal.start_server(step[1], block.where)
                    printed += terminal.server_output(lines=None)  # what it printed to start
                    ran += 1
                elif step[0] == "left":
                    terminal.write(f"$ {step[1]}   (left to the stage checker)\n")
                    left += 1
                else:
                    last = step is block_steps[-1]
                    printed += terminal.run(step[1], block.where, block.exit if last else 0)
                    ran += sum(1 for line in logical_lines(step[1])
                               if line.strip() and not line.strip().startswith("#"))
    finally:
        terminal.stop_server()
    return ran, left
