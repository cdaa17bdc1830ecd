"""Read a suite script's timing from outside: its printed lines and its run folder.

The suite's scripts do nothing for the benchmark, so their training time is
read from what they do anyway:

- ``Total time: 12.34s``, the last line every script prints: the seconds from
  the start of its ``main`` to its end.
- ``softmax.py`` prints ``Step     0: training accuracy ...`` every 100 steps,
  before the training step of that number. The benchmark timestamps each line
  as it arrives through a pipe, so the time between the ``Step 0`` line and the
  last step line is the training of the steps between them (900 of the 1,000).
- ``run_fc_model.py`` and ``run_cnn_model.py`` write a run folder
  ``TRAIN_DIR/<date>-<time>_<model>...``. Its TensorBoard event file holds the
  summary of step 0, written (with the event's ``wall_time``) just before the
  first training step; the newest checkpoint ``checkpoints/model.ckpt-N.index``
  is written right after the last training step, and N is the global step. So
  training took ``mtime(model.ckpt-N.index) - wall_time`` for N steps.
- ``run_deep_cnn_model.py`` prints each epoch's training time at the end of
  its line, ``Cost after epoch 0: ... (41.2s)``: from the start of the epoch's
  loop to its last step, before its checkpoint and evaluation; its newest
  checkpoint's N is the number of steps.

Every function returns a dict of timing keys, or raises ``TimingError`` saying
what was missing; nothing is guessed.
"""

import re
import struct
from pathlib import Path

from tensorboard.compat.proto import event_pb2

TOTAL_TIME = re.compile(r"^Total time:\s*([0-9.]+)s\s*$")
EPOCH_LINE = re.compile(r"^Cost after epoch \d+: .* \(([0-9.]+)s\)$")
SOFTMAX_STEP = re.compile(r"^Step\s+(\d+): training accuracy")
CHECKPOINT_INDEX = re.compile(r"^model\.ckpt-(\d+)\.index$")
CHECKPOINT_FOLDER = "checkpoints"  # tutorial_support.run_dirs.CHECKPOINT_FOLDER
# The printed Total time has two decimals: allow for its rounding.
ROUNDING_SECONDS = 0.01


class TimingError(Exception):
    """The timing could not be read from what the script left behind."""


def printed_total_seconds(lines):
    """The seconds of the last ``Total time: 12.34s`` line.

    Args:
        lines: The child's stdout as (arrival seconds, text) pairs.
    """
    found = [float(match.group(1)) for _, text in lines
             if (match := TOTAL_TIME.match(text))]
    if not found:
        raise TimingError("no 'Total time' line")
    return found[-1]


def step_line_timing(lines):
    """Training time of softmax.py from the arrival times of its step lines.

    Args:
        lines: The child's stdout as (arrival seconds, text) pairs.

    Returns:
        ``train_seconds`` between the ``Step 0`` line and the last step line,
        ``train_steps`` the difference of their step numbers.
    """
    steps = [(int(match.group(1)), arrival) for arrival, text in lines
             if (match := SOFTMAX_STEP.match(text))]
    if len(steps) < 2 or steps[0][0] != 0:
        raise TimingError("fewer than two 'Step N: training accuracy' lines")
    (first_step, first_time), (last_step, last_time) = steps[0], steps[-1]
    return {"train_seconds": last_time - first_time,
            "train_steps": last_step - first_step,
            "timed_between": f"'Step {first_step}' and 'Step {last_step}' lines"}


def tfrecords(path):
    """Yield the records of a TFRecord file (the CRCs are not checked).

    Each record is a little-endian uint64 length, a uint32 CRC of the length,
    the data and a uint32 CRC of the data. A truncated last record ends it.
    """
    with open(path, "rb") as file:
        while len(header := file.read(12)) == 12:
            (length,) = struct.unpack("<Q", header[:8])
            data = file.read(length)
            if len(data) < length or len(file.read(4)) < 4:
                return
            yield data


def step_zero_wall_time(event_file):
    """``wall_time`` of the summary written just before the first training step.

    That is the last summary event at step 0 before the first event of a later
    step. (The hyper-parameter summary is also at step 0, but it comes earlier:
    before the batches are started and step 0's own summary is computed.)
    """
    wall_time = None
    for record in tfrecords(event_file):
        event = event_pb2.Event.FromString(record)
        if event.step > 0:
            break
        if event.HasField("summary"):
            wall_time = event.wall_time
    if wall_time is None:
        raise TimingError(f"no summary at step 0 in {event_file.name}")
    return wall_time


def the_one(paths, what):
    """The single path of a list, or TimingError."""
    if len(paths) != 1:
        raise TimingError(f"{len(paths)} {what} instead of one")
    return paths[0]


def run_folder_timing(train_dir):
    """Training time of run_fc_model.py or run_cnn_model.py from its run folder.

    Args:
        train_dir: The ``--train_dir`` given to the script, holding one run.

    Returns:
        ``train_seconds``: mtime of the newest ``model.ckpt-N.index`` minus the
        wall time of the step-0 summary; ``train_steps``: N; and where each
        number came from.
    """
    train_dir = Path(train_dir)
    folders = sorted(p for p in train_dir.iterdir() if p.is_dir()) if train_dir.is_dir() else []
    run_dir = the_one(folders, f"run folders in {train_dir}")
    event_file = the_one(sorted(run_dir.glob("events.out.tfevents.*")),
                         f"event files in {run_dir.name}")
    start = step_zero_wall_time(event_file)

    checkpoints = [(int(match.group(1)), path)
                   for path in (run_dir / CHECKPOINT_FOLDER).glob("model.ckpt-*.index")
                   if (match := CHECKPOINT_INDEX.match(path.name))]
    if not checkpoints:
        raise TimingError(f"no checkpoint in {run_dir.name}/{CHECKPOINT_FOLDER}")
    steps, newest = max(checkpoints)
    end = newest.stat().st_mtime_ns / 1e9
    return {"train_seconds": end - start, "train_steps": steps,
            "run_folder": run_dir.name, "event_file": event_file.name,
            "step_0_summary_wall_time": start, "checkpoint": newest.name,
            "checkpoint_mtime": end}


def epoch_line_timing(lines, train_dir):
    """Training time of run_deep_cnn_model.py: its printed epoch times, and its steps.

    Args:
        lines: The child's stdout as (arrival seconds, text) pairs.
        train_dir: The ``--train_dir`` given to the script, holding one run.
    """
    seconds = [float(match.group(1)) for _, text in lines if (match := EPOCH_LINE.match(text))]
    if not seconds:
        raise TimingError("no 'Cost after epoch ... (N s)' line")
    steps = run_folder_timing(train_dir)["train_steps"]
    return {"train_seconds": sum(seconds), "train_steps": steps, "epoch_seconds": seconds}


def check_plausible(timing, wall_seconds):
    """Raise TimingError unless 0 < train_seconds <= total_seconds <= wall.

    The printed total runs from the start of the script's ``main`` to its last
    line, inside the process the benchmark timed; the training is inside both.
    """
    train, total = timing.get("train_seconds"), timing.get("total_seconds")
    if not timing.get("train_steps") or train is None or train <= 0:
        raise TimingError(f"implausible: {timing.get('train_steps')} steps "
                          f"in {train} s")
    if total is not None and not train <= total + ROUNDING_SECONDS:
        raise TimingError(f"implausible: training {train:.2f} s longer than "
                          f"the printed total {total:.2f} s")
    if total is not None and not total <= wall_seconds + ROUNDING_SECONDS:
        raise TimingError(f"implausible: printed total {total:.2f} s longer "
                          f"than the process's wall {wall_seconds:.2f} s")
