"""What machine a benchmark ran on: CPU, memory, OS, Python, and when."""
import datetime
import json
import os
import platform
import subprocess
from pathlib import Path


def cpu_model():
    """Return the CPU's model name from /proc/cpuinfo ("unknown" if it has none)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib():
    """Return the machine's memory in GiB, from /proc/meminfo."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def os_name():
    """Return the distribution's pretty name and the kernel release."""
    name = platform.system()
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                name = line.split("=", 1)[1].strip('"')
    return f"{name}, Linux {platform.release()}"


def load_average():
    """Return the 1, 5 and 15 minute load averages when the run started."""
    return [round(value, 2) for value in os.getloadavg()]


def describe():
    """Return a dict that describes this machine, and the date and time now (UTC)."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": os_name(),
        "load_average_at_start": load_average(),
    }


def python_packages(python):
    """Return the version of Python and of every package installed for it, as a dict."""
    code = ("import sys, json, importlib.metadata as m; print(json.dumps({'python': "
            "sys.version.split()[0], 'packages': {d.metadata['Name'].lower(): d.version "
            "for d in m.distributions()}}))")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    found = json.loads(out)
    found["packages"] = dict(sorted(found["packages"].items()))
    return found
