"""Loads CIFAR-10 and hands out batches (parts 1 to 3).

    python data_helpers.py [--data_dir DIR]    # a self-check: prints the arrays' shapes

Fetching the archive and reading its files safely are done in
`tutorial_support`, called here by name.
"""

import concurrent.futures
import os

import numpy as np
from absl import flags

from tutorial_support import cifar10_download, cifar10_files, cli, entry_point

# An image is 32 x 32 pixels in 3 colours: a row of 3,072 values in the files. (The
# post's runner defines IMAGE_PIXELS = 3072 and CLASSES = 10; here CLASSES are the names.)
IMAGE_SIZE = cifar10_files.IMAGE_SIZE      # 32
CHANNELS = cifar10_files.CHANNELS          # 3
IMAGE_PIXELS = cifar10_files.IMAGE_VALUES  # 3,072
NUM_CLASSES = cifar10_files.NUM_CLASSES    # 10
CLASSES = ('plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')


def load_data(data_dir=None, validation_size=0):
    """Loads CIFAR-10 and subtracts the mean training image.

    Args:
        data_dir: the folder of `data_batch_1` ... `data_batch_5` and `test_batch`;
            by default `cifar-10-batches-py/` beside the scripts, downloaded if missing.
        validation_size: training images (the first ones) held out for validation.

    Returns:
        A dict of `images_train` (float32, N x 3072), `labels_train` (int64),
        `images_test`, `labels_test`, `classes`, `mean_image` (float32, 3072)
        and, with validation_size > 0, `images_validation`, `labels_validation`.
    """
    # The post reads cifar-10-batches-py/ in the folder it is run from; here the
    # folder beside the scripts (or data_dir), fetched if it is missing.
    data_dir = cifar10_download.maybe_download_and_extract(data_dir)

    # Read the five training batches and the test batch. The post unpickles
    # them with pickle.load, which runs any code a file asks for; this reader
    # takes only arrays, numbers and strings, and names a damaged file.
    train_batches = [cifar10_files.read_batch(os.path.join(data_dir, f'data_batch_{i}'))
                     for i in range(1, 6)]
    pixels = np.concatenate([batch_pixels for batch_pixels, _ in train_batches])
    labels = np.concatenate([batch_labels for _, batch_labels in train_batches])
    del train_batches
    pixels_test, labels_test = cifar10_files.read_batch(os.path.join(data_dir, 'test_batch'))
    cifar10_files.check_not_empty(data_dir, len(labels), len(labels_test))
    cli.check_validation_size(validation_size, len(labels))

    # The mean image of the training images only (never of held-out or test
    # images), added up in float64 so that 50,000 rows sum exactly.
    mean_image = pixels[validation_size:].mean(axis=0, dtype=np.float64).astype(np.float32)
    data = {'classes': CLASSES, 'mean_image': mean_image}

    # Subtract it from every image, so that the pixel values are centred on 0.
    # The post turns the whole set into float64 first (1.5 GB, twice that while
    # it works); here float32, one set at a time, the uint8 pixels freed after.
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

    In blocks that fit the CPU cache, on two threads: faster than `pixels - mean_image`.
    """
    images = np.empty(pixels.shape, np.float32)

    def convert(start):
        block = slice(start, start + rows_per_block)
        np.subtract(pixels[block], mean_image, out=images[block])

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(convert, range(0, len(pixels), rows_per_block)))
    return images


def reshape_data(data_dict):
    """Turns the image rows into N x 32 x 32 x 3 images (NHWC) for the CNN, in place.

    A row holds the 1,024 red values, then the green, then the blue ones: it is
    reshaped to (3, 32, 32) and the colour axis moved last, as a view (no copy).
    """
    for key in ('images_train', 'images_test', 'images_validation'):
        if key in data_dict and data_dict[key].ndim == 2:
            data_dict[key] = cifar10_files.to_nhwc(data_dict[key])
    return data_dict


def shuffled_order(size, seed, pass_index):
    """The order of the images in a pass: the same (seed, pass_index), the same order."""
    rng = np.random.default_rng(None if seed is None else [seed, pass_index])
    return rng.permutation(size)


def gen_batch(data, batch_size, num_iter, seed=None, start_step=0):
    """Yields the batches of steps `start_step` to `num_iter` - 1, as (images, labels).

    `data` is (images, labels). The set is shuffled and cut into consecutive
    batches, and shuffled again when the next batch would run past its end.
    """
    images, labels = data
    batches_per_pass = len(images) // batch_size
    order = None
    for step in range(start_step, num_iter):
        pass_index, position = divmod(step, batches_per_pass)
        # The post shuffles np.array(list of (image, label) tuples) with np.random's
        # global state (NumPy 1.24 and later refuse to build that array); here
        # shuffled indices pick rows of both arrays, in an order set by (seed,
        # pass), so that a run resumed at any step draws the batches it would have.
        if order is None or position == 0:
            order = shuffled_order(len(images), seed, pass_index)
        indices = order[position * batch_size:(position + 1) * batch_size]
        yield images[indices], labels[indices]


def gen_epoch(data, batch_size, seed=None, epoch=0, start_batch=0):
    """Yields the minibatches of one epoch from a fresh shuffle (part 3).

    Each image comes once, the last batch smaller; `start_batch` resumes mid-epoch.
    """
    images, labels = data
    order = shuffled_order(len(images), seed, epoch)
    for start in range(start_batch * batch_size, len(images), batch_size):
        indices = order[start:start + batch_size]
        yield images[indices], labels[indices]


def batches_per_epoch(num_images, batch_size):
    """Number of minibatches in an epoch, counting the last smaller one."""
    return -(-num_images // batch_size)


def main(argv):
    """Self-check: loads CIFAR-10 and prints its arrays' shapes (the post: without names)."""
    flag_values = flags.FlagValues()
    flags.DEFINE_string('data_dir', None, 'Folder with the CIFAR-10 batch files.',
                        flag_values=flag_values)
    cli.parse_flags(flag_values, argv, rules={})
    data_sets = load_data(flag_values.data_dir)
    for name in ('images_train', 'labels_train', 'images_test', 'labels_test'):
        print(f'{name}: {data_sets[name].shape}')


if __name__ == '__main__':  # run_main: an error you can fix is a message, not a traceback
    raise SystemExit(entry_point.run_main(main))
