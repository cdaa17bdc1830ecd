"""run_deep_cnn_model.py (part 4): its lines, TensorBoard files, --resume, flags, restoring.

One two-epoch run of a narrow network (--width 8) on `cifar_dir`, read as a
user reads it; then an interrupted and resumed run, bad flags, and
restore_model.py on the run.
"""

import json
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from event_files import hparams_of, picture, projector_embedding, read_events, scalars
from run_folders import checkpoint_path, checkpoint_steps, run_folders
from script_runs import assert_user_error, ctrl_c_after_steps, line_value, run_in_new_folder

import restore_model
import run_deep_cnn_model

ARGS = ('--epochs', '2', '--batch_size', '50', '--width', '8')


@pytest.fixture(scope='module')
def deep_run(cifar_dir, tmp_path_factory):
    """A two-epoch run, 10 batches of 50 an epoch: (train_dir, its run folder, stdout)."""
    train_dir, out = run_in_new_folder(tmp_path_factory, 'deep_cnn_logs', run_deep_cnn_model,
                                       '--data_dir', cifar_dir, '--seed', '1', *ARGS)
    (folder,) = run_folders(train_dir)
    return train_dir, folder, out


def test_deep_cnn_prints_progress_and_accuracies(deep_run):
    """Cost lines after epochs 0 and 1 (every 5 and the last), train and test accuracy, time."""
    _, folder, out = deep_run
    assert re.fullmatch(r'\d{8}-\d{6}_deep_cnn_batch_size=50_epochs=2_seed=1_width=8',
                        os.path.basename(folder))
    cost_lines = re.findall(r'^Cost after epoch (\d): (\S+), train accuracy: (\S+), '
                            r'validation accuracy: (\S+)$', out, re.MULTILINE)
    assert [line[0] for line in cost_lines] == ['0', '1']
    test_accuracy = float(line_value(out, 'Test Accuracy: '))
    assert 0 <= float(line_value(out, 'Train Accuracy: ')) <= 1 and 0 <= test_accuracy <= 1
    # Without --validation_size the validation set is the test set
    assert float(cost_lines[1][3]) == pytest.approx(test_accuracy, abs=1e-6)
    assert re.fullmatch(r'Total time: *\d+\.\d\ds', out.splitlines()[-1])
    assert checkpoint_steps(folder) == [10, 20]


def test_deep_cnn_tensorboard_files(deep_run):
    """HParams with every ingredient's flag; the learning rate, accuracies, filters, Projector."""
    _, folder, out = deep_run
    assert hparams_of(folder) == {
        'model': 'deep_cnn', 'batch_size': 50, 'epochs': 2, 'width': 8, 'seed': 1,
        'learning_rate': 0.4, 'warmup': 0.2, 'momentum': 0.9, 'weight_decay': 5e-4,
        'label_smoothing': 0.2, 'flip': True, 'translate': 2, 'test_flip': True,
        'batch_norm': True, 'ema_decay': 0.0, 'validation_size': 0}
    # Summaries every 100 steps: step 0 only, where the warm-up starts at 0
    assert scalars(folder, 'learning_rate') == [(0, 0.0)]
    assert [step for step, _ in scalars(os.path.join(folder, 'train'), 'accuracy')] \
        == [10, 20, 20]
    (test,) = scalars(folder, 'test_accuracy')
    assert test == (20, pytest.approx(float(line_value(out, 'Test Accuracy: ')), abs=1e-6))
    tags = {tag for _, tag, _ in read_events(folder)}
    assert {'Loss/loss', 'confusion_matrix', 'conv1_filters'} <= tags
    filters = tf.train.load_checkpoint(checkpoint_path(folder, 20)).get_tensor(
        'deep_cnn/block1/conv1/filters')
    assert filters.shape == (3, 3, 3, 8)
    assert picture(folder, 'conv1_filters').shape == (4 + 1 * 28, 4 + 8 * 28, 3)
    embedding = projector_embedding(folder)
    assert embedding.tensor_name == '32 features'  # the 4 x 8 channels of block 3
    features = np.loadtxt(os.path.join(folder, embedding.tensor_path), delimiter='\t')
    assert features.shape == (100, 32)


def test_deep_cnn_resumed_mid_epoch_equals_the_uninterrupted_run(run, cifar_dir, tmp_path,
                                                                 monkeypatch, deep_run):
    """Ctrl-C in the middle of epoch 1, then --resume: the same Test Accuracy, the same weights.

    The same shuffles, the same flips and shifts, the same learning rates and
    the same moving statistics of batch norm.
    """
    _, whole_folder, whole = deep_run
    assert_resume_identity(run, cifar_dir, tmp_path, monkeypatch, whole_folder, whole,
                           ('--seed', '1', *ARGS), 'deep_cnn/block3/conv2/moving_variance')


def assert_resume_identity(run, cifar_dir, tmp_path, monkeypatch, whole_folder, whole, args,
                           saved_name):
    """Interrupts a run of args at step 15 of 20, resumes it: its output and checkpoint as whole's.

    saved_name: a variable that must be among those compared.
    """
    ctrl_c_after_steps(monkeypatch, 15)  # 10 steps an epoch: the middle of the second
    train_dir = str(tmp_path / 'parted')
    code, _, err = run(run_deep_cnn_model, '--train_dir', train_dir, '--data_dir', cifar_dir,
                       *args)
    assert code == 130, err
    assert 'Training interrupted at step 15' in err
    assert 'python run_deep_cnn_model.py --train_dir' in err
    monkeypatch.undo()
    code, resumed, err = run(run_deep_cnn_model, '--train_dir', train_dir, '--data_dir',
                             cifar_dir, '--resume')
    assert code == 0, err
    assert line_value(resumed, 'Test Accuracy: ') == line_value(whole, 'Test Accuracy: ')
    (parted_folder,) = run_folders(train_dir)
    assert checkpoint_steps(parted_folder) == [10, 15, 20]
    whole_reader = tf.train.load_checkpoint(checkpoint_path(whole_folder, 20))
    parted_reader = tf.train.load_checkpoint(checkpoint_path(parted_folder, 20))
    names = whole_reader.get_variable_to_shape_map()
    assert saved_name in names
    for name in names:
        np.testing.assert_array_equal(parted_reader.get_tensor(name),
                                      whole_reader.get_tensor(name), err_msg=name)


@pytest.mark.parametrize('args, phrase', [
    (['--width', '0'], '--width is 0; it must be greater than 0'),
    (['--width', '5000'], '--width is 5000; it can be at most 1,024'),
    (['--translate', '9'], '--translate is 9; it can be at most 8'),
    (['--translate', '-1'], '--translate is -1; it must be 0 or more'),
    (['--label_smoothing', '1'], '--label_smoothing is 1.0; it must be at least 0 and below 1'),
    (['--warmup', '-0.1'], '--warmup is -0.1; it must be at least 0 and below 1'),
    (['--momentum', '1'], '--momentum is 1.0; it must be at least 0 and below 1'),
    (['--weight_decay', '-1e-4'], '--weight_decay is -0.0001; it must be 0 or more'),
    (['--flip=maybe'], '--flip=maybe'),
    (['--ema_decay', '1'], '--ema_decay is 1.0; it must be at least 0 and below 1'),
])
def test_bad_flags_are_refused_before_loading_data(run, no_data, tmp_path, args, phrase):
    """Exit 1 naming the flag and its rule; no data fetched, no run folder made."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_deep_cnn_model, '--data_dir', no_data, '--train_dir', train_dir,
                       *args)
    assert_user_error(code, err, phrase)
    assert not os.path.exists(os.path.dirname(no_data))
    assert not os.path.exists(train_dir)


def test_restore_finds_the_deep_cnn_and_repeats_its_test_accuracy(run, deep_run, cifar_dir):
    """By itself and with --model deep_cnn: the run's width rebuilt, its Test Accuracy again."""
    train_dir, _, train_out = deep_run
    for model_args in ([], ['--model', 'deep_cnn']):
        code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir,
                             *model_args)
        assert code == 0, err
        assert 'Current step: 20' in out.splitlines()
        assert line_value(out, 'Test accuracy ') == line_value(train_out, 'Test Accuracy: ')
    code, _, err = run(restore_model, '--train_dir', train_dir, '--model', 'cnn')
    assert_user_error(code, err, 'deep convolutional network', '--model cnn')


def test_restore_rebuilds_the_run_without_batch_norm_and_test_flip(run, cifar_dir, tmp_path):
    """A run with --nobatch_norm --notest_flip: restore_model builds that network, same figure."""
    train_dir = str(tmp_path / 'logs')
    code, train_out, err = run(run_deep_cnn_model, '--train_dir', train_dir, '--data_dir',
                               cifar_dir, '--seed', '2', '--epochs', '1', '--batch_size', '50',
                               '--width', '4', '--nobatch_norm', '--notest_flip',
                               '--learning_rate', '0.01')
    assert code == 0, err
    (folder,) = run_folders(train_dir)
    names = tf.train.load_checkpoint(checkpoint_path(folder, 10)).get_variable_to_shape_map()
    assert 'deep_cnn/block1/conv1/biases' in names
    assert not any('moving_mean' in name for name in names)
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert line_value(out, 'Test accuracy ') == line_value(train_out, 'Test Accuracy: ')


EMA_ARGS = ('--seed', '3', '--epochs', '2', '--batch_size', '50', '--width', '4',
            '--ema_decay', '0.9')


@pytest.fixture(scope='module')
def ema_run(cifar_dir, tmp_path_factory):
    """A two-epoch run of a narrow network with --ema_decay 0.9: (train_dir, run folder, stdout)."""
    train_dir, out = run_in_new_folder(tmp_path_factory, 'ema_logs', run_deep_cnn_model,
                                       '--data_dir', cifar_dir, *EMA_ARGS)
    (folder,) = run_folders(train_dir)
    return train_dir, folder, out


def test_restore_tests_the_averaged_weights_of_an_ema_run(run, ema_run, cifar_dir):
    """--ema_decay is saved with the run; restore_model tests the averages: the run's figure.

    The checkpoint holds each variable and its moving average, which differ.
    """
    train_dir, folder, train_out = ema_run
    with open(os.path.join(folder, 'params.json')) as params_file:
        assert json.load(params_file)['ema_decay'] == 0.9
    reader = tf.train.load_checkpoint(checkpoint_path(folder, 20))
    weights = reader.get_tensor('deep_cnn/fc/weights')
    averaged = reader.get_tensor('deep_cnn/fc/weights/ExponentialMovingAverage')
    assert not np.allclose(weights, averaged)
    assert 'deep_cnn/block1/conv1/moving_mean/ExponentialMovingAverage' \
        in reader.get_variable_to_shape_map()
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert line_value(out, 'Test accuracy ') == line_value(train_out, 'Test Accuracy: ')


def test_ema_run_resumed_mid_epoch_equals_the_uninterrupted_run(run, cifar_dir, tmp_path,
                                                                monkeypatch, ema_run):
    """With --ema_decay: the averages, saved in the checkpoints, continue as if never stopped."""
    _, whole_folder, whole = ema_run
    assert_resume_identity(run, cifar_dir, tmp_path, monkeypatch, whole_folder, whole,
                           EMA_ARGS, 'deep_cnn/fc/weights/ExponentialMovingAverage')
