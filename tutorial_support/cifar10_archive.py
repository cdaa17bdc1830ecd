"""The CIFAR-10 archive: checking that it is the official one, and unpacking it safely.

`cifar-10-python.tar.gz` must match both the MD5 the CIFAR-10 page publishes
and the SHA-256 Keras pins. It is unpacked member by member, after checking
that every member is a plain file or folder inside `cifar-10-batches-py/`,
under a temporary name that is renamed into place only when complete.
"""

import hashlib
import os
import shutil
import tarfile
import zlib

from tutorial_support.errors import DISK_ERRORS, DataError

CIFAR10_CHECKSUMS = {
    'MD5': 'c58f30108f718f92721af3b95e74349a',
    'SHA-256': '6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce',
}
CIFAR10_PAGE = 'https://www.cs.toronto.edu/~kriz/cifar.html'
ARCHIVE_NAME = 'cifar-10-python.tar.gz'
DATA_FOLDER = 'cifar-10-batches-py'  # the folder the archive unpacks to
BATCH_FILES = [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']


def new_digests():
    """Fresh hash objects, one for each checksum in CIFAR10_CHECKSUMS."""
    return {'MD5': hashlib.md5(usedforsecurity=False), 'SHA-256': hashlib.sha256()}


def checksums_of_file(path):
    """The file's checksums, {name: hex digest}, read in 1 MB chunks."""
    digests = new_digests()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            for digest in digests.values():
                digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def checksum_mismatch(checksums):
    """What differs from the official archive's checksums, or None when both match."""
    differences = [f'its {name} is {checksums[name]}, expected {expected}'
                   for name, expected in CIFAR10_CHECKSUMS.items()
                   if checksums[name] != expected]
    return '; '.join(differences) or None


def extract(archive, data_dir):
    """Unpacks the archive's `cifar-10-batches-py/` to `data_dir`, all or nothing.

    Raises:
        DataError: the archive is damaged or not the official one (nothing is
            left behind), or the disk or folder has no room for it (the
            archive is kept).
    """
    staging = data_dir + '.partial'
    remove_quietly(staging)  # what a killed earlier attempt may have left
    print(f'Extracting {archive}')
    try:
        with tarfile.open(archive, 'r:gz') as tar:
            members = checked_members(tar, archive)
            # Python's own check as well, where it has one (3.10.12, 3.11.4 and later)
            safety = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
            tar.extractall(staging, members=members, **safety)
        unpacked = os.path.join(staging, DATA_FOLDER)
        missing = [name for name in BATCH_FILES
                   if not os.path.isfile(os.path.join(unpacked, name))]
        if missing:
            raise DataError('{} does not hold the CIFAR-10 batch files (missing: {}).'
                            .format(archive, ', '.join(missing)))
    except OSError as error:
        remove_quietly(staging)
        if error.errno in DISK_ERRORS:  # the disk or the folder, not the archive
            raise DataError(
                f'Cannot unpack {archive} into {os.path.dirname(staging)}: '
                f'{error.strerror}. The archive itself is fine and is kept. The data set '
                'takes 180 MB: free some space (or fix the folder), then run again.') from None
        raise damaged_archive_error(archive, error) from None
    except (tarfile.TarError, EOFError, zlib.error) as error:
        remove_quietly(staging)
        raise damaged_archive_error(archive, error) from None
    except BaseException:  # a DataError above, or Ctrl-C: leave no half-made folder
        remove_quietly(staging)
        raise
    try:
        os.rename(unpacked, data_dir)
    except OSError as error:
        raise DataError(f'Cannot put the unpacked data set in place as {data_dir}: '
                        f'{error.strerror or error}.') from None
    finally:
        remove_quietly(staging)


def damaged_archive_error(archive, error):
    """The DataError for an archive that cannot be read."""
    return DataError(f'{archive} cannot be unpacked ({error}): it is damaged. Delete it and '
                     'run again.')


def checked_members(tar, archive):
    """The archive's members, once each is known to unpack inside the target folder.

    The official archive holds plain files and folders below
    `cifar-10-batches-py/`. A link, a device, an absolute path, a `..` or a
    set-user-id bit could write or run something outside it, on Pythons whose
    `tarfile` has no extraction filter too, so any of them is refused.

    Raises:
        DataError: naming the archive and the member.
    """
    members = tar.getmembers()
    for member in members:
        parts = member.name.replace('\\', '/').split('/')
        if not (member.isfile() or member.isdir()):
            problem = 'is a link or a special file'
        elif member.name.startswith(('/', '\\')) or '..' in parts or ':' in parts[0]:
            problem = 'would be written outside the data folder'
        elif member.mode & 0o7000:
            problem = 'asks for special permissions'
        else:
            continue
        raise DataError(f'{archive} holds {member.name!r}, which {problem}; the CIFAR-10 '
                        'archive holds only plain files. It is not the official archive: '
                        f'delete it and get {ARCHIVE_NAME} from {CIFAR10_PAGE}.')
    return members


def remove_quietly(path):
    """Removes a file or folder if it exists."""
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)
