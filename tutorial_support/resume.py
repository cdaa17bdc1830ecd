"""--resume: which run it continues, and with which settings.

A resumed run continues the newest run of its model in --train_dir from
that run's last checkpoint, in the same folder and with the settings saved in
its `params.json`: the same seed, so the same batches and dropout masks, and
the same test accuracy at the end as a run that was never interrupted.
"""

import os
import shlex

from tutorial_support import checkpoints, cli, run_dirs, run_lock
from tutorial_support.errors import UserError

# When a run is resumed its saved settings come back, except these, which are
# the current command's; and these may be given anew (to train for longer).
NOT_RESTORED_FLAGS = ('train_dir', 'resume')
CHANGEABLE_FLAGS = ('max_steps', 'epochs', 'data_dir')


def run_to_continue(flag_values, model, flag_rules):
    """The run that --resume continues, whose settings become the flags.

    Args:
        flag_values: the parsed flags; with --resume, updated with the
            resumed run's values.
        model: the runner's model name, as stored in the run's parameters
            ('fc', 'cnn'; 'tf2_fc', 'tf2_cnn' for the TF2 twins, whose runs
            and checkpoints the TF1 runners never take, nor they the TF1 ones).
        flag_rules: what the settings must pass (see `cli.check_flags`).

    Returns:
        (run_dir, checkpoint): the run's folder and its newest checkpoint;
        (None, None) without --resume, for a new run.

    Raises:
        UserError: no checkpoint of this model, its run is still training or
            holds a link, or its settings are not valid.
    """
    if not flag_values.resume:
        return None, None
    train_dir = flag_values.train_dir
    checkpoint = checkpoints.latest_checkpoint(train_dir, model)
    if checkpoint is None:
        raise UserError(f'--resume: there is no checkpoint in {train_dir} of '
                        f'{model_name(model)} to resume from. Start a new run without '
                        '--resume.')
    run_dir = run_dirs.run_dir_of(checkpoint)
    newer = newer_runs_without_checkpoint(train_dir, model, run_dirs.recorded_start(run_dir))
    if newer:
        raise UserError(
            f'--resume: the newest run of {model_name(model)} in {train_dir}, '
            f'{newer[-1]}, stopped before its first checkpoint, so it cannot be resumed. '
            f'Start it again without --resume; or, to continue the run before it '
            f'({run_dir}), move {newer[-1]} out of {train_dir} first.')
    run_dirs.check_no_links(run_dir)
    run_lock.check_not_in_use(run_dir)
    adopt_settings(flag_values, run_dir, flag_rules)
    print(f'Resuming from {checkpoint}')
    return run_dir, checkpoint


def model_name(model):
    """'the two-layer network', ...: a model as the messages name it."""
    return {**run_dirs.MODEL_NAMES, **run_dirs.TF2_MODEL_NAMES}[model]


def adopt_settings(flag_values, run_dir, flag_rules):
    """Takes the settings of the run being resumed, refusing conflicting flags.

    A run folder may come from anywhere, so its `params.json` is data, not
    instructions: each saved value must have its flag's type and pass the
    same checks as a value typed on the command line.

    Raises:
        UserError: a flag given on the command line differs from the run's, or
            a saved value is not one the flag would take.
    """
    path = os.path.join(run_dir, run_dirs.PARAMS_FILE)
    for name, saved in run_dirs.load_run_params(run_dir).items():
        if name in NOT_RESTORED_FLAGS or name not in flag_values:
            continue
        flag = flag_values[name]
        if flag.present and name in CHANGEABLE_FLAGS:
            continue
        if not cli.is_value_of_flag(flag, saved):
            raise UserError(f'{path} gives {name} = {saved!r}, which is not a value of '
                            f'--{name}: the run in {run_dir} cannot be continued. Start a '
                            'new run without --resume.')
        if flag.present and flag.value != saved:
            raise UserError(
                f'--{name} {flag.value} differs from the run being resumed in {run_dir} '
                f'({saved}). A resumed run keeps its settings: drop the flag, or start a new '
                'run without --resume.')
        flag.value = float(saved) if isinstance(flag.default, float) else saved
    try:
        cli.check_flags(flag_values, **flag_rules)
    except UserError as error:
        problem = str(error).rstrip('.')
        raise UserError(f'The settings saved in {path} are not valid ({problem}). The run in '
                        f'{run_dir} cannot be continued: start a new run without '
                        '--resume.') from None


def newer_runs_without_checkpoint(train_dir, model, since):
    """The run folders of `model` that hold no checkpoint, started after `since`, oldest first.

    When a run started is what its folder's name records (`run_dirs.recorded_start`),
    not a file time, which a copy of the folder changes.
    """
    found = []
    for name in sorted(os.listdir(train_dir)):
        folder = os.path.join(train_dir, name)
        start = run_dirs.recorded_start(folder)
        if start is None or (since is not None and start <= since):
            continue
        try:
            if (not os.path.isfile(os.path.join(folder, run_dirs.PARAMS_FILE))
                    or run_dirs.load_run_params(folder).get('model') != model
                    or checkpoints.latest_checkpoint(folder, model) is not None):
                continue
        except (OSError, ValueError, UserError):
            continue  # not a run folder, or one this check cannot read
        found.append((start, folder))
    return [folder for _, folder in sorted(found)]


def resume_command(script, flag_values):
    """The command line that continues this run after an interruption.

    Each path is quoted for a POSIX shell, so that the command works pasted
    into one whatever the path holds (spaces, quotes, `$`, a newline).
    """
    command = f'python {script} --train_dir {shlex.quote(flag_values.train_dir)}'
    if flag_values.data_dir:
        command += f' --data_dir {shlex.quote(flag_values.data_dir)}'
    return command + ' --resume'
