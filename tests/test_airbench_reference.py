"""The airbench reference benchmark's reading of what both sides print (no PyTorch needed).

The benchmark itself runs under an interpreter with PyTorch, which CI has not;
what it reads from the printed lines is plain Python and is checked here.
"""

import os
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import airbench_reference  # noqa: E402
import suite_epochs  # noqa: E402


def test_the_suites_epoch_lines_are_read():
    """The runner's epoch lines give each epoch's time and cost; its last, the test accuracy."""
    lines = ['Parameters:', 'epochs = 2.0',
             'Cost after epoch 0: 2.345600, train accuracy: 0.310000, validation accuracy: '
             '0.400000 (41.2s)',
             'Cost after epoch 1: 1.234500, train accuracy: 0.510000, validation accuracy: '
             '0.600000 (39.8s)',
             'Test Accuracy: 0.7912', 'Total time: 90.00s']
    assert suite_epochs.parse_suite_lines(lines) == {
        'epochs_printed': [0, 1], 'epoch_seconds': [41.2, 39.8],
        'epoch_costs': [2.3456, 1.2345], 'test_accuracy': 0.7912}


def test_the_references_table_rows_get_their_epoch_times():
    """Each printed epoch row is paired with its own timed interval, in order."""
    printed = textwrap.dedent('''\
        |       0  |      0  |      1.9343  |     0.3984  |   0.4051  |               |              4.2580  |
        |          |      1  |      1.5000  |     0.5000  |   0.5500  |               |              7.1000  |
        |          |   eval  |      1.5000  |     0.5000  |   0.5500  |       0.5700  |              7.5000  |
        ----------------------------------------------------------------------------------------------------
    ''')  # noqa: E501
    table = airbench_reference.parse_table(printed)
    assert [row['epoch'] for row in table] == [0, 1, 'eval']
    assert table[0]['run'] == 0 and table[1]['run'] is None
    assert table[2]['tta_val_acc'] == 0.57

    epochs, whitening, tta = airbench_reference.epoch_records(table, [100.0, 3000.0, 2500.0,
                                                                      400.0])
    assert [(row['epoch'], row['val_acc'], row['train_seconds']) for row in epochs] == [
        (0, 0.4051, 3.0), (1, 0.55, 2.5)]
    assert (whitening, tta) == (0.1, 0.4)
    with pytest.raises(RuntimeError, match='printed 2 epochs but timed 3 intervals'):
        airbench_reference.epoch_records(table, [100.0, 3000.0, 400.0])


def test_the_median_epoch_leaves_out_each_runs_first():
    runs = [{'epoch_seconds': [50.0, 40.0, 42.0], 'acc': 0.9},
            {'epoch_seconds': [60.0, 41.0, 43.0], 'acc': 0.8}]
    assert airbench_reference.summary(runs, 'acc') == {
        'runs': 2, 'accuracy_mean': pytest.approx(0.85), 'accuracy_std': pytest.approx(0.0707107),
        'median_epoch_seconds': 41.5, 'first_epochs_excluded': True}
    one_epoch = airbench_reference.summary([{'epoch_seconds': [50.0], 'acc': 0.9}], 'acc')
    assert one_epoch['median_epoch_seconds'] == 50.0
    assert one_epoch['first_epochs_excluded'] is False
    assert one_epoch['accuracy_std'] is None


def test_settings_change_only_existing_hyp_entries():
    hyp = {'opt': {'lr': 11.5, 'batch_size': 1024}, 'aug': {'flip': True}}
    airbench_reference.set_hyp(hyp, 'opt.lr=5.0')
    airbench_reference.set_hyp(hyp, 'aug.flip=False')
    assert hyp == {'opt': {'lr': 5.0, 'batch_size': 1024}, 'aug': {'flip': False}}
    for wrong in ('opt.learning_rate=5.0', 'lr=5.0', 'opt.lr', 'aug.flip.x=1'):
        with pytest.raises(ValueError, match='hyp entries'):
            airbench_reference.set_hyp(hyp, wrong)
