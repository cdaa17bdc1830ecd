"""Trains airbench94, the network and recipe of part 4, on CIFAR-10 (part 4, the runner).

    python run_deep_cnn_model.py               # airbench94: 9.9 epochs of 1,024 images a batch
    python run_deep_cnn_model.py --data_dir DIR --batch_size 128 --epochs 10   # a small set

The graph comes from the functions of `deep_cnn_model.py`, the images from
`deep_cnn_input.py`; every setting of airbench94's `hyp` is a flag here, with its
value as default, and each ingredient of the recipe a flag that switches it off
or tunes it. Each epoch goes through the training set once in shuffled
minibatches, each shifted anew and mirrored every other epoch; every 5 steps
Lookahead pulls the weights back toward their slow average. After every epoch
the cost and the accuracies are printed, and a checkpoint saved in the run's own
folder `train_dir/YYYYmmdd-HHMMSS_deep_cnn_.../`; what the posts do not teach is
called from `tutorial_support` by name.
"""

import math
import os
import time

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import numpy as np
import tensorflow.compat.v1 as tf
from absl import flags

import data_helpers
import deep_cnn_input
import deep_cnn_model
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

# The TensorFlow 1 way of the earlier parts: first define a graph, then run it in a Session.
tf.disable_eager_execution()

# ---------------------------------------------------------------------------
# Model parameters as command-line flags: airbench94's hyp, its values the defaults
# ---------------------------------------------------------------------------
FLAGS = flags.FlagValues()
flags.DEFINE_float('epochs', 9.9, 'Passes over the training set (a fraction ends the last '
                   'one early); the learning rate schedule stretches over them.',
                   flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 1024, 'Images per minibatch (the last smaller one of an '
                     'epoch is left out).', flag_values=FLAGS)
flags.DEFINE_float('learning_rate', 11.5, 'Learning rate per 1,024 images, as if momentum '
                   'did not enlarge the steps.', flag_values=FLAGS)
flags.DEFINE_float('momentum', 0.85, 'Nesterov momentum (0: plain SGD).', flag_values=FLAGS)
flags.DEFINE_float('weight_decay', 0.0153, 'Weight decay per 1,024 images (0: none).',
                   flag_values=FLAGS)
flags.DEFINE_float('bias_scaler', 64.0, "How many times faster batch norm's biases learn.",
                   flag_values=FLAGS)
flags.DEFINE_float('label_smoothing', 0.2, 'Share of the target spread over all classes '
                   '(0: one-hot labels).', flag_values=FLAGS)
flags.DEFINE_float('warmup', 0.23, 'Share of the steps over which the learning rate climbs '
                   'from 0.2 to 1 times its value (0: none).', flag_values=FLAGS)
flags.DEFINE_integer('whiten_bias_epochs', 3, "Epochs the whitening layer's bias trains "
                     'before it is frozen.', flag_values=FLAGS)
flags.DEFINE_enum('flip', 'alternating', ['alternating', 'random', 'none'],
                  'Mirroring of the training images: a random half once, then all every '
                  'other epoch; or each at random every time; or never.', flag_values=FLAGS)
flags.DEFINE_integer('translate', 2, 'Largest random shift of a training image, in pixels '
                     '(0: none).', flag_values=FLAGS)
flags.DEFINE_integer('block1_width', 64, 'Channels of the first block.', flag_values=FLAGS)
flags.DEFINE_integer('block2_width', 256, 'Channels of the second block.', flag_values=FLAGS)
flags.DEFINE_integer('block3_width', 256, 'Channels of the third block.', flag_values=FLAGS)
flags.DEFINE_float('batch_norm_momentum', deep_cnn_model.BATCH_NORM_MOMENTUM,
                   "Share of batch norm's running statistics kept at each step.",
                   flag_values=FLAGS)
flags.DEFINE_float('scaling_factor', deep_cnn_model.SCALING_FACTOR,
                   'The logits are multiplied by it.', flag_values=FLAGS)
flags.DEFINE_integer('tta_level', 2, 'Test-time views of each image: 0 the image, 1 and its '
                     'mirror image, 2 and both at two one-pixel shifts.', flag_values=FLAGS)
flags.DEFINE_boolean('whiten', True, 'First layer: frozen whitening filters from training '
                     'patches (--nowhiten: a trained convolution).', flag_values=FLAGS)
flags.DEFINE_boolean('dirac', True, 'Start each convolution as the identity on its inputs.',
                     flag_values=FLAGS)
flags.DEFINE_boolean('lookahead', True, 'Pull the weights toward their slow average every '
                     '5 steps.', flag_values=FLAGS)
flags.DEFINE_enum('activation', 'gelu', ['gelu', 'relu'], 'Activation function.',
                  flag_values=FLAGS)
flags.DEFINE_boolean('trainable_bn_scale', False, "Let batch norm learn a scale (airbench: "
                     'frozen at 1).', flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
# What the flag values must be; a resumed run's saved settings are checked too
WIDTHS = ('block1_width', 'block2_width', 'block3_width')
FLAG_RULES = dict(positive=('learning_rate', 'epochs', 'batch_size', 'scaling_factor') + WIDTHS,
                  non_negative=('validation_size', 'seed', 'weight_decay', 'translate',
                                'bias_scaler', 'whiten_bias_epochs', 'tta_level'),
                  rates=('momentum', 'label_smoothing', 'warmup', 'batch_norm_momentum'),
                  at_most={'seed': cli.LARGEST_SEED, 'tta_level': 2,
                           'translate': deep_cnn_input.MOST_TRANSLATE,
                           **dict.fromkeys(WIDTHS, cli.MOST_WIDTH)},
                  writable=('train_dir',))

MODEL = 'deep_cnn'
SUMMARY_EVERY = 100   # steps between TensorBoard summaries


def placeholder_inputs():
    """Creates the placeholders for images, labels and the training switch.

    Returns:
        images_placeholder: float32 [batch, 32, 32, 3].
        labels_placeholder: int64 [batch].
        training_placeholder: bool scalar, False unless fed: batch norm then
            uses its running statistics, as at test time. A training step
            feeds True.
    """
    size, channels = data_helpers.IMAGE_SIZE, data_helpers.CHANNELS
    images_placeholder = tf.placeholder(tf.float32, shape=[None, size, size, channels],
                                        name='images')
    labels_placeholder = tf.placeholder(tf.int64, shape=[None], name='image-labels')
    training_placeholder = tf.placeholder_with_default(False, shape=[], name='training')
    return images_placeholder, labels_placeholder, training_placeholder


def run_training(data, run_dir, resume_from=None):
    """Builds the graph, trains it for the given epochs, evaluates.

    Args:
        data: the dict from `load_data`, reshaped to NHWC and standardized.
        run_dir: the run folder for the summaries and checkpoints.
        resume_from: the checkpoint that --resume continues from, or None.
    """
    tf.reset_default_graph()  # a fresh graph each time main() runs
    tf.set_random_seed(FLAGS.seed)  # the same --seed, the same numbers (see main)
    train_set = (data['images_train'], data['labels_train'])
    # With --validation_size the progress lines use held-out training images;
    # otherwise, as in part 3, the test set.
    validation_set = (data.get('images_validation', data['images_test']),
                      data.get('labels_validation', data['labels_test']))
    steps_per_epoch = len(train_set[1]) // FLAGS.batch_size
    total_steps = math.ceil(steps_per_epoch * FLAGS.epochs)
    network = deep_cnn_model.network_settings(FLAGS.flag_values_dict())
    # The whitening filters, from the patches of the first 5,000 training images
    whitening = (deep_cnn_model.whitening_filters(train_set[0][:deep_cnn_model.WHITENING_IMAGES])
                 if FLAGS.whiten else None)
    # The alternating flip: a random half of the training images mirrored once
    if FLAGS.flip == 'alternating':
        deep_cnn_input.flip_half(train_set[0], FLAGS.seed)

    # Create the placeholders
    images_placeholder, labels_placeholder, training_placeholder = placeholder_inputs()
    # Forward propagation: build the network up to the logits
    logits = deep_cnn_model.inference(images_placeholder, training_placeholder,
                                      whitening=whitening, dirac=FLAGS.dirac, **network)
    # Cost function: the summed cross-entropy with smoothed labels
    cost = deep_cnn_model.loss(logits, labels_placeholder, FLAGS.label_smoothing)
    # Backpropagation: Nesterov momentum in airbench's units, counting the steps
    # in global_step; batch norm's running statistics are updated with it
    train_op, frozen_bias_train_op = deep_cnn_model.training(
        cost, total_steps, FLAGS.batch_size, FLAGS.learning_rate, FLAGS.momentum,
        FLAGS.weight_decay, FLAGS.bias_scaler, FLAGS.warmup)
    global_step = tf.train.get_global_step()
    # Lookahead's slow weights, and the ops that pull the weights toward them
    lookahead_op, lookahead_finish_op = deep_cnn_model.lookahead(total_steps)
    # Accuracy at test time: of one view (after each epoch, as airbench), and of
    # --tta_level's views (at the end); the predictions and their probabilities
    epoch_accuracy, epoch_logits = deep_cnn_model.evaluation(images_placeholder,
                                                             labels_placeholder, 0, **network)
    epoch_predictions = tf.argmax(epoch_logits, 1)
    accuracy, test_logits = deep_cnn_model.evaluation(images_placeholder, labels_placeholder,
                                                      FLAGS.tta_level, **network)
    predictions = tf.argmax(test_logits, 1)
    probabilities = tf.nn.softmax(test_logits)
    # All summaries for TensorBoard in one op
    summary = tf.summary.merge_all()
    # The whitening filters, drawn as pictures at the end of training, and the
    # features the last layer sees (one per channel of block 3), for the Projector
    with tf.variable_scope('deep_cnn/whiten', reuse=True):
        whitening_filters = tf.get_variable('filters')
    features = tf.get_default_graph().get_tensor_by_name('deep_cnn/fc/features:0')

    # Initialize all the variables
    init = tf.global_variables_initializer()
    # A saver that keeps every checkpoint, recorded by relative path
    saver = tf.train.Saver(max_to_keep=None, save_relative_paths=True)
    checkpoint_file = os.path.join(run_dir, run_dirs.CHECKPOINT_FOLDER, 'model.ckpt')
    resume_command = resume.resume_command('run_deep_cnn_model.py', FLAGS)

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
            first_epoch, first_batch = divmod(step, steps_per_epoch)

            # Do the training loop
            for epoch in range(first_epoch, math.ceil(FLAGS.epochs)):
                epoch_start = time.time()
                start_batch = first_batch if epoch == first_epoch else 0
                stop_batch = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
                minibatch_cost = right_answers = 0.0
                # A fresh shuffle of the training set, cut into minibatches
                # (the next one is gathered while the current one trains)
                minibatches = prefetch.prefetch(deep_cnn_input.epoch_batches(
                    train_set, FLAGS.batch_size, FLAGS.seed, epoch, start_batch, stop_batch))
                progress_bar = progress.ProgressBar(stop_batch - start_batch,
                                                    f'Epoch {epoch + 1}/{math.ceil(FLAGS.epochs)}')
                # airbench trains the whitening layer's bias for 3 epochs, then freezes it
                step_op = train_op if epoch < FLAGS.whiten_bias_epochs else frozen_bias_train_op

                for done, (minibatch_images, minibatch_labels) in enumerate(minibatches, 1):
                    # Data augmentation: the batch shifted at random, drawn
                    # from (seed, step), and mirrored in odd epochs
                    minibatch_images = deep_cnn_input.augment(
                        minibatch_images, FLAGS.seed, step, epoch, FLAGS.flip, FLAGS.translate)
                    # Run the session to execute the optimizer and the cost, in
                    # training mode (batch norm with the batch's statistics);
                    # every 100 steps also the summaries. A NaN or infinite cost
                    # (or a stop signal meanwhile) stops the run here.
                    feed_dict = {images_placeholder: minibatch_images,
                                 labels_placeholder: minibatch_labels,
                                 training_placeholder: True}
                    fetches = [step_op, cost, logits]
                    if step % SUMMARY_EVERY == 0:
                        fetches.append(summary)
                    _, temp_cost, batch_logits, *summary_str = sess.run(fetches, feed_dict)
                    # Lookahead: every 5 steps the weights are pulled toward their
                    # slow average; after the last step they are set to it
                    if FLAGS.lookahead and (step + 1) % deep_cnn_model.LOOKAHEAD_EVERY == 0:
                        sess.run(lookahead_op)
                    if FLAGS.lookahead and step + 1 == total_steps:
                        sess.run(lookahead_finish_op)
                    training_stops.check_step(temp_cost, step, run_dir)
                    if summary_str:
                        summary_writer.add_summary(summary_str[0], step)
                    temp_cost /= len(minibatch_labels)  # the mean per image
                    minibatch_cost += temp_cost / (stop_batch - start_batch)  # the epoch's mean
                    right_answers += np.sum(np.argmax(batch_logits, 1) == minibatch_labels)
                    step += 1
                    progress_bar.update(done, f'cost {temp_cost:.3f}')
                progress_bar.close()
                epoch_time = time.time() - epoch_start

                # The epoch's cost for TensorBoard (like every summary, at the
                # global step), and a checkpoint
                summary_writer.add_summary(summaries.scalars(cost=minibatch_cost), step)
                with training_stops.save_errors_explained(run_dir, resume_command):
                    saver.save(sess, checkpoint_file, global_step=global_step)

                # The cost and the accuracies after every epoch: of the epoch's
                # training batches (as trained on), and of the validation set
                train_accuracy = right_answers / ((stop_batch - start_batch) * FLAGS.batch_size)
                validation_accuracy, _ = batch_eval.do_eval(
                    sess, epoch_accuracy, epoch_predictions, images_placeholder,
                    labels_placeholder, validation_set)
                train_writer.add_summary(summaries.scalars(accuracy=train_accuracy), step)
                validation_writer.add_summary(
                    summaries.scalars(accuracy=validation_accuracy), step)
                print(f'Cost after epoch {epoch}: {minibatch_cost:f}, train accuracy: '
                      f'{train_accuracy:f}, validation accuracy: {validation_accuracy:f} '
                      f'({epoch_time:.1f}s)')

            # The accuracy on the test set, once, with --tta_level's views,
            # 1,000 images at a time
            test_accuracy, predicted = batch_eval.do_eval(
                sess, accuracy, predictions, images_placeholder, labels_placeholder,
                (data['images_test'], data['labels_test']))
            print(f'Test Accuracy: {test_accuracy:g}')
            summary_writer.add_summary(summaries.scalars(test_accuracy=test_accuracy), step)

            # What the model learned, for TensorBoard: the confusion matrix and
            # guesses, the whitening filters, and where the features place
            # 1,000 test images
            test_features, test_probabilities, filters = sess.run(
                [features, probabilities, whitening_filters],
                feed_dict={images_placeholder: data['images_test'][:projector.PROJECTOR_IMAGES]})
            # (the pictures show the test images as data_helpers gave them)
            shown = dict(data, images_test=deep_cnn_input.unstandardize(
                data['images_test'][:projector.PROJECTOR_IMAGES], data['mean_image']))
            confusion.report_test_set(shown, predicted, summary_writer, step,
                                      os.path.basename(run_dir), test_probabilities)
            summaries.write_pictures(summary_writer, step,
                                     whitening_filters=pictures.conv_filters_picture(filters))
            projector.write_projector(run_dir, test_features, shown, predicted,
                                      f'{test_features.shape[1]:,} features')


def main(argv):
    """Parses and checks the flags, loads the data, trains, evaluates."""
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    # With --resume: the newest deep CNN run in train_dir and its last
    # checkpoint, whose saved settings become the flags; a new run otherwise
    run_dir, resume_from = resume.run_to_continue(FLAGS, MODEL, FLAG_RULES)
    if FLAGS.seed is None:  # a run always has a seed, printed and saved: it can be repeated
        FLAGS.seed = cli.random_seed()
    cli.print_parameters(FLAGS)

    # Load CIFAR-10 as 32 x 32 x 3 images, standardized as airbench94 does
    data = data_helpers.reshape_data(
        data_helpers.load_data(FLAGS.data_dir, FLAGS.validation_size))
    for images in ('images_train', 'images_validation', 'images_test'):
        if images in data:
            deep_cnn_input.standardize(data[images], data['mean_image'])
    cli.check_batch_size(FLAGS.batch_size, len(data['labels_train']))

    # Each run logs to its own folder, claimed while this process trains in it
    run_dir = run_dirs.prepare_run_dir(FLAGS, MODEL, data, run_dir)
    with run_lock.locked(run_dir):
        run_training(data, run_dir, resume_from)

    print(f'Total time: {time.time() - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
