"""Restores a trained model from its checkpoint and tests it, or classifies photos.

    python restore_model.py                      # newest checkpoint in tf_logs
    python restore_model.py --image cat.jpg      # top 3 classes of your own photo

The graph is rebuilt exactly as the training script built it, then `Saver`
fills its variables from the newest checkpoint in `--train_dir` (or in its run
folders). Without `--image` it prints the step the checkpoint was saved at and
the test accuracy, the same figure the training run printed. Which model the
checkpoint holds, the two-layer network, the CNN or part 4's deep CNN, is read
from the checkpoint itself unless `--model` says so. The deep CNN is rebuilt
with its run's block widths, activation and --tta_level (from `params.json`).
"""

import os
import time

# First, before TensorFlow: it keeps TensorFlow's start-up notes off the terminal
import tutorial_support.quiet_tensorflow  # noqa: F401

import numpy as np
import tensorflow.compat.v1 as tf
from absl import flags

import cnn_model
import data_helpers
import deep_cnn_input
import deep_cnn_model
import two_layer_fc
from tutorial_support import (
    batch_eval,
    checkpoints,
    cifar10_files,
    cli,
    confusion,
    entry_point,
    photos,
    run_dirs,
)
from tutorial_support.errors import UserError

# TensorFlow 1 graph mode, as in the training scripts: define, then run in a Session.
tf.disable_eager_execution()

# (The post defines them on tf.flags' global FLAGS; this script has its own,
# parsed in main(), so a typo or a bad value gets a clear message.)
FLAGS = flags.FlagValues()
flags.DEFINE_string('train_dir', 'tf_logs', 'Folder with the checkpoints to restore.',
                    flag_values=FLAGS)
flags.DEFINE_enum('model', 'auto', ['auto', 'fc', 'cnn', 'deep_cnn'],
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
flags.DEFINE_integer('tta_level', None, "Part 4's test-time views: 0 the image, 1 and its "
                     'mirror image, 2 and both shifted (default: the run\'s own).',
                     flag_values=FLAGS)
FLAG_RULES = dict(positive=('hidden1',), non_negative=('reg_constant', 'tta_level'),
                  at_most={'hidden1': cli.MOST_HIDDEN_UNITS, 'tta_level': 2})

TOP_CLASSES = 3


def build_graph(model, run_params):
    """Rebuilds the trained model's graph, as its runner built it.

    Args:
        model: 'fc', 'cnn' or 'deep_cnn'.
        run_params: the run's settings (its params.json); the deep CNN's
            width, batch norm and test-time flip come from there.

    Returns:
        (images_placeholder, labels_placeholder, logits, accuracy, description
        of the model for messages).
    """
    if model == 'fc':
        images_placeholder = tf.placeholder(tf.float32, shape=[None, data_helpers.IMAGE_PIXELS],
                                            name='images')
        labels_placeholder = tf.placeholder(tf.int64, shape=[None], name='image-labels')
        # reg_constant only adds the regularisation terms of the loss, which is
        # not evaluated here; the flag is kept for the original's command lines.
        logits = two_layer_fc.inference(images_placeholder, data_helpers.IMAGE_PIXELS,
                                        FLAGS.hidden1, data_helpers.NUM_CLASSES,
                                        reg_constant=FLAGS.reg_constant)
        accuracy = two_layer_fc.evaluation(logits, labels_placeholder)
        description = f'a two-layer network with hidden1={FLAGS.hidden1}'
    elif model == 'deep_cnn':
        images_placeholder, labels_placeholder = image_placeholders()
        network = deep_cnn_model.network_settings(run_params)
        # The test-time network (batch norm with its running statistics), with
        # the run's test-time augmentation
        accuracy, logits = deep_cnn_model.evaluation(
            images_placeholder, labels_placeholder,
            run_params.get('tta_level', 2) if FLAGS.tta_level is None else FLAGS.tta_level,
            **network)
        description = (f'{run_dirs.MODEL_NAMES[model]} with block widths '
                       f'{"/".join(map(str, network["widths"]))}')
    else:
        images_placeholder, labels_placeholder = image_placeholders()
        # No dropout when testing: rate 0 (the seeds then do not matter)
        logits = cnn_model.inference(images_placeholder, dropout_rate=0.0,
                                     dropout_seeds=tf.zeros([2, 2], tf.int64))
        accuracy = cnn_model.evaluation(logits, labels_placeholder)
        description = run_dirs.MODEL_NAMES['cnn']
    return images_placeholder, labels_placeholder, logits, accuracy, description


def image_placeholders():
    """The placeholders of the CNNs: 32 x 32 x 3 images and their labels."""
    images_placeholder = tf.placeholder(
        tf.float32, shape=[None, data_helpers.IMAGE_SIZE, data_helpers.IMAGE_SIZE,
                           data_helpers.CHANNELS], name='images')
    labels_placeholder = tf.placeholder(tf.int64, shape=[None], name='image-labels')
    return images_placeholder, labels_placeholder


def load_own_images(checkpoint, model):
    """Reads the --image files, prepared like the training images of the run.

    Returns:
        The images, mean-subtracted, in the layout the model takes.
    """
    images = np.stack([photos.load_image(path) for path in FLAGS.image])
    mean_path = os.path.join(run_dirs.run_dir_of(checkpoint), run_dirs.MEAN_IMAGE_FILE)
    if os.path.isfile(mean_path):
        mean_image = photos.read_mean_image(mean_path)
    else:  # a checkpoint from elsewhere: take the mean from the training data
        mean_image = data_helpers.load_data(FLAGS.data_dir)['mean_image']
    images = images - mean_image
    if model == 'deep_cnn':  # part 4 scales each colour as airbench94 does
        return deep_cnn_input.standardize(cifar10_files.to_nhwc(images), mean_image)
    return images if model == 'fc' else cifar10_files.to_nhwc(images)


def print_top_classes(probabilities):
    """Prints each file's three likeliest classes with their probabilities."""
    for path, image_probabilities in zip(FLAGS.image, probabilities, strict=True):
        print(f'{path}:')
        for index in np.argsort(-image_probabilities)[:TOP_CLASSES]:
            print(f'  {data_helpers.CLASSES[index]:6} {image_probabilities[index]:.4f}')


def main(argv):
    """Finds the newest checkpoint, restores it, tests or classifies.

    (The post runs at the top level of the script; entry_point.run_main at the
    bottom turns an error you can fix into a message instead of a traceback.)
    """
    begin_time = time.time()
    # The post then prints "Parameters:" and each flag, in capitals. Not here:
    # the model, its size and its data come from the checkpoint and the run's
    # params.json, so the flags' defaults would show values the run did not use.
    more_images = cli.parse_flags(FLAGS, argv, FLAG_RULES, allow_arguments=True)
    if more_images and not FLAGS.image:
        raise UserError(f'Unexpected argument {more_images[0]!r}: to classify images, pass '
                        '--image PATH [PATH ...].')
    FLAGS.image = (FLAGS.image or []) + more_images  # --image a.png b.png
    # The newest checkpoint, of the model --model asks for (any with auto). The
    # post reads tf.train.get_checkpoint_state(FLAGS.train_dir); here each run
    # keeps its checkpoints in a run folder of its own, searched for the newest.
    checkpoint, model = checkpoints.checkpoint_to_restore(FLAGS.train_dir, FLAGS.model)
    run_params = run_dirs.load_run_params(run_dirs.run_dir_of(checkpoint))
    if FLAGS.image:
        own_images = load_own_images(checkpoint, model)  # a bad file fails before restoring

    tf.reset_default_graph()  # a fresh graph each time main() runs
    (images_placeholder, labels_placeholder, logits, accuracy,
     description) = build_graph(model, run_params)
    # The step counter, restored too: it tells the step the checkpoint was saved at
    global_step = tf.Variable(0, name='global_step', trainable=False, dtype=tf.int64)
    saver = tf.train.Saver()

    with tf.Session() as sess:
        print('Restoring variables from checkpoint')
        with checkpoints.checked_restore(checkpoint, description):
            saver.restore(sess, checkpoint)
        print(f'Current step: {tf.train.global_step(sess, global_step)}')

        if FLAGS.image:
            print_top_classes(sess.run(tf.nn.softmax(logits),
                                       feed_dict={images_placeholder: own_images}))
        else:
            # The run's own data and split, so that the test images are centred
            # with the very mean image the model was trained with (the post
            # loads the default folder first thing, before building the graph)
            data = data_helpers.load_data(FLAGS.data_dir or run_params.get('data_dir'),
                                          run_params.get('validation_size', 0))
            if model != 'fc':
                data = data_helpers.reshape_data(data)
            if model == 'deep_cnn':  # part 4 scales each colour as airbench94 does
                deep_cnn_input.standardize(data['images_test'], data['mean_image'])
            # The post feeds all test images in one accuracy.eval; do_eval
            # (tutorial_support/batch_eval.py) runs, for each slice of 1,000,
            #     sess.run([accuracy, predictions], feed_dict={
            #         images_placeholder: images[start:start + 1000],
            #         labels_placeholder: labels[start:start + 1000]})
            # and weights each slice's accuracy by its size, so memory stays bounded
            test_accuracy, predicted = batch_eval.do_eval(
                sess, accuracy, tf.argmax(logits, 1), images_placeholder,
                labels_placeholder, (data['images_test'], data['labels_test']))
            print(f'Test accuracy {test_accuracy:g}')
            confusion.report_test_set(data, predicted)  # not in the post: what it mixes up

    end_time = time.time()
    print(f'Total time: {end_time - begin_time:5.2f}s')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
