"""``manage.py keyval``: read and change stores from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import suppress
from typing import IO, Any

from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    DjangoHelpFormatter,
)
from django.db import connections, router, transaction

from ...exceptions import KeyValError
from ...models import KeyVal
from ...serializers import is_exact_json, parse_json
from ...store import get_model_class
from ...streams import CountedLines, ProgressBar, file_size, write_lines, write_lines_to_file
from ...transfer import count_pairs, export_lines, import_lines

HELP = """\
Read and change the key-value stores of django-keyval.

  manage.py keyval -c get -n STORE -k KEY
  manage.py keyval -c set -n STORE -k KEY -V VALUE [--json] [--timeout SECONDS]

Commands (-c/--command):
  set        store VALUE under KEY: a str, or with --json the JSON it means
  get        print the value of KEY (--json: as JSON)
  del        delete KEY
  exists     print True or False
  pop        print the value of KEY (as get does) and delete it
  incr       add --delta N (default 1) to an integer value; print the result
  decr       subtract, as incr adds
  list       print the keys of STORE (--prefix TEXT: those starting with it)
  stores     print the names of the stores
  flush      delete every pair of STORE, after confirmation (--noinput)
  flush_all  delete every pair of every store, after confirmation (--noinput)
  cull       delete the expired pairs of every store
  export     write the live pairs as JSON Lines to stdout or --output FILE
  import     store the pairs of an export (--input FILE, or stdin), all or none

The full reference (every option, the export format, exit statuses) is the
"manage.py keyval" page of the documentation, docs/command.rst.
"""

# For each command: the options it needs, and the further ones it accepts.
COMMANDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "set": (("name", "key", "value"), ("json", "timeout")),
    "get": (("name", "key"), ("json",)),
    "del": (("name", "key"), ()),
    "exists": (("name", "key"), ()),
    "pop": (("name", "key"), ("json",)),
    "incr": (("name", "key"), ("delta", "value")),
    "decr": (("name", "key"), ("delta", "value")),
    "list": (("name",), ("prefix",)),
    "stores": ((), ()),
    "flush": (("name",), ("interactive",)),
    "flush_all": ((), ("interactive",)),
    "cull": ((), ()),
    "export": ((), ("name", "output")),
    "import": ((), ("input",)),
}

# How each option is written, for error messages; and its value when not given.
OPTIONS: dict[str, tuple[str, Any]] = {
    "name": ("-n/--name", None),
    "key": ("-k/--key", None),
    "value": ("-V/--value", None),
    "json": ("--json", False),
    "timeout": ("--timeout", None),
    "delta": ("--delta", None),
    "prefix": ("--prefix", None),
    "interactive": ("--noinput", True),
    "output": ("--output", None),
    "input": ("--input", None),
}


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the description's line breaks kept."""


def _discard_process_stdout(stream: Any) -> None:
    """Point the process's stdout at /dev/null after a write to it (as ``stream``) failed.

    What the failed write left in its buffer is flushed again at exit;
    without this, that fails again, with a second error after the
    ``CommandError``. Another stream (``call_command(stdout=...)``) is left
    alone.
    """
    with suppress(OSError, ValueError):  # io.UnsupportedOperation is both
        if stream.fileno() == sys.stdout.fileno():
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())


class Command(BaseCommand):
    """Read and change key-value stores: ``manage.py keyval -c get -n STORE -k KEY``."""

    help = HELP
    # Lets tests hand import a stream in place of sys.stdin.
    stealth_options = ("stdin",)

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """Keep the line breaks of the help text."""
        kwargs.setdefault("formatter_class", _HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the options; see the help text for what each command does with them."""
        parser.add_argument(
            "-c",
            "--command",
            required=True,
            choices=list(COMMANDS),
            metavar="COMMAND",
            help=f"What to do: {', '.join(COMMANDS)}.",
        )
        parser.add_argument(
            "-n", "--name", "--store", dest="name", metavar="STORE", help="The store's name."
        )
        parser.add_argument("-k", "--key", metavar="KEY", help="The key.")
        parser.add_argument(
            "-V",
            "--value",
            metavar="VALUE",
            help="The value for set (a str unless --json), or the delta for incr/decr.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="set: parse VALUE as JSON. get/pop: print the value as JSON.",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            metavar="SECONDS",
            help="set: the pair expires after this many seconds (default: never).",
        )
        parser.add_argument(
            "--delta", type=int, metavar="N", help="incr/decr: the amount (default 1)."
        )
        parser.add_argument("--prefix", metavar="TEXT", help="list: only keys starting with TEXT.")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="flush/flush_all: do not ask for confirmation.",
        )
        parser.add_argument(
            "-o", "--output", metavar="FILE", help="export: write to FILE instead of stdout."
        )
        parser.add_argument(
            "-i",
            "--input",
            metavar="FILE",
            help='import: read FILE instead of stdin ("-" is stdin).',
        )
        parser.add_argument(
            "--database",
            metavar="ALIAS",
            help="The database alias to use (default: the one the routers choose).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Check the options for the command, run it, and turn errors into ``CommandError``."""
        command = options["command"]
        self.verbosity = options["verbosity"]
        self.using = options["database"]
        if self.using is not None and self.using not in connections.settings:
            raise CommandError(f"there is no database {self.using!r} in DATABASES")
        required, accepted = COMMANDS[command]
        for option in required:
            if options[option] is None:
                raise CommandError(f"-c {command} needs {OPTIONS[option][0]}")
        for option, (flag, default) in OPTIONS.items():
            if option not in required and option not in accepted and options[option] != default:
                raise CommandError(f"{flag} does not apply to -c {command}")
        try:
            getattr(self, f"command_{command}")(options)
        except KeyValError as error:
            raise CommandError(str(error)) from error
        except RecursionError:
            # A value nested so deeply that printing, checking or pickling it
            # exhausts Python's stack.
            raise CommandError("the value is nested too deeply to handle") from None

    # -- helpers ---------------------------------------------------------------

    def store(self, options: dict[str, Any]) -> KeyVal:
        """Return the store named by ``-n`` on the chosen database."""
        return KeyVal(options["name"], using=self.using)

    def say(self, message: str) -> None:
        """Print a confirmation, unless ``-v 0``."""
        if self.verbosity >= 1:
            self.stdout.write(message)

    def render_value(self, value: Any, as_json: bool) -> str:
        """Return a value as printed: a str as it is, JSON with ``--json``, else its repr().

        Raise ``CommandError`` for a value that cannot be shown that way.
        """
        try:
            if as_json:
                if not is_exact_json(value):
                    raise CommandError(
                        f"the value is a {type(value).__name__}, which JSON cannot show; "
                        "leave out --json to see its repr()"
                    )
                return json.dumps(value, ensure_ascii=False)
            return value if isinstance(value, str) else repr(value)
        except ValueError as error:
            # An int of more digits than Python turns into text
            # (sys.get_int_max_str_digits()), or a repr() that refuses.
            raise CommandError(
                f"cannot show the value (a {type(value).__name__}): {error}"
            ) from None

    def write_value(self, text: str) -> None:
        """Print a rendered value, and make sure it was written.

        Flushed at once, so that a full disk or a closed pipe is an error
        here, not at exit; text the output's encoding cannot write is one too.
        """
        try:
            # Exactly one newline, even after a value that ends with one.
            self.stdout.write(text + "\n", ending="")
            self.stdout.flush()
        except (OSError, UnicodeError) as error:
            if isinstance(error, OSError):
                _discard_process_stdout(self.stdout)
            raise CommandError(f"cannot write the value to the output: {error}") from None

    def print_value(self, value: Any, as_json: bool) -> None:
        """Print a value as :meth:`render_value` renders it."""
        self.write_value(self.render_value(value, as_json))

    def shows_progress(self, to_stdout: bool = False) -> bool:
        """Return whether to draw a progress bar: stderr is a terminal, not shared with data.

        Not with ``-v 0``, nor when data goes to stdout on a terminal, where
        the bar would be drawn over it.
        """
        if self.verbosity < 1 or not self.stderr.isatty():
            return False
        return not (to_stdout and self.stdout.isatty())

    # -- single keys -------------------------------------------------------------

    def command_set(self, options: dict[str, Any]) -> None:
        """Store a value (a str, or parsed JSON with ``--json``)."""
        value = options["value"]
        if options["json"]:
            try:
                value = parse_json(value)
            except ValueError as error:
                raise CommandError(f"-V is not valid JSON: {error}") from None
        kv = self.store(options)
        created = kv.set(options["key"], value, timeout=options["timeout"])
        verb = "Created" if created else "Updated"
        self.say(f"{verb} key {options['key']!r} in store {kv.name!r}.")

    def command_get(self, options: dict[str, Any]) -> None:
        """Print the value of a key."""
        self.print_value(self.store(options).get(options["key"]), options["json"])

    def command_del(self, options: dict[str, Any]) -> None:
        """Delete a key."""
        kv = self.store(options)
        kv.delete(options["key"])
        self.say(f"Deleted key {options['key']!r} from store {kv.name!r}.")

    def command_exists(self, options: dict[str, Any]) -> None:
        """Print True or False."""
        self.stdout.write(str(self.store(options).exists(options["key"])))

    def command_pop(self, options: dict[str, Any]) -> None:
        """Print the value of a key and delete it."""
        kv = self.store(options)
        alias = kv.using or router.db_for_write(get_model_class())
        # The delete commits only once the value is printed: a value that
        # cannot be shown, or an output that cannot be written (a full
        # disk, an encoding that lacks a character), keeps the pair.
        with transaction.atomic(using=alias):
            self.print_value(kv.pop(options["key"]), options["json"])

    def _delta(self, options: dict[str, Any]) -> int:
        if options["value"] is not None:
            if options["delta"] is not None:
                raise CommandError("give the amount with --delta or -V, not both")
            try:
                return int(options["value"])
            except ValueError:
                raise CommandError(f"-V must be an integer, not {options['value']!r}") from None
        return 1 if options["delta"] is None else options["delta"]

    def command_incr(self, options: dict[str, Any]) -> None:
        """Add to an integer value and print the result."""
        self.stdout.write(str(self.store(options).incr(options["key"], self._delta(options))))

    def command_decr(self, options: dict[str, Any]) -> None:
        """Subtract from an integer value and print the result."""
        self.stdout.write(str(self.store(options).decr(options["key"], self._delta(options))))

    # -- whole stores --------------------------------------------------------------

    def command_list(self, options: dict[str, Any]) -> None:
        """Print the keys of a store."""
        for key in self.store(options).keys(options["prefix"] or ""):
            self.stdout.write(key)

    def command_stores(self, options: dict[str, Any]) -> None:
        """Print the names of the stores."""
        for name in KeyVal.stores(using=self.using):
            self.stdout.write(name)

    def confirm(self, question: str, options: dict[str, Any]) -> bool:
        """Ask ``question``; return whether the answer was "yes" (always, with --noinput)."""
        if not options["interactive"]:
            return True
        try:
            answer = input(f"{question}\nType 'yes' to continue, or 'no' to cancel: ")
        except EOFError:
            raise CommandError(
                "no answer to the confirmation (stdin is closed); pass --noinput to skip it"
            ) from None
        if answer != "yes":
            self.stdout.write("Flush cancelled.")
            return False
        return True

    def command_flush(self, options: dict[str, Any]) -> None:
        """Delete every pair of a store, after confirmation."""
        kv = self.store(options)
        question = (
            f"This will permanently delete all {kv.count()} pairs of store {kv.name!r}. "
            "Are you sure?"
        )
        if self.confirm(question, options):
            self.say(f"Deleted {kv.flush()} pairs of store {kv.name!r}.")

    def command_flush_all(self, options: dict[str, Any]) -> None:
        """Delete every pair of every store, after confirmation."""
        stores = KeyVal.stores(using=self.using)
        question = (
            f"This will permanently delete every pair of all {len(stores)} stores. Are you sure?"
        )
        if self.confirm(question, options):
            self.say(f"Deleted {KeyVal.flush_all(using=self.using)} pairs.")

    def command_cull(self, options: dict[str, Any]) -> None:
        """Delete expired pairs."""
        self.say(f"Deleted {KeyVal.cull(using=self.using)} expired pairs.")

    # -- export and import -----------------------------------------------------------

    def command_export(self, options: dict[str, Any]) -> None:
        """Write pairs as JSON Lines."""
        path = options["output"]
        to_stdout = path is None or path == "-"
        if not to_stdout and os.path.isdir(path):
            raise CommandError(f"cannot write {path}: it is a directory")
        bar = None
        if self.shows_progress(to_stdout):
            total = count_pairs(using=self.using, store=options["name"])
            bar = ProgressBar(
                self.stderr, "exporting", total, lambda done: done / total if total else 1.0
            )
        lines = export_lines(
            using=self.using, store=options["name"], progress=None if bar is None else bar.update
        )
        try:
            count = self._write_stdout(lines) if to_stdout else self._write_file(path, lines)
        except BaseException:
            if bar is not None:
                bar.abandon()
            raise
        if bar is not None:
            bar.finish(count)
        if not to_stdout:
            self.say(f"Exported {count} pairs to {path}.")

    def _write_stdout(self, lines: Iterator[str]) -> int:
        written = 0

        def write(line: str) -> None:
            nonlocal written
            self.stdout.write(line)
            written += 1

        try:
            return write_lines(lines, write)
        except BrokenPipeError:
            # The reader went away (``export | head``).
            _discard_process_stdout(self.stdout)
            raise CommandError(
                f"the output was closed after {written} pairs; the export stopped there"
            ) from None

    def _write_file(self, path: str, lines: Iterator[str]) -> int:
        try:
            return write_lines_to_file(path, lines)
        except OSError as error:  # a missing folder, a full disk, a directory created meanwhile
            raise CommandError(f"cannot write {path}: {error}") from None

    def command_import(self, options: dict[str, Any]) -> None:
        """Read JSON Lines and store every pair, all or none."""
        path = options["input"]
        if path is None or path == "-":
            stdin = options.get("stdin") or sys.stdin
            if stdin is None:
                raise CommandError("there is no standard input to read (or pass --input FILE)")
            # Bytes, decoded line by line, so that text that is not UTF-8 is
            # reported with its line number. (A StringIO in tests has no buffer.)
            self._import(getattr(stdin, "buffer", stdin), "standard input")
            return
        try:
            handle = open(path, "rb")  # noqa: SIM115  (closed by "with")
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error}") from None
        with handle:
            self._import(handle, path)

    def _import(self, stream: IO[Any], source: str) -> None:
        lines = CountedLines(stream)
        bar = None
        if self.shows_progress():
            size = file_size(stream)

            def share_read(done: int) -> float:
                return lines.read / size if size else 1.0

            # A file's size gives a percentage; a pipe's length is unknown until its end.
            bar = ProgressBar(
                self.stderr, "importing", fraction=None if size is None else share_read
            )
        try:
            result = import_lines(
                lines, using=self.using, progress=None if bar is None else bar.update
            )
        except BaseException as error:
            if bar is not None:
                bar.abandon()
            if isinstance(error, OSError):
                raise CommandError(f"cannot read {source}: {error}") from None
            raise
        if bar is not None:
            bar.finish(result.imported)
        skipped = f" ({result.expired} already expired, skipped)" if result.expired else ""
        self.say(f"Imported {result.imported} pairs{skipped}.")
