"""The SQL each database needs, one module per vendor.

Every single-key operation is one statement, so that concurrent callers can
never interleave between a read and a write in Python.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

from ..exceptions import UnsupportedDatabaseError
from .base import BaseOperations

__all__ = ["BaseOperations", "operations_for", "unsupported_reason"]

_operations: dict[tuple[str, str], BaseOperations] = {}


def unsupported_reason(connection: BaseDatabaseWrapper) -> str | None:
    """Return why ``connection`` cannot hold a store, or ``None`` if it can."""
    if connection.vendor in ("sqlite", "postgresql"):
        return None
    if connection.vendor == "mysql":
        if not connection.mysql_is_mariadb:  # type: ignore[attr-defined]
            return (
                "MySQL lacks INSERT ... RETURNING, which django-keyval needs to report exactly "
                "whether a key was new; use MariaDB 10.5 or later"
            )
        return None
    return f"the {connection.display_name} database backend is not supported"


def operations_for(connection: BaseDatabaseWrapper) -> BaseOperations:
    """Return the operations for ``connection``'s vendor (built once per alias)."""
    cache_key = (connection.alias, connection.vendor)
    try:
        return _operations[cache_key]
    except KeyError:
        pass
    reason = unsupported_reason(connection)
    if reason:
        raise UnsupportedDatabaseError(f"database {connection.alias!r}: {reason}")
    if connection.vendor == "mysql":
        from .mysql import MariaDBOperations as operations_class
    elif connection.vendor == "postgresql":
        from .postgresql import PostgreSQLOperations as operations_class  # type: ignore[assignment]
    else:
        from .sqlite import SQLiteOperations as operations_class  # type: ignore[assignment]
    operations = _operations[cache_key] = operations_class(connection)
    return operations
