"""System checks, the model, and the migrations."""

from __future__ import annotations

import datetime
from io import StringIO
from typing import Any

from django.core import checks
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import SimpleTestCase, TestCase, TransactionTestCase, override_settings
from django.utils import timezone

from django_keyval import exceptions
from django_keyval.backends import operations_class, operations_for, vendor_operations_class
from django_keyval.backends.portable import PortableOperations
from django_keyval.checks import check_databases, check_serializer
from django_keyval.models import KeyVal, KeyValPair
from tests.helpers import vendor_classes_only


@override_settings(KEYVAL_OPERATIONS={})  # each vendor's own class, whatever the run forces
class DatabaseCheckTests(SimpleTestCase):
    databases = {"default"}

    def add_database(self, alias: str, settings_dict: dict[str, Any]) -> None:
        connections.settings[alias] = settings_dict

        def remove() -> None:
            del connections.settings[alias]
            local = connections._connections  # type: ignore[attr-defined]
            if hasattr(local, alias):
                delattr(local, alias)

        self.addCleanup(remove)

    def test_supported_databases_pass(self) -> None:
        self.assertEqual(check_databases(databases=["default"]), [])
        self.assertIs(operations_class(connection), vendor_operations_class(connection))

    def test_other_engines_get_the_portable_class_and_a_warning(self) -> None:
        # The dummy backend stands for any vendor without a class of its own.
        self.add_database("legacy", {"ENGINE": "django.db.backends.dummy", "NAME": "x"})
        self.assertIs(operations_class(connections["legacy"]), PortableOperations)
        warnings = [error for error in check_databases() if error.id == "keyval.W002"]
        self.assertEqual(len(warnings), 1)
        self.assertIn("'legacy'", warnings[0].msg)
        self.assertIn("django.db.backends.dummy", warnings[0].msg)
        self.assertIn("round trips", warnings[0].hint)

    def test_an_engine_that_cannot_be_imported_is_left_to_django(self) -> None:
        self.add_database("legacy", {"ENGINE": "no.such.backend", "NAME": "x"})
        self.assertEqual(check_databases(databases=["default"]), [])

    def test_mysql_without_utf8mb4_is_a_warning(self) -> None:
        self.add_database(
            "mysqlish", {"ENGINE": "django.db.backends.mysql", "NAME": "x", "OPTIONS": {}}
        )
        try:
            import MySQLdb  # noqa: F401
        except ImportError:
            self.skipTest("mysqlclient is not installed")
        warnings = [error.id for error in check_databases()]
        self.assertIn("keyval.W001", warnings)

    def test_operations_setting_names_the_class_of_an_alias(self) -> None:
        path = "django_keyval.backends.portable.PortableOperations"
        with override_settings(KEYVAL_OPERATIONS={connection.alias: path}):
            self.assertIs(operations_class(connection), PortableOperations)
            self.assertIsInstance(operations_for(connection), PortableOperations)
            warnings = [error.id for error in check_databases()]
            self.assertIn("keyval.W002", warnings)
        self.assertIs(operations_class(connection), vendor_operations_class(connection))
        self.assertNotIsInstance(operations_for(connection), PortableOperations)

    def test_a_bad_operations_setting_is_a_clear_error(self) -> None:
        cases = [
            ({"default": "no.such.Operations"}, "KEYVAL_OPERATIONS['default'] is 'no.such."),
            ({"default": "nodots"}, "KEYVAL_OPERATIONS['default'] is 'nodots', which cannot"),
            ({"default": "django_keyval.models.KeyVal"}, "which is not a subclass of"),
            (["default"], "KEYVAL_OPERATIONS must be a dict"),
        ]
        for setting, message in cases:
            with self.subTest(setting=setting), override_settings(KEYVAL_OPERATIONS=setting):
                with self.assertRaisesMessage(exceptions.InvalidOperationsError, message):
                    operations_for(connection)
                with self.assertRaisesMessage(ValueError, message):
                    KeyVal("s").get_default("k")
                errors = [error for error in check_databases() if error.id == "keyval.E003"]
                self.assertTrue(errors)
                self.assertIn(message, errors[0].msg)

    def test_serializer_setting(self) -> None:
        self.assertEqual(check_serializer(), [])
        with override_settings(KEYVAL_SERIALIZER="no.such.Serializer"):
            errors = check_serializer()
        self.assertEqual([error.id for error in errors], ["keyval.E002"])


class ModelTests(TestCase):
    def test_model(self) -> None:
        KeyVal("tests.model").set("k", {"v": 1}, timeout=60)
        row = KeyValPair.objects.get()
        self.assertEqual(str(row), "tests.model: k")
        self.assertFalse(row.is_expired)
        self.assertEqual(row.decoded_value(), {"v": 1})
        row.expires_at = timezone.now() - datetime.timedelta(seconds=1)
        self.assertTrue(row.is_expired)

    def test_keys_compare_by_code_point(self) -> None:
        for key in ("a", "A", "á", "a "):
            KeyVal("tests.model").set(key, key)
        self.assertEqual(KeyValPair.objects.count(), 4)
        self.assertEqual(
            list(KeyValPair.objects.values_list("key", flat=True)), ["A", "a", "a ", "á"]
        )


class MigrationTests(TestCase):
    """``makemigrations --check``, run here only: on every database and version pair."""

    def test_no_missing_migrations(self) -> None:
        out = StringIO()
        call_command("makemigrations", "django_keyval", "--check", "--dry-run", stdout=out)
        self.assertIn("No changes detected", out.getvalue())


EXPIRY_INDEX = "django_keyval_expires_idx"


def expires_at_indexes() -> list[str]:
    """Return the names of the table's indexes whose only column is ``expires_at``."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, KeyValPair._meta.db_table)
    return [
        name
        for name, details in constraints.items()
        if details["index"] and details["columns"] == ["expires_at"]
    ]


def index_condition(name: str) -> str | None:
    """Return the ``WHERE`` of index ``name`` as the database keeps it, or ``None``."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = %s", [name]
            )
            sql = cursor.fetchone()[0]
            return sql.partition(" WHERE ")[2] or None
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_get_expr(indpred, indrelid) FROM pg_index "
                "WHERE indexrelid = %s::regclass",
                [name],
            )
            return cursor.fetchone()[0]  # type: ignore[no-any-return]
    return None  # MariaDB and MySQL have no partial indexes.


def cull_plan() -> str:
    """Return the database's plan for the statement ``cull`` runs, as text."""
    sql = operations_for(connection).sql_cull
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", [now, 100])
        elif connection.vendor == "postgresql":
            # On a table this small a sequential scan is cheapest; forbidding
            # it shows whether the planner can use the index at all.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", [now, 100])
        else:
            cursor.execute(f"EXPLAIN {sql}", [now, 100])
        return "\n".join(" ".join(str(part) for part in row) for row in cursor.fetchall())


class ExpiryIndexTests(TransactionTestCase):
    """The expiry index: partial where the database allows, plain elsewhere, both ways."""

    def migrate(self, target: str) -> None:
        executor = MigrationExecutor(connection)
        executor.migrate([("django_keyval", target)])

    def tearDown(self) -> None:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes("django_keyval"))

    def assert_partial_expiry_index(self) -> None:
        self.assertEqual(expires_at_indexes(), [EXPIRY_INDEX])
        if connection.features.supports_partial_indexes:
            self.assertIn("IS NOT NULL", index_condition(EXPIRY_INDEX) or "")
        else:
            self.assertIsNone(index_condition(EXPIRY_INDEX))

    def test_expiry_index_is_partial_where_supported(self) -> None:
        self.assert_partial_expiry_index()

    def test_migration_forwards_and_backwards_keeps_pairs(self) -> None:
        store = KeyVal("tests.migration")
        store.set("forever", "kept")
        store.set("brief", "kept too", timeout=3600)
        self.migrate("0001_initial")
        (name,) = expires_at_indexes()
        self.assertNotEqual(name, EXPIRY_INDEX)
        self.assertIsNone(index_condition(name))
        self.migrate("0002_partial_expiry_index")
        self.assert_partial_expiry_index()
        self.assertEqual(
            store.get_many(["forever", "brief"]), {"forever": "kept", "brief": "kept too"}
        )
        self.assertIsNotNone(store.expires_at("brief"))

    @vendor_classes_only  # the portable class finds the rows with a SELECT of its own
    def test_cull_walks_the_expiry_index(self) -> None:
        store = KeyVal("tests.migration")
        store.set_many({f"k{number}": number for number in range(50)}, timeout=3600)
        self.assertIn(EXPIRY_INDEX, cull_plan())

    def test_no_warning_about_ignored_index_conditions(self) -> None:
        messages = checks.run_checks(databases=["default"])
        self.assertNotIn("models.W037", [message.id for message in messages])
