"""The copy of the project a module is mutated in: its files, mutmut settings, test order."""

import json
import os
import shutil
import subprocess
import sys

from targets import TARGETS

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
ORDER_PLUGIN_SOURCE = '''"""Runs the tests in the order of the module's list in targets.py."""

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
