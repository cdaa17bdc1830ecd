"""Pictures of what a model learned and how it guesses, for TensorBoard's Images tab.

Drawn to be read at the size the Images tab shows them (about 350 pixels
wide): the confusion matrix, a grid of test images with their guesses, and a
model's first-layer weights (softmax's class templates, the two-layer
network's hidden units, the CNN's filters).
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tutorial_support.cifar10_files import IMAGE_SIZE, to_nhwc


def confusion_matrix_picture(matrix, accuracies, classes, title_lines=(), cell=29):
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


def predictions_picture(images, labels, probabilities, classes, mean_image,
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
    side = IMAGE_SIZE * scale
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
        images = to_nhwc(images)
    mean = to_nhwc(mean_image.reshape(1, -1))
    return np.clip(np.rint(images + mean), 0, 255).astype(np.uint8)


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
    return tile_pictures(to_nhwc(weights.T), labels=classes, columns=5, scale=scale)


def layer1_weights_picture(weights, scale=2):
    """The two-layer network's first-layer weights, one 32 x 32 picture a hidden unit.

    Args:
        weights: float [3072, hidden units], rows channel-major.
    """
    columns = min(len(weights.T), 12)
    return tile_pictures(to_nhwc(weights.T), columns=columns, scale=scale)


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
