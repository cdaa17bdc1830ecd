"""What a notebook shows inline: lesson source, training images, curves, a run's pictures.

The notebooks in `notebooks/` hold no lesson code: they show its real source
from the files, and draw what a run wrote for TensorBoard, read back from its
event files. No lesson file imports this module, nor it one. (Running the
scripts from a notebook is `notebook_runs`.)
"""

import ast
import glob
import inspect
import itertools
import os
import re
import textwrap

import numpy as np

from tutorial_support import cifar10_download, cifar10_files, notebook_runs, photos

COST_TAGS = ('cost', 'loss')  # the chart of costs: the CNN's epoch cost, or else the loss
ACCURACY_FOLDERS = ('train', 'validation')  # the accuracy on each set, in a sub-folder
BANNER = re.compile(r'\s*# -{10,}\s*')  # the line above and below a script's section title
MIGRATION_MAP = os.path.join('docs', 'tf1_to_tf2.md')  # each TF1 line beside its TF2 line


def show_source(code, start=None, end=None):
    """Shows the source of a lesson module or function, from its file.

    `code` is the module or function, or a lesson file's path from the project
    folder ('softmax.py'), read as text: a TF1 script shown in a TF2 kernel is
    never imported. From the first line holding `start` (and a `# ----` banner
    above it) to the line before the next holding `end`; ValueError if either
    is not there.
    """
    from IPython.display import Code, Markdown, display

    if isinstance(code, str):
        path = code
        with open(os.path.join(notebook_runs.project_dir(), path), encoding='utf-8') as f:
            lines, first_number = f.readlines(), 1
    else:
        path = os.path.relpath(inspect.getsourcefile(code), notebook_runs.project_dir())
        lines, first_number = inspect.getsourcelines(code)
        first_number = max(first_number, 1)  # a module's lines count from 1

    def index_of(text, after):
        for k in range(after, len(lines)):
            if text in lines[k]:
                return k
        raise ValueError(f'{text!r} is not in the source of {path}')

    begin = index_of(start, 0) if start else 0
    stop = index_of(end, begin + 1) if end else len(lines)
    if begin and BANNER.fullmatch(lines[begin - 1]):
        begin -= 1
    while stop > begin + 1 and (not lines[stop - 1].strip() or BANNER.fullmatch(lines[stop - 1])):
        stop -= 1
    display(Markdown(f'`{path}`, lines {first_number + begin}-{first_number + stop - 1}:'))
    display(Code(textwrap.dedent(''.join(lines[begin:stop])), language='python'))


def show_migration_map(*constructs):
    """Shows rows of the migration map: each TF1 line beside the TF2 line that replaces it.

    `constructs` name the rows of the table in docs/tf1_to_tf2.md by their
    first cell ('placeholder', '`Session`'), shown in that order under its
    header; ValueError if one is not there.
    """
    from IPython.display import Markdown, display

    with open(os.path.join(notebook_runs.project_dir(), MIGRATION_MAP), encoding='utf-8') as f:
        table = f.read().split('\n## The map', 1)[1].split('\n## ', 1)[0]
    lines = [line for line in table.splitlines() if line.startswith('|')]
    rows = {line.split(' | ', 1)[0].strip('| '): line for line in lines[2:]}
    missing = [construct for construct in constructs if construct not in rows]
    if missing:
        raise ValueError(f'{", ".join(missing)}: no such row in {MIGRATION_MAP}')
    display(Markdown('\n'.join(lines[:2] + [rows[construct] for construct in constructs])))


def show_scripts(folder):
    """Lists the scripts in a folder of the project ('tf2'), each with its docstring's first line.

    They are read as text, never imported: the list is what the folder holds
    now, and a kernel of either kind can show it.
    """
    from IPython.display import Markdown, display

    rows = ['| script | what it is |', '|---|---|']
    for path in sorted(glob.glob(os.path.join(notebook_runs.project_dir(), folder, '*.py'))):
        with open(path, encoding='utf-8') as f:
            docstring = ast.get_docstring(ast.parse(f.read())) or ''
        summary = docstring.split('\n', 1)[0].replace('|', '\\|')
        rows.append(f'| `{folder}/{os.path.basename(path)}` | {summary} |')
    display(Markdown('\n'.join(rows)))


def show_training_images(data_dir, classes, count=20, columns=10):
    """Draws the first training images with their classes (CIFAR-10 is fetched if missing)."""
    folder = cifar10_download.maybe_download_and_extract(data_dir)
    pixels, labels = cifar10_files.read_batch(os.path.join(folder, 'data_batch_1'))
    show_images(cifar10_files.to_nhwc(pixels[:count]), [classes[k] for k in labels[:count]],
                columns)


def show_images(images, titles, columns=10, size=1.3):
    """Draws images (pixel values 0-255, height x width x 3) in rows of `columns`, titled."""
    import matplotlib.pyplot as plt

    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(size * columns, (size + 0.2) * rows),
                                squeeze=False)
    for axis, image, title in itertools.zip_longest(axes.flat, images[:axes.size], titles):
        axis.axis('off')
        if image is not None:
            axis.imshow(np.clip(image, 0, 255).astype(np.uint8))
            axis.set_title(title, fontsize=9)
    figure.tight_layout()
    plt.show()


def computed(function, *args):
    """The values of a lesson function's TensorFlow ops, run in a graph and Session of their own."""
    from tutorial_support.quiet_tensorflow import tf

    with tf.Graph().as_default(), tf.Session() as session:
        return session.run(function(*args))


def summary_values(folder):
    """(step, tag, value) of every summary value in a folder's own event files."""
    from tutorial_support.quiet_tensorflow import tf

    for path in sorted(glob.glob(os.path.join(glob.escape(folder), 'events.out.tfevents.*'))):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                yield event.step, value.tag, value


def scalars(folder):
    """{tag without its scopes: [(step, value)]} of the scalars in a folder's event files.

    A TF1 run writes a scalar as a `simple_value`, a TF2 twin as a tensor of
    one number (its histograms are tensors too, of more than one).
    """
    from tutorial_support.quiet_tensorflow import tf

    found = {}
    for step, tag, value in summary_values(folder):
        if value.WhichOneof('value') == 'simple_value':
            number = value.simple_value
        elif value.WhichOneof('value') == 'tensor':
            array = tf.make_ndarray(value.tensor)
            if array.ndim or not np.issubdtype(array.dtype, np.number):
                continue
            number = float(array)
        else:
            continue
        found.setdefault(tag.rsplit('/', 1)[-1], []).append((step, number))
    return {tag: sorted(points) for tag, points in found.items()}


def plot_curves(run_dir):
    """Draws a run's cost (or loss) and its accuracies over the steps, from its event files."""
    import matplotlib.pyplot as plt

    run_scalars = scalars(run_dir)
    figure, (cost_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 3.6))
    cost_tag = next((tag for tag in COST_TAGS if tag in run_scalars), None)
    if cost_tag:
        steps, values = zip(*run_scalars[cost_tag], strict=True)
        if len(steps) < 100:
            cost_axis.plot(steps, values, marker='.')
        else:  # every step's loss, and its mean over a window of 2% of the steps
            window = len(steps) // 50
            cost_axis.plot(steps, values, alpha=0.3, label='each step')
            cost_axis.plot(steps[window - 1:], np.convolve(values, np.ones(window) / window,
                                                           'valid'), label='running mean')
            cost_axis.legend(loc='upper right')
        cost_axis.set(title=f'{cost_tag} over time', xlabel='training step', ylabel=cost_tag)
    for folder in ACCURACY_FOLDERS:
        points = scalars(os.path.join(run_dir, folder)).get('accuracy')
        if points:
            accuracy_axis.plot(*zip(*points, strict=True), marker='.', label=folder)
    for step, value in run_scalars.get('test_accuracy', []):
        accuracy_axis.plot([step], [value], marker='*', markersize=12, linestyle='',
                           label=f'test: {value:.4f}')
    accuracy_axis.set(title='accuracy', xlabel='training step', ylabel='accuracy', ylim=(0, 1))
    accuracy_axis.legend(loc='best')
    figure.suptitle(os.path.basename(os.path.normpath(run_dir)), fontsize=10)
    figure.tight_layout()
    plt.show()


def show_pictures(run_dir, *tags):
    """Shows pictures a run drew for TensorBoard's Images tab, by tag, enlarged to 720 px."""
    from IPython.display import Image, Markdown, display

    pictures = {tag: value.image for _, tag, value in summary_values(run_dir)
                if value.WhichOneof('value') == 'image'}
    for tag in tags:
        picture = pictures[tag]  # KeyError: the run drew no such picture
        display(Markdown(f'**{tag}**'))
        display(Image(data=picture.encoded_image_string, format='png',
                      width=max(picture.width, min(2 * picture.width, 720))))


def show_photos(paths):
    """Shows photos as the model sees them: their central square at 32 x 32 pixels."""
    show_images(cifar10_files.to_nhwc(np.stack([photos.load_image(path) for path in paths])),
                [os.path.basename(path) for path in paths], len(paths), size=2.2)
