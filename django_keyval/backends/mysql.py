"""MariaDB: ``INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING`` (MariaDB 10.5+).

MariaDB evaluates ``ON DUPLICATE KEY UPDATE`` assignments left to right, each
seeing the columns already assigned (unless ``SIMULTANEOUS_ASSIGNMENT`` is
set). Every condition below therefore tests the old ``expires_at`` (and
serializer), and those columns are assigned last, so the statements mean the
same in both modes.

Large values go base64-encoded, decoded by the server with ``FROM_BASE64``:
the driver writes bytes into the statement as an escaped literal, and a NUL,
quote, backslash or newline takes two bytes there, so an 8 MiB value could
need a 16 MiB statement, over the default ``max_allowed_packet``. Base64
takes 4 bytes for every 3, whatever they hold.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

from ..serializers import INTEGER_FORMAT
from .base import NAMED_ROW_MARKS, ROW_MARKS, BaseOperations, StoredRow, row_params

# MariaDB's error for an out-of-range BIGINT result.
ER_DATA_OUT_OF_RANGE = 1690
# A deadlock victim, and a lock wait given up: InnoDB rolled the statement back.
ER_LOCK_DEADLOCK = 1213
ER_LOCK_WAIT_TIMEOUT = 1205

#: Values longer than this (in bytes) are sent base64-encoded.
BASE64_ABOVE = 1024 * 1024
#: The placeholders of a row whose value is sent base64-encoded.
BASE64_ROW_MARKS = ROW_MARKS.replace("%s, %s, %s", "%s, %s, FROM_BASE64(%s)", 1)
NAMED_BASE64_ROW_MARKS = NAMED_ROW_MARKS.replace("%(value)s", "FROM_BASE64(%(value)s)", 1)


class MariaDBOperations(BaseOperations):
    """Upserts with ``ON DUPLICATE KEY UPDATE``; the rest is shared."""

    def is_transient(self, error: DatabaseError) -> bool:
        """Deadlock victims and abandoned lock waits may be run again."""
        return bool(error.args) and error.args[0] in (ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT)

    def build_vendor_statements(self) -> None:
        """Build the upserts with ``ON DUPLICATE KEY UPDATE`` and the cull with ``LIMIT``."""
        t, version, expires = self.table, self.version, self.expires
        insert = f"INSERT INTO {t} ({self.columns}) VALUES {NAMED_ROW_MARKS}"
        expired = f"({expires} IS NOT NULL AND {expires} <= %(now)s)"
        replace = ", ".join(
            f"{column} = VALUES({column})"
            for column in (self.value, self.integer, self.format, self.updated, expires)
        )
        set_clause = (
            f" ON DUPLICATE KEY UPDATE {version} = IF({expired}, 1, {version} + 1), {replace}"
        )
        self.sql_set = f"{insert}{set_clause} RETURNING {version}"
        # A live row is left exactly as it was, version included (a version
        # changes only with the value or the expiry). RETURNING then tells
        # by updated_at: a stored row has this statement's time, and a row
        # left alone is made to differ from it, should it have been written
        # in the same microsecond, by moving its updated_at back by one.
        keep_unless_expired = ", ".join(
            f"{column} = IF({expired}, VALUES({column}), {column})"
            for column in (self.value, self.integer, self.format)
        )
        updated = self.updated
        self.sql_add = (
            f"{insert} ON DUPLICATE KEY UPDATE {version} = IF({expired}, 1, {version}), "
            f"{keep_unless_expired}, {updated} = IF({expired}, VALUES({updated}), "
            f"IF({updated} = VALUES({updated}), {updated} - INTERVAL 1 MICROSECOND, {updated})), "
            f"{expires} = IF({expired}, VALUES({expires}), {expires}) "
            f"RETURNING {updated} = %(updated_at)s"
        )
        self.sql_set_base64 = self.sql_set.replace(NAMED_ROW_MARKS, NAMED_BASE64_ROW_MARKS, 1)
        self.sql_add_base64 = self.sql_add.replace(NAMED_ROW_MARKS, NAMED_BASE64_ROW_MARKS, 1)
        self.sql_set_many_prefix = f"INSERT INTO {t} ({self.columns}) VALUES "
        # Positional, after the rows' own placeholders.
        self.sql_set_many_suffix = (
            f" ON DUPLICATE KEY UPDATE {version} = IF(({expires} IS NOT NULL "
            f"AND {expires} <= %s), 1, {version} + 1), {replace}"
        )
        int_format = f"'{INTEGER_FORMAT}'"
        is_int = f"{self.format} = {int_format}"
        self.sql_incr = (
            f"INSERT INTO {t} ({self.columns}) VALUES "
            f"(%(store)s, %(key)s, NULL, %(delta)s, {int_format}, NULL, %(now)s, 1) "
            f"ON DUPLICATE KEY UPDATE "
            f"{self.integer} = IF({expired}, VALUES({self.integer}), "
            f"IF({is_int}, {self.integer} + VALUES({self.integer}), {self.integer})), "
            f"{version} = IF({expired}, 1, IF({is_int}, {version} + 1, {version})), "
            f"{self.updated} = IF({expired} OR {is_int}, VALUES({self.updated}), {self.updated}), "
            f"{self.value} = IF({expired}, NULL, {self.value}), "
            f"{self.format} = IF({expired}, {int_format}, {self.format}), "
            f"{expires} = IF({expired}, NULL, {expires}) "
            f"RETURNING {self.integer}, {self.format}"
        )
        self.sql_cull = f"DELETE FROM {t} WHERE {expires} <= %s LIMIT %s"
        # Given the choice, MariaDB walks a page of keys by looking up the
        # store alone in the (store, key) index and filtering the keys, which
        # reads every key before the page: iterating a store of a million
        # pairs took 45 s. The hint makes it a range scan of (store, key).
        self.page_source = f"{t} FORCE INDEX ({self.key_index})"

    def build_bounded_store_statements(self) -> None:
        """MariaDB refuses ``LIMIT`` in an ``IN`` subquery; a single-table ``DELETE`` takes it."""
        super().build_bounded_store_statements()
        self.sql_delete_soonest_expiring = (
            f"DELETE FROM {self.table} WHERE {self.store} = %(store)s "
            f"AND {self.updated} < %(spare_since)s ORDER BY {self.trim_order} LIMIT %(count)s"
        )
        self.sql_incr_existing_select = (
            f"SELECT {self.integer} FROM {self.table} WHERE {self.store} = %(store)s "
            f"AND {self.key} = %(key)s"
        )

    def incr_existing(
        self, connection: BaseDatabaseWrapper, store: str, key: str, delta: int, now: Any
    ) -> int | None:
        """MariaDB has no ``UPDATE ... RETURNING``: update, then read the row it holds locked.

        Both run in one transaction, so no other writer can change the value
        between them.
        """
        params = self.incr_params(store, key, delta, now)

        def update_then_read() -> int | None:
            with connection.cursor() as cursor:
                self.execute(cursor, self.sql_incr_existing_update, params)
                if cursor.rowcount != 1:
                    return None
                self.execute(cursor, self.sql_incr_existing_select, params)
                return int(cursor.fetchone()[0])

        return self.in_transaction(connection, update_then_read)

    def wire_row(self, row: StoredRow) -> tuple[str, Sequence[Any]]:
        """Send a value over :data:`BASE64_ABOVE` bytes base64-encoded."""
        if row.value is None or len(row.value) <= BASE64_ABOVE:
            return ROW_MARKS, row
        return BASE64_ROW_MARKS, row._replace(value=base64.b64encode(row.value).decode("ascii"))

    def upsert(
        self, connection: BaseDatabaseWrapper, sql: str, sql_base64: str, row: StoredRow
    ) -> Any:
        """Run ``sql`` for ``row`` (``sql_base64`` for a long value); return the returned row."""
        params = row_params(row, now=row.updated_at)
        if row.value is not None and len(row.value) > BASE64_ABOVE:
            sql = sql_base64
            params["value"] = base64.b64encode(row.value).decode("ascii")
        with connection.cursor() as cursor:
            self.execute(cursor, sql, params)
            return cursor.fetchone()

    def set(self, connection: BaseDatabaseWrapper, row: StoredRow) -> bool:
        """Insert or overwrite a pair; return whether it was new (or had expired)."""
        return bool(self.upsert(connection, self.sql_set, self.sql_set_base64, row)[0] == 1)

    def add(self, connection: BaseDatabaseWrapper, row: StoredRow) -> bool:
        """Insert a pair unless a live one exists; return whether it was stored."""
        return bool(self.upsert(connection, self.sql_add, self.sql_add_base64, row)[0] == 1)

    def incr(
        self, connection: BaseDatabaseWrapper, store: str, key: str, delta: int, now: Any
    ) -> int | None:
        """Add ``delta`` to an integer pair; ``None`` if the value is not an integer."""
        params = {"store": store, "key": key, "delta": delta, "now": now}
        with connection.cursor() as cursor:
            try:
                self.execute(cursor, self.sql_incr, params)
            except DatabaseError as error:
                # Only the statement is rolled back, so the connection (and an
                # enclosing transaction) stays usable.
                codes = {*error.args[:1], *getattr(error.__cause__, "args", ())[:1]}
                if ER_DATA_OUT_OF_RANGE in codes:
                    raise self.overflow_error(delta) from None
                raise
            integer, serializer = cursor.fetchone()
        return int(integer) if serializer == INTEGER_FORMAT else None

    # -- versions, compare-and-set and locks -------------------------------------

    def build_lock_acquire_statement(self) -> None:
        """Build :attr:`sql_acquire_lock` with ``ON DUPLICATE KEY UPDATE``, without ``RETURNING``.

        The owner is a fresh random token, so once ``value`` is assigned (it
        comes first), ``value = %(owner)s`` says whether the lock was taken:
        the later assignments test it too, because with left-to-right
        assignment the free-lock condition could change under them. With
        ``SIMULTANEOUS_ASSIGNMENT`` they see the old value, and the condition
        alone decides, as it should.

        The new version goes back through ``LAST_INSERT_ID(expr)``, which
        hands ``expr`` to the client (``cursor.lastrowid``). The affected-row
        count tells the three outcomes apart (Django connects with
        ``CLIENT.FOUND_ROWS``): 2 for a row taken over (the token is the new
        version), 1 for a row inserted (token 1) or left alone; the update
        sets ``LAST_INSERT_ID`` to 0 when it leaves the row, and an insert
        gives the new row's id, never 0.
        """
        t, version, value = self.table, self.version, self.value
        # (Not VALUES(value): once a column is assigned, VALUES() of it
        # returns the assigned value, so the owner is passed again.)
        taken = f"({self.lock_free()} OR {value} = %(owner)s)"
        assignments = [
            f"{value} = IF({self.lock_free()}, VALUES({value}), {value})",
            f"{version} = IF({taken}, LAST_INSERT_ID({version} + 1), "
            f"{version} + LAST_INSERT_ID(0))",
        ]
        for column in (self.updated, self.format, self.integer, self.expires):
            assignments.append(f"{column} = IF({taken}, VALUES({column}), {column})")
        self.sql_acquire_lock = (
            f"INSERT INTO {t} ({self.lock_columns()}) VALUES {self.lock_row_marks()} "
            f"ON DUPLICATE KEY UPDATE {', '.join(assignments)}"
        )
        # A large value goes base64-encoded, as in the upserts.
        self.sql_cas_base64 = self.sql_cas.replace("%(value)s", "FROM_BASE64(%(value)s)", 1)
        self.sql_cas_keep_expiry_base64 = self.sql_cas_keep_expiry.replace(
            "%(value)s", "FROM_BASE64(%(value)s)", 1
        )

    def acquire_lock(self, connection: BaseDatabaseWrapper, params: dict[str, Any]) -> int | None:
        """Take the lock row if it is free; return its new version, or ``None``."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_acquire_lock, params)
            if cursor.rowcount == 2:
                return int(cursor.lastrowid)
            return 1 if cursor.lastrowid else None

    def cas(
        self, connection: BaseDatabaseWrapper, row: StoredRow, version: int, keep_expiry: bool
    ) -> bool:
        """Send a value over :data:`BASE64_ABOVE` bytes base64-encoded."""
        if row.value is None or len(row.value) <= BASE64_ABOVE:
            return super().cas(connection, row, version, keep_expiry)
        sql = self.sql_cas_keep_expiry_base64 if keep_expiry else self.sql_cas_base64
        params = row_params(row, now=row.updated_at, version=version)
        params["value"] = base64.b64encode(row.value).decode("ascii")
        with connection.cursor() as cursor:
            self.execute(cursor, sql, params)
            return bool(cursor.rowcount == 1)
