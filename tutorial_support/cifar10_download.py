"""Fetching CIFAR-10 when it is missing, into the default data folder only.

The default folder is `cifar-10-batches-py/` beside the scripts. When it is
missing, a `cifar-10-python.tar.gz` lying beside it (or beside the scripts) is
unpacked; otherwise the official archive is downloaded, with a progress bar,
checked and unpacked. A `--data_dir` that does not exist is never filled: it
is far more often a misspelt path than a place to put 170 MB.
"""

import http.client
import os
import ssl
import time
import urllib.error
import urllib.request

from tutorial_support import cifar10_archive, progress
from tutorial_support.cifar10_archive import ARCHIVE_NAME, CIFAR10_PAGE
from tutorial_support.errors import DISK_ERRORS, DataError

# Where the official archive lives. CIFAR10_URL can be pointed at a mirror (or
# a local file:// URL) through the environment; the archive must still be the
# official one.
CIFAR10_URL = os.environ.get(
    'CIFAR10_URL', 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz')
# The folder of the lesson scripts, one level above this package.
SCRIPT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.join(SCRIPT_DIR, cifar10_archive.DATA_FOLDER)
ARCHIVE_SIZE = 170_498_071  # bytes, for the progress bar when the server does not say
# A download that brings less than STALL_BYTES in STALL_SECONDS has stalled
# (a server trickling a byte now and then never trips the socket's timeout).
STALL_SECONDS = 60
STALL_BYTES = 64 * 1024


def maybe_download_and_extract(data_dir=None):
    """Makes sure `data_dir` holds CIFAR-10, fetching it into the default folder only.

    Everything is written under temporary names and only renamed into place
    once complete and checked, so an interrupted or failed attempt never
    leaves a half-made data folder.

    Args:
        data_dir: the folder that should hold the batch files; None for the
            default folder.

    Returns:
        The data folder.

    Raises:
        DataError: the folder is missing, or the archive is damaged or cannot be
            fetched.
    """
    data_dir = os.path.normpath(data_dir or DEFAULT_DATA_DIR)  # 'data/' is 'data'
    if os.path.isdir(data_dir):
        return data_dir
    if os.path.exists(data_dir):
        raise DataError(f'{data_dir} is a file, not a folder of CIFAR-10 batch files. '
                        'Point --data_dir at the folder.')
    if not is_default_data_dir(data_dir):
        raise DataError(
            f'The data folder {data_dir} does not exist; the nearest folder that does is '
            f'{nearest_existing_folder(data_dir)}. Check the spelling of --data_dir, or pass '
            'the folder that holds the batch files (a continued or restored run otherwise '
            'uses the data_dir in its params.json). CIFAR-10 is downloaded only into the '
            f'default folder, {DEFAULT_DATA_DIR}: leave out --data_dir, or pass that '
            'folder, to use it.')
    parent = os.path.dirname(os.path.abspath(data_dir))
    candidates = [os.path.join(folder, ARCHIVE_NAME) for folder in (parent, SCRIPT_DIR)]
    archive = next((path for path in candidates if os.path.isfile(path)), None)
    if archive is None:
        archive = download_into(parent, data_dir)
        cifar10_archive.extract(archive, data_dir)
        os.remove(archive)  # the unpacked folder is all the scripts need
    else:
        print(f'Using {archive}')
        check_local_archive(archive)
        cifar10_archive.extract(archive, data_dir)
    return data_dir


def is_default_data_dir(folder):
    """Whether `folder` is the default data folder, the only one the suite fills."""
    return os.path.abspath(folder) == os.path.abspath(DEFAULT_DATA_DIR)


def nearest_existing_folder(path):
    """The closest folder above `path` (or `path` itself) that exists."""
    folder = os.path.abspath(path)
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    return folder


def check_local_archive(archive):
    """Makes sure an archive found on disk is the official one.

    Raises:
        DataError: it cannot be read, or a checksum differs.
    """
    try:
        mismatch = cifar10_archive.checksum_mismatch(cifar10_archive.checksums_of_file(archive))
    except OSError as error:  # not readable by this user, say
        raise DataError(f'Cannot read {archive}: {error.strerror or error}. Fix its '
                        'permissions, or move it away to download a fresh copy.') from None
    if mismatch:
        raise DataError(
            f'{archive} is damaged, incomplete or not the official archive: {mismatch}. '
            'Delete it and run again to download a fresh copy, or replace it with the '
            f'archive from {CIFAR10_PAGE}.')


def download_into(parent, data_dir):
    """Downloads the archive into `parent` (created if needed); a failed attempt leaves nothing.

    Returns:
        The archive's path.
    """
    made_parent = not os.path.isdir(parent)
    try:
        os.makedirs(parent, exist_ok=True)
        return download(CIFAR10_URL, os.path.join(parent, ARCHIVE_NAME), data_dir)
    except OSError as error:
        raise DataError(f'Cannot create {parent} for the data set: {error}.') from None
    except DataError:
        if made_parent:
            os.rmdir(parent)  # leave no trace of a failed attempt
        raise


def download(url, archive, data_dir):
    """Downloads `url` to `archive`, showing progress and checking the checksums.

    The bytes go to `archive + '.part'`, which is removed on any failure and
    renamed to `archive` only when both checksums match. Each read waits at
    most 30 s, and a download that brings less than STALL_BYTES in
    STALL_SECONDS is given up.

    Returns:
        archive.

    Raises:
        DataError: the download failed or the checksums do not match.
    """
    partial = archive + '.part'
    print(f'Downloading CIFAR-10 from {url}')
    digests = cifar10_archive.new_digests()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(partial, 'wb') as out:
            announced = response.headers.get('Content-Length')
            total = int(announced or ARCHIVE_SIZE)
            bar = progress.ProgressBar(total, ARCHIVE_NAME, unit_scale=1e6, unit=' MB',
                                       line_every=0.1)
            window_start, window_done = time.monotonic(), 0
            while True:
                chunk = response.read1(1 << 20)  # what has arrived, up to 1 MB
                if not chunk:
                    break
                out.write(chunk)
                for digest in digests.values():
                    digest.update(chunk)
                done += len(chunk)
                bar.update(done)
                if time.monotonic() - window_start >= STALL_SECONDS:
                    if done - window_done < STALL_BYTES:
                        raise TimeoutError(f'the download stalled: less than {STALL_BYTES:,} '
                                           f'bytes arrived in {STALL_SECONDS} s')
                    window_start, window_done = time.monotonic(), done
            bar.close()
            if announced and done < total:
                raise ConnectionError(f'the connection closed after {done:,} of {total:,} bytes')
    except OSError as error:
        if error.errno not in DISK_ERRORS or isinstance(error, (urllib.error.URLError,
                                                                 ssl.SSLError)):
            raise download_error(partial, url, archive, data_dir, error) from None
        cifar10_archive.remove_quietly(partial)
        raise DataError(f'Cannot write the download to {partial}: {error.strerror}. The data '
                        'set needs about 350 MB while it is unpacked: free some space (or '
                        'fix the folder), then run again.') from None
    except (http.client.HTTPException, ValueError) as error:  # not HTTP, cut-off chunks
        raise download_error(partial, url, archive, data_dir, error) from None
    except BaseException:  # Ctrl-C: leave nothing half-written
        cifar10_archive.remove_quietly(partial)
        raise
    mismatch = cifar10_archive.checksum_mismatch(
        {name: digest.hexdigest() for name, digest in digests.items()})
    if mismatch:
        cifar10_archive.remove_quietly(partial)
        raise DataError(
            f'The download from {url} is damaged or not the official archive: {mismatch} '
            f'({done:,} bytes received). Nothing was kept; run again to retry, or fetch '
            f'{ARCHIVE_NAME} by hand from {CIFAR10_PAGE} and put it in '
            f'{os.path.dirname(archive)}.')
    os.replace(partial, archive)
    return archive


def download_error(partial, url, archive, data_dir, error):
    """Removes the partial download; returns the DataError that says where to get the archive."""
    cifar10_archive.remove_quietly(partial)
    reason = str(getattr(error, 'reason', None) or error) or type(error).__name__
    # A hostile server's text: one line, printable, short.
    reason = ''.join(c if c.isprintable() else ' ' for c in ' '.join(reason.split()))[:200]
    folders = sorted({os.path.dirname(archive), SCRIPT_DIR})
    return DataError(
        f'CIFAR-10 is not in {data_dir} and could not be downloaded from {url} '
        f'({reason}). Download {ARCHIVE_NAME} (170 MB) from {CIFAR10_PAGE} and put '
        f'it in {" or in ".join(folders)}; the scripts unpack it themselves on the '
        'next run.')
