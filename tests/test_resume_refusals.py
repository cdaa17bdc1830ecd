"""What --resume refuses: a run still training, bad locks, hostile run folders, bad data.

A run folder may come from anywhere: links, checkpoint paths that lead out and
bad saved settings are refused, and nothing outside the run is read or written.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import cifar_files
import pytest
import tensorflow.compat.v1 as tf
from run_folders import checkpoint_steps, files_of, run_folders
from script_runs import assert_user_error

import run_fc_model
from tutorial_support import run_dirs, run_lock


def test_resume_refuses_a_run_still_training(run, cifar_dir, fc_run_to_edit):
    """--resume while another live process trains the run: a clear error, nothing touched."""
    train_dir, folder = fc_run_to_edit
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
    assert checkpoint_steps(folder) == [0, 100, 200]


@pytest.mark.parametrize('lock', ['garbage', 'zero', 'huge', 'reused-pid', 'folder', 'fifo'])
def test_a_damaged_or_stale_lock(run, cifar_dir, fc_run_to_edit, lock):
    """A lock no live run holds is taken over; one that is no file is named, never a hang."""
    train_dir, folder = fc_run_to_edit
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
        assert checkpoint_steps(folder) == [0, 100]
    else:
        assert code == 0, err
        assert checkpoint_steps(folder) == [0, 100, 200]
        assert not os.path.exists(path)


def test_params_json_is_never_written_through_a_link(run, cifar_dir, fc_run_to_edit, tmp_path):
    """A params.json that links elsewhere: named and refused; the file it points at is intact."""
    train_dir, folder = fc_run_to_edit
    params = os.path.join(folder, run_dirs.PARAMS_FILE)
    victim = tmp_path / 'my-notes.txt'
    victim.write_text('mine\n')
    os.remove(params)
    os.symlink(victim, params)
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume', '--max_steps', '200')
    assert_user_error(code, err, params, 'link')
    assert victim.read_text() == 'mine\n' and os.path.islink(params)
    assert checkpoint_steps(folder) == [0, 100]


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
def test_resume_treats_a_run_folder_as_data(run, cifar_dir, fc_run_to_edit, tmp_path, how,
                                            phrases):
    """Links, checkpoint paths leading out, bad saved settings: refused, nothing written."""
    train_dir, folder = fc_run_to_edit
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


def test_resume_from_a_damaged_checkpoint(run, cifar_dir, fc_run_to_edit):
    """A truncated checkpoint data file on --resume: a clear error, no lock or events left."""
    train_dir, folder = fc_run_to_edit
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


def test_resume_on_other_data_is_refused(run, fc_run_to_edit, tmp_path):
    """--resume --data_dir with a training set of another size: a clear error."""
    train_dir, _ = fc_run_to_edit
    smaller = cifar_files.write_dataset(str(tmp_path / 'smaller'), train_per_batch=60)
    code, out, err = run(run_fc_model, '--data_dir', smaller, '--train_dir', train_dir,
                         '--resume', '--max_steps', '200')
    assert_user_error(code, err, '500 images', '300', 'same --data_dir')
    assert 'Step' not in out


def test_resume_refuses_to_continue_an_older_run_than_the_newest(run, cifar_dir, fc_run_to_edit,
                                                                 tmp_path, monkeypatch):
    """The newest run died before its first checkpoint (a full disk at step 0): --resume
    says so, not an older run."""
    train_dir, _ = fc_run_to_edit

    def disk_full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, 'No space left on device')

    with monkeypatch.context() as patched:
        patched.setattr(tf.train.Saver, 'save', disk_full)
        code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                           '--batch_size', '50')
    assert code == 1 and 'No checkpoint of this run had been saved' in err
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
    assert checkpoint_steps(older) == [0, 100, 200]


def test_resume_without_checkpoint(run, no_data, tmp_path):
    """--resume in an empty train_dir: says there is nothing to resume from."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', no_data, '--train_dir', train_dir,
                       '--resume')
    assert_user_error(code, err, '--resume', f'no checkpoint in {train_dir}',
                      'without --resume')
    assert run_folders(train_dir) == []
    assert not os.path.exists(os.path.dirname(no_data))
