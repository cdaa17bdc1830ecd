"""What the Keras way's scripts (tf2/keras_*.py) need besides compile, fit and callbacks.

`fit` and its callbacks train, write TensorBoard's logs, save checkpoints and
back the run up for --resume (`BackupAndRestore`). What Keras leaves to the
script is here: which run --resume continues, and from which epoch its
batches start; a diverging loss and Ctrl-C acted on between two steps, with a
message that says what was kept; the run's settings for TensorBoard's
HParams tab, written as the TF1 and TF2 runs write them.
"""

import contextlib
import json
import math
import os

from tutorial_support.quiet_tensorflow import tf

import h5py
import keras

from tutorial_support import (
    resume,
    run_dirs,
    run_lock,
    stop_signals,
    summaries,
    tf2_summaries,
    training_stops,
)
from tutorial_support.errors import TrainingInterrupted, UserError

BACKUP_FOLDER = 'backup'  # BackupAndRestore's folder, in the run folder
# BackupAndRestore's files: the weights and optimizer state, and the epoch they end
# (Keras 3's names; each also as NAME.bkp, the backup before)
BACKUP_WEIGHTS = 'latest.weights.h5'
BACKUP_RECORD = 'training_metadata.json'


def backup_dir(run_dir):
    """The folder that a run's `BackupAndRestore` writes to and restores from."""
    return os.path.join(run_dir, BACKUP_FOLDER)


def epochs_of(max_steps, steps_per_epoch):
    """--max_steps as a number of fit's epochs of `steps_per_epoch` steps.

    Raises:
        UserError: --max_steps is not a whole number of epochs.
    """
    if max_steps % steps_per_epoch:
        raise UserError(f'--max_steps is {max_steps}; here it must be a multiple of '
                        f'{steps_per_epoch}: fit trains in epochs of {steps_per_epoch} steps '
                        '(its steps_per_epoch), and --resume continues from the end of one.')
    return max_steps // steps_per_epoch


def run_to_resume(flag_values, model, flag_rules):
    """With --resume: the newest run of `model` in --train_dir; its settings become the flags.

    Returns:
        The run's folder, or None without --resume (a new run).

    Raises:
        UserError: there is no run of this model, its newest run backed up
            nothing, holds a link or is still training, or its saved
            settings are not valid.
    """
    if not flag_values.resume:
        return None
    train_dir = flag_values.train_dir
    runs = []
    for name in sorted(os.listdir(train_dir)) if os.path.isdir(train_dir) else []:
        folder = os.path.join(train_dir, name)
        start = run_dirs.recorded_start(folder)
        with contextlib.suppress(UserError):  # a damaged params.json: not a run to continue
            if start and run_dirs.load_run_params(folder).get('model') == model:
                runs.append((start, folder))
    description = run_dirs.KERAS_MODEL_NAMES[model]
    if not runs:
        raise UserError(f'--resume: there is no run of {description} in {train_dir} to '
                        'resume. Start a new run without --resume.')
    run_dir = max(runs)[1]
    if backed_up_epoch(run_dir) is None:
        raise UserError(f'--resume: the newest run of {description} in {train_dir}, '
                        f'{run_dir}, stopped before the end of its first epoch, when '
                        'BackupAndRestore first backs a run up. Start it again without --resume.')
    run_dirs.check_no_links(run_dir)
    run_lock.check_not_in_use(run_dir)
    resume.adopt_settings(flag_values, run_dir, flag_rules)
    return run_dir


def backed_up_epoch(run_dir):
    """The number of epochs a run's backup holds, as BackupAndRestore will restore it.

    As BackupAndRestore does, the backup before the latest is taken when the
    latest weights cannot be read (a crash or a full disk while it saved).

    Returns:
        The epoch; None when there is no backup.

    Raises:
        UserError: neither backup can be read.
    """
    weights = os.path.join(backup_dir(run_dir), BACKUP_WEIGHTS)
    record = os.path.join(backup_dir(run_dir), BACKUP_RECORD)
    if not os.path.lexists(record):
        return None
    if not can_be_read(weights) and os.path.lexists(weights + '.bkp'):
        weights, record = weights + '.bkp', record + '.bkp'
    try:
        with open(record) as f:
            epoch = json.loads(f.read(4096))['epoch']
    except (OSError, ValueError, KeyError, TypeError):
        epoch = None
    if type(epoch) is not int or epoch < 0 or not can_be_read(weights):
        raise UserError(f'The backup in {backup_dir(run_dir)} is damaged: BackupAndRestore '
                        f'cannot continue the run in {run_dir}. Start a new run without --resume.')
    return epoch


def can_be_read(weights_file):
    """Whether every array of a Keras weights file (HDF5) can be read."""
    def read(name, item):
        if isinstance(item, h5py.Dataset):
            item[()]
    try:
        with h5py.File(weights_file, 'r') as f:
            f.visititems(read)
    except (OSError, ValueError, RuntimeError):
        return False
    return True


def first_epoch(run_dir, epochs, length_flag):
    """The epoch fit starts at: 0 for a new run, else the one BackupAndRestore restores.

    fit restores the weights, the optimizer and the epoch itself, as it
    begins; the batches are the script's, which start them at this epoch,
    so that a resumed run trains on the batches the uninterrupted run would.

    Args:
        run_dir: the run's folder (None: a new run).
        epochs: the epochs the run trains in all.
        length_flag: the flag that sets them, for the message ('--epochs').

    Raises:
        UserError: the run has trained all its epochs already.
    """
    epoch = backed_up_epoch(run_dir) if run_dir else None
    if epoch is None:
        return 0
    if epoch >= epochs:
        raise UserError(f'--resume: the run in {run_dir} has trained its {epoch} epochs '
                        f'already. Give a larger {length_flag} to train it further.')
    print(f'Resuming from {backup_dir(run_dir)}, at the end of epoch {epoch}')
    return epoch


def write_hparams(flag_values, model, run_dir):
    """The run's settings, for TensorBoard's HParams tab beside the TF1 and TF2 runs."""
    writer = tf.compat.v2.summary.create_file_writer(run_dir)
    tf2_summaries.ProtoWriter(writer).add_summary(summaries.hparams(flag_values, model, run_dir))
    writer.close()


class StepChecks(keras.callbacks.Callback):
    """After every training step: a NaN or infinite loss, or a stop signal, ends fit there.

    Nothing is saved then: the backup and the checkpoints on disk are those of
    the last whole epoch. (Keras's own TerminateOnNaN lets the epoch end, and
    its callbacks save the broken weights.)
    """

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations) - 1
        loss = float(logs['loss'])  # the mean over the epoch so far: NaN from a NaN on
        if not math.isfinite(loss):
            raise UserError(f'The loss became {loss} at step {step}: training diverged, so it '
                            'stopped. The learning rate is probably too large; try a smaller '
                            'one (for example a tenth of it). The checkpoints and the backup '
                            'of the epochs before are kept.')
        training_stops.check_step(loss, step)  # a stop signal (Ctrl-C) stops here


@contextlib.contextmanager
def stops_explained(model, run_dir, resume_command):
    """Around fit: Ctrl-C, SIGTERM or SIGHUP ends training after the step in progress.

    So a stop never cuts a save short (see `StepChecks`; a second signal
    stops at once). The message says what BackupAndRestore kept.

    Raises:
        TrainingInterrupted: exit code 128 + the signal's number; which
            backup is kept, and the command that continues from it.
    """
    with stop_signals.noting():
        try:
            yield
            training_stops.stop_if_signalled()
        except KeyboardInterrupt as stop:
            with stop_signals.shielded():
                stop_signals.finish_shielded()
                noted = stop_signals.noted_signals()
                signal_number = noted[0] if noted else stop_signals.signal_number_of(stop)
                epoch = backed_up_epoch(run_dir)
                kept = (f'BackupAndRestore backed it up at the end of epoch {epoch}, in '
                        f'{backup_dir(run_dir)}. To continue from there, run: {resume_command}'
                        if epoch else 'It stopped before the end of its first epoch, when '
                        'BackupAndRestore first backs a run up: start it again.')
                raise TrainingInterrupted(
                    f'Training interrupted at step {int(model.optimizer.iterations)} by '
                    f'{stop_signals.describe(signal_number)}. {kept}', signal_number) from None
