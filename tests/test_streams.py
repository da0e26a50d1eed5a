"""The streams around export and import: the progress bar, counted lines, whole files."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from io import BytesIO, StringIO
from pathlib import Path
from unittest import mock

from django.core.management.base import OutputWrapper
from django.test import SimpleTestCase

from django_keyval.streams import (
    CountedLines,
    ProgressBar,
    file_size,
    write_lines,
    write_lines_to_file,
)


class ProgressBarTests(SimpleTestCase):
    def draw(self, bar: ProgressBar, *updates: int) -> None:
        with mock.patch.object(ProgressBar, "INTERVAL", 0):
            for done in updates:
                bar.update(done)

    def test_bar_with_a_total(self) -> None:
        out = StringIO()
        bar = ProgressBar(OutputWrapper(out), "exporting", 4, lambda done: done / 4)
        self.draw(bar, 1, 3)
        bar.finish(4)
        self.assertEqual(
            out.getvalue(),
            "\rexporting [#######.......................]  25% 1/4 pairs"
            "\rexporting [######################........]  75% 3/4 pairs"
            "\rexporting [##############################] 100% 4/4 pairs\n",
        )

    def test_count_without_a_fraction(self) -> None:
        out = StringIO()
        bar = ProgressBar(OutputWrapper(out), "importing")
        self.draw(bar, 1000, 1000, 2000)  # the same text is not drawn twice
        bar.finish(2500)
        self.assertEqual(
            out.getvalue(),
            "\rimporting 1000 pairs\rimporting 2000 pairs\rimporting 2500 pairs\n",
        )

    def test_shorter_line_covers_a_longer_one(self) -> None:
        out = StringIO()
        bar = ProgressBar(OutputWrapper(out), "importing")
        bar.draw("importing 10000 pairs")
        bar.draw("done")
        self.assertEqual(out.getvalue().split("\r")[-1], "done" + " " * 17)

    def test_fraction_is_kept_between_0_and_100_percent(self) -> None:
        bar = ProgressBar(OutputWrapper(StringIO()), "exporting", 2)
        self.assertIn("100% 3/2 pairs", bar.text(3, 1.5))
        self.assertIn("  0% 0/2 pairs", bar.text(0, -0.5))

    def test_abandon_ends_a_drawn_line_only(self) -> None:
        out = StringIO()
        bar = ProgressBar(OutputWrapper(out), "exporting")
        bar.abandon()
        self.assertEqual(out.getvalue(), "")
        self.draw(bar, 5)
        bar.abandon()
        self.assertEqual(out.getvalue(), "\rexporting 5 pairs\n")


class CountedLinesTests(SimpleTestCase):
    def test_counts_what_was_read(self) -> None:
        lines = CountedLines(BytesIO(b"ab\ncde\n\nf"))
        read = []
        for line in lines:
            read.append((line, lines.read))
        self.assertEqual(read, [(b"ab\n", 3), (b"cde\n", 7), (b"\n", 8), (b"f", 9)])


class FileSizeTests(SimpleTestCase):
    def test_a_regular_file_has_a_size_a_pipe_and_a_buffer_have_none(self) -> None:
        with tempfile.TemporaryFile() as handle:
            handle.write(b"12345")
            handle.flush()
            self.assertEqual(file_size(handle), 5)
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, write_end)
        with os.fdopen(read_end, "rb") as pipe:
            self.assertIsNone(file_size(pipe))
        self.assertIsNone(file_size(BytesIO(b"12345")))


class WriteLinesTests(SimpleTestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="keyval-streams-")
        self.addCleanup(shutil.rmtree, self.tmp)

    def test_write_lines_counts(self) -> None:
        written: list[str] = []
        self.assertEqual(write_lines(iter(["a", "b"]), written.append), 2)
        self.assertEqual(written, ["a", "b"])

    def test_file_gets_every_line_and_a_newline_each(self) -> None:
        path = Path(self.tmp, "out.jsonl")
        self.assertEqual(write_lines_to_file(str(path), ["{}", "[ü]"]), 2)
        self.assertEqual(path.read_bytes(), "{}\n[ü]\n".encode())
        self.assertEqual(os.listdir(self.tmp), ["out.jsonl"])

    def test_a_failure_keeps_the_earlier_file_and_leaves_nothing_behind(self) -> None:
        path = Path(self.tmp, "out.jsonl")
        path.write_text("earlier\n")

        def lines() -> Iterator[str]:
            yield "first"
            raise RuntimeError("the export failed")

        with self.assertRaisesMessage(RuntimeError, "the export failed"):
            write_lines_to_file(str(path), lines())
        self.assertEqual(path.read_text(), "earlier\n")
        self.assertEqual(os.listdir(self.tmp), ["out.jsonl"])

    def test_a_missing_folder_is_an_os_error(self) -> None:
        with self.assertRaises(FileNotFoundError):
            write_lines_to_file(os.path.join(self.tmp, "no", "out.jsonl"), ["x"])
        self.assertEqual(os.listdir(self.tmp), [])
