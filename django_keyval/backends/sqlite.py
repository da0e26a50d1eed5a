"""SQLite: the shared ``ON CONFLICT`` statements (SQLite 3.35+ for ``RETURNING``)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

from .base import BaseOperations

_T = TypeVar("_T")

#: How long an operation outside a transaction keeps trying when SQLite
#: answers "database is locked", in seconds.
LOCKED_RETRY_SECONDS = 60.0


def _is_locked(error: OperationalError) -> bool:
    return "database is locked" in str(error)


class SQLiteOperations(BaseOperations):
    """SQLite runs the shared statements, and waits out a busy database.

    SQLite lets one writer in at a time. A statement that waits for the lock
    longer than the connection's ``timeout`` (5 seconds unless ``OPTIONS``
    say otherwise), which happens when many processes write at once on a
    slow disk, fails with "database is locked". Outside a transaction the
    failed statement did nothing, so it is run again, for up to
    :data:`LOCKED_RETRY_SECONDS`. Inside the caller's transaction a retry
    could not help (the transaction may hold a lock the other writer waits
    for), so the error is raised; ``"transaction_mode": "IMMEDIATE"`` in the
    database's ``OPTIONS`` avoids it.
    """

    def execute(self, cursor: Any, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run one statement, again while the database is locked (outside transactions)."""
        try:
            cursor.execute(sql, params)
        except OperationalError as error:
            # Only the failure path pays for the checks and the retry loop.
            if cursor.db.in_atomic_block or not _is_locked(error):
                raise
            self._retry_while_locked(lambda: cursor.execute(sql, params))

    def in_transaction(self, connection: BaseDatabaseWrapper, function: Callable[[], _T]) -> _T:
        """Run ``function`` in a transaction, again as a whole while the database is locked."""
        if connection.in_atomic_block:
            return super().in_transaction(connection, function)
        return self._retry_while_locked(
            lambda: super(SQLiteOperations, self).in_transaction(connection, function)
        )

    @staticmethod
    def _retry_while_locked(function: Callable[[], _T]) -> _T:
        deadline = time.monotonic() + LOCKED_RETRY_SECONDS
        while True:
            try:
                return function()
            except OperationalError as error:
                if not _is_locked(error) or time.monotonic() > deadline:
                    raise
            # The busy handler already waited; a short random pause keeps
            # several waiting processes from retrying in lockstep.
            time.sleep(random.uniform(0, 0.01))
