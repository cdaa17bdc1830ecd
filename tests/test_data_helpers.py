"""data_helpers: load_data, reshape_data, gen_batch, gen_epoch, and its self-check.

The data sets are small ones in the real file format (Python 2 pickles), built
by `cifar_files`; the real-image sample is read where it is. Prefetching (the
next batch gathered while a step trains) is checked on gen_batch's batches.
"""

import os
import threading

import cifar_files
import numpy as np
import pytest
from script_runs import run_captured

import data_helpers
from tutorial_support import prefetch

CLASSES = ['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']


def raw_dataset(train_per_batch=100, test_count=100, seed=0):
    """The uint8 pixels and labels `cifar_files.write_dataset` writes, made independently."""
    train = [cifar_files.make_images(train_per_batch, seed + index) for index in range(1, 6)]
    pixels_train = np.concatenate([pixels for pixels, _ in train])
    labels_train = np.concatenate([labels for _, labels in train])
    pixels_test, labels_test = cifar_files.make_images(test_count, seed + 100)
    return pixels_train, labels_train, pixels_test, np.array(labels_test)


@pytest.fixture(scope='module')
def raw():
    """(pixels_train, labels_train, pixels_test, labels_test) of the `cifar_dir` set."""
    return raw_dataset()


@pytest.fixture(scope='module')
def loaded(cifar_dir):
    """load_data() of the small set; tests must not modify it."""
    return data_helpers.load_data(cifar_dir)


# ---------------------------------------------------------------------------
# load_data, reshape_data
# ---------------------------------------------------------------------------

def test_load_data_shapes_types_and_classes(loaded, raw):
    """The dict has the documented keys, shapes, dtypes, labels and class names."""
    assert {'images_train', 'labels_train', 'images_test', 'labels_test',
            'classes'} <= set(loaded)
    assert loaded['images_train'].shape == (500, 3072)
    assert loaded['images_test'].shape == (100, 3072)
    assert loaded['labels_train'].shape == (500,)
    assert loaded['labels_test'].shape == (100,)
    assert loaded['images_train'].dtype == np.float32
    assert loaded['images_test'].dtype == np.float32
    assert loaded['labels_train'].dtype == np.int64
    assert loaded['labels_test'].dtype == np.int64
    assert loaded['mean_image'].shape == (3072,) and loaded['mean_image'].dtype == np.float32
    np.testing.assert_array_equal(loaded['labels_train'], raw[1])
    np.testing.assert_array_equal(loaded['labels_test'], raw[3])
    assert list(loaded['classes']) == CLASSES


def test_load_data_subtracts_the_mean_training_image(loaded, raw):
    """Both sets are the raw pixels minus the per-pixel mean of the training pixels."""
    pixels_train, _, pixels_test, _ = raw
    mean = pixels_train.astype(np.float64).mean(axis=0)
    assert np.abs(loaded['images_train'].astype(np.float64).mean(axis=0)).max() < 1e-3
    np.testing.assert_allclose(loaded['images_train'], pixels_train - mean, atol=1e-4)
    np.testing.assert_allclose(loaded['images_test'], pixels_test - mean, atol=1e-4)


def test_test_files_are_python2_pickles(cifar_dir):
    """The fixture files are in the real format: a plain pickle.load fails on them."""
    for name in cifar_files.BATCH_FILES:
        assert cifar_files.plain_pickle_fails(os.path.join(cifar_dir, name)), name


def test_shared_sample_loads(sample_dir):
    """The real-image sample loads: 5,170 training and 1,017 test images."""
    data = data_helpers.load_data(sample_dir)
    assert data['images_train'].shape == (5170, 3072)
    assert data['labels_train'].shape == (5170,)
    assert data['images_test'].shape == (1017, 3072)
    assert data['labels_test'].shape == (1017,)
    assert set(np.unique(data['labels_train'])) == set(range(10))


def test_reshape_data_is_nhwc_of_channel_major_rows(cifar_dir):
    """Pixel [i, y, x, c] of the reshaped set is value [c*1024 + y*32 + x] of row i.

    Every set of images is reshaped: training, test and held-out validation images.
    """
    data = data_helpers.load_data(cifar_dir, validation_size=20)
    flat = {key: data[key].copy() for key in ('images_train', 'images_test', 'images_validation')}
    assert data_helpers.reshape_data(data) is data
    assert data['images_train'].shape == (480, 32, 32, 3)
    assert data['images_test'].shape == (100, 32, 32, 3)
    assert data['images_validation'].shape == (20, 32, 32, 3)
    y, x, c = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing='ij')
    columns = c * 1024 + y * 32 + x  # [32, 32, 3] indices into a flat row
    for key, rows in flat.items():
        np.testing.assert_array_equal(data[key], rows[:, columns])


def test_subtract_mean_converts_every_row_block_by_block():
    """In blocks of a few rows, on two threads: every row is its pixels minus the mean."""
    pixels = np.random.default_rng(2).integers(0, 256, (25, 12), dtype=np.uint8)
    mean = pixels.mean(axis=0, dtype=np.float64).astype(np.float32)
    images = data_helpers.subtract_mean(pixels, mean, rows_per_block=4)
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images, pixels - mean)


def test_validation_images_are_held_out(cifar_dir, raw):
    """validation_size N holds out the first N images; the mean comes from the rest."""
    pixels_train, labels_train, pixels_test, labels_test = raw
    data = data_helpers.load_data(cifar_dir, validation_size=50)
    mean = pixels_train[50:].astype(np.float64).mean(axis=0)
    assert data['images_validation'].shape == (50, 3072)
    assert data['images_train'].shape == (450, 3072)
    np.testing.assert_array_equal(data['labels_validation'], labels_train[:50])
    np.testing.assert_array_equal(data['labels_train'], labels_train[50:])
    np.testing.assert_allclose(data['images_validation'], pixels_train[:50] - mean, atol=1e-4)
    np.testing.assert_allclose(data['images_train'], pixels_train[50:] - mean, atol=1e-4)
    np.testing.assert_allclose(data['images_test'], pixels_test - mean, atol=1e-4)
    np.testing.assert_array_equal(data['labels_test'], labels_test)


# ---------------------------------------------------------------------------
# gen_batch, gen_epoch, and their batches prefetched
# ---------------------------------------------------------------------------

def identified_set(size=50):
    """Images whose single value and label are their own index."""
    return np.arange(size, dtype=np.float32)[:, None], np.arange(size)


def batch_labels(batches):
    """The label arrays of a sequence of batches, checking images match labels."""
    result = []
    for images, labels in batches:
        np.testing.assert_array_equal(images[:, 0], labels)
        result.append(labels)
    return result


def test_gen_batch_passes_reshuffles_and_seed():
    """No image twice within a pass, a new order next pass, the same order for a seed."""
    data = identified_set(50)  # batch size 8: 6 batches a pass, 2 images left over
    batches = batch_labels(data_helpers.gen_batch(data, 8, 18, seed=3))
    assert len(batches) == 18
    assert all(len(labels) == 8 for labels in batches)
    passes = [np.concatenate(batches[start:start + 6]) for start in (0, 6, 12)]
    for labels in passes:
        assert len(set(labels.tolist())) == 48
    assert not np.array_equal(passes[0], passes[1])
    again = batch_labels(data_helpers.gen_batch(data, 8, 18, seed=3))
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(batches))
    other = batch_labels(data_helpers.gen_batch(data, 8, 18, seed=4))
    assert not np.array_equal(np.concatenate(other), np.concatenate(batches))


@pytest.mark.parametrize('start_step', [4, 6, 13])
def test_gen_batch_resumes_at_start_step(start_step):
    """start_step=k yields exactly the batches k ... num_iter-1 of the full sequence."""
    data = identified_set(50)
    full = batch_labels(data_helpers.gen_batch(data, 8, 18, seed=7))
    tail = batch_labels(data_helpers.gen_batch(data, 8, 18, seed=7, start_step=start_step))
    assert len(tail) == 18 - start_step
    for expected, labels in zip(full[start_step:], tail, strict=True):
        np.testing.assert_array_equal(labels, expected)


def test_gen_epoch_uses_every_image_once_and_resumes():
    """One epoch: every image once, a smaller last batch; start_batch gives the tail."""
    data = identified_set(50)
    batches = batch_labels(data_helpers.gen_epoch(data, 8, seed=5, epoch=2))
    assert [len(labels) for labels in batches] == [8] * 6 + [2]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(50))
    assert not np.array_equal(np.concatenate(batches), np.arange(50))  # shuffled
    next_epoch = batch_labels(data_helpers.gen_epoch(data, 8, seed=5, epoch=3))
    assert not np.array_equal(np.concatenate(next_epoch), np.concatenate(batches))
    tail = batch_labels(data_helpers.gen_epoch(data, 8, seed=5, epoch=2, start_batch=4))
    assert len(tail) == 3
    for expected, labels in zip(batches[4:], tail, strict=True):
        np.testing.assert_array_equal(labels, expected)
    # The runner counts an epoch's batches (to resume mid-epoch) with batches_per_epoch
    assert data_helpers.batches_per_epoch(50, 8) == len(batches)
    assert data_helpers.batches_per_epoch(48, 8) == 6
    # Without epoch=, the first epoch's order; without a seed, a shuffle all the same
    np.testing.assert_array_equal(
        np.concatenate(batch_labels(data_helpers.gen_epoch(data, 8, seed=5))),
        np.concatenate(batch_labels(data_helpers.gen_epoch(data, 8, seed=5, epoch=0))))
    unseeded = np.concatenate(batch_labels(data_helpers.gen_epoch(data, 8)))
    np.testing.assert_array_equal(np.sort(unseeded), np.arange(50))


def test_prefetch_keeps_order_passes_errors_and_stops_early():
    """prefetch() yields the same batches in order, re-raises a failure, and ends its thread."""
    data = identified_set(50)
    plain = batch_labels(data_helpers.gen_batch(data, 8, 20, seed=3))
    ahead = batch_labels(prefetch.prefetch(data_helpers.gen_batch(data, 8, 20, seed=3)))
    assert len(ahead) == 20
    for expected, labels in zip(plain, ahead, strict=True):
        np.testing.assert_array_equal(labels, expected)

    def failing():
        yield 1
        raise ValueError('broken batch')
    with pytest.raises(ValueError, match='broken batch'):
        list(prefetch.prefetch(failing()))

    threads_before = threading.active_count()
    early = prefetch.prefetch(data_helpers.gen_batch(data, 8, 10_000, seed=3))
    next(early)
    early.close()  # the training loop stopped (an error, Ctrl-C)
    for _ in range(50):
        if threading.active_count() <= threads_before:
            break
        threading.Event().wait(0.05)
    assert threading.active_count() <= threads_before


# ---------------------------------------------------------------------------
# python data_helpers.py: the self-check
# ---------------------------------------------------------------------------

def test_self_check_prints_the_shapes_of_the_arrays(cifar_dir):
    """`python data_helpers.py --data_dir DIR`: exit 0 and one line per array with its shape."""
    code, out, err = run_captured(data_helpers, '--data_dir', cifar_dir)
    assert code == 0, err
    lines = out.splitlines()
    for line in ('images_train: (500, 3072)', 'labels_train: (500,)',
                 'images_test: (100, 3072)', 'labels_test: (100,)'):
        assert line in lines, out


def test_self_check_help_says_what_data_dir_is(capsys):
    """`python data_helpers.py --help`: exit 0, the one flag and what it is for."""
    with pytest.raises(SystemExit) as exit_status:
        data_helpers.main(['data_helpers.py', '--help'])
    assert exit_status.value.code == 0
    printed = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert printed == ['data_helpers:', '--data_dir: Folder with the CIFAR-10 batch files.']
