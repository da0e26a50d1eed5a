"""Versions, compare-and-set, ``update`` and locks with fencing tokens.

:class:`ProcessTests` runs them in several processes at once (see
:mod:`tests.workers`).
"""

from __future__ import annotations

import datetime
import os
import queue
import signal
import tempfile
import time
from collections import Counter
from typing import Any

from django.db import connection
from django.test import TestCase, TransactionTestCase
from django.utils import timezone

from django_keyval import exceptions
from django_keyval.locks import Lock
from django_keyval.models import KeyVal, KeyValLock, KeyValPair
from django_keyval.rows import split_version
from tests.helpers import forced_operations

from .test_store import expire
from .workers import run_in_processes, start_process


class AnyOwner:
    """Equal to any owner token: the value of a held lock's pair."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and len(other) == 32

    def __repr__(self) -> str:
        return "<any owner token>"


ANY_OWNER = AnyOwner()


def counted(kv: KeyVal, key: str) -> tuple[Any, int]:
    """Return a pair's value and its write counter: the version without the row's id."""
    value, version = kv.get_versioned(key)
    return value, split_version(version)[1]


def stored(store: str, key: str) -> tuple[Any, ...] | None:
    """Return a row's value columns, version and expiry as the table holds them."""
    row: tuple[Any, ...] | None = (
        KeyValPair.objects.filter(store=store, key=key)
        .values_list("value", "integer_value", "serializer", "version", "expires_at")
        .first()
    )
    return row


class VersionTests(TestCase):
    def setUp(self) -> None:
        self.kv = KeyVal("tests.versions")

    def version(self, key: str) -> int:
        return self.kv.get_versioned(key)[1]

    def test_a_new_pair_counts_1_and_each_write_adds_one(self) -> None:
        self.kv.set("k", "a")
        self.assertEqual(counted(self.kv, "k"), ("a", 1))
        first = self.version("k")
        self.kv.set("k", "b")
        self.assertEqual(self.kv.get_versioned("k"), ("b", first + 1))
        self.kv.set_many({"k": [1, 2]})
        self.assertEqual(self.kv.get_versioned("k"), ([1, 2], first + 2))
        self.kv.incr("n")
        self.kv.incr("n")
        self.assertEqual(counted(self.kv, "n"), (2, 2))
        # The row's id is part of the version: another key, another range.
        self.assertNotEqual(split_version(self.version("n"))[0], split_version(first)[0])

    def test_touch_changes_the_expiry_and_so_the_version(self) -> None:
        self.kv.set("k", "a")
        first = self.version("k")
        self.assertTrue(self.kv.touch("k", 60))
        self.assertEqual(self.version("k"), first + 1)

    def test_a_failed_add_leaves_the_version_alone(self) -> None:
        self.kv.set("k", "a")
        self.assertFalse(self.kv.add("k", "b"))
        self.assertFalse(self.kv.add("k", "c", timeout=60))
        self.assertEqual(counted(self.kv, "k"), ("a", 1))
        self.kv.set("k", "d")
        self.assertFalse(self.kv.add("k", "e"))
        self.assertEqual(counted(self.kv, "k"), ("d", 2))
        self.assertEqual(stored("tests.versions", "k")[4], None)  # type: ignore[index]

    def test_an_add_that_wins_reports_it_and_goes_on_counting(self) -> None:
        self.assertTrue(self.kv.add("k", "a"))
        self.assertEqual(counted(self.kv, "k"), ("a", 1))
        self.kv.set("old", "x", timeout=60)
        self.kv.set("old", "y", timeout=60)
        expire("tests.versions", "old")
        self.assertTrue(self.kv.add("old", "new"))
        # Over the expired row, a new pair, whose version still goes up.
        self.assertEqual(counted(self.kv, "old"), ("new", 3))

    def test_a_failed_incr_leaves_the_version_alone(self) -> None:
        self.kv.set("k", "text")
        with self.assertRaises(exceptions.NotAnIntegerError):
            self.kv.incr("k")
        self.assertEqual(counted(self.kv, "k"), ("text", 1))

    def test_missing_and_expired_keys(self) -> None:
        with self.assertRaises(exceptions.KeyNotFoundError):
            self.kv.get_versioned("missing")
        self.kv.set("gone", 1, timeout=60)
        expire("tests.versions", "gone")
        with self.assertRaises(KeyError):
            self.kv.get_versioned("gone")

    def test_get_many_versioned(self) -> None:
        self.kv.set("a", 1)
        self.kv.set("b", "two")
        self.kv.set("b", "three")
        self.kv.set("gone", 1, timeout=60)
        expire("tests.versions", "gone")
        with self.assertNumQueries(1):
            found = self.kv.get_many_versioned(["b", "a", "missing", "gone", "a"])
        self.assertEqual(found, {"a": (1, self.version("a")), "b": ("three", self.version("b"))})
        self.assertEqual(split_version(found["b"][1])[1], 2)
        self.assertEqual(list(found), ["a", "b"])
        self.assertEqual(self.kv.get_many_versioned([]), {})
        with self.assertRaises(exceptions.ArgumentTypeError):
            self.kv.get_many_versioned("a")


class CasTests(TestCase):
    def setUp(self) -> None:
        self.kv = KeyVal("tests.cas")

    def test_cas_writes_when_the_version_matches(self) -> None:
        self.kv.set("k", {"n": 1})
        value, version = self.kv.get_versioned("k")
        with self.assertNumQueries(1):
            self.assertTrue(self.kv.cas("k", {"n": 2}, version))
        self.assertEqual(self.kv.get_versioned("k"), ({"n": 2}, version + 1))

    def test_a_stale_version_writes_nothing(self) -> None:
        self.kv.set("k", "a", timeout=60)
        expires = self.kv.expires_at("k")
        first = self.kv.get_versioned("k")[1]
        self.kv.set("k", "b", timeout=60)
        before = stored("tests.cas", "k")
        self.assertFalse(self.kv.cas("k", "c", first))
        self.assertFalse(self.kv.cas("k", "c", first + 2))
        self.assertFalse(self.kv.cas("k", "c", split_version(first)[1] + 1))  # no row id
        self.assertEqual(stored("tests.cas", "k"), before)
        self.assertNotEqual(self.kv.expires_at("k"), expires)  # the second set's

    def test_cas_on_an_expired_or_missing_pair_returns_false(self) -> None:
        self.kv.set("k", "a", timeout=60)
        version = self.kv.get_versioned("k")[1]
        expire("tests.cas", "k")
        self.assertFalse(self.kv.cas("k", "b", version))
        self.assertEqual(stored("tests.cas", "k")[3], 1)  # type: ignore[index]
        self.assertFalse(self.kv.cas("missing", "b", version))
        self.assertFalse(KeyValPair.objects.filter(key="missing").exists())

    def test_version_0_means_only_if_missing(self) -> None:
        self.assertTrue(self.kv.cas("k", "a", 0))
        self.assertFalse(self.kv.cas("k", "b", 0))
        self.assertEqual(counted(self.kv, "k"), ("a", 1))
        self.kv.set("old", "x", timeout=60)
        expire("tests.cas", "old")
        self.assertTrue(self.kv.cas("old", "y", 0))
        self.assertEqual(counted(self.kv, "old"), ("y", 2))

    def test_timeout_is_the_new_timeout_as_for_set(self) -> None:
        self.kv.set("k", 1, timeout=60)
        version = self.kv.get_versioned("k")[1]
        self.assertTrue(self.kv.cas("k", 2, version))
        self.assertIsNone(self.kv.expires_at("k"))
        self.assertTrue(self.kv.cas("k", 3, version + 1, timeout=datetime.timedelta(hours=1)))
        expires = self.kv.expires_at("k")
        assert expires is not None
        self.assertAlmostEqual((expires - timezone.now()).total_seconds(), 3600, delta=60)

    def test_every_kind_of_value(self) -> None:
        large = b"\x00'\\\n" * (600 * 1024)  # over 2 MiB of bytes that need escaping
        for number, value in enumerate([7, "text", large, None, (1, "two")]):
            key = f"k{number}"
            self.kv.set(key, "first")
            version = self.kv.get_versioned(key)[1]
            self.assertTrue(self.kv.cas(key, value, version))
            self.assertEqual(self.kv.get_versioned(key), (value, version + 1))

    def test_bad_versions_write_nothing(self) -> None:
        self.kv.set("k", "a")
        for version, error in [
            ("1", exceptions.ArgumentTypeError),
            (1.0, exceptions.ArgumentTypeError),
            (True, exceptions.ArgumentTypeError),
            (None, exceptions.ArgumentTypeError),
            (-1, exceptions.InvalidArgumentError),
            (2**126, exceptions.InvalidArgumentError),
        ]:
            with self.subTest(version=version), self.assertRaises(error) as caught:
                self.kv.cas("k", "b", version)  # type: ignore[arg-type]
            self.assertIn("version", str(caught.exception))
        with self.assertRaises(ValueError):
            self.kv.cas("k", "b", -1)
        self.assertEqual(counted(self.kv, "k"), ("a", 1))

    def test_a_value_that_cannot_be_stored_writes_nothing(self) -> None:
        self.kv.set("k", "a")
        version = self.kv.get_versioned("k")[1]
        with self.assertRaises(exceptions.SerializationError):
            self.kv.cas("k", lambda: None, version)
        with self.assertRaises(exceptions.InvalidTimeoutError):
            self.kv.cas("k", "b", version, timeout=-1)
        self.assertEqual(self.kv.get_versioned("k"), ("a", version))


class UpdateTests(TestCase):
    def setUp(self) -> None:
        self.kv = KeyVal("tests.update")

    def test_update_applies_the_function_and_returns_the_result(self) -> None:
        self.kv.set("items", [1])
        self.assertEqual(self.kv.update("items", lambda items: [*items, 2]), [1, 2])
        self.assertEqual(counted(self.kv, "items"), ([1, 2], 2))

    def test_without_contention_it_costs_two_queries(self) -> None:
        self.kv.set("n", 1)
        with self.assertNumQueries(2):
            self.kv.update("n", lambda n: n + 1)

    def test_a_missing_key_uses_the_default_or_raises(self) -> None:
        self.assertEqual(self.kv.update("new", lambda items: [*items, "x"], default=[]), ["x"])
        self.assertEqual(counted(self.kv, "new"), (["x"], 1))
        with self.assertRaises(exceptions.KeyNotFoundError):
            self.kv.update("missing", lambda value: value)
        self.assertEqual(self.kv.update("none", lambda value: value, default=None), None)
        self.assertTrue(self.kv.exists("none"))
        self.kv.set("gone", 5, timeout=60)
        expire("tests.update", "gone")
        self.assertEqual(self.kv.update("gone", lambda n: n + 1, default=0), 1)
        self.assertIsNone(self.kv.expires_at("gone"))

    def test_the_pair_keeps_its_expiry_unless_a_timeout_is_given(self) -> None:
        self.kv.set("k", 1, timeout=600)
        expires = self.kv.expires_at("k")
        self.kv.update("k", lambda n: n + 1)
        self.assertEqual(self.kv.expires_at("k"), expires)
        self.kv.update("k", lambda n: n + 1, timeout=None)
        self.assertIsNone(self.kv.expires_at("k"))
        self.kv.update("k", lambda n: n + 1, timeout=60)
        new_expiry = self.kv.expires_at("k")
        assert new_expiry is not None
        self.assertLess(new_expiry, timezone.now() + datetime.timedelta(seconds=61))
        self.kv.update("fresh", lambda n: n + 1, default=0, timeout=60)
        self.assertIsNotNone(self.kv.expires_at("fresh"))
        self.assertEqual(self.kv.get("k"), 4)

    def test_an_exception_in_the_function_leaves_the_pair_untouched(self) -> None:
        self.kv.set("k", {"a": 1})
        before = stored("tests.update", "k")

        def fail(value: Any) -> Any:
            raise ZeroDivisionError("inside the function")

        with self.assertRaises(ZeroDivisionError):
            self.kv.update("k", fail)
        with self.assertRaises(exceptions.SerializationError):
            self.kv.update("k", lambda value: lambda: None)
        self.assertEqual(stored("tests.update", "k"), before)
        with self.assertRaises(ZeroDivisionError):
            self.kv.update("missing", fail, default=1)
        self.assertFalse(self.kv.exists("missing"))

    def test_a_race_lost_every_time_raises_update_conflict_error(self) -> None:
        self.kv.set("k", 0)
        other = KeyVal("tests.update")
        calls = []

        def meddle(value: int) -> int:
            # Another writer gets in between every read and write.
            calls.append(value)
            other.incr("k")
            return value + 100

        with self.assertRaises(exceptions.UpdateConflictError) as caught:
            self.kv.update("k", meddle, retries=3)
        self.assertIsInstance(caught.exception, RuntimeError)
        self.assertIn("4 times", str(caught.exception))
        self.assertEqual(calls, [0, 1, 2, 3])
        self.assertEqual(self.kv.get("k"), 4)

    def test_a_lost_race_is_retried_with_the_new_value(self) -> None:
        self.kv.set("k", 0)
        other = KeyVal("tests.update")
        calls = []

        def meddle_once(value: int) -> int:
            calls.append(value)
            if len(calls) == 1:
                other.set("k", 10)
            return value + 1

        self.assertEqual(self.kv.update("k", meddle_once), 11)
        self.assertEqual(calls, [0, 10])
        self.assertEqual(counted(self.kv, "k"), (11, 3))

    def test_bad_input_writes_nothing(self) -> None:
        self.kv.set("k", 1)
        cases: list[tuple[dict[str, Any], type[Exception]]] = [
            ({"function": "not callable"}, exceptions.ArgumentTypeError),
            ({"function": None}, exceptions.ArgumentTypeError),
            ({"function": abs, "retries": -1}, exceptions.InvalidArgumentError),
            ({"function": abs, "retries": 1.5}, exceptions.ArgumentTypeError),
            ({"function": abs, "timeout": -5}, exceptions.InvalidTimeoutError),
            ({"function": abs, "timeout": "soon"}, exceptions.ArgumentTypeError),
        ]
        for arguments, error in cases:
            with self.subTest(**arguments), self.assertRaises(error):
                self.kv.update("k", **arguments)
        with self.assertRaises(exceptions.InvalidKeyError):
            self.kv.update("x" * 501, abs)
        self.assertEqual(counted(self.kv, "k"), (1, 1))


class LockTests(TestCase):
    def setUp(self) -> None:
        self.kv = KeyVal("tests.locks")

    def test_acquire_and_release(self) -> None:
        lock = self.kv.lock("job", timeout=30)
        self.assertIsInstance(lock, Lock)
        self.assertIsNone(lock.token)
        self.assertFalse(lock.locked())
        # The portable class: an UPDATE, then an INSERT, in savepoints here.
        with self.assertNumQueries(6 if forced_operations() == "portable" else 1):
            self.assertTrue(lock.acquire())
        self.assertEqual(lock.token, 1)
        self.assertTrue(lock.locked())
        self.assertTrue(lock.owned())
        other = self.kv.lock("job", timeout=30)
        self.assertFalse(other.acquire(blocking=False))
        self.assertTrue(other.locked())
        self.assertFalse(other.owned())
        with self.assertNumQueries(1):
            lock.release()
        self.assertFalse(lock.locked())
        self.assertFalse(lock.owned())
        self.assertTrue(other.acquire(blocking=False))
        self.assertIsNotNone(other.token)
        self.assertIsNotNone(lock.token)
        self.assertGreater(int(other.token or 0), int(lock.token or 0))

    def test_context_manager(self) -> None:
        with self.kv.lock("job", timeout=30) as lock:
            self.assertTrue(lock.owned())
            other = self.kv.lock("job", timeout=30, blocking=False)
            with self.assertRaises(exceptions.LockTimeoutError) as caught, other:
                pass  # pragma: no cover
            self.assertIn("'job'", str(caught.exception))
        self.assertFalse(lock.locked())

    def test_blocking_timeout(self) -> None:
        holder = self.kv.lock("job", timeout=30)
        holder.acquire()
        waiter = self.kv.lock("job", timeout=30, blocking_timeout=0.2)
        started = time.monotonic()
        self.assertFalse(waiter.acquire())
        waited = time.monotonic() - started
        self.assertGreaterEqual(waited, 0.2)
        self.assertLess(waited, 2)
        with self.assertRaises(exceptions.LockTimeoutError) as caught, waiter:
            pass  # pragma: no cover
        self.assertIsInstance(caught.exception, TimeoutError)
        self.assertFalse(waiter.acquire(blocking_timeout=0))
        self.assertTrue(holder.owned())

    def test_a_blocked_acquire_gets_the_lock_when_the_lease_ends(self) -> None:
        first = self.kv.lock("job", timeout=0.3)
        self.assertTrue(first.acquire())
        started = time.monotonic()
        second = self.kv.lock("job", timeout=30)
        self.assertTrue(second.acquire(blocking_timeout=10))
        self.assertGreaterEqual(time.monotonic() - started, 0.25)
        self.assertIsNotNone(first.token)
        self.assertGreater(int(second.token or 0), int(first.token or 0))
        self.assertFalse(first.owned())

    def test_release_after_the_lease_was_taken_raises_and_keeps_the_others_lock(self) -> None:
        first = self.kv.lock("job", timeout=0.05)
        first.acquire()
        time.sleep(0.1)
        second = self.kv.lock("job", timeout=30)
        self.assertTrue(second.acquire(blocking=False))
        with self.assertRaises(exceptions.LockNotOwnedError) as caught:
            first.release()
        self.assertIsInstance(caught.exception, RuntimeError)
        with self.assertRaises(exceptions.LockNotOwnedError):
            first.extend(30)
        self.assertTrue(second.owned())
        self.assertFalse(self.kv.lock("job", timeout=30).acquire(blocking=False))

    def test_release_after_the_lease_ended_raises(self) -> None:
        lock = self.kv.lock("job", timeout=0.05)
        lock.acquire()
        time.sleep(0.1)
        self.assertFalse(lock.owned())
        self.assertFalse(lock.locked())
        with self.assertRaises(exceptions.LockNotOwnedError):
            lock.release()
        with self.assertRaises(exceptions.LockNotOwnedError), self.kv.lock("other", timeout=0.05):
            time.sleep(0.1)
        with self.assertRaises(exceptions.LockNotOwnedError):
            self.kv.lock("never", timeout=1).release()

    def test_releasing_twice_raises(self) -> None:
        lock = self.kv.lock("job", timeout=30)
        lock.acquire()
        lock.release()
        with self.assertRaises(exceptions.LockNotOwnedError):
            lock.release()

    def test_extend(self) -> None:
        lock = self.kv.lock("job", timeout=0.2)
        lock.acquire()
        lock.extend(30)
        time.sleep(0.3)
        self.assertTrue(lock.owned())
        # Extending keeps the token: it is the acquisition's.
        self.assertEqual(KeyValLock.objects.get(store="tests.locks", name="job").token, lock.token)
        self.assertFalse(self.kv.lock("job", timeout=1).acquire(blocking=False))
        lock.extend(datetime.timedelta(seconds=0.05))
        time.sleep(0.1)
        self.assertFalse(lock.owned())
        with self.assertRaises(exceptions.LockNotOwnedError):
            lock.extend(30)
        with self.assertRaises(exceptions.LockNotOwnedError):
            self.kv.lock("never", timeout=1).extend(30)

    def test_tokens_keep_growing_across_expiry_and_cull(self) -> None:
        tokens = []
        for _ in range(3):
            lock = self.kv.lock("job", timeout=0.05)
            self.assertTrue(lock.acquire(blocking=False))
            tokens.append(lock.token)
            time.sleep(0.06)  # the lease ends without a release
            self.assertEqual(KeyVal.cull(), 0)  # the lock's row is never culled
        lock = self.kv.lock("job", timeout=30)
        lock.acquire()
        lock.extend(30)
        lock.release()
        lock.acquire()
        tokens.append(lock.token)
        self.assertEqual(tokens, sorted({int(token or 0) for token in tokens}))
        self.assertEqual(tokens[:3], [1, 2, 3])

    def test_locks_are_per_name_and_per_store(self) -> None:
        a = self.kv.lock("a", timeout=30)
        self.assertTrue(a.acquire(blocking=False))
        self.assertTrue(self.kv.lock("b", timeout=30).acquire(blocking=False))
        self.assertTrue(KeyVal("tests.locks2").lock("a", timeout=30).acquire(blocking=False))
        self.assertEqual(a.token, 1)

    def test_each_acquisition_raises_the_token_by_one(self) -> None:
        lock = self.kv.lock("job", timeout=30)
        lock.acquire()
        lock.release()  # releasing keeps the token for the next acquisition to raise
        lock.acquire()
        self.assertEqual(lock.token, 2)
        self.kv.flush()  # the pairs go; the lock stays held
        again = self.kv.lock("job", timeout=30)
        self.assertFalse(again.acquire(blocking=False))
        lock.release()
        self.assertTrue(again.acquire(blocking=False))
        self.assertEqual(again.token, 3)

    def test_a_pair_of_the_same_name_is_another_thing(self) -> None:
        self.kv.set("settings", {"a": 1})
        lock = self.kv.lock("settings", timeout=30)
        self.assertTrue(lock.acquire(blocking=False))
        self.assertEqual(self.kv.get("settings"), {"a": 1})
        self.assertEqual(self.kv.get_versioned("settings")[0], {"a": 1})
        self.kv.set("settings", "changed")
        self.assertTrue(lock.owned())
        lock.release()

    def test_bad_input_is_refused_before_any_query(self) -> None:
        cases: list[tuple[dict[str, Any], type[Exception]]] = [
            ({"timeout": 0}, exceptions.InvalidTimeoutError),
            ({"timeout": -1}, exceptions.InvalidTimeoutError),
            ({"timeout": float("nan")}, exceptions.InvalidTimeoutError),
            ({"timeout": datetime.timedelta(0)}, exceptions.InvalidTimeoutError),
            ({"timeout": None}, exceptions.ArgumentTypeError),
            ({"timeout": "10"}, exceptions.ArgumentTypeError),
            ({"timeout": 10, "blocking_timeout": -1}, exceptions.InvalidTimeoutError),
            ({"timeout": 10, "blocking_timeout": "1"}, exceptions.ArgumentTypeError),
        ]
        for arguments, error in cases:
            with self.subTest(**arguments), self.assertNumQueries(0), self.assertRaises(error):
                self.kv.lock("job", **arguments)
        with self.assertNumQueries(0), self.assertRaises(exceptions.InvalidKeyError):
            self.kv.lock("x" * 501, timeout=1)
        lock = self.kv.lock("job", timeout=30)
        lock.acquire()
        with self.assertRaises(exceptions.InvalidTimeoutError):
            lock.extend(0)
        self.assertTrue(lock.owned())
        self.assertEqual(KeyValLock.objects.filter(store="tests.locks").count(), 1)


class AsyncCoordinationTests(TestCase):
    async def test_async_twins(self) -> None:
        kv = KeyVal("tests.async_coordination")
        await kv.aset("k", [1])
        value, version = await kv.aget_versioned("k")
        self.assertEqual((value, split_version(version)[1]), ([1], 1))
        self.assertEqual(await kv.aget_many_versioned(["k", "x"]), {"k": ([1], version)})
        self.assertTrue(await kv.acas("k", [1, 2], version))
        self.assertFalse(await kv.acas("k", [0], version))
        self.assertEqual(await kv.aupdate("k", lambda items: [*items, 3]), [1, 2, 3])
        self.assertEqual(await kv.aupdate("n", lambda n: n + 1, default=0, timeout=60), 1)
        lock = kv.lock("job", timeout=30)
        async with lock:
            self.assertTrue(await lock.aowned())
            self.assertTrue(await lock.alocked())
            self.assertFalse(await kv.lock("job", timeout=30).aacquire(blocking_timeout=0.05))
            await lock.aextend(60)
        self.assertFalse(await lock.alocked())
        self.assertTrue(await lock.aacquire())
        await lock.arelease()
        with self.assertRaises(exceptions.LockNotOwnedError):
            await lock.arelease()


class FencedResource:
    """A resource guarded by fencing tokens, as the lock's users should write one.

    It remembers the largest token it has seen and refuses a write that
    carries a smaller one: that writer's lease ended and someone else has
    held the lock since.
    """

    def __init__(self) -> None:
        self.largest_token = 0
        self.writes: list[str] = []

    def write(self, token: int, data: str) -> None:
        if token < self.largest_token:
            raise PermissionError(f"token {token} is older than {self.largest_token}")
        self.largest_token = token
        self.writes.append(data)


class ProcessTests(TransactionTestCase):
    """The primitives used by several processes at once (committed data, real connections)."""

    databases = {"default"}
    processes = 8

    def setUp(self) -> None:
        self.database_name = connection.settings_dict["NAME"]

    def next_event(self, events: Any) -> Any:
        try:
            return events.get(timeout=60)
        except queue.Empty:  # pragma: no cover - a hung child
            self.fail("the child process reported nothing within 60 s")

    def test_update_from_8_processes_loses_and_duplicates_nothing(self) -> None:
        arguments = [("coordination.update", "log", 100)] * self.processes
        calls = run_in_processes("append_with_update", self.database_name, arguments)

        items, version = KeyVal("coordination.update").get_versioned("log")
        self.assertEqual(len(items), 800)
        expected = [f"{index}-{n}" for index in range(self.processes) for n in range(100)]
        self.assertEqual(Counter(items), Counter(expected))
        for index in range(self.processes):
            # Each process's items are in the order it appended them.
            mine = [item for item in items if item.startswith(f"{index}-")]
            self.assertEqual(mine, [f"{index}-{n}" for n in range(100)])
        self.assertEqual(split_version(version)[1], 800)  # one write per update, no more
        self.assertGreaterEqual(sum(calls), 800)

    def test_a_lock_serializes_8_processes_incrementing_a_file(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "counter.txt")
            with open(path, "w") as file:
                file.write("0")
            arguments = [("coordination.lock", "counter", path, 50)] * self.processes
            results = run_in_processes("increment_file_under_lock", self.database_name, arguments)
            with open(path) as file:
                self.assertEqual(file.read(), "400")
        tokens = [token for tokens in results for token in tokens]
        self.assertEqual(len(set(tokens)), 400)  # every acquisition had its own token
        for process_tokens in results:
            self.assertEqual(process_tokens, sorted(process_tokens))

    def test_a_killed_holder_loses_the_lock_at_the_end_of_its_lease(self) -> None:
        kv = KeyVal("coordination.kill")
        resource = FencedResource()
        process, events = start_process(
            "hold_lock_until_killed", self.database_name, ("coordination.kill", "job", 2.0)
        )
        try:
            event, killed_token = self.next_event(events)
            self.assertEqual(event, "acquired")
            resource.write(killed_token, "from the holder that will be killed")
        finally:
            os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
            process.join()
        self.assertEqual(process.exitcode, -signal.SIGKILL)

        lock = kv.lock("job", timeout=30)
        self.assertFalse(lock.acquire(blocking=False))  # the lease still runs
        self.assertTrue(lock.acquire(blocking_timeout=10))
        assert lock.token is not None
        self.assertGreater(lock.token, killed_token)
        resource.write(lock.token, "from the next holder")
        # The killed holder's write, arriving late (it could have been paused
        # rather than killed), is refused.
        with self.assertRaises(PermissionError):
            resource.write(killed_token, "late write from the killed holder")
        self.assertEqual(
            resource.writes, ["from the holder that will be killed", "from the next holder"]
        )
        lock.release()

    def test_release_after_another_process_took_the_lock(self) -> None:
        kv = KeyVal("coordination.release")
        lock = kv.lock("job", timeout=0.5)
        self.assertTrue(lock.acquire())
        process, events = start_process(
            "take_lock_after_lease", self.database_name, ("coordination.release", "job", 1.0)
        )
        try:
            event, token = self.next_event(events)
            self.assertEqual(event, "acquired")
            self.assertGreater(token, lock.token)
            with self.assertRaises(exceptions.LockNotOwnedError):
                lock.release()
            # The other process's lock was not released.
            self.assertFalse(kv.lock("job", timeout=30).acquire(blocking=False))
            self.assertEqual(self.next_event(events), ("released", True))
        finally:
            process.join(timeout=30)
        self.assertEqual(process.exitcode, 0)


class LockMisuseTests(TestCase):
    """A Lock used twice, and leases too short to hold."""

    def setUp(self) -> None:
        self.kv = KeyVal("tests.lock-misuse")

    def test_acquiring_a_held_lock_again_raises_and_keeps_the_lease(self) -> None:
        lock = self.kv.lock("job", timeout=60)
        self.assertIs(lock.acquire(), True)
        token = lock.token
        for blocking in (False, True):
            with self.subTest(blocking=blocking):
                with self.assertRaises(exceptions.LockAlreadyHeldError) as caught:
                    lock.acquire(blocking=blocking, blocking_timeout=0.05)
                self.assertIn("'job'", str(caught.exception))
                self.assertIs(lock.owned(), True)
                self.assertEqual(lock.token, token)
        self.assertIs(self.kv.lock("job", timeout=60).acquire(blocking=False), False)
        lock.release()
        self.assertIs(lock.locked(), False)
        # Released, the same Lock may be acquired again.
        self.assertIs(lock.acquire(), True)
        self.assertGreater(int(lock.token or 0), int(token or 0))
        lock.release()

    def test_a_lock_whose_lease_ended_may_be_acquired_again(self) -> None:
        lock = self.kv.lock("job", timeout=0.05)
        self.assertIs(lock.acquire(), True)
        time.sleep(0.1)
        self.assertIs(lock.owned(), False)
        self.assertIs(lock.acquire(blocking=False), True)
        self.assertIs(lock.owned(), True)
        lock.release()

    async def test_async_acquire_of_a_held_lock_raises(self) -> None:
        lock = self.kv.lock("job", timeout=60)
        self.assertIs(await lock.aacquire(), True)
        with self.assertRaises(exceptions.LockAlreadyHeldError):
            await lock.aacquire()
        self.assertIs(await lock.aowned(), True)
        await lock.arelease()

    def test_a_lease_under_a_millisecond_is_refused(self) -> None:
        for timeout in (1e-9, 0.0009, datetime.timedelta(microseconds=999), 0):
            with self.subTest(timeout=timeout):
                with self.assertRaises(exceptions.InvalidTimeoutError) as caught:
                    self.kv.lock("job", timeout=timeout)
                self.assertIn("at least 1 ms", str(caught.exception))
        lock = self.kv.lock("job", timeout=0.001)  # the shortest lease there is
        self.assertEqual(lock.timeout, 0.001)
