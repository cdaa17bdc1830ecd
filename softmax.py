"""A softmax classifier for CIFAR-10 (part 1 of the tutorial).

    python softmax.py

The simplest image classifier there is: every class gets a score that is a
weighted sum of the 3,072 pixel values plus a bias, and the highest score
wins. Gradient descent tunes the weights on random batches of training
images. Expect a test accuracy of about 25-30%: far better than the 10% of
guessing, and far from what the networks of parts 2 and 3 reach.
"""

import os
import time

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import numpy as np
import tensorflow.compat.v1 as tf
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
    training_stops,
)

# The post's TensorFlow 1 way: first define a graph, then run it in a Session.
# (The post imports tensorflow 1.x; TensorFlow 2 keeps that API as
# tensorflow.compat.v1, and runs it as a graph once eager execution is off.)
tf.disable_eager_execution()

# The post's parameters are plain variables; as flags, each can be changed on
# the command line (python softmax.py --learning_rate 0.01), defaults the same.
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


def main(argv):
    """Loads CIFAR-10, trains the classifier, prints the test accuracy.

    (The post runs these steps at the top level of the script; in main() they
    run after the flags are checked, and entry_point.run_main at the bottom
    turns an error you can fix into a message instead of a traceback.)
    """
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    # The post draws with np.random and leaves np.random.seed(1) commented out;
    # here the random batches come from --seed, so a run can be repeated
    rng = np.random.default_rng(FLAGS.seed)

    # Load the data: 50,000 training and 10,000 test images, each a row of
    # 3,072 values (32 x 32 pixels x 3 colours) with the mean image subtracted.
    data_sets = data_helpers.load_data(FLAGS.data_dir)
    cli.check_batch_size(FLAGS.batch_size, len(data_sets['labels_train']))

    # -----------------------------------------------------------------------
    # Prepare the TensorFlow graph
    # -----------------------------------------------------------------------

    tf.reset_default_graph()  # a fresh graph each time main() runs

    # Placeholders: where the images and their labels are fed in at run time.
    # (The post writes the numbers: 3072 values an image, 10 classes.)
    images_placeholder = tf.placeholder(tf.float32, shape=[None, data_helpers.IMAGE_PIXELS])
    labels_placeholder = tf.placeholder(tf.int64, shape=[None])

    # The variables to learn: one weight per pixel value and class, one bias per class.
    weights = tf.Variable(tf.zeros([data_helpers.IMAGE_PIXELS, data_helpers.NUM_CLASSES]))
    biases = tf.Variable(tf.zeros([data_helpers.NUM_CLASSES]))

    # The classifier's scores (logits): a weighted sum of the pixels plus a bias.
    logits = tf.matmul(images_placeholder, weights) + biases

    # The loss: how far the softmax of the scores is from the true labels.
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        logits=logits, labels=labels_placeholder))

    # One training step: move the variables a little against the loss's gradient.
    train_step = tf.train.GradientDescentOptimizer(FLAGS.learning_rate).minimize(loss)

    # Accuracy: how often the highest score is the true class. (The
    # predictions are an op of their own, for the confusion matrix.)
    predictions = tf.argmax(logits, 1)
    correct_prediction = tf.equal(predictions, labels_placeholder)
    accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))

    # -----------------------------------------------------------------------
    # Run the TensorFlow graph
    # -----------------------------------------------------------------------

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        accuracies, losses = [], []  # for TensorBoard, with --train_dir

        for i in range(FLAGS.max_steps):
            # A random batch of training images, drawn with replacement (the
            # post's np.random.choice over the training images, from the seeded rng)
            indices = rng.integers(0, len(data_sets['labels_train']), FLAGS.batch_size)
            images_batch = data_sets['images_train'][indices]
            labels_batch = data_sets['labels_train'][indices]
            feed_dict = {images_placeholder: images_batch, labels_placeholder: labels_batch}

            # Every 100 steps, the accuracy on the batch before training on it.
            if i % 100 == 0:
                train_accuracy = sess.run(accuracy, feed_dict=feed_dict)
                print(f'Step {i:5d}: training accuracy {train_accuracy:g}')
                accuracies.append((i, train_accuracy))

            # The training step itself. Unlike the post, it fetches the loss
            # too: a NaN or infinite loss stops the run at once.
            _, loss_value = sess.run([train_step, loss], feed_dict=feed_dict)
            training_stops.check_step(loss_value, i)
            losses.append(loss_value)

        # After training: the accuracy on the test set, which it has never
        # seen. The post feeds all 10,000 images in one sess.run; do_eval
        # (tutorial_support/batch_eval.py) runs, for each slice of 1,000,
        #     sess.run([accuracy, predictions], feed_dict={
        #         images_placeholder: images[start:start + 1000],
        #         labels_placeholder: labels[start:start + 1000]})
        # and weights each slice's accuracy by its size, to keep memory low.
        test_accuracy, predicted = batch_eval.do_eval(
            sess, accuracy, predictions, images_placeholder, labels_placeholder,
            (data_sets['images_test'], data_sets['labels_test']))
        print(f'Test accuracy {test_accuracy:g}')
        # Not in the post: which classes the classifier mixes up
        confusion.report_test_set(data_sets, predicted)

        # With --train_dir, the run also goes to TensorBoard, which part 2
        # introduces: the graph, the accuracies, and what each class learned
        if FLAGS.train_dir:
            write_to_tensorboard(sess.graph, accuracies, losses, test_accuracy,
                                 sess.run(weights), data_sets['classes'])

    end_time = time.time()
    print(f'Total time: {end_time - begin_time:5.2f}s')


def write_to_tensorboard(graph, accuracies, losses, test_accuracy, weights, classes):
    """Writes the finished run to a run folder in --train_dir, for TensorBoard.

    The folder gets the graph, the hyper-parameters, the loss of every step,
    the training accuracy (in train/, as the runners write it), the test
    accuracy and the class templates: each class's 3,072 weights as a picture.
    """
    run_dir = run_dirs.make_run_dir(FLAGS.train_dir, run_dirs.run_name(FLAGS, 'softmax'))
    summary_writer = tf.summary.FileWriter(run_dir, graph)
    # The training accuracy in a sub-folder, as the runners of parts 2 and 3 write it
    train_writer = tf.summary.FileWriter(os.path.join(run_dir, 'train'))
    try:
        summary_writer.add_summary(summaries.hparams(FLAGS, 'softmax', run_dir))
        for step, loss_value in enumerate(losses):
            summary_writer.add_summary(summaries.scalars(loss=loss_value), step)
        for step, train_accuracy in accuracies:
            train_writer.add_summary(summaries.scalars(accuracy=train_accuracy), step)
        summary_writer.add_summary(summaries.scalars(test_accuracy=test_accuracy),
                                   FLAGS.max_steps)
        summaries.write_pictures(
            summary_writer, FLAGS.max_steps,
            class_templates=pictures.class_templates_picture(weights, classes))
    finally:
        summary_writer.close()
        train_writer.close()


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
