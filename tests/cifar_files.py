"""Writes CIFAR-10 batch files byte for byte in the format of the real ones.

The official files are pickles made by Python 2: strings are Python 2 byte
strings (opcodes SHORT_BINSTRING and BINSTRING) and the image array is a numpy
array reduced through `numpy.core.multiarray._reconstruct`. A plain
`pickle.load` in Python 3 fails on them; `encoding='latin1'` reads them. The
helpers here emit the same opcodes, so the tests read what users read.
"""

import io
import os
import pickle
import struct
import tarfile

import numpy as np

LABEL_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer',
               'dog', 'frog', 'horse', 'ship', 'truck']
TEST_IMAGES = 100  # the test images of a data set write_dataset writes by default (cifar_dir)
BATCH_FILES = ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4',
               'data_batch_5', 'test_batch']


def _py2_str(text):
    """A Python 2 byte string: SHORT_BINSTRING or BINSTRING."""
    raw = text if isinstance(text, bytes) else text.encode('latin1')
    if len(raw) < 256:
        return b'U' + bytes([len(raw)]) + raw
    return b'T' + struct.pack('<i', len(raw)) + raw


def _int(value):
    if 0 <= value < 256:
        return b'K' + bytes([value])
    return b'J' + struct.pack('<i', value)


def _uint8_array(array):
    """A 2-D uint8 numpy array as Python 2 numpy pickled it."""
    rows, columns = array.shape
    return (b'cnumpy.core.multiarray\n_reconstruct\n' b'cnumpy\nndarray\n'
            + _int(0) + b'\x85' + _py2_str('b') + b'\x87R'
            + b'(' + _int(1) + _int(rows) + _int(columns) + b'\x86'
            + b'cnumpy\ndtype\n' + _py2_str('u1') + _int(0) + _int(1) + b'\x87R'
            + b'(' + _int(3) + _py2_str('|') + b'NNN' + _int(-1) + _int(-1) + _int(0)
            + b'tb' + b'\x89' + _py2_str(np.ascontiguousarray(array).tobytes())
            + b'tb')


def batch_bytes(pixels, labels, batch_label='training batch 1 of 5', filenames=None):
    """The bytes of one batch file: a dict of batch_label, labels, data, filenames."""
    filenames = filenames or [f'image_{i:05d}.png' for i in range(len(labels))]
    body = (_py2_str('batch_label') + _py2_str(batch_label)
            + _py2_str('labels') + b']('
            + b''.join(_int(int(label)) for label in labels) + b'e'
            + _py2_str('data') + _uint8_array(pixels)
            + _py2_str('filenames') + b']('
            + b''.join(_py2_str(name) for name in filenames) + b'e')
    return b'\x80\x02}(' + body + b'u.'


def meta_bytes():
    """The bytes of batches.meta."""
    return (b'\x80\x02}(' + _py2_str('num_cases_per_batch') + _int(10000)
            + _py2_str('label_names') + b'](' + b''.join(map(_py2_str, LABEL_NAMES))
            + b'e' + _py2_str('num_vis') + _int(3072) + b'u.')


def make_images(count, seed):
    """Images whose colours depend on the class, so that a model can learn them.

    Returns:
        (pixels uint8 [count, 3072], labels int list).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count)
    # Each class has its own mean colour per channel; noise on top.
    class_colours = np.random.default_rng(1234).integers(40, 216, (10, 3))
    base = np.repeat(class_colours[labels], 1024, axis=1)  # channel-major rows
    noise = rng.normal(0, 30, (count, 3072))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    return pixels, labels.tolist()


def write_dataset(folder, train_per_batch=100, test_count=TEST_IMAGES, seed=0):
    """Writes a small CIFAR-10 data set in the real file format into `folder`.

    Returns:
        folder.
    """
    os.makedirs(folder, exist_ok=True)
    for index in range(1, 6):
        pixels, labels = make_images(train_per_batch, seed + index)
        with open(os.path.join(folder, f'data_batch_{index}'), 'wb') as f:
            f.write(batch_bytes(pixels, labels, f'training batch {index} of 5'))
    pixels, labels = make_images(test_count, seed + 100)
    with open(os.path.join(folder, 'test_batch'), 'wb') as f:
        f.write(batch_bytes(pixels, labels, 'testing batch 1 of 1'))
    with open(os.path.join(folder, 'batches.meta'), 'wb') as f:
        f.write(meta_bytes())
    return folder


def write_archive(path, **dataset_args):
    """Writes cifar-10-python.tar.gz holding cifar-10-batches-py/ like the official one."""
    staging = path + '.src'
    write_dataset(os.path.join(staging, 'cifar-10-batches-py'), **dataset_args)
    with tarfile.open(path, 'w:gz') as tar:
        tar.add(os.path.join(staging, 'cifar-10-batches-py'), arcname='cifar-10-batches-py')
    return path


def plain_pickle_fails(path):
    """True when a plain `pickle.load` cannot read the file (as with the real ones)."""
    try:
        with open(path, 'rb') as f:
            pickle.load(f)
    except (UnicodeDecodeError, pickle.UnpicklingError):
        return True
    return False


def python3_pickle(obj):
    """A pickle written by Python 3, for damaged-file cases."""
    buffer = io.BytesIO()
    pickle.dump(obj, buffer, protocol=2)
    return buffer.getvalue()


class RunsCode:
    """Pickled, it asks the unpickler to call os.mkdir(folder): code from the file."""

    def __init__(self, folder):
        self.folder = folder

    def __reduce__(self):
        return os.mkdir, (self.folder,)


def write_hostile_test_batch(folder, marker):
    """Replaces `folder`'s test_batch by a good-looking one that would create `marker`."""
    pixels = make_images(10, seed=1)
    with open(os.path.join(folder, 'test_batch'), 'wb') as f:
        f.write(python3_pickle({'data': pixels, 'labels': [0] * 10,
                                'filenames': RunsCode(marker)}))
