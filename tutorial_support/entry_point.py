"""How every script starts and ends: `raise SystemExit(entry_point.run_main(main))`.

Whatever goes wrong that the user can fix ends in one paragraph on stderr
and a non-zero exit code, never a traceback. Ctrl-C, SIGTERM and SIGHUP end
a script with the exit code a shell gives for that signal (see
`stop_signals`); output that cannot be written does not stop it (see
`output_streams`).
"""

import sys

from tutorial_support import errors, output_streams, stop_signals


def run_main(main, argv=None):
    """Runs `main(argv)` and turns user errors and stop signals into a message and an exit code.

    Returns:
        The exit code: 0; 1 for a user error (or output that was lost); 128 +
        the signal's number after a stop signal (130 for Ctrl-C, 143 for
        SIGTERM, 129 for SIGHUP). A script (no `argv` given) that ends on a
        stop signal ignores further ones until it exits, so they cannot
        change that exit code.
    """
    with stop_signals.raising(), output_streams.guarded() as streams:
        exit_code = _run_and_report(main, sys.argv if argv is None else argv)
        if argv is None and exit_code > 128:  # this process ends on a stop signal
            stop_signals.ignore_until_exit()
        return output_streams.report_lost_output(streams, exit_code)


def _run_and_report(main, argv):
    """Runs `main(argv)`; returns its exit code, having printed what went wrong."""
    try:
        early_signal = stop_signals.signal_before_main()  # while the script was starting
        if early_signal is not None:
            raise stop_signals.Stopped(early_signal)
        main(argv)
    except errors.UserError as error:
        with stop_signals.shielded():
            print(f'\nError: {error}', file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as stop:
        signal_number = stop_signals.signal_number_of(stop)
        with stop_signals.shielded():
            print(f'\nStopped by {stop_signals.describe(signal_number)}. Nothing was saved '
                  'on the way out.', file=sys.stderr)
        return stop_signals.exit_code(signal_number)
    except Exception as error:  # noqa: BLE001 (only a full disk or memory is reported)
        message = errors.disk_full_message(error)
        first = error.__context__  # what was on its way out when a file's close failed
        if message and isinstance(first, errors.UserError):
            print(f'\nError: {first} (Then, on closing: {message}.)', file=sys.stderr)
            return first.exit_code
        if message:
            remedy = errors.remedy(message)
            print(f'\nError: {message}. {remedy[0].upper()}{remedy[1:]}, then run again. '
                  '(Checkpoints are written whole or not at all: any saved before are intact, '
                  'and a training run that has one continues with --resume.)', file=sys.stderr)
        elif is_out_of_memory(error):
            print(f'\nError: TensorFlow ran out of memory ({errors.first_line(error)}). Use a '
                  'smaller --batch_size (or --hidden1), or close other programs.',
                  file=sys.stderr)
        else:
            raise
        return 1
    return 0


def is_out_of_memory(error):
    """Whether `error` is TensorFlow's ResourceExhaustedError (known without importing it)."""
    return type(error).__name__ == 'ResourceExhaustedError'
