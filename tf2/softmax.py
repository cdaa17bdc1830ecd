"""A softmax classifier for CIFAR-10 in TensorFlow 2, the low-level way (part 1's twin).

    python tf2/softmax.py

The classifier, constants, data and random batches of `softmax.py`, as
TensorFlow's guides write TF2 today with its own low-level tools: no graph to
build first and no session. The variables are `tf.Variable`s, the classifier
is a Python function, a `tf.GradientTape` gives the gradients, `tf.function`
compiles the training step into a graph that returns the loss for the loop
to log, and `tf.data` delivers the batches. The Keras way (`keras.Model`,
`compile`, `fit`) is in the Keras files of tf2/. docs/tf1_to_tf2.md puts each
TF1 line beside its TF2 line.
"""

import os
import sys
import time

# Run from the project root (python tf2/softmax.py): the project's own
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
    run_dirs,
    summaries,
    tf2_summaries,
    training_stops,
)

# TensorFlow 2 runs each operation as it is called (eager execution): there is
# no tf.disable_eager_execution() here, and no Session.

# The parameters of softmax.py, as flags with its defaults
FLAGS = flags.FlagValues()
flags.DEFINE_integer('batch_size', 100, 'Images per training step.', flag_values=FLAGS)
flags.DEFINE_float('learning_rate', 0.005, 'Learning rate of gradient descent.',
                   flag_values=FLAGS)
flags.DEFINE_integer('max_steps', 1000, 'Number of training steps.', flag_values=FLAGS)
flags.DEFINE_string('train_dir', None,
                    'Also write the run to TensorBoard, in a run folder of its own in this '
                    'folder (tf_logs, say, beside the runs of parts 2 and 3).',
                    flag_values=FLAGS)
cli.define_data_flags(FLAGS)  # data_dir, seed
# What the flag values must be
FLAG_RULES = dict(positive=('batch_size', 'learning_rate', 'max_steps'), non_negative=('seed',),
                  at_most={'seed': cli.LARGEST_SEED}, writable=('train_dir',))

RUN_NAME = 'tf2_softmax'  # the run folders' names say which runs are TF2 ones


def main(argv):
    """Loads CIFAR-10, trains the classifier, prints the test accuracy."""
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    # The random batches come from --seed: the batches of softmax.py
    rng = np.random.default_rng(FLAGS.seed)

    # Load the data: 50,000 training and 10,000 test images, each a row of
    # 3,072 values (32 x 32 pixels x 3 colours) with the mean image subtracted.
    data_sets = data_helpers.load_data(FLAGS.data_dir)
    cli.check_batch_size(FLAGS.batch_size, len(data_sets['labels_train']))

    # -----------------------------------------------------------------------
    # The model: variables, and functions that compute with them when called
    # (TF1: a graph of placeholders and ops, run later in a Session)
    # -----------------------------------------------------------------------

    # The variables to learn: one weight per pixel value and class, one bias
    # per class, set to their initial values at once (no initializer to run).
    weights = tf.Variable(tf.zeros([data_helpers.IMAGE_PIXELS, data_helpers.NUM_CLASSES]))
    biases = tf.Variable(tf.zeros([data_helpers.NUM_CLASSES]))

    # The classifier's scores (logits): a weighted sum of the pixels plus a
    # bias. The images are an argument: there are no placeholders.
    def inference(images):
        return tf.matmul(images, weights) + biases

    # Gradient descent (TF1: tf.train.GradientDescentOptimizer)
    optimizer = tf.keras.optimizers.SGD(FLAGS.learning_rate)

    # One training step: the tape records how the loss was computed, so that
    # its gradient can be taken; then the variables move a little against it.
    # tf.function compiles the step into a graph that runs as a whole.
    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            # The loss: how far the softmax of the scores is from the true labels.
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                logits=inference(images), labels=labels))
        gradients = tape.gradient(loss, [weights, biases])
        optimizer.apply_gradients(zip(gradients, [weights, biases], strict=True))
        return loss

    # Accuracy: how often the highest score is the true class. (The
    # predictions are a function of their own, for the confusion matrix.)
    def predictions(images):
        return tf.argmax(inference(images), 1)

    def accuracy(images, labels):
        correct_prediction = tf.equal(predictions(images), labels)
        return tf.reduce_mean(tf.cast(correct_prediction, tf.float32))

    # -----------------------------------------------------------------------
    # Train: call the functions (TF1: sess.run with a feed_dict)
    # -----------------------------------------------------------------------

    # Random batches of training images (drawn with replacement), those of
    # softmax.py for the same --seed, delivered by tf.data: the next batch is
    # made while one trains
    def random_batches():
        for _ in range(FLAGS.max_steps):
            indices = rng.integers(0, len(data_sets['labels_train']), FLAGS.batch_size)
            yield data_sets['images_train'][indices], data_sets['labels_train'][indices]

    batches = tf.data.Dataset.from_generator(random_batches, output_signature=(
        tf.TensorSpec([None, data_helpers.IMAGE_PIXELS], tf.float32),
        tf.TensorSpec([None], tf.int64))).prefetch(tf.data.AUTOTUNE)
    accuracies, losses = [], []  # for TensorBoard, with --train_dir

    for i, (images_batch, labels_batch) in enumerate(batches):
        # Every 100 steps, the accuracy on the batch before training on it.
        if i % 100 == 0:
            train_accuracy = float(accuracy(images_batch, labels_batch))
            print(f'Step {i:5d}: training accuracy {train_accuracy:g}')
            accuracies.append((i, train_accuracy))

        # The training step itself; a NaN or infinite loss stops the run at once.
        loss_value = float(train_step(images_batch, labels_batch))
        training_stops.check_step(loss_value, i)
        losses.append(loss_value)

    # After training: the accuracy on the test set, which it has never seen,
    # 1,000 images at a time.
    test_accuracy, predicted = batch_eval.predict_in_batches(
        predictions, (data_sets['images_test'], data_sets['labels_test']))
    print(f'Test accuracy {test_accuracy:g}')
    confusion.report_test_set(data_sets, predicted)

    # With --train_dir, the run also goes to TensorBoard, which part 2
    # introduces: the graph, the accuracies, and what each class learned
    if FLAGS.train_dir:
        graph = train_step.get_concrete_function(*batches.element_spec).graph
        write_to_tensorboard(graph, accuracies, losses, test_accuracy, weights.numpy(),
                             data_sets['classes'])

    end_time = time.time()
    print(f'Total time: {end_time - begin_time:5.2f}s')


def write_to_tensorboard(graph, accuracies, losses, test_accuracy, weights, classes):
    """Writes the finished run to a run folder in --train_dir, for TensorBoard.

    The folder gets the training step's graph, the hyper-parameters, the loss
    of every step, the training accuracy (in train/), the test accuracy and
    the class templates: each class's 3,072 weights as a picture.
    """
    run_dir = run_dirs.make_run_dir(FLAGS.train_dir, run_dirs.run_name(FLAGS, RUN_NAME))
    summary_writer = tf.summary.create_file_writer(run_dir)
    # The training accuracy in a sub-folder, as the runners of parts 2 and 3 write it
    train_writer = tf.summary.create_file_writer(os.path.join(run_dir, 'train'))
    try:
        with summary_writer.as_default():
            tf.summary.graph(graph)
            for step, loss_value in enumerate(losses):
                tf.summary.scalar('loss', loss_value, step=step)
            tf.summary.scalar('test_accuracy', test_accuracy, step=FLAGS.max_steps)
        with train_writer.as_default():
            for step, train_accuracy in accuracies:
                tf.summary.scalar('accuracy', train_accuracy, step=step)
        writer = tf2_summaries.ProtoWriter(summary_writer)
        writer.add_summary(summaries.hparams(FLAGS, RUN_NAME, run_dir))
        summaries.write_pictures(
            writer, FLAGS.max_steps,
            class_templates=pictures.class_templates_picture(weights, classes))
    finally:
        summary_writer.close()
        train_writer.close()


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
