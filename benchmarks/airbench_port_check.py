"""Does run_deep_cnn_model.py compute what airbench94's own main() computes? Step by step.

    python benchmarks/airbench_port_check.py --reference PATH/airbench94.py \
        --data_dir ../shared/cifar-10-sample [--epochs 2 --batch_size 128]

Two halves, in two interpreters:

1. With the project's Python (TensorFlow): runs `run_deep_cnn_model.main` as a
   learner does (here with `--whiten_bias_epochs 1`, so that the freeze happens
   within the run), and records what it fed (every augmented batch and its
   labels), the loss of every step, its checkpoints of step 0 and of the end,
   and its test accuracy.
2. With a Python that has PyTorch (`--torch_python`, default /usr/bin/python3;
   Debian's `apt-get install python3-torch`): imports airbench94's own file
   unchanged (benchmarks/airbench_harness.py puts only the CPU stand-ins in
   its way) and calls its `main()` with the same settings in its `hyp`. Three
   things are put in its way from outside: its `CifarLoader` hands out the
   recorded batches (and the suite's standardized images); its `make_net`
   returns its own network filled with the suite's initial weights (step 0);
   its `init_whitening_conv` runs, and its filters are compared with the
   suite's, which then take their place (an eigenvector's sign is arbitrary:
   the two may differ in it, and a network with other signs trains otherwise).
   Everything else is the reference's: its optimizer groups, rates, weight decay,
   schedule, Lookahead, whitening-bias freeze, batch norm, 6-view evaluation.

It prints the losses side by side, the largest difference of each variable at the
end, and the test accuracies. Not a test (CI has no PyTorch): run it when the model changes.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tf_side(args, record_path):
    """Runs the suite's runner and writes what it fed and computed to `record_path` (.npz)."""
    sys.path.insert(0, PROJECT_DIR)
    import tensorflow.compat.v1 as tf

    import data_helpers
    import deep_cnn_input
    import run_deep_cnn_model
    from tutorial_support import entry_point, training_stops

    fed_images, fed_labels, losses = [], [], []
    real_augment, real_batches = deep_cnn_input.augment, deep_cnn_input.epoch_batches
    real_check_step = training_stops.check_step

    def recording_augment(*augment_args, **kwargs):
        images = real_augment(*augment_args, **kwargs)
        fed_images.append(images)
        return images

    def recording_batches(*batch_args, **kwargs):
        for images, labels in real_batches(*batch_args, **kwargs):
            fed_labels.append(labels)
            yield images, labels

    def recording_check_step(loss_value, step, *more):
        losses.append(float(loss_value))
        return real_check_step(loss_value, step, *more)

    deep_cnn_input.augment = recording_augment
    deep_cnn_input.epoch_batches = recording_batches
    training_stops.check_step = recording_check_step
    train_dir = tempfile.mkdtemp(prefix='port_check_')
    test_lines = []
    real_print = print

    def recording_print(*texts, **kwargs):
        text = ' '.join(map(str, texts))
        if text.startswith('Test Accuracy: '):
            test_lines.append(float(text.split()[-1]))
        real_print(*texts, **kwargs)

    run_deep_cnn_model.print = recording_print
    code = entry_point.run_main(run_deep_cnn_model.main, [
        'run_deep_cnn_model.py', '--data_dir', args.data_dir, '--train_dir', train_dir,
        '--batch_size', str(args.batch_size), '--epochs', str(args.epochs), '--seed', '0',
        '--whiten_bias_epochs', '1'])
    if code:
        raise SystemExit(f'run_deep_cnn_model.py failed (exit {code})')
    (run_dir,) = [os.path.join(train_dir, name) for name in os.listdir(train_dir)]
    checkpoint_dir = os.path.join(run_dir, 'checkpoints')
    steps = sorted(int(name.split('-')[1].split('.')[0]) for name in os.listdir(checkpoint_dir)
                   if name.endswith('.index'))
    record = {'fed_images': np.stack(fed_images), 'fed_labels': np.stack(fed_labels),
              'losses': np.array(losses), 'test_accuracy': test_lines[-1]}
    for prefix, step in (('initial', steps[0]), ('final', steps[-1])):
        reader = tf.train.load_checkpoint(os.path.join(checkpoint_dir, f'model.ckpt-{step}'))
        for name in reader.get_variable_to_shape_map():
            if name.startswith('deep_cnn/') and not name.endswith('/Momentum'):
                record[f'{prefix}:{name}'] = reader.get_tensor(name)
    data = data_helpers.reshape_data(data_helpers.load_data(args.data_dir))
    for key in ('images_train', 'images_test'):
        deep_cnn_input.standardize(data[key], data['mean_image'])
    record['train_images'] = np.ascontiguousarray(data['images_train'][:5000])
    record['test_images'] = np.ascontiguousarray(data['images_test'])
    record['test_labels'] = data['labels_test']
    with open(os.path.join(run_dir, 'params.json')) as params_file:
        record['params'] = json.dumps(json.load(params_file))
    np.savez(record_path, **record)
    print(f'TF side: {len(losses)} steps; its run is in {run_dir}', flush=True)


def torch_name(name):
    """The reference's state_dict key of a suite variable, and how to lay it out."""
    parts = name.split('/')[1:]  # deep_cnn/...
    if parts[0] == 'whiten':
        return {'filters': '0.weight', 'biases': '0.bias'}[parts[1]]
    if parts[0] == 'fc':
        return '7.weight'
    group = {'block1': 2, 'block2': 3, 'block3': 4}[parts[0]]
    layer, kind = parts[1], parts[2]
    if layer.startswith('conv'):
        return f'{group}.{layer}.weight'
    return f'{group}.{layer}.' + {'bias': 'bias', 'scale': 'weight', 'running_mean': 'running_mean',
                                  'running_var': 'running_var'}[kind]


def as_torch_layout(value):
    """A suite array in PyTorch's layout: filters HWIO -> OIHW, a linear layer transposed."""
    if value.ndim == 4:
        return value.transpose(3, 2, 0, 1)
    if value.ndim == 2:
        return value.T
    return value


def run_reference(args, record, perturbation=0.0):
    """The reference's main() on the recorded batches, from the suite's initial weights.

    Args:
        perturbation: each initial weight is multiplied by 1 + perturbation x N(0, 1)
            (0: none): a run that differs from the plain one by rounding-sized
            changes only, to show how fast such differences grow.

    Returns:
        dict: losses (summed, every step), state (the final state_dict as
        arrays), accuracy (with 6 test views), whitening (the reference's own
        filters, before the suite's replaced them).
    """
    import airbench_harness
    import torch

    params = json.loads(str(record['params']))
    module, _ = airbench_harness.import_reference(args.reference)
    module.hyp['opt'].update(batch_size=params['batch_size'], train_epochs=params['epochs'],
                             whiten_bias_epochs=params['whiten_bias_epochs'])
    nchw = {key: torch.from_numpy(np.ascontiguousarray(record[key].transpose(0, 3, 1, 2)))
            for key in ('train_images', 'test_images')}
    batches = [(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
                torch.from_numpy(labels)) for images, labels
               in zip(record['fed_images'], record['fed_labels'], strict=True)]

    class RecordedLoader:
        """The reference's loader, handing out what the suite fed (already augmented)."""

        def __init__(self, path, train=True, batch_size=500, aug=None, **kwargs):
            self.normalize = lambda images: images  # the suite's images are standardized
            if train:
                self.images = nchw['train_images']
                self.labels = torch.from_numpy(record['fed_labels'][0])
                self.length = params['train_images'] // batch_size
            else:
                self.images = nchw['test_images']
                self.labels = torch.from_numpy(record['test_labels'])
                self.length = 0

        def __len__(self):
            return self.length

        def __iter__(self):
            for _ in range(self.length):
                if batches:
                    yield batches.pop(0)

    networks, result = [], {'losses': []}
    real_make_net, real_init_whitening = module.make_net, module.init_whitening_conv
    noise = np.random.default_rng(0)

    def suite_weights(key):
        value = as_torch_layout(record[key]).astype(np.float32)
        if perturbation and value.dtype.kind == 'f':
            value = value * (1 + perturbation * noise.standard_normal(value.shape)).astype(
                np.float32)
        return torch.from_numpy(np.ascontiguousarray(value))

    def make_net_with_suite_weights():
        net = real_make_net()
        state = net.state_dict()
        with torch.no_grad():
            for key in record:
                if key.startswith('initial:'):
                    state[torch_name(key[8:])].copy_(suite_weights(key))
        networks.append(net)
        return net

    def init_whitening_then_suite_filters(layer, train_set, eps=5e-4):
        real_init_whitening(layer, train_set, eps)
        result['whitening'] = layer.weight.detach().numpy().copy()
        with torch.no_grad():
            layer.weight.copy_(suite_weights('initial:deep_cnn/whiten/filters'))

    class RecordingLoss(torch.nn.CrossEntropyLoss):
        def forward(self, outputs, labels):
            values = super().forward(outputs, labels)
            result['losses'].append(float(values.sum()))
            return values

    module.CifarLoader = RecordedLoader
    module.make_net = make_net_with_suite_weights
    module.init_whitening_conv = init_whitening_then_suite_filters
    real_loss = torch.nn.CrossEntropyLoss
    torch.nn.CrossEntropyLoss = RecordingLoss
    try:
        with tempfile.TemporaryDirectory() as work_dir:
            result['accuracy'], _, _ = airbench_harness.run_seed(module, 0, 0, work_dir,
                                                                 use_cuda=False)
    finally:
        torch.nn.CrossEntropyLoss = real_loss
    result['state'] = {key: value.detach().numpy() for key, value
                       in networks[0].state_dict().items()}
    result['losses'] = np.array(result['losses'])
    return result


def torch_side(args, record_path):
    """The reference twice (plain, and perturbed by rounding-sized changes); compared."""
    sys.path.insert(0, os.path.join(PROJECT_DIR, 'benchmarks'))
    record = {key: value for key, value in np.load(record_path).items()
              if not key.endswith('/Momentum')}
    reference = run_reference(args, record)
    perturbed = run_reference(args, record, perturbation=1e-7)

    # The whitening filters: the same up to each eigenvector's sign
    suite_filters = as_torch_layout(record['initial:deep_cnn/whiten/filters'])[:12]
    reference_filters = reference['whitening'][:12]
    signs = np.sign(np.sum(suite_filters * reference_filters, axis=(1, 2, 3)))
    print('Whitening filters, largest difference up to sign / largest value, each filter '
          '(largest eigenvalue first):')
    print('  ' + ' '.join(f'{np.abs(s - sign * r).max():.1e}/{np.abs(r).max():.2g}' for s, r, sign
                          in zip(suite_filters, reference_filters, signs, strict=True)))
    suite_losses = record['losses']

    versus_suite = np.abs(suite_losses / reference['losses'] - 1)
    versus_perturbed = np.abs(perturbed['losses'] / reference['losses'] - 1)
    print(f'Loss of each step (summed over the batch), {len(suite_losses)} steps; relative '
          'difference from the reference of the suite, and of the reference perturbed by 1e-7:')
    print('  step        suite    reference   suite diff   perturbed diff')
    for step in sorted({0, 1, 2, 4, 5, 6, 10, 15, 20, 30, 40, 50, 60, 70,
                        len(suite_losses) - 1}):
        if step < len(suite_losses):
            print(f'  {step:4d} {suite_losses[step]:12.5f} {reference["losses"][step]:12.5f}'
                  f'   {versus_suite[step]:10.1e}   {versus_perturbed[step]:10.1e}')
    print(f'  largest: suite {versus_suite.max():.1e}, perturbed {versus_perturbed.max():.1e}')
    print('Variables at the end, largest difference from the reference / its largest value:')
    print(f'  {"":40s} {"suite":>9} {"perturbed":>10}')
    for key, value in sorted(record.items()):
        if key.startswith('final:'):
            name = torch_name(key[6:])
            ours, theirs = as_torch_layout(value), reference['state'][name]
            scale = np.abs(theirs).max()
            print(f'  {key[6:]:40s} {np.abs(ours - theirs).max() / scale:9.1e} '
                  f'{np.abs(perturbed["state"][name] - theirs).max() / scale:10.1e}')
    print(f'Test accuracy with 6 views: suite {float(record.get("test_accuracy", np.nan)):.4f}, '
          f'reference {reference["accuracy"]:.4f}, perturbed reference {perturbed["accuracy"]:.4f}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--reference', required=True, help='path of legacy/airbench94.py')
    parser.add_argument('--data_dir', required=True, help='folder of CIFAR-10 batch files')
    parser.add_argument('--epochs', type=float, default=2)
    parser.add_argument('--batch_size', type=int, default=128)
    parser.add_argument('--torch_python', default='/usr/bin/python3')
    parser.add_argument('--record', help=argparse.SUPPRESS)
    parser.add_argument('--side', choices=['tf', 'torch', 'both'], default='both',
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    record_path = args.record or os.path.join(tempfile.mkdtemp(), 'port_check.npz')
    if args.side in ('tf', 'both'):
        tf_side(args, record_path)
    if args.side == 'torch':
        torch_side(args, record_path)
    elif args.side == 'both':
        subprocess.run([args.torch_python, os.path.abspath(__file__), '--side', 'torch',
                        '--record', record_path, '--reference', args.reference,
                        '--data_dir', args.data_dir], check=True)


if __name__ == '__main__':
    main()
