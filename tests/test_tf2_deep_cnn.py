"""tf2/run_deep_cnn_model.py, part 4's TF2 twin, computes what run_deep_cnn_model.py computes.

As tests/test_tf2_equivalence.py does for the other twins, on the scripts as a learner
runs them: the TF1 runner trains a narrow network (8, 16 and 32 channels) on
`cifar_dir` for 1.9 epochs of 10 batches of 50 (19 steps: Lookahead pulls at steps 5,
10, 15 and the finish after 19; the whitening bias frozen after one epoch), logging its
loss at every step; then the twin trains with `--init_from_tf1` on that run (its step-0
checkpoint), the same --seed and data. Their losses must agree step by step (the
tolerances below, measured differences in docs/tf1_to_tf2.md), and so must batch
norm's running statistics at the end, which the twin updates inside its call, and the
test accuracy. The twin's own initial weights (without --init_from_tf1) must be drawn
as TF1 draws them. `--restore_tf1` must print the TF1 run's test accuracy, and an
interrupted twin run, resumed, must end as the run in one go.

The twin runs in tests/tf2_worker.py (this process is in TF1 graph mode).
"""

import glob
import importlib.util
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from event_files import hparams_of
from run_folders import run_folders
from script_runs import PROJECT_DIR, assert_user_error, finished_run, line_value, run_tf2_jobs

import run_deep_cnn_model

SEED = 3
ARGS = ['--epochs', '1.9', '--batch_size', '50', '--block1_width', '8', '--block2_width', '16',
        '--block3_width', '32', '--whiten_bias_epochs', '1', '--seed', str(SEED)]
STEPS = 19
# The tolerances, relative, after the migration guide's ("Debug a TF2 migrated training
# pipeline": 1e-5 over the first 10 steps, looser after); measured: 4e-7 at most
FORWARD_RTOL = 1e-6       # step 0: the same weights, the same batch
FIRST_STEPS_RTOL = 1e-5   # steps 1 to 9
TRAJECTORY_RTOL = 1e-4    # steps 10 on: airbench's rates amplify rounding step by step
END_TOLERANCE = 1e-3      # a variable at the end, relative to its largest value (measured 1e-4)
ACCURACY_BOUND = 0.02     # test accuracies, at most two points apart (measured: equal)
RESUME_STEP = 15          # where the twin's parted run is interrupted (mid-epoch)


def scalar_values(folder, tag):
    """[(step, value)] of a scalar summary, as TF1 (simple_value) or TF2 (a tensor) writes it."""
    found = []
    for path in glob.glob(os.path.join(folder, 'events.out.tfevents.*')):
        for event in tf.train.summary_iterator(path):
            found += [(event.step, value.simple_value if value.WhichOneof('value') ==
                       'simple_value' else float(tf.make_ndarray(value.tensor)))
                      for value in event.summary.value if value.tag == tag]
    return sorted(found)


def tf2_key(name):
    """Where a twin's TF2 checkpoint keeps a network variable, from its TF1 name."""
    path = {'deep_cnn/fc/weights': 'fc_weights', 'deep_cnn/whiten/filters': 'whiten_filters',
            'deep_cnn/whiten/biases': 'whiten_biases'}.get(name)
    if path is None:  # deep_cnn/block2/norm1/running_mean -> blocks/1/norm1/running_mean
        block, layer, variable = re.fullmatch(r'deep_cnn/block(\d)/(\w+)/(\w+)', name).groups()
        path = f'blocks/{int(block) - 1}/{layer}' + ('' if variable == 'filters' else
                                                      f'/{variable}')
    return f'model/{path}/.ATTRIBUTES/VARIABLE_VALUE'


@pytest.fixture(scope='module')
def runs(cifar_dir, tmp_path_factory):
    """The TF1 run (here), and the worker's: the twin from it, whole and interrupted and
    resumed; the twin from its own weights; --restore_tf1; refusals. {name: result}."""
    folder = tmp_path_factory.mktemp('tf2_deep')
    found = {'tf1_dir': str(folder / 'tf1'), 'tf2_dir': str(folder / 'tf2'),
             'parted_dir': str(folder / 'parted'), 'own_dir': str(folder / 'own'),
             'refused_dir': str(folder / 'refused')}
    data = ['--data_dir', cifar_dir]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_deep_cnn_model, 'SUMMARY_EVERY', 1)
        found['tf1_out'] = finished_run(run_deep_cnn_model, '--train_dir', found['tf1_dir'],
                                        *data, *ARGS)
    (tf1_folder,) = run_folders(found['tf1_dir'])
    found['tf1_folder'] = tf1_folder
    script, every = 'tf2/run_deep_cnn_model.py', {'SUMMARY_EVERY': 1}
    from_tf1 = [*data, *ARGS, '--init_from_tf1', tf1_folder]
    jobs = {
        'from_tf1': dict(script=script, set=every,
                         args=['--train_dir', found['tf2_dir'], *from_tf1]),
        'interrupted': dict(script=script, set=every, interrupt_at_step=RESUME_STEP,
                            args=['--train_dir', found['parted_dir'], *from_tf1]),
        'resumed': dict(script=script, set=every,
                        args=['--train_dir', found['parted_dir'], *data, '--resume']),
        # its own initial weights: Ctrl-C after the first step keeps step 0
        'own': dict(script=script, interrupt_at_step=1,
                    args=['--train_dir', found['own_dir'], *data, *ARGS]),
        'restore': dict(script=script, args=['--restore_tf1', tf1_folder]),
        'restore_tf2_run': dict(script=script, args=['--restore_tf1', 'glob:' + os.path.join(
            found['own_dir'], '*')]),
        'init_other_width': dict(script=script, args=[
            '--train_dir', found['refused_dir'], *from_tf1, '--block3_width', '64']),
        'bad_flag': dict(script=script, args=['--translate', '9']),
    }
    found.update(run_tf2_jobs(folder, jobs))
    return found


def succeeded(result):
    """A worker's run that must have succeeded: its stdout."""
    assert result['code'] == 0, result['err']
    return result['out']


def test_twin_computes_what_the_tf1_runner_computes(runs):
    """From the TF1 run's step 0, with its --seed: the same loss at every step, the same
    learning rate, epoch costs, running statistics and weights at the end, test accuracy."""
    out = succeeded(runs['from_tf1'])
    assert f'Starting from the initial weights of {runs["tf1_folder"]}' in out
    (tf2_folder,) = run_folders(runs['tf2_dir'])
    tf1_losses = scalar_values(runs['tf1_folder'], 'Loss/loss')
    tf2_losses = scalar_values(tf2_folder, 'Loss/loss')
    assert [step for step, _ in tf1_losses] == [step for step, _ in tf2_losses] == \
        list(range(STEPS))
    tf1_values, tf2_values = (np.array([value for _, value in losses])
                              for losses in (tf1_losses, tf2_losses))
    assert tf1_values[-1] < tf1_values[0]  # a trajectory that went somewhere
    np.testing.assert_allclose(tf2_values[0], tf1_values[0], rtol=FORWARD_RTOL)
    np.testing.assert_allclose(tf2_values[1:10], tf1_values[1:10], rtol=FIRST_STEPS_RTOL)
    np.testing.assert_allclose(tf2_values[10:], tf1_values[10:], rtol=TRAJECTORY_RTOL)
    for tag in ('learning_rate', 'cost'):
        tf1_scalars, tf2_scalars = (scalar_values(folder, tag)
                                    for folder in (runs['tf1_folder'], tf2_folder))
        assert [step for step, _ in tf1_scalars] == [step for step, _ in tf2_scalars] != []
        np.testing.assert_allclose([value for _, value in tf2_scalars],
                                   [value for _, value in tf1_scalars], rtol=TRAJECTORY_RTOL)
    # The end: batch norm's running statistics (updated in the twin's call, by TF1's
    # UPDATE_OPS), the last layer and the whitening bias (frozen after epoch 1)
    tf1_end = tf.train.load_checkpoint(os.path.join(runs['tf1_folder'], 'checkpoints',
                                                    f'model.ckpt-{STEPS}'))
    tf2_end = tf.train.load_checkpoint(os.path.join(tf2_folder, 'tf2_checkpoints',
                                                    f'ckpt-{STEPS}'))
    names = [name for name in tf1_end.get_variable_to_shape_map()
             if name.startswith('deep_cnn/') and 'running' in name]
    assert len(names) == 12
    for name in names + ['deep_cnn/fc/weights', 'deep_cnn/whiten/biases']:
        expected = tf1_end.get_tensor(name)
        assert np.max(np.abs(tf2_end.get_tensor(tf2_key(name)) - expected)) <= \
            END_TOLERANCE * np.max(np.abs(expected)), name
    # The same lines, the same test accuracy
    tf1_cost_lines = re.findall(r'^Cost after epoch \d: .*(?= \()', runs['tf1_out'], re.M)
    assert len(tf1_cost_lines) == 2
    assert len(re.findall(r'^Cost after epoch \d: .*(?= \()', out, re.M)) == 2
    tf1_accuracy = float(line_value(runs['tf1_out'], 'Test Accuracy: '))
    assert abs(float(line_value(out, 'Test Accuracy: ')) - tf1_accuracy) <= ACCURACY_BOUND


def test_twin_draws_its_own_initial_weights_as_tf1_does(runs):
    """Without --init_from_tf1, the twin's step 0: the very whitening filters of TF1 (the
    same NumPy, the same images), the identity filters where TF1 has them, the random
    ones from TF1's distribution, U(+-1/sqrt(fan-in)): spread within five standard
    errors, every value within the bound, the largest near it."""
    result = runs['own']
    assert result['code'] == 130, result['err']
    (own_folder,) = run_folders(runs['own_dir'])
    tf1_start = tf.train.load_checkpoint(os.path.join(runs['tf1_folder'], 'checkpoints',
                                                      'model.ckpt-0'))
    own_start = tf.train.load_checkpoint(os.path.join(own_folder, 'tf2_checkpoints', 'ckpt-0'))
    names = sorted(name for name in tf1_start.get_variable_to_shape_map()
                   if name.startswith('deep_cnn/') and not name.endswith(('/bias', 'Momentum')))
    assert len(names) == 21
    random_values = 0
    for name in names:
        tf1_values, own_values = tf1_start.get_tensor(name), own_start.get_tensor(tf2_key(name))
        assert own_values.shape == tf1_values.shape, name
        if not name.endswith(('/filters', '/weights')) or name.startswith('deep_cnn/whiten'):
            np.testing.assert_array_equal(own_values, tf1_values, err_msg=name)
            continue
        # Output channels that start as identities; the others random
        paired = min(tf1_values.shape[-2], tf1_values.shape[-1]) if 'conv' in name else 0
        np.testing.assert_array_equal(own_values[..., :paired], tf1_values[..., :paired],
                                      err_msg=name)
        bound = 1 / np.sqrt(np.prod(tf1_values.shape[:-1]))
        for values in (tf1_values[..., paired:], own_values[..., paired:]):
            random_values += values.size
            if values.size:
                assert np.std(values) == pytest.approx(
                    bound / np.sqrt(3), rel=5 / np.sqrt(2 * values.size)), name
                assert 0.9 * bound <= np.max(np.abs(values)) <= bound * (1 + 1e-6), name
    assert random_values > 2 * 2000
    assert np.any(own_start.get_tensor(tf2_key('deep_cnn/fc/weights'))
                  != tf1_start.get_tensor('deep_cnn/fc/weights'))  # its own draw


def test_restore_tf1_prints_the_accuracy_the_tf1_run_printed(runs):
    """--restore_tf1 RUN_FOLDER: the TF1 checkpoint by name, rebuilt with the run's widths."""
    out = succeeded(runs['restore'])
    assert line_value(out, 'Current step: ') == str(STEPS)
    assert line_value(out, 'Test accuracy ') == line_value(runs['tf1_out'], 'Test Accuracy: ')
    assert float(line_value(out, 'Test accuracy ')) < 1  # a figure that could differ


def test_interrupted_twin_resumes_to_the_end_of_the_run_in_one_go(runs):
    """Ctrl-C mid-epoch, then --resume: the same test accuracy, the very same network,
    optimizers (their momentum and step counts) and Lookahead's slow weights."""
    interrupted = runs['interrupted']
    assert interrupted['code'] == 130, interrupted['err']
    assert f'Training interrupted at step {RESUME_STEP}' in interrupted['err']
    assert 'python tf2/run_deep_cnn_model.py --train_dir' in interrupted['err']
    resumed, whole = succeeded(runs['resumed']), succeeded(runs['from_tf1'])
    assert line_value(resumed, 'Test Accuracy: ') == line_value(whole, 'Test Accuracy: ')
    (parted,), (whole_folder,) = run_folders(runs['parted_dir']), run_folders(runs['tf2_dir'])
    assert sorted(os.path.basename(path) for path in glob.glob(
        os.path.join(parted, 'tf2_checkpoints', 'ckpt-*.index'))) == [
        f'ckpt-{step}.index' for step in sorted(['0', '10', str(RESUME_STEP), str(STEPS)])]
    readers = [tf.train.load_checkpoint(os.path.join(folder, 'tf2_checkpoints', f'ckpt-{STEPS}'))
               for folder in (parted, whole_folder)]
    names = [name for name in readers[1].get_variable_to_shape_map() if 'VARIABLE_VALUE' in name
             and name.startswith(('model/', 'optimizers/', 'lookahead/'))]
    assert {name.split('/')[0] for name in names} == {'model', 'optimizers', 'lookahead'}
    for name in names:
        np.testing.assert_array_equal(readers[0].get_tensor(name), readers[1].get_tensor(name),
                                      err_msg=name)


def test_twin_logs_beside_the_tf1_runs(runs):
    """Its run folder, TensorBoard's charts, pictures and HParams, its TF2 checkpoints."""
    (folder,) = run_folders(runs['tf2_dir'])
    assert re.search(r'\d{8}-\d{6}_tf2_deep_cnn_batch_size=50_', folder)
    tags = {value.tag for path in glob.glob(os.path.join(folder, 'events.*'))
            for event in tf.train.summary_iterator(path) for value in event.summary.value}
    assert {'Loss/loss', 'learning_rate', 'cost', 'test_accuracy', 'confusion_matrix',
            'test_predictions', 'whitening_filters'} <= tags
    assert hparams_of(folder)['model'] == 'tf2_deep_cnn'
    assert [step for step, _ in scalar_values(os.path.join(folder, 'validation'),
                                              'accuracy')] == [10, STEPS]
    assert not os.path.exists(os.path.join(folder, 'checkpoints'))


def test_twin_keeps_the_tf1_flags_and_explains_bad_ones(runs):
    """Every flag of run_deep_cnn_model.py, with its default; a bad value, a TF1 run of
    other widths and a TF2 run for --restore_tf1: a message, and no run folder begun."""
    spec = importlib.util.spec_from_file_location(
        'tf2_run_deep_cnn_model', os.path.join(PROJECT_DIR, 'tf2', 'run_deep_cnn_model.py'))
    twin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(twin)
    tf1_flags = run_deep_cnn_model.FLAGS
    assert {name: twin.FLAGS[name].default for name in tf1_flags} == \
        {name: tf1_flags[name].default for name in tf1_flags}
    assert set(twin.FLAGS) - set(tf1_flags) == {'init_from_tf1', 'restore_tf1'}
    assert twin.FLAG_RULES == run_deep_cnn_model.FLAG_RULES
    result = runs['bad_flag']
    assert_user_error(result['code'], result['err'], '--translate is 9; it can be at most 8')
    result = runs['init_other_width']
    assert_user_error(result['code'], result['err'], 'trained with --block3_width 32',
                      'Pass --block3_width 32')
    assert not os.path.exists(runs['refused_dir'])
    result = runs['restore_tf2_run']
    assert_user_error(result['code'], result['err'], 'is a TF2 checkpoint')
