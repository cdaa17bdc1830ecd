"""The softmax classifier of part 1, the Keras way: a keras.Model, compile and fit.

    python tf2/keras_softmax.py

`softmax.py` in Keras 3: the same classifier (one weight per pixel value and
class, one bias per class, all starting at 0), loss, gradient descent,
settings and random batches. `keras.Sequential` holds the model, `compile`
the loss, the optimiser and the metric, and `fit` is the training loop,
whose callbacks write the TensorBoard logs, a checkpoint after every epoch,
and a backup that --resume continues from. `tf2/softmax.py` is TensorFlow 2's
low-level way; docs/keras_way.md sets the three side by side.
"""

import os
import sys
import time

# Run from the project root (python tf2/keras_softmax.py): the project's own
# modules (data_helpers, tutorial_support) are imported from there.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import keras
import numpy as np
import tensorflow as tf
from absl import flags

import data_helpers
from tutorial_support import cli, entry_point, keras_runs, resume, run_dirs, run_lock

# The parameters of softmax.py, as flags with its defaults, and the runners' flags
FLAGS = flags.FlagValues()
flags.DEFINE_integer('batch_size', 100, 'Images per training step.', flag_values=FLAGS)
flags.DEFINE_float('learning_rate', 0.005, 'Learning rate of gradient descent.',
                   flag_values=FLAGS)
flags.DEFINE_integer('max_steps', 1000, 'Number of training steps (a multiple of 100).',
                     flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
FLAG_RULES = dict(positive=('batch_size', 'learning_rate', 'max_steps'),
                  non_negative=('validation_size', 'seed'), at_most={'seed': cli.LARGEST_SEED},
                  writable=('train_dir',))

MODEL = 'keras_softmax'
# fit counts in epochs: here 100 steps, after which softmax.py prints a line
STEPS_PER_EPOCH = 100


def build_model():
    """The classifier, compiled with its loss, optimiser and metric."""
    model = keras.Sequential([
        keras.Input(shape=(data_helpers.IMAGE_PIXELS,)),
        # The scores (logits): a weighted sum of the pixels plus a bias, all from 0
        keras.layers.Dense(data_helpers.NUM_CLASSES, kernel_initializer='zeros',
                           bias_initializer='zeros', name='logits'),
    ], name='softmax')
    # The loss: how far the softmax of the scores is from the true labels (the
    # mean cross-entropy); plain gradient descent; the accuracy as the metric.
    # Without XLA (jit_compile), the same TensorFlow operations as softmax.py run.
    model.compile(optimizer=keras.optimizers.SGD(FLAGS.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'], jit_compile=False)
    return model


def random_batches(images, labels, first_step):
    """softmax.py's batches: random images, drawn with replacement from --seed.

    From `first_step` on (the steps before are drawn and passed over), so
    that a resumed run gets the very batches the uninterrupted one would.
    """
    rng = np.random.default_rng(FLAGS.seed)
    for step in range(FLAGS.max_steps):
        indices = rng.integers(0, len(labels), FLAGS.batch_size)
        if step >= first_step:
            yield images[indices], labels[indices]


def main(argv):
    """Loads CIFAR-10, trains the classifier, prints the test accuracy."""
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    # With --resume: the newest run of this model in train_dir, whose settings become the flags
    run_dir = keras_runs.run_to_resume(FLAGS, MODEL, FLAG_RULES)
    epochs = keras_runs.epochs_of(FLAGS.max_steps, STEPS_PER_EPOCH)
    # 0, or the epoch that BackupAndRestore's backup ends, where fit continues
    first_epoch = keras_runs.first_epoch(run_dir, epochs, '--max_steps')
    if FLAGS.seed is None:  # a run always has a seed, printed and saved: it can be repeated
        FLAGS.seed = cli.random_seed()
    cli.print_parameters(FLAGS)
    keras.utils.set_random_seed(FLAGS.seed)

    data = data_helpers.load_data(FLAGS.data_dir, FLAGS.validation_size)
    cli.check_batch_size(FLAGS.batch_size, len(data['labels_train']))
    run_dir = run_dirs.prepare_run_dir(FLAGS, MODEL, data, run_dir)
    if not FLAGS.resume:  # the settings, for TensorBoard's HParams tab
        keras_runs.write_hparams(FLAGS, MODEL, run_dir)
    model = build_model()

    batches = random_batches(data['images_train'], data['labels_train'],
                             first_epoch * STEPS_PER_EPOCH)
    callbacks = [
        # The loss and accuracy of every epoch (in train/ and validation/), the graph
        keras.callbacks.TensorBoard(run_dir, histogram_freq=1),
        # A checkpoint after every epoch, each kept: a whole model, for keras.models.load_model
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, run_dirs.CHECKPOINT_FOLDER, 'epoch-{epoch:03d}.keras')),
        # The weights, the optimizer and the epoch after every epoch, restored
        # when fit starts again (--resume); the one before is kept too, in case
        # the latest was damaged; kept after the last epoch, so that a larger
        # --max_steps can continue a finished run.
        keras.callbacks.BackupAndRestore(keras_runs.backup_dir(run_dir),
                                         double_checkpoint=True, delete_checkpoint=False),
        # After every step, a NaN loss or Ctrl-C stops the run
        keras_runs.StepChecks(),
    ]
    with (run_lock.locked(run_dir),
          keras_runs.stops_explained(model, run_dir,
                                     resume.resume_command('tf2/keras_softmax.py', FLAGS))):
        model.fit(batches, epochs=epochs, steps_per_epoch=STEPS_PER_EPOCH, shuffle=False,
                  validation_data=((data['images_validation'], data['labels_validation'])
                                   if FLAGS.validation_size else None),
                  callbacks=callbacks, verbose=2)

    # After training: the accuracy on the test set, which it has never seen
    test_accuracy = model.evaluate(data['images_test'], data['labels_test'], batch_size=1000,
                                   verbose=0, return_dict=True)['accuracy']
    print(f'Test accuracy {test_accuracy:g}')
    # ... also for TensorBoard, where the TF1 runs have theirs
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        tf.summary.scalar('test_accuracy', test_accuracy, step=model.optimizer.iterations)
    writer.close()
    print(f'Total time: {time.time() - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
