"""Export and import as JSON Lines, through ``django_keyval.transfer`` itself.

The command's own part (files, standard input and output, messages, the
progress bar) is tested in ``test_command``.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import tempfile
import tracemalloc
from typing import Any
from unittest import mock

from django.conf import settings
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_keyval import exceptions, transfer
from django_keyval.models import KeyVal, KeyValPair
from django_keyval.serializers import PickleSerializer, _signature, signed_place
from django_keyval.transfer import ImportResult, TransferError, export_lines, import_lines
from tests.helpers import (
    forged_pickle,
    insert_raw,
    rows,
    sample_values,
    typed,
    vendor_classes_only,
)


def export(**options: Any) -> list[dict[str, Any]]:
    """Export; return each line parsed."""
    return [json.loads(line) for line in export_lines(**options)]


def export_text(**options: Any) -> str:
    """Export; return the lines as a file would hold them."""
    return "".join(f"{line}\n" for line in export_lines(**options))


def import_text(text: str, **options: Any) -> ImportResult:
    """Import the lines of ``text``."""
    return import_lines(text.splitlines(keepends=True), **options)


@override_settings(KEYVAL_SERIALIZER="pickle")
class ExportTests(TestCase):
    """export_lines: the format, the order, what it leaves out and refuses."""

    databases = {"default", "other"}

    def test_export_format(self) -> None:
        KeyVal("s").set("list", [1, {"a": None}])
        KeyVal("s").set("set", {1}, timeout=60)
        KeyVal("s").set("int", 3)
        KeyVal("t").set("bytes", b"\x00\xffraw")
        KeyVal("t").set("str", "text")
        KeyVal("u", serializer="json").set("list", [2])
        lines = export()
        self.assertEqual(lines[0], {"store": "s", "key": "int", "value": 3, "expires_at": None})
        self.assertEqual(
            lines[1],
            {
                "store": "s",
                "key": "list",
                "value": [1, {"a": None}],
                "serializer": "pickle",
                "expires_at": None,
            },
        )
        self.assertEqual(list(lines[2]), ["store", "key", "pickle", "serializer", "expires_at"])
        self.assertEqual(lines[2]["serializer"], "pickle")
        # bytes go as any value JSON cannot represent: signed pickle, marked as such.
        self.assertEqual(
            lines[3],
            {
                "store": "t",
                "key": "bytes",
                "pickle": base64.b64encode(
                    PickleSerializer().dumps(b"\x00\xffraw", "t", "bytes", "bytes")
                ).decode(),
                "serializer": "bytes",
                "expires_at": None,
            },
        )
        self.assertEqual(
            lines[4], {"store": "t", "key": "str", "value": "text", "expires_at": None}
        )
        self.assertEqual(
            lines[5],
            {"store": "u", "key": "list", "value": [2], "serializer": "json", "expires_at": None},
        )
        stored = KeyValPair.objects.get(key="set")
        assert stored.value is not None and stored.expires_at is not None
        self.assertEqual(base64.b64decode(lines[2]["pickle"]), bytes(stored.value))
        self.assertEqual(datetime.datetime.fromisoformat(lines[2]["expires_at"]), stored.expires_at)
        self.assertTrue(lines[2]["expires_at"].endswith("+00:00"))

    def test_lines_are_ascii_json_without_newlines(self) -> None:
        KeyVal("s").set("multi\nline ☃", "über\n\u2028")
        [line] = list(export_lines())
        self.assertTrue(line.isascii())
        self.assertNotIn("\n", line)
        self.assertEqual(
            json.loads(line),
            {"store": "s", "key": "multi\nline ☃", "value": "über\n\u2028", "expires_at": None},
        )

    def test_export_one_store(self) -> None:
        for store, mapping in sample_values().items():
            KeyVal(store).set_many(mapping)
        self.assertEqual(
            [(line["store"], line["key"]) for line in export(store="other store")],
            [
                ("other store", "int"),
                ("other store", "über/ключ %_"),
            ],
        )
        self.assertEqual(export(store="missing"), [])
        with self.assertRaisesMessage(exceptions.InvalidKeyError, "a store name may not be empty"):
            export(store="")

    def test_export_leaves_out_expired_pairs(self) -> None:
        KeyVal("s").set("gone", 1, timeout=0)
        KeyVal("s").set("here", 1)
        self.assertEqual([line["key"] for line in export()], ["here"])

    def test_export_fetches_long_values_apart_in_bounded_batches(self) -> None:
        from django_keyval import store

        # As items() reads them: values over 8 KiB stay out of the page of
        # keys and come ITERATION_CHUNK_BYTES at a time, so no query returns
        # them all, and the export's memory stays bounded in bytes.
        long = {f"k{i}": f"{i}" * 20_000 for i in range(5)}
        KeyVal("s").set_many({"a": 1, **long}, timeout=3600)
        with (
            mock.patch.object(store, "ITERATION_CHUNK_BYTES", 45_000),
            CaptureQueriesContext(connection) as queries,
        ):
            lines = export()
        # The stores, the page, then the long values two (40 KB), two and one at a time.
        self.assertEqual(len(queries), 5)
        self.assertEqual({line["key"]: line["value"] for line in lines}, {"a": 1, **long})
        expires = KeyVal("s").expires_at("k4")
        assert expires is not None
        self.assertEqual(
            {line["expires_at"] for line in lines},
            {expires.astimezone(datetime.timezone.utc).isoformat()},
        )

    def test_export_of_an_empty_database(self) -> None:
        self.assertEqual(list(export_lines()), [])

    def test_export_reads_the_database_asked_for(self) -> None:
        KeyVal("s", using="other").set("k", "on other")
        KeyVal("s").set("k", "on default")
        self.assertEqual([line["value"] for line in export(using="other")], ["on other"])
        self.assertEqual([line["value"] for line in export()], ["on default"])

    def test_export_stops_at_a_forged_pickle_naming_store_and_key(self) -> None:
        tmp = tempfile.mkdtemp(prefix="keyval-transfer-")
        self.addCleanup(shutil.rmtree, tmp)
        proof = os.path.join(tmp, "pwned")
        KeyVal("s").set("a", "before")
        insert_raw("s", "evil", forged_pickle(proof))
        lines = export_lines()
        self.assertEqual(json.loads(next(lines))["key"], "a")
        with self.assertRaisesMessage(
            exceptions.BadSignatureError,
            "the value of key 'evil' in store 's' failed its signature check",
        ):
            next(lines)
        self.assertFalse(os.path.exists(proof), "the forged pickle was unpickled")
        self.assertTrue(KeyValPair.objects.filter(key="evil").exists())

    def test_export_with_skipped_leaves_out_what_it_cannot_read(self) -> None:
        proof = os.path.join(tempfile.mkdtemp(prefix="keyval-skip-"), "pwned")
        self.addCleanup(shutil.rmtree, os.path.dirname(proof))
        KeyVal("s").set("a", 1)
        insert_raw("s", "evil", forged_pickle(proof))
        KeyVal("s", serializer="tests.helpers.ReversedJSONSerializer").set("custom", [1])
        KeyVal("s").set("z", 2)
        skipped: list[transfer.SkippedPair] = []
        lines = [json.loads(line) for line in export_lines(skipped=skipped)]
        self.assertEqual([line["key"] for line in lines], ["a", "z"])
        self.assertEqual(
            [(pair.store, pair.key) for pair in skipped], [("s", "custom"), ("s", "evil")]
        )
        self.assertIn("not configured", skipped[0].reason)
        self.assertIn("failed its signature check", skipped[1].reason)
        self.assertFalse(os.path.exists(proof))

    def test_custom_serializer_value_that_pickle_refuses(self) -> None:
        with override_settings(KEYVAL_SERIALIZER="tests.helpers.UnpicklableSerializer"):
            KeyVal("s").set("k", [1])
            with self.assertRaisesMessage(
                TransferError, "cannot export key 'k' of store 's': its value is neither JSON nor"
            ):
                export()


@override_settings(KEYVAL_SERIALIZER="pickle")
class ImportTests(TestCase):
    """import_lines: what it stores, all or nothing, and what it refuses."""

    def test_import_overwrites_and_keeps_others(self) -> None:
        KeyVal("s").set("a", "old")
        KeyVal("s").set("keep", "kept")
        lines = (
            '{"store": "s", "key": "a", "value": "new", "expires_at": null}\n'
            "\n"
            '{"store": "t", "key": "b", "value": [1], "expires_at": "2999-01-01T00:00:00Z"}\n'
        )
        self.assertEqual(import_text(lines), ImportResult(imported=2, expired=0))
        self.assertEqual(KeyVal("s").get("a"), "new")
        self.assertEqual(KeyVal("s").get("keep"), "kept")
        self.assertEqual(KeyVal("t").get("b"), [1])
        self.assertEqual(
            KeyVal("t").expires_at("b"),
            datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc),
        )

    def test_import_of_bytes_and_str_lines(self) -> None:
        lines: list[str | bytes] = [
            '{"store": "s", "key": "é", "value": 1, "expires_at": null}'.encode(),
            '{"store": "s", "key": "ü", "value": 2, "expires_at": null}',
        ]
        self.assertEqual(import_lines(lines), ImportResult(2, 0))
        self.assertEqual(dict(KeyVal("s").items()), {"é": 1, "ü": 2})

    def test_import_later_line_wins(self) -> None:
        lines = "".join(
            f'{{"store": "s", "key": "k", "value": {i}, "expires_at": null}}\n' for i in range(3)
        )
        self.assertEqual(import_text(lines), ImportResult(3, 0))
        self.assertEqual(KeyVal("s").get("k"), 2)

    def test_import_skips_expired_pairs(self) -> None:
        lines = (
            '{"store": "s", "key": "old", "value": 1, "expires_at": "2001-01-01T00:00:00+00:00"}\n'
            '{"store": "s", "key": "new", "value": 1, "expires_at": null}\n'
        )
        self.assertEqual(import_text(lines), ImportResult(imported=1, expired=1))
        self.assertEqual(rows()[0][:2], ("s", "new"))
        self.assertEqual(len(rows()), 1)

    @vendor_classes_only
    def test_import_is_batched(self) -> None:
        lines = "".join(
            f'{{"store": "s{i % 3}", "key": "k{i}", "value": {i}, "expires_at": null}}\n'
            for i in range(2500)
        )
        with CaptureQueriesContext(connection) as queries:
            import_text(lines)
        # A few multi-row statements (as many rows each as the database's
        # parameter limit allows) and the savepoint around them, not 2500 queries.
        self.assertLessEqual(len(queries), 25)
        self.assertEqual(KeyValPair.objects.count(), 2500)
        self.assertEqual(KeyVal("s1").get("k2497"), 2497)

    def test_import_reports_progress_every_chunk(self) -> None:
        lines = "".join(
            f'{{"store": "s", "key": "k{i}", "value": {i}, "expires_at": null}}\n' for i in range(5)
        )
        reported: list[int] = []
        with mock.patch.object(transfer, "IMPORT_CHUNK_SIZE", 2):
            import_text(lines, progress=reported.append)
        self.assertEqual(reported, [2, 4])
        self.assertEqual(KeyVal("s").count(), 5)

    def test_import_to_an_unknown_database(self) -> None:
        lines = ['{"store": "s", "key": "k", "value": 1, "expires_at": null}']
        with self.assertRaisesMessage(TransferError, "there is no database 'nowhere' in DATABASES"):
            import_lines(lines, using="nowhere")

    def test_import_lines_api(self) -> None:
        lines = ['{"store": "s", "key": "k", "value": 1, "expires_at": null}']
        self.assertEqual(transfer.import_lines(lines), transfer.ImportResult(1, 0))
        self.assertEqual(
            list(transfer.export_lines(store="s")),
            ['{"store": "s", "key": "k", "value": 1, "expires_at": null}'],
        )
        with self.assertRaisesMessage(
            transfer.TransferError, "there is no database 'nowhere' in DATABASES"
        ):
            transfer.import_lines(lines, using="nowhere")

    def test_transfer_error_is_a_keyval_error_and_a_value_error(self) -> None:
        self.assertIs(transfer.TransferError, exceptions.TransferError)
        with self.assertRaises(TransferError) as raised:
            import_lines(["{nope"])
        self.assertIsInstance(raised.exception, exceptions.KeyValError)
        self.assertIsInstance(raised.exception, ValueError)

    def test_invalid_lines_stop_the_import_and_change_nothing(self) -> None:
        KeyVal("s").set("existing", "unchanged")
        good = '{"store": "s", "key": "existing", "value": "changed", "expires_at": null}'
        signed = base64.b64encode(PickleSerializer().dumps({1}, "s", "k")).decode()
        signed_as_json, signed_as_bytes = (
            base64.b64encode(PickleSerializer().dumps({1}, "s", "k", name)).decode()
            for name in ("json", "bytes")
        )
        # Signed with SECRET_KEY, but not a pickle.
        place = signed_place("s", "k", "json")
        garbage = base64.b64encode(_signature(place, b"garbage", settings.SECRET_KEY) + b"garbage")
        for bad, message in [
            ("{nope", "line 2: not valid JSON: Expecting property name"),
            ("[1, 2]", "line 2: expected a JSON object, not list"),
            ('{"store": "s", "key": "k", "value": 1}', 'line 2: the field "expires_at" is missing'),
            ('{"key": "k", "value": 1, "expires_at": null}', 'the field "store" is missing'),
            ('{"store": "s", "key": "k", "expires_at": null}', 'exactly one of the fields "value"'),
            (
                f'{{"store": "s", "key": "k", "value": 1, "pickle": "{signed}", '
                '"expires_at": null}',
                'exactly one of the fields "value" and "pickle"',
            ),
            ('{"store": "s", "key": "k", "value": 1, "expires_at": null, "x": 1}', "unknown field"),
            (
                '{"store": 5, "key": "k", "value": 1, "expires_at": null}',
                '"store" must be a string',
            ),
            ('{"store": "s", "key": 5, "value": 1, "expires_at": null}', '"key" must be a string'),
            ('{"store": "", "key": "k", "value": 1, "expires_at": null}', "may not be empty"),
            ('{"store": "s", "key": "a\\u0000", "value": 1, "expires_at": null}', "NUL character"),
            (
                '{"store": "s", "key": "k", "value": 1, "expires_at": 5}',
                "a string or null, not int",
            ),
            ('{"store": "s", "key": "k", "value": 1, "expires_at": "soon"}', "not an ISO 8601"),
            (
                '{"store": "s", "key": "k", "value": 1, "expires_at": "2999-01-01T00:00:00"}',
                "must include a UTC offset",
            ),
            ('{"store": "s", "key": "k", "pickle": 5, "expires_at": null}', "base64 string, not"),
            ('{"store": "s", "key": "k", "pickle": "!!", "expires_at": null}', "not valid base64"),
            (
                '{"store": "s", "key": "k", "bytes": "AA==", "expires_at": null}',
                "unknown field(s): bytes",
            ),
            ('{"store": "s", "key": "k", "value": NaN, "expires_at": null}', "NaN is not a number"),
            (
                '{"store": "s", "key": "k", "value": [Infinity], "expires_at": null}',
                "not valid JSON: Infinity is not a number JSON allows",
            ),
            (
                '{"store": "s", "key": "k", "value": ' + "[" * 100_000 + "]" * 100_000 + "}",
                "not valid JSON: it is nested too deeply",
            ),
            (
                '{"store": "s", "key": "k", "value": 1, "serializer": 5, "expires_at": null}',
                '"serializer" must be a string, not int',
            ),
            (
                '{"store": "s", "key": "k", "value": 1, "serializer": "json", "expires_at": null}',
                "\"serializer\" is 'json', but the value of key 'k' in store 's' would be stored "
                "as 'int'",
            ),
            (
                '{"store": "s", "key": "k", "value": [1], "serializer": "yaml", '
                '"expires_at": null}',
                "\"serializer\" is 'yaml', which is not the built-in pickle or json",
            ),
            (
                f'{{"store": "s", "key": "k", "pickle": "{signed_as_bytes}", '
                '"serializer": "bytes", '
                '"expires_at": null}',
                "\"serializer\" is 'bytes', but the value of key 'k' in store 's' would be "
                "stored as 'pickle'",
            ),
            (
                f'{{"store": "s", "key": "k", "pickle": "{signed_as_json}", "serializer": "json", '
                '"expires_at": null}',
                "cannot store the value for key 'k' in store 's' with the json serializer",
            ),
            (
                f'{{"store": "s", "key": "k", "pickle": "{garbage.decode()}", '
                '"serializer": "json", "expires_at": null}',
                "cannot unpickle the value of key 'k' in store 's': UnpicklingError",
            ),
        ]:
            with self.subTest(bad=bad):
                with self.assertRaisesMessage(TransferError, message) as raised:
                    import_text(f"{good}\n{bad}\n{good}\n")
                self.assertIn("line 2:", str(raised.exception))
                self.assertIn("nothing was imported", str(raised.exception))
                self.assertEqual(KeyVal("s").get("existing"), "unchanged")
                self.assertEqual(KeyValPair.objects.count(), 1)

    def test_import_of_values_and_times_out_of_range(self) -> None:
        KeyVal("s").set("existing", "unchanged")
        good = '{"store": "s", "key": "existing", "value": "changed", "expires_at": null}'
        for bad, message in [
            (
                '{"store": "s", "key": "k", "value": 1e400, "expires_at": null}',
                "line 2: not valid JSON: 1e400 is too large a number (it would be infinity)",
            ),
            (
                '{"store": "s", "key": "k", "value": {"a": [-1E999]}, "expires_at": null}',
                "line 2: not valid JSON: -1E999 is too large a number",
            ),
            (
                '{"store": "s", "key": "k", "value": 1, "expires_at": "9999-12-31T23:59:59-05:00"}',
                "line 2: \"expires_at\" is outside the range of times: '9999-12-31T23:59:59-05:00'",
            ),
            (
                '{"store": "s", "key": "k", "value": 1, "expires_at": "0001-01-01T00:00:00+05:00"}',
                'line 2: "expires_at" is outside the range of times',
            ),
        ]:
            with self.subTest(bad=bad), self.assertRaisesMessage(TransferError, message):
                import_text(f"{good}\n{bad}\n{good}\n")
            self.assertEqual(KeyVal("s").get("existing"), "unchanged")
            self.assertEqual(KeyValPair.objects.count(), 1)
        # The last time there is, in UTC, is fine.
        import_text('{"store": "s", "key": "k", "value": 1, "expires_at": "9999-12-31T23:59:59Z"}')
        expires = KeyVal("s").expires_at("k")
        self.assertEqual(expires and expires.year, 9999)

    def test_import_of_lines_that_are_not_utf8(self) -> None:
        lines = [
            b'{"store": "s", "key": "a", "value": 1, "expires_at": null}\n',
            b"\n",
            b'{"store": "s", "key": "\xff", "value": 1, "expires_at": null}\n',
        ]
        with self.assertRaisesMessage(
            TransferError,
            "line 3: not UTF-8 text ('utf-8' codec can't decode byte 0xff in position 23: "
            "invalid start byte); nothing was imported",
        ):
            import_lines(lines)
        self.assertEqual(KeyValPair.objects.count(), 0)

    def test_import_of_a_value_too_large(self) -> None:
        with override_settings(KEYVAL_MAX_VALUE_SIZE=100):
            for field, value in [
                ("value", json.dumps(["x" * 200])),
                (
                    "pickle",
                    json.dumps(
                        base64.b64encode(PickleSerializer().dumps(["x" * 200], "s", "k")).decode()
                    ),
                ),
            ]:
                line = f'{{"store": "s", "key": "k", "{field}": {value}, "expires_at": null}}'
                with self.subTest(field), self.assertRaisesMessage(TransferError, "line 1:"):
                    import_text(line)
        self.assertEqual(KeyValPair.objects.count(), 0)

    def test_import_of_a_forged_pickle(self) -> None:
        tmp = tempfile.mkdtemp(prefix="keyval-transfer-")
        self.addCleanup(shutil.rmtree, tmp)
        proof = os.path.join(tmp, "pwned")
        KeyVal("s").set("a", "before")
        before = rows()
        forged = base64.b64encode(forged_pickle(proof)).decode()
        lines = (
            '{"store": "t", "key": "fine", "value": 1, "expires_at": null}\n'
            '{"store": "s", "key": "a", "value": "overwritten", "expires_at": null}\n'
            f'{{"store": "t", "key": "evil", "pickle": "{forged}", "expires_at": null}}\n'
        )
        with self.assertRaisesMessage(
            TransferError,
            "line 3: the pickled value of key 'evil' in store 't' failed its signature check",
        ):
            import_text(lines)
        self.assertFalse(os.path.exists(proof), "the forged pickle was unpickled")
        self.assertEqual(rows(), before)

    def test_import_accepts_pickles_signed_with_a_fallback_key(self) -> None:
        with override_settings(SECRET_KEY="the-old-key"):
            KeyVal("s").set("k", {1, 2})
            exported = export_text()
        with self.assertRaisesMessage(TransferError, "failed its signature check"):
            import_text(exported)
        with override_settings(SECRET_KEY_FALLBACKS=["the-old-key"]):
            self.assertEqual(import_text(exported), ImportResult(1, 0))
            self.assertEqual(KeyVal("s").get("k"), {1, 2})

    def test_imported_pickles_are_signed_with_the_current_key(self) -> None:
        # Moving pairs between projects: the source's key is a fallback for
        # the import only; the pairs must stay readable once it is removed.
        with override_settings(SECRET_KEY="the-exporting-projects-key"):
            KeyVal("s").set("pickled", {1, 2})
            KeyVal("s").set("bytes", b"\x00raw")
            KeyVal("s", serializer="tests.helpers.ReversedJSONSerializer").set("custom", (1, 2))
            with override_settings(KEYVAL_SERIALIZER="tests.helpers.ReversedJSONSerializer"):
                exported = export_text()
        KeyVal.flush_all()
        with override_settings(
            SECRET_KEY="the-importing-projects-key",
            SECRET_KEY_FALLBACKS=["the-exporting-projects-key"],
            KEYVAL_SERIALIZER="tests.helpers.ReversedJSONSerializer",
        ):
            self.assertEqual(import_text(exported), ImportResult(3, 0))
        with override_settings(
            SECRET_KEY="the-importing-projects-key",
            SECRET_KEY_FALLBACKS=[],
            KEYVAL_SERIALIZER="tests.helpers.ReversedJSONSerializer",
        ):
            row = KeyValPair.objects.get(key="pickled")
            self.assertTrue(
                PickleSerializer().is_signed_with_current_key(bytes(row.value), "s", "pickled")
            )
            self.assertEqual(
                KeyVal("s").get_many(["pickled", "bytes", "custom"]),
                {"pickled": {1, 2}, "bytes": b"\x00raw", "custom": (1, 2)},
            )

    def test_a_pickle_moved_to_another_line_is_refused(self) -> None:
        KeyVal("s").set("admin", {"role", "admin"})  # a set: JSON cannot carry it
        KeyVal("s").set("bytes", b"raw")
        lines = export()
        KeyVal.flush_all()
        admin_pickle = lines[0]["pickle"]
        for moved, where in [
            ({**lines[0], "key": "user"}, "another key"),
            ({**lines[0], "store": "t"}, "another store"),
            ({**lines[0], "serializer": "bytes"}, "another format"),
            ({**lines[1], "pickle": admin_pickle}, "another line's value"),
        ]:
            with (
                self.subTest(where),
                self.assertRaisesMessage(TransferError, "failed its signature check"),
            ):
                import_text(json.dumps(moved))
        self.assertEqual(KeyValPair.objects.count(), 0)
        self.assertEqual(import_text("\n".join(json.dumps(line) for line in lines)).imported, 2)
        self.assertEqual(KeyVal("s").get("admin"), {"role", "admin"})

    def test_import_without_the_custom_serializer_changes_nothing(self) -> None:
        KeyVal("c", serializer="tests.helpers.ReversedJSONSerializer").set("k", [1])
        with override_settings(KEYVAL_SERIALIZER="tests.helpers.ReversedJSONSerializer"):
            exported = export_text()
        KeyVal("c").set("k", "other")
        before = rows()
        with self.assertRaisesMessage(
            TransferError,
            "line 1: \"serializer\" is 'reversed-json', which is not the built-in pickle or "
            "json, nor the name of the KEYVAL_SERIALIZER ('pickle')",
        ):
            import_text(exported)
        self.assertEqual(rows(), before)


@override_settings(KEYVAL_SERIALIZER="pickle")
class RoundTripTests(TestCase):
    """What export_lines writes, import_lines stores again exactly as it was."""

    databases = {"default", "other"}

    def test_roundtrip_is_exact(self) -> None:
        values = sample_values()
        for store, mapping in values.items():
            KeyVal(store).set_many(mapping)
        KeyVal("app").set("expiring", "soon", timeout=3600)
        before = rows()
        exported = export_text()
        KeyVal.flush_all()
        self.assertEqual(import_text(exported), ImportResult(len(before), 0))
        values["app"]["expiring"] = "soon"
        for store, mapping in values.items():
            kv = KeyVal(store)
            self.assertEqual(list(kv.keys()), sorted(mapping))
            for key, value in mapping.items():
                with self.subTest(store=store, key=key):
                    self.assertEqual(typed(kv.get(key)), typed(value))
        # Store, key, serializer, bytes, integer and expiry to the microsecond.
        self.assertEqual(rows(), before)
        self.assertEqual(export_text(), exported)

    def test_roundtrip_keeps_each_pairs_serializer(self) -> None:
        values = {
            "dict": {"a": [1, 2.5, None, True]},
            "list": ["x", -0.0],
            "bool": False,
            "none": None,
            "float": 1e300,
            "big int": 2**70,
            "int": 7,
            "str": "text",
        }
        stores = {
            "json": KeyVal("j", serializer="json"),
            "pickle": KeyVal("p", serializer="pickle"),
            "custom": KeyVal("c", serializer="tests.helpers.ReversedJSONSerializer"),
        }
        for kv in stores.values():
            kv.set_many(values)
        stores["pickle"].set("tuple", (1, "a"))
        stores["custom"].set("tuple", (1, "a"))
        stores["pickle"].set("bytes", b"\x00\xff")
        before = rows()
        self.assertEqual(
            {(store, fmt) for store, _, fmt, *_ in before},
            {
                *((store, fmt) for store in "jpc" for fmt in ("int", "str")),
                ("j", "json"),
                ("p", "pickle"),
                ("p", "bytes"),
                ("c", "reversed-json"),
            },
        )
        # The custom serializer is found by its name in KEYVAL_SERIALIZER, to
        # read its rows on export and to write them on import.
        with override_settings(KEYVAL_SERIALIZER="tests.helpers.ReversedJSONSerializer"):
            exported = export_text()
            lines = [json.loads(line) for line in exported.splitlines()]
            self.assertEqual(
                {(line["store"], line["key"]): line.get("serializer") for line in lines},
                {(store, key): fmt for store, key, fmt, *_ in before}
                | {(store, key): None for store, key, fmt, *_ in before if fmt in ("int", "str")},
            )
            KeyVal.flush_all()
            import_text(exported)
        self.assertEqual(rows(), before)
        self.assertEqual(typed(stores["custom"].get("tuple")), typed((1, "a")))
        self.assertEqual(typed(stores["json"].get("dict")), typed(values["dict"]))

        # Whatever KEYVAL_SERIALIZER the importing project has.
        for setting in ["json", "pickle"]:
            KeyVal("j").flush()
            KeyVal("p").flush()
            kept = "\n".join(line for line in exported.splitlines() if '"store": "c"' not in line)
            with self.subTest(setting), override_settings(KEYVAL_SERIALIZER=setting):
                import_text(kept)
                self.assertEqual(rows(), before)

    def test_roundtrip_of_a_value_too_deep_for_json(self) -> None:
        cycle: list[Any] = []
        cycle.append(cycle)
        KeyVal("s").set("cycle", cycle)
        before = rows()
        [line] = export()
        self.assertEqual(set(line), {"store", "key", "pickle", "serializer", "expires_at"})
        KeyVal.flush_all()
        import_lines([json.dumps(line)])
        self.assertEqual(rows(), before)
        restored = KeyVal("s").get("cycle")
        self.assertIs(restored[0], restored)

    def test_roundtrip_of_ints_too_long_for_text(self) -> None:
        # More digits than Python turns into text: JSON cannot carry them,
        # so they go as pickles, and the rest of the export goes on.
        huge = 7 * 10**5000
        KeyVal("s").set("huge", huge)
        KeyVal("s").set("in a list", [1, -huge])
        KeyVal("s").set("plain", 1)
        before = rows()
        lines = export()
        self.assertEqual([line["key"] for line in lines], ["huge", "in a list", "plain"])
        self.assertEqual(["pickle" in line for line in lines], [True, True, False])
        KeyVal.flush_all()
        import_lines([json.dumps(line) for line in lines])
        self.assertEqual(rows(), before)
        self.assertEqual(KeyVal("s").get("huge"), huge)
        self.assertEqual(KeyVal("s").get("in a list"), [1, -huge])

    def test_custom_serializer_rows(self) -> None:
        dotted = "tests.helpers.ReversedJSONSerializer"
        with override_settings(KEYVAL_SERIALIZER=dotted):
            KeyVal("s").set("list", [1, "a"])
            KeyVal("s").set("tuple", (1, "a"))
            before = rows()
            lines = export()
            self.assertEqual(lines[0]["value"], [1, "a"])
            # A value JSON cannot carry goes as a pickle, with its own serializer's name.
            self.assertEqual(lines[1]["serializer"], "reversed-json")
            self.assertEqual(
                PickleSerializer().loads(
                    base64.b64decode(lines[1]["pickle"]), "s", "tuple", "reversed-json"
                ),
                (1, "a"),
            )
            KeyVal.flush_all()
            import_lines([json.dumps(line) for line in lines])
            self.assertEqual(typed(KeyVal("s").get("tuple")), typed((1, "a")))
        self.assertEqual(rows(), before)

    @override_settings(USE_TZ=False, TIME_ZONE="Europe/Paris")
    def test_roundtrip_without_time_zones(self) -> None:
        KeyVal("s").set("k", "v", timeout=3600)
        stored = KeyValPair.objects.get().expires_at
        assert stored is not None
        self.assertTrue(timezone.is_naive(stored))
        exported = export_text()
        self.assertEqual(
            json.loads(exported)["expires_at"],
            timezone.make_aware(stored).astimezone(datetime.timezone.utc).isoformat(),
        )
        KeyVal.flush_all()
        import_text(exported)
        self.assertEqual(KeyValPair.objects.get().expires_at, stored)

    def test_roundtrip_between_databases(self) -> None:
        KeyVal("s").set_many({"a": 1, "b": (2, 3), "c": "x"})
        KeyVal("s").set("d", [4], timeout=600)
        self.assertEqual(import_text(export_text(), using="other"), ImportResult(4, 0))
        self.assertEqual(rows(using="other"), rows())


class MemoryTests(TestCase):
    """Export and import hold a bounded number of bytes, whatever the store holds."""

    #: Just under ``KEYVAL_MAX_VALUE_SIZE`` (8 MiB) once encoded.
    SIZE = 8 * 1024 * 1024 - 1024

    @staticmethod
    def peak(run: Any) -> int:
        tracemalloc.start()
        try:
            run()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def peaks(self, values: int) -> tuple[int, int]:
        """Store ``values`` values of 8 MiB; return the peaks of exporting and importing them."""
        KeyValPair.objects.all().delete()
        store = KeyVal("large")
        for number in range(values):
            store.set(f"k{number}", str(number) * self.SIZE)
        with tempfile.TemporaryFile("w+b") as file:

            def export() -> None:
                for line in export_lines():
                    file.write(line.encode() + b"\n")

            export_peak = self.peak(export)
            KeyValPair.objects.all().delete()
            file.seek(0)
            import_peak = self.peak(lambda: import_lines(file))
        self.assertEqual(store.count(), values)
        self.assertEqual(store.get("k2"), "2" * self.SIZE)
        return export_peak, import_peak

    def test_export_and_import_of_8_mib_values_hold_bounded_memory(self) -> None:
        few = self.peaks(3)
        many = self.peaks(9)
        print(
            f"\n[{connection.vendor}] peak Python memory, export / import of values of 8 MiB: "
            f"3 values {few[0] / 2**20:.1f} / {few[1] / 2**20:.1f} MiB, "
            f"9 values {many[0] / 2**20:.1f} / {many[1] / 2**20:.1f} MiB"
        )
        # 48 MiB more values cost no more memory (a little slack for allocator noise).
        self.assertLess(many[0], few[0] + 2 * 2**20)
        self.assertLess(many[1], few[1] + 2 * 2**20)
