"""Standard output and error that nobody can read never cost a run its work.

A script's output may go to a pipe whose reader has gone (`| head`), to a
full disk (`> /dev/full`), to a terminal that was closed, or nowhere at all
(started with `2>&-`). None of these stops training or changes its result:

* a standard stream that is closed when the script starts is opened on
  /dev/null, so that no file the script opens takes its place (TensorFlow's
  C++ notes would be written into it);
* while a script runs (`guarded`), a write that fails is noted and the
  stream's further output dropped; the run goes on, and at its end a note on
  the other stream says what was lost (`report_lost_output`), and the exit
  code is 1 rather than 0.
"""

import contextlib
import os
import sys

STREAM_NAMES = {1: 'standard output', 2: 'standard error'}


def open_missing_standard_streams():
    """Opens /dev/null on file descriptors 0, 1 and 2 where they are closed.

    Called before anything else opens a file (see `quiet_tensorflow`).
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
    if sys.stdout is None:
        sys.stdout = open(os.devnull, 'w')  # noqa: SIM115 (lives as long as the script)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, 'w')  # noqa: SIM115


class GuardedStream:
    """A text stream whose write errors are noted, never raised.

    After the first failure (a broken pipe, a full disk, a closed terminal)
    the stream's output is dropped, and its file descriptor is pointed at
    /dev/null, so that Python's own last flush at exit finds nothing to fail on.

    Attributes:
        error: the first OSError or ValueError a write or flush raised, or None.
    """

    def __init__(self, stream, fd):
        self._stream = stream
        self._fd = fd
        self.error = None

    def write(self, text):
        if self.error is None:
            try:
                try:
                    return self._stream.write(text)
                except UnicodeEncodeError:  # a path in another encoding; a 7-bit locale
                    encoding = getattr(self._stream, 'encoding', None) or 'ascii'
                    return self._stream.write(
                        text.encode(encoding, 'backslashreplace').decode(encoding))
            except (OSError, ValueError) as error:  # ValueError: a closed file
                self._failed(error)
        return len(text)

    def flush(self):
        if self.error is None:
            try:
                self._stream.flush()
            except (OSError, ValueError) as error:
                self._failed(error)

    def isatty(self):
        try:
            return self.error is None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name):  # encoding, fileno, ...: the stream's own
        return getattr(self._stream, name)

    def _failed(self, error):
        self.error = error
        with contextlib.suppress(OSError, ValueError):
            if self._stream.fileno() == self._fd:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._fd)
                os.close(devnull)

    def what_was_lost(self):
        """'standard output could not be written (Broken pipe)...', or None."""
        if self.error is None:
            return None
        reason = getattr(self.error, 'strerror', None) or str(self.error)
        return (f'{STREAM_NAMES[self._fd]} could not be written ({reason}), so some of the '
                'output was lost')


@contextlib.contextmanager
def guarded():
    """Inside: sys.stdout and sys.stderr are `GuardedStream`s; yields both, output first."""
    saved = sys.stdout, sys.stderr
    streams = GuardedStream(sys.stdout, 1), GuardedStream(sys.stderr, 2)
    sys.stdout, sys.stderr = streams
    try:
        yield streams
    finally:
        for stream in streams:
            stream.flush()
        sys.stdout, sys.stderr = saved


def report_lost_output(streams, exit_code):
    """After a script: says on a stream that works what the other could not write.

    Returns:
        The exit code: 1 instead of 0 when output was lost.
    """
    for stream in streams:
        stream.flush()
    lost = [message for message in (stream.what_was_lost() for stream in streams) if message]
    if not lost:
        return exit_code
    note = '\nNote: {}. The script did not stop for it.'.format('; '.join(lost))
    for stream in reversed(streams):  # standard error first
        if stream.error is None:
            stream.write(note + '\n')
            stream.flush()
            if stream.error is None:
                break
    return exit_code or 1
