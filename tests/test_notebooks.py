"""Every notebook, run end to end in a real Jupyter kernel on small data, as a learner runs it.

Each notebook gets a kernel of its own (one kind of TensorFlow per kernel),
started in notebooks/ as Jupyter starts it, with its settings pointed at the
test's data and folders; what it shows is read from its outputs. The scripts
it ran are run again with the same flags: the TF1 ones here, the TF2 twins in
the eager worker (tests/tf2_worker.py).
"""

import ast
import copy
import glob
import os
import re
import shlex

import pytest
from notebook_kernel import execute, images, outputs, printed, read_source, with_settings
from PIL import Image
from script_runs import PROJECT_DIR, finished_run, run_tf2_jobs

import run_cnn_model
import run_deep_cnn_model
import run_fc_model
import softmax

# The settings of each notebook's test run (on the tests' small data set), and
# the scripts it runs whose test accuracy it prints.
SMALL_RUNS = {
    'part1_softmax': (['softmax.py'], dict(MAX_STEPS=300)),
    'part2_two_layer_fc': (['run_fc_model.py'], dict(MAX_STEPS=200, BATCH_SIZE=50)),
    'part3_cnn': (['run_cnn_model.py'], dict(EPOCHS=2, BATCH_SIZE=50)),
    'part4_airbench94': (['run_deep_cnn_model.py'], dict(
        EPOCHS=2, BATCH_SIZE=50, BLOCK1_WIDTH=8, BLOCK2_WIDTH=8, BLOCK3_WIDTH=8)),
    'tf2_twins': (['tf2/softmax.py', 'tf2/run_fc_model.py', 'tf2/run_cnn_model.py'], dict(
        SOFTMAX_FLAGS=dict(max_steps=300), FC_FLAGS=dict(max_steps=200, batch_size=50),
        CNN_FLAGS=dict(epochs=2, batch_size=50))),
}
TF1_SCRIPTS = {module.__name__ + '.py': module
               for module in (softmax, run_fc_model, run_cnn_model, run_deep_cnn_model)}
PHOTOS_CLASSIFIED = ('part2_two_layer_fc', 'part3_cnn', 'part4_airbench94')
# The images each notebook draws: part 1, the training images, the curves and the class
# templates; parts 2 and 3, the first layer, the confusion matrix, the guesses and the
# photo too; part 4, the training images, one image's augmented views, the whitening
# filters, the patches' covariance, the learning rate, the curves, the run's whitening
# filters, confusion matrix and guesses, and the photo; the TF2 twins, the training
# images, each twin's curves, and the class templates, first layer's weights, the CNN's
# filters and confusion matrix.
IMAGES_SHOWN = {'part1_softmax': 3, 'part2_two_layer_fc': 6, 'part3_cnn': 6,
                'part4_airbench94': 10, 'tf2_twins': 8}
TEST_ACCURACY = re.compile(r'^Test accuracy:? ([0-9.]+)$', re.IGNORECASE | re.MULTILINE)


@pytest.fixture(scope='module')
def photo(tmp_path_factory):
    """A photo of one's own: a blue sky over green ground, as a PNG."""
    path = tmp_path_factory.mktemp('photos') / 'sky.png'
    picture = Image.new('RGB', (160, 120), (90, 150, 230))
    picture.paste((60, 120, 40), (0, 60, 160, 120))
    picture.save(path)
    return str(path)


@pytest.fixture(scope='module')
def executed(cifar_dir, photo, tmp_path_factory):
    """executed(name): the notebook, executed once on the small data (and a photo)."""
    done = {}

    def execute_once(name):
        if name not in done:
            settings = dict(DATA_DIR=cifar_dir, TRAIN_DIR=str(tmp_path_factory.mktemp(name)),
                            **SMALL_RUNS[name][1])
            if name in PHOTOS_CLASSIFIED:  # (softmax.py saves no model to classify it with)
                settings['PHOTOS'] = [photo]
            done[name] = execute(with_settings(read_source(name), **settings))
        return done[name]
    return execute_once


def runs_printed(out):
    """{script: (its arguments, what followed)} of each `$ python` command a notebook printed."""
    found = {}
    for printed_run in re.split(r'^(?=\$ python )', out, flags=re.MULTILINE)[1:]:
        command, _, after = printed_run.partition('\n')
        script, *args = shlex.split(command)[2:]
        found[script] = (args, after)
    return found


@pytest.mark.parametrize('name', sorted(SMALL_RUNS))
def test_notebook_prints_the_test_accuracy_of_its_script(name, executed, tmp_path):
    """The notebook prints the very test accuracy its scripts print with the same flags."""
    notebook = executed(name)
    runs = runs_printed(printed(notebook))
    script_outs, tf2_jobs = {}, {}
    for script in SMALL_RUNS[name][0]:
        args = [arg for arg in runs[script][0] if not arg.startswith('--train_dir=')]
        args.append(f'--train_dir={tmp_path / script.replace("/", "_")}')
        if script in TF1_SCRIPTS:
            script_outs[script] = finished_run(TF1_SCRIPTS[script], *args)
        else:  # a TF2 twin: in the eager worker
            tf2_jobs[script] = dict(script=script, args=args)
    if tf2_jobs:
        for script, result in run_tf2_jobs(tmp_path, tf2_jobs).items():
            assert result['code'] == 0, result['err']
            script_outs[script] = result['out']
    for script, script_out in script_outs.items():
        notebook_out = runs[script][1]
        assert TEST_ACCURACY.findall(notebook_out)[0] == TEST_ACCURACY.findall(script_out)[0]
        assert 'Run folder: ' in notebook_out
    assert 'Traceback' not in printed(notebook, 'stderr')


@pytest.mark.parametrize('name', sorted(SMALL_RUNS))
def test_notebook_shows_images(name, executed):
    """The training images, the curves and the run's own pictures are drawn inline."""
    assert len(images(executed(name))) == IMAGES_SHOWN[name]


@pytest.mark.parametrize('name', PHOTOS_CLASSIFIED)
def test_restored_model_and_photos(name, executed):
    """Parts 2 to 4 classify the photo with the run's checkpoint; part 2 tests it again."""
    out = printed(executed(name))
    assert re.search(r'sky\.png:\n(  \w+ +[01]\.\d{4}\n){3}', out), out
    if name == 'part2_two_layer_fc':  # restore_model.py's test accuracy: the run's own
        (trained, restored) = TEST_ACCURACY.findall(out)
        assert trained == restored


def test_airbench_notebook_tests_the_run_with_fewer_views(executed):
    """Restored with one view: the last epoch's accuracy; with all six: the run's own."""
    out = printed(executed('part4_airbench94'))
    last_epoch = re.findall(r'^Cost after epoch 1: .*, validation accuracy: ([0-9.]+) ', out,
                            re.MULTILINE)
    (trained, *restored) = TEST_ACCURACY.findall(out)
    assert len(last_epoch) == 1 and len(restored) == 3, out
    assert float(restored[0]) == pytest.approx(float(last_epoch[0]), abs=1e-6)
    assert restored[2] == trained
    assert re.search(r'^tta_level=2 \(six views\): test accuracy [0-9.]+$', out, re.MULTILINE)


def test_cnn_notebook_prints_a_line_per_epoch(executed):
    """No terminal draws the progress bar in a kernel: a line per epoch stays instead."""
    assert re.findall(r'^Epoch (\d)/2: [0-9.]+s, cost [0-9.]+$', printed(executed('part3_cnn')),
                      re.MULTILINE) == ['1', '2']


def test_every_cell_run_twice_then_the_whole_notebook_again(cifar_dir, tmp_path):
    """Re-running any cell, then the whole notebook, in one kernel gives the same run again."""
    notebook = with_settings(read_source('part1_softmax'), DATA_DIR=cifar_dir,
                             TRAIN_DIR=str(tmp_path), MAX_STEPS=300)
    cells = notebook.cells
    notebook.cells = [copy.deepcopy(cell) for cell in cells for _ in range(2)] + cells
    out = printed(execute(notebook))
    accuracies = TEST_ACCURACY.findall(out)
    assert len(accuracies) == 3 and len(set(accuracies)) == 1, accuracies
    assert len(set(re.findall(r'^Run folder: (.*)$', out, re.MULTILINE))) == 3


def test_tf2_notebook_lists_the_scripts_it_finds_in_tf2(executed):
    """Every script in tf2/ is listed with what it is, a twin added after the notebook too."""
    shown = ''.join(output.get('data', {}).get('text/markdown', '')
                    for output in outputs(executed('tf2_twins')))
    scripts = glob.glob(os.path.join(PROJECT_DIR, 'tf2', '*.py'))
    assert len(scripts) >= 3
    for path in scripts:
        with open(path, encoding='utf-8') as f:
            summary = ast.get_docstring(ast.parse(f.read())).split('\n', 1)[0]
        assert f'| `tf2/{os.path.basename(path)}` | {summary} |' in shown, path
