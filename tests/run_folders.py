"""What a run leaves in its --train_dir: run folders, checkpoints and other files."""

import glob
import os
import re
import shutil
import time

from script_runs import finished_run

import run_fc_model

RUN_FOLDER = re.compile(r'\d{8}-\d{6}(-\d+)?_(fc|cnn)(_[a-z0-9_]+=[^_/]+)*$')
# A run folder written by the previous version of the code (commit 9fe31e3):
# hidden1=2, 30 steps with seed 7 on the `cifar_dir` data; it printed 'Test accuracy 0.16'.
OLD_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                       'fc_run_from_9fe31e3')


def run_folders(train_dir):
    """The run folders inside train_dir (none when it does not exist)."""
    if not os.path.isdir(train_dir):
        return []
    return sorted(os.path.join(train_dir, name) for name in os.listdir(train_dir)
                  if os.path.isdir(os.path.join(train_dir, name)))


def run_folder(train_dir):
    """The single run folder `train_dir/YYYYmmdd-HHMMSS_model_flags/` of a run."""
    folders = [os.path.basename(folder) for folder in run_folders(train_dir)]
    assert len(folders) == 1, folders
    assert RUN_FOLDER.match(folders[0]), folders[0]
    return os.path.join(train_dir, folders[0])


def checkpoint_path(folder, step):
    """Where a run folder's checkpoint of a step is: checkpoints/model.ckpt-STEP."""
    return os.path.join(folder, 'checkpoints', f'model.ckpt-{step}')


def checkpoint_steps(folder):
    """The steps of the checkpoint files (any of .index, .data-*, .meta) in a run folder.

    A step that lacks its .index or its .data-* file is listed as the string
    'STEP incomplete', which no list of step numbers equals.
    """
    names = glob.glob(checkpoint_path(folder, '*'))
    steps = sorted({int(re.search(r'model\.ckpt-(\d+)\.', name).group(1)) for name in names})
    return [step if os.path.isfile(checkpoint_path(folder, step) + '.index')
            and glob.glob(checkpoint_path(folder, step) + '.data-*') else f'{step} incomplete'
            for step in steps]


def files_of(folder):
    """Every file below a folder with its size and modification time."""
    found = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            found[path] = (os.path.getsize(path), os.path.getmtime(path))
    return found


def fc_run_of_100_steps(cifar_dir, train_dir):
    """A 100-step run of the two-layer network, its checkpoint at step 100: its run folder."""
    finished_run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                 '--seed', '5', '--max_steps', '100', '--batch_size', '50')
    (folder,) = run_folders(train_dir)
    return folder


def copy_of_old_run(tmp_path):
    """OLD_RUN copied into a new train_dir (tests/data is never written): (train_dir, folder)."""
    train_dir = str(tmp_path / 'old-logs')
    folder = shutil.copytree(OLD_RUN, os.path.join(train_dir, os.path.basename(OLD_RUN)))
    return train_dir, folder


def copies_older_by_name_newer_by_file_time(train_dir, older_run, newer_run):
    """Copies two run folders into train_dir, the older by name given the newer file times.

    Returns:
        (older copy, newer copy).
    """
    older = shutil.copytree(older_run, os.path.join(train_dir, '20240101-120000_fc'))
    newer = shutil.copytree(newer_run, os.path.join(train_dir, '20240101-120000-2_fc'))
    later = time.time() + 3600
    for parent, _, names in os.walk(older):
        for name in names:
            os.utime(os.path.join(parent, name), (later, later))
    return older, newer
