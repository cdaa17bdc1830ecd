"""CIFAR-10 for the tutorials: fetch it, load it, hand out shuffled batches.

Every script of the suite gets its data from here:

* `load_data()` reads the python version of CIFAR-10 (downloading it first when it
  is missing) and returns the training and test images as float32 arrays with the
  mean training image subtracted.
* `reshape_data()` turns the flat rows into 32 x 32 x 3 images for the CNN.
* `gen_batch()` and `gen_epoch()` hand out shuffled minibatches.

Images stay in one float32 array and batches are drawn with index arrays, so the
full data set takes about 740 MB instead of the 3 GB of float64 copies and lists
of (image, label) tuples that the original code built.
"""

import concurrent.futures
import errno
import hashlib
import http.client
import os
import pickle
import queue
import shutil
import ssl
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zlib

import numpy as np

# Where the official archive lives and what it must hash to: the MD5 the
# CIFAR-10 page publishes and the SHA-256 Keras pins. CIFAR10_URL can be pointed
# at a mirror (or a local file:// URL) through the environment; the archive must
# still be the official one.
CIFAR10_URL = os.environ.get(
    'CIFAR10_URL', 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz')
CIFAR10_CHECKSUMS = {
    'MD5': 'c58f30108f718f92721af3b95e74349a',
    'SHA-256': '6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce',
}
CIFAR10_PAGE = 'https://www.cs.toronto.edu/~kriz/cifar.html'
ARCHIVE_NAME = 'cifar-10-python.tar.gz'
DATA_FOLDER = 'cifar-10-batches-py'

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_DIR = os.path.join(SCRIPT_DIR, DATA_FOLDER)

IMAGE_SIZE = 32
CHANNELS = 3
IMAGE_PIXELS = IMAGE_SIZE * IMAGE_SIZE * CHANNELS  # 3,072 values per image
NUM_CLASSES = 10
CLASSES = ('plane', 'car', 'bird', 'cat', 'deer',
           'dog', 'frog', 'horse', 'ship', 'truck')

TRAIN_FILES = [f'data_batch_{i}' for i in range(1, 6)]
TEST_FILE = 'test_batch'

# A download that brings less than STALL_BYTES in STALL_SECONDS has stalled
# (a server trickling a byte now and then never trips the socket's timeout).
STALL_SECONDS = 60
STALL_BYTES = 64 * 1024
# A full disk as the system words it (train_helpers reports these for any file).
DISK_FULL = {errno.ENOSPC: 'No space left on device', errno.EDQUOT: 'Disk quota exceeded',
             errno.EFBIG: 'File too large', errno.EROFS: 'Read-only file system'}
# Write errors that mean the disk or folder, not the archive, is the problem.
DISK_ERRORS = (*DISK_FULL, errno.EACCES)


class UserError(Exception):
    """A problem the user can fix: the scripts print it and exit with `exit_code`."""

    exit_code = 1


class DataError(UserError):
    """The data set is missing, damaged or not in the CIFAR-10 format."""


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

def load_data(data_dir=None, validation_size=0):
    """Loads CIFAR-10 and subtracts the mean training image.

    Args:
        data_dir: folder holding `data_batch_1` ... `data_batch_5` and
            `test_batch`; by default `cifar-10-batches-py/` beside the scripts.
            It is downloaded when missing.
        validation_size: number of training images (the first ones) held out as
            a validation set; 0 keeps all 50,000 for training.

    Returns:
        A dict with `images_train` (float32, N x 3072), `labels_train` (int64),
        `images_test`, `labels_test`, `classes`, `mean_image` (float32, 3072)
        and, when validation_size > 0, `images_validation` and
        `labels_validation`.

    Raises:
        DataError: the data is missing and cannot be fetched, or a file is damaged.
    """
    data_dir = maybe_download_and_extract(data_dir or DEFAULT_DATA_DIR)

    # The small test batch is read first, while little memory is in use.
    pixels_test, labels_test = read_batch(os.path.join(data_dir, TEST_FILE))
    train_batches = [read_batch(os.path.join(data_dir, name)) for name in TRAIN_FILES]
    pixels = np.concatenate([batch_pixels for batch_pixels, _ in train_batches])
    labels = np.concatenate([batch_labels for _, batch_labels in train_batches])
    del train_batches
    for count, files in ((len(labels_test), TEST_FILE), (len(labels), ', '.join(TRAIN_FILES))):
        if count == 0:
            raise DataError(f'{files} in {data_dir} hold no images: there is nothing to '
                            'train or test on. Point --data_dir at a complete copy of '
                            'CIFAR-10.')
    if not 0 <= validation_size < len(pixels):
        raise UserError(
            f'--validation_size {validation_size} must be at least 0 and smaller '
            f'than the {len(pixels):,} training images.')

    # The mean is taken over the training images only (never the held-out or
    # test images), accumulated in float64 so that 50,000 rows add up exactly.
    mean_image = pixels[validation_size:].mean(axis=0, dtype=np.float64).astype(np.float32)
    data = {'classes': CLASSES, 'mean_image': mean_image}

    # One set at a time, and the uint8 pixels are dropped as soon as they are
    # converted: the peak memory stays close to the float32 result (740 MB).
    if validation_size:
        data['images_validation'] = subtract_mean(pixels[:validation_size], mean_image)
        data['labels_validation'] = labels[:validation_size]
    data['images_train'] = subtract_mean(pixels[validation_size:], mean_image)
    data['labels_train'] = labels[validation_size:]
    del pixels
    data['images_test'] = subtract_mean(pixels_test, mean_image)
    data['labels_test'] = labels_test
    return data


def subtract_mean(pixels, mean_image, rows_per_block=1000):
    """Returns float32 images: uint8 pixels minus the mean image.

    The conversion runs block by block, in blocks that fit the CPU cache, on
    two threads (numpy releases the GIL): several times faster than one numpy
    call over the whole array, and no float64 or other temporary copy is made.
    """
    images = np.empty(pixels.shape, np.float32)

    def convert(start):
        block = slice(start, start + rows_per_block)
        np.subtract(pixels[block], mean_image, out=images[block])

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(convert, range(0, len(pixels), rows_per_block)))
    return images


class BatchUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR-10 batch holds, and nothing that can run code.

    A pickle names the functions that rebuild its objects, and a hostile one
    can name any function (`os.system`, say), which plain `pickle.load` calls.
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
    `BatchUnpickler` reads them, so a hostile file cannot run code.

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
        if os.path.abspath(folder) == DEFAULT_DATA_DIR:
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
    if pixels.ndim != 2 or pixels.shape[1] != IMAGE_PIXELS:
        fail(f'has image data of shape {pixels.shape}, expected N x {IMAGE_PIXELS} '
             '(one 32x32x3 image a row)')
    if pixels.dtype != np.uint8:
        fail(f'has image data of type {pixels.dtype}, expected uint8 pixels')
    if labels.ndim != 1 or len(labels) != len(pixels):
        fail(f'has {len(pixels)} images but {labels.size} labels')
    if not np.issubdtype(labels.dtype, np.integer):
        fail(f'has labels of type {labels.dtype}, expected integers 0-9')
    out_of_range = labels[(labels < 0) | (labels >= NUM_CLASSES)]
    if len(out_of_range):
        fail(f'has labels outside 0-9 (for example {out_of_range[0]})')
    return pixels, labels.astype(np.int64)


def reshape_data(data_dict):
    """Turns the flat image rows into N x 32 x 32 x 3 images (NHWC), in place.

    A row holds the 1,024 red values, then green, then blue, so it reshapes to
    (3, 32, 32) and the channel axis moves last. The result is a view: no copy
    of the data set is made.

    Args:
        data_dict: the dict returned by `load_data`.

    Returns:
        The same dict.
    """
    for key in ('images_train', 'images_test', 'images_validation'):
        if key in data_dict and data_dict[key].ndim == 2:
            data_dict[key] = to_nhwc(data_dict[key])
    return data_dict


def to_nhwc(images):
    """Reshapes flat channel-major rows (N x 3072) to N x 32 x 32 x 3, as a view."""
    return images.reshape(-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)


def load_image(path):
    """Reads a PNG or JPEG of any size and prepares it like a CIFAR-10 image.

    CIFAR-10's images are whole photos scaled down to 32 x 32, objects roughly
    centred; so the picture's central square is scaled down to 32 x 32 with
    an anti-aliasing filter, and the result laid out as a CIFAR-10 row.

    Args:
        path: the image file.

    Returns:
        float32 array of 3,072 pixel values, channel-major (before the mean is
        subtracted).

    Raises:
        DataError: the file is missing, empty or not an image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError  # only for own images

    most_pixels = 64_000_000  # a 64-megapixel photo; larger ones would take gigabytes
    if not os.path.isfile(path):
        raise DataError(f'{path} does not exist or is not a file.')
    if os.path.getsize(path) == 0:
        raise DataError(f'{path} is empty: it holds no image.')
    try:
        # Only the two formats photos come in: Pillow's other readers (EPS among
        # them, which runs Ghostscript) are never handed a file from the web.
        with Image.open(path, formats=('PNG', 'JPEG')) as picture:
            if picture.width * picture.height > most_pixels:
                raise DataError(f'{path} is {picture.width} x {picture.height} pixels; photos '
                                'of up to 64 megapixels are read. Scale it down first.')
            picture.draft('RGB', (8 * IMAGE_SIZE, 8 * IMAGE_SIZE))  # JPEG: decode smaller
            picture = ImageOps.exif_transpose(picture)  # phone photos: upright
            if picture.mode.startswith('I'):  # 16- or 32-bit grey: scale to 8 bits
                brightest = max(picture.getextrema()[1], 1)
                scale = 255 / brightest
                picture = picture.point(lambda value: value * scale + 0.5).convert('L')
            picture = picture.convert('RGB')
    except UnidentifiedImageError:
        raise DataError(f'{path} is not a PNG or JPEG image; only these two are read. Save '
                        'it as PNG or JPEG first.') from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(
            f'{path} is not an image that can be read (PNG or JPEG): {error}.') from None
    side = min(picture.size)
    left, top = (picture.width - side) // 2, (picture.height - side) // 2
    picture = picture.crop((left, top, left + side, top + side))
    picture = picture.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)
    pixels = np.asarray(picture, dtype=np.float32)  # 32 x 32 x 3
    return pixels.transpose(2, 0, 1).reshape(IMAGE_PIXELS)


# ---------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------

def shuffled_order(size, seed, pass_index):
    """Returns the permutation of `size` indices for one pass over the data.

    The order depends only on (seed, pass_index), so a resumed run draws
    exactly the batches the uninterrupted run would have drawn.
    """
    rng = np.random.default_rng(None if seed is None else [seed, pass_index])
    return rng.permutation(size)


def gen_batch(data, batch_size, num_iter, seed=None, start_step=0):
    """Yields `num_iter` shuffled batches, reshuffling between passes.

    The whole set is shuffled and cut into consecutive batches; when the next
    batch would run past the end, the set is shuffled again. Within one pass
    no image comes twice.

    Args:
        data: (images, labels) arrays of the same length.
        batch_size: images per batch, at most the number of images.
        num_iter: the step to stop before.
        seed: makes the order reproducible; None draws a fresh order.
        start_step: the first step to yield (to resume a run).

    Yields:
        (images_batch, labels_batch).
    """
    images, labels = data
    batches_per_pass = len(images) // batch_size
    order = None
    for step in range(start_step, num_iter):
        pass_index, position = divmod(step, batches_per_pass)
        if order is None or position == 0:
            order = shuffled_order(len(images), seed, pass_index)
        indices = order[position * batch_size:(position + 1) * batch_size]
        yield images[indices], labels[indices]


def gen_epoch(data, batch_size, seed=None, epoch=0, start_batch=0):
    """Yields the minibatches of one epoch from a fresh shuffle.

    Every image is used once; the last batch is smaller when the set does
    not divide evenly.

    Args:
        data: (images, labels) arrays of the same length.
        batch_size: images per batch.
        seed: makes the order reproducible; None draws a fresh order.
        epoch: the epoch number, mixed into the seed.
        start_batch: the first batch to yield (to resume mid-epoch).

    Yields:
        (images_batch, labels_batch).
    """
    images, labels = data
    order = shuffled_order(len(images), seed, epoch)
    for start in range(start_batch * batch_size, len(images), batch_size):
        indices = order[start:start + batch_size]
        yield images[indices], labels[indices]


def prefetch(batches, depth=2):
    """Yields from `batches` while a background thread prepares the next ones.

    Gathering a batch (copying a few hundred scattered rows) takes a tenth of
    a training step; numpy and TensorFlow both release Python's lock while they
    work, so the copy for the next step overlaps with the current step.

    Args:
        batches: any iterator, such as `gen_batch(...)`.
        depth: how many batches to prepare ahead.

    Yields:
        The items of `batches`, in order.
    """
    ready = queue.Queue(maxsize=depth)
    stop = threading.Event()
    finished = object()

    def produce():
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ready.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        pass
                if stop.is_set():
                    return
            ready.put(finished)
        except Exception as error:  # noqa: BLE001 (handed to the consumer)
            ready.put(error)

    threading.Thread(target=produce, daemon=True).start()
    try:
        while True:
            item = ready.get()
            if item is finished:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()  # the consumer stopped early: let the thread end


def batches_per_epoch(num_images, batch_size):
    """Number of minibatches in an epoch, counting the last smaller one."""
    return -(-num_images // batch_size)


# ---------------------------------------------------------------------------
# Fetching the data set
# ---------------------------------------------------------------------------

class ProgressBar:
    """A one-line progress bar on a terminal; silent when output is a file or CI.

    Args:
        total: the count that means 100%.
        label: text before the bar.
        unit_scale: divide counts by this for display (1e6 for MB).
        unit: the unit shown after the counts.
        stream: where to draw; defaults to stderr so stdout stays clean.
    """

    def __init__(self, total, label, unit_scale=1, unit='', stream=None):
        self.total = total
        self.label = label
        self.unit_scale = unit_scale
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() and not os.environ.get('CI')
        self._last_draw = 0.0

    def update(self, done, suffix=''):
        """Redraws the bar, at most ten times a second."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1 and done < self.total:
            return
        self._last_draw = now
        fraction = min(done / self.total, 1.0) if self.total else 1.0
        filled = int(fraction * 30)
        line = '\r{} [{}{}] {:3.0f}% {:.{p}f}/{:.{p}f}{} {}'.format(
            self.label, '#' * filled, '.' * (30 - filled), 100 * fraction,
            done / self.unit_scale, self.total / self.unit_scale, self.unit, suffix,
            p=1 if self.unit_scale > 1 else 0)
        self.stream.write(line)
        self.stream.flush()

    def close(self, summary=None):
        """Clears the bar's line; with a summary, leaves that line in its place."""
        if self.enabled:
            self.stream.write('\r\033[K' + (summary + '\n' if summary else ''))
            self.stream.flush()


def maybe_download_and_extract(data_dir):
    """Makes sure `data_dir` holds CIFAR-10, fetching it into the default folder only.

    Only the default folder (`cifar-10-batches-py/` beside the scripts) is ever
    filled: a missing `--data_dir`, or a run's recorded one, is far more often
    a misspelt path than a place to put 170 MB. For the default folder, an
    archive `cifar-10-python.tar.gz` lying beside it is used if there is one;
    otherwise the official archive is downloaded. Everything is written under
    temporary names and only renamed into place once complete and checked, so
    an interrupted or failed attempt never leaves a half-made data folder.

    Args:
        data_dir: the folder that should hold the batch files.

    Returns:
        data_dir.

    Raises:
        DataError: the folder is missing, or the archive is damaged or cannot be
            fetched.
    """
    data_dir = os.path.normpath(data_dir)  # 'data/' and 'data' are the same folder
    if os.path.isdir(data_dir):
        return data_dir
    if os.path.exists(data_dir):
        raise DataError(f'{data_dir} is a file, not a folder of CIFAR-10 batch files. '
                        'Point --data_dir at the folder.')
    if os.path.abspath(data_dir) != os.path.abspath(DEFAULT_DATA_DIR):
        raise DataError(
            f'The data folder {data_dir} does not exist; the nearest folder that does is '
            f'{nearest_existing_folder(data_dir)}. Check the spelling of --data_dir, or pass '
            'the folder that holds the batch files (a continued or restored run otherwise '
            'uses the data_dir in its params.json). CIFAR-10 is downloaded only into the '
            f'default folder, {DEFAULT_DATA_DIR}: leave out --data_dir, or pass that '
            'folder, to use it.')
    parent = os.path.dirname(os.path.abspath(data_dir))
    candidates = [os.path.join(folder, ARCHIVE_NAME) for folder in (parent, SCRIPT_DIR)]
    archive = next((path for path in candidates if os.path.isfile(path)), None)
    downloaded = archive is None
    if downloaded:
        made_parent = not os.path.isdir(parent)
        try:
            os.makedirs(parent, exist_ok=True)
            archive = download(CIFAR10_URL, os.path.join(parent, ARCHIVE_NAME), data_dir)
        except OSError as error:
            raise DataError(f'Cannot create {parent} for the data set: {error}.') from None
        except DataError:
            if made_parent:
                os.rmdir(parent)  # leave no trace of a failed attempt
            raise
    else:
        print(f'Using {archive}')
        try:
            problem = checksum_problem(checksums_of_file(archive))
        except OSError as error:  # not readable by this user, say
            raise DataError(f'Cannot read {archive}: {error.strerror or error}. Fix its '
                            'permissions, or move it away to download a fresh copy.') from None
        if problem:
            raise DataError(
                f'{archive} is damaged, incomplete or not the official archive: {problem}. '
                'Delete it and run again to download a fresh copy, or replace it with the '
                f'archive from {CIFAR10_PAGE}.')
    extract(archive, data_dir)
    if downloaded:
        os.remove(archive)  # the unpacked folder is all the scripts need
    return data_dir


def nearest_existing_folder(path):
    """The closest folder above `path` (or `path` itself) that exists."""
    folder = os.path.abspath(path)
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    return folder


def download(url, archive, data_dir):
    """Downloads `url` to `archive`, showing progress and checking the checksums.

    The bytes go to `archive + '.part'`, which is removed on any failure and
    renamed to `archive` only when both checksums match. Each read waits at
    most 30 s, and a download that brings less than STALL_BYTES in
    STALL_SECONDS is given up.

    Returns:
        archive.

    Raises:
        DataError: the download failed or the checksums do not match.
    """
    partial = archive + '.part'
    print(f'Downloading CIFAR-10 from {url}')
    digests = new_digests()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(partial, 'wb') as out:
            announced = response.headers.get('Content-Length')
            total = int(announced or 170498071)
            bar = ProgressBar(total, ARCHIVE_NAME, unit_scale=1e6, unit=' MB')
            window_start, window_done = time.monotonic(), 0
            while True:
                chunk = response.read1(1 << 20)  # what has arrived, up to 1 MB
                if not chunk:
                    break
                out.write(chunk)
                for digest in digests.values():
                    digest.update(chunk)
                done += len(chunk)
                bar.update(done)
                if time.monotonic() - window_start >= STALL_SECONDS:
                    if done - window_done < STALL_BYTES:
                        raise TimeoutError(f'the download stalled: less than {STALL_BYTES:,} '
                                           f'bytes arrived in {STALL_SECONDS} s')
                    window_start, window_done = time.monotonic(), done
            bar.close()
            if announced and done < total:
                raise ConnectionError(f'the connection closed after {done:,} of {total:,} bytes')
    except OSError as error:
        if error.errno not in DISK_ERRORS or isinstance(error, (urllib.error.URLError,
                                                                 ssl.SSLError)):
            raise download_failed(partial, url, archive, data_dir, error) from None
        remove_quietly(partial)
        raise DataError(f'Cannot write the download to {partial}: {error.strerror}. The data '
                        'set needs about 350 MB while it is unpacked: free some space (or '
                        'fix the folder), then run again.') from None
    except (http.client.HTTPException, ValueError) as error:  # not HTTP, cut-off chunks
        raise download_failed(partial, url, archive, data_dir, error) from None
    except BaseException:  # Ctrl-C: leave nothing half-written
        remove_quietly(partial)
        raise
    problem = checksum_problem({name: digest.hexdigest() for name, digest in digests.items()})
    if problem:
        remove_quietly(partial)
        raise DataError(
            f'The download from {url} is damaged or not the official archive: {problem} '
            f'({done:,} bytes received). Nothing was kept; run again to retry, or fetch '
            f'{ARCHIVE_NAME} by hand from {CIFAR10_PAGE} and put it in '
            f'{os.path.dirname(archive)}.')
    os.replace(partial, archive)
    return archive


def download_failed(partial, url, archive, data_dir, error):
    """Removes the partial download; the DataError that says where to get the archive."""
    remove_quietly(partial)
    reason = str(getattr(error, 'reason', None) or error) or type(error).__name__
    # A hostile server's text: one line, printable, short.
    reason = ''.join(c if c.isprintable() else ' ' for c in ' '.join(reason.split()))[:200]
    folders = sorted({os.path.dirname(archive), SCRIPT_DIR})
    return DataError(
        f'CIFAR-10 is not in {data_dir} and could not be downloaded from {url} '
        f'({reason}). Download {ARCHIVE_NAME} (170 MB) from {CIFAR10_PAGE} and put '
        f'it in {" or in ".join(folders)}; the scripts unpack it themselves on the '
        'next run.')


def extract(archive, data_dir):
    """Unpacks the archive's `cifar-10-batches-py/` to `data_dir`, all or nothing."""
    staging = data_dir + '.partial'
    remove_quietly(staging)  # what a killed earlier attempt may have left
    print(f'Extracting {archive}')
    try:
        with tarfile.open(archive, 'r:gz') as tar:
            members = checked_members(tar, archive)
            # Python's own check as well, where it has one (3.10.12, 3.11.4 and later)
            safety = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
            tar.extractall(staging, members=members, **safety)
        unpacked = os.path.join(staging, DATA_FOLDER)
        missing = [name for name in TRAIN_FILES + [TEST_FILE]
                   if not os.path.isfile(os.path.join(unpacked, name))]
        if missing:
            raise DataError('{} does not hold the CIFAR-10 batch files (missing: {}).'
                            .format(archive, ', '.join(missing)))
    except OSError as error:
        remove_quietly(staging)
        if error.errno in DISK_ERRORS:  # the disk or the folder, not the archive
            raise DataError(
                f'Cannot unpack {archive} into {os.path.dirname(staging)}: '
                f'{error.strerror}. The archive itself is fine and is kept. The data set '
                'takes 180 MB: free some space (or fix the folder), then run again.') from None
        raise archive_damaged(archive, error) from None
    except (tarfile.TarError, EOFError, zlib.error) as error:
        remove_quietly(staging)
        raise archive_damaged(archive, error) from None
    except BaseException:  # a DataError above, or Ctrl-C: leave no half-made folder
        remove_quietly(staging)
        raise
    try:
        os.rename(unpacked, data_dir)
    except OSError as error:
        raise DataError(f'Cannot put the unpacked data set in place as {data_dir}: '
                        f'{error.strerror or error}.') from None
    finally:
        remove_quietly(staging)


def archive_damaged(archive, error):
    """The DataError for an archive that cannot be read."""
    return DataError(f'{archive} cannot be unpacked ({error}): it is damaged. Delete it and '
                     'run again.')


def checked_members(tar, archive):
    """The archive's members, once each is known to unpack inside the target folder.

    The official archive holds plain files and folders below
    `cifar-10-batches-py/`. A link, a device, an absolute path, a `..` or a
    set-user-id bit could write or run something outside it, on Pythons whose
    `tarfile` has no extraction filter too, so any of them is refused.

    Raises:
        DataError: naming the archive and the member.
    """
    members = tar.getmembers()
    for member in members:
        parts = member.name.replace('\\', '/').split('/')
        if not (member.isfile() or member.isdir()):
            problem = 'is a link or a special file'
        elif member.name.startswith(('/', '\\')) or '..' in parts or ':' in parts[0]:
            problem = 'would be written outside the data folder'
        elif member.mode & 0o7000:
            problem = 'asks for special permissions'
        else:
            continue
        raise DataError(f'{archive} holds {member.name!r}, which {problem}; the CIFAR-10 '
                        'archive holds only plain files. It is not the official archive: '
                        f'delete it and get {ARCHIVE_NAME} from {CIFAR10_PAGE}.')
    return members


def new_digests():
    """Fresh hash objects for each checksum in CIFAR10_CHECKSUMS."""
    return {'MD5': hashlib.md5(usedforsecurity=False), 'SHA-256': hashlib.sha256()}


def checksums_of_file(path):
    """The file's checksums, {name: hex digest}, read in 1 MB chunks."""
    digests = new_digests()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            for digest in digests.values():
                digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def checksum_problem(checksums):
    """What differs from the official archive's checksums ('' when both match)."""
    return '; '.join(f'its {name} is {checksums[name]}, expected {expected}'
                     for name, expected in CIFAR10_CHECKSUMS.items()
                     if checksums[name] != expected)


def remove_quietly(path):
    """Removes a file or folder if it exists."""
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)
