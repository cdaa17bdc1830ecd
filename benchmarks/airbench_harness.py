"""Running airbench94's own file, unchanged, on the suite's CIFAR-10 batch files.

The reference is imported as a module from its path (its ``__main__`` block,
25 runs and a log folder, does not run) and its ``main(run)`` is called once per
seed. Nothing of its code is copied: what it needs and the machine lacks is
put in its way from outside, and only that:

- where it reads the data: ``CifarLoader('cifar10', ...)`` loads
  ``cifar10/train.pt`` and ``cifar10/test.pt`` relative to the working folder
  (a dict of ``images``, uint8 N x 32 x 32 x 3, ``labels``, int64, and
  ``classes``); they are written from ``data_batch_1`` ... ``data_batch_5``
  and ``test_batch`` into a temporary folder, which is the working folder
  during the runs. Its download path (``torchvision.datasets.CIFAR10``) is
  then never reached.
- torchvision, when it is not installed: the file uses it only for
  ``datasets.CIFAR10`` (the download, never reached) and
  ``transforms.Normalize``; a stub module gives ``Normalize`` with
  torchvision's arithmetic and a ``CIFAR10`` that raises.
- without CUDA only: ``Module.cuda()`` returns the module as it is,
  ``Module.half()`` too (float32 weights), ``Tensor.half()`` gives float32,
  ``torch.load`` maps to the CPU, ``torch.cuda.Event`` is a wall-clock timer
  and ``torch.cuda.synchronize`` does nothing (CPU operations are finished
  when they return).

The timings are the reference's own: it records ``starter`` and ``ender``
events around the whitening initialisation, around each epoch's training
loop (the augmentation of the epoch's images included, its test-set
evaluation not) and around the final test-time-augmented evaluation, and
asks ``starter.elapsed_time(ender)`` after each. The event class is wrapped to
keep each answer (milliseconds): on a GPU the CUDA events' own times, on the
CPU the wall-clock time between the two records.
"""

import contextlib
import importlib.util
import io
import os
import sys
import time
import types

import numpy as np
import torch

# The names torchvision's CIFAR10 gives the classes; the file only stores them.
CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
                   'ship', 'truck']
TRAIN_BATCHES = [f'data_batch_{i}' for i in range(1, 6)]


def write_reference_data(data_dir, work_dir, read_batch, to_nhwc):
    """Writes the batch files of ``data_dir`` as ``work_dir/cifar10/{train,test}.pt``.

    Args:
        data_dir: folder holding data_batch_1 ... data_batch_5 and test_batch.
        work_dir: the working folder of the runs.
        read_batch: the suite's safe reader, (path) -> (uint8 N x 3072, int64 N).
        to_nhwc: the suite's rows-to-images view, N x 3072 -> N x 32 x 32 x 3.

    Returns:
        (number of training images, number of test images).
    """
    os.makedirs(os.path.join(work_dir, 'cifar10'))
    counts = []
    for name, files in (('train', TRAIN_BATCHES), ('test', ['test_batch'])):
        batches = [read_batch(os.path.join(data_dir, f)) for f in files]
        pixels = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        images = np.ascontiguousarray(to_nhwc(pixels))
        torch.save({'images': torch.from_numpy(images),
                    'labels': torch.from_numpy(labels.astype(np.int64)),
                    'classes': list(CIFAR10_CLASSES)},
                   os.path.join(work_dir, 'cifar10', f'{name}.pt'))
        counts.append(len(labels))
    return tuple(counts)


def torchvision_stub():
    """A ``torchvision`` module with ``transforms.Normalize`` and ``datasets.CIFAR10``.

    ``Normalize`` computes as torchvision's does on a tensor: a copy (which
    keeps the memory format), mean and std as tensors of the image's type,
    then ``sub_(mean).div_(std)`` per channel.
    """
    class Normalize:
        def __init__(self, mean, std, inplace=False):
            self.mean, self.std, self.inplace = mean, std, inplace

        def __call__(self, tensor):
            if not self.inplace:
                tensor = tensor.clone()
            mean = torch.as_tensor(self.mean, dtype=tensor.dtype, device=tensor.device)
            std = torch.as_tensor(self.std, dtype=tensor.dtype, device=tensor.device)
            return tensor.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))

    class CIFAR10:
        def __init__(self, *args, **kwargs):
            raise RuntimeError('the benchmark writes cifar10/train.pt and test.pt itself; '
                               'the reference asked torchvision to download CIFAR-10 instead')

    torchvision = types.ModuleType('torchvision')
    torchvision.__version__ = 'stub'  # what import_reference reports, also when imported again
    torchvision.transforms = types.ModuleType('torchvision.transforms')
    torchvision.transforms.Normalize = Normalize
    torchvision.datasets = types.ModuleType('torchvision.datasets')
    torchvision.datasets.CIFAR10 = CIFAR10
    return torchvision


class WallClockEvent:
    """``torch.cuda.Event`` on the CPU: ``record`` notes ``time.perf_counter()``."""

    def __init__(self, enable_timing=False, blocking=False, interprocess=False):
        self.time = None

    def record(self, stream=None):
        self.time = time.perf_counter()

    def elapsed_time(self, end_event):
        """Milliseconds from this record to ``end_event``'s, as CUDA events answer."""
        return 1e3 * (end_event.time - self.time)


class Redirects:
    """Attributes of torch replaced for the runs, and put back afterwards."""

    def __init__(self):
        self.saved = []

    def set(self, owner, name, value):
        # An attribute inherited from a base class (Tensor.half) is shadowed, then deleted
        self.saved.append((owner, name, name in vars(owner), vars(owner).get(name)))
        setattr(owner, name, value)

    def undo(self):
        for owner, name, was_own, value in reversed(self.saved):
            if was_own:
                setattr(owner, name, value)
            else:
                delattr(owner, name)
        self.saved = []


def redirect(use_cuda, elapsed_ms):
    """Puts the stand-ins in place; returns the ``Redirects`` that undoes them.

    Args:
        use_cuda: whether the reference runs as written, on the GPU.
        elapsed_ms: list that receives every ``elapsed_time`` answer, in order.
    """
    redirects = Redirects()
    if use_cuda:
        class RecordingEvent(torch.cuda.Event):
            def elapsed_time(self, end_event):
                milliseconds = super().elapsed_time(end_event)
                elapsed_ms.append(milliseconds)
                return milliseconds
        redirects.set(torch.cuda, 'Event', RecordingEvent)
        return redirects

    class RecordingWallClockEvent(WallClockEvent):
        def elapsed_time(self, end_event):
            milliseconds = super().elapsed_time(end_event)
            elapsed_ms.append(milliseconds)
            return milliseconds

    real_load = torch.load

    def load_on_cpu(f, map_location=None, **kwargs):
        return real_load(f, map_location='cpu', **kwargs)

    redirects.set(torch.nn.Module, 'cuda', lambda self, device=None: self)
    redirects.set(torch.nn.Module, 'half', lambda self: self)
    redirects.set(torch.Tensor, 'half',
                  lambda self, memory_format=torch.preserve_format: self.float())
    redirects.set(torch, 'load', load_on_cpu)
    redirects.set(torch.cuda, 'Event', RecordingWallClockEvent)
    redirects.set(torch.cuda, 'synchronize', lambda device=None: None)
    return redirects


def import_reference(path):
    """The reference file as a module (named ``airbench94``, so its ``__main__`` block sleeps).

    Returns:
        (module, torchvision): torchvision's version, or 'stub' where it is not
        installed and the stub stands in.
    """
    try:
        import torchvision
        torchvision_version = torchvision.__version__
    except ImportError:
        stub = torchvision_stub()
        sys.modules.update({'torchvision': stub, 'torchvision.transforms': stub.transforms,
                            'torchvision.datasets': stub.datasets})
        torchvision_version = 'stub'
    spec = importlib.util.spec_from_file_location('airbench94', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, torchvision_version


class Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, stream):
        self.stream = stream
        self.copy = io.StringIO()

    def write(self, text):
        self.stream.write(text)
        self.stream.flush()
        return self.copy.write(text)


def run_seed(module, seed, run, work_dir, use_cuda):
    """``torch.manual_seed(seed)``, then ``module.main(run)`` in ``work_dir``.

    Returns:
        (tta_val_acc, printed text, list of the elapsed_time answers in ms).
    """
    elapsed_ms = []
    redirects = redirect(use_cuda, elapsed_ms)
    tee = Tee(sys.stdout)
    previous_dir = os.getcwd()
    try:
        os.chdir(work_dir)
        torch.manual_seed(seed)
        with contextlib.redirect_stdout(tee):
            accuracy = module.main(run)
    finally:
        os.chdir(previous_dir)
        redirects.undo()
    return accuracy, tee.copy.getvalue(), elapsed_ms
