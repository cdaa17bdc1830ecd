"""deep_cnn_input.py (part 4): the images the network trains on, as airbench94 prepares them.

The scaling of each colour, the minibatches of an epoch (all of one size), the
flips and the shifts, checked image by image in NumPy: no TensorFlow graph, no
training. (The alternating flip over two epochs, and that every shift is
reached about equally often, are tested in test_deep_cnn_model.py.)
"""

import os

import numpy as np
import pytest

import data_helpers
import deep_cnn_input
from tutorial_support import cifar10_files


def random_images(count, seed=0):
    """Standardized-looking images: values of about +-1."""
    return np.random.default_rng(seed).normal(0, 1, (count, 32, 32, 3)).astype(np.float32)


def is_mirrored(after, before):
    """Per image: whether `after` is `before` mirrored left to right (else it must be equal)."""
    mirrored = np.all(after == before[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(mirrored | np.all(after == before, axis=(1, 2, 3)))
    return mirrored


def test_standardize_scales_each_colour_of_the_file_pixels(cifar_dir):
    """The test images as the runner gives them to the network: (pixel / 255 - mean) / std.

    With CIFAR-10's mean and deviation of each colour (red, green, blue), in place:
    the runner keeps no copy of the mean-centred images.
    """
    data = data_helpers.reshape_data(data_helpers.load_data(cifar_dir))
    images = data['images_test']
    returned = deep_cnn_input.standardize(images, data['mean_image'])
    assert returned is images
    pixels, _ = cifar10_files.read_batch(os.path.join(cifar_dir, 'test_batch'))
    pixels = cifar10_files.to_nhwc(pixels).astype(np.float64) / 255
    expected = (pixels - [0.4914, 0.4822, 0.4465]) / [0.2470, 0.2435, 0.2616]
    np.testing.assert_allclose(images, expected, rtol=0, atol=1e-5)


def test_unstandardize_gives_back_the_mean_centred_images(cifar_dir):
    """The pictures of the test images in TensorBoard show them as data_helpers gave them."""
    data = data_helpers.reshape_data(data_helpers.load_data(cifar_dir))
    centred = data['images_test'].copy()
    standardized = deep_cnn_input.standardize(data['images_test'], data['mean_image'])
    np.testing.assert_allclose(deep_cnn_input.unstandardize(standardized, data['mean_image']),
                               centred, rtol=0, atol=1e-3)


def test_epoch_batches_are_all_full_and_resume_mid_epoch():
    """1,030 images in batches of 100: 10 batches of a fresh shuffle, the last 30 left out.

    start_batch and stop_batch give the same batches as the whole epoch, from and to there.
    """
    data = np.arange(1030), np.arange(1030) + 5000
    whole = [batch for batch in deep_cnn_input.epoch_batches(data, 100, seed=3, epoch=1)]
    assert [len(images) for images, _ in whole] == [100] * 10
    assert all(np.array_equal(labels, images + 5000) for images, labels in whole)
    shown = np.concatenate([images for images, _ in whole])
    assert len(set(shown.tolist())) == 1000
    assert shown.tolist() != sorted(shown.tolist())  # shuffled
    order = data_helpers.shuffled_order(1030, 3, 1)
    assert shown.tolist() == order[:1000].tolist()  # data_helpers' shuffle of the epoch
    other_epoch = next(deep_cnn_input.epoch_batches(data, 100, seed=3, epoch=2))[0]
    assert other_epoch.tolist() != whole[0][0].tolist()
    for start, stop in ((3, None), (0, 5), (2, 6)):
        part = list(deep_cnn_input.epoch_batches(data, 100, seed=3, epoch=1, start_batch=start,
                                                 stop_batch=stop))
        assert [images.tolist() for images, _ in part] == \
            [images.tolist() for images, _ in whole[start:stop]], (start, stop)


def test_flip_half_mirrors_the_same_half_for_the_same_seed():
    """Once a run, in place: about half the images, the same ones again on --resume."""
    images = random_images(400, seed=1)
    first, again, other = images.copy(), images.copy(), images.copy()
    deep_cnn_input.flip_half(first, seed=5)
    deep_cnn_input.flip_half(again, seed=5)
    deep_cnn_input.flip_half(other, seed=6)
    mirrored = is_mirrored(first, images)
    assert 160 < mirrored.sum() < 240
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(mirrored, is_mirrored(other, images))


@pytest.mark.parametrize('flip', ['alternating', 'random', 'none'])
def test_flips_of_each_rule_over_four_epochs(flip):
    """'alternating': all mirrored in odd epochs only; 'random': about half, anew each step;
    'none': never. The same (seed, step) flips the same images (a resumed run)."""
    images = random_images(400, seed=2)
    for epoch in range(4):
        step = 10 * epoch
        flipped = deep_cnn_input.augment(images, seed=7, step=step, epoch=epoch, flip=flip,
                                         translate=0)
        mirrored = is_mirrored(flipped, images)
        if flip == 'alternating':
            assert mirrored.all() if epoch % 2 else not mirrored.any(), epoch
        elif flip == 'none':
            assert not mirrored.any(), epoch
        else:
            assert 160 < mirrored.sum() < 240, epoch
            again = deep_cnn_input.augment(images, seed=7, step=step, epoch=epoch, flip=flip,
                                           translate=0)
            np.testing.assert_array_equal(again, flipped)
            next_step = deep_cnn_input.augment(images, seed=7, step=step + 1, epoch=epoch,
                                               flip=flip, translate=0)
            assert not np.array_equal(is_mirrored(next_step, images), mirrored)


@pytest.mark.parametrize('translate', [1, 2])
def test_each_shift_is_a_window_of_the_image_mirrored_at_its_borders(translate):
    """An image moved by up to `translate` pixels; the rows and columns it uncovers are
    the border's mirror image (airbench's reflect padding), not zeros or copies of the edge."""
    images = random_images(300, seed=3)
    shifted = deep_cnn_input.augment(images, seed=1, step=4, flip='none', translate=translate)
    assert shifted.shape == images.shape and shifted.dtype == np.float32
    assert shifted.flags['C_CONTIGUOUS']
    padded = np.pad(images, [(0, 0), (translate, translate), (translate, translate), (0, 0)],
                    mode='reflect')
    reach = range(2 * translate + 1)
    offsets = []
    for image, window in zip(padded, shifted, strict=True):
        (found,) = [(row, column) for row in reach for column in reach
                    if np.array_equal(image[row:row + 32, column:column + 32], window)]
        offsets.append(found)
    assert set(offsets) == {(row, column) for row in reach for column in reach}
    again = deep_cnn_input.augment(images, seed=1, step=4, flip='none', translate=translate)
    np.testing.assert_array_equal(again, shifted)  # a resumed run shifts the same way
    unmoved = deep_cnn_input.augment(images, seed=1, step=4, flip='none', translate=0)
    np.testing.assert_array_equal(unmoved, images)


def test_augment_by_default_is_airbench94s():
    """Called without the flags (as the Keras way and the part 4 notebook call it): epoch 0,
    the alternating flip, shifts of up to 2 pixels."""
    images = random_images(100, seed=4)
    for epoch in (0, 1):
        np.testing.assert_array_equal(
            deep_cnn_input.augment(images, 3, step=8, epoch=epoch),
            deep_cnn_input.augment(images, 3, step=8, epoch=epoch, flip='alternating',
                                   translate=2))
    np.testing.assert_array_equal(deep_cnn_input.augment(images, 3, step=8),
                                  deep_cnn_input.augment(images, 3, step=8, epoch=0))
