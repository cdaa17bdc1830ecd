"""Write a full-size CIFAR-10 data set in the real file format, for benchmarking.

The suite's timings only mean something at the real size (50,000 training and
10,000 test images), but the official archive cannot be downloaded here and the
shared sample holds only about a tenth of it. So this module builds
``cifar-10-batches-py/`` with the real layout -- ``data_batch_1`` ..
``data_batch_5`` and ``test_batch`` of 10,000 images each, plus ``batches.meta``
-- by tiling the sample's real images (or random pixels and labels when the
sample is absent). The files are written byte for byte the way Python 2 wrote
the originals (protocol 2, strings as Python 2 byte strings), so they load with
``pickle.load(f, encoding='latin1')`` or ``encoding='bytes'``, fail with a plain
``pickle.load(f)``, and take as long to load as the real ones.

The folder is reused when it is already complete, so only the first benchmark
run pays for writing it (about 180 MB).

Usage:
    python benchmarks/make_full_dataset.py [--out_dir DIR] [--sample_dir DIR]
"""

import argparse
import os
import pickle
import struct
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_CACHE_DIR = BENCH_DIR / ".data"
# The project keeps the shared sample beside the repo, never inside it.
DEFAULT_SAMPLE_DIR = REPO_ROOT.parent / "shared" / "cifar-10-sample"

BATCHES_FOLDER = "cifar-10-batches-py"
IMAGES_PER_BATCH = 10000
PIXELS = 32 * 32 * 3
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]
# (file name, batch_label) of every data file, in the official order.
BATCHES = [(f"data_batch_{i}", f"training batch {i} of 5") for i in range(1, 6)]
BATCHES.append(("test_batch", "testing batch 1 of 1"))
META_FILE = "batches.meta"


class _Python2Pickler(pickle._Pickler):
    """A protocol-2 pickler that writes what Python 2's pickler wrote.

    Python 3 pickles ``bytes`` at protocol 2 as a call to ``_codecs.encode``
    on a UTF-8 text, which makes the image data about 45 % larger and slower to
    load than in the real files, and it writes ``str`` as unicode. Python 2
    wrote both as plain byte strings (BINSTRING), and numpy's pickle
    functions under their old module name; this pickler does the same. It is
    built on the pure-Python pickler, whose dispatch table can be extended.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj):
        """Write a str (latin-1 encoded) or bytes as a Python 2 byte string."""
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = save_python2_str
    dispatch[bytes] = save_python2_str

    def save_global(self, obj, name=None):
        """Write a reference to a class or function, with Python 2 names."""
        name = name or obj.__qualname__
        module = pickle.whichmodule(obj, name)
        # numpy 2 renamed numpy.core to numpy._core; the old name still loads.
        module = module.replace("numpy._core", "numpy.core", 1)
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)


def _dump_atomic(obj, path):
    """Pickle ``obj`` to ``path`` via a temporary file and a rename.

    A run that is interrupted half-way thus never leaves a truncated file that
    a later run would take for a finished one.
    """
    tmp_path = path.with_name(path.name + ".tmp")
    with open(tmp_path, "wb") as f:
        _Python2Pickler(f, protocol=2).dump(obj)
    os.replace(tmp_path, path)


def _is_complete(batches_dir):
    """Tell whether all data files and the meta file are already written."""
    names = [name for name, _ in BATCHES] + [META_FILE]
    return all((batches_dir / name).is_file() for name in names)


def _sample_available(sample_dir):
    """Tell whether ``sample_dir`` holds every batch file of the sample."""
    return sample_dir.is_dir() and all(
        (sample_dir / name).is_file() for name, _ in BATCHES)


def _tiled_batch(sample_file):
    """Repeat one sample batch's images and labels up to a full batch.

    Args:
        sample_file: Path of a sample batch in the CIFAR-10 pickle format.

    Returns:
        A tuple (data, labels): uint8 array of IMAGES_PER_BATCH x 3072 and a
        list of as many ints.
    """
    with open(sample_file, "rb") as f:
        sample = pickle.load(f, encoding="latin1")
    count = len(sample["labels"])
    index = np.arange(IMAGES_PER_BATCH) % count
    data = np.ascontiguousarray(sample["data"][index], dtype=np.uint8)
    labels = [int(sample["labels"][i]) for i in index]
    return data, labels


def _random_batch(rng):
    """Make a batch of random pixels and random labels."""
    data = rng.integers(0, 256, size=(IMAGES_PER_BATCH, PIXELS), dtype=np.uint8)
    labels = rng.integers(0, len(LABEL_NAMES), size=IMAGES_PER_BATCH)
    return data, [int(label) for label in labels]


def write_full_dataset(out_dir=DEFAULT_CACHE_DIR, sample_dir=None, seed=0):
    """Write (or reuse) a full-size CIFAR-10 data set under ``out_dir``.

    Args:
        out_dir: Folder to write ``cifar-10-batches-py/`` into.
        sample_dir: Folder with the sample batches to tile; defaults to the
            shared sample. Random data is written when it is missing.
        seed: Seed of the random pixels and labels (used only without sample).

    Returns:
        The ``Path`` of the ``cifar-10-batches-py`` folder.
    """
    batches_dir = Path(out_dir) / BATCHES_FOLDER
    if _is_complete(batches_dir):
        return batches_dir
    batches_dir.mkdir(parents=True, exist_ok=True)

    sample_dir = Path(sample_dir) if sample_dir else DEFAULT_SAMPLE_DIR
    use_sample = _sample_available(sample_dir)
    rng = np.random.default_rng(seed)
    for name, batch_label in BATCHES:
        if use_sample:
            data, labels = _tiled_batch(sample_dir / name)
        else:
            data, labels = _random_batch(rng)
        filenames = [f"{name}_{i:05d}.png" for i in range(IMAGES_PER_BATCH)]
        _dump_atomic({"batch_label": batch_label, "labels": labels,
                      "data": data, "filenames": filenames},
                     batches_dir / name)
    # The meta file goes last, so a complete folder implies all batches.
    _dump_atomic({"label_names": LABEL_NAMES,
                  "num_cases_per_batch": IMAGES_PER_BATCH,
                  "num_vis": PIXELS},
                 batches_dir / META_FILE)
    return batches_dir


def main():
    """Command-line entry point: write the data set and print its folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", default=str(DEFAULT_CACHE_DIR),
                        help="folder to write cifar-10-batches-py/ into "
                             "(default: %(default)s)")
    parser.add_argument("--sample_dir", default=None,
                        help="sample batches to tile (default: the shared "
                             "sample; random data when it is missing)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random fill (default: %(default)s)")
    args = parser.parse_args()
    print(write_full_dataset(args.out_dir, args.sample_dir, args.seed))


if __name__ == "__main__":
    main()
