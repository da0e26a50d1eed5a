"""``set_many`` is all or nothing: bad values, database errors, and a killed process.

These tests commit (``TransactionTestCase``), so that ``set_many``'s own
transaction is the outermost one, as in a view running in autocommit, and so
that a child process sees the data.
"""

from __future__ import annotations

import queue
import random
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import skipUnless

from django.db import DatabaseError, connection, transaction
from django.test import TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext

from django_keyval.exceptions import InvalidKeyError, SerializationError, ValueTooLargeError
from django_keyval.models import KeyVal, KeyValPair

from .test_concurrency import SQLiteJournalModeMixin
from .workers import run_in_processes, start_process

#: The key a database trigger refuses, far enough into the mapping to be in a later batch.
REFUSED_KEY = "k-2200"


class SetManyAllOrNothingTests(TransactionTestCase):
    """A failure anywhere in ``set_many`` leaves none of the call's pairs stored."""

    databases = {"default"}

    def setUp(self) -> None:
        self.kv = KeyVal("faults")
        self.old = {"k-0000": "old 0", "k-0001": 1, "k-0002": ["old", 2]}
        self.kv.set_many(self.old)

    def assert_store_unchanged(self) -> None:
        self.assertEqual(dict(self.kv.items()), self.old)

    def assert_connection_usable(self) -> None:
        self.assertTrue(self.kv.set("k-after", "after"))
        self.assertEqual(self.kv.get("k-after"), "after")
        self.kv.delete("k-after")

    def mapping(self, size: int) -> dict[str, Any]:
        """New values for the old keys first, then new keys, ``size`` in all."""
        values: dict[str, Any] = {f"k-{n:04d}": f"new {n}" for n in range(size)}
        return values

    def test_unserializable_value_in_the_middle(self) -> None:
        mapping = self.mapping(10)
        mapping["k-0005"] = lambda: None  # pickle refuses lambdas
        with self.assertNumQueries(0), self.assertRaises(SerializationError) as caught:
            self.kv.set_many(mapping)
        self.assertIn("'k-0005'", str(caught.exception))
        self.assert_store_unchanged()
        self.assert_connection_usable()

    def test_json_serializer_refuses_a_value_in_the_middle(self) -> None:
        kv = KeyVal("faults", serializer="json")
        mapping = {"k-0000": "new", "k-0004": {1, 2}, "k-0009": "new"}
        with self.assertNumQueries(0), self.assertRaises(SerializationError) as caught:
            kv.set_many(mapping)
        self.assertIn("'k-0004'", str(caught.exception))
        self.assert_store_unchanged()
        self.assert_connection_usable()

    @override_settings(KEYVAL_MAX_VALUE_SIZE=1000)
    def test_value_too_large_in_the_middle(self) -> None:
        mapping = self.mapping(10)
        mapping["k-0007"] = "x" * 2000
        with self.assertNumQueries(0), self.assertRaises(ValueTooLargeError):
            self.kv.set_many(mapping)
        self.assert_store_unchanged()

    def test_invalid_key_in_the_middle(self) -> None:
        mapping: dict[Any, Any] = self.mapping(10)
        mapping["k\x00bad"] = "value"
        mapping["k-0099"] = "value"
        with self.assertNumQueries(0), self.assertRaises(InvalidKeyError):
            self.kv.set_many(mapping)
        self.assert_store_unchanged()

    def test_enclosing_transaction_rolled_back(self) -> None:
        """An exception later in the caller's transaction takes ``set_many``'s pairs with it."""
        try:
            with transaction.atomic():
                self.kv.set_many(self.mapping(2000))
                self.assertEqual(self.kv.count(), 2000)
                raise RuntimeError("after set_many")
        except RuntimeError:
            pass
        self.assert_store_unchanged()
        self.assert_connection_usable()

    # -- a database error in a later batch ---------------------------------------------

    @contextmanager
    def refusing_trigger(self) -> Iterator[None]:
        """Make the database refuse to insert the row of ``REFUSED_KEY``, saying "boom"."""
        quote = connection.ops.quote_name
        table = quote(KeyValPair._meta.db_table)
        key = quote(KeyValPair.key.field.column)
        if connection.vendor == "sqlite":
            create = [
                f"CREATE TRIGGER keyval_refuse BEFORE INSERT ON {table} "
                f"WHEN NEW.{key} = '{REFUSED_KEY}' BEGIN SELECT RAISE(ABORT, 'boom'); END"
            ]
            drop = ["DROP TRIGGER keyval_refuse"]
        elif connection.vendor == "postgresql":
            create = [
                "CREATE FUNCTION keyval_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.{key} = '{REFUSED_KEY}' THEN RAISE EXCEPTION 'boom'; END IF; "
                "RETURN NEW; END $$",
                f"CREATE TRIGGER keyval_refuse BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION keyval_refuse()",
            ]
            drop = [f"DROP TRIGGER keyval_refuse ON {table}", "DROP FUNCTION keyval_refuse()"]
        else:
            create = [
                f"CREATE TRIGGER keyval_refuse BEFORE INSERT ON {table} FOR EACH ROW BEGIN "
                f"IF NEW.{key} = '{REFUSED_KEY}' THEN "
                "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom'; END IF; END"
            ]
            drop = ["DROP TRIGGER keyval_refuse"]
        with connection.cursor() as cursor:
            for sql in create:
                cursor.execute(sql)
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                for sql in drop:
                    cursor.execute(sql)

    def set_many_refused(self, kv: KeyVal, mapping: dict[str, Any]) -> None:
        """Run ``set_many``, check the database refused it mid-way, after earlier batches ran."""
        with (
            CaptureQueriesContext(connection) as queries,
            self.assertRaisesMessage(DatabaseError, "boom"),
        ):
            kv.set_many(mapping)
        inserts = [query for query in queries if query["sql"].lstrip().upper().startswith("INSERT")]
        # The refused row is not in the first statement: some rows had been written.
        self.assertGreater(len(inserts), 1)

    def test_database_error_in_a_later_batch(self) -> None:
        mapping = self.mapping(2500)
        with self.refusing_trigger():
            self.set_many_refused(self.kv, mapping)
            self.assert_store_unchanged()
            self.assert_connection_usable()
        self.kv.set_many(mapping)  # without the trigger, the same call goes through
        self.assertEqual(self.kv.count(), 2500)

    def test_database_error_inside_a_transaction(self) -> None:
        """Inside the caller's transaction, only ``set_many``'s pairs are rolled back."""
        with self.refusing_trigger(), transaction.atomic():
            self.kv.set("k-before", "before")
            self.set_many_refused(self.kv, self.mapping(2500))
            # No "current transaction is aborted": the transaction goes on.
            self.kv.set("k-later", "later")
        self.assertEqual(
            dict(self.kv.items()), {**self.old, "k-before": "before", "k-later": "later"}
        )


class KilledWriterTests(SQLiteJournalModeMixin, TransactionTestCase):
    """A process killed with SIGKILL inside ``set_many`` leaves all or none of its pairs.

    And no lock behind it: this process, and new ones, read and write at once.
    """

    databases = {"default"}
    store_name = "faults.killed"

    def setUp(self) -> None:
        super().setUp()
        self.database_name = connection.settings_dict["NAME"]
        self.kv = KeyVal(self.store_name)
        # A lock left behind makes the next write wait; fail then, not after minutes.
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET statement_timeout = '10s'")
                self.addCleanup(self.run_sql, "RESET statement_timeout")
            elif connection.vendor == "mysql":
                cursor.execute("SET SESSION innodb_lock_wait_timeout = 10")
                self.addCleanup(self.run_sql, "SET SESSION innodb_lock_wait_timeout = DEFAULT")

    def run_sql(self, sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)

    def start_writer(self, pairs: int, stall_after: int | None) -> tuple[Any, Any]:
        process, events = start_process(
            "set_many_and_stall", self.database_name, (self.store_name, pairs, stall_after)
        )
        self.addCleanup(self.stop, process)
        return process, events

    def stop(self, process: Any) -> None:
        if process.is_alive():
            process.kill()
        process.join()

    def wait_for(self, events: Any, expected: str) -> None:
        try:
            event = events.get(timeout=60)
        except queue.Empty:
            self.fail(f"the writer did not report {expected!r} within 60 s")
        if event != expected:
            self.fail(f"the writer reported {event!r}, not {expected!r}")

    def kill(self, process: Any) -> int:
        """SIGKILL the writer (unless it is done); return its exit code."""
        process.kill()
        process.join(timeout=10)
        return int(process.exitcode)

    def assert_usable_at_once(self, pairs_left: int) -> None:
        """This connection, then 8 new processes, read and write the store straight away."""
        started = time.monotonic()
        self.assertEqual(self.kv.count(), pairs_left)
        # A key the killed writer had inserted: a lock left on its row would block this.
        self.kv.set("k-0000001", "parent")
        self.assertEqual(self.kv.get("k-0000001"), "parent")
        self.assertLess(time.monotonic() - started, 1.0)

        results = run_in_processes(
            "read_and_write", self.database_name, [(self.store_name, "child")] * 8
        )
        for index, result in enumerate(results):
            self.assertEqual(result["value"], index)
        self.assertEqual(self.kv.count(), max(pairs_left, 1) + 8)

    def test_killed_inside_the_transaction(self) -> None:
        """Killed after some batches were written but before the commit: none of the pairs."""
        process, events = self.start_writer(pairs=20_000, stall_after=3)
        self.wait_for(events, "started")
        self.wait_for(events, "stalled")
        self.assertEqual(self.kill(process), -signal.SIGKILL)
        self.assert_usable_at_once(pairs_left=0)

    def test_killed_at_a_random_moment(self) -> None:
        """Killed at any point of a 200 000-pair ``set_many``: all of the pairs or none."""
        process, events = self.start_writer(pairs=200_000, stall_after=None)
        self.wait_for(events, "started")
        time.sleep(random.uniform(0.05, 0.5))
        exitcode = self.kill(process)
        count = self.kv.count()
        if exitcode == 0:  # it finished first
            self.assertEqual(count, 200_000)
        else:
            self.assertEqual(exitcode, -signal.SIGKILL)
            self.assertIn(count, (0, 200_000))
        self.assert_usable_at_once(pairs_left=count)


@skipUnless(connection.vendor == "sqlite", "WAL is a SQLite journal mode")
class KilledWriterWALTests(KilledWriterTests):
    """The same with the SQLite test database in WAL mode."""

    sqlite_journal_mode = "wal"
