"""What a run folder's TensorBoard files hold: summaries, pictures, HParams, Projector."""

import glob
import io
import os

import numpy as np
import tensorflow.compat.v1 as tf
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins import projector
from tensorboard.plugins.hparams import plugin_data_pb2


def read_events(folder):
    """All summary values of a run folder's event files as (step, tag, value) tuples."""
    values = []
    for path in glob.glob(os.path.join(folder, 'events.out.tfevents.*')):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                values.append((event.step, value.tag, value))
    return values


def scalars(folder, tag):
    """[(step, value)] of one scalar tag in a folder's event files, by step."""
    return sorted((step, value.simple_value) for step, found, value in read_events(folder)
                  if found == tag and value.WhichOneof('value') == 'simple_value')


def picture(folder, tag):
    """The RGB pixels of the image summary `tag` in a folder's event files."""
    (found,) = [value.image for _, name, value in read_events(folder) if name == tag]
    with Image.open(io.BytesIO(found.encoded_image_string)) as image:
        return np.asarray(image.convert('RGB'))


def hparams_of(folder):
    """The hyper-parameters a run recorded for TensorBoard's HParams tab, as a dict."""
    found = [value for _, tag, value in read_events(folder)
             if value.metadata.plugin_data.plugin_name == 'hparams']
    assert [value.tag for value in found] == ['_hparams_/session_start_info']
    data = plugin_data_pb2.HParamsPluginData.FromString(found[0].metadata.plugin_data.content)
    assert data.session_start_info.group_name == os.path.basename(folder)  # the "Trial ID"
    return {name: getattr(value, value.WhichOneof('kind'))
            for name, value in data.session_start_info.hparams.items()}


def projector_embedding(folder):
    """The one embedding a run folder's projector_config.pbtxt names."""
    config = projector.ProjectorConfig()
    with open(os.path.join(folder, 'projector_config.pbtxt')) as f:
        text_format.Parse(f.read(), config)
    (embedding,) = config.embeddings
    return embedding


def tf2_scalars(folder, tag):
    """[(step, value)] of one scalar tag that TF2's tf.summary.scalar wrote (a tensor), by step.

    Keras's TensorBoard callback and the TF2 scripts write scalars this way;
    TF1's FileWriter writes `simple_value`s (see `scalars`).
    """
    return sorted((step, float(tf.make_ndarray(value.tensor)))
                  for step, found, value in read_events(folder)
                  if found == tag and value.WhichOneof('value') == 'tensor')
