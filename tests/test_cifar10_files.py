"""Reading the CIFAR-10 batch files: damaged ones, one that would run code, empty sets.

Every problem ends in one message naming the file and what is wrong with it,
never a traceback, and nothing in a file is ever run.
"""

import importlib
import io
import os
import pickle
import shutil
import warnings

import cifar_files
import numpy as np
import pytest
from script_runs import assert_user_error

import data_helpers
import softmax
from tutorial_support import cifar10_archive, cifar10_download, cifar10_files
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


def _not_a_dict(path):
    _write(path, cifar_files.python3_pickle([1, 2, 3]))


def _float_pixels(path):
    pixels, labels = _pixels_and_labels()
    _write(path, cifar_files.python3_pickle({'data': pixels.astype(np.float32),
                                             'labels': labels}))


def _float_labels(path):
    pixels, labels = _pixels_and_labels()
    _write(path, cifar_files.python3_pickle({'data': pixels, 'labels': [0.5] * len(labels)}))


def _label_ten(path):
    pixels, labels = _pixels_and_labels()
    _write(path, cifar_files.batch_bytes(pixels, labels[:-1] + [10]))


# What is wrong with a damaged data_batch_3: the message names it, says this, and
# then what to do; a problem ending in '(' goes on with the reader's own words.
DAMAGES = {
    'a-fifo': (_fifo, 'is not a file (a folder, a device or a special file)'),
    'not-a-pickle': (_random_bytes, 'is not a CIFAR-10 batch file: it cannot be read as a '
                                    'pickle ('),
    'cut-short': (_cut_short, 'is not a CIFAR-10 batch file: it cannot be read as a pickle ('),
    'not-a-dict': (_not_a_dict, 'holds a list, not the dict of a CIFAR-10 batch'),
    'no-labels': (_no_labels, "has no 'labels' entry (it has: batch_label, data)"),
    'no-data': (_no_data, "has no 'data' entry (it has: batch_label, labels)"),
    'wrong-columns': (_wrong_columns, 'has image data of shape (100, 3000), expected N x 3072 '
                                      '(one 32x32x3 image a row)'),
    'float-pixels': (_float_pixels, 'has image data of type float32, expected uint8 pixels'),
    'labels-out-of-range': (_bad_labels, 'has labels outside 0-9 (for example 12)'),
    'label-ten': (_label_ten, 'has labels outside 0-9 (for example 10)'),
    'float-labels': (_float_labels, 'has labels of type float64, expected integers 0-9'),
    # one message, not "100 images but 100 labels"
    'count-mismatch': (_count_mismatch, 'has 100 images but 99 labels'),
    'labels-wrong-shape': (_labels_in_a_column, 'has labels of shape (100, 1), expected a '
                                                'list of 100 labels, one a row of image data'),
    'ragged-data': (_ragged_data, 'has image data or labels that are not a regular table ('),
}


@pytest.fixture
def damaged_copy(cifar_dir, tmp_path):
    """A private copy of the small data set, to be damaged by a test."""
    return shutil.copytree(cifar_dir, tmp_path / cifar10_archive.DATA_FOLDER)


@pytest.mark.parametrize('damage', DAMAGES, ids=list(DAMAGES))
def test_damaged_batch_file_is_named_with_its_problem(damaged_copy, damage):
    """load_data raises a DataError: the file, what is wrong with it, and the remedy.

    The data set is not the default folder, which the scripts fill themselves:
    the remedy is to replace it, never to delete it.
    """
    damage_file, problem = DAMAGES[damage]
    path = os.path.join(damaged_copy, 'data_batch_3')
    damage_file(path)
    with pytest.raises(DataError) as error:
        data_helpers.load_data(str(damaged_copy))
    message = str(error.value)
    remedy = (f'The data set looks damaged: replace {damaged_copy} with a good copy of '
              'CIFAR-10 (python version).')
    if problem.endswith('('):
        assert message.startswith(f'{path} {problem}') and message.endswith(f'). {remedy}')
    else:
        assert message == f'{path} {problem}. {remedy}'


def test_a_missing_batch_file(damaged_copy):
    """A folder without one of the files: named, with the files --data_dir must hold."""
    path = os.path.join(damaged_copy, 'data_batch_3')
    os.remove(path)
    with pytest.raises(DataError) as error:
        data_helpers.load_data(str(damaged_copy))
    assert str(error.value) == (
        f'{path} is missing: {damaged_copy} does not hold the CIFAR-10 batch files. Point '
        '--data_dir at the folder that holds data_batch_1 ... data_batch_5 and test_batch.')


def test_a_damaged_default_folder_is_to_be_fetched_again(damaged_copy, monkeypatch):
    """In the folder the scripts fill themselves, the remedy is to delete it and run again."""
    monkeypatch.setattr(cifar10_download, 'DEFAULT_DATA_DIR', str(damaged_copy))
    _random_bytes(os.path.join(damaged_copy, 'data_batch_3'))
    with pytest.raises(DataError) as error:
        data_helpers.load_data(str(damaged_copy))
    assert str(error.value).endswith(f'The data set looks damaged: delete the folder '
                                     f'{damaged_copy} and run again to fetch a fresh copy.')


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
    files = 'test_batch' if empty == 'test' else \
        'data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5'
    assert_user_error(code, err, f'Error: {files} in {data_dir} hold no images: there is '
                      'nothing to '
                      'train or test on. Point --data_dir at a complete copy of CIFAR-10.')
    assert 'Test accuracy' not in out


# What a CIFAR-10 batch needs rebuilt, and nothing else: numpy's array
# reconstructor as NumPy 1 and NumPy 2 name it, the array and dtype classes,
# and the function Python 3 rebuilds bytes with.
ALLOWED = {('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
           ('numpy', 'ndarray'), ('numpy', 'dtype'), ('_codecs', 'encode')}


def _calling(module, name, *args):
    """A pickle whose only object is the result of calling module.name(*args)."""
    arguments = pickle.dumps(args, protocol=2)[2:-1]  # the tuple, without PROTO and STOP
    return b'\x80\x02c' + f'{module}\n{name}\n'.encode() + arguments + b'R.'


@pytest.mark.parametrize('module, name', [
    ('numpy', 'save'),                        # writes a file
    ('numpy', 'load'),                        # reads one, pickles in it too
    ('numpy', 'fromfile'),
    ('numpy', 'ndarray.tofile'),              # a method of an allowed class
    ('numpy.core.multiarray', 'fromfile'),    # not the reconstructor
    ('numpy._core.multiarray', 'scalar'),
    ('_codecs', 'decode'),
])
def test_allowed_modules_forbidden_names_are_refused_unrun(tmp_path, module, name):
    """A batch that asks for another name of an allowed module: refused, named, nothing run."""
    target = tmp_path / 'written-by-the-file'
    path = tmp_path / 'data_batch_1'
    path.write_bytes(_calling(module, name, str(target), [1, 2, 3]))
    with pytest.raises(DataError) as error:
        cifar10_files.read_batch(str(path))
    assert f'{path} is not a CIFAR-10 batch file: it cannot be read as a pickle ' \
           f'(UnpicklingError: it asks to run {module}.{name}, which no CIFAR-10 batch does ' \
           '(nothing of it was run))' in str(error.value)
    assert sorted(os.listdir(tmp_path)) == ['data_batch_1']


def test_the_allow_list_is_exactly_what_a_batch_needs():
    """Of every name in the allowed modules, only the five a batch needs are let through."""
    unpickler = cifar10_files.BatchUnpickler(io.BytesIO(b''))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # numpy.core, as NumPy 1 named it
        modules = {module: importlib.import_module(module) for module, _ in ALLOWED}
    let_through = set()
    for module_name, module in modules.items():
        for name in dir(module):
            try:
                found = unpickler.find_class(module_name, name)
            except pickle.UnpicklingError:
                continue
            assert found is getattr(module, name)
            let_through.add((module_name, name))
    assert let_through == ALLOWED
