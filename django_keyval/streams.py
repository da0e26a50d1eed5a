"""Streams for export and import: a progress bar, lines counted as read, a file written whole.

The ``keyval`` management command uses these around
:func:`~django_keyval.transfer.export_lines` and
:func:`~django_keyval.transfer.import_lines`; they know nothing of the store.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from typing import Any

from django.core.management.base import OutputWrapper


def _unstyled(text: str) -> str:
    return text


class ProgressBar:
    """A progress line on a terminal: a bar and a percentage, or a count of pairs.

    ``fraction(done)`` gives the share of the work done after ``done`` pairs;
    without it, only the count is shown. Redrawn at most every ``INTERVAL``
    seconds (and only when its text changes), so drawing costs nothing next
    to the work.
    """

    #: Characters in the bar.
    WIDTH = 30
    #: Seconds between redraws.
    INTERVAL = 0.1

    def __init__(
        self,
        stream: OutputWrapper,
        verb: str,
        total: int | None = None,
        fraction: Callable[[int], float] | None = None,
    ) -> None:
        self.stream = stream
        self.verb = verb
        self.total = total
        self.fraction = fraction
        self.drawn = ""
        self.drawn_at = -float("inf")

    def text(self, done: int, fraction: float | None) -> str:
        """Return the line for ``done`` pairs."""
        if fraction is None:
            return f"{self.verb} {done} pairs"
        fraction = min(max(fraction, 0.0), 1.0)  # pairs added meanwhile, a file grown
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        of_total = "" if self.total is None else f"/{self.total}"
        return f"{self.verb} [{bar}] {int(fraction * 100):3d}% {done}{of_total} pairs"

    def write(self, text: str, ending: str = "") -> None:
        """Write to the terminal as it is: Django styles stderr in red, for errors."""
        self.stream.write(text, style_func=_unstyled, ending=ending)

    def draw(self, text: str) -> None:
        """Replace the line on the terminal with ``text``, unless it shows that already."""
        if text != self.drawn:
            # Padded so that a shorter line hides the end of a longer one.
            self.write(f"\r{text:<{len(self.drawn)}}")
            self.stream.flush()
            self.drawn = text

    def update(self, done: int) -> None:
        """Show that ``done`` pairs are done, unless the last redraw was too recent."""
        now = time.monotonic()
        if now - self.drawn_at >= self.INTERVAL:
            self.drawn_at = now
            self.draw(self.text(done, None if self.fraction is None else self.fraction(done)))

    def finish(self, done: int) -> None:
        """Show the final count (and 100%), and end the line."""
        self.draw(self.text(done, None if self.fraction is None else 1.0))
        self.write("", ending="\n")

    def abandon(self) -> None:
        """End the line, if one was drawn, so an error message starts on a line of its own."""
        if self.drawn:
            self.write("", ending="\n")


class CountedLines:
    """The lines of a stream, counting the bytes (or characters) read so far in ``read``."""

    def __init__(self, stream: Iterable[Any]) -> None:
        self.stream = stream
        self.read = 0

    def __iter__(self) -> Iterator[Any]:
        for line in self.stream:
            self.read += len(line)
            yield line


def file_size(stream: Any) -> int | None:
    """Return the size of the regular file behind ``stream``; ``None`` for a pipe or terminal."""
    try:
        status = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def write_lines(lines: Iterable[str], write: Callable[[str], Any]) -> int:
    """Pass each line to ``write``; return how many were written."""
    count = 0
    for line in lines:
        write(line)
        count += 1
    return count


def write_lines_to_file(path: str, lines: Iterable[str]) -> int:
    """Write ``lines`` to the file ``path``, each with a newline; return how many.

    The file is written beside ``path`` under a temporary name and renamed
    once complete, so a failure (an ``OSError``, or any exception ``lines``
    raises) never leaves a truncated file, nor clobbers an earlier one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    # Closed by the "with" below; opened apart so that its own failure leaves nothing to remove.
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
        "w", encoding="utf-8", dir=directory, prefix=".keyval-export-", delete=False
    )
    try:
        with handle:
            count = write_lines(lines, lambda line: handle.write(line + "\n"))
        os.replace(handle.name, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(handle.name)
        raise
    return count
