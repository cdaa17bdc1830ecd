"""Tests of data_helpers: loading CIFAR-10, batches, fetching the archive, damaged files.

The data sets are small ones in the real file format (Python 2 pickles), built by
`cifar_files`; the download is served from a loopback HTTP server or a file:// URL,
so nothing leaves the machine and nothing is written beside the real scripts.
"""

import contextlib
import functools
import hashlib
import http.server
import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time

import cifar_files
import numpy as np
import pytest

import data_helpers
import run_fc_model
import softmax
from tutorial_support import cifar10_archive, cifar10_download, photos, prefetch, progress
from tutorial_support.errors import DataError

CLASSES = ['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']
BATCH_FILES = ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4',
               'data_batch_5', 'test_batch']


def raw_dataset(train_per_batch=100, test_count=100, seed=0):
    """The uint8 pixels and labels `cifar_files.write_dataset` writes, made independently."""
    train = [cifar_files.make_images(train_per_batch, seed + index) for index in range(1, 6)]
    pixels_train = np.concatenate([pixels for pixels, _ in train])
    labels_train = np.concatenate([labels for _, labels in train])
    pixels_test, labels_test = cifar_files.make_images(test_count, seed + 100)
    return pixels_train, labels_train, pixels_test, np.array(labels_test)


@pytest.fixture(scope='module')
def raw():
    """(pixels_train, labels_train, pixels_test, labels_test) of the `cifar_dir` set."""
    return raw_dataset()


@pytest.fixture(scope='module')
def loaded(cifar_dir):
    """load_data() of the small set; tests must not modify it."""
    return data_helpers.load_data(cifar_dir)


# ---------------------------------------------------------------------------
# load_data, reshape_data
# ---------------------------------------------------------------------------

def test_load_data_shapes_types_and_classes(loaded, raw):
    """The dict has the documented keys, shapes, dtypes, labels and class names."""
    assert {'images_train', 'labels_train', 'images_test', 'labels_test',
            'classes'} <= set(loaded)
    assert loaded['images_train'].shape == (500, 3072)
    assert loaded['images_test'].shape == (100, 3072)
    assert loaded['labels_train'].shape == (500,)
    assert loaded['labels_test'].shape == (100,)
    assert loaded['images_train'].dtype == np.float32
    assert loaded['images_test'].dtype == np.float32
    assert loaded['labels_train'].dtype == np.int64
    assert loaded['labels_test'].dtype == np.int64
    np.testing.assert_array_equal(loaded['labels_train'], raw[1])
    np.testing.assert_array_equal(loaded['labels_test'], raw[3])
    assert list(loaded['classes']) == CLASSES


def test_load_data_subtracts_the_mean_training_image(loaded, raw):
    """Both sets are the raw pixels minus the per-pixel mean of the training pixels."""
    pixels_train, _, pixels_test, _ = raw
    mean = pixels_train.astype(np.float64).mean(axis=0)
    assert np.abs(loaded['images_train'].astype(np.float64).mean(axis=0)).max() < 1e-3
    np.testing.assert_allclose(loaded['images_train'], pixels_train - mean, atol=1e-4)
    np.testing.assert_allclose(loaded['images_test'], pixels_test - mean, atol=1e-4)


def test_test_files_are_python2_pickles(cifar_dir):
    """The fixture files are in the real format: a plain pickle.load fails on them."""
    for name in BATCH_FILES:
        assert cifar_files.plain_pickle_fails(os.path.join(cifar_dir, name)), name


def test_shared_sample_loads(sample_dir):
    """The real-image sample loads: 5,170 training and 1,017 test images."""
    data = data_helpers.load_data(sample_dir)
    assert data['images_train'].shape == (5170, 3072)
    assert data['labels_train'].shape == (5170,)
    assert data['images_test'].shape == (1017, 3072)
    assert data['labels_test'].shape == (1017,)
    assert set(np.unique(data['labels_train'])) == set(range(10))


def test_reshape_data_is_nhwc_of_channel_major_rows(cifar_dir):
    """Pixel [i, y, x, c] of the reshaped set is value [c*1024 + y*32 + x] of row i."""
    data = data_helpers.load_data(cifar_dir)
    flat_train = data['images_train'].copy()
    flat_test = data['images_test'].copy()
    assert data_helpers.reshape_data(data) is data
    assert data['images_train'].shape == (500, 32, 32, 3)
    assert data['images_test'].shape == (100, 32, 32, 3)
    y, x, c = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing='ij')
    columns = c * 1024 + y * 32 + x  # [32, 32, 3] indices into a flat row
    np.testing.assert_array_equal(data['images_train'], flat_train[:, columns])
    np.testing.assert_array_equal(data['images_test'], flat_test[:, columns])


def test_validation_images_are_held_out(cifar_dir, raw):
    """validation_size N holds out the first N images; the mean comes from the rest."""
    pixels_train, labels_train, pixels_test, labels_test = raw
    data = data_helpers.load_data(cifar_dir, validation_size=50)
    mean = pixels_train[50:].astype(np.float64).mean(axis=0)
    assert data['images_validation'].shape == (50, 3072)
    assert data['images_train'].shape == (450, 3072)
    np.testing.assert_array_equal(data['labels_validation'], labels_train[:50])
    np.testing.assert_array_equal(data['labels_train'], labels_train[50:])
    np.testing.assert_allclose(data['images_validation'], pixels_train[:50] - mean, atol=1e-4)
    np.testing.assert_allclose(data['images_train'], pixels_train[50:] - mean, atol=1e-4)
    np.testing.assert_allclose(data['images_test'], pixels_test - mean, atol=1e-4)
    np.testing.assert_array_equal(data['labels_test'], labels_test)


# ---------------------------------------------------------------------------
# gen_batch, gen_epoch
# ---------------------------------------------------------------------------

def identified_set(size=50):
    """Images whose single value and label are their own index."""
    return np.arange(size, dtype=np.float32)[:, None], np.arange(size)


def batch_labels(batches):
    """The label arrays of a sequence of batches, checking images match labels."""
    result = []
    for images, labels in batches:
        np.testing.assert_array_equal(images[:, 0], labels)
        result.append(labels)
    return result


def test_gen_batch_passes_reshuffles_and_seed():
    """No image twice within a pass, a new order next pass, the same order for a seed."""
    data = identified_set(50)  # batch size 8: 6 batches a pass, 2 images left over
    batches = batch_labels(data_helpers.gen_batch(data, 8, 18, seed=3))
    assert len(batches) == 18
    assert all(len(labels) == 8 for labels in batches)
    passes = [np.concatenate(batches[start:start + 6]) for start in (0, 6, 12)]
    for labels in passes:
        assert len(set(labels.tolist())) == 48
    assert not np.array_equal(passes[0], passes[1])
    again = batch_labels(data_helpers.gen_batch(data, 8, 18, seed=3))
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(batches))
    other = batch_labels(data_helpers.gen_batch(data, 8, 18, seed=4))
    assert not np.array_equal(np.concatenate(other), np.concatenate(batches))


@pytest.mark.parametrize('start_step', [4, 6, 13])
def test_gen_batch_resumes_at_start_step(start_step):
    """start_step=k yields exactly the batches k ... num_iter-1 of the full sequence."""
    data = identified_set(50)
    full = batch_labels(data_helpers.gen_batch(data, 8, 18, seed=7))
    tail = batch_labels(data_helpers.gen_batch(data, 8, 18, seed=7, start_step=start_step))
    assert len(tail) == 18 - start_step
    for expected, labels in zip(full[start_step:], tail, strict=True):
        np.testing.assert_array_equal(labels, expected)


def test_gen_epoch_uses_every_image_once_and_resumes():
    """One epoch: every image once, a smaller last batch; start_batch gives the tail."""
    data = identified_set(50)
    batches = batch_labels(data_helpers.gen_epoch(data, 8, seed=5, epoch=2))
    assert [len(labels) for labels in batches] == [8] * 6 + [2]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(50))
    assert not np.array_equal(np.concatenate(batches), np.arange(50))  # shuffled
    next_epoch = batch_labels(data_helpers.gen_epoch(data, 8, seed=5, epoch=3))
    assert not np.array_equal(np.concatenate(next_epoch), np.concatenate(batches))
    tail = batch_labels(data_helpers.gen_epoch(data, 8, seed=5, epoch=2, start_batch=4))
    assert len(tail) == 3
    for expected, labels in zip(batches[4:], tail, strict=True):
        np.testing.assert_array_equal(labels, expected)


def test_prefetch_keeps_order_passes_errors_and_stops_early():
    """prefetch() yields the same batches in order, re-raises a failure, and ends its thread."""
    data = identified_set(50)
    plain = batch_labels(data_helpers.gen_batch(data, 8, 20, seed=3))
    ahead = batch_labels(prefetch.prefetch(data_helpers.gen_batch(data, 8, 20, seed=3)))
    assert len(ahead) == 20
    for expected, labels in zip(plain, ahead, strict=True):
        np.testing.assert_array_equal(labels, expected)

    def failing():
        yield 1
        raise ValueError('broken batch')
    with pytest.raises(ValueError, match='broken batch'):
        list(prefetch.prefetch(failing()))

    threads_before = threading.active_count()
    early = prefetch.prefetch(data_helpers.gen_batch(data, 8, 10_000, seed=3))
    next(early)
    early.close()  # the training loop stopped (an error, Ctrl-C)
    for _ in range(50):
        if threading.active_count() <= threads_before:
            break
        threading.Event().wait(0.05)
    assert threading.active_count() <= threads_before


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self):
        return True


def test_progress_bar_draws_on_a_terminal_only(monkeypatch):
    """The bar redraws one line on a terminal; into a file or under CI it writes nothing."""
    monkeypatch.delenv('CI', raising=False)
    terminal = FakeTerminal()
    bar = progress.ProgressBar(4, 'Epoch 1/3', stream=terminal)
    for done in range(1, 5):
        bar.update(done, 'cost 1.0')
    bar.close()
    drawn = terminal.getvalue()
    assert '\rEpoch 1/3 [' in drawn and '100%' in drawn and 'cost 1.0' in drawn
    assert '\n' not in drawn  # one line, redrawn in place
    finished = FakeTerminal()
    progress.ProgressBar(4, 'Epoch 2/3', stream=finished).close('Epoch 2/3: 1.5s, cost 1.2')
    assert finished.getvalue().endswith('\033[KEpoch 2/3: 1.5s, cost 1.2\n')  # a line that stays

    to_file = io.StringIO()
    quiet = progress.ProgressBar(4, 'Epoch 1/3', stream=to_file)
    quiet.update(4)
    quiet.close('Epoch 1/3: 1.5s, cost 1.2')
    assert to_file.getvalue() == ''
    monkeypatch.setenv('CI', 'true')
    under_ci = FakeTerminal()
    progress.ProgressBar(4, 'x', stream=under_ci).update(4)
    assert under_ci.getvalue() == ''


# ---------------------------------------------------------------------------
# Fetching the archive
# ---------------------------------------------------------------------------

def checksums_of(path):
    """A file's MD5 and SHA-256, as cifar10_archive.CIFAR10_CHECKSUMS holds them."""
    with open(path, 'rb') as f:
        content = f.read()
    return {'MD5': hashlib.md5(content).hexdigest(),
            'SHA-256': hashlib.sha256(content).hexdigest()}


def closed_port_url():
    """An http URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    return f'http://127.0.0.1:{port}/cifar-10-python.tar.gz'


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files quietly, and misbehaves as a broken or hostile server would.

    /cut/<name> sends half of the file, then resets the connection;
    /not-http/<name> answers with something that is not HTTP;
    /chunks-cut/<name> sends a chunked reply that ends in mid-chunk;
    /trickle/<name> sends a byte every 0.05 s;
    /closes-early/<name> announces 1,000 bytes, sends 10 and closes.
    """

    protocol_version = 'HTTP/1.1'

    def do_GET(self):
        if self.path.startswith('/not-http/'):
            self.wfile.write(b'SSH-2.0-OpenSSH_9.2\r\n')
            self.close_connection = True
            return None
        if self.path.startswith('/chunks-cut/'):
            self.wfile.write(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
                             b'400\r\n' + b'x' * 100)
            self.close_connection = True
            return None
        if self.path.startswith('/closes-early/'):
            self.send_response(200)
            self.send_header('Content-Length', '1000')
            self.end_headers()
            self.wfile.write(b'x' * 10)
            self.close_connection = True
            return None
        if self.path.startswith('/trickle/'):
            self.send_response(200)
            self.send_header('Content-Length', '1000')
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(200):
                    self.wfile.write(b'x')
                    self.wfile.flush()
                    time.sleep(0.05)
            self.close_connection = True
            return None
        if not self.path.startswith('/cut/'):
            return super().do_GET()
        with open(os.path.join(self.directory, self.path[len('/cut/'):]), 'rb') as f:
            body = f.read()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2])
        self.wfile.flush()
        # Linger 0: close() sends a reset, like a dropped connection.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        self.connection.close()
        self.close_connection = True
        return None

    def finish(self):
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    """A small cifar-10-python.tar.gz on a loopback HTTP server: (url, path, checksums).

    The same URL with /cut/ before the file name breaks off half-way.
    """
    folder = tmp_path_factory.mktemp('served')
    archive = cifar_files.write_archive(str(folder / cifar10_archive.ARCHIVE_NAME),
                                        train_per_batch=10, test_count=10)
    handler = functools.partial(Handler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f'http://127.0.0.1:{server.server_address[1]}/{cifar10_archive.ARCHIVE_NAME}'
    yield url, archive, checksums_of(archive)
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def fetch(tmp_path, monkeypatch):
    """An empty home for the default data folder and an empty stand-in for the scripts' folder.

    Returns:
        (parent, data_dir, script_dir) as strings; data_dir does not exist yet.
    """
    parent = tmp_path / 'home'
    script_dir = tmp_path / 'scripts'
    parent.mkdir()
    script_dir.mkdir()
    monkeypatch.setattr(cifar10_download, 'SCRIPT_DIR', str(script_dir))
    monkeypatch.setattr(cifar10_download, 'DEFAULT_DATA_DIR',
                        str(parent / cifar10_archive.DATA_FOLDER))
    monkeypatch.setattr(cifar10_download, 'CIFAR10_URL', closed_port_url())
    return str(parent), str(parent / cifar10_archive.DATA_FOLDER), str(script_dir)


def test_download_success_leaves_only_the_data_folder(served, fetch, monkeypatch, capsys):
    """A missing folder is downloaded and unpacked; the archive and temporaries go."""
    url, _, checksums = served
    parent, data_dir, script_dir = fetch
    monkeypatch.setattr(cifar10_download, 'CIFAR10_URL', url)
    monkeypatch.setattr(cifar10_archive, 'CIFAR10_CHECKSUMS', checksums)
    data = data_helpers.load_data(data_dir)
    assert 'Downloading' in capsys.readouterr().out
    assert data['images_train'].shape == (50, 3072)
    assert data['images_test'].shape == (10, 3072)
    assert os.listdir(parent) == [cifar10_archive.DATA_FOLDER]
    assert set(BATCH_FILES + ['batches.meta']) <= set(os.listdir(data_dir))
    assert os.listdir(script_dir) == []


def test_download_into_a_data_dir_given_with_a_trailing_slash(served, fetch, monkeypatch):
    """--data_dir 'folder/' downloads and unpacks like 'folder'."""
    url, _, checksums = served
    parent, data_dir, _ = fetch
    monkeypatch.setattr(cifar10_download, 'CIFAR10_URL', url)
    monkeypatch.setattr(cifar10_archive, 'CIFAR10_CHECKSUMS', checksums)
    data = data_helpers.load_data(data_dir + os.sep)
    assert data['images_test'].shape == (10, 3072)
    assert os.listdir(parent) == [cifar10_archive.DATA_FOLDER]


def test_a_folder_without_batch_files_is_not_called_damaged(tmp_path):
    """A --data_dir that holds other things: point at the right folder, never delete it."""
    (tmp_path / 'notes.txt').write_text('mine\n')
    with pytest.raises(DataError) as error:
        data_helpers.load_data(str(tmp_path))
    message = str(error.value)
    assert 'data_batch_1' in message and '--data_dir' in message
    assert 'delete' not in message
    assert (tmp_path / 'notes.txt').read_text() == 'mine\n'


def test_download_with_wrong_checksum_keeps_nothing(served, fetch, monkeypatch):
    """A download whose MD5 is wrong fails clearly, leaves nothing; the next run works."""
    url, _, checksums = served
    parent, data_dir, script_dir = fetch
    monkeypatch.setattr(cifar10_download, 'CIFAR10_URL', url)  # the real checksums stay
    with pytest.raises(DataError) as error:
        data_helpers.load_data(data_dir)
    message = str(error.value)
    assert 'MD5' in message
    assert 'cifar.html' in message and 'run again' in message
    assert os.listdir(parent) == []
    assert os.listdir(script_dir) == []

    monkeypatch.setattr(cifar10_archive, 'CIFAR10_CHECKSUMS', checksums)
    assert data_helpers.load_data(data_dir)['images_train'].shape == (50, 3072)
    assert os.listdir(parent) == [cifar10_archive.DATA_FOLDER]


def test_download_cut_off_half_way_keeps_nothing(served, fetch, monkeypatch):
    """A connection reset in mid-download: a DataError, and no partial file is left."""
    url, _, checksums = served
    parent, data_dir, script_dir = fetch
    name = cifar10_archive.ARCHIVE_NAME
    cut_url = url.replace('/' + name, '/cut/' + name)
    monkeypatch.setattr(cifar10_download, 'CIFAR10_URL', cut_url)
    monkeypatch.setattr(cifar10_archive, 'CIFAR10_CHECKSUMS', checksums)
    with pytest.raises(DataError) as error:
        data_helpers.load_data(data_dir)
    assert 'cifar.html' in str(error.value)
    assert os.listdir(parent) == []
    assert os.listdir(script_dir) == []


@pytest.mark.parametrize('how', ['not-http', 'chunks-cut', 'trickle', 'closes-early'])
def test_a_broken_server_ends_in_a_message_and_keeps_nothing(served, fetch, monkeypatch, how):
    """A reply that is not HTTP, chunks cut short, or a trickle: a DataError, no traceback."""
    url, _, checksums = served
    parent, data_dir, script_dir = fetch
    monkeypatch.setattr(cifar10_download, 'CIFAR10_URL', url.replace(
        '/' + cifar10_archive.ARCHIVE_NAME, f'/{how}/' + cifar10_archive.ARCHIVE_NAME))
    monkeypatch.setattr(cifar10_archive, 'CIFAR10_CHECKSUMS', checksums)
    monkeypatch.setattr(cifar10_download, 'STALL_SECONDS', 1)
    with pytest.raises(DataError) as error:
        data_helpers.load_data(data_dir)
    message = str(error.value)
    assert 'could not be downloaded' in message and 'cifar.html' in message
    assert '\n' not in message and '\r' not in message  # the server's text on one line
    if how in ('trickle', 'closes-early'):
        assert {'trickle': 'stalled', 'closes-early': 'closed after 10 of 1,000'}[how] in message
    assert os.listdir(parent) == []
    assert os.listdir(script_dir) == []


def test_a_missing_data_dir_is_never_downloaded_into(served, fetch, tmp_path, monkeypatch):
    """A misspelt --data_dir: the nearest existing folder is named, nothing is fetched."""
    url, _, checksums = served
    monkeypatch.setattr(cifar10_download, 'CIFAR10_URL', url)  # a download would succeed
    monkeypatch.setattr(cifar10_archive, 'CIFAR10_CHECKSUMS', checksums)
    (tmp_path / 'data').mkdir()
    misspelt = tmp_path / 'data' / 'cifar-10-batchs-py' / 'extra'
    with pytest.raises(DataError) as error:
        data_helpers.load_data(str(misspelt))
    message = str(error.value)
    assert f'nearest folder that does is {tmp_path / "data"}.' in message
    assert '--data_dir' in message and cifar10_download.DEFAULT_DATA_DIR in message
    assert os.listdir(tmp_path / 'data') == []


def test_an_archive_whose_md5_matches_but_sha256_does_not_is_refused(served, fetch,
                                                                     monkeypatch):
    """Matching the published MD5 alone (which can be forged) is not enough."""
    _, archive, checksums = served
    parent, data_dir, _ = fetch
    local = shutil.copy(archive, os.path.join(parent, cifar10_archive.ARCHIVE_NAME))
    monkeypatch.setattr(cifar10_archive, 'CIFAR10_CHECKSUMS',
                        dict(checksums, **{'SHA-256': '6d958be0' + '0' * 56}))
    with pytest.raises(DataError) as error:
        data_helpers.load_data(data_dir)
    message = str(error.value)
    assert local in message and 'SHA-256' in message and 'its MD5' not in message
    assert os.listdir(parent) == [cifar10_archive.ARCHIVE_NAME]


def test_offline_says_where_to_get_and_put_the_archive(fetch):
    """An unreachable URL: the message names the CIFAR-10 page and the folder to use."""
    parent, data_dir, script_dir = fetch
    with pytest.raises(DataError) as error:
        data_helpers.load_data(data_dir)
    message = str(error.value)
    assert 'https://www.cs.toronto.edu/~kriz/cifar.html' in message
    assert cifar10_archive.ARCHIVE_NAME in message
    assert parent in message
    assert os.listdir(parent) == []
    assert os.listdir(script_dir) == []


def test_archive_beside_the_data_folder_is_used(served, fetch, monkeypatch, capsys):
    """cifar-10-python.tar.gz beside the data folder is unpacked without any download."""
    _, archive, checksums = served
    parent, data_dir, _ = fetch  # the URL points at a closed port
    monkeypatch.setattr(cifar10_archive, 'CIFAR10_CHECKSUMS', checksums)
    local = os.path.join(parent, cifar10_archive.ARCHIVE_NAME)
    shutil.copy(archive, local)
    data = data_helpers.load_data(data_dir)
    assert 'Downloading' not in capsys.readouterr().out
    assert data['images_train'].shape == (50, 3072)
    assert sorted(os.listdir(parent)) == sorted([cifar10_archive.ARCHIVE_NAME,
                                                 cifar10_archive.DATA_FOLDER])


def hostile_archive(path, how, outside):
    """A cifar-10-python.tar.gz that also tries to write `outside` (or link to it)."""
    source = cifar_files.write_dataset(path + '.src')
    with tarfile.open(path, 'w:gz') as tar:
        tar.add(source, arcname='cifar-10-batches-py')
        if how == 'symlink':
            link = tarfile.TarInfo('cifar-10-batches-py/readme')
            link.type, link.linkname = tarfile.SYMTYPE, outside
            tar.addfile(link)
        else:
            name = ('../' * 12 + outside.lstrip('/')) if how == 'dot-dot' else outside
            payload = tarfile.TarInfo(name)
            payload.size = 5
            tar.addfile(payload, io.BytesIO(b'owned'))
    return path


@pytest.mark.parametrize('how', ['symlink', 'dot-dot', 'absolute'])
def test_hostile_archive_is_refused_even_without_tar_filters(fetch, tmp_path, monkeypatch, how):
    """Links, '..' and absolute paths are refused by the suite's own check, on any Python."""
    monkeypatch.delattr(tarfile, 'data_filter', raising=False)  # as on Python 3.11.2
    parent, data_dir, _ = fetch
    outside = str(tmp_path / 'outside' / 'owned.txt')
    local = hostile_archive(os.path.join(parent, cifar10_archive.ARCHIVE_NAME), how, outside)
    monkeypatch.setattr(cifar10_archive, 'CIFAR10_CHECKSUMS', checksums_of(local))
    with pytest.raises(DataError) as error:
        data_helpers.load_data(data_dir)
    assert local in str(error.value) and 'not the official archive' in str(error.value)
    assert not os.path.lexists(outside)
    assert not os.path.exists(data_dir) and not os.path.exists(data_dir + '.partial')


@pytest.mark.filterwarnings('ignore:Python 3.14 will:DeprecationWarning')  # 3.12+ warns
def test_archive_unpacks_on_a_python_without_tar_filters(served, fetch, monkeypatch):
    """The genuine archive unpacks where tarfile has no filter= (Python before 3.11.4)."""
    monkeypatch.delattr(tarfile, 'data_filter', raising=False)
    _, archive, checksums = served
    parent, data_dir, _ = fetch
    monkeypatch.setattr(cifar10_archive, 'CIFAR10_CHECKSUMS', checksums)
    shutil.copy(archive, os.path.join(parent, cifar10_archive.ARCHIVE_NAME))
    assert data_helpers.load_data(data_dir)['images_train'].shape == (50, 3072)


@pytest.mark.parametrize('checksums_match', [False, True], ids=['differ', 'match'])
def test_truncated_local_archive_fails_clearly(served, fetch, monkeypatch, checksums_match):
    """A local archive cut short: a DataError naming it, and no half-made data folder."""
    _, archive, checksums = served
    parent, data_dir, _ = fetch
    local = os.path.join(parent, cifar10_archive.ARCHIVE_NAME)
    shutil.copy(archive, local)
    os.truncate(local, os.path.getsize(local) // 2)
    monkeypatch.setattr(cifar10_archive, 'CIFAR10_CHECKSUMS',
                        checksums_of(local) if checksums_match else checksums)
    with pytest.raises(DataError) as error:
        data_helpers.load_data(data_dir)
    message = str(error.value)
    assert local in message
    assert 'damaged' in message
    assert os.listdir(parent) == [cifar10_archive.ARCHIVE_NAME]


FULL_DISK_UNPACK = """
import resource, signal, sys
import data_helpers
from tutorial_support import cifar10_archive, cifar10_download, errors
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # room for no batch file
cifar10_download.SCRIPT_DIR = cifar10_download.DEFAULT_DATA_DIR = sys.argv[1]
cifar10_download.DEFAULT_DATA_DIR += '/cifar-10-batches-py'
cifar10_archive.CIFAR10_CHECKSUMS = dict(MD5=sys.argv[2], **{'SHA-256': sys.argv[3]})
try:
    data_helpers.load_data(cifar10_download.DEFAULT_DATA_DIR)
except errors.DataError as error:
    print(error)
"""


def test_a_full_disk_while_unpacking_keeps_the_good_archive(served, tmp_path):
    """No room to unpack: the archive is fine and kept, no half-made folder is left."""
    _, archive, checksums = served
    local = shutil.copy(archive, tmp_path / cifar10_archive.ARCHIVE_NAME)
    result = subprocess.run(
        [sys.executable, '-c', FULL_DISK_UNPACK, str(tmp_path), checksums['MD5'],
         checksums['SHA-256']], capture_output=True, text=True, timeout=120,
        cwd=os.path.dirname(os.path.abspath(data_helpers.__file__)))
    assert 'Cannot unpack' in result.stdout and 'File too large' in result.stdout
    assert 'archive itself is fine and is kept' in result.stdout
    assert 'damaged' not in result.stdout
    assert os.listdir(tmp_path) == [cifar10_archive.ARCHIVE_NAME]
    assert checksums_of(local) == checksums


def test_script_reports_missing_data_without_traceback(fetch, tmp_path, run):
    """A script that cannot get the data prints one 'Error: ...' paragraph and exits 1."""
    _, data_dir, _ = fetch  # the URL points at a closed port
    code, _, err = run(run_fc_model, '--data_dir', data_dir,
                       '--train_dir', str(tmp_path / 'logs'))
    assert code == 1
    assert err.strip().startswith('Error: ')
    assert '\n\n' not in err.strip()
    assert 'cifar.html' in err
    assert 'Traceback' not in err


# ---------------------------------------------------------------------------
# Damaged batch files
# ---------------------------------------------------------------------------

def _random_bytes(path):
    with open(path, 'wb') as f:
        f.write(np.random.default_rng(0).bytes(5000))


def _cut_short(path):
    os.truncate(path, os.path.getsize(path) // 2)


def _write(path, content):
    with open(path, 'wb') as f:
        f.write(content)


def _pixels_and_labels():
    return cifar_files.make_images(100, 1)


def _no_labels(path):
    pixels, _ = _pixels_and_labels()
    _write(path, cifar_files.python3_pickle({'batch_label': 'x', 'data': pixels}))


def _no_data(path):
    _, labels = _pixels_and_labels()
    _write(path, cifar_files.python3_pickle({'batch_label': 'x', 'labels': labels}))


def _wrong_columns(path):
    pixels, labels = _pixels_and_labels()
    _write(path, cifar_files.batch_bytes(pixels[:, :3000], labels))


def _bad_labels(path):
    pixels, labels = _pixels_and_labels()
    _write(path, cifar_files.batch_bytes(pixels, labels[:-1] + [12]))


def _count_mismatch(path):
    pixels, labels = _pixels_and_labels()
    _write(path, cifar_files.batch_bytes(pixels, labels[:-1]))


def _ragged_data(path):
    pixels, labels = _pixels_and_labels()
    rows = [row.tolist() for row in pixels[:2]]  # plain ints, as a list in a pickle holds
    _write(path, cifar_files.python3_pickle({'data': [rows[0], rows[1][:10]],
                                             'labels': labels[:2]}))


def _fifo(path):
    os.remove(path)
    os.mkfifo(path)  # opening it to read would wait forever


DAMAGES = {
    'missing-file': (os.remove, 'missing'),
    'a-fifo': (_fifo, 'is not a file'),
    'not-a-pickle': (_random_bytes, 'pickle'),
    'cut-short': (_cut_short, 'pickle'),
    'no-labels': (_no_labels, "'labels'"),
    'no-data': (_no_data, "'data'"),
    'wrong-columns': (_wrong_columns, '3072'),
    'labels-out-of-range': (_bad_labels, '0-9'),
    'count-mismatch': (_count_mismatch, '99 labels'),
    'ragged-data': (_ragged_data, 'not a regular table'),
}


@pytest.fixture
def damaged_copy(cifar_dir, tmp_path):
    """A private copy of the small data set, to be damaged by a test."""
    return shutil.copytree(cifar_dir, tmp_path / cifar10_archive.DATA_FOLDER)


@pytest.mark.parametrize('damage', DAMAGES, ids=list(DAMAGES))
def test_damaged_batch_file_is_named_with_its_problem(damaged_copy, damage):
    """load_data raises a DataError naming the damaged file and what is wrong with it."""
    damage_file, problem = DAMAGES[damage]
    path = os.path.join(damaged_copy, 'data_batch_3')
    damage_file(path)
    with pytest.raises(DataError) as error:
        data_helpers.load_data(str(damaged_copy))
    message = str(error.value)
    assert path in message
    assert problem in message


def test_script_reports_damaged_file_without_traceback(damaged_copy, run):
    """A script given a damaged file exits 1 with 'Error:' naming the file, no traceback."""
    _random_bytes(os.path.join(damaged_copy, 'test_batch'))
    code, _, err = run(softmax, '--data_dir', str(damaged_copy))
    assert code == 1
    assert 'Error:' in err
    assert 'test_batch' in err
    assert 'Traceback' not in err


def test_a_batch_file_that_would_run_code_is_refused_unrun(damaged_copy, tmp_path, run):
    """A test_batch whose pickle calls a function: refused, named, and the function never ran."""
    marker = str(tmp_path / 'the-file-ran-code')
    path = os.path.join(damaged_copy, 'test_batch')
    cifar_files.write_hostile_test_batch(str(damaged_copy), marker)
    with pytest.raises(DataError) as error:
        data_helpers.load_data(str(damaged_copy))
    assert path in str(error.value) and 'mkdir' in str(error.value)
    code, out, err = run(softmax, '--data_dir', str(damaged_copy))
    assert code == 1 and 'Traceback' not in err
    assert path in err and 'nothing of it was run' in err
    assert 'Step' not in out
    assert not os.path.exists(marker)



def test_a_16_bit_grey_png_is_scaled_to_8_bits_in_colour(tmp_path):
    """A 16-bit grey photo: its brightest value becomes 255, in all three channels."""
    from PIL import Image
    grey = np.full((64, 64), 40000, np.uint16)
    grey[:, 32:] = 10000
    path = str(tmp_path / 'scan.png')
    Image.fromarray(grey).save(path)
    pixels = photos.load_image(path).reshape(3, 32, 32)
    assert (pixels[0] == pixels[1]).all() and (pixels[1] == pixels[2]).all()
    assert (pixels[0, :, :12] == 255).all()
    assert (pixels[0, :, -12:] == 64).all()  # 10000 * 255 / 40000 = 63.75, rounded
