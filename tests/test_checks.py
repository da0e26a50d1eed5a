"""System checks, the model, and the migrations."""

from __future__ import annotations

import datetime
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.db import connection, connections
from django.test import SimpleTestCase, TestCase, override_settings
from django.utils import timezone

from django_keyval import exceptions
from django_keyval.backends import operations_for, unsupported_reason
from django_keyval.checks import check_databases, check_serializer
from django_keyval.models import KeyVal, KeyValPair


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
        self.assertIsNone(unsupported_reason(connection))

    def test_unsupported_engine_is_an_error(self) -> None:
        self.add_database("legacy", {"ENGINE": "django.db.backends.oracle", "NAME": "x"})
        errors = check_databases()
        self.assertEqual([error.id for error in errors], ["keyval.E001"])
        self.assertIn("'legacy'", errors[0].msg)
        self.assertIn("django.db.backends.oracle", errors[0].msg)

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

    def test_unsupported_engine_at_runtime(self) -> None:
        self.add_database("legacy", {"ENGINE": "django.db.backends.dummy", "NAME": "x"})
        with self.assertRaises(exceptions.UnsupportedDatabaseError):
            operations_for(connections["legacy"])

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
