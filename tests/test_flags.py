"""Bad flags and unusable folders: refused before any data is loaded or any run starts.

Each test checks the exit code, the message on stderr (no traceback) and that
nothing was fetched and no run folder was made.
"""

import os
import subprocess
import sys

import pytest
from run_folders import checkpoint_steps, run_folders
from script_runs import PROJECT_DIR, assert_user_error

import restore_model
import run_cnn_model
import run_fc_model
import softmax


@pytest.mark.parametrize('module, args, phrase', [
    (run_fc_model, ['--batch_size', '0'], '--batch_size is 0; it must be greater than 0'),
    (run_fc_model, ['--max_steps', '-3'], '--max_steps is -3; it must be greater than 0'),
    (run_fc_model, ['--hidden1', '0'], '--hidden1 is 0; it must be greater than 0'),
    (run_fc_model, ['--hidden1', '10000000000'], 'it can be at most 100,000'),
    (run_fc_model, ['--learning_rate', '0'], '--learning_rate is 0.0; it must be greater than 0'),
    (run_fc_model, ['--learning_rate', 'nan'], '--learning_rate is nan; it must be a finite'),
    (run_fc_model, ['--learning_rate', '1e-300'], '--learning_rate is 1e-300; that is 0 as'),
    (softmax, ['--learning_rate', '1e-46'], 'use at least 1e-38'),
    # finite as a 64-bit float, infinite as the graph's 32-bit one
    (run_fc_model, ['--learning_rate', '1e39'], '--learning_rate is 1e+39; that is infinite'),
    (run_cnn_model, ['--learning_rate', '4e38'], 'use at most 3.4e38'),
    (softmax, ['--learning_rate', '1e39'], 'infinite as the 32-bit float'),
    (run_fc_model, ['--reg_constant', '-0.5'], '--reg_constant is -0.5; it must be 0 or more'),
    (run_cnn_model, ['--epochs', '0'], '--epochs is 0; it must be greater than 0'),
    (run_cnn_model, ['--dropout_rate', '1'],
     '--dropout_rate is 1.0; it must be at least 0 and below 1'),
    (run_cnn_model, ['--dropout_rate', '-0.1'],
     '--dropout_rate is -0.1; it must be at least 0 and below 1'),
    (softmax, ['--batch_size', '0'], '--batch_size is 0; it must be greater than 0'),
])
def test_bad_flag_values_are_refused_before_loading_data(run, no_data, tmp_path, module, args,
                                                         phrase):
    """Exit 1 naming the flag and the rule; no data fetched, no run folder made."""
    train_dir = str(tmp_path / 'logs')
    extra = [] if module is softmax else ['--train_dir', train_dir]
    code, out, err = run(module, '--data_dir', no_data, *extra, *args)
    assert_user_error(code, err, phrase)
    assert 'Step' not in out
    assert not os.path.exists(os.path.dirname(no_data))  # no attempt to fetch the data
    assert not os.path.exists(train_dir)


def test_unknown_flag_lists_the_known_ones(run, no_data, tmp_path):
    """A typo (--hidden for --hidden1): the message names it and lists the flags."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', no_data, '--train_dir', train_dir,
                       '--hidden', '5')
    assert_user_error(code, err, "'hidden'", 'Known flags', '--hidden1', '--batch_size',
                      '--learning_rate')
    assert not os.path.exists(os.path.dirname(no_data))
    assert not os.path.exists(train_dir)


def test_batch_larger_than_training_set(run, cifar_dir, tmp_path):
    """--batch_size 501 with 500 training images: a clear message, no run folder."""
    train_dir = str(tmp_path / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', cifar_dir, '--train_dir', train_dir,
                       '--batch_size', '501')
    assert_user_error(code, err, '--batch_size 501', '500 images')
    assert run_folders(train_dir) == []


def test_train_dir_that_cannot_be_written(run, no_data, tmp_path):
    """--train_dir below a regular file: exit 1 naming it, before loading any data."""
    blocker = tmp_path / 'afile'
    blocker.write_text('my notes\n')
    train_dir = str(blocker / 'logs')
    code, _, err = run(run_fc_model, '--data_dir', no_data, '--train_dir', train_dir)
    assert_user_error(code, err, f'Cannot write to --train_dir {train_dir}')
    assert not os.path.exists(os.path.dirname(no_data))
    assert blocker.read_text() == 'my notes\n'


@pytest.mark.parametrize('module', [softmax, run_fc_model])
def test_a_run_refused_after_its_flags_leaves_no_folder(run, no_data, tmp_path, module):
    """Good flags, data that cannot be had: the message, and no empty --train_dir made."""
    train_dir = str(tmp_path / 'new' / 'logs')
    code, _, err = run(module, '--data_dir', no_data, '--train_dir', train_dir)
    assert_user_error(code, err, no_data)
    assert not os.path.exists(tmp_path / 'new')


def test_train_dir_with_pattern_characters_is_refused(run, no_data, tmp_path):
    """runs[1] would save checkpoints that TensorFlow's pattern lookup never finds again."""
    train_dir = str(tmp_path / 'runs[1]')
    code, out, err = run(run_fc_model, '--data_dir', no_data, '--train_dir', train_dir)
    assert_user_error(code, err, f'--train_dir {train_dir} contains [ ]', 'could not be found')
    assert not os.path.exists(train_dir)
    code, out, err = run(restore_model, '--train_dir', train_dir)
    assert_user_error(code, err, f'--train_dir {train_dir} contains [ ]')


@pytest.mark.parametrize('flag', ['--train_dir', '--data_dir'])
def test_path_that_is_not_utf8_is_refused_before_anything_is_written(run, no_data, tmp_path,
                                                                      flag):
    """A folder name with the byte 0xff (another encoding) reaches Python as a surrogate,
    which TensorFlow cannot encode: a message, no traceback, no half-made folder."""
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b'/caf\xe9-\xff')
    args = {'--train_dir': str(tmp_path / 'logs'), '--data_dir': no_data, flag: odd}
    code, out, err = run(run_fc_model, *[part for pair in args.items() for part in pair])
    assert_user_error(code, err, f'{flag} {tmp_path}/caf\\xe9-\\xff is not valid UTF-8')
    assert 'Step' not in out
    assert os.listdir(tmp_path) == []  # neither folder, nor the data fetched


def test_a_seven_bit_locale(cifar_dir, tmp_path):
    """LC_ALL=C without Python's UTF-8 coercion: a plain run works; a name with an accent,
    which Python and TensorFlow would write as two different folders, is refused."""
    env = dict(os.environ, LC_ALL='C', LANG='C', PYTHONCOERCECLOCALE='0', PYTHONUTF8='0')

    def run_in_c_locale(train_dir):
        return subprocess.run(
            [sys.executable, 'run_fc_model.py', '--data_dir', cifar_dir, '--train_dir',
             train_dir, '--max_steps', '10', '--batch_size', '50'], cwd=PROJECT_DIR, env=env,
            capture_output=True, timeout=300)

    accented = os.path.join(str(tmp_path), 'caf\u00e9')
    result = run_in_c_locale(accented)
    err = result.stderr.decode('ascii')
    assert_user_error(result.returncode, err, '--train_dir', 'is UTF-8, but Python runs here in '
                      'a locale whose encoding', 'LC_ALL=C.UTF-8')
    assert os.listdir(tmp_path) == []
    plain = str(tmp_path / 'logs')
    result = run_in_c_locale(plain)
    assert result.returncode == 0, result.stderr
    assert b'Test accuracy' in result.stdout
    assert checkpoint_steps(run_folders(plain)[0]) == [0, 10]
