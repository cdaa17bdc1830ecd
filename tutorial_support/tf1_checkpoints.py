"""--restore_tf1 and --init_from_tf1: a TF1 run's checkpoint, read by name into a TF2 twin.

A TF1 `Saver` checkpoint stores each variable under its name in the graph
(`Layer1/weights`, `conv1/filters`). The TF2 twins in `tf2/` give their
`tf.Variable`s the very same names, so `tf.train.load_checkpoint(path)`
fills each one by name. This module finds the run's checkpoint (its newest
for --restore_tf1, its step 0 for --init_from_tf1), makes sure it holds the
twin's model in the shapes the flags give, and explains a damaged one.
"""

import contextlib
import os

from tutorial_support.quiet_tensorflow import tf

from tutorial_support import batch_eval, checkpoints, confusion, run_dirs
from tutorial_support.errors import UserError

# What every TF2 (object-based) checkpoint holds, and no TF1 Saver checkpoint
TF2_CHECKPOINT_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH'
# The TF1 runners' settings that give the model's variables their shapes
SHAPE_SETTINGS = ('hidden1', 'width', 'block1_width', 'block2_width', 'block3_width')


def checkpoint_of_run(run_folder, model, script, flag='restore_tf1'):
    """The newest TF1 checkpoint of `model` in a run folder, and the run's settings.

    `run_folder` may also be a train_dir: its newest run of `model` is taken.

    Args:
        run_folder: the folder --restore_tf1 (or `flag`) names.
        model: 'fc' or 'cnn', the twin's model.
        script: the TF1 runner that trains `model`, for the messages.
        flag: the flag that named the folder, for the messages.

    Returns:
        (checkpoint, the run's params.json as a dict).

    Raises:
        UserError: the folder is missing, holds no TF1 checkpoint, only one of
            the other model, or one that cannot be read.
    """
    if not os.path.isdir(run_folder):
        raise UserError(f'--{flag} {run_folder}: there is no such folder. Pass the run '
                        f'folder of a TF1 run of python {script} (in tf_logs, say).')
    checkpoint = checkpoints.latest_checkpoint(run_folder, model)
    if checkpoint is None:
        other = checkpoints.latest_checkpoint(run_folder)
        if other is None:
            raise UserError(f'--{flag} {run_folder}: there is no TF1 checkpoint in it. '
                            f'Pass the run folder of a run of python {script}.')
        stored = checkpoints.checkpoint_variables(other)
        if TF2_CHECKPOINT_KEY in stored:
            raise UserError(f'--{flag} {run_folder}: its checkpoint {other} is a TF2 '
                            f'checkpoint, saved by object by a script of tf2/. --{flag} '
                            f'reads TF1 runs: pass a run of python {script}.')
        raise UserError(
            f'--{flag} {run_folder}: its checkpoint {other} holds '
            f'{checkpoints.describe_checkpoint(stored)}, but this script is '
            f'{run_dirs.MODEL_NAMES[model]}. Pass a run of python {script}.')
    return checkpoint, run_dirs.load_run_params(run_dirs.run_dir_of(checkpoint))


def initial_checkpoint(flag_values, model, script):
    """--init_from_tf1: the step-0 checkpoint of a TF1 run, the weights a twin starts from.

    The TF1 runners keep their initial weights as `checkpoints/model.ckpt-0`.
    Without --seed the twin takes the TF1 run's seed (set in `flag_values`),
    so that it draws that run's batches (and dropout masks) too.

    Args:
        flag_values: the twin's parsed flags (init_from_tf1, resume, seed, ...).
        model: 'fc' or 'cnn', the twin's model.
        script: the TF1 runner that trains `model`, for the messages.

    Returns:
        The checkpoint path; None without --init_from_tf1, or with --resume
        (the resumed checkpoint holds the weights).

    Raises:
        UserError: no TF1 run of `model` there, one without a step-0
            checkpoint, or one trained with a model of other shapes.
    """
    run_folder = flag_values.init_from_tf1
    if not run_folder or flag_values.resume:
        return None
    newest, run_params = checkpoint_of_run(run_folder, model, script, 'init_from_tf1')
    checkpoint = os.path.join(os.path.dirname(newest), 'model.ckpt-0')
    if not checkpoints.is_complete(checkpoint):
        raise UserError(
            f'--init_from_tf1 {run_folder}: its run {run_dirs.run_dir_of(newest)} has no '
            f'complete checkpoint of step 0 ({checkpoint}), the initial weights that '
            f'python {script} keeps since it was taught to. Train a new TF1 run and pass its '
            'folder.')
    for name in SHAPE_SETTINGS:
        if name in flag_values and name in run_params and \
                run_params[name] != flag_values[name].value:
            raise UserError(
                f'--init_from_tf1 {run_folder}: that run was trained with --{name} '
                f'{run_params[name]}, this one has --{name} {flag_values[name].value}. Pass '
                f'--{name} {run_params[name]}, so that its weights fit.')
    if flag_values.seed is None:
        flag_values.seed = run_params.get('seed')
    print(f'Starting from the initial weights of {checkpoint}')
    return checkpoint


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


def load_by_name(model, checkpoint, flag_values, model_name):
    """Fills a TF2 model's variables from a TF1 checkpoint, each by its TF1 name.

    A TF1 Saver checkpoint holds each variable under its graph name
    (`Layer1/weights`); the twins' variables carry those names, so each is
    read with `tf.train.load_checkpoint(checkpoint).get_tensor(name)` (TF2's
    own checkpoints go by object instead). What else the checkpoint holds
    (global_step, Adam's slots) is not needed for the weights.

    Args:
        model: the twin's tf.Module.
        checkpoint: the TF1 checkpoint path.
        flag_values, model_name: the twin's flags and model ('fc', 'cnn'), for
            the messages.

    Returns:
        The checkpoint's reader (`reader.get_tensor('global_step')`).

    Raises:
        UserError: see `checked_load`.
    """
    variables = {variable.name.split(':')[0]: variable for variable in model.variables}
    with checked_load(checkpoint, variables, describe_model(model_name, flag_values)):
        reader = tf.train.load_checkpoint(checkpoint)
        for name, variable in variables.items():
            variable.assign(reader.get_tensor(name))
    return reader


def restore_and_test(model, flag_values, model_name, script, load_data):
    """--restore_tf1: a TF1 run's newest checkpoint, read by name into `model`, tested.

    Prints the step and the test accuracy that restore_model.py prints for
    that run, and the confusion matrix. The test images are those of the
    run's own data and split, centred with the very mean image it trained with.

    Args:
        model: the twin's tf.Module, in the shapes the flags give, with a
            `predictions(images)` method.
        flag_values: the twin's flags (restore_tf1, data_dir).
        model_name: 'fc' or 'cnn'.
        script: the TF1 runner of the model, for the messages.
        load_data: `load_data(data_dir, validation_size)`, the twin's loader
            (data_helpers.load_data, reshaped for the CNN).

    Raises:
        UserError: see `checkpoint_of_run` and `checked_load`.
    """
    checkpoint, run_params = checkpoint_of_run(flag_values.restore_tf1, model_name, script)
    print('Restoring variables from TF1 checkpoint')
    reader = load_by_name(model, checkpoint, flag_values, model_name)
    print(f'Current step: {reader.get_tensor("global_step")}')
    data = load_data(flag_values.data_dir or run_params.get('data_dir'),
                     run_params.get('validation_size', 0))
    test_accuracy, predicted = batch_eval.predict_in_batches(
        model.predictions, (data['images_test'], data['labels_test']))
    print(f'Test accuracy {test_accuracy:g}')
    confusion.report_test_set(data, predicted)


def describe_model(model_name, flag_values):
    """The model the flags describe, for the messages: 'a two-layer network with hidden1=120'."""
    if model_name == 'fc':
        return f'a two-layer network with hidden1={flag_values.hidden1}'
    return run_dirs.MODEL_NAMES[model_name]
