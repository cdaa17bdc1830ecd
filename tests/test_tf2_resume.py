"""--resume of the TF2 twins, and what they say when a run stops.

An interrupted TF2 run, resumed, ends exactly like a run in one go (the same
test accuracy line, the very same weights in its last checkpoint); a
diverging loss names the last TF2 checkpoint; the TF1 and the TF2 --resume
each pass the other's runs by. The TF2 side runs in tests/tf2_worker.py (this
process is in TF1 graph mode, see test_tf2_equivalence.py).
"""

import glob
import os
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from run_folders import run_folders
from script_runs import assert_user_error, run_tf2_jobs

import run_fc_model
from tutorial_support import checkpoints, run_lock

RESUME_STEPS = {'fc': 120, 'cnn': 15}  # where the parted runs are interrupted (the CNN
# mid-epoch: 10 steps an epoch)


def tf2_steps(folder):
    """The steps of the TF2 checkpoints of a run folder, from their .index files."""
    return sorted(int(os.path.basename(path)[len('ckpt-'):-len('.index')])
                  for path in glob.glob(os.path.join(folder, 'tf2_checkpoints', 'ckpt-*.index')))


@pytest.fixture(scope='module')
def tf2_runs(cifar_dir, fc_run, tmp_path_factory):
    """The worker's runs: for each model a run in one go, one interrupted and resumed; and
    a run resumed with a learning rate that makes it diverge. Returns {name: result}."""
    folder = tmp_path_factory.mktemp('tf2_resume')
    args = {'fc': ['--max_steps', '300', '--batch_size', '50', '--learning_rate', '0.00001',
                   '--seed', '3'],
            'cnn': ['--epochs', '2', '--batch_size', '50', '--seed', '4']}
    found, jobs = {}, {}
    for model, model_args in args.items():
        script = f'tf2/run_{model}_model.py'
        found[f'{model}_whole_dir'] = whole = str(folder / f'{model}_whole')
        found[f'{model}_parted_dir'] = parted = str(folder / f'{model}_parted')
        jobs[f'{model}_whole'] = dict(script=script, args=[
            '--train_dir', whole, '--data_dir', cifar_dir, *model_args])
        jobs[f'{model}_interrupted'] = dict(
            script=script, interrupt_at_step=RESUME_STEPS[model],
            args=['--train_dir', parted, '--data_dir', cifar_dir, *model_args])
        jobs[f'{model}_resumed'] = dict(script=script, args=[
            '--train_dir', parted, '--data_dir', cifar_dir, '--resume'])
    # A finished run of 100 steps, resumed to 200 after its regularisation
    # constant was raised by hand to one that makes the loss infinite (not its
    # learning rate: a TF2 optimizer's is in the checkpoint, restored with it)
    found['diverging_dir'] = diverging = str(folder / 'diverging')
    jobs['short'] = dict(script='tf2/run_fc_model.py', args=[
        '--train_dir', diverging, '--data_dir', cifar_dir, '--max_steps', '100',
        '--batch_size', '50', '--seed', '3'])
    jobs['edit'] = dict(edit_params=os.path.join(diverging, '*'),
                        values={'reg_constant': 1e38})
    jobs['diverged'] = dict(script='tf2/run_fc_model.py', args=[
        '--train_dir', diverging, '--data_dir', cifar_dir, '--resume', '--max_steps', '200'])
    # A run of 100 steps whose checkpoint is then cut short, resumed
    found['damaged_dir'] = damaged = str(folder / 'damaged')
    jobs['before_damage'] = dict(script='tf2/run_fc_model.py', args=[
        '--train_dir', damaged, '--data_dir', cifar_dir, '--max_steps', '100',
        '--batch_size', '50', '--seed', '3'])
    jobs['damage'] = dict(truncate=os.path.join(damaged, '*', 'tf2_checkpoints',
                                                'ckpt-100.data-*'))
    jobs['damaged'] = dict(script='tf2/run_fc_model.py', args=[
        '--train_dir', damaged, '--data_dir', cifar_dir, '--resume', '--max_steps', '200'])
    # A run whose first checkpoint (1.5 MB, step 0) cannot be written: 1 MB files at most
    found['too_large_dir'] = str(folder / 'too_large')
    jobs['too_large'] = dict(script='tf2/run_fc_model.py', file_size_limit=1 << 20, args=[
        '--train_dir', found['too_large_dir'], '--data_dir', cifar_dir, '--max_steps', '100',
        '--batch_size', '50', '--seed', '3'])
    # --resume of the TF2 twin in a train_dir of TF1 runs only
    jobs['tf2_resume_of_tf1_runs'] = dict(script='tf2/run_fc_model.py', args=[
        '--train_dir', fc_run[0], '--data_dir', cifar_dir, '--resume'])

    found.update(run_tf2_jobs(folder, jobs))
    return found


def accuracy_line(result):
    """The test accuracy line of a run that succeeded."""
    assert result['code'] == 0, result['err']
    lines = [line for line in result['out'].splitlines()
             if line.lower().startswith('test accuracy')]
    assert len(lines) == 1, result['out']
    return lines[0]


@pytest.mark.parametrize('model', ['fc', 'cnn'])
def test_interrupted_tf2_run_resumes_to_the_end_of_a_run_in_one_go(tf2_runs, model):
    """Ctrl-C mid-run saves a TF2 checkpoint of that step; --resume then ends with the test
    accuracy and the very weights of the run that was never interrupted."""
    step = RESUME_STEPS[model]
    interrupted = tf2_runs[f'{model}_interrupted']
    assert interrupted['code'] == 130, interrupted['err']
    (parted,) = run_folders(tf2_runs[f'{model}_parted_dir'])
    checkpoint = os.path.join(parted, 'tf2_checkpoints', f'ckpt-{step}')
    assert (f'Training interrupted at step {step} by Ctrl-C (SIGINT). Saved checkpoint '
            f'{checkpoint}. To continue where it stopped, run: python tf2/run_{model}_model.py '
            '--train_dir ') in interrupted['err']
    assert 'Test' not in interrupted['out']

    resumed = tf2_runs[f'{model}_resumed']
    assert f'Resuming from {checkpoint}' in resumed['out']
    whole = tf2_runs[f'{model}_whole']
    assert accuracy_line(resumed) == accuracy_line(whole)
    assert float(accuracy_line(whole).split()[-1]) < 1  # a figure an error could change
    (whole_folder,) = run_folders(tf2_runs[f'{model}_whole_dir'])
    last = tf2_steps(whole_folder)[-1]
    assert step in tf2_steps(parted) and tf2_steps(parted)[-1] == last
    whole_reader = tf.train.load_checkpoint(os.path.join(whole_folder, 'tf2_checkpoints',
                                                         f'ckpt-{last}'))
    parted_reader = tf.train.load_checkpoint(os.path.join(parted, 'tf2_checkpoints',
                                                          f'ckpt-{last}'))
    names = [name for name in whole_reader.get_variable_to_shape_map()
             if name.startswith(('model/', 'optimizer/')) and 'VARIABLE_VALUE' in name]
    assert len(names) >= 5, names
    for name in names:
        np.testing.assert_array_equal(parted_reader.get_tensor(name),
                                      whole_reader.get_tensor(name), err_msg=name)
    assert not os.path.exists(os.path.join(parted, run_lock.LOCK_FILE))


def test_diverging_tf2_run_names_its_last_tf2_checkpoint(tf2_runs):
    """A TF2 run whose loss becomes infinite: the message names its last TF2 checkpoint."""
    result = tf2_runs['diverged']
    (folder,) = run_folders(tf2_runs['diverging_dir'])
    checkpoint = os.path.join(folder, 'tf2_checkpoints', 'ckpt-100')
    assert checkpoints.is_complete(checkpoint)
    assert_user_error(result['code'], result['err'], 'at step 100', 'training diverged',
                      f'The last good checkpoint is kept: {checkpoint}.')
    assert tf2_steps(folder) == [0, 100]


def test_damaged_tf2_checkpoint_is_explained_on_resume(tf2_runs):
    """--resume from a TF2 checkpoint cut short: a message naming it, no traceback, no lock."""
    result = tf2_runs['damaged']
    (folder,) = run_folders(tf2_runs['damaged_dir'])
    checkpoint = os.path.join(folder, 'tf2_checkpoints', 'ckpt-100')
    assert_user_error(result['code'], result['err'], f'The checkpoint {checkpoint} cannot be '
                      'restored', 'damaged', f'Delete its files ({checkpoint}.*)')
    assert 'Step' not in result['out']
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))


def test_tf1_and_tf2_resume_pass_each_others_runs_by(tf2_runs, fc_run, cifar_dir, run):
    """TF2 --resume among TF1 runs: none of its own, said. TF1 --resume beside a newer TF2
    run: the TF1 run is continued."""
    result = tf2_runs['tf2_resume_of_tf1_runs']
    assert_user_error(result['code'], result['err'], 'no checkpoint in',
                      'tf2/run_fc_model.py to resume from')
    train_dir = tf2_runs['diverging_dir']  # a TF2 two-layer run, started after fc_run's
    (tf1_folder,) = run_folders(fc_run[0])
    copy = shutil.copytree(tf1_folder, os.path.join(train_dir, os.path.basename(tf1_folder)))
    code, out, err = run(run_fc_model, '--train_dir', train_dir, '--data_dir', cifar_dir,
                         '--resume')
    assert code == 0, err
    assert f'Resuming from {os.path.join(copy, "checkpoints", "model.ckpt-1100")}' in out


@pytest.mark.skipif(not hasattr(os, 'getuid'), reason='needs a limit on file sizes (POSIX)')
def test_tf2_checkpoint_that_cannot_be_written_is_explained_and_cleared(tf2_runs):
    """A TF2 save (the first, of step 0) refused by the limit on file sizes: what failed,
    what is kept, and no half-written ckpt-N_temp/ left behind."""
    result = tf2_runs['too_large']
    (folder,) = run_folders(tf2_runs['too_large_dir'])
    assert_user_error(result['code'], result['err'], f'Could not save a checkpoint in {folder}',
                      os.path.join(folder, 'tf2_checkpoints', 'ckpt-0_temp'), 'File too large',
                      'No checkpoint of this run had been saved', 'ulimit -f')
    assert '{{function_node' not in result['err'] and 'Step 0' not in result['out']
    assert os.listdir(os.path.join(folder, 'tf2_checkpoints')) == []
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))
