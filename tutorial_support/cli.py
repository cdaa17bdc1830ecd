"""The scripts' flags: defining the shared ones, parsing, checking, printing.

Every value is checked before any data is loaded or any file written, and a
mistake ends in a message that names the flag and its rule.
"""

import errno
import math
import os
import sys
import tempfile

import numpy as np
from absl import flags

from tutorial_support.errors import UserError

# Beyond these a value cannot work: a hidden layer of more units, or a deep
# CNN whose last block has 4 x 1,024 channels, would not fit in memory;
# TensorFlow and NumPy take seeds below 2**32.
MOST_HIDDEN_UNITS = 100_000
MOST_WIDTH = 1024
LARGEST_SEED = 2 ** 32 - 1
# Flags that say where things are, not what the run is: left out of the run
# folder's name and of the hyper-parameters shown in TensorBoard.
LOCATION_FLAGS = ('train_dir', 'data_dir', 'resume', 'init_from_tf1', 'restore_tf1')


def define_data_flags(flag_values):
    """Defines --data_dir and --seed, which every training script has."""
    flags.DEFINE_string('data_dir', None,
                        'Folder with the CIFAR-10 batch files '
                        '(default: cifar-10-batches-py beside the scripts).',
                        flag_values=flag_values)
    flags.DEFINE_integer('seed', None,
                         'Random seed: the same seed gives the same numbers on a CPU.',
                         flag_values=flag_values)


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


def define_tf1_run_flags(flag_values, script):
    """Defines the TF2 twins' flags that read a TF1 run of `script`: its start, or its end."""
    flags.DEFINE_string('init_from_tf1', None, 'Start from the initial weights of this TF1 run '
                        f'folder (of {script}): its step-0 checkpoint, read by variable name; '
                        'without --seed, its seed too, so that the batches are its own.',
                        flag_values=flag_values)
    flags.DEFINE_string('restore_tf1', None, 'Instead of training: load the newest checkpoint of '
                        f'this TF1 run folder (of {script}) by variable name and test it.',
                        flag_values=flag_values)


def parse_flags(flag_values, argv, rules, allow_arguments=False):
    """Parses argv into `flag_values` and checks every value, before any work is done.

    A typo, a value of the wrong type, a value its rule refuses and a folder
    that cannot be written all end here, with a message.

    Args:
        flag_values: the script's flags.
        argv: the command line, program name first.
        rules: what the values must be: the keyword arguments of `check_flags`.
        allow_arguments: whether arguments that are not flags are accepted.

    Returns:
        The arguments that are not flags.

    Raises:
        UserError: naming the flag and the problem.
    """
    flag_values.unparse_flags()  # so that main() can run twice in one process
    if any(arg in ('-h', '--help', '-help', '--helpfull') for arg in argv[1:]):
        print(flag_values.get_help(include_special_flags=False))
        sys.exit(0)
    known = ', '.join('--' + name for name in sorted(script_flags(flag_values)))
    try:
        arguments = flag_values(argv)[1:]
    except flags.Error as error:
        raise UserError(f'{error}. Known flags: {known}.') from None
    if arguments and not allow_arguments:
        raise UserError(f'Unexpected argument {arguments[0]!r}: every setting is a flag such as '
                        f'--batch_size 100. Known flags: {known}.')
    check_flags(flag_values, **rules)
    return arguments


def script_flags(flag_values):
    """The script's own flags as a dict (absl adds flagfile and undefok)."""
    return {name: value for name, value in flag_values.flag_values_dict().items()
            if name not in ('flagfile', 'undefok')}


def hyperparameters(flag_values):
    """The flags that describe the run itself: all but where things are, and unset ones."""
    return {name: value for name, value in script_flags(flag_values).items()
            if name not in LOCATION_FLAGS and value is not None}


def print_parameters(flag_values):
    """Prints `Parameters:` and one `name = value` line a flag, sorted."""
    print('Parameters:')
    for name, value in sorted(script_flags(flag_values).items()):
        print(f'{name} = {value}')
    print()


def check_flags(flag_values, positive=(), non_negative=(), rates=(), at_most=None, writable=()):
    """Checks the flags' values, then the folders the script will write to.

    Args:
        flag_values: the parsed flags.
        positive: names that must be > 0.
        non_negative: names that must be >= 0.
        rates: names that must lie in [0, 1).
        at_most: {name: largest value}, for sizes beyond what a computer holds.
        writable: names of folders that must be writable (created if missing,
            once every value is known to be good); an unset one is skipped.

    Raises:
        UserError: listing every bad value at once, or naming the folder.
    """
    problems = []
    for name, value in sorted(script_flags(flag_values).items()):
        if isinstance(value, str) and path_encoding_problem(value):
            problems.append(f'--{name} {printable(value)} {path_encoding_problem(value)}')
        if value is None or isinstance(value, (bool, str)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f'--{name} is {value}; it must be a finite number')
        elif isinstance(value, float) and not math.isfinite(as_float32(value)):
            problems.append(f'--{name} is {value}; that is infinite as the 32-bit float '
                            'TensorFlow computes with: use at most 3.4e38')
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
    for name in writable:
        if flag_values[name].value is not None:
            check_writable(flag_values[name].value, f'--{name}')


def as_float32(value):
    """`value` as the 32-bit float the graph holds it in (inf beyond about 3.4e38)."""
    with np.errstate(over='ignore'):
        return float(np.float32(value))


def path_encoding_problem(text):
    """Why TensorFlow and Python would not find the same file under this name, or None.

    Python turns a name into the bytes on disk with the locale's encoding
    (`os.fsencode`); TensorFlow always with UTF-8. A name in another
    encoding arrives with its bytes smuggled in as surrogates (U+DCFF for
    the byte 0xff), which UTF-8 cannot encode; under a locale that is not
    UTF-8, even a UTF-8 name gives TensorFlow other bytes than Python.
    """
    try:
        on_disk = os.fsencode(text)
    except UnicodeEncodeError:
        on_disk = None
    try:
        if on_disk is not None and on_disk == text.encode('utf-8'):
            return None
    except UnicodeEncodeError:
        pass
    try:
        (on_disk or b'\xff').decode('utf-8')
    except UnicodeDecodeError:
        return ('is not valid UTF-8 text (a name made with another encoding): TensorFlow '
                'cannot use such a path. Choose or rename a folder whose name is plain text')
    return (f'is UTF-8, but Python runs here in a locale whose encoding '
            f'({sys.getfilesystemencoding()}) cannot hold it, so TensorFlow and Python would '
            'use two different folders. Run with a UTF-8 locale (for example LC_ALL=C.UTF-8, '
            'or PYTHONUTF8=1), or choose a folder whose name is plain ASCII')


def printable(text):
    """A name for a message, its bytes on disk read as UTF-8 (others shown as \xff)."""
    try:
        return os.fsencode(text).decode('utf-8', 'backslashreplace')
    except UnicodeEncodeError:
        return text.encode('utf-8', 'backslashreplace').decode('ascii')


def is_value_of_flag(flag, value):
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


def check_writable(folder, flag_name):
    """Makes sure `folder` can be created and written in, creating nothing.

    A run refused later (its data missing, say) leaves no empty folder
    behind: the test is a file written and removed in `folder`, or in the
    nearest folder above it that exists, where `folder` would be made.

    Raises:
        UserError: naming the folder and the reason.
    """
    check_no_pattern_characters(folder, flag_name)
    existing = os.path.abspath(folder)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    try:
        if not os.path.isdir(existing):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), existing)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UserError(f'Cannot write to {flag_name} {folder}: {error.strerror or error}. '
                        'Choose a folder you can write to.') from None


def check_no_pattern_characters(folder, flag_name='--train_dir'):
    """Fails when a folder's name holds a character TensorFlow reads as a file pattern.

    `Saver.restore` and `tf.train.latest_checkpoint` look checkpoints up by
    pattern, so in `runs[1]` they would never find the checkpoints saved there.

    Raises:
        UserError: naming the folder and the characters.
    """
    found = sorted(set(folder) & set('[]*?\\'))
    if found:
        raise UserError(
            f'{flag_name} {folder} contains {" ".join(found)}: TensorFlow reads checkpoint '
            'paths as file patterns, so checkpoints saved there could not be found again. '
            'Choose a folder whose name has none of [ ] * ? \\.')


def check_batch_size(batch_size, num_images):
    """Fails clearly when a batch would not fit in the training set."""
    if batch_size > num_images:
        raise UserError(f'--batch_size {batch_size} is larger than the training set '
                        f'({num_images:,} images). Use a batch size of at most {num_images}.')


def check_validation_size(validation_size, num_images):
    """Fails clearly when the held-out images would leave nothing to train on."""
    if not 0 <= validation_size < num_images:
        raise UserError(f'--validation_size {validation_size} must be at least 0 and smaller '
                        f'than the {num_images:,} training images.')


def random_seed():
    """A fresh random seed, for a run started without --seed.

    Runs always have a concrete seed, printed and recorded in the run folder,
    so that any run can be repeated and a resumed run draws the same batches.
    """
    return int.from_bytes(os.urandom(4), 'little') >> 1
