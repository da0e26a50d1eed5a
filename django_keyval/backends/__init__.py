"""The SQL each database needs, one module per vendor, and a portable class for the others.

SQLite, PostgreSQL, MariaDB and MySQL get one statement per single-key
operation wherever the database allows it, so that concurrent callers can
never interleave between a read and a write in Python. Any other backend
(Oracle, SQL Server, CockroachDB, third-party backends) gets
:class:`~django_keyval.backends.portable.PortableOperations`: portable SQL
only, with more round trips and the same guarantees. The
``KEYVAL_OPERATIONS`` setting picks another class for a database alias.
"""

from __future__ import annotations

import weakref
from typing import Any

from django.core.signals import setting_changed
from django.db.backends.base.base import BaseDatabaseWrapper
from django.dispatch import receiver
from django.utils.module_loading import import_string

from ..conf import keyval_settings
from ..exceptions import InvalidOperationsError
from .base import BaseOperations

__all__ = ["BaseOperations", "operations_class", "operations_for", "vendor_operations_class"]

_operations: dict[tuple[str, str, type[BaseOperations]], BaseOperations] = {}
# The same, by connection object: the lookup every operation makes.
_by_connection: weakref.WeakKeyDictionary[BaseDatabaseWrapper, BaseOperations] = (
    weakref.WeakKeyDictionary()
)


def vendor_operations_class(connection: BaseDatabaseWrapper) -> type[BaseOperations]:
    """Return the operations class for ``connection``'s vendor, or the portable one."""
    if connection.vendor == "sqlite":
        from .sqlite import SQLiteOperations

        return SQLiteOperations
    if connection.vendor == "postgresql":
        from .postgresql import PostgreSQLOperations

        return PostgreSQLOperations
    if connection.vendor == "mysql":
        from .mysql import MariaDBOperations, MySQLOperations

        mariadb = getattr(connection, "mysql_is_mariadb", False)
        return MariaDBOperations if mariadb else MySQLOperations
    from .portable import PortableOperations

    return PortableOperations


def operations_class(connection: BaseDatabaseWrapper) -> type[BaseOperations]:
    """Return the operations class for ``connection``.

    ``KEYVAL_OPERATIONS`` (a dict from database alias to the dotted path of
    a class) names it for an alias; any other alias gets its vendor's class,
    or :class:`~django_keyval.backends.portable.PortableOperations`. Raises
    :class:`~django_keyval.exceptions.InvalidOperationsError` for a path that
    does not name a subclass of :class:`~django_keyval.backends.base.BaseOperations`.
    """
    configured = keyval_settings.OPERATIONS
    if not isinstance(configured, dict):
        raise InvalidOperationsError(
            f"KEYVAL_OPERATIONS must be a dict from database alias to the dotted path of an "
            f"operations class, not {type(configured).__name__}"
        )
    path = configured.get(connection.alias)
    if path is None:
        return vendor_operations_class(connection)
    try:
        found = import_string(path)
    except (ImportError, TypeError, ValueError) as error:
        raise InvalidOperationsError(
            f"KEYVAL_OPERATIONS[{connection.alias!r}] is {path!r}, which cannot be imported: "
            f"{error}"
        ) from error
    if not (isinstance(found, type) and issubclass(found, BaseOperations)):
        raise InvalidOperationsError(
            f"KEYVAL_OPERATIONS[{connection.alias!r}] is {path!r}, which is not a subclass of "
            "django_keyval.backends.base.BaseOperations"
        )
    return found


def operations_for(connection: BaseDatabaseWrapper) -> BaseOperations:
    """Return the operations for ``connection`` (built once per alias and class)."""
    try:
        return _by_connection[connection]
    except KeyError:
        operations = _by_connection[connection] = _build_operations(connection)
        return operations
    except TypeError:  # django.db.connection, a proxy, cannot be a weak key
        return _build_operations(connection)


def _build_operations(connection: BaseDatabaseWrapper) -> BaseOperations:
    chosen = operations_class(connection)
    cache_key = (connection.alias, connection.vendor, chosen)
    try:
        return _operations[cache_key]
    except KeyError:
        operations = _operations[cache_key] = chosen(connection)
        return operations


@receiver(setting_changed)
def _forget_choices(setting: str, **kwargs: Any) -> None:
    # A connection may get another class (KEYVAL_OPERATIONS), or be another
    # database under the same alias (DATABASES).
    if setting in ("KEYVAL_OPERATIONS", "DATABASES"):
        _by_connection.clear()
