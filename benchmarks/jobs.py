"""The benchmark's jobs: what each process runs and where its timing comes from.

A job is a (side, row) pair: side ``suite`` or ``keras``, row one of ROWS. The
suite's scripts are measured from outside (``outside_timing``); the Keras
equivalents and the ``load_data`` child are the benchmark's own code and write
their timing to the JSON file named by ``$TUTORIAL_TIMING_JSON``.
"""

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import outside_timing
from process_run import run_process

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PYTHON = sys.executable

ROWS = ("softmax", "fc", "cnn", "deep_cnn", "load")
ROW_TITLES = {"softmax": "softmax", "fc": "fc", "cnn": "cnn (1 epoch)",
              "deep_cnn": "deep_cnn (1 epoch)", "load": "load_data"}
SUITE_SCRIPTS = {"softmax": "softmax.py", "fc": "run_fc_model.py",
                 "cnn": "run_cnn_model.py", "deep_cnn": "run_deep_cnn_model.py"}
TRAIN_DIR = "tf_logs"  # the --train_dir of the runners, in the job's temp folder

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
    if row in ("fc", "cnn", "deep_cnn"):
        # Logs and checkpoints go to a throw-away folder, not the repo; the
        # training time is read from the run folder written there.
        command += ["--train_dir", str(Path(work_dir) / TRAIN_DIR)]
    if row in ("cnn", "deep_cnn"):
        command += ["--epochs", "1"]
    return command


def measured_by_itself(side, row):
    """Whether the job's process writes its own timing JSON (the benchmark's code)."""
    return side == "keras" or row == "load"


def read_timing(side, row, run, lines, work_dir, timing_path):
    """The timing of a finished job, as a dict of the timing keys.

    Raises:
        outside_timing.TimingError: when the numbers cannot be read, or are
            implausible for a suite script.
    """
    if measured_by_itself(side, row):
        try:
            return json.loads(timing_path.read_text())
        except (OSError, ValueError):
            raise outside_timing.TimingError(
                "no JSON written to $TUTORIAL_TIMING_JSON") from None
    timing = {"total_seconds": outside_timing.printed_total_seconds(lines)}
    if row == "softmax":
        timing.update(outside_timing.step_line_timing(lines))
    elif row == "deep_cnn":
        timing.update(outside_timing.epoch_line_timing(lines, Path(work_dir) / TRAIN_DIR))
    else:
        timing.update(outside_timing.run_folder_timing(Path(work_dir) / TRAIN_DIR))
    outside_timing.check_plausible(timing, run["wall_seconds"])
    return timing


def test_accuracy(lines):
    """Return the last ``Test accuracy`` a script printed, or None."""
    # softmax.py / run_fc_model.py print "Test accuracy 0.31", the CNN
    # "Test Accuracy: 0.62".
    found = [re.search(r"test accuracy:?\s*([0-9.]+(?:e-?\d+)?)", text,
                       flags=re.IGNORECASE) for _, text in lines]
    found = [match for match in found if match]
    return float(found[-1].group(1)) if found else None


def run_job(side, row, data_dir, log_dir, name):
    """Run one job in a fresh temporary folder and measure it.

    Args:
        side: ``suite`` or ``keras``.
        row: One of ROWS.
        data_dir: Folder with the full-size batch files.
        log_dir: Folder for ``NAME.stdout.log``, ``NAME.stderr.log`` and
            ``NAME.timing.json``.
        name: Base name of the job's files.

    Returns:
        A dict describing the run; ``error`` is None when all went well.
    """
    stdout_path = log_dir / f"{name}.stdout.log"
    stderr_path = log_dir / f"{name}.stderr.log"
    timing_path = log_dir / f"{name}.timing.json"
    timing_path.unlink(missing_ok=True)  # never read a stale file
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env.pop("TUTORIAL_TIMING_JSON", None)  # the suite's scripts get no help
    if measured_by_itself(side, row):
        env["TUTORIAL_TIMING_JSON"] = str(timing_path)

    with tempfile.TemporaryDirectory(prefix="cifar_bench_") as work:
        command = job_command(side, row, data_dir, work)
        if side == "suite" and row != "load" and not Path(command[1]).is_file():
            return {"command": command, "error": "missing",
                    "stdout_log": None, "stderr_log": None}
        run, lines = run_process(command, work, env, stdout_path, stderr_path)
        run.update(error=None, timing=None, test_accuracy=test_accuracy(lines))
        if run["returncode"] != 0:
            run["error"] = f"exit status {run['returncode']}"
            return run
        # Read before the temporary folder, with the run folder, is deleted.
        try:
            run["timing"] = read_timing(side, row, run, lines, work, timing_path)
        except outside_timing.TimingError as error:
            run["error"] = f"no timing: {error}"
    return run
