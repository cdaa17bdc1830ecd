"""Runs a script's main() in-process and captures what it prints."""

import contextlib
import io

from tutorial_support import entry_point


def run_captured(module, *args):
    """Runs `module.main` with the arguments; returns (exit code, stdout, stderr).

    Works outside a test function too (module-scoped fixtures), where pytest's
    capsys is not available.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = entry_point.run_main(module.main, [module.__name__ + '.py', *args])
    return code, out.getvalue(), err.getvalue()
