"""The errors a user can fix, and how a full disk is recognised.

A `UserError` ends a script with its message as one paragraph and a non-zero
exit code (see `entry_point.run_main`), never with a traceback.
"""

import contextlib
import errno
import os
import re

# A full disk as the system words it, whichever file it happened to.
DISK_FULL = {errno.ENOSPC: 'No space left on device', errno.EDQUOT: 'Disk quota exceeded',
             errno.EFBIG: 'File too large', errno.EROFS: 'Read-only file system'}
# Write errors that mean the disk or the folder, not the file being written,
# is the problem.
DISK_ERRORS = (*DISK_FULL, errno.EACCES)


class UserError(Exception):
    """A problem the user can fix: the scripts print it and exit with `exit_code`."""

    exit_code = 1


class DataError(UserError):
    """The data set is missing, damaged or not in the CIFAR-10 format."""


class TrainingInterrupted(UserError):
    """A stop signal during training: exit as a shell reports that signal, 128 + its number."""

    def __init__(self, message, signal_number=2):  # 2: SIGINT, Ctrl-C
        super().__init__(message)
        self.exit_code = 128 + signal_number


def disk_full_message(error):
    """'Cannot write PATH: No space left on device' for a full disk; None otherwise.

    Python reports a full disk as an OSError; TensorFlow's writers as a
    RuntimeError or an OpError whose text holds `PATH; No space left on device`.
    """
    if isinstance(error, OSError) and error.errno in DISK_FULL:
        return f'Cannot write {error.filename or "a file"}: {DISK_FULL[error.errno]}'
    for line in error_text(error).splitlines():
        for reason in DISK_FULL.values():
            if reason in line:
                path = line.strip().split('; ')[0] if '; ' in line else 'a file'
                # an eager (TF2) op's error starts with the function's name in {{...}}
                path = re.sub(r'^\{\{function_node [^}]*\}\}\s*', '', path)
                return f'Cannot write {path}: {reason}'
    return None


@contextlib.contextmanager
def writing(path):
    """Inside: an OSError that names no file (a full disk, as `write()` reports it) names `path`."""
    try:
        yield
    except OSError as error:
        if error.errno is None:  # a short write ('3072 requested and 3040 written'): why?
            number = errno.EFBIG if is_at_size_limit(path) else errno.ENOSPC
            raise OSError(number, DISK_FULL[number], path) from None
        if error.filename is None:
            raise OSError(error.errno, error.strerror, path) from None
        raise


def file_size_limit():
    """The largest file this process may write (`ulimit -f`), in bytes; None if unlimited."""
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if limit == resource.RLIM_INFINITY else limit


def is_at_size_limit(path):
    """Whether a file has reached the limit on file sizes, so that writes to it fail."""
    limit = file_size_limit()
    try:
        return limit is not None and os.path.getsize(path) >= limit
    except OSError:
        return False


def remedy(reason):
    """What to do about a write that failed for `reason` (a `disk_full_message`)."""
    if reason and DISK_FULL[errno.EFBIG] in reason:
        return 'raise the limit on file sizes (ulimit -f) or free some disk space'
    if reason and DISK_FULL[errno.EROFS] in reason:
        return 'choose a folder on a disk you can write to'
    return 'free some disk space or fix the folder'


def error_text(error):
    """An error's own text: TensorFlow's `message`, or what str() gives."""
    return getattr(error, 'message', None) or str(error)


def first_line(error):
    """The first line of an error's text, for a message of one paragraph."""
    return (error_text(error).splitlines() or ['no details'])[0]
