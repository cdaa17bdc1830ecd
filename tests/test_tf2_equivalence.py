"""The TF2 twins in tf2/ compute what the TF1 scripts compute, and behave like them.

TensorFlow's migration guide checks a migration this way: the TF1 and the TF2
version of a model start from the same weights (here TF1's initial variables,
copied into the TF2 model by name), take the same batches (and, for the CNN,
the same dropout masks) for 100 steps; the losses must agree to float32
rounding at every step, and the test accuracy at the end. The same file checks
what a learner sees: each tf2 script prints its TF1 twin's lines, logs beside
the TF1 runs, `--restore_tf1` prints restore_model.py's figure, bad flags and
checkpoints get a clear message; and that the TF1, TF2 and Keras (benchmarks/)
definitions of each model keep the same variables, initialisers and defaults.

This test process is in TF1 graph mode for good (conftest imports the TF1
runners, which call tf.disable_eager_execution()), so the TF1 side is built
here and the TF2 side runs once, in one subprocess: tests/tf2_worker.py.
"""

import glob
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from script_runs import assert_user_error, finished_run, line_value, run_tf2_jobs

import cnn_model
import data_helpers
import restore_model
import run_cnn_model
import run_fc_model
import softmax
import two_layer_fc
from tutorial_support import batch_eval

STEPS = 100     # training steps compared
SEED = 3
RELATIVE = 1e-5  # float32 rounding, as the migration guide compares
# The settings of the compared runs: the runners' defaults, but a CNN
# minibatch of 50 (the tiny data set has 500 training images)
FC = dict(hidden1=120, reg_constant=0.1, learning_rate=0.001, batch_size=400)
CNN = dict(learning_rate=0.001, batch_size=50, dropout_rate=0.3)


def tf1_training(model, data_dir, initial_path):
    """Trains the TF1 model for STEPS steps as its runner does, in a graph of its own.

    The initial variables are saved to `initial_path` (npz, by TF1 name).

    Returns:
        (initial variables {name: array}, losses of every step, test accuracy).
    """
    data = data_helpers.load_data(data_dir)
    if model == 'cnn':
        data = data_helpers.reshape_data(data)
    train_set = (data['images_train'], data['labels_train'])
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(SEED)
        if model == 'fc':
            images, labels = run_fc_model.placeholder_inputs()
            logits = two_layer_fc.inference(images, data_helpers.IMAGE_PIXELS, FC['hidden1'],
                                            data_helpers.NUM_CLASSES,
                                            reg_constant=FC['reg_constant'])
            loss = two_layer_fc.loss(logits, labels)
            train_op = two_layer_fc.training(loss, FC['learning_rate'])
            accuracy = two_layer_fc.evaluation(logits, labels)
            batches = data_helpers.gen_batch(train_set, FC['batch_size'], STEPS, seed=SEED)
            feeds = ({images: batch_images, labels: batch_labels}
                     for batch_images, batch_labels in batches)
        else:
            images, labels, dropout_rate, dropout_seeds = run_cnn_model.placeholder_inputs()
            logits = cnn_model.inference(images, dropout_rate, dropout_seeds)
            loss = cnn_model.loss(logits, labels)
            train_op = cnn_model.training(loss, CNN['learning_rate'])
            accuracy = cnn_model.evaluation(logits, labels)
            feeds = ({images: batch_images, labels: batch_labels,
                      dropout_rate: CNN['dropout_rate'],
                      dropout_seeds: [[SEED, 2 * step], [SEED, 2 * step + 1]]}
                     for step, (batch_images, batch_labels) in enumerate(
                         minibatch for epoch in range(STEPS) for minibatch in
                         data_helpers.gen_epoch(train_set, CNN['batch_size'], SEED, epoch)))
        model_variables = tf.trainable_variables()
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            initial = dict(zip([variable.op.name for variable in model_variables],
                               sess.run(model_variables), strict=True))
            np.savez(initial_path, **initial)
            losses = [float(sess.run([train_op, loss], feed_dict=next(feeds))[1])
                      for _ in range(STEPS)]
            test_accuracy, _ = batch_eval.do_eval(sess, accuracy, tf.argmax(logits, 1), images,
                                                  labels, (data['images_test'],
                                                           data['labels_test']))
    return initial, losses, test_accuracy


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


@pytest.fixture(scope='module')
def twins(cifar_dir, fc_run, cnn_run, tmp_path_factory):
    """Both sides of every comparison: the TF1 ones run here, the TF2 ones in one subprocess.

    Returns:
        {name: result}: the TF1 results (tf1_fc, tf1_cnn, tf1_softmax) and the
        worker's result of each job.
    """
    folder = tmp_path_factory.mktemp('tf2')
    found = {}
    jobs = {}
    for model, settings in (('fc', FC), ('cnn', CNN)):
        initial_path = str(folder / f'{model}_initial.npz')
        found[f'tf1_{model}'] = tf1_training(model, cifar_dir, initial_path)
        jobs[f'tf2_{model}'] = dict(train=model, initial=initial_path, data_dir=cifar_dir,
                                    seed=SEED, steps=STEPS, **settings)

    # softmax: both scripts, their losses read from TensorBoard
    softmax_args = ['--data_dir', cifar_dir, '--max_steps', str(STEPS), '--seed', str(SEED)]
    found['tf1_softmax'] = (str(folder / 'tf1_softmax'), finished_run(
        softmax, *softmax_args, '--train_dir', str(folder / 'tf1_softmax')))
    found['tf2_softmax_dir'] = str(folder / 'tf2_softmax')
    jobs['tf2_softmax'] = dict(script='tf2/softmax.py',
                               args=softmax_args + ['--train_dir', found['tf2_softmax_dir']])

    # The runners, with the arguments of the TF1 runs of conftest
    found['tf2_fc_dir'], found['tf2_cnn_dir'] = str(folder / 'fc_logs'), str(folder / 'cnn_logs')
    jobs['tf2_fc_run'] = dict(script='tf2/run_fc_model.py', args=[
        '--train_dir', found['tf2_fc_dir'], '--data_dir', cifar_dir, '--max_steps', '1100',
        '--batch_size', '50', '--learning_rate', '0.00001', '--seed', '1'])
    jobs['tf2_cnn_run'] = dict(script='tf2/run_cnn_model.py', args=[
        '--train_dir', found['tf2_cnn_dir'], '--data_dir', cifar_dir, '--epochs', '2',
        '--batch_size', '50', '--seed', '1'])

    # --restore_tf1 on the TF1 runs, on the other model's run, on a damaged checkpoint
    (fc_folder,) = glob.glob(os.path.join(fc_run[0], '*', ''))
    (cnn_folder,) = glob.glob(os.path.join(cnn_run[0], '*', ''))
    damaged = str(folder / 'damaged_fc')
    shutil.copytree(fc_folder, damaged)
    (data_file,) = glob.glob(os.path.join(damaged, 'checkpoints', 'model.ckpt-1100.data-*'))
    with open(data_file, 'r+b') as f:
        f.truncate(os.path.getsize(data_file) // 2)
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


@pytest.mark.parametrize('model', ['fc', 'cnn'])
def test_tf2_model_computes_what_the_tf1_model_computes(twins, model):
    """From TF1's initial weights, 100 steps on the same batches: the same loss at every step.

    The CNN trains with dropout on: the same stateless op and seeds give the
    same masks. At the end, the same test accuracy.
    """
    _, tf1_losses, tf1_accuracy = twins[f'tf1_{model}']
    tf2 = twins[f'tf2_{model}']
    assert len(tf1_losses) == len(tf2['losses']) == STEPS
    assert tf1_losses[-1] < 0.8 * tf1_losses[0]  # the models learned something
    np.testing.assert_allclose(tf2['losses'], tf1_losses, rtol=RELATIVE)
    assert tf2['test_accuracy'] == tf1_accuracy


def test_tf2_softmax_computes_what_softmax_computes(twins):
    """Both scripts, the same --seed: the same loss at every step, the same printed lines."""
    tf1_dir, tf1_out = twins['tf1_softmax']
    tf2_out = script_result(twins, 'tf2_softmax')
    (tf1_folder,) = glob.glob(os.path.join(tf1_dir, '*', ''))
    (tf2_folder,) = glob.glob(os.path.join(twins['tf2_softmax_dir'], '*', ''))
    assert re.search(r'\d{8}-\d{6}_tf2_softmax_max_steps=100_seed=3/$', tf2_folder)
    tf1_losses, tf2_losses = scalar_values(tf1_folder, 'loss'), scalar_values(tf2_folder, 'loss')
    assert [step for step, _ in tf2_losses] == [step for step, _ in tf1_losses] == \
        list(range(STEPS))
    np.testing.assert_allclose([value for _, value in tf2_losses],
                               [value for _, value in tf1_losses], rtol=RELATIVE)
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
    (folder,) = glob.glob(os.path.join(twins[f'tf2_{model}_dir'], '*', ''))
    assert re.search(rf'\d{{8}}-\d{{6}}_tf2_{model}_', folder)
    tags = {value.tag for path in glob.glob(folder + 'events.*')
            for event in tf.train.summary_iterator(path) for value in event.summary.value}
    logits = {'fc': 'Layer2/logits', 'cnn': 'fc/logits'}[model]
    assert {'Loss/loss', 'Accuracy/train_accuracy', logits, 'test_accuracy',
            '_hparams_/session_start_info', 'confusion_matrix'} <= tags
    assert scalar_values(os.path.join(folder, 'train'), 'accuracy')
    # The TF2 checkpoints, apart from the TF1 tools' checkpoints/ folder
    steps = {'fc': [1000, 1100], 'cnn': [10, 20]}[model]
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


def test_restore_tf1_explains_checkpoints_it_cannot_use(twins):
    """The other model's run, a damaged checkpoint, a TF2 run, other --hidden1: a message."""
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
def test_tf1_tf2_and_keras_models_keep_the_same_variables(twins, model):
    """The three definitions of a model: the same variables, shapes and initial distributions.

    TF1 (two_layer_fc.py, cnn_model.py), TF2 (tf2/) and Keras
    (benchmarks/keras_equivalents.py) each draw their own initial values: the
    shapes must be equal, the zeros zero, and each random matrix drawn from
    its initializer's distribution: its spread within five standard errors
    of the distribution's (1/sqrt(2n) relative, n values), every value
    within the bound, and the largest near it.
    """
    tf1_initial = twins[f'tf1_{model}'][0]
    tf2_stats = twins['initial_values'][f'tf2_{model}']
    keras_stats = twins['initial_values'][f'keras_{model}']
    assert sorted(tf2_stats) == sorted(tf1_initial)
    assert sorted(keras_stats) == sorted(KERAS_NAMES[name] for name in tf1_initial)
    for name, value in tf1_initial.items():
        shape = list(value.shape)
        spread, bound = initial_spread(model, name, shape)
        tolerance = 5 / np.sqrt(2 * value.size)
        for shape_std_max in ([shape, float(np.std(value)), float(np.max(np.abs(value)))],
                              tf2_stats[name], keras_stats[KERAS_NAMES[name]]):
            assert shape_std_max[0] == shape, name
            assert shape_std_max[1] == pytest.approx(spread, rel=tolerance, abs=1e-12), name
            assert bound * 0.9 <= shape_std_max[2] <= bound * (1 + 1e-6), name


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
    assert keras['keras_softmax_shapes'] == [[data_helpers.IMAGE_PIXELS,
                                              data_helpers.NUM_CLASSES],
                                             [data_helpers.NUM_CLASSES]]
