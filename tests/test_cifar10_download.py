"""Fetching CIFAR-10: the download, its checksums, local archives and unpacking.

The archive is a small one in the real format, served from a loopback HTTP
server (which can also misbehave as broken or hostile servers do) or put beside
the data folder; nothing leaves the machine and nothing is written beside the
real scripts.
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
import pytest

import data_helpers
import run_fc_model
from tutorial_support import cifar10_archive, cifar10_download
from tutorial_support.errors import DataError


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
            self.announce_1000_bytes()
            self.wfile.write(b'x' * 10)
            self.close_connection = True
            return None
        if self.path.startswith('/trickle/'):
            self.announce_1000_bytes()
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

    def announce_1000_bytes(self):
        """The headers of a reply that says it will send 1,000 bytes."""
        self.send_response(200)
        self.send_header('Content-Length', '1000')
        self.end_headers()

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
    assert set(cifar_files.BATCH_FILES + ['batches.meta']) <= set(os.listdir(data_dir))
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
