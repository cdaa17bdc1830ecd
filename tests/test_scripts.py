"""End-to-end runs of the scripts on a small CIFAR-10 set, and unit checks of the models.

Every script runs in-process on `cifar_dir` (500 training and 100 test images
in the real file format); the tests read what a user reads: the printed lines,
the run folder with its checkpoints and TensorBoard events, and what
`restore_model.py` makes of them.
"""

import glob
import io
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from google.protobuf import text_format
from PIL import Image
from script_runs import run_captured
from tensorboard.plugins import projector
from tensorboard.plugins.hparams import plugin_data_pb2

import cnn_model
import data_helpers
import restore_model
import run_cnn_model
import run_fc_model
import softmax
import two_layer_fc
from tutorial_support import batch_eval, pictures

RUN_FOLDER = re.compile(r'\d{8}-\d{6}(-\d+)?_(fc|cnn)(_[a-z0-9_]+=[^_/]+)*$')


def run_folder(train_dir):
    """The single run folder `train_dir/YYYYmmdd-HHMMSS_model_flags/` of a run."""
    folders = [name for name in os.listdir(train_dir)
               if os.path.isdir(os.path.join(train_dir, name))]
    assert len(folders) == 1, folders
    assert RUN_FOLDER.match(folders[0]), folders[0]
    return os.path.join(train_dir, folders[0])


def checkpoint_path(folder, step):
    """Where a run folder's checkpoint of a step is: checkpoints/model.ckpt-STEP."""
    return os.path.join(folder, 'checkpoints', f'model.ckpt-{step}')


def checkpoint_steps(folder):
    """The steps of the complete checkpoints (index and data files) in a folder."""
    steps = set()
    for index in glob.glob(os.path.join(folder, 'checkpoints', 'model.ckpt-*.index')):
        prefix = index[:-len('.index')]
        if glob.glob(prefix + '.data-*'):
            steps.add(int(prefix.rsplit('-', 1)[1]))
    return sorted(steps)


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


def hparams_of(folder):
    """The hyper-parameters a run recorded for TensorBoard's HParams tab, as a dict."""
    found = [value for _, tag, value in read_events(folder)
             if value.metadata.plugin_data.plugin_name == 'hparams']
    assert [value.tag for value in found] == ['_hparams_/session_start_info']
    data = plugin_data_pb2.HParamsPluginData.FromString(found[0].metadata.plugin_data.content)
    assert data.session_start_info.group_name == os.path.basename(folder)  # the "Trial ID"
    return {name: getattr(value, value.WhichOneof('kind'))
            for name, value in data.session_start_info.hparams.items()}


def line_value(out, prefix):
    """The text after `prefix` on the only line that starts with it."""
    lines = [line for line in out.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return lines[0][len(prefix):]


# ---------------------------------------------------------------------------
# softmax.py
# ---------------------------------------------------------------------------

def test_softmax_prints_the_published_lines(run, cifar_dir):
    """Step lines every 100 steps, the test accuracy, and the total time last."""
    code, out, err = run(softmax, '--data_dir', cifar_dir, '--max_steps', '200',
                         '--batch_size', '50', '--seed', '1')
    assert code == 0, err
    lines = out.splitlines()
    steps = [line for line in lines if line.startswith('Step')]
    assert len(steps) == 2
    for step, line in zip((0, 100), steps, strict=True):
        accuracy = float(line.rsplit(' ', 1)[1])
        assert 0 <= accuracy <= 1
        assert line == f'Step {step:5d}: training accuracy {accuracy:g}'
    test_accuracy = float(line_value(out, 'Test accuracy '))
    assert f'Test accuracy {test_accuracy:g}' in lines
    assert test_accuracy > 0.3  # the classes differ by colour: far better than guessing
    match = re.fullmatch(r'Total time: *(\d+\.\d\d)s', lines[-1])
    assert match and lines[-1] == f'Total time: {float(match.group(1)):5.2f}s'


def test_softmax_with_train_dir_goes_to_tensorboard(run, cifar_dir, tmp_path):
    """--train_dir: the same printed lines, and a run folder with graph, HParams and templates."""
    args = ['--data_dir', cifar_dir, '--max_steps', '200', '--batch_size', '50', '--seed', '1']
    code, plain, err = run(softmax, *args)
    assert code == 0, err
    train_dir = str(tmp_path / 'logs')
    code, out, err = run(softmax, *args, '--train_dir', train_dir)
    assert code == 0, err
    assert [line for line in out.splitlines() if not line.startswith('Total time')] == \
        [line for line in plain.splitlines() if not line.startswith('Total time')]

    (name,) = os.listdir(train_dir)
    assert re.fullmatch(r'\d{8}-\d{6}_softmax_batch_size=50_max_steps=200_seed=1', name)
    folder = os.path.join(train_dir, name)
    assert hparams_of(folder) == {'model': 'softmax', 'batch_size': 50, 'learning_rate': 0.005,
                                  'max_steps': 200, 'seed': 1}
    assert [step for step, _ in scalars(folder, 'loss')] == list(range(200))
    assert [step for step, _ in scalars(os.path.join(folder, 'train'), 'accuracy')] == [0, 100]
    (test,) = scalars(folder, 'test_accuracy')
    assert test == (200, pytest.approx(float(line_value(out, 'Test accuracy ')), abs=1e-6))
    assert any(event.graph_def for path in glob.glob(os.path.join(folder, 'events.*'))
               for event in tf.train.summary_iterator(path))

    # Ten templates of 32 x 32 pixels, drawn twice as large, 5 to a row, a label under each.
    templates = picture(folder, 'class_templates')
    assert templates.shape == (4 + 2 * (64 + 4 + 18), 4 + 5 * (64 + 4), 3)
    tiles = [templates[4 + row * 86:4 + row * 86 + 64, 4 + col * 68:4 + col * 68 + 64]
             for row in range(2) for col in range(5)]
    assert all(tile.std() > 10 for tile in tiles)  # a pattern, not a blank


# ---------------------------------------------------------------------------
# run_fc_model.py and restore_model.py
# ---------------------------------------------------------------------------

@pytest.fixture(scope='module')
def fc_run(cifar_dir, tmp_path_factory):
    """A run_fc_model run of 1,100 steps: a periodic and a final checkpoint."""
    train_dir = str(tmp_path_factory.mktemp('fc_logs'))
    code, out, err = run_captured(
        run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir, '--max_steps', '1100',
        '--batch_size', '50', '--learning_rate', '0.00001', '--seed', '1')
    assert code == 0, err
    return train_dir, out


def test_fc_prints_its_own_parameters_sorted(fc_run, cifar_dir):
    """'Parameters:' then one 'name = value' line per own flag, sorted, no absl flags."""
    train_dir, out = fc_run
    lines = out.splitlines()
    start = lines.index('Parameters:') + 1
    end = lines.index('', start)
    parameters = [line.split(' = ', 1) for line in lines[start:end]]
    names = [name for name, _ in parameters]
    assert names == ['batch_size', 'data_dir', 'hidden1', 'learning_rate', 'max_steps',
                     'reg_constant', 'resume', 'seed', 'train_dir', 'validation_size']
    values = dict(parameters)
    assert values['batch_size'] == '50'
    assert values['max_steps'] == '1100'
    assert values['hidden1'] == '120'
    assert values['seed'] == '1'
    assert values['data_dir'] == cifar_dir
    assert values['train_dir'] == train_dir
    assert float(values['learning_rate']) == 0.00001


def test_fc_progress_checkpoints_and_end_lines(fc_run):
    """Step lines every 100 steps, 'Saved checkpoint' after 1,000 and at the end."""
    train_dir, out = fc_run
    lines = out.splitlines()
    step_lines = [line for line in lines if line.startswith('Step')]
    assert [int(re.match(r'Step (\d+),', line).group(1)) for line in step_lines] == \
        list(range(0, 1001, 100))
    for line in step_lines:
        step, accuracy = re.fullmatch(r'Step (\d+), training accuracy (\S+)', line).groups()
        assert line == f'Step {int(step):d}, training accuracy {float(accuracy):g}'
    saved = [i for i, line in enumerate(lines) if line == 'Saved checkpoint']
    assert len(saved) == 2
    # After the 1,000th step (before the 'Step 1000' line), and once more at the end.
    assert lines.index(step_lines[9]) < saved[0] < lines.index(step_lines[10]) < saved[1]
    test_line = [i for i, line in enumerate(lines) if line.startswith('Test accuracy ')]
    assert len(test_line) == 1 and test_line[0] > saved[1]
    accuracy = float(lines[test_line[0]].split()[-1])
    assert lines[test_line[0]] == f'Test accuracy {accuracy:g}'
    assert re.fullmatch(r'Total time: *\d+\.\d\ds', lines[-1])


def test_fc_run_folder_holds_both_checkpoints(fc_run):
    """One run folder with checkpoints/model.ckpt-1000.* and checkpoints/model.ckpt-1100.*."""
    train_dir, _ = fc_run
    folder = run_folder(train_dir)
    assert checkpoint_steps(folder) == [1000, 1100]
    for step in (1000, 1100):
        assert os.path.isfile(os.path.join(folder, 'checkpoints', f'model.ckpt-{step}.meta'))
    assert not glob.glob(os.path.join(train_dir, 'model.ckpt-*'))  # all inside the run folder


def test_fc_summaries_every_100_steps(fc_run):
    """The events hold loss, train_accuracy and a logits histogram at steps 0, 100, ..."""
    train_dir, _ = fc_run
    values = read_events(run_folder(train_dir))
    expected = list(range(0, 1001, 100))

    def steps(suffix, kind):
        return sorted(step for step, tag, value in values
                      if tag.endswith(suffix) and value.WhichOneof('value') == kind)

    assert steps('loss', 'simple_value') == expected
    assert steps('train_accuracy', 'simple_value') == expected
    assert steps('logits', 'histo') == expected
    losses = [value.simple_value for _, tag, value in values if tag.endswith('loss')]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_fc_run_folder_says_what_the_run_was(fc_run):
    """The folder name: date and time, the model, then the flags given that are not defaults."""
    train_dir, _ = fc_run
    name = os.path.basename(run_folder(train_dir))
    assert re.fullmatch(r'\d{8}-\d{6}_fc_batch_size=50_learning_rate=1e-05_max_steps=1100'
                        r'_seed=1', name), name


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
    train_dir, _ = fc_run
    folder = run_folder(train_dir)
    drawn = picture(folder, 'layer1_weights')
    assert drawn.shape == (4 + 10 * 68, 4 + 12 * 68, 3)
    weights = tf.train.load_checkpoint(checkpoint_path(folder, 1100)).get_tensor(
        'Layer1/weights')
    assert_tiles_drawn(drawn, data_helpers.to_nhwc(weights.T), (0, 13, 119), columns=12, scale=2)


def test_fc_projector_shows_the_hidden_layer_of_the_test_images(fc_run, cifar_dir):
    """projector_config.pbtxt: the test images' hidden layer, their classes, their thumbnails.

    The run folder itself holds no checkpoint, so the Projector shows this
    embedding and no raw weight matrix.
    """
    train_dir, _ = fc_run
    folder = run_folder(train_dir)
    assert not os.path.exists(os.path.join(folder, 'checkpoint'))
    config = projector.ProjectorConfig()
    with open(os.path.join(folder, 'projector_config.pbtxt')) as f:
        text_format.Parse(f.read(), config)
    (embedding,) = config.embeddings
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


def test_restore_fc_prints_the_same_test_accuracy(run, fc_run, cifar_dir):
    """restore_model restores the newest checkpoint (step 1100) and repeats the figure."""
    train_dir, train_out = fc_run
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    lines = out.splitlines()
    assert 'Restoring variables from checkpoint' in lines
    assert 'Current step: 1100' in lines
    trained = 'Test accuracy ' + line_value(train_out, 'Test accuracy ')
    assert [line for line in lines if line.startswith('Test accuracy')] == [trained]
    assert lines[-1].startswith('Total time:')


def test_restore_after_validation_split_repeats_the_test_accuracy(run, cifar_dir, tmp_path):
    """A run that held out training images: restore_model gives its test accuracy too.

    The held-out images change the training mean the test images are centred
    with; restoring must use the run's own mean image.
    """
    train_dir = str(tmp_path / 'logs')
    code, train_out, err = run(
        run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir, '--max_steps', '100',
        '--batch_size', '50', '--learning_rate', '0.00001', '--seed', '2',
        '--validation_size', '400')
    assert code == 0, err
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert line_value(out, 'Test accuracy ') == line_value(train_out, 'Test accuracy ')


# ---------------------------------------------------------------------------
# run_cnn_model.py
# ---------------------------------------------------------------------------

@pytest.fixture(scope='module')
def cnn_run(cifar_dir, tmp_path_factory):
    """A two-epoch run_cnn_model run: 10 batches of 50 an epoch."""
    train_dir = str(tmp_path_factory.mktemp('cnn_logs'))
    code, out, err = run_captured(
        run_cnn_model, '--data_dir', cifar_dir, '--train_dir', train_dir, '--epochs', '2',
        '--batch_size', '50', '--seed', '1')
    assert code == 0, err
    return train_dir, out


def test_cnn_prints_the_published_lines(cnn_run):
    """'Cost after epoch 0: ...' (every 10 epochs), train and test accuracy, total time last."""
    _, out = cnn_run
    lines = out.splitlines()
    cost_lines = [line for line in lines if line.startswith('Cost after epoch')]
    assert len(cost_lines) == 1
    numbers = re.fullmatch(r'Cost after epoch 0: (\S+), train accuracy: (\S+), '
                           r'validation accuracy: (\S+)', cost_lines[0]).groups()
    cost, train_accuracy, validation_accuracy = map(float, numbers)
    # The published format: 'Cost after epoch %i: %f, train accuracy: %f, validation ...'.
    assert cost_lines[0] == (f'Cost after epoch {0:d}: {cost:f}, train accuracy: '
                             f'{train_accuracy:f}, validation accuracy: {validation_accuracy:f}')
    assert cost > 0 and 0 <= train_accuracy <= 1 and 0 <= validation_accuracy <= 1
    train = float(line_value(out, 'Train Accuracy: '))
    test = float(line_value(out, 'Test Accuracy: '))
    assert 0 <= train <= 1 and 0 <= test <= 1
    assert lines.index(cost_lines[0]) < lines.index(f'Train Accuracy: {train:g}') \
        < lines.index(f'Test Accuracy: {test:g}')
    assert re.fullmatch(r'Total time: *\d+\.\d\ds', lines[-1])


def test_cnn_checkpoint_per_epoch_and_summaries(cnn_run):
    """model.ckpt-10 and -20 (one per epoch); events with cost, loss, accuracy, logits.

    Everything is logged at the global step: the cost of an epoch at the step
    that ends it, like the loss of its batches.
    """
    train_dir, _ = cnn_run
    folder = run_folder(train_dir)
    assert checkpoint_steps(folder) == [10, 20]
    values = read_events(folder)
    costs = scalars(folder, 'cost')
    assert [step for step, _ in costs] == [10, 20]
    assert all(cost > 0 for _, cost in costs)
    tags = {(tag.rsplit('/', 1)[-1], value.WhichOneof('value')) for _, tag, value in values}
    assert {('loss', 'simple_value'), ('train_accuracy', 'simple_value'),
            ('logits', 'histo')} <= tags


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
    train_dir, _ = cnn_run
    folder = run_folder(train_dir)
    drawn = picture(folder, 'conv1_filters')
    assert drawn.shape == (4 + 8 * 36, 4 + 8 * 36, 3)
    filters = tf.train.load_checkpoint(checkpoint_path(folder, 20)).get_tensor(
        'conv1/filters')
    assert_tiles_drawn(drawn, np.transpose(filters, (3, 0, 1, 2)), (0, 9, 63), columns=8,
                       scale=8)


def test_cnn_projector_shows_the_features_of_the_test_images(cnn_run):
    """The CNN's Projector embedding: the 4,096 features its last layer sees, per test image."""
    train_dir, _ = cnn_run
    folder = run_folder(train_dir)
    config = projector.ProjectorConfig()
    with open(os.path.join(folder, 'projector_config.pbtxt')) as f:
        text_format.Parse(f.read(), config)
    (embedding,) = config.embeddings
    assert embedding.tensor_name == '4,096 features'
    features = np.loadtxt(os.path.join(folder, embedding.tensor_path), delimiter='\t')
    assert features.shape == (100, 4096)
    assert (features >= 0).all() and features.any()  # after ReLU and max-pooling
    assert os.path.isfile(os.path.join(folder, embedding.metadata_path))
    assert os.path.isfile(os.path.join(folder, embedding.sprite.image_path))


def test_restore_detects_the_cnn_and_repeats_its_test_accuracy(run, cnn_run, cifar_dir):
    """Without --model, restore_model finds the CNN and prints the run's test accuracy."""
    train_dir, train_out = cnn_run
    code, out, err = run(restore_model, '--train_dir', train_dir, '--data_dir', cifar_dir)
    assert code == 0, err
    assert 'Restoring variables from checkpoint' in out.splitlines()
    assert 'Current step: 20' in out.splitlines()
    assert line_value(out, 'Test accuracy ') == line_value(train_out, 'Test Accuracy: ')


# ---------------------------------------------------------------------------
# The models themselves
# ---------------------------------------------------------------------------

@pytest.fixture
def cnn_graph():
    """A CNN graph with initialised variables: (session, images, rate, logits, seeds, images)."""
    with tf.Graph().as_default():
        images, _, rate, seeds = run_cnn_model.placeholder_inputs()
        logits = cnn_model.inference(images, rate, seeds)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            batch = np.random.default_rng(0).normal(0, 50, (5, 32, 32, 3)).astype(np.float32)
            yield sess, images, rate, logits, seeds, batch


def test_cnn_logits_and_features(cnn_graph):
    """N x 10 logits; the last layer is fed 8 x 8 x 64 = 4,096 features."""
    sess, images, _, logits, _, batch = cnn_graph
    assert logits.shape.as_list() == [None, 10]
    assert sess.run(logits, {images: batch}).shape == (5, 10)
    weights = [v for v in tf.global_variables() if v.op.name == 'fc/weights']
    assert len(weights) == 1 and weights[0].shape.as_list() == [4096, 10]
    reshapes = [op for op in tf.get_default_graph().get_operations()
                if op.type == 'Reshape' and op.name.startswith('fc/')]
    assert len(reshapes) == 1
    assert reshapes[0].outputs[0].shape.as_list() == [None, 4096]
    assert sess.run(reshapes[0].outputs[0], {images: batch}).shape == (5, 4096)


def test_cnn_dropout_only_in_training(cnn_graph):
    """Rate left at 0: identical logits; rate 0.3 fed: other logits, new masks each step.

    The seeds the runner feeds at steps 0 and 1 (seed 5) give two different
    masks; the same step's seeds again (as after --resume) give the same ones.
    """
    sess, images, rate, logits, seeds, batch = cnn_graph
    evaluation = sess.run(logits, {images: batch})
    np.testing.assert_array_equal(evaluation, sess.run(logits, {images: batch}))
    np.testing.assert_array_equal(evaluation, sess.run(logits, {images: batch, rate: 0.0}))

    step_0, step_1 = [[5, 0], [5, 1]], [[5, 2], [5, 3]]
    training = sess.run(logits, {images: batch, rate: 0.3, seeds: step_0})
    assert not np.allclose(training, evaluation)
    next_step = sess.run(logits, {images: batch, rate: 0.3, seeds: step_1})
    assert not np.allclose(next_step, training)
    np.testing.assert_array_equal(training,
                                  sess.run(logits, {images: batch, rate: 0.3, seeds: step_0}))
    np.testing.assert_array_equal(evaluation, sess.run(logits, {images: batch}))


def test_cnn_graph_boxes_hold_only_the_network(cnn_graph):
    """Graphs tab: conv1/conv2 hold the layers alone, nothing that depends on the step count.

    The dropout seeds arrive as a fed tensor; inside each box there are the
    filters, the convolution, ReLU, pooling and the dropout, and no op of seed
    arithmetic beside them.
    """
    sess, _, _, logits, _, _ = cnn_graph
    cost = cnn_model.loss(logits, tf.placeholder(tf.int64, [None]))
    cnn_model.training(cost, 0.001)
    step_op = tf.train.get_global_step().op
    boxes = [op for op in tf.get_default_graph().get_operations()
             if op.name.split('/')[0] in ('conv1', 'conv2')]
    assert boxes
    for op in boxes:
        seen, pending = set(), list(op.inputs)
        while pending:
            tensor = pending.pop()
            if tensor.op.name in seen:
                continue
            seen.add(tensor.op.name)
            assert tensor.op is not step_op, f'{op.name} depends on the global step'
            pending.extend(tensor.op.inputs)
    parts = {op.name.split('/')[1] for op in boxes}
    assert parts == {'filters', 'Conv2D', 'Relu', 'MaxPool2d', 'stateless_dropout'}


def test_batchwise_evaluation_equals_whole_set_accuracy():
    """do_eval in batches of 7 and 1,000 gives the whole-set predictions and accuracy."""
    rng = np.random.default_rng(1)
    images = rng.normal(0, 60, (53, data_helpers.IMAGE_PIXELS)).astype(np.float32)
    with tf.Graph().as_default():
        tf.set_random_seed(1)
        images_placeholder, labels_placeholder = run_fc_model.placeholder_inputs()
        logits = two_layer_fc.inference(images_placeholder, data_helpers.IMAGE_PIXELS, 20,
                                        data_helpers.NUM_CLASSES)
        accuracy = two_layer_fc.evaluation(logits, labels_placeholder)
        predictions = tf.argmax(logits, 1)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            whole = sess.run(predictions, {images_placeholder: images})
            # Half the labels agree with the model, so the accuracy is well above 0.
            labels = np.where(np.arange(53) % 2 == 0, whole, rng.integers(0, 10, 53))
            expected = sess.run(accuracy, {images_placeholder: images,
                                           labels_placeholder: labels})
            for batch_size in (7, 1000):
                batch_accuracy, predicted = batch_eval.do_eval(
                    sess, accuracy, predictions, images_placeholder, labels_placeholder,
                    (images, labels), batch_size=batch_size)
                np.testing.assert_array_equal(predicted, whole)
                assert batch_accuracy == pytest.approx(float(expected), abs=1e-6)
                assert batch_accuracy == np.mean(whole == labels)
    assert 0.5 <= expected < 1
