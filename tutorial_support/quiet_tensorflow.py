"""TensorFlow, imported with its start-up notes kept off the learner's terminal.

Imported first by every script (`import tutorial_support.quiet_tensorflow`),
before TensorFlow itself: the C++ notes (oneDNN, CUDA drivers, CPU features)
are written at import time, before any log setting applies. The modules of
this package that need TensorFlow take it from here (`from
tutorial_support.quiet_tensorflow import tf`), so the order always holds.

Being first, it also opens /dev/null on a standard stream that is closed
(see `output_streams`), and ends the script with one line if Ctrl-C, SIGTERM
or SIGHUP comes during TensorFlow's seconds of import.
"""

import os
import sys
import threading

from tutorial_support import errors, output_streams, stop_signals

# A script started with a standard stream closed (`2>&-`) gets /dev/null
# there, before TensorFlow opens any file that could take its place
output_streams.open_missing_standard_streams()


def _started_as_a_script():
    """Whether this process is one of the suite's scripts (`python run_fc_model.py`)."""
    main_file = getattr(sys.modules.get('__main__'), '__file__', None)
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return main_file is not None and os.path.dirname(os.path.abspath(main_file)) == project


# A script notes Ctrl-C, SIGTERM and SIGHUP from now on, and stops on one as
# soon as its main() is reached (a script imported elsewhere changes nothing)
if _started_as_a_script():
    stop_signals.note_until_main()

# TensorFlow logs a page of C++ start-up notes; a learner needs none of them.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')


def _import_tensorflow_quietly():
    """Imports TensorFlow with stderr pointed at /dev/null for the import only.

    A few notes are written before TF_CPP_MIN_LOG_LEVEL applies; a Python
    error during the import is still shown.
    """
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow.compat.v1 as tf
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
    return tf


def _import_tensorflow_or_stop():
    """Imports TensorFlow; a stop signal during its seconds of loading is noted or acted on.

    A script notes the first (see `stop_signals.note_until_main`); a second,
    or the first where nothing notes it, ends the process at once. Nothing has
    been done yet, so there is nothing to save: a one-line note and the exit
    code of the first signal, not a traceback (Ctrl-C) or a silent end.
    """
    try:
        with stop_signals.raising():
            return _import_tensorflow_quietly()
    except KeyboardInterrupt as stop:
        stop_signals.ignore_until_exit()
        signal_number = (stop_signals.noted_signals() or [stop_signals.signal_number_of(stop)])[0]
        print(f'\nStopped by {stop_signals.describe(signal_number)} while starting, before '
              'anything was done.', file=sys.stderr)
        raise SystemExit(stop_signals.exit_code(signal_number)) from None


tf = _import_tensorflow_or_stop()
tf.get_logger().setLevel('ERROR')  # deprecation notes about tf.compat.v1 itself


def quiet_summary_writer_thread(args, default_hook=threading.excepthook):
    """A failing summary writer's thread (a full disk): a note at once, not a traceback.

    `FileWriter` hands the thread's error to the script at its next
    `add_summary` or `close`, which then stops the run (see
    `training_stops.checkpoint_on_stop`) with a message.
    """
    if args.thread is None or args.thread.name != 'EventLoggerThread':
        default_hook(args)
        return
    reason = errors.disk_full_message(args.exc_value) or errors.first_line(args.exc_value)
    print(f'\nNote: TensorBoard summaries could not be written ({reason}).', file=sys.stderr)


threading.excepthook = quiet_summary_writer_thread
tf.get_logger().addFilter(
    lambda record: not record.getMessage().startswith('EventFileWriter writer thread error'))
