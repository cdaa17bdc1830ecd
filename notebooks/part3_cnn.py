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
# # Part 3: a convolutional network for CIFAR-10
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/part3_cnn.ipynb)
#
# Part 3 of the tutorial is itself a notebook: a small convolutional network, built and
# trained step by step. This one follows its headings with the suite's `cnn_model.py`
# (the model: forward propagation, cost, optimizer) and `run_cnn_model.py` (the
# notebook's `model()`). It holds no copy of the lesson: the code you read here is shown
# from the scripts, and the script is what runs, as `python run_cnn_model.py` runs in a
# terminal, with the same flags and the same result.
#
# A fully connected layer looks at every pixel separately, wherever it is in the image.
# A convolution slides small filters (4 x 4 pixels here) over the whole image, so a pattern
# it learns (an edge, a patch of colour) is found wherever it appears. The published run
# reached a test accuracy of 62%, against 46% for the two-layer network of part 2.

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
# The published notebook's arguments of `model()`, as the runner's flags
# (`python run_cnn_model.py --help` lists them all). The 51 epochs take 12 to 20 minutes
# on a laptop's CPU and a few minutes on Colab's GPU (Runtime > Change runtime type);
# `EPOCHS = 5` gives a first look in a fifth of that. `DATA_DIR = None` reads
# `cifar-10-batches-py/` beside the scripts, downloaded on first use (170 MB). `PHOTOS`
# are your own photos to classify at the end.
#
# In Colab, the machine and what it wrote are gone when the session ends. To keep your
# runs, mount your Google Drive and put `TRAIN_DIR` there: run
# `from google.colab import drive; drive.mount('/content/drive')`, then set
# `TRAIN_DIR = '/content/drive/MyDrive/tf_logs'`.

# %% tags=["parameters"]
DATA_DIR = None
TRAIN_DIR = 'tf_logs'  # each run gets a folder of its own in here
SEED = 0
LEARNING_RATE = 0.001
EPOCHS = 51
BATCH_SIZE = 128
DROPOUT_RATE = 0.3
PHOTOS = []

# %% [markdown]
# ## Load the data
#
# A convolution needs the images as images: `reshape_data()` turns each row of 3,072
# values into 32 x 32 pixels of 3 colours (height, width, channels).

# %%
import data_helpers

notebook_views.show_training_images(DATA_DIR, data_helpers.CLASSES)
data_sets = data_helpers.reshape_data(data_helpers.load_data(DATA_DIR))
data_sets['images_train'].shape, data_sets['images_test'].shape

# %%
notebook_views.show_source(data_helpers.reshape_data)

# %% [markdown]
# ## Create placeholders
#
# Where a minibatch of images and labels is fed in, and the dropout settings: the
# fraction of activations to drop (0 unless training feeds another value) and the seeds
# of the random masks.

# %%
import run_cnn_model

notebook_views.show_source(run_cnn_model.placeholder_inputs)

# %% [markdown]
# ## Forward propagation
#
# Two stages of convolution, ReLU, max-pooling and dropout, then a fully connected layer
# from the 8 x 8 x 64 = 4,096 features to the 10 class scores:
#
# `CONV2D (4x4, 64 filters) -> RELU -> MAXPOOL (3x3, stride 2) -> DROPOUT ->
# CONV2D (2x2, 64) -> RELU -> MAXPOOL (3x3, stride 2) -> DROPOUT -> FLATTEN -> FULLYCONNECTED`

# %%
import cnn_model

notebook_views.show_source(cnn_model.inference)
notebook_views.show_source(cnn_model.conv_stage)

# %% [markdown]
# (In the published notebook the dropout was built in inference mode, so it never
# applied; here it drops activations while training and never when testing.)
#
# ## Compute cost
#
# The mean softmax cross-entropy between the scores and the labels.

# %%
notebook_views.show_source(cnn_model.loss)

# %% [markdown]
# ## Backward propagation: the optimizer
#
# TensorFlow computes the gradients itself; Adam uses them to update every variable.

# %%
notebook_views.show_source(cnn_model.training)

# %% [markdown]
# ## Model
#
# `run_training()` is the published notebook's `model()`: it builds the graph from the
# functions above...

# %%
notebook_views.show_source(run_cnn_model.run_training, 'Create the placeholders',
                      'Start the session')

# %% [markdown]
# ...then runs it: every epoch a fresh shuffle of the training set, cut into minibatches;
# for each minibatch one `sess.run` of the optimizer and the cost; every 10 epochs the
# published line with the cost and the accuracies; at the end the training and test
# accuracy. (Lines that call `training_stops`, `summaries` or `progress` are the suite's
# own: a checkpoint when you stop the run, TensorBoard, the line per epoch.)

# %%
notebook_views.show_source(run_cnn_model.run_training, 'Start the session',
                      'What the model learned, for TensorBoard')

# %% [markdown]
# ## Training and testing
#
# This runs `run_cnn_model.py` itself, one line per epoch. To stop it, interrupt the
# kernel (the stop button): the step in progress finishes, a checkpoint is saved, and the
# error at the end of the output says which call continues the run where it stopped.

# %%
run = notebook_runs.run_script(run_cnn_model, data_dir=DATA_DIR, train_dir=TRAIN_DIR, seed=SEED,
                           learning_rate=LEARNING_RATE, epochs=EPOCHS,
                           batch_size=BATCH_SIZE, dropout_rate=DROPOUT_RATE)

# %% [markdown]
# The published run on the full data set: `Cost after epoch 50: 0.605`,
# `Train Accuracy: 0.804`, `Test Accuracy: 0.6206`. With fewer training images, or fewer
# epochs, the test accuracy is lower.
#
# ## Costs over time
#
# The cost of every epoch (the mean over its minibatches), and the accuracy on the
# training set and the "validation" set every 10 epochs and at the end, read back from
# the run's event files. As published, the validation set is the test set, unless
# `validation_size=N` holds out N training images for it. (The published notebook plots
# the cost alone.)

# %%
notebook_views.plot_curves(run.run_dir)

# %% [markdown]
# ## What the network learned
#
# The 64 filters of the first convolution, each 4 x 4 pixels over the 3 colours, enlarged:
# the patterns the network looks for everywhere in an image (edges, stripes, spots of
# colour).

# %%
notebook_views.show_pictures(run.run_dir, 'conv1_filters')

# %% [markdown]
# The confusion matrix (rows: the true class, columns: the guess) and some of the model's
# guesses on test images, first mistakes (in red), then right ones (in green):

# %%
notebook_views.show_pictures(run.run_dir, 'confusion_matrix', 'test_predictions')

# %% [markdown]
# ## TensorBoard
#
# Every run in `TRAIN_DIR` side by side: the cost, the loss and accuracy of a minibatch
# every 100 steps, the histograms of the logits, the hyper-parameters (HParams) and the
# Projector. (In a terminal: `tensorboard --logdir=tf_logs`, then open
# http://localhost:6006.)

# %% tags=["skip-execution"]
# %load_ext tensorboard
# %tensorboard --logdir {TRAIN_DIR}

# %% [markdown]
# ## Your own photos
#
# `restore_model.py --image` restores the network from the run's last checkpoint and
# gives the three likeliest classes of each photo, cut to its central square and scaled
# down to 32 x 32 pixels like CIFAR-10's images. In Colab, this cell asks you to upload
# them; elsewhere, set `PHOTOS` above to their paths.

# %%
import restore_model

if notebook_runs.in_colab():  # a button to upload photos from your computer
    from google.colab import files

    PHOTOS = sorted(files.upload())  # saved beside the scripts, under their own names
if PHOTOS:
    notebook_runs.run_script(restore_model, train_dir=run.run_dir, model='cnn', image=PHOTOS)
    notebook_views.show_photos(PHOTOS)
else:
    print('No photos: set PHOTOS above to the paths of your own PNG or JPEG files.')
