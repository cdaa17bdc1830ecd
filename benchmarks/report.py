"""The results table and the performance targets.

The runs of each job are reduced to one summary (median times, highest peak
memory), the targets are checked on the summaries, and the table is built and
printed from them.
"""

import operator
import statistics

from jobs import ROW_TITLES

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
    ("deep CNN train seconds per epoch <= 0.8 x Keras",
     ("suite", "deep_cnn"), "train_seconds", "<=", ("keras", "deep_cnn"), 0.8),
    ("load_data < 2 s",
     ("suite", "load"), "load_seconds", "<", None, 2.0),
)
OPERATORS = {"<=": operator.le, "<": operator.lt}


def summarise(runs):
    """Reduce the runs of one job: median times, highest peak memory.

    Args:
        runs: The dicts of ``jobs.run_job`` for one job (one per repeat).

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
    """Short table cell for a job that did not run to the end, or was not timed."""
    if status.startswith("no timing"):
        return "NO TIMING"
    return "MISSING" if status == "missing" else "FAILED"


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
        # Training time per step, suite / Keras: the ratio of the training
        # times where both make the same steps (softmax.py is timed over 900
        # of its 1,000 steps, Keras over all 1,000).
        record["train_seconds_ratio"] = _ratio(record["keras_steps_per_s"],
                                               record["suite_steps_per_s"])
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
