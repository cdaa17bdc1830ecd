"""Trains the small convolutional network on CIFAR-10 (part 3, the runner).

    python run_cnn_model.py --epochs 51 --batch_size 128

The graph comes from the four functions of `cnn_model.py`. Every epoch goes
through the training set once in shuffled minibatches; every 10 epochs the
cost and the accuracy on the training and validation sets are printed. The
run logs to its own folder `train_dir/YYYYmmdd-HHMMSS_cnn_.../` (cost, loss,
accuracy, logits, what the model learned) and saves a checkpoint there after
every epoch. What the notebook does not teach (checking the flags, run folders,
resuming, clear messages) is called from `tutorial_support` by name.
"""

import os
import time

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import tensorflow.compat.v1 as tf
from absl import flags

import cnn_model
import data_helpers
from tutorial_support import (
    batch_eval,
    checkpoints,
    cli,
    confusion,
    entry_point,
    pictures,
    prefetch,
    progress,
    projector,
    resume,
    run_dirs,
    run_lock,
    summaries,
    training_stops,
)

# The notebook's TensorFlow 1 way: first define a graph, then run it in a Session.
tf.disable_eager_execution()

# ---------------------------------------------------------------------------
# Model parameters as command-line flags
# ---------------------------------------------------------------------------
# (The notebook sets these as arguments of model(); here they are flags of
# this script, parsed in main(), so a typo or a bad value gets a message.)
FLAGS = flags.FlagValues()
flags.DEFINE_float('learning_rate', 0.001, 'Learning rate of Adam.', flag_values=FLAGS)
flags.DEFINE_integer('epochs', 51, 'Number of passes over the training set.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 128, 'Images per minibatch.', flag_values=FLAGS)
flags.DEFINE_float('dropout_rate', 0.3, 'Fraction of activations dropped in training.',
                   flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
# What the flag values must be; a resumed run's saved settings are checked too
FLAG_RULES = dict(positive=('learning_rate', 'epochs', 'batch_size'),
                  non_negative=('validation_size', 'seed'), rates=('dropout_rate',),
                  at_most={'seed': cli.LARGEST_SEED}, writable=('train_dir',))

MODEL = 'cnn'
PRINT_EVERY = 10      # epochs between the published progress lines
SUMMARY_EVERY = 100   # steps between TensorBoard summaries


def placeholder_inputs():
    """Creates the placeholders for images, labels and the dropout settings.

    Returns:
        images_placeholder: float32 [batch, 32, 32, 3].
        labels_placeholder: int64 [batch].
        dropout_rate_placeholder: float32 scalar, 0 unless fed: evaluation
            never drops anything.
        dropout_seeds_placeholder: int64 [2, 2], the seeds of the two dropout
            masks, fed at every training step.
    """
    size, channels = data_helpers.IMAGE_SIZE, data_helpers.CHANNELS
    images_placeholder = tf.placeholder(tf.float32, shape=[None, size, size, channels],
                                        name='images')
    # The class numbers, not the notebook's one-hot rows (see cnn_model.loss)
    labels_placeholder = tf.placeholder(tf.int64, shape=[None], name='image-labels')
    dropout_rate_placeholder = tf.placeholder_with_default(0.0, shape=[], name='dropout_rate')
    dropout_seeds_placeholder = tf.placeholder_with_default(
        tf.zeros([2, 2], tf.int64), shape=[2, 2], name='dropout_seeds')
    return (images_placeholder, labels_placeholder, dropout_rate_placeholder,
            dropout_seeds_placeholder)


def dropout_seeds(step):
    """The seeds of the two dropout masks at a training step.

    (seed, 2 x step) and (seed, 2 x step + 1): new masks at every step, and the
    same masks when a resumed run reaches that step again.
    """
    return [[FLAGS.seed, 2 * step], [FLAGS.seed, 2 * step + 1]]


def run_training(data, run_dir, resume_from=None):
    """Builds the graph, trains it for the given epochs, evaluates (the notebook's model()).

    Args:
        data: the dict from `load_data`, reshaped to NHWC.
        run_dir: the run folder for the summaries and checkpoints.
        resume_from: the checkpoint that --resume continues from, or None.
    """
    tf.reset_default_graph()  # a fresh graph each time main() runs
    tf.set_random_seed(FLAGS.seed)  # the same --seed, the same numbers (see main)
    train_set = (data['images_train'], data['labels_train'])
    # With --validation_size the progress lines use held-out training images;
    # otherwise, as published, the test set.
    validation_set = (data.get('images_validation', data['images_test']),
                      data.get('labels_validation', data['labels_test']))

    # Create the placeholders
    (images_placeholder, labels_placeholder, dropout_rate_placeholder,
     dropout_seeds_placeholder) = placeholder_inputs()
    # Forward propagation: build the network up to the logits
    logits = cnn_model.inference(images_placeholder, dropout_rate_placeholder,
                                 dropout_seeds_placeholder)
    # Cost function
    cost = cnn_model.loss(logits, labels_placeholder)
    # Backpropagation: the Adam optimizer, counting the steps in global_step
    train_op = cnn_model.training(cost, FLAGS.learning_rate)
    global_step = tf.train.get_global_step()
    # Accuracy of a batch, and the predictions and their probabilities (for
    # the reports at the end)
    accuracy = cnn_model.evaluation(logits, labels_placeholder)
    predictions = tf.argmax(logits, 1)
    probabilities = tf.nn.softmax(logits)
    # All summaries for TensorBoard in one op
    summary = tf.summary.merge_all()
    # The first layer's filters, drawn as pictures at the end of training, and
    # the 4,096 features the last layer sees, for the Projector
    with tf.variable_scope('conv1', reuse=True):
        conv1_filters = tf.get_variable('filters')
    features = tf.get_default_graph().get_tensor_by_name('fc/Reshape:0')

    # Initialize all the variables
    init = tf.global_variables_initializer()
    # A saver that keeps every checkpoint, recorded by relative path
    saver = tf.train.Saver(max_to_keep=None, save_relative_paths=True)
    checkpoint_file = os.path.join(run_dir, run_dirs.CHECKPOINT_FOLDER, 'model.ckpt')
    resume_command = resume.resume_command('run_cnn_model.py', FLAGS)

    # Start the session to compute the TensorFlow graph (one inter-op thread:
    # the ops form a chain; each op still uses every core)
    with tf.Session(config=tf.ConfigProto(inter_op_parallelism_threads=1)) as sess:
        # Run the initialization (with --resume: restore the checkpoint)
        if resume_from:
            with checkpoints.checked_restore(resume_from):
                saver.restore(sess, resume_from)
        else:
            sess.run(init)
            # Step 0 kept too: the initial weights, for tf2/'s --init_from_tf1
            with training_stops.save_errors_explained(run_dir, resume_command):
                saver.save(sess, checkpoint_file, global_step=global_step)

        # The summary writers, closed however the block ends: the run's own,
        # and the training and validation accuracy, each in a sub-folder under
        # one tag, so TensorBoard draws them in one chart. Ctrl-C, SIGTERM or
        # SIGHUP in the block lets the step in progress finish, then saves a
        # checkpoint, prints the command that resumes, exits with 128 + the
        # signal's number (130 for Ctrl-C).
        with (tf.summary.FileWriter(run_dir, sess.graph) as summary_writer,
              tf.summary.FileWriter(os.path.join(run_dir, 'train')) as train_writer,
              tf.summary.FileWriter(os.path.join(run_dir, 'validation')) as validation_writer,
              training_stops.checkpoint_on_stop(saver, sess, checkpoint_file,
                                                resume_command)):
            summary_writer.add_summary(summaries.hparams(FLAGS, MODEL, run_dir))

            # A resumed run starts mid-epoch, where the interrupted one stopped
            step = int(sess.run(global_step))
            num_batches = data_helpers.batches_per_epoch(len(train_set[1]), FLAGS.batch_size)
            first_epoch, first_batch = divmod(step, num_batches)

            # Do the training loop
            for epoch in range(first_epoch, FLAGS.epochs):
                epoch_start = time.time()
                start_batch = first_batch if epoch == first_epoch else 0
                minibatch_cost = 0.0
                num_minibatches = num_batches - start_batch
                # A fresh shuffle of the training set, cut into minibatches, the
                # last one smaller (the next is gathered while one trains). The
                # notebook's random_mini_batches returns the epoch's minibatches
                # all at once; gen_epoch hands them out one at a time, shuffled by
                # (--seed, epoch), so a resumed run gets the very same minibatches.
                minibatches = prefetch.prefetch(data_helpers.gen_epoch(
                    train_set, FLAGS.batch_size, seed=FLAGS.seed, epoch=epoch,
                    start_batch=start_batch))
                progress_bar = progress.ProgressBar(num_minibatches,
                                                    f'Epoch {epoch + 1}/{FLAGS.epochs}')

                for done, (minibatch_images, minibatch_labels) in enumerate(minibatches, 1):
                    # Every 100 steps, the summaries of the minibatch as the
                    # model sees it at test time (no dropout fed)
                    if step % SUMMARY_EVERY == 0:
                        summary_str = sess.run(summary, feed_dict={
                            images_placeholder: minibatch_images,
                            labels_placeholder: minibatch_labels})
                        summary_writer.add_summary(summary_str, step)

                    # Run the session to execute the optimizer and the cost,
                    # with dropout on; a NaN or infinite cost (or a stop signal
                    # meanwhile) stops the run here
                    feed_dict = {images_placeholder: minibatch_images,
                                 labels_placeholder: minibatch_labels,
                                 dropout_rate_placeholder: FLAGS.dropout_rate,
                                 dropout_seeds_placeholder: dropout_seeds(step)}
                    _, temp_cost = sess.run([train_op, cost], feed_dict=feed_dict)
                    training_stops.check_step(temp_cost, step, run_dir)
                    # The epoch's mean cost, divided by the number of minibatches
                    # run (the notebook divides by int(m / minibatch_size), which
                    # leaves out the last, smaller one it also adds up)
                    minibatch_cost += float(temp_cost) / num_minibatches
                    step += 1
                    progress_bar.update(done, f'cost {temp_cost:.3f}')
                # On a terminal, the bar gives way to a line that stays, as in Keras
                progress_bar.close(f'Epoch {epoch + 1}/{FLAGS.epochs}: '
                                   f'{time.time() - epoch_start:.1f}s, cost {minibatch_cost:.4f}')

                # The epoch's cost for TensorBoard, at the global step like every
                # summary (the notebook keeps each epoch's cost and plots "Costs
                # over time" at the end; TensorBoard draws it while the run goes)
                summary_writer.add_summary(summaries.scalars(cost=minibatch_cost), step)
                # A checkpoint of the epoch (the notebook's model() returns the
                # trained parameters; here they are on disk, for restore_model.py
                # and --resume)
                with training_stops.save_errors_explained(run_dir, resume_command):
                    saver.save(sess, checkpoint_file, global_step=global_step)

                # Print the cost and the accuracies every 10 epochs (each set
                # 1,000 images at a time, as at the end)
                if epoch % PRINT_EVERY == 0:
                    train_accuracy, _ = batch_eval.do_eval(
                        sess, accuracy, predictions, images_placeholder, labels_placeholder,
                        train_set)
                    validation_accuracy, _ = batch_eval.do_eval(
                        sess, accuracy, predictions, images_placeholder, labels_placeholder,
                        validation_set)
                    train_writer.add_summary(summaries.scalars(accuracy=train_accuracy), step)
                    validation_writer.add_summary(
                        summaries.scalars(accuracy=validation_accuracy), step)
                    print(f'Cost after epoch {epoch}: {minibatch_cost:f}, train accuracy: '
                          f'{train_accuracy:f}, validation accuracy: {validation_accuracy:f}')

            # Calculate the accuracy on the training set and, once, the test
            # set. The notebook feeds each whole set in one evaluation;
            # do_eval (tutorial_support/batch_eval.py) runs, for each slice of
            # 1,000 images,
            #     sess.run([accuracy, predictions], feed_dict={
            #         images_placeholder: images[start:start + 1000],
            #         labels_placeholder: labels[start:start + 1000]})
            # and weights each slice's accuracy by its size, so memory stays
            # bounded
            train_accuracy, _ = batch_eval.do_eval(
                sess, accuracy, predictions, images_placeholder, labels_placeholder, train_set)
            test_accuracy, predicted = batch_eval.do_eval(
                sess, accuracy, predictions, images_placeholder, labels_placeholder,
                (data['images_test'], data['labels_test']))
            print(f'Train Accuracy: {train_accuracy:g}')
            print(f'Test Accuracy: {test_accuracy:g}')
            # The final values for TensorBoard (without --validation_size the
            # published "validation" set is the test set)
            if FLAGS.validation_size:
                validation_accuracy, _ = batch_eval.do_eval(
                    sess, accuracy, predictions, images_placeholder, labels_placeholder,
                    validation_set)
            else:
                validation_accuracy = test_accuracy
            train_writer.add_summary(summaries.scalars(accuracy=train_accuracy), step)
            validation_writer.add_summary(summaries.scalars(accuracy=validation_accuracy), step)
            summary_writer.add_summary(summaries.scalars(test_accuracy=test_accuracy), step)

            # What the model learned, for TensorBoard: the confusion matrix and
            # guesses, the first layer's filters, and where the 4,096 features
            # place 1,000 test images
            test_features, test_probabilities, filters = sess.run(
                [features, probabilities, conv1_filters],
                feed_dict={images_placeholder: data['images_test'][:projector.PROJECTOR_IMAGES]})
            confusion.report_test_set(data, predicted, summary_writer, step,
                                      os.path.basename(run_dir), test_probabilities)
            summaries.write_pictures(summary_writer, step,
                                     conv1_filters=pictures.conv_filters_picture(filters))
            projector.write_projector(run_dir, test_features, data, predicted, '4,096 features')


def main(argv):
    """Parses and checks the flags, loads the data, trains, evaluates."""
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    # With --resume: the newest CNN run in train_dir and its last
    # checkpoint, whose saved settings become the flags; a new run otherwise
    run_dir, resume_from = resume.run_to_continue(FLAGS, MODEL, FLAG_RULES)
    if FLAGS.seed is None:  # a run always has a seed, printed and saved: it can be repeated
        FLAGS.seed = cli.random_seed()
    cli.print_parameters(FLAGS)

    # Load CIFAR-10 as 32 x 32 x 3 images, the mean training image subtracted
    # as in parts 1 and 2 (the notebook feeds the raw pixel values; here one
    # loader serves every part, and restore_model.py and --image prepare every
    # model's images alike)
    data = data_helpers.reshape_data(
        data_helpers.load_data(FLAGS.data_dir, FLAGS.validation_size))
    cli.check_batch_size(FLAGS.batch_size, len(data['labels_train']))

    # Each run logs to its own folder, claimed while this process trains in it
    run_dir = run_dirs.prepare_run_dir(FLAGS, MODEL, data, run_dir)
    with run_lock.locked(run_dir):
        run_training(data, run_dir, resume_from)

    print(f'Total time: {time.time() - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
