"""Run folders: one `train_dir/YYYYmmdd-HHMMSS_model_flags/` per training run.

A run folder holds the run's TensorBoard summaries, its settings
(`params.json`), the training mean image (for classifying photos) and, in
`checkpoints/`, its checkpoints. Two runs never share a folder, so nothing is
overwritten and TensorBoard shows runs side by side.

A run folder may come from anywhere (a course drive, a colleague), so what
it holds is read as data: `params.json` is size-limited and its settings are
checked, and the files the suite rewrites are never written through a link.
"""

import contextlib
import json
import os
import re
import shutil
import time

import numpy as np

from tutorial_support import cifar10_download, cli, errors
from tutorial_support.errors import UserError

PARAMS_FILE = 'params.json'
MEAN_IMAGE_FILE = 'mean_image.npy'
# A run's checkpoints go to a folder of their own inside the run folder, so that
# TensorBoard's Projector, which looks for checkpoints where the summaries are,
# shows the embedding each run writes for it and not the raw weight matrices.
CHECKPOINT_FOLDER = 'checkpoints'
# The TF2 twins (tf2/) save by object with a CheckpointManager, in a folder of
# their own: the TF1 tools, which read checkpoints by variable name, never see them.
TF2_CHECKPOINT_FOLDER = 'tf2_checkpoints'
# A run folder's name starts with when the run started: YYYYmmdd-HHMMSS, then
# -2, -3 ... for runs started in the same second, in the order they started.
RUN_START = re.compile(r'(\d{8}-\d{6})(?:-(\d+))?(?:_|$)')
MODEL_NAMES = {'fc': 'the two-layer network', 'cnn': 'the convolutional network',
               'deep_cnn': 'the deep convolutional network of part 4'}
# The models of the TF2 twins' runs, as their params.json and folder names give them
TF2_MODEL_NAMES = {'tf2_fc': 'the two-layer network of tf2/run_fc_model.py',
                   'tf2_cnn': 'the convolutional network of tf2/run_cnn_model.py',
                   'tf2_deep_cnn': 'the deep convolutional network of '
                                   'tf2/run_deep_cnn_model.py'}
# The models of the Keras way's runs (tf2/keras_*.py), which keep a Keras
# backup (see keras_runs) and .keras checkpoints, never read by the TF1 tools
KERAS_MODEL_NAMES = {'keras_softmax': 'the softmax classifier of tf2/keras_softmax.py',
                     'keras_fc': 'the two-layer network of tf2/keras_fc.py',
                     'keras_cnn': 'the convolutional network of tf2/keras_cnn.py',
                     'keras_deep_cnn': 'the deep convolutional network of tf2/keras_deep_cnn.py'}
# The settings of params.json that restore_model.py uses as they are, and what
# each must be (resume.adopt_settings checks every setting against its flag).
RECORDED_SETTINGS = {
    'model': lambda value: isinstance(value, str) and (value in MODEL_NAMES
                                                       or value in TF2_MODEL_NAMES
                                                       or value in KERAS_MODEL_NAMES),
    'data_dir': lambda value: isinstance(value, str),
    'validation_size': lambda value: type(value) is int and value >= 0,
    'train_images': lambda value: type(value) is int and value >= 0,
    'started': lambda value: type(value) in (int, float) and 0 <= value < 1e12,
    # the deep CNN's shape and test-time augmentation, rebuilt as trained
    'width': lambda value: type(value) is int and 0 < value <= cli.MOST_WIDTH,
    'test_flip': lambda value: isinstance(value, bool),
    'batch_norm': lambda value: isinstance(value, bool),
    # whether the deep CNN tests the moving average of its weights, restored as trained
    'ema_decay': lambda value: type(value) in (int, float) and 0 <= value < 1,
}


def prepare_run_dir(flag_values, model, data, resumed_dir=None):
    """The folder this run writes to: a new one, or the resumed run's own.

    The run's settings go to `params.json` (again on resume, so that a raised
    --max_steps or --epochs is what the next --resume continues to), and a new
    run's training mean image to `mean_image.npy`, for classifying photos. A
    new folder that cannot be filled (a full disk) is removed again.

    Args:
        flag_values: the parsed flags.
        model: 'fc' or 'cnn'; 'tf2_fc' or 'tf2_cnn' for the TF2 twins; 'keras_fc' and
            the like for the Keras way.
        data: the dict from `data_helpers.load_data`.
        resumed_dir: the folder of the run --resume continues, or None.

    Returns:
        The run folder.

    Raises:
        UserError: a resumed run would get a training set of another size, or
            the folder cannot be written.
    """
    params = dict(cli.script_flags(flag_values), model=model,
                  train_images=len(data['labels_train']),
                  data_dir=os.path.abspath(flag_values.data_dir
                                           or cifar10_download.DEFAULT_DATA_DIR))
    params_text = json.dumps(params, indent=2, sort_keys=True)
    if resumed_dir is not None:
        trained_on = load_run_params(resumed_dir).get('train_images', params['train_images'])
        if trained_on != params['train_images']:
            raise UserError(
                f'The run in {resumed_dir} was trained on {trained_on:,} images, but '
                f'{params["data_dir"]} gives {params["train_images"]:,}. Resume it with the '
                'same --data_dir and --validation_size.')
        started = load_run_params(resumed_dir).get('started')
        if started is not None:  # when the run first started, kept
            params_text = json.dumps(dict(params, started=started), indent=2, sort_keys=True)
        write_atomically(os.path.join(resumed_dir, PARAMS_FILE), params_text)
        os.makedirs(os.path.join(resumed_dir, checkpoint_folder(model)),
                    exist_ok=True)  # older runs
        return resumed_dir
    run_dir = make_run_dir(flag_values.train_dir, run_name(flag_values, model))
    # When the run started, to the microsecond: orders runs started in one second
    params_text = json.dumps(dict(params, started=time.time()), indent=2, sort_keys=True)
    try:
        mean_path = os.path.join(run_dir, MEAN_IMAGE_FILE)
        with errors.writing(mean_path):  # a full disk: the message names the file
            np.save(mean_path, data['mean_image'])
        write_atomically(os.path.join(run_dir, PARAMS_FILE), params_text)
        os.makedirs(os.path.join(run_dir, checkpoint_folder(model)))
    except (OSError, UserError):
        shutil.rmtree(run_dir, ignore_errors=True)  # no half-made run folder (a full disk)
        raise
    return run_dir


def run_name(flag_values, model):
    """What a run folder's name says after the date and time.

    The model, then each flag given on the command line with a value other
    than its default, sorted: `fc_hidden1=40_learning_rate=0.0003`. Where the
    data and the logs are is left out.
    """
    parts = [model]
    for name, value in sorted(cli.hyperparameters(flag_values).items()):
        flag = flag_values[name]
        if flag.present and value != flag.default:
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


def recorded_start(folder):
    """When a run started, as its folder records it: ('YYYYmmdd-HHMMSS', n, seconds), or None.

    The folder's name, then the `started` time of its params.json (for runs
    started in the same second), not a file time, say which run is newer:
    copying a folder changes its files' times, never what it records.
    """
    match = RUN_START.match(os.path.basename(os.path.normpath(folder)))
    if not match:
        return None
    try:
        time.strptime(match.group(1), '%Y%m%d-%H%M%S')
    except ValueError:
        return None
    try:
        started = load_run_params(folder).get('started', 0)
    except UserError:
        started = 0  # a damaged params.json: the name still tells
    return match.group(1), int(match.group(2) or 1), started


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


def load_run_params(run_dir):
    """Reads the settings a run was started with ({} when there are none).

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


def checkpoint_folder(model):
    """The folder of a run folder that a model's checkpoints go to: TF1's or TF2's."""
    return TF2_CHECKPOINT_FOLDER if model in TF2_MODEL_NAMES else CHECKPOINT_FOLDER


def run_dir_of(checkpoint):
    """The run folder a checkpoint belongs to (the parent of its checkpoints folder)."""
    folder = os.path.dirname(checkpoint)
    return (os.path.dirname(folder)
            if os.path.basename(folder) in (CHECKPOINT_FOLDER, TF2_CHECKPOINT_FOLDER) else folder)


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
