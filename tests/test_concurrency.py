"""Many OS processes using one store at once, on the database the suite runs on.

Each test starts at least 8 processes (see :mod:`tests.workers`), each with
its own connection to the test database, lets them start together, and
checks what every caller got back. The data is committed
(``TransactionTestCase``) so that the children see it.

On SQLite the same tests run twice: with Django's default settings (the
rollback journal) and with the database file switched to WAL. A "database is
locked" error in any child fails the test with the child's traceback.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any
from unittest import skipUnless

from django.db import connection
from django.test import TransactionTestCase

from django_keyval.models import KeyVal

from .workers import check_mixed_value, run_in_processes, written_value

PROCESSES = 8


class SQLiteJournalModeMixin:
    """Run a ``TransactionTestCase`` with the SQLite test database in ``sqlite_journal_mode``.

    The mode is a property of the database file, so the child processes use
    it too; it is put back after the test. Nothing changes on other vendors.
    """

    #: ``PRAGMA journal_mode`` for the test: "delete" is SQLite's (and Django's) default.
    sqlite_journal_mode = "delete"

    # Provided by TransactionTestCase.
    assertEqual: Any
    addCleanup: Any

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        if connection.vendor == "sqlite":
            self.set_journal_mode(self.sqlite_journal_mode)

    def set_journal_mode(self, mode: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            previous = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA journal_mode={mode}")
            self.assertEqual(cursor.fetchone()[0], mode)
        if previous != mode:
            self.addCleanup(self.restore_journal_mode, previous)

    def restore_journal_mode(self, mode: str) -> None:
        # Every child has exited by now, so nothing else holds the file open.
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA journal_mode={mode}")
            self.assertEqual(cursor.fetchone()[0], mode)


class ConcurrencyScenarios(SQLiteJournalModeMixin):
    """The scenarios; mixed into a ``TransactionTestCase`` per journal mode."""

    # Provided by TransactionTestCase.
    assertTrue: Any
    assertIsNone: Any
    assertGreater: Any
    assertIn: Any
    subTest: Any

    def setUp(self) -> None:
        super().setUp()
        # During the tests this is the test database (a file on SQLite).
        self.database_name = connection.settings_dict["NAME"]

    def run_children(
        self, function_name: str, *arguments: Any, processes: int = PROCESSES
    ) -> list[Any]:
        return run_in_processes(function_name, self.database_name, [arguments] * processes)

    # -- the scenarios ---------------------------------------------------------------

    def test_set_same_new_keys(self) -> None:
        """Of 8 processes setting the same 200 new keys, exactly one is told each key was new."""
        keys = [f"key-{n}" for n in range(200)]
        results = self.run_children("set_keys", "concurrent.set", keys)

        new_by_key: Counter[str] = Counter()
        for outcomes in results:
            self.assertEqual(sorted(key for key, _ in outcomes), sorted(keys))
            new_by_key.update(key for key, was_new in outcomes if was_new is True)
            self.assertTrue(all(type(was_new) is bool for _, was_new in outcomes))
        self.assertEqual(new_by_key, Counter(keys))
        kv = KeyVal("concurrent.set")
        stored = kv.get_many(keys)
        self.assertEqual(sorted(stored), sorted(keys))
        for key, value in stored.items():
            self.assertIn(value, [written_value(key, index) for index in range(PROCESSES)])
        self.assertEqual(kv.count(), 200)

    def test_pop_default_returns_each_value_once(self) -> None:
        """8 processes pop the same 400 pairs: every value comes out exactly once in total."""
        kv = KeyVal("concurrent.pop")
        expected = {f"key-{n}": (n if n % 2 else {"n": n}) for n in range(400)}
        kv.set_many(expected)

        results = self.run_children("pop_keys", "concurrent.pop", sorted(expected))

        popped = [pair for outcomes in results for pair in outcomes]
        self.assertEqual(Counter(key for key, _ in popped), Counter(list(expected)))
        self.assertEqual(dict(popped), expected)
        self.assertEqual(kv.count(), 0)

    def test_delete_succeeds_once_per_key(self) -> None:
        """8 processes delete the same keys: for each key exactly one ``delete`` returns True."""
        kv = KeyVal("concurrent.delete")
        keys = [f"key-{n}" for n in range(300)]
        kv.set_many({key: key for key in keys})
        kv.set("key-live", "not deleted")

        results = self.run_children("delete_keys", "concurrent.delete", keys)

        deleted_by_key: Counter[str] = Counter()
        for outcomes in results:
            self.assertEqual(len(outcomes), len(keys))
            deleted_by_key.update(key for key, deleted in outcomes if deleted is True)
        self.assertEqual(deleted_by_key, Counter(keys))
        self.assertEqual(list(kv.items()), [("key-live", "not deleted")])

    def test_incr_loses_no_update(self) -> None:
        """8 processes each incrementing one key 250 times end at exactly 2000."""
        kv = KeyVal("concurrent.incr")
        results = self.run_children("increment", "concurrent.incr", "hits", 250)

        returned = [value for values in results for value in values]
        # Each increment saw its own total: no two callers were told the same number.
        self.assertEqual(sorted(returned), list(range(1, 2001)))
        for values in results:
            self.assertEqual(values, sorted(values))
        self.assertEqual(kv.get("hits"), 2000)

    def test_set_many_with_overlapping_keys(self) -> None:
        """8 processes call ``set_many`` on overlapping keys, each mapping in its own order.

        None of them fails (a deadlock between two transactions would), and
        every key ends with a value one of them wrote.
        """
        keys = [f"key-{n}" for n in range(100)]
        results = self.run_children("set_many_shuffled", "concurrent.set_many", keys, 20, 30)

        self.assertEqual(results, [20] * PROCESSES)
        stored = KeyVal("concurrent.set_many").get_many(keys)
        self.assertEqual(sorted(stored), sorted(keys))  # 160 calls of 30 keys: each is hit
        for key, value in stored.items():
            self.assertIn(value, [written_value(key, index) for index in range(PROCESSES)])

    def test_writers_readers_and_flush(self) -> None:
        """Writers, readers and ``flush()`` on one store at once.

        No exception reaches any caller, readers only ever see values some
        writer wrote under that key, and another store is left untouched.
        """
        bystander = KeyVal("concurrent.bystander")
        bystander.set_many({f"key-{n}": n for n in range(20)})
        keys = [f"key-{n}" for n in range(40)]
        writers, readers, flushers = 4, 3, 2
        roles = ["writer"] * writers + ["reader"] * readers + ["flusher"] * flushers
        arguments = [(role, "concurrent.mixed", keys, writers, 2.0) for role in roles]

        results = run_in_processes("mixed_work", self.database_name, arguments)

        for index, result in enumerate(results):
            with self.subTest(child=index, role=result["role"]):
                self.assertEqual(result["wrong"], [])
                self.assertGreater(result["operations"], 0)
        # The check above means something only if the readers did find values.
        self.assertGreater(sum(result["values_seen"] for result in results[writers:]), 0)
        for key, value in KeyVal("concurrent.mixed").items():
            self.assertIsNone(check_mixed_value(key, value, writers))
        self.assertEqual(dict(bystander.items()), {f"key-{n}": n for n in range(20)})


class ConcurrencyTests(ConcurrencyScenarios, TransactionTestCase):
    """The scenarios with the database as Django configures it (on SQLite: the rollback journal)."""

    databases = {"default"}

    def test_add_wins_once_per_key(self) -> None:
        """Of 8 concurrent ``add`` calls per key, exactly one stores its value.

        Missing keys and keys whose pair has expired are both free to take;
        a live pair is left alone.
        """
        kv = KeyVal("concurrent.add")
        fresh = [f"key-{n}" for n in range(0, 50)]
        expired = [f"key-{n}" for n in range(50, 100)]
        live = [f"key-{n}" for n in range(100, 120)]
        kv.set_many(dict.fromkeys(expired, "old"), timeout=0.05)
        kv.set_many(dict.fromkeys(live, "live"), timeout=3600)
        time.sleep(0.1)
        self.assertEqual(kv.get_many(expired), {})

        results = self.run_children("add_keys", "concurrent.add", fresh + expired + live)

        winners: dict[str, list[int]] = {}
        for index, outcomes in enumerate(results):
            self.assertEqual(len(outcomes), 120)
            for key, added in outcomes:
                self.assertIn(added, (True, False))
                if added:
                    winners.setdefault(key, []).append(index)
        self.assertEqual(
            {key: len(indexes) for key, indexes in winners.items()},
            dict.fromkeys(fresh + expired, 1),
        )
        # The winner's value is the one stored, and an expired pair lost its old expiry.
        stored = kv.get_many(fresh + expired + live)
        for key in fresh + expired:
            self.assertEqual(stored[key], written_value(key, winners[key][0]))
        for key in expired[:5]:
            self.assertIsNone(kv.expires_at(key))
        self.assertEqual({stored[key] for key in live}, {"live"})


@skipUnless(connection.vendor == "sqlite", "WAL is a SQLite journal mode")
class SQLiteWALConcurrencyTests(ConcurrencyScenarios, TransactionTestCase):
    """The scenarios again with the SQLite test database in WAL mode.

    ``add`` is left out: it locks as ``set`` does, and the file stays within its time.
    """

    databases = {"default"}

    sqlite_journal_mode = "wal"
