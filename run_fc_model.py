"""Trains the two-layer fully connected network on CIFAR-10 (part 2, the runner).

    python run_fc_model.py --learning_rate 0.001 --max_steps 2000

The graph comes from the four functions of `two_layer_fc.py`. Each run logs to
its own folder `train_dir/YYYYmmdd-HHMMSS_fc_.../`, so TensorBoard shows runs side by
side (`tensorboard --logdir=tf_logs`); checkpoints are saved there every 1,000
steps and at the end, for `restore_model.py` and for `--resume`. What the post
does not teach (checking the flags, run folders, resuming, clear messages) is
called from `tutorial_support` by name.
"""

import os
import time

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import tensorflow.compat.v1 as tf
from absl import flags

import data_helpers
import two_layer_fc
from tutorial_support import (
    batch_eval,
    checkpoints,
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
    training_stops,
)

# The posts' TensorFlow 1 way: first define a graph, then run it in a Session.
tf.disable_eager_execution()

# ---------------------------------------------------------------------------
# Model parameters as command-line flags
# ---------------------------------------------------------------------------
# (The post defines them on tf.flags' global FLAGS and reads them with the
# private FLAGS._parse_flags(), gone since; this script has flags of its own,
# parsed in main(), so a typo or a bad value gets a clear message.)
FLAGS = flags.FlagValues()
flags.DEFINE_float('learning_rate', 0.001, 'Learning rate of gradient descent.',
                   flag_values=FLAGS)
flags.DEFINE_integer('max_steps', 2000, 'Number of training steps.', flag_values=FLAGS)
flags.DEFINE_integer('hidden1', 120, 'Number of units in the hidden layer.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 400, 'Images per training batch.', flag_values=FLAGS)
flags.DEFINE_float('reg_constant', 0.1, 'Regularisation constant.', flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
# What the flag values must be; a resumed run's saved settings are checked too
FLAG_RULES = dict(positive=('learning_rate', 'max_steps', 'hidden1', 'batch_size'),
                  non_negative=('reg_constant', 'validation_size', 'seed'),
                  at_most={'hidden1': cli.MOST_HIDDEN_UNITS, 'seed': cli.LARGEST_SEED},
                  writable=('train_dir',))

MODEL = 'fc'
SUMMARY_EVERY = 100      # steps between printed accuracies and TensorBoard summaries
CHECKPOINT_EVERY = 1000  # steps between checkpoints


def placeholder_inputs():
    """Creates the placeholders that images and labels are fed into.

    (The post creates them inline; a function, as in TensorFlow's
    fully_connected_feed.py, keeps run_training the post's two sections.)

    Returns:
        images_placeholder: float32 [batch, 3072].
        labels_placeholder: int64 [batch].
    """
    images_placeholder = tf.placeholder(tf.float32, shape=[None, data_helpers.IMAGE_PIXELS],
                                        name='images')
    labels_placeholder = tf.placeholder(tf.int64, shape=[None], name='image-labels')
    return images_placeholder, labels_placeholder


def run_training(data, run_dir, resume_from=None):
    """Builds the graph from the model's four functions, trains it, tests it.

    Args:
        data: the dict from `data_helpers.load_data`.
        run_dir: the run folder for the summaries and checkpoints.
        resume_from: the checkpoint that --resume continues from, or None.
    """
    tf.reset_default_graph()  # a fresh graph each time main() runs
    # The post leaves its seeds commented out; here --seed is always set (see
    # main), so any run can be repeated exactly
    tf.set_random_seed(FLAGS.seed)
    # With --validation_size, held-out training images for the progress lines
    validation_set = (data.get('images_validation'), data.get('labels_validation'))

    # -----------------------------------------------------------------------
    # Prepare the TensorFlow graph
    # (only defining it here: no actual calculations take place yet)
    # -----------------------------------------------------------------------

    # Input placeholders: the images and labels are fed in at run time
    images_placeholder, labels_placeholder = placeholder_inputs()

    # Operation for the classifier's result (the post's IMAGE_PIXELS and
    # CLASSES constants are data_helpers.IMAGE_PIXELS and NUM_CLASSES here)
    logits = two_layer_fc.inference(images_placeholder, data_helpers.IMAGE_PIXELS,
                                    FLAGS.hidden1, data_helpers.NUM_CLASSES,
                                    reg_constant=FLAGS.reg_constant)

    # Operation for the loss function
    loss = two_layer_fc.loss(logits, labels_placeholder)

    # Operation for the training step; it also counts the steps in global_step
    train_step = two_layer_fc.training(loss, FLAGS.learning_rate)
    global_step = tf.train.get_global_step()

    # Operation calculating the accuracy of our predictions (and the
    # predictions and their probabilities, for the reports at the end)
    accuracy = two_layer_fc.evaluation(logits, labels_placeholder)
    predictions = tf.argmax(logits, 1)
    probabilities = tf.nn.softmax(logits)

    # Operation merging summary data for TensorBoard
    summary = tf.summary.merge_all()

    # The first layer's weights, drawn as pictures at the end of training, and
    # its output, the hidden representation of an image, for the Projector
    with tf.variable_scope('Layer1', reuse=True):
        layer1_weights = tf.get_variable('weights')
    hidden_layer = tf.get_default_graph().get_tensor_by_name('Layer1/Relu:0')

    # Define saver to save model state at checkpoints. It keeps every
    # checkpoint (the post's Saver() keeps the last 5), and records them by
    # relative path, so a run folder that is moved or copied restores its own.
    saver = tf.train.Saver(max_to_keep=None, save_relative_paths=True)
    # The post saves to train_dir/checkpoint-999, -1999 (numbered by the loop's
    # i); here each run keeps its own in run_dir/checkpoints/, numbered by the
    # global step: model.ckpt-1000 holds the model after 1,000 steps
    checkpoint_file = os.path.join(run_dir, run_dirs.CHECKPOINT_FOLDER, 'model.ckpt')
    resume_command = resume.resume_command('run_fc_model.py', FLAGS)

    # -----------------------------------------------------------------------
    # Run the TensorFlow graph
    # -----------------------------------------------------------------------

    # One inter-op thread: the graph is a chain of ops, so running ops side by
    # side gains nothing, and scheduling them cost about 15% of a step here;
    # each op still uses every core.
    with tf.Session(config=tf.ConfigProto(inter_op_parallelism_threads=1)) as sess:
        # Initialize variables (with --resume: restore them from the checkpoint)
        if resume_from:
            with checkpoints.checked_restore(resume_from):
                saver.restore(sess, resume_from)
        else:
            sess.run(tf.global_variables_initializer())
            # Step 0 kept too: the initial weights, for tf2/'s --init_from_tf1
            with training_stops.save_errors_explained(run_dir, resume_command):
                saver.save(sess, checkpoint_file, global_step=global_step)

        # Create summary-writers: one for the graph and the summaries, and one
        # each for the accuracy on the training and the validation set, in
        # sub-folders under one tag, so TensorBoard draws them in one chart.
        # They are closed however the block ends; Ctrl-C, SIGTERM or SIGHUP
        # in it lets the step in progress finish, then saves a checkpoint,
        # prints the command that resumes, and exits with 128 + the signal's
        # number (130 for Ctrl-C).
        with (tf.summary.FileWriter(run_dir, sess.graph) as summary_writer,
              tf.summary.FileWriter(os.path.join(run_dir, 'train')) as train_writer,
              tf.summary.FileWriter(os.path.join(run_dir, 'validation')) as validation_writer,
              training_stops.checkpoint_on_stop(saver, sess, checkpoint_file,
                                                resume_command)):
            # Not in the post: the run's model and flags, for TensorBoard's HParams tab
            summary_writer.add_summary(summaries.hparams(FLAGS, MODEL, run_dir))

            # Generate input data batches, from the step the run is at (0
            # unless resumed); the next batch is gathered while one trains.
            # (The post hands gen_batch a list of (image, label) tuples, which
            # NumPy 1.24 and later refuse to turn into an array; gen_batch
            # takes the two arrays and picks the same rows of each.)
            first_step = int(sess.run(global_step))
            batches = prefetch.prefetch(data_helpers.gen_batch(
                (data['images_train'], data['labels_train']), FLAGS.batch_size,
                FLAGS.max_steps, seed=FLAGS.seed, start_step=first_step))

            for step in range(first_step, FLAGS.max_steps):
                # Get next input data batch
                images_batch, labels_batch = next(batches)
                feed_dict = {images_placeholder: images_batch,
                             labels_placeholder: labels_batch}

                # Periodically print out the model's current accuracy, and
                # write the summaries for TensorBoard (one sess.run for both,
                # where the post makes two passes over the batch)
                if step % SUMMARY_EVERY == 0:
                    train_accuracy, summary_str = sess.run([accuracy, summary],
                                                           feed_dict=feed_dict)
                    summary_writer.add_summary(summary_str, step)
                    train_writer.add_summary(summaries.scalars(accuracy=train_accuracy), step)
                    if not FLAGS.validation_size:
                        print(f'Step {step:d}, training accuracy {train_accuracy:g}')
                    else:  # and the accuracy on held-out images, never trained on
                        validation_accuracy, _ = batch_eval.do_eval(
                            sess, accuracy, predictions, images_placeholder,
                            labels_placeholder, validation_set)
                        validation_writer.add_summary(
                            summaries.scalars(accuracy=validation_accuracy), step)
                        print(f'Step {step:d}, training accuracy {train_accuracy:g}, '
                              f'validation accuracy {validation_accuracy:g}')

                # Perform a single training step; a NaN or infinite loss (or
                # a stop signal meanwhile) stops the run here
                _, loss_value = sess.run([train_step, loss], feed_dict=feed_dict)
                training_stops.check_step(loss_value, step, run_dir)

                # Periodically save checkpoint, and after the last step, so
                # that restore_model.py finds the final weights whatever
                # max_steps is (a save that fails, on a full disk say, gets a
                # message naming the last good checkpoint)
                if (step + 1) % CHECKPOINT_EVERY == 0 or step + 1 == FLAGS.max_steps:
                    with training_stops.save_errors_explained(run_dir, resume_command):
                        saver.save(sess, checkpoint_file, global_step=global_step)
                    print('Saved checkpoint')

            # After finishing the training, evaluate on the test set. The post
            # feeds all 10,000 images in one sess.run; do_eval
            # (tutorial_support/batch_eval.py) runs, for each slice of 1,000,
            #     sess.run([accuracy, predictions], feed_dict={
            #         images_placeholder: images[start:start + 1000],
            #         labels_placeholder: labels[start:start + 1000]})
            # and weights each slice's accuracy by its size, so memory stays bounded
            test_accuracy, predicted = batch_eval.do_eval(
                sess, accuracy, predictions, images_placeholder, labels_placeholder,
                (data['images_test'], data['labels_test']))
            print(f'Test accuracy {test_accuracy:g}')
            # Not in the post: the test accuracy for TensorBoard too
            final_step = sess.run(global_step)
            summary_writer.add_summary(summaries.scalars(test_accuracy=test_accuracy),
                                       final_step)

            # What the model learned, for TensorBoard: the confusion matrix and
            # guesses, the first layer's weights, and where the hidden layer
            # places 1,000 test images
            hidden, test_probabilities, weights = sess.run(
                [hidden_layer, probabilities, layer1_weights],
                feed_dict={images_placeholder: data['images_test'][:projector.PROJECTOR_IMAGES]})
            confusion.report_test_set(data, predicted, summary_writer, final_step,
                                      os.path.basename(run_dir), test_probabilities)
            summaries.write_pictures(summary_writer, final_step,
                                     layer1_weights=pictures.layer1_weights_picture(weights))
            projector.write_projector(run_dir, hidden, data, predicted, 'hidden layer')


def main(argv):
    """Parses and checks the flags, loads the data, trains and tests the network.

    (The post runs at the top level of the script; entry_point.run_main at the
    bottom turns an error you can fix into a message instead of a traceback.)
    """
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    # With --resume: the newest two-layer run in train_dir and its last
    # checkpoint, whose saved settings become the flags; a new run otherwise
    run_dir, resume_from = resume.run_to_continue(FLAGS, MODEL, FLAG_RULES)
    if FLAGS.seed is None:  # a run always has a seed, printed and saved: it can be repeated
        FLAGS.seed = cli.random_seed()
    cli.print_parameters(FLAGS)

    # Load CIFAR-10 data
    data = data_helpers.load_data(FLAGS.data_dir, FLAGS.validation_size)
    cli.check_batch_size(FLAGS.batch_size, len(data['labels_train']))

    # Put logs for each run in a separate folder, train_dir/YYYYmmdd-HHMMSS_fc_...
    # (the post's name is the date and time alone; the model and the flags you
    # changed follow here), claimed while this process trains in it
    run_dir = run_dirs.prepare_run_dir(FLAGS, MODEL, data, run_dir)
    with run_lock.locked(run_dir):
        run_training(data, run_dir, resume_from)

    end_time = time.time()
    print(f'Total time: {end_time - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
