"""The two-layer network of part 2, the Keras way: a keras.Model, compile and fit.

    python tf2/keras_fc.py

`two_layer_fc.py` and `run_fc_model.py` in Keras 3: the same network, initial
distributions, loss, optimiser, settings and batches. The model is a
`keras.Sequential` (TF1's inference()); `compile` takes the loss, the
optimiser and the metric (loss(), training(), evaluation()); `fit` is the
training loop, and its callbacks do what the TF1 runner writes out: the
TensorBoard logs, a checkpoint after every epoch, and a backup that --resume
continues from. `tf2/run_fc_model.py` is TensorFlow 2's low-level way;
docs/keras_way.md sets the three side by side.
"""

import math
import os
import sys
import time

# Run from the project root (python tf2/keras_fc.py): the project's own
# modules (data_helpers, tutorial_support) are imported from there.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import keras
import tensorflow as tf
from absl import flags

import data_helpers
from tutorial_support import cli, entry_point, keras_runs, resume, run_dirs, run_lock

# The flags of run_fc_model.py, with its defaults
FLAGS = flags.FlagValues()
flags.DEFINE_float('learning_rate', 0.001, 'Learning rate of gradient descent.',
                   flag_values=FLAGS)
flags.DEFINE_integer('max_steps', 2000, 'Number of training steps (a multiple of 100).',
                     flag_values=FLAGS)
flags.DEFINE_integer('hidden1', 120, 'Number of units in the hidden layer.', flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 400, 'Images per training batch.', flag_values=FLAGS)
flags.DEFINE_float('reg_constant', 0.1, 'Regularisation constant.', flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
FLAG_RULES = dict(positive=('learning_rate', 'max_steps', 'hidden1', 'batch_size'),
                  non_negative=('reg_constant', 'validation_size', 'seed'),
                  at_most={'hidden1': cli.MOST_HIDDEN_UNITS, 'seed': cli.LARGEST_SEED},
                  writable=('train_dir',))

MODEL = 'keras_fc'
# fit counts in epochs: here 100 steps, after which run_fc_model.py prints a line
STEPS_PER_EPOCH = 100


def build_model():
    """The two-layer network, compiled: TF1's inference(), loss(), training(), evaluation()."""
    # Keras's L2(l) adds l * sum(w**2) to the loss; two_layer_fc adds
    # reg_constant * sum(w**2) / 2 (tf.nn.l2_loss): the same term is L2(reg_constant / 2).
    l2 = keras.regularizers.L2(FLAGS.reg_constant / 2)
    model = keras.Sequential([
        keras.Input(shape=(data_helpers.IMAGE_PIXELS,)),
        # Layer 1: the ReLU of a weighted sum. The weights start small and random
        # (truncated normal, stddev 1/sqrt(fan-in)); the biases at 0 (Keras's default).
        keras.layers.Dense(FLAGS.hidden1, activation='relu', kernel_regularizer=l2, name='Layer1',
                           kernel_initializer=keras.initializers.TruncatedNormal(
                               stddev=1 / math.sqrt(data_helpers.IMAGE_PIXELS))),
        # Layer 2: no ReLU, the scores of the classes (logits)
        keras.layers.Dense(data_helpers.NUM_CLASSES, kernel_regularizer=l2, name='Layer2',
                           kernel_initializer=keras.initializers.TruncatedNormal(
                               stddev=1 / math.sqrt(FLAGS.hidden1))),
    ], name='two_layer_fc')
    # The loss: mean cross-entropy of the logits (plus the L2 terms, which Keras
    # adds itself); plain gradient descent; the accuracy as the metric. Without
    # XLA (jit_compile), the same TensorFlow operations as run_fc_model.py run.
    model.compile(optimizer=keras.optimizers.SGD(FLAGS.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'], jit_compile=False)
    return model


def main(argv):
    """Parses and checks the flags, loads the data, trains and tests the network."""
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
    keras.utils.set_random_seed(FLAGS.seed)  # the initial weights come from --seed

    data = data_helpers.load_data(FLAGS.data_dir, FLAGS.validation_size)
    cli.check_batch_size(FLAGS.batch_size, len(data['labels_train']))
    run_dir = run_dirs.prepare_run_dir(FLAGS, MODEL, data, run_dir)
    if not FLAGS.resume:  # the settings, for TensorBoard's HParams tab
        keras_runs.write_hparams(FLAGS, MODEL, run_dir)
    model = build_model()

    # The batches of run_fc_model.py (gen_batch, shuffled from --seed), from
    # the first step this run trains: a resumed run gets the very batches the
    # uninterrupted one would.
    batches = data_helpers.gen_batch((data['images_train'], data['labels_train']),
                                     FLAGS.batch_size, FLAGS.max_steps, seed=FLAGS.seed,
                                     start_step=first_epoch * STEPS_PER_EPOCH)
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
                                     resume.resume_command('tf2/keras_fc.py', FLAGS))):
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
