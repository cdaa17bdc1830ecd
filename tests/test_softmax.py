"""softmax.py (part 1): the published lines, and its run folder with --train_dir.

The script runs in-process on `cifar_dir` (500 training and 100 test images in
the real file format); the tests read what a user reads.
"""

import glob
import os
import re
import subprocess
import sys

import pytest
import tensorflow.compat.v1 as tf
from event_files import hparams_of, picture, read_events, scalars
from script_runs import PROJECT_DIR, line_value

import softmax


def test_softmax_prints_the_published_lines(run, cifar_dir):
    """Step lines every 100 steps, the test accuracy, and the total time last."""
    code, out, err = run(softmax, '--data_dir', cifar_dir, '--max_steps', '200',
                         '--batch_size', '50', '--seed', '1')
    assert code == 0, err
    lines = out.splitlines()
    steps = [line for line in lines if line.startswith('Step')]
    assert len(steps) == 2
    for step, line in zip((0, 100), steps, strict=True):
        accuracy = float(line.rsplit(' ', 1)[1])
        assert 0 <= accuracy <= 1
        assert line == f'Step {step:5d}: training accuracy {accuracy:g}'
    test_accuracy = float(line_value(out, 'Test accuracy '))
    assert f'Test accuracy {test_accuracy:g}' in lines
    assert test_accuracy > 0.3  # the classes differ by colour: far better than guessing
    match = re.fullmatch(r'Total time: *(\d+\.\d\d)s', lines[-1])
    assert match and lines[-1] == f'Total time: {float(match.group(1)):5.2f}s'


def test_softmax_with_train_dir_goes_to_tensorboard(run, cifar_dir, tmp_path):
    """--train_dir: the same printed lines, and a run folder with graph, HParams and templates."""
    args = ['--data_dir', cifar_dir, '--max_steps', '200', '--batch_size', '50', '--seed', '1']
    code, plain, err = run(softmax, *args)
    assert code == 0, err
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(softmax, *args, '--train_dir', train_dir)
    assert code == 0, err
    assert [line for line in out.splitlines() if not line.startswith('Total time')] == \
        [line for line in plain.splitlines() if not line.startswith('Total time')]

    (name,) = os.listdir(train_dir)
    assert re.fullmatch(r'\d{8}-\d{6}_softmax_batch_size=50_max_steps=200_seed=1', name)
    folder = os.path.join(train_dir, name)
    assert hparams_of(folder) == {'model': 'softmax', 'batch_size': 50, 'learning_rate': 0.005,
                                  'max_steps': 200, 'seed': 1}
    assert [step for step, _ in scalars(folder, 'loss')] == list(range(200))
    assert [step for step, _ in scalars(os.path.join(folder, 'train'), 'accuracy')] == [0, 100]
    (test,) = scalars(folder, 'test_accuracy')
    assert test == (200, pytest.approx(float(line_value(out, 'Test accuracy ')), abs=1e-6))
    # The graph, with the placeholders' shapes as the post declares them (TensorBoard's
    # Graphs tab labels their edges ?x3072 and ?)
    (graph_def,) = [event.graph_def for path in glob.glob(os.path.join(folder, 'events.*'))
                    for event in tf.train.summary_iterator(path) if event.graph_def]
    placeholders = [node for node in tf.GraphDef.FromString(graph_def).node
                    if node.op == 'Placeholder']
    assert sorted([dim.size for dim in node.attr['shape'].shape.dim]
                  for node in placeholders) == [[-1], [-1, 3072]]

    # Ten templates of 32 x 32 pixels, drawn twice as large, 5 to a row, a label under each.
    templates = picture(folder, 'class_templates')
    assert [step for step, tag, _ in read_events(folder) if tag == 'class_templates'] == [200]
    assert templates.shape == (4 + 2 * (64 + 4 + 18), 4 + 5 * (64 + 4), 3)
    tiles = [templates[4 + row * 86:4 + row * 86 + 64, 4 + col * 68:4 + col * 68 + 64]
             for row in range(2) for col in range(5)]
    assert all(tile.std() > 10 for tile in tiles)  # a pattern, not a blank


def test_softmax_runs_as_a_script_of_its_own(cifar_dir):
    """`python softmax.py`, in a process where no other lesson was imported first.

    In-process, the runners imported before it have already switched TensorFlow
    to graph mode; on its own the script must do that itself (its first lines),
    or its placeholders fail.
    """
    result = subprocess.run([sys.executable, 'softmax.py', '--data_dir', cifar_dir,
                             '--max_steps', '1', '--batch_size', '10'], cwd=PROJECT_DIR,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'Test accuracy ' in result.stdout


def test_softmax_stops_when_the_loss_diverges(run, cifar_dir):
    """A huge learning rate: the loss becomes nan or inf, and the message says at which step."""
    code, out, err = run(softmax, '--data_dir', cifar_dir, '--learning_rate', '1e38',
                         '--max_steps', '200', '--batch_size', '50', '--seed', '1')
    assert code == 1 and 'Traceback' not in err
    step = int(re.search(r'Error: The loss became (?:nan|inf|-inf) at step (\d+): training '
                         r'diverged', err).group(1))
    assert 0 < step < 200  # the first step starts from zero weights, a finite loss
    assert 'Step     0: training accuracy' in out and 'Test accuracy' not in out
