"""SQLite: the shared ``ON CONFLICT`` statements (SQLite 3.35+ for ``RETURNING``)."""

from __future__ import annotations

from django.db import DatabaseError, OperationalError

from .base import BaseOperations


class SQLiteOperations(BaseOperations):
    """SQLite runs the shared statements, and waits out a busy database.

    SQLite lets one writer in at a time. A statement that waits for the lock
    longer than the connection's ``timeout`` (5 seconds unless ``OPTIONS``
    say otherwise), which happens when many processes write at once on a
    slow disk, fails with "database is locked". Outside a transaction the
    failed statement did nothing, so it is run again, for up to
    :attr:`~django_keyval.backends.base.BaseOperations.retry_seconds`. Inside
    the caller's transaction a retry could not help (the transaction may
    hold a lock the other writer waits for), so the error is raised;
    ``"transaction_mode": "IMMEDIATE"`` in the database's ``OPTIONS``
    avoids it.
    """

    def is_transient(self, error: DatabaseError) -> bool:
        """A statement refused with "database is locked" did nothing."""
        return isinstance(error, OperationalError) and "database is locked" in str(error)
