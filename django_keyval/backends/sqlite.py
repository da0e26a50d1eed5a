"""SQLite: the shared ``ON CONFLICT`` statements (SQLite 3.35+ for ``RETURNING``)."""

from __future__ import annotations

from .base import BaseOperations


class SQLiteOperations(BaseOperations):
    """SQLite runs the shared statements as they are.

    Each operation is one statement, and SQLite serializes writers, so a
    statement waits for the lock (``timeout``, 5 seconds by default) instead
    of failing with "database is locked" as a read-then-write transaction can.
    """
