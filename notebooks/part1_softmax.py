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
# # Part 1: a softmax classifier for CIFAR-10
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/part1_softmax.ipynb)
#
# This notebook follows part 1 of the tutorial,
# [How to Build a Simple Image Recognition System with TensorFlow (Part 1)](https://www.wolfib.com/Image-Recognition-Intro-Part-1/),
# with the suite's `softmax.py`. It holds no copy of the lesson: every piece of code you
# read here is shown from the script itself, and the script is what runs, exactly as
# `python softmax.py` runs in a terminal, with the same flags and the same result.
#
# The simplest image classifier there is: every class gets a score that is a weighted sum
# of the 3,072 pixel values of an image plus a bias, and the highest score wins. Gradient
# descent tunes the weights on random batches of training images. Expect a test accuracy
# of about 25-30%: far better than the 10% of guessing, and far from what the networks of
# parts 2 and 3 reach.

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
# The post's parameters, as the script's flags (`python softmax.py --help` lists them).
# Change one here and run the notebook again; the run cell below prints the command that
# gives the same run in a terminal. `DATA_DIR = None` reads `cifar-10-batches-py/` beside
# the scripts, downloaded on first use (170 MB). The seed makes the run repeatable.
#
# In Colab, the machine and what it wrote are gone when the session ends. To keep your
# runs, mount your Google Drive and put `TRAIN_DIR` there: run
# `from google.colab import drive; drive.mount('/content/drive')`, then set
# `TRAIN_DIR = '/content/drive/MyDrive/tf_logs'`.

# %% tags=["parameters"]
DATA_DIR = None
TRAIN_DIR = 'tf_logs'  # the run folder for TensorBoard goes here
SEED = 0
BATCH_SIZE = 100
LEARNING_RATE = 0.005
MAX_STEPS = 1000

# %% [markdown]
# ## The CIFAR-10 data set
#
# 60,000 colour images of 32 x 32 pixels in 10 classes: 50,000 to train on, 10,000 to
# test with. `data_helpers.py` loads them; run as a script it is the post's self-check,
# which prints the shapes of the arrays: each image is a row of 3,072 numbers
# (32 x 32 pixels x 3 colours).

# %%
import data_helpers

notebook_runs.run_script(data_helpers, data_dir=DATA_DIR)
notebook_views.show_training_images(DATA_DIR, data_helpers.CLASSES)

# %% [markdown]
# `load_data()` reads the files and subtracts the mean training image from every image,
# so that the pixel values are centred on 0:

# %%
notebook_views.show_source(data_helpers.load_data)

# %% [markdown]
# ## Prepare the TensorFlow graph
#
# TensorFlow 1 first defines a graph of operations, then runs it. Nothing is computed
# here yet:
#
# - **placeholders** are where the images and their labels are fed in at run time;
# - **variables** are what training tunes: one weight for each pixel value and class,
#   one bias for each class, all starting at 0;
# - the **logits** are the classifier's scores: `images @ weights + biases`;
# - the **loss** measures how far the softmax of the scores is from the true labels
#   (cross-entropy), averaged over the batch;
# - a **training step** moves every variable a little against the loss's gradient;
# - the **accuracy** is how often the highest score is the true class.

# %%
import softmax

notebook_views.show_source(softmax.main, 'Prepare the TensorFlow graph', 'Run the TensorFlow graph')

# %% [markdown]
# ## Run the TensorFlow graph
#
# A `Session` runs the graph: it initialises the variables, then trains for `MAX_STEPS`
# steps, each on `BATCH_SIZE` images drawn at random, printing the accuracy on the batch
# every 100 steps; then it measures the accuracy on the 10,000 test images, which
# training never saw.

# %%
notebook_views.show_source(softmax.main, 'Run the TensorFlow graph', 'end_time = time.time()')

# %% [markdown]
# ## Training and testing
#
# This runs `softmax.py` itself. Its output is what the script prints in a terminal; the
# confusion matrix after the test accuracy shows which classes it tells apart and which
# it mixes up.

# %%
run = notebook_runs.run_script(softmax, data_dir=DATA_DIR, train_dir=TRAIN_DIR, seed=SEED,
                           batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
                           max_steps=MAX_STEPS)

# %% [markdown]
# The post's run on the full data set printed `Test accuracy 0.3066`: "your result will
# probably be around 25-30%". With fewer training images it is lower.

# %% [markdown]
# ## Over time
#
# With a `TRAIN_DIR` the script also writes the run for TensorBoard: the loss of every
# step, the accuracy on the training batches, and the test accuracy. Here they are, read
# back from the run's event files. The loss is large and jumps from step to step: the
# scores are sums of 3,072 pixel values of up to +-128 each, so one step of gradient
# descent swings them far. The accuracy is what to watch; on the training batches it
# wanders (the post saw it between 0.23 and 0.44).

# %%
notebook_views.plot_curves(run.run_dir)

# %% [markdown]
# ## What each class learned
#
# Each class scores an image by a weighted sum of its 3,072 pixel values; drawn as an
# image, a class's weights show the picture it looks for: with enough training, a blue
# sky for planes and ships, a green-brown ground for frogs and deer. The classifier has
# one template per class, and a photo unlike its class's template is missed.

# %%
notebook_views.show_pictures(run.run_dir, 'class_templates')

# %% [markdown]
# ## TensorBoard
#
# TensorBoard shows every run in `TRAIN_DIR` side by side, the graph too. (In a terminal:
# `tensorboard --logdir=tf_logs`, then open http://localhost:6006.)

# %% tags=["skip-execution"]
# %load_ext tensorboard
# %tensorboard --logdir {TRAIN_DIR}

# %% [markdown]
# ## Next
#
# Part 2 puts a hidden layer between the pixels and the scores, and trains it with
# checkpoints and TensorBoard: `part2_two_layer_fc.ipynb`.
