"""--restore_tf1: a TF1 run's checkpoint, read by variable name into a TF2 twin.

A TF1 `Saver` checkpoint stores each variable under its name in the graph
(`Layer1/weights`, `conv1/filters`). The TF2 twins in `tf2/` give their
`tf.Variable`s the very same names, so `tf.train.load_checkpoint(path)`
fills each one by name. This module finds the run's checkpoint, makes sure it
holds the twin's model in the shapes the flags give, and explains a damaged one.
"""

import contextlib
import os

from tutorial_support.quiet_tensorflow import tf

from tutorial_support import checkpoints, run_dirs
from tutorial_support.errors import UserError

# What every TF2 (object-based) checkpoint holds, and no TF1 Saver checkpoint
TF2_CHECKPOINT_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH'


def checkpoint_of_run(run_folder, model, script):
    """The newest TF1 checkpoint of `model` in a run folder, and the run's settings.

    `run_folder` may also be a train_dir: its newest run of `model` is taken.

    Args:
        run_folder: the folder --restore_tf1 names.
        model: 'fc' or 'cnn', the twin's model.
        script: the TF1 runner that trains `model`, for the messages.

    Returns:
        (checkpoint, the run's params.json as a dict).

    Raises:
        UserError: the folder is missing, holds no TF1 checkpoint, only one of
            the other model, or one that cannot be read.
    """
    if not os.path.isdir(run_folder):
        raise UserError(f'--restore_tf1 {run_folder}: there is no such folder. Pass the run '
                        f'folder of a TF1 run of python {script} (in tf_logs, say).')
    checkpoint = checkpoints.latest_checkpoint(run_folder, model)
    if checkpoint is None:
        other = checkpoints.latest_checkpoint(run_folder)
        if other is None:
            raise UserError(f'--restore_tf1 {run_folder}: there is no TF1 checkpoint in it. '
                            f'Pass the run folder of a run of python {script}.')
        stored = checkpoints.checkpoint_variables(other)
        if TF2_CHECKPOINT_KEY in stored:
            raise UserError(f'--restore_tf1 {run_folder}: its checkpoint {other} is a TF2 '
                            'checkpoint, saved by object by a script of tf2/. --restore_tf1 '
                            f'reads TF1 runs: pass a run of python {script}.')
        raise UserError(
            f'--restore_tf1 {run_folder}: its checkpoint {other} holds '
            f'{checkpoints.describe_checkpoint(stored)}, but this script is '
            f'{run_dirs.MODEL_NAMES[model]}. Pass a run of python {script}.')
    return checkpoint, run_dirs.load_run_params(run_dirs.run_dir_of(checkpoint))


@contextlib.contextmanager
def checked_load(checkpoint, variables, model_description):
    """Wraps filling TF2 variables from a TF1 checkpoint: checks first, explains a failure.

    Args:
        checkpoint: the checkpoint path.
        variables: {TF1 name: tf.Variable}, the variables to fill.
        model_description: what the flags describe, for the message.

    Raises:
        UserError: a variable is missing or of another shape (naming what the
            checkpoint holds), or the checkpoint's data cannot be read.
    """
    stored = checkpoints.checkpoint_variables(checkpoint)
    problems = []
    for name, variable in variables.items():
        if name not in stored:
            problems.append(f'{name} is missing')
        elif stored[name] != variable.shape.as_list():
            problems.append(f'{name} has shape {stored[name]}, expected '
                            f'{variable.shape.as_list()}')
    if problems:
        raise UserError(
            'The checkpoint {} holds {}, but the flags describe {} ({}). Pass the flags '
            'the run was trained with.'.format(
                checkpoint, checkpoints.describe_checkpoint(stored), model_description,
                '; '.join(problems[:3])))
    try:
        yield
    except (tf.errors.OpError, ValueError, IndexError) as error:  # IndexError: a cut file
        raise UserError(
            f'The checkpoint {checkpoint} cannot be read; it is damaged '
            f'({getattr(error, "message", error)}). Delete its files ({checkpoint}.*) to use '
            'the one before.') from None
