"""The suite's CIFAR-10 models in plain Keras 3: the benchmark's yardstick.

A reader who did not want TF 1.x graph code would write these models with
``keras.Sequential``, ``compile`` and ``fit``, so this is what the suite's
scripts are timed against. Architecture, initialisers, optimiser, learning
rate, batch size and number of optimiser steps match the suite's scripts; every
other option is Keras's default.

Usage:
    python benchmarks/keras_equivalents.py {softmax,fc,cnn,deep_cnn} --data_dir DIR

When the environment variable TUTORIAL_TIMING_JSON names a file, a JSON object
with ``load_seconds``, ``train_seconds``, ``train_steps`` and ``total_seconds``
is written there at the end (the timing protocol shared with the suite).
"""

# The clock starts before any import, as close to process start as possible,
# because importing TensorFlow is a real part of a script's total time.
import time

_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

# Keras 3 can run on several backends; the comparison is with TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
# Use the suite's own loader, so both sides get exactly the same arrays.
sys.path.insert(0, str(REPO_ROOT))
import data_helpers  # noqa: E402
import deep_cnn_input  # noqa: E402
import deep_cnn_model  # noqa: E402

IMAGE_PIXELS = 32 * 32 * 3
CLASSES = 10

# Training set-up of each suite script: batch size and either the number of
# optimiser steps (softmax.py, run_fc_model.py) or of epochs (the CNN).
SETTINGS = {
    "softmax": {"batch_size": 100, "steps": 1000},
    "fc": {"batch_size": 400, "steps": 2000},
    "cnn": {"batch_size": 128, "epochs": 1},
    "deep_cnn": {"batch_size": 1024, "epochs": 1},
}


def build_softmax():
    """Linear classifier of softmax.py: zero-initialised logits = x W + b."""
    model = keras.Sequential([
        keras.Input(shape=(IMAGE_PIXELS,)),
        keras.layers.Dense(CLASSES, kernel_initializer="zeros",
                           bias_initializer="zeros"),
    ])
    return model, keras.optimizers.SGD(learning_rate=0.005)


def build_fc(hidden_units=120, reg_constant=0.1):
    """Two-layer network of two_layer_fc.py / run_fc_model.py (defaults).

    The suite's regularisation term is ``reg_constant * sum(w**2) / 2`` and
    Keras's L2(l2) is ``l2 * sum(w**2)``, hence ``l2 = reg_constant / 2``.
    """
    regularizer = keras.regularizers.L2(reg_constant / 2)
    model = keras.Sequential([
        keras.Input(shape=(IMAGE_PIXELS,)),
        keras.layers.Dense(
            hidden_units, activation="relu",
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=1 / math.sqrt(IMAGE_PIXELS)),
            bias_initializer="zeros", kernel_regularizer=regularizer),
        keras.layers.Dense(
            CLASSES,
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=1 / math.sqrt(hidden_units)),
            bias_initializer="zeros", kernel_regularizer=regularizer),
    ])
    return model, keras.optimizers.SGD(learning_rate=0.001)


def build_cnn(dropout_rate=0.3):
    """Convolutional network of part 3 (dropout active in training only)."""
    model = keras.Sequential([
        keras.Input(shape=(32, 32, 3)),
        keras.layers.Conv2D(64, 4, strides=1, padding="same", use_bias=False,
                            kernel_initializer="glorot_uniform"),
        keras.layers.ReLU(),
        keras.layers.MaxPool2D(3, strides=2, padding="same"),
        keras.layers.Dropout(dropout_rate),
        keras.layers.Conv2D(64, 2, strides=1, padding="same", use_bias=False,
                            kernel_initializer="glorot_uniform"),
        keras.layers.ReLU(),
        keras.layers.MaxPool2D(3, strides=2, padding="same"),
        keras.layers.Dropout(dropout_rate),
        keras.layers.Flatten(),  # 8 x 8 x 64 = 4,096 features
        keras.layers.Dense(CLASSES),
    ])
    return model, keras.optimizers.Adam(learning_rate=0.001)


def build_deep_cnn(whitening, epochs=9.9, train_size=50_000, batch_size=1024):
    """airbench94, part 4's network and recipe, as a Keras reader would write it.

    A frozen 2 x 2 whitening convolution (its filters, ``whitening``, computed by
    the suite's ``whitening_filters``, as a reader would compute them with NumPy),
    GELU, three blocks of conv-pool-BN-GELU and conv-BN-GELU (3 x 3 filters, no
    biases; batch norm without scale, momentum 0.6, eps 1e-12), the 3 x 3 max,
    ``Dense(10)`` without bias scaled by 1/9; random flips and 2-pixel shifts as
    Keras's augmentation layers (in training only); Nesterov SGD, momentum 0.85,
    at airbench's rate for a summed loss, with its warm-up and decay over
    ``epochs``. Lookahead is a callback (``LookaheadCallback``). Simplified
    against the suite, as a reader would: one learning rate for all variables
    (not 64 times for batch norm's biases), the weight decay as Keras's L2 on the
    convolutions and the dense layer, the flip drawn anew every epoch.
    """
    def gelu(x):
        return keras.activations.gelu(x, approximate=False)

    def conv(channels, size, **kwargs):
        return keras.layers.Conv2D(channels, size, use_bias=False,
                                   kernel_regularizer=regularizer, **kwargs)

    kilostep_scale = 1024 * (1 + 1 / (1 - 0.85))
    rate = 11.5 / kilostep_scale
    regularizer = keras.regularizers.L2(0.0153 * batch_size / kilostep_scale / rate / 2)
    whiten = keras.layers.Conv2D(24, 2, padding="valid", trainable=False)
    layers = [keras.Input(shape=(32, 32, 3)),
              keras.layers.RandomFlip("horizontal"),
              keras.layers.RandomTranslation(2 / 32, 2 / 32, fill_mode="reflect"),
              whiten, keras.layers.Activation(gelu)]
    for channels in (64, 256, 256):
        layers += [conv(channels, 3, padding="same"), keras.layers.MaxPool2D(2),
                   keras.layers.BatchNormalization(momentum=0.6, epsilon=1e-12, scale=False),
                   keras.layers.Activation(gelu),
                   conv(channels, 3, padding="same"),
                   keras.layers.BatchNormalization(momentum=0.6, epsilon=1e-12, scale=False),
                   keras.layers.Activation(gelu)]
    layers += [keras.layers.GlobalMaxPool2D(),
               keras.layers.Dense(CLASSES, use_bias=False, kernel_regularizer=regularizer),
               keras.layers.Rescaling(1 / 9)]
    model = keras.Sequential(layers)
    whiten.set_weights([whitening, np.zeros(24, np.float32)])
    total_steps = math.ceil(train_size // batch_size * epochs)
    warmup_steps = int(0.23 * total_steps)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        list(range(1, total_steps)),
        [rate * (0.2 + 0.8 * step / warmup_steps if step < warmup_steps else
                 1 - 0.93 * (step - warmup_steps) / (total_steps - warmup_steps))
         for step in range(total_steps)])
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.85, nesterov=True)
    return model, optimizer


class LookaheadCallback(keras.callbacks.Callback):
    """Every 5 steps the weights pulled toward a slow copy, as airbench94 does."""

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = total_steps

    def on_train_begin(self, logs=None):
        self.slow = [np.array(value) for value in self.model.get_weights()]

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % 5 == 0:
            decay = 0.95 ** 5 * (step / self.total_steps) ** 3
            weights = self.model.get_weights()
            self.slow = [slow + (1 - decay) * (weight - slow)
                         for slow, weight in zip(self.slow, weights, strict=True)]
            self.model.set_weights(self.slow)


BUILDERS = {"softmax": build_softmax, "fc": build_fc, "cnn": build_cnn,
            "deep_cnn": build_deep_cnn}  # (deep_cnn's is built in run(), from the data)


def epochs_for(steps, train_size, batch_size):
    """Number of epochs of ``fit`` that make ``steps`` optimiser steps.

    ``fit`` counts in epochs of ceil(train_size / batch_size) steps; on the
    full 50,000 images the suite's step counts are whole epochs (1,000 steps
    of 100 = 2 epochs, 2,000 of 400 = 16), elsewhere the nearest is taken.
    """
    steps_per_epoch = math.ceil(train_size / batch_size)
    return max(1, round(steps / steps_per_epoch))


def run(model_name, data_dir):
    """Load the data, train one model, print its test accuracy.

    Args:
        model_name: One of ``softmax``, ``fc``, ``cnn``.
        data_dir: Folder with the CIFAR-10 batch files.

    Returns:
        A dict with the timing protocol's keys.
    """
    start = time.perf_counter()
    data = data_helpers.load_data(data_dir)
    load_seconds = time.perf_counter() - start
    if model_name in ("cnn", "deep_cnn"):
        data = data_helpers.reshape_data(data)

    settings = SETTINGS[model_name]
    batch_size = settings["batch_size"]
    epochs = settings.get("epochs") or epochs_for(
        settings["steps"], len(data["labels_train"]), batch_size)

    labels_train, labels_test = data["labels_train"], data["labels_test"]
    callbacks = []
    if model_name == "deep_cnn":
        # airbench94's per-colour standardization, and its whitening filters
        for images in ("images_train", "images_test"):
            deep_cnn_input.standardize(data[images], data["mean_image"])
        model, optimizer = build_deep_cnn(
            deep_cnn_model.whitening_filters(data["images_train"][:5000]),
            train_size=len(labels_train), batch_size=batch_size)
        callbacks.append(LookaheadCallback(epochs * (len(labels_train) // batch_size)))
        # Label smoothing takes one-hot labels in Keras; the loss summed, as airbench's
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2,
                                                    reduction="sum")
        labels_train = keras.utils.to_categorical(labels_train, CLASSES)
        labels_test = keras.utils.to_categorical(labels_test, CLASSES)
    else:
        model, optimizer = BUILDERS[model_name]()
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])

    start = time.perf_counter()
    model.fit(data["images_train"], labels_train, batch_size=batch_size, epochs=epochs,
              verbose=0, callbacks=callbacks)
    train_seconds = time.perf_counter() - start

    _, accuracy = model.evaluate(data["images_test"], labels_test, verbose=0)
    print(f"Test accuracy {accuracy:g}")
    total_seconds = time.perf_counter() - _START
    print(f"Total time: {total_seconds:5.2f}s")
    return {
        "load_seconds": load_seconds,
        "train_seconds": train_seconds,
        # The optimiser's own counter: the number of steps actually made.
        "train_steps": int(model.optimizer.iterations.numpy()),
        "total_seconds": total_seconds,
    }


def main():
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(BUILDERS),
                        help="which of the suite's models to train")
    parser.add_argument("--data_dir", required=True,
                        help="folder with the CIFAR-10 batch files")
    args = parser.parse_args()

    timing = run(args.model, args.data_dir)
    timing_path = os.environ.get("TUTORIAL_TIMING_JSON")
    if timing_path:
        with open(timing_path, "w") as f:
            json.dump(timing, f, indent=2)


if __name__ == "__main__":
    main()
