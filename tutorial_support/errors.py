"""The errors a user can fix, and how a full disk is recognised.

A `UserError` ends a script with its message as one paragraph and a non-zero
exit code (see `entry_point.run_main`), never with a traceback.
"""

import errno

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
                return f'Cannot write {path}: {reason}'
    return None


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
