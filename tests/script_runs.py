"""Runs a script's main() in-process, captures what it prints, and checks it."""

import contextlib
import io
import os
import signal
import subprocess
import sys

from tutorial_support import entry_point

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the scripts' folder


def run_captured(module, *args):
    """Runs `module.main` with the arguments; returns (exit code, stdout, stderr).

    Works outside a test function too (module-scoped fixtures), where pytest's
    capsys is not available.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = entry_point.run_main(module.main, [module.__name__ + '.py', *args])
    return code, out.getvalue(), err.getvalue()


def finished_run(module, *args):
    """Runs a script that must succeed (exit 0); returns what it printed on stdout."""
    code, out, err = run_captured(module, *args)
    assert code == 0, err
    return out


def run_in_new_folder(tmp_path_factory, name, module, *args):
    """A successful run whose --train_dir is a new temporary folder: (train_dir, stdout)."""
    train_dir = str(tmp_path_factory.mktemp(name))
    return train_dir, finished_run(module, '--train_dir', train_dir, *args)


def assert_user_error(code, err, *phrases):
    """Exit 1 with an 'Error: ...' message holding every phrase, and no traceback."""
    assert code == 1, err
    assert 'Error: ' in err
    assert 'Traceback' not in err
    for phrase in phrases:
        assert phrase in err, (phrase, err)


def line_value(out, prefix):
    """The text after `prefix` on the only line that starts with it."""
    lines = [line for line in out.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return lines[0][len(prefix):]


def start_script(script, *args, **popen_args):
    """Starts a script as a real process, its output unbuffered: the `subprocess.Popen`.

    Ctrl-C is at its default in the child, as in a terminal, even when this test
    run was started as a background job (which would hand it SIGINT ignored).
    """
    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, script, *args], cwd=PROJECT_DIR, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED='1'),
            **{'stdout': subprocess.PIPE, 'stderr': subprocess.PIPE, **popen_args})
    finally:
        signal.signal(signal.SIGINT, previous_handler)


def read_until(stream, prefix):
    """Reads lines until one starts with `prefix`; returns the lines read (it last)."""
    seen = []
    for line in stream:
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f'no line starting with {prefix!r} in:\n' + ''.join(seen))


def kill_if_running(process):
    """Ends a process a test started, if it still runs (a test that failed half-way)."""
    if process.poll() is None:
        process.kill()
        process.wait()
