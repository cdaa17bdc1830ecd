"""Reading the CIFAR-10 batch files: damaged ones, one that would run code, empty sets.

Every problem ends in one message naming the file and what is wrong with it,
never a traceback, and nothing in a file is ever run.
"""

import os
import shutil

import cifar_files
import numpy as np
import pytest
from script_runs import assert_user_error

import data_helpers
import softmax
from tutorial_support import cifar10_archive
from tutorial_support.errors import DataError


def _random_bytes(path):
    with open(path, 'wb') as f:
        f.write(np.random.default_rng(0).bytes(5000))


def _cut_short(path):
    os.truncate(path, os.path.getsize(path) // 2)


def _write(path, content):
    with open(path, 'wb') as f:
        f.write(content)


def _pixels_and_labels():
    return cifar_files.make_images(100, 1)


def _no_labels(path):
    pixels, _ = _pixels_and_labels()
    _write(path, cifar_files.python3_pickle({'batch_label': 'x', 'data': pixels}))


def _no_data(path):
    _, labels = _pixels_and_labels()
    _write(path, cifar_files.python3_pickle({'batch_label': 'x', 'labels': labels}))


def _wrong_columns(path):
    pixels, labels = _pixels_and_labels()
    _write(path, cifar_files.batch_bytes(pixels[:, :3000], labels))


def _bad_labels(path):
    pixels, labels = _pixels_and_labels()
    _write(path, cifar_files.batch_bytes(pixels, labels[:-1] + [12]))


def _count_mismatch(path):
    pixels, labels = _pixels_and_labels()
    _write(path, cifar_files.batch_bytes(pixels, labels[:-1]))


def _labels_in_a_column(path):
    pixels, labels = _pixels_and_labels()
    _write(path, cifar_files.python3_pickle({'data': pixels,
                                             'labels': [[label] for label in labels]}))


def _ragged_data(path):
    pixels, labels = _pixels_and_labels()
    rows = [row.tolist() for row in pixels[:2]]  # plain ints, as a list in a pickle holds
    _write(path, cifar_files.python3_pickle({'data': [rows[0], rows[1][:10]],
                                             'labels': labels[:2]}))


def _fifo(path):
    os.remove(path)
    os.mkfifo(path)  # opening it to read would wait forever


DAMAGES = {
    'missing-file': (os.remove, 'missing'),
    'a-fifo': (_fifo, 'is not a file'),
    'not-a-pickle': (_random_bytes, 'pickle'),
    'cut-short': (_cut_short, 'pickle'),
    'no-labels': (_no_labels, "'labels'"),
    'no-data': (_no_data, "'data'"),
    'wrong-columns': (_wrong_columns, '3072'),
    'labels-out-of-range': (_bad_labels, '0-9'),
    'count-mismatch': (_count_mismatch, '99 labels'),
    # one message, not "100 images but 100 labels"
    'labels-wrong-shape': (_labels_in_a_column, 'has labels of shape (100, 1), expected a '
                                                'list of 100 labels'),
    'ragged-data': (_ragged_data, 'not a regular table'),
}


@pytest.fixture
def damaged_copy(cifar_dir, tmp_path):
    """A private copy of the small data set, to be damaged by a test."""
    return shutil.copytree(cifar_dir, tmp_path / cifar10_archive.DATA_FOLDER)


@pytest.mark.parametrize('damage', DAMAGES, ids=list(DAMAGES))
def test_damaged_batch_file_is_named_with_its_problem(damaged_copy, damage):
    """load_data raises a DataError naming the damaged file and what is wrong with it."""
    damage_file, problem = DAMAGES[damage]
    path = os.path.join(damaged_copy, 'data_batch_3')
    damage_file(path)
    with pytest.raises(DataError) as error:
        data_helpers.load_data(str(damaged_copy))
    message = str(error.value)
    assert path in message
    assert problem in message


def test_script_reports_damaged_file_without_traceback(damaged_copy, run):
    """A script given a damaged file exits 1 with 'Error:' naming the file, no traceback."""
    _random_bytes(os.path.join(damaged_copy, 'test_batch'))
    code, _, err = run(softmax, '--data_dir', str(damaged_copy))
    assert code == 1
    assert 'Error:' in err
    assert 'test_batch' in err
    assert 'Traceback' not in err


def test_a_batch_file_that_would_run_code_is_refused_unrun(damaged_copy, tmp_path, run):
    """A test_batch whose pickle calls a function: refused, named, and the function never ran."""
    marker = str(tmp_path / 'the-file-ran-code')
    path = os.path.join(damaged_copy, 'test_batch')
    cifar_files.write_hostile_test_batch(str(damaged_copy), marker)
    with pytest.raises(DataError) as error:
        data_helpers.load_data(str(damaged_copy))
    assert path in str(error.value) and 'mkdir' in str(error.value)
    code, out, err = run(softmax, '--data_dir', str(damaged_copy))
    assert code == 1 and 'Traceback' not in err
    assert path in err and 'nothing of it was run' in err
    assert 'Step' not in out
    assert not os.path.exists(marker)


def test_a_folder_without_batch_files_is_not_called_damaged(tmp_path):
    """A --data_dir that holds other things: point at the right folder, never delete it."""
    (tmp_path / 'notes.txt').write_text('mine\n')
    with pytest.raises(DataError) as error:
        data_helpers.load_data(str(tmp_path))
    message = str(error.value)
    assert 'data_batch_1' in message and '--data_dir' in message
    assert 'delete' not in message
    assert (tmp_path / 'notes.txt').read_text() == 'mine\n'


@pytest.mark.parametrize('empty', ['test', 'training'])
def test_a_data_set_without_test_or_training_images(run, tmp_path, empty):
    """No test images (or no training images): a clear error, never 'Test accuracy nan'."""
    sizes = {'test_count': 0} if empty == 'test' else {'train_per_batch': 0}
    data_dir = cifar_files.write_dataset(str(tmp_path / 'data'), **sizes)
    code, out, err = run(softmax, '--data_dir', data_dir, '--batch_size', '10')
    assert_user_error(code, err, data_dir, 'hold no images')
    assert 'Test accuracy' not in out
