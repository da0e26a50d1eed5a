"""System checks: the store's databases and settings.

* ``keyval.E002``: ``KEYVAL_SERIALIZER`` names no usable serializer.
* ``keyval.E003``: ``KEYVAL_OPERATIONS`` names no usable operations class.
* ``keyval.W001``: a MySQL/MariaDB database is not connected with
  ``charset: utf8mb4``, so keys with characters outside the BMP would fail.
* ``keyval.W002``: a database that may hold the table is served by the
  portable operations class, which costs more round trips per operation.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, Warning, register
from django.db import connections, router

#: Vendors with an operations class of their own.
VENDOR_CLASSES = ("sqlite", "postgresql", "mysql")


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
    """Check the operations class and the connection options of each database."""
    from .backends import operations_class
    from .backends.portable import PortableOperations
    from .exceptions import InvalidOperationsError

    errors: list[Any] = []
    configured = _configured_operations()
    for alias in _aliases(None):
        engine = connections.settings[alias]["ENGINE"]
        try:
            connection = connections[alias]
            vendor = connection.vendor
        except Exception:  # the backend could not even be imported
            continue
        portable = False
        if alias in configured:
            try:
                # Telling MariaDB from MySQL needs a connection: a named class does not.
                portable = issubclass(operations_class(connection), PortableOperations)
            except InvalidOperationsError as error:
                errors.append(Error(str(error), id="keyval.E003"))
        else:
            portable = vendor not in VENDOR_CLASSES
        if portable:
            errors.append(
                Warning(
                    f"django-keyval uses its portable operations on database {alias!r} ({engine}).",
                    hint="Each write there is an UPDATE then an INSERT, with a retry when a "
                    "concurrent writer wins: up to 3 round trips where the vendor classes "
                    "send 1, for the same guarantees. Silence this warning if that is what "
                    "you want, or name another class in KEYVAL_OPERATIONS.",
                    id="keyval.W002",
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


def _configured_operations() -> dict[str, Any]:
    from .conf import keyval_settings

    configured = keyval_settings.OPERATIONS
    # Not a dict: operations_class() says so for every alias.
    return configured if isinstance(configured, dict) else dict.fromkeys(connections.settings)


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
