"""Time the suite's scripts against plain Keras on full-size CIFAR-10.

One command, offline:

    python benchmarks/run_benchmark.py [--only softmax,fc,cnn,deep_cnn,load] [--repeat N]

It makes (or reuses) a full-size data set in the real file format, then runs,
one after another in fresh processes, the suite's ``softmax.py``,
``run_fc_model.py``, ``run_cnn_model.py --epochs 1`` and
``run_deep_cnn_model.py --epochs 1``, the same four models in plain Keras
(``keras_equivalents.py``), and ``data_helpers.load_data`` alone.
Every process is timed and its peak memory read from outside
(``process_run``). The suite's scripts do nothing for the benchmark: their
training time is read from their printed lines and their run folders
(``outside_timing``); the Keras processes and the ``load_data`` child are the
benchmark's own and write a timing JSON to ``$TUTORIAL_TIMING_JSON``
(``jobs``). It prints a table and the PASS/FAIL of each performance target
(``report``), and writes everything, with a description of the machine
(``machine``), to ``benchmarks/results.json``.

Exit status: 0 when every target passes, 1 when a process failed (or its
timing could not be read), 2 when all ran but a target failed.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from jobs import BENCH_DIR, REPO_ROOT, ROW_TITLES, ROWS, run_job
from machine import machine_info
from make_full_dataset import DEFAULT_CACHE_DIR, write_full_dataset
from report import build_table, check_targets, print_report, summarise

# A 1-minute load average above this, before starting, means other processes
# compete for the 2 cores (a previous run also counts for a minute or so).
BUSY_LOAD_AVERAGE = 1.0


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
            run = run_job(side, row, data_dir, log_dir, name)
            runs[(side, row)].append(run)
            if not run["error"]:
                print(f"{run['wall_seconds']:.1f} s, "
                      f"{run['peak_rss_mb']:.0f} MB")
            elif run["stderr_log"]:
                print(f"{run['error'].upper()} (see {run['stderr_log']})")
            else:
                print(run["error"].upper())
    return runs


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
        "machine": machine_info(REPO_ROOT),
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
