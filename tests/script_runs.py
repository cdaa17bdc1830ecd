"""Runs a script's main() in-process, captures what it prints, and checks it."""

import contextlib
import io
import os

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
