"""PostgreSQL: the shared ``ON CONFLICT`` statements."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

from .. import clock
from .base import BaseOperations


class PostgreSQLOperations(BaseOperations):
    """PostgreSQL runs the shared statements as they are.

    ``INSERT ... ON CONFLICT DO UPDATE`` locks the conflicting row and
    evaluates ``SET`` and ``WHERE`` against its latest committed version, so
    the version reset that tells a new pair from an overwritten one is exact
    under concurrent writers in ``READ COMMITTED``.

    Reads that only judge an expiry (``get``, ``exists``, ``delete``) fetch
    it as a UTC ``timestamp``: Django loads ``timestamptz`` values through a
    loader written in Python, which cost about 12 µs a row here, where
    psycopg's own loader for ``timestamp`` costs next to nothing.
    """

    def read_expiry_sql(self, expires: str) -> str:
        """``expires_at`` as the UTC time of day without a zone (``AT TIME ZONE 'UTC'``)."""
        return f"({expires} AT TIME ZONE 'UTC')"

    def is_read_live(self, connection: BaseDatabaseWrapper, expires: Any) -> bool:
        """Compare a naive UTC expiry with the current time in UTC."""
        now = clock.now()
        if now.tzinfo is not datetime.timezone.utc:
            # USE_TZ = False gives the local time (Django sets the process's
            # zone to TIME_ZONE, which is also the session's).
            now = now.astimezone(datetime.timezone.utc)
        return bool(expires > now.replace(tzinfo=None))

    def is_transient(self, error: DatabaseError) -> bool:
        """Deadlock victims (40P01) and serialization failures (40001) were rolled back."""
        return getattr(error.__cause__, "sqlstate", None) in ("40P01", "40001")
