"""TensorBoard itself reads what the runs write: a real `tensorboard` on loopback.

Two runs (the two-layer network with a validation set, and softmax.py with
--train_dir) go to one small tf_logs; TensorBoard is started over it on a free
port of 127.0.0.1 and asked, through the HTTP data API its dashboards use, for
the HParams experiment and for each run's metrics.
"""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import tutorial_support.quiet_tensorflow  # noqa: F401

import pytest
from script_runs import run_captured

import run_fc_model
import softmax

STARTUP_SECONDS = 120  # importing TensorBoard and loading the runs, on a busy machine
# Straight to 127.0.0.1, whatever proxy the environment names.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def post(url, request):
    """POSTs a JSON request to TensorBoard and returns its JSON answer."""
    data = json.dumps(request).encode()
    with LOOPBACK.open(urllib.request.Request(
            url, data=data, headers={'Content-Type': 'application/json'}), timeout=30) as reply:
        return json.loads(reply.read())


def printed(out, prefix):
    """The number printed after `prefix` on its one line."""
    (line,) = [line for line in out.splitlines() if line.startswith(prefix)]
    return float(line[len(prefix):])


@pytest.fixture(scope='module')
def board(cifar_dir, tmp_path_factory):
    """(TensorBoard's address, the experiment it reports, the runs' outputs by model)."""
    train_dir = str(tmp_path_factory.mktemp('tf_logs'))
    outputs = {}
    for model, module, extra in (('fc', run_fc_model, ['--hidden1', '20', '--validation_size',
                                                       '100']),
                                 ('softmax', softmax, [])):
        code, out, err = run_captured(module, '--data_dir', cifar_dir, '--train_dir', train_dir,
                                      '--max_steps', '200', '--batch_size', '50', '--seed', '1',
                                      *extra)
        assert code == 0, err
        outputs[model] = out
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, '-m', 'tensorboard.main', '--logdir', train_dir,
         '--host', '127.0.0.1', '--port', str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, 'tensorboard ended early'
            try:
                experiment = post(address + '/data/plugin/hparams/experiment',
                                  {'experimentName': ''})
                if len(experiment.get('metricInfos', [])) >= 3:
                    break  # both runs are loaded
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                pass  # not listening, or not loaded yet
            assert time.monotonic() < deadline, 'tensorboard did not answer in time'
            time.sleep(1)
        yield address, experiment, outputs
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_hparams_experiment_lists_flags_models_and_metrics(board):
    """The HParams tab's experiment: each flag, both models, and the accuracy metrics."""
    _, experiment, _ = board
    hparams = {info['name']: info for info in experiment['hparamInfos']}
    assert {'model', 'hidden1', 'learning_rate', 'batch_size', 'max_steps', 'seed'} <= \
        set(hparams)
    assert sorted(hparams['model']['domainDiscrete']) == ['fc', 'softmax']
    assert not {'train_dir', 'data_dir', 'resume'} & set(hparams)
    metrics = {(info['name'].get('group', ''), info['name']['tag'])
               for info in experiment['metricInfos']}
    assert {('', 'test_accuracy'), ('train', 'accuracy'), ('validation', 'accuracy')} <= metrics


def test_metrics_of_each_run_are_its_printed_accuracies(board):
    """metric_evals, as the HParams table reads them: the printed test accuracy at the end."""
    address, _, outputs = board
    groups = post(address + '/data/plugin/hparams/session_groups', {
        'experimentName': '', 'startIndex': 0, 'sliceSize': 10,
        'allowedStatuses': ['STATUS_UNKNOWN', 'STATUS_SUCCESS', 'STATUS_FAILURE',
                            'STATUS_RUNNING'],
        'colParams': [{'hparam': 'model'}, {'metric': {'tag': 'test_accuracy'}}]})
    sessions = {session['name']: group['hparams']['model']
                for group in groups['sessionGroups'] for session in group['sessions']}
    assert sorted(sessions.values()) == ['fc', 'softmax']
    for session, model in sessions.items():
        evals = post(address + '/data/plugin/hparams/metric_evals', {
            'experimentName': '', 'sessionName': session,
            'metricName': {'tag': 'test_accuracy', 'group': ''}})
        (_, step, value), = evals
        assert step == 200
        assert value == pytest.approx(printed(outputs[model], 'Test accuracy '), abs=1e-6)
    fc_session = next(name for name, model in sessions.items() if model == 'fc')
    validation = post(address + '/data/plugin/hparams/metric_evals', {
        'experimentName': '', 'sessionName': fc_session,
        'metricName': {'tag': 'accuracy', 'group': 'validation'}})
    assert [step for _, step, _ in validation] == [0, 100]
