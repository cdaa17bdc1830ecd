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
# # The TF2 twins: the same models, as TensorFlow 2 is written today
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/tf2_twins.ipynb)
#
# Parts 1 to 3 teach TensorFlow 1: first a graph of placeholders and operations, then a
# `Session` that runs it. The scripts in `tf2/` are their twins: the same models, flags,
# data and batches, written as TensorFlow's guides write TensorFlow 2 with its own
# low-level tools. Each section below puts a piece of a TF1 script beside the twin's code
# that replaces it, with the rows of the migration map
# ([docs/tf1_to_tf2.md](../docs/tf1_to_tf2.md)) that say what changed, then runs the twin
# itself, exactly as `python tf2/softmax.py` runs in a terminal.
#
# What TensorFlow 2 does instead: **eager execution** (every operation runs when it is
# called and returns its value), **`tf.function`** (a Python function compiled into a
# graph, where TF1 ran its graph with `sess.run`), **`tf.GradientTape`** (the gradients of
# what it recorded, where TF1's optimizer added them to the graph), **`tf.data`** (the
# batches, made while a step trains) and the **`training`** argument (dropout on or off,
# where TF1 fed a placeholder).
#
# This notebook runs in a kernel of its own: a TF1 script switches eager execution off for
# the whole kernel, so the TF1 scripts are only shown here, read from their files, never
# imported. (After running a TF1 notebook, restart the kernel: Kernel > Restart.)

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
# The twins take the flags of their TF1 scripts, with the same defaults: one dictionary of
# flags for each twin (`python tf2/run_fc_model.py --help` lists them all). With the same
# `SEED` a twin draws the same batches (and dropout masks) as its TF1 script.
# `DATA_DIR = None` reads `cifar-10-batches-py/` beside the scripts, downloaded on first
# use (170 MB). The CNN's 51 epochs take a few minutes on Colab's GPU; `epochs=5` gives a
# first look.
#
# In Colab, the machine and what it wrote are gone when the session ends. To keep your
# runs, mount your Google Drive and put `TRAIN_DIR` there: run
# `from google.colab import drive; drive.mount('/content/drive')`, then set
# `TRAIN_DIR = '/content/drive/MyDrive/tf_logs'`.

# %% tags=["parameters"]
DATA_DIR = None
TRAIN_DIR = 'tf_logs'  # each run gets a folder of its own in here, beside the TF1 runs
SEED = 0
SOFTMAX_FLAGS = dict(batch_size=100, learning_rate=0.005, max_steps=1000)
FC_FLAGS = dict(learning_rate=0.001, max_steps=2000, hidden1=120, batch_size=400,
                reg_constant=0.1)
CNN_FLAGS = dict(learning_rate=0.001, epochs=51, batch_size=128, dropout_rate=0.3)

# %% [markdown]
# ## The scripts in `tf2/`
#
# What the folder holds now, read from the files. The twins of parts 1 to 3 each have a
# section below. Part 4's, `run_deep_cnn_model.py`, teaches batch norm the TF2 way (its
# running statistics updated inside the call, no `UPDATE_OPS` to remember); it and any
# other script listed here run the same way from a cell: `import tf2.NAME`, then
# `notebook_runs.run_script(tf2.NAME, flag=value, ...)`.

# %%
notebook_views.show_scripts('tf2')

# %% [markdown]
# ## The data
#
# The CIFAR-10 images of parts 1 to 3, loaded by the same `data_helpers.py`: each image a
# row of 3,072 numbers, the mean training image subtracted. The twins use it as it is;
# only the batches come another way.

# %%
import data_helpers

notebook_views.show_training_images(DATA_DIR, data_helpers.CLASSES)
data_sets = data_helpers.load_data(DATA_DIR)
data_sets['images_train'].shape, data_sets['images_test'].shape

# %% [markdown]
# ## Part 1's twin: `tf2/softmax.py`
#
# ### Eager execution: no graph to build first
#
# `softmax.py` defines a graph: placeholders to feed, variables that a `Session` will
# initialise, and operations that compute nothing until `sess.run`:

# %%
notebook_views.show_source('softmax.py', 'Prepare the TensorFlow graph',
                           'Run the TensorFlow graph')

# %% [markdown]
# Its twin creates variables that hold their values at once, and Python functions that
# compute with them when called. The training step records the loss under a
# `tf.GradientTape`, takes its gradient and hands it to a Keras optimizer; `@tf.function`
# compiles that step into a graph, which TensorFlow runs as a whole, as `sess.run` ran TF1's.

# %%
import tf2.softmax

notebook_views.show_source(tf2.softmax.main, 'The model: variables', 'Train: call the')
notebook_views.show_migration_map('graph mode', 'placeholder', 'the initializer',
                                  'gradient descent')

# %% [markdown]
# ### `tf.data`: the batches, passed in the call
#
# TF1 draws a batch and feeds it to the placeholders with a `feed_dict`:

# %%
notebook_views.show_source('softmax.py', 'Run the TensorFlow graph', 'After training')

# %% [markdown]
# The twin draws the very same batches from the same seed, but `tf.data` delivers them
# (the next one is made while a step trains), and each is an argument of the call:

# %%
notebook_views.show_source(tf2.softmax.main, 'Train: call the functions', 'After training')
notebook_views.show_migration_map('`feed_dict`', '`sess.run` of the accuracy')

# %% [markdown]
# ### Training and testing
#
# This runs `tf2/softmax.py` itself. With the same flags and seed, `softmax.py` prints the
# same test accuracy: gradient descent from zero weights on the same batches computes the
# same numbers. The loss of every step and the accuracies, read back from the run's event
# files, and what each class learned, as in part 1:

# %%
softmax_run = notebook_runs.run_script(tf2.softmax, data_dir=DATA_DIR, train_dir=TRAIN_DIR,
                                       seed=SEED, **SOFTMAX_FLAGS)
notebook_views.plot_curves(softmax_run.run_dir)
notebook_views.show_pictures(softmax_run.run_dir, 'class_templates')

# %% [markdown]
# ## Part 2's twin: `tf2/run_fc_model.py`
#
# ### The model is a `tf.Module`
#
# `two_layer_fc.py` builds the network into the graph: `tf.get_variable` makes the
# variables inside `variable_scope`s and puts the regularisation terms into a collection.

# %%
notebook_views.show_source('two_layer_fc.py', 'def inference', 'def loss')

# %% [markdown]
# The twin is a Python object: its variables are made once, in `__init__`, under the TF1
# names (so a TF1 checkpoint fills them by name); calling it on images is `inference()`;
# it adds up its own regularisation (TF2 has no collections).

# %%
import tf2.run_fc_model

notebook_views.show_source(tf2.run_fc_model.TwoLayerFC)
notebook_views.show_migration_map('`variable_scope`', '`get_variable`', 'initializers',
                                  'the regularization collection', "the model's four functions")

# %% [markdown]
# Eager execution in action: a new model (a small one, of 4 hidden units) has its
# variables at once, and a call on three test images returns their scores as numbers, not
# a tensor waiting for `sess.run`.

# %%
fc_model = tf2.run_fc_model.TwoLayerFC(data_helpers.IMAGE_PIXELS, 4, data_helpers.NUM_CLASSES,
                                       seed=SEED)
for variable in fc_model.trainable_variables:
    print(f'{variable.name:20} {variable.shape}')
fc_model(data_sets['images_test'][:3])

# %% [markdown]
# ### `tf.function` and `GradientTape`: the training step
#
# TF1 adds the optimizer's update to the graph (`minimize`), and each `sess.run` of it is a
# training step:

# %%
notebook_views.show_source('two_layer_fc.py', 'def training', 'def evaluation')

# %% [markdown]
# The twin writes the step as a Python function: the tape records the forward pass (with
# `training=True`), its gradient goes to the optimizer, which counts the steps in
# `optimizer.iterations` (TF1: `global_step`). `@tf.function` traces the function once into
# a graph, and each call runs that graph.

# %%
notebook_views.show_source(tf2.run_fc_model.run_training, 'Gradient descent (TF1',
                           'Checkpoints of the model')
notebook_views.show_migration_map('`Session`', '`sess.run` of the train op',
                                  "the optimizer's `minimize`", '`global_step`')

# %% [markdown]
# The model's `predictions()` is a `tf.function` too. Traced on a batch, it is a graph
# again, of the operations TF1 would have built, a placeholder for the images included:

# %%
traced = fc_model.predictions.get_concrete_function(data_sets['images_test'][:3])
print(sorted({operation.type for operation in traced.graph.get_operations()}))
fc_model.predictions(data_sets['images_test'][:3])

# %% [markdown]
# ### `tf.data` around the TF1 runner's own batches
#
# `run_fc_model.py` gathers the next batch in a thread of its own and feeds it:

# %%
notebook_views.show_source('run_fc_model.py', 'Generate input data batches',
                           "Periodically print out the model's")

# %% [markdown]
# The twin wraps the same generator, `data_helpers.gen_batch`, in a `tf.data.Dataset`,
# so the batches are those of the TF1 runner for the same seed:

# %%
notebook_views.show_source(tf2.run_fc_model.run_training, 'The input batches from',
                           'Summary writers')
notebook_views.show_migration_map('feeding batches')

# %% [markdown]
# ### Training and testing
#
# This runs `tf2/run_fc_model.py` itself. Its initial weights are drawn from the same
# distributions as TF1's, but not the same numbers (`--init_from_tf1`, below, starts from a
# TF1 run's), so its test accuracy differs a little from `run_fc_model.py`'s. To stop it,
# interrupt the kernel: the error at the end says which call continues the run. Then its
# curves, and the first layer's weights, a picture for each hidden unit (as in part 2,
# little to see: training moves them only a little from their random start).

# %%
fc_run = notebook_runs.run_script(tf2.run_fc_model, data_dir=DATA_DIR, train_dir=TRAIN_DIR,
                                  seed=SEED, **FC_FLAGS)
notebook_views.plot_curves(fc_run.run_dir)
notebook_views.show_pictures(fc_run.run_dir, 'layer1_weights')

# %% [markdown]
# ## Part 3's twin: `tf2/run_cnn_model.py`
#
# ### The `training` argument: dropout on, or off
#
# In TF1, dropout is an operation of the graph whose rate is a placeholder: 0 unless the
# training step feeds `--dropout_rate`.

# %%
notebook_views.show_source('cnn_model.py', 'def conv_stage', 'def loss')

# %% [markdown]
# The twin's model takes `training`, TF2's convention (Keras passes it to every layer):
# with `training=True`, the training step's call, each stage drops activations, its masks
# drawn from the step's seeds as TF1's are; every other call leaves dropout out.

# %%
import tf2.run_cnn_model

notebook_views.show_source(tf2.run_cnn_model.CNN.__call__)
notebook_views.show_source(tf2.run_cnn_model.CNN.conv_stage)
notebook_views.show_source(tf2.run_cnn_model.run_training, 'One training step with',
                           'Checkpoints of the network')
notebook_views.show_migration_map("the CNN's dropout placeholder", 'the dropout seeds', 'Adam')

# %% [markdown]
# A new network, with the runner's dropout rate, 0.3, on two test images (as 32 x 32 x 3
# images now): without `training`, the same scores at every call; with `training=True`
# and the seeds of step 0, dropout changes them.

# %%
import numpy as np

cnn_model = tf2.run_cnn_model.CNN(data_helpers.NUM_CLASSES, dropout_rate=0.3, seed=SEED)
two_images = data_helpers.reshape_data({'images_test': data_sets['images_test'][:2]})[
    'images_test']
step_0_seeds = np.array([[SEED, 0], [SEED, 1]])  # the two stages' dropout seeds at step 0
for call in ('evaluation', 'evaluation again', 'training=True'):
    print(f'{call}:\n', cnn_model(two_images, training=call == 'training=True',
                                  dropout_seeds=step_0_seeds).numpy().round(2))

# %% [markdown]
# ### Training and testing
#
# This runs `tf2/run_cnn_model.py` itself, a line per epoch. Keras's `Adam` rounds a
# little otherwise than TF1's (see the map), so even from the same initial weights the
# losses drift apart slowly. Then its curves, the 64 filters of the first convolution and
# the confusion matrix on the test set (rows: the true class, columns: the guess).

# %%
cnn_run = notebook_runs.run_script(tf2.run_cnn_model, data_dir=DATA_DIR, train_dir=TRAIN_DIR,
                                   seed=SEED, **CNN_FLAGS)
notebook_views.plot_curves(cnn_run.run_dir)
notebook_views.show_pictures(cnn_run.run_dir, 'conv1_filters', 'confusion_matrix')

# %% [markdown]
# ## TensorBoard
#
# The twins write under TF1's tags (`Loss/loss`, `Accuracy/train_accuracy`), into run
# folders named `..._tf2_fc_...` beside the TF1 runs, so TensorBoard draws a TF1 run and
# its twin in one chart. (In a terminal: `tensorboard --logdir=tf_logs`.)

# %% tags=["skip-execution"]
# %load_ext tensorboard
# %tensorboard --logdir {TRAIN_DIR}

# %% [markdown]
# ## From a TF1 run to its twin
#
# A twin can start from the very weights of a TF1 run, or test a TF1 run's checkpoint.
# The TF1 run comes from a terminal, or from the notebook of its part (in another kernel):
#
# ```bash
# python run_fc_model.py --seed 0 --train_dir tf_logs
# python tf2/run_fc_model.py --init_from_tf1 tf_logs/YYYYmmdd-HHMMSS_fc_seed=0
# python tf2/run_fc_model.py --restore_tf1 tf_logs/YYYYmmdd-HHMMSS_fc_seed=0
# ```
#
# With `--init_from_tf1` the twin starts from the TF1 run's step-0 checkpoint and takes its
# seed, and then computes what the TF1 run computed: for gradient descent the same loss at
# every step and the same test accuracy. `--restore_tf1` reads the TF1 checkpoint into the
# twin's model by name and prints the test accuracy `restore_model.py` prints. Here, the
# same calls: `notebook_runs.run_script(tf2.run_fc_model, init_from_tf1=RUN_FOLDER)`.
