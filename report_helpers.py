"""What the model gets right and wrong: per-class accuracy, confusion matrix, images.

The blog posts end with one accuracy figure; these helpers show where it comes
from. Every training run and `restore_model.py` print a confusion matrix with
the accuracy of each class, and the runners also put it into TensorBoard's
Images tab with a grid of test images labelled with the truth and the guess.
"""

import io
import os

import numpy as np
import tensorflow.compat.v1 as tf
from PIL import Image, ImageDraw, ImageFont
from tensorboard.plugins import projector

import data_helpers


def confusion_matrix(labels, predicted, num_classes=data_helpers.NUM_CLASSES):
    """Counts (true class, predicted class) pairs.

    Returns:
        int64 array [num_classes, num_classes]; row = true class, column = guess.
    """
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def per_class_accuracy(matrix):
    """The fraction of each true class that was recognised (the diagonal / row sums)."""
    totals = matrix.sum(axis=1)
    return np.divide(np.diag(matrix), totals, out=np.zeros(len(matrix)), where=totals > 0)


def print_class_report(labels, predicted, classes, set_name='test'):
    """Prints the confusion matrix with each class's accuracy beside its row."""
    matrix = confusion_matrix(labels, predicted, len(classes))
    accuracy = per_class_accuracy(matrix)
    width = max(5, len(str(matrix.max())))
    print(f'Confusion matrix on the {set_name} set (rows: true class, columns: predicted),'
          ' with per-class accuracy:')
    print('       ' + ''.join('{:>{w}}'.format(name, w=width + 1) for name in classes)
          + '  accuracy')
    for name, row, class_accuracy in zip(classes, matrix, accuracy, strict=True):
        print(f'{name:>6} ' + ''.join('{:>{w}d}'.format(n, w=width + 1) for n in row)
              + f'  {class_accuracy:8.4f}')


def report_test_set(data, predicted, writer=None, step=0, title='', probabilities=None):
    """Prints the test set's confusion matrix; with a writer, shows it in TensorBoard.

    Args:
        data: the dict from `data_helpers.load_data`.
        predicted: the predicted class of every test image.
        writer: the run's summary FileWriter, or None.
        step: the global step to file the images under.
        title: the picture's first line (the run folder's name, say).
        probabilities: float [N, classes], the model's probabilities for the
            first N test images, from which the predictions grid is drawn.
    """
    print_class_report(data['labels_test'], predicted, data['classes'])
    if writer is not None:
        labels, classes = data['labels_test'], data['classes']
        matrix = confusion_matrix(labels, predicted, len(classes))
        accuracy = np.trace(matrix) / max(matrix.sum(), 1)
        pictures = {'confusion_matrix': render_confusion_matrix(
            matrix, classes, [title, f'test accuracy {accuracy:.4f}'])}
        if probabilities is not None:
            pictures['test_predictions'] = render_prediction_grid(
                data['images_test'], labels, probabilities, classes, data['mean_image'])
        write_pictures(writer, step, **pictures)


# ---------------------------------------------------------------------------
# Pictures for TensorBoard, drawn to be read at the size the Images tab shows
# them (about 350 pixels wide)
# ---------------------------------------------------------------------------

def png_bytes(picture):
    """Encodes a PIL image as PNG."""
    buffer = io.BytesIO()
    picture.save(buffer, format='PNG')
    return buffer.getvalue()


def render_confusion_matrix(matrix, classes, title_lines=(), cell=29):
    """Draws the confusion matrix with each row's accuracy beside it.

    Rows are the true classes, columns the guesses; the darker a cell, the more
    of its row's images it holds (blue on the diagonal, right; red off it).
    """
    font, small = ImageFont.load_default(size=12), ImageFont.load_default(size=10)
    left, top = 38, 20 + 16 * len(title_lines)
    width = left + cell * len(classes) + 32
    picture = Image.new('RGB', (width, top + 16 + cell * len(classes) + 6), 'white')
    draw = ImageDraw.Draw(picture)
    for k, line in enumerate(title_lines):
        draw.text((4, 4 + 16 * k), line, fill='black', font=font)
    draw.text((left, top - 16), 'guessed as ->', fill='gray', font=small)
    accuracies = per_class_accuracy(matrix)
    fractions = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    grid_top = top + 16
    draw.text((left + cell * len(classes) + 4, top), 'right', fill='black', font=small)
    for i, name in enumerate(classes):
        draw.text((left + i * cell + 1, top), name, fill='black', font=small)
        draw.text((2, grid_top + i * cell + cell // 3), name, fill='black', font=small)
        draw.text((left + cell * len(classes) + 4, grid_top + i * cell + cell // 3),
                  f'{accuracies[i]:.2f}', fill='black', font=small)
        for j in range(len(classes)):
            shade = int(255 * (1 - fractions[i, j]))
            colour = (shade, shade, 255) if i == j else (255, shade, shade)
            box = [left + j * cell, grid_top + i * cell,
                   left + (j + 1) * cell - 1, grid_top + (i + 1) * cell - 1]
            draw.rectangle(box, fill=colour, outline=(210, 210, 210))
            draw.text((box[0] + 2, box[1] + cell // 3), str(matrix[i, j]),
                      fill='black' if shade > 110 else 'white', font=small)
    return picture


def render_prediction_grid(images, labels, probabilities, classes, mean_image,
                           per_kind=8, columns=4, scale=2):
    """Draws test images with the true class and the guess with its probability.

    The first `per_kind` mistakes (guess in red), then as many right guesses
    (in green), from the images whose probabilities are given.
    """
    font = ImageFont.load_default(size=10)
    guesses = probabilities.argmax(axis=1)
    right = guesses == labels[:len(guesses)]
    chosen = np.concatenate([np.flatnonzero(~right)[:per_kind], np.flatnonzero(right)[:per_kind]])
    pixels = to_uint8_images(images[chosen], mean_image)
    side = data_helpers.IMAGE_SIZE * scale
    cell_w, cell_h = 88, side + 30
    rows = -(-len(chosen) // columns)
    picture = Image.new('RGB', (columns * cell_w, rows * cell_h), 'white')
    draw = ImageDraw.Draw(picture)
    for k, index in enumerate(chosen):
        x, y = (k % columns) * cell_w + 2, (k // columns) * cell_h + 2
        picture.paste(Image.fromarray(pixels[k]).resize((side, side), Image.NEAREST), (x, y))
        guess = guesses[index]
        draw.text((x, y + side + 1), 'true: ' + classes[labels[index]], fill='black', font=font)
        draw.text((x, y + side + 14), f'guess: {classes[guess]} {probabilities[index, guess]:.2f}',
                  fill=(0, 128, 0) if right[index] else (200, 0, 0), font=font)
    return picture


def to_uint8_images(images, mean_image):
    """Adds the mean back and returns N x 32 x 32 x 3 uint8 pixels."""
    if images.ndim == 2:
        images = data_helpers.to_nhwc(images)
    mean = data_helpers.to_nhwc(mean_image.reshape(1, -1))
    return np.clip(np.rint(images + mean), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# What the model learned: its first-layer weights as pictures
# ---------------------------------------------------------------------------

def write_pictures(writer, step, **pictures):
    """Adds pictures (PIL images, one a keyword) to the Images tab at `step`."""
    writer.add_summary(tf.Summary(value=[
        tf.Summary.Value(tag=tag, image=tf.Summary.Image(
            height=picture.height, width=picture.width, colorspace=3,
            encoded_image_string=png_bytes(picture)))
        for tag, picture in pictures.items()]), step)
    writer.flush()


def class_templates_picture(weights, classes, scale=2):
    """The softmax classifier's ten class templates as 32 x 32 colour pictures.

    Each class scores an image by a weighted sum of its 3,072 pixel values;
    drawn as an image, its weights show the picture the class looks for (with
    enough training, a blue sky for planes, a green-brown ground for frogs).
    At 2x, the picture is shown at its real size in the Images tab.

    Args:
        weights: float [3072, classes], rows in the channel-major order of
            the CIFAR-10 files.
        classes: the class names, written under each picture.
    """
    return tile_pictures(data_helpers.to_nhwc(weights.T), labels=classes, columns=5,
                         scale=scale)


def layer1_weights_picture(weights, scale=2):
    """The two-layer network's first-layer weights, one 32 x 32 picture a hidden unit.

    Args:
        weights: float [3072, hidden units], rows channel-major.
    """
    columns = min(len(weights.T), 12)
    return tile_pictures(data_helpers.to_nhwc(weights.T), columns=columns, scale=scale)


def conv_filters_picture(filters, scale=8):
    """The CNN's first-layer filters, each 4 x 4 pixels over 3 colours.

    Args:
        filters: float [height, width, 3, filters], as `tf.nn.conv2d` takes them.
    """
    return tile_pictures(np.transpose(filters, (3, 0, 1, 2)), columns=8, scale=scale)


def tile_pictures(images, labels=None, columns=8, scale=1, gap=4):
    """Lays out images (N x H x W x 3, any values) in a grid, each scaled to 0-255.

    Each image is stretched from its own minimum to its own maximum, so its
    pattern shows whatever the size of its weights; `labels` go under them.
    """
    font = ImageFont.load_default(size=14)
    count, height, width, _ = images.shape
    label_height = 18 if labels is not None else 0
    cell_w, cell_h = width * scale + gap, height * scale + gap + label_height
    rows = -(-count // columns)
    picture = Image.new('RGB', (columns * cell_w + gap, rows * cell_h + gap), 'white')
    draw = ImageDraw.Draw(picture)
    low = images.min(axis=(1, 2, 3), keepdims=True)
    span = np.maximum(images.max(axis=(1, 2, 3), keepdims=True) - low, 1e-12)
    pixels = np.rint(255 * (images - low) / span).astype(np.uint8)
    for k in range(count):
        x, y = gap + (k % columns) * cell_w, gap + (k // columns) * cell_h
        picture.paste(Image.fromarray(pixels[k]).resize(
            (width * scale, height * scale), Image.NEAREST), (x, y))
        if labels is not None:
            draw.text((x, y + height * scale + 1), labels[k], fill='black', font=font)
    return picture


# ---------------------------------------------------------------------------
# The Projector: where the network places the test images
# ---------------------------------------------------------------------------

PROJECTOR_FOLDER = 'projector'
PROJECTOR_IMAGES = 1000


def write_projector(run_dir, features, data, predicted, name):
    """Writes the first test images' hidden representation for TensorBoard's Projector.

    Each image becomes a point in the space of the network's hidden layer;
    the Projector draws them in 2-D or 3-D (PCA, t-SNE) with their thumbnails,
    coloured by class, so you see which classes the network keeps apart. The
    files go to `projector/` and `projector_config.pbtxt` in the run folder;
    the run's checkpoints are elsewhere, so no raw weights show there.

    Args:
        run_dir: the run folder.
        features: float [N, units], the hidden layer of the first N test images.
        data: the dict from `data_helpers.load_data`.
        predicted: the predicted class of every test image.
        name: what the points are, as the Projector lists it.
    """
    count = len(features)
    folder = os.path.join(run_dir, PROJECTOR_FOLDER)
    os.makedirs(folder, exist_ok=True)
    np.savetxt(os.path.join(folder, 'features.tsv'), features, fmt='%.4g', delimiter='\t')
    labels, classes = data['labels_test'][:count], data['classes']
    with open(os.path.join(folder, 'metadata.tsv'), 'w') as f:
        f.write('class\tpredicted\tright\n')
        for label, guess in zip(labels, predicted[:count], strict=True):
            f.write(f'{classes[label]}\t{classes[guess]}\t{"yes" if label == guess else "no"}\n')
    sprite = tile_thumbnails(to_uint8_images(data['images_test'][:count], data['mean_image']))
    sprite.save(os.path.join(folder, 'sprite.png'))

    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = name
    embedding.tensor_path = f'{PROJECTOR_FOLDER}/features.tsv'
    embedding.metadata_path = f'{PROJECTOR_FOLDER}/metadata.tsv'
    embedding.sprite.image_path = f'{PROJECTOR_FOLDER}/sprite.png'
    embedding.sprite.single_image_dim.extend([data_helpers.IMAGE_SIZE, data_helpers.IMAGE_SIZE])
    projector.visualize_embeddings(run_dir, config)


def tile_thumbnails(pixels):
    """The Projector's sprite: N x 32 x 32 x 3 thumbnails in a square grid, row by row."""
    count, size = len(pixels), data_helpers.IMAGE_SIZE
    side = int(np.ceil(np.sqrt(count)))
    sprite = Image.new('RGB', (side * size, side * size), 'white')
    for k in range(count):
        sprite.paste(Image.fromarray(pixels[k]), ((k % side) * size, (k // side) * size))
    return sprite

