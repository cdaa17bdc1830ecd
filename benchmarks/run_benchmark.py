"""Time the suite's scripts against plain Keras on full-size CIFAR-10.

One command, offline:

    python benchmarks/run_benchmark.py [--only softmax,fc,cnn,load] [--repeat N]

It makes (or reuses) a full-size data set in the real file format, then runs,
one after another in fresh processes, the suite's ``softmax.py``,
``run_fc_model.py`` and ``run_cnn_model.py --epochs 1``, the same three models
in plain Keras (``keras_equivalents.py``), and ``data_helpers.load_data`` alone.
For each process it measures the wall time and the peak resident memory, and
reads the timing JSON the process writes to ``$TUTORIAL_TIMING_JSON``. It prints
a table and the PASS/FAIL of each performance target, and writes everything,
with a description of the machine, to ``benchmarks/results.json``.

Exit status: 0 when every target passes, 1 when a process failed (or did not
write its timing JSON), 2 when all ran but a target failed.
"""

import argparse
import datetime
import json
import operator
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from make_full_dataset import DEFAULT_CACHE_DIR, write_full_dataset

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PYTHON = sys.executable

ROWS = ("softmax", "fc", "cnn", "load")
ROW_TITLES = {"softmax": "softmax", "fc": "fc", "cnn": "cnn (1 epoch)",
              "load": "load_data"}
SUITE_SCRIPTS = {"softmax": "softmax.py", "fc": "run_fc_model.py",
                 "cnn": "run_cnn_model.py"}

# The load_data row: the suite's loader alone, timed around the call itself so
# that starting Python and importing numpy are not counted.
LOAD_CHILD_CODE = """\
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import data_helpers
start = time.perf_counter()
data_helpers.load_data(sys.argv[2])
seconds = time.perf_counter() - start
print(f"load_data: {seconds:.3f}s")
timing_path = os.environ.get("TUTORIAL_TIMING_JSON")
if timing_path:
    with open(timing_path, "w") as f:
        json.dump({"load_seconds": seconds}, f)
"""

MB = 1e6  # memory is reported in decimal megabytes: 1.5 GB = 1,500 MB
# A 1-minute load average above this, before starting, means other processes
# compete for the 2 cores (a previous run also counts for a minute or so).
BUSY_LOAD_AVERAGE = 1.0

# Performance targets: (label, measured job, metric, operator, job compared
# with or None, limit: a factor of that job's metric or an absolute value).
TARGETS = (
    ("softmax.py peak RSS <= 1.5 GB",
     ("suite", "softmax"), "peak_rss_mb", "<=", None, 1500),
    ("run_fc_model.py peak RSS <= 1.5 GB",
     ("suite", "fc"), "peak_rss_mb", "<=", None, 1500),
    ("run_fc_model.py wall <= 0.7 x Keras fc wall",
     ("suite", "fc"), "wall_seconds", "<=", ("keras", "fc"), 0.7),
    ("softmax.py wall <= 0.7 x Keras softmax wall",
     ("suite", "softmax"), "wall_seconds", "<=", ("keras", "softmax"), 0.7),
    ("CNN train seconds per epoch <= 1.0 x Keras",
     ("suite", "cnn"), "train_seconds", "<=", ("keras", "cnn"), 1.0),
    ("load_data < 2 s",
     ("suite", "load"), "load_seconds", "<", None, 2.0),
)
OPERATORS = {"<=": operator.le, "<": operator.lt}


def job_command(side, row, data_dir, work_dir):
    """Build the command line of one benchmark process.

    Args:
        side: ``suite`` or ``keras``.
        row: One of ROWS (``load`` exists on the suite side only).
        data_dir: Folder with the CIFAR-10 batch files.
        work_dir: Fresh temporary folder of this run (its cwd and train_dir).

    Returns:
        The argument list for ``subprocess.Popen``.
    """
    data_dir = str(data_dir)
    if side == "keras":
        return [PYTHON, str(BENCH_DIR / "keras_equivalents.py"), row,
                "--data_dir", data_dir]
    if row == "load":
        return [PYTHON, "-c", LOAD_CHILD_CODE, str(REPO_ROOT), data_dir]
    command = [PYTHON, str(REPO_ROOT / SUITE_SCRIPTS[row]),
               "--data_dir", data_dir]
    if row in ("fc", "cnn"):
        # Logs and checkpoints go to a throw-away folder, not the repo.
        command += ["--train_dir", str(Path(work_dir) / "tf_logs")]
    if row == "cnn":
        command += ["--epochs", "1"]
    return command


def run_process(command, name, log_dir, cwd):
    """Run one benchmark process and measure it.

    The wall time is taken around the whole process; the peak resident memory
    comes from ``os.wait4``, which returns the child's own resource usage
    (``ru_maxrss``, in KiB on Linux) when it is reaped.

    Args:
        command: Argument list of the process.
        name: Base name of its log and timing files.
        log_dir: Folder for ``NAME.stdout.log``, ``NAME.stderr.log`` and
            ``NAME.timing.json``.
        cwd: Working folder of the process.

    Returns:
        A dict describing the run; ``error`` is None when all went well.
    """
    stdout_path = log_dir / f"{name}.stdout.log"
    stderr_path = log_dir / f"{name}.stderr.log"
    timing_path = log_dir / f"{name}.timing.json"
    timing_path.unlink(missing_ok=True)  # never read a stale file
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               TUTORIAL_TIMING_JSON=str(timing_path))

    with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=out,
                                 stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
    # wait4 reaped the child; tell Popen so that it does not try again.
    child.returncode = os.waitstatus_to_exitcode(status)

    timing = None
    error = None
    if child.returncode != 0:
        error = f"exit status {child.returncode}"
    else:
        try:
            timing = json.loads(timing_path.read_text())
        except (OSError, ValueError):
            error = "no timing JSON"
    return {
        "command": command,
        "returncode": child.returncode,
        "error": error,
        "wall_seconds": wall,
        "peak_rss_mb": usage.ru_maxrss * 1024 / MB,
        "timing": timing,
        "test_accuracy": _test_accuracy(stdout_path),
        "stdout_log": str(stdout_path),
        "stderr_log": str(stderr_path),
    }


def _test_accuracy(stdout_path):
    """Return the last ``Test accuracy`` a script printed, or None."""
    text = stdout_path.read_text(errors="replace")
    # softmax.py / run_fc_model.py print "Test accuracy 0.31", the CNN
    # "Test Accuracy: 0.62".
    found = re.findall(r"test accuracy:?\s*([0-9.]+(?:e-?\d+)?)", text,
                       flags=re.IGNORECASE)
    return float(found[-1]) if found else None


def summarise(runs):
    """Reduce the runs of one job: median times, highest peak memory.

    Args:
        runs: The dicts of ``run_process`` for one job (one per repeat).

    Returns:
        A dict with ``status`` (``ok`` or the first error) and, when ok,
        ``wall_seconds``, ``peak_rss_mb``, ``train_seconds``, ``train_steps``,
        ``steps_per_second``, ``load_seconds``, ``test_accuracy``.
    """
    errors = [run["error"] for run in runs if run["error"]]
    if errors:
        return {"status": errors[0], "runs": runs}

    def median(key):
        values = [run["timing"][key] for run in runs
                  if run["timing"].get(key) is not None]
        return statistics.median(values) if values else None

    summary = {
        "status": "ok",
        "wall_seconds": statistics.median(r["wall_seconds"] for r in runs),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "load_seconds": median("load_seconds"),
        "train_seconds": median("train_seconds"),
        "train_steps": median("train_steps"),
        "total_seconds": median("total_seconds"),
        "test_accuracy": runs[-1]["test_accuracy"],
        "runs": runs,
    }
    steps, seconds = summary["train_steps"], summary["train_seconds"]
    summary["steps_per_second"] = steps / seconds if steps and seconds else None
    return summary


def check_targets(jobs):
    """Evaluate the performance targets on the summarised jobs.

    Args:
        jobs: Dict from (side, row) to the summary of that job.

    Returns:
        A list of dicts with ``target``, ``result`` (PASS, FAIL or SKIP when
        a job was not run) and ``detail``.
    """
    results = []
    for label, measured, metric, op, compared, limit in TARGETS:
        needed = [measured] + ([compared] if compared else [])
        if any(job not in jobs for job in needed):
            results.append({"target": label, "result": "SKIP",
                            "detail": "not run"})
            continue
        value = jobs[measured].get(metric)
        if compared:
            base = jobs[compared].get(metric)
            threshold = limit * base if base is not None else None
        else:
            threshold = limit
        if value is None or threshold is None:
            broken = [f"{s} {r}: {jobs[(s, r)]['status']}" for s, r in needed
                      if jobs[(s, r)]["status"] != "ok"]
            detail = "; ".join(broken) or f"no {metric}"
            results.append({"target": label, "result": "FAIL",
                            "detail": detail})
            continue
        passed = OPERATORS[op](value, threshold)
        results.append({
            "target": label, "result": "PASS" if passed else "FAIL",
            "value": value, "threshold": threshold,
            "detail": f"{metric} {value:.4g} {op} {threshold:.4g}"
                      + ("" if passed else " is false"),
        })
    return results


def _fmt(value, spec):
    """Format a number, or show a dash when it is missing."""
    return "-" if value is None else format(value, spec)


def _status_cell(status):
    """Short table cell for a job that did not run to the end."""
    return {"missing": "MISSING", "no timing JSON": "NO TIMING"}.get(
        status, "FAILED")


def _ratio(a, b):
    """Return a / b, or None when either is missing."""
    return a / b if a is not None and b else None


def build_table(jobs, rows):
    """Make the rows of the results table, as dicts and as strings.

    Args:
        jobs: Dict from (side, row) to the summary of that job.
        rows: The rows that were run, in order.

    Returns:
        A tuple (records, header, lines): one dict per row for the JSON, the
        header and the formatted cells of each row.
    """
    header = ["", "suite wall s", "Keras wall s", "suite/Keras",
              "suite RSS MB", "Keras RSS MB", "suite steps/s",
              "Keras steps/s", "train s suite/Keras"]
    records, lines = [], []
    for row in rows:
        suite = jobs.get(("suite", row), {})
        keras = jobs.get(("keras", row), {})
        # The load_data row reports the load_data() call itself.
        wall_key = "load_seconds" if row == "load" else "wall_seconds"
        record = {
            "row": ROW_TITLES[row],
            "suite_status": suite.get("status"),
            "keras_status": keras.get("status"),
            "suite_wall_s": suite.get(wall_key),
            "keras_wall_s": keras.get("wall_seconds"),
            "suite_rss_mb": suite.get("peak_rss_mb"),
            "keras_rss_mb": keras.get("peak_rss_mb"),
            "suite_steps_per_s": suite.get("steps_per_second"),
            "keras_steps_per_s": keras.get("steps_per_second"),
        }
        record["wall_ratio"] = _ratio(record["suite_wall_s"],
                                      record["keras_wall_s"])
        record["train_seconds_ratio"] = _ratio(suite.get("train_seconds"),
                                               keras.get("train_seconds"))
        records.append(record)

        cells = [record["row"],
                 _fmt(record["suite_wall_s"], ".2f"),
                 _fmt(record["keras_wall_s"], ".2f"),
                 _fmt(record["wall_ratio"], ".2f"),
                 _fmt(record["suite_rss_mb"], ".0f"),
                 _fmt(record["keras_rss_mb"], ".0f"),
                 _fmt(record["suite_steps_per_s"], ".1f"),
                 _fmt(record["keras_steps_per_s"], ".1f"),
                 _fmt(record["train_seconds_ratio"], ".2f")]
        # A failed process shows what went wrong instead of its wall time.
        if suite and suite["status"] != "ok":
            cells[1] = _status_cell(suite["status"])
        if keras and keras["status"] != "ok":
            cells[2] = _status_cell(keras["status"])
        lines.append(cells)
    return records, header, lines


def format_table(header, lines):
    """Lay out the header and rows as aligned text columns."""
    widths = [max(len(row[i]) for row in [header] + lines)
              for i in range(len(header))]

    def layout(cells):
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first] + rest)

    rule = "-" * len(layout(header))
    return "\n".join([layout(header), rule] + [layout(c) for c in lines])


def machine_info():
    """Describe the machine and the software versions for the results."""
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    total_ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total_ram_gib = int(line.split()[1]) / 2**20  # from KiB
                break
    except OSError:
        pass

    def version(*names):
        # Read installed versions without importing TensorFlow here.
        for name in names:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return None

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
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
        "tensorflow": version("tensorflow", "tensorflow-cpu"),
        "numpy": version("numpy"),
        "keras": version("keras"),
        "git_commit": commit,
    }


def parse_args(argv=None):
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=str(BENCH_DIR / "results.json"),
                        help="JSON file for the results; the processes' logs "
                             "go to a logs/ folder beside it")
    parser.add_argument("--data_cache", default=str(DEFAULT_CACHE_DIR),
                        help="folder holding (or to hold) the full-size data")
    parser.add_argument("--only", default=",".join(ROWS),
                        help="comma-separated subset of " + ",".join(ROWS))
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each process; the median wall is kept")
    args = parser.parse_args(argv)
    args.rows = [row.strip() for row in args.only.split(",") if row.strip()]
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown or not args.rows:
        parser.error(f"--only takes names from {','.join(ROWS)}")
    args.rows = [row for row in ROWS if row in args.rows]  # canonical order
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def run_jobs(job_keys, repeat, data_dir, log_dir):
    """Run every job ``repeat`` times, one process at a time.

    Args:
        job_keys: The (side, row) pairs to run, in order.
        repeat: How many times to run each.
        data_dir: Folder with the full-size batch files.
        log_dir: Folder for the processes' logs and timing files.

    Returns:
        Dict from (side, row) to the list of its runs.
    """
    runs = {key: [] for key in job_keys}
    total = len(job_keys) * repeat
    count = 0
    # Repeats go round all jobs, so a slow drift of the machine hits all alike.
    for index in range(repeat):
        for side, row in job_keys:
            count += 1
            name = f"{side}_{row}" + (f".{index + 1}" if repeat > 1 else "")
            print(f"[{count}/{total}] {side} {ROW_TITLES[row]} ...", end=" ",
                  flush=True)
            with tempfile.TemporaryDirectory(prefix="cifar_bench_") as work:
                command = job_command(side, row, data_dir, work)
                script = Path(command[1])
                if side == "suite" and row != "load" and not script.is_file():
                    run = {"command": command, "error": "missing",
                           "stdout_log": None, "stderr_log": None}
                else:
                    run = run_process(command, name, log_dir, cwd=work)
            runs[(side, row)].append(run)
            if not run["error"]:
                print(f"{run['wall_seconds']:.1f} s, "
                      f"{run['peak_rss_mb']:.0f} MB")
            elif run["stderr_log"]:
                print(f"{run['error'].upper()} (see {run['stderr_log']})")
            else:
                print(run["error"].upper())
    return runs


def print_report(jobs, rows, repeat, checks, problems):
    """Print the table, notes, targets and problems."""
    _, header, lines = build_table(jobs, rows)
    print()
    print(format_table(header, lines))
    load = jobs.get(("suite", "load"))
    if load and load["status"] == "ok":
        print("load_data row: seconds of the load_data() call alone (its "
              f"process: {load['wall_seconds']:.2f} s wall)")
    accuracies = []
    for row in rows:
        if row != "load":
            suite = jobs.get(("suite", row), {}).get("test_accuracy")
            keras = jobs.get(("keras", row), {}).get("test_accuracy")
            accuracies.append(f"{ROW_TITLES[row]} {_fmt(suite, '.4f')} / "
                              f"{_fmt(keras, '.4f')}")
    if accuracies:
        print("test accuracy, suite / Keras: " + ", ".join(accuracies))
    if repeat > 1:
        print(f"median wall and train time of {repeat} runs, highest peak RSS")
    print()
    for check in checks:
        print(f"{check['result']:4}  {check['target']}  ({check['detail']})")
    if problems:
        print("\nProblems: " + "; ".join(problems))


def main(argv=None):
    """Run the benchmark; return the exit status."""
    args = parse_args(argv)
    out_path = Path(args.out).resolve()
    log_dir = out_path.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    print("Preparing the full-size data set ...", flush=True)
    data_dir = write_full_dataset(args.data_cache)
    print(f"Data: {data_dir}")
    # Other work on a 2-core machine skews every number; say so up front.
    load_average = os.getloadavg()[0]
    if load_average > BUSY_LOAD_AVERAGE:
        print(f"Warning: the machine looks busy (load average "
              f"{load_average:.1f}); timings will be noisy.")

    job_keys = [("suite", row) for row in args.rows]
    job_keys += [("keras", row) for row in args.rows if row != "load"]
    # Rows in order, each suite process next to its Keras counterpart.
    job_keys.sort(key=lambda key: (ROWS.index(key[1]), key[0] != "suite"))
    runs = run_jobs(job_keys, args.repeat, data_dir, log_dir)

    jobs = {key: summarise(key_runs) for key, key_runs in runs.items()}
    checks = check_targets(jobs)
    problems = [f"{side} {ROW_TITLES[row]}: {job['status']}"
                for (side, row), job in jobs.items() if job["status"] != "ok"]
    print_report(jobs, args.rows, args.repeat, checks, problems)

    results = {
        "machine": machine_info(),
        "settings": {"data_dir": str(data_dir), "rows": args.rows,
                     "repeat": args.repeat, "argv": sys.argv,
                     "load_average_at_start": load_average},
        "table": build_table(jobs, args.rows)[0],
        "checks": checks,
        "problems": problems,
        "jobs": {f"{side}_{row}": job for (side, row), job in jobs.items()},
    }
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nResults: {out_path}\nLogs: {log_dir}")

    if problems:
        return 1
    if any(check["result"] == "FAIL" for check in checks):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
