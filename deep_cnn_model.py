"""airbench94 in TensorFlow 1 graph form: 94% on CIFAR-10 in 10 epochs (part 4, the model).

Keller Jordan's airbench94 (`legacy/airbench94.py` in KellerJordan/cifar10-airbench,
94.01% mean over 1,000 runs on the full set), every piece with its numbers, in the four
functions of `cnn_model.py` (docs/part4_toward_94.md goes through them):

1. `inference()`: a whitening layer (a frozen 2 x 2 convolution computed from the
   training images by `whitening_filters()`), then three blocks of convolution,
   max-pooling, batch norm and GELU, the largest value of each channel, and a linear
   layer scaled by 1/9;
2. `loss()`: cross-entropy with smoothed labels, summed over the batch;
3. `training()`: Nesterov momentum SGD in airbench's units (learning rate and weight
   decay per 1,024 images), batch norm's biases at 64 times the rate, a schedule that
   warms up and then decays; `lookahead()` pulls the weights back to a slow average
   every 5 steps;
4. `evaluation()`: the accuracy at test time over 6 views of each image.

The images are standardized, flipped and shifted by `deep_cnn_input.py`.
"""

import numpy as np
import tensorflow.compat.v1 as tf

# airbench94's defaults (its `hyp`); each is also a flag of run_deep_cnn_model.py
WIDTHS = (64, 256, 256)          # channels of the three blocks
BATCH_NORM_MOMENTUM = 0.6        # the share of a running statistic kept at each step
SCALING_FACTOR = 1 / 9           # the logits' scale
WHITENING_IMAGES = 5000          # training images whose patches set the whitening filters
WHITENING_EPSILON = 5e-4         # keeps the flattest patch directions from being blown up
BATCH_NORM_EPSILON = 1e-12
LOOKAHEAD_EVERY = 5              # steps between two pulls toward the slow weights


def whitening_filters(images, epsilon=WHITENING_EPSILON):
    """The whitening layer's filters: 2 x 2 patches of the images made uncorrelated.

    Why: neighbouring pixels are strongly correlated (mostly they differ little),
    so a network's first steps learn one direction (brightness) fast and the
    rest slowly. The eigenvectors of the patches' covariance are its principal
    directions; each divided by the square root of its eigenvalue gives outputs
    of equal variance, uncorrelated with each other. Each filter and its negative
    are kept (24 in all), so that GELU after them loses no sign.

    Args:
        images: float32 [N, 32, 32, 3], standardized (airbench takes 5,000).
        epsilon: added to each eigenvalue before its square root.

    Returns:
        float32 [2, 2, 3, 24], as `tf.nn.conv2d` takes filters: the 12
        directions from the largest eigenvalue down, then their negatives.
    """
    # airbench sums in float32, which over 4.8 million patches loses the smallest
    # eigenvalues (one came out negative): float64 here
    covariance = np.zeros((12, 12))
    for start in range(0, len(images), 500):  # 500 images at a time: bounded memory
        block = images[start:start + 500].astype(np.float64)
        # Every 2 x 2 patch at a step of one pixel (31 x 31 an image), flattened
        patches = np.lib.stride_tricks.sliding_window_view(block, (2, 2), axis=(1, 2))
        patches = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 12)  # (row, column, colour)
        covariance += patches.T @ patches
    covariance /= len(images) * 31 * 31  # airbench's covariance: the mean of x x^T
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # in increasing order
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    filters = (eigenvectors / np.sqrt(eigenvalues + epsilon)).reshape(2, 2, 3, 12)
    return np.concatenate([filters, -filters], axis=3).astype(np.float32)


def network_settings(params):
    """The keyword arguments of `inference` from a run's flags (or its params.json)."""
    return dict(widths=tuple(params.get(f'block{number}_width', width)
                             for number, width in enumerate(WIDTHS, 1)),
                activation=params.get('activation', 'gelu'),
                scaling_factor=params.get('scaling_factor', SCALING_FACTOR),
                trainable_bn_scale=params.get('trainable_bn_scale', False),
                batch_norm_momentum=params.get('batch_norm_momentum', BATCH_NORM_MOMENTUM))


def inference(images, training, widths=WIDTHS, activation='gelu',
              scaling_factor=SCALING_FACTOR, trainable_bn_scale=False,
              batch_norm_momentum=BATCH_NORM_MOMENTUM, whitening=None, dirac=True,
              classes=10):
    """Builds airbench94's network up to the logits (again for each test view, sharing
    the variables).

    Args:
        images: float32 [batch, 32, 32, 3], standardized.
        training: a bool tensor (True in a training step: batch norm uses the
            batch's statistics and updates its running ones), or Python False.
        widths: channels of the three blocks.
        activation: 'gelu' (airbench), or 'relu'; scaling_factor: of the logits.
        trainable_bn_scale: whether batch norm learns a scale (airbench: frozen at 1).
        batch_norm_momentum: the share of a running statistic kept at each step.
        whitening: the frozen whitening filters, from `whitening_filters()`;
            None: a first convolution trained like the others (or restored).
        dirac: whether each convolution starts as the identity on its inputs.
        classes: number of classes.

    Returns:
        logits: float32 [batch, classes].
    """
    activate = {'gelu': gelu, 'relu': tf.nn.relu}[activation]
    with tf.variable_scope('deep_cnn', reuse=tf.AUTO_REUSE):
        with tf.variable_scope('whiten'):
            # 32 x 32 -> 31 x 31, each pixel a whitened 2 x 2 patch; frozen filters
            filters = tf.get_variable(
                'filters', [2, 2, 3, 24], trainable=whitening is None,
                initializer=conv_initializer(dirac) if whitening is None
                else tf.constant_initializer(whitening))
            biases = tf.get_variable('biases', [24], initializer=tf.zeros_initializer())
            inputs = activate(tf.nn.conv2d(images, filters, 1, 'VALID') + biases)
        channels = 24
        for number, width in enumerate(widths, 1):
            # 31 x 31 -> 15 x 15 -> 7 x 7 -> 3 x 3, with more channels each time
            with tf.variable_scope(f'block{number}'):
                inputs = conv_group(inputs, channels, width, training, activate,
                                    trainable_bn_scale, batch_norm_momentum, dirac)
            channels = width
        with tf.variable_scope('fc'):
            # The largest value of each channel over the 3 x 3 positions (a 3 x 3
            # max-pool): how strongly a feature is present, wherever it is.
            features = tf.reduce_max(inputs, axis=[1, 2], name='features')
            # A linear layer without bias, PyTorch's default initialisation
            bound = 1 / np.sqrt(channels)
            weights = tf.get_variable('weights', [channels, classes],
                                      initializer=tf.random_uniform_initializer(-bound, bound))
            # Smaller logits: the softmax starts less sure, and learns at a gentler pace
            logits = tf.matmul(features, weights) * scaling_factor
    return logits


def gelu(inputs):
    """GELU, PyTorch's exact one: x times the probability that a standard normal is below x.

    Like ReLU it passes large positive values and stops large negative ones, but smoothly.
    """
    return 0.5 * inputs * (1 + tf.math.erf(inputs / np.sqrt(2)))


def conv_group(inputs, channels_in, channels_out, training, activate, trainable_bn_scale,
               batch_norm_momentum, dirac):
    """One block: conv, max-pool, batch norm, activation, conv, batch norm, activation.

    Two 3 x 3 convolutions in a row see 5 x 5 pixels with fewer weights than one
    5 x 5 convolution; pooling halves the height and width (rounding down).
    """
    norm = dict(training=training, trainable_scale=trainable_bn_scale,
                momentum=batch_norm_momentum)
    with tf.variable_scope('conv1'):
        conv = convolution(inputs, [3, 3, channels_in, channels_out], dirac)
    pooled = tf.nn.max_pool2d(conv, ksize=2, strides=2, padding='VALID')
    with tf.variable_scope('norm1'):
        first = activate(batch_normalization(pooled, **norm))
    with tf.variable_scope('conv2'):
        conv = convolution(first, [3, 3, channels_out, channels_out], dirac)
    with tf.variable_scope('norm2'):
        return activate(batch_normalization(conv, **norm))


def convolution(inputs, filter_shape, dirac=True):
    """A 3 x 3 convolution, padded to keep the size; no bias (batch norm adds its own)."""
    filters = tf.get_variable('filters', filter_shape, initializer=conv_initializer(dirac))
    return tf.nn.conv2d(inputs, filters, strides=1, padding='SAME')


def conv_initializer(dirac=True):
    """PyTorch's default filters, U(+-1/sqrt(fan-in)), the first ones made identities (Dirac).

    Why: output channel i of a fresh convolution passes input channel i through
    unchanged, so at the start the deep network behaves like a shallow one and the
    signal reaches every layer; the other outputs stay random.
    """
    def initializer(shape, dtype=tf.float32, **_):
        height, width, channels_in, channels_out = shape
        bound = 1 / np.sqrt(height * width * channels_in)
        filters = tf.random.uniform(shape, -bound, bound, dtype)
        if not dirac:
            return filters
        paired = min(channels_in, channels_out)
        identity = np.zeros(shape, np.float32)
        identity[height // 2, width // 2, range(paired), range(paired)] = 1
        random_outputs = (np.arange(channels_out) >= paired).astype(np.float32)
        return filters * random_outputs + identity
    return initializer


def batch_normalization(inputs, training, trainable_scale=False, momentum=BATCH_NORM_MOMENTUM):
    """Batch norm: each channel to mean 0 and variance 1 over the batch, then shifted.

    Why: whatever the layers before it learn, each layer receives inputs of the
    same scale, so a large learning rate stays stable. airbench's scale is frozen at 1.
    Running averages of the batches' statistics are kept for test time (the variance
    with Bessel's correction, as PyTorch keeps it); the ops that update them go in
    `tf.GraphKeys.UPDATE_OPS`, which `training()` runs with every step.

    Args:
        inputs: float32 [batch, height, width, channels].
        training: a bool tensor, or Python False (the running statistics).
        trainable_scale: whether a scale per channel is learned.
        momentum: the share of a running statistic kept at each step.
    """
    channels = inputs.shape[-1]
    offset = tf.get_variable('bias', [channels], initializer=tf.zeros_initializer())
    scale = (tf.get_variable('scale', [channels], initializer=tf.ones_initializer())
             if trainable_scale else None)
    running_mean = tf.get_variable('running_mean', [channels], trainable=False,
                                   initializer=tf.zeros_initializer())
    running_variance = tf.get_variable('running_var', [channels], trainable=False,
                                       initializer=tf.ones_initializer())

    def normalise(mean, variance):
        return tf.nn.batch_normalization(inputs, mean, variance, offset, scale,
                                         BATCH_NORM_EPSILON)

    if training is False:  # a test-time graph of evaluation(): nothing to update
        return normalise(running_mean, running_variance)
    batch_mean, batch_variance = tf.nn.moments(inputs, axes=[0, 1, 2])
    # The switch fed by the training loop picks the statistics
    mean, variance = tf.cond(training, lambda: (batch_mean, batch_variance),
                             lambda: (running_mean.read_value(), running_variance.read_value()))
    # The updates run with training steps only (training() makes them part of one)
    values = tf.cast(tf.size(inputs) // channels, tf.float32)  # batch x height x width
    for running, value in ((running_mean, batch_mean),
                           (running_variance, batch_variance * values / (values - 1))):
        update = tf.assign(running, momentum * running + (1 - momentum) * value)
        tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, update)
    return normalise(mean, variance)


def loss(logits, labels, label_smoothing=0.2, classes=10):
    """The cross-entropy with smoothed labels, summed over the batch; a `loss` summary.

    Why label smoothing: targets of 0.82 and 0.02 (with 0.2), not 1 and 0, so the
    network is never pushed to make its logits ever larger on images it gets right.
    Why summed: airbench's learning rate is per image (the summary shows the mean).

    Returns:
        The scalar summed loss.
    """
    with tf.name_scope('Loss'):
        targets = (1 - label_smoothing) * tf.one_hot(labels, classes) + label_smoothing / classes
        losses = tf.nn.softmax_cross_entropy_with_logits_v2(labels=targets, logits=logits)
        tf.summary.scalar('loss', tf.reduce_mean(losses))
    return tf.reduce_sum(losses)


def learning_rate_schedule(global_step, total_steps, warmup=0.23):
    """The share of the learning rate at a step: 0.2 -> 1 over the warm-up, then -> 0.07.

    Why: large steps at the very start would throw the random weights about; later,
    ever smaller ones settle into a minimum. From `global_step`: --resume continues it.
    """
    step = tf.cast(global_step, tf.float32)
    warmup_steps = int(total_steps * warmup)
    rising = 0.2 + 0.8 * step / max(warmup_steps, 1)
    falling = 1.0 - 0.93 * (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return tf.where(step < warmup_steps, rising, falling)


def training(loss, total_steps, batch_size, learning_rate=11.5, momentum=0.85,
             weight_decay=0.0153, bias_scaler=64.0, warmup=0.23):
    """Adds Nesterov momentum SGD, in airbench's units, and the step counter.

    airbench gives its rates per 1,024 images and as if momentum did not enlarge the
    steps: divided by 1,024 x (1 + 1/(1 - momentum)), the SGD rate of a summed loss;
    the decay is also multiplied by the batch size, and added to the gradient as
    PyTorch's SGD does (`decay / rate x weight`, through the momentum too). Batch
    norm's biases learn 64 times as fast. `MomentumOptimizer` is PyTorch's Nesterov.

    Returns:
        (train_op, frozen_bias_train_op): a step of everything (with the global
        step and batch norm's running statistics); the same without the whitening
        layer's bias (airbench freezes it after 3 epochs).
    """
    global_step = tf.train.get_or_create_global_step()
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    rate = learning_rate / kilostep_scale
    decay = weight_decay * batch_size / kilostep_scale
    schedule = learning_rate_schedule(global_step, total_steps, warmup)
    tf.summary.scalar('learning_rate', learning_rate * schedule)  # per 1,024 images
    variables = tf.trainable_variables()
    gradients = dict(zip(variables, tf.gradients(loss, variables), strict=True))
    # airbench's parameter groups: batch norm's (its biases), at 64 times the
    # rate; the whitening layer's bias, frozen after 3 epochs; all other weights
    groups = {'weights': ([], rate), 'batch_norm': ([], rate * bias_scaler),
              'whitening_bias': ([], rate)}
    for variable in variables:
        name = variable.op.name
        group = ('whitening_bias' if name == 'deep_cnn/whiten/biases'
                 else 'batch_norm' if '/norm' in name else 'weights')
        groups[group][0].append(variable)
    steps = {}
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        for group, (group_variables, group_rate) in groups.items():
            optimizer = tf.train.MomentumOptimizer(group_rate * schedule, momentum,
                                                   use_nesterov=True)
            steps[group] = optimizer.apply_gradients(
                [(gradients[variable] + decay / group_rate * variable, variable)
                 for variable in group_variables],
                global_step=global_step if group == 'weights' else None)
    return (tf.group(*steps.values(), name='train_op'),
            tf.group(steps['weights'], steps['batch_norm'], name='frozen_bias_train_op'))


def lookahead(total_steps):
    """Adds Lookahead: slow copies of the weights, and the ops that pull toward them.

    Every 5 steps `slow <- slow + (1 - d) x (weights - slow)`, then `weights <- slow`;
    d = 0.95^5 x (step / total steps)^3 grows from 0 to 0.77: early steps are kept
    whole, late, noisy ones averaged out. Every float variable of the network takes
    part, batch norm's running statistics too (airbench's whole state_dict).

    Returns:
        (update_op, finish_op): the pull, run every 5 steps; and, after the
        last step, the weights set to the slow ones.
    """
    step = tf.cast(tf.train.get_or_create_global_step(), tf.float32)
    decay = 0.95 ** LOOKAHEAD_EVERY * (step / total_steps) ** 3
    network = [variable for variable in tf.global_variables()
               if variable.op.name.startswith('deep_cnn/')
               and not variable.op.name.endswith('/Momentum')]
    pulls, finishes = [], []
    with tf.variable_scope('lookahead'):
        for variable in network:
            slow = tf.get_variable(variable.op.name, initializer=variable.initial_value,
                                   trainable=False)
            new_slow = tf.assign(slow, slow + (1 - decay) * (variable - slow))
            pulls.append(tf.assign(variable, new_slow))
            finishes.append(tf.assign(variable, slow))
    return tf.group(*pulls, name='lookahead'), tf.group(*finishes, name='lookahead_finish')


def evaluation(images, labels, tta_level=2, **network):
    """The accuracy of a batch at test time, over up to 6 views of each image.

    Why: a mirrored or slightly shifted cat is still a cat; averaged logits of such
    views make fewer mistakes than one. Level 0: the image; 1: and its mirror image;
    2: those two, averaged half and half with the same shifted a pixel both ways.

    Args:
        images: float32 [batch, 32, 32, 3]; labels: int64 [batch].
        tta_level: 0, 1 or 2.
        network: the keyword arguments of `inference`.

    Returns:
        (accuracy, logits): the fraction of right answers, and the averaged logits.
    """
    def mirrored(views):
        logits = inference(views, False, **network)
        if tta_level == 0:
            return logits
        return (logits + inference(tf.reverse(views, axis=[2]), False, **network)) / 2

    logits = mirrored(images)
    if tta_level == 2:
        padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode='REFLECT')
        shifted = (mirrored(padded[:, :32, :32]) + mirrored(padded[:, 2:, 2:])) / 2
        logits = (logits + shifted) / 2
    correct_prediction = tf.equal(tf.argmax(logits, 1), labels)
    return tf.reduce_mean(tf.cast(correct_prediction, tf.float32)), logits
