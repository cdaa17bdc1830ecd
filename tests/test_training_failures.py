"""Training that goes wrong: a diverging loss, a full disk, runs started at once.

Each test checks the exit code, the message on stderr (no traceback) and the
files left behind: the last good checkpoint is kept and still restores.
"""

import errno
import glob
import os
import re
import resource
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from run_folders import checkpoint_steps, run_folders
from script_runs import PROJECT_DIR, assert_user_error
from tensorflow.python.summary.writer import event_file_writer

import data_helpers
import restore_model
import run_cnn_model
import run_fc_model
from tutorial_support import quiet_tensorflow, run_dirs, run_lock, training_stops

REAL_EVENTS_WRITER = event_file_writer._pywrap_events_writer.EventsWriter


@pytest.mark.parametrize('runner, args, first_lines', [
    (run_fc_model, ['--max_steps', '1100'], ['Step 0, training accuracy']),
    (run_cnn_model, ['--epochs', '2'], []),
])
def test_diverging_loss_stops_without_saving(run, cifar_dir, tmp_path, runner, args,
                                             first_lines):
    """A huge learning rate: the loss becomes nan/inf; the run stops, saves nothing after
    the initial weights (step 0), which the message names as the last good checkpoint."""
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(runner, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--learning_rate', '1e30', '--batch_size', '50', *args)
    (folder,) = run_folders(train_dir)
    assert_user_error(code, err, 'smaller', 'learning rate', 'The last good checkpoint is kept: '
                      + os.path.join(folder, 'checkpoints', 'model.ckpt-0'))
    assert re.search(r'The loss became (nan|inf|-inf) at step \d+', err)
    assert all(line in out for line in first_lines)
    assert 'Test accuracy' not in out.lower()
    assert checkpoint_steps(folder) == [0]


@pytest.mark.parametrize('runner', [run_fc_model, run_cnn_model])
def test_disk_full_at_the_first_save(run, cifar_dir, tmp_path, monkeypatch, runner):
    """The initial weights (step 0) cannot be saved: the message names the run folder and
    says there is nothing to continue from; exit 1, no traceback."""
    disk_full_at_save(monkeypatch, 1)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(runner, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--batch_size', '50')
    (folder,) = run_folders(train_dir)
    assert_user_error(code, err, f'Could not save a checkpoint in {folder} (',
                      'No checkpoint of this run had been saved, so it cannot be continued')


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
    assert checkpoint_steps(folder) == [0, 1000]
    monkeypatch.undo()
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Current step: 1000' in out.splitlines()


def disk_full_at_save(monkeypatch, failing):
    """Makes the `failing`-th Saver.save (1 for the first) fail for lack of space.

    Returns the list of the saves' arguments, one item a save tried.
    """
    real_save = tf.train.Saver.save
    calls = []

    def save_until_the_disk_is_full(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == failing:
            raise tf.errors.ResourceExhaustedError(None, None, 'No space left on device')
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(tf.train.Saver, 'save', save_until_the_disk_is_full)
    return calls


def test_disk_full_while_saving_keeps_earlier_checkpoints(run, cifar_dir, tmp_path,
                                                          monkeypatch):
    """The third save (after step 0 and 1000) fails for lack of space: exit 1, the one
    before restores."""
    calls = disk_full_at_save(monkeypatch, 3)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--max_steps', '1100', '--batch_size', '50', '--seed', '1')
    assert len(calls) == 3
    (folder,) = run_folders(train_dir)
    assert_user_error(code, err, f'Could not save a checkpoint in {folder} (',
                      'No space left on device', f'The last checkpoint saved, '
                      f"{os.path.join(folder, 'checkpoints', 'model.ckpt-1000')}, is intact",
                      f'continue from it with: python run_fc_model.py --train_dir {train_dir} '
                      f'--data_dir {cifar_dir} --resume')
    assert checkpoint_steps(folder) == [0, 1000]
    assert os.path.isfile(os.path.join(folder, 'checkpoints', 'model.ckpt-1000.index'))
    assert glob.glob(os.path.join(folder, 'checkpoints', 'model.ckpt-1000.data-*'))
    monkeypatch.undo()
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Current step: 1000' in out.splitlines()


def test_cnn_disk_full_at_an_epoch_checkpoint_keeps_the_one_before(run, cifar_dir, tmp_path,
                                                                    monkeypatch):
    """The CNN's third save (after step 0 and epoch 1) fails for lack of space: the message
    names the run folder, the intact checkpoint of epoch 1 and the command that continues."""
    disk_full_at_save(monkeypatch, 3)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_cnn_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--epochs', '3', '--batch_size', '50')
    (folder,) = run_folders(train_dir)
    assert_user_error(code, err, f'Could not save a checkpoint in {folder} (',
                      f"The last checkpoint saved, "
                      f"{os.path.join(folder, 'checkpoints', 'model.ckpt-10')}, is intact",
                      f'continue from it with: python run_cnn_model.py --train_dir {train_dir} '
                      f'--data_dir {cifar_dir} --resume')
    assert checkpoint_steps(folder) == [0, 10]


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
    """The summary writer's thread fails: a note naming the file when it does, no thread
    traceback; the run stops with a checkpoint of the step it is at and says so."""
    monkeypatch.setattr(event_file_writer, '_pywrap_events_writer',
                        types.SimpleNamespace(EventsWriter=DiskFillsEventsWriter))
    # pytest puts its own hook in place for each test; a script has the suite's
    monkeypatch.setattr(threading, 'excepthook', quiet_tensorflow.quiet_summary_writer_thread)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--max_steps', '300', '--batch_size', '50', '--seed', '1')
    (folder,) = run_folders(train_dir)
    assert_user_error(code, err, 'Training stopped at step 300: Cannot write',
                      'events.out.tfevents', 'No space left on device',
                      f'Saved checkpoint {os.path.join(folder, "checkpoints", "model.ckpt-300")}',
                      '--resume')
    note, error = err.strip().split('\n\n')  # the note when it failed, then one paragraph
    assert note.startswith('Note: TensorBoard summaries could not be written (Cannot write ')
    assert error.startswith('Error: ') and '\n' not in error
    printed_elsewhere = capfd.readouterr()
    assert 'Exception in thread' not in printed_elsewhere.err + err
    assert 'writer thread error' not in printed_elsewhere.err + err
    assert checkpoint_steps(folder) == [0, 300]
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))


def run_under_a_file_size_limit(limit, *args):
    """run_fc_model.py in a real process whose files may not grow beyond `limit` bytes."""
    def limit_file_sizes():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, 'run_fc_model.py', *args], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=limit_file_sizes)


def test_file_size_limit_with_no_checkpoint_yet(cifar_dir, tmp_path):
    """A real file-size limit (`ulimit -f`, EFBIG) on the first save (step 0, before any
    training): the file named, and no claim of earlier checkpoints, for there are none."""
    train_dir = str(tmp_path / 'logs')
    result = run_under_a_file_size_limit(200_000, '--data_dir', cifar_dir, '--train_dir',
                                         train_dir, '--max_steps', '100', '--batch_size', '50')
    err = result.stderr
    assert_user_error(result.returncode, err, 'Could not save a checkpoint',
                      'model.ckpt-0.data-00000-of-00001', 'File too large',
                      'No checkpoint of this run had been saved', 'ulimit -f')
    assert 'intact' not in err and '--resume' not in err
    assert 'Step 0' not in result.stdout
    (folder,) = run_folders(train_dir)
    assert checkpoint_steps(folder) == []
    assert os.listdir(os.path.join(folder, 'checkpoints')) == []  # no temporary files left
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))


def test_file_size_limit_below_the_mean_image(cifar_dir, tmp_path):
    """A limit below the run folder's first file (mean_image.npy, 12 KB): NumPy's short
    write ("3072 requested and 3040 written", no errno) once ended in a traceback."""
    train_dir = str(tmp_path / 'logs')
    result = run_under_a_file_size_limit(12_000, '--data_dir', cifar_dir, '--train_dir',
                                         train_dir, '--max_steps', '10', '--batch_size', '50')
    assert_user_error(result.returncode, result.stderr, 'mean_image.npy: File too large',
                      'ulimit -f')
    assert run_folders(train_dir) == []  # no half-made run folder


def test_file_size_limit_reached_by_the_summaries_mid_run(cifar_dir, tmp_path):
    """The events file reaches a real file-size limit long before the end: the run says so
    within 100 steps, naming the file, and stops with a checkpoint of that step (TensorFlow
    itself would find out only when it next flushed, at the end of this run)."""
    train_dir = str(tmp_path / 'logs')
    result = run_under_a_file_size_limit(
        70_000, '--data_dir', cifar_dir, '--train_dir', train_dir, '--max_steps', '3000',
        '--batch_size', '50', '--hidden1', '2')  # its checkpoints fit: 25 KB and 36 KB
    err = result.stderr
    (folder,) = run_folders(train_dir)
    match = re.search(r'Training stopped at step (\d+): Cannot write (\S+): File too large\. '
                      r'Saved checkpoint (\S+):', err)
    assert match, err
    step = int(match.group(1))
    assert step < 1000 and 'Step 1000' not in result.stdout
    assert os.path.basename(match.group(2)).startswith('events.out.tfevents')
    assert match.group(3) == os.path.join(folder, 'checkpoints', f'model.ckpt-{step}')
    assert result.returncode == 1 and 'Traceback' not in err
    assert checkpoint_steps(folder) == [0, step]
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
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        assert checkpoint_steps(folder) == [0, 100]
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


def test_a_stopped_tf2_run_names_its_tf2_checkpoint(tmp_path):
    """What a stopped TF2 twin's message offers to continue from: its newest checkpoint, in
    tf2_checkpoints/. The checkpoint's files are stand-ins: only their names are read."""
    run_dir = tmp_path / '20261204-120000_tf2_fc_max_steps=10'
    folder = run_dir / run_dirs.TF2_CHECKPOINT_FOLDER
    folder.mkdir(parents=True)
    (run_dir / run_dirs.PARAMS_FILE).write_text('{"model": "tf2_fc", "max_steps": 10}')
    for name in ('ckpt-5.index', 'ckpt-5.data-00000-of-00001'):
        (folder / name).write_bytes(b'')
    (folder / 'checkpoint').write_text('model_checkpoint_path: "ckpt-5"\n'
                                       'all_model_checkpoint_paths: "ckpt-5"\n')
    resume = f'python tf2/run_fc_model.py --train_dir {tmp_path} --resume'
    assert training_stops.what_is_kept(str(run_dir), resume) == (
        f'The last checkpoint saved, {folder / "ckpt-5"}, is intact: continue from it with: '
        f'{resume}')
