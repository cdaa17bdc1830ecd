"""--resume of a TF2 twin: its own (object-based) checkpoint, restored with checks.

A `tf.train.Checkpoint` restores each object's variables by their place in
the object graph (model/layer1_weights, optimizer/iterations). An
optimizer's state is made at its first step; restored before that, it would
wait, unchecked, for that step. So the optimizer is built first, and every
object of the run must then be filled from the checkpoint, or the restore fails.
"""

import contextlib

from tutorial_support.quiet_tensorflow import tf

from tutorial_support.errors import UserError


@contextlib.contextmanager
def checked_restore(checkpoint, optimizer, variables):
    """Wraps `Checkpoint.restore(path).assert_existing_objects_matched()`: explains a failure.

    Args:
        checkpoint: the checkpoint path (tf2_checkpoints/ckpt-N).
        optimizer: the run's optimizer, built here for `variables`, so that
            its state (Adam's moving averages) is restored now.
        variables: the model's trainable variables.

    Raises:
        UserError: the checkpoint is damaged, or holds another model than
            the run's settings describe.
    """
    optimizer.build(variables)
    try:
        yield
    except (tf.errors.OpError, ValueError, AssertionError, IndexError) as error:  # a cut file
        reason = getattr(error, 'message', None) or str(error).splitlines()[0]
        raise UserError(
            f'The checkpoint {checkpoint} cannot be restored: it is damaged, or holds '
            f'another model than its run\'s params.json describes ({reason}). Delete its '
            f'files ({checkpoint}.*) to resume from the one before.') from None
