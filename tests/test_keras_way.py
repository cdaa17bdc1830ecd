"""The Keras way (tf2/keras_*.py): its runs, TensorBoard files, checkpoints, --resume, messages.

Keras needs eager TensorFlow, and this test process is in TF1 graph mode for
good (see test_tf2_equivalence.py): the scripts run in one subprocess,
tests/tf2_worker.py, on `cifar_dir` (500 training and 100 test images), and
on the real sample when it is there.
"""

import glob
import io
import os
import re
import zipfile

import h5py
import numpy as np
import pytest
from conftest import SAMPLE_DIR
from event_files import hparams_of, tf2_scalars
from run_folders import run_folders
from script_runs import PROJECT_DIR, assert_user_error, line_value, run_tf2_jobs

import data_helpers
import deep_cnn_input
import deep_cnn_model
from tutorial_support import run_lock

# Each script's settings for the tests, its epochs, and the step at which a
# Ctrl-C interrupts it: mid-epoch, after the first epoch's backup
RUNS = {
    'softmax': (['--max_steps', '200', '--batch_size', '50', '--learning_rate', '0.0001',
                 '--seed', '4'], 2, 150),
    'fc': (['--max_steps', '200', '--batch_size', '50', '--learning_rate', '0.0001',
            '--seed', '4'], 2, 150),
    'cnn': (['--epochs', '2', '--batch_size', '50', '--seed', '4'], 2, 15),  # 10 steps an epoch
    # 12 steps an epoch, 23 in all (1.9 epochs); tiny widths; the whitening bias frozen
    # after epoch 1; epoch 1 ends between two Lookahead steps (10 and 15)
    'deep_cnn': (['--epochs', '1.9', '--batch_size', '40', '--whiten_bias_epochs', '1',
                  '--block1_width', '8', '--block2_width', '16', '--block3_width', '16',
                  '--seed', '4'], 2, 18),
}
ACCURACY_LINE = {'softmax': 'Test accuracy ', 'fc': 'Test accuracy ', 'cnn': 'Test Accuracy: ',
                 'deep_cnn': 'Test Accuracy: '}
HPARAMS = {'softmax': {'batch_size': 50, 'learning_rate': 0.0001, 'max_steps': 200},
           'fc': {'batch_size': 50, 'learning_rate': 0.0001, 'max_steps': 200, 'hidden1': 120,
                  'reg_constant': 0.1},
           'cnn': {'batch_size': 50, 'learning_rate': 0.001, 'epochs': 2, 'dropout_rate': 0.3},
           'deep_cnn': {'batch_size': 40, 'epochs': 1.9, 'learning_rate': 11.5, 'momentum': 0.85,
                        'weight_decay': 0.0153, 'bias_scaler': 64.0, 'label_smoothing': 0.2,
                        'whiten_bias_epochs': 1, 'block1_width': 8, 'block2_width': 16,
                        'block3_width': 16}}
STEPS = {'softmax': 200, 'fc': 200, 'cnn': 20, 'deep_cnn': 23}
# The arrays named layers/*/vars/0 in a checkpoint: the weight matrices and
# filters (and the biases of part 4's batch norms, their first variable)
FIRST_ARRAYS = {'softmax': 1, 'fc': 2, 'cnn': 3, 'deep_cnn': 8 + 6}


@pytest.fixture(scope='module')
def keras_way(cifar_dir, tmp_path_factory):
    """Every script's runs: one in one go, and one interrupted, then resumed; bad flags;
    the two-layer network on the sample, if it is there. Returns {name: result or folder}."""
    folder = tmp_path_factory.mktemp('keras_way')
    found, jobs = {}, {}
    for model, (args, _, interrupt_step) in RUNS.items():
        script = f'tf2/keras_{model}.py'
        found[f'{model}_whole_dir'] = whole = str(folder / f'{model}_whole')
        found[f'{model}_parted_dir'] = parted = str(folder / f'{model}_parted')
        jobs[f'{model}_whole'] = dict(script=script, args=[
            '--train_dir', whole, '--data_dir', cifar_dir, *args])
        jobs[f'{model}_interrupted'] = dict(script=script, interrupt_at_step=interrupt_step, args=[
            '--train_dir', parted, '--data_dir', cifar_dir, *args])
        jobs[f'{model}_resumed'] = dict(script=script, args=[
            '--train_dir', parted, '--data_dir', cifar_dir, '--resume'])
    bad_logs = str(folder / 'bad')
    jobs['bad_value'] = dict(script='tf2/keras_cnn.py', args=[
        '--train_dir', bad_logs, '--data_dir', cifar_dir, '--dropout_rate', '1'])
    jobs['unknown_flag'] = dict(script='tf2/keras_fc.py', args=['--max_step', '100'])
    jobs['momentum_1'] = dict(script='tf2/keras_deep_cnn.py', args=[
        '--train_dir', bad_logs, '--data_dir', cifar_dir, '--momentum', '1'])
    jobs['part_of_an_epoch'] = dict(script='tf2/keras_softmax.py', args=[
        '--train_dir', bad_logs, '--data_dir', cifar_dir, '--max_steps', '150'])
    jobs['nothing_to_resume'] = dict(script='tf2/keras_fc.py', args=[
        '--train_dir', found['softmax_whole_dir'], '--data_dir', cifar_dir, '--resume'])
    jobs['finished_run_resumed'] = dict(script='tf2/keras_softmax.py', args=[
        '--train_dir', found['softmax_whole_dir'], '--data_dir', cifar_dir, '--resume'])
    # A finished softmax run whose latest backup is then damaged, resumed to 300
    # steps; then both its backups are damaged, and it is resumed again
    found['damaged_dir'] = damaged = str(folder / 'damaged')
    jobs['before_damage'] = dict(script='tf2/keras_softmax.py', args=[
        '--train_dir', damaged, '--data_dir', cifar_dir, *RUNS['softmax'][0]])
    backup = os.path.join(damaged, '*', 'backup', 'latest.weights.h5')
    jobs['damage_latest'] = dict(truncate=backup)
    jobs['resumed_from_the_one_before'] = dict(script='tf2/keras_softmax.py', args=[
        '--train_dir', damaged, '--data_dir', cifar_dir, '--resume', '--max_steps', '300'])
    jobs['damage_latest_again'] = dict(truncate=backup)
    jobs['damage_the_one_before'] = dict(truncate=backup + '.bkp')
    jobs['nothing_intact'] = dict(script='tf2/keras_softmax.py', args=[
        '--train_dir', damaged, '--data_dir', cifar_dir, '--resume', '--max_steps', '400'])
    if os.path.isfile(os.path.join(SAMPLE_DIR, 'test_batch')):
        jobs['fc_on_the_sample'] = dict(script='tf2/keras_fc.py', args=[
            '--train_dir', str(folder / 'sample'), '--data_dir', SAMPLE_DIR, '--max_steps', '300',
            '--seed', '0'])
    found.update(run_tf2_jobs(folder, jobs))
    return found


def checkpoint_arrays(path):
    """The arrays of a .keras checkpoint (model and optimizer variables), by their place in it."""
    with zipfile.ZipFile(path) as archive:
        weights = io.BytesIO(archive.read('model.weights.h5'))
    arrays = {}
    with h5py.File(weights, 'r') as f:
        f.visititems(lambda name, item: arrays.update({name: item[()]})
                     if isinstance(item, h5py.Dataset) else None)
    return arrays


def accuracy_of(result, model):
    """The test accuracy a run printed, as its TF1 twin prints it."""
    assert result['code'] == 0, result['err']
    return float(line_value(result['out'], ACCURACY_LINE[model]))


@pytest.mark.parametrize('model', sorted(RUNS))
def test_keras_script_trains_and_logs_beside_the_other_runs(keras_way, model):
    """A run folder named like the TF1 and TF2 ones, with Keras's TensorBoard logs, the
    HParams record, the test accuracy, a checkpoint of every epoch and the backup."""
    _, epochs, _ = RUNS[model]
    result = keras_way[f'{model}_whole']
    test_accuracy = accuracy_of(result, model)
    assert re.fullmatch(r'Total time: +\d+\.\d\ds', result['out'].splitlines()[-1])
    (folder,) = run_folders(keras_way[f'{model}_whole_dir'])
    assert re.fullmatch(rf'\d{{8}}-\d{{6}}_keras_{model}_\S+_seed=4(_\S+)?',
                        os.path.basename(folder))

    assert hparams_of(folder) == {'model': f'keras_{model}', 'seed': 4, 'validation_size': 0,
                                  **HPARAMS[model]}
    (logged,) = tf2_scalars(folder, 'test_accuracy')
    assert logged == (STEPS[model], pytest.approx(test_accuracy, abs=1e-6))
    for tag in ('epoch_loss', 'epoch_accuracy'):
        assert [epoch for epoch, _ in tf2_scalars(os.path.join(folder, 'train'), tag)] == \
            list(range(epochs))
    assert [np.isfinite(loss) for _, loss in tf2_scalars(os.path.join(folder, 'train'),
                                                         'epoch_loss')] == [True] * epochs

    checkpoints = sorted(glob.glob(os.path.join(folder, 'checkpoints', '*.keras')))
    assert [os.path.basename(path) for path in checkpoints] == \
        [f'epoch-{epoch:03d}.keras' for epoch in range(1, epochs + 1)]
    first, last = (checkpoint_arrays(path) for path in (checkpoints[0], checkpoints[-1]))
    kernels = [name for name in last if name.startswith('layers/') and name.endswith('vars/0')]
    assert len(kernels) == FIRST_ARRAYS[model]
    assert any(not np.array_equal(first[name], last[name]) for name in kernels)  # it trained
    assert os.path.isfile(os.path.join(folder, 'backup', 'training_metadata.json'))
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))


@pytest.mark.parametrize('model', sorted(RUNS))
def test_interrupted_keras_run_resumes_to_the_end_of_a_run_in_one_go(keras_way, model):
    """Ctrl-C mid-epoch: the message names BackupAndRestore's backup of the epoch before and
    the command that continues. --resume then ends with the very weights, optimizer state,
    epoch logs and test accuracy of the run that was never interrupted."""
    _, epochs, interrupt_step = RUNS[model]
    interrupted = keras_way[f'{model}_interrupted']
    (parted,) = run_folders(keras_way[f'{model}_parted_dir'])
    backup = os.path.join(parted, 'backup')
    assert interrupted['code'] == 130, interrupted['err']
    assert (f'Training interrupted at step {interrupt_step} by Ctrl-C (SIGINT). '
            f'BackupAndRestore backed it up at the end of epoch 1, in {backup}. To continue '
            f'from there, run: python tf2/keras_{model}.py --train_dir ') in interrupted['err']
    assert 'Traceback' not in interrupted['err']
    assert 'Test' not in interrupted['out']

    resumed, whole = keras_way[f'{model}_resumed'], keras_way[f'{model}_whole']
    assert f'Resuming from {backup}, at the end of epoch 1' in resumed['out']
    assert accuracy_of(resumed, model) == accuracy_of(whole, model)
    (whole_folder,) = run_folders(keras_way[f'{model}_whole_dir'])
    name = f'epoch-{epochs:03d}.keras'
    whole_arrays = checkpoint_arrays(os.path.join(whole_folder, 'checkpoints', name))
    parted_arrays = checkpoint_arrays(os.path.join(parted, 'checkpoints', name))
    assert sorted(parted_arrays) == sorted(whole_arrays)
    assert any(name.startswith('optimizer/') for name in whole_arrays)
    for name, array in whole_arrays.items():
        np.testing.assert_array_equal(parted_arrays[name], array, err_msg=name)
    # Each epoch logged once, the resumed ones as the uninterrupted run logged them
    assert tf2_scalars(os.path.join(parted, 'train'), 'epoch_loss') == \
        tf2_scalars(os.path.join(whole_folder, 'train'), 'epoch_loss')
    assert hparams_of(parted)['model'] == f'keras_{model}'  # recorded once, when it started
    assert not os.path.exists(os.path.join(parted, run_lock.LOCK_FILE))


def test_keras_deep_cnn_whitens_with_part_4s_filters_and_freezes_the_bias(keras_way, cifar_dir):
    """Part 4's first layer: deep_cnn_model.whitening_filters of the standardized training
    images, never trained; its bias trained in the first epoch only (--whiten_bias_epochs 1):
    its momentum is left as it was at the end of epoch 1, while every other one moves."""
    (folder,) = run_folders(keras_way['deep_cnn_whole_dir'])
    first, last = (checkpoint_arrays(os.path.join(folder, 'checkpoints', f'epoch-00{epoch}.keras'))
                   for epoch in (1, 2))
    data = data_helpers.reshape_data(data_helpers.load_data(cifar_dir))
    images = deep_cnn_input.standardize(data['images_train'], data['mean_image'])
    np.testing.assert_array_equal(last['layers/conv2d/vars/0'],
                                  deep_cnn_model.whitening_filters(images[:5000]))
    momenta = sorted((name for name in last if re.fullmatch(r'optimizer/vars/[1-9]\d*', name)),
                     key=lambda name: int(name.rsplit('/', 1)[1]))
    assert len(momenta) == 14  # the whitening bias first, then in the layers' order
    assert [np.array_equal(first[name], last[name]) for name in momenta] == [True] + [False] * 13


def test_keras_scripts_explain_bad_flags_and_what_cannot_resume(keras_way):
    """A bad value, an unknown flag, steps that are not whole epochs, --resume with no run
    of the model or of a finished run: a message each, no traceback, no run folder."""
    assert_user_error(keras_way['bad_value']['code'], keras_way['bad_value']['err'],
                      '--dropout_rate is 1.0')
    assert_user_error(keras_way['unknown_flag']['code'], keras_way['unknown_flag']['err'],
                      'max_step', 'Known flags', '--max_steps')
    assert_user_error(keras_way['momentum_1']['code'], keras_way['momentum_1']['err'],
                      '--momentum is 1.0; it must be at least 0 and below 1')
    assert_user_error(keras_way['part_of_an_epoch']['code'], keras_way['part_of_an_epoch']['err'],
                      '--max_steps is 150', 'multiple of 100', 'steps_per_epoch')
    result = keras_way['nothing_to_resume']
    assert_user_error(result['code'], result['err'], 'there is no run of the two-layer network '
                      'of tf2/keras_fc.py in', 'without --resume')
    result = keras_way['finished_run_resumed']
    assert_user_error(result['code'], result['err'], 'has trained its 2 epochs already',
                      'larger --max_steps')
    assert run_folders(os.path.join(os.path.dirname(keras_way['fc_whole_dir']), 'bad')) == []


def test_damaged_backup_falls_back_to_the_one_before_or_is_explained(keras_way):
    """The latest backup cut short: --resume continues from the one before, as
    BackupAndRestore restores it, batches included. Both cut short: a message, no traceback."""
    (folder,) = run_folders(keras_way['damaged_dir'])
    resumed = keras_way['resumed_from_the_one_before']
    assert resumed['code'] == 0, resumed['err']
    assert f'Resuming from {os.path.join(folder, "backup")}, at the end of epoch 1' in \
        resumed['out']
    assert [line for line in resumed['out'].splitlines() if line.startswith('Epoch ')] == \
        ['Epoch 2/3', 'Epoch 3/3']
    result = keras_way['nothing_intact']
    assert_user_error(result['code'], result['err'], f'The backup in {folder}',
                      'is damaged', 'Start a new run without --resume')
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))


def test_keras_two_layer_network_beats_chance_on_real_images(keras_way, sample_dir):
    """tf2/keras_fc.py, 300 steps on the sample: far better than the 10% of guessing."""
    assert accuracy_of(keras_way['fc_on_the_sample'], 'fc') > 0.25


def test_the_keras_way_doc_quotes_lines_that_are_in_the_scripts():
    """docs/keras_way.md's map: each `file`: `line` it quotes is in that file, and every row
    quotes a TF1 script and a Keras one."""
    with open(os.path.join(PROJECT_DIR, 'docs', 'keras_way.md')) as f:
        section = f.read().split('## The map', 1)[1].split('\n## ', 1)[0]
    rows = [line.strip().strip('|').split(' | ') for line in section.splitlines()
            if line.startswith('| ') and not line.startswith('| TF1 construct')]
    assert len(rows) >= 20
    quote = re.compile(r'`((?:tf2/)?[a-z_0-9]+\.py)`: `([^`]+)`')
    for _, tf1, keras, _ in rows:
        assert quote.findall(tf1) and quote.findall(keras), (tf1, keras)
        assert all(path.startswith('tf2/keras_') for path, _ in quote.findall(keras)), keras
        for path, line in quote.findall(tf1) + quote.findall(keras):
            with open(os.path.join(PROJECT_DIR, path)) as f:
                assert line in f.read(), (path, line)
