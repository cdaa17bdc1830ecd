"""Unit checks of the models as the posts define them, and of do_eval.

The graphs are built in a fresh tf.Graph with an initialised tf.Session and fed
random images; nothing is trained and no file is written.
"""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

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

        two_layer_fc.training(loss, 0.001)
        assert [v.op.name for v in tf.global_variables()] == [
            'Layer1/weights', 'Layer1/biases', 'Layer2/weights', 'Layer2/biases', 'global_step']
        (global_step,) = [v for v in tf.global_variables() if v.op.name == 'global_step']
        assert global_step.dtype.base_dtype == tf.int64
        assert tf.train.get_global_step() is global_step
