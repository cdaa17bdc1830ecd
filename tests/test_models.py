"""Unit checks of the models as the posts define them, and of do_eval.

The graphs are built in a fresh tf.Graph with an initialised tf.Session and fed
random images; nothing is trained and no file is written.
"""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from numpy.lib.stride_tricks import sliding_window_view

import cnn_model
import data_helpers
import run_cnn_model
import run_fc_model
import two_layer_fc
from tutorial_support import batch_eval


@pytest.fixture
def cnn_graph():
    """A CNN graph with initialised variables: (session, images, rate, logits, seeds, images)."""
    with tf.Graph().as_default():
        images, _, rate, seeds = run_cnn_model.placeholder_inputs()
        logits = cnn_model.inference(images, rate, seeds)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            batch = np.random.default_rng(0).normal(0, 50, (5, 32, 32, 3)).astype(np.float32)
            yield sess, images, rate, logits, seeds, batch


def test_cnn_logits_and_features(cnn_graph):
    """N x 10 logits; the last layer is fed 8 x 8 x 64 = 4,096 features."""
    sess, images, _, logits, _, batch = cnn_graph
    assert logits.shape.as_list() == [None, 10]
    assert sess.run(logits, {images: batch}).shape == (5, 10)
    weights = [v for v in tf.global_variables() if v.op.name == 'fc/weights']
    assert len(weights) == 1 and weights[0].shape.as_list() == [4096, 10]
    reshapes = [op for op in tf.get_default_graph().get_operations()
                if op.type == 'Reshape' and op.name.startswith('fc/')]
    assert len(reshapes) == 1
    assert reshapes[0].outputs[0].shape.as_list() == [None, 4096]
    assert sess.run(reshapes[0].outputs[0], {images: batch}).shape == (5, 4096)


def test_cnn_dropout_only_in_training(cnn_graph):
    """Rate left at 0: identical logits; rate 0.3 fed: other logits, new masks each step.

    The seeds the runner feeds at steps 0 and 1 (seed 5) give two different
    masks; the same step's seeds again (as after --resume) give the same ones.
    """
    sess, images, rate, logits, seeds, batch = cnn_graph
    evaluation = sess.run(logits, {images: batch})
    np.testing.assert_array_equal(evaluation, sess.run(logits, {images: batch}))
    np.testing.assert_array_equal(evaluation, sess.run(logits, {images: batch, rate: 0.0}))

    step_0, step_1 = [[5, 0], [5, 1]], [[5, 2], [5, 3]]
    training = sess.run(logits, {images: batch, rate: 0.3, seeds: step_0})
    assert not np.allclose(training, evaluation)
    next_step = sess.run(logits, {images: batch, rate: 0.3, seeds: step_1})
    assert not np.allclose(next_step, training)
    np.testing.assert_array_equal(training,
                                  sess.run(logits, {images: batch, rate: 0.3, seeds: step_0}))
    np.testing.assert_array_equal(evaluation, sess.run(logits, {images: batch}))


def test_cnn_graph_boxes_hold_only_the_network(cnn_graph):
    """Graphs tab: conv1/conv2 hold the layers alone, nothing that depends on the step count.

    The dropout seeds arrive as a fed tensor; inside each box there are the
    filters, the convolution, ReLU, pooling and the dropout, and no op of seed
    arithmetic beside them.
    """
    sess, _, _, logits, _, _ = cnn_graph
    cost = cnn_model.loss(logits, tf.placeholder(tf.int64, [None]))
    cnn_model.training(cost, 0.001)
    step_op = tf.train.get_global_step().op
    boxes = [op for op in tf.get_default_graph().get_operations()
             if op.name.split('/')[0] in ('conv1', 'conv2')]
    assert boxes
    for op in boxes:
        seen, pending = set(), list(op.inputs)
        while pending:
            tensor = pending.pop()
            if tensor.op.name in seen:
                continue
            seen.add(tensor.op.name)
            assert tensor.op is not step_op, f'{op.name} depends on the global step'
            pending.extend(tensor.op.inputs)
    parts = {op.name.split('/')[1] for op in boxes}
    assert parts == {'filters', 'Conv2D', 'Relu', 'MaxPool2d', 'stateless_dropout'}


def convolution_same(images, filters):
    """NumPy's 'SAME' convolution, stride 1, as TensorFlow pads it (the extra row below)."""
    height, width = filters.shape[:2]
    padded = np.pad(images, ((0, 0), ((height - 1) // 2, height // 2),
                             ((width - 1) // 2, width // 2), (0, 0)))
    windows = sliding_window_view(padded, (height, width), axis=(1, 2))
    return np.einsum('nyxcij,ijco->nyxo', windows, filters)


def max_pool_same(images, size=3, stride=2):
    """NumPy's 'SAME' max-pooling: the largest value of each size x size window, stride apart."""
    out = -(-images.shape[1] // stride)
    total = max((out - 1) * stride + size - images.shape[1], 0)
    pad = (total // 2, total - total // 2)
    padded = np.pad(images, ((0, 0), pad, pad, (0, 0)), constant_values=-np.inf)
    windows = sliding_window_view(padded, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return windows.max(axis=(-2, -1))


def test_cnn_computes_two_convolution_stages_then_a_linear_layer():
    """Each stage: 'SAME' convolution, ReLU, 3 x 3 max-pooling 2 apart; then 4,096 features x W + b.

    The variables are the notebook's: 64 filters of 4 x 4 x 3, 64 of 2 x 2 x 64,
    and the last layer; the network is compared with the same layers in NumPy.
    """
    rng = np.random.default_rng(6)
    images = rng.normal(0, 1, (2, 32, 32, 3)).astype(np.float32)
    with tf.Graph().as_default():
        images_placeholder, _, rate, seeds = run_cnn_model.placeholder_inputs()
        logits = cnn_model.inference(images_placeholder, rate, seeds)
        variables = {variable.op.name: variable for variable in tf.global_variables()}
        assert {name: variable.shape.as_list() for name, variable in variables.items()} == {
            'conv1/filters': [4, 4, 3, 64], 'conv2/filters': [2, 2, 64, 64],
            'fc/weights': [4096, 10], 'fc/biases': [10]}
        values = {name: rng.normal(0, 0.2, variable.shape.as_list()).astype(np.float32)
                  for name, variable in variables.items()}
        with tf.Session() as sess:
            for name, value in values.items():
                variables[name].load(value, sess)
            computed = sess.run(logits, {images_placeholder: images})
    stage1 = max_pool_same(np.maximum(convolution_same(images, values['conv1/filters']), 0))
    stage2 = max_pool_same(np.maximum(convolution_same(stage1, values['conv2/filters']), 0))
    assert stage2.shape == (2, 8, 8, 64)
    expected = stage2.reshape(2, -1) @ values['fc/weights'] + values['fc/biases']
    np.testing.assert_allclose(computed, expected, rtol=1e-4, atol=1e-4)


def test_cnn_starts_from_glorot_uniform_weights_and_zero_biases():
    """Filters and weights uniform within +-sqrt(6 / (fan-in + fan-out)) (Glorot); biases 0."""
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        images, _, rate, seeds = run_cnn_model.placeholder_inputs()
        cnn_model.inference(images, rate, seeds)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            values = {variable.op.name: sess.run(variable) for variable in tf.global_variables()}
    assert not values['fc/biases'].any()
    for name in ('conv1/filters', 'conv2/filters', 'fc/weights'):
        weights = values[name]
        receptive = np.prod(weights.shape[:-2])  # a filter's height x width, 1 for a matrix
        fans = receptive * weights.shape[-2] + receptive * weights.shape[-1]
        limit = np.sqrt(6 / fans)
        assert np.abs(weights).max() <= limit
        # a uniform's stddev is limit / sqrt(3); 5 standard errors of the estimate
        assert abs(weights.std() / (limit / np.sqrt(3)) - 1) < 5 * 0.75 / np.sqrt(weights.size)


def test_batchwise_evaluation_equals_whole_set_accuracy():
    """do_eval in batches of 7 and 1,000 gives the whole-set predictions and accuracy."""
    rng = np.random.default_rng(1)
    images = rng.normal(0, 60, (53, data_helpers.IMAGE_PIXELS)).astype(np.float32)
    with tf.Graph().as_default():
        tf.set_random_seed(1)
        images_placeholder, labels_placeholder = run_fc_model.placeholder_inputs()
        logits = two_layer_fc.inference(images_placeholder, data_helpers.IMAGE_PIXELS, 20,
                                        data_helpers.NUM_CLASSES)
        accuracy = two_layer_fc.evaluation(logits, labels_placeholder)
        predictions = tf.argmax(logits, 1)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            whole = sess.run(predictions, {images_placeholder: images})
            # Half the labels agree with the model, so the accuracy is well above 0.
            labels = np.where(np.arange(53) % 2 == 0, whole, rng.integers(0, 10, 53))
            expected = sess.run(accuracy, {images_placeholder: images,
                                           labels_placeholder: labels})
            for batch_size in (7, 1000):
                batch_accuracy, predicted = batch_eval.do_eval(
                    sess, accuracy, predictions, images_placeholder, labels_placeholder,
                    (images, labels), batch_size=batch_size)
                np.testing.assert_array_equal(predicted, whole)
                assert batch_accuracy == pytest.approx(float(expected), abs=1e-6)
                assert batch_accuracy == np.mean(whole == labels)
    assert 0.5 <= expected < 1


def test_two_layer_loss_is_cross_entropy_plus_l2_of_both_weight_matrices():
    """loss() as part 2 defines it: mean cross-entropy + reg_constant * (sum w1² + sum w2²) / 2.

    inference() puts one regularisation term per weight matrix into
    REGULARIZATION_LOSSES; training() adds the int64 global step, and nothing else
    is a variable of the graph.
    """
    rng = np.random.default_rng(3)
    images = rng.normal(0, 1, (6, data_helpers.IMAGE_PIXELS)).astype(np.float32)
    labels = rng.integers(0, data_helpers.NUM_CLASSES, 6)
    with tf.Graph().as_default():
        images_placeholder, labels_placeholder = run_fc_model.placeholder_inputs()
        logits = two_layer_fc.inference(images_placeholder, data_helpers.IMAGE_PIXELS, 7,
                                        data_helpers.NUM_CLASSES, reg_constant=0.1)
        loss = two_layer_fc.loss(logits, labels_placeholder)
        assert len(tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)) == 2
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            feed = {images_placeholder: images, labels_placeholder: labels}
            loss_value, scores = sess.run([loss, logits], feed)
            variables = {variable.op.name: variable for variable in tf.global_variables()}
            w1, w2 = sess.run([variables['Layer1/weights'], variables['Layer2/weights']])
        scores = scores.astype(np.float64)
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        cross_entropy = -log_softmax[np.arange(6), labels].mean()
        l2 = 0.1 * (np.sum(w1.astype(np.float64) ** 2) + np.sum(w2.astype(np.float64) ** 2)) / 2
        np.testing.assert_allclose(loss_value, cross_entropy + l2, rtol=1e-5)
        assert l2 > 0.01 * cross_entropy  # the regularisation is a visible part of the loss

        # The Graphs tab: the loss box holds the cross-entropy, named as in the post
        assert tf.get_default_graph().get_operation_by_name('Loss/cross_entropy/cross_entropy')
        two_layer_fc.training(loss, 0.001)
        assert [v.op.name for v in tf.global_variables()] == [
            'Layer1/weights', 'Layer1/biases', 'Layer2/weights', 'Layer2/biases', 'global_step']
        (global_step,) = [v for v in tf.global_variables() if v.op.name == 'global_step']
        assert global_step.dtype.base_dtype == tf.int64
        assert tf.train.get_global_step() is global_step


def test_two_layer_network_computes_relu_then_linear():
    """logits = relu(images W1 + b1) W2 + b2, whatever values the variables hold.

    Without a reg_constant (the post's default, 0) the loss is the cross-entropy alone.
    """
    rng = np.random.default_rng(4)
    images = rng.normal(0, 1, (5, 6)).astype(np.float32)
    labels = rng.integers(0, 3, 5)
    with tf.Graph().as_default():
        images_placeholder = tf.placeholder(tf.float32, [None, 6])
        logits = two_layer_fc.inference(images_placeholder, 6, 4, 3)
        loss = two_layer_fc.loss(logits, tf.constant(labels))
        variables = {variable.op.name: variable for variable in tf.global_variables()}
        values = {name: rng.normal(0, 1, variable.shape.as_list()).astype(np.float32)
                  for name, variable in variables.items()}
        with tf.Session() as sess:
            for name, value in values.items():
                variables[name].load(value, sess)
            computed, loss_value = sess.run([logits, loss], {images_placeholder: images})
    hidden = np.maximum(images @ values['Layer1/weights'] + values['Layer1/biases'], 0)
    expected = hidden @ values['Layer2/weights'] + values['Layer2/biases']
    np.testing.assert_allclose(computed, expected, rtol=1e-5, atol=1e-5)
    log_softmax = expected - np.log(np.exp(expected).sum(axis=1, keepdims=True))
    assert loss_value == pytest.approx(-log_softmax[np.arange(5), labels].mean(), rel=1e-5)


def test_two_layer_network_starts_from_small_random_weights_and_zero_biases():
    """Weights: normal with stddev 1/sqrt(fan-in), cut at 2 stddevs; biases 0 (part 2's start)."""
    with tf.Graph().as_default():
        tf.set_random_seed(2)
        images_placeholder, _ = run_fc_model.placeholder_inputs()
        two_layer_fc.inference(images_placeholder, data_helpers.IMAGE_PIXELS, 120,
                               data_helpers.NUM_CLASSES)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            values = {variable.op.name: sess.run(variable) for variable in tf.global_variables()}
    assert not values['Layer1/biases'].any() and not values['Layer2/biases'].any()
    for name, fan_in in (('Layer1/weights', data_helpers.IMAGE_PIXELS), ('Layer2/weights', 120)):
        weights, stddev = values[name], 1 / np.sqrt(fan_in)
        assert np.abs(weights).max() <= 2 * stddev
        # A normal cut at 2 stddevs keeps 0.88 of its stddev; 5 standard errors of the estimate
        assert abs(weights.std() / (0.8796 * stddev) - 1) < 5 / np.sqrt(2 * weights.size)
        assert abs(weights.mean()) < 5 * stddev / np.sqrt(weights.size)
