"""Part 4, airbench94, the Keras way: a keras.Model, compile and fit.

    python tf2/keras_deep_cnn.py               # airbench94: 9.9 epochs of 1,024 images a batch
    python tf2/keras_deep_cnn.py --data_dir DIR --batch_size 128 --epochs 10   # a small set

`deep_cnn_model.py` and `run_deep_cnn_model.py` in Keras 3: airbench94's network, recipe,
settings (its `hyp`) and batches. Most of the recipe is Keras arguments; where Keras has
none, the smallest Keras piece, each saying why: an SGD with airbench's weight decay and
fast batch norm biases, two callbacks (the whitening bias frozen after 3 epochs; Lookahead),
a model around the trained one for the test-time views. See docs/keras_way.md.
"""

import functools
import math
import os
import sys
import time

# Run from the project root (python tf2/keras_deep_cnn.py): the project's own
# modules (data_helpers, deep_cnn_*, tutorial_support) are imported from there.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import keras
import numpy as np
import tensorflow as tf
from absl import flags

import data_helpers
import deep_cnn_input
import deep_cnn_model
from tutorial_support import cli, entry_point, keras_runs, resume, run_dirs, run_lock

# airbench94's hyp, as run_deep_cnn_model.py's flags (its switches are left to it)
FLAGS = flags.FlagValues()
flags.DEFINE_float('epochs', 9.9, 'Passes over the training set.', flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 1024, 'Images per minibatch.', flag_values=FLAGS)
flags.DEFINE_float('learning_rate', 11.5, 'Learning rate per 1,024 images.', flag_values=FLAGS)
flags.DEFINE_float('momentum', 0.85, 'Nesterov momentum.', flag_values=FLAGS)
flags.DEFINE_float('weight_decay', 0.0153, 'Weight decay per 1,024 images.', flag_values=FLAGS)
flags.DEFINE_float('bias_scaler', 64.0, "How many times faster batch norm's biases learn.",
                   flag_values=FLAGS)
flags.DEFINE_float('label_smoothing', 0.2, 'Share of the targets spread over all classes.',
                   flag_values=FLAGS)
flags.DEFINE_integer('whiten_bias_epochs', 3, "Epochs the whitening layer's bias trains.",
                     flag_values=FLAGS)
WIDTHS = ('block1_width', 'block2_width', 'block3_width')
for name, width in zip(WIDTHS, deep_cnn_model.WIDTHS, strict=True):
    flags.DEFINE_integer(name, width, 'Channels of a block.', flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
FLAG_RULES = dict(positive=('epochs', 'batch_size', 'learning_rate') + WIDTHS,
                  non_negative=('validation_size', 'seed', 'weight_decay', 'bias_scaler',
                                'whiten_bias_epochs'),
                  rates=('momentum', 'label_smoothing'),
                  at_most={'seed': cli.LARGEST_SEED, **dict.fromkeys(WIDTHS, cli.MOST_WIDTH)},
                  writable=('train_dir',))

MODEL = 'keras_deep_cnn'
# PyTorch's default initial weights, which airbench keeps: U(+-1/sqrt(fan-in)); a new
# initializer for each layer (one reused would draw the same numbers each time)
pytorch_uniform = functools.partial(keras.initializers.VarianceScaling, 1 / 3, 'fan_in', 'uniform')


def build_model(whitening, total_steps):
    """airbench94's network, compiled: deep_cnn_model's inference(), loss(), training()."""
    def conv(width, name):  # 3 x 3, padded to keep the size, no bias (batch norm adds one)
        return keras.layers.Conv2D(width, 3, padding='same', use_bias=False, name=name,
                                   kernel_initializer=pytorch_uniform())

    # Batch norm as airbench's: its scale frozen at 1 (no gamma), eps 1e-12, 0.6
    # of each running statistic kept at each step (PyTorch's momentum=0.4)
    norm = dict(momentum=deep_cnn_model.BATCH_NORM_MOMENTUM, epsilon=1e-12, scale=False)
    layers = [keras.Input(shape=(32, 32, 3)),
              # Whitening: 32 x 32 -> 31 x 31, each pixel a whitened 2 x 2 patch; exact GELU
              keras.layers.Conv2D(24, 2, activation='gelu', name='whiten')]
    for number, width in enumerate([FLAGS[name].value for name in WIDTHS], 1):
        # conv, max-pool, batch norm, GELU, conv, batch norm, GELU: 31 -> 15 -> 7 -> 3 pixels
        layers += [conv(width, f'block{number}_conv1'), keras.layers.MaxPool2D(2),
                   keras.layers.BatchNormalization(**norm, name=f'block{number}_norm1'),
                   keras.layers.Activation('gelu'),
                   conv(width, f'block{number}_conv2'),
                   keras.layers.BatchNormalization(**norm, name=f'block{number}_norm2'),
                   keras.layers.Activation('gelu')]
    layers += [
        keras.layers.GlobalMaxPool2D(),  # each channel's largest value: a feature, anywhere
        keras.layers.Dense(data_helpers.NUM_CLASSES, use_bias=False, name='fc',
                           kernel_initializer=pytorch_uniform()),
        # Smaller logits: the softmax starts less sure, and learns at a gentler pace
        keras.layers.Rescaling(deep_cnn_model.SCALING_FACTOR)]
    model = keras.Sequential(layers, name='deep_cnn')

    # The whitening filters, frozen (the layer's bias trains; see FreezeWhiteningBias)
    whiten = model.get_layer('whiten')
    whiten.kernel.assign(whitening)
    whiten.kernel.trainable = False
    # Each 3 x 3 convolution starts as the identity on its inputs (Dirac), its
    # other outputs random: Keras's Identity initializer is for matrices only
    for layer in model.layers:
        if layer.name.startswith('block') and isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel.numpy()
            paired = min(kernel.shape[2:])
            kernel[:, :, :, :paired] = 0
            kernel[1, 1, range(paired), range(paired)] = 1
            layer.kernel.assign(kernel)

    # airbench's units: rates per 1,024 images and as if momentum did not enlarge
    # the steps, so the SGD rate of the summed loss is divided by this
    kilostep_scale = 1024 * (1 + 1 / (1 - FLAGS.momentum))
    rate = FLAGS.learning_rate / kilostep_scale
    decay = FLAGS.weight_decay * FLAGS.batch_size / kilostep_scale
    optimizer = AirbenchSGD(
        learning_rate=WarmupThenDecay(rate, total_steps), momentum=FLAGS.momentum,
        nesterov=True, coupled_decay=decay / rate, bias_scaler=FLAGS.bias_scaler)
    # Cross-entropy with smoothed (so one-hot) labels, summed over the batch, as
    # airbench's rate is per image (fit logs it so). Without XLA, as the others.
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(
                      from_logits=True, label_smoothing=FLAGS.label_smoothing, reduction='sum'),
                  metrics=['accuracy'], jit_compile=False)
    return model


class WarmupThenDecay(keras.optimizers.schedules.LearningRateSchedule):
    """airbench's schedule (`deep_cnn_model.learning_rate_schedule`): 0.2 -> 1 times the rate
    over 23% of the steps, then -> 0.07 times. From the optimizer's step: --resume continues it."""

    def __init__(self, rate, total_steps):
        self.rate, self.total_steps = rate, total_steps

    def __call__(self, step):
        return self.rate * deep_cnn_model.learning_rate_schedule(step, self.total_steps)

    def get_config(self):
        return dict(rate=self.rate, total_steps=self.total_steps)


class AirbenchSGD(keras.optimizers.SGD):
    """Keras's SGD with what airbench's PyTorch SGD does and Keras has no argument for: the
    weight decay added to each gradient (coupled: through the momentum; Keras's `weight_decay`
    is decoupled), and batch norm's biases at `bias_scaler` times the rate (PyTorch's groups:
    a group at rate r with decay d/r steps by r (g + d/r w) = rate (scaler g + d/rate w))."""

    def __init__(self, coupled_decay=0.0, bias_scaler=1.0, **kwargs):
        super().__init__(**kwargs)
        self.coupled_decay, self.bias_scaler = coupled_decay, bias_scaler

    def apply(self, grads, trainable_variables=None):
        super().apply([(self.bias_scaler if '_norm' in weights.path else 1) * gradient
                       + self.coupled_decay * weights
                       for gradient, weights in zip(grads, trainable_variables, strict=True)],
                      trainable_variables)


class FreezeWhiteningBias(keras.callbacks.Callback):
    """airbench trains the whitening layer's bias for 3 epochs, then freezes it. fit fixes what
    trains when it starts: so the bias is switched off before an epoch, the step traced anew."""

    def on_epoch_begin(self, epoch, logs=None):
        bias = self.model.get_layer('whiten').bias
        if bias.trainable and epoch >= FLAGS.whiten_bias_epochs:
            bias.trainable = False
            self.model.make_train_function(force=True)


class Lookahead(keras.callbacks.Callback):
    """airbench's Lookahead (`deep_cnn_model.lookahead`), which Keras has no optimizer for.

    Every 5 steps the weights (batch norm's statistics too) are pulled toward a slow copy,
    `slow += (1 - d)(weights - slow)`, `weights = slow`, d = 0.95^5 (step / total)^3; after
    the last step they are the slow copy, and fit stops (mid-epoch, as airbench's loop
    breaks). The copy is saved beside the backup after every epoch, for --resume.
    """

    def __init__(self, total_steps, folder, first_epoch):
        super().__init__()
        self.total_steps, self.folder, self.first_epoch = total_steps, folder, first_epoch
        self.file = os.path.join(folder, 'lookahead-{:03d}.npz').format

    def on_train_begin(self, logs=None):
        self.slow = self.model.get_weights()
        if self.first_epoch:
            with np.load(self.file(self.first_epoch)) as saved:
                self.slow = [saved[f'arr_{index}'] for index in range(len(self.slow))]

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations)
        if step % deep_cnn_model.LOOKAHEAD_EVERY == 0:
            decay = 0.95 ** deep_cnn_model.LOOKAHEAD_EVERY * (step / self.total_steps) ** 3
            self.slow = [slow + (1 - decay) * (weights - slow) for slow, weights
                         in zip(self.slow, self.model.get_weights(), strict=True)]
            self.model.set_weights(self.slow)
        if step == self.total_steps:
            self.model.set_weights(self.slow)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.folder, exist_ok=True)
        np.savez(self.file(epoch + 1), *self.slow)


def with_test_views(model):
    """airbench's test-time augmentation (its tta_level 2), which Keras has no argument for: a
    model around the trained one, its logits averaged over 6 views of each image: the image
    and its mirror image, averaged half and half with both shifted a pixel up-left and
    down-right (`deep_cnn_model.evaluation`)."""
    images = keras.Input(shape=model.input_shape[1:])

    def mirrored(views):
        return (model(views) + model(keras.ops.flip(views, 2))) / 2

    padded = keras.ops.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode='reflect')
    shifted = (mirrored(padded[:, :-2, :-2]) + mirrored(padded[:, 2:, 2:])) / 2
    return keras.Model(images, (mirrored(images) + shifted) / 2, name='with_test_views')


def minibatches(train_set, steps_per_epoch, total_steps, first_epoch):
    """run_deep_cnn_model.py's minibatches, labels one-hot: a fresh shuffle every epoch, each
    batch shifted and (in odd epochs) mirrored; from `first_epoch` on (--resume)."""
    for epoch in range(first_epoch, math.ceil(FLAGS.epochs)):
        stop_batch = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
        batches = deep_cnn_input.epoch_batches(train_set, FLAGS.batch_size, FLAGS.seed, epoch,
                                               stop_batch=stop_batch)
        for step, (images, labels) in enumerate(batches, epoch * steps_per_epoch):
            yield (deep_cnn_input.augment(images, FLAGS.seed, step, epoch),
                   keras.utils.to_categorical(labels, data_helpers.NUM_CLASSES))


def main(argv):
    """Parses and checks the flags, loads the data, trains, evaluates."""
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    # With --resume: the newest run of this model in train_dir, whose settings become the flags
    run_dir = keras_runs.run_to_resume(FLAGS, MODEL, FLAG_RULES)
    # 0, or the epoch that BackupAndRestore's backup ends, where fit continues
    first_epoch = keras_runs.first_epoch(run_dir, math.ceil(FLAGS.epochs), '--epochs')
    if FLAGS.seed is None:  # a run always has a seed, printed and saved: it can be repeated
        FLAGS.seed = cli.random_seed()
    cli.print_parameters(FLAGS)
    keras.utils.set_random_seed(FLAGS.seed)

    # CIFAR-10 as 32 x 32 x 3 images, standardized as airbench94 does
    data = data_helpers.reshape_data(data_helpers.load_data(FLAGS.data_dir,
                                                            FLAGS.validation_size))
    for images in ('images_train', 'images_validation', 'images_test'):
        if images in data:
            deep_cnn_input.standardize(data[images], data['mean_image'])
    cli.check_batch_size(FLAGS.batch_size, len(data['labels_train']))
    run_dir = run_dirs.prepare_run_dir(FLAGS, MODEL, data, run_dir)
    if not FLAGS.resume:  # the settings, for TensorBoard's HParams tab
        keras_runs.write_hparams(FLAGS, MODEL, run_dir)
    train_set = (data['images_train'], data['labels_train'])
    steps_per_epoch = len(train_set[1]) // FLAGS.batch_size  # the last, smaller batch left out
    total_steps = math.ceil(steps_per_epoch * FLAGS.epochs)
    # The whitening filters from the first 5,000 training images; then the
    # alternating flip: a random half of the training images mirrored once
    model = build_model(deep_cnn_model.whitening_filters(
        train_set[0][:deep_cnn_model.WHITENING_IMAGES]), total_steps)
    deep_cnn_input.flip_half(train_set[0], FLAGS.seed)

    callbacks = [
        Lookahead(total_steps, keras_runs.backup_dir(run_dir), first_epoch),
        FreezeWhiteningBias(),
        # As keras_cnn.py: TensorBoard's logs, a checkpoint every epoch (keras.models.
        # load_model(path, compile=False): the optimizer is this file's), the backup
        keras.callbacks.TensorBoard(run_dir, histogram_freq=1),
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, run_dirs.CHECKPOINT_FOLDER, 'epoch-{epoch:03d}.keras')),
        keras.callbacks.BackupAndRestore(keras_runs.backup_dir(run_dir),
                                         double_checkpoint=True, delete_checkpoint=False),
        # After every step, a NaN loss or Ctrl-C stops the run
        keras_runs.StepChecks(),
    ]
    # After every epoch, one view's accuracy on --validation_size images, else (as airbench) test
    held_out = 'validation' if FLAGS.validation_size else 'test'
    validation_set = (data[f'images_{held_out}'], keras.utils.to_categorical(
        data[f'labels_{held_out}'], data_helpers.NUM_CLASSES))
    with (run_lock.locked(run_dir),
          keras_runs.stops_explained(model, run_dir,
                                     resume.resume_command('tf2/keras_deep_cnn.py', FLAGS))):
        model.fit(minibatches(train_set, steps_per_epoch, total_steps, first_epoch),
                  epochs=math.ceil(FLAGS.epochs), steps_per_epoch=steps_per_epoch,
                  shuffle=False, validation_data=validation_set, validation_batch_size=1000,
                  callbacks=callbacks, verbose=2)

    # After training: the accuracy on the test set, with 6 views of each image
    logits = with_test_views(model).predict(data['images_test'], batch_size=1000, verbose=0)
    test_accuracy = np.mean(np.argmax(logits, 1) == data['labels_test'])
    print(f'Test Accuracy: {test_accuracy:g}')
    # ... also for TensorBoard, where the TF1 runs have theirs
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        tf.summary.scalar('test_accuracy', test_accuracy, step=model.optimizer.iterations)
    writer.close()
    print(f'Total time: {time.time() - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
