"""How a training run stops when it cannot go on, and what it says then.

* a loss that becomes NaN or infinite stops the run at once, before a
  checkpoint of broken weights could be saved;
* Ctrl-C, SIGTERM or SIGHUP (see `stop_signals`) saves a checkpoint of the
  current step (TF1: `checkpoint_on_stop`, a Saver; the TF2 twins:
  `manager_checkpoint_on_stop`, a CheckpointManager) and prints the command
  that continues the run;
* a checkpoint that cannot be saved (a full disk, a file-size limit) is
  explained, and the earlier ones are left intact;
* a summary that cannot be written stops the run with a checkpoint; a
  summary file at the limit on file sizes is found within 100 steps, not
  when TensorFlow next flushes it.

Whatever a message says was saved, or is intact, is first checked on disk.
"""

import contextlib
import errno
import glob
import math
import os
import shutil

from tutorial_support.quiet_tensorflow import tf

from tutorial_support import checkpoints, errors, run_dirs, stop_signals
from tutorial_support.errors import TrainingInterrupted, UserError

CHECK_FILES_EVERY = 100  # steps between checks that the summary files still fit


def check_step(loss_value, step, run_dir=None):
    """After a training step: stops the run on a NaN or infinite loss, or after a stop signal.

    Raises:
        UserError: the loss is NaN or infinite, saying so and what to do;
            nothing is saved, so the last checkpoint on disk is the last good
            one.
        stop_signals.Stopped: Ctrl-C, SIGTERM or SIGHUP came during the step
            (see `checkpoint_on_stop`, which then saves a checkpoint).
        OSError: a summary file reached the limit on file sizes (see
            `check_summaries_fit`; `checkpoint_on_stop` then saves a checkpoint).
    """
    if math.isfinite(loss_value):
        stop_if_signalled()
        if run_dir and step % CHECK_FILES_EVERY == 0:
            check_summaries_fit(run_dir)
        return
    last_checkpoint = run_dir and checkpoints.latest_of_run(run_dir)
    if last_checkpoint and not checkpoints.is_complete(last_checkpoint):
        last_checkpoint = None  # a message claims only what is on disk
    raise UserError(
        'The loss became {} at step {}: training diverged, so it stopped. The '
        'learning rate is probably too large; try a smaller one (for example a '
        'tenth of it). {}'.format(
            loss_value, step,
            f'The last good checkpoint is kept: {last_checkpoint}.'
            if last_checkpoint else 'No checkpoint had been saved.'))


def check_summaries_fit(run_dir):
    """Fails as soon as a summary file of the run has reached the limit on file sizes.

    TensorFlow's summary writer finds out only when it next flushes its file
    (every two minutes, or at the end), so a run under `ulimit -f` would lose
    its summaries without a word until then. A file at the limit has had
    writes refused: the run stops now, while a checkpoint can still be saved.

    Raises:
        OSError: EFBIG (File too large), naming the file.
    """
    if errors.file_size_limit() is None:
        return
    for folder in (run_dir, os.path.join(run_dir, 'train'), os.path.join(run_dir, 'validation')):
        try:
            full = [entry.path for entry in os.scandir(folder)
                    if entry.name.startswith('events.out.') and errors.is_at_size_limit(entry.path)]
        except OSError:
            continue  # a folder not made yet
        if full:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), full[0])


@contextlib.contextmanager
def save_errors_explained(run_dir, resume_command):
    """Turns a failed `saver.save` (a full disk, a file-size limit) into a clear message.

    The temporary files of the failed save are removed, to give back the space.

    Raises:
        UserError: naming the folder and the reason, and which checkpoint (if
            any) is there to continue from.
    """
    try:
        yield
    except (OSError, ValueError, tf.errors.OpError) as error:  # ValueError: folder gone
        for pattern in ('*.tmp*', '*.tempstate*'):
            for leftover in glob.glob(os.path.join(glob.escape(run_dir), '**', pattern),
                                      recursive=True):
                with contextlib.suppress(OSError):
                    os.remove(leftover)
        # a TF2 save writes its shards to ckpt-N_temp/ first, then merges them
        for leftover in glob.glob(os.path.join(glob.escape(run_dir),
                                               run_dirs.TF2_CHECKPOINT_FOLDER, '*_temp')):
            shutil.rmtree(leftover, ignore_errors=True)
        reason = errors.disk_full_message(error) or errors.first_line(error)
        raise UserError(f'Could not save a checkpoint in {run_dir} ({reason}). '
                        f'{what_is_kept(run_dir, resume_command, reason)}') from None


def what_is_kept(run_dir, resume_command, reason=None):
    """What a run that stopped leaves to continue from, as found on disk, and what to do.

    Args:
        reason: why a write failed (`errors.disk_full_message`), for the
            remedy; None when nothing failed (a stop signal).
    """
    try:
        last_checkpoint = checkpoints.latest_of_run(run_dir)
    except UserError:
        last_checkpoint = None
    first = f'{errors.remedy(reason)}, then ' if reason else ''
    if last_checkpoint is None:
        return (f'No checkpoint of this run had been saved, so it cannot be continued: '
                f'{first}start it again.')
    if not checkpoints.is_complete(last_checkpoint):
        return (f'Its newest checkpoint, {last_checkpoint}, is not complete on disk, so '
                f'the run cannot be continued: {first}start it again.')
    return (f'The last checkpoint saved, {last_checkpoint}, is intact: {first}continue '
            f'from it with: {resume_command}')


@contextlib.contextmanager
def checkpoint_on_stop(saver, sess, checkpoint_file, resume_command):
    """A stop signal inside the block saves a TF1 checkpoint of the current step and stops.

    `saver.save(sess, checkpoint_file, global_step=global_step)`, as the loop
    saves; see `saving_on_stop` for when and what is said.
    """
    global_step = tf.train.get_global_step()
    run_dir = os.path.dirname(os.path.dirname(checkpoint_file))
    with saving_on_stop(lambda: int(sess.run(global_step)),
                        lambda: saver.save(sess, checkpoint_file, global_step=global_step),
                        run_dir, resume_command):
        yield


@contextlib.contextmanager
def manager_checkpoint_on_stop(manager, step_counter, resume_command):
    """The TF2 form: a stop signal saves `manager.save(checkpoint_number=step_counter)`.

    Args:
        manager: the run's tf.train.CheckpointManager (its folder is in the run folder).
        step_counter: the variable that counts the training steps
            (optimizer.iterations).
        resume_command: the command that continues the run.
    """
    run_dir = os.path.dirname(os.path.normpath(manager.directory))
    with saving_on_stop(lambda: int(step_counter),
                        lambda: manager.save(checkpoint_number=step_counter),
                        run_dir, resume_command):
        yield


@contextlib.contextmanager
def saving_on_stop(current_step, save, run_dir, resume_command):
    """A stop signal inside the block saves a checkpoint of the current step and stops.

    Ctrl-C (SIGINT), SIGTERM and SIGHUP are noted, and acted on at the next
    safe point: after the training step in progress (`check_step`), between
    two batches of an evaluation, or at the end of the block. (Stopping
    inside TensorFlow's `sess.run` can leave a lock taken, so that the save
    would wait for ever.) While the checkpoint is saved, further signals are
    only noted; a second signal before that stops at once, without a save.

    A summary that cannot be written (a full disk, a file-size limit) stops
    the run the same way, with a checkpoint if there is room for one.

    Args:
        current_step: returns the step the model is at.
        save: saves a checkpoint of that step, and returns its path.
        run_dir: the run folder, for what is kept if the save fails.
        resume_command: the command that continues the run.

    Raises:
        TrainingInterrupted: exit code 128 + the signal's number, saying which
            signal, where the checkpoint is and which command continues the run.
        UserError: a summary could not be written; what was saved.
    """
    with stop_signals.noting():
        try:
            yield
            stop_if_signalled()
        except KeyboardInterrupt as stop:  # stop_signals.Stopped, or a test's own
            with stop_signals.shielded():
                stop_signals.finish_shielded()
                raise _stopped_error(stop, current_step, save, run_dir,
                                     resume_command) from None
        except (OSError, RuntimeError, tf.errors.OpError) as error:  # a summary writer's
            reason = errors.disk_full_message(error)
            if reason is None:
                raise
            with stop_signals.shielded():
                raise _write_failed_error(reason, current_step, save, run_dir,
                                          resume_command) from None


def _stopped_error(stop, current_step, save, run_dir, resume_command):
    """Saves a checkpoint of the current step (unless told to stop at once), and says so."""
    noted = stop_signals.noted_signals()
    signal_number = noted[0] if noted else stop_signals.signal_number_of(stop)
    stopped_by = stop_signals.describe(signal_number)
    if getattr(stop, 'at_once', False):
        return TrainingInterrupted(
            f'Training stopped at once by a second signal after {stopped_by}, without '
            f'saving the step in progress. {what_is_kept(run_dir, resume_command)}',
            signal_number)
    step = current_step()
    try:
        with save_errors_explained(run_dir, resume_command):
            path = save()
    except UserError as error:
        return TrainingInterrupted(f'Training interrupted at step {step} by {stopped_by}. '
                                   f'{error}', signal_number)
    if not checkpoints.is_complete(path):
        return TrainingInterrupted(
            f'Training interrupted at step {step} by {stopped_by}. '
            f'{what_is_kept(run_dir, resume_command)}',
            signal_number)
    later = stop_signals.noted_signals()[1:]  # those that came during the save
    note = (' (A further {} during the save waited for it to finish.)'.format(
        ', '.join(stop_signals.describe(number) for number in later)) if later else '')
    return TrainingInterrupted(
        f'Training interrupted at step {step} by {stopped_by}. Saved checkpoint {path}. '
        f'To continue where it stopped, run: {resume_command}{note}', signal_number)


def _write_failed_error(reason, current_step, save, run_dir, resume_command):
    """A summary could not be written: saves a checkpoint of the current step if it can."""
    stopped = f'Training stopped at step {current_step()}: {reason}.'
    try:
        with save_errors_explained(run_dir, resume_command):
            path = save()
    except UserError as error:
        return UserError(f'{stopped} {error}')
    if not checkpoints.is_complete(path):
        return UserError(f'{stopped} {what_is_kept(run_dir, resume_command, reason)}')
    return UserError(f'{stopped} Saved checkpoint {path}: {errors.remedy(reason)}, then '
                     f'continue with: {resume_command}')


def stop_if_signalled():
    """A safe point: raises `stop_signals.Stopped` if a stop signal came since the last one."""
    signal_number = stop_signals.stop_requested()
    if signal_number is not None:
        raise stop_signals.Stopped(signal_number)
