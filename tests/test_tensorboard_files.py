"""What the runs write for TensorBoard: summaries, HParams, pictures, Projector files.

The event files and Projector files of the session's `fc_run` and `cnn_run`,
checked against what the runs printed and what their checkpoints hold.
"""

import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from event_files import hparams_of, picture, projector_embedding, read_events, scalars
from PIL import Image
from run_folders import checkpoint_path, run_folder
from script_runs import line_value

import data_helpers
from tutorial_support import cifar10_files, pictures


def drawn_tile(weights, scale):
    """How tutorial_support.pictures draws one image of weights (H x W x 3): stretched to 0-255."""
    span = weights.max() - weights.min()
    pixels = np.rint(255 * (weights - weights.min()) / span).astype(np.uint8)
    return np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)


def assert_tiles_drawn(drawn, images, indices, columns, scale, gap=4):
    """Each listed image is drawn at its place in a grid of `columns`, `scale` times as large."""
    size = images.shape[1] * scale
    for index in indices:
        row, col = divmod(index, columns)
        top, left = gap + row * (size + gap), gap + col * (size + gap)
        np.testing.assert_array_equal(drawn[top:top + size, left:left + size],
                                      drawn_tile(images[index], scale), err_msg=str(index))


def picture_and_weights(trained, tag, step, variable):
    """A run's picture `tag` and the weights it draws, read from the run's checkpoint of `step`."""
    folder = run_folder(trained[0])
    reader = tf.train.load_checkpoint(checkpoint_path(folder, step))
    return picture(folder, tag), reader.get_tensor(variable)


@pytest.mark.parametrize('trained, placeholders', [
    ('fc_run', {'images': [-1, 3072], 'image-labels': [-1]}),
    ('cnn_run', {'images': [-1, 32, 32, 3], 'image-labels': [-1], 'dropout_rate': []}),
])
def test_the_graph_shows_the_placeholders_as_the_post_names_them(trained, placeholders,
                                                                   request):
    """The Graphs tab draws the run's graph: its placeholders named and shaped as in the
    post (TensorBoard labels their edges ?x3072 and ?)."""
    folder = run_folder(request.getfixturevalue(trained)[0])
    (graph_def,) = [event.graph_def for path in tf.io.gfile.glob(os.path.join(folder, 'events.*'))
                    for event in tf.train.summary_iterator(path) if event.graph_def]
    found = {node.name: shape_of(node.attr['shape'].shape)
             for node in tf.GraphDef.FromString(graph_def).node
             if node.op in ('Placeholder', 'PlaceholderWithDefault') and
             node.name in placeholders}
    assert found == placeholders


def shape_of(shape):
    """A graph's shape as a list (-1 for any size), None for a shape of any rank."""
    return None if shape.unknown_rank else [dim.size for dim in shape.dim]


def test_fc_summaries_every_100_steps(fc_run):
    """The events hold loss, train_accuracy and a logits histogram at steps 0, 100, ...

    Tagged by the graph's boxes, as the TF2 twin tags them too (one chart for both).
    """
    train_dir, _ = fc_run
    values = read_events(run_folder(train_dir))
    expected = list(range(0, 1001, 100))

    def steps(name, kind):
        return sorted(step for step, tag, value in values
                      if tag == name and value.WhichOneof('value') == kind)

    assert steps('Loss/loss', 'simple_value') == expected
    assert steps('Accuracy/train_accuracy', 'simple_value') == expected
    assert steps('Layer2/logits', 'histo') == expected
    losses = [value.simple_value for _, tag, value in values if tag == 'Loss/loss']
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_fc_hparams_and_accuracy_for_tensorboard(fc_run):
    """HParams: the model and its flags; train/ 'accuracy' and test_accuracy as printed."""
    train_dir, out = fc_run
    folder = run_folder(train_dir)
    assert hparams_of(folder) == {
        'model': 'fc', 'batch_size': 50, 'hidden1': 120, 'learning_rate': 1e-05,
        'max_steps': 1100, 'reg_constant': 0.1, 'seed': 1, 'validation_size': 0}
    printed = [(int(step), float(accuracy)) for step, accuracy in
               re.findall(r'^Step (\d+), training accuracy (\S+)$', out, re.MULTILINE)]
    train = scalars(os.path.join(folder, 'train'), 'accuracy')
    assert [step for step, _ in train] == [step for step, _ in printed]
    for (_, logged), (_, shown) in zip(train, printed, strict=True):
        assert f'{logged:g}' == f'{shown:g}'
    (test,) = scalars(folder, 'test_accuracy')
    assert test[0] == 1100
    assert test[1] == pytest.approx(float(line_value(out, 'Test accuracy ')), abs=1e-6)
    assert scalars(os.path.join(folder, 'validation'), 'accuracy') == []  # no held-out set


def test_fc_first_layer_weights_as_pictures(fc_run):
    """120 hidden units, 12 to a row: each tile is its unit's 3,072 weights as a 32 x 32 image."""
    drawn, weights = picture_and_weights(fc_run, 'layer1_weights', 1100, 'Layer1/weights')
    assert drawn.shape == (4 + 10 * 68, 4 + 12 * 68, 3)
    assert_tiles_drawn(drawn, cifar10_files.to_nhwc(weights.T), (0, 13, 119), columns=12, scale=2)


def test_fc_projector_shows_the_hidden_layer_of_the_test_images(fc_run, cifar_dir):
    """projector_config.pbtxt: the test images' hidden layer, their classes, their thumbnails.

    The run folder itself holds no checkpoint, so the Projector shows this
    embedding and no raw weight matrix.
    """
    train_dir, _ = fc_run
    folder = run_folder(train_dir)
    assert not os.path.exists(os.path.join(folder, 'checkpoint'))
    embedding = projector_embedding(folder)
    assert embedding.tensor_name == 'hidden layer'  # as the Projector lists the points
    data = data_helpers.load_data(cifar_dir)
    reader = tf.train.load_checkpoint(checkpoint_path(folder, 1100))
    expected = np.maximum(data['images_test'] @ reader.get_tensor('Layer1/weights')
                          + reader.get_tensor('Layer1/biases'), 0)
    features = np.loadtxt(os.path.join(folder, embedding.tensor_path), delimiter='\t')
    assert features.shape == (100, 120)  # every test image of cifar_dir, 120 hidden units
    np.testing.assert_allclose(features, expected, rtol=1e-3, atol=1e-3)

    with open(os.path.join(folder, embedding.metadata_path)) as f:
        rows = [line.rstrip('\n').split('\t') for line in f]
    assert rows[0] == ['class', 'predicted', 'right']
    assert [row[0] for row in rows[1:]] == [data_helpers.CLASSES[label]
                                           for label in data['labels_test']]
    assert all(row[2] == ('yes' if row[0] == row[1] else 'no') for row in rows[1:])

    assert list(embedding.sprite.single_image_dim) == [32, 32]
    with Image.open(os.path.join(folder, embedding.sprite.image_path)) as sprite:
        pixels = np.asarray(sprite.convert('RGB'))
    assert pixels.shape == (320, 320, 3)  # 10 x 10 thumbnails
    thumbnails = pictures.to_uint8_images(data['images_test'], data['mean_image'])
    np.testing.assert_array_equal(pixels[:32, 32:64], thumbnails[1])
    np.testing.assert_array_equal(pixels[32:64, :32], thumbnails[10])


def test_cnn_accuracy_charts_share_the_step_axis(cnn_run):
    """train/ and validation/ 'accuracy' at the printed epochs' and the last step; the test too.

    Everything on the global step: epoch 0 ends at step 10, the run at step 20.
    """
    train_dir, out = cnn_run
    folder = run_folder(train_dir)
    assert re.fullmatch(r'\d{8}-\d{6}_cnn_batch_size=50_epochs=2_seed=1',
                        os.path.basename(folder))
    assert hparams_of(folder) == {
        'model': 'cnn', 'batch_size': 50, 'dropout_rate': 0.3, 'epochs': 2,
        'learning_rate': 0.001, 'seed': 1, 'validation_size': 0}
    numbers = re.search(r'^Cost after epoch 0: \S+, train accuracy: (\S+), '
                        r'validation accuracy: (\S+)$', out, re.MULTILINE).groups()
    train = scalars(os.path.join(folder, 'train'), 'accuracy')
    validation = scalars(os.path.join(folder, 'validation'), 'accuracy')
    (test,) = scalars(folder, 'test_accuracy')
    assert [step for step, _ in train] == [step for step, _ in validation] == [10, 20]
    assert test[0] == 20
    assert train[0][1] == pytest.approx(float(numbers[0]), abs=1e-6)
    assert validation[0][1] == pytest.approx(float(numbers[1]), abs=1e-6)
    train_accuracy, test_accuracy = (float(line_value(out, prefix))
                                     for prefix in ('Train Accuracy: ', 'Test Accuracy: '))
    assert train[1][1] == pytest.approx(train_accuracy, abs=1e-6)
    # Without --validation_size the published "validation" set is the test set.
    assert validation[1][1] == test[1] == pytest.approx(test_accuracy, abs=1e-6)
    assert all(not tag.startswith(('epoch_', 'validation_')) for _, tag, _ in read_events(folder))


def test_cnn_first_layer_filters_as_pictures(cnn_run):
    """64 filters of 4 x 4 x 3, 8 to a row, each drawn 8 times as large from the checkpoint."""
    drawn, filters = picture_and_weights(cnn_run, 'conv1_filters', 20, 'conv1/filters')
    assert drawn.shape == (4 + 8 * 36, 4 + 8 * 36, 3)
    assert_tiles_drawn(drawn, np.transpose(filters, (3, 0, 1, 2)), (0, 9, 63), columns=8,
                       scale=8)


def test_cnn_projector_shows_the_features_of_the_test_images(cnn_run):
    """The CNN's Projector embedding: the 4,096 features its last layer sees, per test image."""
    train_dir, _ = cnn_run
    folder = run_folder(train_dir)
    embedding = projector_embedding(folder)
    assert embedding.tensor_name == '4,096 features'  # as the Projector lists the points
    assert embedding.tensor_name == '4,096 features'
    features = np.loadtxt(os.path.join(folder, embedding.tensor_path), delimiter='\t')
    assert features.shape == (100, 4096)
    assert (features >= 0).all() and features.any()  # after ReLU and max-pooling
    assert os.path.isfile(os.path.join(folder, embedding.metadata_path))
    assert os.path.isfile(os.path.join(folder, embedding.sprite.image_path))
