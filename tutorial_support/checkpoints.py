"""Checkpoints: finding the newest, telling what they hold, restoring them with checks.

A checkpoint is named by its path prefix (`.../checkpoints/model.ckpt-2000`),
as `Saver.save` returns it and `Saver.restore` takes it. A run folder keeps
its checkpoints in `checkpoints/`; runs made before it did keep them in the
run folder itself, and are found there too. A TF2 twin's run keeps its
`tf.train.Checkpoint`s in `tf2_checkpoints/` (`.../tf2_checkpoints/ckpt-3`):
see `latest_checkpoint` for when they are looked for.
"""

import contextlib
import glob
import os
import re
import sys

from tutorial_support.quiet_tensorflow import tf

from tutorial_support import cli, run_dirs
from tutorial_support.errors import UserError


def latest_checkpoint(train_dir, model=None):
    """Finds the newest checkpoint in `train_dir` or in its run folders.

    Newest by what the folders record, not by file times (which a copy
    changes): the run started last, by its folder's name (see
    `run_dirs.recorded_start`; a folder whose name records no start counts
    as older than any that does), and in it the checkpoint of the highest step.

    Args:
        train_dir: the folder to look in.
        model: only checkpoints of this model ('fc', 'cnn' or 'deep_cnn'); None for any
            checkpoint in the folders looked in: `train_dir`, each of its folders, and
            their `checkpoints/` (so for a run folder given as `train_dir`, its
            `tf2_checkpoints/` too). A TF2 twin's model ('tf2_fc', 'tf2_cnn',
            'tf2_deep_cnn'): only its TF2 checkpoints, looked for in each folder's
            `tf2_checkpoints/` and nowhere else.

    Returns:
        The checkpoint path (as given to `Saver.restore` or `Checkpoint.restore`), or None.
    """
    cli.check_no_pattern_characters(train_dir)
    if not os.path.isdir(train_dir):
        return None
    folders = [train_dir] + [os.path.join(train_dir, name)
                             for name in sorted(os.listdir(train_dir))]
    tf2 = model in run_dirs.TF2_MODEL_NAMES
    found = []
    for run_folder in folders:
        for folder in ([os.path.join(run_folder, run_dirs.TF2_CHECKPOINT_FOLDER)] if tf2 else
                       [run_folder, os.path.join(run_folder, run_dirs.CHECKPOINT_FOLDER)]):
            path = checkpoint_in(folder)
            if path is None or not os.path.exists(path + '.index'):
                continue
            if model is None or model_of_checkpoint(path) == model:
                found.append((recency(path), path))
    return max(found)[1] if found else None


def latest_of_run(run_dir):
    """The newest checkpoint of one run folder, TF1's or a TF2 twin's (by its params.json)."""
    try:
        model = run_dirs.load_run_params(run_dir).get('model')
    except UserError:
        model = None  # a damaged params.json: its TF1 checkpoints are still found
    return latest_checkpoint(run_dir, model if model in run_dirs.TF2_MODEL_NAMES else None)


def recency(checkpoint):
    """What orders checkpoints from oldest to newest: its run's recorded start, then its step."""
    start = run_dirs.recorded_start(run_dirs.run_dir_of(checkpoint))
    step = re.search(r'-(\d+)$', checkpoint)
    return (start is not None, start or ('', 0, 0), int(step.group(1)) if step else 0)


def is_complete(checkpoint):
    """Whether a checkpoint's files are all on disk: its .index and every .data-*-of-N shard."""
    index = checkpoint + '.index'
    shards = glob.glob(glob.escape(checkpoint) + '.data-*-of-*')
    if not os.path.isfile(index) or not shards:
        return False
    expected = shards[0].rsplit('-of-', 1)[1]
    return expected.isdigit() and len(shards) == int(expected)


def checkpoint_in(folder):
    """The checkpoint a folder's `checkpoint` state file names, if it lies inside the folder.

    A state file naming a path outside its folder (absolute, or with '..')
    would make restoring or resuming read or write elsewhere: it is passed
    over with a note, like a damaged one.
    """
    if not os.path.isfile(os.path.join(folder, 'checkpoint')):
        return None
    try:
        path = tf.train.latest_checkpoint(folder)
    except (tf.errors.OpError, ValueError):
        return None  # a damaged state file
    if path and not is_inside(path, folder):
        print(f'Note: {os.path.join(folder, "checkpoint")} names {path}, outside its '
              'folder; that folder is passed over.', file=sys.stderr)
        return None
    return path


def is_inside(path, folder):
    """Whether `path` lies inside `folder`, once links and '..' are resolved."""
    folder = os.path.realpath(folder)
    return os.path.commonpath([os.path.realpath(path), folder]) == folder


def model_of_variables(variables):
    """'fc', 'cnn' or 'deep_cnn': the model a checkpoint's variables belong to (None if none)."""
    if 'Layer1/weights' in variables:
        return 'fc'
    if 'conv1/filters' in variables:
        return 'cnn'
    if 'deep_cnn/block1/conv1/filters' in variables:
        return 'deep_cnn'
    return None


def model_of_checkpoint(checkpoint):
    """The model of a checkpoint: from its run's parameters, else from its variables."""
    try:
        model = run_dirs.load_run_params(run_dirs.run_dir_of(checkpoint)).get('model')
    except UserError:
        model = None  # a damaged params.json: the variables still tell
    if model is None:
        try:
            model = model_of_variables(dict(tf.train.list_variables(checkpoint)))
        except (tf.errors.OpError, ValueError):
            model = None  # unreadable: matches no model
    return model


def describe_checkpoint(variables):
    """Names the model a checkpoint holds, from its variable names and shapes."""
    if model_of_variables(variables) == 'fc':
        return 'a two-layer network with hidden1={}'.format(variables['Layer1/weights'][1])
    if model_of_variables(variables) in ('cnn', 'deep_cnn'):
        return run_dirs.MODEL_NAMES[model_of_variables(variables)]
    return 'an unknown model (variables: {})'.format(', '.join(sorted(variables)[:5]))


def checkpoint_variables(checkpoint):
    """Reads the variable names and shapes stored in a checkpoint.

    Raises:
        UserError: the checkpoint cannot be read.
    """
    try:
        return dict(tf.train.list_variables(checkpoint))
    except (tf.errors.OpError, ValueError) as error:
        raise UserError(
            'The checkpoint {} cannot be read; it is damaged or incomplete ({}). '
            'Delete its files ({}.*) to use the checkpoint before it.'
            .format(checkpoint, getattr(error, 'message', error), checkpoint)) from None


def check_checkpoint_matches(checkpoint, model_description):
    """Makes sure a checkpoint holds exactly the variables of the current graph.

    Args:
        checkpoint: the checkpoint path.
        model_description: what the flags asked for, e.g. 'a two-layer network
            with hidden1=120', for the message.

    Raises:
        UserError: saying what the checkpoint holds and what was expected.
    """
    stored = checkpoint_variables(checkpoint)
    problems = []
    for variable in tf.global_variables():
        name, shape = variable.op.name, variable.shape.as_list()
        if name not in stored:
            problems.append(f'{name} is missing')
        elif stored[name] != shape:
            problems.append(f'{name} has shape {stored[name]}, expected {shape}')
    if problems:
        raise UserError(
            'The checkpoint {} holds {}, but the flags describe {} ({}). Pass the '
            'flags the run was trained with.'.format(
                checkpoint, describe_checkpoint(stored), model_description,
                '; '.join(problems[:3])))


@contextlib.contextmanager
def checked_restore(checkpoint, model_description='the model of this run'):
    """Wraps `saver.restore`: checks the checkpoint first, explains a failure.

    The check comes first because `Saver.restore` accepts variables of another
    shape without a word (a run trained with another --hidden1, say) and the
    model would then run with them. A restore that fails means damaged files.

    Raises:
        UserError: naming the checkpoint, what it holds and what to do.
    """
    check_checkpoint_matches(checkpoint, model_description)
    try:
        yield
    except tf.errors.OpError as error:
        raise UserError(
            f'The checkpoint {checkpoint} cannot be restored; it is damaged '
            f'({error.message}). Delete its files ({checkpoint}.*) to use the one '
            'before.') from None


def checkpoint_to_restore(train_dir, model):
    """The newest checkpoint in `train_dir` of `model` ('auto': of any model), and its model.

    Returns:
        (checkpoint, 'fc', 'cnn' or 'deep_cnn').

    Raises:
        UserError: there is none, or it holds another model than asked for.
    """
    newest = latest_checkpoint(train_dir)
    if newest is None:
        raise UserError(
            f'There is no checkpoint in {train_dir}. Train a model first (python '
            'run_fc_model.py, run_cnn_model.py or run_deep_cnn_model.py), or point --train_dir '
            'at the folder it trained into.')
    checkpoint = newest if model == 'auto' else latest_checkpoint(train_dir, model)
    if checkpoint is None:
        raise UserError(
            f'The newest checkpoint in {train_dir}, {newest}, holds '
            f'{describe_checkpoint(checkpoint_variables(newest))}, but --model {model} expects '
            f'{run_dirs.MODEL_NAMES[model]}, and there is no checkpoint of it there.')
    stored = checkpoint_variables(checkpoint)
    found = model_of_variables(stored)
    if found is None or model not in ('auto', found):
        expected = run_dirs.MODEL_NAMES.get(model, 'a model of this suite')
        raise UserError(f'The checkpoint holds {describe_checkpoint(stored)}, but --model '
                        f'{model} expects {expected}.')
    return checkpoint, found
