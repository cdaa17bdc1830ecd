"""How a training run stops when it cannot go on, and what it says then.

* a loss that becomes NaN or infinite stops the run at once, before a
  checkpoint of broken weights could be saved;
* Ctrl-C saves a checkpoint of the current step and prints the command that
  continues the run;
* a checkpoint that cannot be saved (a full disk) is explained, and the
  earlier ones are left intact.
"""

import contextlib
import glob
import math
import os
import signal
import threading

from tutorial_support.quiet_tensorflow import tf

from tutorial_support import checkpoints, errors
from tutorial_support.errors import TrainingInterrupted, UserError

# Whether Ctrl-C was pressed inside a `checkpoint_on_ctrl_c` block and not yet acted on.
_ctrl_c_pressed = False


def check_step(loss_value, step, run_dir=None):
    """After a training step: stops the run on a NaN or infinite loss, or after Ctrl-C.

    Raises:
        UserError: the loss is NaN or infinite, saying so and what to do;
            nothing is saved, so the last checkpoint on disk is the last good
            one.
        KeyboardInterrupt: Ctrl-C was pressed during the step (see
            `checkpoint_on_ctrl_c`, which then saves a checkpoint).
    """
    if math.isfinite(loss_value):
        stop_if_ctrl_c()
        return
    last_checkpoint = run_dir and checkpoints.latest_checkpoint(run_dir)
    raise UserError(
        'The loss became {} at step {}: training diverged, so it stopped. The '
        'learning rate is probably too large; try a smaller one (for example a '
        'tenth of it). {}'.format(
            loss_value, step,
            f'The last good checkpoint is kept: {last_checkpoint}.'
            if last_checkpoint else 'No checkpoint had been saved.'))


@contextlib.contextmanager
def save_errors_explained(run_dir, resume_command):
    """Turns a failed `saver.save` (a full disk, say) into a clear message.

    The temporary files of the failed save are removed, to give back the space.

    Raises:
        UserError: naming the folder; the earlier checkpoints are intact.
    """
    try:
        yield
    except (OSError, ValueError, tf.errors.OpError) as error:  # ValueError: folder gone
        for pattern in ('*.tmp*', '*.tempstate*'):
            for leftover in glob.glob(os.path.join(glob.escape(run_dir), '**', pattern),
                                      recursive=True):
                with contextlib.suppress(OSError):
                    os.remove(leftover)
        reason = errors.disk_full_message(error) or errors.first_line(error)
        raise UserError(
            f'Could not save a checkpoint in {run_dir} ({reason}). Earlier checkpoints there '
            'are intact. Free some disk space or fix the folder, then continue with: '
            f'{resume_command}') from None


@contextlib.contextmanager
def checkpoint_on_ctrl_c(saver, sess, checkpoint_file, resume_command):
    """Ctrl-C inside the block saves a checkpoint of the current step and stops the script.

    Ctrl-C is noted, and acted on at the next safe point: after the training
    step in progress (`check_step`), between two batches of an evaluation, or
    at the end of the block. Python's own Ctrl-C raises KeyboardInterrupt
    wherever the program is, and inside TensorFlow's `sess.run` that can leave
    a lock taken, so that the save would wait for ever. A second Ctrl-C stops
    at once.

    Raises:
        TrainingInterrupted: after Ctrl-C (exit code 130), saying where the
            checkpoint is and which command continues the run.
    """
    global _ctrl_c_pressed
    # Only where Ctrl-C would raise KeyboardInterrupt (not where it is ignored)
    noting = (threading.current_thread() is threading.main_thread()
              and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if noting:
        signal.signal(signal.SIGINT, _note_ctrl_c)
    try:
        yield
        stop_if_ctrl_c()
    except KeyboardInterrupt:
        global_step = tf.train.get_global_step()
        with save_errors_explained(os.path.dirname(checkpoint_file), resume_command):
            path = saver.save(sess, checkpoint_file, global_step=global_step)
        raise TrainingInterrupted(
            f'Training interrupted at step {sess.run(global_step)}. Saved checkpoint {path}. '
            f'To continue where it stopped, run: {resume_command}') from None
    finally:
        if noting:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        _ctrl_c_pressed = False


def _note_ctrl_c(signal_number, frame):
    """The Ctrl-C handler inside `checkpoint_on_ctrl_c`: notes the first, stops at the second."""
    global _ctrl_c_pressed
    if _ctrl_c_pressed:
        raise KeyboardInterrupt
    _ctrl_c_pressed = True


def stop_if_ctrl_c():
    """A safe point: raises KeyboardInterrupt if Ctrl-C was pressed since the last one."""
    if _ctrl_c_pressed:
        raise KeyboardInterrupt
