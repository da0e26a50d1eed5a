"""Database functions that behave alike on every database.

:class:`UnicodeLower` is ``LOWER()`` for every letter, not only ASCII ones:
SQLite's built-in ``LOWER()`` folds ASCII letters alone (unless SQLite was
built with ICU), so a search for ``"KÉY"`` would miss ``"kéy"`` there while
MariaDB finds it. On SQLite it calls Python's ``str.lower``, registered on
each connection as ``keyval_lower`` by :func:`register_sqlite_functions`.
PostgreSQL's ``LOWER()`` follows the collation of its argument, and keys and
stores are in the ``"C"`` collation (to compare by code point), which folds
ASCII letters alone too; there the text is lowered in the database's default
collation instead (``C.UTF-8`` or a language's ``UTF-8`` locale fold every
letter; a database created with the plain ``C`` locale still folds ASCII only).
"""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models import CharField, Func

__all__ = ["SQLITE_LOWER", "UnicodeLower", "connect_sqlite_functions"]

#: The name :class:`UnicodeLower` has on SQLite connections.
SQLITE_LOWER = "keyval_lower"


class UnicodeLower(Func):
    """The text in lower case, every letter of it, on every database."""

    function = "LOWER"
    output_field = CharField()

    def as_sqlite(self, compiler: Any, connection: BaseDatabaseWrapper, **extra: Any) -> Any:
        """Call the Python function registered on the connection."""
        return self.as_sql(compiler, connection, function=SQLITE_LOWER, **extra)

    def as_postgresql(self, compiler: Any, connection: BaseDatabaseWrapper, **extra: Any) -> Any:
        """Lower the text in the database's default collation, not the column's ``"C"``."""
        template = '%(function)s(%(expressions)s COLLATE "default")'
        return self.as_sql(compiler, connection, template=template, **extra)


def _lower(text: str | None) -> str | None:
    return None if text is None else text.lower()


def register_sqlite_functions(connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Add ``keyval_lower`` to a new SQLite connection (a ``connection_created`` receiver)."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_LOWER, 1, _lower, deterministic=True)


def connect_sqlite_functions() -> None:
    """Register the functions on every SQLite connection, open or yet to be opened."""
    connection_created.connect(register_sqlite_functions, dispatch_uid=SQLITE_LOWER)
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            register_sqlite_functions(connection)
