"""The two-layer fully connected network, written the TensorFlow 2 way (part 2's twin).

    python tf2/run_fc_model.py --learning_rate 0.001 --max_steps 2000
    python tf2/run_fc_model.py --resume   # the newest TF2 run of it, continued
    python tf2/run_fc_model.py --restore_tf1 tf_logs/YYYYmmdd-HHMMSS_fc   # a TF1 run, tested

The network, flags, data and batches of `run_fc_model.py` with
`two_layer_fc.py`, in today's TensorFlow: no graph to build first and no
session; the model is a `tf.Module` holding its `tf.Variable`s, its four
functions (inference, loss, training, evaluation) are its methods, a
`tf.GradientTape` gives the gradients and `tf.function` compiles the training
step into a graph. Each run logs to `train_dir/YYYYmmdd-HHMMSS_tf2_fc_.../`,
beside the TF1 runs, so TensorBoard shows both; its TF2 checkpoints go to
its `tf2_checkpoints/`, for --resume. docs/tf1_to_tf2.md puts each TF1 line
beside its TF2 line.
"""

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
    confusion,
    entry_point,
    pictures,
    prefetch,
    projector,
    resume,
    run_dirs,
    run_lock,
    summaries,
    tf1_checkpoints,
    tf2_checkpoints,
    tf2_summaries,
    training_stops,
)

# TensorFlow 2 runs each operation as it is called (eager execution): there is
# no tf.disable_eager_execution() here, and no Session.

# ---------------------------------------------------------------------------
# Model parameters as command-line flags: those of run_fc_model.py, and
# --restore_tf1
# ---------------------------------------------------------------------------
FLAGS = flags.FlagValues()
flags.DEFINE_float('learning_rate', 0.001, 'Learning rate of gradient descent.',
                   flag_values=FLAGS)
flags.DEFINE_integer('max_steps', 2000, 'Number of training steps.', flag_values=FLAGS)
flags.DEFINE_integer('hidden1', 120, 'Number of units in the hidden layer.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 400, 'Images per training batch.', flag_values=FLAGS)
flags.DEFINE_float('reg_constant', 0.1, 'Regularisation constant.', flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
flags.DEFINE_string('restore_tf1', None, 'Instead of training: load the newest checkpoint of '
                    'this TF1 run folder (of run_fc_model.py) by variable name and test it.',
                    flag_values=FLAGS)
FLAG_RULES = dict(positive=('learning_rate', 'max_steps', 'hidden1', 'batch_size'),
                  non_negative=('reg_constant', 'validation_size', 'seed'),
                  at_most={'hidden1': cli.MOST_HIDDEN_UNITS, 'seed': cli.LARGEST_SEED},
                  writable=('train_dir',))

MODEL = 'fc'
# The run folders' names and params.json say which runs are TF2 ones: the
# TF1 tools (restore_model.py, --resume) pass them by, and --resume here
# passes the TF1 runs by
RUN_NAME = 'tf2_fc'
SUMMARY_EVERY = 100      # steps between printed accuracies and TensorBoard summaries
CHECKPOINT_EVERY = 1000  # steps between checkpoints


class TwoLayerFC(tf.Module):
    """The network of two_layer_fc.py: its variables, and its four functions as methods.

    TF1 builds the variables inside inference() with tf.get_variable; a
    tf.Module creates them once, here, and each method uses them.
    """

    def __init__(self, image_pixels, hidden_units, classes, reg_constant=0, seed=0):
        super().__init__()
        self.reg_constant = reg_constant
        # One seeded random generator draws the initial weights (TF1: the
        # graph's seed, tf.set_random_seed, and each initializer's draw)
        random = tf.random.Generator.from_seed(seed)

        # Layer 1. The weights start small and random (stddev 1/sqrt(fan-in)),
        # so that the hidden units begin different from each other and not
        # saturated; the biases start at 0. The variables carry the TF1 names
        # (Layer1/weights), so a TF1 checkpoint fills them by name.
        with tf.name_scope('Layer1'):
            self.layer1_weights = tf.Variable(random.truncated_normal(
                [image_pixels, hidden_units], stddev=1.0 / np.sqrt(float(image_pixels))),
                name='weights')
            self.layer1_biases = tf.Variable(tf.zeros([hidden_units]), name='biases')

        # Layer 2
        with tf.name_scope('Layer2'):
            self.layer2_weights = tf.Variable(random.truncated_normal(
                [hidden_units, classes], stddev=1.0 / np.sqrt(float(hidden_units))),
                name='weights')
            self.layer2_biases = tf.Variable(tf.zeros([classes]), name='biases')

    def inference(self, images):
        """The network: a ReLU hidden layer, then a linear layer to the logits.

        Args:
            images: float32 [batch, image_pixels].

        Returns:
            logits: float32 [batch, classes].
        """
        hidden = self.hidden_layer(images)

        # Layer 2: no ReLU, the scores of the classes
        with tf.name_scope('Layer2'):
            logits = tf.matmul(hidden, self.layer2_weights) + self.layer2_biases

            # A histogram of the logits, written when a summary writer is the
            # default (TF1: collected for merge_all)
            tf.summary.histogram('logits', logits)

        return logits

    def hidden_layer(self, images):
        """Layer 1: the rectified linear unit of the weighted sum (for the Projector too)."""
        with tf.name_scope('Layer1'):
            return tf.nn.relu(tf.matmul(images, self.layer1_weights) + self.layer1_biases)

    def loss(self, logits, labels):
        """The loss: mean cross-entropy plus the L2 regularisation terms.

        Args:
            logits: float32 [batch, classes] from inference().
            labels: int64 [batch], the true classes.

        Returns:
            The scalar loss.
        """
        with tf.name_scope('Loss'):
            # The cross entropy between logits and labels
            cross_entropy = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(logits=logits, labels=labels,
                                                               name='cross_entropy'))
            # The regularisation term of each weight matrix, reg_constant *
            # sum(w**2) / 2. TF2 has no collections: where TF1's get_variable
            # put the terms into REGULARIZATION_LOSSES, the model adds them up.
            regularization = tf.add_n([self.reg_constant * tf.nn.l2_loss(weights)
                                       for weights in (self.layer1_weights, self.layer2_weights)])
            loss = cross_entropy + regularization

            # A scalar summary for the loss
            tf.summary.scalar('loss', loss)
        return loss

    def training(self, images, labels, optimizer):
        """One gradient-descent step on a batch; returns the loss before it.

        TF1's training() adds an op that does this when run, and a
        global_step the optimizer increments; here the step is done when
        called, and the optimizer counts the steps in optimizer.iterations.
        """
        # The tape records the forward pass, to differentiate the loss
        with tf.GradientTape() as tape:
            loss = self.loss(self.inference(images), labels)
        gradients = tape.gradient(loss, self.trainable_variables)
        optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        return loss

    def evaluation(self, logits, labels):
        """The accuracy: the fraction of images whose top logit is the label.

        Args:
            logits: float32 [batch, classes].
            labels: int64 [batch].

        Returns:
            Scalar float32 accuracy of the batch.
        """
        with tf.name_scope('Accuracy'):
            # Comparing prediction with true label
            correct_prediction = tf.equal(tf.argmax(logits, 1), labels)

            # The accuracy of the predictions
            accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))

            # Summary for the accuracy
            tf.summary.scalar('train_accuracy', accuracy)

        return accuracy

    @tf.function
    def predictions(self, images):
        """The predicted class of each image, as a graph (for whole data sets)."""
        return tf.argmax(self.inference(images), 1)


def make_optimizer(learning_rate):
    """The optimizer of training(): plain gradient descent, as two_layer_fc.training() has it.

    A TF2 optimizer keeps its state (the step count in `iterations`) between
    steps, so it is made once and passed to training().
    """
    return tf.keras.optimizers.SGD(learning_rate)


def run_training(data, run_dir, resume_from=None):
    """Creates the model, trains it, tests it (run_fc_model.py's run_training).

    Args:
        data: the dict from `data_helpers.load_data`.
        run_dir: the run folder for the summaries and checkpoints.
        resume_from: the TF2 checkpoint that --resume continues from, or None.
    """
    # With --validation_size, held-out training images for the progress lines
    validation_set = (data.get('images_validation'), data.get('labels_validation'))

    # The model and its variables, initialised at once (TF1: placeholders,
    # inference() and global_variables_initializer(); there is nothing to feed)
    model = TwoLayerFC(data_helpers.IMAGE_PIXELS, FLAGS.hidden1, data_helpers.NUM_CLASSES,
                       reg_constant=FLAGS.reg_constant, seed=FLAGS.seed)

    # Gradient descent; optimizer.iterations counts the steps (TF1: global_step)
    optimizer = make_optimizer(FLAGS.learning_rate)

    # One training step, compiled by tf.function into a graph that TensorFlow
    # runs as a whole (TF1: the train op, run by sess.run)
    @tf.function
    def train_step(images, labels):
        return model.training(images, labels, optimizer)

    # Checkpoints of the model and the optimizer, by object (TF1: Saver, by
    # variable name), every one kept, numbered by the step, in the run
    # folder's tf2_checkpoints/ (apart from TF1's checkpoints/)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(run_dir, run_dirs.TF2_CHECKPOINT_FOLDER), max_to_keep=None)
    resume_command = resume.resume_command('tf2/run_fc_model.py', FLAGS)
    # With --resume: the weights and the step count as the checkpoint holds
    # them (TF1: saver.restore)
    if resume_from:
        with tf2_checkpoints.checked_restore(resume_from, optimizer, model.trainable_variables):
            checkpoint.restore(resume_from).assert_existing_objects_matched()

    # Summary writers: one for the graph and the summaries, and one each for
    # the accuracy on the training and the validation set, in sub-folders
    # under one tag, so TensorBoard draws them in one chart
    summary_writer = tf.summary.create_file_writer(run_dir)
    train_writer = tf.summary.create_file_writer(os.path.join(run_dir, 'train'))
    validation_writer = tf.summary.create_file_writer(os.path.join(run_dir, 'validation'))
    # The graph of the training step, for TensorBoard's Graphs tab (traced
    # with no writer the default, so that it writes no summaries)
    graph = train_step.get_concrete_function(
        tf.TensorSpec([FLAGS.batch_size, data_helpers.IMAGE_PIXELS], tf.float32),
        tf.TensorSpec([FLAGS.batch_size], tf.int64)).graph
    with summary_writer.as_default():
        tf.summary.graph(graph)
    tf2_summaries.ProtoWriter(summary_writer).add_summary(
        summaries.hparams(FLAGS, RUN_NAME, run_dir))

    # Generate input data batches, from the step the run is at (0 unless
    # resumed): the very batches of run_fc_model.py for the same --seed; the
    # next batch is gathered while one trains
    first_step = int(optimizer.iterations)
    batches = prefetch.prefetch(data_helpers.gen_batch(
        (data['images_train'], data['labels_train']), FLAGS.batch_size, FLAGS.max_steps,
        seed=FLAGS.seed, start_step=first_step))

    # Ctrl-C, SIGTERM or SIGHUP in the loop lets the step in progress finish,
    # then saves a checkpoint of it, prints the command that resumes, and
    # exits with 128 + the signal's number (130 for Ctrl-C)
    with training_stops.manager_checkpoint_on_stop(manager, optimizer.iterations,
                                                   resume_command):
        for step in range(first_step, FLAGS.max_steps):
            # Get next input data batch
            images_batch, labels_batch = next(batches)

            # Periodically print out the model's current accuracy, and write the
            # summaries: the model's summary ops write whenever a writer is the
            # default (TF1: sess.run of merge_all's op)
            if step % SUMMARY_EVERY == 0:
                with summary_writer.as_default(step=step):
                    logits = model.inference(images_batch)
                    model.loss(logits, labels_batch)
                    train_accuracy = model.evaluation(logits, labels_batch)
                with train_writer.as_default(step=step):
                    tf.summary.scalar('accuracy', train_accuracy)
                if not FLAGS.validation_size:
                    print(f'Step {step:d}, training accuracy {train_accuracy:g}')
                else:  # and the accuracy on held-out images, never trained on
                    validation_accuracy, _ = batch_eval.predict_in_batches(
                        model.predictions, validation_set)
                    with validation_writer.as_default(step=step):
                        tf.summary.scalar('accuracy', validation_accuracy)
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

    # After finishing the training, evaluate on the test set, 1,000 images
    # at a time
    test_accuracy, predicted = batch_eval.predict_in_batches(
        model.predictions, (data['images_test'], data['labels_test']))
    print(f'Test accuracy {test_accuracy:g}')
    final_step = int(optimizer.iterations)
    with summary_writer.as_default(step=final_step):
        tf.summary.scalar('test_accuracy', test_accuracy)

    # What the model learned, for TensorBoard: the confusion matrix and
    # guesses, the first layer's weights, and where the hidden layer places
    # 1,000 test images
    projector_images = data['images_test'][:projector.PROJECTOR_IMAGES]
    writer = tf2_summaries.ProtoWriter(summary_writer)
    confusion.report_test_set(data, predicted, writer, final_step, os.path.basename(run_dir),
                              tf.nn.softmax(model.inference(projector_images)).numpy())
    summaries.write_pictures(
        writer, final_step,
        layer1_weights=pictures.layer1_weights_picture(model.layer1_weights.numpy()))
    projector.write_projector(run_dir, model.hidden_layer(projector_images).numpy(), data,
                              predicted, 'hidden layer')
    for each_writer in (summary_writer, train_writer, validation_writer):
        each_writer.close()


def restore_tf1_and_test():
    """--restore_tf1: a TF1 run's newest checkpoint, loaded by name into the model, tested.

    Prints the test accuracy that restore_model.py prints for that run.
    """
    checkpoint, run_params = tf1_checkpoints.checkpoint_of_run(FLAGS.restore_tf1, MODEL,
                                                               'run_fc_model.py')
    model = TwoLayerFC(data_helpers.IMAGE_PIXELS, FLAGS.hidden1, data_helpers.NUM_CLASSES)

    # A TF1 Saver checkpoint holds each variable under its graph name
    # (Layer1/weights); the model's variables carry those names, so each is
    # read by its name (TF2's own checkpoints go by object instead)
    print('Restoring variables from TF1 checkpoint')
    variables = {variable.name.split(':')[0]: variable for variable in model.variables}
    with tf1_checkpoints.checked_load(checkpoint, variables,
                                      f'a two-layer network with hidden1={FLAGS.hidden1}'):
        reader = tf.train.load_checkpoint(checkpoint)
        for name, variable in variables.items():
            variable.assign(reader.get_tensor(name))
        print(f'Current step: {reader.get_tensor("global_step")}')

    # The run's own data and split, so that the test images are centred with
    # the very mean image the model was trained with
    data = data_helpers.load_data(FLAGS.data_dir or run_params.get('data_dir'),
                                  run_params.get('validation_size', 0))
    test_accuracy, predicted = batch_eval.predict_in_batches(
        model.predictions, (data['images_test'], data['labels_test']))
    print(f'Test accuracy {test_accuracy:g}')
    confusion.report_test_set(data, predicted)


def main(argv):
    """Parses and checks the flags; trains and tests the network, or tests a TF1 run's."""
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    if FLAGS.restore_tf1:
        restore_tf1_and_test()
    else:
        # With --resume: the newest TF2 two-layer run in train_dir and its
        # last checkpoint, whose saved settings become the flags
        run_dir, resume_from = resume.run_to_continue(FLAGS, RUN_NAME, FLAG_RULES)
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
            run_training(data, run_dir, resume_from)

    end_time = time.time()
    print(f'Total time: {end_time - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
