"""The operations classes: what each sends, and the versions it keeps.

The whole suite runs with each class too (``KEYVAL_TEST_OPERATIONS``); here
each class is chosen with ``KEYVAL_OPERATIONS`` for a few operations, on
whatever database the run uses, so that every run checks every class the
database can host.
"""

from __future__ import annotations

import datetime
import threading
import zoneinfo
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.operations import BaseDatabaseOperations
from django.test import TestCase, TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext

from django_keyval.backends import operations_for, vendor_operations_class
from django_keyval.backends.base import ROW_MARKS, BaseOperations
from django_keyval.backends.mysql import MySQLOperations
from django_keyval.backends.portable import PortableOperations
from django_keyval.clock import adapt_datetime, adapted_now
from django_keyval.models import BinaryCollationCharField, KeyVal, KeyValPair
from django_keyval.rows import PageBounds
from tests.statements import FORBIDDEN

MYSQL = "django_keyval.backends.mysql.MySQLOperations"
PORTABLE = "django_keyval.backends.portable.PortableOperations"


def forcing(path: str) -> override_settings:
    """Use the operations class ``path`` on every alias."""
    return override_settings(KEYVAL_OPERATIONS=dict.fromkeys(connections, path))


def version(store: str, key: str) -> int:
    """The stored version of a pair."""
    return int(KeyValPair.objects.get(store=store, key=key).version)


def expire(store: str, key: str) -> None:
    """Make a pair expired, as if its timeout had passed."""
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    KeyValPair.objects.filter(store=store, key=key).update(expires_at=past)


def exercise(kv: KeyVal) -> None:
    """Call every operation, on every path that sends different statements."""
    kv.set("k", "v")
    kv.set("k", "w", timeout=60)
    kv.set("big", b"x" * 20_000)
    kv.add("k", 1)
    kv.add("new", 1)
    kv.set("old", 1, timeout=60)
    expire(kv.name, "old")
    kv.add("old", 2)
    kv.set("gone", 1, timeout=60)
    expire(kv.name, "gone")
    kv.set("gone", 2)
    kv.incr("n")
    kv.incr("n", 5)
    kv.incr("n", create=False)
    kv.get("k")
    kv.get_default("missing")
    kv.exists("k")
    kv.touch("k", 30)
    kv.expires_at("k")
    kv.pop("new")
    kv.pop_default("new")
    kv.delete("n")
    kv.delete("n", ignore_keyerror=True)
    kv.set_many({f"m{i}": i for i in range(5)})
    kv.get_many([f"m{i}" for i in range(5)], delete_expired=True)
    list(kv.items())
    list(kv.keys("m"))
    kv.delete_many(["m0", "m1"])
    kv.trim(2, cull_frequency=2)
    len(kv)
    KeyVal.stores()
    KeyVal.cull()
    kv.flush()


class AdaptDatetimeTests(TestCase):
    """The shortcut for adapting datetimes gives what Django's adapter gives."""

    def assert_as_django(self) -> None:
        utc = datetime.timezone.utc
        for value in (
            datetime.datetime(2026, 11, 30, 14, 5, 6, 123456, tzinfo=utc),
            datetime.datetime(2026, 11, 30, 14, 5, 6, tzinfo=utc),  # no microseconds
            datetime.datetime(1, 1, 1, tzinfo=utc),
            datetime.datetime(
                2026, 6, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),  # another time zone: Django converts it
        ):
            with self.subTest(value=value):
                self.assertEqual(
                    adapt_datetime(connection, value),
                    connection.ops.adapt_datetimefield_value(value),
                )

    def test_in_utc(self) -> None:
        self.assert_as_django()

    @override_settings(TIME_ZONE="America/New_York")
    def test_in_another_time_zone(self) -> None:
        self.assert_as_django()

    def test_a_backend_with_its_own_adapter_keeps_it(self) -> None:
        # The backend's base module first: importing the operations one first is circular.
        import django.db.backends.sqlite3.base  # noqa: F401
        from django.db.backends.sqlite3.operations import DatabaseOperations

        class OwnAdapter(DatabaseOperations):
            def adapt_datetimefield_value(self, value: Any) -> Any:
                return "adapted its own way"

        backend = SimpleNamespace(
            vendor="sqlite", timezone=datetime.timezone.utc, ops=OwnAdapter(connection)
        )
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertEqual(adapt_datetime(cast(Any, backend), now), "adapted its own way")


class VersionTestsMixin:
    """A pair's version changes exactly when its value or its expiry does."""

    assertEqual: Callable[..., None]
    assertFalse: Callable[..., None]
    assertTrue: Callable[..., None]

    def test_version_follows_value_and_expiry(self) -> None:
        kv = KeyVal("tests.versions")
        self.assertTrue(kv.set("k", "v"))
        self.assertEqual(version(kv.name, "k"), 1)
        self.assertFalse(kv.set("k", "w"))
        self.assertEqual(version(kv.name, "k"), 2)
        # A failed add changes nothing, version included.
        self.assertFalse(kv.add("k", "x"))
        self.assertEqual(version(kv.name, "k"), 2)
        self.assertEqual(kv.get("k"), "w")
        kv.get("k")
        kv.exists("k")
        self.assertEqual(version(kv.name, "k"), 2)
        self.assertTrue(kv.touch("k", 60))
        self.assertEqual(version(kv.name, "k"), 3)
        # An expired pair is gone: what replaces it is new, and its version
        # goes on counting, so that no version comes back.
        expire(kv.name, "k")
        self.assertTrue(kv.add("k", "y"))
        self.assertEqual(version(kv.name, "k"), 4)
        kv.set("n", 1)
        self.assertEqual(kv.incr("n"), 2)
        self.assertEqual(version(kv.name, "n"), 2)
        self.assertEqual(kv.incr("n", -7), -5)
        self.assertEqual(version(kv.name, "n"), 3)


class VendorClassTests(VersionTestsMixin, TestCase):
    """The class of the database's own vendor."""

    @override_settings(KEYVAL_OPERATIONS={})
    def test_version_follows_value_and_expiry(self) -> None:
        super().test_version_follows_value_and_expiry()


@forcing(PORTABLE)
class PortableClassTests(VersionTestsMixin, TestCase):
    """The portable class, on whatever database the run uses."""

    def test_it_is_the_class_in_use(self) -> None:
        self.assertIsInstance(operations_for(connection), PortableOperations)

    def test_no_vendor_upsert_and_no_returning(self) -> None:
        with CaptureQueriesContext(connection) as queries:
            exercise(KeyVal("tests.portable"))
        for query in queries:
            for pattern, what in FORBIDDEN["portable"]:
                self.assertIsNone(pattern.search(query["sql"]), f"{what}: {query['sql']}")

    def test_counters_and_negative_values(self) -> None:
        kv = KeyVal("tests.portable")
        self.assertEqual(kv.incr("n", -3), -3)
        self.assertEqual(kv.decr("n", 4), -7)
        kv.set("s", "text")
        self.assertIsNone(kv.pop_default("missing"))
        self.assertEqual(kv.pop("s"), "text")


@forcing(PORTABLE)
class PortableRoundTripTests(TransactionTestCase):
    """What the portable class costs outside a transaction (the documented figures)."""

    databases = {"default", "other"}

    def test_round_trips(self) -> None:
        kv = KeyVal("tests.portable")
        kv.set("k", "v")
        kv.set("n", 1)
        expected: dict[str, tuple[int, Callable[[], Any]]] = {
            "set overwrite": (1, lambda: kv.set("k", "w")),
            "set new": (3, lambda: kv.set("new", 1)),
            "add new": (2, lambda: kv.add("added", 1)),
            "add of a live key": (3, lambda: kv.add("k", 1)),
            "get": (1, lambda: kv.get("k")),
            "delete": (1, lambda: kv.delete("added")),
            "pop": (2, lambda: kv.pop("new")),
            "incr": (2, lambda: kv.incr("n")),  # in a transaction
            "touch": (1, lambda: kv.touch("k", 60)),
            "count": (1, lambda: len(kv)),
        }
        for name, (statements, operation) in expected.items():
            with self.subTest(operation=name), CaptureQueriesContext(connection) as queries:
                operation()
            # Statements, not the transaction's own (SQLite's BEGIN and COMMIT).
            sent = [q["sql"] for q in queries if q["sql"] not in ("BEGIN", "COMMIT")]
            self.assertEqual(len(sent), statements, sent)


def hosted_classes(on: BaseDatabaseWrapper) -> list[type[BaseOperations]]:
    """The operations classes that can run on ``on``'s database."""
    classes = [vendor_operations_class(on), PortableOperations]
    if on.vendor == "mysql":
        classes.append(MySQLOperations)
    return list(dict.fromkeys(classes))


def held_connections(operations: BaseOperations) -> list[str]:
    """Name the attributes of ``operations`` that hold a connection or its ``ops``."""
    found = []
    for name, value in vars(operations).items():
        items = value if isinstance(value, (list, tuple, dict)) else [value]
        for item in items.values() if isinstance(items, dict) else items:
            owner = getattr(item, "__self__", item)  # a bound method's object
            if isinstance(owner, (BaseDatabaseWrapper, BaseDatabaseOperations)):
                found.append(name)
    return found


class ConnectionPerThreadTests(TransactionTestCase):
    """One operations object serves every thread of an alias: it holds no connection.

    Django connections belong to the thread that opened them; each call
    is given the calling thread's.
    """

    def test_no_attribute_holds_a_connection(self) -> None:
        for operations_class in hosted_classes(connection):
            with self.subTest(operations_class=operations_class.__name__):
                self.assertEqual(held_connections(operations_class(connection)), [])

    def test_a_second_thread_reads_through_its_own_connection(self) -> None:
        kv = KeyVal("tests.threads")
        kv.set("a", 1, timeout=86400)  # live whatever the connection's time zone
        kv.set("b", "two")
        operations = operations_for(connection)
        portable = PortableOperations(connection)
        raw_expiry = operations.expiry(connection, kv.name, "a", adapted_now(connection))
        assert raw_expiry is not None
        # A time zone of its own stands for any state a connection keeps for
        # its thread: converting the expiry must consult the caller's.
        tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
        # The first thread's connection is closed while the second works.
        connection.close()
        seen: dict[str, Any] = {}

        def second_thread() -> None:
            other = connections[DEFAULT_DB_ALIAS]
            try:
                seen["own connection"] = other is not connection
                other.__dict__["timezone"] = tokyo
                seen["expiry"] = operations.expiry_datetime(other, raw_expiry[0])
                bounds = PageBounds(kv.name, "", True, None, adapted_now(other), 10)
                seen["keys"] = portable.page_keys(other, bounds)
                seen["page"] = [row.key for row in portable.page(other, bounds, 100)]
                seen["vendor keys"] = operations.page_keys(other, bounds)
            except BaseException as error:  # reported in the test's thread
                seen["error"] = error
            finally:
                other.close()

        worker = threading.Thread(target=second_thread)
        worker.start()
        worker.join()
        if "error" in seen:
            raise seen["error"]
        self.assertTrue(seen["own connection"])
        self.assertIsNone(connection.connection)  # the first thread's stayed closed
        self.assertEqual(seen["keys"], ["a", "b"])
        self.assertEqual(seen["page"], ["a", "b"])
        self.assertEqual(seen["vendor keys"], ["a", "b"])
        expires = kv.expires_at("a")
        assert expires is not None
        if isinstance(raw_expiry[0], datetime.datetime) and raw_expiry[0].tzinfo is not None:
            # The driver returned an aware datetime (PostgreSQL): nothing to convert.
            self.assertEqual(seen["expiry"], expires)
        else:
            # Read as the naive time of day in the second connection's zone.
            in_tokyo = expires.astimezone(datetime.timezone.utc).replace(tzinfo=tokyo)
            self.assertEqual(seen["expiry"], in_tokyo)


class MySQLClassTests(VersionTestsMixin, TestCase):
    """The MySQL class, run against MariaDB in its ``VALUES(column)`` form."""

    def setUp(self) -> None:
        if connection.vendor != "mysql":
            self.skipTest("the MySQL class runs on MariaDB or MySQL only")
        settings = forcing(MYSQL)
        settings.enable()
        self.addCleanup(settings.disable)

    def test_it_is_the_class_in_use(self) -> None:
        self.assertIs(type(operations_for(connection)), MySQLOperations)

    def test_nothing_mysql_lacks(self) -> None:
        with CaptureQueriesContext(connection) as queries:
            exercise(KeyVal("tests.mysql"))
        self.assertTrue(queries)
        for query in queries:
            for pattern, what in FORBIDDEN["mysql"]:
                self.assertIsNone(pattern.search(query["sql"]), f"{what}: {query['sql']}")

    def test_one_statement_per_operation_but_pop(self) -> None:
        kv = KeyVal("tests.mysql")
        kv.set("k", "v")
        kv.set("n", 1)
        kv.set("p", 1)
        expected: dict[str, tuple[int, Callable[[], Any]]] = {
            "set new": (1, lambda: kv.set("new", 1)),
            "set overwrite": (1, lambda: kv.set("k", "w")),
            "add": (1, lambda: kv.add("k", 1)),
            "incr": (1, lambda: kv.incr("n")),
            "incr create=False": (1, lambda: kv.incr("n", create=False)),
            "delete": (1, lambda: kv.delete("new")),
            "pop": (2, lambda: kv.pop("p")),
            "pop miss": (1, lambda: kv.pop_default("p")),
        }
        for name, (statements, operation) in expected.items():
            with self.subTest(operation=name), self.assertNumQueries(statements):
                operation()

    def test_counter_results_come_back_signed(self) -> None:
        kv = KeyVal("tests.mysql")
        self.assertEqual(kv.incr("n", -5), -5)  # an insert
        self.assertEqual(kv.incr("n", -(2**62)), -5 - 2**62)  # an update
        self.assertEqual(kv.incr("n", 2**62 + 5), 0)
        kv.set("text", "not a number")
        with self.assertRaises(TypeError):
            kv.incr("text")
        self.assertEqual(version("tests.mysql", "text"), 1)


class MySQLStatementTextTests(TestCase):
    """What MySQL 8.0.19+ gets, and MariaDB cannot run: checked by its SQL text only."""

    def test_row_alias_on_mysql_8_0_19(self) -> None:
        class RowAliasOperations(MySQLOperations):
            @staticmethod
            def uses_row_alias(connection: Any) -> bool:
                return True

        operations = RowAliasOperations(connection)
        set_many = operations.sql_set_many_prefix + ROW_MARKS + operations.sql_set_many_suffix
        for sql in (operations.sql_set, operations.sql_add, operations.sql_incr, set_many):
            with self.subTest(sql=sql):
                self.assertIn(" AS new ON DUPLICATE KEY UPDATE ", sql)
                self.assertIn("new.", sql)
                self.assertNotIn("VALUES(", sql)
                self.assertNotIn("RETURNING", sql)
        # Otherwise (MySQL before 8.0.19, MariaDB): VALUES(column).
        plain = MySQLOperations(connection) if connection.vendor != "mysql" else None
        if plain is not None:
            self.assertIn("VALUES(", plain.sql_set)
            self.assertNotIn(" AS new ", plain.sql_set)

    def test_mysql_collation_is_utf8mb4_0900_bin(self) -> None:
        # A MySQL column compares keys by code point with no padding.
        self.assertEqual(BinaryCollationCharField.COLLATIONS["mysql"], "utf8mb4_0900_bin")
        if connection.vendor != "mysql":
            return
        wrapper = connections[connection.alias]
        mysql = type(wrapper)(wrapper.settings_dict, alias=wrapper.alias)
        mysql.__dict__.update(mysql_is_mariadb=False, mysql_version=(8, 0, 36))
        key = KeyValPair._meta.get_field("key")
        assert isinstance(key, BinaryCollationCharField)
        self.assertEqual(key.db_parameters(mysql)["collation"], "utf8mb4_0900_bin")
        self.assertTrue(MySQLOperations.uses_row_alias(mysql))
        self.assertFalse(MySQLOperations.uses_row_alias(connection))  # MariaDB
