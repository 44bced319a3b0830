"""Tests of the Try it runner (tutorial/tryit.py): which blocks it reads from a page, how
it splits them, how it checks their output, and a page run against a small server.

    python3 -m unittest discover -s tutorial/tests -v
"""
import io
import os
import re
import shutil
import socket
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TUTORIAL))

import tryit  # noqa: E402  (found through the line above)

PAGE = textwrap.dedent('''\
    # v0.9 something

    ```{.bash .try-it}
    echo not in the Try it section
    ```

    ## Try it

    --8<-- "_generated/stages/v0.9-commands.md"

    --8<-- "_generated/bench/a-table.md"

    ```bash
    echo a block the runner leaves alone
    ```

    - In a list:

        ```{.bash .try-it data-exit="28"}
        curl -s --max-time 2 http://127.0.0.1:5000/
        ```

        ```{.text .try-it-output}
        ...
        ```

    ## Recap

    ```{.bash .try-it}
    echo not in the Try it section either
    ```
    ''')


def include(path):
    """Stand in for the includes of PAGE: the commands, and a table with nothing to run."""
    if path.endswith("-commands.md"):
        return "```{.bash .try-it}\nmake run\n```\n"
    return None


class MarkedBlocksTest(unittest.TestCase):
    def test_only_the_marked_blocks_of_the_try_it_section_with_their_includes(self):
        blocks = tryit.marked_blocks(tryit.try_it_section(PAGE), "page.md", include)
        self.assertEqual([(block.kind, block.text, block.exit) for block in blocks], [
            ("commands", "make run", 0),
            ("commands", "curl -s --max-time 2 http://127.0.0.1:5000/", 28),
            ("output", "...", 0),
        ])
        self.assertEqual(blocks[0].where, "_generated/stages/v0.9-commands.md:1")

    def test_an_output_block_must_follow_a_commands_block(self):
        page = "## Try it\n\n```{.text .try-it-output}\nhello\n```\n"
        with self.assertRaisesRegex(tryit.TryItError, "follows no try-it block"):
            tryit.marked_blocks(tryit.try_it_section(page), "page.md", include)

    def test_a_page_without_a_try_it_section_has_no_block(self):
        self.assertEqual(tryit.try_it_section("# Title\n\ntext\n"), [])


class OutputMatchesTest(unittest.TestCase):
    PRINTED = '{"id":1,"nickname":"carol"}\nHTTP/1.1 409 CONFLICT\n{"error":"Conflict"}\n'

    def test_lines_in_order_with_dots_for_what_varies(self):
        self.assertTrue(tryit.output_matches('{"id":1,...}\n...\n{"error":"Conflict"}',
                                             self.PRINTED))

    def test_a_missing_line_fails(self):
        self.assertFalse(tryit.output_matches("HTTP/1.1 201 CREATED", self.PRINTED))

    def test_lines_out_of_order_fail(self):
        self.assertFalse(tryit.output_matches('{"error":"Conflict"}\n{"id":1,...}',
                                              self.PRINTED))

    def test_dots_match_within_a_line_only_where_written(self):
        self.assertTrue(tryit.output_matches("HTTP/1.1 ... CONFLICT", self.PRINTED))
        self.assertFalse(tryit.output_matches("HTTP/1.1 CONFLICT", self.PRINTED))


class StepsTest(unittest.TestCase):
    def test_servers_lines_left_to_the_checker_and_scripts(self):
        text = textwrap.dedent('''\
            git checkout v0.16  # the code as it is at this stage
            make test           # run the tests
            rm flack.sqlite
            make run        # or: .venv/bin/python manage.py db upgrade
            .venv/bin/python manage.py db upgrade
            PATH="$PWD/.venv/bin:$PATH" REDIS_URL=redis://127.0.0.1:6379/0 \\
                .venv/bin/honcho start web worker
            GUNICORN_CMD_ARGS="--workers 2" make serve
            .venv/bin/python manage.py runserver --help
            ''')
        self.assertEqual(tryit.steps(text), [
            ("left", "git checkout v0.16  # the code as it is at this stage"),
            ("left", "make test           # run the tests"),
            ("script", "rm flack.sqlite"),
            ("server", "make run        # or: .venv/bin/python manage.py db upgrade"),
            ("script", ".venv/bin/python manage.py db upgrade"),
            ("server", 'PATH="$PWD/.venv/bin:$PATH" REDIS_URL=redis://127.0.0.1:6379/0 '
                       ".venv/bin/honcho start web worker"),
            ("server", 'GUNICORN_CMD_ARGS="--workers 2" make serve'),
            ("script", ".venv/bin/python manage.py runserver --help"),
        ])

    def test_a_pipe_into_a_server_command_is_a_script(self):
        self.assertEqual(tryit.steps("echo 'print(1)' | make run"),
                         [("script", "echo 'print(1)' | make run")])


class PortsTest(unittest.TestCase):
    def test_the_pages_ports_become_the_runs(self):
        ports = {"PORT": 41000, "SECOND_PORT": 41001, "PROXY_PORT": 42000}
        self.assertEqual(
            tryit.with_ports("curl http://127.0.0.1:5000/ http://127.0.0.1:5001/ "
                             "localhost:8000 127.0.0.1:50000 port 5000", ports),
            "curl http://127.0.0.1:41000/ http://127.0.0.1:41001/ "
            "localhost:42000 127.0.0.1:50000 port 5000")


def listening(port):
    """Tell whether something accepts connections on a loopback port."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# A stage in miniature: `make run` serves the folder on PORT, as a stage serves the chat.
MAKEFILE = "run:\n\tpython3 -m http.server --bind 127.0.0.1 $$PORT\n"


class RunBlocksTest(unittest.TestCase):
    def setUp(self):
        self.tree = Path(tempfile.mkdtemp(prefix="tryit-test-"))
        self.addCleanup(shutil.rmtree, self.tree)
        (self.tree / "Makefile").write_text(MAKEFILE)
        (self.tree / "hello.txt").write_text("hello from the stage\n")
        self.log = io.StringIO()

    def blocks(self, page):
        """Return the marked blocks of a page's Try it section."""
        return tryit.marked_blocks(tryit.try_it_section("## Try it\n\n" + page),
                                   "page.md", lambda path: None)

    def run_page(self, page):
        """Run a page's blocks in the small stage; return (lines run, lines left)."""
        return tryit.run_blocks(self.blocks(page), self.tree, dict(os.environ), self.log)

    def test_a_page_runs_against_its_server_on_a_free_port_sharing_variables(self):
        ran, left = self.run_page(textwrap.dedent('''\
            ```{.bash .try-it}
            git checkout v0.9
            make run
            ```

            ```{.bash .try-it}
            TEXT=$(curl -s http://127.0.0.1:5000/hello.txt)
            ```

            ```{.bash .try-it}
            echo "it said: $TEXT"
            ```

            ```{.text .try-it-output}
            it said: hello from ... stage
            ```
            '''))
        self.assertEqual((ran, left), (3, 1))
        port = re.search(r"http://127\.0\.0\.1:(\d+)/ answers", self.log.getvalue())[1]
        self.assertNotEqual(port, "5000")
        self.assertFalse(listening(int(port)), "the server still runs after the page")

    def test_output_that_differs_from_the_page_fails(self):
        with self.assertRaisesRegex(tryit.TryItError, "page.md:7: the output differs"):
            self.run_page('```{.bash .try-it}\necho hello\n```\n\n'
                          '```{.text .try-it-output}\ngoodbye\n```\n')

    def test_a_failing_command_fails_unless_the_page_says_it_fails(self):
        with self.assertRaisesRegex(tryit.TryItError, "exit status 3, not 0"):
            self.run_page("```{.bash .try-it}\n(exit 3)\necho not reached\n```\n")
        self.assertEqual(self.run_page('```{.bash .try-it data-exit="3"}\n(exit 3)\n```\n'),
                         (1, 0))

    def test_a_server_that_stops_before_it_answers_fails(self):
        (self.tree / "Makefile").write_text("run:\n\tfalse\n")
        with self.assertRaisesRegex(tryit.TryItError, "make run stopped before it answered"):
            self.run_page("```{.bash .try-it}\nmake run\n```\n")


class StagePagesTest(unittest.TestCase):
    """Every block of every stage page's Try it section is run by CI, or says why not."""

    def test_each_block_of_a_try_it_section_is_marked(self):
        docs = TUTORIAL.parent / "docs"
        fence = re.compile(r"^ *`{3,}(?P<info>\S.*)$")
        for page in sorted((docs / "stages").glob("v*.md")):
            for line in tryit.try_it_section(page.read_text()):
                match = fence.match(line)
                if not match:
                    continue
                with self.subTest(page=page.name, line=line.strip()):
                    info = match["info"]
                    self.assertRegex(info, r"\.try-it\b|\.try-it-output\b|data-not-run=\"[^\"]+\"",
                                     "a Try it block that CI does not run must say why "
                                     '(data-not-run="...")')

    def test_each_stage_page_runs_more_than_the_generated_commands(self):
        docs = TUTORIAL.parent / "docs"
        for page in sorted((docs / "stages").glob("v*.md")):
            with self.subTest(page=page.name):
                text = page.read_text()
                own = tryit.marked_blocks(tryit.try_it_section(text), page.name,
                                          lambda path: None)
                self.assertTrue(own or "data-not-run" in text,
                                "the page's Try it has no block of its own that CI runs")


if __name__ == "__main__":
    unittest.main()
