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
from run_folders import checkpoint_path, checkpoint_steps, files_of, run_folders
from script_runs import PROJECT_DIR, assert_user_error

import run_fc_model
from tutorial_support import run_dirs, run_lock
from tutorial_support.errors import UserError

# A process that takes the lock as a runner does, says so, and holds it until killed.
# On Linux its name holds ') ', as a process's name may: the lock must still
# record its start, which /proc/PID/stat gives after the name in parentheses.
LOCK_HOLDER = """
import os
import sys
from tutorial_support import run_lock
if os.path.isfile('/proc/self/comm'):
    with open('/proc/self/comm', 'w') as f:
        f.write('run) 2 3')
with run_lock.locked(sys.argv[1]):
    print('holding', flush=True)
    sys.stdin.read()
"""


def test_resume_refuses_a_run_still_training(run, cifar_dir, fc_run_to_edit):
    """--resume while another live process holds the run's lock: a clear error, nothing touched.

    The holder is a real process that took the lock through `run_lock.locked`, so
    the lock has its real contents (process id and start time). Killed, it
    leaves the lock behind: a stale lock, which the next --resume takes over.
    """
    train_dir, folder = fc_run_to_edit
    holder = subprocess.Popen([sys.executable, '-c', LOCK_HOLDER, folder], cwd=PROJECT_DIR,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'holding\n'
        lock = os.path.join(folder, run_lock.LOCK_FILE)
        with open(lock) as f:
            pid, start = f.read().split()
        assert pid == str(holder.pid)
        if os.path.isfile('/proc/uptime'):  # Linux: the start, in clock ticks since boot
            with open('/proc/uptime') as f:
                now = float(f.read().split()[0]) * os.sysconf('SC_CLK_TCK')
            assert now - 60 * os.sysconf('SC_CLK_TCK') < int(start) <= now  # a moment ago
        before = files_of(train_dir)
        code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                           '--resume', '--max_steps', '200')
        assert_user_error(code, err, f'The run in {folder} is being trained by another process '
                          f'(pid {holder.pid}, as its lock {lock} says). Wait for it to end, or '
                          'stop it, before resuming; if no training is running, remove that '
                          'file.')
        assert files_of(train_dir) == before
        assert holder.poll() is None  # asked whether it runs, never sent a signal
    finally:
        holder.kill()  # SIGKILL: the lock stays, naming a process that is gone
        holder.wait()
    assert os.path.isfile(os.path.join(folder, run_lock.LOCK_FILE))
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--resume', '--max_steps', '200')
    assert code == 0, err
    assert checkpoint_steps(folder) == [0, 100, 200]
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))


@pytest.mark.parametrize('text', ['3000000000', '4194304 1', '-5'])
def test_locks_of_no_possible_process_are_free(tmp_path, text):
    """Ids no process can have (beyond Linux's largest, beyond a C int, negative): free."""
    with open(tmp_path / run_lock.LOCK_FILE, 'w') as f:
        f.write(text)
    assert run_lock.check_not_in_use(str(tmp_path)) is None


def test_a_lock_held_by_process_1(tmp_path):
    """Process 1 (a script started as a container's first process) holds its lock too."""
    start = run_lock.process_start(1)
    with open(tmp_path / run_lock.LOCK_FILE, 'w') as f:
        f.write(f'1 {start}' if start else '1')
    with pytest.raises(UserError, match='being trained by another process \\(pid 1,'):
        run_lock.check_not_in_use(str(tmp_path))


def test_a_lock_held_by_another_users_process(tmp_path, monkeypatch):
    """A live process this user may not signal (another user's) still holds its lock."""
    holder = os.getppid()
    with open(tmp_path / run_lock.LOCK_FILE, 'w') as f:
        f.write(f'{holder} {run_lock.process_start(holder)}')

    def not_permitted(pid, signal_number):
        raise PermissionError(1, 'Operation not permitted')
    monkeypatch.setattr(os, 'kill', not_permitted)
    with pytest.raises(UserError, match=f'being trained by another process \\(pid {holder},'):
        run_lock.check_not_in_use(str(tmp_path))


@pytest.mark.parametrize('lock', ['garbage', 'zero', 'huge', 'reused-pid', 'folder', 'fifo'])
def test_a_damaged_or_stale_lock(run, cifar_dir, fc_run_to_edit, lock):
    """A lock no live run holds is taken over; one that is no file is named, never a hang.

    'reused-pid': the lock's process id now belongs to another live process
    (started later), which the check leaves alone.
    """
    train_dir, folder = fc_run_to_edit
    path = os.path.join(folder, run_lock.LOCK_FILE)
    other = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    if lock == 'folder':
        os.mkdir(path)
    elif lock == 'fifo':
        os.mkfifo(path)  # reading it would wait forever
    else:
        text = {'garbage': 'not a pid', 'zero': '0', 'huge': '9' * 30,
                'reused-pid': f'{other.pid} 1'}[lock]
        with open(path, 'w') as f:
            f.write(text)
    try:
        code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                           '--resume', '--max_steps', '200')
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
    if lock in ('folder', 'fifo'):
        assert_user_error(code, err, f'{path} is not a lock file of this suite (a folder, a '
                          'link or a special file). Remove it, then run again.')
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


def stopped_before_its_first_checkpoint(folder, copy, model=None):
    """A copy of a run folder, under a name that records another start, without its
    checkpoints: a run (of `model`, if given) that stopped before its first one."""
    shutil.copytree(folder, copy)
    shutil.rmtree(os.path.join(copy, 'checkpoints'))
    if model:
        params_path = os.path.join(copy, run_dirs.PARAMS_FILE)
        with open(params_path) as f:
            params = json.load(f)
        with open(params_path, 'w') as f:
            json.dump(dict(params, model=model), f)
    return copy


def test_resume_continues_past_an_older_run_that_stopped_early(run, cifar_dir, fc_run_to_edit):
    """A run older than the one with the newest checkpoint stopped before its first
    checkpoint: --resume continues the newer run all the same."""
    train_dir, folder = fc_run_to_edit
    stopped_before_its_first_checkpoint(folder, os.path.join(train_dir, '20240101-120000_fc'))
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume', '--max_steps', '200')
    assert code == 0, err
    assert f'Resuming from {checkpoint_path(folder, 100)}' in out.splitlines()
    assert checkpoint_steps(folder) == [0, 100, 200]


def test_resume_sees_the_newest_run_past_folders_it_passes_over(run, cifar_dir, fc_run_to_edit):
    """Between the run with the newest checkpoint and a newer one that stopped before its
    first: a run of another model and a folder whose params.json cannot be read. --resume
    looks past both, finds the newest run of its model, and refuses to skip it."""
    train_dir, folder = fc_run_to_edit
    stopped_before_its_first_checkpoint(folder, os.path.join(train_dir, '29990101-000000_cnn'),
                                        model='cnn')
    damaged = stopped_before_its_first_checkpoint(
        folder, os.path.join(train_dir, '29990101-000001_fc'))
    with open(os.path.join(damaged, run_dirs.PARAMS_FILE), 'w') as f:
        f.write('{"model": "fc", ')
    newest = stopped_before_its_first_checkpoint(folder,
                                                 os.path.join(train_dir, '29990101-000002_fc'))
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume', '--max_steps', '200')
    assert_user_error(code, err, newest, 'before its first checkpoint', folder)
    assert 'Step' not in out


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
    ('state-absolute', ['Note: {state} names ', 'outside its folder', 'no checkpoint']),
    ('state-dot-dot', ['Note: {state} names ', 'outside its folder', 'no checkpoint']),
    ('bad-value', ['Error: The settings saved in {params} are not valid (Bad flag value: '
                   '--learning_rate is -1.0; it must be greater than 0). The run in {folder} '
                   'cannot be continued: start a new run without --resume.']),
    ('wrong-type', ["Error: {params} gives hidden1 = '120; rm -rf ~', which is not a value of "
                    '--hidden1: the run in {folder} cannot be continued. Start a new run '
                    'without --resume.']),
    ('huge-number', ['Error: {params} gives learning_rate = 1000', ', which is not a value of '
                     '--learning_rate: the run in {folder} cannot be continued. Start a new run '
                     'without --resume.']),
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
    params = os.path.join(folder, run_dirs.PARAMS_FILE)
    state = os.path.join(folder, 'checkpoints', 'checkpoint')
    assert_user_error(code, err, *(phrase.replace('{params}', params).replace('{folder}', folder)
                                   .replace('{state}', state) for phrase in phrases))
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
