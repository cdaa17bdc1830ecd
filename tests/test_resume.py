"""--resume: a run continued is the run that was never stopped.

The resumed run prints the same lines and ends with the very same weights as
one in one go, after Ctrl-C too (the signals themselves: test_signals.py);
runs of the earlier layout and of the previous version of the code continue too.
"""

import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from run_folders import (
    checkpoint_path,
    checkpoint_steps,
    copies_older_by_name_newer_by_file_time,
    copy_of_old_run,
    files_of,
    run_folders,
)
from script_runs import (
    assert_user_error,
    ctrl_c_after_steps,
    finished_run,
    record_losses,
    recording_bars,
    run_in_new_folder,
)

import restore_model
import run_cnn_model
import run_fc_model
from tutorial_support import run_lock

SLOW_RUN = ['--seed', '3', '--batch_size', '50', '--learning_rate', '0.00001']


@pytest.fixture(scope='module')
def uninterrupted_run(cifar_dir, tmp_path_factory):
    """300 steps in one go: (train_dir, stdout)."""
    return run_in_new_folder(tmp_path_factory, 'whole', run_fc_model, '--data_dir', cifar_dir,
                             '--max_steps', '300', *SLOW_RUN)


@pytest.fixture(scope='module')
def resumed_run(cifar_dir, tmp_path_factory):
    """150 steps, then --resume --max_steps 300: (train_dir, first stdout, resumed stdout)."""
    train_dir, first = run_in_new_folder(tmp_path_factory, 'resumed', run_fc_model,
                                         '--data_dir', cifar_dir, '--max_steps', '150', *SLOW_RUN)
    resumed = finished_run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                           '--resume', '--max_steps', '300')
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
    assert checkpoint_steps(folder) == [0, 150, 300]
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
    """Ctrl-C in the middle of epoch 2 of 3, then --resume: the run ends like one run in one go.

    The same shuffles, the same dropout masks: the same Test Accuracy line and
    the very same weights after the last step. The resumed epoch's bar counts
    the 5 minibatches left, its line gives their mean cost; the next epoch is whole.
    """
    args = ['--data_dir', cifar_dir, '--seed', '6', '--epochs', '3', '--batch_size', '50']
    whole_dir, parted_dir = str(tmp_path / 'whole'), str(tmp_path / 'parted')
    losses = record_losses(monkeypatch)
    whole_bars = recording_bars(monkeypatch)
    code, whole, err = run(run_cnn_model, '--train_dir', whole_dir, *args)
    assert code == 0, err
    monkeypatch.undo()

    ctrl_c_after_steps(monkeypatch, 15)  # 10 steps an epoch: the middle of the second
    code, _, err = run(run_cnn_model, '--train_dir', parted_dir, *args)
    assert code == 130, err
    assert 'Training interrupted at step 15' in err
    assert (f'To continue where it stopped, run: python run_cnn_model.py --train_dir '
            f'{parted_dir} --data_dir {cifar_dir} --resume') in err
    monkeypatch.undo()
    resumed_bars = recording_bars(monkeypatch)
    code, resumed, err = run(run_cnn_model, '--train_dir', parted_dir, '--data_dir', cifar_dir,
                             '--resume')
    assert code == 0, err

    def test_line(out):
        return [line for line in out.splitlines() if line.startswith('Test Accuracy:')]

    assert len(test_line(whole)) == 1 and test_line(resumed) == test_line(whole)
    (whole_folder,) = run_folders(whole_dir)
    (parted_folder,) = run_folders(parted_dir)
    assert checkpoint_steps(parted_folder) == [0, 10, 15, 20, 30]
    whole_reader = tf.train.load_checkpoint(checkpoint_path(whole_folder, 30))
    parted_reader = tf.train.load_checkpoint(checkpoint_path(parted_folder, 30))
    for name in ('conv1/filters', 'conv2/filters', 'fc/weights', 'fc/biases', 'global_step'):
        np.testing.assert_array_equal(parted_reader.get_tensor(name),
                                      whole_reader.get_tensor(name), err_msg=name)

    assert [(bar.label, bar.total) for bar in resumed_bars] == [('Epoch 2/3', 5),
                                                                 ('Epoch 3/3', 10)]
    assert [done for done, _ in resumed_bars[0].updates] == [1, 2, 3, 4, 5]
    mean = sum(losses[step] for step in range(15, 20)) / 5
    assert float(resumed_bars[0].summary.rsplit(' ', 1)[1]) == pytest.approx(mean, abs=5.1e-5)
    assert resumed_bars[1].summary.rsplit(' ', 1)[1] == whole_bars[2].summary.rsplit(' ', 1)[1]


def test_resume_with_conflicting_flag(resumed_run, cifar_dir, run):
    """--resume --hidden1 20 on a hidden1=120 run: a clear error, the run untouched."""
    train_dir, _, _ = resumed_run
    before = files_of(train_dir)
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume', '--hidden1', '20')
    (folder,) = run_folders(train_dir)
    assert_user_error(code, err, f'Error: --hidden1 20 differs from the run being resumed in '
                      f'{folder} (120). A resumed run keeps its settings: drop the flag, or '
                      'start a new run without --resume.')
    assert 'Step' not in out
    assert files_of(train_dir) == before


def test_interrupted_run_resumes_to_its_own_max_steps(run, cifar_dir, tmp_path, monkeypatch):
    """Ctrl-C at step 120 (exit 130), then plain --resume: training ends at the run's 200."""
    train_dir = str(tmp_path / 'logs')
    ctrl_c_after_steps(monkeypatch, 120)
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--seed', '4', '--max_steps', '200', '--batch_size', '50')
    assert code == 130, err
    assert 'Training interrupted at step 120' in err and '--resume' in err
    (folder,) = run_folders(train_dir)
    assert checkpoint_steps(folder) == [0, 120]
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))

    monkeypatch.undo()
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--resume')
    assert code == 0, err
    assert 'max_steps = 200' in out.splitlines()
    assert checkpoint_steps(folder) == [0, 120, 200]


def test_resume_takes_the_newest_run_by_its_name(run, fc_run, short_fc_run, cifar_dir,
                                                 tmp_path):
    """Copies whose file times say the opposite of their names: --resume continues the run
    the name calls newest (its checkpoint of step 100), not the one copied last."""
    (old_run,) = run_folders(fc_run[0])  # 1100 steps
    train_dir = str(tmp_path / 'copies')
    _, newer = copies_older_by_name_newer_by_file_time(train_dir, old_run, short_fc_run[1])
    code, out, err = run(run_fc_model, '--train_dir', train_dir, '--data_dir', cifar_dir,
                         '--resume', '--max_steps', '150')
    assert code == 0, err
    assert f'Resuming from {checkpoint_path(newer, 100)}' in out.splitlines()
    assert checkpoint_steps(newer) == [0, 100, 150]


def test_fc_and_cnn_runs_in_one_train_dir(run, cifar_dir, fc_run_to_edit):
    """The README's order (fc, then cnn, same tf_logs): each resumes and restores its own."""
    train_dir, _ = fc_run_to_edit
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
    # A newer FC run beside it: the CNN's --resume still continues the CNN's own run
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--max_steps', '1', '--batch_size', '50')
    assert code == 0, err
    (cnn_folder,) = [folder for folder in run_folders(train_dir)
                     if '_cnn' in os.path.basename(os.path.normpath(folder))]
    code, out, err = run(run_cnn_model, '--train_dir', train_dir, '--resume', '--epochs', '2')
    assert code == 0, err
    assert f'Resuming from {checkpoint_path(cnn_folder, 5)}' in out.splitlines()
    assert checkpoint_steps(cnn_folder) == [0, 5, 10]


def test_runs_with_checkpoints_beside_their_summaries_still_restore_and_resume(run, cifar_dir,
                                                                            fc_run_to_edit):
    """A run folder of the earlier layout (no checkpoints/ folder) is found and continued."""
    train_dir, folder = fc_run_to_edit
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


def test_a_run_of_the_previous_version_resumes(run, cifar_dir, tmp_path):
    """A run folder the previous version wrote (commit 9fe31e3, 30 steps) continues to 40."""
    train_dir, folder = copy_of_old_run(tmp_path)
    code, out, err = run(run_fc_model, '--train_dir', train_dir, '--data_dir', cifar_dir,
                         '--resume', '--max_steps', '40')
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith('Resuming from') for line in lines), out
    assert 'hidden1 = 2' in lines  # the run's own setting, read from its params.json
    assert checkpoint_steps(folder) == [30, 40]
    assert os.path.isfile(os.path.join(folder, 'checkpoints', 'model.ckpt-40.index'))
