"""run_cnn_model.py (part 3): its printed lines, checkpoints and the epoch progress bar.

One two-epoch run on `cifar_dir` (the session's `cnn_run`), read as a user reads it.
"""

import io
import re

import pytest
from event_files import read_events, scalars
from run_folders import checkpoint_steps, run_folder
from script_runs import line_value, record_losses, recording_bars

import run_cnn_model
from tutorial_support import progress


def test_cnn_prints_the_published_lines(cnn_run):
    """'Cost after epoch 0: ...' (every 10 epochs), train and test accuracy, total time last."""
    _, out = cnn_run
    lines = out.splitlines()
    cost_lines = [line for line in lines if line.startswith('Cost after epoch')]
    assert len(cost_lines) == 1
    numbers = re.fullmatch(r'Cost after epoch 0: (\S+), train accuracy: (\S+), '
                           r'validation accuracy: (\S+)', cost_lines[0]).groups()
    cost, train_accuracy, validation_accuracy = map(float, numbers)
    # The published format: 'Cost after epoch %i: %f, train accuracy: %f, validation ...'.
    assert cost_lines[0] == (f'Cost after epoch {0:d}: {cost:f}, train accuracy: '
                             f'{train_accuracy:f}, validation accuracy: {validation_accuracy:f}')
    assert cost > 0 and 0 <= train_accuracy <= 1 and 0 <= validation_accuracy <= 1
    train = float(line_value(out, 'Train Accuracy: '))
    test = float(line_value(out, 'Test Accuracy: '))
    assert 0 <= train <= 1 and 0 <= test <= 1
    assert lines.index(cost_lines[0]) < lines.index(f'Train Accuracy: {train:g}') \
        < lines.index(f'Test Accuracy: {test:g}')
    assert re.fullmatch(r'Total time: *\d+\.\d\ds', lines[-1])


def test_cnn_checkpoint_per_epoch_and_summaries(cnn_run):
    """model.ckpt-0 (the initial weights), -10 and -20 (one per epoch); events with cost,
    loss, accuracy, logits.

    Everything is logged at the global step: the cost of an epoch at the step
    that ends it, like the loss of its batches.
    """
    train_dir, _ = cnn_run
    folder = run_folder(train_dir)
    assert checkpoint_steps(folder) == [0, 10, 20]
    values = read_events(folder)
    costs = scalars(folder, 'cost')
    assert [step for step, _ in costs] == [10, 20]
    assert all(cost > 0 for _, cost in costs)
    tags = {(tag, value.WhichOneof('value')) for _, tag, value in values}
    assert {('Loss/loss', 'simple_value'), ('Accuracy/train_accuracy', 'simple_value'),
            ('fc/logits', 'histo')} <= tags


def test_each_epoch_shows_its_minibatches_and_its_mean_cost(run, cifar_dir, tmp_path,
                                                             monkeypatch):
    """An epoch's bar: 'Epoch 1/2', one update per minibatch (1 to 2, each with its cost),
    and the line it leaves: the mean of the epoch's costs, as TensorBoard's 'cost' shows
    it at the step that ends the epoch. Summaries every SUMMARY_EVERY steps, at their step.
    """
    losses = record_losses(monkeypatch)
    bars = recording_bars(monkeypatch)
    monkeypatch.setattr(run_cnn_model, 'SUMMARY_EVERY', 3)
    monkeypatch.setattr(run_cnn_model, 'PRINT_EVERY', 1)  # 'Cost after epoch' every epoch
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_cnn_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--epochs', '2', '--batch_size', '250', '--seed', '2')
    assert code == 0, err
    assert sorted(losses) == [0, 1, 2, 3]  # 500 images: 2 minibatches an epoch
    assert [(bar.label, bar.total) for bar in bars] == [('Epoch 1/2', 2), ('Epoch 2/2', 2)]
    folder = run_folder(train_dir)
    for epoch, bar in enumerate(bars):
        epoch_losses = [losses[2 * epoch], losses[2 * epoch + 1]]
        assert bar.updates == [(1, f'cost {epoch_losses[0]:.3f}'),
                               (2, f'cost {epoch_losses[1]:.3f}')]
        mean = sum(epoch_losses) / 2
        line = re.fullmatch(rf'Epoch {epoch + 1}/2: (\d+\.\d)s, cost (\d+\.\d{{4}})',
                            bar.summary)
        assert line and float(line.group(2)) == pytest.approx(mean, abs=5.1e-5), bar.summary
        assert float(line.group(1)) <= float(line_value(out, 'Total time: ').rstrip('s'))
        assert float(line_value(out, f'Cost after epoch {epoch}: ').split(',')[0]) == \
            pytest.approx(mean, abs=5e-7)
        assert scalars(folder, 'cost')[epoch] == (2 * epoch + 2, pytest.approx(mean, rel=1e-6))
    assert [step for step, _ in scalars(folder, 'Loss/loss')] == [0, 3]


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self):
        return True


def test_progress_bar_draws_on_a_terminal_only(monkeypatch):
    """The bar redraws one line on a terminal; into a file or under CI it writes nothing."""
    monkeypatch.delenv('CI', raising=False)
    terminal = FakeTerminal()
    bar = progress.ProgressBar(4, 'Epoch 1/3', stream=terminal)
    for done in range(1, 5):
        bar.update(done, 'cost 1.0')
    bar.close()
    drawn = terminal.getvalue()
    assert '\rEpoch 1/3 [' in drawn and '100%' in drawn and 'cost 1.0' in drawn
    assert '\n' not in drawn  # one line, redrawn in place
    finished = FakeTerminal()
    progress.ProgressBar(4, 'Epoch 2/3', stream=finished).close('Epoch 2/3: 1.5s, cost 1.2')
    assert finished.getvalue().endswith('\033[KEpoch 2/3: 1.5s, cost 1.2\n')  # a line that stays

    to_file = io.StringIO()
    quiet = progress.ProgressBar(4, 'Epoch 1/3', stream=to_file)
    quiet.update(4)
    quiet.close('Epoch 1/3: 1.5s, cost 1.2')
    assert to_file.getvalue() == ''
    monkeypatch.setenv('CI', 'true')
    under_ci = FakeTerminal()
    progress.ProgressBar(4, 'x', stream=under_ci).update(4)
    assert under_ci.getvalue() == ''


def test_cnn_keeps_the_checkpoint_of_every_epoch(run, cifar_dir, tmp_path):
    """Six epochs, six checkpoints and step 0's: every one stays (a Saver() keeps 5)."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_cnn_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--epochs', '6', '--batch_size', '250')
    assert code == 0, err
    assert checkpoint_steps(run_folder(train_dir)) == [0, 2, 4, 6, 8, 10, 12]
