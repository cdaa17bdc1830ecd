"""Mutation testing of the modules where a silent bug costs most (mutmut 3).

    nice -n 15 python benchmarks/mutation/mutate.py data_helpers run_lock ...
    nice -n 15 python benchmarks/mutation/mutate.py all

For each module named (see TARGETS), mutmut makes small changes ("mutants")
to its functions, one at a time, and runs the tests chosen for the module
(only those of them that call the mutated function). A mutant no test notices
is a line whose behaviour the tests do not check. The results go to
`benchmarks/mutation/results/<module>.json`, and the table of all modules to
`benchmarks/mutation/results.md`.

Each module is mutated in a copy of the project of its own (in --work, away
from the working tree; mutmut writes a `mutants/` folder): the copy gets a
`pyproject.toml` with the module's mutmut settings. A surviving mutant that
cannot change what a user sees is listed, with the reason, in
`equivalent.json`; matched by its function and its changed lines, it is
counted apart from the other survivors.

Not part of CI: a module takes minutes to an hour on 2 cores.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(HERE, 'results')
EQUIVALENT = os.path.join(HERE, 'equivalent.json')
SUMMARY = os.path.join(HERE, 'results.md')

# module: (its file, the tests that check it, cheapest first: a mutant's tests run
# in this order and stop at the first failure)
TB = 'tests/test_tensorboard_files.py::'
SEEDS = 'tests/test_seeds_and_validation.py::'
SIGNALS = 'tests/test_signals.py::'
DEEP = 'tests/test_deep_cnn_model.py::'
TARGETS = {
    'data_helpers': ('data_helpers.py', [
        'tests/test_data_helpers.py', 'tests/test_cifar10_files.py',
        'tests/test_runner_feeds.py']),
    'two_layer_fc': ('two_layer_fc.py', [
        'tests/test_models.py', 'tests/test_runner_feeds.py', 'tests/test_fc_runner.py',
        TB + 'test_fc_summaries_every_100_steps',
        TB + 'test_fc_hparams_and_accuracy_for_tensorboard']),
    'cnn_model': ('cnn_model.py', [
        'tests/test_models.py', 'tests/test_runner_feeds.py', 'tests/test_cnn_runner.py',
        TB + 'test_cnn_accuracy_charts_share_the_step_axis']),
    'softmax': ('softmax.py', [
        'tests/test_runner_feeds.py', 'tests/test_softmax.py', 'tests/test_cifar10_files.py',
        SEEDS + 'test_softmax_same_seed_same_lines',
        SIGNALS + 'test_softmax_ends_on_sigterm_with_a_message']),
    'run_fc_model': ('run_fc_model.py', [
        'tests/test_runner_feeds.py', 'tests/test_fc_runner.py',
        TB + 'test_fc_summaries_every_100_steps',
        TB + 'test_fc_hparams_and_accuracy_for_tensorboard',
        TB + 'test_fc_first_layer_weights_as_pictures',
        TB + 'test_fc_projector_shows_the_hidden_layer_of_the_test_images',
        'tests/test_reports.py',
        SEEDS + 'test_fc_same_seed_same_lines', SEEDS + 'test_fc_validation_size',
        'tests/test_resume.py', 'tests/test_training_failures.py',
        SIGNALS + 'test_signal_inside_sess_run_lets_the_step_finish',
        SIGNALS + 'test_second_signal_during_the_save_lets_it_finish',
        'tests/test_restore.py::test_moved_train_dir_restores_its_own_checkpoint',
        'tests/test_flags.py::test_batch_larger_than_training_set']),
    'run_cnn_model': ('run_cnn_model.py', [
        'tests/test_runner_feeds.py', 'tests/test_cnn_runner.py',
        TB + 'test_cnn_accuracy_charts_share_the_step_axis',
        TB + 'test_cnn_first_layer_filters_as_pictures',
        TB + 'test_cnn_projector_shows_the_features_of_the_test_images',
        SEEDS + 'test_cnn_same_seed_same_lines', SEEDS + 'test_cnn_validation_size',
        'tests/test_resume.py::test_cnn_resumed_mid_epoch_equals_the_uninterrupted_run',
        'tests/test_restore.py::test_restore_detects_the_cnn_and_repeats_its_test_accuracy']),
    'cifar10_files': ('tutorial_support/cifar10_files.py', [
        'tests/test_cifar10_files.py', 'tests/test_data_helpers.py']),
    'run_lock': ('tutorial_support/run_lock.py', [
        'tests/test_resume_refusals.py']),
    'stop_signals': ('tutorial_support/stop_signals.py', [
        SIGNALS + 'test_signal_inside_sess_run_lets_the_step_finish',
        SIGNALS + 'test_second_signal_during_the_save_lets_it_finish',
        SIGNALS + 'test_second_signal_before_the_save_stops_at_once_and_says_what_is_kept',
        SIGNALS + 'test_softmax_ends_on_sigterm_with_a_message',
        SIGNALS + 'test_sighup_ignored_when_started_stays_ignored',
        SIGNALS + 'test_signal_while_the_stopped_run_closes_its_files',
        'tests/test_resume.py::test_interrupted_run_resumes_to_its_own_max_steps',
        SIGNALS + 'test_sigterm_while_the_script_starts',
        SIGNALS + 'test_signal_saves_a_checkpoint_and_says_how_to_resume',
        SIGNALS + 'test_sigterm_stops_the_cnn_with_a_checkpoint',
        SIGNALS + 'test_signal_while_the_data_loads_stops_at_once',
        SIGNALS + 'test_a_script_ending_on_a_signal_ignores_further_ones',
        SIGNALS + 'test_sigterm_while_a_program_imports_a_lesson',
        SIGNALS + 'test_signal_after_tensorflow_loads_and_before_main_stops_the_script',
        SIGNALS + 'test_a_program_stopped_while_tensorflow_loads_ignores_further_signals',
        'tests/test_output_streams.py::test_terminal_closed_sighup_with_both_streams_broken']),
    'deep_cnn_input': ('deep_cnn_input.py', [
        'tests/test_deep_cnn_input.py',
        DEEP + 'test_alternating_flip_shows_each_image_both_ways_in_any_two_epochs',
        DEEP + 'test_translations_reach_every_offset_on_both_axes_about_equally_often']),
    # Only its function learning_rate_schedule (see ONLY_FUNCTIONS)
    'deep_cnn_schedule': ('deep_cnn_model.py', [
        DEEP + 'test_learning_rate_schedule_is_airbench_get_lr',
        DEEP + 'test_learning_rate_schedule_without_warmup_starts_at_the_full_rate',
        DEEP + 'test_each_group_learns_at_airbench_rate_with_coupled_weight_decay']),
    'checkpoints': ('tutorial_support/checkpoints.py', [
        'tests/test_training_failures.py::test_a_stopped_tf2_run_names_its_tf2_checkpoint',
        SIGNALS + 'test_a_stop_whose_checkpoint_is_not_all_on_disk_says_so',
        'tests/test_restore.py', 'tests/test_resume_refusals.py', 'tests/test_resume.py',
        'tests/test_deep_cnn_runner.py::'
        'test_restore_finds_the_deep_cnn_and_repeats_its_test_accuracy']),
    'resume': ('tutorial_support/resume.py', [
        'tests/test_resume_refusals.py', 'tests/test_resume.py',
        SIGNALS + 'test_signal_inside_sess_run_lets_the_step_finish',
        SIGNALS + 'test_second_signal_before_the_save_stops_at_once_and_says_what_is_kept',
        SIGNALS + 'test_signal_saves_a_checkpoint_and_says_how_to_resume']),
}

# Targets of which only some functions are mutated (the module's other functions
# are another target's, or nobody's yet)
ONLY_FUNCTIONS = {'deep_cnn_schedule': ['learning_rate_schedule']}

# mutmut run, where a test of the module's list that mutmut found calling none
# of the module's functions runs for every mutant of the module. mutmut records
# which functions a test's own process calls while the test runs: a test that
# runs a script as a process of its own (signals), or that reads the files of a
# run another test made (a session fixture: the first test using it is charged
# with the calls), would otherwise never run for a mutant.
MUTMUT_RUN = """
import json
import sys

import mutmut.__main__ as mutmut_main
from mutmut.state import state

path = sys.argv.pop(1)
recorded = mutmut_main.collect_or_load_stats


def collect_or_load_stats(runner, **kwargs):
    recorded(runner, **kwargs)
    with open(f'mutants/{path}.meta') as f:
        mutants = json.load(f)['exit_code_by_key']
    functions = {mutant.partition('__mutmut_')[0] for mutant in mutants}
    tests_of = state().tests_by_mangled_function_name
    found = set().union(*(tests_of[function] for function in functions if function in tests_of))
    for function in functions:
        tests_of[function] |= set(state().duration_by_test) - found


mutmut_main.collect_or_load_stats = collect_or_load_stats
sys.argv[0] = 'mutmut'
mutmut_main.cli()
"""

# Exit codes of a mutant's test run, as mutmut records them, and what they mean here
KILLED = {1, 3}
TIMEOUT = {-24, 24, 152, 255, 36}
# A negative code other than these: the tests' process was ended by a signal (a mutant
# that let SIGTERM end it, say), which counts as found
SURVIVED = {0}
NO_TESTS = {5, 33}


def project_files():
    """The files of the working tree that git tracks or would track (not ignored)."""
    listing = subprocess.run(
        ['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
        cwd=PROJECT, capture_output=True, check=True).stdout
    return [name for name in listing.decode().split('\0')
            if name and os.path.isfile(os.path.join(PROJECT, name))]


# A pytest plugin for the copy: mutmut hands a mutant's tests over in no
# particular order; they run in the order of the module's list, so that a
# mutant the quick tests catch costs seconds
ORDER_PLUGIN = 'mutation_test_order'
ORDER_PLUGIN_SOURCE = '''"""Runs the tests in the order of the module's list in mutate.py."""

ORDER = {order!r}


def pytest_collection_modifyitems(items):
    def rank(item):
        return next((index for index, prefix in enumerate(ORDER)
                     if item.nodeid.startswith(prefix)), len(ORDER))
    items.sort(key=rank)
'''


def make_copy(work, module):
    """A fresh copy of the project in work/module, with the module's mutmut settings."""
    copy = os.path.join(work, module)
    shutil.rmtree(copy, ignore_errors=True)
    for name in project_files():
        os.makedirs(os.path.dirname(os.path.join(copy, name)), exist_ok=True)
        shutil.copy2(os.path.join(PROJECT, name), os.path.join(copy, name))
    # The tests find the CIFAR-10 sample beside the project: beside mutants/ here
    shared = os.path.join(os.path.dirname(PROJECT), 'shared')
    if os.path.isdir(shared):
        os.symlink(shared, os.path.join(copy, 'shared'))
    top = sorted(set(name.split('/')[0] for name in project_files()))
    sources = [name for name in top if name.endswith('.py')
               or (name in ('tutorial_support', 'tf2'))]
    also_copy = [name for name in top if name not in sources and name != 'tests']
    write_settings(copy, module, sources, also_copy)
    return copy


def write_settings(copy, module, sources, also_copy):
    """The module's mutmut settings and test order, in its copy."""
    path, tests = TARGETS[module]
    with open(os.path.join(copy, ORDER_PLUGIN + '.py'), 'w') as f:
        f.write(ORDER_PLUGIN_SOURCE.format(order=tests))
    with open(os.path.join(copy, 'pyproject.toml'), 'w') as f:
        f.write('[tool.mutmut]\n'
                f'source_paths = {json.dumps(sources)}\n'
                f'only_mutate = {json.dumps([path])}\n'
                f'also_copy = {json.dumps(also_copy + [ORDER_PLUGIN + ".py"])}\n'
                f'pytest_add_cli_args_test_selection = {json.dumps(tests)}\n'
                f'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "{ORDER_PLUGIN}"]\n'
                # A mutant whose tests take 10 times as long as they took for the
                # real code (+1 s) is stopped as hanging: slower than mutmut's 15, and
                # wide enough that the load of a shared machine does not pass for a hang
                'timeout_multiplier = 10.0\n'
                # Each mutant's process is forked from one that has imported the tests
                # but run nothing: a process forked after TensorFlow ran a session
                # hangs in its next one (mutmut's plain fork runs the clean tests first)
                'process_isolation = "forkserver"\n')


def mutmut(copy, *args, **run_args):
    """Runs the mutmut of this Python environment in a copy of the project."""
    executable = os.path.join(os.path.dirname(sys.executable), 'mutmut')
    return subprocess.run([executable, *args], cwd=copy, **run_args)


def changed_lines(copy, mutant):
    """The lines a mutant removes and adds, each as '-text' or '+text' (stripped)."""
    shown = mutmut(copy, 'show', mutant, capture_output=True, text=True, check=True).stdout
    return [line[0] + line[1:].strip() for line in shown.splitlines()
            if line[:1] in '-+' and not line.startswith(('---', '+++'))]


def function_of(mutant):
    """'check_not_in_use' of 'tutorial_support.run_lock.x_check_not_in_use__mutmut_5'."""
    return re.sub(r'__mutmut_\d+$', '', mutant.rsplit('.', 1)[1]).removeprefix('x_')


def collect(module, copy, seconds, commit):
    """The module's results from mutmut's records in the copy: a dict for its JSON file.

    commit: the working tree's commit when the copy was made (see `git_commit`).
    """
    path, tests = TARGETS[module]
    with open(os.path.join(copy, 'mutants', path + '.meta')) as f:
        exit_codes = json.load(f)['exit_code_by_key']
    if module in ONLY_FUNCTIONS:
        exit_codes = {mutant: code for mutant, code in exit_codes.items()
                      if function_of(mutant) in ONLY_FUNCTIONS[module]}
    with open(EQUIVALENT) as f:
        equivalents = json.load(f).get(path, [])
    counts = dict(mutants=len(exit_codes), killed=0, timeout=0, survived_equivalent=0,
                  survived_other=0, not_run=0)
    equivalent, other = [], []
    for mutant, code in sorted(exit_codes.items(), key=lambda item: natural_key(item[0])):
        if code in KILLED or (code is not None and code < 0 and code not in TIMEOUT):
            counts['killed'] += 1
            continue
        if code in TIMEOUT:
            counts['timeout'] += 1
            continue
        if code is None:
            counts['not_run'] += 1
            continue
        entry = dict(function=function_of(mutant), diff=changed_lines(copy, mutant))
        if code not in SURVIVED:
            entry['status'] = 'no tests' if code in NO_TESTS else f'exit code {code}'
        reasons = [known['reason'] for known in equivalents
                   if known['function'] == entry['function'] and known['diff'] == entry['diff']]
        if reasons and code in SURVIVED:
            counts['survived_equivalent'] += 1
            equivalent.append({**entry, 'reason': reasons[0]})
        else:
            counts['survived_other'] += 1
            other.append(entry)
    detected = counts['killed'] + counts['timeout']
    non_equivalent = counts['mutants'] - counts['survived_equivalent'] - counts['not_run']
    only = {'functions': ONLY_FUNCTIONS[module]} if module in ONLY_FUNCTIONS else {}
    return dict(module=path, **only, tests=tests, **counts,
                kill_rate=round(detected / non_equivalent, 4) if non_equivalent else None,
                command=f'nice -n {os.nice(0)} python benchmarks/mutation/mutate.py {module}',
                commit=commit, date=datetime.date.today().isoformat(),
                minutes=round(seconds / 60, 1), mutmut=mutmut_version(),
                survivors_equivalent=equivalent, survivors_other=other)


def natural_key(name):
    """Orders mutant names by their function, then by number (2 before 10)."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


def git_commit():
    """The commit of the working tree, and whether it has uncommitted changes.

    The results this script writes do not count as changes: a run of several
    modules writes them between one module's copy and the next.
    """
    result = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=PROJECT,
                            capture_output=True, text=True)
    dirty = subprocess.run(['git', 'status', '--porcelain', '--', '.',
                            f':!{os.path.relpath(RESULTS, PROJECT)}',
                            f':!{os.path.relpath(SUMMARY, PROJECT)}'], cwd=PROJECT,
                           capture_output=True, text=True).stdout.strip()
    return result.stdout.strip() + (' (with uncommitted changes)' if dirty else '')


def mutmut_version():
    from importlib.metadata import version
    return version('mutmut')


def target_name(module):
    """'`deep_cnn_model.py` (`learning_rate_schedule` only)', '`run_lock.py`': for results.md."""
    return f'`{TARGETS[module][0]}`' + ''.join(f' (`{function}` only)'
                                              for function in ONLY_FUNCTIONS.get(module, []))


def write_summary():
    """results.md: one row per module from results/*.json, then every survivor."""
    rows, sections, not_run = [], [], []
    for module in TARGETS:
        path = os.path.join(RESULTS, module + '.json')
        if not os.path.isfile(path):
            not_run.append(module)
            continue
        with open(path) as f:
            result = json.load(f)
        rate = '-' if result['kill_rate'] is None else f"{100 * result['kill_rate']:.1f}%"
        name = target_name(module)
        rows.append(f"| {name} | {result['mutants']} | {result['killed']} | "
                    f"{result['timeout']} | {result['survived_equivalent']} | "
                    f"{result['survived_other']} | {rate} | {result['minutes']} | "
                    f"{result['commit']}, {result['date']} |")
        lines = [f'### {name}', '',
                 'Tests: ' + ', '.join(f'`{test}`' for test in result['tests']) + '.', '']
        for title, key in (('Equivalent (cannot change behaviour)', 'survivors_equivalent'),
                           ('Other survivors', 'survivors_other')):
            if result[key]:
                lines += [f'{title}:', '']
                for entry in result[key]:
                    note = entry.get('reason') or entry.get('status', 'survived')
                    lines.append(f"- `{entry['function']}`: {note}")
                    lines += [f'  `{line}`' if len(line) < 160 else f'  `{line[:157]}...`'
                              for line in entry['diff']]
                lines.append('')
        sections.append('\n'.join(lines))
    with open(SUMMARY, 'w') as f:
        f.write('# Mutation testing: results\n\n'
                'Written by `benchmarks/mutation/mutate.py` (see README.md there). Killed: '
                'a test failed; timed out: the tests ran 10 times as long as for the real '
                'code, and were stopped (counted as found). The kill rate is (killed + timed '
                'out) / (mutants - equivalent).\n\n'
                '| module | mutants | killed | timed out | survived, equivalent | '
                'survived, other | kill rate | minutes | commit, date |\n'
                '|---|---|---|---|---|---|---|---|---|\n' + '\n'.join(rows) + '\n\n'
                + (f"Not run yet: {', '.join(target_name(module) for module in not_run)} "
                   '(see README.md). They run with `nice -n 10 python '
                   f"benchmarks/mutation/mutate.py {' '.join(not_run)}`.\n\n"
                   if not_run else '')
                + '## Surviving mutants\n\n' + '\n'.join(sections))


def rerun_survivors(module, work, max_children):
    """Runs again, in the module's copy from its last run, the mutants that survived it
    and are not listed as equivalent (and any it did not reach, if it was stopped), against
    the tests of the working tree now.

    For tests added after a long run: the other mutants keep the results of that run
    (its copy's source is unchanged). Returns the module's results, or None.
    """
    copy = os.path.join(work, module)
    path = TARGETS[module][0]
    meta_path = os.path.join(copy, 'mutants', path + '.meta')
    with open(os.path.join(RESULTS, module + '.json')) as f:
        first = json.load(f)
    with open(meta_path) as f:
        before = json.load(f)['exit_code_by_key']
    listed = {(entry['function'], tuple(entry['diff']))
              for entry in first['survivors_equivalent']}
    names = [mutant for mutant, code in before.items() if code is None or (
        code in SURVIVED
        and (function_of(mutant), tuple(changed_lines(copy, mutant))) not in listed)]
    if not names:
        print(f'== {module}: no survivors to run again')
        return None
    shutil.copytree(os.path.join(PROJECT, 'tests'), os.path.join(copy, 'tests'),
                    dirs_exist_ok=True)
    with open(os.path.join(copy, 'pyproject.toml')) as f:
        settings = f.read()
    sources, also_copy = (json.loads(re.search(f'^{name} = (.*)$', settings, re.M).group(1))
                          for name in ('source_paths', 'also_copy'))
    write_settings(copy, module, sources,
                   [name for name in also_copy if name != ORDER_PLUGIN + '.py'])
    start, commit = time.time(), git_commit()
    print(f'== {module}: running {len(names)} survivors (or mutants not reached) again in '
          f'{copy}', flush=True)
    run = subprocess.run([sys.executable, '-c', MUTMUT_RUN, path, 'run', '--max-children',
                          str(max_children), *names], cwd=copy)
    if run.returncode != 0:
        return None
    with open(meta_path) as f:
        meta = json.load(f)
    for mutant, code in before.items():  # the results of the first run, where not run again
        if mutant not in names and meta['exit_code_by_key'].get(mutant) is None:
            meta['exit_code_by_key'][mutant] = code
    with open(meta_path, 'w') as f:
        json.dump(meta, f)
    result = collect(module, copy, first['minutes'] * 60 + time.time() - start,
                     f"{first['commit']}; its survivors (and mutants not reached) run again "
                     f'at {commit}')
    result['command'] = f"{first['command']}, then the same with --survivors"
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('modules', nargs='+', help=f"'all' or some of: {', '.join(TARGETS)}")
    parser.add_argument('--work', default=os.path.join(tempfile.gettempdir(),
                                                       'tutorial-mutation'),
                        help='where the copies of the project are made (default: %(default)s)')
    parser.add_argument('--max-children', type=int, default=1,
                        help='mutants tested at once (default 1: the machine is shared)')
    parser.add_argument('--survivors', action='store_true',
                        help="run again only the last run's survivors that are not listed as "
                             'equivalent, in its copy, against the tests as they are now')
    args = parser.parse_args()
    modules = list(TARGETS) if args.modules == ['all'] else args.modules
    unknown = [module for module in modules if module not in TARGETS]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    os.makedirs(RESULTS, exist_ok=True)
    for module in modules:
        if args.survivors:
            result = rerun_survivors(module, args.work, args.max_children)
            if result is not None:
                with open(os.path.join(RESULTS, module + '.json'), 'w') as f:
                    json.dump(result, f, indent=1)
                    f.write('\n')
                write_summary()
                print(f"== {module}: kill rate {result['kill_rate']}", flush=True)
            continue
        start = time.time()
        commit = git_commit()  # of what is copied
        copy = make_copy(args.work, module)
        print(f'== {module}: mutating {TARGETS[module][0]} in {copy}', flush=True)
        # mutmut takes mutant names (fnmatch patterns) to run only those; a pattern
        # also picks the tests of the functions it matches
        dotted = TARGETS[module][0].removesuffix('.py').replace('/', '.')
        only = [f'{dotted}.x_{function}*' for function in ONLY_FUNCTIONS.get(module, [])]
        run = subprocess.run(
            [sys.executable, '-c', MUTMUT_RUN, TARGETS[module][0], 'run', '--max-children',
             str(args.max_children), *only], cwd=copy)
        if run.returncode != 0:
            print(f'mutmut failed on {module} (exit {run.returncode}); see above.')
            return 1
        result = collect(module, copy, time.time() - start, commit)
        with open(os.path.join(RESULTS, module + '.json'), 'w') as f:
            json.dump(result, f, indent=1)
            f.write('\n')
        write_summary()
        print(f"== {module}: {result['mutants']} mutants, "
              f"{result['killed'] + result['timeout']} killed, "
              f"{result['survived_equivalent']} equivalent, {result['survived_other']} "
              f"other survivors: kill rate {result['kill_rate']}", flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
