"""The TF2 side of the TF2 twins' tests, in a process of its own.

The test session runs TensorFlow in graph mode (the TF1 scripts, imported by
conftest, call `tf.disable_eager_execution()`, which holds for the whole
process); the scripts in `tf2/` need eager execution. So the tests hand this
worker a JSON list of jobs, and it writes one result per job:

* `{"script": "tf2/run_fc_model.py", "args": [...]}`: runs the script's
  `main` in-process; the result is {code, out, err}. (`glob:PATTERN` in the
  arguments: the path that matches it.)
* `{"train": "fc" or "cnn", "initial": NPZ, "data_dir": ..., ...}`: the TF2
  model of the script, its variables set to the TF1 initial values by name,
  trained on the runner's batches; the result is {losses, test_accuracy}.
* `{"initial_values": true}`: the initial variables of each TF2 model and
  of the Keras yardsticks in benchmarks/keras_equivalents.py, as
  {model: {name: [shape, std, largest magnitude]}}.
"""

import contextlib
import glob
import importlib.util
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tutorial_support.quiet_tensorflow  # noqa: F401

import numpy as np
import tensorflow as tf
from script_runs import run_captured

import data_helpers
from tutorial_support import batch_eval, run_dirs, training_stops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tf2_script(path):
    """Imports a script of tf2/ as a module of its own name (tf2_run_fc_model)."""
    name = 'tf2_' + os.path.splitext(os.path.basename(path))[0]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def run_script(job):
    """Runs a tf2 script's main() with the job's arguments.

    An argument `glob:PATTERN` becomes the one path that matches it (a run
    folder that an earlier job made.) With `"interrupt_at_step": N`, a
  Ctrl-C comes as training step N finishes (as a test's KeyboardInterrupt
  in `training_stops.check_step`); with `"file_size_limit": BYTES`, it runs
  under that limit on file sizes (`ulimit -f`).
* `{"edit_params": PATTERN, "values": {...}}`: sets settings in the
  params.json of the run folder that matches PATTERN (a run's settings
  changed by hand); the result is null.
* `{"truncate": PATTERN}`: cuts the file that matches PATTERN to half its
  size (a damaged checkpoint); the result is null.
    """
    args = [glob.glob(arg[len('glob:'):])[0] if arg.startswith('glob:') else arg
            for arg in job['args']]
    with (interrupted_at(job.get('interrupt_at_step')),
          file_size_limit(job.get('file_size_limit'))):
        code, out, err = run_captured(tf2_script(job['script']), *args)
    return {'code': code, 'out': out, 'err': err}


@contextlib.contextmanager
def interrupted_at(interrupt_step):
    """Inside: a KeyboardInterrupt as training step `interrupt_step` finishes (None: never)."""
    real_check_step = training_stops.check_step

    def check_step_or_interrupt(loss_value, step, *more):
        if step + 1 == interrupt_step:
            raise KeyboardInterrupt
        return real_check_step(loss_value, step, *more)

    if interrupt_step is not None:
        training_stops.check_step = check_step_or_interrupt
    try:
        yield
    finally:
        training_stops.check_step = real_check_step


@contextlib.contextmanager
def file_size_limit(limit):
    """Inside: no file can grow beyond `limit` bytes (None: no change)."""
    import resource  # POSIX only

    previous = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, previous[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous)


def edit_params(job):
    """Changes settings in the params.json of a run folder, as a user could by hand."""
    (folder,) = glob.glob(job['edit_params'])
    params = dict(run_dirs.load_run_params(folder), **job['values'])
    with open(os.path.join(folder, run_dirs.PARAMS_FILE), 'w') as f:
        json.dump(params, f)


def set_by_name(model, initial):
    """Sets each of the model's variables to the array of its TF1 name."""
    for variable in model.variables:
        variable.assign(initial[variable.name.split(':')[0]])


def train(job):
    """Trains a tf2 script's model from the given initial values, as its runner does."""
    initial = np.load(job['initial'])
    seed, steps, batch_size = job['seed'], job['steps'], job['batch_size']
    data = data_helpers.load_data(job['data_dir'])
    train_set = (data['images_train'], data['labels_train'])
    losses = []
    if job['train'] == 'fc':
        script = tf2_script('tf2/run_fc_model.py')
        model = script.TwoLayerFC(data_helpers.IMAGE_PIXELS, job['hidden1'],
                                  data_helpers.NUM_CLASSES, reg_constant=job['reg_constant'])
        set_by_name(model, initial)
        optimizer = script.make_optimizer(job['learning_rate'])
        train_step = tf.function(
            lambda images, labels: model.training(images, labels, optimizer))
        for images, labels in data_helpers.gen_batch(train_set, batch_size, steps, seed=seed):
            losses.append(float(train_step(images, labels)))
    else:
        data = data_helpers.reshape_data(data)
        train_set = (data['images_train'], data['labels_train'])
        script = tf2_script('tf2/run_cnn_model.py')
        model = script.CNN(data_helpers.NUM_CLASSES)
        set_by_name(model, initial)
        optimizer = script.make_optimizer(job['learning_rate'])
        dropout_rate = tf.constant(job['dropout_rate'], tf.float32)
        train_step = tf.function(lambda images, labels, seeds: model.training(
            images, labels, optimizer, dropout_rate, seeds))
        epoch = 0
        while len(losses) < steps:
            for images, labels in data_helpers.gen_epoch(train_set, batch_size, seed=seed,
                                                         epoch=epoch):
                step = len(losses)
                if step == steps:
                    break
                seeds = tf.constant([[seed, 2 * step], [seed, 2 * step + 1]], tf.int64)
                losses.append(float(train_step(images, labels, seeds)))
            epoch += 1
    test_accuracy, _ = batch_eval.predict_in_batches(
        model.predictions, (data['images_test'], data['labels_test']))
    return {'losses': losses, 'test_accuracy': test_accuracy}


def statistics(named_values):
    """{name: [shape, std, largest magnitude]} of arrays."""
    return {name: [list(value.shape), float(np.std(value)), float(np.max(np.abs(value)))]
            for name, value in named_values.items()}


def initial_values(job):
    """The initial variables of the TF2 models and of the Keras yardsticks."""
    sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
    import keras_equivalents

    fc = tf2_script('tf2/run_fc_model.py').TwoLayerFC(
        data_helpers.IMAGE_PIXELS, 120, data_helpers.NUM_CLASSES, seed=1)
    cnn = tf2_script('tf2/run_cnn_model.py').CNN(data_helpers.NUM_CLASSES, seed=1)
    found = {f'tf2_{name}': statistics({v.name.split(':')[0]: v.numpy() for v in model.variables})
             for name, model in (('fc', fc), ('cnn', cnn))}
    for name in ('softmax', 'fc', 'cnn'):
        keras_model, _ = keras_equivalents.BUILDERS[name]()
        found[f'keras_{name}'] = statistics({
            f'{layer_index}/{variable.path.split("/")[-1]}': np.asarray(variable)
            for layer_index, layer in enumerate(
                layer for layer in keras_model.layers if layer.weights)
            for variable in layer.weights})
    # softmax.py's variables are zeros [3072, 10] and [10]
    found['keras_softmax_shapes'] = [shape for shape, _, _ in found['keras_softmax'].values()]
    found['flag_defaults'] = {
        name: {flag: tf2_script(f'tf2/{name}.py').FLAGS[flag].default
               for flag in tf2_script(f'tf2/{name}.py').FLAGS}
        for name in ('softmax', 'run_fc_model', 'run_cnn_model')}
    found['keras_settings'] = dict(keras_equivalents.SETTINGS,
                                   keras_softmax_shapes=found.pop('keras_softmax_shapes'))
    return found


def main(jobs_path, results_path):
    """Does each job of the JSON list, writes the list of results."""
    with open(jobs_path) as f:
        jobs = json.load(f)
    results = []
    for job in jobs:
        if 'script' in job:
            results.append(run_script(job))
        elif 'train' in job:
            results.append(train(job))
        elif 'edit_params' in job:
            results.append(edit_params(job))
        elif 'truncate' in job:
            (path,) = glob.glob(job['truncate'])
            os.truncate(path, os.path.getsize(path) // 2)
            results.append(None)
        else:
            results.append(initial_values(job))
    with open(results_path, 'w') as f:
        json.dump(results, f)


if __name__ == '__main__':
    main(*sys.argv[1:])
