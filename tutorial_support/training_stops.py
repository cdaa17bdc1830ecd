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

from tutorial_support.quiet_tensorflow import tf

from tutorial_support import checkpoints, errors
from tutorial_support.errors import TrainingInterrupted, UserError


def check_finite(loss_value, step, run_dir=None):
    """Stops training at once when the loss is NaN or infinite.

    Raises:
        UserError: saying so and what to do; nothing is saved, so the last
            checkpoint on disk is the last good one.
    """
    if math.isfinite(loss_value):
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

    Raises:
        TrainingInterrupted: after Ctrl-C (exit code 130), saying where the
            checkpoint is and which command continues the run.
    """
    try:
        yield
    except KeyboardInterrupt:
        global_step = tf.train.get_global_step()
        with save_errors_explained(os.path.dirname(checkpoint_file), resume_command):
            path = saver.save(sess, checkpoint_file, global_step=global_step)
        raise TrainingInterrupted(
            f'Training interrupted at step {sess.run(global_step)}. Saved checkpoint {path}. '
            f'To continue where it stopped, run: {resume_command}') from None
