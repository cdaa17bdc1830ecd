"""The convolutional network of part 3, the Keras way: a keras.Model, compile and fit.

    python tf2/keras_cnn.py

`cnn_model.py` and `run_cnn_model.py` in Keras 3: the same network, initial
distributions, loss, Adam, settings and minibatches, and dropout that applies
in training only (Keras's layers know when they train: `fit` calls the model
with training=True, `evaluate` with training=False). The model is a
`keras.Sequential`; `compile` takes the loss, the optimiser and the metric;
`fit` is the training loop, and its callbacks write the TensorBoard logs, a
checkpoint after every epoch, and a backup that --resume continues from.
`tf2/run_cnn_model.py` is TensorFlow 2's low-level way; docs/keras_way.md
sets the three side by side.
"""

import os
import sys
import time

# Run from the project root (python tf2/keras_cnn.py): the project's own
# modules (data_helpers, tutorial_support) are imported from there.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import keras
import tensorflow as tf
from absl import flags

import data_helpers
from tutorial_support import cli, entry_point, keras_runs, resume, run_dirs, run_lock

# The flags of run_cnn_model.py, with its defaults
FLAGS = flags.FlagValues()
flags.DEFINE_float('learning_rate', 0.001, 'Learning rate of Adam.', flag_values=FLAGS)
flags.DEFINE_integer('epochs', 51, 'Number of passes over the training set.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 128, 'Images per minibatch.', flag_values=FLAGS)
flags.DEFINE_float('dropout_rate', 0.3, 'Fraction of activations dropped in training.',
                   flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
FLAG_RULES = dict(positive=('learning_rate', 'epochs', 'batch_size'),
                  non_negative=('validation_size', 'seed'), rates=('dropout_rate',),
                  at_most={'seed': cli.LARGEST_SEED}, writable=('train_dir',))

MODEL = 'keras_cnn'
VALIDATE_EVERY = 10  # epochs between the accuracies on the validation set, as published


def build_model():
    """The network, compiled: cnn_model's inference(), loss(), training(), evaluation()."""
    model = keras.Sequential([
        keras.Input(shape=(data_helpers.IMAGE_SIZE, data_helpers.IMAGE_SIZE,
                           data_helpers.CHANNELS)),
        # Stage 1: 64 filters of 4 x 4 (Glorot-initialised, no bias) and ReLU;
        # the largest value of each 3 x 3 window, windows 2 pixels apart;
        # dropout, in training only: 32 x 32 x 3 -> 16 x 16 x 64
        keras.layers.Conv2D(64, 4, padding='same', activation='relu', use_bias=False,
                            kernel_initializer='glorot_uniform', name='conv1'),
        keras.layers.MaxPool2D(3, strides=2, padding='same'),
        keras.layers.Dropout(FLAGS.dropout_rate, seed=FLAGS.seed),
        # Stage 2: 64 filters of 2 x 2 over the 64 channels: -> 8 x 8 x 64
        keras.layers.Conv2D(64, 2, padding='same', activation='relu', use_bias=False,
                            kernel_initializer='glorot_uniform', name='conv2'),
        keras.layers.MaxPool2D(3, strides=2, padding='same'),
        keras.layers.Dropout(FLAGS.dropout_rate, seed=FLAGS.seed + 1),
        # The 8 x 8 x 64 = 4,096 features, fully connected to the 10 logits
        keras.layers.Flatten(),
        keras.layers.Dense(data_helpers.NUM_CLASSES, kernel_initializer='glorot_uniform',
                           name='fc'),
    ], name='cnn')
    # The mean softmax cross-entropy; Adam with TF1's epsilon (Keras's default
    # is 1e-7); the accuracy as the metric. Without XLA (jit_compile), the
    # same TensorFlow operations as run_cnn_model.py run.
    model.compile(optimizer=keras.optimizers.Adam(FLAGS.learning_rate, epsilon=1e-8),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'], jit_compile=False)
    return model


def minibatches(train_set, first_epoch):
    """run_cnn_model.py's minibatches: a fresh shuffle (from --seed) every epoch, the last
    batch smaller; from `first_epoch` on, so that a resumed run gets the very batches
    the uninterrupted one would."""
    for epoch in range(first_epoch, FLAGS.epochs):
        yield from data_helpers.gen_epoch(train_set, FLAGS.batch_size, seed=FLAGS.seed,
                                          epoch=epoch)


def main(argv):
    """Parses and checks the flags, loads the data, trains, evaluates."""
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    # With --resume: the newest run of this model in train_dir, whose settings become the flags
    run_dir = keras_runs.run_to_resume(FLAGS, MODEL, FLAG_RULES)
    # 0, or the epoch that BackupAndRestore's backup ends, where fit continues
    first_epoch = keras_runs.first_epoch(run_dir, FLAGS.epochs, '--epochs')
    if FLAGS.seed is None:  # a run always has a seed, printed and saved: it can be repeated
        FLAGS.seed = cli.random_seed()
    cli.print_parameters(FLAGS)
    keras.utils.set_random_seed(FLAGS.seed)

    data = data_helpers.reshape_data(data_helpers.load_data(FLAGS.data_dir,
                                                            FLAGS.validation_size))
    cli.check_batch_size(FLAGS.batch_size, len(data['labels_train']))
    run_dir = run_dirs.prepare_run_dir(FLAGS, MODEL, data, run_dir)
    if not FLAGS.resume:  # the settings, for TensorBoard's HParams tab
        keras_runs.write_hparams(FLAGS, MODEL, run_dir)
    model = build_model()
    steps_per_epoch = data_helpers.batches_per_epoch(len(data['labels_train']), FLAGS.batch_size)
    # BackupAndRestore brings back the weights, Adam's state and the epoch, but
    # no random state: each dropout layer draws its mask of step n from (its
    # seed, n), so a resumed run sets n to where it starts, and draws the masks
    # the uninterrupted run would.
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.seed_generator.state.assign([layer.seed, first_epoch * steps_per_epoch])

    callbacks = [
        # The loss and accuracy of every epoch (in train/ and validation/), the graph
        keras.callbacks.TensorBoard(run_dir, histogram_freq=1),
        # A checkpoint after every epoch, each kept: a whole model, for keras.models.load_model
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, run_dirs.CHECKPOINT_FOLDER, 'epoch-{epoch:03d}.keras')),
        # The weights, the optimizer and the epoch after every epoch, restored
        # when fit starts again (--resume); the one before is kept too, in case
        # the latest was damaged; kept after the last epoch, so that a larger
        # --epochs can continue a finished run.
        keras.callbacks.BackupAndRestore(keras_runs.backup_dir(run_dir),
                                         double_checkpoint=True, delete_checkpoint=False),
        # After every step, a NaN loss or Ctrl-C stops the run
        keras_runs.StepChecks(),
    ]
    # Every 10 epochs, the accuracy on held-out images: with --validation_size
    # some training images, else (as published) the test set
    validation_set = ((data['images_validation'], data['labels_validation'])
                      if FLAGS.validation_size else (data['images_test'], data['labels_test']))
    with (run_lock.locked(run_dir),
          keras_runs.stops_explained(model, run_dir,
                                     resume.resume_command('tf2/keras_cnn.py', FLAGS))):
        model.fit(minibatches((data['images_train'], data['labels_train']), first_epoch),
                  epochs=FLAGS.epochs, steps_per_epoch=steps_per_epoch, shuffle=False,
                  validation_data=validation_set, validation_freq=VALIDATE_EVERY,
                  callbacks=callbacks, verbose=2)

    # After training: the accuracy on the test set (dropout off)
    test_accuracy = model.evaluate(data['images_test'], data['labels_test'], batch_size=1000,
                                   verbose=0, return_dict=True)['accuracy']
    print(f'Test Accuracy: {test_accuracy:g}')
    # ... also for TensorBoard, where the TF1 runs have theirs
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        tf.summary.scalar('test_accuracy', test_accuracy, step=model.optimizer.iterations)
    writer.close()
    print(f'Total time: {time.time() - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
