"""The training images of part 4, prepared and varied as airbench94 does (in NumPy).

`standardize()` scales the pixels, `flip_half()` and `augment()` make each epoch
show other versions of the images, and `epoch_batches()` cuts an epoch into
minibatches of one size. TensorFlow's CIFAR-10 tutorial keeps the same work in
`cifar10_input.py`, beside its model.
"""

import itertools

import numpy as np

import data_helpers

# CIFAR-10's mean and standard deviation of each colour, on pixels scaled to 0-1
CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)
MOST_TRANSLATE = 8  # a shift beyond 8 of 32 pixels no longer shows the same object


def standardize(images, mean_image):
    """Scales the images as airbench94 does: each colour to mean 0 and deviation 1.

    `data_helpers` subtracted the mean training image (as in parts 1 to 3); the
    mean is added back, the pixels scaled to 0-1, and CIFAR-10's mean and standard
    deviation of each colour applied. Changes `images` in place (no copy of the
    training set).

    Args:
        images: float32 [N, 32, 32, 3], mean-centred.
        mean_image: float32 [3072], the mean training image (channel-major).
    """
    images += mean_image.reshape(3, 32, 32).transpose(1, 2, 0)
    images *= 1 / 255
    images -= CIFAR_MEAN
    images /= CIFAR_STD
    return images


def unstandardize(images, mean_image):
    """Standardized images as `data_helpers` gives them (mean-centred), to draw them."""
    mean_pixels = mean_image.reshape(3, 32, 32).transpose(1, 2, 0)
    return (images * CIFAR_STD + CIFAR_MEAN) * 255 - mean_pixels


def epoch_batches(data, batch_size, seed, epoch, start_batch=0, stop_batch=None):
    """Yields the minibatches of one epoch from a fresh shuffle, all of `batch_size` images.

    airbench drops the last, smaller batch of an epoch: every step then has the
    same size, which its learning rate (per image, for a summed loss) assumes.
    `stop_batch` ends the epoch early (airbench's last epoch is cut at 9.9).
    """
    stop_batch = len(data[1]) // batch_size if stop_batch is None else stop_batch
    return itertools.islice(data_helpers.gen_epoch(data, batch_size, seed, epoch, start_batch),
                            stop_batch - start_batch)


def flip_half(images, seed):
    """Mirrors a random half of the training images, in place, once for the whole run.

    airbench's alternating flip: this half is seen mirrored in even epochs, and
    every image the other way round in odd ones (`augment`), so each image is
    seen both ways in any two epochs, which a fresh coin each epoch does not
    guarantee.
    """
    mirrored = np.random.default_rng([seed, 2**31]).random(len(images)) < 0.5
    images[mirrored] = images[mirrored, :, ::-1]


def augment(images, seed, step, epoch=0, flip='alternating', translate=2):
    """Shifts a training batch at random, and mirrors it as the --flip rule says.

    Why: a horse is still a horse mirrored or moved by two pixels. Each epoch the
    network sees other versions of each image, as if the set were larger. The
    random numbers come from (seed, step): a resumed run draws the same.

    Args:
        images: float32 [batch, 32, 32, 3].
        seed, step, epoch: the run's --seed, the global step, the epoch.
        flip: 'alternating' (the whole batch mirrored in odd epochs; with
            `flip_half` before training), 'random' (each image with
            probability 1/2, anew every time) or 'none'.
        translate: the largest shift in pixels, on each axis (0: none).

    Returns:
        The new float32 [batch, 32, 32, 3] images.
    """
    rng = np.random.default_rng([seed, step])
    count = len(images)
    if translate:
        # Pad by mirroring the border, then cut a 32 x 32 window at a random offset
        padded = np.pad(images, [(0, 0), (translate, translate), (translate, translate),
                                 (0, 0)], mode='reflect')
        rows = rng.integers(0, 2 * translate + 1, count)[:, None] + np.arange(32)
        columns = rng.integers(0, 2 * translate + 1, count)[:, None] + np.arange(32)
        images = padded[np.arange(count)[:, None, None], rows[:, :, None], columns[:, None, :]]
    if flip == 'alternating' and epoch % 2 == 1:
        images = images[:, :, ::-1]
    elif flip == 'random':
        mirrored = rng.random(count) < 0.5
        images = np.where(mirrored[:, None, None, None], images[:, :, ::-1], images)
    return np.ascontiguousarray(images)
