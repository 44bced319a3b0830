"""The load generator: wrk, driven from here, with its report as JSON from a Lua hook.

wrk is written in C and uses epoll, so one of its threads sends tens of
thousands of requests a second: far more than a Python server answers.
"""
import json
import shutil
import subprocess
import time
from pathlib import Path

from . import processes

# wrk calls done() once at the end; latencies are in microseconds.
REPORT_SCRIPT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  local p = {}
  for _, q in ipairs({50, 75, 90, 95, 99, 99.9}) do
    p[#p + 1] = string.format('"%s": %d', q, latency:percentile(q))
  end
  io.write(string.format(
    'BENCH-REPORT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, "max": %d, ' ..
    '"percentiles": {%s}}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max, table.concat(p, ", ")))
end
"""
REPORT_PREFIX = "BENCH-REPORT "
OVERRUN_SECONDS = 15  # past its duration, wrk is killed
REQUEST_TIMEOUT_SECONDS = 10


def require():
    """Return the path of wrk, or raise RuntimeError saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is missing: apt-get install wrk")
    return path


def version():
    """Return wrk's version line."""
    done = subprocess.run([require(), "--version"], capture_output=True, text=True, timeout=10)
    return (done.stdout + done.stderr).splitlines()[0].split(" Copyright")[0].strip()


def measure(url, connections, seconds, server_pgid, work_dir, threads=1):
    """Load url for some seconds; return wrk's report with the CPU used by wrk and the server."""
    script = Path(work_dir) / "wrk-report.lua"
    script.write_text(REPORT_SCRIPT)
    output = Path(work_dir) / "wrk.out"
    output.write_text("")
    command = [require(), f"--threads={threads}", f"--connections={connections}",
               f"--duration={seconds}s", f"--timeout={REQUEST_TIMEOUT_SECONDS}s",
               f"--script={script}", url]
    server_before = processes.group_cpu_seconds(server_pgid)
    busy_before = processes.machine_busy_seconds()
    started = time.monotonic()
    process = processes.start(command, work_dir, None, output)
    code, wrk_cpu, overran = processes.wait_with_usage(process, seconds + OVERRUN_SECONDS)
    wall = time.monotonic() - started
    busy = processes.machine_busy_seconds() - busy_before
    server_cpu = processes.group_cpu_seconds(server_pgid) - server_before
    text = output.read_text()
    if overran:
        raise RuntimeError(f"wrk ran {OVERRUN_SECONDS} s past its duration and was killed")
    if code != 0:
        raise RuntimeError(f"wrk exited with {code}:\n{text[-2000:]}")
    report = next((json.loads(line[len(REPORT_PREFIX):]) for line in text.splitlines()
                   if line.startswith(REPORT_PREFIX)), None)
    if report is None:
        raise RuntimeError(f"wrk gave no report:\n{text[-2000:]}")
    report.update(requests_per_second=report["requests"] / (report["duration_us"] / 1e6),
                  wall_seconds=round(wall, 3), wrk_cpu_seconds=round(wrk_cpu, 3),
                  server_cpu_seconds=round(server_cpu, 3),
                  machine_busy_cpu_seconds=round(busy, 3))
    return report
