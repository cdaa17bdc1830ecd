"""do_eval: a model's accuracy over a whole set, 1,000 images at a time.

(`predict_in_batches` does the same for the TF2 twins in `tf2/`, which have
no session: a function of the images gives their predicted classes.)

The posts evaluate the test set in one `sess.run`. Feeding a whole set at
once makes TensorFlow hold every activation of every image (for the CNN and
10,000 images, gigabytes); batches keep the memory bounded for any set size.
"""

import numpy as np

from tutorial_support import training_stops

EVAL_BATCH_SIZE = 1000


def do_eval(sess, accuracy, predictions, images_placeholder, labels_placeholder,
            data_set, batch_size=EVAL_BATCH_SIZE):
    """Runs the model's accuracy op over a whole set, one batch at a time.

    Each batch's accuracy times its size is its number of right answers; their
    sum over the set's size is the set's accuracy.

    Args:
        sess: the session.
        accuracy: the model's `evaluation()` op.
        predictions: the predicted class of each image in a batch.
        images_placeholder, labels_placeholder: where a batch is fed.
        data_set: (images, labels) of any length.
        batch_size: images per `sess.run`.

    Returns:
        (accuracy, predicted): the fraction of right answers over the set, and
        every image's predicted class (for the confusion matrix).
    """
    images, labels = data_set
    right_answers, predicted = 0, []
    for start in range(0, len(images), batch_size):
        training_stops.stop_if_signalled()  # a stop signal while training: stop between batches
        feed_dict = {images_placeholder: images[start:start + batch_size],
                     labels_placeholder: labels[start:start + batch_size]}
        batch_accuracy, batch_predicted = sess.run([accuracy, predictions],
                                                   feed_dict=feed_dict)
        right_answers += round(float(batch_accuracy) * len(batch_predicted))
        predicted.append(batch_predicted)
    if not predicted:
        return float('nan'), np.zeros(0, np.int64)
    return right_answers / len(images), np.concatenate(predicted)


def predict_in_batches(predict, data_set, batch_size=EVAL_BATCH_SIZE):
    """do_eval for TensorFlow 2: `predict(images)` gives the predicted class of each image.

    Returns:
        (accuracy, predicted), as `do_eval` returns them.
    """
    images, labels = data_set
    predicted = [np.asarray(predict(images[start:start + batch_size]))
                 for start in range(0, len(images), batch_size)]
    if not predicted:
        return float('nan'), np.zeros(0, np.int64)
    predicted = np.concatenate(predicted)
    return int(np.sum(predicted == labels)) / len(images), predicted
