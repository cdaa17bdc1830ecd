"""The same seed gives the same lines; --validation_size holds images out, the test set once.

The progress lines report on the held-out images, and the test set is
evaluated once, at the end.
"""

import os
import re

import cifar_files
import numpy as np
import pytest
from event_files import scalars
from run_folders import run_folder

import data_helpers
import run_cnn_model
import run_fc_model
import softmax
from tutorial_support import batch_eval, cifar10_files


def lines_starting(out, *prefixes):
    """The printed lines that start with one of the prefixes."""
    return [line for line in out.splitlines() if line.startswith(prefixes)]


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

class Evaluations(list):
    """The image arrays do_eval evaluated, in order; `accuracies`: the accuracy of each."""

    def __init__(self):
        super().__init__()
        self.accuracies = []


@pytest.fixture
def evaluated(monkeypatch):
    """Records the image arrays that batch_eval.do_eval evaluates, in order."""
    calls = Evaluations()
    real_do_eval = batch_eval.do_eval

    def recording_do_eval(sess, accuracy, predictions, images_placeholder,
                          labels_placeholder, data_set, *args, **kwargs):
        calls.append(np.array(data_set[0], copy=True))
        result = real_do_eval(sess, accuracy, predictions, images_placeholder,
                              labels_placeholder, data_set, *args, **kwargs)
        calls.accuracies.append(result[0])
        return result

    monkeypatch.setattr(batch_eval, 'do_eval', recording_do_eval)
    return calls


def held_out_images(cifar_dir, size):
    """The validation and test images load_data gives with --validation_size size."""
    data = data_helpers.load_data(cifar_dir, size)
    return data['images_validation'], data['images_test']


def test_fc_validation_size(run, cifar_dir, tmp_path, evaluated):
    """Step lines report validation accuracy on the 50 held-out images; test set once.

    TensorBoard's validation/ 'accuracy' holds the printed validation accuracies.
    """
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir,
                         '--train_dir', train_dir, '--max_steps', '300',
                         '--batch_size', '50', '--learning_rate', '0.00001', '--seed', '1',
                         '--validation_size', '50')
    assert code == 0, err
    steps = lines_starting(out, 'Step')
    assert len(steps) == 3
    printed = []
    for line in steps:
        step, accuracy = re.fullmatch(r'Step (\d+), training accuracy \S+, validation accuracy '
                                      r'(\S+)', line).groups()
        printed.append((int(step), float(accuracy)))
    logged = scalars(os.path.join(run_folder(train_dir), 'validation'), 'accuracy')
    assert [(step, f'{value:g}') for step, value in logged] == \
        [(step, f'{value:g}') for step, value in printed]
    validation, test = held_out_images(cifar_dir, 50)
    assert [len(images) for images in evaluated] == [50, 50, 50, cifar_files.TEST_IMAGES]
    for images in evaluated[:-1]:
        np.testing.assert_array_equal(images, validation)
    np.testing.assert_array_equal(evaluated[-1], test)
    (test_line,) = lines_starting(out, 'Test accuracy')
    assert out.splitlines().index(test_line) > out.splitlines().index(steps[-1])


def test_cnn_validation_size(run, cifar_dir, tmp_path, evaluated):
    """The Cost line's validation accuracy uses the 50 held-out images; test set once.

    TensorBoard's validation/ 'accuracy': the printed one after epoch 0 (step 9),
    and the held-out images' at the end (step 18), not the test set's.
    """
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_cnn_model, '--data_dir', cifar_dir,
                         '--train_dir', train_dir, '--epochs', '2',
                         '--batch_size', '50', '--seed', '1', '--validation_size', '50')
    assert code == 0, err
    assert len(lines_starting(out, 'Cost after epoch')) == 1
    validation, test = held_out_images(cifar_dir, 50)
    sizes = [len(images) for images in evaluated]
    # Epoch 0: training set, then the held-out images; at the end: training, test, and the
    # held-out images once more for TensorBoard's final validation accuracy.
    assert sizes == [450, 50, 450, cifar_files.TEST_IMAGES, 50]
    np.testing.assert_array_equal(evaluated[4], cifar10_files.to_nhwc(validation))
    np.testing.assert_array_equal(evaluated[1], cifar10_files.to_nhwc(validation))
    np.testing.assert_array_equal(evaluated[3], cifar10_files.to_nhwc(test))
    assert sum(size == cifar_files.TEST_IMAGES for size in sizes) == 1
    printed = float(re.search(r'validation accuracy: (\S+)$', out, re.MULTILINE).group(1))
    logged = scalars(os.path.join(run_folder(train_dir), 'validation'), 'accuracy')
    assert [step for step, _ in logged] == [9, 18]
    assert logged[0][1] == pytest.approx(printed, abs=1e-6)
    assert logged[1][1] == pytest.approx(evaluated.accuracies[4], abs=1e-6)
