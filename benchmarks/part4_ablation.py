"""Part 4's ablation: airbench94's recipe with one ingredient taken out at a time, over seeds.

    python benchmarks/part4_ablation.py --data_dir ../shared/cifar-10-sample \
        [--seeds 0,1,2] [--rows all|name,name] [--batch_size 128 --epochs 10]

Each row runs `run_deep_cnn_model.py` as a learner does, once per seed, with the
flags of the row added to the common ones; the learning rate is the recipe's
(11.5) in every row: a row measures the ingredient at the recipe's rate, not
re-tuned. The test-time views are not trained: their rows re-test the whole
recipe's runs with `restore_model.py --tta_level 0` and `1`. Results go to a
JSON file (`--out`, default benchmarks/results_part4_ablation.json) after every
run, and a run already there is not run again: an interrupted ablation is
continued by the same command. At the end it prints a Markdown table of each
row's mean and standard deviation.

Hours on a 2-core CPU (each run of the sample, batch 128, 10 epochs, takes
minutes); run nothing else meanwhile if the times matter (they are printed too).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each row: its name, what it changes, and the flags that change it
ROWS = [
    ('recipe', 'airbench94 as it is', []),
    ('no_whitening', 'a trained first convolution instead of the whitening', ['--nowhiten']),
    ('no_lookahead', 'no Lookahead', ['--nolookahead']),
    ('random_flip', 'a fresh random flip every epoch, not alternating', ['--flip', 'random']),
    ('no_dirac', 'random convolutions, no identities at the start', ['--nodirac']),
    ('no_label_smoothing', 'one-hot targets', ['--label_smoothing', '0']),
    ('relu', 'ReLU instead of GELU', ['--activation', 'relu']),
    ('no_output_scale', 'logits not scaled by 1/9', ['--scaling_factor', '1']),
    ('no_bias_scaler', "batch norm's biases at the common rate", ['--bias_scaler', '1']),
    ('no_translate', 'no random shifts', ['--translate', '0']),
    ('no_warmup', 'the learning rate at its top from the first step', ['--warmup', '0']),
    ('trainable_bn_scale', 'batch norm learns a scale', ['--trainable_bn_scale']),
]
# Rows measured on the recipe's runs, by testing them with fewer views
TTA_ROWS = [('tta_level_1', 'test-time views: the image and its mirror', '1'),
            ('tta_level_0', 'test-time views: the image alone', '0')]


def run(command):
    """Runs a command in the project folder; returns its stdout (exits on failure)."""
    result = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f'Failed ({result.returncode}): {" ".join(command)}\n{result.stderr[-2000:]}')
    return result.stdout


def value_after(text, prefix):
    """The number after `prefix` on its line."""
    return float(re.search('^' + re.escape(prefix) + r'\s*(\S+)', text, re.MULTILINE).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data_dir', required=True)
    parser.add_argument('--seeds', default='0,1,2')
    parser.add_argument('--rows', default='all')
    parser.add_argument('--batch_size', default='128')
    parser.add_argument('--epochs', default='10')
    parser.add_argument('--python', default=sys.executable)
    parser.add_argument('--out', default=os.path.join(PROJECT_DIR, 'benchmarks',
                                                      'results_part4_ablation.json'))
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(',')]
    names = [name for name, _, _ in ROWS + TTA_ROWS]
    chosen = names if args.rows == 'all' else args.rows.split(',')
    results = {}
    if os.path.exists(args.out):
        with open(args.out) as results_file:
            results = json.load(results_file)
    settings = {'data_dir': os.path.abspath(args.data_dir), 'batch_size': args.batch_size,
                'epochs': args.epochs, 'learning_rate': 11.5}
    results.setdefault('settings', settings)
    runs = results.setdefault('runs', {})
    train_root = os.path.join(tempfile.gettempdir(), 'part4_ablation_runs')
    def save():
        with open(args.out, 'w') as results_file:
            json.dump(results, results_file, indent=1)

    for name, what, row_flags in ROWS:
        if name not in chosen and not (name == 'recipe' and set(chosen) & {'tta_level_0',
                                                                          'tta_level_1'}):
            continue
        for seed in seeds:
            key = f'{name}/seed={seed}'
            if key in runs:
                continue
            train_dir = os.path.join(train_root, name, str(seed))
            out = run([args.python, 'run_deep_cnn_model.py', '--data_dir', args.data_dir,
                       '--train_dir', train_dir, '--batch_size', args.batch_size,
                       '--epochs', args.epochs, '--seed', str(seed), *row_flags])
            epoch_seconds = [float(s) for s in re.findall(r'\((\d+\.\d)s\)$', out, re.MULTILINE)]
            runs[key] = {'row': name, 'what': what, 'flags': row_flags, 'seed': seed,
                         'test_accuracy': value_after(out, 'Test Accuracy:'),
                         'epoch_seconds': epoch_seconds, 'train_dir': train_dir}
            print(f'{key}: {runs[key]["test_accuracy"]:.4f}', flush=True)
            save()
        if name != 'recipe':
            continue
        # The test-time views are not trained: the recipe's runs, tested with fewer
        for tta_name, tta_what, level in TTA_ROWS:
            for seed in seeds:
                key = f'{tta_name}/seed={seed}'
                if tta_name not in chosen or key in runs:
                    continue
                out = run([args.python, 'restore_model.py', '--train_dir',
                           runs[f'recipe/seed={seed}']['train_dir'], '--data_dir',
                           args.data_dir, '--tta_level', level])
                runs[key] = {'row': tta_name, 'what': tta_what, 'flags': ['--tta_level', level],
                             'seed': seed, 'test_accuracy': value_after(out, 'Test accuracy')}
                print(f'{key}: {runs[key]["test_accuracy"]:.4f}', flush=True)
                save()
    print('\n| row | what changes | test accuracy, mean ± std (n) | vs recipe |')
    print('|---|---|---|---|')
    recipe = [r['test_accuracy'] for r in runs.values() if r['row'] == 'recipe']
    for name, what, *_ in ROWS + TTA_ROWS:
        accuracies = [r['test_accuracy'] for r in runs.values() if r['row'] == name]
        if not accuracies:
            continue
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else float('nan')
        change = statistics.mean(accuracies) - statistics.mean(recipe) if recipe else float('nan')
        print(f'| {name} | {what} | {statistics.mean(accuracies):.4f} ± {spread:.4f} '
              f'({len(accuracies)}) | {change:+.4f} |')


if __name__ == '__main__':
    main()
