"""tutorial_support.notebook_runs: a script run from a notebook, as the learner sees it end.

Run here in the test's own process, with sys.argv set as a kernel sets it.
"""

import glob
import os
import re
import sys
import types

import pytest
from cifar_files import write_archive
from run_folders import run_folder
from script_runs import PROJECT_DIR, ctrl_c_after_steps, finished_run

import run_fc_model
import softmax
from tutorial_support import cifar10_download, notebook_runs, progress
from tutorial_support.errors import DataError

KERNEL_ARGV = ['/usr/lib/python3/site-packages/ipykernel_launcher.py', '-f',
               '/root/.local/share/jupyter/runtime/kernel-1234.json']


@pytest.fixture(autouse=True)
def in_a_kernel(monkeypatch):
    """sys.argv as in a Jupyter kernel, which a script's main() must never parse."""
    monkeypatch.setattr(sys, 'argv', KERNEL_ARGV)


def test_a_script_runs_with_its_own_flags_and_prints_its_command(cifar_dir, capsys):
    """The run is `python softmax.py` with these flags: the same output and test accuracy."""
    run = notebook_runs.run_script(softmax, data_dir=cifar_dir, seed=3, max_steps=200,
                               train_dir=None)
    out = capsys.readouterr().out
    assert out.startswith(f'$ python softmax.py --data_dir={cifar_dir} --seed=3 '
                          '--max_steps=200\n')
    script_out = finished_run(softmax, '--data_dir', cifar_dir, '--seed', '3',
                              '--max_steps', '200')
    assert f'Test accuracy {run.test_accuracy:g}\n' in script_out
    assert run.output == out[out.index('\n') + 1:]  # all it printed, after the command
    assert run.run_dir is None  # without --train_dir softmax.py writes no run folder


def test_a_failed_script_stops_the_notebook_with_one_line(no_data, capsys):
    """The script's message is printed; the error that stops "Run all" is one line."""
    with pytest.raises(notebook_runs.ScriptFailed) as failed:
        notebook_runs.run_script(run_fc_model, data_dir=no_data, max_steps=10)
    assert 'Error: The data folder' in capsys.readouterr().err
    (line,) = failed.value._render_traceback_()  # what IPython shows instead of a traceback
    assert line == 'ScriptFailed: run_fc_model.py ended with exit code 1: see its message above.'


def test_a_stopped_run_says_which_call_continues_it(cifar_dir, tmp_path, monkeypatch, capsys):
    """Interrupted, a run keeps a checkpoint; the call the error gives finishes it exactly."""
    train_dir = str(tmp_path / 'logs')
    flags = dict(data_dir=cifar_dir, train_dir=train_dir, seed=2, max_steps=200, batch_size=50)
    ctrl_c_after_steps(monkeypatch, 120)
    with pytest.raises(notebook_runs.RunStopped) as stopped:
        notebook_runs.run_script(run_fc_model, **flags)
    monkeypatch.undo()
    monkeypatch.setattr(sys, 'argv', KERNEL_ARGV)
    assert 'Training interrupted at step 120' in capsys.readouterr().err
    (line,) = stopped.value._render_traceback_()
    call = re.fullmatch(r'RunStopped: the run stopped \(exit code 130, see the message above\); '
                        r'to continue it where it stopped: (notebook_runs\.run_script\(.*\))', line)
    assert call, line
    resumed = eval(call.group(1), {'notebook_runs': notebook_runs, 'run_fc_model': run_fc_model})
    assert resumed.run_dir == run_folder(train_dir)  # continued in its own folder
    uninterrupted = notebook_runs.run_script(run_fc_model, **dict(flags, train_dir=str(tmp_path)))
    assert uninterrupted.test_accuracy == resumed.test_accuracy


def test_a_stop_before_any_checkpoint_says_to_run_the_cell_again(cifar_dir, monkeypatch):
    """softmax.py saves no checkpoint: nothing to continue, the cell is run again."""
    ctrl_c_after_steps(monkeypatch, 5)
    with pytest.raises(notebook_runs.RunStopped, match='run the cell again'):
        notebook_runs.run_script(softmax, data_dir=cifar_dir, seed=1)


def test_tf1_scripts_and_tf2_twins_never_share_a_kernel(monkeypatch):
    """A TF1 script turned eager mode off here (conftest imported one): a twin is refused."""
    twin = types.ModuleType('tf2.twin')
    twin.__file__ = os.path.join(PROJECT_DIR, 'tf2', 'twin.py')
    twin.main = lambda argv: pytest.fail('the twin ran')
    with pytest.raises(notebook_runs.ScriptFailed, match='restart the kernel'):
        notebook_runs.run_script(twin)
    monkeypatch.setitem(sys.modules, 'tf2.twin', twin)  # and after a twin, no TF1 script
    with pytest.raises(notebook_runs.ScriptFailed, match='One kind per kernel'):
        notebook_runs.run_script(softmax)


def test_progress_comes_as_lines_in_a_notebook(monkeypatch, capsys):
    """Without a terminal but in a notebook, a bar prints its closing line, or each tenth."""
    monkeypatch.setattr(progress, 'PLAIN_LINES', True)
    epoch = progress.ProgressBar(41, 'Epoch 1/3')
    for done in range(1, 42):
        epoch.update(done, 'cost 2.0')
    epoch.close('Epoch 1/3: 1.5s, cost 2.1')
    download = progress.ProgressBar(200e6, 'x.tar.gz', unit_scale=1e6, unit=' MB',
                                    line_every=0.1)
    for done in range(0, 200_000_001, 7_000_000):
        download.update(done)
    download.update(200e6)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'Epoch 1/3: 1.5s, cost 2.1'
    # 7 MB at a time: the first update at or past each tenth
    assert lines[1:] == [f'x.tar.gz {done / 2:3.0f}% {done:.1f}/200.0 MB'
                         for done in (21, 42, 63, 84, 105, 126, 140, 161, 182, 200)]


def test_the_download_prints_its_progress_in_a_notebook(tmp_path, monkeypatch, capsys):
    """CIFAR-10's download gives a line each tenth (here of an archive that is not the real one)."""
    monkeypatch.setattr(progress, 'PLAIN_LINES', True)
    archive = write_archive(str(tmp_path / 'served.tar.gz'), train_per_batch=300)
    with pytest.raises(DataError, match='damaged or not the official archive'):
        cifar10_download.download('file://' + archive, str(tmp_path / 'got.tar.gz'),
                                  str(tmp_path / 'data'))
    tenths = re.findall(r'^cifar-10-python\.tar\.gz +(\d+)% ', capsys.readouterr().out,
                        re.MULTILINE)
    assert tenths[-1] == '100' and len(tenths) >= 2
    assert not glob.glob(str(tmp_path / 'got.tar.gz*'))


def test_setup_prepares_the_kernel(monkeypatch):
    """GPU memory grows as needed, progress comes as lines, %tensorboard finds its program."""
    for name in ('TF_FORCE_GPU_ALLOW_GROWTH', 'TENSORBOARD_BINARY'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(progress, 'PLAIN_LINES', False)
    notebook_runs.setup()
    assert os.environ['TF_FORCE_GPU_ALLOW_GROWTH'] == 'true'
    assert progress.PLAIN_LINES
    assert os.access(os.environ['TENSORBOARD_BINARY'], os.X_OK)
