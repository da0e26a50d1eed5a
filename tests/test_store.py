"""The KeyVal API: the 0.1.2 contract, expiry, counters, bulk, listing, dict and async access."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import math
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, transaction
from django.test import TestCase, TransactionTestCase, override_settings
from django.utils import timezone

from django_keyval import exceptions
from django_keyval.models import KeyVal, KeyValPair
from tests.helpers import Point, forced_operations, vendor_classes_only

VALUES: dict[str, Any] = {
    "int": 42,
    "negative": -(2**63),
    "bigint": 2**100,
    "float": 1.5,
    "decimal": decimal.Decimal("3.14159265358979323846"),
    "str": "héllo wörld ✓ 𝄞",
    "empty-str": "",
    "bytes": b"\x00\xffbinary",
    "none": None,
    "bool": True,
    "tuple": (1, "two", 3.0),
    "list": [1, [2, 3], {"four": 4}],
    "dict": {"a": 1, 2: "b", (3, 4): None},
    "set": {1, 2, 3},
    "frozenset": frozenset({"x"}),
    "datetime": datetime.datetime(2026, 11, 28, 12, 30, tzinfo=datetime.timezone.utc),
    "date": datetime.date(2026, 1, 1),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "instance": Point(1, 2),
    "surrogate-str": "lone \ud800 surrogate",
}


def expire(store: str, key: str) -> None:
    """Move a pair's expiry into the past, as if its timeout had run out."""
    past = timezone.now() - datetime.timedelta(seconds=1)
    KeyValPair.objects.filter(store=store, key=key).update(expires_at=past)


class ContractTests(TestCase):
    """Every behaviour of the 0.1.2 description."""

    def setUp(self) -> None:
        self.kv = KeyVal("tests.contract")

    def test_connect_is_the_constructor(self) -> None:
        kv = KeyVal.connect("tests.contract")
        self.assertIsInstance(kv, KeyVal)
        self.assertEqual(kv.name, "tests.contract")
        self.kv.set("k", 1)
        self.assertEqual(kv.get("k"), 1)
        self.assertEqual(repr(kv), "<KeyVal 'tests.contract'>")

    def test_every_value_type_round_trips(self) -> None:
        for name, value in VALUES.items():
            with self.subTest(name=name):
                self.assertTrue(self.kv.set(name, value))
                stored = self.kv.get(name)
                self.assertEqual(stored, value)
                self.assertIs(type(stored), type(value))

    def test_set_reports_new_then_overwritten(self) -> None:
        self.assertIs(self.kv.set("k", "one"), True)
        self.assertIs(self.kv.set("k", "two"), False)
        self.assertIs(self.kv.set("k", "two"), False)
        self.assertEqual(self.kv.get("k"), "two")
        self.assertEqual(KeyValPair.objects.filter(store="tests.contract").count(), 1)

    def test_stores_are_independent(self) -> None:
        other = KeyVal("tests.other")
        self.kv.set("k", "mine")
        self.assertFalse(other.exists("k"))
        self.assertTrue(other.set("k", "theirs"))
        self.assertEqual(self.kv.get("k"), "mine")
        other.flush()
        self.assertEqual(self.kv.get("k"), "mine")

    def test_get_missing_raises_keyerror_subclass(self) -> None:
        with self.assertRaises(KeyError) as raised:
            self.kv.get("missing")
        self.assertIsInstance(raised.exception, exceptions.KeyNotFoundError)
        self.assertIsInstance(raised.exception, exceptions.KeyValError)
        self.assertEqual(str(raised.exception), "key 'missing' not found in store 'tests.contract'")

    def test_get_default(self) -> None:
        self.assertIsNone(self.kv.get_default("missing"))
        self.assertEqual(self.kv.get_default("missing", "fallback"), "fallback")
        self.kv.set("k", None)
        self.assertIsNone(self.kv.get_default("k", "fallback"))

    def test_pop(self) -> None:
        self.kv.set("k", [1, 2])
        self.assertEqual(self.kv.pop("k"), [1, 2])
        self.assertFalse(self.kv.exists("k"))
        with self.assertRaises(exceptions.KeyNotFoundError):
            self.kv.pop("k")

    def test_pop_default(self) -> None:
        self.kv.set("k", 7)
        self.assertEqual(self.kv.pop_default("k", "d"), 7)
        self.assertEqual(self.kv.pop_default("k", "d"), "d")
        self.assertIsNone(self.kv.pop_default("k"))

    def test_exists(self) -> None:
        self.assertIs(self.kv.exists("k"), False)
        self.kv.set("k", None)
        self.assertIs(self.kv.exists("k"), True)

    def test_delete(self) -> None:
        self.kv.set("k", 1)
        self.assertIs(self.kv.delete("k"), True)
        with self.assertRaises(exceptions.KeyNotFoundError):
            self.kv.delete("k")
        self.assertIs(self.kv.delete("k", ignore_keyerror=True), False)

    def test_flush_only_this_store(self) -> None:
        other = KeyVal("tests.other")
        for i in range(3):
            self.kv.set(f"k{i}", i)
        other.set("k0", "kept")
        self.kv.set("gone", 1, timeout=60)
        expire("tests.contract", "gone")
        # None, as 0.1.2 and dict.clear() return: flush() says nothing.
        self.assertIsNone(self.kv.flush())  # type: ignore[func-returns-value]
        self.assertFalse(KeyValPair.objects.filter(store="tests.contract").exists())
        self.assertIsNone(self.kv.flush())  # type: ignore[func-returns-value]  # empty: no error
        self.assertEqual(list(self.kv.keys()), [])
        self.assertEqual(other.get("k0"), "kept")

    def test_flush_all_on_class_and_instance(self) -> None:
        self.kv.set("a", 1)
        KeyVal("tests.other").set("b", 2)
        self.assertIsNone(KeyVal.flush_all())
        self.assertFalse(KeyValPair.objects.exists())
        self.kv.set("a", 1)
        self.assertIsNone(self.kv.flush_all())
        self.assertFalse(KeyValPair.objects.exists())

    def test_disconnect(self) -> None:
        self.kv.set("k", "v")
        self.kv.disconnect()
        self.assertFalse(self.kv.connected)
        self.assertIn("disconnected", repr(self.kv))
        calls: list[Callable[[], Any]] = [
            lambda: self.kv.get("k"),
            lambda: self.kv.get_default("k"),
            lambda: self.kv.set("k", 1),
            lambda: self.kv.pop("k"),
            lambda: self.kv.pop_default("k"),
            lambda: self.kv.exists("k"),
            lambda: self.kv.delete("k"),
            lambda: self.kv.flush(),
            lambda: self.kv.add("k", 1),
            lambda: self.kv.incr("n"),
            lambda: self.kv.touch("k", 5),
            lambda: self.kv.expires_at("k"),
            lambda: self.kv.get_many(["k"]),
            lambda: self.kv.set_many({"k": 1}),
            lambda: self.kv.delete_many(["k"]),
            lambda: list(self.kv.keys()),
            lambda: len(self.kv),
            lambda: self.kv.stores(),
            lambda: self.kv.cull(),
            lambda: self.kv.disconnect(),
            lambda: self.kv["k"],
        ]
        for call in calls:
            with self.subTest(call=call), self.assertRaises(NameError) as raised:
                call()
            self.assertIsInstance(raised.exception, exceptions.StoreDisconnectedError)
        # The data is still there for a new connection, and flush_all still works.
        self.assertEqual(KeyVal("tests.contract").get("k"), "v")
        self.kv.flush_all()
        self.assertFalse(KeyValPair.objects.exists())

    def test_disconnect_with_the_store_name(self) -> None:
        with self.assertRaises(exceptions.InvalidKeyError):
            self.kv.disconnect("another.store")
        self.assertTrue(self.kv.connected)
        self.kv.disconnect("tests.contract")
        self.assertFalse(self.kv.connected)

    def test_many_stores_connected_at_once(self) -> None:
        stores = [KeyVal(f"tests.many.{i}") for i in range(10)]
        for i, kv in enumerate(stores):
            kv.set("k", i)
        self.assertEqual([kv.get("k") for kv in stores], list(range(10)))


class ExpiryTests(TestCase):
    def setUp(self) -> None:
        self.kv = KeyVal("tests.expiry")

    def test_timeout_forms(self) -> None:
        before = timezone.now()
        self.kv.set("seconds", 1, timeout=60)
        self.kv.set("float", 1, timeout=0.5)
        self.kv.set("delta", 1, timeout=datetime.timedelta(hours=1))
        self.kv.set("never", 1)
        after = timezone.now()
        expires = self.kv.expires_at("seconds")
        assert expires is not None
        self.assertTrue(timezone.is_aware(expires))
        self.assertTrue(before + datetime.timedelta(seconds=60) <= expires)
        self.assertTrue(expires <= after + datetime.timedelta(seconds=60))
        delta = self.kv.expires_at("delta")
        assert delta is not None
        self.assertAlmostEqual((delta - before).total_seconds(), 3600, delta=5)
        self.assertIsNone(self.kv.expires_at("never"))
        with self.assertRaises(exceptions.KeyNotFoundError):
            self.kv.expires_at("missing")

    def test_real_short_timeout(self) -> None:
        self.kv.set("k", "v", timeout=0.05)
        self.assertEqual(self.kv.get("k"), "v")
        import time

        time.sleep(0.1)
        self.assertFalse(self.kv.exists("k"))

    def test_zero_timeout_expires_at_once(self) -> None:
        self.kv.set("k", "v", timeout=0)
        self.assertFalse(self.kv.exists("k"))

    def test_expired_pair_is_missing_everywhere(self) -> None:
        self.kv.set("gone", "old", timeout=60)
        self.kv.set("here", "new")
        expire("tests.expiry", "gone")
        self.assertFalse(self.kv.exists("gone"))
        self.assertIsNone(self.kv.get_default("gone"))
        with self.assertRaises(exceptions.KeyNotFoundError):
            self.kv.get("gone")
        self.assertEqual(self.kv.pop_default("gone", "d"), "d")
        self.assertFalse(self.kv.delete("gone", ignore_keyerror=True))
        self.assertFalse(self.kv.touch("gone", 60))
        with self.assertRaises(exceptions.KeyNotFoundError):
            self.kv.expires_at("gone")
        self.assertEqual(len(self.kv), 1)
        self.assertEqual(list(self.kv), ["here"])
        self.assertEqual(list(self.kv.items()), [("here", "new")])
        self.assertEqual(self.kv.get_many(["gone", "here"]), {"here": "new"})
        self.assertEqual(self.kv.delete_many(["gone"]), 0)
        self.assertNotIn("gone", self.kv)
        expire("tests.expiry", "here")
        self.assertEqual(KeyVal.stores(), [])

    def test_set_over_expired_pair_is_new(self) -> None:
        self.kv.set("k", "old", timeout=60)
        expire("tests.expiry", "k")
        self.assertIs(self.kv.set("k", "new"), True)
        self.assertIsNone(self.kv.expires_at("k"))
        self.assertIs(self.kv.set("k", "newer"), False)

    def test_set_replaces_timeout(self) -> None:
        self.kv.set("k", 1, timeout=60)
        self.kv.set("k", 2)
        self.assertIsNone(self.kv.expires_at("k"))

    def test_add(self) -> None:
        self.assertIs(self.kv.add("k", "first"), True)
        self.assertIs(self.kv.add("k", "second"), False)
        self.assertEqual(self.kv.get("k"), "first")
        self.assertIs(self.kv.set("k", "third"), False)

    def test_add_over_expired_pair(self) -> None:
        self.kv.set("k", "old", timeout=60)
        expire("tests.expiry", "k")
        self.assertIs(self.kv.add("k", "new", timeout=30), True)
        self.assertEqual(self.kv.get("k"), "new")
        self.assertIsNotNone(self.kv.expires_at("k"))
        self.assertIs(self.kv.add("k", "newer"), False)
        self.assertEqual(self.kv.get("k"), "new")

    def test_touch(self) -> None:
        self.kv.set("k", "v")
        self.assertIs(self.kv.touch("k", 60), True)
        self.assertIsNotNone(self.kv.expires_at("k"))
        self.assertIs(self.kv.touch("k", None), True)
        self.assertIsNone(self.kv.expires_at("k"))
        self.assertIs(self.kv.touch("missing", 60), False)
        self.assertEqual(self.kv.get("k"), "v")
        # The timeout is required: a forgotten one must not make a pair permanent.
        self.kv.touch("k", 60)
        with self.assertRaises(TypeError):
            self.kv.touch("k")  # type: ignore[call-arg]
        self.assertIsNotNone(self.kv.expires_at("k"))

    def test_cull_removes_only_expired_pairs(self) -> None:
        for i in range(5):
            self.kv.set(f"timed{i}", i, timeout=60)
            self.kv.set(f"durable{i}", i)
        for i in range(3):
            expire("tests.expiry", f"timed{i}")
        with override_settings(KEYVAL_CULL_BATCH_SIZE=2):
            self.assertEqual(KeyVal.cull(), 3)
        self.assertEqual(KeyValPair.objects.count(), 7)
        self.assertEqual(self.kv.cull(), 0)

    def test_cull_statements_are_bounded(self) -> None:
        for i in range(10):
            self.kv.set(f"k{i}", i, timeout=60)
            expire("tests.expiry", f"k{i}")
        # Batches of 4: 4 + 4 + 2 rows, and the short batch ends the loop (the
        # portable class finds the rows of a batch, then deletes them).
        per_batch = 2 if forced_operations() == "portable" else 1
        with override_settings(KEYVAL_CULL_BATCH_SIZE=4), self.assertNumQueries(3 * per_batch):
            self.assertEqual(KeyVal.cull(), 10)

    @override_settings(KEYVAL_CULL_EVERY=3, KEYVAL_CULL_BATCH_SIZE=100)
    def test_writes_with_timeout_cull_as_they_go(self) -> None:
        from django_keyval import store

        store._timed_writes = 0
        self.kv.set("old", 1, timeout=60)
        expire("tests.expiry", "old")
        self.kv.set("durable", 1)  # durable writes do not count
        self.kv.set("a", 1, timeout=60)
        self.assertTrue(KeyValPair.objects.filter(key="old").exists())
        # The write, then one bounded cull (the portable class: an UPDATE and
        # an INSERT, in a savepoint here; then a SELECT and a DELETE).
        expected = 6 if forced_operations() == "portable" else 2
        with self.assertNumQueries(expected):
            self.kv.add("b", 1, timeout=60)
        self.assertFalse(KeyValPair.objects.filter(key="old").exists())
        self.assertEqual(sorted(self.kv), ["a", "b", "durable"])

    def test_timeout_validation(self) -> None:
        for bad in (-1, -0.001, float("nan"), float("inf"), datetime.timedelta(seconds=-1), 1e300):
            with self.subTest(timeout=bad), self.assertRaises(ValueError) as raised:
                self.kv.set("k", 1, timeout=bad)
            self.assertIsInstance(raised.exception, exceptions.InvalidTimeoutError)
        wrong_types: tuple[Any, ...] = ("10", True, [1])
        for wrong in wrong_types:
            with self.subTest(timeout=wrong), self.assertRaises(TypeError):
                self.kv.set("k", 1, timeout=wrong)
        self.assertFalse(KeyValPair.objects.exists())


class CounterTests(TestCase):
    def setUp(self) -> None:
        self.kv = KeyVal("tests.counters")

    def test_missing_key_starts_from_zero(self) -> None:
        self.assertEqual(self.kv.incr("hits"), 1)
        self.assertEqual(self.kv.incr("hits", 10), 11)
        self.assertEqual(self.kv.decr("hits", 3), 8)
        self.assertEqual(self.kv.decr("fresh"), -1)
        self.assertEqual(self.kv.get("hits"), 8)

    def test_incr_of_set_integer(self) -> None:
        self.kv.set("n", 41)
        self.assertEqual(self.kv.incr("n"), 42)
        self.assertEqual(self.kv.incr("n", -50), -8)

    def test_incr_keeps_expiry_and_restarts_expired(self) -> None:
        self.kv.set("n", 5, timeout=60)
        expires = self.kv.expires_at("n")
        self.assertEqual(self.kv.incr("n"), 6)
        self.assertEqual(self.kv.expires_at("n"), expires)
        expire("tests.counters", "n")
        self.assertEqual(self.kv.incr("n"), 1)
        self.assertIsNone(self.kv.expires_at("n"))

    def test_incr_of_non_integer_raises_and_keeps_value(self) -> None:
        for value in ("5", 5.0, True, [1], 2**70, None):
            with self.subTest(value=value):
                self.kv.set("v", value)
                with self.assertRaises(TypeError) as raised:
                    self.kv.incr("v")
                self.assertIsInstance(raised.exception, exceptions.NotAnIntegerError)
                self.assertIn(
                    "outside the signed 64-bit range" if value == 2**70 else "is not an integer",
                    str(raised.exception),
                )
                self.assertIn("'v'", str(raised.exception))
                self.assertEqual(self.kv.get("v"), value)
        self.assertEqual(self.kv.incr("after"), 1)  # the connection is still usable

    def test_overflow(self) -> None:
        self.kv.set("max", 2**63 - 1)
        self.kv.set("min", -(2**63))
        with self.assertRaises(exceptions.CounterOverflowError):
            self.kv.incr("max")
        with self.assertRaises(exceptions.CounterOverflowError):
            self.kv.decr("min")
        with self.assertRaises(exceptions.CounterOverflowError):
            self.kv.incr("x", 2**63)
        self.assertEqual(self.kv.get("max"), 2**63 - 1)
        self.assertEqual(self.kv.get("min"), -(2**63))
        self.assertFalse(self.kv.exists("x"))
        self.assertEqual(self.kv.decr("max"), 2**63 - 2)

    def test_delta_must_be_int(self) -> None:
        for delta in (1.0, "1", True, None):
            with self.subTest(delta=delta), self.assertRaises(TypeError):
                self.kv.incr("n", delta)  # type: ignore[arg-type]
            with self.subTest(delta=delta), self.assertRaises(TypeError):
                self.kv.decr("n", delta)  # type: ignore[arg-type]
        self.assertFalse(self.kv.exists("n"))


class StrictCounterTests(TestCase):
    """``incr(..., create=False)``: only live integer pairs change, in one statement."""

    def setUp(self) -> None:
        self.kv = KeyVal("tests.strict")

    def test_missing_or_expired_key_raises_and_stores_nothing(self) -> None:
        with self.assertRaises(exceptions.KeyNotFoundError) as raised:
            self.kv.incr("missing", create=False)
        self.assertIn("'missing'", str(raised.exception))
        self.kv.set("gone", 5, timeout=60)
        expire("tests.strict", "gone")
        with self.assertRaises(exceptions.KeyNotFoundError):
            self.kv.decr("gone", create=False)
        self.assertFalse(self.kv.exists("missing"))
        self.assertEqual(KeyValPair.objects.get(store="tests.strict", key="gone").integer_value, 5)

    def test_existing_integer_changes_and_keeps_its_expiry(self) -> None:
        self.kv.set("n", 41, timeout=60)
        expires = self.kv.expires_at("n")
        self.assertEqual(self.kv.incr("n", create=False), 42)
        self.assertEqual(self.kv.decr("n", 50, create=False), -8)
        self.assertEqual(self.kv.expires_at("n"), expires)
        self.assertEqual(self.kv.get("n"), -8)

    @vendor_classes_only
    def test_one_statement(self) -> None:
        self.kv.set("n", 1)
        # MariaDB has no UPDATE ... RETURNING: the sum comes back through
        # LAST_INSERT_ID, in the same statement.
        with self.assertNumQueries(1):
            self.assertEqual(self.kv.incr("n", create=False), 2)

    def test_non_integer_and_overflow_raise_and_keep_the_value(self) -> None:
        self.kv.set("text", "5")
        with self.assertRaises(exceptions.NotAnIntegerError):
            self.kv.incr("text", create=False)
        self.kv.set("max", 2**63 - 1)
        with self.assertRaises(exceptions.CounterOverflowError):
            self.kv.incr("max", create=False)
        self.assertEqual(self.kv.get("text"), "5")
        self.assertEqual(self.kv.get("max"), 2**63 - 1)


class TrimTests(TestCase):
    """``trim``: a store kept under a number of pairs, expired ones first; no other store."""

    def setUp(self) -> None:
        self.kv = KeyVal("tests.trim")
        self.neighbour = KeyVal("tests.trim.neighbour")
        self.neighbour.set_many({f"n{i}": i for i in range(20)}, timeout=60)
        for i in range(5):
            expire("tests.trim.neighbour", f"n{i}")

    def assert_neighbour_untouched(self) -> None:
        self.assertEqual(KeyValPair.objects.filter(store="tests.trim.neighbour").count(), 20)

    def test_under_the_limit_costs_one_count(self) -> None:
        self.kv.set_many({f"k{i}": i for i in range(10)})
        with self.assertNumQueries(1):
            self.assertEqual(self.kv.trim(10), 0)
        self.assertEqual(len(self.kv), 10)
        self.assert_neighbour_untouched()

    def test_expired_pairs_go_first(self) -> None:
        self.kv.set_many({f"k{i}": i for i in range(12)}, timeout=60)
        for i in (3, 7, 11):
            expire("tests.trim", f"k{i}")
        # 12 rows > 10: the 3 expired ones go, and 9 <= 10 is enough.
        self.assertEqual(self.kv.trim(10), 3)
        # Counted with expired rows; nothing more to delete.
        self.assertEqual(self.kv.trim_and_count(10), (9, 0))
        self.assertEqual(sorted(self.kv), sorted(f"k{i}" for i in range(12) if i % 4 != 3))
        self.assert_neighbour_untouched()

    def test_then_a_fraction_soonest_to_expire_first(self) -> None:
        now = timezone.now()
        for i in range(9):
            self.kv.set(f"k{i}", i, timeout=1000 - i)  # k8 expires soonest
        self.kv.set("durable", "kept longest")
        spare = timezone.now()
        self.kv.set("new", "spared", timeout=1)  # written since spare_since: stays
        # 11 pairs > 5: none expired, so 11 // 3 = 3 go: k8, k7, k6.
        self.assertEqual(self.kv.trim(5, 3, spare_since=spare), 3)
        self.assertEqual(sorted(self.kv), sorted([*(f"k{i}" for i in range(6)), "durable", "new"]))
        self.assertLess(now, spare)
        self.assert_neighbour_untouched()

    def test_cull_frequency_zero_deletes_all_but_the_spared(self) -> None:
        self.kv.set_many({f"k{i}": i for i in range(6)})
        spare = timezone.now()
        self.kv.set("new", 1)
        self.assertEqual(self.kv.trim(3, 0, spare_since=spare), 6)
        self.assertEqual(list(self.kv), ["new"])
        self.assert_neighbour_untouched()

    def test_arguments_are_checked(self) -> None:
        with self.assertRaises(exceptions.ArgumentTypeError):
            self.kv.trim("10")  # type: ignore[arg-type]
        with self.assertRaises(exceptions.ArgumentTypeError):
            self.kv.trim(10, 1.5)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            self.kv.trim(10, -1)

    async def test_async_twin(self) -> None:
        await self.kv.aset_many({f"k{i}": i for i in range(4)})
        self.assertEqual(await self.kv.atrim(1, 0), 4)


class GetManyDeletingExpiredTests(TestCase):
    def setUp(self) -> None:
        self.kv = KeyVal("tests.gm")
        self.kv.set_many({"a": 1, "b": 2})
        self.kv.set_many({"old": 3, "older": 4}, timeout=60)
        expire("tests.gm", "old")
        expire("tests.gm", "older")

    def test_expired_pairs_read_are_deleted_in_one_more_statement(self) -> None:
        with self.assertNumQueries(1):
            self.assertEqual(self.kv.get_many(["a", "b"], delete_expired=True), {"a": 1, "b": 2})
        with self.assertNumQueries(2):
            found = self.kv.get_many(["a", "old", "older", "none"], delete_expired=True)
        self.assertEqual(found, {"a": 1})
        self.assertEqual(
            sorted(KeyValPair.objects.filter(store="tests.gm").values_list("key", flat=True)),
            ["a", "b"],
        )

    def test_without_the_flag_expired_rows_stay(self) -> None:
        self.assertEqual(self.kv.get_many(["a", "old"]), {"a": 1})
        self.assertEqual(KeyValPair.objects.filter(store="tests.gm").count(), 4)

    async def test_async_twin(self) -> None:
        self.assertEqual(await self.kv.aget_many(["old", "b"], delete_expired=True), {"b": 2})
        self.assertEqual(await self.kv.aincr("b", create=False), 3)
        self.assertEqual(await self.kv.adecr("b", create=False), 2)


class BulkAndListingTests(TestCase):
    def setUp(self) -> None:
        self.kv = KeyVal("tests.bulk")

    def test_get_many(self) -> None:
        self.kv.set_many({"a": 1, "b": [2], "c": "three"})
        self.assertEqual(self.kv.get_many(["a", "c", "missing", "a"]), {"a": 1, "c": "three"})
        self.assertEqual(self.kv.get_many([]), {})
        self.assertEqual(self.kv.get_many(iter(["b"])), {"b": [2]})

    def test_set_many_overwrites_and_sets_timeout(self) -> None:
        self.kv.set("a", "old")
        self.kv.set_many({"a": "new", "b": "fresh"}, timeout=60)
        self.assertEqual(self.kv.get_many(["a", "b"]), {"a": "new", "b": "fresh"})
        self.assertIsNotNone(self.kv.expires_at("a"))
        self.kv.set_many({})
        self.assertIs(self.kv.set("b", "again"), False)

    def test_set_many_revives_expired_pairs_as_new(self) -> None:
        self.kv.set("a", "old", timeout=60)
        expire("tests.bulk", "a")
        self.kv.set_many({"a": "new"})
        row = KeyValPair.objects.get(store="tests.bulk", key="a")
        self.assertEqual((row.version, row.first_version), (2, 2))  # a new life, counting on
        self.assertIs(self.kv.set("a", "newer"), False)

    def test_large_batches(self) -> None:
        mapping = {f"key{i:05}": i for i in range(2500)}
        self.kv.set_many(mapping)
        self.assertEqual(len(self.kv), 2500)
        self.assertEqual(self.kv.get_many(list(mapping)), mapping)
        self.assertEqual(list(self.kv.keys()), sorted(mapping))
        self.assertEqual(self.kv.delete_many(list(mapping)[:1200]), 1200)
        self.assertEqual(len(self.kv), 1300)

    def test_delete_many(self) -> None:
        self.kv.set_many({"a": 1, "b": 2, "c": 3})
        self.assertEqual(self.kv.delete_many(["a", "b", "zzz"]), 2)
        self.assertEqual(self.kv.delete_many([]), 0)
        self.assertEqual(list(self.kv.keys()), ["c"])

    def test_many_rejects_a_single_string(self) -> None:
        with self.assertRaises(TypeError):
            self.kv.get_many("abc")
        with self.assertRaises(TypeError):
            self.kv.delete_many("abc")
        with self.assertRaises(TypeError):
            self.kv.set_many([("a", 1)])  # type: ignore[arg-type]

    def test_keys_values_items_in_code_point_order(self) -> None:
        keys = ["b", "a", "B", "A", "a ", "é", "e", "Z", "z", "𝄞", "\uffff", "10", "9"]
        self.kv.set_many({key: key * 2 for key in keys})
        self.assertEqual(list(self.kv.keys()), sorted(keys))
        self.assertEqual(list(self.kv.values()), [key * 2 for key in sorted(keys)])
        self.assertEqual(list(self.kv.items()), [(key, key * 2) for key in sorted(keys)])

    def test_case_accents_and_trailing_spaces_make_different_keys(self) -> None:
        for key in ("key", "Key", "KEY", "kéy", "key ", "key  "):
            with self.subTest(key=key):
                self.assertTrue(self.kv.set(key, key))
        for key in ("key", "Key", "KEY", "kéy", "key ", "key  "):
            self.assertEqual(self.kv.get(key), key)
        self.assertEqual(len(self.kv), 6)

    def test_prefix_is_literal(self) -> None:
        keys = ["user:1", "user:2", "user_1", "user%1", "users", "usex", "use", "%", "_x", "USER:3"]
        self.kv.set_many(dict.fromkeys(keys, 0))
        self.assertEqual(list(self.kv.keys("user:")), ["user:1", "user:2"])
        self.assertEqual(list(self.kv.keys("user_")), ["user_1"])
        self.assertEqual(list(self.kv.keys("user%")), ["user%1"])
        self.assertEqual(list(self.kv.keys("%")), ["%"])
        self.assertEqual(list(self.kv.keys("_")), ["_x"])
        self.assertEqual(
            list(self.kv.keys("user")), sorted(["user:1", "user:2", "user_1", "user%1", "users"])
        )
        self.assertEqual(list(self.kv.items("users")), [("users", 0)])
        self.assertEqual(list(self.kv.values("nothing")), [])

    def test_prefix_ending_in_the_last_code_points(self) -> None:
        keys = ["a\U0010ffff", "a\U0010ffffb", "a\ud7ff", "a\ud7ffz", "a\ue000", "b"]
        self.kv.set_many(dict.fromkeys(keys, 1))
        self.assertEqual(list(self.kv.keys("a\U0010ffff")), ["a\U0010ffff", "a\U0010ffffb"])
        self.assertEqual(list(self.kv.keys("a\ud7ff")), ["a\ud7ff", "a\ud7ffz"])
        self.assertEqual(list(self.kv.keys("\U0010ffff")), [])

    def test_iteration_pages_through_the_store(self) -> None:
        from django_keyval import store

        mapping = {f"k{i:04}": i for i in range(25)}
        self.kv.set_many(mapping)
        original = store.ITERATION_CHUNK_SIZE
        store.ITERATION_CHUNK_SIZE = 10
        try:
            with self.assertNumQueries(3):  # 10 + 10 + 5 rows
                self.assertEqual(list(self.kv.keys()), sorted(mapping))
            with self.assertNumQueries(3):
                self.assertEqual(dict(self.kv.items()), mapping)
        finally:
            store.ITERATION_CHUNK_SIZE = original

    def test_iteration_fetches_long_values_apart_in_bounded_batches(self) -> None:
        from django_keyval import store

        # Values over ITERATION_INLINE_BYTES stay out of the page of keys and
        # come ITERATION_CHUNK_BYTES at a time, so no query returns them all.
        long = {f"k{i}": bytes([i]) * 20_000 for i in range(5)}
        mapping = {"a": 1, **long, "k2-short": "s", "z": [2]}
        self.kv.set_many(mapping)
        original = store.ITERATION_CHUNK_BYTES
        store.ITERATION_CHUNK_BYTES = 45_000
        try:
            # The page, then the long values two (40 KB), two and one at a time.
            with self.assertNumQueries(4):
                self.assertEqual(list(self.kv.items()), sorted(mapping.items()))
            with self.assertNumQueries(4):
                self.assertEqual(
                    list(self.kv.values("k")),
                    [long["k0"], long["k1"], long["k2"], "s", long["k3"], long["k4"]],
                )
            # A long value deleted between the page and its fetch is skipped.
            items = self.kv.items()
            self.assertEqual(next(items), ("a", 1))
            self.kv.delete("k3")
            self.assertEqual([key for key, _ in items], ["k0", "k1", "k2", "k2-short", "k4", "z"])
        finally:
            store.ITERATION_CHUNK_BYTES = original

    def test_iteration_is_lazy(self) -> None:
        self.kv.set_many({"a": 1, "b": 2})
        with self.assertNumQueries(0):
            keys = self.kv.keys()
        with self.assertNumQueries(1):
            self.assertEqual(next(keys), "a")

    def test_stores(self) -> None:
        self.assertEqual(KeyVal.stores(), [])
        KeyVal("b.store").set("k", 1)
        KeyVal("a.store").set("k", 1)
        KeyVal("a.store").set("k2", 1)
        self.assertEqual(KeyVal.stores(), ["a.store", "b.store"])
        self.assertEqual(self.kv.stores(), ["a.store", "b.store"])

    def test_count(self) -> None:
        self.assertEqual(self.kv.count(), 0)
        self.kv.set_many({"a": 1, "b": 2})
        self.assertEqual(self.kv.count(), 2)
        self.assertEqual(len(self.kv), 2)


class DictStyleTests(TestCase):
    def test_dict_style_access(self) -> None:
        kv = KeyVal("tests.dict")
        kv["a"] = {"x": 1}
        self.assertEqual(kv["a"], {"x": 1})
        self.assertIn("a", kv)
        self.assertNotIn("b", kv)
        self.assertEqual(len(kv), 1)
        self.assertEqual(list(kv), ["a"])
        del kv["a"]
        with self.assertRaises(KeyError):
            kv["a"]
        with self.assertRaises(KeyError):
            del kv["a"]
        with self.assertRaises(TypeError):
            1 in kv  # noqa: B015


@vendor_classes_only
class QueryCountTests(TestCase):
    """Each single-key operation is one statement; bulk ones a constant number."""

    def setUp(self) -> None:
        self.kv = KeyVal("tests.queries")
        self.kv.set("k", "v")
        self.kv.set("n", 1)

    def test_single_statements(self) -> None:
        operations: dict[str, Callable[[], Any]] = {
            "set new": lambda: self.kv.set("new", [1]),
            "set overwrite": lambda: self.kv.set("k", "w", timeout=60),
            "get": lambda: self.kv.get("k"),
            "get miss": lambda: self.kv.get_default("missing"),
            "exists": lambda: self.kv.exists("k"),
            "add": lambda: self.kv.add("k", 1),
            "incr": lambda: self.kv.incr("n"),
            "touch": lambda: self.kv.touch("k", 5),
            "expires_at": lambda: self.kv.expires_at("k"),
            "pop": lambda: self.kv.pop("new"),
            "pop miss": lambda: self.kv.pop_default("new", None),
            "delete": lambda: self.kv.delete("k"),
            "delete miss": lambda: self.kv.delete("k", ignore_keyerror=True),
            "count": lambda: len(self.kv),
            "flush": lambda: self.kv.flush(),
            "flush_all": lambda: KeyVal.flush_all(),
            "stores": lambda: KeyVal.stores(),
        }
        for name, operation in operations.items():
            with self.subTest(operation=name), self.assertNumQueries(1):
                operation()

    def test_bulk_statements(self) -> None:
        mapping = {f"k{i}": i for i in range(100)}
        # One statement each: atomic by itself, so no transaction (or savepoint) around it.
        with self.assertNumQueries(1):
            self.kv.set_many(mapping)
        with self.assertNumQueries(1):
            self.assertEqual(len(self.kv.get_many(list(mapping))), 100)
        with self.assertNumQueries(1):
            self.assertEqual(self.kv.delete_many(list(mapping)), 100)

    def test_bulk_statements_grow_only_by_batch(self) -> None:
        # A statement per batch of up to 1000 keys, fewer if the database's
        # parameter limit demands (set_many sends 7 parameters a row).
        limit = getattr(connection.features, "max_query_params", None) or 10000
        rows_per_insert = min(1000, (limit - 1) // 7)
        keys_per_select = min(1000, limit - 2)
        mapping = {f"k{i:04}": i for i in range(2500)}
        with self.assertNumQueries(2 + math.ceil(2500 / rows_per_insert)):
            self.kv.set_many(mapping)
        with self.assertNumQueries(math.ceil(2500 / keys_per_select)):
            self.assertEqual(self.kv.get_many(list(mapping)), mapping)
        with self.assertNumQueries(2 + math.ceil(2500 / keys_per_select)):
            self.assertEqual(self.kv.delete_many(list(mapping)), 2500)

    def test_invalid_input_costs_no_query(self) -> None:
        with self.assertNumQueries(0):
            for call in (
                lambda: self.kv.get(1),  # type: ignore[arg-type]
                lambda: self.kv.set("x" * 501, 1),
                lambda: self.kv.set("k", lambda: None),
                lambda: self.kv.set("k", 1, timeout=-1),
                lambda: self.kv.set_many({"a": 1, "b": lambda: None}),
            ):
                with self.assertRaises(exceptions.KeyValError):
                    call()


class TransactionTests(TransactionTestCase):
    def test_operations_roll_back_with_the_callers_transaction(self) -> None:
        kv = KeyVal("tests.tx")
        kv.set("kept", 1)
        with self.assertRaises(RuntimeError), transaction.atomic():
            kv.set("kept", 2)
            kv.set("new", 1)
            kv.incr("counter")
            kv.pop("kept")
            kv.set_many({"a": 1})
            raise RuntimeError
        self.assertEqual(kv.get("kept"), 1)
        self.assertEqual(list(kv.keys()), ["kept"])
        kv.set_many({"b": 2, "c": 3})
        with self.assertRaises(RuntimeError), transaction.atomic():
            kv.delete("kept")
            kv.add("added", 1)
            kv.delete_many(["b"])
            kv.touch("c", 60)
            kv.flush()
            raise RuntimeError
        self.assertEqual(dict(kv.items()), {"b": 2, "c": 3, "kept": 1})
        self.assertIsNone(kv.expires_at("c"))

    def test_set_many_is_all_or_nothing(self) -> None:
        kv = KeyVal("tests.tx")
        kv.set("a", "old")
        with self.assertRaises(exceptions.SerializationError):
            kv.set_many({"a": "new", "b": 1, "c": lambda: None, "d": 4})
        self.assertEqual(dict(kv.items()), {"a": "old"})


class PopKeepsWhatItCannotDecodeMixin:
    """``pop`` never loses a pair whose serializer fails, however it fails."""

    assertEqual: Callable[..., None]
    assertRaises: Callable[..., Any]
    subTest: Callable[..., Any]

    def row_of(self, key: str) -> tuple[Any, ...]:
        return tuple(
            KeyValPair.objects.filter(store="tests.pop", key=key).values_list(
                "value", "integer_value", "serializer", "version", "expires_at"
            )[0]
        )

    def broken_module(self, directory: str) -> str:
        """Write a module with a syntax error; return the dotted path of its "serializer"."""
        Path(directory, "kv_broken_serializer.py").write_text("class Serializer(:\n")
        sys.path.insert(0, directory)
        return "kv_broken_serializer.Serializer"

    def test_pop_with_a_failing_custom_serializer_keeps_the_pair(self) -> None:
        written = KeyVal("tests.pop", serializer="tests.helpers.ReversedJSONSerializer")
        written.set("k", [1, 2], timeout=3600)
        written.set("kept", 1)
        before = self.row_of("k")
        with tempfile.TemporaryDirectory() as directory:
            try:
                broken = self.broken_module(directory)
                for spec, error in (
                    ("tests.helpers.MisconfiguredSerializer", ImproperlyConfigured),
                    (broken, SyntaxError),
                ):
                    with self.subTest(spec=spec), override_settings(KEYVAL_SERIALIZER=spec):
                        kv = KeyVal("tests.pop")
                        for method in (kv.pop, kv.pop_default):
                            with self.assertRaises(error):
                                method("k")
                            # The row is as it was: value, version and expiry.
                            self.assertEqual(self.row_of("k"), before)
            finally:
                sys.path.remove(directory)
        self.assertEqual(written.pop("k"), [1, 2])
        self.assertEqual(written.pop("kept"), 1)


class PopKeepsWhatItCannotDecodeTests(PopKeepsWhatItCannotDecodeMixin, TestCase):
    """Inside a transaction, as in the test case's."""


class PopKeepsWhatItCannotDecodeAutocommitTests(
    PopKeepsWhatItCannotDecodeMixin, TransactionTestCase
):
    """In autocommit mode, as a view or a command runs."""


class DatabaseChoiceTests(TestCase):
    databases = {"default", "other"}

    def test_using(self) -> None:
        here, there = KeyVal("tests.db"), KeyVal("tests.db", using="other")
        self.assertEqual(there.using, "other")
        there.set("k", "other db")
        self.assertFalse(here.exists("k"))
        self.assertEqual(there.get("k"), "other db")
        self.assertTrue(KeyValPair.objects.using("other").filter(key="k").exists())
        self.assertEqual(KeyVal.stores(using="other"), ["tests.db"])
        self.assertEqual(there.stores(), ["tests.db"])
        here.set("k", "default db")
        there.flush_all()
        self.assertFalse(KeyValPair.objects.using("other").exists())
        self.assertTrue(here.exists("k"))

    def test_unknown_alias(self) -> None:
        with self.assertRaises(exceptions.InvalidKeyError):
            KeyVal("tests.db", using="nowhere")
        with self.assertRaises(TypeError):
            KeyVal("tests.db", using=1)  # type: ignore[arg-type]

    @override_settings(DATABASE_ROUTERS=["tests.helpers.ShardByStoreRouter"])
    def test_routers_get_the_store_name_as_a_hint(self) -> None:
        cache, app = KeyVal("cache.pages"), KeyVal("app.flags")
        cache.set("k", "cached")
        app.set("k", "flag")
        self.assertEqual(cache.get("k"), "cached")
        self.assertEqual(app.get("k"), "flag")
        self.assertEqual(cache.pop("k"), "cached")
        cache.set_many({"a": 1, "b": 2})
        self.assertEqual(list(cache.items()), [("a", 1), ("b", 2)])
        rows = {
            alias: sorted(KeyValPair.objects.using(alias).values_list("store", "key"))
            for alias in ("default", "other")
        }
        self.assertEqual(
            rows,
            {
                "default": [("app.flags", "k")],
                "other": [("cache.pages", "a"), ("cache.pages", "b")],
            },
        )
        # Operations over every store take no store hint: the router's
        # default database, unless using= names another.
        self.assertEqual(KeyVal.stores(), ["app.flags"])
        self.assertEqual(KeyVal.stores(using="other"), ["cache.pages"])
        KeyVal.flush_all()
        self.assertEqual(cache.count(), 2)
        KeyVal.flush_all(using="other")
        self.assertEqual(cache.count(), 0)

    def test_routers_decide_without_using(self) -> None:
        class OtherRouter:
            def db_for_read(self, model: Any, **hints: Any) -> str:
                return "other"

            def db_for_write(self, model: Any, **hints: Any) -> str:
                return "other"

        class SplitRouter:
            # Reads from "other", as from a replica; writes to "default".
            def db_for_read(self, model: Any, **hints: Any) -> str:
                return "other"

            def db_for_write(self, model: Any, **hints: Any) -> str:
                return "default"

        from django.db import router

        original = router.routers
        router.routers = [OtherRouter()]
        try:
            kv = KeyVal("tests.routed")
            kv.set("k", 1)
            self.assertEqual(kv.get("k"), 1)
        finally:
            router.routers = original
        self.assertTrue(KeyValPair.objects.using("other").filter(store="tests.routed").exists())
        self.assertFalse(KeyValPair.objects.using("default").filter(store="tests.routed").exists())

        router.routers = [SplitRouter()]
        try:
            kv = KeyVal("tests.split")
            self.assertTrue(kv.set("k", "written"))
            # The write went to "default"; reads look in "other", where it is not.
            self.assertIsNone(kv.get_default("k"))
            self.assertFalse(kv.exists("k"))
            KeyVal("tests.split", using="other").set("k", "replica")
            self.assertEqual(kv.get("k"), "replica")
            self.assertEqual(kv.pop("k"), "written")  # pop writes: "default"
        finally:
            router.routers = original
        self.assertEqual(KeyVal("tests.split", using="other").get("k"), "replica")


class AsyncTests(TestCase):
    async def test_async_twins(self) -> None:
        kv = KeyVal("tests.async")
        self.assertTrue(await kv.aset("k", {"v": 1}))
        self.assertEqual(await kv.aget("k"), {"v": 1})
        self.assertEqual(await kv.aget_default("missing", 3), 3)
        self.assertTrue(await kv.aexists("k"))
        self.assertTrue(await kv.aadd("a", 1, 60))
        self.assertTrue(await kv.atouch("a", 120))
        self.assertIsNotNone(await kv.aexpires_at("a"))
        self.assertEqual(await kv.aincr("n", 5), 5)
        self.assertEqual(await kv.adecr("n", 2), 3)
        await kv.aset_many({"m1": 1, "m2": 2})
        self.assertEqual(await kv.aget_many(["m1", "m2"]), {"m1": 1, "m2": 2})
        self.assertEqual(await kv.acount(), 5)
        self.assertEqual([key async for key in kv.akeys("m")], ["m1", "m2"])
        self.assertEqual([value async for value in kv.avalues("m")], [1, 2])
        self.assertEqual([item async for item in kv.aitems("m")], [("m1", 1), ("m2", 2)])
        long = {f"long{i}": bytes([i]) * 20_000 for i in range(3)}
        await kv.aset_many(long)
        self.assertEqual([item async for item in kv.aitems("long")], sorted(long.items()))
        self.assertEqual(await kv.adelete_many(list(long)), 3)
        self.assertEqual(await kv.adelete_many(["m1", "m2"]), 2)
        self.assertEqual(await KeyVal.astores(), ["tests.async"])
        self.assertEqual(await kv.apop("k"), {"v": 1})
        self.assertEqual(await kv.apop_default("k", "d"), "d")
        self.assertTrue(await kv.adelete("a"))
        with self.assertRaises(KeyError):
            await kv.aget("k")
        self.assertEqual(await kv.acull(), 0)
        self.assertIsNone(await kv.aflush())  # type: ignore[func-returns-value]
        self.assertEqual(await kv.acount(), 0)
        await kv.aset("x", 1)
        self.assertIsNone(await KeyVal.aflush_all())  # type: ignore[func-returns-value]
        self.assertEqual(await KeyVal.astores(), [])


class AsyncioRunTests(TransactionTestCase):
    # asyncio.run() runs sync_to_async calls in a thread of their own, with a
    # connection of their own: the data must be committed, not in a test transaction.
    def test_async_under_asyncio_run(self) -> None:
        kv = KeyVal("tests.async")

        async def main() -> tuple[Any, ...]:
            await kv.aset("a", 1)
            try:
                return await asyncio.gather(kv.aget("a"), kv.aexists("a"), kv.aget_default("b"))
            finally:
                # Close the connection of the thread sync_to_async used.
                await sync_to_async(connections.close_all)()

        self.assertEqual(list(asyncio.run(main())), [1, True, None])


class LargeBulkTests(TestCase):
    @vendor_classes_only
    def test_set_many_of_large_values_splits_statements_by_size(self) -> None:
        kv = KeyVal("tests.large")
        big = b"x" * (3 * 1024 * 1024)
        mapping = {f"k{i}": big + bytes([i]) for i in range(5)}
        # Five 3 MiB values: a statement each, as no two fit in 4 MiB (+ savepoints).
        with self.assertNumQueries(7):
            kv.set_many(mapping)
        self.assertEqual(kv.get_many(list(mapping)), mapping)


class TimeZoneTests(TestCase):
    """Expiry is judged the same whatever the project's time zone settings."""

    def assert_expiry_works(self) -> None:
        kv = KeyVal("tests.zones")
        kv.set("live", "v", timeout=60)
        kv.set("gone", "v", timeout=60)
        expire("tests.zones", "gone")
        self.assertTrue(kv.exists("live"))
        self.assertEqual(kv.get("live"), "v")
        self.assertFalse(kv.exists("gone"))
        self.assertIsNone(kv.get_default("gone"))
        self.assertTrue(kv.delete("live"))
        self.assertFalse(kv.delete("gone", ignore_keyerror=True))

    def test_a_pair_expires_at_its_expiry_time_exactly(self) -> None:
        kv = KeyVal("tests.zones")
        kv.set("k", "v", timeout=60)
        moment = datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.timezone.utc)  # a whole second
        KeyValPair.objects.filter(store="tests.zones", key="k").update(expires_at=moment)
        just_before = moment - datetime.timedelta(microseconds=1)
        with mock.patch("django.utils.timezone.now", return_value=just_before):
            self.assertTrue(kv.exists("k"))
            self.assertEqual(kv.get("k"), "v")
        with mock.patch("django.utils.timezone.now", return_value=moment):
            self.assertFalse(kv.exists("k"))
            self.assertIsNone(kv.get_default("k"))
            self.assertFalse(kv.delete("k", ignore_keyerror=True))

    @override_settings(USE_TZ=True, TIME_ZONE="Europe/Paris")
    def test_aware_in_another_zone(self) -> None:
        self.assert_expiry_works()

    @override_settings(USE_TZ=False, TIME_ZONE="Europe/Paris")
    def test_naive_local_times_in_another_zone(self) -> None:
        self.assert_expiry_works()

    @override_settings(USE_TZ=False, TIME_ZONE="America/Los_Angeles")
    def test_naive_local_times_behind_utc(self) -> None:
        self.assert_expiry_works()


@override_settings(USE_TZ=False)
class NaiveDatetimeTests(TestCase):
    """Projects with USE_TZ = False store naive local times; expiry still works."""

    def test_expiry_without_time_zones(self) -> None:
        kv = KeyVal("tests.naive")
        kv.set("k", "v", timeout=60)
        kv.set("durable", "d")
        expires = kv.expires_at("k")
        assert expires is not None
        self.assertTrue(timezone.is_aware(expires))
        self.assertTrue(kv.exists("k"))
        self.assertEqual(kv.get("k"), "v")
        expire("tests.naive", "k")
        self.assertFalse(kv.exists("k"))
        self.assertIsNone(kv.get_default("k"))
        self.assertEqual(list(kv.keys()), ["durable"])
        self.assertTrue(kv.add("k", "again"))
