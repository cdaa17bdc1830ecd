"""Trains the two-layer fully connected network on CIFAR-10 (part 2, the runner).

    python run_fc_model.py --learning_rate 0.001 --max_steps 2000

The graph comes from the four functions of `two_layer_fc.py`. Each run logs to
its own folder `train_dir/YYYYmmdd-HHMMSS/`, so TensorBoard shows runs side by
side (`tensorboard --logdir=tf_logs`); checkpoints are saved there every 1,000
steps and at the end, for `restore_model.py` and for `--resume`.
"""

import time

import train_helpers  # first: it switches TensorFlow to graph mode, quietly

import tensorflow.compat.v1 as tf
from absl import flags

import data_helpers
import report_helpers
import two_layer_fc

# ---------------------------------------------------------------------------
# Model parameters as command-line flags
# ---------------------------------------------------------------------------
FLAGS = flags.FlagValues()
flags.DEFINE_float('learning_rate', 0.001, 'Learning rate of gradient descent.',
                   flag_values=FLAGS)
flags.DEFINE_integer('max_steps', 2000, 'Number of training steps.', flag_values=FLAGS)
flags.DEFINE_integer('hidden1', 120, 'Number of units in the hidden layer.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 400, 'Images per training batch.', flag_values=FLAGS)
flags.DEFINE_float('reg_constant', 0.1, 'Regularisation constant.', flag_values=FLAGS)
train_helpers.define_run_flags(FLAGS)

MODEL = 'fc'
SUMMARY_EVERY = 100      # steps between printed accuracies and TensorBoard summaries
CHECKPOINT_EVERY = 1000  # steps between checkpoints


def placeholder_inputs():
    """Creates the placeholders that images and labels are fed into.

    Returns:
        images_placeholder: float32 [batch, 3072].
        labels_placeholder: int64 [batch].
    """
    images_placeholder = tf.placeholder(tf.float32, shape=[None, data_helpers.IMAGE_PIXELS],
                                        name='images')
    labels_placeholder = tf.placeholder(tf.int64, shape=[None], name='image-labels')
    return images_placeholder, labels_placeholder


def fill_feed_dict(images, labels, images_placeholder, labels_placeholder):
    """Maps the placeholders to a batch of images and labels."""
    return {images_placeholder: images, labels_placeholder: labels}


def run_training(data, run_dir, resume_from=None):
    """Builds the graph, trains it, evaluates on the test set.

    Args:
        data: the dict from `data_helpers.load_data`.
        run_dir: the run folder for summaries and checkpoints.
        resume_from: a checkpoint to continue from, or None for a fresh start.

    Returns:
        The Trainer, for its timing.
    """
    with tf.Graph().as_default():
        # ---- The graph: built in one place, from the model's four functions.
        tf.set_random_seed(FLAGS.seed)
        images_placeholder, labels_placeholder = placeholder_inputs()
        logits = two_layer_fc.inference(images_placeholder, data_helpers.IMAGE_PIXELS,
                                        FLAGS.hidden1, data_helpers.NUM_CLASSES,
                                        reg_constant=FLAGS.reg_constant)
        loss = two_layer_fc.loss(logits, labels_placeholder)
        train_step = two_layer_fc.training(loss, FLAGS.learning_rate)
        accuracy = two_layer_fc.evaluation(logits, labels_placeholder)
        predictions = tf.argmax(logits, 1)
        summary = tf.summary.merge_all()

        # ---- Running it.
        with train_helpers.Trainer(
                run_dir, train_step, loss, resume_from,
                train_helpers.resume_command('run_fc_model.py', FLAGS)) as trainer:
            # Shuffled batches, the next one prepared while this one trains.
            batches = data_helpers.prefetch(data_helpers.gen_batch(
                (data['images_train'], data['labels_train']), FLAGS.batch_size,
                FLAGS.max_steps, seed=FLAGS.seed, start_step=trainer.step))
            for images, labels in batches:
                feed_dict = fill_feed_dict(images, labels,
                                           images_placeholder, labels_placeholder)

                # Every 100 steps: the accuracy on the batch about to be trained
                # on, and the summaries for TensorBoard.
                if trainer.step % SUMMARY_EVERY == 0:
                    train_accuracy, summary_str = trainer.sess.run(
                        [accuracy, summary], feed_dict=feed_dict)
                    trainer.add_summary(summary_str)
                    if FLAGS.validation_size:
                        validation_accuracy, _ = train_helpers.do_eval(
                            trainer.sess, predictions, images_placeholder,
                            data['images_validation'], data['labels_validation'])
                        trainer.add_summary({'validation_accuracy': validation_accuracy})
                        print(f'Step {trainer.step:d}, training accuracy {train_accuracy:g}, '
                              f'validation accuracy {validation_accuracy:g}')
                    else:
                        print(f'Step {trainer.step:d}, training accuracy '
                              f'{train_accuracy:g}')

                trainer.train_step(feed_dict)

                if trainer.step % CHECKPOINT_EVERY == 0 or trainer.step == FLAGS.max_steps:
                    trainer.save_checkpoint()
                    print('Saved checkpoint')

            # After training: the test set, once.
            test_accuracy, predicted = train_helpers.do_eval(
                trainer.sess, predictions, images_placeholder,
                data['images_test'], data['labels_test'])
            print(f'Test accuracy {test_accuracy:g}')
            report_helpers.report_test_set(data, predicted, trainer.writer, trainer.step)
    return trainer


def main(argv):
    """Parses and checks the flags, loads the data, trains, reports."""
    start_time = time.time()
    train_helpers.parse_flags(FLAGS, argv)
    train_helpers.check_flags(
        FLAGS, positive=('learning_rate', 'max_steps', 'hidden1', 'batch_size'),
        non_negative=('reg_constant', 'validation_size', 'seed'))
    run_dir, resume_from = train_helpers.start_run(FLAGS, MODEL)

    data = data_helpers.load_data(FLAGS.data_dir, FLAGS.validation_size)
    train_helpers.check_batch_size(FLAGS.batch_size, len(data['labels_train']))
    run_dir = train_helpers.prepare_run_dir(FLAGS, MODEL, data, run_dir)

    trainer = run_training(data, run_dir, resume_from)
    train_helpers.print_total_time(start_time, trainer)


if __name__ == '__main__':
    raise SystemExit(train_helpers.run_main(main))
