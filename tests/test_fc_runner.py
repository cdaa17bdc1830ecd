"""run_fc_model.py (part 2): its printed lines, checkpoints and run folder.

One run of 1,100 steps on `cifar_dir` (the session's `fc_run`), read as a user
reads it: the parameters, the progress lines, and the run folder's name and
checkpoints.
"""

import glob
import os
import re

from event_files import hparams_of, scalars
from run_folders import checkpoint_steps, run_folder

import run_fc_model


def test_fc_prints_its_own_parameters_sorted(fc_run, cifar_dir):
    """'Parameters:' then one 'name = value' line per own flag, sorted, no absl flags."""
    train_dir, out = fc_run
    lines = out.splitlines()
    start = lines.index('Parameters:') + 1
    end = lines.index('', start)
    parameters = [line.split(' = ', 1) for line in lines[start:end]]
    names = [name for name, _ in parameters]
    assert names == ['batch_size', 'data_dir', 'hidden1', 'learning_rate', 'max_steps',
                     'reg_constant', 'resume', 'seed', 'train_dir', 'validation_size']
    values = dict(parameters)
    assert values['batch_size'] == '50'
    assert values['max_steps'] == '1100'
    assert values['hidden1'] == '120'
    assert values['seed'] == '1'
    assert values['data_dir'] == cifar_dir
    assert values['train_dir'] == train_dir
    assert float(values['learning_rate']) == 0.00001


def test_fc_progress_checkpoints_and_end_lines(fc_run):
    """Step lines every 100 steps, 'Saved checkpoint' after 1,000 and at the end."""
    train_dir, out = fc_run
    lines = out.splitlines()
    step_lines = [line for line in lines if line.startswith('Step')]
    assert [int(re.match(r'Step (\d+),', line).group(1)) for line in step_lines] == \
        list(range(0, 1001, 100))
    for line in step_lines:
        step, accuracy = re.fullmatch(r'Step (\d+), training accuracy (\S+)', line).groups()
        assert line == f'Step {int(step):d}, training accuracy {float(accuracy):g}'
    saved = [i for i, line in enumerate(lines) if line == 'Saved checkpoint']
    assert len(saved) == 2
    # After the 1,000th step (before the 'Step 1000' line), and once more at the end.
    assert lines.index(step_lines[9]) < saved[0] < lines.index(step_lines[10]) < saved[1]
    test_line = [i for i, line in enumerate(lines) if line.startswith('Test accuracy ')]
    assert len(test_line) == 1 and test_line[0] > saved[1]
    accuracy = float(lines[test_line[0]].split()[-1])
    assert lines[test_line[0]] == f'Test accuracy {accuracy:g}'
    assert re.fullmatch(r'Total time: *\d+\.\d\ds', lines[-1])


def test_fc_run_folder_holds_both_checkpoints(fc_run):
    """One run folder with checkpoints/model.ckpt-0.* (the initial weights), -1000.* and -1100.*."""
    train_dir, _ = fc_run
    folder = run_folder(train_dir)
    assert checkpoint_steps(folder) == [0, 1000, 1100]
    for step in (0, 1000, 1100):
        assert os.path.isfile(os.path.join(folder, 'checkpoints', f'model.ckpt-{step}.meta'))
    assert not glob.glob(os.path.join(train_dir, 'model.ckpt-*'))  # all inside the run folder


def test_fc_run_folder_says_what_the_run_was(fc_run):
    """The folder name: date and time, the model, then the flags given that are not defaults."""
    train_dir, _ = fc_run
    name = os.path.basename(run_folder(train_dir))
    assert re.fullmatch(r'\d{8}-\d{6}_fc_batch_size=50_learning_rate=1e-05_max_steps=1100'
                        r'_seed=1', name), name


def test_fc_keeps_every_checkpoint(run, cifar_dir, tmp_path, monkeypatch):
    """Every checkpoint stays, for restore_model.py (the post's Saver() keeps the last 5).

    Here one every 10 steps (instead of 1,000), one after the last step, and step 0's.
    """
    monkeypatch.setattr(run_fc_model, 'CHECKPOINT_EVERY', 10)
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--max_steps', '65', '--batch_size', '50')
    assert code == 0, err
    assert checkpoint_steps(run_folder(train_dir)) == [0, 10, 20, 30, 40, 50, 60, 65]
    assert out.splitlines().count('Saved checkpoint') == 7


def test_reg_constant_adds_the_weights_penalty_to_the_loss(run, cifar_dir, tmp_path):
    """--reg_constant weighs the L2 penalty of the weights in the loss TensorBoard shows:
    the same first batch, the same initial weights, a larger loss with a larger constant."""
    first_losses = []
    for reg_constant in ('0', '0.5'):
        train_dir = str(tmp_path / f'reg_{reg_constant}')
        code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                             '--max_steps', '1', '--batch_size', '50', '--seed', '4',
                             '--reg_constant', reg_constant)
        assert code == 0, err
        ((_, loss),) = scalars(run_folder(train_dir), 'Loss/loss')
        first_losses.append(loss)
    assert first_losses[1] > first_losses[0] + 0.01


def test_a_run_without_seed_gets_one_and_records_it(run, cifar_dir, tmp_path):
    """No --seed: the run draws one, prints it with its parameters and records it for
    TensorBoard's HParams (and for --resume), so the run can be repeated."""
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                         '--max_steps', '1', '--batch_size', '50')
    assert code == 0, err
    seed = re.search(r'^seed = (\d+)$', out, re.MULTILINE)
    assert seed, out
    assert hparams_of(run_folder(train_dir))['seed'] == int(seed.group(1))
