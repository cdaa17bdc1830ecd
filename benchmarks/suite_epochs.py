"""Running the suite's part 4 beside the reference, and reading its epoch times.

``run_deep_cnn_model.py`` times each epoch's training itself (from the start
of the epoch's loop to its last step, before its checkpoint and its
evaluation) and prints it at the end of the epoch's line,
``Cost after epoch 3: 1.234567, train accuracy: 0.61, validation accuracy:
0.59 (41.2s)``, and ``Test Accuracy: 0.7912`` at the end. Standard library
only: no TensorFlow here.
"""

import re
import subprocess
import time

EPOCH_LINE = re.compile(r'Cost after epoch (\d+): (\S+), train accuracy: \S+, '
                        r'validation accuracy: \S+ \(([0-9.]+)s\)')
TEST_LINE = re.compile(r'Test Accuracy: (\S+)')


def parse_suite_lines(lines):
    """The epoch times, costs and test accuracy a run printed.

    Returns:
        dict with ``epoch_seconds`` and ``epoch_costs`` (lists, in epoch
        order), ``epochs_printed`` (the k of each epoch line, from 0) and
        ``test_accuracy`` (None when no such line was printed).
    """
    parsed = {'epochs_printed': [], 'epoch_seconds': [], 'epoch_costs': [],
              'test_accuracy': None}
    for line in lines:
        epoch = EPOCH_LINE.fullmatch(line.strip())
        if epoch:
            parsed['epochs_printed'].append(int(epoch.group(1)))
            parsed['epoch_seconds'].append(float(epoch.group(3)))
            parsed['epoch_costs'].append(float(epoch.group(2)))
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


def run_printing(command, cwd, echo):
    """Runs ``command`` to its end, its stdout read line by line.

    Args:
        command: argument list.
        cwd: its working folder.
        echo: called with each line as it arrives.

    Returns:
        (exit status, the lines, wall seconds).
    """
    lines = []
    start = time.perf_counter()
    with subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors='replace') as process:
        for line in process.stdout:
            lines.append(line.rstrip('\n'))
            echo(lines[-1])
    return process.returncode, lines, time.perf_counter() - start
