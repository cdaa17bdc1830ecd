"""benchmarks/make_sample.py makes the README's sample: the first images of each batch file."""

import importlib.util
import os

import numpy as np
from script_runs import PROJECT_DIR

import data_helpers
from tutorial_support import cifar10_files


def make_sample_module():
    """benchmarks/make_sample.py, imported from its path (benchmarks/ is no package)."""
    path = os.path.join(PROJECT_DIR, 'benchmarks', 'make_sample.py')
    spec = importlib.util.spec_from_file_location('make_sample', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sample_is_the_first_images_of_each_batch(cifar_dir, tmp_path, run):
    """The sample's files hold the first rows of the full set's, and every script reads them."""
    make_sample = make_sample_module()
    sizes = {'data_batch_1': 30, 'data_batch_2': 20, 'data_batch_3': 20, 'data_batch_4': 20,
             'data_batch_5': 20, 'test_batch': 25}
    out_dir = str(tmp_path / 'cifar-10-sample')
    assert make_sample.write_sample(cifar_dir, out_dir, sizes) == (110, 25)
    for name, size in sizes.items():
        full = cifar10_files.read_batch(os.path.join(cifar_dir, name))
        sample = cifar10_files.read_batch(os.path.join(out_dir, name))
        assert np.array_equal(sample[0], full[0][:size]) and np.array_equal(sample[1],
                                                                           full[1][:size])
    data = data_helpers.load_data(out_dir)
    assert data['images_train'].shape == (110, 3072) and data['images_test'].shape == (25, 3072)
    # The command line: the folder and the counts
    code, out, err = run(make_sample, '--data_dir', out_dir,
                         '--out_dir', str(tmp_path / 'again'))
    assert code == 0, err
    assert out.strip().endswith(': 110 training and 25 test images')


def test_the_default_sizes_make_the_shared_sample(sample_dir, tmp_path):
    """From the shared sample itself (a prefix of the full set), the same arrays again."""
    make_sample = make_sample_module()
    out_dir = str(tmp_path / 'cifar-10-sample')
    assert make_sample.write_sample(sample_dir, out_dir) == (5170, 1017)
    for name in make_sample.SAMPLE_SIZES:
        expected = cifar10_files.read_batch(os.path.join(sample_dir, name))
        written = cifar10_files.read_batch(os.path.join(out_dir, name))
        assert all(np.array_equal(a, b) for a, b in zip(expected, written, strict=True))
