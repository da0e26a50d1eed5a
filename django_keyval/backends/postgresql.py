"""PostgreSQL: the shared ``ON CONFLICT`` statements."""

from __future__ import annotations

from django.db import DatabaseError

from .base import BaseOperations


class PostgreSQLOperations(BaseOperations):
    """PostgreSQL runs the shared statements as they are.

    ``INSERT ... ON CONFLICT DO UPDATE`` locks the conflicting row and
    evaluates ``SET`` and ``WHERE`` against its latest committed version, so
    the version reset that tells a new pair from an overwritten one is exact
    under concurrent writers in ``READ COMMITTED``.
    """

    def is_transient(self, error: DatabaseError) -> bool:
        """Deadlock victims (40P01) and serialization failures (40001) were rolled back."""
        return getattr(error.__cause__, "sqlstate", None) in ("40P01", "40001")
