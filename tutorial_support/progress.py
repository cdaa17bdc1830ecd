"""A one-line progress bar on a terminal, for downloads and the CNN's epochs."""

import os
import sys
import time


class ProgressBar:
    """A one-line progress bar on a terminal; silent when output is a file or CI.

    Args:
        total: the count that means 100%.
        label: text before the bar.
        unit_scale: divide counts by this for display (1e6 for MB).
        unit: the unit shown after the counts.
        stream: where to draw; defaults to stderr so stdout stays clean.
    """

    def __init__(self, total, label, unit_scale=1, unit='', stream=None):
        self.total = total
        self.label = label
        self.unit_scale = unit_scale
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() and not os.environ.get('CI')
        self._last_draw = 0.0

    def update(self, done, suffix=''):
        """Redraws the bar, at most ten times a second."""
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
        if self.enabled:
            self.stream.write('\r\033[K' + (summary + '\n' if summary else ''))
            self.stream.flush()
