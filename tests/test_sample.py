"""Accuracy of the three models on the real-image sample ../shared/cifar-10-sample.

5,170 training and 1,017 test images of real CIFAR-10: enough to see that each
model learns what it should, in well under a minute each. Every test is skipped
when the sample is not there.
"""

import contextlib
import io
import re

import pytest

import run_cnn_model
import run_fc_model
import softmax
from tutorial_support import entry_point

# Epochs of the CNN run. Measured on the sample with default settings (test
# accuracy after E epochs; the two-layer network reached 0.344 / 0.349 / 0.343
# with seeds 0 / 1 / 2):
#   seed 0: E=20 0.418, E=21 0.408, E=24 0.426, E=25 0.429, E=32 0.474
#   seed 1: E=20 0.361, E=21 0.383, E=24 0.375, E=25 0.406, E=32 0.402
#   seed 2: E=20 0.418, E=21 0.418, E=24 0.411, E=25 0.433, E=32 0.431
# 25 is the smallest E at which every seed beats the two-layer network by 5
# points or more (about 50 test images); about 1.4 s an epoch.
CNN_EPOCHS = 25


def test_softmax_prints_progress_then_test_accuracy(sample_dir, run):
    """softmax.py: a training accuracy every 100 steps, test accuracy > 0.20, total time last."""
    code, out, err = run(softmax, '--data_dir', sample_dir, '--seed', '0')
    assert code == 0, err
    lines = out.splitlines()
    steps = [line for line in lines if line.startswith('Step')]
    assert len(steps) == 10
    for step, line in zip(range(0, 1000, 100), steps, strict=True):
        match = re.fullmatch(r'Step +\d+: training accuracy (\S+)', line)
        assert match, line
        assert line == f'Step {step:5d}: training accuracy {float(match.group(1)):g}'
    test_lines = [line for line in lines if line.startswith('Test accuracy ')]
    assert len(test_lines) == 1
    assert lines.index(test_lines[0]) > lines.index(steps[-1])
    assert float(test_lines[0].split()[-1]) > 0.20
    assert re.fullmatch(r'Total time: +\d+\.\d\ds', lines[-1]), lines[-1]


@pytest.fixture(scope='module')
def fc_result(sample_dir, tmp_path_factory):
    """(exit code, stdout, stderr) of run_fc_model.py with its defaults on the sample."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = entry_point.run_main(run_fc_model.main, [
            'run_fc_model.py', '--data_dir', sample_dir,
            '--train_dir', str(tmp_path_factory.mktemp('fc_logs')), '--seed', '0'])
    return code, out.getvalue(), err.getvalue()


def reported_accuracy(out, label):
    """The value of the single line `label X` in `out`."""
    values = re.findall(rf'^{label} (\S+)$', out, re.MULTILINE)
    assert len(values) == 1, out
    return float(values[0])


def test_two_layer_network_beats_softmax(fc_result):
    """run_fc_model.py with default hyper-parameters: test accuracy above 0.28."""
    code, out, err = fc_result
    assert code == 0, err
    assert reported_accuracy(out, 'Test accuracy') > 0.28


def test_cnn_beats_two_layer_network(fc_result, sample_dir, tmp_path, run):
    """run_cnn_model.py reaches a higher test accuracy than the two-layer network."""
    fc_code, fc_out, _ = fc_result
    assert fc_code == 0
    code, out, err = run(run_cnn_model, '--data_dir', sample_dir, '--train_dir', str(tmp_path),
                         '--seed', '0', '--epochs', str(CNN_EPOCHS))
    assert code == 0, err
    cnn_accuracy = reported_accuracy(out, 'Test Accuracy:')
    fc_accuracy = reported_accuracy(fc_out, 'Test accuracy')
    assert cnn_accuracy > fc_accuracy, f'CNN {cnn_accuracy} vs two-layer {fc_accuracy}'
