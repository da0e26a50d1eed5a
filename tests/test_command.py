"""``manage.py keyval``, through ``call_command`` and once as a real process."""

from __future__ import annotations

import datetime
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from contextlib import suppress
from io import BytesIO, StringIO, TextIOWrapper
from pathlib import Path
from typing import Any
from unittest import mock

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_keyval import transfer
from django_keyval.management.commands import keyval as keyval_command
from django_keyval.models import KeyVal, KeyValPair
from django_keyval.streams import ProgressBar
from tests.helpers import TTYStringIO, forged_pickle, insert_raw, rows, sample_values, typed

REPO = Path(__file__).resolve().parent.parent


class EndlessRepr:
    """A value whose repr() never ends (it recurses until Python gives up)."""

    def __repr__(self) -> str:
        return repr(self)


def bar(verb: str, percent: int, done: str) -> str:
    """A progress line as the command draws it: 30 characters of bar, then the figures."""
    filled = percent * 30 // 100
    return f"\r{verb} [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}% {done} pairs"


def close_quietly(stream: Any) -> None:
    """Close ``stream``; a write failed, so the flush on closing may fail again."""
    with suppress(OSError):
        stream.close()


def run(*args: str, **options: Any) -> str:
    """Run the command; return what it printed on stdout."""
    stdout = StringIO()
    call_command("keyval", *args, stdout=stdout, stderr=StringIO(), **options)
    return stdout.getvalue()


class TempDirMixin:
    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.tmp = tempfile.mkdtemp(prefix="keyval-command-")
        self.addCleanup(shutil.rmtree, self.tmp)  # type: ignore[attr-defined]


class SeedFormTests(TestCase):
    """The interface the 0.1.2 description promised: -c set|get|del -n -k -V."""

    def test_set_get_del(self) -> None:
        self.assertEqual(
            run("-c", "set", "-n", "name", "-k", "key", "-V", "value"),
            "Created key 'key' in store 'name'.\n",
        )
        self.assertEqual(KeyVal("name").get("key"), "value")
        self.assertEqual(run("-c", "get", "-n", "name", "-k", "key"), "value\n")
        self.assertEqual(
            run("-c", "set", "-n", "name", "-k", "key", "-V", "other"),
            "Updated key 'key' in store 'name'.\n",
        )
        self.assertEqual(
            run("-c", "del", "-n", "name", "-k", "key"), "Deleted key 'key' from store 'name'.\n"
        )
        self.assertFalse(KeyVal("name").exists("key"))

    def test_set_stores_a_str(self) -> None:
        run("-c", "set", "-n", "s", "-k", "k", "-V", "5")
        self.assertEqual(KeyVal("s").get("k"), "5")
        run("-c", "set", "-n", "s", "-k", "empty", "-V", "")
        self.assertEqual(KeyVal("s").get("empty"), "")

    def test_long_forms(self) -> None:
        run("--command", "set", "--name", "s", "--key", "k", "--value", "v")
        run("--command=set", "--store", "t", "--key", "k", "--value=w")
        self.assertEqual(run("--command", "get", "--store", "s", "--key", "k"), "v\n")
        self.assertEqual(run("--command", "get", "--name", "t", "--key", "k"), "w\n")

    def test_verbosity_0_silences_confirmations_not_data(self) -> None:
        self.assertEqual(run("-c", "set", "-n", "s", "-k", "k", "-V", "v", "-v", "0"), "")
        self.assertEqual(run("-c", "get", "-n", "s", "-k", "k", "-v", "0"), "v\n")
        self.assertEqual(run("-c", "del", "-n", "s", "-k", "k", "-v", "0"), "")
        self.assertEqual(run("-c", "set", "-n", "s", "-k", "k", "-V", "v", verbosity=0), "")

    def test_get_missing_key(self) -> None:
        with self.assertRaisesMessage(CommandError, "key 'nope' not found in store 's'"):
            run("-c", "get", "-n", "s", "-k", "nope")

    def test_del_missing_key(self) -> None:
        with self.assertRaisesMessage(CommandError, "key 'nope' not found in store 's'"):
            run("-c", "del", "-n", "s", "-k", "nope")

    def test_missing_options(self) -> None:
        for args, message in [
            (("-c", "get", "-n", "s"), "-c get needs -k/--key"),
            (("-c", "get", "-k", "k"), "-c get needs -n/--name"),
            (("-c", "set", "-n", "s", "-k", "k"), "-c set needs -V/--value"),
            (
                (
                    "-c",
                    "list",
                ),
                "-c list needs -n/--name",
            ),
            (("-n", "s", "-k", "k"), "name a command, as in 'manage.py keyval get STORE KEY'"),
        ]:
            with self.subTest(args=args), self.assertRaisesMessage(CommandError, message):
                run(*args)

    def test_unknown_command(self) -> None:
        with self.assertRaisesMessage(CommandError, "invalid choice: 'fetch'"):
            run("-c", "fetch", "-n", "s", "-k", "k")

    def test_option_that_does_not_apply(self) -> None:
        for args, message in [
            (("-c", "get", "-n", "s", "-k", "k", "--timeout", "5"), "--timeout does not apply"),
            (("-c", "del", "-n", "s", "-k", "k", "-V", "x"), "-V/--value does not apply to -c del"),
            (("-c", "stores", "-n", "s"), "-n/--name does not apply to -c stores"),
            (("-c", "get", "-n", "s", "-k", "k", "--noinput"), "--noinput does not apply"),
            (("-c", "list", "-n", "s", "-o", "f"), "--output does not apply"),
        ]:
            with self.subTest(args=args), self.assertRaisesMessage(CommandError, message):
                run(*args)

    def test_bad_store_and_key_names(self) -> None:
        for args, message in [
            (("-c", "get", "-n", "", "-k", "k"), "a store name may not be empty"),
            (("-c", "get", "-n", "s" * 201, "-k", "k"), "at most 200 characters"),
            (("-c", "set", "-n", "s", "-k", "k" * 501, "-V", "v"), "at most 500 characters"),
            (("-c", "set", "-n", "s", "-k", "a\x00b", "-V", "v"), "NUL character"),
        ]:
            with self.subTest(args=args[:4]), self.assertRaisesMessage(CommandError, message):
                run(*args)
        self.assertEqual(KeyValPair.objects.count(), 0)


class CommandFormTests(TestCase):
    """The form people expect, ``keyval get STORE KEY``, beside the 0.1.2 form."""

    databases = {"default", "other"}

    def test_every_command_in_both_forms(self) -> None:
        # Each pair of command lines runs the same method: same output, same effect.
        steps: list[tuple[tuple[str, ...], tuple[str, ...], str | None]] = [
            (("set", "s", "k", "v"), ("-c", "set", "-n", "s", "-k", "k", "-V", "v"), "Updated"),
            (("get", "s", "k"), ("-c", "get", "-n", "s", "-k", "k"), "v\n"),
            (("exists", "s", "k"), ("-c", "exists", "-n", "s", "-k", "k"), "True\n"),
            (("list", "s"), ("-c", "list", "-n", "s"), "k\n"),
            (("stores",), ("-c", "stores"), "s\n"),
            (("pop", "s", "k"), ("-c", "pop", "-n", "s", "-k", "k"), "v\n"),
            (("incr", "s", "n"), ("-c", "incr", "-n", "s", "-k", "n"), None),
            (
                ("decr", "s", "n", "--delta", "5"),
                ("-c", "decr", "-n", "s", "-k", "n", "--delta", "5"),
                None,
            ),
            (("del", "s", "n"), ("-c", "del", "-n", "s", "-k", "n"), "Deleted key 'n'"),
            (("cull",), ("-c", "cull"), "Deleted 0 expired pairs.\n"),
        ]
        for modern, legacy, expected in steps:
            with self.subTest(modern):
                KeyVal("s").set("k", "v")
                KeyVal("s").set("n", 10)
                first = run(*modern)
                rows_after_first = rows()
                KeyVal("s").set("k", "v")
                KeyVal("s").set("n", 10)
                second = run(*legacy)
                self.assertEqual(first, second)
                self.assertEqual(rows_after_first, rows())
                if expected is not None:
                    self.assertTrue(first.startswith(expected), first)
        self.assertEqual(run("incr", "s", "n", "--delta", "3"), "13\n")
        self.assertEqual(run("decr", "s", "n"), "12\n")

    def test_set_json_and_timeout(self) -> None:
        before = timezone.now()
        run("set", "s", "k", '{"a": [1, null]}', "--json", "--timeout", "60")
        self.assertEqual(KeyVal("s").get("k"), {"a": [1, None]})
        expires_at = KeyVal("s").expires_at("k")
        assert expires_at is not None
        self.assertGreaterEqual(expires_at, before + datetime.timedelta(seconds=60))
        self.assertEqual(run("get", "s", "k", "--json"), '{"a": [1, null]}\n')
        self.assertEqual(run("pop", "s", "k", "--json"), '{"a": [1, null]}\n')
        with self.assertRaisesMessage(CommandError, "VALUE is not valid JSON: Expecting value"):
            run("set", "s", "k", "nope", "--json")
        self.assertFalse(KeyVal("s").exists("k"))

    def test_a_value_that_looks_like_an_option(self) -> None:
        run("set", "s", "k", "--", "-5")
        self.assertEqual(KeyVal("s").get("k"), "-5")

    def test_flush_and_flush_all(self) -> None:
        KeyVal("a").set_many({"x": 1, "y": 2})
        KeyVal("b").set("z", 3)
        with mock.patch("builtins.input", return_value="no"):
            self.assertEqual(run("flush", "a"), "Flush cancelled.\n")
        self.assertEqual(run("flush", "a", "--noinput"), "Deleted 2 pairs of store 'a'.\n")
        call_command("keyval", "flush_all", interactive=False, stdout=StringIO())
        self.assertEqual(KeyValPair.objects.count(), 0)

    def test_export_and_import(self) -> None:
        KeyVal("a").set("x", 1)
        KeyVal("b").set("y", [2])
        tmp = tempfile.mkdtemp(prefix="keyval-command-")
        self.addCleanup(shutil.rmtree, tmp)
        path = os.path.join(tmp, "a.jsonl")
        self.assertEqual(run("export", "a", "-o", path), f"Exported 1 pair to {path}.\n")
        self.assertEqual(run("export", "a"), Path(path).read_text(encoding="utf-8"))
        everything = run("export")
        self.assertEqual(len(everything.splitlines()), 2)
        KeyVal.flush_all()
        self.assertEqual(run("import", path), "Imported 1 pair.\n")
        self.assertEqual(run("import", "-", stdin=StringIO(everything)), "Imported 2 pairs.\n")
        self.assertEqual(run("import", stdin=StringIO(everything), verbosity=0), "")
        self.assertEqual(KeyVal("b").get("y"), [2])

    def test_options_before_and_after_the_command(self) -> None:
        run("set", "s", "k", "on other", "--database", "other")
        run("--database", "other", "set", "s", "k2", "also on other")
        self.assertEqual(run("get", "s", "k", "--database", "other"), "on other\n")
        self.assertEqual(KeyVal.stores(using="other"), ["s"])
        self.assertEqual(KeyVal.stores(), [])
        self.assertEqual(run("set", "s", "k", "v", "-v", "0"), "")
        self.assertEqual(run("-v", "0", "del", "s", "k"), "")
        with self.assertRaisesMessage(CommandError, "there is no database 'nowhere'"):
            run("stores", "--database", "nowhere")

    def test_command_line_errors(self) -> None:
        for args, message in [
            (("get", "s"), "the following arguments are required: KEY"),
            (("set", "s", "k"), "the following arguments are required: VALUE"),
            (("fetch", "s", "k"), "argument COMMAND: invalid choice: 'fetch'"),
            (("get", "s", "k", "--timeout", "5"), "unrecognized arguments: --timeout 5"),
            (("get", "s", "k", "extra"), "unrecognized arguments: extra"),
            (("incr", "s", "k", "--delta", "x"), "argument --delta: invalid int value: 'x'"),
            (("-c", "get", "get", "s", "k"), "give the command once: 'get' or '-c get'"),
            (
                ("-n", "s", "get", "s", "k"),
                "-n/--name belongs to the 0.1.2 form (-c COMMAND); "
                "write: manage.py keyval get STORE KEY",
            ),
            (("-i", "f", "import"), "--input belongs to the 0.1.2 form"),
            ((), "name a command, as in 'manage.py keyval get STORE KEY'"),
        ]:
            with self.subTest(args), self.assertRaisesMessage(CommandError, message):
                run(*args)
        self.assertEqual(KeyValPair.objects.count(), 0)

    def test_the_new_list_option_in_the_0_1_2_form(self) -> None:
        KeyVal("s").set("k", 1)
        self.assertEqual(run("-c", "list", "-n", "s", "--values"), run("list", "s", "--values"))
        with self.assertRaisesMessage(CommandError, "--values does not apply to -c get"):
            run("-c", "get", "-n", "s", "-k", "k", "--values")


class HelpTests(TestCase):
    """``--help`` is a short usage; docs/command.rst is the reference."""

    def help(self, *subcommand: str) -> str:
        parser = keyval_command.Command().create_parser("manage.py", "keyval")
        if subcommand:
            [subparsers] = [action for action in parser._actions if action.dest == "subcommand"]
            parser = subparsers.choices[subcommand[0]]  # type: ignore[index]
        with mock.patch.dict(os.environ, {"COLUMNS": "80"}):
            return parser.format_help()

    def test_short_with_one_line_per_command(self) -> None:
        text = self.help()
        lines = text.splitlines()
        self.assertLessEqual(len(lines), 50)
        self.assertEqual([line for line in lines if len(line) > 80], [])
        for name in keyval_command.COMMANDS:
            with self.subTest(name):
                [line] = [
                    line for line in lines if line.startswith(f"  {name} ") or line == f"  {name}"
                ]
                self.assertIn(keyval_command.COMMANDS[name].summary, line)
        self.assertIn("  set STORE KEY VALUE  store VALUE", text)
        self.assertIn("  export [STORE]", text)
        self.assertIn("docs/command.rst", text)
        self.assertIn("-c get -n STORE -k KEY", text)
        # The 0.1.2 options are on the documentation's page, not here.
        self.assertNotIn("--prefix", text)

    def test_each_command_has_its_own_help(self) -> None:
        for name in keyval_command.COMMANDS:
            with self.subTest(name):
                text = self.help(name)
                self.assertTrue(text.startswith(f"usage: manage.py keyval {name} "), text)
                self.assertEqual([line for line in text.splitlines() if len(line) > 80], [])
        self.assertIn("--timeout SECONDS", self.help("set"))
        self.assertIn("parse VALUE as JSON", self.help("set"))
        self.assertIn("print the value as JSON", self.help("get"))
        self.assertIn("--values", self.help("list"))


class ListValuesTests(TestCase):
    """``list STORE --values``: each key with its expiry and value, cut to the terminal."""

    def list_values(self, *args: str, columns: int = 200, **options: Any) -> str:
        with mock.patch.dict(os.environ, {"COLUMNS": str(columns)}):
            return run("list", *args, "--values", **options)

    def test_keys_expiry_and_values(self) -> None:
        kv = KeyVal("s")
        kv.set("greeting", "hello")
        kv.set("n", 5)
        kv.set("opening hours", {"mon": (9, 17)})
        kv.set("code", "4711", timeout=600)
        expires_at = kv.expires_at("code")
        assert expires_at is not None
        expiry = timezone.localtime(expires_at).isoformat(timespec="seconds")
        self.assertEqual(
            self.list_values("s"),
            f"code           {expiry}  '4711'\n"
            "greeting       never                      'hello'\n"
            "n              never                      5\n"
            "opening hours  never                      {'mon': (9, 17)}\n",
        )
        self.assertEqual(
            self.list_values("s", "--prefix", "g"),
            "greeting  never                      'hello'\n",
        )

    def test_lines_are_cut_to_the_terminal_width(self) -> None:
        KeyVal("s").set("k", "x" * 500)
        KeyVal("s").set("multi", "one\ntwo")
        output = self.list_values("s", columns=50)
        self.assertEqual(
            output,
            "k      never                      'xxxxxxxxxxxx...\n"
            "multi  never                      'one\\ntwo'\n",
        )
        self.assertEqual({len(line) for line in output.splitlines()}, {50, 44})

    def test_values_it_cannot_show(self) -> None:
        tmp = tempfile.mkdtemp(prefix="keyval-command-")
        self.addCleanup(shutil.rmtree, tmp)
        proof = os.path.join(tmp, "pwned")
        insert_raw("s", "evil", forged_pickle(proof))
        insert_raw("s", "gone", b"data", serializer="mystery")
        KeyVal("s").set("endless", EndlessRepr())
        KeyVal("s").set("fine", 1)
        lines = self.list_values("s").splitlines()
        self.assertEqual(
            [line.split("  ")[-1] for line in lines[:3]],
            [
                "<not shown: nested too deeply>",
                "<not shown: its signature does not match, so it was not unpickled>",
                "1",
            ],
        )
        self.assertEqual(
            lines[3].split("  ")[-1],
            "<not shown: the value was written by a serializer named 'mystery', which is not "
            "configured>",
        )
        self.assertFalse(os.path.exists(proof), "the forged pickle was unpickled")

    def test_pages_of_keys(self) -> None:
        KeyVal("s").set_many({f"k{i:03}": i for i in range(250)})
        KeyVal("s").set("k100", "gone", timeout=0)  # expired: not listed
        with CaptureQueriesContext(connection) as queries:
            output = self.list_values("s")
        self.assertEqual(len(output.splitlines()), 249)
        self.assertNotIn("k100", output)
        self.assertEqual(output.splitlines()[-1], "k249  never                      249")
        self.assertLessEqual(len(queries), 6)  # a page of keys, then a query per 100 keys

    def test_a_store_that_does_not_exist_is_named(self) -> None:
        KeyVal("s").set("k", 1)
        for args in [("nope",), ("nope", "--values")]:
            with self.subTest(args):
                stdout, stderr = StringIO(), StringIO()
                call_command("keyval", "list", *args, stdout=stdout, stderr=stderr)
                self.assertEqual(stdout.getvalue(), "")
                self.assertEqual(
                    stderr.getvalue(), "There is no store 'nope': it holds no pairs.\n"
                )
        # A prefix that matches nothing in a store that exists: nothing to say.
        stderr = StringIO()
        call_command("keyval", "list", "s", "--prefix", "x", stdout=StringIO(), stderr=stderr)
        self.assertEqual(stderr.getvalue(), "")
        stderr = StringIO()
        call_command(
            "keyval", "-c", "list", "-n", "nope", "-v", "0", stdout=StringIO(), stderr=stderr
        )
        self.assertEqual(stderr.getvalue(), "")


class ValueTests(TestCase):
    """--json, --timeout, and how values are printed."""

    def test_set_json(self) -> None:
        run("-c", "set", "-n", "s", "-k", "k", "-V", '{"a": [1, 2.5, null, true]}', "--json")
        self.assertEqual(KeyVal("s").get("k"), {"a": [1, 2.5, None, True]})
        run("-c", "set", "-n", "s", "-k", "n", "-V", "42", "--json")
        self.assertEqual(KeyVal("s").get("n"), 42)
        self.assertIs(type(KeyVal("s").get("n")), int)

    def test_set_bad_json(self) -> None:
        KeyVal("s").set("k", "old")
        with self.assertRaisesMessage(
            CommandError, "-V is not valid JSON: Expecting property name"
        ):
            run("-c", "set", "-n", "s", "-k", "k", "-V", "{nope", "--json")
        self.assertEqual(KeyVal("s").get("k"), "old")

    def test_set_json_refuses_what_json_proper_lacks(self) -> None:
        for text, message in [
            ("NaN", "-V is not valid JSON: NaN is not a number JSON allows"),
            ("[1, Infinity]", "-V is not valid JSON: Infinity is not a number JSON allows"),
            ('{"a": -Infinity}', "-V is not valid JSON: -Infinity is not a number JSON allows"),
            ("[" * 100_000 + "]" * 100_000, "-V is not valid JSON: it is nested too deeply"),
        ]:
            with self.subTest(text[:20]), self.assertRaisesMessage(CommandError, message):
                run("-c", "set", "-n", "s", "-k", "k", "-V", text, "--json")
        self.assertFalse(KeyVal("s").exists("k"))
        run("-c", "set", "-n", "s", "-k", "k", "-V", '"NaN"', "--json")
        self.assertEqual(KeyVal("s").get("k"), "NaN")

    def test_set_json_refuses_numbers_too_large_for_a_float(self) -> None:
        for text in ("1e400", "[1, -1e400]", '{"a": 2e308}'):
            with (
                self.subTest(text),
                self.assertRaisesMessage(CommandError, "-V is not valid JSON: ") as raised,
            ):
                run("-c", "set", "-n", "s", "-k", "k", "-V", text, "--json")
            self.assertIn("is too large a number (it would be infinity)", str(raised.exception))
        self.assertFalse(KeyVal("s").exists("k"))
        run("-c", "set", "-n", "s", "-k", "k", "-V", "1e308", "--json")
        self.assertEqual(KeyVal("s").get("k"), 1e308)

    def test_values_too_deep_to_print_are_an_error(self) -> None:
        cycle: list[Any] = []
        cycle.append(cycle)
        KeyVal("s").set("cycle", cycle)
        KeyVal("s").set("endless", EndlessRepr())
        self.assertEqual(run("-c", "get", "-n", "s", "-k", "cycle"), "[[...]]\n")
        for args in [("-k", "cycle", "--json"), ("-k", "endless")]:
            with (
                self.subTest(args),
                self.assertRaisesMessage(CommandError, "the value is nested too deeply"),
            ):
                run("-c", "get", "-n", "s", *args)

    def test_get_prints_repr_of_other_types(self) -> None:
        kv = KeyVal("s")
        kv.set("int", 7)
        kv.set("list", [1, "a"])
        kv.set("set", {3})
        kv.set("none", None)
        kv.set("bytes", b"\x00x")
        self.assertEqual(run("-c", "get", "-n", "s", "-k", "int"), "7\n")
        self.assertEqual(run("-c", "get", "-n", "s", "-k", "list"), "[1, 'a']\n")
        self.assertEqual(run("-c", "get", "-n", "s", "-k", "set"), "{3}\n")
        self.assertEqual(run("-c", "get", "-n", "s", "-k", "none"), "None\n")
        self.assertEqual(run("-c", "get", "-n", "s", "-k", "bytes"), "b'\\x00x'\n")

    def test_get_str_ending_in_newline_gets_one_more(self) -> None:
        KeyVal("s").set("k", "line\n")
        self.assertEqual(run("-c", "get", "-n", "s", "-k", "k"), "line\n\n")

    def test_get_json(self) -> None:
        kv = KeyVal("s")
        kv.set("list", [1, "é", None])
        kv.set("str", "5")
        self.assertEqual(run("-c", "get", "-n", "s", "-k", "list", "--json"), '[1, "é", null]\n')
        self.assertEqual(run("-c", "get", "-n", "s", "-k", "str", "--json"), '"5"\n')

    def test_get_json_of_a_value_json_cannot_show(self) -> None:
        KeyVal("s").set("k", (1, 2))
        with self.assertRaisesMessage(CommandError, "the value is a tuple, which JSON cannot"):
            run("-c", "get", "-n", "s", "-k", "k", "--json")

    def test_timeout(self) -> None:
        before = timezone.now()
        run("-c", "set", "-n", "s", "-k", "k", "-V", "v", "--timeout", "90.5")
        expires_at = KeyVal("s").expires_at("k")
        assert expires_at is not None
        self.assertGreaterEqual(expires_at, before + datetime.timedelta(seconds=90.5))
        self.assertLessEqual(expires_at, timezone.now() + datetime.timedelta(seconds=90.5))
        run("-c", "set", "-n", "s", "-k", "forever", "-V", "v")
        self.assertIsNone(KeyVal("s").expires_at("forever"))

    def test_expired_value_is_missing(self) -> None:
        run("-c", "set", "-n", "s", "-k", "k", "-V", "v", "--timeout", "0")
        with self.assertRaisesMessage(CommandError, "not found"):
            run("-c", "get", "-n", "s", "-k", "k")

    def test_bad_timeouts(self) -> None:
        for timeout, message in [
            ("-1", "a timeout must be a finite number >= 0"),
            ("nan", "a timeout must be a finite number >= 0"),
            ("soon", "argument --timeout: invalid float value: 'soon'"),
        ]:
            with self.subTest(timeout), self.assertRaisesMessage(CommandError, message):
                run("-c", "set", "-n", "s", "-k", "k", "-V", "v", "--timeout", timeout)
        self.assertFalse(KeyVal("s").exists("k"))


class KeyCommandTests(TestCase):
    """exists, pop, incr and decr."""

    def test_exists(self) -> None:
        KeyVal("s").set("k", None)
        self.assertEqual(run("-c", "exists", "-n", "s", "-k", "k"), "True\n")
        self.assertEqual(run("-c", "exists", "-n", "s", "-k", "other"), "False\n")
        self.assertEqual(run("-c", "exists", "-n", "t", "-k", "k"), "False\n")

    def test_pop(self) -> None:
        KeyVal("s").set("k", "v")
        self.assertEqual(run("-c", "pop", "-n", "s", "-k", "k"), "v\n")
        self.assertFalse(KeyVal("s").exists("k"))
        with self.assertRaisesMessage(CommandError, "key 'k' not found in store 's'"):
            run("-c", "pop", "-n", "s", "-k", "k")

    def test_pop_json(self) -> None:
        KeyVal("s").set("k", {"a": 1})
        self.assertEqual(run("-c", "pop", "-n", "s", "-k", "k", "--json"), '{"a": 1}\n')
        self.assertFalse(KeyVal("s").exists("k"))

    def test_pop_json_of_a_value_json_cannot_show_keeps_it(self) -> None:
        KeyVal("s").set("k", {1, 2})
        with self.assertRaisesMessage(CommandError, "the value is a set"):
            run("-c", "pop", "-n", "s", "-k", "k", "--json")
        self.assertEqual(KeyVal("s").get("k"), {1, 2})

    def test_pop_that_cannot_be_written_keeps_the_pair(self) -> None:
        KeyVal("s").set("k", "café", timeout=3600)
        expires = KeyVal("s").expires_at("k")
        outputs: list[tuple[str, Any]] = [
            ("an encoding without é", lambda: TextIOWrapper(BytesIO(), encoding="ascii")),
        ]
        if os.path.exists("/dev/full"):
            outputs.append(("a full disk", lambda: open("/dev/full", "w")))  # noqa: SIM115
        for what, make_output in outputs:
            for json_option in ([], ["--json"]):
                stdout = make_output()
                # Closing flushes what the failed write left behind: it fails again.
                self.addCleanup(close_quietly, stdout)
                with self.subTest(what, json=json_option):
                    with self.assertRaisesMessage(CommandError, "cannot write the value"):
                        call_command(
                            "keyval",
                            *["-c", "pop", "-n", "s", "-k", "k", *json_option],
                            stdout=stdout,
                            stderr=StringIO(),
                        )
                    self.assertEqual(KeyVal("s").get("k"), "café")
                    self.assertEqual(KeyVal("s").expires_at("k"), expires)
        self.assertEqual(run("-c", "pop", "-n", "s", "-k", "k"), "café\n")
        self.assertFalse(KeyVal("s").exists("k"))

    def test_an_int_too_long_to_show_is_an_error_and_pop_keeps_it(self) -> None:
        huge = 7 * 10**5000  # more digits than Python turns into text by default
        KeyVal("s").set("k", huge)
        for command in ("get", "pop"):
            with (
                self.subTest(command),
                self.assertRaisesMessage(
                    CommandError, "cannot show the value (a int): Exceeds the limit"
                ),
            ):
                run("-c", command, "-n", "s", "-k", "k")
        self.assertEqual(KeyVal("s").get("k"), huge)

    def test_incr_of_a_number_stored_as_text_says_how_to_store_it(self) -> None:
        run("-c", "set", "-n", "s", "-k", "count", "-V", "5")
        for command in ("incr", "decr"):
            with (
                self.subTest(command),
                self.assertRaisesMessage(
                    CommandError,
                    "the value of key 'count' in store 's' is not an integer but a str, '5'; "
                    "it was stored as text. To store the number, set it with --json: "
                    "keyval set s count 5 --json",
                ),
            ):
                run("-c", command, "-n", "s", "-k", "count")
        self.assertEqual(KeyVal("s").get("count"), "5")
        KeyVal("my store").set("the count", " -12 ")
        with self.assertRaisesMessage(
            CommandError, "--json: keyval set 'my store' 'the count' -12 --json"
        ):
            run("incr", "my store", "the count")
        KeyVal("s").set("list", [1, 2])
        with self.assertRaises(CommandError) as raised:
            run("incr", "s", "list")
        self.assertEqual(
            str(raised.exception),
            "the value of key 'list' in store 's' is not an integer but a list, [1, 2]",
        )
        run("-c", "set", "-n", "s", "-k", "count", "-V", "5", "--json")
        self.assertEqual(run("-c", "incr", "-n", "s", "-k", "count"), "6\n")

    def test_incr_and_decr(self) -> None:
        self.assertEqual(run("-c", "incr", "-n", "s", "-k", "n"), "1\n")
        self.assertEqual(run("-c", "incr", "-n", "s", "-k", "n", "--delta", "10"), "11\n")
        self.assertEqual(run("-c", "incr", "-n", "s", "-k", "n", "-V", "-3"), "8\n")
        self.assertEqual(run("-c", "decr", "-n", "s", "-k", "n"), "7\n")
        self.assertEqual(run("-c", "decr", "-n", "s", "-k", "n", "--delta", "7"), "0\n")
        self.assertEqual(KeyVal("s").get("n"), 0)

    def test_incr_bad_delta(self) -> None:
        for args, message in [
            (("-V", "x"), "-V must be an integer, not 'x'"),
            (("--delta", "1.5"), "argument --delta: invalid int value: '1.5'"),
            (("--delta", "1", "-V", "2"), "give the amount with --delta or -V, not both"),
        ]:
            with self.subTest(args), self.assertRaisesMessage(CommandError, message):
                run("-c", "incr", "-n", "s", "-k", "n", *args)
        self.assertFalse(KeyVal("s").exists("n"))

    def test_incr_of_a_non_integer(self) -> None:
        KeyVal("s").set("k", "text")
        with self.assertRaisesMessage(CommandError, "the value of key 'k' in store 's' is not"):
            run("-c", "incr", "-n", "s", "-k", "k")
        self.assertEqual(KeyVal("s").get("k"), "text")

    def test_incr_overflow(self) -> None:
        KeyVal("s").set("k", 2**63 - 1)
        with self.assertRaisesMessage(CommandError, "outside the signed 64-bit range"):
            run("-c", "incr", "-n", "s", "-k", "k")
        self.assertEqual(KeyVal("s").get("k"), 2**63 - 1)


class StoreCommandTests(TestCase):
    """list, stores, flush, flush_all, cull and --database."""

    databases = {"default", "other"}

    def setUp(self) -> None:
        KeyVal("a").set_many({"x1": 1, "x2": 2, "y": 3})
        KeyVal("b").set("z", 4)

    def test_list(self) -> None:
        self.assertEqual(run("-c", "list", "-n", "a"), "x1\nx2\ny\n")
        self.assertEqual(run("-c", "list", "-n", "a", "--prefix", "x"), "x1\nx2\n")
        self.assertEqual(run("-c", "list", "-n", "a", "--prefix", "q"), "")
        self.assertEqual(run("-c", "list", "-n", "empty"), "")

    def test_stores(self) -> None:
        self.assertEqual(run("-c", "stores"), "a\nb\n")

    def test_flush_confirmed(self) -> None:
        with mock.patch("builtins.input", return_value="yes") as prompt:
            output = run("-c", "flush", "-n", "a")
        self.assertIn("all 3 pairs of store 'a'", prompt.call_args[0][0])
        self.assertIn("Type 'yes' to continue", prompt.call_args[0][0])
        self.assertEqual(output, "Deleted 3 pairs of store 'a'.\n")
        self.assertEqual(KeyVal.stores(), ["b"])

    def test_flush_cancelled(self) -> None:
        for answer in ["no", "", "YES", "y"]:
            with self.subTest(answer), mock.patch("builtins.input", return_value=answer):
                self.assertEqual(run("-c", "flush", "-n", "a"), "Flush cancelled.\n")
            self.assertEqual(KeyVal("a").count(), 3)

    def test_flush_without_an_answer(self) -> None:
        with (
            mock.patch("builtins.input", side_effect=EOFError),
            self.assertRaisesMessage(CommandError, "pass --noinput to skip it"),
        ):
            run("-c", "flush", "-n", "a")
        self.assertEqual(KeyVal("a").count(), 3)

    def test_flush_noinput(self) -> None:
        for flag in ["--noinput", "--no-input"]:
            KeyVal("a").set("x1", 1)
            with self.subTest(flag), mock.patch("builtins.input") as prompt:
                run("-c", "flush", "-n", "a", flag)
            prompt.assert_not_called()
            self.assertEqual(KeyVal("a").count(), 0)
        self.assertEqual(KeyVal("b").count(), 1)
        with mock.patch("builtins.input") as prompt:
            call_command("keyval", "-c", "flush", "-n", "b", interactive=False, stdout=StringIO())
        prompt.assert_not_called()
        self.assertEqual(KeyVal.stores(), [])

    def test_flush_all(self) -> None:
        with mock.patch("builtins.input", return_value="no"):
            self.assertEqual(run("-c", "flush_all"), "Flush cancelled.\n")
        self.assertEqual(KeyVal.stores(), ["a", "b"])
        with mock.patch("builtins.input", return_value="yes") as prompt:
            self.assertEqual(run("-c", "flush_all"), "Deleted 4 pairs.\n")
        self.assertIn("every pair of all 2 stores", prompt.call_args[0][0])
        self.assertEqual(KeyVal.stores(), [])

    def test_flush_all_noinput(self) -> None:
        with mock.patch("builtins.input") as prompt:
            self.assertEqual(run("-c", "flush_all", "--noinput"), "Deleted 4 pairs.\n")
        prompt.assert_not_called()
        self.assertEqual(KeyValPair.objects.count(), 0)

    def test_cull(self) -> None:
        KeyVal("a").set("old", 1, timeout=60)
        KeyVal("b").set("later", 1, timeout=60)
        KeyValPair.objects.filter(key="old").update(
            expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
        self.assertEqual(run("-c", "cull"), "Deleted 1 expired pair.\n")
        self.assertFalse(KeyValPair.objects.filter(key="old").exists())
        self.assertTrue(KeyVal("b").exists("later"))
        self.assertEqual(run("-c", "cull"), "Deleted 0 expired pairs.\n")

    def test_counts_are_singular_for_one(self) -> None:
        KeyVal.flush_all()
        KeyVal("one").set("k", 1)
        KeyVal("two").set_many({"a": 1, "b": 2})
        path = os.path.join(tempfile.mkdtemp(prefix="keyval-plural-"), "one.jsonl")
        self.addCleanup(shutil.rmtree, os.path.dirname(path))
        self.assertEqual(run("export", "one", "-o", path), f"Exported 1 pair to {path}.\n")
        self.assertEqual(run("import", path), "Imported 1 pair.\n")
        with mock.patch("builtins.input", return_value="no") as prompt:
            run("flush", "one")
            run("flush", "two")
        questions = " ".join(call.args[0] for call in prompt.call_args_list)
        self.assertIn("permanently delete 1 pair of store 'one'.", questions)
        self.assertIn("permanently delete all 2 pairs of store 'two'.", questions)
        self.assertEqual(run("flush", "one", "--noinput"), "Deleted 1 pair of store 'one'.\n")
        self.assertEqual(run("flush", "two", "--noinput"), "Deleted 2 pairs of store 'two'.\n")
        KeyVal("three").set("k", 1)
        self.assertEqual(run("flush_all", "--noinput"), "Deleted 1 pair.\n")
        KeyVal("four").set("k", 1, timeout=60)
        KeyValPair.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
        self.assertEqual(run("cull"), "Deleted 1 expired pair.\n")

    def test_database(self) -> None:
        other = ("--database", "other")
        run("-c", "set", "-n", "a", "-k", "x1", "-V", "on other", *other)
        self.assertEqual(run("-c", "get", "-n", "a", "-k", "x1", *other), "on other\n")
        self.assertEqual(run("-c", "get", "-n", "a", "-k", "x1"), "1\n")
        self.assertEqual(run("-c", "stores", *other), "a\n")
        self.assertEqual(run("-c", "list", "-n", "a", *other), "x1\n")
        self.assertEqual(run("-c", "incr", "-n", "c", "-k", "n", *other), "1\n")
        self.assertEqual(run("-c", "exists", "-n", "c", "-k", "n", *other), "True\n")
        self.assertEqual(run("-c", "exists", "-n", "c", "-k", "n"), "False\n")
        KeyVal("c", using="other").set("old", 1, timeout=60)
        KeyValPair.objects.using("other").filter(key="old").update(
            expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
        self.assertEqual(run("-c", "cull", *other), "Deleted 1 expired pair.\n")
        self.assertEqual(run("-c", "flush_all", "--noinput", *other), "Deleted 2 pairs.\n")
        self.assertEqual(KeyValPair.objects.using("other").count(), 0)
        self.assertEqual(KeyValPair.objects.count(), 4)

    def test_unknown_database(self) -> None:
        with self.assertRaisesMessage(CommandError, "there is no database 'nowhere' in DATABASES"):
            run("-c", "stores", "--database", "nowhere")


@override_settings(KEYVAL_SERIALIZER="pickle")
class ExportImportTests(TempDirMixin, TestCase):
    """export and import as commands: files, standard input and output, messages, progress.

    The format, its exactness and its checks are tested in ``test_transfer``.
    """

    def fill(self) -> dict[str, dict[str, Any]]:
        values = sample_values()
        for store, mapping in values.items():
            KeyVal(store).set_many(mapping)
        KeyVal("app").set("expiring", "soon", timeout=3600)
        KeyVal("app").set("expiring int", 5, timeout=datetime.timedelta(days=400))
        values["app"]["expiring"] = "soon"
        values["app"]["expiring int"] = 5
        return values

    def test_export_one_store(self) -> None:
        self.fill()
        self.assertEqual(
            [
                json.loads(line)["key"]
                for line in run("-c", "export", "-n", "other store").split("\n")[:-1]
            ],
            ["int", "über/ключ %_"],
        )
        self.assertEqual(run("-c", "export", "-n", "missing"), "")
        with self.assertRaisesMessage(CommandError, "a store name may not be empty"):
            run("-c", "export", "-n", "")

    def test_roundtrip_is_exact(self) -> None:
        values = self.fill()
        before = rows()
        path = os.path.join(self.tmp, "pairs.jsonl")
        self.assertEqual(
            run("-c", "export", "--output", path), f"Exported {len(before)} pairs to {path}.\n"
        )
        first_export = Path(path).read_text(encoding="utf-8")
        run("-c", "flush_all", "--noinput")
        self.assertEqual(KeyValPair.objects.count(), 0)

        self.assertEqual(run("-c", "import", "--input", path), f"Imported {len(before)} pairs.\n")

        for store, mapping in values.items():
            kv = KeyVal(store)
            self.assertEqual(list(kv.keys()), sorted(mapping))
            for key, value in mapping.items():
                with self.subTest(store=store, key=key):
                    self.assertEqual(typed(kv.get(key)), typed(value))
        # Store, key, serializer, bytes, integer and expiry to the microsecond.
        self.assertEqual(rows(), before)
        self.assertEqual(run("-c", "export"), first_export)

    def test_export_pages_through_stores(self) -> None:
        KeyVal("s").set_many({f"k{i:02}": i for i in range(7)})
        KeyVal("t").set_many({f"k{i:02}": str(i) for i in range(3)})
        stderr = TTYStringIO()
        stdout = StringIO()
        with (
            mock.patch.object(transfer, "EXPORT_PAGE_SIZE", 2),
            mock.patch.object(ProgressBar, "INTERVAL", 0),
        ):
            call_command("keyval", "-c", "export", stdout=stdout, stderr=stderr)
        lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
        self.assertEqual(
            [(line["store"], line["key"]) for line in lines],
            [("s", f"k{i:02}") for i in range(7)] + [("t", f"k{i:02}") for i in range(3)],
        )
        # A bar of the pairs counted before the export, redrawn after each page.
        self.assertEqual(
            stderr.getvalue(),
            "\rexporting [######........................]  20% 2/10 pairs"
            "\rexporting [############..................]  40% 4/10 pairs"
            "\rexporting [##################............]  60% 6/10 pairs"
            "\rexporting [########################......]  80% 8/10 pairs"
            "\rexporting [##############################] 100% 10/10 pairs\n",
        )

    def test_export_progress_costs_one_count_query(self) -> None:
        KeyVal("s").set_many({f"k{i}": i for i in range(5)})
        KeyVal("t").set("gone", 1, timeout=0)
        with CaptureQueriesContext(connection) as plain:
            call_command("keyval", "-c", "export", stdout=StringIO(), stderr=StringIO())
        stderr = TTYStringIO()
        with CaptureQueriesContext(connection) as with_bar:
            call_command("keyval", "-c", "export", stdout=StringIO(), stderr=stderr)
        self.assertEqual(len(with_bar), len(plain) + 1)
        self.assertIn("COUNT(", with_bar[0]["sql"].upper())
        self.assertEqual(stderr.getvalue(), bar("exporting", 100, "5/5") + "\n")

    def test_progress_is_not_styled_as_an_error(self) -> None:
        # Django colours what a command writes to a terminal's stderr red;
        # the bar is no error.
        KeyVal("s").set("k", 1)
        stderr = TTYStringIO()
        command = keyval_command.Command(stdout=StringIO(), stderr=stderr, force_color=True)
        call_command(command, "-c", "export")
        self.assertEqual(stderr.getvalue(), bar("exporting", 100, "1/1") + "\n")

    def test_progress_is_redrawn_at_most_every_interval(self) -> None:
        KeyVal("s").set_many({f"k{i:02}": i for i in range(10)})
        stderr = TTYStringIO()
        with (
            mock.patch.object(transfer, "EXPORT_PAGE_SIZE", 2),
            mock.patch.object(ProgressBar, "INTERVAL", 3600),
        ):
            call_command("keyval", "-c", "export", stdout=StringIO(), stderr=stderr)
        # The first page, then nothing until the end.
        self.assertEqual(
            stderr.getvalue(),
            bar("exporting", 20, "2/10") + bar("exporting", 100, "10/10") + "\n",
        )

    def test_no_progress_unless_a_terminal(self) -> None:
        KeyVal("s").set_many({f"k{i}": i for i in range(5)})
        export = run("-c", "export")
        path = os.path.join(self.tmp, "pairs.jsonl")
        for stderr, stdout, verbosity in [
            (StringIO(), StringIO(), 1),  # not a terminal
            (TTYStringIO(), StringIO(), 0),  # -v 0
            (TTYStringIO(), TTYStringIO(), 1),  # the export's own lines go to the terminal
        ]:
            with (
                self.subTest(stderr=type(stderr), stdout=type(stdout), verbosity=verbosity),
                mock.patch.object(transfer, "EXPORT_PAGE_SIZE", 2),
                mock.patch.object(transfer, "IMPORT_CHUNK_SIZE", 2),
            ):
                call_command(
                    "keyval", "-c", "export", stdout=stdout, stderr=stderr, verbosity=verbosity
                )
                self.assertEqual(stderr.getvalue(), "")
                if not stdout.isatty():
                    call_command(
                        "keyval",
                        "-c",
                        "import",
                        stdin=StringIO(export),
                        stdout=StringIO(),
                        stderr=stderr,
                        verbosity=verbosity,
                    )
                    self.assertEqual(stderr.getvalue(), "")
        # Exported to a file, the bar is drawn even when stdout is a terminal.
        stderr = TTYStringIO()
        call_command("keyval", "-c", "export", "-o", path, stdout=TTYStringIO(), stderr=stderr)
        self.assertEqual(stderr.getvalue(), bar("exporting", 100, "5/5") + "\n")

    def test_import_progress_on_a_terminal(self) -> None:
        # Lines of the same length, so each is 20% of the file.
        KeyVal("s").set_many({f"k{i}": i for i in range(5)})
        export = run("-c", "export")
        self.assertEqual(len({len(line) for line in export.splitlines()}), 1)
        path = Path(self.tmp, "pairs.jsonl")
        path.write_text(export, encoding="utf-8")

        def progress(**options: Any) -> str:
            stderr = TTYStringIO()
            with (
                mock.patch.object(transfer, "IMPORT_CHUNK_SIZE", 2),
                mock.patch.object(ProgressBar, "INTERVAL", 0),
            ):
                call_command("keyval", "-c", "import", stdout=StringIO(), stderr=stderr, **options)
            return stderr.getvalue()

        # From a pipe, whose length is unknown until its end: a count.
        self.assertEqual(
            progress(stdin=StringIO(export)),
            "\rimporting 2 pairs\rimporting 4 pairs\rimporting 5 pairs\n",
        )
        # From a file, or a file on standard input: a bar of the bytes read.
        by_size = (
            bar("importing", 40, "2") + bar("importing", 80, "4") + bar("importing", 100, "5")
        ) + "\n"
        self.assertEqual(progress(input=str(path)), by_size)
        with path.open("rb") as stdin:
            self.assertEqual(progress(stdin=stdin), by_size)

    def test_progress_line_ends_before_an_error(self) -> None:
        KeyVal("s").set_many({"a": 1, "b": 2, "d": 4})
        insert_raw("s", "c", b"\x00" * 32 + pickle.dumps(1))
        stderr = TTYStringIO()
        with (
            mock.patch.object(transfer, "EXPORT_PAGE_SIZE", 2),
            mock.patch.object(ProgressBar, "INTERVAL", 0),
            self.assertRaisesMessage(CommandError, "1 pair could not be exported"),
        ):
            call_command("keyval", "-c", "export", stdout=StringIO(), stderr=stderr)
        # The bar's line ends before the list of skipped pairs starts.
        progress, listed = stderr.getvalue().split("\n", 1)
        self.assertTrue(progress.startswith(bar("exporting", 50, "2/4")), progress)
        self.assertTrue(listed.startswith("Skipped key 'c' of store 's': "), listed)
        self.assertIn("failed its signature check", listed)

    def test_import_from_stdin_overwrites_and_keeps_others(self) -> None:
        KeyVal("s").set("a", "old")
        KeyVal("s").set("keep", "kept")
        lines = (
            '{"store": "s", "key": "a", "value": "new", "expires_at": null}\n'
            "\n"
            '{"store": "t", "key": "b", "value": [1], "expires_at": "2999-01-01T00:00:00Z"}\n'
        )
        self.assertEqual(run("-c", "import", stdin=StringIO(lines)), "Imported 2 pairs.\n")
        self.assertEqual(run("-c", "import", "-i", "-", stdin=StringIO(lines), verbosity=0), "")
        self.assertEqual(KeyVal("s").get("a"), "new")
        self.assertEqual(KeyVal("s").get("keep"), "kept")
        self.assertEqual(KeyVal("t").get("b"), [1])
        self.assertEqual(
            KeyVal("t").expires_at("b"),
            datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc),
        )

    def test_import_skips_expired_pairs(self) -> None:
        lines = (
            '{"store": "s", "key": "old", "value": 1, "expires_at": "2001-01-01T00:00:00+00:00"}\n'
            '{"store": "s", "key": "new", "value": 1, "expires_at": null}\n'
        )
        self.assertEqual(
            run("-c", "import", stdin=StringIO(lines)),
            "Imported 1 pair (1 already expired, skipped).\n",
        )
        self.assertEqual(rows()[0][:2], ("s", "new"))
        self.assertEqual(len(rows()), 1)

    def test_import_from_files(self) -> None:
        with self.assertRaisesMessage(CommandError, "cannot read"):
            run("-c", "import", "--input", os.path.join(self.tmp, "missing.jsonl"))
        with self.assertRaisesMessage(CommandError, f"cannot read {self.tmp}: [Errno 21]"):
            run("-c", "import", "--input", self.tmp)
        latin1 = os.path.join(self.tmp, "latin1.jsonl")
        Path(latin1).write_bytes(
            b'{"store": "s", "key": "a", "value": 1, "expires_at": null}\n'
            + '{"store": "s", "key": "é", "value": 1, "expires_at": null}\n'.encode("latin-1")
        )
        with self.assertRaisesMessage(
            CommandError,
            "line 2: not UTF-8 text ('utf-8' codec can't decode byte 0xe9 in position 23: "
            "invalid continuation byte); nothing was imported",
        ):
            run("-c", "import", "--input", latin1)
        self.assertEqual(KeyValPair.objects.count(), 0)

    def test_import_of_stdin_that_is_not_utf8(self) -> None:
        data = (
            b'{"store": "s", "key": "a", "value": 1, "expires_at": null}\n'
            b"\n"
            b'{"store": "s", "key": "\xff", "value": 1, "expires_at": null}\n'
        )
        # A binary stream, and a text one over bytes as sys.stdin is.
        for stdin in [BytesIO(data), TextIOWrapper(BytesIO(data), encoding="utf-8")]:
            with (
                self.subTest(type(stdin)),
                self.assertRaisesMessage(
                    CommandError, "line 3: not UTF-8 text ('utf-8' codec can't decode byte 0xff"
                ),
            ):
                run("-c", "import", "-i", "-", stdin=stdin)
        self.assertEqual(KeyValPair.objects.count(), 0)
        stdin = TextIOWrapper(BytesIO(data.replace(b"\xff", "ü".encode())), encoding="latin-1")
        self.assertEqual(run("-c", "import", stdin=stdin), "Imported 2 pairs.\n")
        self.assertEqual(KeyVal("s").get("ü"), 1)  # read as bytes, whatever stdin's encoding

    def test_import_without_stdin(self) -> None:
        with (
            mock.patch.object(sys, "stdin", None),
            self.assertRaisesMessage(CommandError, "there is no standard input to read"),
        ):
            run("-c", "import")

    def test_export_to_unwritable_place(self) -> None:
        KeyVal("s").set("k", 1)
        with self.assertRaisesMessage(CommandError, "cannot write"):
            run("-c", "export", "-o", os.path.join(self.tmp, "no", "such", "dir", "x.jsonl"))
        # A directory; a name the file cannot be renamed to (found only at the end).
        with self.assertRaisesMessage(CommandError, f"cannot write {self.tmp}: it is a directory"):
            run("-c", "export", "-o", self.tmp)
        not_a_directory = os.path.join(self.tmp, "x.jsonl") + os.sep
        with self.assertRaisesMessage(
            CommandError, f"cannot write {not_a_directory}: [Errno 20] Not a directory"
        ):
            run("-c", "export", "-o", not_a_directory)
        self.assertEqual(os.listdir(self.tmp), [])  # no temporary file left behind

    def test_export_to_stdout_dash(self) -> None:
        KeyVal("s").set("k", 1)
        self.assertEqual(
            run("-c", "export", "-o", "-"),
            '{"store": "s", "key": "k", "value": 1, "expires_at": null}\n',
        )


class TamperedPickleTests(TempDirMixin, TestCase):
    """A pickle written behind the package's back is never unpickled by the command."""

    def setUp(self) -> None:
        super().setUp()
        self.proof = os.path.join(self.tmp, "pwned")
        KeyVal("s").set("a", "before")
        insert_raw("s", "evil", forged_pickle(self.proof))
        KeyVal("s").set("z", "after")

    def assertNotUnpickled(self) -> None:
        self.assertFalse(os.path.exists(self.proof), "the forged pickle was unpickled")

    def test_get_and_pop_refuse(self) -> None:
        for command in ["get", "pop"]:
            with (
                self.subTest(command),
                self.assertRaisesMessage(CommandError, "failed its signature check"),
            ):
                run("-c", command, "-n", "s", "-k", "evil")
        self.assertNotUnpickled()
        self.assertTrue(KeyValPair.objects.filter(key="evil").exists())

    def test_export_skips_what_it_cannot_read_and_fails_at_the_end(self) -> None:
        # A backup tool that stopped at the first bad row would be no backup tool.
        output = os.path.join(self.tmp, "export.jsonl")
        KeyVal("t").set("kept", [1])
        for args in [(), ("-o", output)]:
            stdout, stderr = StringIO(), StringIO()
            with (
                self.subTest(args),
                self.assertRaisesMessage(
                    CommandError, "1 pair could not be exported (listed above); 3 pairs exported"
                ),
            ):
                call_command("keyval", "export", *args, stdout=stdout, stderr=stderr)
            self.assertIn(
                "Skipped key 'evil' of store 's': the value of key 'evil' in store 's' "
                "failed its signature check",
                stderr.getvalue(),
            )
            written = Path(output).read_text() if args else stdout.getvalue()
            lines = [json.loads(line) for line in written.splitlines() if line.startswith("{")]
            self.assertEqual(
                [(line["store"], line["key"]) for line in lines],
                [("s", "a"), ("s", "z"), ("t", "kept")],
            )
        self.assertNotUnpickled()
        self.assertEqual(os.listdir(self.tmp), ["export.jsonl"])  # no temporary file left behind

    def test_failed_export_keeps_an_earlier_file(self) -> None:
        output = Path(self.tmp, "export.jsonl")
        output.write_text("earlier\n")
        with (
            mock.patch.object(transfer, "_format_expiry", side_effect=RuntimeError("stopped")),
            self.assertRaisesMessage(RuntimeError, "stopped"),
        ):
            run("-c", "export", "-o", str(output))
        self.assertEqual(output.read_text(), "earlier\n")
        self.assertEqual(os.listdir(self.tmp), ["export.jsonl"])


class SubprocessTests(TempDirMixin, TestCase):
    """The command run by the example project's manage.py, as a shell script would."""

    def copy_project(self) -> None:
        """Copy the example project, so its database is created in the copy."""
        self.project = os.path.join(self.tmp, "example")
        shutil.copytree(
            REPO / "example",
            self.project,
            ignore=shutil.ignore_patterns("*.sqlite3", "__pycache__"),
        )

    def test_an_unreachable_database_is_one_line_naming_it(self) -> None:
        self.copy_project()
        missing_directory = os.path.join(self.tmp, "no such directory", "db.sqlite3")
        databases = {
            "sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": missing_directory},
            # Port 1: nothing listens there, so the connection is refused at once.
            "postgresql": {
                "ENGINE": "django.db.backends.postgresql",
                "HOST": "127.0.0.1",
                "PORT": "1",
                "NAME": "keyval",
                "USER": "postgres",
            },
        }
        for vendor, database in databases.items():
            with self.subTest(vendor):
                Path(self.project, "example", f"unreachable_{vendor}.py").write_text(
                    "from example.settings import *  # noqa: F403\n"
                    f"DATABASES = {{'default': {database!r}, 'backup': {database!r}}}\n"
                )
                settings = f"--settings=example.unreachable_{vendor}"
                for args, alias in [
                    (("get", "s", "k"), "'default'"),
                    (("stores", "--database", "backup"), "'backup'"),
                ]:
                    failed = self.manage("keyval", *args, settings)
                    self.assertEqual(failed.returncode, 1)
                    self.assertEqual(failed.stdout, "")
                    self.assertTrue(
                        failed.stderr.startswith(f"CommandError: database {alias}: "),
                        failed.stderr,
                    )
                    self.assertEqual(failed.stderr.count("\n"), 1, failed.stderr)

    def manage(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "PYTHONPATH": str(REPO)}
        environment.pop("DJANGO_SETTINGS_MODULE", None)
        process = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.project,
            env=environment,
            input=stdin,
            capture_output=True,
            timeout=120,
        )
        stdout, stderr = process.stdout.decode(), process.stderr.decode()
        self.assertNotIn("Traceback", stderr)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def make_project(self) -> None:
        # A copy of the example project, so its database is created in the copy.
        self.project = os.path.join(self.tmp, "example")
        shutil.copytree(
            REPO / "example",
            self.project,
            ignore=shutil.ignore_patterns("*.sqlite3", "__pycache__"),
        )
        migrate = self.manage("migrate", "-v", "0")
        self.assertEqual(migrate.returncode, 0, migrate.stderr)

    def test_command_form_exit_status_and_help(self) -> None:
        self.make_project()
        stored = self.manage("keyval", "set", "name", "key", "value", "--timeout", "600")
        self.assertEqual(
            (stored.returncode, stored.stdout), (0, "Created key 'key' in store 'name'.\n")
        )
        fetched = self.manage("keyval", "get", "name", "key")
        self.assertEqual((fetched.returncode, fetched.stdout, fetched.stderr), (0, "value\n", ""))
        missing = self.manage("keyval", "get", "name", "nope")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("CommandError: key 'nope' not found in store 'name'", missing.stderr)
        for args, message in [
            (
                ("get", "name"),
                "manage.py keyval get: error: the following arguments are required: KEY",
            ),
            ((), "manage.py keyval: error: name a command"),
            (("list", "name", "--nope"), "manage.py keyval: error: unrecognized arguments: --nope"),
        ]:
            with self.subTest(args):
                usage = self.manage("keyval", *args)
                self.assertEqual((usage.returncode, usage.stdout), (2, ""))
                self.assertTrue(usage.stderr.startswith("usage: manage.py keyval "), usage.stderr)
                self.assertIn(message, usage.stderr)
        listed = self.manage("keyval", "list", "nothing")
        self.assertEqual(
            (listed.returncode, listed.stdout, listed.stderr),
            (0, "", "There is no store 'nothing': it holds no pairs.\n"),
        )
        environment_columns = {"COLUMNS": "80"}
        with mock.patch.dict(os.environ, environment_columns):
            shown = self.manage("keyval", "--help")
        self.assertEqual(shown.returncode, 0)
        self.assertLessEqual(len(shown.stdout.splitlines()), 50)
        self.assertEqual([line for line in shown.stdout.splitlines() if len(line) > 80], [])
        self.assertIn("  get STORE KEY ", shown.stdout)

    def test_exit_status_and_output(self) -> None:
        self.make_project()

        stored = self.manage("keyval", "-c", "set", "-n", "name", "-k", "key", "-V", "value")
        self.assertEqual(
            (stored.returncode, stored.stdout), (0, "Created key 'key' in store 'name'.\n")
        )
        fetched = self.manage("keyval", "-c", "get", "-n", "name", "-k", "key")
        self.assertEqual((fetched.returncode, fetched.stdout, fetched.stderr), (0, "value\n", ""))

        missing = self.manage("keyval", "-c", "get", "-n", "name", "-k", "nope")
        self.assertEqual(missing.returncode, 1)
        self.assertEqual(missing.stdout, "")
        self.assertIn("CommandError: key 'nope' not found in store 'name'", missing.stderr)

        # What argparse cannot parse is a usage error: status 2, as for any command.
        for args, message in [
            (("-c", "fetch"), "argument -c/--command: invalid choice: 'fetch'"),
            (("-n", "name"), "name a command, as in 'manage.py keyval get STORE KEY'"),
            (
                ("-c", "set", "-n", "s", "-k", "k", "-V", "v", "--timeout", "soon"),
                "argument --timeout: invalid float value: 'soon'",
            ),
        ]:
            with self.subTest(args):
                usage = self.manage("keyval", *args)
                self.assertEqual(usage.returncode, 2)
                self.assertEqual(usage.stdout, "")
                self.assertTrue(
                    usage.stderr.startswith(
                        "usage: manage.py keyval COMMAND [ARGUMENTS] [OPTIONS]\n"
                        "       manage.py keyval -c COMMAND [-n STORE] [-k KEY] [-V VALUE] "
                        "[OPTIONS]\n"
                    )
                )
                self.assertIn(f"\nmanage.py keyval: error: {message}", usage.stderr)

        # Export to a pipe, import from one.
        exported = self.manage("keyval", "-c", "export")
        self.assertEqual(
            (exported.returncode, exported.stdout, exported.stderr),
            (0, '{"store": "name", "key": "key", "value": "value", "expires_at": null}\n', ""),
        )
        self.manage("keyval", "-c", "flush_all", "--noinput")
        imported = self.manage("keyval", "-c", "import", "-i", "-", stdin=exported.stdout.encode())
        self.assertEqual((imported.returncode, imported.stdout), (0, "Imported 1 pair.\n"))
        not_utf8 = self.manage(
            "keyval", "-c", "import", stdin=exported.stdout.encode() + b'{"key": "\xff"}\n'
        )
        self.assertEqual(not_utf8.returncode, 1)
        self.assertIn("CommandError: line 2: not UTF-8 text", not_utf8.stderr)
        self.assertEqual(
            self.manage("keyval", "-c", "get", "-n", "name", "-k", "key").stdout, "value\n"
        )

        # A reader that stops early (export | head): a CommandError, not a traceback.
        many = "".join(
            json.dumps({"store": "many", "key": f"k{i:05}", "value": "x" * 100, "expires_at": None})
            + "\n"
            for i in range(5000)
        )
        self.assertEqual(self.manage("keyval", "-c", "import", stdin=many.encode()).returncode, 0)
        environment = {**os.environ, "PYTHONPATH": str(REPO)}
        environment.pop("DJANGO_SETTINGS_MODULE", None)
        with subprocess.Popen(
            [sys.executable, "manage.py", "keyval", "-c", "export"],
            cwd=self.project,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as head:
            assert head.stdout is not None and head.stderr is not None
            self.assertTrue(head.stdout.read(100))
            head.stdout.close()
            stderr = head.stderr.read().decode()
            self.assertEqual(head.wait(timeout=120), 1)
        self.assertNotIn("Traceback", stderr)
        self.assertIn("CommandError: the output was closed after", stderr)

        self.assertTrue(os.path.exists(os.path.join(self.project, "db.sqlite3")))
