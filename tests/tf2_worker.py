"""The TF2 side of the TF2 twins' tests, in a process of its own.

The test session runs TensorFlow in graph mode (the TF1 scripts, imported by
conftest, call `tf.disable_eager_execution()`, which holds for the whole
process); the scripts in `tf2/` need eager execution. So the tests hand this
worker a JSON list of jobs, and it writes one result per job:

* `{"script": "tf2/run_fc_model.py", "args": [...]}`: runs the script's
  `main` in-process; the result is {code, out, err}. (`glob:PATTERN` in the
  arguments: the path that matches it.) With `"interrupt_at_step": N`, a
  Ctrl-C comes as training step N finishes (as a test's KeyboardInterrupt
  in `training_stops.check_step`); with `"file_size_limit": BYTES`, it runs
  under that limit on file sizes (`ulimit -f`); with `"set": {NAME: VALUE}`,
  the script's module constants are set so for the run (SUMMARY_EVERY).
* `{"edit_params": PATTERN, "values": {...}}`: sets settings in the
  params.json of the run folder that matches PATTERN (a run's settings
  changed by hand); the result is null.
* `{"truncate": PATTERN}`: cuts the file that matches PATTERN to half its
  size (a damaged checkpoint); the result is null.
* `{"initial_values": true}`: the initial variables of the Keras yardsticks
  in benchmarks/keras_equivalents.py (the Keras way's models), as {model:
  {name: [shape, std, largest magnitude]}}, and the twins' flag defaults.
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
from script_runs import run_captured

from tutorial_support import run_dirs, training_stops

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
    """Runs a tf2 script's main() with the job's arguments (see the module's docstring)."""
    args = [glob.glob(arg[len('glob:'):])[0] if arg.startswith('glob:') else arg
            for arg in job['args']]
    script = tf2_script(job['script'])
    with (interrupted_at(job.get('interrupt_at_step')),
          file_size_limit(job.get('file_size_limit')),
          constants_set(script, job.get('set', {}))):
        code, out, err = run_captured(script, *args)
    return {'code': code, 'out': out, 'err': err}


@contextlib.contextmanager
def constants_set(module, values):
    """Inside: the module's constants given in `values` have those values."""
    before = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(module, name, value)


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


def statistics(named_values):
    """{name: [shape, std, largest magnitude]} of arrays."""
    return {name: [list(value.shape), float(np.std(value)), float(np.max(np.abs(value)))]
            for name, value in named_values.items()}


def initial_values(job):
    """The initial variables of the Keras yardsticks, and the twins' flag defaults."""
    sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
    import keras_equivalents

    found = {}
    for name in ('softmax', 'fc', 'cnn'):
        keras_model = keras_equivalents.build(name)
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
