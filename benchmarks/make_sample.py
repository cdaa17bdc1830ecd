"""Makes the 5,170-image sample that the README's own figures were measured on.

    python benchmarks/make_sample.py          # from cifar-10-batches-py/, fetched if missing
    python softmax.py --data_dir cifar-10-sample --seed 0

The sample is real CIFAR-10 in the official file format: the first 1,102 images
of `data_batch_1`, the first 1,017 of `data_batch_2` to `data_batch_5` and the
first 1,017 of `test_batch` (5,170 training and 1,017 test images), with
`batches.meta`. It trains in minutes where the full set takes an hour, and
its accuracies are lower than the full set's: a tenth of the training images.
The files are written as the originals are (Python 2 pickles), so every script
reads them as it reads the full set.
"""

import os
import sys

from absl import flags

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(BENCH_DIR), BENCH_DIR]  # the project's modules, this folder's

import make_full_dataset  # noqa: E402  (beside this file: the Python 2 pickle writer)

from tutorial_support import cifar10_download, cifar10_files, cli, entry_point  # noqa: E402

# How many images of each batch file the sample keeps: the first ones.
SAMPLE_SIZES = {'data_batch_1': 1102, 'data_batch_2': 1017, 'data_batch_3': 1017,
                'data_batch_4': 1017, 'data_batch_5': 1017, 'test_batch': 1017}
DEFAULT_OUT_DIR = os.path.join(os.path.dirname(BENCH_DIR), 'cifar-10-sample')

FLAGS = flags.FlagValues()
flags.DEFINE_string('data_dir', None, 'Folder of the full CIFAR-10 batch files (default: '
                    'cifar-10-batches-py beside the scripts, downloaded if missing).',
                    flag_values=FLAGS)
flags.DEFINE_string('out_dir', DEFAULT_OUT_DIR, 'Folder to write the sample into.',
                    flag_values=FLAGS)


def write_sample(data_dir, out_dir, sizes=None):
    """Writes the first images of each batch file of `data_dir` into `out_dir`.

    Args:
        data_dir: a folder of CIFAR-10 batch files.
        out_dir: the folder for the sample (made if missing).
        sizes: {batch file: images to keep}; SAMPLE_SIZES by default.

    Returns:
        (training images, test images) written.
    """
    sizes = sizes or SAMPLE_SIZES
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for name, batch_label in make_full_dataset.BATCHES:
        pixels, labels = cifar10_files.read_batch(os.path.join(data_dir, name))
        count = min(sizes[name], len(labels))
        make_full_dataset._dump_atomic(
            {'batch_label': batch_label, 'labels': [int(label) for label in labels[:count]],
             'data': pixels[:count], 'filenames': [f'{name}_{i:05d}.png' for i in range(count)]},
            make_full_dataset.Path(out_dir) / name)
        written[name] = count
    # The meta file last, as in make_full_dataset: a folder with it is complete
    make_full_dataset._dump_atomic(
        {'label_names': make_full_dataset.LABEL_NAMES,
         'num_cases_per_batch': make_full_dataset.IMAGES_PER_BATCH,
         'num_vis': make_full_dataset.PIXELS},
        make_full_dataset.Path(out_dir) / make_full_dataset.META_FILE)
    return sum(written.values()) - written['test_batch'], written['test_batch']


def main(argv):
    """Reads the full set (fetching it if it is the default folder), writes the sample."""
    cli.parse_flags(FLAGS, argv, rules={})
    data_dir = cifar10_download.maybe_download_and_extract(FLAGS.data_dir)
    train_images, test_images = write_sample(data_dir, FLAGS.out_dir)
    print(f'{FLAGS.out_dir}: {train_images:,} training and {test_images:,} test images')


if __name__ == '__main__':
    raise SystemExit(entry_point.run_main(main))
