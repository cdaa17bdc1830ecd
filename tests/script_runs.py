"""Runs a script's main() in-process, captures what it prints, and checks it."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys

from tutorial_support import entry_point, progress, training_stops

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the scripts' folder


def run_captured(module, *args):
    """Runs `module.main` with the arguments; returns (exit code, stdout, stderr).

    Works outside a test function too (module-scoped fixtures), where pytest's
    capsys is not available.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = entry_point.run_main(module.main, [module.__name__ + '.py', *args])
    return code, out.getvalue(), err.getvalue()


def finished_run(module, *args):
    """Runs a script that must succeed (exit 0); returns what it printed on stdout."""
    code, out, err = run_captured(module, *args)
    assert code == 0, err
    return out


def run_in_new_folder(tmp_path_factory, name, module, *args):
    """A successful run whose --train_dir is a new temporary folder: (train_dir, stdout)."""
    train_dir = str(tmp_path_factory.mktemp(name))
    return train_dir, finished_run(module, '--train_dir', train_dir, *args)


def assert_user_error(code, err, *phrases):
    """Exit 1 with an 'Error: ...' message holding every phrase, and no traceback."""
    assert code == 1, err
    assert 'Error: ' in err
    assert 'Traceback' not in err
    for phrase in phrases:
        assert phrase in err, (phrase, err)


def line_value(out, prefix):
    """The text after `prefix` on the only line that starts with it."""
    lines = [line for line in out.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return lines[0][len(prefix):]


def start_script(script, *args, **popen_args):
    """Starts a script as a real process, its output unbuffered: the `subprocess.Popen`.

    Ctrl-C and SIGHUP are at their defaults in the child, as in a terminal, even when
    this test run was started as a background job or under `nohup` (which would hand it
    SIGINT or SIGHUP ignored, and the child would keep them ignored).
    """
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        return subprocess.Popen(
            [sys.executable, script, *args], cwd=PROJECT_DIR, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED='1'),
            **{'stdout': subprocess.PIPE, 'stderr': subprocess.PIPE, **popen_args})
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGHUP, previous_hup)


def read_until(stream, prefix):
    """Reads lines until one starts with `prefix`; returns the lines read (it last)."""
    seen = []
    for line in stream:
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f'no line starting with {prefix!r} in:\n' + ''.join(seen))


def kill_if_running(process):
    """Ends a process a test started, if it still runs (a test that failed half-way)."""
    if process.poll() is None:
        process.kill()
        process.wait()


def ctrl_c_after_steps(monkeypatch, steps):
    """Ctrl-C as the given number of training steps has just run (KeyboardInterrupt in check_step).

    Undone by `monkeypatch.undo()` or at the end of the test.
    """
    real_check_step = training_stops.check_step

    def check_step_then_ctrl_c(loss_value, step, *more):
        if step == steps - 1:  # the step-th training step has just run
            raise KeyboardInterrupt
        return real_check_step(loss_value, step, *more)
    monkeypatch.setattr(training_stops, 'check_step', check_step_then_ctrl_c)


def run_tf2_jobs(folder, jobs):
    """Runs jobs of `tests/tf2_worker.py` in one process (eager TensorFlow): their results.

    Args:
        folder: a pathlib.Path for the worker's job and result files.
        jobs: dict of name -> job (see tf2_worker.py).

    Returns:
        dict of name -> the job's result, in the order of `jobs`.
    """
    jobs_path, results_path = folder / 'jobs.json', folder / 'results.json'
    jobs_path.write_text(json.dumps(list(jobs.values())))
    worker = subprocess.run(
        [sys.executable, os.path.join(PROJECT_DIR, 'tests', 'tf2_worker.py'), str(jobs_path),
         str(results_path)], capture_output=True, text=True, timeout=900)
    assert worker.returncode == 0, worker.stderr
    return dict(zip(jobs, json.loads(results_path.read_text()), strict=True))


def record_losses(monkeypatch):
    """Records the loss of every training step, as the runner checks it: {step: loss}.

    (`training_stops.check_step` gets each step's loss; this wraps it.)
    """
    losses = {}
    real_check_step = training_stops.check_step

    def check_step_recording(loss_value, step, *more):
        losses[step] = float(loss_value)
        return real_check_step(loss_value, step, *more)
    monkeypatch.setattr(training_stops, 'check_step', check_step_recording)
    return losses


class RecordedBar(progress.ProgressBar):
    """A progress bar that keeps what it was given: its total, label, updates and last line.

    `monkeypatch.setattr(progress, 'ProgressBar', RecordedBar)`; the bars made since
    are in `RecordedBar.made`, oldest first (cleared by `recording_bars`).
    """

    made = []

    def __init__(self, total, label, **kwargs):
        super().__init__(total, label, **kwargs)
        self.updates, self.summary = [], None
        RecordedBar.made.append(self)

    def update(self, done, suffix=''):
        self.updates.append((done, suffix))
        super().update(done, suffix)

    def close(self, summary=None):
        self.summary = summary
        super().close(summary)


def recording_bars(monkeypatch):
    """Makes every progress bar a RecordedBar; returns the list the bars made go to."""
    RecordedBar.made = []
    monkeypatch.setattr(progress, 'ProgressBar', RecordedBar)
    return RecordedBar.made
