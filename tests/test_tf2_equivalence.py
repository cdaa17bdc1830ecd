"""The TF2 twins in tf2/ compute what the TF1 scripts compute, and behave like them.

The proof is on the scripts as a learner runs them (their main(argv)), as
TensorFlow's migration guides check a migration: the TF1 runner and its twin
with `--init_from_tf1` (the TF1 run's step-0 checkpoint), the same --seed and
data, log their losses at every step (SUMMARY_EVERY set to 1 in both), which
must agree with the guides' tolerances (see docs/tf1_to_tf2.md): the forward
pass at step 0 to float32 rounding, the first step to 1e-5, the trajectory to
1e-5 for gradient descent and to 1e-3, then 5%, for Keras's Adam; the test
accuracies within two points. The twins' own
initial weights (their step-0 checkpoints) must be drawn from TF1's
distributions. The same file checks what a learner sees: each tf2 script
prints its TF1 twin's lines, logs beside the TF1 runs, `--restore_tf1` prints
restore_model.py's figure, bad flags and checkpoints get a clear message.

This test process is in TF1 graph mode for good (conftest imports the TF1
runners, which call tf.disable_eager_execution()), so the TF2 side runs in
one subprocess: tests/tf2_worker.py.
"""

import glob
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from conftest import SAMPLE_DIR
from script_runs import assert_user_error, finished_run, line_value, run_tf2_jobs

import restore_model
import run_cnn_model
import run_fc_model
import softmax

SEED = 3
# The tolerances, after the migration guide's ("Debug a TF2 migrated training
# pipeline": 1e-5 over the first 10 steps, 5% after), all relative; the
# reasons and the measured differences are in docs/tf1_to_tf2.md
FORWARD_RTOL = 1e-6     # step 0: a forward pass of the same weights on the same batch
FIRST_STEP_RTOL = 1e-5  # step 1: after one optimizer step
FIRST_STEPS = 10        # steps 2 to 9: the guide's 1e-5 for gradient descent (fc); for
FIRST_STEPS_RTOL = {'fc': 1e-5, 'cnn': 1e-3}  # Keras's Adam, rounded otherwise, widened
# Every later step (and the CNN's mean cost of each epoch): the guide's 5% for Adam;
# gradient descent, which Keras's SGD computes to the last bit, stays at 1e-5
TRAJECTORY_RTOL = {'fc': 1e-5, 'cnn': 0.05}
ACCURACY_BOUND = 0.02   # the test accuracies at the end, two points apart at most
SOFTMAX_RTOL = 1e-5     # softmax: zeros and gradient descent, every step
# The compared runs, as a learner would start them, but short: on cifar_dir
# (5 x 100 training images) and, where it is, the real sample (5,170)
COMPARED = {('fc', 'synthetic'): ['--max_steps', '60', '--batch_size', '50'],
            ('cnn', 'synthetic'): ['--epochs', '2', '--batch_size', '50'],
            ('fc', 'sample'): ['--max_steps', '100'],
            ('cnn', 'sample'): ['--epochs', '2']}
RUNNERS = {'fc': run_fc_model, 'cnn': run_cnn_model}
# Each TF1 variable and the twin's attribute that holds it (in its TF2 checkpoints)
TF2_ATTRIBUTES = {'Layer1/weights': 'layer1_weights', 'Layer1/biases': 'layer1_biases',
                  'Layer2/weights': 'layer2_weights', 'Layer2/biases': 'layer2_biases',
                  'conv1/filters': 'conv1_filters', 'conv2/filters': 'conv2_filters',
                  'fc/weights': 'fc_weights', 'fc/biases': 'fc_biases'}


def line_shapes(out):
    """The printed lines after the parameters, numbers replaced by N: what the lines say."""
    lines = out.split('\n\n', 1)[-1].splitlines() if out.startswith('Parameters') else \
        out.splitlines()
    return [' '.join(re.sub(r'-?\d+(\.\d+)?(e[-+]\d+)?', 'N', line).split()) for line in lines]


def scalar_values(folder, tag):
    """[(step, value)] of a scalar summary, as TF1 (simple_value) or TF2 (a tensor) writes it."""
    found = []
    for path in glob.glob(os.path.join(folder, 'events.out.tfevents.*')):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    found.append((event.step, value.simple_value
                                  if value.WhichOneof('value') == 'simple_value'
                                  else float(tf.make_ndarray(value.tensor))))
    return sorted(found)


def only_folder(train_dir):
    """The one run folder in train_dir."""
    (folder,) = glob.glob(os.path.join(train_dir, '*', ''))
    return folder


def checkpoint_values(checkpoint, names):
    """{TF1 name: array} of a TF1 checkpoint, or of a twin's TF2 one (by its attributes)."""
    reader = tf.train.load_checkpoint(checkpoint)
    stored = reader.get_variable_to_shape_map()
    return {name: reader.get_tensor(name if name in stored else
                                    f'model/{TF2_ATTRIBUTES[name]}/.ATTRIBUTES/VARIABLE_VALUE')
            for name in names}


@pytest.fixture(scope='module')
def twins(cifar_dir, fc_run, cnn_run, tmp_path_factory):
    """Both sides of every comparison: the TF1 ones run here, the TF2 ones in one subprocess.

    Returns:
        {name: result}: the TF1 runs (train_dir, stdout) and folders, and the
        worker's result of each job.
    """
    folder = tmp_path_factory.mktemp('tf2')
    found, jobs = {}, {}

    # The scripts compared step by step: the TF1 runner, then its twin from
    # the TF1 run's initial weights, both logging every step
    data_dirs = {'synthetic': cifar_dir}
    if os.path.isfile(os.path.join(SAMPLE_DIR, 'test_batch')):
        data_dirs['sample'] = SAMPLE_DIR
    for (model, data), args in COMPARED.items():
        if data not in data_dirs:
            continue
        args = ['--data_dir', data_dirs[data], '--seed', str(SEED), *args]
        tf1_dir, tf2_dir = str(folder / f'tf1_{model}_{data}'), str(folder / f'tf2_{model}_{data}')
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(RUNNERS[model], 'SUMMARY_EVERY', 1)
            found[f'tf1_{model}_{data}'] = finished_run(RUNNERS[model], '--train_dir', tf1_dir,
                                                        *args)
        found[f'{model}_{data}_dirs'] = (tf1_dir, tf2_dir)
        jobs[f'tf2_{model}_{data}'] = dict(
            script=f'tf2/run_{model}_model.py', set={'SUMMARY_EVERY': 1},
            args=['--train_dir', tf2_dir, '--init_from_tf1', only_folder(tf1_dir), *args])

    # softmax: both scripts, their losses read from TensorBoard
    softmax_args = ['--data_dir', cifar_dir, '--max_steps', '100', '--seed', str(SEED)]
    found['tf1_softmax'] = (str(folder / 'tf1_softmax'), finished_run(
        softmax, *softmax_args, '--train_dir', str(folder / 'tf1_softmax')))
    found['tf2_softmax_dir'] = str(folder / 'tf2_softmax')
    jobs['tf2_softmax'] = dict(script='tf2/softmax.py',
                               args=softmax_args + ['--train_dir', found['tf2_softmax_dir']])

    # The runners, with the arguments of the TF1 runs of conftest (their own
    # initial weights: no --init_from_tf1)
    found['tf2_fc_dir'], found['tf2_cnn_dir'] = str(folder / 'fc_logs'), str(folder / 'cnn_logs')
    jobs['tf2_fc_run'] = dict(script='tf2/run_fc_model.py', args=[
        '--train_dir', found['tf2_fc_dir'], '--data_dir', cifar_dir, '--max_steps', '1100',
        '--batch_size', '50', '--learning_rate', '0.00001', '--seed', '1'])
    jobs['tf2_cnn_run'] = dict(script='tf2/run_cnn_model.py', args=[
        '--train_dir', found['tf2_cnn_dir'], '--data_dir', cifar_dir, '--epochs', '2',
        '--batch_size', '50', '--seed', '1'])

    # --restore_tf1 on the TF1 runs, on the other model's run, on a damaged
    # checkpoint; --init_from_tf1 refused: another --hidden1, no step 0
    fc_folder, cnn_folder = only_folder(fc_run[0]), only_folder(cnn_run[0])
    damaged = str(folder / 'damaged_fc')
    shutil.copytree(fc_folder, damaged)
    (data_file,) = glob.glob(os.path.join(damaged, 'checkpoints', 'model.ckpt-1100.data-*'))
    with open(data_file, 'r+b') as f:
        f.truncate(os.path.getsize(data_file) // 2)
    no_step_0 = str(folder / 'no_step_0_fc')
    shutil.copytree(fc_folder, no_step_0)
    for path in glob.glob(os.path.join(no_step_0, 'checkpoints', 'model.ckpt-0.*')):
        os.remove(path)
    jobs['restore_fc'] = dict(script='tf2/run_fc_model.py', args=['--restore_tf1', fc_folder])
    jobs['restore_cnn'] = dict(script='tf2/run_cnn_model.py', args=['--restore_tf1', cnn_folder])
    jobs['restore_cnn_into_fc'] = dict(script='tf2/run_fc_model.py',
                                       args=['--restore_tf1', cnn_run[0]])
    jobs['restore_damaged'] = dict(script='tf2/run_fc_model.py', args=['--restore_tf1', damaged])
    jobs['restore_other_hidden1'] = dict(script='tf2/run_fc_model.py',
                                         args=['--restore_tf1', fc_folder, '--hidden1', '40'])
    jobs['restore_tf2_run'] = dict(script='tf2/run_fc_model.py',
                                   args=['--restore_tf1',
                                         'glob:' + os.path.join(found['tf2_fc_dir'], '*')])
    found['refused_dir'] = str(folder / 'refused')
    for name, args in (('init_other_hidden1', ['--init_from_tf1', fc_folder, '--hidden1', '40']),
                       ('init_without_step_0', ['--init_from_tf1', no_step_0])):
        jobs[name] = dict(script='tf2/run_fc_model.py', args=[
            '--train_dir', found['refused_dir'], '--data_dir', cifar_dir, *args])
    jobs['bad_flag'] = dict(script='tf2/run_cnn_model.py', args=['--dropout_rate', '1'])
    jobs['unknown_flag'] = dict(script='tf2/softmax.py', args=['--epochs', '3'])
    jobs['initial_values'] = dict(initial_values=True)

    found.update(run_tf2_jobs(folder, jobs))
    found['fc_folder'], found['cnn_folder'] = fc_folder, cnn_folder
    return found


def script_result(twins, name):
    """A worker's run of a tf2 script that must have succeeded: its stdout."""
    result = twins[name]
    assert result['code'] == 0, result['err']
    return result['out']


def assert_losses_agree(model, tf1_losses, tf2_losses):
    """The losses of every step, tight for the forward pass and first steps, then looser."""
    assert [step for step, _ in tf2_losses] == [step for step, _ in tf1_losses]
    tf1_values = np.array([value for _, value in tf1_losses])
    tf2_values = np.array([value for _, value in tf2_losses])
    np.testing.assert_allclose(tf2_values[0], tf1_values[0], rtol=FORWARD_RTOL)
    np.testing.assert_allclose(tf2_values[1], tf1_values[1], rtol=FIRST_STEP_RTOL)
    np.testing.assert_allclose(tf2_values[2:FIRST_STEPS], tf1_values[2:FIRST_STEPS],
                               rtol=FIRST_STEPS_RTOL[model])
    np.testing.assert_allclose(tf2_values[FIRST_STEPS:], tf1_values[FIRST_STEPS:],
                               rtol=TRAJECTORY_RTOL[model])


@pytest.mark.parametrize('data', ['synthetic', 'sample'])
@pytest.mark.parametrize('model', ['fc', 'cnn'])
def test_tf2_script_computes_what_the_tf1_script_computes(twins, model, data):
    """The TF1 runner, then its twin from the TF1 run's step-0 weights, the same --seed and
    data: the same loss at every step (the guide's tolerances), the same test accuracy
    (within two points); the CNN with dropout on, the same masks."""
    if f'tf2_{model}_{data}' not in twins:
        pytest.skip('../shared/cifar-10-sample is not there')
    tf1_out, tf2_out = twins[f'tf1_{model}_{data}'], script_result(twins, f'tf2_{model}_{data}')
    tf1_folder, tf2_folder = map(only_folder, twins[f'{model}_{data}_dirs'])
    assert f'Starting from the initial weights of {tf1_folder}checkpoints/model.ckpt-0' in tf2_out
    tf1_losses, tf2_losses = (scalar_values(tf1_folder, 'Loss/loss'),
                              scalar_values(tf2_folder, 'Loss/loss'))
    steps = {'fc': 60 if data == 'synthetic' else 100,
             'cnn': 2 * (10 if data == 'synthetic' else 41)}[model]
    assert [step for step, _ in tf1_losses] == list(range(steps))
    assert tf1_losses[-1][1] < tf1_losses[0][1]  # a trajectory that went somewhere
    assert_losses_agree(model, tf1_losses, tf2_losses)
    if model == 'cnn':  # each epoch's mean cost, with dropout
        tf1_costs, tf2_costs = scalar_values(tf1_folder, 'cost'), scalar_values(tf2_folder, 'cost')
        assert [step for step, _ in tf2_costs] == [step for step, _ in tf1_costs] != []
        np.testing.assert_allclose([cost for _, cost in tf2_costs],
                                   [cost for _, cost in tf1_costs], rtol=TRAJECTORY_RTOL[model])
    prefix = {'fc': 'Test accuracy ', 'cnn': 'Test Accuracy: '}[model]
    tf1_accuracy, tf2_accuracy = (float(line_value(out, prefix)) for out in (tf1_out, tf2_out))
    assert abs(tf2_accuracy - tf1_accuracy) <= ACCURACY_BOUND


def test_tf2_softmax_computes_what_softmax_computes(twins):
    """Both scripts, the same --seed: the same loss at every step, the same printed lines."""
    tf1_dir, tf1_out = twins['tf1_softmax']
    tf2_out = script_result(twins, 'tf2_softmax')
    tf1_folder, tf2_folder = only_folder(tf1_dir), only_folder(twins['tf2_softmax_dir'])
    assert re.search(r'\d{8}-\d{6}_tf2_softmax_max_steps=100_seed=3/$', tf2_folder)
    tf1_losses, tf2_losses = scalar_values(tf1_folder, 'loss'), scalar_values(tf2_folder, 'loss')
    assert [step for step, _ in tf2_losses] == [step for step, _ in tf1_losses] == \
        list(range(100))
    np.testing.assert_allclose([value for _, value in tf2_losses],
                               [value for _, value in tf1_losses], rtol=SOFTMAX_RTOL)
    drop_time = [line for line in tf1_out.splitlines() if not line.startswith('Total time')]
    assert [line for line in tf2_out.splitlines() if not line.startswith('Total time')] == \
        drop_time
    assert line_shapes(tf2_out)[-1] == 'Total time: Ns' == line_shapes(tf1_out)[-1]


@pytest.mark.parametrize('model', ['fc', 'cnn'])
def test_tf2_runner_prints_the_lines_of_its_twin_and_logs_beside_it(twins, fc_run, cnn_run,
                                                                    model):
    """The same arguments: the TF1 runner's lines, and a run folder TensorBoard shows beside it."""
    tf1_out = {'fc': fc_run, 'cnn': cnn_run}[model][1]
    tf2_out = script_result(twins, f'tf2_{model}_run')
    assert line_shapes(tf2_out) == line_shapes(tf1_out)
    assert [line for line in tf2_out.splitlines() if line.startswith(('Step', 'Cost', 'Test'))]
    folder = only_folder(twins[f'tf2_{model}_dir'])
    assert re.search(rf'\d{{8}}-\d{{6}}_tf2_{model}_', folder)
    tags = {value.tag for path in glob.glob(folder + 'events.*')
            for event in tf.train.summary_iterator(path) for value in event.summary.value}
    logits = {'fc': 'Layer2/logits', 'cnn': 'fc/logits'}[model]
    assert {'Loss/loss', 'Accuracy/train_accuracy', logits, 'test_accuracy',
            '_hparams_/session_start_info', 'confusion_matrix'} <= tags
    assert scalar_values(os.path.join(folder, 'train'), 'accuracy')
    # The TF2 checkpoints, step 0 too, apart from the TF1 tools' checkpoints/ folder
    steps = {'fc': [0, 1000, 1100], 'cnn': [0, 10, 20]}[model]
    assert sorted(int(path.rsplit('-', 1)[1].split('.')[0]) for path in glob.glob(
        os.path.join(folder, 'tf2_checkpoints', 'ckpt-*.index'))) == steps
    assert not os.path.exists(os.path.join(folder, 'checkpoints'))


def test_tf1_tools_pass_tf2_runs_by(run, twins, cifar_dir):
    """restore_model.py in a train_dir of TF2 runs: no TF1 checkpoint there, said clearly."""
    code, _, err = run(restore_model, '--train_dir', twins['tf2_fc_dir'], '--data_dir',
                       cifar_dir)
    assert_user_error(code, err, 'There is no checkpoint in')


@pytest.mark.parametrize('model', ['fc', 'cnn'])
def test_restore_tf1_prints_the_figure_of_restore_model(run, twins, model, cifar_dir):
    """--restore_tf1 RUN_FOLDER: the TF1 checkpoint by name, restore_model.py's test accuracy."""
    out = script_result(twins, f'restore_{model}')
    folder = twins[f'{model}_folder']
    expected = finished_run(restore_model, '--train_dir', os.path.dirname(folder.rstrip('/')))
    assert line_value(out, 'Current step: ') == line_value(expected, 'Current step: ')
    assert line_value(out, 'Test accuracy ') == line_value(expected, 'Test accuracy ')
    assert float(line_value(out, 'Test accuracy ')) < 1  # a figure that could differ


def test_restore_tf1_and_init_from_tf1_explain_checkpoints_they_cannot_use(twins):
    """The other model's run, a damaged checkpoint, a TF2 run, other --hidden1, a run without
    step 0: a message, and no run folder begun."""
    result = twins['restore_cnn_into_fc']
    assert_user_error(result['code'], result['err'], 'holds the convolutional network',
                      'this script is the two-layer network', 'run_fc_model.py')
    result = twins['restore_damaged']
    assert_user_error(result['code'], result['err'], 'model.ckpt-1100 cannot be read',
                      'damaged')
    result = twins['restore_tf2_run']
    assert_user_error(result['code'], result['err'], 'is a TF2 checkpoint')
    result = twins['restore_other_hidden1']
    assert_user_error(result['code'], result['err'], 'hidden1=120', 'hidden1=40',
                      'Layer1/weights has shape [3072, 120], expected [3072, 40]')
    result = twins['init_other_hidden1']
    assert_user_error(result['code'], result['err'], '--init_from_tf1', 'trained with '
                      '--hidden1 120', 'Pass --hidden1 120')
    result = twins['init_without_step_0']
    assert_user_error(result['code'], result['err'], '--init_from_tf1',
                      'no complete checkpoint of step 0', 'model.ckpt-0')
    assert not os.path.exists(twins['refused_dir'])


def test_tf2_scripts_explain_bad_flags(twins):
    """A bad value and an unknown flag: the TF1 scripts' messages."""
    result = twins['bad_flag']
    assert_user_error(result['code'], result['err'], '--dropout_rate is 1.0')
    result = twins['unknown_flag']
    assert_user_error(result['code'], result['err'], 'epochs', 'Known flags')


KERAS_NAMES = {'Layer1/weights': '0/kernel', 'Layer1/biases': '0/bias',
               'Layer2/weights': '1/kernel', 'Layer2/biases': '1/bias',
               'conv1/filters': '0/kernel', 'conv2/filters': '1/kernel',
               'fc/weights': '2/kernel', 'fc/biases': '2/bias'}
MODEL_VARIABLES = {'fc': ['Layer1/weights', 'Layer1/biases', 'Layer2/weights', 'Layer2/biases'],
                   'cnn': ['conv1/filters', 'conv2/filters', 'fc/weights', 'fc/biases']}


# The standard deviation of a normal distribution cut at two standard
# deviations, as tf.truncated_normal_initializer draws: 0.8796 of its stddev
TRUNCATED_SPREAD = 0.87962566


def initial_spread(model, name, shape):
    """(std, bound) of the distribution a variable's initial values are drawn from.

    two_layer_fc.py: truncated normal with stddev 1/sqrt(fan-in), cut at two
    stddevs; cnn_model.py: Glorot uniform, bound sqrt(6 / (fan-in + fan-out));
    biases: zeros.
    """
    if name.endswith('biases'):
        return 0.0, 0.0
    fan_in, fan_out = int(np.prod(shape[:-1])), int(np.prod(shape[:-2] + shape[-1:]))
    if model == 'fc':
        stddev = 1.0 / np.sqrt(fan_in)
        return TRUNCATED_SPREAD * stddev, 2 * stddev
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return bound / np.sqrt(3.0), bound


@pytest.mark.parametrize('model', ['fc', 'cnn'])
def test_tf1_tf2_and_keras_scripts_start_from_weights_drawn_alike(twins, fc_run, cnn_run,
                                                                  model):
    """The initial weights of the TF1 runner and of its twin (their step-0 checkpoints, the
    same --seed) and of the Keras yardstick (benchmarks/keras_equivalents.py): each draws
    its own, so the shapes must be equal, the zeros zero, and each random matrix drawn
    from its initializer's distribution: its spread within five standard errors of the
    distribution's (1/sqrt(2n) relative, n values), every value within the bound, and the
    largest near it. A twin started with --init_from_tf1 starts from TF1's very weights."""
    names = MODEL_VARIABLES[model]
    tf1_folder = only_folder({'fc': fc_run, 'cnn': cnn_run}[model][0])
    tf1_initial = checkpoint_values(os.path.join(tf1_folder, 'checkpoints', 'model.ckpt-0'),
                                    names)
    tf2_initial = checkpoint_values(os.path.join(only_folder(twins[f'tf2_{model}_dir']),
                                                 'tf2_checkpoints', 'ckpt-0'), names)
    keras_stats = twins['initial_values'][f'keras_{model}']
    assert sorted(keras_stats) == sorted(KERAS_NAMES[name] for name in names)
    for name in names:
        shape = list(tf1_initial[name].shape)
        spread, bound = initial_spread(model, name, shape)
        tolerance = 5 / np.sqrt(2 * tf1_initial[name].size)
        drawn = [[list(values.shape), float(np.std(values)), float(np.max(np.abs(values)))]
                 for values in (tf1_initial[name], tf2_initial[name])]
        for shape_std_max in drawn + [keras_stats[KERAS_NAMES[name]]]:
            assert shape_std_max[0] == shape, name
            assert shape_std_max[1] == pytest.approx(spread, rel=tolerance, abs=1e-12), name
            assert bound * 0.9 <= shape_std_max[2] <= bound * (1 + 1e-6), name
    tf1_folder, tf2_folder = map(only_folder, twins[f'{model}_synthetic_dirs'])
    started = checkpoint_values(os.path.join(tf2_folder, 'tf2_checkpoints', 'ckpt-0'), names)
    for name, values in checkpoint_values(
            os.path.join(tf1_folder, 'checkpoints', 'model.ckpt-0'), names).items():
        np.testing.assert_array_equal(started[name], values, err_msg=name)


def test_the_twins_and_the_keras_yardsticks_keep_the_tf1_defaults(twins):
    """Every flag of a TF1 script that its TF2 twin has: the same default; Keras's settings too."""
    defaults = twins['initial_values']['flag_defaults']
    for tf1_module, name in ((softmax, 'softmax'), (run_fc_model, 'run_fc_model'),
                             (run_cnn_model, 'run_cnn_model')):
        tf2_defaults = defaults[name]
        shared = set(tf2_defaults) & set(tf1_module.FLAGS)
        assert len(shared) >= 5
        assert {flag: tf2_defaults[flag] for flag in shared} == \
            {flag: tf1_module.FLAGS[flag].default for flag in shared}
    keras = twins['initial_values']['keras_settings']
    assert keras['softmax']['batch_size'] == softmax.FLAGS['batch_size'].default
    assert keras['softmax']['steps'] == softmax.FLAGS['max_steps'].default
    assert keras['fc']['batch_size'] == run_fc_model.FLAGS['batch_size'].default
    assert keras['fc']['steps'] == run_fc_model.FLAGS['max_steps'].default
    assert keras['cnn']['batch_size'] == run_cnn_model.FLAGS['batch_size'].default
    # softmax.py's weights and biases: zeros, in Keras too
    assert all(std == 0 for _, std, _ in twins['initial_values']['keras_softmax'].values())
    assert keras['keras_softmax_shapes'] == [[3072, 10], [10]]
