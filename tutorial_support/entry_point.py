"""How every script starts and ends: `raise SystemExit(entry_point.run_main(main))`.

Whatever goes wrong that the user can fix ends in one paragraph on stderr
and a non-zero exit code, never a traceback.
"""

import sys

from tutorial_support import errors


def run_main(main, argv=None):
    """Runs `main(argv)` and turns user errors into a message and an exit code.

    Returns:
        The exit code: 0, 1 for a user error, 130 after Ctrl-C.
    """
    try:
        main(sys.argv if argv is None else argv)
    except errors.UserError as error:
        print(f'\nError: {error}', file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print('\nInterrupted: nothing was saved.', file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = None
    except Exception as error:  # noqa: BLE001 (only a full disk or memory is reported)
        message = errors.disk_full_message(error)
        if message:
            print(f'\nError: {message}. Free some disk space (or fix the folder), then run '
                  'again; checkpoints saved before are intact, and a training run that saved '
                  'one continues with --resume.', file=sys.stderr)
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
