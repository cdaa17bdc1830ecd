"""A deeper, wider convolutional network for CIFAR-10 (part 4, the model).

The same four functions as `cnn_model.py`, so `run_deep_cnn_model.py` reads
like `run_cnn_model.py`, each ingredient of the recipe a visible piece:

1. `inference()`: three blocks of convolution, max-pooling, batch
   normalization and ReLU, then a second convolution, batch normalization
   and ReLU; the largest value of each channel goes to a fully connected layer
   that gives the 10 logits. `--width` sets the channels;
2. `loss()`: the softmax cross-entropy with smoothed labels;
3. `training()`: a Nesterov momentum step with decoupled weight decay, at a
   learning rate that warms up and then decays with the global step;
4. `evaluation()`: the accuracy at test time, averaging the logits of each
   image and its mirror image (test-time augmentation).

Beside `training()`, `average_weights()` keeps a moving average of the
weights (`tf.train.ExponentialMovingAverage`), which `evaluation()` can test
instead of the last weights.

And `augment()`, in NumPy, which flips and shifts the training images anew
every epoch. The recipe's ingredients are those of Keller Jordan's airbench94
(94% on CIFAR-10 in 10 epochs), built with `tf.nn` ops.
"""

import numpy as np
import tensorflow.compat.v1 as tf

import two_layer_fc

# The channels of the three blocks, in units of --width: 32, 64, 128 for --width 32.
BLOCK_WIDTHS = (1, 2, 4)
DEFAULT_WIDTH = 32
MOST_TRANSLATE = 8    # a shift beyond 8 of 32 pixels no longer shows the same object
# The mean-centred pixels lie within about +-128; divided by this, within +-2.
PIXEL_SCALE = 64.0
# How much of its old value a moving statistic of batch norm keeps at each step.
BATCH_NORM_DECAY = 0.9


def inference(images, training, width=DEFAULT_WIDTH, batch_norm=True, classes=10,
              custom_getter=None):
    """Builds the network up to the logits.

    Called once with the training switch for the training graph, and again
    with `training=False` by `evaluation()`, sharing the same variables.

    Args:
        images: float32 [batch, 32, 32, 3], mean-centred.
        training: a bool tensor (True in a training step: batch norm uses the
            batch's own statistics and updates the moving ones), or Python
            False (test time: the moving statistics, nothing updated).
        width: channels of the first block; the second has twice, the third
            four times as many.
        batch_norm: whether to normalise after each convolution (False: add
            a bias instead, as in part 3).
        classes: number of output classes.
        custom_getter: None, or what `tf.get_variable` hands each variable
            to (`averaged_weights_getter`: the network then computes with the
            moving averages of its variables).

    Returns:
        logits: float32 [batch, classes].
    """
    with tf.variable_scope('deep_cnn', reuse=tf.AUTO_REUSE, custom_getter=custom_getter):
        # Pixels of about unit size, so the first filters learn at the pace of the others
        inputs = images / PIXEL_SCALE
        channels = 3
        for number, multiple in enumerate(BLOCK_WIDTHS, 1):
            # 32 x 32 -> 16 x 16 -> 8 x 8 -> 4 x 4, with more channels each time
            with tf.variable_scope(f'block{number}'):
                inputs = conv_block(inputs, channels, width * multiple, training, batch_norm)
            channels = width * multiple

        with tf.variable_scope('fc'):
            # The largest value of each channel over the 4 x 4 positions: it
            # says how strongly a feature is present, wherever it is.
            features = tf.reduce_max(inputs, axis=[1, 2], name='features')
            weights = tf.get_variable('weights', [channels, classes],
                                      initializer=tf.glorot_uniform_initializer())
            biases = tf.get_variable('biases', [classes], initializer=tf.zeros_initializer())
            logits = tf.matmul(features, weights) + biases
    return logits


def conv_block(inputs, channels_in, channels_out, training, batch_norm=True):
    """One block: conv, max-pool, batch norm, ReLU, then conv, batch norm, ReLU.

    Two 3 x 3 convolutions in a row see 5 x 5 pixels with fewer weights than
    one 5 x 5 convolution, and a ReLU between them; pooling halves the height
    and width.

    Returns:
        float32 [batch, height / 2, width / 2, channels_out].
    """
    normalise = batch_normalization if batch_norm else add_biases
    with tf.variable_scope('conv1'):
        conv = convolution(inputs, [3, 3, channels_in, channels_out])
        pool = tf.nn.max_pool2d(conv, ksize=2, strides=2, padding='VALID')
        first = tf.nn.relu(normalise(pool, training))
    with tf.variable_scope('conv2'):
        conv = convolution(first, [3, 3, channels_out, channels_out])
        return tf.nn.relu(normalise(conv, training))


def convolution(inputs, filter_shape):
    """A 3 x 3 convolution, one pixel at a time, without biases (batch norm's offset is one).

    He initialisation keeps the activations' scale through the ReLUs.
    """
    filters = tf.get_variable('filters', filter_shape,
                              initializer=tf.variance_scaling_initializer(scale=2.0))
    return tf.nn.conv2d(inputs, filters, strides=[1, 1, 1, 1], padding='SAME')


def add_biases(inputs, training):
    """Without batch norm (--nobatch_norm): one bias per channel, as in part 3."""
    biases = tf.get_variable('biases', [inputs.shape[-1]], initializer=tf.zeros_initializer())
    return inputs + biases


def batch_normalization(inputs, training):
    """Batch normalization: each channel scaled to mean 0 and variance 1, then shifted and scaled.

    Why it helps: whatever the layers before it learn, each layer receives
    inputs of the same scale, so a large learning rate stays stable and the
    network trains in far fewer epochs.

    In training, each channel is normalised with its mean and variance over
    the batch, and moving averages of them are kept (non-trainable
    variables, saved in the checkpoints). At test time those moving averages
    are used instead, so an image gets the same answer in any batch. The ops
    that update them are put in the collection `tf.GraphKeys.UPDATE_OPS`:
    `training()` runs them with every step.

    Args:
        inputs: float32 [batch, height, width, channels].
        training: a bool tensor, or Python False (see `inference`).

    Returns:
        The normalised inputs.
    """
    channels = inputs.shape[-1]
    scale = tf.get_variable('bn_scale', [channels], initializer=tf.ones_initializer())
    offset = tf.get_variable('bn_offset', [channels], initializer=tf.zeros_initializer())
    moving_mean = tf.get_variable('moving_mean', [channels], trainable=False,
                                  initializer=tf.zeros_initializer())
    moving_variance = tf.get_variable('moving_variance', [channels], trainable=False,
                                      initializer=tf.ones_initializer())

    def with_moving_statistics():
        normalised, _, _ = tf.nn.fused_batch_norm(
            inputs, scale, offset, mean=moving_mean, variance=moving_variance,
            is_training=False)
        return normalised, moving_mean, moving_variance

    if training is False:  # the test-time graph of evaluation(): nothing to update
        return with_moving_statistics()[0]

    def with_batch_statistics():
        return tf.nn.fused_batch_norm(inputs, scale, offset, is_training=True)

    # The switch fed by the training loop picks the statistics
    normalised, mean, variance = tf.cond(training, with_batch_statistics,
                                         with_moving_statistics)
    # moving <- moving - (1 - decay) x (moving - batch's): an exponential
    # moving average (at test time mean is the moving mean: no change)
    for moving, batch_value in ((moving_mean, mean), (moving_variance, variance)):
        update = tf.assign_sub(moving, (1 - BATCH_NORM_DECAY) * (moving - batch_value))
        tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, update)
    return normalised


def loss(logits, labels, label_smoothing=0.2, classes=10):
    """Adds the mean softmax cross-entropy with smoothed labels, with a `loss` summary.

    Why label smoothing helps: the target is 0.82 for the right class and
    0.02 for each other (with 0.2), not 1 and 0. The network is never pushed
    to make its logits ever larger on images it already gets right, so it
    stays less sure of itself and generalises better.

    Args:
        logits: float32 [batch, classes].
        labels: int64 [batch].
        label_smoothing: the share of the target spread evenly over all
            classes; 0 for the one-hot labels of parts 1 to 3.
        classes: number of classes.

    Returns:
        The scalar loss tensor.
    """
    with tf.name_scope('Loss'):
        targets = (1 - label_smoothing) * tf.one_hot(labels, classes) + label_smoothing / classes
        loss = tf.reduce_mean(
            tf.nn.softmax_cross_entropy_with_logits_v2(labels=targets, logits=logits))
        tf.summary.scalar('loss', loss)
    return loss


def learning_rate_schedule(global_step, peak_rate, total_steps, warmup_fraction):
    """The learning rate at a step: a linear rise, then a linear fall to 0 at the last step.

    Why: at the start the weights are random and large steps would throw them
    about, so the rate climbs over the first steps (warm-up); then large steps
    cross the loss landscape fast, and ever smaller ones settle into a minimum.
    Computed from `global_step`, so a resumed run continues the same schedule.

    Args:
        global_step: the step counter.
        peak_rate: the highest learning rate, reached after the warm-up.
        total_steps: the steps of the whole run.
        warmup_fraction: the share of the steps spent warming up (0: none).

    Returns:
        The float32 learning rate tensor, with a `learning_rate` summary.
    """
    step = tf.cast(global_step, tf.float32)
    warmup_steps = max(1.0, warmup_fraction * total_steps)
    rising = step / warmup_steps
    falling = (total_steps - step) / max(1.0, total_steps - warmup_steps)
    learning_rate = peak_rate * tf.clip_by_value(tf.minimum(rising, falling), 0.0, 1.0)
    tf.summary.scalar('learning_rate', learning_rate)
    return learning_rate


def training(loss, learning_rate, momentum=0.9, weight_decay=5e-4):
    """Adds one step of Nesterov momentum SGD with decoupled weight decay.

    Why momentum: the step follows a running sum of the gradients, which
    speeds it along directions the gradients agree on and damps the zigzag
    across the others; Nesterov's variant takes the gradient a step ahead,
    which corrects an overshoot sooner.

    Why decoupled weight decay: each step also shrinks every weight matrix
    by the factor (1 - learning_rate x weight_decay), apart from the
    gradient and its momentum. With batch norm after them, the filters' size
    does not change the output, only how fast they learn: shrinking them
    keeps the effective learning rate up, and favours small, simple weights.

    Args:
        loss: the loss tensor.
        learning_rate: the learning rate tensor (from `learning_rate_schedule`).
        momentum: the share of the previous step kept in the next.
        weight_decay: the shrinking per unit of learning rate (0: none).

    Returns:
        The training op, which also increments the global step.
    """
    global_step = tf.train.get_or_create_global_step()
    optimizer = tf.train.MomentumOptimizer(learning_rate, momentum, use_nesterov=True)
    gradients = optimizer.compute_gradients(loss)
    # The filters and weights are decayed; batch norm's scales and offsets are not
    decayed = [variable for variable in tf.trainable_variables()
               if variable.op.name.endswith(('filters', 'weights'))]
    # Batch norm's moving statistics are updated with every step: the ops in
    # UPDATE_OPS run before it, as do the gradients, taken before any decay.
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops + [gradient for gradient, _ in gradients]):
        decay = tf.group(*[tf.assign_sub(variable, learning_rate * weight_decay * variable)
                           for variable in decayed], name='weight_decay')
    with tf.control_dependencies([decay]):
        return optimizer.apply_gradients(gradients, global_step=global_step)


def averaged_variables():
    """The variables `average_weights()` averages: the trainable ones and batch norm's statistics.

    Why batch norm's moving statistics too, though they are averages already:
    they follow the last weights over about 10 steps (BATCH_NORM_DECAY), while
    the averaged weights are a blend of the weights over many more. Averaged
    with the same decay, the statistics come from the same steps as the
    weights they normalise at test time.
    """
    return tf.trainable_variables() + [
        variable for variable in tf.global_variables()
        if variable.op.name.endswith(('moving_mean', 'moving_variance'))]


def average_weights(train_op, decay):
    """Adds a moving average of the weights, updated after each training step.

    Why: late in training each step still jolts the weights a little, this
    way and that, around the minimum. An average over the last steps lies
    nearer its middle than any one of them, and often tests better. With a
    learning rate that falls to 0, the last steps are small already: whether
    the average still pays is measured in docs/part4_toward_94.md.

    `tf.train.ExponentialMovingAverage` keeps a "shadow" copy of each variable
    (saved in the checkpoints beside it) and moves it at each step:
    `shadow <- shadow - (1 - decay) x (shadow - variable)`. With
    `num_updates=global_step` the decay is at most (1 + step) / (10 + step),
    so early in a run the shadows follow the weights closely (a warm-up of the
    decay) instead of staying near the random initial weights.

    Args:
        train_op: the op of one training step (from `training`).
        decay: the share of its old value a shadow keeps at each step; 0: no
            average, the train op is returned as it is.

    Returns:
        (train op, ema): the op of a training step that then updates the
        shadows, and the `tf.train.ExponentialMovingAverage` (None with
        decay 0), for `evaluation()`.
    """
    if not decay:
        return train_op, None
    ema = tf.train.ExponentialMovingAverage(decay,
                                            num_updates=tf.train.get_or_create_global_step())
    # The shadows move after the step has changed the weights, and only in
    # training steps: evaluating the network does not run this op
    with tf.control_dependencies([train_op]):
        return ema.apply(averaged_variables()), ema


def averaged_weights_getter(ema):
    """A custom getter for `inference`: each variable's moving average in place of the variable.

    The network built with it computes with the shadow variables of `ema`;
    a variable without a shadow is used as it is.
    """
    def get_average(getter, *args, **kwargs):
        variable = getter(*args, **kwargs)
        average = ema.average(variable)
        return variable if average is None else average
    return get_average


def evaluation(images, labels, width=DEFAULT_WIDTH, test_flip=True, batch_norm=True,
               ema=None):
    """The accuracy of a batch at test time, with a `train_accuracy` summary.

    Builds the test-time network (batch norm with its moving statistics) on
    the variables of `inference`. With `test_flip`, each image is also shown
    mirrored, and the two sets of logits averaged (test-time augmentation).
    Why it helps: a mirrored cat is a cat, and the network trained on both
    (see `augment`); two views of an image make fewer mistakes than one.

    Args:
        images: float32 [batch, 32, 32, 3].
        labels: int64 [batch].
        width, batch_norm: the network's --width and --batch_norm.
        test_flip: whether to average with the mirrored image's logits.
        ema: None, or the `tf.train.ExponentialMovingAverage` of
            `average_weights`: the network is then tested with the moving
            averages of its variables, not with their last values.

    Returns:
        (accuracy, logits): the fraction of right answers, and the test-time
        logits [batch, classes] the predictions are read from.
    """
    getter = averaged_weights_getter(ema) if ema else None
    logits = inference(images, False, width, batch_norm, custom_getter=getter)
    if test_flip:
        mirrored = tf.reverse(images, axis=[2])  # left <-> right
        logits = (logits + inference(mirrored, False, width, batch_norm,
                                     custom_getter=getter)) / 2
    return two_layer_fc.evaluation(logits, labels), logits


def augment(images, seed, step, flip=True, translate=2):
    """Flips and shifts a training batch at random, anew at every step.

    Why it helps: a photo of a horse is still a horse mirrored or moved by two
    pixels. Each epoch the network sees other versions of each image, as if
    the training set were many times larger, and cannot learn the images by
    heart. The labels are not touched.

    The random numbers come from (seed, step) alone: the same --seed gives the
    same batches, and a resumed run draws what the uninterrupted run drew.

    Args:
        images: float32 [batch, 32, 32, 3].
        seed: the run's --seed.
        step: the global step the batch is trained at.
        flip: whether to mirror half of the images, left to right.
        translate: the largest shift in pixels, up, down, left or right (0: none).

    Returns:
        The new float32 [batch, 32, 32, 3] images.
    """
    rng = np.random.default_rng([seed, step])
    count, height, width, _ = images.shape
    if flip:
        mirrored = rng.random(count) < 0.5
        images = np.where(mirrored[:, None, None, None], images[:, :, ::-1], images)
    if translate:
        # Pad by mirroring the border, then cut a 32 x 32 window at a random offset
        padded = np.pad(images, [(0, 0), (translate, translate), (translate, translate), (0, 0)],
                        mode='reflect')
        rows = rng.integers(0, 2 * translate + 1, count)[:, None] + np.arange(height)
        columns = rng.integers(0, 2 * translate + 1, count)[:, None] + np.arange(width)
        images = padded[np.arange(count)[:, None, None], rows[:, :, None], columns[:, None, :]]
    return images
