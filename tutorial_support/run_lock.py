"""The lock that keeps two processes from training into one run folder.

While a process trains in a run folder, the file `.training` there holds its
process id and start time. `--resume` refuses a run whose process is still
alive; a lock whose process is gone (killed, crashed, the machine restarted)
is taken over.
"""

import contextlib
import os

from tutorial_support.errors import UserError

LOCK_FILE = '.training'


@contextlib.contextmanager
def locked(run_dir):
    """Claims the run folder while this process trains in it.

    The lock file is created only if there is none, and removed however
    training ends.

    Raises:
        UserError: another process that is still running holds the folder.
    """
    check_not_in_use(run_dir)
    lock = os.path.join(run_dir, LOCK_FILE)
    with contextlib.suppress(FileNotFoundError):
        os.remove(lock)  # free, or left by a process that is gone
    try:
        with open(lock, 'x') as f:
            f.write(f'{os.getpid()} {process_start(os.getpid())}')
    except FileExistsError:
        raise UserError(f'Another process claimed the run in {run_dir} at this very moment '
                        f'(see {lock}). Wait for it to end.') from None
    except OSError as error:
        raise UserError(f'Cannot write {lock}: {error.strerror or error}.') from None
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(lock)


def check_not_in_use(run_dir):
    """Fails when another live process is training the run in `run_dir`.

    Raises:
        UserError: naming the process.
    """
    lock = os.path.join(run_dir, LOCK_FILE)
    if not os.path.lexists(lock):
        return  # free
    if os.path.islink(lock) or not os.path.isfile(lock):
        raise UserError(f'{lock} is not a lock file of this suite (a folder, a link or a '
                        'special file). Remove it, then run again.')
    try:
        with open(lock) as f:
            holder, *start = f.read(64).split()
        holder = int(holder)
    except (OSError, ValueError):
        return  # an empty or damaged lock: no process can be holding it
    if holder == os.getpid() or not process_is_running(holder):
        return
    if start and process_start(holder) not in (None, start[0]):
        return  # the id now belongs to another process: the holder is gone
    raise UserError(
        f'The run in {run_dir} is being trained by another process (pid {holder}, as its '
        f'lock {lock} says). Wait for it to end, or stop it, before resuming; if no '
        'training is running, remove that file.')


def process_is_running(pid):
    """Whether a process with this id exists (never checked on Windows)."""
    if os.name != 'posix' or not 0 < pid < 2 ** 22:
        return False  # Windows: signal 0 would send a Ctrl-C; no process has such an id
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, but belongs to another user
    return True


def process_start(pid):
    """When a process started, in clock ticks since boot (Linux), or None where unknown.

    With its id it names a process: an id is reused by later processes, a
    start time is not.
    """
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None
