# mypy: disable-error-code="arg-type,misc,var-annotated"
# (This module passes wrong types on purpose, through lambdas mypy cannot type.)
"""Bad input: a clear exception, nothing stored changes, the connection stays usable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import TestCase, override_settings

from django_keyval import exceptions
from django_keyval.models import MAX_KEY_LENGTH, MAX_STORE_NAME_LENGTH, KeyVal, KeyValPair
from tests.helpers import forced_operations


def snapshot() -> list[tuple[Any, ...]]:
    """Every row as the database holds it."""
    return [
        (
            row.store,
            row.key,
            bytes(row.value or b""),
            row.integer_value,
            row.serializer,
            row.version,
            row.expires_at,
        )
        for row in KeyValPair.objects.order_by("store", "key")
    ]


class BadInputTests(TestCase):
    def setUp(self) -> None:
        self.kv = KeyVal("tests.bad")
        self.kv.set("kept", {"value": 1})
        self.kv.set("text", "a string")
        self.kv.set("n", 10)
        self.before = snapshot()

    def assertRefused(  # noqa: N802
        self, call: Callable[[], Any], error: type[Exception], *fragments: str
    ) -> Exception:
        """The call raises ``error`` naming the problem, costs no query and changes nothing."""
        with self.assertNumQueries(0), self.assertRaises(error) as raised:
            call()
        self.assertIsInstance(raised.exception, exceptions.KeyValError)
        for fragment in fragments:
            self.assertIn(fragment, str(raised.exception))
        self.assertEqual(snapshot(), self.before)
        # The same connection (and, on PostgreSQL, the same transaction) still works.
        self.assertEqual(self.kv.get("kept"), {"value": 1})
        return raised.exception

    def test_keys_and_names_that_are_not_str(self) -> None:
        for bad in (1, 1.5, b"key", None, ("k",), ["k"]):
            with self.subTest(bad=bad):
                self.assertRefused(lambda bad=bad: self.kv.get(bad), TypeError, type(bad).__name__)
                self.assertRefused(
                    lambda bad=bad: self.kv.set(bad, 1), TypeError, "key must be a str"
                )
                self.assertRefused(
                    lambda bad=bad: KeyVal(bad), TypeError, "store name must be a str"
                )
                if not isinstance(bad, list):
                    self.assertRefused(lambda bad=bad: self.kv.set_many({bad: 1}), TypeError)
                self.assertRefused(lambda bad=bad: self.kv.get_many([bad]), TypeError)

    def test_no_silent_int_string_equivalence(self) -> None:
        self.kv.set("1", "string key")
        self.before = snapshot()
        self.assertRefused(lambda: self.kv.get(1), TypeError, "int")

    def test_empty_store_name(self) -> None:
        self.assertRefused(lambda: KeyVal(""), ValueError, "empty")

    def test_lengths(self) -> None:
        longest_key = "k" * MAX_KEY_LENGTH
        longest_name = "n" * MAX_STORE_NAME_LENGTH
        self.assertTrue(KeyVal(longest_name).set(longest_key, 1))
        self.assertEqual(KeyVal(longest_name).get(longest_key), 1)
        # Four-byte characters count as one each, on MariaDB's utf8mb4 too.
        self.assertTrue(KeyVal("𝄞" * MAX_STORE_NAME_LENGTH).set("😀" * MAX_KEY_LENGTH, 2))
        self.assertEqual(KeyVal("𝄞" * MAX_STORE_NAME_LENGTH).get("😀" * MAX_KEY_LENGTH), 2)
        self.before = snapshot()
        self.assertRefused(
            lambda: self.kv.set("k" * (MAX_KEY_LENGTH + 1), 1), ValueError, "at most 500"
        )
        self.assertRefused(
            lambda: self.kv.get("k" * (MAX_KEY_LENGTH + 1)), ValueError, "at most 500"
        )
        self.assertRefused(
            lambda: KeyVal("n" * (MAX_STORE_NAME_LENGTH + 1)), ValueError, "at most 200"
        )

    def test_nul_characters(self) -> None:
        self.assertRefused(lambda: self.kv.set("a\x00b", 1), ValueError, "NUL")
        self.assertRefused(lambda: self.kv.get_default("a\x00b"), ValueError, "NUL")
        self.assertRefused(lambda: KeyVal("store\x00"), ValueError, "NUL")
        self.assertRefused(lambda: list(self.kv.keys("\x00")), ValueError, "NUL")

    def test_lone_surrogates(self) -> None:
        self.assertRefused(lambda: self.kv.set("\ud800", 1), ValueError, "surrogate")
        self.assertRefused(lambda: self.kv.exists("x\udfffy"), ValueError, "surrogate")
        self.assertRefused(lambda: KeyVal("\ud800"), ValueError, "surrogate")

    def test_unpicklable_values_keep_the_old_value(self) -> None:
        with open(__file__) as open_file:
            for bad in (lambda: None, open_file, (x for x in [])):
                with self.subTest(value=type(bad).__name__):
                    error = self.assertRefused(
                        lambda bad=bad: self.kv.set("kept", bad), TypeError, "'kept'", "pickle"
                    )
                    self.assertIsInstance(error, exceptions.SerializationError)
                    self.assertIsNotNone(error.__cause__)
                    self.assertRefused(lambda bad=bad: self.kv.add("new", bad), TypeError)

    def test_value_size_limit(self) -> None:
        limit = 8 * 1024 * 1024
        self.assertRefused(lambda: self.kv.set("kept", b"x" * (limit + 1)), ValueError, str(limit))
        self.assertRefused(
            lambda: self.kv.set("kept", "x" * (limit + 1)), ValueError, "KEYVAL_MAX_VALUE_SIZE"
        )
        with override_settings(KEYVAL_MAX_VALUE_SIZE=10):
            self.assertRefused(lambda: self.kv.set("kept", [1] * 20), ValueError, "10 bytes")

    def test_values_up_to_the_limit_work(self) -> None:
        limit = 8 * 1024 * 1024
        big = bytes(range(256)) * (limit // 256)
        self.assertEqual(len(big), limit)
        self.kv.set("big", big)
        self.assertEqual(self.kv.get("big"), big)
        self.kv.set("big-pickle", [big[: limit - 1000]])
        self.assertEqual(self.kv.get("big-pickle"), [big[: limit - 1000]])

    def test_values_up_to_the_limit_work_whatever_their_bytes(self) -> None:
        if forced_operations() == "portable" and connection.vendor == "mysql":
            self.skipTest(
                "the portable class sends values as escaped literals, which MariaDB's "
                "max_allowed_packet limits; MariaDB's own class sends long ones base64"
            )
        # Bytes a driver must escape in an SQL literal (MariaDB's) take two
        # bytes there each: a limit-sized value of them must still go in.
        limit = 8 * 1024 * 1024
        for byte in (b"\x00", b"'", b"\\", b"\n"):
            worst = byte * limit
            with self.subTest(byte=byte):
                self.assertTrue(self.kv.set("worst", worst))
                self.assertEqual(self.kv.get("worst"), worst)
                self.assertTrue(self.kv.add("worst-added", worst))
                self.assertEqual(self.kv.pop("worst-added"), worst)
                self.kv.set_many({"worst-1": worst, "worst-2": worst, "small": byte * 1000})
                self.assertEqual(
                    self.kv.get_many(["worst-1", "worst-2", "small"]),
                    {"small": byte * 1000, "worst-1": worst, "worst-2": worst},
                )
                self.assertFalse(self.kv.set("worst", b"x"))
                self.kv.delete_many(["worst", "worst-1", "worst-2", "small"])
        self.assertEqual(snapshot(), self.before)

    def test_timeouts(self) -> None:
        for bad in (-1, float("nan"), float("inf"), float("-inf")):
            with self.subTest(timeout=bad):
                self.assertRefused(
                    lambda bad=bad: self.kv.set("kept", 2, timeout=bad), ValueError, "timeout"
                )
                self.assertRefused(
                    lambda bad=bad: self.kv.touch("kept", bad), ValueError, "timeout"
                )
                self.assertRefused(
                    lambda bad=bad: self.kv.set_many({"kept": 2}, timeout=bad), ValueError
                )

    def test_incr_of_non_integer(self) -> None:
        # Classifying the failure takes a look at the row, so queries happen here.
        with self.assertRaises(TypeError) as raised:
            self.kv.incr("text")
        self.assertIsInstance(raised.exception, exceptions.NotAnIntegerError)
        self.assertEqual(snapshot(), self.before)
        self.assertEqual(self.kv.incr("n"), 11)

    def test_database_alias_and_connection_survive(self) -> None:
        self.assertRefused(lambda: self.kv.set("\x00", 1), ValueError)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            self.assertEqual(cursor.fetchone()[0], 1)
