"""airbench94, Keller Jordan's own file, unchanged, on the suite's CIFAR-10 batch files.

    /usr/bin/python3 benchmarks/airbench_reference.py \\
        --reference ../cifar10-airbench/legacy/airbench94.py \\
        --data_dir ../shared/cifar-10-sample --batch_size 128 --epochs 10 --seeds 0,1,2 --suite

Runs the reference's ``main`` once per seed (``benchmarks/airbench_harness.py``
says how, and what is put in its way on a machine without CUDA) and reports
its test accuracy with test-time augmentation and the time of each training
epoch, as the reference measures them. With ``--suite`` it runs
``run_deep_cnn_model.py`` too, after the reference for each seed (reference,
suite, reference, suite: a drift of the machine hits both), and sets the two
side by side. Settings change only through the reference's ``hyp`` dict.

PyTorch is this benchmark's own dependency, not the project's: the reference
runs under an interpreter that has it (``apt-get install python3-torch`` for
/usr/bin/python3, or ``pip install torch``), not the project's environment.
"""

import argparse
import ast
import hashlib
import json
import os
import re
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(BENCH_DIR))
import suite_epochs  # noqa: E402
from machine import machine_info  # noqa: E402

from tutorial_support import cifar10_files  # noqa: E402
from tutorial_support.errors import DataError  # noqa: E402

TABLE_COLUMNS = ('run', 'epoch', 'train_loss', 'train_acc', 'val_acc', 'tta_val_acc',
                 'total_time_seconds')


def parse_table(text):
    """The rows of the reference's printed table, as dicts of its columns.

    A row is ``|  0  |  1  |  0.0123  | ... |``; empty cells are None, numbers
    are numbers, ``eval`` (the epoch of the last row) stays text.
    """
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().split('|')[1:-1]]
        if len(cells) != len(TABLE_COLUMNS):
            continue
        row = {}
        for column, cell in zip(TABLE_COLUMNS, cells, strict=True):
            try:
                row[column] = ast.literal_eval(cell) if cell else None
            except (ValueError, SyntaxError):
                row[column] = cell
        rows.append(row)
    return rows


def epoch_records(table, elapsed_ms):
    """Each epoch's printed values with its training seconds; the other timed parts.

    The reference asks ``elapsed_time`` once for its whitening initialisation,
    once per epoch and once for the final evaluation, in that order.
    """
    epochs = [row for row in table if isinstance(row['epoch'], int)]
    if len(elapsed_ms) != len(epochs) + 2:
        raise RuntimeError(
            f'the reference printed {len(epochs)} epochs but timed {len(elapsed_ms)} intervals '
            '(one per epoch, one before and one after expected): not the legacy/airbench94.py '
            'the benchmark was written for')
    for row, milliseconds in zip(epochs, elapsed_ms[1:-1], strict=True):
        row['train_seconds'] = milliseconds / 1e3
    return epochs, elapsed_ms[0] / 1e3, elapsed_ms[-1] / 1e3


def steady_epoch_seconds(runs):
    """The epoch times of all runs but each run's first epoch (one-time costs: the first
    pass over the images, memory, cuDNN's search), and whether any was left out; with one
    epoch a run, all are kept."""
    later = [s for run in runs for s in run['epoch_seconds'][1:]]
    return (later, True) if later else ([s for run in runs for s in run['epoch_seconds']], False)


def median_epoch_seconds(runs):
    """The median of ``steady_epoch_seconds``, None without epochs."""
    seconds, _ = steady_epoch_seconds(runs)
    return statistics.median(seconds) if seconds else None


def summary(runs, accuracy_key):
    """Mean and standard deviation of the accuracy, median epoch seconds, over runs."""
    accuracies = [run[accuracy_key] for run in runs if run.get(accuracy_key) is not None]
    return {'runs': len(runs), 'median_epoch_seconds': median_epoch_seconds(runs),
            'accuracy_mean': statistics.mean(accuracies) if accuracies else None,
            'accuracy_std': statistics.stdev(accuracies) if len(accuracies) > 1 else None,
            'first_epochs_excluded': steady_epoch_seconds(runs)[1]}


def set_hyp(hyp, assignment):
    """Applies ``opt.lr=5.0`` to the nested dict ``hyp``; the key must exist."""
    key, sep, text = assignment.partition('=')
    *path, last = key.strip().split('.')
    place = hyp
    for part in path:
        place = place.get(part) if isinstance(place, dict) else None
    if not sep or not isinstance(place, dict) or last not in place:
        raise ValueError(f'--set {assignment}: expected KEY=VALUE with KEY one of the '
                         f"reference's hyp entries, such as opt.lr")
    try:
        place[last] = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        place[last] = text.strip()


def fmt(value, spec):  # a number as `spec` says, or '-'
    return '-' if value is None else format(value, spec)


def torch_build_notes(config):
    """The CPU kernels and BLAS of the torch build, from ``torch.__config__.show()``."""
    notes = re.findall(r'CPU capability usage: \w+|BLAS_INFO=\w+|USE_MKLDNN=\w+', config)
    return ', '.join(notes) or None


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--reference', required=True,
                        help='airbench94.py of github.com/KellerJordan/cifar10-airbench '
                             '(legacy/airbench94.py)')
    parser.add_argument('--data_dir', required=True,
                        help='folder with data_batch_1 ... data_batch_5 and test_batch')
    parser.add_argument('--batch_size', type=int, help="hyp['opt']['batch_size']")
    parser.add_argument('--epochs', type=float, help="hyp['opt']['train_epochs']")
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='any other hyp entry, e.g. opt.lr=5.0 (repeatable)')
    parser.add_argument('--seeds', default='0', help='comma-separated, e.g. 0,1,2')
    parser.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)),
                        help="the reference's torch.set_num_threads (default: all cores)")
    parser.add_argument('--warmup', action='store_true',
                        help="first an uncounted main('warmup') run, as the file's __main__")
    parser.add_argument('--suite', action='store_true',
                        help='run run_deep_cnn_model.py after the reference for each seed')
    parser.add_argument('--python', default=str(REPO_ROOT / '.venv' / 'bin' / 'python'),
                        help="the project's Python for --suite")
    parser.add_argument('--suite_args', default='',
                        help='more flags for run_deep_cnn_model.py, e.g. "--block1_width 8"')
    parser.add_argument('--out', default=str(BENCH_DIR / 'results_airbench_reference.json'))
    args = parser.parse_args(argv)
    try:
        args.seeds = [int(s) for s in args.seeds.split(',')]
    except ValueError:
        parser.error(f'--seeds {args.seeds}: expected integers separated by commas')
    if not os.path.isfile(args.reference):
        parser.error(f'--reference {args.reference} is not a file: clone https://github.com/'
                     'KellerJordan/cifar10-airbench and pass legacy/airbench94.py')
    # The suite runs in the repository root: the paths it gets must not depend on this folder
    args.data_dir, args.python = os.path.abspath(args.data_dir), os.path.abspath(args.python)
    if args.suite and not os.path.isfile(args.python):
        parser.error(f'--python {args.python} does not exist: --suite runs the suite with '
                     "the project's Python environment")
    return args


def run_reference_seed(harness, module, seed, work_dir, use_cuda):
    print(f'== reference, seed {seed}', flush=True)
    accuracy, printed, elapsed_ms = harness.run_seed(module, seed, seed, work_dir, use_cuda)
    epochs, whitening_seconds, tta_seconds = epoch_records(parse_table(printed), elapsed_ms)
    return {'seed': seed, 'tta_val_acc': accuracy, 'epochs': epochs,
            'epoch_seconds': [row['train_seconds'] for row in epochs],
            'whitening_seconds': whitening_seconds, 'tta_eval_seconds': tta_seconds}


def run_suite_seed(args, hyp, seed):
    print(f'== suite, seed {seed}', flush=True)
    with tempfile.TemporaryDirectory(prefix='suite_run_') as train_dir:
        command = suite_epochs.suite_command(
            args.python, str(REPO_ROOT / 'run_deep_cnn_model.py'), args.data_dir,
            hyp['opt']['batch_size'], hyp['opt']['train_epochs'], seed, train_dir,
            shlex.split(args.suite_args))
        returncode, lines, wall = suite_epochs.run_printing(
            command, REPO_ROOT, lambda line: print('   ', line, flush=True))
    run = {'seed': seed, 'command': command, 'returncode': returncode, 'wall_seconds': wall,
           **suite_epochs.parse_suite_lines(lines)}
    if returncode != 0 or not run['epoch_seconds'] or run['test_accuracy'] is None:
        run['problem'] = ('exit status {}, {} epoch lines, {} test accuracy'.format(
            returncode, len(run['epoch_seconds']),
            'a' if run['test_accuracy'] is not None else 'no'))
        print('   suite run failed:', run['problem'], flush=True)
    return run


def print_summary(reference_runs, suite_runs, reference, suite):
    print('\nseed  reference tta_val_acc  median epoch s' +
          ('    suite test acc  median epoch s' if suite_runs else ''))
    for i, run in enumerate(reference_runs):
        line = '{:4d}  {:>21}  {:>14}'.format(run['seed'], fmt(run['tta_val_acc'], '.4f'),
                                              fmt(median_epoch_seconds([run]), '.2f'))
        if suite_runs:
            other = suite_runs[i]
            line += '    {:>14}  {:>14}'.format(fmt(other['test_accuracy'], '.4f'),
                                              fmt(median_epoch_seconds([other]), '.2f'))
        print(line)
    print('\n{:<34}{:>10}'.format('', 'reference') + ('{:>10}'.format('suite') if suite else ''))
    for label, key, spec in (('accuracy mean', 'accuracy_mean', '.4f'),
                             ('accuracy std', 'accuracy_std', '.4f'),
                             ('median epoch seconds', 'median_epoch_seconds', '.2f')):
        print(f'{label:<34}{fmt(reference[key], spec):>10}' +
              (f'{fmt(suite[key], spec):>10}' if suite else ''))
    if not reference['first_epochs_excluded']:
        print('(one epoch a run: the median epoch includes the first, with its one-time costs)')
    if suite and suite['median_epoch_seconds'] and reference['median_epoch_seconds']:
        print('epoch time suite / reference: {:.2f}'.format(
            suite['median_epoch_seconds'] / reference['median_epoch_seconds']))


def main(argv=None):
    args = parse_args(argv)
    try:
        import airbench_harness as harness
        import torch
    except ImportError as error:
        sys.exit(f'{error}: the reference needs PyTorch in the Python that runs this '
                 'benchmark (apt-get install python3-torch for /usr/bin/python3, or pip '
                 'install torch), never in the project\'s environment.')
    torch.set_num_threads(args.threads)
    use_cuda = torch.cuda.is_available()
    module, torchvision_version = harness.import_reference(args.reference)
    if args.batch_size is not None:
        module.hyp['opt']['batch_size'] = args.batch_size
    if args.epochs is not None:
        module.hyp['opt']['train_epochs'] = args.epochs
    try:
        for assignment in args.set:
            set_hyp(module.hyp, assignment)
    except ValueError as error:
        sys.exit(str(error))

    reference_runs, suite_runs = [], []
    with tempfile.TemporaryDirectory(prefix='airbench_reference_') as work_dir:
        try:
            num_train, num_test = harness.write_reference_data(
                args.data_dir, work_dir, cifar10_files.read_batch, cifar10_files.to_nhwc)
        except DataError as error:
            sys.exit(str(error))
        device = torch.cuda.get_device_name(0) if use_cuda else 'cpu (float32)'
        print(f'airbench94 reference on {device}, torch {torch.__version__}, '
              f'{torch.get_num_threads()} threads, torchvision {torchvision_version}; '
              f'{num_train} training and {num_test} test images; hyp {module.hyp}', flush=True)
        if args.warmup:
            print('== warm-up run (random labels, not counted)', flush=True)
            harness.run_seed(module, 0, 'warmup', work_dir, use_cuda)
        for seed in args.seeds:
            reference_runs.append(run_reference_seed(harness, module, seed, work_dir, use_cuda))
            if args.suite:
                suite_runs.append(run_suite_seed(args, module.hyp, seed))

    reference = summary(reference_runs, 'tta_val_acc')
    suite = summary(suite_runs, 'test_accuracy') if suite_runs else None
    print_summary(reference_runs, suite_runs, reference, suite)
    reference_bytes = Path(args.reference).read_bytes()
    machine = machine_info(REPO_ROOT)
    machine.pop('tensorflow'), machine.pop('keras')  # this interpreter has none: the suite's below
    if args.suite:
        machine['suite_python'] = args.python
        machine['suite_tensorflow'] = suite_epochs.tensorflow_version(args.python)
    results = {
        'command': [sys.executable, *sys.argv],
        'machine': {**machine, 'torch': torch.__version__,
                    'torch_threads': torch.get_num_threads(), 'device': device,
                    'torchvision': torchvision_version,
                    'torch_build': torch_build_notes(torch.__config__.show())},
        'reference': {'path': os.path.abspath(args.reference),
                      'sha256': hashlib.sha256(reference_bytes).hexdigest(),
                      'bytes': len(reference_bytes)},
        'data': {'data_dir': args.data_dir, 'train_images': num_train, 'test_images': num_test},
        'hyp': module.hyp,
        'reference_runs': reference_runs, 'reference_summary': reference,
        'suite_runs': suite_runs, 'suite_summary': suite,
    }
    if suite:
        results['epoch_time_ratio_suite_over_reference'] = (
            suite['median_epoch_seconds'] / reference['median_epoch_seconds']
            if suite['median_epoch_seconds'] and reference['median_epoch_seconds'] else None)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + '\n')
    print(f'results: {args.out}')
    failed = [run['seed'] for run in suite_runs if 'problem' in run]
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
