"""What cannot break a held lock, a fencing token or a version.

A guarantee is only as good as every operation that can delete or rewrite
its rows: each is tried here against a lock held with a long lease, a
fencing token that has been seen, and a version that has been read.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from io import StringIO
from typing import Any

from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.test import TestCase, TransactionTestCase, override_settings

from django_keyval.models import KeyVal, KeyValLock, KeyValPair
from django_keyval.transfer import export_lines, import_lines

from .test_store import expire
from .workers import run_in_processes

STORE = "guarantees"
CACHES = {
    "default": {
        "BACKEND": "django_keyval.cache.KeyValCache",
        "LOCATION": STORE,
        "OPTIONS": {"MAX_ENTRIES": 5, "CULL_FREQUENCY": 0},
    }
}


def maintenance() -> dict[str, Callable[[KeyVal], Any]]:
    """Every operation that deletes or rewrites pairs, run on the store ``kv`` and its name."""

    def fill_and_trim(kv: KeyVal) -> None:
        kv.set_many({f"filler-{n}": n for n in range(20)}, timeout=60)
        kv.trim(0, cull_frequency=0)

    def cache_culling(kv: KeyVal) -> None:
        cache = caches["default"]
        for n in range(20):  # MAX_ENTRIES 5, CULL_FREQUENCY 0: each cull empties the store
            cache.set(f"filler-{n}", n, timeout=60)

    def expire_and_cull(kv: KeyVal) -> None:
        kv.set("job", "a pair named like the lock", timeout=60)
        expire(kv.name, "job")
        KeyVal.cull()

    def touch_and_cull(kv: KeyVal) -> None:
        kv.set("job", "x")
        kv.touch("job", 0)
        KeyVal.cull()

    def export_flush_import(kv: KeyVal) -> None:
        kv.set("other", "value")
        lines = list(export_lines())
        KeyVal.flush_all()
        import_lines(lines)
        import_lines(lines)  # again, over what it wrote

    def command_flush(kv: KeyVal) -> None:
        call_command("keyval", "-c", "flush", "-n", kv.name, "--noinput", stdout=StringIO())

    return {
        "trim": fill_and_trim,
        "cache culling": cache_culling,
        "cache clear": lambda kv: caches["default"].clear(),
        "cull": expire_and_cull,
        "touch and cull": touch_and_cull,
        "flush": lambda kv: kv.flush(),
        "flush_all": lambda kv: KeyVal.flush_all(),
        "set of the lock's name": lambda kv: kv.set("job", "not a lock", timeout=60),
        "delete of the lock's name": lambda kv: kv.delete("job", ignore_keyerror=True),
        "pop of the lock's name": lambda kv: kv.pop_default("job"),
        "export, flush_all, import": export_flush_import,
        "the command's flush": command_flush,
    }


@override_settings(CACHES=CACHES)
class HeldLockTests(TestCase):
    """A held lock stays held, and its tokens only go up, whatever happens to the pairs."""

    def test_no_maintenance_lets_a_second_holder_in(self) -> None:
        kv = KeyVal(STORE)
        seen = 0
        for name, run in maintenance().items():
            with self.subTest(operation=name):
                lock = kv.lock("job", timeout=60)
                self.assertIs(lock.acquire(blocking=False), True)
                token = int(lock.token or 0)
                self.assertGreater(token, seen)
                run(kv)
                self.assertIs(kv.lock("job", timeout=60).acquire(blocking=False), False)
                self.assertIs(lock.owned(), True)
                self.assertIs(lock.locked(), True)
                lock.release()
                after = kv.lock("job", timeout=60)
                self.assertIs(after.acquire(blocking=False), True)
                self.assertGreater(int(after.token or 0), token)
                seen = int(after.token or 0)
                after.release()

    def test_a_lock_is_not_a_pair(self) -> None:
        kv = KeyVal(STORE)
        with kv.lock("job", timeout=60):
            self.assertIs(kv.exists("job"), False)
            self.assertEqual(list(kv.keys()), [])
            self.assertEqual(kv.count(), 0)
            self.assertEqual(KeyVal.stores(), [])
            self.assertEqual(list(export_lines()), [])
            self.assertEqual(KeyValPair.objects.count(), 0)
            row = KeyValLock.objects.get(store=STORE, name="job")
            self.assertIs(row.is_held, True)
        row.refresh_from_db()
        self.assertIs(row.is_held, False)

    def test_the_admin_cannot_edit_or_delete_a_lock(self) -> None:
        from django.contrib import admin
        from django.test import RequestFactory

        with KeyVal(STORE).lock("job", timeout=60):
            model_admin = admin.site._registry[KeyValLock]
            request = RequestFactory().get("/")
            request.user = type("Superuser", (), {"is_active": True, "is_superuser": True})()
            self.assertIs(model_admin.has_add_permission(request), False)
            self.assertIs(model_admin.has_change_permission(request), False)
            self.assertIs(model_admin.has_delete_permission(request), False)


class VersionTests(TestCase):
    """A key's version never repeats over its whole history in the database."""

    def lives(self) -> dict[str, Callable[[KeyVal], Any]]:
        def expired(kv: KeyVal) -> None:
            kv.touch("k", 60)
            expire(kv.name, "k")

        def culled(kv: KeyVal) -> None:
            expired(kv)
            KeyVal.cull()

        return {
            "delete": lambda kv: kv.delete("k"),
            "pop": lambda kv: kv.pop("k"),
            "expiry": expired,
            "expiry and cull": culled,
            "flush": lambda kv: kv.flush(),
            "flush_all": lambda kv: KeyVal.flush_all(),
            "trim": lambda kv: kv.trim(0, cull_frequency=0),
            "delete_many": lambda kv: kv.delete_many(["k"]),
        }

    def test_a_version_from_an_earlier_life_never_matches(self) -> None:
        kv = KeyVal(STORE)
        for name, end in self.lives().items():
            for recreate in ("set", "add", "incr", "set_many", "cas 0"):
                with self.subTest(end=name, recreate=recreate):
                    kv.set("k", 1)
                    kv.set("k", 2)
                    _, old = kv.get_versioned("k")
                    end(kv)
                    self.assertIs(kv.exists("k"), False)
                    if recreate == "set":
                        self.assertIs(kv.set("k", 1), True)
                    elif recreate == "add":
                        self.assertIs(kv.add("k", 1), True)
                    elif recreate == "incr":
                        self.assertEqual(kv.incr("k"), 1)
                    elif recreate == "set_many":
                        kv.set_many({"k": 1})
                    else:
                        self.assertIs(kv.cas("k", 1, 0), True)
                    _, new = kv.get_versioned("k")
                    self.assertGreater(new, old)
                    self.assertIs(kv.cas("k", "stale", old), False)
                    self.assertEqual(kv.get("k"), 1)
                    kv.flush()

    def test_each_write_raises_the_version(self) -> None:
        kv = KeyVal(STORE)
        self.assertIs(kv.set("k", "a"), True)
        _, first = kv.get_versioned("k")
        writes: list[Callable[[], Any]] = [
            lambda: kv.set("k", "b"),
            lambda: kv.touch("k", 60),
            lambda: kv.set_many({"k": "c"}),
            lambda: kv.cas("k", "d", kv.get_versioned("k")[1]),
            lambda: kv.update("k", lambda value: value + "e"),
        ]
        versions = [first]
        for write in writes:
            write()
            versions.append(kv.get_versioned("k")[1])
        self.assertEqual(versions, [first + n for n in range(len(versions))])
        self.assertEqual(kv.get("k"), "de")

    def test_set_still_says_whether_the_key_was_new(self) -> None:
        kv = KeyVal(STORE)
        self.assertIs(kv.set("k", 1, timeout=60), True)
        self.assertIs(kv.set("k", 2, timeout=60), False)
        expire(STORE, "k")
        self.assertIs(kv.set("k", 3), True)  # over the expired row
        self.assertIs(kv.set("k", 4), False)
        expire(STORE, "k")
        self.assertIs(kv.add("k", 5), True)
        self.assertIs(kv.add("k", 6), False)

    def test_update_never_overwrites_a_value_it_did_not_read(self) -> None:
        # A reads ["job1"]; while its function runs, B pops the key and sets
        # ["jobB"]. A's write must fail and A must start again from ["jobB"].
        kv = KeyVal(STORE)
        kv.set("queue", ["job1"])
        calls = []

        def append(value: list[str]) -> list[str]:
            calls.append(list(value))
            if len(calls) == 1:
                self.assertEqual(kv.pop("queue"), ["job1"])  # B consumes job1...
                kv.set("queue", ["jobB"])  # ... and starts a new queue
            return [*value, "jobA"]

        self.assertEqual(kv.update("queue", append), ["jobB", "jobA"])
        self.assertEqual(calls, [["job1"], ["jobB"]])
        self.assertEqual(kv.get("queue"), ["jobB", "jobA"])


class ProcessTests(TransactionTestCase):
    """Locks in 8 processes while a ninth runs every kind of maintenance."""

    databases = {"default"}

    def test_maintenance_in_a_loop_never_breaks_the_lock(self) -> None:
        database_name = connection.settings_dict["NAME"]
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "counter.txt")
            with open(path, "w") as file:
                file.write("0")
            lockers: list[tuple[Any, ...]] = [("lock", STORE, "counter", path, 25)] * 8
            results = run_in_processes(
                "lock_or_maintain",
                database_name,
                [*lockers, ("maintain", STORE, path, 200)],
                timeout=300,
            )
            with open(path) as file:
                self.assertEqual(file.read(), "200")
        tokens = [token for tokens in results[:8] for token in tokens]
        self.assertEqual(len(set(tokens)), 200)  # no two acquisitions shared a token
        for process_tokens in results[:8]:
            self.assertEqual(process_tokens, sorted(process_tokens))
        self.assertGreater(results[8], 0)  # maintenance rounds run meanwhile
