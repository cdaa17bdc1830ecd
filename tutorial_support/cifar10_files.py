"""Reading a CIFAR-10 batch file without running any code from it.

The batch files are Python 2 pickles. A pickle names the functions that
rebuild its objects, and `pickle.load`, which the posts use, calls whatever a
file names (`os.system`, say): a data folder handed over by someone else
could run anything. The reader here admits only what real batches hold, and
checks the arrays it gets, so a damaged file is named with its problem.
"""

import os
import pickle

import numpy as np

from tutorial_support import cifar10_download
from tutorial_support.errors import DataError

# The files' layout: one image a row of 3,072 values, the 1,024 red values
# first, then green, then blue, each row by row of 32 pixels; 10 classes.
IMAGE_SIZE = 32
CHANNELS = 3
IMAGE_VALUES = IMAGE_SIZE * IMAGE_SIZE * CHANNELS
NUM_CLASSES = 10


class BatchUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR-10 batch holds, and nothing that can run code.

    The batches hold dicts, lists, strings, numbers and one numpy array, which
    need numpy's array rebuilding (and, in a file written by Python 3, the
    function that turns text into bytes): any other name is refused before
    anything is called.
    """

    ALLOWED = {('numpy.core.multiarray', '_reconstruct'),   # as NumPy 1 wrote it
               ('numpy._core.multiarray', '_reconstruct'),  # as NumPy 2 writes it
               ('numpy', 'ndarray'), ('numpy', 'dtype'),
               ('_codecs', 'encode')}  # Python 3 rebuilds bytes with it: text to bytes

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'it asks to run {module}.{name}, which no CIFAR-10 batch does (nothing of it '
            'was run)')


def read_batch(path):
    """Reads one CIFAR-10 batch file.

    The files are Python 2 pickles: their byte strings only load with an
    explicit `encoding`. With 'bytes' the pixel data goes straight into the
    numpy array (with 'latin1' it would make a detour through a text string).

    Args:
        path: the batch file.

    Returns:
        (pixels, labels): uint8 array N x 3072 and int64 array N.

    Raises:
        DataError: naming the file and what is wrong with it.
    """
    folder = os.path.dirname(path)

    def fail(problem):
        # Only a folder the scripts downloaded themselves is theirs to replace.
        if cifar10_download.is_default_data_dir(folder):
            remedy = f'delete the folder {folder} and run again to fetch a fresh copy'
        else:
            remedy = f'replace {folder} with a good copy of CIFAR-10 (python version)'
        raise DataError(f'{path} {problem}. The data set looks damaged: {remedy}.')

    if os.path.lexists(path) and not os.path.isfile(path):
        fail('is not a file (a folder, a device or a special file)')
    if not os.path.isfile(path):
        raise DataError(
            f'{path} is missing: {folder} does not hold the CIFAR-10 batch files. Point '
            '--data_dir at the folder that holds data_batch_1 ... data_batch_5 and '
            'test_batch.')
    try:
        with open(path, 'rb') as f:
            batch = BatchUnpickler(f, encoding='bytes').load()
    except Exception as error:  # noqa: BLE001 (unpickling garbage raises nearly anything)
        fail('is not a CIFAR-10 batch file: it cannot be read as a pickle '
             f'({type(error).__name__}: {error})')
    if not isinstance(batch, dict):
        fail(f'holds a {type(batch).__name__}, not the dict of a CIFAR-10 batch')
    # Python 2 strings arrive as bytes, the keys too.
    batch = {k.decode('latin1') if isinstance(k, bytes) else k: v for k, v in batch.items()}
    for key in ('data', 'labels'):
        if key not in batch:
            fail("has no '{}' entry (it has: {})".format(key, ', '.join(map(str, batch))))

    try:
        pixels = np.asarray(batch['data'])
        labels = np.asarray(batch['labels'])
    except ValueError as error:  # rows or labels of uneven lengths
        fail(f'has image data or labels that are not a regular table ({error})')
    if labels.size == 0:
        labels = labels.astype(np.int64)  # an empty list: no labels, of no type
    if pixels.ndim != 2 or pixels.shape[1] != IMAGE_VALUES:
        fail(f'has image data of shape {pixels.shape}, expected N x {IMAGE_VALUES} '
             '(one 32x32x3 image a row)')
    if pixels.dtype != np.uint8:
        fail(f'has image data of type {pixels.dtype}, expected uint8 pixels')
    if labels.ndim != 1:
        fail(f'has labels of shape {labels.shape}, expected a list of {len(pixels)} labels, '
             'one a row of image data')
    if len(labels) != len(pixels):
        fail(f'has {len(pixels)} images but {len(labels)} labels')
    if not np.issubdtype(labels.dtype, np.integer):
        fail(f'has labels of type {labels.dtype}, expected integers 0-9')
    out_of_range = labels[(labels < 0) | (labels >= NUM_CLASSES)]
    if len(out_of_range):
        fail(f'has labels outside 0-9 (for example {out_of_range[0]})')
    return pixels, labels.astype(np.int64)


def check_not_empty(data_dir, num_train, num_test):
    """Fails when the training or the test batches hold no images.

    Raises:
        DataError: naming the files: there would be nothing to train or test on.
    """
    for count, files in ((num_test, 'test_batch'),
                         (num_train, ', '.join(f'data_batch_{i}' for i in range(1, 6)))):
        if count == 0:
            raise DataError(f'{files} in {data_dir} hold no images: there is nothing to '
                            'train or test on. Point --data_dir at a complete copy of '
                            'CIFAR-10.')


def to_nhwc(rows):
    """Rows of 3,072 values (N x 3072) as N x 32 x 32 x 3 images, a view of the same values.

    A row holds the 1,024 red values, then the green, then the blue ones: it
    reshapes to (3, 32, 32), and the colour axis moves last.
    """
    return rows.reshape(-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
