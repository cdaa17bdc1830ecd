"""Running the suite's part 4 beside the reference, and reading its epoch times.

``run_deep_cnn_model.py`` times each epoch itself and prints
``Epoch k/E: 41.2s, cost 1.2345`` when the epoch's progress bar closes (the
seconds from the start of the epoch's loop to its last step, before its
checkpoint), and ``Test Accuracy: 0.7912`` at the end. The progress bar only
draws on a terminal (its stderr, and not under ``CI``), so the script runs
with a pseudo-terminal as its stdout and stderr, and the lines are read as a
terminal would show them: the text after a line's last carriage return, the
escape sequences removed. Standard library only: no TensorFlow here.
"""

import codecs
import os
import pty
import re
import subprocess
import time

EPOCH_LINE = re.compile(r'Epoch (\d+)/(\S+): ([0-9.]+)s, cost (\S+)')
TEST_LINE = re.compile(r'Test Accuracy: (\S+)')
ESCAPE_SEQUENCE = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')


def shown_line(raw):
    """What a terminal leaves on screen of one line of output.

    A pseudo-terminal ends lines with ``\\r\\n``; a progress bar redraws its
    line after ``\\r`` and clears it with ``\\x1b[K``.
    """
    text = raw.rstrip('\r').rsplit('\r', 1)[-1]
    return ESCAPE_SEQUENCE.sub('', text)


def parse_suite_lines(lines):
    """The epoch times, costs and test accuracy a run printed.

    Returns:
        dict with ``epoch_seconds`` and ``epoch_costs`` (lists, in epoch
        order), ``epochs_printed`` (the k of each epoch line) and
        ``test_accuracy`` (None when no such line was printed).
    """
    parsed = {'epochs_printed': [], 'epoch_seconds': [], 'epoch_costs': [],
              'test_accuracy': None}
    for line in lines:
        epoch = EPOCH_LINE.fullmatch(line.strip())
        if epoch:
            parsed['epochs_printed'].append(int(epoch.group(1)))
            parsed['epoch_seconds'].append(float(epoch.group(3)))
            parsed['epoch_costs'].append(float(epoch.group(4)))
        test = TEST_LINE.fullmatch(line.strip())
        if test:
            parsed['test_accuracy'] = float(test.group(1))
    return parsed


def suite_command(python, script, data_dir, batch_size, epochs, seed, train_dir, extra_args):
    """The runner's command line for one seed (epochs written as ``10``, not ``10.0``)."""
    return [python, script, '--data_dir', data_dir, '--batch_size', str(batch_size),
            '--epochs', f'{epochs:g}', '--seed', str(seed), '--train_dir', train_dir,
            *extra_args]


def tensorflow_version(python):
    """The TensorFlow version of the suite's interpreter, read from its package metadata."""
    code = 'from importlib import metadata; print(metadata.version("tensorflow"))'
    try:
        return subprocess.run([python, '-c', code], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run_on_terminal(command, cwd, echo):
    """Runs ``command`` with a pseudo-terminal as stdout and stderr, to its end.

    Args:
        command: argument list.
        cwd: its working folder.
        echo: called with each shown line as it arrives.

    Returns:
        (exit status, the shown lines, wall seconds).
    """
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env.pop('CI', None)  # the progress bar, and its epoch line, stay silent under CI
    lines = []
    decoder = codecs.getincrementaldecoder('utf-8')('replace')
    pending = ''
    master, slave = pty.openpty()
    start = time.perf_counter()
    try:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=slave, stderr=slave)
    finally:
        os.close(slave)
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal has closed it
                data = b''
            if not data:
                break
            pending += decoder.decode(data)
            *complete, pending = pending.split('\n')
            for raw in complete:
                lines.append(shown_line(raw))
                echo(lines[-1])
        if pending:
            lines.append(shown_line(pending))
            echo(lines[-1])
        returncode = process.wait()
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    return returncode, lines, time.perf_counter() - start
