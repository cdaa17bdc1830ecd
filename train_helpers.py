"""What the training scripts share that the blog posts do not teach.

The runners (`run_fc_model.py`, `run_cnn_model.py`) show the lesson itself:
the graph from the model's four functions, `Saver`, `Session`, `FileWriter`,
the training loop and its checkpoints. What is here is called from them by
name:

* flags: parsing with a clear message for typos, printing `Parameters:`, and
  checking values before any data is loaded;
* run folders: one `train_dir/YYYYmmdd-HHMMSS_model_flags/` per run with its
  parameters, summaries and checkpoints, so runs never overwrite each other,
  and a lock so that no two processes train into one;
* checkpoints: finding the one `--resume` continues, and clear messages when
  one cannot be restored, the disk is full, the loss diverges or Ctrl-C stops
  the run;
* `do_eval`: the accuracy over a whole set in batches, so memory stays
  bounded for any set size.
"""

import contextlib
import glob
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time

# TensorFlow logs a page of C++ start-up notes; a learner needs none of them.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from data_helpers import DEFAULT_DATA_DIR, DISK_FULL, UserError  # noqa: E402


def _import_tensorflow_quietly():
    """Imports TensorFlow with its C++ start-up notes kept off the terminal.

    A few notes (oneDNN, CUDA drivers) are written to stderr before any log
    setting applies, so stderr is pointed at /dev/null for the import only;
    a Python error during the import is still shown.
    """
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow.compat.v1 as tf
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
    return tf


tf = _import_tensorflow_quietly()
tf.get_logger().setLevel('ERROR')  # deprecation notes about tf.compat.v1 itself


def _quiet_summary_writer_thread(args, default_hook=threading.excepthook):
    """Keeps a failing summary writer's thread (a full disk) from printing a traceback.

    `FileWriter` hands the thread's error to the script at its next
    `add_summary` or `close`, and `run_main` reports it once, as a message.
    """
    if args.thread is None or args.thread.name != 'EventLoggerThread':
        default_hook(args)


threading.excepthook = _quiet_summary_writer_thread
tf.get_logger().addFilter(
    lambda record: not record.getMessage().startswith('EventFileWriter writer thread error'))

from tensorboard.plugins.hparams import summary_v2 as hparams_plugin  # noqa: E402

PARAMS_FILE = 'params.json'
MEAN_IMAGE_FILE = 'mean_image.npy'
# A run's checkpoints go to a folder of their own inside the run folder, so that
# TensorBoard's Projector, which looks for checkpoints where the summaries are,
# shows the embedding each run writes for it and not the raw weight matrices.
CHECKPOINT_FOLDER = 'checkpoints'
EVAL_BATCH_SIZE = 1000

# When a run is resumed its saved settings come back, except these, which are
# the current command's; and these may be given anew (to train for longer).
NOT_RESTORED_FLAGS = ('train_dir', 'resume')
CHANGEABLE_FLAGS = ('max_steps', 'epochs', 'data_dir')
LOCK_FILE = '.training'
# Flags that say where things are, not what the run is: left out of the run
# folder's name and of the hyper-parameters shown in TensorBoard.
NOT_HYPERPARAMETERS = ('train_dir', 'data_dir', 'resume')
MODEL_NAMES = {'fc': 'the two-layer network', 'cnn': 'the convolutional network'}
# Limits for check_flags(at_most=...): beyond them a value cannot work. A hidden
# layer of more units would not fit in memory; TensorFlow and NumPy take seeds
# below 2**32.
MOST_HIDDEN_UNITS = 100_000
LARGEST_SEED = 2 ** 32 - 1
# The settings of params.json that restore_model.py uses as they are, and what
# each must be (resume_flags checks every setting against its flag).
RECORDED_SETTINGS = {
    'model': lambda value: isinstance(value, str) and value in MODEL_NAMES,
    'data_dir': lambda value: isinstance(value, str),
    'validation_size': lambda value: type(value) is int and value >= 0,
    'train_images': lambda value: type(value) is int and value >= 0,
}


class TrainingInterrupted(UserError):
    """Ctrl-C during training: a checkpoint was saved; exit like a shell does."""

    exit_code = 130


# ---------------------------------------------------------------------------
# Running a script
# ---------------------------------------------------------------------------

def run_main(main, argv=None):
    """Runs `main(argv)` and turns user errors into a message and an exit code.

    Returns:
        The exit code: 0, 1 for a user error, 130 after Ctrl-C.
    """
    try:
        main(sys.argv if argv is None else argv)
    except UserError as error:
        print(f'\nError: {error}', file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print('\nInterrupted: nothing was saved.', file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = None
    except (OSError, RuntimeError, tf.errors.OpError) as error:
        problem = disk_problem(error)
        if problem:
            print(f'\nError: {problem}. Free some disk space (or fix the folder), then run '
                  'again; checkpoints saved before are intact, and a training run that saved '
                  'one continues with --resume.', file=sys.stderr)
        elif isinstance(error, tf.errors.ResourceExhaustedError):
            reason = (error.message.splitlines() or ['no details'])[0]
            print(f'\nError: TensorFlow ran out of memory ({reason}). Use a smaller '
                  '--batch_size (or --hidden1), or close other programs.', file=sys.stderr)
        else:
            raise
        return 1
    return 0


def disk_problem(error):
    """'Cannot write PATH: No space left on device' for a full disk; None otherwise.

    Python reports it as an OSError; TensorFlow's writers as a RuntimeError or
    an OpError whose text holds `PATH; No space left on device`.
    """
    if isinstance(error, OSError) and error.errno in DISK_FULL:
        return f'Cannot write {error.filename or "a file"}: {DISK_FULL[error.errno]}'
    text = getattr(error, 'message', None) or str(error)
    for line in text.splitlines():
        for reason in DISK_FULL.values():
            if reason in line:
                path = line.strip().split('; ')[0] if '; ' in line else 'a file'
                return f'Cannot write {path}: {reason}'
    return None


def define_run_flags(flag_values, default_train_dir='tf_logs'):
    """Defines the flags every runner has: where data and logs go, seed, resume."""
    flags.DEFINE_string('train_dir', default_train_dir,
                        'Folder for the run folders: summaries and checkpoints.',
                        flag_values=flag_values)
    define_data_flags(flag_values)
    flags.DEFINE_integer('validation_size', 0,
                         'Training images held out to validate on while training; '
                         'the test set is then used once, at the end.',
                         flag_values=flag_values)
    flags.DEFINE_boolean('resume', False,
                         'Continue the newest run in train_dir from its last checkpoint.',
                         flag_values=flag_values)


def define_data_flags(flag_values):
    """Defines --data_dir and --seed, which every script has."""
    flags.DEFINE_string('data_dir', None,
                        'Folder with the CIFAR-10 batch files '
                        '(default: cifar-10-batches-py beside the scripts).',
                        flag_values=flag_values)
    flags.DEFINE_integer('seed', None,
                         'Random seed: the same seed gives the same numbers on a CPU.',
                         flag_values=flag_values)


def parse_flags(flag_values, argv, allow_arguments=False):
    """Parses argv into `flag_values`, with a readable message on mistakes.

    Args:
        flag_values: the script's flags.
        argv: the command line, program name first.
        allow_arguments: whether arguments that are not flags are accepted.

    Returns:
        The arguments that are not flags.

    Raises:
        UserError: unknown flag or a value of the wrong type.
    """
    flag_values.unparse_flags()  # so that main() can run twice in one process
    if any(arg in ('-h', '--help', '-help', '--helpfull') for arg in argv[1:]):
        print(flag_values.get_help(include_special_flags=False))
        sys.exit(0)
    known = ', '.join('--' + name for name in sorted(own_flags(flag_values)))
    try:
        arguments = flag_values(argv)[1:]
    except flags.Error as error:
        raise UserError(f'{error}. Known flags: {known}.') from None
    if arguments and not allow_arguments:
        raise UserError(f'Unexpected argument {arguments[0]!r}: every setting is a flag such as '
                        f'--batch_size 100. Known flags: {known}.')
    return arguments


def own_flags(flag_values):
    """The script's own flags as a dict (absl adds a few of its own)."""
    return {name: value for name, value in flag_values.flag_values_dict().items()
            if name not in ('flagfile', 'undefok')}


def print_parameters(flag_values):
    """Prints `Parameters:` and one `name = value` line a flag, sorted."""
    print('Parameters:')
    for name, value in sorted(own_flags(flag_values).items()):
        print(f'{name} = {value}')
    print()


def check_flags(flag_values, positive=(), non_negative=(), rates=(), at_most=None):
    """Checks flag values before any work is done.

    Args:
        flag_values: the parsed flags.
        positive: names that must be > 0.
        non_negative: names that must be >= 0.
        rates: names that must lie in [0, 1).
        at_most: {name: largest value}, for sizes beyond what a computer holds.

    Raises:
        UserError: listing every bad value at once.
    """
    values = own_flags(flag_values)
    problems = []
    for name, value in sorted(values.items()):
        if value is None or isinstance(value, (bool, str)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f'--{name} is {value}; it must be a finite number')
        elif name in positive and value <= 0:
            problems.append(f'--{name} is {value}; it must be greater than 0')
        elif name in positive and isinstance(value, float) and np.float32(value) == 0:
            problems.append(f'--{name} is {value}; that is 0 as the 32-bit float TensorFlow '
                            'computes with, so nothing would change: use at least 1e-38')
        elif name in non_negative and value < 0:
            problems.append(f'--{name} is {value}; it must be 0 or more')
        elif name in rates and not 0 <= value < 1:
            problems.append(f'--{name} is {value}; it must be at least 0 and below 1')
        elif at_most and name in at_most and value > at_most[name]:
            problems.append(f'--{name} is {value}; it can be at most {at_most[name]:,}')
    if problems:
        raise UserError('Bad flag value: {}.'.format('; '.join(problems)))


def check_batch_size(batch_size, num_images):
    """Fails clearly when a batch would not fit in the training set."""
    if batch_size > num_images:
        raise UserError(f'--batch_size {batch_size} is larger than the training set '
                        f'({num_images:,} images). Use a batch size of at most {num_images}.')


def choose_seed(seed):
    """Returns `seed`, or a fresh random one when it is None.

    Runs always have a concrete seed, recorded in the run folder, so that a
    resumed run draws the same batches as the run it continues.
    """
    if seed is None:
        return int.from_bytes(os.urandom(4), 'little') >> 1
    return seed


def write_timing(total_seconds, train_seconds=None, train_steps=None):
    """For `benchmarks/run_benchmark.py`: writes the run's timing, when it asks.

    When the environment variable TUTORIAL_TIMING_JSON names a file, the total
    and training times and the number of training steps go there, as JSON;
    otherwise nothing happens.
    """
    path = os.environ.get('TUTORIAL_TIMING_JSON')
    if path:
        with open(path, 'w') as f:
            json.dump({'total_seconds': total_seconds, 'train_seconds': train_seconds,
                       'train_steps': train_steps}, f)


# ---------------------------------------------------------------------------
# Run folders and checkpoints
# ---------------------------------------------------------------------------

def check_writable(folder):
    """Creates `folder` if needed and makes sure files can be written in it.

    Raises:
        UserError: naming the folder and the reason.
    """
    check_no_pattern_characters(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(f'Cannot write to --train_dir {folder}: {error.strerror or error}. '
                        'Choose a folder you can write to.') from None


def check_no_pattern_characters(train_dir):
    """Fails when --train_dir holds a character TensorFlow reads as a file pattern.

    `Saver.restore` and `tf.train.latest_checkpoint` look checkpoints up by
    pattern, so in `runs[1]` they would never find the checkpoints saved there.

    Raises:
        UserError: naming the folder and the characters.
    """
    found = sorted(set(train_dir) & set('[]*?\\'))
    if found:
        raise UserError(
            f'--train_dir {train_dir} contains {" ".join(found)}: TensorFlow reads checkpoint '
            'paths as file patterns, so checkpoints saved there could not be found again. '
            'Choose a folder whose name has none of [ ] * ? \\.')


def start_run(flag_values, model, flag_rules):
    """Prepares a run before any data is loaded.

    Checks that train_dir can be written, finds the checkpoint that --resume
    continues (adopting that run's settings, which must pass `flag_rules` like
    the flags did) and fixes the seed.

    Args:
        flag_values: the parsed and checked flags.
        model: 'fc' or 'cnn'.
        flag_rules: the keyword arguments the runner gives `check_flags`.

    Returns:
        (run_dir, checkpoint) of the resumed run, or (None, None) for a new run.
    """
    check_writable(flag_values.train_dir)
    run_dir = checkpoint = None
    if flag_values.resume:
        run_dir, checkpoint = find_resume_checkpoint(flag_values, model, flag_rules)
    flag_values.seed = choose_seed(flag_values.seed)
    return run_dir, checkpoint


def prepare_run_dir(flag_values, model, data, run_dir=None):
    """Creates a new run's folder, or checks that a resumed run gets the same data.

    The run's parameters go to `params.json` (again on resume, so that a raised
    --max_steps or --epochs is what the next --resume continues to), and the
    training mean image to `mean_image.npy`, for classifying own images. A new
    folder that cannot be filled (a full disk) is removed again.

    Args:
        flag_values: the parsed flags.
        model: 'fc' or 'cnn'.
        data: the dict from `data_helpers.load_data`.
        run_dir: the resumed run's folder, or None for a new run.

    Returns:
        The run folder.

    Raises:
        UserError: a resumed run would get a training set of another size.
    """
    params = dict(own_flags(flag_values), model=model,
                  train_images=len(data['labels_train']),
                  data_dir=os.path.abspath(flag_values.data_dir or DEFAULT_DATA_DIR))
    params_text = json.dumps(params, indent=2, sort_keys=True)
    if run_dir is not None:
        trained_on = load_run_params(run_dir).get('train_images', params['train_images'])
        if trained_on != params['train_images']:
            raise UserError(
                f'The run in {run_dir} was trained on {trained_on:,} images, but '
                f'{params["data_dir"]} gives {params["train_images"]:,}. Resume it with the '
                'same --data_dir and --validation_size.')
        write_atomically(os.path.join(run_dir, PARAMS_FILE), params_text)
        os.makedirs(os.path.join(run_dir, CHECKPOINT_FOLDER), exist_ok=True)  # older runs
        return run_dir
    run_dir = make_run_dir(flag_values.train_dir, run_name(flag_values, model))
    try:
        np.save(os.path.join(run_dir, MEAN_IMAGE_FILE), data['mean_image'])
        write_atomically(os.path.join(run_dir, PARAMS_FILE), params_text)
        os.makedirs(os.path.join(run_dir, CHECKPOINT_FOLDER))
    except (OSError, UserError):
        shutil.rmtree(run_dir, ignore_errors=True)  # no half-made run folder (a full disk)
        raise
    return run_dir


def write_atomically(path, text):
    """Writes a file whole or not at all: a temporary file beside it, then a rename.

    A crash or a full disk leaves the earlier file as it was, never an empty
    one; and a link in its place is refused rather than written through.

    Raises:
        UserError: the file is a link, or cannot be written.
    """
    if os.path.islink(path):
        raise UserError(f'{path} is a link; the suite writes its own files only, not through '
                        'links. Remove the link, then run again.')
    temporary = f'{path}.{os.getpid()}.tmp'
    try:
        with open(temporary, 'x') as f:
            f.write(text)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise UserError(f'Cannot write {path}: {error.strerror or error}. '
                        'Free some disk space or fix the folder, then run again.') from None


def run_name(flag_values, model):
    """What a run folder's name says after the date and time.

    The model, then each flag given on the command line with a value other
    than its default, sorted: `fc_hidden1=40_learning_rate=0.0003`. Where the
    data and the logs are is left out.
    """
    parts = [model]
    for name, value in sorted(own_flags(flag_values).items()):
        flag = flag_values[name]
        if name in NOT_HYPERPARAMETERS or not flag.present or value == flag.default:
            continue
        parts.append(f'{name}={value:g}' if isinstance(value, float) else f'{name}={value}')
    return '_'.join(parts)


def make_run_dir(train_dir, name=''):
    """Creates a new, unique `train_dir/YYYYmmdd-HHMMSS_name` folder for this run.

    Two runs started in the same second get `...-HHMMSS-2_name` and so on: the
    folder is created atomically, so no two runs ever share one.
    """
    stamp = os.path.join(train_dir, time.strftime('%Y%m%d-%H%M%S'))
    suffix = f'_{name}' if name else ''
    run_dir, number = stamp + suffix, 1
    while True:
        try:
            os.makedirs(run_dir)
            return run_dir
        except FileExistsError:
            number += 1
            run_dir = f'{stamp}-{number}{suffix}'
        except OSError as error:
            raise UserError(f'Cannot create a run folder in {train_dir}: '
                            f'{error.strerror or error}.') from None


def load_run_params(run_dir):
    """Reads the parameters a run was started with ({} when there are none).

    Raises:
        UserError: the file is a link or not a dict of settings, or a setting
            that restore_model.py uses has no valid value.
    """
    path = os.path.join(run_dir, PARAMS_FILE)
    if not os.path.lexists(path):
        return {}
    problem = None
    if os.path.islink(path) or not os.path.isfile(path):
        problem = 'is a link or not a file'
    else:
        try:
            with open(path) as f:
                text = f.read(1 << 20)  # a run's settings take a few hundred bytes
            params = json.loads(text)
        except (OSError, ValueError, RecursionError) as error:  # RecursionError: [[[[...
            problem = f'cannot be read ({type(error).__name__}: {error})'
        else:
            if not isinstance(params, dict):
                problem = 'does not hold the settings of a run'
            else:
                problem = next((f'gives {name} = {params[name]!r}, which is not a valid value'
                                for name, valid in RECORDED_SETTINGS.items()
                                if name in params and not valid(params[name])), None)
    if problem:
        raise UserError(f'{path} {problem}: the run in {run_dir} cannot be continued. Start '
                        'a new run, or move that folder out of the way.')
    return params


def run_dir_of(checkpoint):
    """The run folder a checkpoint belongs to (the parent of its checkpoints folder)."""
    folder = os.path.dirname(checkpoint)
    return os.path.dirname(folder) if os.path.basename(folder) == CHECKPOINT_FOLDER else folder


def latest_checkpoint(train_dir, model=None):
    """Finds the newest checkpoint in `train_dir` or in its run folders.

    A run folder keeps its checkpoints in `checkpoints/`; runs made before it
    did keep them in the run folder itself, and are found there.

    Args:
        train_dir: the folder to look in.
        model: only checkpoints of this model ('fc' or 'cnn'); None for any.

    Returns:
        The checkpoint path (as given to `Saver.restore`), or None.
    """
    check_no_pattern_characters(train_dir)
    if not os.path.isdir(train_dir):
        return None
    run_dirs = [train_dir] + [os.path.join(train_dir, name)
                              for name in sorted(os.listdir(train_dir))]
    folders = [folder for run_dir in run_dirs
               for folder in (run_dir, os.path.join(run_dir, CHECKPOINT_FOLDER))]
    found = []
    for folder in folders:
        if not os.path.isfile(os.path.join(folder, 'checkpoint')):
            continue
        try:
            path = tf.train.latest_checkpoint(folder)
        except (tf.errors.OpError, ValueError):
            path = None  # a damaged state file: its folder is passed over
        if path and not is_inside(path, folder):
            print(f'Note: {os.path.join(folder, "checkpoint")} names {path}, outside its '
                  'folder; that folder is passed over.', file=sys.stderr)
            path = None  # restoring or resuming would read or write elsewhere
        if path and os.path.exists(path + '.index') and model in (None, checkpoint_model(path)):
            found.append((os.path.getmtime(path + '.index'), path))
    return max(found)[1] if found else None


def is_inside(path, folder):
    """Whether `path` lies inside `folder`, once links and '..' are resolved."""
    folder = os.path.realpath(folder)
    return os.path.commonpath([os.path.realpath(path), folder]) == folder


def resume_flags(flag_values, run_dir, flag_rules):
    """Takes the settings of the run being resumed, refusing conflicting flags.

    A run folder may come from anywhere, so its `params.json` is data, not
    instructions: each saved value must have its flag's type and pass the
    same checks as a value typed on the command line.

    Raises:
        UserError: a flag given on the command line differs from the run's, or
            a saved value is not one the flag would take.
    """
    path = os.path.join(run_dir, PARAMS_FILE)
    params = load_run_params(run_dir)
    for name, saved in params.items():
        if name in NOT_RESTORED_FLAGS or name not in flag_values:
            continue
        if flag_values[name].present and name in CHANGEABLE_FLAGS:
            continue
        if not fits_flag(flag_values[name], saved):
            raise UserError(f'{path} gives {name} = {saved!r}, which is not a value of '
                            f'--{name}: the run in {run_dir} cannot be continued. Start a '
                            'new run without --resume.')
        if flag_values[name].present and flag_values[name].value != saved:
            raise UserError(
                f'--{name} {flag_values[name].value} differs from the run being resumed in '
                f'{run_dir} ({saved}). A resumed run keeps its settings: drop the flag, '
                'or start a new run without --resume.')
        flag_values[name].value = float(saved) if isinstance(flag_values[name].default,
                                                             float) else saved
    try:
        check_flags(flag_values, **flag_rules)
    except UserError as error:
        problem = str(error).rstrip('.')
        raise UserError(f'The settings saved in {path} are not valid ({problem}). The run in '
                        f'{run_dir} cannot be continued: start a new run without '
                        '--resume.') from None


def fits_flag(flag, value):
    """Whether `value`, read from a JSON file, is of the type `flag` takes."""
    kind = flag.flag_type()
    if value is None:
        return flag.default is None
    if kind == 'bool':
        return isinstance(value, bool)
    if kind == 'int':
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == 'float':
        try:  # a whole number of 400 digits is no float
            return not isinstance(value, bool) and math.isfinite(float(value))
        except (TypeError, ValueError, OverflowError):
            return False
    return isinstance(value, str)


def find_resume_checkpoint(flag_values, model, flag_rules):
    """Finds the checkpoint that --resume continues and adopts the run's settings.

    Args:
        flag_values: the parsed flags; updated with the resumed run's values.
        model: the runner's model name, as stored in the run's parameters.
        flag_rules: what the settings must pass (see `check_flags`).

    Returns:
        (run_dir, checkpoint).

    Raises:
        UserError: no checkpoint of this model, its run is still training, or
            its folder holds a link.
    """
    checkpoint = latest_checkpoint(flag_values.train_dir, model)
    if checkpoint is None:
        raise UserError(f'--resume: there is no checkpoint in {flag_values.train_dir} of '
                        f'{MODEL_NAMES[model]} to resume from. Start a new run without '
                        '--resume.')
    run_dir = run_dir_of(checkpoint)
    newer = newer_runs_without_checkpoint(flag_values.train_dir, model,
                                          os.path.getmtime(checkpoint + '.index'))
    if newer:
        raise UserError(
            f'--resume: the newest run of {MODEL_NAMES[model]} in {flag_values.train_dir}, '
            f'{newer[-1]}, stopped before its first checkpoint, so it cannot be resumed. '
            f'Start it again without --resume; or, to continue the run before it '
            f'({run_dir}), move {newer[-1]} out of {flag_values.train_dir} first.')
    check_no_links(run_dir)
    check_not_in_use(run_dir)
    resume_flags(flag_values, run_dir, flag_rules)
    print(f'Resuming from {checkpoint}')
    return run_dir, checkpoint


def check_no_links(run_dir):
    """Fails when the run folder is, or holds, a link.

    The suite never makes links; one in a run folder it is about to write in
    would send checkpoints, the lock or the parameters somewhere else.

    Raises:
        UserError: naming the link.
    """
    for folder, subfolders, files in os.walk(run_dir):
        for path in [folder] + [os.path.join(folder, name) for name in subfolders + files]:
            if os.path.islink(path):
                raise UserError(
                    f'{path} is a link. A run folder made by this suite holds none, and '
                    'training writes only its own files, not through links: the run in '
                    f'{run_dir} is not continued. Remove the link, or start a new run '
                    'without --resume.')


def newer_runs_without_checkpoint(train_dir, model, since):
    """The run folders of `model` started after `since` that hold no checkpoint, oldest first."""
    found = []
    for name in sorted(os.listdir(train_dir)):
        folder = os.path.join(train_dir, name)
        params = os.path.join(folder, PARAMS_FILE)
        try:
            if (os.path.getmtime(params) <= since or load_run_params(folder).get('model') != model
                    or latest_checkpoint(folder) is not None):
                continue
        except (OSError, ValueError, UserError):
            continue  # not a run folder, or one this check cannot read
        found.append((os.path.getmtime(params), folder))
    return [folder for _, folder in sorted(found)]


def resume_command(script, flag_values):
    """The command line that continues this run after an interruption."""
    command = f'python {script} --train_dir {flag_values.train_dir}'
    if flag_values.data_dir:
        command += f' --data_dir {flag_values.data_dir}'
    return command + ' --resume'


def model_of(variables):
    """'fc' or 'cnn': the model that a checkpoint's variables belong to (None if neither)."""
    if 'Layer1/weights' in variables:
        return 'fc'
    if 'conv1/filters' in variables:
        return 'cnn'
    return None


def checkpoint_model(checkpoint):
    """The model of a checkpoint: from its run's parameters, else from its variables."""
    try:
        model = load_run_params(run_dir_of(checkpoint)).get('model')
    except UserError:
        model = None  # a damaged params.json: the variables still tell
    if model is None:
        try:
            model = model_of(dict(tf.train.list_variables(checkpoint)))
        except (tf.errors.OpError, ValueError):
            model = None  # unreadable: matches no model
    return model


def describe_checkpoint(variables):
    """Names the model a checkpoint holds, from its variable names and shapes."""
    if model_of(variables) == 'fc':
        return 'a two-layer network with hidden1={}'.format(variables['Layer1/weights'][1])
    if model_of(variables) == 'cnn':
        return MODEL_NAMES['cnn']
    return 'an unknown model (variables: {})'.format(', '.join(sorted(variables)[:5]))


def checkpoint_variables(checkpoint):
    """Reads the variable names and shapes stored in a checkpoint.

    Raises:
        UserError: the checkpoint cannot be read.
    """
    try:
        return dict(tf.train.list_variables(checkpoint))
    except (tf.errors.OpError, ValueError) as error:
        raise UserError(
            'The checkpoint {} cannot be read; it is damaged or incomplete ({}). '
            'Delete its files ({}.*) to use the checkpoint before it.'
            .format(checkpoint, getattr(error, 'message', error), checkpoint)) from None


def check_checkpoint_matches(checkpoint, model_description):
    """Makes sure a checkpoint holds exactly the variables of the current graph.

    Args:
        checkpoint: the checkpoint path.
        model_description: what the flags asked for, e.g. 'a two-layer network
            with hidden1=120', for the message.

    Raises:
        UserError: saying what the checkpoint holds and what was expected.
    """
    stored = checkpoint_variables(checkpoint)
    problems = []
    for variable in tf.global_variables():
        name, shape = variable.op.name, variable.shape.as_list()
        if name not in stored:
            problems.append(f'{name} is missing')
        elif stored[name] != shape:
            problems.append(f'{name} has shape {stored[name]}, expected {shape}')
    if problems:
        raise UserError(
            'The checkpoint {} holds {}, but the flags describe {} ({}). Pass the '
            'flags the run was trained with.'.format(
                checkpoint, describe_checkpoint(stored), model_description,
                '; '.join(problems[:3])))


def check_finite(loss_value, step, run_dir=None):
    """Stops training at once when the loss is NaN or infinite.

    Raises:
        UserError: saying so and what to do; nothing is saved, so the last
            checkpoint on disk is the last good one.
    """
    if math.isfinite(loss_value):
        return
    last_checkpoint = run_dir and latest_checkpoint(run_dir)
    raise UserError(
        'The loss became {} at step {}: training diverged, so it stopped. The '
        'learning rate is probably too large; try a smaller one (for example a '
        'tenth of it). {}'.format(
            loss_value, step,
            f'The last good checkpoint is kept: {last_checkpoint}.'
            if last_checkpoint else 'No checkpoint had been saved.'))


# ---------------------------------------------------------------------------
# Around the training session: the lock, clear messages, Ctrl-C
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def lock_run_dir(run_dir):
    """Claims the run folder while this process trains in it.

    A file `.training`, created only if there is none, holds the process id
    and start time; `--resume` refuses a run whose process is still alive. A
    lock whose process is gone is taken over. The file is removed however
    training ends.

    Raises:
        UserError: another process that is still running holds the folder.
    """
    check_not_in_use(run_dir)
    lock = os.path.join(run_dir, LOCK_FILE)
    with contextlib.suppress(FileNotFoundError):
        os.remove(lock)  # free, or left by a process that is gone
    try:
        with open(lock, 'x') as f:
            f.write(f'{os.getpid()} {process_start(os.getpid())}')
    except FileExistsError:
        raise UserError(f'Another process claimed the run in {run_dir} at this very moment '
                        f'(see {lock}). Wait for it to end.') from None
    except OSError as error:
        raise UserError(f'Cannot write {lock}: {error.strerror or error}.') from None
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(lock)


def check_not_in_use(run_dir):
    """Fails when another live process is training the run in `run_dir`.

    Raises:
        UserError: naming the process.
    """
    lock = os.path.join(run_dir, LOCK_FILE)
    if not os.path.lexists(lock):
        return  # free
    if os.path.islink(lock) or not os.path.isfile(lock):
        raise UserError(f'{lock} is not a lock file of this suite (a folder, a link or a '
                        'special file). Remove it, then run again.')
    try:
        with open(lock) as f:
            holder, *start = f.read(64).split()
        holder = int(holder)
    except (OSError, ValueError):
        return  # an empty or damaged lock: no process can be holding it
    if holder == os.getpid() or not process_is_running(holder):
        return
    if start and process_start(holder) not in (None, start[0]):
        return  # the id now belongs to another process: the holder is gone
    raise UserError(
        f'The run in {run_dir} is being trained by another process (pid {holder}, as its '
        f'lock {lock} says). Wait for it to end, or stop it, before resuming; if no '
        'training is running, remove that file.')


def process_is_running(pid):
    """Whether a process with this id exists (never checked on Windows)."""
    if os.name != 'posix' or not 0 < pid < 2 ** 22:
        return False  # Windows: signal 0 would send a Ctrl-C; no process has such an id
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, but belongs to another user
    return True


def process_start(pid):
    """When a process started, in clock ticks since boot (Linux), or None where unknown.

    With its id it names a process: an id is reused by later processes, a
    start time is not.
    """
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@contextlib.contextmanager
def checked_restore(checkpoint, model_description='the model of this run'):
    """Wraps `saver.restore`: checks the checkpoint first, explains a failure.

    The check comes first because `Saver.restore` accepts variables of another
    shape without a word (a run trained with another --hidden1, say) and the
    model would then run with them. A restore that fails means damaged files.

    Raises:
        UserError: naming the checkpoint, what it holds and what to do.
    """
    check_checkpoint_matches(checkpoint, model_description)
    try:
        yield
    except tf.errors.OpError as error:
        raise UserError(
            f'The checkpoint {checkpoint} cannot be restored; it is damaged '
            f'({error.message}). Delete its files ({checkpoint}.*) to use the one '
            'before.') from None


@contextlib.contextmanager
def save_errors_explained(run_dir, resume_command):
    """Turns a failed `saver.save` (a full disk, say) into a clear message.

    The temporary files of the failed save are removed, to give back the space.

    Raises:
        UserError: naming the folder; the earlier checkpoints are intact.
    """
    try:
        yield
    except (OSError, ValueError, tf.errors.OpError) as error:  # ValueError: folder gone
        for pattern in ('*.tmp*', '*.tempstate*'):
            for leftover in glob.glob(os.path.join(glob.escape(run_dir), '**', pattern),
                                      recursive=True):
                with contextlib.suppress(OSError):
                    os.remove(leftover)
        reason = disk_problem(error) or (
            getattr(error, 'message', str(error)).splitlines() or ['no details'])[0]
        raise UserError(
            f'Could not save a checkpoint in {run_dir} ({reason}). Earlier checkpoints there '
            'are intact. Free some disk space or fix the folder, then continue with: '
            f'{resume_command}') from None


def save_and_stop(saver, sess, checkpoint_file, resume_command):
    """After Ctrl-C: saves a checkpoint of the current step and stops the script.

    Raises:
        TrainingInterrupted: always (exit code 130), saying where the
            checkpoint is and which command continues the run.
    """
    global_step = tf.train.get_global_step()
    with save_errors_explained(os.path.dirname(checkpoint_file), resume_command):
        path = saver.save(sess, checkpoint_file, global_step=global_step)
    raise TrainingInterrupted(
        f'Training interrupted at step {sess.run(global_step)}. Saved checkpoint {path}. '
        f'To continue where it stopped, run: {resume_command}')


def scalar_summary(**values):
    """A summary of Python numbers for `FileWriter.add_summary`, one tag a keyword."""
    return tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=value)
                             for tag, value in values.items()])


def data_set_writers(run_dir):
    """Summary writers for the training and the validation set, in sub-folders of the run folder.

    Written under one tag, `accuracy`, their values land in one TensorBoard
    chart with a line per data set, as the Keras TensorBoard callback does it,
    and in the HParams table as `train.accuracy` and `validation.accuracy`.
    """
    return [tf.summary.FileWriter(os.path.join(run_dir, name)) for name in ('train', 'validation')]


def hparams_summary(flag_values, model, run_dir):
    """The run's hyper-parameters, for TensorBoard's HParams tab.

    The model and every flag but the folders, as TensorBoard's hparams plugin
    records them, under the run folder's name. Its table then lines up the runs
    of a train_dir with their final scalars (the `accuracy` of train/,
    validation/ and test/, the loss) as metrics.
    """
    hparams = {name: value for name, value in own_flags(flag_values).items()
               if name not in NOT_HYPERPARAMETERS and value is not None}
    hparams['model'] = model
    summary = hparams_plugin.hparams_pb(hparams, trial_id=os.path.basename(run_dir))
    return tf.Summary.FromString(summary.SerializeToString())


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------

def do_eval(sess, accuracy, predictions, images_placeholder, labels_placeholder,
            data_set, batch_size=EVAL_BATCH_SIZE):
    """Runs the model's accuracy op over a whole set, one batch at a time.

    Feeding a whole set at once makes TensorFlow hold every activation of every
    image (for the CNN and 10,000 images, gigabytes); batches bound the memory.
    Each batch's accuracy times its size is its number of right answers; their
    sum over the set's size is the set's accuracy.

    Args:
        sess: the session.
        accuracy: the model's `evaluation()` op.
        predictions: the predicted class of each image in a batch.
        images_placeholder, labels_placeholder: where a batch is fed.
        data_set: (images, labels) of any length.
        batch_size: images per `sess.run`.

    Returns:
        (accuracy, predicted): the fraction of right answers over the set, and
        every image's predicted class (for the confusion matrix).
    """
    images, labels = data_set
    right_answers, predicted = 0, []
    for start in range(0, len(images), batch_size):
        feed_dict = {images_placeholder: images[start:start + batch_size],
                     labels_placeholder: labels[start:start + batch_size]}
        batch_accuracy, batch_predicted = sess.run([accuracy, predictions],
                                                   feed_dict=feed_dict)
        right_answers += round(float(batch_accuracy) * len(batch_predicted))
        predicted.append(batch_predicted)
    if not predicted:
        return float('nan'), np.zeros(0, np.int64)
    return right_answers / len(images), np.concatenate(predicted)
