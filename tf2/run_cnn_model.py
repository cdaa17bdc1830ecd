"""The small convolutional network in TensorFlow 2, the low-level way (part 3's twin).

    python tf2/run_cnn_model.py --epochs 51 --batch_size 128
    python tf2/run_cnn_model.py --init_from_tf1 tf_logs/YYYYmmdd-HHMMSS_cnn  # TF1's first weights
    python tf2/run_cnn_model.py --resume   # the newest TF2 run of it, continued
    python tf2/run_cnn_model.py --restore_tf1 tf_logs/YYYYmmdd-HHMMSS_cnn   # a TF1 run, tested

`run_cnn_model.py` with `cnn_model.py` (flags, data, minibatches, dropout masks,
run folders beside the TF1 runs) as TensorFlow's guides write TF2 today, with
its own low-level tools: a `tf.Module` called on images, a `train_step` under
`tf.function` taking a Keras `Adam` step, `tf.data` for the minibatches. The
Keras way (`keras.Model`, `compile`, `fit`) is in the Keras files of tf2/.
docs/tf1_to_tf2.md puts each TF1 line beside its TF2 line.
"""

import functools
import os
import sys
import time

# Run from the project root (python tf2/run_cnn_model.py): the project's own
# modules (data_helpers, tutorial_support) are imported from there.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import tensorflow as tf
from absl import flags

import data_helpers
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

# Model parameters as command-line flags: those of run_cnn_model.py, and
# --init_from_tf1 and --restore_tf1
FLAGS = flags.FlagValues()
flags.DEFINE_float('learning_rate', 0.001, 'Learning rate of Adam.', flag_values=FLAGS)
flags.DEFINE_integer('epochs', 51, 'Number of passes over the training set.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 128, 'Images per minibatch.', flag_values=FLAGS)
flags.DEFINE_float('dropout_rate', 0.3, 'Fraction of activations dropped in training.',
                   flag_values=FLAGS)
cli.define_run_flags(FLAGS)  # train_dir, data_dir, seed, validation_size, resume
cli.define_tf1_run_flags(FLAGS, 'run_cnn_model.py')  # init_from_tf1, restore_tf1
FLAG_RULES = dict(positive=('learning_rate', 'epochs', 'batch_size'),
                  non_negative=('validation_size', 'seed'), rates=('dropout_rate',),
                  at_most={'seed': cli.LARGEST_SEED}, writable=('train_dir',))

MODEL = 'cnn'
RUN_NAME = 'tf2_cnn'  # the run folders' names and params.json say which runs are TF2 ones
PRINT_EVERY = 10      # epochs between the published progress lines
SUMMARY_EVERY = 100   # steps between TensorBoard summaries
FEATURES = 8 * 8 * 64  # what the second stage leaves of a 32 x 32 image
# What tf.data hands the training step: a minibatch of images and their labels
BATCH_SIGNATURE = (tf.TensorSpec([None, data_helpers.IMAGE_SIZE, data_helpers.IMAGE_SIZE,
                                  data_helpers.CHANNELS], tf.float32),
                   tf.TensorSpec([None], tf.int64))


class CNN(tf.Module):
    """The network of cnn_model.py: its variables, made once here (TF1: by
    tf.get_variable as inference() builds the graph), and its forward pass."""

    def __init__(self, classes=10, dropout_rate=0.0, seed=0):
        super().__init__()
        # The dropout rate as a tensor, as TF1 feeds it (a Python number rounds otherwise)
        self.dropout_rate = tf.constant(dropout_rate, tf.float32)
        # Glorot initial values, uniform in +-sqrt(6 / (fan-in + fan-out)), keep the
        # activations' scale alike from layer to layer; one seeded generator draws
        # them in turn (TF1: tf.set_random_seed, and each initializer's draw)
        glorot_uniform = tf.keras.initializers.GlorotUniform(
            seed=tf.keras.random.SeedGenerator(seed))
        # The variables carry the TF1 names (conv1/filters), so that a TF1
        # checkpoint fills them by name
        with tf.name_scope('conv1'):
            # 64 filters of 4 x 4 over the 3 colour channels: 32 x 32 x 3 -> 16 x 16 x 64
            self.conv1_filters = tf.Variable(glorot_uniform([4, 4, 3, 64]), name='filters')
        with tf.name_scope('conv2'):
            # 64 filters of 2 x 2 over the 64 channels of stage 1: -> 8 x 8 x 64
            self.conv2_filters = tf.Variable(glorot_uniform([2, 2, 64, 64]), name='filters')
        with tf.name_scope('fc'):
            self.fc_weights = tf.Variable(glorot_uniform([FEATURES, classes]), name='weights')
            self.fc_biases = tf.Variable(tf.zeros([classes]), name='biases')

    def __call__(self, images, training=False, dropout_seeds=None):
        """The logits [batch, classes] (TF1: inference()). With `training`, dropout is on
        (TF1: a rate placeholder, 0 unless fed), its masks drawn from `dropout_seeds`."""
        with tf.name_scope('fc'):
            return tf.matmul(self.features(images, training, dropout_seeds),
                             self.fc_weights) + self.fc_biases

    def features(self, images, training=False, dropout_seeds=None):
        """The two stages, flattened: the 4,096 features the last layer sees."""
        conv1_seed, conv2_seed = tf.unstack(dropout_seeds) if training else (None, None)
        with tf.name_scope('conv1'):
            stage1 = self.conv_stage(images, self.conv1_filters, conv1_seed)
        with tf.name_scope('conv2'):
            stage2 = self.conv_stage(stage1, self.conv2_filters, conv2_seed)
        return tf.reshape(stage2, [-1, FEATURES])

    def conv_stage(self, inputs, filters, dropout_seed=None):
        """Convolution, ReLU, max-pooling, and dropout when a seed is given (in training)."""
        # The filters, slid over the image one pixel at a time
        conv = tf.nn.conv2d(inputs, filters, strides=[1, 1, 1, 1], padding='SAME')
        # The largest ReLU output of each 3 x 3 window, windows 2 pixels apart:
        # half the height and width.
        pool = tf.nn.max_pool2d(tf.nn.relu(conv), ksize=3, strides=2, padding='SAME')
        if dropout_seed is None:
            return pool
        # Dropout: a random fraction set to 0, the rest scaled up (TF1's op and masks)
        return tf.nn.experimental.stateless_dropout(pool, rate=self.dropout_rate,
                                                    seed=dropout_seed)

    @tf.function(reduce_retracing=True)
    def predictions(self, images):
        """The predicted class of each image, without dropout, as a graph."""
        return tf.argmax(self(images), 1)


def loss(logits, labels):
    """The cost (TF1: loss()): the mean softmax cross entropy."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(logits=logits, labels=labels))


def dropout_seeds(step):
    """The dropout masks' seeds at a step, as run_cnn_model.py's: new masks every step."""
    return tf.constant([[FLAGS.seed, 2 * step], [FLAGS.seed, 2 * step + 1]], tf.int64)


def run_training(data, run_dir, resume_from=None, initial_weights=None):
    """Creates the network, trains it for the given epochs, evaluates (the notebook's
    model()); from `resume_from` (--resume) or `initial_weights` (--init_from_tf1)."""
    train_set = (data['images_train'], data['labels_train'])
    # The progress lines' validation set: held-out images, or as published the test set
    validation_set = (data.get('images_validation', data['images_test']),
                      data.get('labels_validation', data['labels_test']))

    # The network, its variables initialised at once (TF1: inference(), the initializer)
    model = CNN(data_helpers.NUM_CLASSES, FLAGS.dropout_rate, seed=FLAGS.seed)
    if initial_weights:  # --init_from_tf1: the TF1 run's first weights, by name
        tf1_checkpoints.load_by_name(model, initial_weights, FLAGS, MODEL)
    # Adam (TF1: AdamOptimizer) with TF1's epsilon (Keras's default is 1e-7): TF1's
    # update, rounded otherwise in the last bits. It counts the steps in
    # optimizer.iterations; its moving averages are made now, for step 0's checkpoint.
    optimizer = tf.keras.optimizers.Adam(FLAGS.learning_rate, epsilon=1e-8)
    optimizer.build(model.trainable_variables)

    # One training step with dropout, compiled by tf.function into a graph
    # (TF1: sess.run([train_op, cost]) with the dropout rate and seeds fed)
    @tf.function
    def train_step(images, labels, seeds):
        with tf.GradientTape() as tape:
            cost = loss(model(images, training=True, dropout_seeds=seeds), labels)
        gradients = tape.gradient(cost, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return cost

    # Checkpoints of the network and Adam's state, by object (TF1: Saver), in tf2_checkpoints/
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(run_dir, run_dirs.TF2_CHECKPOINT_FOLDER), max_to_keep=None)
    resume_command = resume.resume_command('tf2/run_cnn_model.py', FLAGS)
    if resume_from:
        with tf2_checkpoints.checked_restore(resume_from, optimizer, model.trainable_variables):
            checkpoint.restore(resume_from).assert_existing_objects_matched()
    else:  # step 0 kept too, as the TF1 runner keeps it: the initial weights
        with training_stops.save_errors_explained(run_dir, resume_command):
            manager.save(checkpoint_number=0)

    # Summary writers (tf.summary.create_file_writer): the run's own, and one
    # each for the accuracy on the training and validation sets, in sub-folders
    writers = tf2_summaries.RunWriters(run_dir)
    # The training step's graph (the Graphs tab) and the hyper-parameters (HParams)
    with writers.run.as_default():
        tf.summary.graph(train_step.get_concrete_function(
            *BATCH_SIGNATURE, tf.TensorSpec([2, 2], tf.int64)).graph)
    tf2_summaries.write_hparams(writers.run, FLAGS, RUN_NAME, run_dir)

    # A resumed run starts mid-epoch, where the interrupted one stopped
    step = int(optimizer.iterations)
    num_batches = data_helpers.batches_per_epoch(len(train_set[1]), FLAGS.batch_size)
    first_epoch, first_batch = divmod(step, num_batches)

    # Do the training loop. Ctrl-C, SIGTERM or SIGHUP lets the step in progress finish,
    # saves a checkpoint of it, prints the command that resumes, exits 128 + n.
    with training_stops.manager_checkpoint_on_stop(manager, optimizer.iterations,
                                                   resume_command):
        for epoch in range(first_epoch, FLAGS.epochs):
            epoch_start = time.time()
            start_batch = first_batch if epoch == first_epoch else 0
            minibatch_cost = 0.0
            num_minibatches = num_batches - start_batch
            # A fresh shuffle, cut into minibatches: tf.data around gen_epoch, the
            # minibatches of run_cnn_model.py for the same --seed, made while one trains
            minibatches = tf.data.Dataset.from_generator(
                functools.partial(data_helpers.gen_epoch, train_set, FLAGS.batch_size,
                                  seed=FLAGS.seed, epoch=epoch, start_batch=start_batch),
                output_signature=BATCH_SIGNATURE).prefetch(tf.data.AUTOTUNE)
            progress_bar = progress.ProgressBar(num_minibatches,
                                                f'Epoch {epoch + 1}/{FLAGS.epochs}')

            for done, (minibatch_images, minibatch_labels) in enumerate(minibatches, 1):
                # Every 100 steps, the summaries of the minibatch as the model sees it
                # at test time (no dropout), written by the loop (TF1: merge_all's op)
                if step % SUMMARY_EVERY == 0:
                    logits = model(minibatch_images)
                    with writers.run.as_default(step=step):
                        tf.summary.scalar('Loss/loss', loss(logits, minibatch_labels))
                        tf.summary.scalar('Accuracy/train_accuracy', tf.reduce_mean(  # evaluation()
                            tf.keras.metrics.sparse_categorical_accuracy(minibatch_labels, logits)))
                        tf.summary.histogram('fc/logits', logits)

                # The training step, with dropout; a NaN or infinite cost (or a stop) ends here
                temp_cost = train_step(minibatch_images, minibatch_labels, dropout_seeds(step))
                training_stops.check_step(float(temp_cost), step, run_dir)
                minibatch_cost += float(temp_cost) / num_minibatches  # the epoch's mean
                step += 1
                progress_bar.update(done, f'cost {temp_cost:.3f}')
            progress_bar.close(f'Epoch {epoch + 1}/{FLAGS.epochs}: '
                               f'{time.time() - epoch_start:.1f}s, cost {minibatch_cost:.4f}')

            # The epoch's cost for TensorBoard, and a checkpoint
            tf2_summaries.write_scalars(writers.run, step, cost=minibatch_cost)
            with training_stops.save_errors_explained(run_dir, resume_command):
                manager.save(checkpoint_number=optimizer.iterations)

            # Print the cost and the accuracies every 10 epochs
            if epoch % PRINT_EVERY == 0:
                train_accuracy, _ = batch_eval.predict_in_batches(model.predictions, train_set)
                validation_accuracy, _ = batch_eval.predict_in_batches(model.predictions,
                                                                       validation_set)
                writers.accuracies(step, train=train_accuracy, validation=validation_accuracy)
                print(f'Cost after epoch {epoch}: {minibatch_cost:f}, train accuracy: '
                      f'{train_accuracy:f}, validation accuracy: {validation_accuracy:f}')

    # The accuracy on the training set and, once, the test set (and for
    # TensorBoard on the validation set), 1,000 images at a time
    train_accuracy, _ = batch_eval.predict_in_batches(model.predictions, train_set)
    validation_accuracy, _ = batch_eval.predict_in_batches(model.predictions, validation_set)
    test_accuracy, predicted = batch_eval.predict_in_batches(
        model.predictions, (data['images_test'], data['labels_test']))
    print(f'Train Accuracy: {train_accuracy:g}')
    print(f'Test Accuracy: {test_accuracy:g}')
    writers.accuracies(step, train=train_accuracy, validation=validation_accuracy)
    tf2_summaries.write_scalars(writers.run, step, test_accuracy=test_accuracy)

    # What the model learned, for TensorBoard: the confusion matrix and guesses,
    # the first layer's filters, and where the 4,096 features place 1,000 test images
    tf2_summaries.write_what_was_learned(
        writers.run, run_dir, step, data, predicted, model, model.features, '4,096 features',
        conv1_filters=pictures.conv_filters_picture(model.conv1_filters.numpy()))
    writers.close()


def main(argv):
    """Parses and checks the flags; trains and evaluates, or tests a TF1 run's network."""
    begin_time = time.time()
    cli.parse_flags(FLAGS, argv, FLAG_RULES)
    if FLAGS.restore_tf1:  # instead of training: a TF1 run's checkpoint, read by name, tested
        tf1_checkpoints.restore_and_test(
            CNN(data_helpers.NUM_CLASSES), FLAGS, MODEL, 'run_cnn_model.py',
            lambda *run_data: data_helpers.reshape_data(data_helpers.load_data(*run_data)))
    else:
        # --resume: the newest TF2 CNN run's last checkpoint; its settings become the flags
        run_dir, resume_from = resume.run_to_continue(FLAGS, RUN_NAME, FLAG_RULES)
        # --init_from_tf1: that TF1 run's step 0, and its --seed unless given (its batches)
        initial_weights = tf1_checkpoints.initial_checkpoint(FLAGS, MODEL, 'run_cnn_model.py')
        if FLAGS.seed is None:  # a run always has a seed, printed and saved: it can be repeated
            FLAGS.seed = cli.random_seed()
        cli.print_parameters(FLAGS)

        # Load CIFAR-10 as 32 x 32 x 3 images
        data = data_helpers.reshape_data(
            data_helpers.load_data(FLAGS.data_dir, FLAGS.validation_size))
        cli.check_batch_size(FLAGS.batch_size, len(data['labels_train']))

        # The run's own folder, train_dir/YYYYmmdd-HHMMSS_tf2_cnn_..., claimed while it trains
        run_dir = run_dirs.prepare_run_dir(FLAGS, RUN_NAME, data, run_dir)
        with run_lock.locked(run_dir):
            run_training(data, run_dir, resume_from, initial_weights)

    print(f'Total time: {time.time() - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
