"""The signals that stop a script, and how a script stops on them.

Ctrl-C sends SIGINT; `timeout`, `kill`, job schedulers and `docker stop`
send SIGTERM; closing the terminal sends SIGHUP. Each ends a script the way
Python ends it on Ctrl-C: with an exception (`Stopped`, a KeyboardInterrupt)
that `entry_point.run_main` turns into a message and the exit code a shell
gives a process that such a signal ended, 128 + its number (130, 143, 129).
A signal that is ignored when the script starts (SIGHUP under `nohup`) stays
ignored. While a script starts (TensorFlow takes seconds to load) a signal is
noted (`note_until_main`), and the script stops as soon as `run_main` begins.

Inside `noting()` (the training block, see `training_stops.saving_on_stop`)
a signal is only noted, and acted on at the next safe point; a second one
stops at once. Inside `shielded()` (while a checkpoint is saved and the
message printed), and once a stop was acted on (`finish_shielded`), every
signal is only noted, so nothing cuts a save or its message short.
"""

import contextlib
import signal
import threading

STOP_SIGNALS = tuple(getattr(signal, name) for name in ('SIGINT', 'SIGTERM', 'SIGHUP')
                     if hasattr(signal, name))  # Windows has no SIGHUP
DESCRIPTIONS = {signal.SIGINT: 'Ctrl-C (SIGINT)', signal.SIGTERM: 'SIGTERM (a request to stop)'}
if hasattr(signal, 'SIGHUP'):
    DESCRIPTIONS[signal.SIGHUP] = 'SIGHUP (its terminal was closed)'

_noted = []     # the stop signals noted and not yet let go (see `_on_signal`), in order
_noting = 0     # how many `noting()` blocks are open
_shielded = 0   # how many `shielded()` blocks are open
_finishing = False  # a stop was acted on: the rest of the script is shielded
_ignoring_until_exit = False  # the process ends on a stop: later signals change nothing
_waiting_for_main = False  # a script is starting: a signal is acted on when run_main begins


class Stopped(KeyboardInterrupt):
    """A stop signal arrived: raised where the program is, or at a safe point.

    Attributes:
        signal_number: the signal (SIGINT for a plain KeyboardInterrupt).
        at_once: a second signal, that did not wait for a safe point.
    """

    def __init__(self, signal_number=signal.SIGINT, at_once=False):
        super().__init__(signal_number)
        self.signal_number = signal_number
        self.at_once = at_once


def signal_number_of(stop):
    """The signal behind a KeyboardInterrupt: SIGINT unless it is a `Stopped`."""
    return getattr(stop, 'signal_number', signal.SIGINT)


def describe(signal_number):
    """'Ctrl-C (SIGINT)', 'SIGTERM (a request to stop)', ...: for messages."""
    return DESCRIPTIONS.get(signal_number, signal.Signals(signal_number).name)


def exit_code(signal_number):
    """The exit code a shell reports for a process that a signal ended: 128 + its number."""
    return 128 + signal_number


def noted_signals():
    """The stop signals noted inside the current `noting()` block, first first."""
    return list(_noted)


def _on_signal(signal_number, frame):
    """The handler of every stop signal while a script runs."""
    if _shielded or _finishing or ((_noting or _waiting_for_main) and not _noted):
        _noted.append(signal_number)  # acted on at the next safe point
        return
    if _noting or _waiting_for_main:
        _noted.append(signal_number)
    raise Stopped(signal_number, at_once=bool(_noting))


def _is_default(signal_number, handler):
    """Whether a handler is what Python starts with: raising on SIGINT, dying on others."""
    return handler is signal.default_int_handler or (
        handler == signal.SIG_DFL and signal_number != signal.SIGINT)


@contextlib.contextmanager
def _handling():
    """Puts `_on_signal` in place of the default handlers, and back afterwards.

    Signals ignored (SIG_IGN) or handled by someone else are left alone;
    outside the main thread nothing can be changed.
    """
    replaced = {}
    if threading.current_thread() is threading.main_thread():
        for number in STOP_SIGNALS:
            if _is_default(number, signal.getsignal(number)):
                replaced[number] = signal.signal(number, _on_signal)
    try:
        yield
    finally:
        for number, handler in replaced.items():
            signal.signal(number, signal.SIG_IGN if _ignoring_until_exit else handler)


@contextlib.contextmanager
def raising():
    """For a whole script: SIGTERM and SIGHUP raise `Stopped`, as Ctrl-C raises one too."""
    global _finishing
    with _handling():
        try:
            yield
        finally:
            _finishing = False


def finish_shielded():
    """From now until the script ends (`raising` is left), stop signals are only noted.

    Called once a stop has been acted on: the checkpoint saved and the message
    made, nothing that follows (closing files, printing it) is cut short.
    """
    global _finishing
    _finishing = True


@contextlib.contextmanager
def noting():
    """Inside: the first stop signal is only noted (see `stop_requested`); a second raises."""
    global _noting
    with _handling():
        if not _noting:
            _noted.clear()
        _noting += 1
        try:
            yield
        finally:
            _noting -= 1
            if not _noting:
                _noted.clear()


@contextlib.contextmanager
def shielded():
    """Inside: stop signals are only noted, so nothing is cut short (a save, a message)."""
    global _shielded
    with _handling():
        _shielded += 1
        try:
            yield
        finally:
            _shielded -= 1
            if not _noting:
                _noted.clear()  # outside training, a signal while shielded is let go


def note_until_main():
    """For a script, from its first import: a stop signal is noted until `run_main` begins.

    The script then stops at once (see `signal_before_main`), with a message
    and the signal's exit code, whether the signal came while TensorFlow was
    loading or in the moments after.
    """
    global _waiting_for_main
    if threading.current_thread() is threading.main_thread():
        for number in STOP_SIGNALS:
            if _is_default(number, signal.getsignal(number)):
                signal.signal(number, _on_signal)
        _waiting_for_main = True


def signal_before_main():
    """Ends the wait of `note_until_main`: the stop signal noted meanwhile, or None."""
    global _waiting_for_main
    _waiting_for_main = False
    if _noted and not _noting:
        signal_number = _noted[0]
        _noted.clear()
        return signal_number
    return None


def ignore_until_exit():
    """The process is ending on a stop signal: from now on further ones are ignored.

    Its message is printed and its exit code set; a signal in its last
    moments (closing files, TensorFlow's shutdown) would only end it with
    another exit code.
    """
    global _ignoring_until_exit
    _ignoring_until_exit = True
    if threading.current_thread() is threading.main_thread():
        for number in STOP_SIGNALS:
            handler = signal.getsignal(number)
            if handler is _on_signal or _is_default(number, handler):
                signal.signal(number, signal.SIG_IGN)


def stop_requested():
    """The first stop signal noted and not yet acted on, or None."""
    return _noted[0] if _noted else None
