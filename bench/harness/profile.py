"""Where a running Python process spends its time: py-spy samples it, and we sum the samples up.

py-spy (from PyPI, in the bench venv) reads the process's stacks from outside,
a hundred times a second. It leaves out a thread that waits in the kernel, but
not eventlet's or gevent's hub waiting in epoll for the next event: those samples are
counted apart, as waiting, and the rest are moments of work. Its raw output has
one line per distinct stack, "outer (file);...;inner (file) count".
"""
import contextlib
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from . import processes

ATTACH_SECONDS = 1.0  # for py-spy to attach before the work to profile starts
STOP_SECONDS = 20
TOP = 8
# An innermost frame here waits: eventlet's or gevent's hub for events, gevent's thread
# pool's idle threads for work.
WAITING_FILES = ("eventlet/hubs/", "gevent/hub.py", "gevent/_threading.py")


def py_spy():
    """Return the path of py-spy, the bench venv's or one on the PATH, or None."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def recording(pid, work_dir, parts):
    """Sample pid with py-spy while the block runs; the dict yielded gets the summary after it."""
    summary = {}
    program = py_spy()
    if program is None:
        summary["problem"] = "py-spy is missing: `make bench` installs it in .venv-bench"
        yield summary
        return
    output, log_path = work_dir / "py-spy.txt", work_dir / "py-spy.log"
    process = processes.start([program, "record", "--pid", pid, "--format", "raw", "--nolineno",
                               "--output", output], work_dir, None, log_path)
    time.sleep(ATTACH_SECONDS)
    try:
        yield summary
    finally:
        stop(process)
    if output.exists():
        summary.update(summarize(output.read_text(), parts))
    else:
        summary["problem"] = f"py-spy wrote no profile: {last_line(log_path)}"


def stop(process):
    """Interrupt py-spy, which then writes what it sampled; kill it if it takes too long."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_SECONDS)
    finally:
        processes.kill(process)


def last_line(path):
    """Return the last line of a log that says something."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def parse(text):
    """Yield (frames from outermost to innermost, count) for each line of py-spy's raw output."""
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def package_of(frame):
    """Return the package or module a frame's file belongs to: "function (pkg/mod.py)" -> pkg."""
    path = frame.rpartition(" (")[2].rstrip(")")
    return path.split("/")[0].removesuffix(".py")


def function_of(frame):
    """Return a frame's function and file, without its line number if it has one."""
    name, _, path = frame.partition(" (")
    return f"{name} ({path.rstrip(')').split(':')[0]})"


def summarize(text, parts):
    """Sum the samples of work up: the share of each package and function, and of parts.

    parts maps a label to a function, "name (package/module.py)": a part's share
    counts the samples in that function or anything it called.
    """
    total = waiting = 0
    own_by_package, own_by_function, with_callees = Counter(), Counter(), Counter()
    for frames, count in parse(text):
        if function_of(frames[-1]).partition(" (")[2].startswith(WAITING_FILES):
            waiting += count
            continue
        total += count
        own_by_package[package_of(frames[-1])] += count
        own_by_function[function_of(frames[-1])] += count
        for function in {function_of(frame) for frame in frames}:
            with_callees[function] += count

    def shares(counter):
        return [{"name": name, "share": round(count / total, 3)}
                for name, count in counter.most_common(TOP)]

    if total == 0:
        return {"samples": 0, "waiting_samples": waiting}
    return {"samples": total, "waiting_samples": waiting,
            "own_by_package": shares(own_by_package),
            "own_by_function": shares(own_by_function),
            "parts": [{"name": label, "function": function,
                       "share": round(with_callees[function] / total, 3)}
                      for label, function in parts.items()]}
