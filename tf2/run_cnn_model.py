"""The small convolutional network, written the TensorFlow 2 way (part 3's twin).

    python tf2/run_cnn_model.py --epochs 51 --batch_size 128
    python tf2/run_cnn_model.py --resume   # the newest TF2 run of it, continued
    python tf2/run_cnn_model.py --restore_tf1 tf_logs/YYYYmmdd-HHMMSS_cnn   # a TF1 run, tested

The network, flags, data, minibatches and dropout masks of `run_cnn_model.py`
with `cnn_model.py`, in today's TensorFlow: the model is a `tf.Module`
holding its `tf.Variable`s, its four functions are its methods, a
`tf.GradientTape` gives the gradients and `tf.function` compiles the training
step into a graph; dropout is an argument of the training step, not a
placeholder. Each run logs to `train_dir/YYYYmmdd-HHMMSS_tf2_cnn_.../`, beside
the TF1 runs, its TF2 checkpoints in its `tf2_checkpoints/`, for --resume.
docs/tf1_to_tf2.md puts each TF1 line beside its TF2 line.
"""

import os
import sys
import time

# Run from the project root (python tf2/run_cnn_model.py): the project's own
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
    progress,
    projector,
    resume,
    run_dirs,
    run_lock,
    summaries,
    tf1_adam,
    tf1_checkpoints,
    tf2_checkpoints,
    tf2_summaries,
    training_stops,
)

# TensorFlow 2 runs each operation as it is called (eager execution): there is
# no tf.disable_eager_execution() here, and no Session.

# ---------------------------------------------------------------------------
# Model parameters as command-line flags: those of run_cnn_model.py, and
# --restore_tf1
# ---------------------------------------------------------------------------
FLAGS = flags.FlagValues()
flags.DEFINE_float('learning_rate', 0.001, 'Learning rate of Adam.', flag_values=FLAGS)
flags.DEFINE_integer('epochs', 51, 'Number of passes over the training set.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 128, 'Images per minibatch.', flag_values=FLAGS)
flags.DEFINE_float('dropout_rate', 0.3, 'Fraction of activations dropped in training.',
                   flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
flags.DEFINE_string('restore_tf1', None, 'Instead of training: load the newest checkpoint of '
                    'this TF1 run folder (of run_cnn_model.py) by variable name and test it.',
                    flag_values=FLAGS)
FLAG_RULES = dict(positive=('learning_rate', 'epochs', 'batch_size'),
                  non_negative=('validation_size', 'seed'), rates=('dropout_rate',),
                  at_most={'seed': cli.LARGEST_SEED}, writable=('train_dir',))

MODEL = 'cnn'
RUN_NAME = 'tf2_cnn'  # the run folders' names and params.json say which runs are TF2 ones
PRINT_EVERY = 10      # epochs between the published progress lines
SUMMARY_EVERY = 100   # steps between TensorBoard summaries
FEATURES = 8 * 8 * 64  # what the second stage leaves of a 32 x 32 image


def glorot_uniform(random, shape):
    """Glorot (Xavier) initial values: uniform in +-sqrt(6 / (fan-in + fan-out)).

    TF1's tf.glorot_uniform_initializer(), written out: it keeps the scale of
    the activations about the same from layer to layer.
    """
    receptive_field = int(np.prod(shape[:-2]))  # a filter's height x width; 1 for a matrix
    fan_in, fan_out = shape[-2] * receptive_field, shape[-1] * receptive_field
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return random.uniform(shape, -limit, limit)


def conv_stage(inputs, filters, dropout_rate=None, dropout_seed=None):
    """One stage of the network: convolution, ReLU, max-pooling, and dropout in training.

    Args:
        inputs: float32 [batch, height, width, channels].
        filters: the stage's filters [height, width, channels in, channels out].
        dropout_rate: the fraction of activations dropped; None (evaluation): none.
        dropout_seed: int64 [2], the seed of this stage's dropout mask.

    Returns:
        float32 [batch, height / 2, width / 2, channels out].
    """
    # The filters, slid over the image one pixel at a time
    conv = tf.nn.conv2d(inputs, filters, strides=[1, 1, 1, 1], padding='SAME')
    # The largest ReLU output of each 3 x 3 window, windows 2 pixels apart:
    # half the height and width.
    pool = tf.nn.max_pool2d(tf.nn.relu(conv), ksize=3, strides=2, padding='SAME')
    # Dropout, in training only (TF1: a rate placeholder that is 0 unless
    # fed): a random fraction of the activations is set to 0, the rest scaled
    # up. The same stateless op and seeds as TF1's give the same masks.
    if dropout_rate is None:
        return pool
    return tf.nn.experimental.stateless_dropout(pool, rate=dropout_rate, seed=dropout_seed)


class CNN(tf.Module):
    """The network of cnn_model.py: its variables, and its four functions as methods."""

    def __init__(self, classes=10, seed=0):
        super().__init__()
        # One seeded random generator draws the initial weights (TF1: the
        # graph's seed, tf.set_random_seed, and each initializer's draw)
        random = tf.random.Generator.from_seed(seed)
        # The variables carry the TF1 names (conv1/filters), so that a TF1
        # checkpoint fills them by name
        with tf.name_scope('conv1'):
            # 64 filters of 4 x 4 over the 3 colour channels: 32 x 32 x 3 -> 16 x 16 x 64
            self.conv1_filters = tf.Variable(glorot_uniform(random, [4, 4, 3, 64]),
                                             name='filters')
        with tf.name_scope('conv2'):
            # 64 filters of 2 x 2 over the 64 channels of stage 1: -> 8 x 8 x 64
            self.conv2_filters = tf.Variable(glorot_uniform(random, [2, 2, 64, 64]),
                                             name='filters')
        with tf.name_scope('fc'):
            self.fc_weights = tf.Variable(glorot_uniform(random, [FEATURES, classes]),
                                          name='weights')
            self.fc_biases = tf.Variable(tf.zeros([classes]), name='biases')

    def inference(self, images, dropout_rate=None, dropout_seeds=None):
        """The network up to the logits.

        Args:
            images: float32 [batch, 32, 32, 3].
            dropout_rate: the fraction of activations dropped in training;
                None for evaluation.
            dropout_seeds: int64 [2, 2], the seed of each dropout layer's mask.

        Returns:
            logits: float32 [batch, classes].
        """
        features = self.features(images, dropout_rate, dropout_seeds)
        with tf.name_scope('fc'):
            logits = tf.matmul(features, self.fc_weights) + self.fc_biases
            # Written when a summary writer is the default (TF1: for merge_all)
            tf.summary.histogram('logits', logits)
        return logits

    def features(self, images, dropout_rate=None, dropout_seeds=None):
        """The two stages, flattened: the 4,096 features the last layer sees."""
        conv1_seed, conv2_seed = (None, None) if dropout_seeds is None else tf.unstack(
            dropout_seeds)
        with tf.name_scope('conv1'):
            stage1 = conv_stage(images, self.conv1_filters, dropout_rate, conv1_seed)
        with tf.name_scope('conv2'):
            stage2 = conv_stage(stage1, self.conv2_filters, dropout_rate, conv2_seed)
        return tf.reshape(stage2, [-1, FEATURES])

    def loss(self, logits, labels):
        """The mean softmax cross-entropy, with a `loss` summary."""
        with tf.name_scope('Loss'):
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(logits=logits, labels=labels))
            tf.summary.scalar('loss', loss)
        return loss

    def training(self, images, labels, optimizer, dropout_rate, dropout_seeds):
        """One Adam step on a minibatch, with dropout; returns the cost before it.

        The optimizer counts the steps in optimizer.iterations (TF1: global_step).
        """
        # The tape records the forward pass, to differentiate the cost
        with tf.GradientTape() as tape:
            cost = self.loss(self.inference(images, dropout_rate, dropout_seeds), labels)
        gradients = tape.gradient(cost, self.trainable_variables)
        optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        return cost

    def evaluation(self, logits, labels):
        """The accuracy of a batch, with a `train_accuracy` summary."""
        with tf.name_scope('Accuracy'):
            correct_prediction = tf.equal(tf.argmax(logits, 1), labels)
            accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
            tf.summary.scalar('train_accuracy', accuracy)
        return accuracy

    @tf.function(reduce_retracing=True)
    def predictions(self, images):
        """The predicted class of each image, without dropout, as a graph."""
        return tf.argmax(self.inference(images), 1)


def make_optimizer(learning_rate):
    """The optimizer of training(): Adam, as cnn_model.training() creates it.

    A TF2 optimizer keeps its state (Adam's moving averages, the step count in
    `iterations`) between steps, so it is made once and passed to training().
    Today's TF2 code would take tf.keras.optimizers.Adam(learning_rate,
    epsilon=1e-8) (TF1's epsilon; Keras's default is 1e-7); its numbers drift
    from TF1's in the last bits, so this twin takes TF1's own Adam formula,
    written in TF2 operations (see tutorial_support/tf1_adam.py).
    """
    return tf1_adam.Adam(learning_rate)


def dropout_seeds(step):
    """The seeds of the two dropout masks at a training step, as run_cnn_model.py draws them.

    (seed, 2 x step) and (seed, 2 x step + 1): new masks at every step.
    """
    return tf.constant([[FLAGS.seed, 2 * step], [FLAGS.seed, 2 * step + 1]], tf.int64)


def run_training(data, run_dir, resume_from=None):
    """Creates the network, trains it for the given epochs, evaluates (the notebook's model()).

    Args:
        data: the dict from `load_data`, reshaped to NHWC.
        run_dir: the run folder for the summaries and checkpoints.
        resume_from: the TF2 checkpoint that --resume continues from, or None.
    """
    train_set = (data['images_train'], data['labels_train'])
    # With --validation_size the progress lines use held-out training images;
    # otherwise, as published, the test set.
    validation_set = (data.get('images_validation', data['images_test']),
                      data.get('labels_validation', data['labels_test']))

    # The network, its variables initialised at once (TF1: placeholders,
    # inference() and the initializer run in the session)
    model = CNN(data_helpers.NUM_CLASSES, seed=FLAGS.seed)
    # Adam, counting the steps in optimizer.iterations (TF1: global_step)
    optimizer = make_optimizer(FLAGS.learning_rate)
    # The dropout rate as a tensor, as TF1 feeds it (TensorFlow's dropout
    # scales a Python number's way and a tensor's way in the last bit apart)
    dropout_rate = tf.constant(FLAGS.dropout_rate, tf.float32)

    # One training step with dropout, compiled by tf.function into a graph
    # (TF1: sess.run([train_op, cost]) with the dropout rate and seeds fed)
    @tf.function
    def train_step(images, labels, seeds):
        return model.training(images, labels, optimizer, dropout_rate, seeds)

    # Checkpoints of the network and Adam's state, by object (TF1: Saver),
    # in the run folder's tf2_checkpoints/; with --resume, restored from one
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(run_dir, run_dirs.TF2_CHECKPOINT_FOLDER), max_to_keep=None)
    resume_command = resume.resume_command('tf2/run_cnn_model.py', FLAGS)
    if resume_from:
        with tf2_checkpoints.checked_restore(resume_from, optimizer, model.trainable_variables):
            checkpoint.restore(resume_from).assert_existing_objects_matched()

    # The summary writers: the run's own, and the training and validation
    # accuracy, each in a sub-folder under one tag
    summary_writer = tf.summary.create_file_writer(run_dir)
    train_writer = tf.summary.create_file_writer(os.path.join(run_dir, 'train'))
    validation_writer = tf.summary.create_file_writer(os.path.join(run_dir, 'validation'))
    # The graph of the training step, for TensorBoard's Graphs tab (traced
    # with no writer the default, so that it writes no summaries)
    size, channels = data_helpers.IMAGE_SIZE, data_helpers.CHANNELS
    graph = train_step.get_concrete_function(
        tf.TensorSpec([FLAGS.batch_size, size, size, channels], tf.float32),
        tf.TensorSpec([FLAGS.batch_size], tf.int64), tf.TensorSpec([2, 2], tf.int64)).graph
    with summary_writer.as_default():
        tf.summary.graph(graph)
    tf2_summaries.ProtoWriter(summary_writer).add_summary(
        summaries.hparams(FLAGS, RUN_NAME, run_dir))

    # A resumed run starts mid-epoch, where the interrupted one stopped
    step = int(optimizer.iterations)
    num_batches = data_helpers.batches_per_epoch(len(train_set[1]), FLAGS.batch_size)
    first_epoch, first_batch = divmod(step, num_batches)

    # Do the training loop. Ctrl-C, SIGTERM or SIGHUP in it lets the step in
    # progress finish, then saves a checkpoint of it, prints the command that
    # resumes, and exits with 128 + the signal's number (130 for Ctrl-C).
    with training_stops.manager_checkpoint_on_stop(manager, optimizer.iterations,
                                                   resume_command):
        for epoch in range(first_epoch, FLAGS.epochs):
            epoch_start = time.time()
            start_batch = first_batch if epoch == first_epoch else 0
            minibatch_cost = 0.0
            num_minibatches = num_batches - start_batch
            # A fresh shuffle of the training set, cut into minibatches: those
            # of run_cnn_model.py for the same --seed
            minibatches = prefetch.prefetch(data_helpers.gen_epoch(
                train_set, FLAGS.batch_size, seed=FLAGS.seed, epoch=epoch,
                start_batch=start_batch))
            progress_bar = progress.ProgressBar(num_minibatches,
                                                f'Epoch {epoch + 1}/{FLAGS.epochs}')

            for done, (minibatch_images, minibatch_labels) in enumerate(minibatches, 1):
                # Every 100 steps, the summaries of the minibatch as the model
                # sees it at test time (no dropout): the model's summary ops
                # write whenever a writer is the default (TF1: merge_all's op)
                if step % SUMMARY_EVERY == 0:
                    with summary_writer.as_default(step=step):
                        logits = model.inference(minibatch_images)
                        model.loss(logits, minibatch_labels)
                        model.evaluation(logits, minibatch_labels)

                # The training step, with dropout on; a NaN or infinite cost (or
                # a stop signal meanwhile) stops the run here
                temp_cost = train_step(minibatch_images, minibatch_labels, dropout_seeds(step))
                training_stops.check_step(float(temp_cost), step, run_dir)
                minibatch_cost += float(temp_cost) / num_minibatches  # the epoch's mean
                step += 1
                progress_bar.update(done, f'cost {temp_cost:.3f}')
            progress_bar.close(f'Epoch {epoch + 1}/{FLAGS.epochs}: '
                               f'{time.time() - epoch_start:.1f}s, cost {minibatch_cost:.4f}')

            # The epoch's cost for TensorBoard, and a checkpoint
            with summary_writer.as_default(step=step):
                tf.summary.scalar('cost', minibatch_cost)
            with training_stops.save_errors_explained(run_dir, resume_command):
                manager.save(checkpoint_number=optimizer.iterations)

            # Print the cost and the accuracies every 10 epochs
            if epoch % PRINT_EVERY == 0:
                train_accuracy, _ = batch_eval.predict_in_batches(model.predictions, train_set)
                validation_accuracy, _ = batch_eval.predict_in_batches(model.predictions,
                                                                       validation_set)
                with train_writer.as_default(step=step):
                    tf.summary.scalar('accuracy', train_accuracy)
                with validation_writer.as_default(step=step):
                    tf.summary.scalar('accuracy', validation_accuracy)
                print(f'Cost after epoch {epoch}: {minibatch_cost:f}, train accuracy: '
                      f'{train_accuracy:f}, validation accuracy: {validation_accuracy:f}')

    # The accuracy on the training set and, once, the test set, 1,000 images
    # at a time
    train_accuracy, _ = batch_eval.predict_in_batches(model.predictions, train_set)
    test_accuracy, predicted = batch_eval.predict_in_batches(
        model.predictions, (data['images_test'], data['labels_test']))
    print(f'Train Accuracy: {train_accuracy:g}')
    print(f'Test Accuracy: {test_accuracy:g}')
    # The final values for TensorBoard (without --validation_size the
    # published "validation" set is the test set)
    if FLAGS.validation_size:
        validation_accuracy, _ = batch_eval.predict_in_batches(model.predictions,
                                                               validation_set)
    else:
        validation_accuracy = test_accuracy
    with train_writer.as_default(step=step):
        tf.summary.scalar('accuracy', train_accuracy)
    with validation_writer.as_default(step=step):
        tf.summary.scalar('accuracy', validation_accuracy)
    with summary_writer.as_default(step=step):
        tf.summary.scalar('test_accuracy', test_accuracy)

    # What the model learned, for TensorBoard: the confusion matrix and
    # guesses, the first layer's filters, and where the 4,096 features place
    # 1,000 test images
    projector_images = data['images_test'][:projector.PROJECTOR_IMAGES]
    writer = tf2_summaries.ProtoWriter(summary_writer)
    confusion.report_test_set(data, predicted, writer, step, os.path.basename(run_dir),
                              tf.nn.softmax(model.inference(projector_images)).numpy())
    summaries.write_pictures(
        writer, step, conv1_filters=pictures.conv_filters_picture(model.conv1_filters.numpy()))
    projector.write_projector(run_dir, model.features(projector_images).numpy(), data,
                              predicted, '4,096 features')
    for each_writer in (summary_writer, train_writer, validation_writer):
        each_writer.close()


def restore_tf1_and_test():
    """--restore_tf1: a TF1 run's newest checkpoint, loaded by name into the network, tested.

    Prints the test accuracy that restore_model.py prints for that run.
    """
    checkpoint, run_params = tf1_checkpoints.checkpoint_of_run(FLAGS.restore_tf1, MODEL,
                                                               'run_cnn_model.py')
    model = CNN(data_helpers.NUM_CLASSES)

    # A TF1 Saver checkpoint holds each variable under its graph name
    # (conv1/filters); the network's variables carry those names, so each is
    # read by its name (Adam's slots in the checkpoint are not needed to test)
    print('Restoring variables from TF1 checkpoint')
    variables = {variable.name.split(':')[0]: variable for variable in model.variables}
    with tf1_checkpoints.checked_load(checkpoint, variables, run_dirs.MODEL_NAMES[MODEL]):
        reader = tf.train.load_checkpoint(checkpoint)
        for name, variable in variables.items():
            variable.assign(reader.get_tensor(name))
        print(f'Current step: {reader.get_tensor("global_step")}')

    # The run's own data and split, so that the test images are centred with
    # the very mean image the network was trained with
    data = data_helpers.reshape_data(data_helpers.load_data(
        FLAGS.data_dir or run_params.get('data_dir'), run_params.get('validation_size', 0)))
    test_accuracy, predicted = batch_eval.predict_in_batches(
        model.predictions, (data['images_test'], data['labels_test']))
    print(f'Test accuracy {test_accuracy:g}')
    confusion.report_test_set(data, predicted)


def main(argv):
    """Parses and checks the flags; trains and evaluates, or tests a TF1 run's network."""
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    if FLAGS.restore_tf1:
        restore_tf1_and_test()
    else:
        # With --resume: the newest TF2 CNN run in train_dir and its last
        # checkpoint, whose saved settings become the flags
        run_dir, resume_from = resume.run_to_continue(FLAGS, RUN_NAME, FLAG_RULES)
        if FLAGS.seed is None:  # a run always has a seed, printed and saved: it can be repeated
            FLAGS.seed = cli.random_seed()
        cli.print_parameters(FLAGS)

        # Load CIFAR-10 as 32 x 32 x 3 images
        data = data_helpers.reshape_data(
            data_helpers.load_data(FLAGS.data_dir, FLAGS.validation_size))
        cli.check_batch_size(FLAGS.batch_size, len(data['labels_train']))

        # Each run logs to its own folder, train_dir/YYYYmmdd-HHMMSS_tf2_cnn_...
        # (or the resumed run's), claimed while this process trains in it
        run_dir = run_dirs.prepare_run_dir(FLAGS, RUN_NAME, data, run_dir)
        with run_lock.locked(run_dir):
            run_training(data, run_dir, resume_from)

    print(f'Total time: {time.time() - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
