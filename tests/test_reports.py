"""What the runs report: the confusion matrix, printed and in TensorBoard.

The numbers a user reads must agree with each other: the per-class
accuracies with the overall one, the matrix with the number of test images.
"""

import glob
import io
import os
import re

import cifar_files
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image
from run_folders import run_folder

import data_helpers
import softmax

CLASS_ROW = re.compile(r' *(\w+)((?: +\d+){10}) +(\d\.\d{4})$')


def test_per_class_accuracies_agree_with_test_accuracy(short_fc_run):
    """Diagonal / total is the test accuracy; each row's accuracy is diagonal / row sum."""
    _, _, out = short_fc_run
    check_confusion_matrix(out)


def test_cnn_confusion_matrix_agrees_with_its_test_accuracy(cnn_run):
    """Part 3 prints the same report after its 'Test Accuracy:' line."""
    check_confusion_matrix(cnn_run[1])


def test_softmax_confusion_matrix_agrees_with_its_test_accuracy(run, cifar_dir):
    """Part 1 prints the same report, of its own predictions."""
    code, out, err = run(softmax, '--data_dir', cifar_dir, '--max_steps', '3',
                         '--batch_size', '10', '--seed', '1')  # short: some images wrong
    assert code == 0, err
    check_confusion_matrix(out)


def check_confusion_matrix(out):
    """The confusion matrix printed after the test accuracy agrees with it, row by row."""
    lines = out.splitlines()
    (test_line,) = [i for i, line in enumerate(lines)
                    if line.startswith(('Test accuracy ', 'Test Accuracy: '))]
    test_accuracy = float(lines[test_line].split()[-1])
    header = test_line + 1
    assert lines[header].startswith('Confusion matrix on the test set')
    assert lines[header + 1].split() == list(data_helpers.CLASSES) + ['accuracy']
    rows = [CLASS_ROW.match(line) for line in lines[header + 2:header + 12]]
    assert all(rows), lines[header + 2:header + 12]
    assert [row.group(1) for row in rows] == list(data_helpers.CLASSES)
    matrix = np.array([[int(n) for n in row.group(2).split()] for row in rows])
    printed = np.array([float(row.group(3)) for row in rows])

    assert matrix.sum() == cifar_files.TEST_IMAGES
    assert np.trace(matrix) / matrix.sum() == pytest.approx(test_accuracy, abs=1e-6)
    assert 0 < test_accuracy < 1  # errors off the diagonal make the check meaningful
    sums = matrix.sum(axis=1)
    expected = np.divide(np.diag(matrix), sums, out=np.zeros(10), where=sums > 0)
    np.testing.assert_allclose(printed, expected, atol=5e-5)


@pytest.mark.parametrize('trained, last_step, more_pictures', [
    ('short_fc_run', 100, ['layer1_weights']), ('cnn_run', 20, ['conv1_filters'])])
def test_confusion_matrix_and_predictions_in_tensorboard(trained, last_step, more_pictures,
                                                         request):
    """The event file holds PNG images 'confusion_matrix' and 'test_predictions' (and the
    first layer's weights), at the run's last step, where its test accuracy is."""
    folder = run_folder(request.getfixturevalue(trained)[0])
    images, steps = {}, {}
    for path in glob.glob(os.path.join(folder, 'events.out.tfevents.*')):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                if value.WhichOneof('value') == 'image':
                    images[value.tag] = value.image
                    steps.setdefault(value.tag, []).append(event.step)
    pictures = ['confusion_matrix', 'test_predictions', *more_pictures]
    assert {tag: steps.get(tag) for tag in pictures} == {tag: [last_step] for tag in pictures}
    for tag in ('confusion_matrix', 'test_predictions'):
        image = images[tag]
        assert image.height > 0 and image.width > 0
        assert image.width <= 360  # the Images tab shows it at its real size: readable
        with Image.open(io.BytesIO(image.encoded_image_string)) as picture:
            assert picture.format == 'PNG'
            assert picture.size == (image.width, image.height)
            picture.load()
