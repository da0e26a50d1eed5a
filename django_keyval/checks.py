"""System checks: the store's databases and settings.

* ``keyval.E001``: a database that may hold the table uses an engine
  django-keyval does not support (Oracle, MySQL without MariaDB, ...).
* ``keyval.E002``: ``KEYVAL_SERIALIZER`` names no usable serializer.
* ``keyval.W001``: a MySQL/MariaDB database is not connected with
  ``charset: utf8mb4``, so keys with characters outside the BMP would fail.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, Warning, register
from django.db import connections, router

SUPPORTED_VENDORS = ("sqlite", "postgresql", "mysql")


def _aliases(databases: Any) -> list[str]:
    from .models import KeyValPair

    return [
        alias
        for alias in connections.settings
        if router.allow_migrate_model(alias, KeyValPair)
        and (databases is None or alias in databases)
    ]


@register(Tags.database, Tags.compatibility)
def check_databases(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Any]:
    """Refuse database engines the store cannot run on correctly."""
    from .backends import unsupported_reason

    errors: list[Any] = []
    for alias in connections.settings:
        engine = connections.settings[alias]["ENGINE"]
        try:
            connection = connections[alias]
            vendor = connection.vendor
        except Exception:  # the backend could not even be imported
            vendor = engine
        if alias not in _aliases(None):
            continue
        reason = None
        if vendor not in SUPPORTED_VENDORS:
            reason = f"the engine {engine!r} is not supported"
        elif vendor == "mysql" and databases is not None and alias in databases:
            # Telling MariaDB from MySQL needs a connection, so only checks that
            # may use the database (migrate, check --database) look.
            reason = unsupported_reason(connection)
        if reason:
            errors.append(
                Error(
                    f"django-keyval cannot use database {alias!r}: {reason}.",
                    hint="Use SQLite, PostgreSQL or MariaDB 10.5+, or route "
                    "django_keyval.KeyValPair to such a database with a database router.",
                    id="keyval.E001",
                )
            )
        if vendor == "mysql":
            charset = connections.settings[alias].get("OPTIONS", {}).get("charset", "")
            if charset != "utf8mb4":
                errors.append(
                    Warning(
                        f"Database {alias!r} is not connected with charset utf8mb4.",
                        hint="Add 'charset': 'utf8mb4' to its OPTIONS so keys may hold any "
                        "character.",
                        id="keyval.W001",
                    )
                )
    return errors


@register(Tags.compatibility)
def check_serializer(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Check that ``KEYVAL_SERIALIZER`` names a usable serializer."""
    from .conf import keyval_settings
    from .serializers import get_serializer

    try:
        get_serializer(keyval_settings.SERIALIZER)
    except (TypeError, ValueError) as error:
        return [Error(f"KEYVAL_SERIALIZER is invalid: {error}", id="keyval.E002")]
    return []
