"""Unit checks of the part-4 model: batch norm, augmentation, test-time flip, schedule.

The graphs are built in a fresh tf.Graph with a narrow network (--width 4)
and fed random images; nothing is written.
"""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import deep_cnn_model
import run_deep_cnn_model

WIDTH = 4


def random_images(count, seed=0):
    """Images like the mean-centred CIFAR-10 ones: values of about +-50."""
    return np.random.default_rng(seed).normal(0, 50, (count, 32, 32, 3)).astype(np.float32)


@pytest.fixture
def trained_graph():
    """A graph trained for 5 steps on random images, so the moving statistics have moved.

    Returns:
        (sess, images, labels, training switch, training logits, test accuracy,
        test-time logits).
    """
    with tf.Graph().as_default():
        images, labels, training = run_deep_cnn_model.placeholder_inputs()
        logits = deep_cnn_model.inference(images, training, WIDTH)
        cost = deep_cnn_model.loss(logits, labels)
        train_op = deep_cnn_model.training(cost, 0.05)
        accuracy, test_logits = deep_cnn_model.evaluation(images, labels, WIDTH)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            batch, batch_labels = random_images(20, seed=1), np.arange(20) % 10
            for _ in range(5):
                sess.run(train_op, {images: batch, labels: batch_labels, training: True})
            yield sess, images, labels, training, logits, accuracy, test_logits


def moving_statistics(sess):
    """The values of every batch-norm moving mean and variance, by name."""
    return {variable.op.name: sess.run(variable) for variable in tf.global_variables()
            if 'moving_' in variable.op.name}


def test_moving_statistics_move_only_in_training_steps(trained_graph):
    """5 training steps moved them off 0 and 1; evaluating and the switch's default do not."""
    sess, images, labels, _, logits, accuracy, _ = trained_graph
    statistics = moving_statistics(sess)
    assert len(statistics) == 2 * 6  # mean and variance of 6 batch norms
    means = [value for name, value in statistics.items() if name.endswith('moving_mean')]
    assert all(np.abs(mean).max() > 1e-3 for mean in means)
    batch = random_images(10, seed=2)
    sess.run([accuracy, logits], {images: batch, labels: np.zeros(10, np.int64)})
    after = moving_statistics(sess)
    for name, value in statistics.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)


def test_batch_norm_at_test_time_ignores_the_rest_of_the_batch(trained_graph):
    """An image's test-time logits are the same alone or among others; in training they are not."""
    sess, images, _, training, logits, _, test_logits = trained_graph
    batch = random_images(8, seed=3)
    for output in (logits, test_logits):  # the switch's default, and evaluation()
        alone = sess.run(output, {images: batch[:1]})
        in_batch = sess.run(output, {images: batch})
        np.testing.assert_allclose(alone[0], in_batch[0], rtol=1e-4, atol=1e-4)
    # In a training step, batch norm uses the batch's own statistics
    alone = sess.run(logits, {images: batch[:2], training: True})
    in_batch = sess.run(logits, {images: batch, training: True})
    assert not np.allclose(alone[0], in_batch[0], rtol=1e-3, atol=1e-3)


def test_test_time_flip_averages_an_image_and_its_mirror_image(trained_graph):
    """With --test_flip: the mean of the two views' logits, the same for an image and its mirror."""
    sess, images, _, _, logits, _, test_logits = trained_graph
    batch = random_images(4, seed=4)
    mirrored = batch[:, :, ::-1]
    one_view, mirror_view = sess.run(logits, {images: batch}), sess.run(logits, {images: mirrored})
    assert not np.allclose(one_view, mirror_view, atol=1e-3)  # the network itself is not symmetric
    averaged = sess.run(test_logits, {images: batch})
    np.testing.assert_allclose(averaged, (one_view + mirror_view) / 2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sess.run(test_logits, {images: mirrored}), averaged,
                               rtol=1e-4, atol=1e-5)


def views_of(image, translate):
    """Every image augment() may make of one image: mirrored or not, shifted by up to translate."""
    views = []
    for flipped in (image, image[:, ::-1]):
        padded = np.pad(flipped, [(translate, translate), (translate, translate), (0, 0)],
                        mode='reflect')
        for row in range(2 * translate + 1):
            for column in range(2 * translate + 1):
                views.append(padded[row:row + 32, column:column + 32])
    return views


def test_augment_moves_pixels_of_each_image_only():
    """Each augmented image is a mirrored and shifted view of the same image (so its label holds).

    Most images do change; the same (seed, step) gives the same batch, the
    next step another one; --noflip --translate 0 leaves the batch as it is.
    """
    batch = random_images(16, seed=5)
    augmented = deep_cnn_model.augment(batch, seed=3, step=7)
    assert augmented.shape == batch.shape and augmented.dtype == batch.dtype
    for image, result in zip(batch, augmented, strict=True):
        assert any(np.array_equal(result, view) for view in views_of(image, 2))
    changed = [not np.array_equal(image, result) for image, result in zip(batch, augmented,
                                                                          strict=True)]
    assert sum(changed) >= 12  # 1 in 50 is left as it was: not flipped, not shifted
    np.testing.assert_array_equal(deep_cnn_model.augment(batch, seed=3, step=7), augmented)
    assert not np.array_equal(deep_cnn_model.augment(batch, seed=3, step=8), augmented)
    assert not np.array_equal(deep_cnn_model.augment(batch, seed=4, step=7), augmented)
    np.testing.assert_array_equal(
        deep_cnn_model.augment(batch, seed=3, step=7, flip=False, translate=0), batch)


def test_learning_rate_warms_up_then_decays_to_zero():
    """0 at step 0, the peak at the end of the warm-up (20 of 100 steps), 0 at the last step."""
    with tf.Graph().as_default():
        step = tf.placeholder(tf.int64, [])
        rate = deep_cnn_model.learning_rate_schedule(step, 0.4, total_steps=100,
                                                     warmup_fraction=0.2)
        with tf.Session() as sess:
            rates = [float(sess.run(rate, {step: value})) for value in (0, 10, 20, 60, 100)]
    assert rates == pytest.approx([0.0, 0.2, 0.4, 0.2, 0.0], abs=1e-6)


def test_weight_averages_move_toward_the_weights_in_training_steps_only():
    """Each training step moves every shadow a share toward its variable; evaluating does not.

    The shadows of the trainable variables and of batch norm's statistics
    start at the initial values; after a step, shadow = d x old shadow +
    (1 - d) x new value, with d = min(0.9, (1 + step) / (10 + step)) at the
    new global step. evaluation() with the averages computes with the
    shadows, so its logits differ from those of the last weights.
    """
    with tf.Graph().as_default():
        images, labels, training = run_deep_cnn_model.placeholder_inputs()
        cost = deep_cnn_model.loss(deep_cnn_model.inference(images, training, WIDTH), labels)
        train_op, ema = deep_cnn_model.average_weights(deep_cnn_model.training(cost, 0.05), 0.9)
        _, averaged_logits = deep_cnn_model.evaluation(images, labels, WIDTH, ema=ema)
        _, last_logits = deep_cnn_model.evaluation(images, labels, WIDTH)
        variables = deep_cnn_model.averaged_variables()
        assert sum('moving_' in variable.op.name for variable in variables) == 2 * 6
        shadows = [ema.average(variable) for variable in variables]
        global_step = tf.train.get_global_step()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            old_shadows = sess.run(shadows)
            for old, value in zip(old_shadows, sess.run(variables), strict=True):
                np.testing.assert_array_equal(old, value)
            batch, batch_labels = random_images(20, seed=1), np.arange(20) % 10
            for _ in range(3):
                sess.run(train_op, {images: batch, labels: batch_labels, training: True})
                step = sess.run(global_step)
                decay = min(0.9, (1 + step) / (10 + step))
                new_shadows, values = sess.run(shadows), sess.run(variables)
                for variable, old, new, value in zip(variables, old_shadows, new_shadows,
                                                     values, strict=True):
                    np.testing.assert_allclose(new, decay * old + (1 - decay) * value,
                                               rtol=1e-5, atol=1e-6, err_msg=variable.op.name)
                old_shadows = new_shadows
            # Not the last weights any more: the averages lag behind them
            assert any(not np.allclose(old, value) for old, value in zip(old_shadows, values,
                                                                           strict=True))
            test_batch = random_images(10, seed=2)
            averaged = sess.run(averaged_logits, {images: test_batch})
            assert not np.allclose(averaged, sess.run(last_logits, {images: test_batch}))
            sess.run(averaged_logits, {images: test_batch, labels: np.zeros(10, np.int64)})
            for old, new in zip(old_shadows, sess.run(shadows), strict=True):
                np.testing.assert_array_equal(new, old)
