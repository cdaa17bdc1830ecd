"""Shared test fixtures: small data sets in the real file format, script runner.

The scripts run in-process (`main(argv)` through `entry_point.run_main`), so
TensorFlow is imported once for the whole test session.
"""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cifar_files  # noqa: E402
import script_runs  # noqa: E402

SAMPLE_DIR = os.path.join(os.path.dirname(ROOT), 'shared', 'cifar-10-sample')


@pytest.fixture(scope='session')
def cifar_dir(tmp_path_factory):
    """A small data set (5 x 100 training images, 100 test images), read-only by convention."""
    return cifar_files.write_dataset(str(tmp_path_factory.mktemp('data') / 'cifar-10-batches-py'))


@pytest.fixture(scope='session')
def sample_dir():
    """The real CIFAR-10 sample beside the project; the test is skipped without it."""
    if not os.path.isfile(os.path.join(SAMPLE_DIR, 'test_batch')):
        pytest.skip('../shared/cifar-10-sample is not there')
    return SAMPLE_DIR


@pytest.fixture
def run():
    """Runs a script's main() with arguments; returns (exit code, stdout, stderr)."""
    return script_runs.run_captured
