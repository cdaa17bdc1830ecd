"""Summaries for TensorBoard beyond `tf.summary.merge_all()`: numbers, pictures, HParams.

The runners' graph summaries (loss, accuracy, logits) come from the model
functions; what is computed outside the graph (an epoch's cost, the accuracy
over a whole data set, pictures of what the model learned, the run's
hyper-parameters) is written with these. The accuracy on each data set goes
to a sub-folder of the run folder of its own (`train/`, `validation/`) under
one tag, `accuracy`: TensorBoard draws it as one chart with a line per data
set, as the Keras TensorBoard callback does it, and the HParams table shows
`train.accuracy` and `validation.accuracy`.
"""

import io
import os

from tutorial_support.quiet_tensorflow import tf

from tensorboard.plugins.hparams import summary_v2 as hparams_plugin

from tutorial_support import cli


def scalars(**values):
    """A summary of Python numbers for `FileWriter.add_summary`, one tag a keyword."""
    return tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=value)
                             for tag, value in values.items()])


def write_pictures(writer, step, **pictures):
    """Adds pictures (PIL images, one a keyword) to the Images tab at `step`."""
    writer.add_summary(tf.Summary(value=[
        tf.Summary.Value(tag=tag, image=tf.Summary.Image(
            height=picture.height, width=picture.width, colorspace=3,
            encoded_image_string=png_bytes(picture)))
        for tag, picture in pictures.items()]), step)
    writer.flush()


def png_bytes(picture):
    """Encodes a PIL image as PNG."""
    buffer = io.BytesIO()
    picture.save(buffer, format='PNG')
    return buffer.getvalue()


def hparams(flag_values, model, run_dir):
    """The run's hyper-parameters, for TensorBoard's HParams tab.

    The model and every flag but the folders, as TensorBoard's hparams plugin
    records them, under the run folder's name. Its table then lines up the runs
    of a train_dir with their final scalars (the `accuracy` of train/,
    validation/ and test/, the loss) as metrics.
    """
    values = dict(cli.hyperparameters(flag_values), model=model)
    summary = hparams_plugin.hparams_pb(values, trial_id=os.path.basename(run_dir))
    return tf.Summary.FromString(summary.SerializeToString())
