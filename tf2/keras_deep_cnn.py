"""Part 4, airbench94, the Keras way: a keras.Model, compile and fit.

    python tf2/keras_deep_cnn.py               # airbench94: 9.9 epochs of 1,024 images a batch
    python tf2/keras_deep_cnn.py --data_dir DIR --batch_size 128 --epochs 10   # a small set

`deep_cnn_model.py` and `run_deep_cnn_model.py` in Keras 3: airbench94's network and
recipe, its settings (airbench's `hyp`) as flags with the same defaults, the same
whitening filters (`deep_cnn_model.whitening_filters`) and the same standardized,
shifted and alternately mirrored batches (`deep_cnn_input`). Most of the recipe is
Keras arguments: a frozen `Conv2D`, `BatchNormalization(scale=False)`, 'gelu',
`Rescaling`, label smoothing, a summed loss, Nesterov `SGD`, a `LearningRateSchedule`.
Four ingredients have no Keras argument, and each is the smallest Keras piece that
does it: an `SGD` that adds airbench's weight decay and speeds up batch norm's biases,
two callbacks (the whitening bias frozen after 3 epochs; Lookahead), and a model
around the trained one for the 6 test-time views. fit's callbacks also write the
TensorBoard logs, a checkpoint after every epoch and the backup --resume continues
from. docs/keras_way.md sets it beside the TF1 runner.
"""

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

# airbench94's hyp, as run_deep_cnn_model.py's flags with its defaults (its switches
# that turn an ingredient off are left to it)
FLAGS = flags.FlagValues()
flags.DEFINE_float('epochs', 9.9, 'Passes over the training set (a fraction ends the last '
                   'one early).', flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 1024, 'Images per minibatch.', flag_values=FLAGS)
flags.DEFINE_float('learning_rate', 11.5, 'Learning rate per 1,024 images.', flag_values=FLAGS)
flags.DEFINE_float('momentum', 0.85, 'Nesterov momentum.', flag_values=FLAGS)
flags.DEFINE_float('weight_decay', 0.0153, 'Weight decay per 1,024 images.', flag_values=FLAGS)
flags.DEFINE_float('bias_scaler', 64.0, "How many times faster batch norm's biases learn.",
                   flag_values=FLAGS)
flags.DEFINE_float('label_smoothing', 0.2, 'Share of the target spread over all classes.',
                   flag_values=FLAGS)
flags.DEFINE_float('warmup', 0.23, 'Share of the steps over which the learning rate climbs.',
                   flag_values=FLAGS)
flags.DEFINE_integer('whiten_bias_epochs', 3, "Epochs the whitening layer's bias trains.",
                     flag_values=FLAGS)
for number, width in enumerate(deep_cnn_model.WIDTHS, 1):
    flags.DEFINE_integer(f'block{number}_width', width, f'Channels of block {number}.',
                         flag_values=FLAGS)
flags.DEFINE_integer('tta_level', 2, 'Test-time views: 0 the image, 1 and its mirror image, '
                     '2 and both shifted a pixel two ways.', flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
WIDTHS = ('block1_width', 'block2_width', 'block3_width')
FLAG_RULES = dict(positive=('epochs', 'batch_size', 'learning_rate') + WIDTHS,
                  non_negative=('validation_size', 'seed', 'weight_decay', 'bias_scaler',
                                'whiten_bias_epochs', 'tta_level'),
                  rates=('momentum', 'label_smoothing', 'warmup'),
                  at_most={'seed': cli.LARGEST_SEED, 'tta_level': 2,
                           **dict.fromkeys(WIDTHS, cli.MOST_WIDTH)},
                  writable=('train_dir',))

MODEL = 'keras_deep_cnn'


def build_model(whitening, total_steps):
    """airbench94's network, compiled: deep_cnn_model's inference(), loss(), training()."""
    def conv(width, name):
        # 3 x 3, padded to keep the size; no bias (batch norm adds its own);
        # PyTorch's default weights, U(+-1/sqrt(fan-in)), which airbench keeps
        return keras.layers.Conv2D(width, 3, padding='same', use_bias=False, name=name,
                                   kernel_initializer=pytorch_uniform())

    # Batch norm as airbench's: its scale frozen at 1 (no gamma), eps 1e-12, 0.6
    # of each running statistic kept at each step (PyTorch's momentum=0.4)
    norm = dict(momentum=deep_cnn_model.BATCH_NORM_MOMENTUM, epsilon=1e-12, scale=False)
    layers = [keras.Input(shape=(data_helpers.IMAGE_SIZE, data_helpers.IMAGE_SIZE,
                                 data_helpers.CHANNELS)),
              # Whitening: 32 x 32 -> 31 x 31, each pixel a whitened 2 x 2 patch; exact GELU
              keras.layers.Conv2D(24, 2, activation='gelu', name='whiten')]
    for number in (1, 2, 3):
        # A block: conv, max-pool, batch norm, GELU, conv, batch norm, GELU;
        # 31 x 31 -> 15 x 15 -> 7 x 7 -> 3 x 3, with more channels each time
        width = FLAGS[f'block{number}_width'].value
        layers += [conv(width, f'block{number}_conv1'), keras.layers.MaxPool2D(2),
                   keras.layers.BatchNormalization(**norm, name=f'block{number}_norm1'),
                   keras.layers.Activation('gelu'),
                   conv(width, f'block{number}_conv2'),
                   keras.layers.BatchNormalization(**norm, name=f'block{number}_norm2'),
                   keras.layers.Activation('gelu')]
    layers += [
        # The largest value of each channel: how strongly a feature is present, anywhere
        keras.layers.GlobalMaxPool2D(),
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
        learning_rate=WarmupThenDecay(rate, total_steps, FLAGS.warmup), momentum=FLAGS.momentum,
        nesterov=True, coupled_decay=decay / rate, bias_scaler=FLAGS.bias_scaler)
    # Cross-entropy with smoothed labels (so one-hot labels: the sparse loss has
    # no smoothing), summed over the batch: airbench's rate is per image. fit
    # logs it as it is, the sum over a batch. Without XLA, as the other scripts.
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(
                      from_logits=True, label_smoothing=FLAGS.label_smoothing, reduction='sum'),
                  metrics=['accuracy'], jit_compile=False)
    return model


def pytorch_uniform():
    """PyTorch's default initial weights: uniform within +-1/sqrt(fan-in)."""
    return keras.initializers.VarianceScaling(1 / 3, 'fan_in', 'uniform')


@keras.saving.register_keras_serializable(MODEL)
class WarmupThenDecay(keras.optimizers.schedules.LearningRateSchedule):
    """airbench's schedule, `deep_cnn_model.learning_rate_schedule`: 0.2 -> 1 times the rate
    over the warm-up, then -> 0.07 times. From the optimizer's step: --resume continues it."""

    def __init__(self, rate, total_steps, warmup):
        self.rate, self.total_steps, self.warmup = rate, total_steps, warmup

    def __call__(self, step):
        return self.rate * deep_cnn_model.learning_rate_schedule(step, self.total_steps,
                                                                 self.warmup)

    def get_config(self):
        return dict(rate=self.rate, total_steps=self.total_steps, warmup=self.warmup)


@keras.saving.register_keras_serializable(MODEL)
class AirbenchSGD(keras.optimizers.SGD):
    """Keras's SGD with two things of airbench's PyTorch SGD that it has no argument for.

    The weight decay added to each gradient, so that it goes through the momentum too
    (coupled, as PyTorch's; Keras's `weight_decay` is decoupled), and batch norm's
    biases at `bias_scaler` times the rate (PyTorch's parameter groups): a group at
    rate r with decay d/r steps by r (g + d/r w) = rate (scaler g + d/rate w).
    """

    def __init__(self, coupled_decay=0.0, bias_scaler=1.0, **kwargs):
        super().__init__(**kwargs)
        self.coupled_decay, self.bias_scaler = coupled_decay, bias_scaler

    def apply(self, grads, trainable_variables=None):
        scales = [self.bias_scaler if '_norm' in variable.path else 1.0
                  for variable in trainable_variables]
        super().apply([scale * gradient + self.coupled_decay * variable
                       for scale, gradient, variable in zip(scales, grads, trainable_variables,
                                                            strict=True)],
                      trainable_variables)

    def get_config(self):
        return dict(super().get_config(), coupled_decay=self.coupled_decay,
                    bias_scaler=self.bias_scaler)


class FreezeWhiteningBias(keras.callbacks.Callback):
    """airbench trains the whitening layer's bias for 3 epochs, then freezes it. Keras
    fixes what fit trains when it starts: so the bias is switched off before the
    epoch, and fit's training step traced anew."""

    def on_epoch_begin(self, epoch, logs=None):
        bias = self.model.get_layer('whiten').bias
        if bias.trainable and epoch >= FLAGS.whiten_bias_epochs:
            bias.trainable = False
            self.model.make_train_function(force=True)


class Lookahead(keras.callbacks.Callback):
    """airbench's Lookahead, which Keras has no optimizer for (deep_cnn_model.lookahead).

    Every 5 steps the weights (batch norm's running statistics too) are pulled toward
    a slow copy, `slow += (1 - d)(weights - slow)`, `weights = slow`, with d = 0.95^5
    (step / total)^3; after the last step they are the slow copy, and fit stops there
    (a fraction of an epoch, as airbench's loop breaks). The slow copy is saved beside
    BackupAndRestore's backup after every epoch, and --resume reads it back.
    """

    def __init__(self, total_steps, folder, first_epoch):
        super().__init__()
        self.total_steps, self.folder, self.first_epoch = total_steps, folder, first_epoch

    def file(self, epoch):
        return os.path.join(self.folder, f'lookahead-{epoch:03d}.npz')

    def on_train_begin(self, logs=None):
        self.slow = self.model.get_weights()
        if self.first_epoch:
            with np.load(self.file(self.first_epoch)) as saved:
                self.slow = [saved[f'arr_{index}'] for index in range(len(self.slow))]

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations)
        if step % deep_cnn_model.LOOKAHEAD_EVERY == 0:
            decay = 0.95 ** deep_cnn_model.LOOKAHEAD_EVERY * (step / self.total_steps) ** 3
            self.slow = [slow + (1 - decay) * (weights - slow)
                         for slow, weights in zip(self.slow, self.model.get_weights(),
                                                  strict=True)]
            self.model.set_weights(self.slow)
        if step == self.total_steps:
            self.model.set_weights(self.slow)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.folder, exist_ok=True)
        np.savez(self.file(epoch + 1), *self.slow)


def with_test_views(model, tta_level):
    """airbench's test-time augmentation, which `evaluate` has no argument for: a model
    around the trained one, averaging its logits over up to 6 views of each image (0: the
    image; 1: and its mirror image; 2: those two, averaged half and half with the same
    shifted a pixel up-left and down-right)."""
    images = keras.Input(shape=model.input_shape[1:])

    def mirrored(views):
        logits = model(views)
        return logits if tta_level == 0 else (logits + model(keras.ops.flip(views, 2))) / 2

    logits = mirrored(images)
    if tta_level == 2:
        padded = keras.ops.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode='reflect')
        logits = (logits + (mirrored(padded[:, :-2, :-2]) + mirrored(padded[:, 2:, 2:])) / 2) / 2
    return keras.Model(images, logits, name='deep_cnn_with_test_views')


def minibatches(train_set, steps_per_epoch, total_steps, first_epoch):
    """run_deep_cnn_model.py's minibatches: a fresh shuffle every epoch, all of --batch_size
    images, each shifted and (in odd epochs) mirrored from (--seed, step), labels one-hot;
    from `first_epoch` on, so that a resumed run gets the batches the uninterrupted one would."""
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
    # The whitening filters, from the patches of the first 5,000 training images;
    # then the alternating flip: a random half of the training images mirrored once
    model = build_model(deep_cnn_model.whitening_filters(
        train_set[0][:deep_cnn_model.WHITENING_IMAGES]), total_steps)
    deep_cnn_input.flip_half(train_set[0], FLAGS.seed)

    callbacks = [
        Lookahead(total_steps, keras_runs.backup_dir(run_dir), first_epoch),
        FreezeWhiteningBias(),
        # The loss and accuracy of every epoch (in train/ and validation/), the graph
        keras.callbacks.TensorBoard(run_dir, histogram_freq=1),
        # A checkpoint after every epoch, each kept: a whole model, for keras.models.load_model
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, run_dirs.CHECKPOINT_FOLDER, 'epoch-{epoch:03d}.keras')),
        # The weights (batch norm's running statistics too), the optimizer and the
        # epoch after every epoch, restored when fit starts again (--resume); the
        # one before kept too; kept after the last epoch, so that a larger
        # --epochs can continue a finished run.
        keras.callbacks.BackupAndRestore(keras_runs.backup_dir(run_dir),
                                         double_checkpoint=True, delete_checkpoint=False),
        # After every step, a NaN loss or Ctrl-C stops the run
        keras_runs.StepChecks(),
    ]
    # After every epoch, the accuracy on held-out images with one view: with
    # --validation_size some training images, else (as airbench) the test set
    validation_set = (data.get('images_validation', data['images_test']),
                      keras.utils.to_categorical(data.get('labels_validation', data['labels_test']),
                                                 data_helpers.NUM_CLASSES))
    with (run_lock.locked(run_dir),
          keras_runs.stops_explained(model, run_dir,
                                     resume.resume_command('tf2/keras_deep_cnn.py', FLAGS))):
        model.fit(minibatches(train_set, steps_per_epoch, total_steps, first_epoch),
                  epochs=math.ceil(FLAGS.epochs), steps_per_epoch=steps_per_epoch,
                  shuffle=False, validation_data=validation_set, validation_batch_size=1000,
                  callbacks=callbacks, verbose=2)

    # After training: the accuracy on the test set, with --tta_level's views
    logits = with_test_views(model, FLAGS.tta_level).predict(data['images_test'],
                                                             batch_size=1000, verbose=0)
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
