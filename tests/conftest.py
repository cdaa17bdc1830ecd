"""Shared test fixtures: small data sets in the real file format, script runner, runs.

The scripts run in-process (`main(argv)` through `entry_point.run_main`), so
TensorFlow is imported once for the whole test session. The runs that tests in
several files read are made once a session; tests must not change them.
"""

import glob
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cifar_files  # noqa: E402
import run_folders  # noqa: E402
import script_runs  # noqa: E402

import run_cnn_model  # noqa: E402
import run_fc_model  # noqa: E402
from tutorial_support import cifar10_download  # noqa: E402

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


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """A --data_dir that does not exist; fetching it fails at once, without a network."""
    monkeypatch.setattr(cifar10_download, 'CIFAR10_URL', 'file:///nonexistent/cifar-10.tar.gz')
    return str(tmp_path / 'no-data' / 'cifar-10-batches-py')


@pytest.fixture(scope='session')
def fc_run(cifar_dir, tmp_path_factory):
    """A run_fc_model run of 1,100 steps, a periodic and a final checkpoint: (train_dir, stdout)."""
    return script_runs.run_in_new_folder(
        tmp_path_factory, 'fc_logs', run_fc_model, '--data_dir', cifar_dir,
        '--max_steps', '1100', '--batch_size', '50', '--learning_rate', '0.00001', '--seed', '1')


@pytest.fixture(scope='session')
def cnn_run(cifar_dir, tmp_path_factory):
    """A two-epoch run_cnn_model run, 10 batches of 50 an epoch: (train_dir, stdout)."""
    return script_runs.run_in_new_folder(tmp_path_factory, 'cnn_logs', run_cnn_model,
                                         '--data_dir', cifar_dir, '--epochs', '2',
                                         '--batch_size', '50', '--seed', '1')


@pytest.fixture(scope='session')
def short_fc_run(cifar_dir, tmp_path_factory):
    """A 100-step run_fc_model run that does not get every test image right.

    Returns:
        (train_dir, its run folder, stdout).
    """
    train_dir, out = script_runs.run_in_new_folder(
        tmp_path_factory, 'short_fc', run_fc_model, '--data_dir', cifar_dir, '--max_steps',
        '100', '--batch_size', '50', '--learning_rate', '0.00001', '--seed', '0')
    (folder,) = glob.glob(os.path.join(train_dir, '*', ''))
    return train_dir, folder, out


@pytest.fixture
def fc_run_to_edit(cifar_dir, tmp_path):
    """A new 100-step run of the test's own in tmp_path/logs: (train_dir, run folder)."""
    train_dir = str(tmp_path / 'logs')
    return train_dir, run_folders.fc_run_of_100_steps(cifar_dir, train_dir)
