"""The notebooks as files: each .ipynb is its .py source, holds no lesson code, one address.

(Executing them is tests/test_notebooks.py.)
"""

import ast
import glob
import os
import re

import nbformat
import pytest
from notebook_kernel import NOTEBOOK_DIR, read_source
from script_runs import PROJECT_DIR
from tf2_worker import tf2_script

import run_cnn_model
import run_deep_cnn_model
import run_fc_model
import softmax
from tutorial_support import notebook_runs

# Each notebook, and the script whose flags its settings cell sets; the TF2
# notebook sets a dict of flags for each twin (its scripts' FLAGS are read from
# modules loaded under names of their own, tf2_softmax, by tests/tf2_worker.py).
RUNNERS = {'part1_softmax': softmax, 'part2_two_layer_fc': run_fc_model,
           'part3_cnn': run_cnn_model, 'part4_airbench94': run_deep_cnn_model,
           'tf2_twins': {'SOFTMAX_FLAGS': 'tf2/softmax.py', 'FC_FLAGS': 'tf2/run_fc_model.py',
                         'CNN_FLAGS': 'tf2/run_cnn_model.py'}}
# Settings that are not the script's defaults: where things are, the seed
# (the scripts draw a random one), and the photos to classify.
OWN_SETTINGS = {'DATA_DIR', 'TRAIN_DIR', 'SEED', 'PHOTOS'}
REGENERATE = 'jupytext --update --to ipynb notebooks/*.py'
NOTEBOOK_MODULES = ('notebook_runs', 'notebook_views')  # tutorial_support's, for notebooks only
COLAB_LINK = re.compile(r'https://colab\.research\.google\.com/github/[^)\s"\'\\]+')


def notebook_names():
    return sorted(os.path.basename(path)[:-3]
                  for path in glob.glob(os.path.join(NOTEBOOK_DIR, '*.py')))


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == 'code']


def test_every_notebook_is_listed_here_with_its_ipynb():
    """A notebook added without its .ipynb, or without a row in RUNNERS, fails here."""
    sources = notebook_names()
    generated = sorted(os.path.basename(path)[:-6]
                       for path in glob.glob(os.path.join(NOTEBOOK_DIR, '*.ipynb')))
    assert sources == generated, f'run: {REGENERATE}'
    assert sources == sorted(RUNNERS)


@pytest.mark.parametrize('name', notebook_names())
def test_ipynb_is_its_py_source_without_outputs(name):
    """The committed .ipynb has the cells and metadata of the .py; nothing executed in it."""
    source = read_source(name)
    committed = nbformat.read(os.path.join(NOTEBOOK_DIR, name + '.ipynb'), as_version=4)
    nbformat.validate(committed)

    def cells(notebook):
        return [(cell.cell_type, cell.source, cell.metadata.get('tags', []))
                for cell in notebook.cells]
    assert cells(committed) == cells(source), f'{name}.ipynb differs from {name}.py: run ' \
        f'{REGENERATE}'
    for key in ('accelerator', 'colab', 'kernelspec'):
        assert committed.metadata.get(key) == source.metadata.get(key), key
    assert committed.metadata['accelerator'] == 'GPU'  # Colab opens it on a GPU runtime
    assert committed.metadata['kernelspec']['name'] == 'python3'
    for cell in code_cells(committed):
        assert cell.outputs == [] and cell.execution_count is None, cell.source


def test_the_setup_cell_is_the_same_first_code_cell_everywhere():
    """It runs before any lesson import, and its address is the package's one address."""
    setup_cells = {name: code_cells(read_source(name))[0].source for name in notebook_names()}
    (setup,) = set(setup_cells.values())
    assert 'notebook_runs.setup()' in setup
    (address,) = re.findall(r"^REPOSITORY_URL = '([^']*)'", setup, re.MULTILINE)
    assert address == notebook_runs.REPOSITORY_URL


def test_every_colab_link_opens_a_notebook_of_this_repository():
    """Colab links in the notebooks, the README and docs/ name the one address and a notebook."""
    owner_and_name = notebook_runs.REPOSITORY_URL.removeprefix('https://github.com/')
    files = (glob.glob(os.path.join(NOTEBOOK_DIR, '*.py'))
             + glob.glob(os.path.join(NOTEBOOK_DIR, '*.ipynb'))
             + glob.glob(os.path.join(PROJECT_DIR, 'docs', '*.md'))
             + [os.path.join(PROJECT_DIR, 'README.md')])
    links = {}
    for path in files:
        with open(path, encoding='utf-8') as f:
            for link in COLAB_LINK.findall(f.read()):
                links.setdefault(link, path)
    wanted = {notebook_runs.COLAB_URL.format(owner_and_name, name + '.ipynb')
              for name in notebook_names()}
    for link, path in links.items():
        assert link in wanted, f'{path}: {link}'
    for name in notebook_names():  # each notebook opens itself in Colab
        with open(os.path.join(NOTEBOOK_DIR, name + '.py'), encoding='utf-8') as f:
            assert notebook_runs.COLAB_URL.format(owner_and_name, name + '.ipynb') in f.read()


def lesson_lines():
    """The code lines of the lesson files (top level and tf2/), stripped."""
    lines = set()
    for path in glob.glob(os.path.join(PROJECT_DIR, '*.py')) + glob.glob(
            os.path.join(PROJECT_DIR, 'tf2', '*.py')):
        with open(path, encoding='utf-8') as f:
            lines.update(line.strip() for line in f)
    return lines


@pytest.mark.parametrize('name', notebook_names())
def test_no_lesson_code_is_copied(name):
    """No line of a lesson file is in a code cell, and no cell builds a graph or a model."""
    lesson = lesson_lines()
    for cell in code_cells(read_source(name)):
        for line in cell.source.splitlines():
            stripped = line.strip()
            if len(stripped) >= 25 and not stripped.startswith(('#', 'import ', 'from ')):
                assert stripped not in lesson, f'{name}: copied from a lesson file: {line}'
        assert not re.search(r'\btf\.|tensorflow|sess\.run', code_of(cell)), cell.source


def code_of(cell):
    """A code cell's Python, without its magics, comments and strings (a row named
    '`sess.run` of the train op' builds nothing)."""
    tree = ast.parse('\n'.join(line for line in cell.source.splitlines()
                               if not line.lstrip().startswith('%')))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ''
    return ast.unparse(tree)


def imported_modules(notebook):
    """The names of the modules a notebook's code cells import."""
    found = set()
    for cell in code_cells(notebook):
        for node in ast.walk(ast.parse(code_of(cell))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                found.add(node.module)
    return found


@pytest.mark.parametrize('name', notebook_names())
def test_one_paradigm_per_notebook(name):
    """A TF1 notebook imports no TF2 twin (the import of a TF1 script turns eager mode off)."""
    imported = imported_modules(read_source(name))
    twins = {module for module in imported if module.startswith('tf2')}
    tf1_scripts = {module for module in imported
                   if os.path.isfile(os.path.join(PROJECT_DIR, module + '.py'))} - {
        'data_helpers', 'two_layer_fc', 'cnn_model'}  # models and data: no eager switch
    assert not (twins and tf1_scripts), (twins, tf1_scripts)


@pytest.mark.parametrize('name', notebook_names())
def test_settings_are_the_scripts_defaults(name):
    """The settings cell holds the part's usual settings: its scripts' flag defaults."""
    (parameters,) = [cell for cell in read_source(name).cells
                     if 'parameters' in cell.metadata.get('tags', [])]
    settings = {node.targets[0].id: setting_value(node.value)
                for node in ast.parse(parameters.source).body}
    assert OWN_SETTINGS & set(settings) >= {'DATA_DIR', 'TRAIN_DIR', 'SEED'}
    runner = RUNNERS[name]
    if isinstance(runner, dict):  # a dict of flags for each TF2 twin
        assert set(settings) - OWN_SETTINGS == set(runner)
        for setting, script in runner.items():
            flags = tf2_script(script).FLAGS
            for flag, value in settings[setting].items():
                assert flags[flag].default == value, (setting, flag)
    else:
        for setting, value in settings.items():
            if setting not in OWN_SETTINGS:
                assert runner.FLAGS[setting.lower()].default == value, setting


def setting_value(node):
    """The value a settings cell's line gives: a literal, or dict(name=literal, ...)."""
    if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'dict':
        return {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
    return ast.literal_eval(node)


def test_only_the_notebooks_import_the_notebook_modules():
    """The notebooks' own modules: no lesson file, and no other module of the package, uses them."""
    own = {f'tutorial_support.{module}' for module in NOTEBOOK_MODULES}
    paths = [path for folder in ('', 'tf2', 'tutorial_support')
             for path in glob.glob(os.path.join(PROJECT_DIR, folder, '*.py'))
             if os.path.relpath(path, PROJECT_DIR)[:-3].replace(os.sep, '.') not in own]
    for path in paths:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [f'{node.module}.{alias.name}' for alias in node.names]
                     if isinstance(node, ast.ImportFrom) else [])
            assert not own & set(names), path
