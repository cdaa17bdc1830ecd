"""run_deep_cnn_model.py (part 4): its lines, TensorBoard files, --resume, flags, restoring.

One two-epoch run of a narrow network (8 channels a block) on `cifar_dir`, read as a
user reads it; then an interrupted and resumed run, bad flags, and
restore_model.py on the run.
"""

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

ARGS = ('--epochs', '2', '--batch_size', '50', '--block1_width', '8', '--block2_width', '8',
        '--block3_width', '8')


@pytest.fixture(scope='module')
def deep_run(cifar_dir, tmp_path_factory):
    """A two-epoch run, 10 batches of 50 an epoch: (train_dir, its run folder, stdout)."""
    train_dir, out = run_in_new_folder(tmp_path_factory, 'deep_cnn_logs', run_deep_cnn_model,
                                       '--data_dir', cifar_dir, '--seed', '1', *ARGS)
    (folder,) = run_folders(train_dir)
    return train_dir, folder, out


def test_deep_cnn_prints_progress_and_accuracies(deep_run):
    """A cost line after every epoch, with its time; the test accuracy; checkpoints 0, 10, 20."""
    _, folder, out = deep_run
    assert re.fullmatch(r'\d{8}-\d{6}_deep_cnn_batch_size=50_block1_width=8_block2_width=8_'
                        r'block3_width=8_epochs=2_seed=1', os.path.basename(folder))
    cost_lines = re.findall(r'^Cost after epoch (\d): (\S+), train accuracy: (\S+), '
                            r'validation accuracy: (\S+) \((\d+\.\d)s\)$', out, re.MULTILINE)
    assert [line[0] for line in cost_lines] == ['0', '1']
    test_accuracy = float(line_value(out, 'Test Accuracy: '))
    assert all(0 <= float(value) <= 1 for line in cost_lines for value in line[2:4])
    assert 0 <= test_accuracy <= 1
    assert re.fullmatch(r'Total time: *\d+\.\d\ds', out.splitlines()[-1])
    # Step 0: the initial weights, from which a TF2 twin can start
    assert checkpoint_steps(folder) == [0, 10, 20]


def test_deep_cnn_tensorboard_files(deep_run):
    """HParams with every ingredient's flag; the learning rate, accuracies, filters, Projector."""
    _, folder, out = deep_run
    assert hparams_of(folder) == {
        'model': 'deep_cnn', 'batch_size': 50, 'epochs': 2.0, 'seed': 1, 'block1_width': 8,
        'block2_width': 8, 'block3_width': 8, 'learning_rate': 11.5, 'momentum': 0.85,
        'weight_decay': 0.0153, 'bias_scaler': 64.0, 'label_smoothing': 0.2, 'warmup': 0.23,
        'whiten_bias_epochs': 3, 'flip': 'alternating', 'translate': 2,
        'batch_norm_momentum': 0.6, 'scaling_factor': pytest.approx(1 / 9), 'tta_level': 2,
        'whiten': True, 'dirac': True, 'lookahead': True, 'activation': 'gelu',
        'trainable_bn_scale': False, 'validation_size': 0}
    # Summaries every 100 steps: step 0 only, where the warm-up starts at 0.2 x 11.5
    assert scalars(folder, 'learning_rate') == [(0, pytest.approx(2.3))]
    assert [step for step, _ in scalars(os.path.join(folder, 'train'), 'accuracy')] == [10, 20]
    (test,) = scalars(folder, 'test_accuracy')
    assert test == (20, pytest.approx(float(line_value(out, 'Test Accuracy: ')), abs=1e-6))
    tags = {tag for _, tag, _ in read_events(folder)}
    assert {'Loss/loss', 'confusion_matrix', 'whitening_filters', 'cost'} <= tags
    # 24 filters of 2 x 2 pixels, 8 to a row, each 16 pixels wide and 4 apart
    assert picture(folder, 'whitening_filters').shape == (4 + 3 * 20, 4 + 8 * 20, 3)
    embedding = projector_embedding(folder)
    assert embedding.tensor_name == '8 features'  # the channels of block 3
    features = np.loadtxt(os.path.join(folder, embedding.tensor_path), delimiter='\t')
    assert features.shape == (100, 8)


def test_deep_cnn_resumed_mid_epoch_equals_the_uninterrupted_run(run, cifar_dir, tmp_path,
                                                                 monkeypatch, deep_run):
    """Ctrl-C in the middle of epoch 1, then --resume: the same Test Accuracy, the same weights.

    The same shuffles, the same flips and shifts, the same learning rates and
    the same moving statistics of batch norm.
    """
    _, whole_folder, whole = deep_run
    assert_resume_identity(run, cifar_dir, tmp_path, monkeypatch, whole_folder, whole,
                           ('--seed', '1', *ARGS), 'lookahead/deep_cnn/block3/norm2/running_var')


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
    assert checkpoint_steps(parted_folder) == [0, 10, 15, 20]
    whole_reader = tf.train.load_checkpoint(checkpoint_path(whole_folder, 20))
    parted_reader = tf.train.load_checkpoint(checkpoint_path(parted_folder, 20))
    names = whole_reader.get_variable_to_shape_map()
    assert saved_name in names
    for name in names:
        np.testing.assert_array_equal(parted_reader.get_tensor(name),
                                      whole_reader.get_tensor(name), err_msg=name)


@pytest.mark.parametrize('args, phrase', [
    (['--block2_width', '0'], '--block2_width is 0; it must be greater than 0'),
    (['--block3_width', '5000'], '--block3_width is 5000; it can be at most 1,024'),
    (['--translate', '9'], '--translate is 9; it can be at most 8'),
    (['--translate', '-1'], '--translate is -1; it must be 0 or more'),
    (['--label_smoothing', '1'], '--label_smoothing is 1.0; it must be at least 0 and below 1'),
    (['--warmup', '-0.1'], '--warmup is -0.1; it must be at least 0 and below 1'),
    (['--momentum', '1'], '--momentum is 1.0; it must be at least 0 and below 1'),
    (['--weight_decay', '-1e-4'], '--weight_decay is -0.0001; it must be 0 or more'),
    (['--tta_level', '3'], '--tta_level is 3; it can be at most 2'),
    (['--epochs', '0'], '--epochs is 0.0; it must be greater than 0'),
    (['--flip=maybe'], '--flip=maybe'),
    (['--activation', 'tanh'], '<gelu|relu>'),
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
    # One view (--tta_level 0): the last epoch's line, whose validation set is the test set
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir,
                         '--tta_level', '0')
    assert code == 0, err
    last_epoch = [line for line in train_out.splitlines() if line.startswith('Cost after')][-1]
    assert float(line_value(out, 'Test accuracy ')) == pytest.approx(
        float(re.search(r'validation accuracy: (\S+) ', last_epoch).group(1)), abs=1e-6)
    code, _, err = run(restore_model, '--train_dir', train_dir, '--model', 'cnn')
    assert_user_error(code, err, 'deep convolutional network', '--model cnn')


def test_restore_rebuilds_a_run_of_other_settings(run, cifar_dir, tmp_path):
    """A ReLU run with a trainable batch norm scale and one test view: the same figure again."""
    train_dir = str(tmp_path / 'logs')
    code, train_out, err = run(run_deep_cnn_model, '--train_dir', train_dir, '--data_dir',
                               cifar_dir, '--seed', '2', '--epochs', '1', '--batch_size', '50',
                               '--block1_width', '4', '--block2_width', '4', '--block3_width',
                               '6', '--activation', 'relu', '--trainable_bn_scale',
                               '--tta_level', '0', '--nowhiten', '--nolookahead')
    assert code == 0, err
    (folder,) = run_folders(train_dir)
    names = tf.train.load_checkpoint(checkpoint_path(folder, 10)).get_variable_to_shape_map()
    assert 'deep_cnn/block1/norm1/scale' in names
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert line_value(out, 'Test accuracy ') == line_value(train_out, 'Test Accuracy: ')
