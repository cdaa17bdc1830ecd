"""A one-line progress bar on a terminal, for downloads and the CNN's epochs."""

import os
import sys
import time

# A notebook has no terminal to redraw a bar on, but someone watches its output as
# it comes: there (`notebook_runs.setup` sets this) progress is printed as plain lines
# on stdout instead: the line a bar leaves when it closes (an epoch's), and for a
# bar given `line_every`, a line each time that fraction more is done (a download).
PLAIN_LINES = False


class ProgressBar:
    """A one-line progress bar on a terminal; silent when output is a file or CI.

    Args:
        total: the count that means 100%.
        label: text before the bar.
        unit_scale: divide counts by this for display (1e6 for MB).
        unit: the unit shown after the counts.
        stream: where to draw; defaults to stderr so stdout stays clean.
        line_every: with PLAIN_LINES and no terminal, a line each time this
            fraction of the total more is done (0.1: at 10%, 20%, ...).
    """

    def __init__(self, total, label, unit_scale=1, unit='', stream=None, line_every=None):
        self.total = total
        self.label = label
        self.unit_scale = unit_scale
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() and not os.environ.get('CI')
        self.plain_lines = PLAIN_LINES and not self.enabled
        self._lines_per_total = round(1 / line_every) if line_every else 0
        self._lines_printed = 0
        self._last_draw = 0.0

    def update(self, done, suffix=''):
        """Redraws the bar, at most ten times a second (as plain lines: see PLAIN_LINES)."""
        if self.plain_lines and self._lines_per_total and self.total:
            reached = int(done * self._lines_per_total // self.total)  # tenths done, say
            if reached > self._lines_printed:
                self._lines_printed = reached
                print(f'{self.label} {100 * min(done / self.total, 1):3.0f}% '
                      f'{done / self.unit_scale:.1f}/{self.total / self.unit_scale:.1f}'
                      f'{self.unit}', flush=True)
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1 and done < self.total:
            return
        self._last_draw = now
        fraction = min(done / self.total, 1.0) if self.total else 1.0
        filled = int(fraction * 30)
        line = '\r{} [{}{}] {:3.0f}% {:.{p}f}/{:.{p}f}{} {}'.format(
            self.label, '#' * filled, '.' * (30 - filled), 100 * fraction,
            done / self.unit_scale, self.total / self.unit_scale, self.unit, suffix,
            p=1 if self.unit_scale > 1 else 0)
        self.stream.write(line)
        self.stream.flush()

    def close(self, summary=None):
        """Clears the bar's line; with a summary, leaves that line in its place."""
        if self.plain_lines and summary:
            print(summary, flush=True)
        if self.enabled:
            self.stream.write('\r\033[K' + (summary + '\n' if summary else ''))
            self.stream.flush()
