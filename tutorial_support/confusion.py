"""What the model gets right and wrong: the confusion matrix, printed and drawn.

The blog posts end with one accuracy figure; the confusion matrix shows where
it comes from. Every training run and `restore_model.py` print it with each
class's accuracy, and the runners also put it into TensorBoard's Images tab
beside a grid of test images labelled with the truth and the guess.
"""

import numpy as np

from tutorial_support import pictures, summaries


def confusion_matrix(labels, predicted, num_classes):
    """Counts (true class, predicted class) pairs.

    Returns:
        int64 array [num_classes, num_classes]; row = true class, column = guess.
    """
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def per_class_accuracy(matrix):
    """The fraction of each true class that was recognised (the diagonal / row sums)."""
    totals = matrix.sum(axis=1)
    return np.divide(np.diag(matrix), totals, out=np.zeros(len(matrix)), where=totals > 0)


def print_class_report(labels, predicted, classes, set_name='test'):
    """Prints the confusion matrix with each class's accuracy beside its row."""
    matrix = confusion_matrix(labels, predicted, len(classes))
    accuracy = per_class_accuracy(matrix)
    width = max(5, len(str(matrix.max())))
    print(f'Confusion matrix on the {set_name} set (rows: true class, columns: predicted),'
          ' with per-class accuracy:')
    print('       ' + ''.join('{:>{w}}'.format(name, w=width + 1) for name in classes)
          + '  accuracy')
    for name, row, class_accuracy in zip(classes, matrix, accuracy, strict=True):
        print(f'{name:>6} ' + ''.join('{:>{w}d}'.format(n, w=width + 1) for n in row)
              + f'  {class_accuracy:8.4f}')


def report_test_set(data, predicted, writer=None, step=0, title='', probabilities=None):
    """Prints the test set's confusion matrix; with a writer, shows it in TensorBoard.

    Args:
        data: the dict from `data_helpers.load_data`.
        predicted: the predicted class of every test image.
        writer: the run's summary FileWriter, or None.
        step: the global step to file the images under.
        title: the picture's first line (the run folder's name, say).
        probabilities: float [N, classes], the model's probabilities for the
            first N test images, from which the predictions grid is drawn.
    """
    labels, classes = data['labels_test'], data['classes']
    print_class_report(labels, predicted, classes)
    if writer is None:
        return
    matrix = confusion_matrix(labels, predicted, len(classes))
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    drawn = {'confusion_matrix': pictures.confusion_matrix_picture(
        matrix, per_class_accuracy(matrix), classes, [title, f'test accuracy {accuracy:.4f}'])}
    if probabilities is not None:
        drawn['test_predictions'] = pictures.predictions_picture(
            data['images_test'], labels, probabilities, classes, data['mean_image'])
    summaries.write_pictures(writer, step, **drawn)
