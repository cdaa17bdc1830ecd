"""What only the notebooks need: their setup, running a script in a kernel, pictures inline.

The notebooks in `notebooks/` hold no lesson code: they show its source, run the
scripts (`run_script`) and draw what a run wrote for TensorBoard. No lesson file
imports this module, nor it one. A kernel's traps, handled here: its sys.argv is
its own (`-f kernel.json`); a script ends an error or a stop (the kernel's
interrupt is Ctrl-C) with an exit code, not an exception, so "Run all" would go
on; a TF1 script turns eager mode off for the whole kernel; a TF1 Session takes
all of a GPU's memory; and no terminal draws progress bars.
"""

import collections
import glob
import inspect
import io
import itertools
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time

import numpy as np

from tutorial_support import cifar10_download, cifar10_files, entry_point, photos, progress

# The suite's public repository, which Colab fetches; its one place (the tests check
# the setup cells and every Colab link against it). A placeholder until published.
REPOSITORY_URL = 'https://github.com/OWNER/REPO'
COLAB_URL = 'https://colab.research.google.com/github/{}/blob/main/notebooks/{}'
# Colab brings its own TensorFlow, built for its GPUs: never installed over.
KEPT_IN_COLAB = ('tensorflow', 'tensorboard')
COST_TAGS = ('cost', 'loss')  # the chart of costs: the CNN's epoch cost, or else the loss
ACCURACY_FOLDERS = ('train', 'validation')  # the accuracy on each set, in a sub-folder
BANNER = re.compile(r'\s*# -{10,}\s*')  # the line above and below a script's section title


class ScriptFailed(Exception):
    """A script ended with an error; its message is printed above."""

    def _render_traceback_(self):  # what IPython shows in place of a traceback
        return [f'{type(self).__name__}: {self}']


class RunStopped(KeyboardInterrupt):
    """A run was stopped (the kernel's interrupt, SIGTERM); says how to continue it."""

    _render_traceback_ = ScriptFailed._render_traceback_


# What a script run from a notebook left: the run folder it made or continued (or
# None), all it printed, and the test accuracy it printed (or None).
ScriptRun = collections.namedtuple('ScriptRun', 'run_dir output test_accuracy')


def in_colab():
    """Whether this kernel runs in Google Colab."""
    return 'google.colab' in sys.modules


def setup():
    """Run by every notebook's first cell, before TensorFlow is imported.

    In Colab it installs `requirements.txt` around Colab's own TensorFlow. A GPU's
    memory is taken as needed, not all at once (TensorFlow's allocator reads
    TF_FORCE_GPU_ALLOW_GROWTH, for a Session too); progress comes as plain lines;
    `%tensorboard` finds the program.
    """
    os.environ.setdefault('TF_FORCE_GPU_ALLOW_GROWTH', 'true')
    progress.PLAIN_LINES = True
    # %tensorboard runs the program found on PATH, which lacks a virtual environment's
    # bin/ unless it was activated: the one beside this Python is used then
    beside = os.path.join(os.path.dirname(sys.executable), 'tensorboard')
    if os.path.isfile(beside):
        os.environ.setdefault('TENSORBOARD_BINARY', beside)
    if in_colab():
        with open('requirements.txt') as f:
            wanted = [line.split('#')[0].strip() for line in f]
        wanted = [line for line in wanted if line and not line.startswith(KEPT_IN_COLAB)]
        subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', *wanted], check=True)


def show_source(code, start=None, end=None):
    """Shows the source of a lesson module or function, from its file.

    From the first line holding `start` (and a `# ----` banner above it) to the
    line before the next holding `end`; ValueError if either is not there.
    """
    from IPython.display import Code, Markdown, display

    lines, first_number = inspect.getsourcelines(code)
    first_number = max(first_number, 1)  # a module's lines count from 1

    def index_of(text, after):
        for k in range(after, len(lines)):
            if text in lines[k]:
                return k
        raise ValueError(f'{text!r} is not in the source of {code.__name__}')

    begin = index_of(start, 0) if start else 0
    stop = index_of(end, begin + 1) if end else len(lines)
    if begin and BANNER.fullmatch(lines[begin - 1]):
        begin -= 1
    while stop > begin + 1 and (not lines[stop - 1].strip() or BANNER.fullmatch(lines[stop - 1])):
        stop -= 1
    path = os.path.relpath(inspect.getsourcefile(code), project_dir())
    display(Markdown(f'`{path}`, lines {first_number + begin}-{first_number + stop - 1}:'))
    display(Code(textwrap.dedent(''.join(lines[begin:stop])), language='python'))


def project_dir():
    """The folder of the lesson scripts, one above this package."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(module, **flags):
    """Runs a script's main() in this kernel, as `python script.py --flag=value ...`.

    Each keyword is a flag (None: left out; True, False: --name, --noname; a
    list: repeated). Prints the command first; returns a ScriptRun. Raises
    ScriptFailed on an error, RunStopped (with the call that continues) on a stop.
    """
    script = os.path.relpath(module.__file__, project_dir())
    argv = [script] + [f'--{item}' for name, value in flags.items()
                       for item in _flag_items(name, value)]
    print('$ python', shlex.join(argv))
    check_one_paradigm(module)
    own_flags = getattr(module, 'FLAGS', None)  # (data_helpers.py makes its own in main)
    train_dir = flags.get('train_dir') or (own_flags['train_dir'].default if own_flags
                                           and 'train_dir' in own_flags else None)
    folders_before, started = set(_run_folders(train_dir)), time.time()
    output, saved_stdout = _Tee(sys.stdout), sys.stdout
    sys.stdout = output
    try:
        exit_code = entry_point.run_main(module.main, argv)
    finally:
        sys.stdout = saved_stdout
    run_dir = _folder_of_run(train_dir, folders_before, started)
    if run_dir:
        print(f'Run folder: {run_dir}')
    if exit_code > 128:
        raise RunStopped(_how_to_continue(module, flags, run_dir, exit_code))
    if exit_code:
        raise ScriptFailed(f'{script} ended with exit code {exit_code}: see its message above.')
    accuracies = re.findall(r'^Test accuracy:? ([0-9.]+)$', output.text.getvalue(),
                            re.IGNORECASE | re.MULTILINE)
    return ScriptRun(run_dir, output.text.getvalue(),
                     float(accuracies[-1]) if accuracies else None)


def _flag_items(name, value):
    """The command-line items of one flag: [] for None, 'name' or 'noname', 'name=value'."""
    if value is None:
        return []
    if isinstance(value, bool):
        return [name if value else f'no{name}']
    return [f'{name}={item}' for item in (value if isinstance(value, (list, tuple)) else [value])]


def _run_folders(train_dir):
    """The folders in train_dir (none when it is not given or not there)."""
    if not train_dir:
        return []
    return [path for path in glob.glob(os.path.join(glob.escape(train_dir), '*'))
            if os.path.isdir(path)]


def _folder_of_run(train_dir, folders_before, started):
    """The run folder a run made, or else the one it wrote in (a resumed run), or None."""
    folders = _run_folders(train_dir)
    found = [folder for folder in folders if folder not in folders_before] or [
        folder for folder in folders
        if any(os.path.getmtime(path) >= started for path in
               glob.glob(os.path.join(glob.escape(folder), '**', '*'), recursive=True))]
    return max(found, key=os.path.getmtime) if found else None


def _how_to_continue(module, flags, run_dir, exit_code):
    """The one line a stopped run ends with: what was kept, and the call that continues it."""
    stopped = f'the run stopped (exit code {exit_code}, see the message above)'
    checkpoints = run_dir and glob.glob(os.path.join(glob.escape(run_dir), '**', '*.index'),
                                        recursive=True)
    if not checkpoints or 'resume' not in getattr(module, 'FLAGS', ()):
        return f'{stopped} before anything that can be continued was saved: run the cell again.'
    call = ', '.join([module.__name__] + [f'{name}={value!r}' for name, value in flags.items()
                                           if name != 'resume'] + ['resume=True'])
    return f'{stopped}; to continue it where it stopped: notebooks.run_script({call})'


class _Tee(io.TextIOBase):
    """A text stream that writes to another one and keeps a copy in `text`."""

    def __init__(self, stream):
        super().__init__()
        self.stream, self.text = stream, io.StringIO()

    def write(self, text):
        self.text.write(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


def check_one_paradigm(module):
    """Refuses to mix TF1 scripts and TF2 twins (tf2/) in one kernel: ScriptFailed.

    Importing a TF1 script turns eager execution off for the whole process; the
    twins need it on.
    """
    from tutorial_support.quiet_tensorflow import tf

    is_twin = os.path.basename(os.path.dirname(os.path.abspath(module.__file__))) == 'tf2'
    if (not tf.executing_eagerly()) if is_twin else any(
            name.startswith('tf2.') for name in sys.modules):
        raise ScriptFailed(
            f'{module.__name__} cannot run in this kernel: a TF1 script imported here turned '
            'eager execution off, which the TF2 twins need on. One kind per kernel: restart the '
            'kernel (Kernel > Restart) and run only this notebook in it.')


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
    """{tag without its scopes: [(step, value)]} of the scalars in a folder's event files."""
    found = {}
    for step, tag, value in summary_values(folder):
        if value.WhichOneof('value') == 'simple_value':
            found.setdefault(tag.rsplit('/', 1)[-1], []).append((step, value.simple_value))
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
