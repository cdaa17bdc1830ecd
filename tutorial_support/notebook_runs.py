"""Running a lesson script from a notebook: the kernel's setup, run_script, its errors.

The notebooks in `notebooks/` hold no lesson code: they run the scripts
themselves (`run_script`), as `python script.py --flag=value` runs them in a
terminal, and find the run folder each made. No lesson file imports this
module, nor it one. A kernel's traps, handled here: its sys.argv is its own
(`-f kernel.json`); a script ends an error or a stop (the kernel's interrupt
is Ctrl-C) with an exit code, not an exception, so "Run all" would go on; a
TF1 script turns eager mode off for the whole kernel; a TF1 Session takes all
of a GPU's memory; and no terminal draws progress bars. (What a notebook
shows inline, the source and the pictures, is `notebook_views`.)
"""

import collections
import glob
import io
import os
import re
import shlex
import subprocess
import sys
import time

from tutorial_support import entry_point, progress

# The suite's public repository, which Colab fetches; its one place (the tests check
# the setup cells and every Colab link against it). A placeholder until published.
REPOSITORY_URL = 'https://github.com/OWNER/REPO'
COLAB_URL = 'https://colab.research.google.com/github/{}/blob/main/notebooks/{}'
# Colab brings its own TensorFlow, built for its GPUs: never installed over.
KEPT_IN_COLAB = ('tensorflow', 'tensorboard')


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
    return f'{stopped}; to continue it where it stopped: notebook_runs.run_script({call})'


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
