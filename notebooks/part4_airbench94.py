# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # Part 4: airbench94, 94% on CIFAR-10 in ten epochs
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/part4_airbench94.ipynb)
#
# Part 3's network reached 62% on CIFAR-10. Keller Jordan's
# [airbench94](https://github.com/KellerJordan/cifar10-airbench) reaches 94% (its mean over
# 1,000 runs on the full set) in under ten epochs. Part 4 is its recipe in TensorFlow 1
# graph form, every ingredient with airbench's own numbers: `deep_cnn_input.py` prepares
# and varies the images, `deep_cnn_model.py` is the model (`inference`, `loss`, `training`
# and `evaluation` as before, plus the whitening layer and Lookahead) and
# `run_deep_cnn_model.py` trains it. This notebook takes the ingredients in the model
# file's order, computing some of them here to see what they do, then runs the script
# itself, as `python run_deep_cnn_model.py` runs in a terminal, with the same flags and
# the same result. It holds no copy of the lesson: the code you read is shown from the
# scripts.

# %% [markdown]
# ## Setup
#
# Run this cell first. In Colab it fetches the suite and installs what it needs; on your
# own machine it finds the suite one folder above `notebooks/`. Nothing in it is part of
# the lesson.

# %%
import os
import subprocess
import sys

REPOSITORY_URL = 'https://github.com/OWNER/REPO'  # where Colab fetches the suite from
if 'google.colab' in sys.modules and not os.path.isdir('tutorial_support'):
    if not os.path.isdir(os.path.basename(REPOSITORY_URL)):
        subprocess.run(['git', 'clone', '--depth', '1', REPOSITORY_URL], check=True)
    os.chdir(os.path.basename(REPOSITORY_URL))
elif not os.path.isdir('tutorial_support') and os.path.isdir('../tutorial_support'):
    os.chdir('..')  # Jupyter starts in notebooks/; the scripts are one folder up
if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())

from tutorial_support import notebook_runs, notebook_views

notebook_runs.setup()

# %% [markdown]
# ## Settings
#
# airbench94's own settings, which are the runner's defaults (`python
# run_deep_cnn_model.py --help` lists every flag, one for each ingredient): 9.9 epochs of
# 1,024 images a batch over the 50,000 training images, blocks of 64, 256 and 256
# channels. On Colab's GPU runtime (Runtime > Change runtime type) the full recipe is
# expected to take minutes (no GPU run of it has been timed yet); on a CPU, much longer.
# On a small set, such as a sample of a few thousand images, the usual settings are
# `BATCH_SIZE = 128` and `EPOCHS = 10`. `DATA_DIR = None` reads `cifar-10-batches-py/`
# beside the scripts, downloaded on first use (170 MB). `PHOTOS`: your own, to classify.
#
# In Colab, the machine and what it wrote are gone when the session ends. To keep your
# runs, mount your Google Drive and put `TRAIN_DIR` there: run
# `from google.colab import drive; drive.mount('/content/drive')`, then set
# `TRAIN_DIR = '/content/drive/MyDrive/tf_logs'`.

# %% tags=["parameters"]
DATA_DIR = None
TRAIN_DIR = 'tf_logs'  # each run gets a folder of its own in here
SEED = 0
EPOCHS = 9.9
BATCH_SIZE = 1024
LEARNING_RATE = 11.5
BLOCK1_WIDTH = 64
BLOCK2_WIDTH = 256
BLOCK3_WIDTH = 256
PHOTOS = []

# %% [markdown]
# ## The data
#
# The images as part 3 had them (32 x 32 pixels of 3 colours, the mean image subtracted),
# then standardized as airbench does: each colour scaled to mean 0 and standard
# deviation 1.

# %%
import numpy as np

import data_helpers
import deep_cnn_input
import run_deep_cnn_model

notebook_views.show_training_images(DATA_DIR, data_helpers.CLASSES)
data_sets = data_helpers.reshape_data(data_helpers.load_data(DATA_DIR))
images = deep_cnn_input.standardize(data_sets['images_train'], data_sets['mean_image'])
notebook_views.show_source(deep_cnn_input.standardize)
images.shape, images.mean(axis=(0, 1, 2)).round(2), images.std(axis=(0, 1, 2)).round(2)

# %% [markdown]
# Ten epochs are few: every epoch shows each image a little differently, as if the set
# were larger. Before training, `flip_half()` mirrors a random half of the images once;
# then every odd epoch mirrors them all, so each image is seen both ways in any two
# epochs (a fresh coin for each image every epoch would leave some unmirrored for several
# epochs). And every batch is shifted by up to 2 pixels in each direction, the border
# filled by mirroring.

# %%
notebook_views.show_source(deep_cnn_input.flip_half)
notebook_views.show_source(deep_cnn_input.augment)
notebook_views.show_source(run_deep_cnn_model.run_training, 'Data augmentation:', 'Run the session')

# %% [markdown]
# The first training image as `augment()` varies it, eight draws of its shift: as even
# epochs show it (top row) and as odd epochs do, mirrored (bottom row). (For the half of
# the images that `flip_half()` mirrored, it is the other way round.)

# %%
copies = np.repeat(images[:1], 8, axis=0)
views = np.concatenate([deep_cnn_input.augment(copies, SEED, step=epoch, epoch=epoch)
                        for epoch in (0, 1)])
notebook_views.show_images((views * deep_cnn_input.CIFAR_STD + deep_cnn_input.CIFAR_MEAN) * 255,
                      ['even epoch'] * 8 + ['odd epoch'] * 8, columns=8)

# %% [markdown]
# ## The whitening layer
#
# Neighbouring pixels are alike: in a 2 x 2 patch (12 values with the colours) most of
# the variation is one direction, the patch's brightness. A network's first steps then
# learn that direction fast and the others slowly. airbench's first layer is a frozen
# convolution that makes the patches' 12 directions uncorrelated and of equal variance:
# its filters are the eigenvectors of the patches' covariance, each divided by the square
# root of its eigenvalue (its variance). The runner computes them from the first 5,000
# training images, before the flips.

# %%
import deep_cnn_model

notebook_views.show_source(deep_cnn_model.whitening_filters)
notebook_views.show_source(run_deep_cnn_model.run_training, 'The whitening filters, from',
                      'Create the placeholders')

# %% [markdown]
# The same filters, computed here from the same images, and the variance of each
# direction in the patches of the first 1,000 images:

# %%
filters = deep_cnn_model.whitening_filters(images[:deep_cnn_model.WHITENING_IMAGES])
first = images[:1000]  # every 2 x 2 patch of 1,000 images: (row, column, colour) flattened
patches = np.concatenate([first[:, row:row + 31, column:column + 31]
                          for row in (0, 1) for column in (0, 1)], axis=3).reshape(-1, 12)
covariance = patches.T @ patches / len(patches)
variances = np.linalg.eigvalsh(covariance)[::-1]
each = filters.transpose(3, 0, 1, 2)  # 24 filters of 2 x 2 pixels, 3 colours
notebook_views.show_images(128 + 127 * each / np.abs(each).max(axis=(1, 2, 3), keepdims=True),
                      [f'{variance:.3f}' for variance in variances] + ['negated'] * 12,
                      columns=12, size=0.9)

# %% [markdown]
# Top row: the 12 directions, the largest variance first (each drawn to its own largest
# weight: grey is 0). The first is the brightness of the whole patch; next come its
# colour (blue against orange, green against magenta) and how the brightness changes
# from top to bottom, from left to right and across the diagonal; the last, rare in
# photos and so amplified the most, are changes of colour from pixel to pixel. Bottom
# row: the same filters negated, so that the GELU after them loses no sign.
#
# What the layer does to the patches: their covariance before (dominated by the brightness
# shared by all 12 values) and that of the layer's first 12 outputs: the identity, but
# for the last directions, whose variances are so small that `epsilon` (5e-4, added to
# each before its square root) keeps them from being scaled up all the way.

# %%
import matplotlib.pyplot as plt

whitened = patches @ filters.reshape(12, 24)[:, :12]
after = whitened.T @ whitened / len(whitened)
figure, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for axis, matrix, title in zip(axes, [covariance, after],
                               ['2 x 2 patches\n(4 pixels x 3 colours)',
                                "the whitening layer's outputs\n(its first 12 channels)"],
                               strict=True):
    shown = axis.imshow(matrix, cmap='RdBu_r', vmin=-np.abs(matrix).max(),
                        vmax=np.abs(matrix).max())
    axis.set(title=f'covariance of {title}', xticks=[], yticks=[])
    figure.colorbar(shown, ax=axis)
plt.show()
np.diag(after).round(2)

# %% [markdown]
# ## The network
#
# After the whitening layer (32 x 32 -> 31 x 31 pixels, 24 channels), three blocks of two
# 3 x 3 convolutions each, with max-pooling, batch norm and GELU (31 -> 15 -> 7 -> 3
# pixels; 64, 256, 256 channels); then the largest value of each channel, and a linear
# layer whose logits are scaled by 1/9. Every convolution starts as the identity on its
# inputs (Dirac), so the fresh network passes its signal through.

# %%
notebook_views.show_source(deep_cnn_model.inference)
notebook_views.show_source(deep_cnn_model.conv_group)

# %% [markdown]
# Batch norm keeps each layer's inputs at one scale, whatever the layers before it
# learn, so that a large learning rate stays stable; GELU is a smooth ReLU.

# %%
notebook_views.show_source(deep_cnn_model.batch_normalization)
notebook_views.show_source(deep_cnn_model.gelu)

# %% [markdown]
# ## The loss
#
# The cross-entropy, with smoothed labels (0.82 for the right class, 0.02 for each
# other), summed over the batch.

# %%
notebook_views.show_source(deep_cnn_model.loss)

# %% [markdown]
# ## Training in airbench's units
#
# Nesterov momentum SGD, its learning rate and weight decay stated as airbench states
# them, per 1,024 images; batch norm's biases learn 64 times as fast; the whitening
# layer's bias trains for the first 3 epochs only.

# %%
notebook_views.show_source(deep_cnn_model.training)
notebook_views.show_source(deep_cnn_model.learning_rate_schedule)

# %% [markdown]
# The learning rate over the steps of the run below (with the settings above, on the
# training images loaded here), as `learning_rate_schedule()` computes it:

# %%
total_steps = int(np.ceil(len(images) // BATCH_SIZE * EPOCHS))
schedule = notebook_views.computed(deep_cnn_model.learning_rate_schedule, np.arange(total_steps),
                              total_steps)
plt.figure(figsize=(7, 3))
plt.plot(LEARNING_RATE * schedule)
plt.gca().set(title=f'learning rate over {total_steps} steps ({EPOCHS} epochs)',
              xlabel='training step', ylabel='per 1,024 images', ylim=(0, None))
plt.show()

# %% [markdown]
# ## Lookahead
#
# Every 5 steps the weights are set to a slow average of themselves, which follows them
# closely at first and ever more slowly (at the end it keeps 77% of its old value): early
# steps are kept whole, late, noisy ones averaged out. The last weights are the slow ones.

# %%
notebook_views.show_source(deep_cnn_model.lookahead)
notebook_views.show_source(run_deep_cnn_model.run_training, 'Lookahead: every 5 steps',
                      'training_stops.check_step')

# %% [markdown]
# ## Six views at test time
#
# A mirrored or slightly shifted cat is still a cat, and the network was trained on such
# views. At test time each image is seen 6 ways and their logits averaged: as it is and
# mirrored (1/4 each), and both of these shifted by one pixel along the diagonal, one way
# and the other (1/8 each).
# The accuracy after each epoch is of one view, as airbench prints it; the test accuracy
# at the end, of all six (`tta_level=2`).

# %%
notebook_views.show_source(deep_cnn_model.evaluation)

# %% [markdown]
# ## Training and testing
#
# This runs `run_deep_cnn_model.py` itself, one line per epoch. To stop it, interrupt the
# kernel (the stop button): the step in progress finishes, a checkpoint is saved, and the
# error at the end of the output says which call continues the run where it stopped.

# %%
run = notebook_runs.run_script(run_deep_cnn_model, data_dir=DATA_DIR, train_dir=TRAIN_DIR,
                           seed=SEED, epochs=EPOCHS, batch_size=BATCH_SIZE,
                           learning_rate=LEARNING_RATE, block1_width=BLOCK1_WIDTH,
                           block2_width=BLOCK2_WIDTH, block3_width=BLOCK3_WIDTH)

# %% [markdown]
# airbench94's figure is 94.01%, the mean over 1,000 runs on the full data set. With fewer
# training images, or fewer epochs, the test accuracy is lower.
#
# ## Costs over time
#
# The cost of every epoch (the mean loss per image), and the accuracy after every epoch
# on the epoch's training batches (as they were trained on: shifted, mirrored) and on the
# "validation" set, which is the test set unless `validation_size=N` holds out N
# training images; the star is the test accuracy of the six views.

# %%
notebook_views.plot_curves(run.run_dir)

# %% [markdown]
# ## What the run drew for TensorBoard
#
# The whitening filters (frozen, so the ones computed above), the confusion matrix
# (rows: the true class, columns: the guess) and some of the model's guesses on test
# images, first mistakes (in red), then right ones (in green):

# %%
notebook_views.show_pictures(run.run_dir, 'whitening_filters', 'confusion_matrix',
                        'test_predictions')

# %% [markdown]
# ## What the six views are worth
#
# `restore_model.py` rebuilds the network from the run's last checkpoint and tests it
# again; `tta_level` chooses the views: 0 the image alone (the last epoch's validation
# accuracy above, when the validation set is the test set), 1 with its mirror image, 2
# all six (the run's own test accuracy). What the views add depends on the run: after
# only a few epochs, they may add nothing.

# %%
import restore_model

restored = {level: notebook_runs.run_script(restore_model, train_dir=run.run_dir, tta_level=level)
            for level in (0, 1, 2)}
for level, views in enumerate(['the image', 'and its mirror image', 'six views']):
    print(f'tta_level={level} ({views}): test accuracy {restored[level].test_accuracy:.4f}')

# %% [markdown]
# ## TensorBoard
#
# Every run in `TRAIN_DIR` side by side: the cost, the loss and the learning rate every
# 100 steps, the accuracies, the pictures, the hyper-parameters (HParams) and the
# Projector. (In a terminal: `tensorboard --logdir=tf_logs`, then open
# http://localhost:6006.)

# %% tags=["skip-execution"]
# %load_ext tensorboard
# %tensorboard --logdir {TRAIN_DIR}

# %% [markdown]
# ## Your own photos
#
# `restore_model.py --image` gives the three likeliest classes of each photo, cut to its
# central square and scaled down to 32 x 32 pixels like CIFAR-10's images, seen in the
# run's six views. In Colab, this cell asks you to upload them; elsewhere, set `PHOTOS`
# above to their paths.

# %%
if notebook_runs.in_colab():  # a button to upload photos from your computer
    from google.colab import files

    PHOTOS = sorted(files.upload())  # saved beside the scripts, under their own names
if PHOTOS:
    notebook_runs.run_script(restore_model, train_dir=run.run_dir, model='deep_cnn', image=PHOTOS)
    notebook_views.show_photos(PHOTOS)
else:
    print('No photos: set PHOTOS above to the paths of your own PNG or JPEG files.')
