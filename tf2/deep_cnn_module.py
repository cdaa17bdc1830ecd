"""airbench94's network and recipe in TensorFlow 2, the low-level way (part 4's twin, the model).

`deep_cnn_model.py` as TensorFlow's guides write TF2 today: the network is a
`tf.Module` called on images, `model(images, training=False)`; the optimizer
three Keras `SGD`s; Lookahead a module with the slow weights. What needs no
TensorFlow is shared with the TF1 model: the whitening filters
(`deep_cnn_model.whitening_filters`, NumPy) and the schedule's arithmetic.
`tf2/run_deep_cnn_model.py` trains it; docs/tf1_to_tf2.md maps it line to line.

The lesson of this twin is batch norm. In TF1 the running statistics are
updated by ops of their own, put in `tf.GraphKeys.UPDATE_OPS`, which the
training op must be made to depend on: forget that and the network that
trained well answers nonsense at test time. In TF2 the update is an assignment
inside the call, `model(images, training=True)` (`BatchNorm` below), and
`tf.function` runs it with the step that made the call: nothing to remember.
"""

import functools

import numpy as np
import tensorflow as tf

import deep_cnn_model


class BatchNorm(tf.Module):
    """Batch norm, each channel to mean 0 and variance 1, then shifted; the running
    statistics are updated inside the call (TF1: batch_normalization() and UPDATE_OPS).

    airbench's choices, as in TF1: the scale frozen at 1, epsilon 1e-12, running
    statistics that keep 0.6 of their value at each step, the variance with
    Bessel's correction as PyTorch keeps it.
    """

    def __init__(self, channels, trainable_scale, momentum, name):
        super().__init__()
        self.momentum = momentum  # the share of a running statistic kept at each step
        self.bias = tf.Variable(tf.zeros([channels]), name=f'{name}/bias')
        self.scale = (tf.Variable(tf.ones([channels]), name=f'{name}/scale')
                      if trainable_scale else None)
        # Averages of the batches' statistics, for test time; not trained
        self.running_mean = tf.Variable(tf.zeros([channels]), trainable=False,
                                        name=f'{name}/running_mean')
        self.running_var = tf.Variable(tf.ones([channels]), trainable=False,
                                       name=f'{name}/running_var')

    def __call__(self, inputs, training=False):
        if not training:  # test time: the running statistics
            return self.normalise(inputs, self.running_mean, self.running_var)
        mean, variance = tf.nn.moments(inputs, axes=[0, 1, 2])
        # THE change from TF1: the running statistics are updated here, in the call that
        # trains (TF1: ops put in UPDATE_OPS, which the training op had to depend on)
        values = tf.cast(tf.size(inputs) // inputs.shape[-1], tf.float32)  # batch x h x w
        for running, value in ((self.running_mean, mean),
                               (self.running_var, variance * values / (values - 1))):
            running.assign(self.momentum * running + (1 - self.momentum) * value)
        return self.normalise(inputs, mean, variance)

    def normalise(self, inputs, mean, variance):
        return tf.nn.batch_normalization(inputs, mean, variance, self.bias, self.scale,
                                         deep_cnn_model.BATCH_NORM_EPSILON)


class DeepCNN(tf.Module):
    """airbench94's network (TF1: inference()): its variables, made once here with TF1's
    names (so a TF1 checkpoint fills them by name), and its forward pass."""

    def __init__(self, widths=deep_cnn_model.WIDTHS, activation='gelu',
                 scaling_factor=deep_cnn_model.SCALING_FACTOR, trainable_bn_scale=False,
                 batch_norm_momentum=deep_cnn_model.BATCH_NORM_MOMENTUM, whitening=None,
                 dirac=True, classes=10, tta_level=2, seed=0):
        super().__init__()
        # GELU, PyTorch's exact one (TF1: written out with tf.math.erf), or ReLU
        self.activate = (functools.partial(tf.nn.gelu, approximate=False)
                         if activation == 'gelu' else tf.nn.relu)
        self.scaling_factor, self.tta_level = scaling_factor, tta_level
        seeds = tf.keras.random.SeedGenerator(seed)  # hands every initializer its seed in turn

        def filters(shape, scope):
            """PyTorch's default U(+-1/sqrt(fan-in)); output i the identity on input i (Dirac)."""
            height, width, channels_in, channels_out = shape
            bound = 1 / np.sqrt(height * width * channels_in)
            values = tf.keras.random.uniform(shape, -bound, bound, seed=seeds)
            if dirac:
                paired = min(channels_in, channels_out)
                identity = np.zeros(shape, np.float32)
                identity[height // 2, width // 2, range(paired), range(paired)] = 1
                values = values * (np.arange(channels_out) >= paired).astype(np.float32) + identity
            return tf.Variable(values, name=f'deep_cnn/{scope}/filters')

        # The whitening layer: 24 frozen filters from the training patches (or trained ones)
        self.whiten_filters = (filters([2, 2, 3, 24], 'whiten') if whitening is None else
                               tf.Variable(whitening, trainable=False,
                                           name='deep_cnn/whiten/filters'))
        self.whiten_biases = tf.Variable(tf.zeros([24]), name='deep_cnn/whiten/biases')
        # Three blocks of two 3 x 3 convolutions without bias (batch norm adds its own)
        self.blocks, channels = [], 24
        for number, width in enumerate(widths, 1):
            scope = f'block{number}'
            norm = functools.partial(BatchNorm, width, trainable_bn_scale, batch_norm_momentum)
            self.blocks.append(dict(conv1=filters([3, 3, channels, width], f'{scope}/conv1'),
                                    norm1=norm(f'deep_cnn/{scope}/norm1'),
                                    conv2=filters([3, 3, width, width], f'{scope}/conv2'),
                                    norm2=norm(f'deep_cnn/{scope}/norm2')))
            channels = width
        # A linear layer without bias, PyTorch's default initialisation
        bound = 1 / np.sqrt(channels)
        self.fc_weights = tf.Variable(
            tf.keras.random.uniform([channels, classes], -bound, bound, seed=seeds),
            name='deep_cnn/fc/weights')

    def __call__(self, images, training=False):
        """The logits [batch, classes], scaled by 1/9. With `training`, batch norm uses the
        batch's statistics and updates its running ones (TF1: a placeholder fed True)."""
        return tf.matmul(self.features(images, training), self.fc_weights) * self.scaling_factor

    def features(self, images, training=False):
        """Whitening, then each block (conv, max-pool, batch norm, activation, conv, batch
        norm, activation: 31 -> 15 -> 7 -> 3 pixels), the largest value of each channel."""
        inputs = self.activate(tf.nn.conv2d(images, self.whiten_filters, 1, 'VALID')
                               + self.whiten_biases)
        for block in self.blocks:
            conv = tf.nn.conv2d(inputs, block['conv1'], 1, 'SAME')
            pooled = tf.nn.max_pool2d(conv, ksize=2, strides=2, padding='VALID')
            first = self.activate(block['norm1'](pooled, training))
            conv = tf.nn.conv2d(first, block['conv2'], 1, 'SAME')
            inputs = self.activate(block['norm2'](conv, training))
        return tf.reduce_max(inputs, axis=[1, 2])

    @tf.function(reduce_retracing=True)
    def test_logits(self, images, tta_level=0):
        """The logits averaged over test-time views (TF1: evaluation()): 0 the image; 1 and
        its mirror image; 2 those two, averaged with both shifted a pixel both ways."""
        def mirrored(views):
            logits = self(views)
            return logits if tta_level == 0 else (logits + self(tf.reverse(views, axis=[2]))) / 2

        logits = mirrored(images)
        if tta_level == 2:
            padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode='REFLECT')
            shifted = (mirrored(padded[:, :32, :32]) + mirrored(padded[:, 2:, 2:])) / 2
            logits = (logits + shifted) / 2
        return logits

    def predictions(self, images, tta_level=None):
        """The predicted class of each image, with the model's test-time views unless given."""
        return tf.argmax(self.test_logits(
            images, self.tta_level if tta_level is None else tta_level), 1)


def loss(logits, labels, label_smoothing=0.2, classes=10):
    """The cross-entropy with smoothed labels, summed over the batch (TF1: loss())."""
    targets = (1 - label_smoothing) * tf.one_hot(labels, classes) + label_smoothing / classes
    return tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits))


class Schedule(tf.keras.optimizers.schedules.LearningRateSchedule):
    """A group's rate at a step, 0.2 -> 1 -> 0.07 times its value (TF1: the rate times
    learning_rate_schedule(global_step)); Keras calls it with its optimizer's step count."""

    def __init__(self, rate, total_steps, warmup):
        self.rate, self.total_steps, self.warmup = rate, total_steps, warmup

    def __call__(self, step):
        return self.rate * deep_cnn_model.learning_rate_schedule(step, self.total_steps,
                                                                 self.warmup)


def training(model, total_steps, batch_size, learning_rate=11.5, momentum=0.85,
             weight_decay=0.0153, bias_scaler=64.0, warmup=0.23):
    """Nesterov momentum SGD in airbench's units (TF1: training()), one Keras `SGD` a group.

    The rates per 1,024 images, as if momentum did not enlarge the steps (see
    deep_cnn_model.training); airbench's groups: batch norm's variables at 64
    times the rate, the whitening layer's bias (frozen after 3 epochs), the rest.

    Returns:
        {group: (variables, optimizer, schedule, decay)}; each optimizer is built
        (its momentum made now, for step 0's checkpoint) and counts its steps in
        `.iterations` (TF1: global_step).
    """
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    rate = learning_rate / kilostep_scale
    decay = weight_decay * batch_size / kilostep_scale
    rates = {'weights': rate, 'batch_norm': rate * bias_scaler, 'whitening_bias': rate}
    members = {group: [] for group in rates}
    for variable in model.trainable_variables:
        name = variable.name.split(':')[0]
        members['whitening_bias' if name == 'deep_cnn/whiten/biases' else
                'batch_norm' if '/norm' in name else 'weights'].append(variable)
    groups = {}
    for group, group_rate in rates.items():
        schedule = Schedule(group_rate, total_steps, warmup)
        optimizer = tf.keras.optimizers.SGD(schedule, momentum=momentum, nesterov=True)
        optimizer.build(members[group])
        # The decay added to the gradient, through the momentum, as PyTorch's SGD does
        groups[group] = (members[group], optimizer, schedule, decay / group_rate)
    return groups


def apply_gradients(groups, gradients, train_whitening_bias=True):
    """A step of every group (TF1: train_op), the whitening bias left out when frozen
    (TF1: frozen_bias_train_op). `gradients`: {variable.ref(): its gradient}."""
    for group, (variables, optimizer, schedule, decay) in groups.items():
        if group == 'whitening_bias' and not train_whitening_bias:
            continue
        # Keras's SGD keeps rate x gradient in its momentum; TF1's MomentumOptimizer (and
        # PyTorch's SGD, airbench's) keeps the gradients, and each step applies its rate to
        # them all. Rescaled as the rate changes, Keras's momentum gives TF1's step.
        step = optimizer.iterations
        for momentum in optimizer.momentums:
            momentum.assign(momentum * (schedule(step) / schedule(tf.maximum(step - 1, 0))))
        optimizer.apply_gradients([(gradients[variable.ref()] + decay * variable, variable)
                                   for variable in variables])


class Lookahead(tf.Module):
    """Lookahead (TF1: lookahead()): a slow copy of every variable of the network, batch
    norm's running statistics too (airbench's whole state_dict), and the pull toward it.

    Every 5 steps `slow <- slow + (1 - d) x (weights - slow)`, then `weights <- slow`,
    with d = 0.95^5 x (step / total steps)^3: 0 at the start, 0.77 at the end.
    """

    def __init__(self, model, total_steps):
        super().__init__()
        self.total_steps = total_steps
        self.slow_weights = [tf.Variable(variable, trainable=False) for variable in model.variables]

    @tf.function
    def pull(self, model, step):
        """The weights pulled toward the slow ones, after `step` steps (TF1: lookahead_op)."""
        decay = (0.95 ** deep_cnn_model.LOOKAHEAD_EVERY
                 * (tf.cast(step, tf.float32) / self.total_steps) ** 3)
        for variable, slow in zip(model.variables, self.slow_weights, strict=True):
            slow.assign(slow + (1 - decay) * (variable - slow))
            variable.assign(slow)

    @tf.function
    def finish(self, model):
        """After the last step: the weights set to the slow ones (TF1: lookahead_finish_op)."""
        for variable, slow in zip(model.variables, self.slow_weights, strict=True):
            variable.assign(slow)
