"""Run one benchmark process and measure it from outside.

The wall time is ``time.perf_counter()`` around the whole process, from
``Popen`` until it is reaped. The peak resident memory comes from
``os.wait4``, which returns the child's own resource usage when it is reaped
(``ru_maxrss``, in KiB on Linux). The child's stdout comes through a pipe and is
read line by line: each line is written to the log file as it arrives and kept
with its arrival time, so that what a script prints can be timed.
"""

import os
import subprocess
import time

MB = 1e6  # memory is reported in decimal megabytes: 1.5 GB = 1,500 MB


def run_process(command, cwd, env, stdout_path, stderr_path):
    """Run a process to its end; measure its wall time and peak memory.

    Args:
        command: Argument list of the process.
        cwd: Its working folder.
        env: Its environment (with ``PYTHONUNBUFFERED=1``, a Python child's
            lines arrive as it prints them).
        stdout_path: Log file for its stdout, written as the lines arrive.
        stderr_path: Log file for its stderr.

    Returns:
        A tuple (run, lines): ``run`` a dict with ``command``, ``returncode``,
        ``wall_seconds``, ``peak_rss_mb`` and the log paths; ``lines`` the
        stdout lines as (seconds since the start, text) pairs.
    """
    lines = []
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                 stderr=err, stdin=subprocess.DEVNULL)
        with child.stdout:
            for line in iter(child.stdout.readline, b""):
                arrival = time.perf_counter() - start
                out.write(line)
                lines.append((arrival, line.decode(errors="replace").rstrip("\r\n")))
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
    # wait4 reaped the child; tell Popen so that it does not try again.
    child.returncode = os.waitstatus_to_exitcode(status)
    run = {
        "command": command,
        "returncode": child.returncode,
        "wall_seconds": wall,
        "peak_rss_mb": usage.ru_maxrss * 1024 / MB,
        "stdout_log": str(stdout_path),
        "stderr_log": str(stderr_path),
    }
    return run, lines
