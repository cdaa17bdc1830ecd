"""Describe the machine and the software versions, for the results file."""

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def _proc_field(path, prefix):
    """The text after ``prefix`` on the first matching line of a /proc file."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line[len(prefix):].strip()
    except OSError:
        pass
    return None


def _version(*names):
    """The installed version of the first of these distributions found.

    Read from the package metadata, without importing TensorFlow here.
    """
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def machine_info(repo_root):
    """Platform, CPU, cores, RAM, versions, the git commit of ``repo_root``, date."""
    cpu_model = _proc_field("/proc/cpuinfo", "model name")
    cpu_model = cpu_model.lstrip(":").strip() if cpu_model else None
    total_ram_kib = _proc_field("/proc/meminfo", "MemTotal:")
    total_ram_gib = int(total_ram_kib.split()[0]) / 2**20 if total_ram_kib else None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root, capture_output=True,
            text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None  # not a git checkout, or no commit yet
    return {
        "date": datetime.datetime.now().astimezone().isoformat(
            timespec="seconds"),
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "total_ram_gib": round(total_ram_gib, 1) if total_ram_gib else None,
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow", "tensorflow-cpu"),
        "numpy": _version("numpy"),
        "keras": _version("keras"),
        "git_commit": commit,
    }
