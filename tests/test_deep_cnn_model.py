"""Part 4's model against airbench94's own formulas, one ingredient a test.

Each test builds a small graph in a fresh tf.Graph (narrow blocks, random
images) and checks what one ingredient computes against the arithmetic of
`legacy/airbench94.py`, written out here in NumPy: the whitening filters, the
identity initialisation, batch norm, the learning rate and weight decay of each
group of variables, Lookahead, the alternating flip, the shifts and the 6
test-time views. Nothing is written to disk.
"""

import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import deep_cnn_input
import deep_cnn_model
import run_deep_cnn_model


def random_images(count, seed=0):
    """Standardized-looking images: values of about +-1."""
    return np.random.default_rng(seed).normal(0, 1, (count, 32, 32, 3)).astype(np.float32)


def test_whitening_filters_are_the_scaled_eigenvectors_of_the_patch_covariance():
    """airbench's get_patches / get_whitening_parameters, in its own (colour, row, column) order.

    The patches' covariance is the mean of x x^T; its eigenvectors, from the
    largest eigenvalue down, divided by sqrt(eigenvalue + 5e-4), then their
    negatives. An eigenvector's sign is arbitrary: each filter is compared up
    to its sign. The filters make the patches uncorrelated, of unit variance.
    """
    images = random_images(40, seed=1)
    images[..., 1] += 0.8 * images[..., 0]  # correlated colours, as in photos
    images[:, 1:] += 0.5 * images[:, :-1]   # and correlated neighbours
    patches = np.stack([images[:, row:row + 31, column:column + 31]
                        for row in range(2) for column in range(2)], axis=-1)
    patches = patches.reshape(-1, 3, 2, 2).reshape(-1, 12).astype(np.float64)  # (c, h, w)
    eigenvalues, eigenvectors = np.linalg.eigh(patches.T @ patches / len(patches))
    expected = (eigenvectors / np.sqrt(eigenvalues + 5e-4))[:, ::-1]  # largest first
    expected = expected.reshape(3, 2, 2, 12).transpose(1, 2, 0, 3)    # as conv2d filters
    filters = deep_cnn_model.whitening_filters(images)
    assert filters.shape == (2, 2, 3, 24) and filters.dtype == np.float32
    np.testing.assert_array_equal(filters[..., 12:], -filters[..., :12])
    for k in range(12):
        sign = np.sign(np.sum(filters[..., k] * expected[..., k]))
        np.testing.assert_allclose(filters[..., k], sign * expected[..., k], rtol=1e-4, atol=1e-5)
    outputs = patches.reshape(-1, 3, 2, 2).transpose(0, 2, 3, 1).reshape(-1, 12) \
        @ filters[..., :12].reshape(12, 12)
    covariance = outputs.T @ outputs / len(outputs)
    np.testing.assert_allclose(covariance, np.diag(eigenvalues[::-1] / (eigenvalues[::-1] + 5e-4)),
                               atol=1e-3)


@pytest.fixture
def graph():
    """A fresh graph with the placeholders of the runner."""
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        yield run_deep_cnn_model.placeholder_inputs()


def variable(name):
    """The graph's variable of that name."""
    (found,) = [v for v in tf.global_variables() if v.op.name == name]
    return found


def test_convolutions_start_as_identities_then_pytorch_uniform(graph):
    """torch.nn.init.dirac_ on the first min(in, out) filters; U(+-1/sqrt(fan-in)) elsewhere."""
    images, _, training = graph
    deep_cnn_model.inference(images, training, (32, 64, 16))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for layer, (channels_in, channels_out) in {
                'block1/conv1': (24, 32), 'block2/conv1': (32, 64), 'block2/conv2': (64, 64),
                'block3/conv1': (64, 16)}.items():
            name = f'deep_cnn/{layer}/filters'
            filters = sess.run(variable(name))
            paired = min(channels_in, channels_out)
            identity = np.zeros((3, 3, channels_in, paired))
            identity[1, 1, range(paired), range(paired)] = 1
            np.testing.assert_array_equal(filters[..., :paired], identity, err_msg=name)
            rest = filters[..., paired:]
            bound = 1 / math.sqrt(9 * channels_in)
            if rest.size:
                assert np.abs(rest).max() <= bound
                assert rest.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)
        weights = sess.run(variable('deep_cnn/fc/weights'))
        assert np.abs(weights).max() <= 1 / 4  # PyTorch's Linear: U(+-1/sqrt(16))
        assert weights.std() == pytest.approx(1 / 4 / math.sqrt(3), rel=0.2)


def test_network_is_airbench94_layer_by_layer(graph):
    """Whitening (frozen 2 x 2, 24 channels, a bias), GELU, the blocks, max, x 1/9.

    The logits are computed again from the variables in NumPy.
    """
    images, _, training = graph
    whitening = deep_cnn_model.whitening_filters(random_images(20, seed=2))
    logits = deep_cnn_model.inference(images, training, (4, 4, 4), whitening=whitening)
    trainable = {v.op.name for v in tf.trainable_variables()}
    assert 'deep_cnn/whiten/filters' not in trainable      # frozen
    assert 'deep_cnn/whiten/biases' in trainable
    assert not any('scale' in name for name in trainable)  # batch norm's scale: 1, frozen
    batch = random_images(3, seed=3)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = {v.op.name: sess.run(v) for v in tf.global_variables()}
        got = sess.run(logits, {images: batch, training: True})
    np.testing.assert_array_equal(values['deep_cnn/whiten/filters'], whitening)

    def gelu(x):
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))

    def conv(x, w, same):
        height, width = w.shape[:2]
        if same:
            x = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
        rows, columns = x.shape[1] - height + 1, x.shape[2] - width + 1
        return sum(x[:, i:i + rows, j:j + columns] @ w[i, j]
                   for i in range(height) for j in range(width))

    def pool(x):
        rows, columns = x.shape[1] // 2, x.shape[2] // 2
        return x[:, :2 * rows, :2 * columns].reshape(len(x), rows, 2, columns, 2, -1).max((2, 4))

    def norm(x, block, number):  # a training step: the batch's statistics, eps 1e-12
        mean, variance = x.mean((0, 1, 2)), x.var((0, 1, 2))
        return (x - mean) / np.sqrt(variance + 1e-12) + values[f'{block}/norm{number}/bias']

    x = gelu(conv(batch, whitening, False) + values['deep_cnn/whiten/biases'])
    for number in (1, 2, 3):
        block = f'deep_cnn/block{number}'
        x = gelu(norm(pool(conv(x, values[f'{block}/conv1/filters'], True)), block, 1))
        x = gelu(norm(conv(x, values[f'{block}/conv2/filters'], True), block, 2))
    assert x.shape == (3, 3, 3, 4)
    expected = x.max((1, 2)) @ values['deep_cnn/fc/weights'] / 9
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-4)


def test_batch_norm_running_statistics_keep_0_6_and_use_bessels_correction(graph):
    """running <- 0.6 running + 0.4 batch (PyTorch's momentum 0.4), the variance unbiased."""
    images, _, training = graph
    with tf.variable_scope('norm'):
        outputs = deep_cnn_model.batch_normalization(images, training)
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    batch = random_images(4, seed=4) * 3 + 1
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        normalised, _ = sess.run([outputs, update_ops], {images: batch, training: True})
        mean, variance = sess.run([variable('norm/running_mean'), variable('norm/running_var')])
        # eps 1e-12: a channel of tiny spread is still scaled to unit variance
        tiny = np.zeros((2, 32, 32, 3), np.float32)
        tiny[0] += 1e-3
        tiny_out = sess.run(outputs, {images: tiny, training: True})
    np.testing.assert_allclose(mean, 0.4 * batch.mean((0, 1, 2)), rtol=1e-5)
    n = 4 * 32 * 32
    np.testing.assert_allclose(variance, 0.6 + 0.4 * batch.var((0, 1, 2)) * n / (n - 1),
                               rtol=1e-5)
    np.testing.assert_allclose(normalised.std((0, 1, 2)), 1, rtol=1e-4)
    np.testing.assert_allclose(np.abs(tiny_out), 1, rtol=1e-2)


def sgd_reference(groups, steps, total_steps, momentum=0.85, learning_rate=11.5,
                  weight_decay=0.0153, batch_size=8, bias_scaler=64.0):
    """airbench's main(): PyTorch's Nesterov SGD, per group, over the given gradients.

    Args:
        groups: {name: (initial value, gradients of each step, is a batch norm bias)}.

    Returns:
        {name: value after the steps}.
    """
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    lr = learning_rate / kilostep_scale
    wd = weight_decay * batch_size / kilostep_scale
    warmup_steps = int(total_steps * 0.23)

    def get_lr(step):
        if step < warmup_steps:
            return 0.2 * (1 - step / warmup_steps) + 1.0 * step / warmup_steps
        frac = (step - warmup_steps) / (total_steps - warmup_steps)
        return 1.0 * (1 - frac) + 0.07 * frac

    results = {}
    for name, (value, gradients, is_norm) in groups.items():
        group_lr = lr * bias_scaler if is_norm else lr
        p, buf = value.astype(np.float64), None
        for step, gradient in enumerate(gradients[:steps]):
            d = gradient + wd / group_lr * p
            buf = d if buf is None else momentum * buf + d
            p = p - group_lr * get_lr(step) * (d + momentum * buf)
        results[name] = p
    return results


def test_each_group_learns_at_airbench_rate_with_coupled_weight_decay(graph):
    """Three steps of the train op against PyTorch's SGD on the same gradients.

    Batch norm's biases at 64 times the rate, the decay through the momentum,
    the schedule at steps 0 to 2 of 10; the frozen-bias op leaves the
    whitening bias (and its momentum) alone.
    """
    images, labels, training = graph
    logits = deep_cnn_model.inference(images, training, (4, 4, 4))
    loss = deep_cnn_model.loss(logits, labels)
    train_op, frozen_bias_train_op = deep_cnn_model.training(loss, total_steps=10, batch_size=8)
    names = ('deep_cnn/block1/conv1/filters', 'deep_cnn/block2/norm2/bias',
             'deep_cnn/fc/weights', 'deep_cnn/whiten/biases')
    watched = [variable(name) for name in names]
    gradient_ops = tf.gradients(loss, watched)
    feed = {images: random_images(8, seed=5), labels: np.arange(8) % 10, training: True}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        initial = sess.run(watched)
        gradients = []
        for step_op in (train_op, train_op, frozen_bias_train_op):
            gradients.append(sess.run(gradient_ops, feed))
            sess.run(step_op, feed)
        final = sess.run(watched)
        assert sess.run(tf.train.get_global_step()) == 3
    groups = {name: (initial[k], [g[k] for g in gradients], '/norm' in name)
              for k, name in enumerate(names)}
    expected = sgd_reference(groups, 3, total_steps=10)
    for k, name in enumerate(names[:3]):
        np.testing.assert_allclose(final[k], expected[name], rtol=1e-4, atol=1e-6, err_msg=name)
    # The whitening bias: two steps, then frozen
    np.testing.assert_allclose(final[3], sgd_reference(groups, 2, 10)[names[3]],
                               rtol=1e-4, atol=1e-6)


def test_learning_rate_schedule_is_airbench_get_lr():
    """0.2 -> 1 over int(23%) of the steps, then linearly to 0.07 at the last."""
    with tf.Graph().as_default():
        step = tf.placeholder(tf.int64, [])
        schedule = deep_cnn_model.learning_rate_schedule(step, total_steps=476)
        with tf.Session() as sess:
            values = [float(sess.run(schedule, {step: s})) for s in (0, 54, 109, 300, 476)]
    # int(476 x 0.23) = 109 warm-up steps
    assert values == pytest.approx([0.2, 0.2 + 0.8 * 54 / 109, 1.0,
                                    1 - 0.93 * (300 - 109) / 367, 0.07], abs=1e-6)


def test_learning_rate_schedule_without_warmup_starts_at_the_full_rate():
    """--warmup 0: the whole rate from the first step, then linearly to 0.07."""
    with tf.Graph().as_default():
        step = tf.placeholder(tf.int64, [])
        schedule = deep_cnn_model.learning_rate_schedule(step, total_steps=100, warmup=0)
        with tf.Session() as sess:
            values = [float(sess.run(schedule, {step: s})) for s in (0, 1, 50, 100)]
    assert values == pytest.approx([1.0, 1 - 0.93 / 100, 1 - 0.93 * 50 / 100, 0.07], abs=1e-6)


def test_lookahead_pulls_every_network_variable_toward_the_slow_copy(graph):
    """At step s: slow += (1 - d)(w - slow), w = slow, d = 0.95^5 (s/T)^3; finish: w = slow.

    Batch norm's running statistics take part; the optimizer's momentum does not.
    """
    images, labels, training = graph
    loss = deep_cnn_model.loss(deep_cnn_model.inference(images, training, (4, 4, 4)), labels)
    train_op, _ = deep_cnn_model.training(loss, total_steps=20, batch_size=8)
    update_op, finish_op = deep_cnn_model.lookahead(total_steps=20)
    network = [v for v in tf.global_variables() if v.op.name.startswith('deep_cnn/')
               and not v.op.name.endswith('Momentum')]
    assert any('running_var' in v.op.name for v in network)
    slow = [variable('lookahead/' + v.op.name) for v in network]
    assert not any('Momentum' in v.op.name for v in tf.global_variables()
                   if v.op.name.startswith('lookahead/'))
    feed = {images: random_images(8, seed=6), labels: np.arange(8) % 10, training: True}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        start = sess.run(slow)
        for _ in range(5):
            sess.run(train_op, feed)
        weights = sess.run(network)
        sess.run(update_op)
        decay = 0.95 ** 5 * (5 / 20) ** 3
        for name, old, new_weight, first, new_slow in zip(
                [v.op.name for v in network], start, sess.run(network), weights,
                sess.run(slow), strict=True):
            expected = old + (1 - decay) * (first - old)
            np.testing.assert_allclose(new_slow, expected, rtol=1e-5, atol=1e-7, err_msg=name)
            np.testing.assert_array_equal(new_weight, new_slow, err_msg=name)
        sess.run(train_op, feed)
        assert not np.array_equal(sess.run(network[-1]), sess.run(slow[-1]))
        sess.run(finish_op)
        for weight, slow_value in zip(sess.run(network), sess.run(slow), strict=True):
            np.testing.assert_array_equal(weight, slow_value)


def test_six_test_time_views_averaged_as_airbench_does(graph):
    """Level 2: (mirror-mean of the image + mean of the mirror-means at two 1-pixel shifts) / 2."""
    images, labels, training = graph
    network = dict(widths=(4, 4, 4))
    one_view = deep_cnn_model.inference(images, training, **network)
    levels = [deep_cnn_model.evaluation(images, labels, level, **network)[1] for level in (0, 1, 2)]
    batch = random_images(3, seed=7)
    padded = np.pad(batch, [(0, 0), (1, 1), (1, 1), (0, 0)], mode='reflect')
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())

        def mirrored(views):
            return (sess.run(one_view, {images: views})
                    + sess.run(one_view, {images: views[:, :, ::-1]})) / 2

        got = [sess.run(logits, {images: batch}) for logits in levels]
        expected = [sess.run(one_view, {images: batch}), mirrored(batch),
                    (mirrored(batch) + (mirrored(padded[:, :32, :32])
                                        + mirrored(padded[:, 2:, 2:])) / 2) / 2]
    for level in range(3):
        np.testing.assert_allclose(got[level], expected[level], rtol=1e-4, atol=1e-5)
    assert not np.allclose(got[1], got[2], atol=1e-4)


def test_loss_is_summed_label_smoothed_cross_entropy():
    """PyTorch's CrossEntropyLoss(label_smoothing=0.2, reduction='none').sum()."""
    logits = np.random.default_rng(8).normal(0, 2, (5, 10)).astype(np.float32)
    labels = np.array([0, 3, 9, 3, 1])
    with tf.Graph().as_default(), tf.Session() as sess:
        loss = sess.run(deep_cnn_model.loss(tf.constant(logits), tf.constant(labels)))
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    targets = np.full((5, 10), 0.02)
    targets[range(5), labels] += 0.8
    assert loss == pytest.approx(-(targets * log_softmax).sum(), rel=1e-5)


def test_alternating_flip_shows_each_image_both_ways_in_any_two_epochs():
    """flip_half mirrors a random half once; odd epochs mirror the whole batch."""
    images = random_images(200, seed=9)
    flipped = images.copy()
    deep_cnn_input.flip_half(flipped, seed=4)
    mirrored = np.array([np.array_equal(f, i[:, ::-1]) for f, i in zip(flipped, images,
                                                                         strict=True)])
    assert np.all(mirrored | np.all(flipped == images, axis=(1, 2, 3)))
    assert 70 < mirrored.sum() < 130
    even = deep_cnn_input.augment(flipped, seed=4, step=0, epoch=0, translate=0)
    odd = deep_cnn_input.augment(flipped, seed=4, step=1, epoch=1, translate=0)
    np.testing.assert_array_equal(even, flipped)
    np.testing.assert_array_equal(odd, flipped[:, :, ::-1])


def test_translations_reach_every_offset_on_both_axes_about_equally_often():
    """Shifts of -2 to 2 pixels up/down and left/right, each about 1/5 of the time.

    Each image is marked by a single bright pixel at its centre: where the
    pixel lands tells the shift.
    """
    images = np.zeros((5000, 32, 32, 3), np.float32)
    images[:, 16, 16] = 1
    shifted = deep_cnn_input.augment(images, seed=1, step=3, flip='none', translate=2)
    rows, columns = np.nonzero(shifted[..., 0])[1:]
    assert len(rows) == 5000
    for offsets in (rows - 16, columns - 16):
        counts = np.bincount(offsets + 2, minlength=5)
        assert len(counts) == 5 and counts.min() > 850, counts  # 1,000 +- 4.5 sigma
