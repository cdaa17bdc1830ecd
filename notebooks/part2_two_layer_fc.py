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
# # Part 2: a two-layer neural network for CIFAR-10
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/part2_two_layer_fc.ipynb)
#
# This notebook follows part 2 of the tutorial,
# [How to Build a Simple Image Recognition System with TensorFlow (Part 2)](https://www.wolfib.com/Image-Recognition-Intro-Part-2/),
# with the suite's `two_layer_fc.py` (the model) and `run_fc_model.py` (the runner). It
# holds no copy of the lesson: the code you read here is shown from the scripts, and the
# scripts are what runs, as `python run_fc_model.py` runs in a terminal, with the same
# flags and the same result.
#
# A hidden layer of 120 units now sits between the pixels and the class scores. Each unit
# computes its own weighted sum of the 3,072 pixel values and passes it through a ReLU
# (negative sums become 0), and the scores are weighted sums of those units. The post's
# run reached a test accuracy of 46%, against 31% for the softmax classifier of part 1.

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
# The post's parameters, as the runner's flags (`python run_fc_model.py --help` lists
# them all). Change one here and run the notebook again; the run cell prints the command
# that gives the same run in a terminal. `DATA_DIR = None` reads `cifar-10-batches-py/`
# beside the scripts, downloaded on first use (170 MB). `PHOTOS` are your own photos to
# classify at the end (in Colab, that cell asks you to upload them).
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
MAX_STEPS = 2000
HIDDEN1 = 120
BATCH_SIZE = 400
REG_CONSTANT = 0.1
PHOTOS = []

# %% [markdown]
# ## The data
#
# The same CIFAR-10 images as in part 1, loaded by `data_helpers.py`: each image a row of
# 3,072 numbers, the mean training image subtracted.

# %%
import data_helpers

notebook_runs.run_script(data_helpers, data_dir=DATA_DIR)
notebook_views.show_training_images(DATA_DIR, data_helpers.CLASSES)

# %% [markdown]
# ## The model: `two_layer_fc.py`
#
# The model is written as the classic TensorFlow tutorials write one, in four functions
# that each add their part to the graph.
#
# ### `inference()`: from the images to the class scores
#
# Layer 1 holds a weight for every pixel value and hidden unit, started small and random
# so that the units begin different from each other, and a bias per unit; its output is
# the ReLU of the weighted sums. Layer 2 maps the hidden units to the 10 scores (the
# logits). The regulariser adds `reg_constant * sum(w**2) / 2` for each weight matrix to
# the loss, which keeps the weights small and the network from learning the training
# images by heart.

# %%
import two_layer_fc

notebook_views.show_source(two_layer_fc.inference)

# %% [markdown]
# ### `loss()`: cross-entropy plus the regularisation terms

# %%
notebook_views.show_source(two_layer_fc.loss)

# %% [markdown]
# ### `training()`: one step of gradient descent, counted in `global_step`

# %%
notebook_views.show_source(two_layer_fc.training)

# %% [markdown]
# ### `evaluation()`: the accuracy

# %%
notebook_views.show_source(two_layer_fc.evaluation)

# %% [markdown]
# ## The runner: `run_fc_model.py`
#
# ### Prepare the TensorFlow graph
#
# `run_training()` first defines the graph from the four functions: placeholders for a
# batch of images and labels, then the logits, the loss, the training step and the
# accuracy. `tf.summary.merge_all()` gathers the summaries the functions defined (the
# loss, the accuracy, a histogram of the logits), and a `Saver` will write checkpoints.
# Nothing is computed yet.

# %%
import run_fc_model

notebook_views.show_source(run_fc_model.run_training, 'Prepare the TensorFlow graph',
                      'Run the TensorFlow graph')

# %% [markdown]
# ### Run the TensorFlow graph
#
# Then a `Session` runs it: the variables are initialised, a `FileWriter` records the
# graph and the summaries for TensorBoard, and the loop trains on one batch a step.
# Every 100 steps it prints the accuracy on the batch and writes the summaries; every
# 1,000 steps it saves a checkpoint. At the end, the accuracy on the test set. (Lines
# that call `training_stops`, `summaries` or `confusion` are the suite's own, not the
# post's: a checkpoint when you stop the run, pictures for TensorBoard.)

# %%
notebook_views.show_source(run_fc_model.run_training, 'Run the TensorFlow graph')

# %% [markdown]
# ## Training and testing
#
# This runs `run_fc_model.py` itself. To stop it, interrupt the kernel (the stop
# button): the step in progress finishes, a checkpoint is saved, and the error at the end
# of the output says which call continues the run where it stopped.

# %%
run = notebook_runs.run_script(run_fc_model, data_dir=DATA_DIR, train_dir=TRAIN_DIR, seed=SEED,
                           learning_rate=LEARNING_RATE, max_steps=MAX_STEPS,
                           hidden1=HIDDEN1, batch_size=BATCH_SIZE,
                           reg_constant=REG_CONSTANT)

# %% [markdown]
# The post's run on the full data set: `Test accuracy 0.4633`. With fewer training images
# the network learns them by heart (a training accuracy of 1) and the test accuracy is
# lower.

# %% [markdown]
# ## What TensorBoard shows
#
# The run folder holds what TensorBoard draws. Read back from its event files: the loss
# every 100 steps, the accuracy on the training batches, and the test accuracy at the end.

# %%
notebook_views.plot_curves(run.run_dir)

# %% [markdown]
# The first layer's weights, one picture for each hidden unit: the 3,072 weights of a unit
# laid out as the 32 x 32 x 3 image they are multiplied with, each stretched from its
# smallest to its largest weight. Unlike the class templates of part 1, a unit is not a
# class. Expect little to see: training moves these weights only a little from the random
# values they started with, and what it adds is spread over all 120 units.

# %%
notebook_views.show_pictures(run.run_dir, 'layer1_weights')

# %% [markdown]
# The confusion matrix (rows: the true class, columns: the guess) and some of the model's
# guesses on test images, first mistakes (in red), then right ones (in green):

# %%
notebook_views.show_pictures(run.run_dir, 'confusion_matrix', 'test_predictions')

# %% [markdown]
# TensorBoard itself shows every run in `TRAIN_DIR` side by side: the graph, the
# histograms of the logits, the hyper-parameters of each run (the HParams tab) and the
# Projector. (In a terminal: `tensorboard --logdir=tf_logs`, then open
# http://localhost:6006.)

# %% tags=["skip-execution"]
# %load_ext tensorboard
# %tensorboard --logdir {TRAIN_DIR}

# %% [markdown]
# ## Restoring the model: `restore_model.py`
#
# The checkpoints hold the trained variables. `restore_model.py` rebuilds the same graph,
# fills its variables from the newest checkpoint of the run folder with `Saver.restore`,
# and tests it again: the same test accuracy as at the end of training.

# %%
import restore_model

notebook_views.show_source(restore_model.main)

# %%
restored = notebook_runs.run_script(restore_model, train_dir=run.run_dir, model='fc',
                                hidden1=HIDDEN1, data_dir=DATA_DIR)
print(f'Restored: {restored.test_accuracy:g}; at the end of training: {run.test_accuracy:g}')

# %% [markdown]
# ## Your own photos
#
# The restored model can classify your own photos too (`restore_model.py --image`): each
# is cut to its central square and scaled down to 32 x 32 pixels, like CIFAR-10's images.
# In Colab, this cell asks you to upload them; elsewhere, set `PHOTOS` above to their
# paths. Expect mistakes: the network is right on less than half of the test images.

# %%
if notebook_runs.in_colab():  # a button to upload photos from your computer
    from google.colab import files

    PHOTOS = sorted(files.upload())  # saved beside the scripts, under their own names
if PHOTOS:
    notebook_runs.run_script(restore_model, train_dir=run.run_dir, model='fc', hidden1=HIDDEN1,
                         image=PHOTOS)
    notebook_views.show_photos(PHOTOS)
else:
    print('No photos: set PHOTOS above to the paths of your own PNG or JPEG files.')

# %% [markdown]
# ## Next
#
# Part 3 replaces the fully connected layer by convolutions, which look at small patches
# of the image wherever they are: `part3_cnn.ipynb`.
