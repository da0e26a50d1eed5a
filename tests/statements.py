"""Keep a forced operations class honest: check every statement it sends.

With ``KEYVAL_TEST_OPERATIONS=mysql`` the MySQL class runs against MariaDB,
which accepts statements MySQL 8.0 refuses; with ``portable`` the portable
class runs on databases that have upserts it must not use. While the suite
runs so, every statement sent from ``django_keyval.backends`` goes through
:func:`check_statement` (installed with ``connection.execute_wrapper`` on
every connection, the children of the concurrency tests included), and one
that uses what the class must not raises ``AssertionError`` in the test that
sent it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.utils.module_loading import import_string

from .helpers import forced_operations

#: What each forced class must never send, and why.
FORBIDDEN: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "mysql": [
        (re.compile(r"\bRETURNING\b", re.I), "RETURNING, which MySQL lacks"),
        (re.compile(r"\bON\s+CONFLICT\b", re.I), "ON CONFLICT, which MySQL lacks"),
        (re.compile(r"\b(NEXTVAL|LASTVAL|SETVAL)\s*\(", re.I), "a MariaDB sequence function"),
        (re.compile(r"\bSIMULTANEOUS_ASSIGNMENT\b", re.I), "a MariaDB-only SQL mode"),
        (re.compile(r"\bCREATE\s+OR\s+REPLACE\s+TABLE\b", re.I), "MariaDB's CREATE OR REPLACE"),
        (re.compile(r"\bIN\s*\(\s*SELECT\b[^)]*\bLIMIT\b", re.I), "LIMIT in an IN subquery"),
    ],
    "portable": [
        (re.compile(r"\bRETURNING\b", re.I), "RETURNING"),
        (re.compile(r"\bON\s+CONFLICT\b", re.I), "a vendor upsert (ON CONFLICT)"),
        (re.compile(r"\bON\s+DUPLICATE\s+KEY\b", re.I), "a vendor upsert (ON DUPLICATE KEY)"),
        (re.compile(r"\bMERGE\s+INTO\b", re.I), "a vendor upsert (MERGE)"),
        (re.compile(r"\bREPLACE\s+INTO\b", re.I), "a vendor upsert (REPLACE INTO)"),
        (re.compile(r"\bFORCE\s+INDEX\b", re.I), "a MySQL index hint"),
        (re.compile(r"\bLIMIT\b[^()]*\)", re.I), "LIMIT in a subquery"),
    ],
}

_BACKENDS = os.path.join("django_keyval", "backends") + os.sep


#: The class each value of ``KEYVAL_TEST_OPERATIONS`` forces.
FORCED_CLASSES = {
    "mysql": "django_keyval.backends.mysql.MySQLOperations",
    "portable": "django_keyval.backends.portable.PortableOperations",
}


def sent_by_the_forced_class() -> bool:
    """Return whether the statement being run comes from an instance of the forced class.

    Tests that choose another class (the vendor's, to compare) send theirs
    unchecked.
    """
    forced = import_string(FORCED_CLASSES[forced_operations()])
    frame: Any = sys._getframe(2)
    while frame is not None:
        if _BACKENDS in frame.f_code.co_filename:
            return type(frame.f_locals.get("self")) is forced
        frame = frame.f_back
    return False


def check_statement(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    """Refuse a statement the forced class must not send (an execute wrapper)."""
    forbidden = FORBIDDEN.get(forced_operations(), [])
    if forbidden and sent_by_the_forced_class():
        for pattern, what in forbidden:
            if pattern.search(sql):
                raise AssertionError(
                    f"the {forced_operations()} operations class sent {what}: {sql}"
                )
    return execute(sql, params, many, context)


def watch(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Install :func:`check_statement` on a new connection (once)."""
    if check_statement not in connection.execute_wrappers:
        connection.execute_wrappers.append(check_statement)


def install() -> None:
    """Check the statements of every connection opened from now on."""
    connection_created.connect(watch, dispatch_uid="tests.statements.watch")
