"""SQLite only: operations wait out a locked database instead of failing."""

from __future__ import annotations

import sqlite3
import threading
import time

from django.db import OperationalError, connection, transaction
from django.test import TransactionTestCase

from django_keyval.models import KeyVal


class LockedDatabaseTests(TransactionTestCase):
    def setUp(self) -> None:
        if connection.vendor != "sqlite":
            self.skipTest("SQLite only")
        # A busy timeout far shorter than the lock is held below.
        connection.close()
        self.original_options = dict(connection.settings_dict.get("OPTIONS", {}))
        connection.settings_dict["OPTIONS"] = {**self.original_options, "timeout": 0.05}
        self.addCleanup(self.restore_options)

    def restore_options(self) -> None:
        connection.close()
        connection.settings_dict["OPTIONS"] = self.original_options

    def hold_write_lock(self, seconds: float) -> threading.Thread:
        """Take SQLite's write lock from another connection, and let go after ``seconds``."""
        locked = threading.Event()

        def hold() -> None:
            other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            time.sleep(seconds)
            other.execute("COMMIT")
            other.close()

        thread = threading.Thread(target=hold)
        thread.start()
        locked.wait()
        self.addCleanup(thread.join)
        return thread

    def test_writes_outside_transactions_wait_for_the_lock(self) -> None:
        kv = KeyVal("tests.locked")
        kv.set("before", 1)
        self.hold_write_lock(0.5)
        started = time.monotonic()
        self.assertTrue(kv.set("k", "v"))
        kv.set_many({"a": 1, "b": 2})
        self.assertEqual(kv.incr("n"), 1)
        self.assertGreater(time.monotonic() - started, 0.3)
        self.assertEqual(kv.get_many(["k", "a", "b", "n"]), {"k": "v", "a": 1, "b": 2, "n": 1})

    def test_inside_a_transaction_the_error_is_raised(self) -> None:
        kv = KeyVal("tests.locked")
        self.hold_write_lock(0.5)
        with self.assertRaises(OperationalError), transaction.atomic():
            kv.set("k", "v")
        self.assertFalse(kv.exists("k"))
