"""PostgreSQL: the shared ``ON CONFLICT`` statements."""

from __future__ import annotations

from .base import BaseOperations


class PostgreSQLOperations(BaseOperations):
    """PostgreSQL runs the shared statements as they are.

    ``INSERT ... ON CONFLICT DO UPDATE`` locks the conflicting row and
    evaluates ``SET`` and ``WHERE`` against its latest committed version, so
    the version reset that tells a new pair from an overwritten one is exact
    under concurrent writers in ``READ COMMITTED``.
    """
