"""What the training scripts share: flags, run folders, the training session.

The runners (`run_fc_model.py`, `run_cnn_model.py`) keep their own graph and
their own training loop, so each reads like its blog post; the plumbing around
the loop lives here once:

* flags: parsing with a clear message for typos, printing `Parameters:`, and
  checking values before any data is loaded;
* run folders: one `train_dir/YYYYmmdd-HHMMSS/` per run with its parameters,
  summaries and checkpoints, so runs never overwrite each other;
* `Trainer`: the session around the loop. It starts fresh or resumes from a
  checkpoint, runs train steps and stops at once if the loss diverges, saves
  checkpoints without losing earlier ones, and on Ctrl-C saves a checkpoint and
  says how to resume;
* `predict`: evaluation in batches, so memory stays bounded for any set size.
"""

import contextlib
import json
import math
import os
import sys
import tempfile
import time

# TensorFlow logs a page of C++ start-up notes; a learner needs none of them.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from data_helpers import DEFAULT_DATA_DIR, UserError  # noqa: E402


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

tf.disable_eager_execution()
tf.get_logger().setLevel('ERROR')  # deprecation notes about tf.compat.v1 itself

CHECKPOINT_NAME = 'model.ckpt'
PARAMS_FILE = 'params.json'
MEAN_IMAGE_FILE = 'mean_image.npy'
EVAL_BATCH_SIZE = 1000

# When a run is resumed its saved settings come back, except these, which are
# the current command's; and these may be given anew (to train for longer).
NOT_RESTORED_FLAGS = ('train_dir', 'resume')
CHANGEABLE_FLAGS = ('max_steps', 'epochs', 'data_dir')
LOCK_FILE = '.training'
MODEL_NAMES = {'fc': 'the two-layer network', 'cnn': 'the convolutional network'}


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
    return 0


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


def check_flags(flag_values, positive=(), non_negative=(), rates=()):
    """Checks flag values before any work is done.

    Args:
        flag_values: the parsed flags.
        positive: names that must be > 0.
        non_negative: names that must be >= 0.
        rates: names that must lie in [0, 1).

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
        elif name in non_negative and value < 0:
            problems.append(f'--{name} is {value}; it must be 0 or more')
        elif name in rates and not 0 <= value < 1:
            problems.append(f'--{name} is {value}; it must be at least 0 and below 1')
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


def print_total_time(start_time, trainer=None, train_seconds=None, train_steps=None):
    """Prints `Total time` and, for the benchmark, writes the timing file.

    When the environment variable TUTORIAL_TIMING_JSON names a file, the
    total and training times and the step count also go there, as JSON.
    """
    total = time.time() - start_time
    print(f'Total time: {total:5.2f}s')
    path = os.environ.get('TUTORIAL_TIMING_JSON')
    if path:
        if trainer is not None:
            train_seconds, train_steps = trainer.train_seconds, trainer.steps_run
        with open(path, 'w') as f:
            json.dump({'total_seconds': total, 'train_seconds': train_seconds,
                       'train_steps': train_steps}, f)


# ---------------------------------------------------------------------------
# Run folders and checkpoints
# ---------------------------------------------------------------------------

def check_writable(folder):
    """Creates `folder` if needed and makes sure files can be written in it.

    Raises:
        UserError: naming the folder and the reason.
    """
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(f'Cannot write to --train_dir {folder}: {error.strerror or error}. '
                        'Choose a folder you can write to.') from None


def start_run(flag_values, model):
    """Prepares a run before any data is loaded.

    Checks that train_dir can be written, finds the checkpoint that --resume
    continues (adopting that run's settings), fixes the seed and prints the
    parameters.

    Returns:
        (run_dir, checkpoint) of the resumed run, or (None, None) for a new run.
    """
    check_writable(flag_values.train_dir)
    run_dir = checkpoint = None
    if flag_values.resume:
        run_dir, checkpoint = find_resume_checkpoint(flag_values, model)
    flag_values.seed = choose_seed(flag_values.seed)
    print_parameters(flag_values)
    return run_dir, checkpoint


def prepare_run_dir(flag_values, model, data, run_dir=None):
    """Creates a new run's folder, or checks that a resumed run gets the same data.

    The run's parameters go to `params.json` (again on resume, so that a raised
    --max_steps or --epochs is what the next --resume continues to), and the
    training mean image to `mean_image.npy`, for classifying own images.

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
    if run_dir is None:
        run_dir = make_run_dir(flag_values.train_dir)
        np.save(os.path.join(run_dir, MEAN_IMAGE_FILE), data['mean_image'])
    else:
        trained_on = load_run_params(run_dir).get('train_images', params['train_images'])
        if trained_on != params['train_images']:
            raise UserError(
                f'The run in {run_dir} was trained on {trained_on:,} images, but '
                f'{params["data_dir"]} gives {params["train_images"]:,}. Resume it with the '
                'same --data_dir and --validation_size.')
    with open(os.path.join(run_dir, PARAMS_FILE), 'w') as f:
        json.dump(params, f, indent=2, sort_keys=True)
    return run_dir


def make_run_dir(train_dir):
    """Creates a new, unique `train_dir/YYYYmmdd-HHMMSS` folder for this run.

    Two runs started in the same second get `...-HHMMSS-2` and so on: the
    folder is created atomically, so no two runs ever share one.
    """
    base = os.path.join(train_dir, time.strftime('%Y%m%d-%H%M%S'))
    run_dir, number = base, 1
    while True:
        try:
            os.makedirs(run_dir)
            return run_dir
        except FileExistsError:
            number += 1
            run_dir = f'{base}-{number}'
        except OSError as error:
            raise UserError(f'Cannot create a run folder in {train_dir}: '
                            f'{error.strerror or error}.') from None


def load_run_params(run_dir):
    """Reads the parameters a run was started with ({} when there are none)."""
    path = os.path.join(run_dir, PARAMS_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def latest_checkpoint(train_dir, model=None):
    """Finds the newest checkpoint in `train_dir` or in its run folders.

    Args:
        train_dir: the folder to look in.
        model: only checkpoints of this model ('fc' or 'cnn'); None for any.

    Returns:
        The checkpoint path (as given to `Saver.restore`), or None.
    """
    if not os.path.isdir(train_dir):
        return None
    folders = [train_dir] + [os.path.join(train_dir, name)
                             for name in sorted(os.listdir(train_dir))]
    found = []
    for folder in folders:
        if not os.path.isfile(os.path.join(folder, 'checkpoint')):
            continue
        try:
            path = tf.train.latest_checkpoint(folder)
        except (tf.errors.OpError, ValueError):
            path = None  # a damaged state file: its folder is passed over
        if path and os.path.exists(path + '.index') and model in (None, checkpoint_model(path)):
            found.append((os.path.getmtime(path + '.index'), path))
    return max(found)[1] if found else None


def resume_flags(flag_values, run_dir):
    """Takes the settings of the run being resumed, refusing conflicting flags.

    Raises:
        UserError: a flag given on the command line differs from the run's.
    """
    params = load_run_params(run_dir)
    for name, saved in params.items():
        if name in NOT_RESTORED_FLAGS or name not in flag_values:
            continue
        if flag_values[name].present and name in CHANGEABLE_FLAGS:
            continue
        if flag_values[name].present and flag_values[name].value != saved:
            raise UserError(
                f'--{name} {flag_values[name].value} differs from the run being resumed in '
                f'{run_dir} ({saved}). A resumed run keeps its settings: drop the flag, '
                'or start a new run without --resume.')
        flag_values[name].value = saved


def find_resume_checkpoint(flag_values, model):
    """Finds the checkpoint that --resume continues and adopts the run's settings.

    Args:
        flag_values: the parsed flags; updated with the resumed run's values.
        model: the runner's model name, as stored in the run's parameters.

    Returns:
        (run_dir, checkpoint).

    Raises:
        UserError: no checkpoint of this model, or its run is still training.
    """
    checkpoint = latest_checkpoint(flag_values.train_dir, model)
    if checkpoint is None:
        raise UserError(f'--resume: there is no checkpoint in {flag_values.train_dir} of '
                        f'{MODEL_NAMES[model]} to resume from. Start a new run without '
                        '--resume.')
    run_dir = os.path.dirname(checkpoint)
    check_not_in_use(run_dir)
    resume_flags(flag_values, run_dir)
    print(f'Resuming from {checkpoint}')
    return run_dir, checkpoint


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
    model = load_run_params(os.path.dirname(checkpoint)).get('model')
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
    last_checkpoint = run_dir and tf.train.latest_checkpoint(run_dir)
    raise UserError(
        'The loss became {} at step {}: training diverged, so it stopped. The '
        'learning rate is probably too large; try a smaller one (for example a '
        'tenth of it). {}'.format(
            loss_value, step,
            f'The last good checkpoint is kept: {last_checkpoint}.'
            if last_checkpoint else 'No checkpoint had been saved.'))


# ---------------------------------------------------------------------------
# The training session
# ---------------------------------------------------------------------------

class Trainer:
    """The session around a training loop: start or resume, step, save.

    Use it as a context manager:

        with Trainer(run_dir, train_op, loss) as trainer:
            for images, labels in batches:
                trainer.train_step(feed_dict)

    On leaving the block, Ctrl-C saves a checkpoint and raises
    TrainingInterrupted (exit 130) with the command that resumes the run.

    Args:
        run_dir: the run folder for summaries and checkpoints.
        train_op: the op that applies one optimiser step.
        loss: the loss tensor, checked after every step.
        resume_from: a checkpoint to restore instead of initialising.
        resume_command: shown after Ctrl-C.
    """

    def __init__(self, run_dir, train_op, loss, resume_from=None, resume_command=''):
        self.run_dir = run_dir
        self.train_op = train_op
        self.loss = loss
        self.global_step = tf.train.get_global_step()
        self.resume_from = resume_from
        self.resume_command = resume_command
        # Keep every checkpoint of the run: nothing a user made is deleted.
        # Relative paths in the `checkpoint` file: a copied or moved train_dir
        # restores its own checkpoints.
        self.saver = tf.train.Saver(max_to_keep=None, save_relative_paths=True)
        self.steps_run = 0
        self.train_seconds = 0.0

    def __enter__(self):
        self._lock_run_dir()
        # One inter-op thread: the graphs are chains of ops, so running ops side
        # by side gains nothing and its scheduling costs about 15% of a small
        # network's step; each op still uses every core (intra-op threads).
        self.sess = tf.Session(config=tf.ConfigProto(inter_op_parallelism_threads=1))
        self.writer = None
        try:
            if self.resume_from:
                check_checkpoint_matches(self.resume_from, 'the model of this run')
                try:
                    self.saver.restore(self.sess, self.resume_from)
                except tf.errors.OpError as error:
                    raise UserError(
                        f'The checkpoint {self.resume_from} cannot be restored; it is damaged '
                        f'({error.message}). Delete its files ({self.resume_from}.*) to '
                        'resume from the one before.') from None
            else:
                self.sess.run(tf.global_variables_initializer())
            self.writer = tf.summary.FileWriter(self.run_dir, self.sess.graph)
        except BaseException:
            self._close()
            raise
        self.step = int(self.sess.run(self.global_step))
        self._start = time.time()
        return self

    def train_step(self, feed_dict):
        """Runs one optimiser step and returns the loss.

        Raises:
            UserError: the loss became NaN or infinite; nothing is saved, so the
                last checkpoint on disk is the last good one.
        """
        _, loss_value = self.sess.run([self.train_op, self.loss], feed_dict=feed_dict)
        check_finite(loss_value, self.step, self.run_dir)
        self.step += 1
        self.steps_run += 1
        self.train_seconds = time.time() - self._start
        return loss_value

    def save_checkpoint(self):
        """Saves a checkpoint for the current step; earlier ones are kept.

        Raises:
            UserError: the disk is full or the folder cannot be written; the
                earlier checkpoints are intact.
        """
        prefix = os.path.join(self.run_dir, CHECKPOINT_NAME)
        try:
            return self.saver.save(self.sess, prefix, global_step=self.global_step)
        except (OSError, tf.errors.OpError) as error:
            raise UserError(
                'Could not save a checkpoint in {} ({}). Earlier checkpoints there '
                'are intact. Free some disk space or fix the folder, then continue '
                'with: {}'.format(self.run_dir, getattr(error, 'message', error),
                                  self.resume_command)) from None

    def add_summary(self, summary, step=None):
        """Writes a serialized summary (or a dict of scalars) for TensorBoard."""
        if isinstance(summary, dict):
            summary = tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=value)
                                        for tag, value in summary.items()])
        self.writer.add_summary(summary, self.step if step is None else step)

    def __exit__(self, exc_type, exc, traceback):
        try:
            if exc_type is KeyboardInterrupt:
                path = self.save_checkpoint()
                raise TrainingInterrupted(
                    f'Training interrupted at step {int(self.sess.run(self.global_step))}. '
                    f'Saved checkpoint {path}. To continue where it stopped, run: '
                    f'{self.resume_command}')
        finally:
            self._close()
        return False

    def _close(self):
        """Closes the summary writer and the session, and frees the run folder."""
        if self.writer is not None:
            self.writer.close()
        self.sess.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.run_dir, LOCK_FILE))

    def _lock_run_dir(self):
        """Claims the run folder, so that no second process trains into it at once.

        Raises:
            UserError: another process that is still running holds the folder.
        """
        check_not_in_use(self.run_dir)
        with open(os.path.join(self.run_dir, LOCK_FILE), 'w') as f:
            f.write(str(os.getpid()))  # a lock left by a killed process is taken over


def check_not_in_use(run_dir):
    """Fails when another live process is training the run in `run_dir`.

    Raises:
        UserError: naming the process.
    """
    try:
        with open(os.path.join(run_dir, LOCK_FILE)) as f:
            holder = int(f.read())
    except (FileNotFoundError, ValueError):
        return  # free
    if holder != os.getpid() and process_is_running(holder):
        raise UserError(
            f'The run in {run_dir} is being trained by another process (pid {holder}). '
            'Wait for it to end, or stop it, before resuming.')


def process_is_running(pid):
    """Whether a process with this id exists (never checked on Windows)."""
    if os.name != 'posix':
        return False  # there, signal 0 would send a Ctrl-C instead
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, but belongs to another user
    return True


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------

def predict(sess, predictions, images_placeholder, images, batch_size=EVAL_BATCH_SIZE):
    """Runs `predictions` over `images` in batches and returns them all.

    Feeding a whole set at once makes TensorFlow hold every activation of every
    image (for the CNN and 10,000 images, gigabytes); batches bound the memory.

    Args:
        sess: the session.
        predictions: tensor of predicted class ids for a batch.
        images_placeholder: where the images are fed.
        images: array of images, any length.
        batch_size: images per run.

    Returns:
        int64 array with one predicted class per image.
    """
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        outputs.append(sess.run(predictions, feed_dict={images_placeholder: batch}))
    return np.concatenate(outputs) if outputs else np.zeros(0, np.int64)


def do_eval(sess, predictions, images_placeholder, images, labels):
    """Evaluates a whole set in batches.

    Returns:
        (accuracy, predicted): the fraction of correct predictions and the
        predicted class of every image.
    """
    predicted = predict(sess, predictions, images_placeholder, images)
    return float(np.mean(predicted == labels)), predicted
