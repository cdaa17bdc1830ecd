"""Trains the small convolutional network on CIFAR-10 (part 3, the runner).

    python run_cnn_model.py --epochs 51 --batch_size 128

The graph comes from the four functions of `cnn_model.py`. Every epoch goes
through the training set once in shuffled minibatches; every 10 epochs the
cost and the accuracy on the training and validation sets are printed. The
run logs to its own folder `train_dir/YYYYmmdd-HHMMSS/` (cost per epoch, loss,
accuracy, logits) and saves a checkpoint there after every epoch.
"""

import time

import train_helpers  # first: it switches TensorFlow to graph mode, quietly

import tensorflow.compat.v1 as tf
from absl import flags

import cnn_model
import data_helpers
import report_helpers

# ---------------------------------------------------------------------------
# Model parameters as command-line flags
# ---------------------------------------------------------------------------
FLAGS = flags.FlagValues()
flags.DEFINE_float('learning_rate', 0.001, 'Learning rate of Adam.', flag_values=FLAGS)
flags.DEFINE_integer('epochs', 51, 'Number of passes over the training set.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 128, 'Images per minibatch.', flag_values=FLAGS)
flags.DEFINE_float('dropout_rate', 0.3, 'Fraction of activations dropped in training.',
                   flag_values=FLAGS)
train_helpers.define_run_flags(FLAGS)

MODEL = 'cnn'
PRINT_EVERY = 10      # epochs between the published progress lines
SUMMARY_EVERY = 100   # steps between TensorBoard summaries


def placeholder_inputs():
    """Creates the placeholders for images, labels and the dropout rate.

    Returns:
        images_placeholder: float32 [batch, 32, 32, 3].
        labels_placeholder: int64 [batch].
        dropout_rate_placeholder: float32 scalar, 0 unless fed: evaluation
            never drops anything.
    """
    size, channels = data_helpers.IMAGE_SIZE, data_helpers.CHANNELS
    images_placeholder = tf.placeholder(tf.float32, shape=[None, size, size, channels],
                                        name='images')
    labels_placeholder = tf.placeholder(tf.int64, shape=[None], name='image-labels')
    dropout_rate_placeholder = tf.placeholder_with_default(0.0, shape=[], name='dropout_rate')
    return images_placeholder, labels_placeholder, dropout_rate_placeholder


def fill_feed_dict(images, labels, placeholders, dropout_rate):
    """Maps the placeholders to a minibatch and the training dropout rate."""
    images_placeholder, labels_placeholder, dropout_rate_placeholder = placeholders
    return {images_placeholder: images, labels_placeholder: labels,
            dropout_rate_placeholder: dropout_rate}


def run_training(data, run_dir, resume_from=None):
    """Builds the graph, trains it for the given epochs, evaluates.

    Args:
        data: the dict from `load_data`, reshaped to NHWC.
        run_dir: the run folder for summaries and checkpoints.
        resume_from: a checkpoint to continue from, or None for a fresh start.

    Returns:
        The Trainer, for its timing.
    """
    with tf.Graph().as_default():
        # ---- The graph: built in one place, from the model's four functions.
        tf.set_random_seed(FLAGS.seed)
        placeholders = placeholder_inputs()
        images_placeholder, labels_placeholder, dropout_rate_placeholder = placeholders
        logits = cnn_model.inference(images_placeholder, dropout_rate_placeholder,
                                     seed=FLAGS.seed)
        loss = cnn_model.loss(logits, labels_placeholder)
        train_op = cnn_model.training(loss, FLAGS.learning_rate)
        cnn_model.evaluation(logits, labels_placeholder)  # the train_accuracy summary
        predictions = tf.argmax(logits, 1)
        summary = tf.summary.merge_all()

        train_set = (data['images_train'], data['labels_train'])
        # With --validation_size the progress lines use held-out training
        # images; otherwise, as published, the test set.
        validation_set = (data.get('images_validation', data['images_test']),
                          data.get('labels_validation', data['labels_test']))
        num_batches = data_helpers.batches_per_epoch(len(train_set[1]), FLAGS.batch_size)

        # ---- Running it.
        with train_helpers.Trainer(
                run_dir, train_op, loss, resume_from,
                train_helpers.resume_command('run_cnn_model.py', FLAGS)) as trainer:
            first_epoch, first_batch = divmod(trainer.step, num_batches)
            for epoch in range(first_epoch, FLAGS.epochs):
                # A resumed run starts mid-epoch, where the interrupted one stopped.
                start_batch = first_batch if epoch == first_epoch else 0
                progress = data_helpers.ProgressBar(
                    num_batches, f'Epoch {epoch + 1}/{FLAGS.epochs}')
                batches = data_helpers.prefetch(data_helpers.gen_epoch(
                    train_set, FLAGS.batch_size, seed=FLAGS.seed, epoch=epoch,
                    start_batch=start_batch))
                cost_sum, batches_run = 0.0, 0
                for images, labels in batches:
                    if trainer.step % SUMMARY_EVERY == 0:
                        # Summaries of the batch as the model sees it at test
                        # time: the dropout rate is left at its default, 0.
                        trainer.add_summary(trainer.sess.run(summary, feed_dict={
                            images_placeholder: images, labels_placeholder: labels}))
                    feed_dict = fill_feed_dict(images, labels, placeholders,
                                               FLAGS.dropout_rate)
                    cost_sum += trainer.train_step(feed_dict)
                    batches_run += 1
                    progress.update(start_batch + batches_run,
                                    f'cost {cost_sum / batches_run:.3f}')
                progress.close()
                # The epoch's cost: the mean minibatch loss (after a resume
                # mid-epoch, of the batches run since).
                epoch_cost = cost_sum / batches_run
                trainer.add_summary({'cost': epoch_cost}, step=epoch)
                trainer.save_checkpoint()

                if epoch % PRINT_EVERY == 0:
                    train_accuracy, _ = train_helpers.do_eval(
                        trainer.sess, predictions, images_placeholder, *train_set)
                    validation_accuracy, _ = train_helpers.do_eval(
                        trainer.sess, predictions, images_placeholder, *validation_set)
                    trainer.add_summary({'epoch_train_accuracy': train_accuracy,
                                         'validation_accuracy': validation_accuracy},
                                        step=epoch)
                    print(f'Cost after epoch {epoch}: {epoch_cost:f}, train accuracy: '
                          f'{train_accuracy:f}, validation accuracy: {validation_accuracy:f}')

            # After training: accuracy over the whole training set and, once,
            # the test set, both computed in batches.
            train_accuracy, _ = train_helpers.do_eval(
                trainer.sess, predictions, images_placeholder, *train_set)
            test_accuracy, predicted = train_helpers.do_eval(
                trainer.sess, predictions, images_placeholder,
                data['images_test'], data['labels_test'])
            print(f'Train Accuracy: {train_accuracy:g}')
            print(f'Test Accuracy: {test_accuracy:g}')
            report_helpers.report_test_set(data, predicted, trainer.writer, trainer.step)
    return trainer


def main(argv):
    """Parses and checks the flags, loads the data, trains, reports."""
    start_time = time.time()
    train_helpers.parse_flags(FLAGS, argv)
    train_helpers.check_flags(
        FLAGS, positive=('learning_rate', 'epochs', 'batch_size'),
        non_negative=('validation_size', 'seed'), rates=('dropout_rate',))
    run_dir, resume_from = train_helpers.start_run(FLAGS, MODEL)

    data = data_helpers.reshape_data(
        data_helpers.load_data(FLAGS.data_dir, FLAGS.validation_size))
    train_helpers.check_batch_size(FLAGS.batch_size, len(data['labels_train']))
    run_dir = train_helpers.prepare_run_dir(FLAGS, MODEL, data, run_dir)

    trainer = run_training(data, run_dir, resume_from)
    train_helpers.print_total_time(start_time, trainer)


if __name__ == '__main__':
    raise SystemExit(train_helpers.run_main(main))
