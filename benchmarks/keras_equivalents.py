"""The suite's CIFAR-10 models in plain Keras 3: the benchmark's yardstick.

A reader who did not want TF 1.x graph code would write these models with
``keras.Sequential``, ``compile`` and ``fit``: the Keras way's scripts,
``tf2/keras_softmax.py``, ``tf2/keras_fc.py``, ``tf2/keras_cnn.py`` and
``tf2/keras_deep_cnn.py``. Each model here is built by its script's own
``build_model``, with the script's flags at their defaults (and ``--seed 0``),
so there is one Keras version of each model; this file adds only the timed
``fit``, on the benchmark's settings (batch size, number of optimiser steps),
without the scripts' run folders, TensorBoard logs and checkpoints.

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
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
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

SEED = 0

# Training set-up of each suite script: batch size and either the number of
# optimiser steps (softmax.py, run_fc_model.py) or of epochs (the CNNs).
SETTINGS = {
    "softmax": {"batch_size": 100, "steps": 1000},
    "fc": {"batch_size": 400, "steps": 2000},
    "cnn": {"batch_size": 128, "epochs": 1},
    "deep_cnn": {"batch_size": 1024, "epochs": 1},
}


def keras_way_script(model_name, *args):
    """The Keras way's script of a model (``tf2/keras_NAME.py``), imported, its flags parsed.

    Args:
        model_name: One of SETTINGS.
        args: Flags other than the defaults and ``--seed 0``.

    Returns:
        The script as a module: ``build_model`` and the rest of it.
    """
    path = REPO_ROOT / "tf2" / f"keras_{model_name}.py"
    spec = importlib.util.spec_from_file_location(f"keras_{model_name}", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.FLAGS([str(path), "--seed", str(SEED), *args])
    keras.utils.set_random_seed(SEED)  # as the script does, before it builds its model
    return script


def build(model_name):
    """softmax, fc or cnn: its Keras way's model at the script's defaults, compiled."""
    return keras_way_script(model_name).build_model()


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
        model_name: One of SETTINGS.
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

    with tempfile.TemporaryDirectory() as scratch:
        if model_name == "deep_cnn":
            model, fit_arguments, predict = deep_cnn(data, batch_size, epochs, scratch)
        else:
            model = build(model_name)
            fit_arguments = dict(x=data["images_train"], y=data["labels_train"],
                                 batch_size=batch_size, epochs=epochs)
            predict = model.predict

        start = time.perf_counter()
        model.fit(verbose=0, **fit_arguments)
        train_seconds = time.perf_counter() - start

    logits = predict(data["images_test"], batch_size=1000, verbose=0)
    accuracy = np.mean(np.argmax(logits, 1) == data["labels_test"])
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


def deep_cnn(data, batch_size, epochs, scratch):
    """Part 4 as tf2/keras_deep_cnn.py trains it, `epochs` epochs of `batch_size`.

    The script's model, batches and the callbacks of its recipe (Lookahead, the
    whitening bias frozen after 3 epochs), and its test-time views. Lookahead
    saves its slow weights after every epoch (for --resume): into `scratch`.

    Returns:
        (model, the arguments of its fit, the predict of its test-time views).
    """
    script = keras_way_script("deep_cnn", "--epochs", str(epochs),
                              "--batch_size", str(batch_size))
    # airbench94's per-colour standardization, its whitening filters, its flip
    for images in ("images_train", "images_test"):
        deep_cnn_input.standardize(data[images], data["mean_image"])
    train_set = (data["images_train"], data["labels_train"])
    steps_per_epoch = len(train_set[1]) // batch_size
    total_steps = math.ceil(steps_per_epoch * epochs)
    model = script.build_model(deep_cnn_model.whitening_filters(
        train_set[0][:deep_cnn_model.WHITENING_IMAGES]), total_steps)
    deep_cnn_input.flip_half(train_set[0], SEED)
    callbacks = [script.Lookahead(total_steps, scratch, 0),
                 script.FreezeWhiteningBias()]
    fit_arguments = dict(x=script.minibatches(train_set, steps_per_epoch, total_steps, 0),
                         epochs=math.ceil(epochs), steps_per_epoch=steps_per_epoch, shuffle=False,
                         callbacks=callbacks)
    return model, fit_arguments, script.with_test_views(model).predict


def main():
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(SETTINGS),
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
