"""The two-layer fully connected network in TensorFlow 2, the low-level way (part 2's twin).

    python tf2/run_fc_model.py --learning_rate 0.001 --max_steps 2000
    python tf2/run_fc_model.py --init_from_tf1 tf_logs/YYYYmmdd-HHMMSS_fc   # TF1's first weights
    python tf2/run_fc_model.py --resume   # the newest TF2 run of it, continued
    python tf2/run_fc_model.py --restore_tf1 tf_logs/YYYYmmdd-HHMMSS_fc   # a TF1 run, tested

`run_fc_model.py` with `two_layer_fc.py` (flags, data, batches, run folders
beside the TF1 runs) as TensorFlow's guides write TF2 today, with its own
low-level tools: a `tf.Module` called on images, a `train_step` under
`tf.function` that returns the loss for the loop to log, `tf.data` for the
batches. The Keras way (`keras.Model`, `compile`, `fit`) is in the Keras files
of tf2/. docs/tf1_to_tf2.md puts each TF1 line beside its TF2 line.
"""

import functools
import os
import sys
import time

# Run from the project root (python tf2/run_fc_model.py): the project's own
# modules (data_helpers, tutorial_support) are imported from there.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import numpy as np
import tensorflow as tf
from absl import flags

import data_helpers
from tutorial_support import (
    batch_eval,
    cli,
    entry_point,
    pictures,
    resume,
    run_dirs,
    run_lock,
    tf1_checkpoints,
    tf2_checkpoints,
    tf2_summaries,
    training_stops,
)

# Model parameters as command-line flags: those of run_fc_model.py, and
# --init_from_tf1 and --restore_tf1
FLAGS = flags.FlagValues()
flags.DEFINE_float('learning_rate', 0.001, 'Learning rate of gradient descent.',
                   flag_values=FLAGS)
flags.DEFINE_integer('max_steps', 2000, 'Number of training steps.', flag_values=FLAGS)
flags.DEFINE_integer('hidden1', 120, 'Number of units in the hidden layer.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 400, 'Images per training batch.', flag_values=FLAGS)
flags.DEFINE_float('reg_constant', 0.1, 'Regularisation constant.', flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
cli.define_tf1_run_flags(FLAGS, 'run_fc_model.py')  # init_from_tf1, restore_tf1
FLAG_RULES = dict(positive=('learning_rate', 'max_steps', 'hidden1', 'batch_size'),
                  non_negative=('reg_constant', 'validation_size', 'seed'),
                  at_most={'hidden1': cli.MOST_HIDDEN_UNITS, 'seed': cli.LARGEST_SEED},
                  writable=('train_dir',))

MODEL = 'fc'
RUN_NAME = 'tf2_fc'  # the run folders' names and params.json say which runs are TF2 ones
SUMMARY_EVERY = 100      # steps between printed accuracies and TensorBoard summaries
CHECKPOINT_EVERY = 1000  # steps between checkpoints
# What tf.data hands the training step: a batch of image rows and their labels
BATCH_SIGNATURE = (tf.TensorSpec([None, data_helpers.IMAGE_PIXELS], tf.float32),
                   tf.TensorSpec([None], tf.int64))


class TwoLayerFC(tf.Module):
    """The network of two_layer_fc.py: its variables, made once here (TF1: by
    tf.get_variable as inference() builds the graph), and its forward pass."""

    def __init__(self, image_pixels, hidden_units, classes, reg_constant=0, seed=0):
        super().__init__()
        self.reg_constant = reg_constant
        # One seeded generator draws the initial weights, step after step
        # (TF1: the graph's seed, tf.set_random_seed, and each initializer's)
        seed_generator = tf.keras.random.SeedGenerator(seed)

        # Layer 1. The weights start small and random (stddev 1/sqrt(fan-in),
        # cut at two stddevs), so that the hidden units begin different from
        # each other and not saturated; the biases start at 0. The variables
        # carry the TF1 names (Layer1/weights): a TF1 checkpoint fills them by name.
        with tf.name_scope('Layer1'):
            self.layer1_weights = tf.Variable(tf.keras.initializers.TruncatedNormal(
                stddev=1.0 / np.sqrt(float(image_pixels)), seed=seed_generator)(
                [image_pixels, hidden_units]), name='weights')
            self.layer1_biases = tf.Variable(tf.zeros([hidden_units]), name='biases')

        with tf.name_scope('Layer2'):  # Layer 2
            self.layer2_weights = tf.Variable(tf.keras.initializers.TruncatedNormal(
                stddev=1.0 / np.sqrt(float(hidden_units)), seed=seed_generator)(
                [hidden_units, classes]), name='weights')
            self.layer2_biases = tf.Variable(tf.zeros([classes]), name='biases')

    def __call__(self, images, training=False):
        """The network (TF1: inference()): a ReLU hidden layer, then a linear layer.

        `training`, TF2's convention for layers that train otherwise (dropout,
        batch norm), changes nothing here. Returns the logits [batch, classes].
        """
        hidden = self.hidden_layer(images)
        # Layer 2: no ReLU, the scores of the classes
        with tf.name_scope('Layer2'):
            return tf.matmul(hidden, self.layer2_weights) + self.layer2_biases

    def hidden_layer(self, images):
        """Layer 1: the rectified linear unit of the weighted sum (for the Projector too)."""
        with tf.name_scope('Layer1'):
            return tf.nn.relu(tf.matmul(images, self.layer1_weights) + self.layer1_biases)

    def regularization_loss(self):
        """reg_constant * sum(w**2) / 2 for each weight matrix, added up (TF2 has no
        collections: TF1's get_variable put each term into REGULARIZATION_LOSSES)."""
        return tf.add_n([self.reg_constant * tf.nn.l2_loss(weights)
                         for weights in (self.layer1_weights, self.layer2_weights)])

    @tf.function(reduce_retracing=True)
    def predictions(self, images):
        """The predicted class of each image, as a graph (for whole data sets)."""
        return tf.argmax(self(images), 1)


def loss(logits, labels, model):
    """The loss (TF1: loss()): the mean cross entropy plus the model's regularisation."""
    cross_entropy = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(logits=logits, labels=labels))
    return cross_entropy + model.regularization_loss()


def run_training(data, run_dir, resume_from=None, initial_weights=None):
    """Creates the model, trains it, tests it (run_fc_model.py's run_training).

    `data` is the dict of `data_helpers.load_data`; `run_dir` the run folder;
    `resume_from` the TF2 checkpoint --resume continues from, and
    `initial_weights` the TF1 run's step-0 checkpoint of --init_from_tf1, or None.
    """
    train_set = (data['images_train'], data['labels_train'])
    # With --validation_size, held-out training images for the progress lines
    validation_set = (data.get('images_validation'), data.get('labels_validation'))

    # The model and its variables, initialised at once (TF1: placeholders,
    # inference() and global_variables_initializer(); there is nothing to feed)
    model = TwoLayerFC(data_helpers.IMAGE_PIXELS, FLAGS.hidden1, data_helpers.NUM_CLASSES,
                       reg_constant=FLAGS.reg_constant, seed=FLAGS.seed)
    if initial_weights:  # --init_from_tf1: the TF1 run's first weights, by name
        tf1_checkpoints.load_by_name(model, initial_weights, FLAGS, MODEL)

    # Gradient descent (TF1: GradientDescentOptimizer); it counts the steps
    # in optimizer.iterations (TF1: global_step)
    optimizer = tf.keras.optimizers.SGD(FLAGS.learning_rate)

    # One training step, compiled by tf.function into a graph that TensorFlow
    # runs as a whole (TF1: the train op, run by sess.run). The tape records
    # the forward pass, to differentiate the loss; the optimizer then moves
    # the variables against the gradient. The step returns the loss before it.
    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            loss_value = loss(model(images, training=True), labels, model)
        gradients = tape.gradient(loss_value, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss_value

    # Checkpoints of the model and the optimizer, by object (TF1: Saver, by
    # variable name), every one kept, in the run folder's tf2_checkpoints/
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(run_dir, run_dirs.TF2_CHECKPOINT_FOLDER), max_to_keep=None)
    resume_command = resume.resume_command('tf2/run_fc_model.py', FLAGS)
    if resume_from:  # --resume: the weights and step count it holds (TF1: saver.restore)
        with tf2_checkpoints.checked_restore(resume_from, optimizer, model.trainable_variables):
            checkpoint.restore(resume_from).assert_existing_objects_matched()
    else:  # step 0 kept too, as the TF1 runner keeps it: the initial weights
        with training_stops.save_errors_explained(run_dir, resume_command):
            manager.save(checkpoint_number=0)

    # The input batches from the step the run is at: tf.data around gen_batch, the
    # very batches of run_fc_model.py for the same --seed, made while one trains
    first_step = int(optimizer.iterations)
    batches = tf.data.Dataset.from_generator(
        functools.partial(data_helpers.gen_batch, train_set, FLAGS.batch_size, FLAGS.max_steps,
                          seed=FLAGS.seed, start_step=first_step),
        output_signature=BATCH_SIGNATURE).prefetch(tf.data.AUTOTUNE)

    # Summary writers (tf.summary.create_file_writer): the run's own, and one
    # each for the accuracy on the training and validation sets, in sub-folders
    writers = tf2_summaries.RunWriters(run_dir)
    # The training step's graph (the Graphs tab) and the hyper-parameters (HParams)
    with writers.run.as_default():
        tf.summary.graph(train_step.get_concrete_function(*BATCH_SIGNATURE).graph)
    tf2_summaries.write_hparams(writers.run, FLAGS, RUN_NAME, run_dir)

    # Ctrl-C, SIGTERM or SIGHUP in the loop lets the step in progress finish,
    # saves a checkpoint of it, prints the command that resumes, exits 128 + n
    with training_stops.manager_checkpoint_on_stop(manager, optimizer.iterations,
                                                   resume_command):
        for step, (images_batch, labels_batch) in enumerate(batches, first_step):
            # Periodically print out the model's current accuracy, and write
            # the summaries: the loop logs what the model computes (TF1:
            # sess.run of merge_all's op, collected from the model functions)
            if step % SUMMARY_EVERY == 0:
                logits = model(images_batch)
                # The accuracy: how often the top logit is the label (TF1: evaluation())
                train_accuracy = tf.reduce_mean(
                    tf.keras.metrics.sparse_categorical_accuracy(labels_batch, logits))
                with writers.run.as_default(step=step):
                    tf.summary.scalar('Loss/loss', loss(logits, labels_batch, model))
                    tf.summary.scalar('Accuracy/train_accuracy', train_accuracy)
                    tf.summary.histogram('Layer2/logits', logits)
                writers.accuracies(step, train=train_accuracy)
                if not FLAGS.validation_size:
                    print(f'Step {step:d}, training accuracy {train_accuracy:g}')
                else:  # and the accuracy on held-out images, never trained on
                    validation_accuracy, _ = batch_eval.predict_in_batches(
                        model.predictions, validation_set)
                    writers.accuracies(step, validation=validation_accuracy)
                    print(f'Step {step:d}, training accuracy {train_accuracy:g}, '
                          f'validation accuracy {validation_accuracy:g}')

            # Perform a single training step; a NaN or infinite loss (or a stop
            # signal meanwhile) stops the run here
            loss_value = train_step(images_batch, labels_batch)
            training_stops.check_step(float(loss_value), step, run_dir)

            # Periodically save a checkpoint, and after the last step
            if (step + 1) % CHECKPOINT_EVERY == 0 or step + 1 == FLAGS.max_steps:
                with training_stops.save_errors_explained(run_dir, resume_command):
                    manager.save(checkpoint_number=optimizer.iterations)
                print('Saved checkpoint')

    # After finishing the training, evaluate on the test set, 1,000 images at a time
    test_accuracy, predicted = batch_eval.predict_in_batches(
        model.predictions, (data['images_test'], data['labels_test']))
    print(f'Test accuracy {test_accuracy:g}')
    final_step = int(optimizer.iterations)
    tf2_summaries.write_scalars(writers.run, final_step, test_accuracy=test_accuracy)

    # What the model learned, for TensorBoard: the confusion matrix and
    # guesses, the first layer's weights, and where the hidden layer places
    # 1,000 test images
    tf2_summaries.write_what_was_learned(
        writers.run, run_dir, final_step, data, predicted, model, model.hidden_layer,
        'hidden layer',
        layer1_weights=pictures.layer1_weights_picture(model.layer1_weights.numpy()))
    writers.close()


def main(argv):
    """Parses and checks the flags; trains and tests the network, or tests a TF1 run's."""
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    if FLAGS.restore_tf1:  # instead of training: a TF1 run's checkpoint, read by name, tested
        model = TwoLayerFC(data_helpers.IMAGE_PIXELS, FLAGS.hidden1, data_helpers.NUM_CLASSES)
        tf1_checkpoints.restore_and_test(model, FLAGS, MODEL, 'run_fc_model.py',
                                         data_helpers.load_data)
    else:
        # With --resume: the newest TF2 two-layer run in train_dir and its
        # last checkpoint, whose saved settings become the flags
        run_dir, resume_from = resume.run_to_continue(FLAGS, RUN_NAME, FLAG_RULES)
        # With --init_from_tf1: that TF1 run's step-0 checkpoint, and its
        # --seed unless one is given, so that the batches are that run's too
        initial_weights = tf1_checkpoints.initial_checkpoint(FLAGS, MODEL, 'run_fc_model.py')
        if FLAGS.seed is None:  # a run always has a seed, printed and saved: it can be repeated
            FLAGS.seed = cli.random_seed()
        cli.print_parameters(FLAGS)

        # Load CIFAR-10 data
        data = data_helpers.load_data(FLAGS.data_dir, FLAGS.validation_size)
        cli.check_batch_size(FLAGS.batch_size, len(data['labels_train']))

        # Put logs for each run in a separate folder, train_dir/YYYYmmdd-HHMMSS_tf2_fc_...
        # (or the resumed run's), claimed while this process trains in it
        run_dir = run_dirs.prepare_run_dir(FLAGS, RUN_NAME, data, run_dir)
        with run_lock.locked(run_dir):
            run_training(data, run_dir, resume_from, initial_weights)

    print(f'Total time: {time.time() - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
