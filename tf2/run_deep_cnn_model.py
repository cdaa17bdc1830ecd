"""airbench94 in TensorFlow 2, the low-level way (part 4's twin, the runner).

    python tf2/run_deep_cnn_model.py             # airbench94: 9.9 epochs of 1,024 images a batch
    python tf2/run_deep_cnn_model.py --data_dir DIR --batch_size 128 --epochs 10   # a small set
    python tf2/run_deep_cnn_model.py --init_from_tf1 tf_logs/YYYYmmdd-HHMMSS_deep_cnn  # TF1's start
    python tf2/run_deep_cnn_model.py --resume    # the newest TF2 run of it, continued
    python tf2/run_deep_cnn_model.py --restore_tf1 tf_logs/YYYYmmdd-HHMMSS_deep_cnn   # tested

`run_deep_cnn_model.py` (the same flags and defaults, the same whitening filters,
batches, shifts and flips for the same --seed, run folders beside the TF1 runs) as
TensorFlow's guides write TF2 today, with its own low-level tools: the network of
`tf2/deep_cnn_module.py`, a `tf.Module` called on images; a `train_step` under
`tf.function` taking a step of three Keras `SGD` optimizers; `tf.data` for the
minibatches. The Keras way (`keras.Model`, `compile`, `fit`) is in the Keras files of
tf2/; docs/tf1_to_tf2.md maps each TF1 line to its TF2 line.

Its lesson is batch norm: the training step calls `model(images, training=True)`, which
updates the running statistics itself. TF1's training op had to be made to depend on
the update ops in `UPDATE_OPS`; here there is nothing to remember.
"""

import functools
import math
import os
import sys
import time

# Run from the project root (python tf2/run_deep_cnn_model.py): the project's own
# modules (data_helpers, deep_cnn_model, tutorial_support) are imported from there.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import numpy as np
import tensorflow as tf
from absl import flags

import data_helpers
import deep_cnn_input
import deep_cnn_model
from tf2 import deep_cnn_module
from tutorial_support import (
    batch_eval,
    cli,
    entry_point,
    pictures,
    progress,
    resume,
    run_dirs,
    run_lock,
    tf1_checkpoints,
    tf2_checkpoints,
    tf2_summaries,
    training_stops,
)

# Model parameters as command-line flags: those of run_deep_cnn_model.py (airbench94's
# hyp, its values the defaults), and --init_from_tf1 and --restore_tf1
FLAGS = flags.FlagValues()
flags.DEFINE_float('epochs', 9.9, 'Passes over the training set (a fraction ends the last '
                   'one early).', flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 1024, 'Images per minibatch.', flag_values=FLAGS)
flags.DEFINE_float('learning_rate', 11.5, 'Learning rate per 1,024 images.', flag_values=FLAGS)
flags.DEFINE_float('momentum', 0.85, 'Nesterov momentum (0: plain SGD).', flag_values=FLAGS)
flags.DEFINE_float('weight_decay', 0.0153, 'Weight decay per 1,024 images.', flag_values=FLAGS)
flags.DEFINE_float('bias_scaler', 64.0, "How many times faster batch norm's biases learn.",
                   flag_values=FLAGS)
flags.DEFINE_float('label_smoothing', 0.2, 'Share of the target spread over all classes.',
                   flag_values=FLAGS)
flags.DEFINE_float('warmup', 0.23, 'Share of the steps of the rising learning rate.',
                   flag_values=FLAGS)
flags.DEFINE_integer('whiten_bias_epochs', 3, "Epochs before the whitening bias is frozen.",
                     flag_values=FLAGS)
flags.DEFINE_enum('flip', 'alternating', ['alternating', 'random', 'none'],
                  'Mirroring of the training images.', flag_values=FLAGS)
flags.DEFINE_integer('translate', 2, 'Largest random shift, in pixels.', flag_values=FLAGS)
for number, width in enumerate(deep_cnn_model.WIDTHS, 1):
    flags.DEFINE_integer(f'block{number}_width', width, f'Channels of block {number}.',
                         flag_values=FLAGS)
flags.DEFINE_float('batch_norm_momentum', deep_cnn_model.BATCH_NORM_MOMENTUM,
                   "Share of batch norm's running statistics kept at each step.",
                   flag_values=FLAGS)
flags.DEFINE_float('scaling_factor', deep_cnn_model.SCALING_FACTOR, "The logits' scale.",
                   flag_values=FLAGS)
flags.DEFINE_integer('tta_level', 2, 'Test-time views: 0, 1 or 2 (six).', flag_values=FLAGS)
flags.DEFINE_boolean('whiten', True, 'Frozen whitening filters first.', flag_values=FLAGS)
flags.DEFINE_boolean('dirac', True, 'Convolutions start as identities.', flag_values=FLAGS)
flags.DEFINE_boolean('lookahead', True, 'Lookahead every 5 steps.', flag_values=FLAGS)
flags.DEFINE_enum('activation', 'gelu', ['gelu', 'relu'], 'Activation.', flag_values=FLAGS)
flags.DEFINE_boolean('trainable_bn_scale', False, 'Batch norm learns a scale.',
                     flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
cli.define_tf1_run_flags(FLAGS, 'run_deep_cnn_model.py')  # init_from_tf1, restore_tf1
WIDTHS = ('block1_width', 'block2_width', 'block3_width')
FLAG_RULES = dict(positive=('learning_rate', 'epochs', 'batch_size', 'scaling_factor') + WIDTHS,
                  non_negative=('validation_size', 'seed', 'weight_decay', 'translate',
                                'bias_scaler', 'whiten_bias_epochs', 'tta_level'),
                  rates=('momentum', 'label_smoothing', 'warmup', 'batch_norm_momentum'),
                  at_most={'seed': cli.LARGEST_SEED, 'tta_level': 2,
                           'translate': deep_cnn_input.MOST_TRANSLATE,
                           **dict.fromkeys(WIDTHS, cli.MOST_WIDTH)},
                  writable=('train_dir',))

MODEL, SCRIPT = 'deep_cnn', 'run_deep_cnn_model.py'
RUN_NAME = 'tf2_deep_cnn'  # the run folders' names and params.json say which runs are TF2 ones
SUMMARY_EVERY = 100   # steps between TensorBoard summaries
# What tf.data hands the training step: a minibatch of images and their labels
BATCH_SIGNATURE = (tf.TensorSpec([None, 32, 32, 3], tf.float32), tf.TensorSpec([None], tf.int64))


def augmented_batches(train_set, epoch, start_batch, stop_batch):
    """An epoch's minibatches, shifted and mirrored: the TF1 runner's for the same --seed."""
    first_step = epoch * (len(train_set[1]) // FLAGS.batch_size) + start_batch
    for step, (images, labels) in enumerate(deep_cnn_input.epoch_batches(
            train_set, FLAGS.batch_size, FLAGS.seed, epoch, start_batch, stop_batch), first_step):
        yield (deep_cnn_input.augment(images, FLAGS.seed, step, epoch, FLAGS.flip,
                                      FLAGS.translate), labels)


def run_training(data, run_dir, resume_from=None, initial_weights=None):
    """Creates the network, trains it for the given epochs, evaluates; from `resume_from`
    (--resume) or `initial_weights` (--init_from_tf1)."""
    train_set = (data['images_train'], data['labels_train'])
    # With --validation_size the progress lines use held-out images; otherwise the test set
    validation_set = (data.get('images_validation', data['images_test']),
                      data.get('labels_validation', data['labels_test']))
    steps_per_epoch = len(train_set[1]) // FLAGS.batch_size
    total_steps = math.ceil(steps_per_epoch * FLAGS.epochs)
    # The whitening filters, from the patches of the first 5,000 training images (NumPy)
    whitening = (deep_cnn_model.whitening_filters(train_set[0][:deep_cnn_model.WHITENING_IMAGES])
                 if FLAGS.whiten else None)
    if FLAGS.flip == 'alternating':  # a random half of the training images mirrored once
        deep_cnn_input.flip_half(train_set[0], FLAGS.seed)

    # The network, its variables initialised at once (TF1: inference(), the initializer)
    model = deep_cnn_module.DeepCNN(**deep_cnn_model.network_settings(FLAGS.flag_values_dict()),
                                    whitening=whitening, dirac=FLAGS.dirac,
                                    tta_level=FLAGS.tta_level, seed=FLAGS.seed)
    if initial_weights:  # --init_from_tf1: the TF1 run's first weights, by name
        tf1_checkpoints.load_by_name(model, initial_weights, FLAGS, MODEL)
    # Nesterov SGD in airbench's units, a Keras SGD for each group of variables
    groups = deep_cnn_module.training(model, total_steps, FLAGS.batch_size, FLAGS.learning_rate,
                                      FLAGS.momentum, FLAGS.weight_decay, FLAGS.bias_scaler,
                                      FLAGS.warmup)
    step_counter = groups['weights'][1].iterations  # TF1: global_step
    # Lookahead's slow copy of the network, and the pull toward it
    lookahead = deep_cnn_module.Lookahead(model, total_steps)

    # One training step, compiled by tf.function into a graph (TF1: sess.run of train_op,
    # or of frozen_bias_train_op, with the training placeholder fed True)
    @tf.function
    def train_step(images, labels, train_whitening_bias):
        with tf.GradientTape() as tape:
            # training=True: batch norm normalises with the batch's statistics and updates
            # its running ones, in this call (TF1: UPDATE_OPS, made part of the train op)
            logits = model(images, training=True)
            cost = deep_cnn_module.loss(logits, labels, FLAGS.label_smoothing)
        gradients = tape.gradient(cost, model.trainable_variables)
        deep_cnn_module.apply_gradients(
            groups, {variable.ref(): gradient for variable, gradient
                     in zip(model.trainable_variables, gradients, strict=True)},
            train_whitening_bias)
        return cost, logits

    # Checkpoints of the network, the optimizers and the slow weights, by object (TF1: Saver)
    checkpoint = tf.train.Checkpoint(model=model, lookahead=lookahead, optimizers={
        group: optimizer for group, (_, optimizer, _, _) in groups.items()})
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(run_dir, run_dirs.TF2_CHECKPOINT_FOLDER), max_to_keep=None)
    resume_command = resume.resume_command('tf2/run_deep_cnn_model.py', FLAGS)
    if resume_from:
        with tf2_checkpoints.checked_restore(resume_from, groups['weights'][1],
                                             groups['weights'][0]):
            checkpoint.restore(resume_from).assert_existing_objects_matched()
    else:  # step 0 kept too, as the TF1 runner keeps it: the initial weights
        with training_stops.save_errors_explained(run_dir, resume_command):
            manager.save(checkpoint_number=0)

    # Summary writers: the run's own, and one each for the training and validation accuracy
    writers = tf2_summaries.RunWriters(run_dir)
    with writers.run.as_default():  # the training step's graph, and the hyper-parameters
        tf.summary.graph(train_step.get_concrete_function(*BATCH_SIGNATURE, True).graph)
    tf2_summaries.write_hparams(writers.run, FLAGS, RUN_NAME, run_dir)

    # A resumed run starts mid-epoch, where the interrupted one stopped
    step = int(step_counter)
    first_epoch, first_batch = divmod(step, steps_per_epoch)

    # Do the training loop. Ctrl-C, SIGTERM or SIGHUP lets the step in progress finish,
    # saves a checkpoint of it, prints the command that resumes, exits 128 + n.
    with training_stops.manager_checkpoint_on_stop(manager, step_counter, resume_command):
        for epoch in range(first_epoch, math.ceil(FLAGS.epochs)):
            epoch_start = time.time()
            start_batch = first_batch if epoch == first_epoch else 0
            stop_batch = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
            minibatch_cost = right_answers = 0.0
            # A fresh shuffle, cut into minibatches, each shifted and mirrored as the TF1
            # runner's (deep_cnn_input, in NumPy): tf.data makes the next while one trains
            minibatches = tf.data.Dataset.from_generator(
                functools.partial(augmented_batches, train_set, epoch, start_batch, stop_batch),
                output_signature=BATCH_SIGNATURE).prefetch(tf.data.AUTOTUNE)
            progress_bar = progress.ProgressBar(stop_batch - start_batch,
                                                f'Epoch {epoch + 1}/{math.ceil(FLAGS.epochs)}')

            for done, (minibatch_images, minibatch_labels) in enumerate(minibatches, 1):
                # The training step; the whitening bias trains for the first 3 epochs
                temp_cost, logits = train_step(minibatch_images, minibatch_labels,
                                               epoch < FLAGS.whiten_bias_epochs)
                # Lookahead: every 5 steps the weights are pulled toward their slow
                # copy; after the last step they are set to it
                if FLAGS.lookahead and (step + 1) % deep_cnn_model.LOOKAHEAD_EVERY == 0:
                    lookahead.pull(model, step_counter)
                if FLAGS.lookahead and step + 1 == total_steps:
                    lookahead.finish(model)
                training_stops.check_step(float(temp_cost), step, run_dir)
                if step % SUMMARY_EVERY == 0:  # the step's loss and rate (TF1: merge_all's op)
                    tf2_summaries.write_scalars(
                        writers.run, step, **{'Loss/loss': temp_cost / len(minibatch_labels)},
                        learning_rate=FLAGS.learning_rate * deep_cnn_model.learning_rate_schedule(
                            step, total_steps, FLAGS.warmup))
                temp_cost = float(temp_cost) / len(minibatch_labels)  # the mean per image
                minibatch_cost += temp_cost / (stop_batch - start_batch)  # the epoch's mean
                right_answers += int(np.sum(np.argmax(logits, 1) == minibatch_labels))
                step += 1
                progress_bar.update(done, f'cost {temp_cost:.3f}')
            progress_bar.close()
            epoch_time = time.time() - epoch_start

            # The epoch's cost for TensorBoard, and a checkpoint
            tf2_summaries.write_scalars(writers.run, step, cost=minibatch_cost)
            with training_stops.save_errors_explained(run_dir, resume_command):
                manager.save(checkpoint_number=step_counter)

            # The cost and the accuracies: of the epoch's training batches, and of the
            # validation set with one view (as airbench)
            train_accuracy = right_answers / ((stop_batch - start_batch) * FLAGS.batch_size)
            validation_accuracy, _ = batch_eval.predict_in_batches(
                functools.partial(model.predictions, tta_level=0), validation_set)
            writers.accuracies(step, train=train_accuracy, validation=validation_accuracy)
            print(f'Cost after epoch {epoch}: {minibatch_cost:f}, train accuracy: '
                  f'{train_accuracy:f}, validation accuracy: {validation_accuracy:f} '
                  f'({epoch_time:.1f}s)')

    # The accuracy on the test set, once, with --tta_level's views, 1,000 images at a time
    test_accuracy, predicted = batch_eval.predict_in_batches(
        model.predictions, (data['images_test'], data['labels_test']))
    print(f'Test Accuracy: {test_accuracy:g}')
    tf2_summaries.write_scalars(writers.run, step, test_accuracy=test_accuracy)
    # What the model learned, for TensorBoard: the confusion matrix and guesses (the
    # images as data_helpers gave them), the whitening filters, and the Projector
    tf2_summaries.write_what_was_learned(
        writers.run, run_dir, step, dict(data, images_test=deep_cnn_input.unstandardize(
            data['images_test'], data['mean_image'])), predicted,
        functools.partial(model.test_logits, tta_level=FLAGS.tta_level), model.features,
        f'{model.fc_weights.shape[0]:,} features', model_images=data['images_test'],
        whitening_filters=pictures.conv_filters_picture(model.whiten_filters.numpy()))
    writers.close()


def load_data(data_dir, validation_size):
    """CIFAR-10 as 32 x 32 x 3 images, standardized as airbench94 does (as the TF1 runner)."""
    data = data_helpers.reshape_data(data_helpers.load_data(data_dir, validation_size))
    for images in ('images_train', 'images_validation', 'images_test'):
        if images in data:
            deep_cnn_input.standardize(data[images], data['mean_image'])
    return data


def main(argv):
    """Parses and checks the flags; trains and evaluates, or tests a TF1 run's network."""
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    if FLAGS.restore_tf1:  # instead of training: a TF1 run's checkpoint, read by name, tested
        # The network as that run built it, tested with its views unless --tta_level is given
        _, run_params = tf1_checkpoints.checkpoint_of_run(FLAGS.restore_tf1, MODEL, SCRIPT)
        model = deep_cnn_module.DeepCNN(
            **deep_cnn_model.network_settings(run_params), tta_level=FLAGS.tta_level
            if FLAGS['tta_level'].present else run_params.get('tta_level', 2))
        tf1_checkpoints.restore_and_test(model, FLAGS, MODEL, SCRIPT, load_data)
    else:
        # --resume: the newest TF2 deep CNN run's last checkpoint; its settings become the flags
        run_dir, resume_from = resume.run_to_continue(FLAGS, RUN_NAME, FLAG_RULES)
        # --init_from_tf1: that TF1 run's step 0, and its --seed unless given (its batches)
        initial_weights = tf1_checkpoints.initial_checkpoint(FLAGS, MODEL, SCRIPT)
        if FLAGS.seed is None:  # a run always has a seed, printed and saved: it can be repeated
            FLAGS.seed = cli.random_seed()
        cli.print_parameters(FLAGS)
        data = load_data(FLAGS.data_dir, FLAGS.validation_size)
        cli.check_batch_size(FLAGS.batch_size, len(data['labels_train']))
        # The run's own folder, train_dir/YYYYmmdd-HHMMSS_tf2_deep_cnn_..., claimed meanwhile
        run_dir = run_dirs.prepare_run_dir(FLAGS, RUN_NAME, data, run_dir)
        with run_lock.locked(run_dir):
            run_training(data, run_dir, resume_from, initial_weights)

    print(f'Total time: {time.time() - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
