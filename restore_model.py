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

import train_helpers  # first: it quiets TensorFlow's start-up log

import numpy as np
import tensorflow.compat.v1 as tf
from absl import flags

import cnn_model
import data_helpers
import report_helpers
import two_layer_fc

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


def choose_model(stored_variables):
    """Returns 'fc' or 'cnn': the --model flag, checked against the checkpoint.

    Raises:
        UserError: the checkpoint holds another or an unknown model.
    """
    found = ('fc' if 'Layer1/weights' in stored_variables else
             'cnn' if 'conv1/filters' in stored_variables else None)
    if found is None or FLAGS.model not in ('auto', found):
        expected = {'auto': 'a model of this suite', 'fc': 'the two-layer network',
                    'cnn': 'the convolutional network'}[FLAGS.model]
        raise data_helpers.UserError(
            f'The checkpoint holds {train_helpers.describe_checkpoint(stored_variables)}, '
            f'but --model {FLAGS.model} expects {expected}.')
    return found


def build_graph(model):
    """Rebuilds the trained model's graph up to the logits.

    Returns:
        (images_placeholder, logits, description of the model).
    """
    if model == 'fc':
        images_placeholder = tf.placeholder(
            tf.float32, shape=[None, data_helpers.IMAGE_PIXELS], name='images')
        logits = two_layer_fc.inference(images_placeholder, data_helpers.IMAGE_PIXELS,
                                        FLAGS.hidden1, data_helpers.NUM_CLASSES,
                                        reg_constant=FLAGS.reg_constant)
        description = f'a two-layer network with hidden1={FLAGS.hidden1}'
    else:
        size, channels = data_helpers.IMAGE_SIZE, data_helpers.CHANNELS
        images_placeholder = tf.placeholder(tf.float32, shape=[None, size, size, channels],
                                            name='images')
        logits = cnn_model.inference(images_placeholder, dropout_rate=0.0)  # no dropout
        description = 'the convolutional network'
    tf.train.get_or_create_global_step()  # restored too: it tells the step
    return images_placeholder, logits, description


def classify_images(sess, images_placeholder, logits, model, checkpoint):
    """Prints the top 3 classes, with probabilities, of each --image file."""
    mean_path = os.path.join(os.path.dirname(checkpoint), train_helpers.MEAN_IMAGE_FILE)
    if os.path.isfile(mean_path):
        mean_image = np.load(mean_path)
    else:  # a checkpoint from elsewhere: take the mean from the training data
        mean_image = data_helpers.load_data(FLAGS.data_dir)['mean_image']
    images = np.stack([data_helpers.load_image(path) for path in FLAGS.image]) - mean_image
    if model == 'cnn':
        images = data_helpers.to_nhwc(images)
    probabilities = sess.run(tf.nn.softmax(logits), feed_dict={images_placeholder: images})
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
    train_helpers.check_flags(FLAGS, positive=('hidden1',), non_negative=('reg_constant',))
    checkpoint = train_helpers.latest_checkpoint(FLAGS.train_dir)
    if checkpoint is None:
        raise data_helpers.UserError(
            f'There is no checkpoint in {FLAGS.train_dir}. Train a model first (python '
            'run_fc_model.py or python run_cnn_model.py), or point --train_dir at the folder it '
            'trained into.')
    model = choose_model(train_helpers.checkpoint_variables(checkpoint))

    with tf.Graph().as_default():
        images_placeholder, logits, description = build_graph(model)
        train_helpers.check_checkpoint_matches(checkpoint, description)
        saver = tf.train.Saver()
        with tf.Session() as sess:
            print('Restoring variables from checkpoint')
            try:
                saver.restore(sess, checkpoint)
            except tf.errors.OpError as error:
                raise data_helpers.UserError(f'The checkpoint {checkpoint} cannot be restored; '
                                             f'it is damaged ({error.message}).') from None
            print(f'Current step: {sess.run(tf.train.get_global_step())}')

            if FLAGS.image:
                classify_images(sess, images_placeholder, logits, model, checkpoint)
            else:
                # The run's own split, so the test images are centred with the
                # very mean image the model was trained with.
                params = train_helpers.load_run_params(os.path.dirname(checkpoint))
                data = data_helpers.load_data(FLAGS.data_dir,
                                              params.get('validation_size', 0))
                if model == 'cnn':
                    data = data_helpers.reshape_data(data)
                test_accuracy, predicted = train_helpers.do_eval(
                    sess, tf.argmax(logits, 1), images_placeholder,
                    data['images_test'], data['labels_test'])
                print(f'Test accuracy {test_accuracy:g}')
                report_helpers.report_test_set(data, predicted)

    train_helpers.print_total_time(start_time)


if __name__ == '__main__':
    raise SystemExit(train_helpers.run_main(main))
