"""What the runs report: confusion matrix, TensorBoard images, own photos, seeds, validation.

The numbers a user reads must agree with each other: per-class accuracies with
the overall one, the same seed with the same lines, the held-out images with
the progress lines, and the test set used once at the end.
"""

import glob
import io
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image
from script_runs import run_captured

import data_helpers
import restore_model
import run_cnn_model
import run_fc_model
import softmax
from tutorial_support import batch_eval

TEST_IMAGES = 100  # in cifar_dir
CLASS_ROW = re.compile(r' *(\w+)((?: +\d+){10}) +(\d\.\d{4})$')


def lines_starting(out, *prefixes):
    """The printed lines that start with one of the prefixes."""
    return [line for line in out.splitlines() if line.startswith(prefixes)]


@pytest.fixture(scope='module')
def fc_run(cifar_dir, tmp_path_factory):
    """A short run_fc_model run that does not get every test image right."""
    train_dir = str(tmp_path_factory.mktemp('fc'))
    code, out, err = run_captured(
        run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir, '--max_steps', '100',
        '--batch_size', '50', '--learning_rate', '0.00001', '--seed', '0')
    assert code == 0, err
    (folder,) = glob.glob(os.path.join(train_dir, '*', ''))
    return train_dir, folder, out


# ---------------------------------------------------------------------------
# Confusion matrix and TensorBoard images
# ---------------------------------------------------------------------------

def test_per_class_accuracies_agree_with_test_accuracy(fc_run):
    """Diagonal / total is the test accuracy; each row's accuracy is diagonal / row sum."""
    _, _, out = fc_run
    lines = out.splitlines()
    (test_line,) = [i for i, line in enumerate(lines) if line.startswith('Test accuracy ')]
    test_accuracy = float(lines[test_line].split()[-1])
    header = test_line + 1
    assert lines[header].startswith('Confusion matrix on the test set')
    assert lines[header + 1].split() == list(data_helpers.CLASSES) + ['accuracy']
    rows = [CLASS_ROW.match(line) for line in lines[header + 2:header + 12]]
    assert all(rows), lines[header + 2:header + 12]
    assert [row.group(1) for row in rows] == list(data_helpers.CLASSES)
    matrix = np.array([[int(n) for n in row.group(2).split()] for row in rows])
    printed = np.array([float(row.group(3)) for row in rows])

    assert matrix.sum() == TEST_IMAGES
    assert np.trace(matrix) / matrix.sum() == pytest.approx(test_accuracy, abs=1e-6)
    assert 0 < test_accuracy < 1  # errors off the diagonal make the check meaningful
    sums = matrix.sum(axis=1)
    expected = np.divide(np.diag(matrix), sums, out=np.zeros(10), where=sums > 0)
    np.testing.assert_allclose(printed, expected, atol=5e-5)


def test_confusion_matrix_and_predictions_in_tensorboard(fc_run):
    """The event file holds PNG images 'confusion_matrix' and 'test_predictions'."""
    _, folder, _ = fc_run
    images = {}
    for path in glob.glob(os.path.join(folder, 'events.out.tfevents.*')):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                if value.WhichOneof('value') == 'image':
                    images[value.tag] = value.image
    assert {'confusion_matrix', 'test_predictions'} <= set(images)
    for tag in ('confusion_matrix', 'test_predictions'):
        image = images[tag]
        assert image.height > 0 and image.width > 0
        assert image.width <= 360  # the Images tab shows it at its real size: readable
        with Image.open(io.BytesIO(image.encoded_image_string)) as picture:
            assert picture.format == 'PNG'
            assert picture.size == (image.width, image.height)
            picture.load()


# ---------------------------------------------------------------------------
# Own photos
# ---------------------------------------------------------------------------

def parse_top3(out, paths):
    """{path: [(class, probability), ...]} from restore_model --image output."""
    lines = out.splitlines()
    result = {}
    for path in paths:
        start = lines.index(f'{path}:') + 1
        result[path] = [(name, float(value)) for name, value in
                        (line.split() for line in lines[start:start + 3])]
    return result


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """A 45 x 77 PNG and a 300 x 17 JPEG."""
    folder = tmp_path_factory.mktemp('photos')
    rng = np.random.default_rng(7)
    png = str(folder / 'a.png')
    jpeg = str(folder / 'b.jpg')
    Image.fromarray(rng.integers(0, 256, (77, 45, 3), dtype=np.uint8)).save(png)
    Image.fromarray(rng.integers(0, 256, (17, 300, 3), dtype=np.uint8)).save(jpeg, 'JPEG')
    return png, jpeg


@pytest.mark.parametrize('how', ['repeated flag', 'paths after one flag'])
def test_restore_classifies_own_photos(run, fc_run, photos, how):
    """For each file: its path, then three 'class probability' lines, best first."""
    train_dir, _, _ = fc_run
    png, jpeg = photos
    args = (['--image', png, '--image', jpeg] if how == 'repeated flag'
            else ['--image', png, jpeg])
    code, out, err = run(restore_model, '--train_dir', train_dir, *args)
    assert code == 0, err
    assert 'Test accuracy' not in out
    top3 = parse_top3(out, [png, jpeg])
    lines = out.splitlines()
    assert lines.index(f'{png}:') < lines.index(f'{jpeg}:')
    for path, guesses in top3.items():
        names = [name for name, _ in guesses]
        probabilities = [probability for _, probability in guesses]
        assert set(names) <= set(data_helpers.CLASSES) and len(set(names)) == 3, path
        assert probabilities == sorted(probabilities, reverse=True), path
        assert all(0 <= p <= 1 for p in probabilities)
        assert sum(probabilities) <= 1 + 3 * 5e-5  # printed to 4 decimals
    assert top3[png] != top3[jpeg]


# ---------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------

def test_fc_same_seed_same_lines(run, cifar_dir, tmp_path):
    """Two run_fc_model runs with --seed 5 print the same Step and Test accuracy lines."""
    printed = []
    for name in ('first', 'second'):
        code, out, err = run(run_fc_model, '--data_dir', cifar_dir,
                             '--train_dir', str(tmp_path / name), '--max_steps', '200',
                             '--batch_size', '50', '--learning_rate', '0.00001', '--seed', '5')
        assert code == 0, err
        printed.append(lines_starting(out, 'Step', 'Test accuracy'))
    assert len(printed[0]) == 3
    assert printed[0] == printed[1]


def test_cnn_same_seed_same_lines(run, cifar_dir, tmp_path):
    """Two short CNN runs with --seed 5: the same Cost and accuracy lines."""
    printed = []
    for name in ('first', 'second'):
        code, out, err = run(run_cnn_model, '--data_dir', cifar_dir,
                             '--train_dir', str(tmp_path / name), '--epochs', '2',
                             '--batch_size', '50', '--seed', '5')
        assert code == 0, err
        printed.append(lines_starting(out, 'Cost after epoch', 'Train Accuracy',
                                      'Test Accuracy'))
    assert len(printed[0]) == 3
    assert printed[0] == printed[1]


def test_softmax_same_seed_same_lines(run, cifar_dir):
    """softmax twice with --seed 5: the same Step and Test accuracy lines."""
    printed = []
    for _ in range(2):
        code, out, err = run(softmax, '--data_dir', cifar_dir, '--max_steps', '300',
                             '--batch_size', '20', '--learning_rate', '1e-8',
                             '--seed', '5')
        assert code == 0, err
        printed.append(lines_starting(out, 'Step', 'Test accuracy'))
    assert len(printed[0]) == 4
    assert printed[0] == printed[1]


# ---------------------------------------------------------------------------
# --validation_size: held-out images while training, the test set once
# ---------------------------------------------------------------------------

@pytest.fixture
def evaluated(monkeypatch):
    """Records the image arrays that batch_eval.do_eval evaluates, in order."""
    calls = []
    real_do_eval = batch_eval.do_eval

    def recording_do_eval(sess, accuracy, predictions, images_placeholder,
                          labels_placeholder, data_set, *args, **kwargs):
        calls.append(np.array(data_set[0], copy=True))
        return real_do_eval(sess, accuracy, predictions, images_placeholder,
                            labels_placeholder, data_set, *args, **kwargs)

    monkeypatch.setattr(batch_eval, 'do_eval', recording_do_eval)
    return calls


def held_out_images(cifar_dir, size):
    """The validation and test images load_data gives with --validation_size size."""
    data = data_helpers.load_data(cifar_dir, size)
    return data['images_validation'], data['images_test']


def test_fc_validation_size(run, cifar_dir, tmp_path, evaluated):
    """Step lines report validation accuracy on the 50 held-out images; test set once."""
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir,
                         '--train_dir', str(tmp_path / 'logs'), '--max_steps', '300',
                         '--batch_size', '50', '--learning_rate', '0.00001', '--seed', '1',
                         '--validation_size', '50')
    assert code == 0, err
    steps = lines_starting(out, 'Step')
    assert len(steps) == 3
    for line in steps:
        assert re.fullmatch(r'Step \d+, training accuracy \S+, validation accuracy \S+', line)
    validation, test = held_out_images(cifar_dir, 50)
    assert [len(images) for images in evaluated] == [50, 50, 50, TEST_IMAGES]
    for images in evaluated[:-1]:
        np.testing.assert_array_equal(images, validation)
    np.testing.assert_array_equal(evaluated[-1], test)
    (test_line,) = lines_starting(out, 'Test accuracy')
    assert out.splitlines().index(test_line) > out.splitlines().index(steps[-1])


def test_cnn_validation_size(run, cifar_dir, tmp_path, evaluated):
    """The Cost line's validation accuracy uses the 50 held-out images; test set once."""
    code, out, err = run(run_cnn_model, '--data_dir', cifar_dir,
                         '--train_dir', str(tmp_path / 'logs'), '--epochs', '2',
                         '--batch_size', '50', '--seed', '1', '--validation_size', '50')
    assert code == 0, err
    assert len(lines_starting(out, 'Cost after epoch')) == 1
    validation, test = held_out_images(cifar_dir, 50)
    sizes = [len(images) for images in evaluated]
    # Epoch 0: training set, then the held-out images; at the end: training, test, and the
    # held-out images once more for TensorBoard's final validation accuracy.
    assert sizes == [450, 50, 450, TEST_IMAGES, 50]
    np.testing.assert_array_equal(evaluated[4], data_helpers.to_nhwc(validation))
    np.testing.assert_array_equal(evaluated[1], data_helpers.to_nhwc(validation))
    np.testing.assert_array_equal(evaluated[3], data_helpers.to_nhwc(test))
    assert sum(size == TEST_IMAGES for size in sizes) == 1
