"""Signals that end a run: Ctrl-C (SIGINT), SIGTERM (timeout, kill, docker stop), SIGHUP.

Each is sent for real. A run ends the same way whichever it was: the step in
progress finishes, a checkpoint of it is saved, the message names the signal
and the checkpoint and gives a command that resumes (one a shell takes
whatever the path holds), the lock is released, and the exit code is 128 +
the signal's number. Whatever a message says was saved is checked on disk.
"""

import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
import tensorflow.compat.v1 as tf
from run_folders import checkpoint_path, checkpoint_steps, run_folders
from script_runs import PROJECT_DIR, kill_if_running, read_until, start_script

import data_helpers
import restore_model
import run_fc_model
import softmax
from tutorial_support import (
    checkpoints,
    entry_point,
    output_streams,
    quiet_tensorflow,
    run_lock,
    stop_signals,
)

# A folder name a shell would split, quote or expand, were it pasted unquoted
ODD_NAME = "logs with 'quotes' $HOME"


def saved_checkpoint(err):
    """The checkpoint a stop message says was saved, and its step."""
    match = re.search(r'Saved checkpoint (.+model\.ckpt-(\d+))\. ', err)
    assert match, err
    return match.group(1), int(match.group(2))


def resume_arguments(err):
    """The resume command of a stop message, split as a POSIX shell splits it."""
    match = re.search(r'To continue where it stopped, run: (.*?)(?: \(A further|$)', err,
                      re.DOTALL)
    assert match, err
    return shlex.split(match.group(1).strip())


@pytest.mark.parametrize('signal_number, name', [
    (signal.SIGINT, 'Ctrl-C (SIGINT)'), (signal.SIGTERM, 'SIGTERM'), (signal.SIGHUP, 'SIGHUP')])
def test_signal_saves_a_checkpoint_and_says_how_to_resume(signal_number, name, cifar_dir,
                                                          tmp_path, run):
    """A real signal to a real run: a checkpoint, the signal named, a resume command, 128+n."""
    train_dir = str(tmp_path / ODD_NAME)
    process = start_script('run_fc_model.py', '--data_dir', cifar_dir, '--train_dir',
                           train_dir, '--seed', '3', '--max_steps', '200000', '--batch_size', '50')
    try:
        read_until(process.stdout, 'Step 100,')
        process.send_signal(signal_number)
        rest, err = process.communicate(timeout=120)
    finally:
        kill_if_running(process)
    assert process.returncode == 128 + signal_number, err
    assert 'Traceback' not in err and 'Total time' not in rest
    assert f'by {name}' in err
    checkpoint, step = saved_checkpoint(err)
    assert step >= 100
    assert f'Training interrupted at step {step} by' in err
    (folder,) = run_folders(train_dir)
    assert checkpoint == checkpoint_path(folder, step)
    assert checkpoint_steps(folder) == [0, step]
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))
    assert resume_arguments(err) == ['python', 'run_fc_model.py', '--train_dir', train_dir,
                                     '--data_dir', cifar_dir, '--resume']
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert f'Current step: {step}' in out.splitlines()


def test_sigterm_stops_the_cnn_with_a_checkpoint(cifar_dir, tmp_path):
    """SIGTERM to run_cnn_model.py mid-run: the current step's checkpoint, exit 143."""
    train_dir = str(tmp_path / 'logs')
    process = start_script('run_cnn_model.py', '--data_dir', cifar_dir, '--train_dir',
                           train_dir, '--seed', '3', '--epochs', '100000', '--batch_size', '50')
    try:
        read_until(process.stdout, 'Cost after epoch 0:')
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        kill_if_running(process)
    assert process.returncode == 143, err
    assert 'by SIGTERM' in err and 'Traceback' not in err
    checkpoint, step = saved_checkpoint(err)
    assert step >= 10  # 10 steps an epoch
    (folder,) = run_folders(train_dir)
    assert checkpoints.is_complete(checkpoint) and step in checkpoint_steps(folder)
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))
    assert resume_arguments(err)[:2] == ['python', 'run_cnn_model.py']


def test_sigterm_stops_the_tf2_twin_with_a_tf2_checkpoint(cifar_dir, tmp_path):
    """SIGTERM to tf2/run_fc_model.py mid-run: as the TF1 runner, a TF2 checkpoint of the
    step (complete, the CheckpointManager's latest), the resume command, exit 143, no lock."""
    train_dir = str(tmp_path / ODD_NAME)
    process = start_script('tf2/run_fc_model.py', '--data_dir', cifar_dir, '--train_dir',
                           train_dir, '--seed', '3', '--max_steps', '200000', '--batch_size', '50')
    try:
        read_until(process.stdout, 'Step 100,')
        process.send_signal(signal.SIGTERM)
        rest, err = process.communicate(timeout=120)
    finally:
        kill_if_running(process)
    assert process.returncode == 143, err
    assert 'Traceback' not in err and 'Total time' not in rest
    match = re.search(r'Training interrupted at step (\d+) by SIGTERM \(a request to stop\)\. '
                      r'Saved checkpoint (.+)\. To continue', err)
    assert match, err
    step, checkpoint = int(match.group(1)), match.group(2)
    (folder,) = run_folders(train_dir)
    assert step >= 100 and checkpoint == os.path.join(folder, 'tf2_checkpoints', f'ckpt-{step}')
    assert checkpoints.is_complete(checkpoint)
    assert tf.train.latest_checkpoint(os.path.join(folder, 'tf2_checkpoints')) == checkpoint
    assert tf.train.load_checkpoint(checkpoint).get_tensor(
        'optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE') == step
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))
    assert resume_arguments(err) == ['python', 'tf2/run_fc_model.py', '--train_dir', train_dir,
                                     '--data_dir', cifar_dir, '--resume']


def catches(pid, signal_number):
    """Whether a process has a handler of its own for a signal (Linux: /proc/PID/status)."""
    with open(f'/proc/{pid}/status') as f:
        caught = next(int(line.split()[1], 16) for line in f if line.startswith('SigCgt:'))
    return bool(caught >> (signal_number - 1) & 1)


@pytest.mark.skipif(not os.path.exists('/proc/self/status'), reason='needs /proc (Linux)')
def test_sigterm_while_the_script_starts(cifar_dir, tmp_path):
    """SIGTERM as soon as the script handles it, seconds before TensorFlow is loaded: once
    loaded, the script stops with a line and exit 143; nothing is written."""
    train_dir = str(tmp_path / 'logs')
    process = start_script('run_fc_model.py', '--data_dir', cifar_dir, '--train_dir',
                           train_dir, '--max_steps', '100', '--batch_size', '50')
    try:
        deadline = time.monotonic() + 30
        while not catches(process.pid, signal.SIGTERM) and time.monotonic() < deadline:
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        kill_if_running(process)
    assert process.returncode == 143, err
    assert 'Stopped by SIGTERM (a request to stop). Nothing was saved on the way out.' in err
    assert 'Traceback' not in err and 'Parameters:' not in out
    assert not os.path.exists(train_dir)


@pytest.fixture
def signals_at_default():
    """Ctrl-C and SIGTERM at their defaults, as in a terminal, whatever this test run inherited."""
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    for number, handler in previous.items():
        signal.signal(number, handler)


def train_steps_signalling(monkeypatch, signals_by_step):
    """Makes tf.Session.run send real signals as given training steps begin."""
    real_run = tf.Session.run
    train_steps = []

    def run_sending_signals(self, fetches, *args, **kwargs):
        if isinstance(fetches, list) and isinstance(fetches[0], tf.Operation):  # a train step
            train_steps.append(len(train_steps))
            for number in signals_by_step.get(len(train_steps), ()):
                signal.raise_signal(number)
        return real_run(self, fetches, *args, **kwargs)

    monkeypatch.setattr(tf.Session, 'run', run_sending_signals)


def test_signal_inside_sess_run_lets_the_step_finish(run, cifar_dir, tmp_path, monkeypatch,
                                                     signals_at_default):
    """SIGTERM as the 30th step's sess.run begins: that step finishes, then the save.

    Stopping inside TensorFlow's sess.run could leave a lock taken, and the
    save would then wait for ever: the checkpoint holds 30 steps, not 29.
    """
    train_steps_signalling(monkeypatch, {30: [signal.SIGTERM]})
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--seed', '4', '--max_steps', '200', '--batch_size', '50')
    assert code == 143, err
    assert 'Training interrupted at step 30 by SIGTERM' in err and 'Traceback' not in err
    (folder,) = run_folders(train_dir)
    assert checkpoint_steps(folder) == [0, 30]
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))


def test_second_signal_during_the_save_lets_it_finish(run, cifar_dir, tmp_path, monkeypatch,
                                                      signals_at_default):
    """Ctrl-C, then another Ctrl-C while the checkpoint is being saved: the save completes,
    and the message says so, true to the files (two quick Ctrl-C once said "nothing was
    saved" while a checkpoint was written)."""
    train_steps_signalling(monkeypatch, {30: [signal.SIGINT]})
    real_save = tf.train.Saver.save
    saves = []

    def save_meeting_a_second_ctrl_c(self, *args, **kwargs):
        saves.append(args)
        if len(saves) > 1:  # not the save of step 0, before training
            signal.raise_signal(signal.SIGINT)
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(tf.train.Saver, 'save', save_meeting_a_second_ctrl_c)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--seed', '4', '--max_steps', '200', '--batch_size', '50')
    assert code == 130, err
    assert 'nothing was saved' not in err and 'No checkpoint' not in err
    assert 'A further Ctrl-C (SIGINT) during the save waited for it to finish' in err
    (folder,) = run_folders(train_dir)
    checkpoint, step = saved_checkpoint(err)
    assert (checkpoint, step) == (checkpoint_path(folder, 30), 30)
    assert checkpoint_steps(folder) == [0, 30]
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))


def test_second_signal_before_the_save_stops_at_once_and_says_what_is_kept(
        run, cifar_dir, tmp_path, monkeypatch, signals_at_default):
    """SIGTERM, then Ctrl-C within the same step: no save; the message names the last
    checkpoint on disk (the one of step 100), which --resume continues from."""
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--seed', '4', '--max_steps', '100', '--batch_size', '50')
    assert code == 0, err  # a first run of 100 steps: a checkpoint at 100
    train_steps_signalling(monkeypatch, {30: [signal.SIGTERM, signal.SIGINT]})
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume', '--max_steps', '200')
    (folder,) = run_folders(train_dir)
    assert code == 143, err
    assert 'Traceback' not in err and 'Saved checkpoint' not in err
    assert 'stopped at once by a second signal after SIGTERM' in err
    assert f'The last checkpoint saved, {checkpoint_path(folder, 100)}, is intact' in err
    assert '--resume' in err and 'disk space' not in err  # nothing failed to be written
    assert checkpoint_steps(folder) == [0, 100]
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))


def test_softmax_ends_on_sigterm_with_a_message(run, cifar_dir, monkeypatch,
                                                signals_at_default):
    """softmax.py saves no checkpoints: SIGTERM ends it with a message and exit 143."""
    train_steps_signalling(monkeypatch, {50: [signal.SIGTERM]})
    code, out, err = run(softmax, '--data_dir', cifar_dir, '--max_steps', '300',
                         '--batch_size', '50')
    assert code == 143, err
    assert 'Stopped by SIGTERM (a request to stop). Nothing was saved on the way out.' in err
    assert 'Traceback' not in err and 'Test accuracy' not in out


def test_sighup_ignored_when_started_stays_ignored(run, cifar_dir, tmp_path, monkeypatch,
                                                   signals_at_default):
    """Started under `nohup` (SIGHUP ignored): closing the terminal does not stop the run."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        train_steps_signalling(monkeypatch, {30: [signal.SIGHUP]})
        train_dir = str(tmp_path / 'logs')
        code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                             '--max_steps', '100', '--batch_size', '50')
        assert code == 0, err
        assert checkpoint_steps(run_folders(train_dir)[0]) == [0, 100]
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_signal_while_the_stopped_run_closes_its_files(run, cifar_dir, tmp_path, monkeypatch,
                                                       signals_at_default):
    """SIGTERM, then Ctrl-C while the summary files close after the save: the run still ends
    on the first signal, and says what it saved (the files' closing is not cut short)."""
    train_steps_signalling(monkeypatch, {30: [signal.SIGTERM]})
    real_close = tf.summary.FileWriter.close
    sent = []

    def close_meeting_ctrl_c(self):
        if not sent:
            sent.append(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return real_close(self)

    monkeypatch.setattr(tf.summary.FileWriter, 'close', close_meeting_ctrl_c)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--max_steps', '200', '--batch_size', '50')
    assert sent and code == 143, err
    assert 'Training interrupted at step 30 by SIGTERM' in err and 'Traceback' not in err
    (folder,) = run_folders(train_dir)
    assert saved_checkpoint(err) == (checkpoint_path(folder, 30), 30)
    assert checkpoint_steps(folder) == [0, 30]


def test_signal_while_the_data_loads_stops_at_once(run, cifar_dir, tmp_path, monkeypatch,
                                                   signals_at_default):
    """SIGTERM while CIFAR-10 loads (before training): the script stops there, exit 143."""
    real_load_data = data_helpers.load_data

    def load_data_meeting_sigterm(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)
        return real_load_data(*args, **kwargs)

    monkeypatch.setattr(data_helpers, 'load_data', load_data_meeting_sigterm)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--max_steps', '100', '--batch_size', '50')
    assert code == 143, err
    assert 'Stopped by SIGTERM (a request to stop). Nothing was saved on the way out.' in err
    assert 'Step' not in out and not os.path.exists(train_dir)


def test_a_script_ending_on_a_signal_ignores_further_ones(cifar_dir, monkeypatch, capsys,
                                                          signals_at_default):
    """`python softmax.py` ended by SIGTERM: a Ctrl-C in its last moments changes nothing.

    Its message is printed and its exit code is 143; the script runs here as a
    script runs (run_main reading sys.argv), and the Ctrl-C comes as run_main
    finishes.
    """
    monkeypatch.setattr(sys, 'argv', ['softmax.py', '--data_dir', cifar_dir, '--max_steps',
                                      '300', '--batch_size', '50'])
    monkeypatch.setattr(stop_signals, '_ignoring_until_exit', False)  # as it was, afterwards
    train_steps_signalling(monkeypatch, {50: [signal.SIGTERM]})
    real_report = output_streams.report_lost_output

    def report_meeting_ctrl_c(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return real_report(*args, **kwargs)

    monkeypatch.setattr(output_streams, 'report_lost_output', report_meeting_ctrl_c)
    sighup = signal.getsignal(signal.SIGHUP)
    try:
        code = entry_point.run_main(softmax.main)
        # until the process exits (files closing, TensorFlow's shutdown), signals are ignored
        ignored = [signal.getsignal(number) == signal.SIG_IGN
                   for number in (signal.SIGINT, signal.SIGTERM)]
    except KeyboardInterrupt:
        code, ignored = 'the Ctrl-C was not ignored', []
    finally:  # this process goes on: the handlers as they were
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, sighup)
    assert code == 143
    assert ignored == [True, True]
    assert 'Stopped by SIGTERM (a request to stop).' in capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists('/proc/self/status'), reason='needs /proc (Linux)')
def test_sigterm_while_a_program_imports_a_lesson(tmp_path):
    """A program that imports a lesson (a notebook's kernel, say) gets SIGTERM while
    TensorFlow loads: one line and exit 143, no traceback."""
    process = subprocess.Popen([sys.executable, '-c', 'import run_fc_model'], cwd=PROJECT_DIR,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not catches(process.pid, signal.SIGTERM) and time.monotonic() < deadline:
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        kill_if_running(process)
    assert process.returncode == 143, err
    assert err.strip() == ('Stopped by SIGTERM (a request to stop) while starting, before '
                           'anything was done.')


def test_signal_after_tensorflow_loads_and_before_main_stops_the_script(monkeypatch, capsys,
                                                                       signals_at_default):
    """SIGTERM once TensorFlow has loaded, before main() begins (while the script defines
    its flags, say): noted, and the script stops as main() would begin, exit 143.

    The script's start is played here in-process: what its first import does
    (`note_until_main`), the signal, then `run_main`.
    """
    monkeypatch.setattr(stop_signals, '_waiting_for_main', False)  # as it was, afterwards
    sighup = signal.getsignal(signal.SIGHUP)
    ran = []
    try:
        stop_signals.note_until_main()
        assert catches(os.getpid(), signal.SIGTERM)  # else the signal would end this test run
        signal.raise_signal(signal.SIGTERM)
        code = entry_point.run_main(ran.append, ['script.py'])
    finally:  # this process goes on: the handlers as they were
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, sighup)
    assert code == 143 and ran == []
    assert capsys.readouterr().err.strip() == ('Stopped by SIGTERM (a request to stop). '
                                               'Nothing was saved on the way out.')


def test_a_program_stopped_while_tensorflow_loads_ignores_further_signals(monkeypatch, capsys,
                                                                          signals_at_default):
    """A program that imports a lesson, stopped by SIGTERM during TensorFlow's import: its
    line and exit 143, and a Ctrl-C or SIGTERM while it exits changes nothing.

    The import is played here in-process: TensorFlow's import meets SIGTERM.
    """
    monkeypatch.setattr(stop_signals, '_ignoring_until_exit', False)  # as it was, afterwards

    def import_meeting_sigterm():
        signal.raise_signal(signal.SIGTERM)
        time.sleep(1)  # the import goes on; the signal's handler acts at once
    monkeypatch.setattr(quiet_tensorflow, '_import_tensorflow_quietly', import_meeting_sigterm)
    sighup = signal.getsignal(signal.SIGHUP)
    try:
        with pytest.raises(SystemExit) as stop:
            quiet_tensorflow._import_tensorflow_or_stop()
        # until the process exits, signals are ignored
        ignored = [signal.getsignal(number) == signal.SIG_IGN
                   for number in (signal.SIGINT, signal.SIGTERM)]
    finally:  # this process goes on: the handlers as they were
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, sighup)
    assert stop.value.code == 143
    assert ignored == [True, True]
    assert capsys.readouterr().err.strip() == ('Stopped by SIGTERM (a request to stop) while '
                                               'starting, before anything was done.')


@pytest.mark.parametrize('lost', ['data', 'a shard of two'])
def test_a_stop_whose_checkpoint_is_not_all_on_disk_says_so(run, cifar_dir, tmp_path,
                                                            monkeypatch, signals_at_default, lost):
    """Ctrl-C, and the checkpoint it saves is not all on disk afterwards (its data file
    gone, or one shard of two there): the message claims neither that it was saved nor
    that none was."""
    train_steps_signalling(monkeypatch, {30: [signal.SIGINT]})
    real_save = tf.train.Saver.save

    def save_losing_a_file(self, *args, **kwargs):
        path = real_save(self, *args, **kwargs)
        if path.endswith('-30'):
            data = path + '.data-00000-of-00001'
            if lost == 'data':
                os.remove(data)
            else:
                os.rename(data, path + '.data-00000-of-00002')
        return path

    monkeypatch.setattr(tf.train.Saver, 'save', save_losing_a_file)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--max_steps', '100', '--batch_size', '50')
    assert code == 130, err
    (folder,) = run_folders(train_dir)
    assert (f'Training interrupted at step 30 by Ctrl-C (SIGINT). Its newest checkpoint, '
            f'{checkpoint_path(folder, 30)}, is not complete on disk, so the run cannot be '
            'continued: start it again.') in err
    # one was saved, only not all of it is there: not "no checkpoint had been saved"
    assert 'had been saved' not in err
    assert 'Saved checkpoint' not in err and 'Traceback' not in err
