"""The files of TensorBoard's Projector: where a network places the test images.

Each of the first 1,000 test images becomes a point in the space of the
network's hidden layer; the Projector draws them in 2-D or 3-D (PCA, t-SNE,
UMAP) with their thumbnails, coloured by class, so you see which classes the
network keeps apart.
"""

import os

import numpy as np
from PIL import Image
from tensorboard.plugins import projector as tensorboard_projector

from tutorial_support import errors, pictures
from tutorial_support.cifar10_files import IMAGE_SIZE

PROJECTOR_FOLDER = 'projector'
PROJECTOR_IMAGES = 1000


def write_projector(run_dir, features, data, predicted, name):
    """Writes the first test images' hidden representation for TensorBoard's Projector.

    The files go to `projector/` and `projector_config.pbtxt` in the run
    folder; the run's checkpoints are elsewhere, so no raw weights show there.

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
    features_path = os.path.join(folder, 'features.tsv')
    with errors.writing(features_path):  # a full disk: the message names the file
        np.savetxt(features_path, features, fmt='%.4g', delimiter='\t')
    labels, classes = data['labels_test'][:count], data['classes']
    metadata_path = os.path.join(folder, 'metadata.tsv')
    with errors.writing(metadata_path), open(metadata_path, 'w') as f:
        f.write('class\tpredicted\tright\n')
        for label, guess in zip(labels, predicted[:count], strict=True):
            f.write(f'{classes[label]}\t{classes[guess]}\t{"yes" if label == guess else "no"}\n')
    sprite = tile_thumbnails(pictures.to_uint8_images(data['images_test'][:count],
                                                      data['mean_image']))
    sprite_path = os.path.join(folder, 'sprite.png')
    with errors.writing(sprite_path):
        sprite.save(sprite_path)

    config = tensorboard_projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = name
    embedding.tensor_path = f'{PROJECTOR_FOLDER}/features.tsv'
    embedding.metadata_path = f'{PROJECTOR_FOLDER}/metadata.tsv'
    embedding.sprite.image_path = f'{PROJECTOR_FOLDER}/sprite.png'
    embedding.sprite.single_image_dim.extend([IMAGE_SIZE, IMAGE_SIZE])
    with errors.writing(os.path.join(run_dir, 'projector_config.pbtxt')):
        tensorboard_projector.visualize_embeddings(run_dir, config)


def tile_thumbnails(pixels):
    """The Projector's sprite: N x 32 x 32 x 3 thumbnails in a square grid, row by row."""
    count, size = len(pixels), IMAGE_SIZE
    side = int(np.ceil(np.sqrt(count)))
    sprite = Image.new('RGB', (side * size, side * size), 'white')
    for k in range(count):
        sprite.paste(Image.fromarray(pixels[k]), ((k % side) * size, (k // side) * size))
    return sprite
