"""The TF2 twins' writers, given the `add_summary` of a TF1 `FileWriter`.

The scripts in `tf2/` write their numbers and histograms the TensorFlow 2 way
(`tf.summary.scalar(...)` under `writer.as_default()`). The HParams record,
the pictures and the confusion matrix come from the modules the TF1 runners
use (`summaries`, `pictures`, `confusion`), which build TF1 `Summary` protos
and hand them to `writer.add_summary(summary, step)`; wrapped in a
`ProtoWriter`, a `tf.summary.create_file_writer` writer takes them as they are.
"""

from tutorial_support.quiet_tensorflow import tf


class ProtoWriter:
    """A TensorFlow 2 summary writer with a TF1 `FileWriter`'s `add_summary` and `flush`."""

    def __init__(self, writer):
        self.writer = writer

    def add_summary(self, summary, step=0):
        """Writes a TF1 `Summary` proto (built by `summaries` and the like) at `step`."""
        with self.writer.as_default():
            tf.compat.v2.summary.experimental.write_raw_pb(summary.SerializeToString(),
                                                           step=step)

    def flush(self):
        """Writes what is buffered to the event file."""
        self.writer.flush()
