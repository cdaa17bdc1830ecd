"""restore_model.py: the run's test accuracy again, and checkpoints it cannot use.

It finds the model a run trained, repeats its printed test accuracy, and says
clearly when a checkpoint is missing, does not fit or is damaged, or when a
run folder handed over names settings or data that cannot be used.
"""

import json
import os
import re
import shutil

import cifar_files
import pytest
import tensorflow.compat.v1 as tf
from run_folders import (
    checkpoint_path,
    copies_older_by_name_newer_by_file_time,
    copy_of_old_run,
    files_of,
    run_folders,
)
from script_runs import assert_user_error, line_value, run_in_new_folder

import restore_model
import run_cnn_model
import run_fc_model
from tutorial_support import cifar10_download, run_dirs


@pytest.fixture(scope='module')
def fc_checkpoint(cifar_dir, tmp_path_factory):
    """A train_dir with a short run_fc_model run (default hidden1=120)."""
    return run_in_new_folder(tmp_path_factory, 'fc', run_fc_model, '--data_dir', cifar_dir,
                             '--max_steps', '20', '--batch_size', '50', '--seed', '1')[0]


def test_restore_fc_prints_the_same_test_accuracy(run, fc_run, cifar_dir):
    """restore_model restores the newest checkpoint (step 1100) and repeats the figure."""
    train_dir, train_out = fc_run
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    lines = out.splitlines()
    assert 'Restoring variables from checkpoint' in lines
    assert 'Current step: 1100' in lines
    trained = 'Test accuracy ' + line_value(train_out, 'Test accuracy ')
    assert [line for line in lines if line.startswith('Test accuracy')] == [trained]
    assert lines[-1].startswith('Total time:')


def test_restore_after_validation_split_repeats_the_test_accuracy(run, cifar_dir, tmp_path):
    """A run that held out training images: restore_model gives its test accuracy too.

    The held-out images change the training mean the test images are centred
    with; restoring must use the run's own mean image.
    """
    train_dir = str(tmp_path / 'logs')
    code, train_out, err = run(
        run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir, '--max_steps', '100',
        '--batch_size', '50', '--learning_rate', '0.00001', '--seed', '2',
        '--validation_size', '400')
    assert code == 0, err
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert line_value(out, 'Test accuracy ') == line_value(train_out, 'Test accuracy ')


def test_restore_detects_the_cnn_and_repeats_its_test_accuracy(run, cnn_run, cifar_dir,
                                                               tmp_path):
    """Without --model, restore_model finds the CNN and prints the run's test accuracy,
    from a copy of its train_dir elsewhere (its checkpoints are recorded by relative path)."""
    train_dir, train_out = cnn_run
    copy = shutil.copytree(train_dir, str(tmp_path / 'copied'))
    code, out, err = run(restore_model, '--train_dir', copy, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Restoring variables from checkpoint' in out.splitlines()
    assert 'Current step: 20' in out.splitlines()
    assert line_value(out, 'Test accuracy ') == line_value(train_out, 'Test Accuracy: ')


def test_a_run_of_the_previous_version_restores(run, cifar_dir, tmp_path):
    """A run folder the previous version wrote (commit 9fe31e3): the accuracy it printed."""
    train_dir, _ = copy_of_old_run(tmp_path)
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir,
                         '--hidden1', '2')
    assert code == 0, err
    assert 'Current step: 30' in out.splitlines()
    assert 'Test accuracy 0.16' in out.splitlines()


def test_a_run_of_the_previous_version_counts_as_older_than_any_other(run, short_fc_run,
                                                                     cifar_dir, tmp_path):
    """Beside a run of this version, a run folder of the previous one (its name records no
    start; it trained 30 steps with --hidden1 2) is the older: the new run is restored."""
    train_dir, _ = copy_of_old_run(tmp_path)
    new_run = os.path.normpath(short_fc_run[1])
    shutil.copytree(new_run, os.path.join(train_dir, os.path.basename(new_run)))
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Current step: 100' in out.splitlines()


def test_newest_run_is_the_one_its_name_says(run, fc_run, short_fc_run, cifar_dir, tmp_path):
    """Copies whose file times say the opposite of their names: the name wins.

    A copy of a run folder has new file times, so file times would make an old
    run the newest; the folder's name records when the run started.
    """
    (old_run,) = run_folders(fc_run[0])  # 1100 steps
    train_dir = str(tmp_path / 'copies')
    copies_older_by_name_newer_by_file_time(train_dir, old_run, short_fc_run[1])
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Current step: 100' in out.splitlines()


def test_restore_without_checkpoint(run, cifar_dir, tmp_path):
    """An empty train_dir: the message says there is no checkpoint and what to do."""
    code, out, err = run(restore_model, '--train_dir', str(tmp_path), '--data_dir', cifar_dir)
    assert_user_error(code, err, f'There is no checkpoint in {tmp_path}. Train a model first '
                      '(python run_fc_model.py, run_cnn_model.py or run_deep_cnn_model.py), or '
                      'point --train_dir at the folder it trained into.')
    assert 'Test accuracy' not in out


def test_restore_with_other_hidden1(run, cifar_dir, tmp_path):
    """Trained with --hidden1 20, restored with the default 120: says what it found."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--hidden1', '20', '--max_steps', '10', '--batch_size', '50')
    assert code == 0, err
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    (folder,) = run_folders(train_dir)
    assert_user_error(code, err, f'The checkpoint {checkpoint_path(folder, 10)} holds a '
                      'two-layer network with hidden1=20, but the flags describe a two-layer '
                      'network with hidden1=120 (Layer1/weights has shape [3072, 20], expected '
                      '[3072, 120]; Layer1/biases has shape [20], expected [120]; '
                      'Layer2/weights has shape [20, 10], expected [120, 10]). Pass the flags '
                      'the run was trained with.')
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


@pytest.mark.parametrize('model, expected', [('auto', 'a model of this suite'),
                                             ('cnn', 'the convolutional network')])
def test_restore_of_another_programs_checkpoint(run, cifar_dir, tmp_path, model, expected):
    """--train_dir holding a checkpoint no script of the suite wrote (beside a params.json
    that says 'cnn', for --model cnn): the message names the first of its variables and
    what was expected, and nothing is restored."""
    with tf.Graph().as_default():
        for name in ('step', 'kernel', 'bias', 'alpha', 'gamma', 'beta'):
            tf.Variable(0.0, name=name)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            tf.train.Saver().save(sess, str(tmp_path / 'model.ckpt'), global_step=3)
    if model != 'auto':
        (tmp_path / run_dirs.PARAMS_FILE).write_text(json.dumps({'model': model}))
    code, out, err = run(restore_model, '--train_dir', str(tmp_path), '--data_dir', cifar_dir,
                         '--model', model)
    assert_user_error(code, err, 'The checkpoint holds an unknown model (variables: alpha, '
                      f'beta, bias, gamma, kernel), but --model {model} expects {expected}.')
    assert 'Test accuracy' not in out


@pytest.mark.parametrize('hidden1, problems', [
    (120, 'Layer2/biases is missing; global_step is missing'),
    # five problems: the first three are named
    (20, 'Layer1/weights has shape [3072, 20], expected [3072, 120]; Layer1/biases has shape '
         '[20], expected [120]; Layer2/weights has shape [20, 10], expected [120, 10]')])
def test_restore_of_a_two_layer_checkpoint_without_its_last_biases(run, cifar_dir, tmp_path,
                                                                    hidden1, problems):
    """A checkpoint of the two-layer network's variables but one (cut by hand, or by another
    program): the message names what does not fit, and nothing is restored."""
    with tf.Graph().as_default():
        for name, shape in (('Layer1/weights', [3072, hidden1]), ('Layer1/biases', [hidden1]),
                            ('Layer2/weights', [hidden1, 10])):
            tf.Variable(tf.zeros(shape), name=name)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            tf.train.Saver().save(sess, str(tmp_path / 'model.ckpt'), global_step=3)
    code, out, err = run(restore_model, '--train_dir', str(tmp_path), '--data_dir', cifar_dir)
    assert_user_error(code, err, f'The checkpoint {tmp_path / "model.ckpt-3"} holds a '
                      f'two-layer network with hidden1={hidden1}, but the flags describe a '
                      f'two-layer network with hidden1=120 ({problems}). Pass the flags the run '
                      'was trained with.')
    assert 'Test accuracy' not in out


@pytest.mark.parametrize('damaged', ['.data-00000-of-00001', '.index', '/'])
def test_restore_damaged_checkpoint(run, cifar_dir, tmp_path, damaged):
    """Junk bytes in a checkpoint file (or a folder of the checkpoint's own name beside its
    files, which TensorFlow then reads as a folder of checkpoints): a clear error naming it;
    the files are kept."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--max_steps', '20', '--batch_size', '50', '--seed', '1')
    assert code == 0, err
    (folder,) = run_folders(train_dir)
    prefix = os.path.join(folder, 'checkpoints', 'model.ckpt-20')
    if damaged == '/':
        os.mkdir(prefix)
    else:
        with open(prefix + damaged, 'wb') as f:
            f.write(b'this is not a checkpoint' * 7)
    before = files_of(train_dir)
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    unreadable = ('cannot be read; it is damaged or incomplete', 'to use the checkpoint before it.')
    damage, remedy = {'.index': unreadable, '/': unreadable,
                      '.data-00000-of-00001': ('cannot be restored; it is damaged',
                                               'to use the one before.')}[damaged]
    assert_user_error(code, err, f'Error: The checkpoint {prefix} {damage} (')
    # ... (TensorFlow's reason). Delete its files (...model.ckpt-20.*) ...
    reason = re.fullmatch(rf'Error: The checkpoint {re.escape(prefix)} {damage} \((.+)\)\. '
                          rf'Delete its files \({re.escape(prefix)}\.\*\) {re.escape(remedy)}',
                          err.strip(), re.DOTALL)
    assert reason and reason.group(1) != 'None', err
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


def test_a_checkpoint_saved_without_its_step_in_the_name_restores(run, cifar_dir,
                                                                  fc_checkpoint, tmp_path):
    """A checkpoint a learner saved by hand without global_step (model.ckpt, no -20): the
    newest checkpoint all the same, restored at the step it holds."""
    train_dir = str(tmp_path / 'stepless')
    shutil.copytree(fc_checkpoint, train_dir)
    (folder,) = run_folders(train_dir)
    checkpoints = os.path.join(folder, 'checkpoints')
    for name in os.listdir(checkpoints):
        if name.startswith('model.ckpt-20.'):
            os.rename(os.path.join(checkpoints, name),
                      os.path.join(checkpoints, name.replace('-20.', '.', 1)))
    with open(os.path.join(checkpoints, 'checkpoint'), 'w') as f:
        f.write('model_checkpoint_path: "model.ckpt"\n')
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Current step: 20' in out.splitlines()


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
