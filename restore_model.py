"""Restores a trained model from its checkpoint and tests it, or classifies photos.

    python restore_model.py                      # newest checkpoint in tf_logs
    python restore_model.py --image cat.jpg      # top 3 classes of your own photo

The graph is rebuilt exactly as the training script built it, then `Saver`
fills its variables from the newest checkpoint in `--train_dir` (or in its run
folders). Without `--image` it prints the step the checkpoint was saved at and
the test accuracy, the same figure the training run printed. Which model the
checkpoint holds, the two-layer network or the CNN, is read from the
checkpoint itself unless `--model` says so.
"""

import os
import time

import train_helpers  # first: it keeps TensorFlow's start-up notes off the terminal

import numpy as np
import tensorflow.compat.v1 as tf
from absl import flags

import cnn_model
import data_helpers
import report_helpers
import run_cnn_model
import run_fc_model
import two_layer_fc

# TensorFlow 1 graph mode, as in the training scripts: define, then run in a Session.
tf.disable_eager_execution()

FLAGS = flags.FlagValues()
flags.DEFINE_string('train_dir', 'tf_logs', 'Folder with the checkpoints to restore.',
                    flag_values=FLAGS)
flags.DEFINE_enum('model', 'auto', ['auto', 'fc', 'cnn'],
                  'Model of the checkpoint; auto reads it from the checkpoint.',
                  flag_values=FLAGS)
flags.DEFINE_integer('hidden1', 120, 'Hidden units of the two-layer network.',
                     flag_values=FLAGS)
flags.DEFINE_float('reg_constant', 0.1, 'Regularisation constant of the two-layer network.',
                   flag_values=FLAGS)
flags.DEFINE_string('data_dir', None, 'Folder with the CIFAR-10 batch files '
                    '(default: cifar-10-batches-py beside the scripts).', flag_values=FLAGS)
flags.DEFINE_multi_string('image', None, 'PNG or JPEG files to classify (repeat the flag, '
                          'or list them after it).', flag_values=FLAGS)

TOP_CLASSES = 3


def find_checkpoint():
    """The newest checkpoint in --train_dir of the --model asked for (any with auto).

    Raises:
        UserError: there is none, saying what there is instead.
    """
    newest = train_helpers.latest_checkpoint(FLAGS.train_dir)
    if newest is None:
        raise data_helpers.UserError(
            f'There is no checkpoint in {FLAGS.train_dir}. Train a model first (python '
            'run_fc_model.py or python run_cnn_model.py), or point --train_dir at the folder it '
            'trained into.')
    if FLAGS.model == 'auto':
        return newest
    checkpoint = train_helpers.latest_checkpoint(FLAGS.train_dir, FLAGS.model)
    if checkpoint is None:
        found = train_helpers.describe_checkpoint(train_helpers.checkpoint_variables(newest))
        expected = train_helpers.MODEL_NAMES[FLAGS.model]
        raise data_helpers.UserError(
            f'The newest checkpoint in {FLAGS.train_dir}, {newest}, holds {found}, but '
            f'--model {FLAGS.model} expects {expected}, and there is no checkpoint of it '
            'there.')
    return checkpoint


def choose_model(stored_variables):
    """Returns 'fc' or 'cnn': what the checkpoint holds, checked against --model.

    Raises:
        UserError: the checkpoint holds another or an unknown model.
    """
    found = train_helpers.model_of(stored_variables)
    if found is None or FLAGS.model not in ('auto', found):
        expected = train_helpers.MODEL_NAMES.get(FLAGS.model, 'a model of this suite')
        raise data_helpers.UserError(
            f'The checkpoint holds {train_helpers.describe_checkpoint(stored_variables)}, '
            f'but --model {FLAGS.model} expects {expected}.')
    return found


def build_graph(model):
    """Rebuilds the trained model's graph, as the runner built it.

    Returns:
        (images_placeholder, labels_placeholder, logits, accuracy, description
        of the model).
    """
    if model == 'fc':
        images_placeholder, labels_placeholder = run_fc_model.placeholder_inputs()
        # reg_constant only adds the regularisation terms of the loss, which is
        # not evaluated here; the flag is kept for the original's command lines.
        logits = two_layer_fc.inference(images_placeholder, data_helpers.IMAGE_PIXELS,
                                        FLAGS.hidden1, data_helpers.NUM_CLASSES,
                                        reg_constant=FLAGS.reg_constant)
        accuracy = two_layer_fc.evaluation(logits, labels_placeholder)
        description = f'a two-layer network with hidden1={FLAGS.hidden1}'
    else:
        # The dropout placeholders keep their defaults: no dropout.
        images_placeholder, labels_placeholder, dropout_rate, dropout_seeds = \
            run_cnn_model.placeholder_inputs()
        logits = cnn_model.inference(images_placeholder, dropout_rate, dropout_seeds)
        accuracy = cnn_model.evaluation(logits, labels_placeholder)
        description = train_helpers.MODEL_NAMES['cnn']
    tf.train.get_or_create_global_step()  # restored too: it tells the step
    return images_placeholder, labels_placeholder, logits, accuracy, description


def load_own_images(checkpoint, model):
    """Reads the --image files, prepared like the training images of the run.

    Returns:
        The images, mean-subtracted, in the layout the model takes.
    """
    images = np.stack([data_helpers.load_image(path) for path in FLAGS.image])
    mean_path = os.path.join(train_helpers.run_dir_of(checkpoint), train_helpers.MEAN_IMAGE_FILE)
    if os.path.isfile(mean_path):
        try:
            # Mapped, not read: a damaged header cannot ask for terabytes; and
            # never unpickled, so the file cannot run code.
            mean_image = np.load(mean_path, mmap_mode='r', allow_pickle=False)
            mean_image = mean_image.astype(np.float32).reshape(data_helpers.IMAGE_PIXELS)
        except (OSError, ValueError, EOFError, AttributeError) as error:  # damaged, empty, npz
            raise data_helpers.UserError(
                f'{mean_path} cannot be read as the mean image of the run ({error}). Delete '
                'it: the mean is then taken from the training data (--data_dir).') from None
    else:  # a checkpoint from elsewhere: take the mean from the training data
        mean_image = data_helpers.load_data(FLAGS.data_dir)['mean_image']
    images = images - mean_image
    return data_helpers.to_nhwc(images) if model == 'cnn' else images


def print_top_classes(probabilities):
    """Prints each file's three likeliest classes with their probabilities."""
    for path, image_probabilities in zip(FLAGS.image, probabilities, strict=True):
        print(f'{path}:')
        for index in np.argsort(-image_probabilities)[:TOP_CLASSES]:
            print(f'  {data_helpers.CLASSES[index]:6} {image_probabilities[index]:.4f}')


def main(argv):
    """Finds the newest checkpoint, restores it, tests or classifies."""
    start_time = time.time()
    more_images = train_helpers.parse_flags(FLAGS, argv, allow_arguments=True)
    if more_images and not FLAGS.image:
        raise data_helpers.UserError(f'Unexpected argument {more_images[0]!r}: to classify '
                                     'images, pass --image PATH [PATH ...].')
    FLAGS.image = (FLAGS.image or []) + more_images  # --image a.png b.png
    train_helpers.check_flags(FLAGS, positive=('hidden1',), non_negative=('reg_constant',),
                              at_most={'hidden1': train_helpers.MOST_HIDDEN_UNITS})
    checkpoint = find_checkpoint()
    model = choose_model(train_helpers.checkpoint_variables(checkpoint))
    run_params = train_helpers.load_run_params(train_helpers.run_dir_of(checkpoint))
    if FLAGS.image:
        own_images = load_own_images(checkpoint, model)  # a bad file fails before restoring

    with tf.Graph().as_default():
        images_placeholder, labels_placeholder, logits, accuracy, description = \
            build_graph(model)
        saver = tf.train.Saver()
        with tf.Session() as sess:
            print('Restoring variables from checkpoint')
            with train_helpers.checked_restore(checkpoint, description):
                saver.restore(sess, checkpoint)
            print(f'Current step: {sess.run(tf.train.get_global_step())}')

            if FLAGS.image:
                print_top_classes(sess.run(tf.nn.softmax(logits),
                                           feed_dict={images_placeholder: own_images}))
            else:
                # The run's own data and split, so that the test images are
                # centred with the very mean image the model was trained with.
                data = data_helpers.load_data(FLAGS.data_dir or run_params.get('data_dir'),
                                              run_params.get('validation_size', 0))
                if model == 'cnn':
                    data = data_helpers.reshape_data(data)
                test_accuracy, predicted = train_helpers.do_eval(
                    sess, accuracy, tf.argmax(logits, 1), images_placeholder,
                    labels_placeholder, (data['images_test'], data['labels_test']))
                print(f'Test accuracy {test_accuracy:g}')
                report_helpers.report_test_set(data, predicted)

    print(f'Total time: {time.time() - start_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(train_helpers.run_main(main))
