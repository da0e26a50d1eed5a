"""``manage.py keyval``: read and change stores from the command line."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import IO, Any, NamedTuple, NoReturn

from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    DjangoHelpFormatter,
)
from django.db import DatabaseError, connections, transaction

from ...exceptions import KeyValError, NotAnIntegerError
from ...listing import listing_lines
from ...models import KeyVal
from ...serializers import check_json_value, parse_json
from ...streams import CountedLines, ProgressBar, file_size, write_lines, write_lines_to_file
from ...table import route
from ...transfer import SkippedPair, count_pairs, export_lines, import_lines


class Subcommand(NamedTuple):
    """What one command takes, in both forms of the command line."""

    #: Options the command needs: the positional arguments of ``keyval set
    #: STORE KEY VALUE``, the options ``-n``/``-k``/``-V`` of ``-c set``.
    needs: tuple[str, ...]
    #: Options it takes optionally, positional (``export [STORE]``) in the
    #: first form.
    optional: tuple[str, ...]
    #: Options that are options (``--json``) in both forms.
    options: tuple[str, ...]
    #: One line of ``--help``.
    summary: str


COMMANDS: dict[str, Subcommand] = {
    "set": Subcommand(
        ("name", "key", "value"),
        (),
        ("json", "timeout"),
        "store VALUE: a str, or with --json the JSON it means",
    ),
    "get": Subcommand(("name", "key"), (), ("json",), "print the value (--json: as JSON)"),
    "del": Subcommand(("name", "key"), (), (), "delete the pair"),
    "exists": Subcommand(("name", "key"), (), (), "print True or False"),
    "pop": Subcommand(("name", "key"), (), ("json",), "print the value and delete the pair"),
    "incr": Subcommand(("name", "key"), (), ("delta",), "add --delta N (default 1); print the sum"),
    "decr": Subcommand(("name", "key"), (), ("delta",), "subtract --delta N (default 1)"),
    "list": Subcommand(
        ("name",), (), ("prefix", "values"), "print the keys (--values: values, expiry)"
    ),
    "stores": Subcommand((), (), (), "print the names of the stores"),
    "flush": Subcommand(("name",), (), ("interactive",), "delete every pair of STORE"),
    "flush_all": Subcommand((), (), ("interactive",), "delete every pair of every store"),
    "cull": Subcommand((), (), (), "delete the expired pairs of every store"),
    "export": Subcommand((), ("name",), ("output",), "write the live pairs as JSON Lines"),
    "import": Subcommand((), ("input",), (), "store the pairs of an export, all or none"),
}

#: The 0.1.2 form also takes the amount of incr and decr as ``-V N``.
LEGACY_OPTIONS: dict[str, tuple[str, ...]] = {"incr": ("value",), "decr": ("value",)}

# How each option is written in the 0.1.2 form, for error messages; and its
# value when not given.
OPTIONS: dict[str, tuple[str, Any]] = {
    "name": ("-n/--name", None),
    "key": ("-k/--key", None),
    "value": ("-V/--value", None),
    "json": ("--json", False),
    "timeout": ("--timeout", None),
    "delta": ("--delta", None),
    "prefix": ("--prefix", None),
    "values": ("--values", False),
    "interactive": ("--noinput", True),
    "output": ("--output", None),
    "input": ("--input", None),
}

#: The positional arguments of the first form, named as ``--help`` shows them.
ARGUMENTS = {"name": "STORE", "key": "KEY", "value": "VALUE", "input": "FILE"}
ARGUMENT_HELP = {
    "name": "the store's name (export: only this store)",
    "key": "the key",
    "value": "the value: a str, unless --json",
    "input": 'read FILE (default, or "-": standard input)',
}


def _command_line(name: str) -> str:
    """Return ``set STORE KEY VALUE``: a command and its positional arguments."""
    command = COMMANDS[name]
    return " ".join(
        [
            name,
            *(ARGUMENTS[option] for option in command.needs),
            *(f"[{ARGUMENTS[option]}]" for option in command.optional),
        ]
    )


def _help_text() -> str:
    width = max(len(_command_line(name)) for name in COMMANDS)
    commands = "\n".join(
        f"  {_command_line(name):<{width}}  {command.summary}" for name, command in COMMANDS.items()
    )
    return f"""\
Read and change the key-value stores of django-keyval.

commands:
{commands}

"manage.py keyval COMMAND --help" shows the options of a command. The 0.1.2
form (-c get -n STORE -k KEY, -c set -n STORE -k KEY -V VALUE, ...) works too.
Full reference: the "manage.py keyval" page of the documentation
(docs/command.rst).
"""


USAGE = (
    "%(prog)s COMMAND [ARGUMENTS] [OPTIONS]\n"
    "       %(prog)s -c COMMAND [-n STORE] [-k KEY] [-V VALUE] [OPTIONS]"
)


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the description's line breaks kept."""


def _count(number: int, noun: str) -> str:
    """Return ``"1 pair"``, ``"2 pairs"``: ``number`` and ``noun``, plural but for one."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _all(number: int, noun: str) -> str:
    """Return ``"all 2 pairs"``, but ``"1 pair"``: for a question about all of them."""
    return _count(number, noun) if number == 1 else f"all {_count(number, noun)}"


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


def _add_option(parser: argparse.ArgumentParser, option: str, **kwargs: Any) -> None:
    """Declare ``option`` (a key of ``OPTIONS``) on ``parser``."""
    flags: dict[str, tuple[str, ...]] = {
        "json": ("--json",),
        "timeout": ("--timeout",),
        "delta": ("--delta",),
        "prefix": ("--prefix",),
        "values": ("--values",),
        "interactive": ("--noinput", "--no-input"),
        "output": ("-o", "--output"),
    }
    settings: dict[str, dict[str, Any]] = {
        "json": {
            "action": "store_true",
            "help": "print the value as JSON",
        },
        "timeout": {
            "type": float,
            "metavar": "SECONDS",
            "help": "the pair expires after this many seconds (default: never)",
        },
        "delta": {"type": int, "metavar": "N", "help": "the amount (default 1)"},
        "prefix": {"metavar": "TEXT", "help": "only the keys that start with TEXT"},
        "values": {
            "action": "store_true",
            "help": "show each key's expiry and value, cut to the terminal's width",
        },
        "interactive": {"action": "store_false", "help": "do not ask for confirmation"},
        "output": {"metavar": "FILE", "help": "write to FILE instead of standard output"},
    }
    parser.add_argument(*flags[option], dest=option, **{**settings[option], **kwargs})


class Command(BaseCommand):
    """Read and change key-value stores: ``manage.py keyval get STORE KEY``."""

    help = _help_text()
    # Lets tests hand import a stream in place of sys.stdin.
    stealth_options = ("stdin",)

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """Keep the line breaks of the help text; show both forms in the usage."""
        kwargs.setdefault("formatter_class", _HelpFormatter)
        kwargs.setdefault("usage", USAGE)
        self.parser = super().create_parser(prog_name, subcommand, **kwargs)
        return self.parser

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare both forms: ``keyval get STORE KEY`` and ``keyval -c get -n STORE -k KEY``.

        Both fill the same options (``name``, ``key``, ``value``, ...), which
        :meth:`handle` passes to the same method, ``command_get``.
        """
        # Options a command takes after its name, as Django's commands take
        # them anywhere; SUPPRESS leaves the values given before the name.
        common = CommandParser(add_help=False)
        common.add_argument(
            "--database",
            metavar="ALIAS",
            default=argparse.SUPPRESS,
            help="the database to use (default: the one the routers choose)",
        )
        common.add_argument(
            "-v",
            "--verbosity",
            type=int,
            choices=[0, 1, 2, 3],
            default=argparse.SUPPRESS,
            help="0 silences confirmations and the progress bar",
        )
        for flag in ("--traceback", "--no-color", "--force-color", "--skip-checks"):
            common.add_argument(
                flag, action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )
        for flag in ("--settings", "--pythonpath"):
            common.add_argument(flag, default=argparse.SUPPRESS, help=argparse.SUPPRESS)

        subparsers = parser.add_subparsers(
            dest="subcommand", metavar="COMMAND", prog=parser.prog, help=argparse.SUPPRESS
        )
        for name, command in COMMANDS.items():
            subparser = subparsers.add_parser(
                name,
                parents=[common],
                help=command.summary,
                description=f"{command.summary[0].upper()}{command.summary[1:]}.",
                formatter_class=_HelpFormatter,
            )
            for option in command.needs:
                subparser.add_argument(ARGUMENTS[option], help=ARGUMENT_HELP[option])
            for option in command.optional:
                subparser.add_argument(ARGUMENTS[option], nargs="?", help=ARGUMENT_HELP[option])
            for option in command.options:
                extra = {"help": "parse VALUE as JSON"} if (name, option) == ("set", "json") else {}
                _add_option(subparser, option, default=argparse.SUPPRESS, **extra)

        # The 0.1.2 form: every option at the top, named by -c. Described on
        # the documentation's page, not in --help, which stays short.
        hidden = argparse.SUPPRESS
        parser.add_argument(
            "-c", "--command", choices=list(COMMANDS), metavar="COMMAND", help=hidden
        )
        parser.add_argument("-n", "--name", "--store", dest="name", help=hidden)
        parser.add_argument("-k", "--key", help=hidden)
        parser.add_argument("-V", "--value", help=hidden)
        parser.add_argument("-i", "--input", help=hidden)
        for option in ("json", "timeout", "delta", "prefix", "values", "interactive", "output"):
            _add_option(parser, option, help=hidden)
        parser.add_argument(
            "--database",
            metavar="ALIAS",
            help="the database to use (default: the one the routers choose)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Check the options for the command, run it, and turn errors into ``CommandError``."""
        name = self.command_name(options)
        self.verbosity = options["verbosity"]
        self.using = options["database"]
        if self.using is not None and self.using not in connections.settings:
            raise CommandError(f"there is no database {self.using!r} in DATABASES")
        try:
            getattr(self, f"command_{name}")(options)
        except KeyValError as error:
            raise CommandError(str(error)) from error
        except DatabaseError as error:
            # A database that cannot be reached (or lacks the table) is one
            # line, like every other failure, naming the database.
            detail = " ".join(str(error).split())
            raise CommandError(f"database {self.database_name()}: {detail}") from error
        except RecursionError:
            # A value nested so deeply that printing, checking or pickling it
            # exhausts Python's stack.
            raise CommandError("the value is nested too deeply to handle") from None

    def database_name(self) -> str:
        """Name the database the command uses: ``--database``, or the routers' choice."""
        if self.using is not None:
            return repr(self.using)
        aliases = dict.fromkeys([route(write=False), route(write=True)])
        return " or ".join(repr(alias) for alias in aliases)

    def command_name(self, options: dict[str, Any]) -> str:
        """Return the command to run, with ``options`` filled the same way for either form.

        A command line that names no command, or mixes the forms, is a usage
        error (exit status 2), as argparse reports its own.
        """
        name: str | None = options.get("subcommand")
        if name is None:
            if options["command"] is None:
                self.usage_error(
                    "name a command, as in 'manage.py keyval get STORE KEY' "
                    "(or the 0.1.2 form: -c get -n STORE -k KEY)"
                )
            return self.legacy_command(options)
        self.legacy = False
        if options["command"] is not None:
            self.usage_error(f"give the command once: '{name}' or '-c {options['command']}'")
        for option in ARGUMENTS:
            if options[option] is not None:
                flag = OPTIONS[option][0]
                self.usage_error(
                    f"{flag} belongs to the 0.1.2 form (-c COMMAND); "
                    f"write: manage.py keyval {_command_line(name)}"
                )
            options[option] = options.get(ARGUMENTS[option])
        return name

    def legacy_command(self, options: dict[str, Any]) -> str:
        """Check the options of ``-c COMMAND`` as 0.1.2 did; return the command."""
        self.legacy = True
        name: str = options["command"]
        command = COMMANDS[name]
        accepted = command.optional + command.options + LEGACY_OPTIONS.get(name, ())
        for option in command.needs:
            if options[option] is None:
                raise CommandError(f"-c {name} needs {OPTIONS[option][0]}")
        for option, (flag, default) in OPTIONS.items():
            if (
                option not in command.needs
                and option not in accepted
                and options[option] != default
            ):
                raise CommandError(f"{flag} does not apply to -c {name}")
        return name

    def usage_error(self, message: str) -> NoReturn:
        """Report a command line that cannot be run, as argparse does (exit status 2)."""
        self.parser.error(message)
        raise AssertionError("unreachable: error() exits or raises")  # pragma: no cover

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
                try:
                    check_json_value(value)  # too deep: RecursionError, as handle() says
                except (TypeError, ValueError):
                    raise CommandError(
                        f"the value is a {type(value).__name__}, which JSON cannot show; "
                        "leave out --json to see its repr()"
                    ) from None
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
                flag = "-V" if self.legacy else "VALUE"
                raise CommandError(f"{flag} is not valid JSON: {error}") from None
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
        kv = self.store(options).routed(write=True)
        # The delete commits only once the value is printed: a value that
        # cannot be shown, or an output that cannot be written (a full
        # disk, an encoding that lacks a character), keeps the pair.
        with transaction.atomic(using=kv.using):
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
        self.add(options, self._delta(options))

    def command_decr(self, options: dict[str, Any]) -> None:
        """Subtract from an integer value and print the result."""
        self.add(options, -self._delta(options))

    def add(self, options: dict[str, Any], delta: int) -> None:
        """Add ``delta`` to the value of the key and print the result.

        A value stored as the text of a number (``set`` without ``--json``)
        is not an integer: the error says so, and how to store the number.
        """
        kv = self.store(options)
        key = options["key"]
        try:
            self.stdout.write(str(kv.incr(key, delta)))
        except NotAnIntegerError as error:
            value = kv.get_default(key)
            if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
                command = shlex.join(["keyval", "set", kv.name, key, value.strip(), "--json"])
                raise CommandError(
                    f"{error}; it was stored as text. To store the number, set it "
                    f"with --json: {command}"
                ) from error
            raise

    # -- whole stores --------------------------------------------------------------

    def command_list(self, options: dict[str, Any]) -> None:
        """Print the keys of a store; with ``--values``, each with its expiry and value."""
        kv = self.store(options)
        prefix = options["prefix"] or ""
        listed = 0
        if options["values"]:
            width = shutil.get_terminal_size().columns
            for line in listing_lines(kv, prefix, width):
                self.stdout.write(line)
                listed += 1
        else:
            for key in kv.keys(prefix):
                self.stdout.write(key)
                listed += 1
        if not listed and self.verbosity >= 1 and (not prefix or not kv.count()):
            self.stderr.write(f"There is no store {kv.name!r}: it holds no pairs.")

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
            f"This will permanently delete {_all(kv.count(), 'pair')} of store {kv.name!r}. "
            "Are you sure?"
        )
        if self.confirm(question, options):
            writer = kv.routed(write=True)
            deleted = self.count_and_run(str(writer.using), kv.name, writer.flush)
            self.say(f"Deleted {_count(deleted, 'pair')} of store {kv.name!r}.")

    def command_flush_all(self, options: dict[str, Any]) -> None:
        """Delete every pair of every store, after confirmation."""
        stores = KeyVal.stores(using=self.using)
        question = (
            f"This will permanently delete every pair of {_all(len(stores), 'store')}. "
            "Are you sure?"
        )
        if self.confirm(question, options):
            alias = self.using or route(write=True)
            deleted = self.count_and_run(alias, None, lambda: KeyVal.flush_all(using=alias))
            self.say(f"Deleted {_count(deleted, 'pair')}.")

    @staticmethod
    def count_and_run(alias: str, store: str | None, flush: Callable[[], None]) -> int:
        """Count the live pairs (of ``store``), then ``flush``, in one transaction; return how many.

        ``flush`` returns ``None``, as in 0.1.2; the count is what it deletes
        but for pairs that expired already.
        """
        with transaction.atomic(using=alias):
            deleted = count_pairs(using=alias, store=store)
            flush()
        return deleted

    def command_cull(self, options: dict[str, Any]) -> None:
        """Delete expired pairs."""
        self.say(f"Deleted {_count(KeyVal.cull(using=self.using), 'expired pair')}.")

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
        # A pair that cannot be read is reported, not the end of the export:
        # the others are written, and the command fails at the end.
        skipped: list[SkippedPair] = []
        lines = export_lines(
            using=self.using,
            store=options["name"],
            progress=None if bar is None else bar.update,
            skipped=skipped,
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
            self.say(f"Exported {_count(count, 'pair')} to {path}.")
        if skipped:
            for pair in skipped:
                self.stderr.write(
                    f"Skipped key {pair.key!r} of store {pair.store!r}: {pair.reason}"
                )
            raise CommandError(
                f"{_count(len(skipped), 'pair')} could not be exported (listed above); "
                f"{_count(count, 'pair')} exported"
            )

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
                f"the output was closed after {_count(written, 'pair')}; the export stopped there"
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
        self.say(f"Imported {_count(result.imported, 'pair')}{skipped}.")
