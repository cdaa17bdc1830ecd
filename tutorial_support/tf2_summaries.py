"""TensorBoard for the TF2 twins: numbers at a step, and what a run learned, at its end.

The scripts in `tf2/` write their summaries the TensorFlow 2 way
(`tf.summary.scalar(...)` under `writer.as_default(step=...)`). The HParams
record, the pictures and the confusion matrix come from the modules the TF1
runners use (`summaries`, `pictures`, `confusion`, `projector`), which build
TF1 `Summary` protos and hand them to `writer.add_summary(summary, step)`;
wrapped in a `ProtoWriter`, a `tf.summary.create_file_writer` writer takes
them as they are.
"""

import os

from tutorial_support.quiet_tensorflow import tf

from tutorial_support import confusion, projector, summaries

tf2 = tf.compat.v2  # TensorFlow 2's API (quiet_tensorflow hands out tf.compat.v1)


class ProtoWriter:
    """A TensorFlow 2 summary writer with a TF1 `FileWriter`'s `add_summary` and `flush`."""

    def __init__(self, writer):
        self.writer = writer

    def add_summary(self, summary, step=0):
        """Writes a TF1 `Summary` proto (built by `summaries` and the like) at `step`."""
        with self.writer.as_default():
            tf2.summary.experimental.write_raw_pb(summary.SerializeToString(),
                                                           step=step)

    def flush(self):
        """Writes what is buffered to the event file."""
        self.writer.flush()


class RunWriters:
    """A TF2 run's summary writers (TF1: the runners' three FileWriters).

    `run`, in the run folder, takes the graph and the summaries; `train` and
    `validation`, in sub-folders, each take the accuracy on that data set
    under one tag, `accuracy`, so that TensorBoard draws them in one chart.
    """

    def __init__(self, run_dir):
        self.run = tf2.summary.create_file_writer(run_dir)
        self.train = tf2.summary.create_file_writer(os.path.join(run_dir, 'train'))
        self.validation = tf2.summary.create_file_writer(os.path.join(run_dir, 'validation'))

    def accuracies(self, step, **accuracies):
        """Writes each data set's accuracy at `step`: `accuracies(step, train=0.5)`."""
        for data_set, accuracy in accuracies.items():
            write_scalars(getattr(self, data_set), step, accuracy=accuracy)

    def close(self):
        """Writes what is buffered and closes the event files."""
        for writer in (self.run, self.train, self.validation):
            writer.close()


def write_hparams(writer, flag_values, run_name, run_dir):
    """The run's hyper-parameters, for TensorBoard's HParams tab (as the TF1 runners write them)."""
    ProtoWriter(writer).add_summary(summaries.hparams(flag_values, run_name, run_dir))


def write_scalars(writer, step, **values):
    """Writes numbers at `step`, one tag a keyword (TF1: add_summary(summaries.scalars(...)))."""
    with writer.as_default(step=step):
        for tag, value in values.items():
            tf2.summary.scalar(tag, value)


def write_what_was_learned(writer, run_dir, step, data, predicted, model, embedding,
                           embedding_name, model_images=None, **pictures):
    """The end of a run for TensorBoard: its confusion matrix and guesses, pictures, Projector.

    Also prints the test set's confusion matrix, as the TF1 runners do.

    Args:
        writer: the run's own summary writer.
        run_dir: the run folder (the Projector's files go there).
        step: the step the run ended at.
        data: the dict from `data_helpers.load_data`.
        predicted: the predicted class of every test image.
        model: the twin's model: `model(images)` gives the logits.
        embedding: what the model makes of images, `embedding(images)`: the
            Projector places the first test images by it.
        embedding_name: what those points are, as the Projector lists them.
        model_images: the test images as the model takes them, where they differ
            from those drawn, `data['images_test']` (part 4 standardizes them).
        pictures: PIL images, one a keyword (the first layer's weights, say).
    """
    images = (data['images_test'] if model_images is None
              else model_images)[:projector.PROJECTOR_IMAGES]
    proto_writer = ProtoWriter(writer)
    confusion.report_test_set(data, predicted, proto_writer, step, os.path.basename(run_dir),
                              tf2.nn.softmax(model(images)).numpy())
    summaries.write_pictures(proto_writer, step, **pictures)
    projector.write_projector(run_dir, embedding(images).numpy(), data, predicted,
                              embedding_name)
