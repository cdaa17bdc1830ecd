"""Every bad input gets a clear error, and nothing a user made is lost.

Each test checks the exit code, the message on stderr (no traceback) and the
files left behind: bad flags, checkpoints that do not fit, damaged files,
diverging training, Ctrl-C and resuming, unwritable folders, a full disk,
runs started at once, and own images that cannot be read.
"""

import errno
import glob
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import types
import zlib

import cifar_files
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image
from script_runs import run_captured
from tensorflow.python.summary.writer import event_file_writer

import data_helpers
import restore_model
import run_cnn_model
import run_fc_model
import softmax
from tutorial_support import cifar10_download, quiet_tensorflow, run_dirs, run_lock, training_stops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_EVENTS_WRITER = event_file_writer._pywrap_events_writer.EventsWriter


def assert_user_error(code, err, *phrases):
    """Exit 1 with an 'Error: ...' message holding every phrase, and no traceback."""
    assert code == 1, err
    assert 'Error: ' in err
    assert 'Traceback' not in err
    for phrase in phrases:
        assert phrase in err, (phrase, err)


def run_folders(train_dir):
    """The run folders inside train_dir (none when it does not exist)."""
    if not os.path.isdir(train_dir):
        return []
    return sorted(os.path.join(train_dir, name) for name in os.listdir(train_dir)
                  if os.path.isdir(os.path.join(train_dir, name)))


def checkpoint_path(folder, step):
    """Where a run folder's checkpoint of a step is: checkpoints/model.ckpt-STEP."""
    return os.path.join(folder, 'checkpoints', f'model.ckpt-{step}')


def checkpoint_steps(folder):
    """The steps of the checkpoint files (any of .index, .data-*, .meta) in a folder."""
    names = glob.glob(os.path.join(folder, 'checkpoints', 'model.ckpt-*'))
    return sorted({int(re.search(r'model\.ckpt-(\d+)\.', name).group(1)) for name in names})


def files_of(folder):
    """Every file below a folder with its size and modification time."""
    found = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            found[path] = (os.path.getsize(path), os.path.getmtime(path))
    return found


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """A --data_dir that does not exist; fetching it fails at once, without a network."""
    monkeypatch.setattr(cifar10_download, 'CIFAR10_URL', 'file:///nonexistent/cifar-10.tar.gz')
    return str(tmp_path / 'no-data' / 'cifar-10-batches-py')


@pytest.fixture(scope='module')
def fc_checkpoint(cifar_dir, tmp_path_factory):
    """A train_dir with a short run_fc_model run (default hidden1=120)."""
    train_dir = str(tmp_path_factory.mktemp('fc'))
    code, _, err = run_captured(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                                '--max_steps', '20', '--batch_size', '50', '--seed', '1')
    assert code == 0, err
    return train_dir


# ---------------------------------------------------------------------------
# Flags: checked before any data is loaded
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('module, args, phrase', [
    (run_fc_model, ['--batch_size', '0'], '--batch_size is 0; it must be greater than 0'),
    (run_fc_model, ['--max_steps', '-3'], '--max_steps is -3; it must be greater than 0'),
    (run_fc_model, ['--hidden1', '0'], '--hidden1 is 0; it must be greater than 0'),
    (run_fc_model, ['--hidden1', '10000000000'], 'it can be at most 100,000'),
    (run_fc_model, ['--learning_rate', '0'], '--learning_rate is 0.0; it must be greater than 0'),
    (run_fc_model, ['--learning_rate', 'nan'], '--learning_rate is nan; it must be a finite'),
    (run_fc_model, ['--learning_rate', '1e-300'], '--learning_rate is 1e-300; that is 0 as'),
    (softmax, ['--learning_rate', '1e-46'], 'use at least 1e-38'),
    (run_fc_model, ['--reg_constant', '-0.5'], '--reg_constant is -0.5; it must be 0 or more'),
    (run_cnn_model, ['--epochs', '0'], '--epochs is 0; it must be greater than 0'),
    (run_cnn_model, ['--dropout_rate', '1'],
     '--dropout_rate is 1.0; it must be at least 0 and below 1'),
    (run_cnn_model, ['--dropout_rate', '-0.1'],
     '--dropout_rate is -0.1; it must be at least 0 and below 1'),
    (softmax, ['--batch_size', '0'], '--batch_size is 0; it must be greater than 0'),
])
def test_bad_flag_values_are_refused_before_loading_data(run, no_data, tmp_path, module, args,
                                                         phrase):
    """Exit 1 naming the flag and the rule; no data fetched, no run folder made."""
    train_dir = str(tmp_path / 'logs')
    extra = [] if module is softmax else ['--train_dir', train_dir]
    code, out, err = run(module, '--data_dir', no_data, *extra, *args)
    assert_user_error(code, err, phrase)
    assert 'Step' not in out
    assert not os.path.exists(os.path.dirname(no_data))  # no attempt to fetch the data
    assert not os.path.exists(train_dir)


def test_unknown_flag_lists_the_known_ones(run, no_data, tmp_path):
    """A typo (--hidden for --hidden1): the message names it and lists the flags."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', no_data, '--train_dir', train_dir,
                       '--hidden', '5')
    assert_user_error(code, err, "'hidden'", 'Known flags', '--hidden1', '--batch_size',
                      '--learning_rate')
    assert not os.path.exists(os.path.dirname(no_data))
    assert not os.path.exists(train_dir)


def test_batch_larger_than_training_set(run, cifar_dir, tmp_path):
    """--batch_size 501 with 500 training images: a clear message, no run folder."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--batch_size', '501')
    assert_user_error(code, err, '--batch_size 501', '500 images')
    assert run_folders(train_dir) == []


# ---------------------------------------------------------------------------
# restore_model.py: checkpoints that are missing, do not fit or are damaged
# ---------------------------------------------------------------------------

def test_restore_without_checkpoint(run, cifar_dir, tmp_path):
    """An empty train_dir: the message says there is no checkpoint and what to do."""
    code, out, err = run(restore_model, '--train_dir', str(tmp_path), '--data_dir', cifar_dir)
    assert_user_error(code, err, f'no checkpoint in {tmp_path}', 'Train a model first',
                      '--train_dir')
    assert 'Test accuracy' not in out


def test_restore_with_other_hidden1(run, cifar_dir, tmp_path):
    """Trained with --hidden1 20, restored with the default 120: says what it found."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--hidden1', '20', '--max_steps', '10', '--batch_size', '50')
    assert code == 0, err
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert_user_error(code, err, 'hidden1=20', 'hidden1=120', 'Pass the flags')
    assert '[3072, 20]' in err and '[3072, 120]' in err
    assert 'Test accuracy' not in out
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir,
                         '--hidden1', '20')
    assert code == 0, err
    assert 'Current step: 10' in out.splitlines()


def test_restore_cnn_checkpoint_as_fc(run, cifar_dir, tmp_path):
    """A CNN checkpoint with --model fc: the message names both models."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_cnn_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--epochs', '1', '--batch_size', '100')
    assert code == 0, err
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir,
                         '--model', 'fc')
    assert_user_error(code, err, 'convolutional network', '--model fc', 'two-layer network')
    assert 'Test accuracy' not in out


@pytest.mark.parametrize('damaged', ['.data-00000-of-00001', '.index'])
def test_restore_damaged_checkpoint(run, cifar_dir, tmp_path, damaged):
    """Junk bytes in a checkpoint file: a clear error naming it; the files are kept."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--max_steps', '20', '--batch_size', '50', '--seed', '1')
    assert code == 0, err
    (folder,) = run_folders(train_dir)
    prefix = os.path.join(folder, 'checkpoints', 'model.ckpt-20')
    with open(prefix + damaged, 'wb') as f:
        f.write(b'this is not a checkpoint' * 7)
    before = files_of(train_dir)
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert_user_error(code, err, prefix, 'damaged')
    assert 'Test accuracy' not in out
    assert files_of(train_dir) == before


def test_moved_train_dir_restores_its_own_checkpoint(run, cifar_dir, fc_checkpoint, tmp_path):
    """A train_dir copied elsewhere and then moved restores from its new place.

    The copy's checkpoint is damaged on purpose: restoring it must fail, which
    shows that the copy, and not the original it came from, is read.
    """
    copy = str(tmp_path / 'copy')
    shutil.copytree(fc_checkpoint, copy)
    moved = str(tmp_path / 'moved')
    os.rename(copy, moved)
    code, out, err = run(restore_model, '--train_dir', moved, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Current step: 20' in out.splitlines()
    (folder,) = run_folders(moved)
    with open(os.path.join(folder, 'checkpoints', 'model.ckpt-20.index'), 'wb') as f:
        f.write(b'junk')
    code, out, err = run(restore_model, '--train_dir', moved, '--data_dir', cifar_dir)
    assert_user_error(code, err, os.path.join(folder, 'checkpoints', 'model.ckpt-20'), 'damaged')


# ---------------------------------------------------------------------------
# Training that goes wrong
# ---------------------------------------------------------------------------

def test_diverging_loss_stops_without_saving(run, cifar_dir, tmp_path):
    """A huge learning rate: the loss becomes nan/inf; the run stops, saves nothing."""
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--learning_rate', '1e30', '--max_steps', '1100', '--batch_size', '50')
    assert_user_error(code, err, 'smaller', 'learning rate', 'No checkpoint had been saved')
    assert re.search(r'The loss became (nan|inf|-inf) at step \d+', err)
    assert 'Step 0, training accuracy' in out
    assert 'Test accuracy' not in out
    (folder,) = run_folders(train_dir)
    assert checkpoint_steps(folder) == []


def test_loss_diverging_after_a_checkpoint_keeps_it(run, cifar_dir, tmp_path, monkeypatch):
    """A NaN loss at step 1050 names the last good checkpoint, 1000, and saves nothing else."""
    real_gen_batch = data_helpers.gen_batch

    def gen_batch_with_a_bad_image(data, batch_size, num_iter, seed=None, start_step=0):
        for step, (images, labels) in enumerate(
                real_gen_batch(data, batch_size, num_iter, seed, start_step), start_step):
            if step == 1050:
                images = images.copy()
                images[0, 0] = np.nan
            yield images, labels

    monkeypatch.setattr(data_helpers, 'gen_batch', gen_batch_with_a_bad_image)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--max_steps', '1100', '--batch_size', '50', '--seed', '1')
    (folder,) = run_folders(train_dir)
    # The NaN image gives NaN weights at step 1050; the loss shows it then or a step later.
    assert re.search(r'The loss became nan at step 105[01]:', err), err
    assert_user_error(code, err, 'smaller', 'The last good checkpoint is kept: '
                      + os.path.join(folder, 'checkpoints', 'model.ckpt-1000'))
    assert out.count('Saved checkpoint') == 1
    assert checkpoint_steps(folder) == [1000]
    monkeypatch.undo()
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Current step: 1000' in out.splitlines()


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(cifar_dir, tmp_path, run):
    """SIGINT to a real run: exit 130, a checkpoint, and the --resume command on stderr."""
    train_dir = str(tmp_path / 'logs')
    # A test run started as a background job inherits SIGINT ignored, and so would the
    # script; a terminal's Ctrl-C meets a process whose SIGINT is at its default. A
    # handler here (reset to the default when the child starts) gives it that.
    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [sys.executable, 'run_fc_model.py', '--data_dir', cifar_dir,
             '--train_dir', train_dir, '--seed', '3', '--max_steps', '200000',
             '--batch_size', '50'],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED='1'))
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    try:
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith('Step 100,'):
                break
        assert seen and seen[-1].startswith('Step 100,'), ''.join(seen)
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert 'Traceback' not in err
    match = re.search(r'Saved checkpoint (\S+model\.ckpt-(\d+))\.', err)
    assert match, err
    checkpoint, step = match.group(1), int(match.group(2))
    assert step >= 100
    assert os.path.isfile(checkpoint + '.index')
    assert glob.glob(checkpoint + '.data-*')
    assert f'--train_dir {train_dir}' in err and '--resume' in err
    assert 'python run_fc_model.py' in err
    assert 'Total time' not in rest
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert f'Current step: {step}' in out.splitlines()


@pytest.fixture(scope='module')
def uninterrupted_run(cifar_dir, tmp_path_factory):
    """300 steps in one go: (train_dir, stdout)."""
    train_dir = str(tmp_path_factory.mktemp('whole'))
    code, out, err = run_captured(
        run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir, '--seed', '3',
        '--max_steps', '300', '--batch_size', '50', '--learning_rate', '0.00001')
    assert code == 0, err
    return train_dir, out


@pytest.fixture(scope='module')
def resumed_run(cifar_dir, tmp_path_factory):
    """150 steps, then --resume --max_steps 300: (train_dir, first stdout, resumed stdout)."""
    train_dir = str(tmp_path_factory.mktemp('resumed'))
    code, first, err = run_captured(
        run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir, '--seed', '3',
        '--max_steps', '150', '--batch_size', '50', '--learning_rate', '0.00001')
    assert code == 0, err
    code, resumed, err = run_captured(
        run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir, '--resume',
        '--max_steps', '300')
    assert code == 0, err
    return train_dir, first, resumed


def test_resume_continues_where_it_stopped(resumed_run, cifar_dir, run):
    """The resumed run starts at step 150 in the same run folder and ends at step 300."""
    train_dir, _, resumed = resumed_run
    (folder,) = run_folders(train_dir)
    lines = resumed.splitlines()
    assert f'Resuming from {checkpoint_path(folder, 150)}' in lines
    steps = [int(re.match(r'Step (\d+),', line).group(1))
             for line in lines if line.startswith('Step ')]
    assert steps == [200]
    assert {'batch_size = 50', 'seed = 3', 'max_steps = 300', 'learning_rate = 1e-05'} \
        <= set(lines)
    assert checkpoint_steps(folder) == [150, 300]
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Current step: 300' in out.splitlines()


def test_resumed_run_equals_the_uninterrupted_one(resumed_run, uninterrupted_run):
    """Same test accuracy line and the very same weights as 300 steps in one go."""
    train_dir, _, resumed = resumed_run
    whole_dir, whole = uninterrupted_run

    def test_line(out):
        return [line for line in out.splitlines() if line.startswith('Test accuracy')]

    assert test_line(resumed) == test_line(whole)
    assert len(test_line(whole)) == 1
    (folder,) = run_folders(train_dir)
    (whole_folder,) = run_folders(whole_dir)
    resumed_reader = tf.train.load_checkpoint(checkpoint_path(folder, 300))
    whole_reader = tf.train.load_checkpoint(checkpoint_path(whole_folder, 300))
    for name in ('Layer1/weights', 'Layer1/biases', 'Layer2/weights', 'Layer2/biases',
                 'global_step'):
        np.testing.assert_array_equal(resumed_reader.get_tensor(name),
                                      whole_reader.get_tensor(name), err_msg=name)


def test_cnn_resumed_mid_epoch_equals_the_uninterrupted_run(run, cifar_dir, tmp_path,
                                                            monkeypatch):
    """Ctrl-C in the middle of epoch 1, then --resume: the run ends like one run in one go.

    The same shuffles, the same dropout masks: the same Test Accuracy line and
    the very same weights after the last step.
    """
    args = ['--data_dir', cifar_dir, '--seed', '6', '--epochs', '2', '--batch_size', '50']
    whole_dir, parted_dir = str(tmp_path / 'whole'), str(tmp_path / 'parted')
    code, whole, err = run(run_cnn_model, '--train_dir', whole_dir, *args)
    assert code == 0, err

    real_check_finite = training_stops.check_finite

    def ctrl_c_after_15_steps(loss_value, step, *more):
        if step == 14:  # 10 steps an epoch: the middle of the second epoch
            raise KeyboardInterrupt
        return real_check_finite(loss_value, step, *more)
    monkeypatch.setattr(training_stops, 'check_finite', ctrl_c_after_15_steps)
    code, _, err = run(run_cnn_model, '--train_dir', parted_dir, *args)
    assert code == 130, err
    assert 'Training interrupted at step 15' in err
    monkeypatch.undo()
    code, resumed, err = run(run_cnn_model, '--train_dir', parted_dir, '--data_dir', cifar_dir,
                             '--resume')
    assert code == 0, err

    def test_line(out):
        return [line for line in out.splitlines() if line.startswith('Test Accuracy:')]

    assert len(test_line(whole)) == 1 and test_line(resumed) == test_line(whole)
    (whole_folder,) = run_folders(whole_dir)
    (parted_folder,) = run_folders(parted_dir)
    assert checkpoint_steps(parted_folder) == [10, 15, 20]
    whole_reader = tf.train.load_checkpoint(checkpoint_path(whole_folder, 20))
    parted_reader = tf.train.load_checkpoint(checkpoint_path(parted_folder, 20))
    for name in ('conv1/filters', 'conv2/filters', 'fc/weights', 'fc/biases', 'global_step'):
        np.testing.assert_array_equal(parted_reader.get_tensor(name),
                                      whole_reader.get_tensor(name), err_msg=name)


def test_resume_with_conflicting_flag(resumed_run, cifar_dir, run):
    """--resume --hidden1 20 on a hidden1=120 run: a clear error, the run untouched."""
    train_dir, _, _ = resumed_run
    before = files_of(train_dir)
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume', '--hidden1', '20')
    assert_user_error(code, err, '--hidden1 20', '120', 'without --resume')
    assert 'Step' not in out
    assert files_of(train_dir) == before


def short_fc_run(run, cifar_dir, train_dir):
    """A 100-step run of the two-layer network, with its checkpoint at step 100."""
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--seed', '5', '--max_steps', '100', '--batch_size', '50')
    assert code == 0, err


def test_interrupted_run_resumes_to_its_own_max_steps(run, cifar_dir, tmp_path, monkeypatch):
    """Ctrl-C at step 120 (exit 130), then plain --resume: training ends at the run's 200."""
    train_dir = str(tmp_path / 'logs')
    real_check_finite = training_stops.check_finite

    def ctrl_c_after_120_steps(loss_value, step, *args):
        if step == 119:  # the 120th training step has just run
            raise KeyboardInterrupt
        return real_check_finite(loss_value, step, *args)
    monkeypatch.setattr(training_stops, 'check_finite', ctrl_c_after_120_steps)
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--seed', '4', '--max_steps', '200', '--batch_size', '50')
    assert code == 130, err
    assert 'Training interrupted at step 120' in err and '--resume' in err
    (folder,) = run_folders(train_dir)
    assert checkpoint_steps(folder) == [120]
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))

    monkeypatch.undo()
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume')
    assert code == 0, err
    assert 'max_steps = 200' in out.splitlines()
    assert checkpoint_steps(folder) == [120, 200]


def test_resume_refuses_a_run_still_training(run, cifar_dir, tmp_path):
    """--resume while another live process trains the run: a clear error, nothing touched."""
    train_dir = str(tmp_path / 'logs')
    short_fc_run(run, cifar_dir, train_dir)
    (folder,) = run_folders(train_dir)
    other = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        with open(os.path.join(folder, run_lock.LOCK_FILE), 'w') as f:
            f.write(str(other.pid))
        before = files_of(train_dir)
        code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                           '--resume', '--max_steps', '200')
        assert_user_error(code, err, f'pid {other.pid}', folder)
        assert files_of(train_dir) == before
    finally:
        other.kill()
        other.wait()
    # Once that process is gone, its lock no longer blocks the run.
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--resume', '--max_steps', '200')
    assert code == 0, err
    assert checkpoint_steps(folder) == [100, 200]


@pytest.mark.parametrize('lock', ['garbage', 'zero', 'huge', 'reused-pid', 'folder', 'fifo'])
def test_a_damaged_or_stale_lock(run, cifar_dir, tmp_path, lock):
    """A lock no live run holds is taken over; one that is no file is named, never a hang."""
    train_dir = str(tmp_path / 'logs')
    short_fc_run(run, cifar_dir, train_dir)
    (folder,) = run_folders(train_dir)
    path = os.path.join(folder, run_lock.LOCK_FILE)
    if lock == 'folder':
        os.mkdir(path)
    elif lock == 'fifo':
        os.mkfifo(path)  # reading it would wait forever
    else:
        # 'reused-pid': a live process (this one's parent) with another start time
        text = {'garbage': 'not a pid', 'zero': '0', 'huge': '9' * 30,
                'reused-pid': f'{os.getppid()} 1'}[lock]
        with open(path, 'w') as f:
            f.write(text)
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--resume', '--max_steps', '200')
    if lock in ('folder', 'fifo'):
        assert_user_error(code, err, path, 'not a lock file')
        assert checkpoint_steps(folder) == [100]
    else:
        assert code == 0, err
        assert checkpoint_steps(folder) == [100, 200]
        assert not os.path.exists(path)


def test_params_json_is_never_written_through_a_link(run, cifar_dir, tmp_path):
    """A params.json that links elsewhere: named and refused; the file it points at is intact."""
    train_dir = str(tmp_path / 'logs')
    short_fc_run(run, cifar_dir, train_dir)
    (folder,) = run_folders(train_dir)
    params = os.path.join(folder, run_dirs.PARAMS_FILE)
    victim = tmp_path / 'my-notes.txt'
    victim.write_text('mine\n')
    os.remove(params)
    os.symlink(victim, params)
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume', '--max_steps', '200')
    assert_user_error(code, err, params, 'link')
    assert victim.read_text() == 'mine\n' and os.path.islink(params)
    assert checkpoint_steps(folder) == [100]


def make_hostile(folder, how, outside):
    """Turns a finished run folder into one a stranger might hand over.

    `outside` is a folder beside the train_dir holding a copy of the run: what
    the hostile folder points at, and what must stay untouched.
    """
    params_path = os.path.join(folder, run_dirs.PARAMS_FILE)
    state = os.path.join(folder, 'checkpoints', 'checkpoint')
    target = os.path.join(outside, 'run', 'checkpoints', 'model.ckpt-100')
    if how == 'lock-link':
        os.symlink(os.path.join(outside, 'run', run_dirs.PARAMS_FILE),
                   os.path.join(folder, run_lock.LOCK_FILE))
    elif how == 'checkpoints-link':
        shutil.rmtree(os.path.join(folder, 'checkpoints'))
        os.symlink(os.path.join(outside, 'run', 'checkpoints'),
                   os.path.join(folder, 'checkpoints'))
    elif how in ('state-absolute', 'state-dot-dot'):
        path = target if how == 'state-absolute' else os.path.relpath(
            target, os.path.dirname(state))
        with open(state, 'w') as f:
            f.write(f'model_checkpoint_path: "{path}"\n')
    else:
        with open(params_path) as f:
            params = json.load(f)
        params.update({'bad-value': {'learning_rate': -1.0},
                       'wrong-type': {'hidden1': '120; rm -rf ~'},
                       'huge-number': {'learning_rate': 10 ** 400}}[how])
        with open(params_path, 'w') as f:
            json.dump(params, f)


@pytest.mark.parametrize('how, phrases', [
    ('lock-link', ['.training is a link', 'not continued']),
    ('checkpoints-link', ['checkpoints is a link', 'not continued']),
    ('state-absolute', ['outside its folder', 'no checkpoint']),
    ('state-dot-dot', ['outside its folder', 'no checkpoint']),
    ('bad-value', ['params.json are not valid', 'learning_rate is -1.0']),
    ('wrong-type', ["hidden1 = '120; rm -rf ~'", 'not a value of --hidden1']),
    ('huge-number', ['not a value of --learning_rate']),
])
def test_resume_treats_a_run_folder_as_data(run, cifar_dir, tmp_path, how, phrases):
    """Links, checkpoint paths leading out, bad saved settings: refused, nothing written."""
    train_dir = str(tmp_path / 'logs')
    short_fc_run(run, cifar_dir, train_dir)
    (folder,) = run_folders(train_dir)
    outside = str(tmp_path / 'someone-elses')
    shutil.copytree(folder, os.path.join(outside, 'run'))
    make_hostile(folder, how, outside)
    before = files_of(outside)
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume', '--max_steps', '200')
    assert_user_error(code, err, *phrases)
    assert 'Step' not in out
    assert files_of(outside) == before
    assert not glob.glob(os.path.join(train_dir, '**', 'model.ckpt-200*'), recursive=True)


def test_fc_and_cnn_runs_in_one_train_dir(run, cifar_dir, tmp_path):
    """The README's order (fc, then cnn, same tf_logs): each resumes and restores its own."""
    train_dir = str(tmp_path / 'logs')
    short_fc_run(run, cifar_dir, train_dir)
    code, _, err = run(run_cnn_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--seed', '5', '--epochs', '1', '--batch_size', '100')
    assert code == 0, err
    code, out, err = run(run_fc_model, '--train_dir', train_dir, '--resume',
                         '--max_steps', '200')
    assert code == 0, err
    assert 'Resuming from' in out and 'Step 100' in out
    # No --data_dir: restore takes the run's own data folder and split.
    code, out, err = run(restore_model, '--train_dir', train_dir, '--model', 'fc')
    assert code == 0, err
    assert 'Current step: 200' in out.splitlines()
    code, out, err = run(restore_model, '--train_dir', train_dir, '--model', 'cnn')
    assert code == 0, err
    assert 'Current step: 5' in out.splitlines()


def test_runs_with_checkpoints_beside_their_summaries_still_restore_and_resume(run, cifar_dir,
                                                                            tmp_path):
    """A run folder of the earlier layout (no checkpoints/ folder) is found and continued."""
    train_dir = str(tmp_path / 'logs')
    short_fc_run(run, cifar_dir, train_dir)
    (folder,) = run_folders(train_dir)
    checkpoints = os.path.join(folder, 'checkpoints')
    for name in os.listdir(checkpoints):
        os.rename(os.path.join(checkpoints, name), os.path.join(folder, name))
    os.rmdir(checkpoints)
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Current step: 100' in out.splitlines()
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume', '--max_steps', '200')
    assert code == 0, err
    assert f'Resuming from {os.path.join(folder, "model.ckpt-100")}' in out.splitlines()
    assert checkpoint_steps(folder) == [200]  # the new ones go to checkpoints/
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Current step: 200' in out.splitlines()


def test_resume_from_a_damaged_checkpoint(run, cifar_dir, tmp_path):
    """A truncated checkpoint data file on --resume: a clear error, no lock or events left."""
    train_dir = str(tmp_path / 'logs')
    short_fc_run(run, cifar_dir, train_dir)
    (folder,) = run_folders(train_dir)
    (data_file,) = glob.glob(os.path.join(folder, 'checkpoints', 'model.ckpt-100.data-*'))
    with open(data_file, 'r+b') as f:
        f.truncate(100)
    params = os.path.join(folder, run_dirs.PARAMS_FILE)

    def checkpoints_and_logs():
        # params.json records the newly asked --max_steps: it may change.
        return {path: stat for path, stat in files_of(train_dir).items() if path != params}
    before = checkpoints_and_logs()
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--resume', '--max_steps', '200')
    assert_user_error(code, err, 'model.ckpt-100', 'damaged')
    assert checkpoints_and_logs() == before  # no new events file, no lock left


def test_resume_on_other_data_is_refused(run, cifar_dir, tmp_path):
    """--resume --data_dir with a training set of another size: a clear error."""
    train_dir = str(tmp_path / 'logs')
    short_fc_run(run, cifar_dir, train_dir)
    smaller = cifar_files.write_dataset(str(tmp_path / 'smaller'), train_per_batch=60)
    code, out, err = run(run_fc_model, '--data_dir', smaller, '--train_dir', train_dir,
                         '--resume', '--max_steps', '200')
    assert_user_error(code, err, '500 images', '300', 'same --data_dir')
    assert 'Step' not in out


def test_resume_refuses_to_continue_an_older_run_than_the_newest(run, cifar_dir, tmp_path):
    """The newest run died before its first checkpoint: --resume says so, not an older run."""
    train_dir = str(tmp_path / 'logs')
    short_fc_run(run, cifar_dir, train_dir)
    time.sleep(0.05)  # file times must tell the two runs apart
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--learning_rate', '1e30', '--batch_size', '50')
    assert code == 1 and 'No checkpoint had been saved' in err
    (older,) = [folder for folder in run_folders(train_dir) if checkpoint_steps(folder)]
    (newest,) = [folder for folder in run_folders(train_dir) if folder != older]
    before = files_of(train_dir)
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume', '--max_steps', '200')
    assert_user_error(code, err, newest, 'before its first checkpoint', older,
                      'without --resume')
    assert 'Step' not in out and 'Test accuracy' not in out
    assert files_of(train_dir) == before
    shutil.move(newest, str(tmp_path / 'elsewhere'))  # as the message suggests
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume', '--max_steps', '200')
    assert code == 0, err
    assert checkpoint_steps(older) == [100, 200]


def test_resume_without_checkpoint(run, no_data, tmp_path):
    """--resume in an empty train_dir: says there is nothing to resume from."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', no_data, '--train_dir', train_dir,
                       '--resume')
    assert_user_error(code, err, '--resume', f'no checkpoint in {train_dir}',
                      'without --resume')
    assert run_folders(train_dir) == []
    assert not os.path.exists(os.path.dirname(no_data))


# ---------------------------------------------------------------------------
# Files and folders
# ---------------------------------------------------------------------------

def test_train_dir_that_cannot_be_written(run, no_data, tmp_path):
    """--train_dir below a regular file: exit 1 naming it, before loading any data."""
    blocker = tmp_path / 'afile'
    blocker.write_text('my notes\n')
    train_dir = str(blocker / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', no_data, '--train_dir', train_dir)
    assert_user_error(code, err, f'Cannot write to --train_dir {train_dir}')
    assert not os.path.exists(os.path.dirname(no_data))
    assert blocker.read_text() == 'my notes\n'


def test_train_dir_with_pattern_characters_is_refused(run, no_data, tmp_path):
    """runs[1] would save checkpoints that TensorFlow's pattern lookup never finds again."""
    train_dir = str(tmp_path / 'runs[1]')
    code, out, err = run(run_fc_model, '--data_dir', no_data, '--train_dir', train_dir)
    assert_user_error(code, err, f'--train_dir {train_dir} contains [ ]', 'could not be found')
    assert not os.path.exists(train_dir)
    code, out, err = run(restore_model, '--train_dir', train_dir)
    assert_user_error(code, err, f'--train_dir {train_dir} contains [ ]')


def handed_over_run(fc_checkpoint, tmp_path, **changes):
    """A copy of a finished run, as a stranger hands it over: `changes` edited into params.json.

    Returns:
        (train_dir, run folder, path of its params.json).
    """
    train_dir = str(tmp_path / 'handed-over')
    shutil.copytree(fc_checkpoint, train_dir)
    (folder,) = run_folders(train_dir)
    params_path = os.path.join(folder, run_dirs.PARAMS_FILE)
    with open(params_path) as f:
        params = json.load(f)
    with open(params_path, 'w') as f:
        json.dump(dict(params, **changes), f)
    return train_dir, folder, params_path


def test_restore_checks_the_settings_it_reads_from_params_json(run, fc_checkpoint, tmp_path):
    """A run folder's recorded validation_size is data: a bad one is named, not used."""
    train_dir, _, params_path = handed_over_run(fc_checkpoint, tmp_path, validation_size='all')
    code, out, err = run(restore_model, '--train_dir', train_dir)
    assert_user_error(code, err, params_path, "validation_size = 'all'")
    assert 'Test accuracy' not in out


def test_restore_never_downloads_into_a_recorded_data_dir(run, fc_checkpoint, tmp_path,
                                                         monkeypatch):
    """A run folder from another machine names a data folder that is not here: no download."""
    monkeypatch.setattr(cifar10_download, 'CIFAR10_URL', 'file:///nonexistent/cifar-10.tar.gz')
    recorded = str(tmp_path / 'home' / 'alice' / 'cifar-10-batches-py')
    train_dir, _, _ = handed_over_run(fc_checkpoint, tmp_path, data_dir=recorded)
    code, out, err = run(restore_model, '--train_dir', train_dir)
    assert_user_error(code, err, f'{recorded} does not exist',
                      f'nearest folder that does is {tmp_path}.', 'params.json')
    assert not os.path.exists(tmp_path / 'home')


@pytest.mark.parametrize('script', [restore_model, run_fc_model])
def test_a_handed_over_run_whose_data_would_run_code(run, fc_checkpoint, tmp_path, script):
    """"Just run restore_model.py": the run's recorded data folder holds a hostile pickle.

    Without --data_dir, restore and --resume read the data folder params.json
    names, here one handed over with the run; nothing of its pickle runs.
    """
    data_dir = str(tmp_path / 'handed-over' / 'data' / 'cifar-10-batches-py')
    train_dir, _, _ = handed_over_run(fc_checkpoint, tmp_path, data_dir=data_dir)
    cifar_files.write_dataset(data_dir)
    marker = str(tmp_path / 'the-file-ran-code')
    cifar_files.write_hostile_test_batch(data_dir, marker)
    extra = ['--resume', '--max_steps', '40'] if script is run_fc_model else []
    code, out, err = run(script, '--train_dir', train_dir, *extra)
    assert_user_error(code, err, os.path.join(data_dir, 'test_batch'), 'mkdir',
                      'nothing of it was run')
    assert not os.path.exists(marker)
    assert 'Test accuracy' not in out


def test_disk_full_while_saving_keeps_earlier_checkpoints(run, cifar_dir, tmp_path,
                                                          monkeypatch):
    """The second save fails for lack of space: exit 1, the first checkpoint restores."""
    real_save = tf.train.Saver.save
    calls = []

    def save_until_the_disk_is_full(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise tf.errors.ResourceExhaustedError(None, None, 'No space left on device')
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(tf.train.Saver, 'save', save_until_the_disk_is_full)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--max_steps', '1100', '--batch_size', '50', '--seed', '1')
    assert len(calls) == 2
    assert_user_error(code, err, 'No space left on device', 'intact', '--resume')
    (folder,) = run_folders(train_dir)
    assert checkpoint_steps(folder) == [1000]
    assert os.path.isfile(os.path.join(folder, 'checkpoints', 'model.ckpt-1000.index'))
    assert glob.glob(os.path.join(folder, 'checkpoints', 'model.ckpt-1000.data-*'))
    monkeypatch.undo()
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Current step: 1000' in out.splitlines()


class DiskFillsEventsWriter:
    """TensorFlow's C++ event-file writer, on a disk that fills after `room` events.

    Like the real one on a full disk, writing goes on quietly and the flush
    fails, in the `FileWriter`'s own thread.
    """

    room = 3

    def __init__(self, prefix):
        self._real = REAL_EVENTS_WRITER(prefix)
        self._events = 0

    def WriteEvent(self, event):  # noqa: N802 (the C++ writer's name)
        self._events += 1
        if self._events <= self.room:
            self._real.WriteEvent(event)

    def Flush(self):  # noqa: N802
        if self._events > self.room:
            name = self._real.FileName()
            raise RuntimeError(f'{name}; No space left on device\n\tFailed to flush '
                               f'{self._events - self.room} events to {name}')
        self._real.Flush()

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_disk_full_while_writing_summaries(run, cifar_dir, tmp_path, monkeypatch, capfd):
    """The summary writer's thread fails: one message naming the file, no thread traceback."""
    monkeypatch.setattr(event_file_writer, '_pywrap_events_writer',
                        types.SimpleNamespace(EventsWriter=DiskFillsEventsWriter))
    # pytest puts its own hook in place for each test; a script has the suite's
    monkeypatch.setattr(threading, 'excepthook', quiet_tensorflow.quiet_summary_writer_thread)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--max_steps', '300', '--batch_size', '50', '--seed', '1')
    assert_user_error(code, err, 'No space left on device', 'events.out.tfevents',
                      'checkpoints saved before are intact')
    assert err.strip().count('\n') == 0  # one paragraph
    printed_elsewhere = capfd.readouterr()
    assert 'Exception in thread' not in printed_elsewhere.err + err
    assert 'writer thread error' not in printed_elsewhere.err + err
    (folder,) = run_folders(train_dir)
    assert checkpoint_steps(folder) == [300]
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))


def test_disk_full_when_a_run_starts_leaves_no_half_made_folder(run, cifar_dir, tmp_path,
                                                                monkeypatch):
    """No room for the run folder's first files: a message, and no empty run folder."""
    def no_space(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')  # from write(): no file name

    monkeypatch.setattr(np, 'save', no_space)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--max_steps', '300', '--batch_size', '50')
    assert_user_error(code, err, 'No space left on device', 'Free some disk space')
    assert 'Step' not in out
    assert run_folders(train_dir) == []


def test_two_runs_at_once_get_their_own_folders(cifar_dir, tmp_path):
    """Two real runs started together in one train_dir: two folders, two checkpoints."""
    train_dir = str(tmp_path / 'logs')
    processes = [subprocess.Popen(
        [sys.executable, 'run_fc_model.py', '--data_dir', cifar_dir, '--train_dir', train_dir,
         '--max_steps', '100', '--batch_size', '50', '--seed', str(seed)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in (1, 2)]
    try:
        results = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
    folders = run_folders(train_dir)
    assert len(folders) == 2
    seeds = set()
    for folder in folders:
        assert checkpoint_steps(folder) == [100]
        assert tf.train.latest_checkpoint(os.path.join(folder, 'checkpoints')) == \
            os.path.join(folder, 'checkpoints', 'model.ckpt-100')
        seeds.add(run_dirs.load_run_params(folder)['seed'])
    assert seeds == {1, 2}


def test_make_run_dir_twice_in_one_second(tmp_path, monkeypatch):
    """Two run folders made in the same second are two different folders."""
    monkeypatch.setattr(time, 'strftime', lambda *args: '20240102-030405')
    first = run_dirs.make_run_dir(str(tmp_path))
    second = run_dirs.make_run_dir(str(tmp_path))
    assert first != second
    assert os.path.isdir(first) and os.path.isdir(second)
    assert os.path.basename(first).startswith('20240102-030405')
    assert os.path.basename(second).startswith('20240102-030405')
    assert sorted(os.listdir(tmp_path)) == sorted(map(os.path.basename, (first, second)))


# ---------------------------------------------------------------------------
# Own images that cannot be read
# ---------------------------------------------------------------------------

def png_header(width, height):
    """A PNG that declares its size and holds no pixels: what a decompression bomb starts with."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data)))
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IEND', b'')


@pytest.mark.parametrize('kind, phrase', [
    ('missing', 'does not exist'),
    ('empty', 'is empty'),
    ('text', 'is not a PNG or JPEG image'),
    ('gif', 'is not a PNG or JPEG image'),  # a real picture, in a format never opened
    ('bomb', 'pixels'),  # 30000 x 30000: refused from its header, before any decoding
    ('too-large', '64 megapixels'),
])
def test_restore_image_that_cannot_be_read(run, fc_checkpoint, tmp_path, kind, phrase):
    """A missing, empty, text or oversized file given to --image: exit 1, the message names it."""
    path = tmp_path / 'photo.png'
    if kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'text':
        path.write_text('a shopping list, not a photo\n')
    elif kind == 'gif':
        Image.new('RGB', (40, 30), 'red').save(path, format='GIF')
    elif kind == 'bomb':
        path.write_bytes(png_header(30000, 30000))
    elif kind == 'too-large':
        path.write_bytes(png_header(9000, 8000))
    code, out, err = run(restore_model, '--train_dir', fc_checkpoint, '--image', str(path))
    assert_user_error(code, err, str(path), phrase)
    assert str(path) + ':' not in out
    if kind == 'text':
        assert path.read_text() == 'a shopping list, not a photo\n'


@pytest.mark.parametrize('damage', ['not-numpy', 'empty', 'huge-shape', 'pickled'])
def test_restore_with_a_damaged_mean_image(run, cifar_dir, tmp_path, damage):
    """--image with a run whose mean_image.npy is damaged or hostile: named, nothing run."""
    train_dir = str(tmp_path / 'logs')
    short_fc_run(run, cifar_dir, train_dir)
    (folder,) = run_folders(train_dir)
    mean_path = os.path.join(folder, run_dirs.MEAN_IMAGE_FILE)
    if damage in ('not-numpy', 'empty'):  # empty: a run killed while writing it
        with open(mean_path, 'wb') as f:
            f.write(b'not numpy' if damage == 'not-numpy' else b'')
    elif damage == 'huge-shape':  # a header that asks for 4 TB
        with open(mean_path, 'wb') as f:
            np.lib.format.write_array_header_1_0(
                f, {'descr': '<f4', 'fortran_order': False, 'shape': (10 ** 12,)})
            f.write(bytes(100))
    else:  # an object array: loading it would unpickle, and so run code
        np.save(mean_path, np.array([print], dtype=object), allow_pickle=True)
    photo = tmp_path / 'photo.png'
    Image.new('RGB', (40, 30), 'red').save(photo)
    code, out, err = run(restore_model, '--train_dir', train_dir, '--image', str(photo))
    assert_user_error(code, err, mean_path, 'Delete it')


@pytest.mark.parametrize('empty', ['test', 'training'])
def test_a_data_set_without_test_or_training_images(run, tmp_path, empty):
    """No test images (or no training images): a clear error, never 'Test accuracy nan'."""
    sizes = {'test_count': 0} if empty == 'test' else {'train_per_batch': 0}
    data_dir = cifar_files.write_dataset(str(tmp_path / 'data'), **sizes)
    code, out, err = run(softmax, '--data_dir', data_dir, '--batch_size', '10')
    assert_user_error(code, err, data_dir, 'hold no images')
    assert 'Test accuracy' not in out

