"""What each runner's training step is fed, checked against the flags it was given.

The runners' own loops run here (in-process, a few steps on `cifar_dir`), and
every training step is recorded as the session runs it: the values fed into
its placeholders, and the learning rate that its optimizer's update ops
compute with. A runner that feeds no dropout rate, another rate than
--dropout_rate, the same dropout seeds twice, or trains with another learning
rate or number of steps than its flags say, fails here, though its printed
lines keep their shape.

A runner of another framework (a TF2 twin, whose training step is a
`tf.function` called with the batch) joins with a recorder of its own that
returns the same step records, and cases that name it.
"""

import dataclasses
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from script_runs import line_value

import data_helpers
import run_cnn_model
import run_fc_model
import softmax

# The update ops of the optimizers the runners use, and which input of each
# is the learning rate (TensorFlow's op definitions: ApplyGradientDescent(var,
# alpha, delta), ApplyAdam(var, m, v, beta1_power, beta2_power, lr, ...)).
LEARNING_RATE_INPUT = {'ApplyGradientDescent': 1, 'ResourceApplyGradientDescent': 1,
                       'ApplyAdam': 5, 'ResourceApplyAdam': 5}


def learning_rates_of(train_op):
    """The learning-rate tensors of the update ops that `train_op` runs."""
    rates, seen, pending = [], set(), [train_op]
    while pending:
        op = pending.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type in LEARNING_RATE_INPUT:
            rates.append(op.inputs[LEARNING_RATE_INPUT[op.type]])
        pending.extend(op.control_inputs)
        pending.extend(tensor.op for tensor in op.inputs)
    return rates


def record_tf1_training_steps(monkeypatch):
    """Records every training step a TF1 runner runs; returns the (growing) list of records.

    A training step is a `sess.run` of a list holding an operation, with a
    feed: the train op (the initializer is run without one; summaries and
    accuracies are tensors). Each record is a dict: the value fed into each
    placeholder, by the placeholder's name, and 'learning_rate', the value
    the update ops computed with (it must be one value for all of them).
    """
    steps = []
    real_run = tf.Session.run

    def run(sess, fetches, feed_dict=None, *args, **kwargs):
        if feed_dict and isinstance(fetches, (list, tuple)):
            train_ops = [fetch for fetch in fetches if isinstance(fetch, tf.Operation)]
            if train_ops:
                (train_op,) = train_ops
                rates = real_run(sess, learning_rates_of(train_op), feed_dict=feed_dict)
                assert len(rates) > 0 and len(set(np.float32(rates))) == 1, rates
                steps.append({**{tensor.op.name: np.asarray(value)
                                 for tensor, value in feed_dict.items()},
                              'learning_rate': np.asarray(rates[0])})
        return real_run(sess, fetches, feed_dict, *args, **kwargs)
    monkeypatch.setattr(tf.Session, 'run', run)
    return steps


@dataclasses.dataclass
class RunnerCase:
    """A runner, the flags it is run with, and what each training step must be fed.

    `expected(step)` is the dict of values the step-th training step (0, 1,
    ...) must have been fed besides its batch, by the recorder's names;
    `batches(size)` the indices of the training images of every step's batch,
    in a training set of `size` images.
    """
    module: object
    args: list
    expected: object
    batches: object
    record: object = record_tf1_training_steps


def indices(size):
    """The training set as data_helpers' batch makers see it: (images, labels) = indices."""
    return np.arange(size), np.arange(size)


def softmax_batches(size, seed=3, steps=3, batch_size=100):
    """softmax.py's batches: drawn with replacement, from the generator of --seed."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, size, batch_size) for _ in range(steps)]


CASES = {
    # 2 epochs of 2 minibatches of 250 (500 training images)
    'run_cnn_model': RunnerCase(
        run_cnn_model, ['--epochs', '2', '--batch_size', '250', '--dropout_rate', '0.4',
                        '--learning_rate', '0.002', '--seed', '7'],
        batches=lambda size: [batch for epoch in (0, 1) for batch, _ in data_helpers.gen_epoch(
            indices(size), 250, seed=7, epoch=epoch)],
        expected=lambda step: {'dropout_rate': 0.4,
                               'dropout_seeds': [[7, 2 * step], [7, 2 * step + 1]],
                               'learning_rate': 0.002}),
    'run_fc_model': RunnerCase(
        run_fc_model, ['--max_steps', '3', '--batch_size', '100', '--learning_rate', '0.02',
                       '--seed', '3'],
        batches=lambda size: [batch for batch, _ in data_helpers.gen_batch(
            indices(size), 100, 3, seed=3)],
        expected=lambda step: {'learning_rate': 0.02}),
    'softmax': RunnerCase(
        softmax, ['--max_steps', '3', '--batch_size', '100', '--learning_rate', '0.02',
                  '--seed', '3'],
        batches=softmax_batches,
        expected=lambda step: {'learning_rate': 0.02}),
}


def comparable(values):
    """A step's values as plain lists and numbers, floats rounded to float32 as TensorFlow's."""
    values = {name: np.asarray(value) for name, value in values.items()}
    return {name: (value.astype(np.float32) if value.dtype.kind == 'f' else value).tolist()
            for name, value in values.items()}


def split_batch(fed):
    """(images, labels, the other values) of a step: float images, one integer label each."""
    (images,) = [name for name, value in fed.items() if value.dtype.kind == 'f' and value.ndim > 1]
    (labels,) = [name for name, value in fed.items() if value.dtype.kind == 'i' and value.ndim == 1]
    rest = {name: value for name, value in fed.items() if name not in (images, labels)}
    return fed[images], fed[labels], rest


@pytest.fixture(scope='module')
def training_set(cifar_dir):
    """({an image's values as bytes: its index}, the labels) of `cifar_dir`'s training set."""
    data = data_helpers.load_data(cifar_dir)
    return {image.tobytes(): index for index, image in enumerate(data['images_train'])}, \
        data['labels_train']


@pytest.mark.parametrize('name', CASES)
def test_training_steps_are_fed_what_the_flags_say(run, cifar_dir, tmp_path, monkeypatch,
                                                   training_set, name):
    """Each step: the flags' dropout rate, seeds and learning rate; the batch of its seed.

    The batches are those data_helpers draws for --seed and --batch_size (or,
    for softmax.py, its random draws), each image with its own label, as many
    as --max_steps (or --epochs) asks for. (And the 'Total time' line at the
    end is the time the run took.)
    """
    case = CASES[name]
    steps = case.record(monkeypatch)
    began = time.time()
    code, out, err = run(case.module, '--data_dir', cifar_dir, '--train_dir',
                         str(tmp_path / 'logs'), *case.args)
    took = time.time() - began
    assert code == 0, err
    assert 0 < float(line_value(out, 'Total time: ').rstrip('s')) <= took + 0.005  # rounded
    index_of, training_labels = training_set
    batches = case.batches(len(training_labels))
    assert len(steps) == len(batches)
    for step, (fed, batch) in enumerate(zip(steps, batches, strict=True)):
        images, labels, rest = split_batch(fed)
        assert comparable(rest) == comparable(case.expected(step)), step
        rows = images.reshape(len(images), -1) if images.ndim == 2 else \
            images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # NHWC back to file rows
        assert [index_of.get(row.tobytes()) for row in rows] == batch.tolist(), step
        assert labels.tolist() == training_labels[batch].tolist(), step
