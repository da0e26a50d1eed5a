"""The one way in to the table: routing decided once per operation, in one module."""

from __future__ import annotations

import ast
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Any

from django.core.cache import caches
from django.core.management import call_command
from django.db import connections, router
from django.test import TransactionTestCase, override_settings

import django_keyval
from django_keyval.exceptions import SerializationError
from django_keyval.models import KeyVal
from django_keyval.table import Table, pair_model, route, table
from django_keyval.transfer import export_lines, import_lines

PACKAGE = Path(django_keyval.__file__).parent


class CountingRouter:
    """Send every pair to ``alias``, counting the routers' calls by kind."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self.calls: Counter[str] = Counter()

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        if model._meta.app_label != "django_keyval":
            return None
        self.calls["read"] += 1
        return self.alias

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        if model._meta.app_label != "django_keyval":
            return None
        self.calls["write"] += 1
        return self.alias


@contextmanager
def counting_router(alias: str = "default") -> Iterator[CountingRouter]:
    counting = CountingRouter(alias)
    saved = router.routers
    router.routers = [counting]
    try:
        yield counting
    finally:
        router.routers = saved


CACHES = {"default": {"BACKEND": "django_keyval.cache.KeyValCache", "LOCATION": "table.cache"}}


@override_settings(CACHES=CACHES)
class RoutingTests(TransactionTestCase):
    databases = {"default", "other"}

    def tearDown(self) -> None:
        for alias in ("default", "other"):
            KeyVal.flush_all(using=alias)

    def test_the_routers_are_asked_from_one_module(self) -> None:
        callers = []
        for path in sorted(PACKAGE.rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in ("db_for_read", "db_for_write"):
                    callers.append(str(path.relative_to(PACKAGE)))
        self.assertEqual(set(callers), {"table.py"})

    def test_a_store_operation_routes_once(self) -> None:
        kv = KeyVal("table.routing")
        with counting_router() as counting:
            self.assertIs(kv.set("k", 1, timeout=60), True)
        self.assertEqual(counting.calls, {"write": 1})
        with counting_router() as counting:
            self.assertEqual(kv.get("k"), 1)
        self.assertEqual(counting.calls, {"read": 1})

    def test_a_cache_set_of_a_new_key_routes_once(self) -> None:
        # The new key makes the cache count its store (and trim it when
        # full) on the database the write went to: that is not asked again.
        cache = caches["default"]
        cache.clear()
        with counting_router() as counting:
            cache.set("new", "value")
        self.assertEqual(counting.calls, {"write": 1})
        self.assertEqual(cache.get("new"), "value")

    def test_a_cache_write_stays_on_the_database_it_was_routed_to(self) -> None:
        cache = caches["default"]
        with counting_router("other"):
            cache.set("placed", "there")
            self.assertEqual(cache.get("placed"), "there")
        self.assertEqual(KeyVal("table.cache", using="default").count(), 0)
        self.assertEqual(KeyVal("table.cache", using="other").count(), 1)

    def test_routed_binds_the_store_to_the_routers_choice(self) -> None:
        kv = KeyVal("table.bound", serializer="json")
        with counting_router("other") as counting:
            bound = kv.routed(write=True)
        self.assertEqual(counting.calls, {"write": 1})
        self.assertEqual(bound.using, "other")
        self.assertEqual(bound.name, "table.bound")
        bound.set("k", [1, 2])
        self.assertEqual(KeyVal("table.bound", using="other").get("k"), [1, 2])
        self.assertEqual(bound.count(), 1)
        # The serializer goes along: JSON refuses what pickle would take.
        with self.assertRaises(SerializationError):
            bound.set("t", (1, 2))

    def test_routed_on_a_bound_store_is_the_store(self) -> None:
        kv = KeyVal("table.bound", using="other")
        with counting_router() as counting:
            self.assertIs(kv.routed(write=True), kv)
        self.assertEqual(counting.calls, {})

    def test_export_and_import_route_once(self) -> None:
        kv = KeyVal("table.transfer", using="default")
        kv.set_many({f"k{n}": n for n in range(5)})
        with counting_router() as counting:
            lines = list(export_lines(store="table.transfer"))
        self.assertEqual(counting.calls, {"read": 1})
        kv.flush()
        with counting_router() as counting:
            result = import_lines(lines)
        self.assertEqual(counting.calls, {"write": 1})
        self.assertEqual(result.imported, 5)
        self.assertEqual(dict(kv.items()), {f"k{n}": n for n in range(5)})

    def test_the_command_reports_the_database_it_used(self) -> None:
        KeyVal("table.command", using="other").set("k", "v")
        out = StringIO()
        with counting_router("other") as counting:
            call_command("keyval", "pop", "table.command", "k", stdout=out)
        self.assertEqual(out.getvalue().strip(), "v")
        self.assertEqual(counting.calls, {"write": 1})
        self.assertFalse(KeyVal("table.command", using="other").exists("k"))

    def test_route_passes_the_hints(self) -> None:
        seen: list[dict[str, Any]] = []

        class HintRouter:
            def db_for_write(self, model: Any, **hints: Any) -> str:
                seen.append(hints)
                return "other"

            db_for_read = db_for_write

        saved = router.routers
        router.routers = [HintRouter()]
        try:
            self.assertEqual(route(True, "a.store"), "other")
            self.assertEqual(route(False), "other")
        finally:
            router.routers = saved
        self.assertEqual(seen, [{"store": "a.store"}, {}])
        self.assertIs(pair_model()._meta.app_label, "django_keyval")


class ThreadTests(TransactionTestCase):
    """A Table holds its own thread's connection; operations hold none."""

    databases = {"default"}

    def test_each_thread_gets_its_own_connection(self) -> None:
        here = table("default", write=False)
        found: list[Table] = []

        def other_thread() -> None:
            try:
                found.append(table("default", write=False))
                KeyVal("table.threads", using="default").set("k", "from the thread")
            finally:
                connections.close_all()

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        there = found[0]
        self.assertIsNot(there.connection, here.connection)
        self.assertIs(here.connection, connections["default"])
        # One operations object per database, shared by the threads.
        self.assertIs(there.operations, here.operations)
        self.assertEqual(KeyVal("table.threads", using="default").get("k"), "from the thread")
        KeyVal.flush_all(using="default")
