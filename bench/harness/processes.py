"""Processes the benchmark starts: each in its own process group, all killed at the end.

Every process is started in a new session, so that it and everything it forks
(gunicorn's workers, the development server's reloader) share one process
group that a single killpg ends. A Ctrl-C in the terminal reaches only the
benchmark itself, which then kills the groups it started.
"""
import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_GRACE_SECONDS = 5

_started = []  # every Popen started here and not yet reaped


def start(command, cwd, env, log_path):
    """Start command in its own process group, its output appended to log_path."""
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(map(str, command))}\n")
        log.flush()
        process = subprocess.Popen([str(part) for part in command], cwd=cwd, env=env,
                                   stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    _started.append(process)
    return process


def start_piped(command, cwd, env, log_path):
    """Start command in its own process group, talking over pipes; its errors go to log_path."""
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(map(str, command))}\n")
        log.flush()
        process = subprocess.Popen([str(part) for part in command], cwd=cwd, env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                   text=True, bufsize=1, start_new_session=True)
    _started.append(process)
    return process


def run(command, cwd, env, log_path, timeout):
    """Run command to its end within timeout seconds; raise RuntimeError if it fails."""
    process = start(command, cwd, env, log_path)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(process)
        raise RuntimeError(f"{command[0]} took longer than {timeout} s (log: {log_path})") from None
    finally:
        forget(process)
    if code != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited with {code} (log: {log_path})")


def forget(process):
    """Drop a reaped process from the list of those to kill."""
    if process in _started:
        _started.remove(process)


def kill(process):
    """Stop a process group: SIGTERM, then SIGKILL after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    # The leader may be gone while its children live on: kill the group in any case.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    forget(process)


def kill_all():
    """Kill every process group started here that is still known."""
    for process in list(_started):
        kill(process)


@contextlib.contextmanager
def cleanup_on_exit():
    """Turn SIGTERM and SIGHUP into SystemExit, and kill every started group on the way out."""
    def leave(signum, frame):
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGHUP)}
    # Ctrl-C raises KeyboardInterrupt even where a shell started us with SIGINT ignored.
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        kill_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_with_usage(process, timeout, stop=None):
    """Wait for a child; return (exit code, CPU seconds it used, whether it ran out of time).

    The CPU seconds are those of the child and of every descendant it waited
    for. After timeout seconds, stop(process) ends it (by default SIGKILL to
    its group) while this thread keeps waiting for its status.
    """
    expired = threading.Event()

    def expire():
        expired.set()
        if stop:
            stop(process)
        else:
            _signal_group(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, expire)
    timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
        timer.join()  # a stop() under way finishes before the next process can start
    process.returncode = os.waitstatus_to_exitcode(status)
    forget(process)
    return process.returncode, usage.ru_utime + usage.ru_stime, expired.is_set()


def stop_tree(process, grace=STOP_GRACE_SECONDS):
    """Interrupt a process's group and its descendants' groups; kill what is left after grace.

    Descendants may have sessions of their own (the tests start gunicorn so),
    which a signal to the leader's group would miss. SIGINT first lets pytest
    run its teardown: servers stopped, PostgreSQL schemas dropped.
    """
    pids = {process.pid, *descendants(process.pid)}
    spared = {None, os.getpgrp()}  # never our own group
    groups = {process.pid, *(group_of(pid) for pid in pids)} - spared
    for group in groups:
        _signal_group(group, signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(is_running(pid) for pid in pids):
        time.sleep(0.2)
    groups |= {group_of(pid) for pid in descendants(process.pid)} - spared
    for group in groups:
        _signal_group(group, signal.SIGKILL)


def _signal_group(pgid, sig):
    """Send a signal to a process group that may be gone already."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def proc_stats():
    """Yield (pid, fields after the command name) of /proc/<pid>/stat for every live process."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        # The command name, in parentheses, may hold spaces: split after it.
        yield int(stat.parent.name), text[text.rindex(")") + 2:].split()


def descendants(pid):
    """Return the pids of the live descendants of a process, from /proc."""
    children = {}
    for child, fields in proc_stats():
        children.setdefault(int(fields[1]), []).append(child)  # fields[1] is the parent
    found, unvisited = [], [pid]
    while unvisited:
        for child in children.get(unvisited.pop(), []):
            found.append(child)
            unvisited.append(child)
    return found


def group_of(pid):
    """Return the process group of pid, or None if it has ended."""
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def is_running(pid):
    """Say whether pid is alive and not a zombie waiting to be reaped."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2:].split()[0] != "Z"


def group_cpu_seconds(pgid):
    """Return the CPU seconds used so far by the live processes of a process group."""
    total = 0
    for _, fields in proc_stats():
        if int(fields[2]) == pgid:  # fields[2] is the process group
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def group_rss_bytes(pgid):
    """Return the resident memory of the live processes of a process group, in bytes."""
    page = os.sysconf("SC_PAGE_SIZE")
    return sum(int(fields[21]) * page for _, fields in proc_stats()
               if int(fields[2]) == pgid)  # fields[21] is rss, in pages


def wait_until_quiet(pgid, timeout, cpu_share=0.05, period=0.5):
    """Wait until a process group uses less than cpu_share of a core over period seconds.

    Returns the seconds waited; raises RuntimeError if it is still busy after timeout.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = group_cpu_seconds(pgid)
        time.sleep(period)
        if group_cpu_seconds(pgid) - before < cpu_share * period:
            return time.monotonic() - started
    raise RuntimeError(f"the server was still busy after {timeout} s of waiting for it to settle")


def raise_open_files_limit(needed):
    """Let this process, and the processes it starts, open at least needed files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(f"{needed} open files are needed, and the hard limit is {hard}: "
                           f"raise it (ulimit -Hn) and run again")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def machine_busy_seconds():
    """Return the CPU seconds all cores have spent busy since boot (from /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS
