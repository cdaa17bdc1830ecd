"""Output that nobody can read: a closed, broken or full standard output or error.

Each stream is closed, broken or filled for real, in a real process. None of
them stops training or changes its result: the run goes on to its end (or, on
a stop signal, saves its checkpoint), and a note on the other stream says what
was lost, with exit code 1 instead of 0. Python's "Exception ignored" text and
tracebacks never appear.
"""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from run_folders import checkpoint_path, checkpoint_steps, run_folders
from script_runs import PROJECT_DIR, finished_run, kill_if_running, read_until, start_script

import run_fc_model
from tutorial_support import run_lock

RUN = ['--seed', '7', '--batch_size', '50', '--learning_rate', '0.0001']


@pytest.fixture(scope='module')
def weights_of_a_plain_run(cifar_dir, tmp_path_factory):
    """The final weights of a 300-step run with nothing odd about its output, by step."""
    def weights(steps):
        train_dir = str(tmp_path_factory.mktemp(f'plain{steps}'))
        finished_run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                     '--max_steps', str(steps), *RUN)
        (folder,) = run_folders(train_dir)
        return tf.train.load_checkpoint(checkpoint_path(folder, steps)).get_tensor(
            'Layer1/weights')
    return weights


def assert_same_run(train_dir, steps, weights_of_a_plain_run):
    """One run folder, its checkpoints at step 0 and the last step, no lock, the plain run's
    weights."""
    (folder,) = run_folders(train_dir)
    assert checkpoint_steps(folder) == [0, steps]
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))
    reader = tf.train.load_checkpoint(checkpoint_path(folder, steps))
    np.testing.assert_array_equal(reader.get_tensor('Layer1/weights'),
                                  weights_of_a_plain_run(steps))


def test_closed_stderr_at_start(cifar_dir, tmp_path, weights_of_a_plain_run):
    """Started with `2>&-`: the script works as ever (it once exited 1 without a word)."""
    train_dir = str(tmp_path / 'logs')
    command = [sys.executable, 'run_fc_model.py', '--data_dir', cifar_dir,
               '--train_dir', train_dir, '--max_steps', '300', *RUN]
    result = subprocess.run(['sh', '-c', 'exec "$@" 2>&-', 'sh', *command], cwd=PROJECT_DIR,
                            stdout=subprocess.PIPE, text=True, timeout=300)
    assert result.returncode == 0, result.stdout
    assert 'Test accuracy' in result.stdout and 'Total time' in result.stdout
    assert_same_run(train_dir, 300, weights_of_a_plain_run)


def test_stdout_into_a_pipe_that_closes(cifar_dir, tmp_path, weights_of_a_plain_run):
    """`| head`: the reader goes after Step 100; training goes on to its end, then a note.

    It once abandoned training at the first write after the pipe closed, with exit 0.
    """
    train_dir = str(tmp_path / 'logs')
    process = start_script('run_fc_model.py', '--data_dir', cifar_dir, '--train_dir',
                           train_dir, '--max_steps', '300', *RUN)
    try:
        read_until(process.stdout, 'Step 100,')
        process.stdout.close()  # as `head` does when it has its lines
        err = process.stderr.read()
        process.wait(timeout=300)
    finally:
        kill_if_running(process)
    assert process.returncode == 1, err
    assert 'standard output could not be written (Broken pipe)' in err
    assert 'Exception ignored' not in err and 'Traceback' not in err
    assert_same_run(train_dir, 300, weights_of_a_plain_run)


def test_stdout_on_a_full_disk(cifar_dir, tmp_path, weights_of_a_plain_run):
    """`> /dev/full`: every write fails; the run ends like any other, then a note, exit 1."""
    if not os.path.exists('/dev/full'):
        pytest.skip('no /dev/full here')
    train_dir = str(tmp_path / 'logs')
    with open('/dev/full', 'w') as full:
        process = start_script('run_fc_model.py', '--data_dir', cifar_dir, '--train_dir',
                               train_dir, '--max_steps', '300', *RUN, stdout=full)
        try:
            _, err = process.communicate(timeout=300)
        finally:
            kill_if_running(process)
    assert process.returncode == 1, err
    assert 'standard output could not be written (No space left on device)' in err
    assert 'Exception ignored' not in err and 'Traceback' not in err
    assert_same_run(train_dir, 300, weights_of_a_plain_run)


def test_terminal_closed_sighup_with_both_streams_broken(cifar_dir, tmp_path):
    """A closed terminal: both streams broken, then SIGHUP: a checkpoint, exit 129."""
    train_dir = str(tmp_path / 'logs')
    process = start_script('run_fc_model.py', '--data_dir', cifar_dir, '--train_dir',
                           train_dir, '--max_steps', '200000', *RUN)
    try:
        read_until(process.stdout, 'Step 100,')
        process.stdout.close()
        process.stderr.close()
        process.send_signal(signal.SIGHUP)
        process.wait(timeout=120)
    finally:
        kill_if_running(process)
    assert process.returncode == 129
    (folder,) = run_folders(train_dir)
    (initial, step) = checkpoint_steps(folder)
    assert initial == 0
    assert isinstance(step, int) and step >= 100
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))
