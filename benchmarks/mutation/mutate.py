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

from mutant_copy import MUTMUT_RUN, ORDER_PLUGIN, PROJECT, make_copy, mutmut, write_settings
from results_summary import RESULTS, SUMMARY, write_summary
from targets import ONLY_FUNCTIONS, TARGETS

HERE = os.path.dirname(os.path.abspath(__file__))
EQUIVALENT = os.path.join(HERE, 'equivalent.json')

# Exit codes of a mutant's test run, as mutmut records them, and what they mean here
KILLED = {1, 3}
TIMEOUT = {-24, 24, 152, 255, 36}
# A negative code other than these: the tests' process was ended by a signal (a mutant
# that let SIGTERM end it, say), which counts as found
SURVIVED = {0}
NO_TESTS = {5, 33}


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
