"""MySQL 8.0+ and MariaDB 10.5+: ``INSERT ... ON DUPLICATE KEY UPDATE``.

MySQL has no ``RETURNING``. Its upserts tell what they did through the
affected-row count and ``LAST_INSERT_ID(expr)``: Django's MySQL backend
connects with ``CLIENT.FOUND_ROWS``, so an upsert reports 1 for an insert
(or an update that changed nothing) and 2 for an update that changed the
row, and ``LAST_INSERT_ID(expr)`` evaluated in the update hands ``expr`` back
to the client (``cursor.lastrowid``) with the same statement. Where no
single statement can do it (``pop`` reads, then deletes), a transaction with
``SELECT ... FOR UPDATE`` does.

The server evaluates ``ON DUPLICATE KEY UPDATE`` assignments left to right,
each seeing the columns already assigned (unless MariaDB's
``SIMULTANEOUS_ASSIGNMENT`` is set). Every condition below therefore tests
the old ``expires_at`` (and serializer), and those columns are assigned
last, so the statements mean the same either way.

Large values go base64-encoded, decoded by the server with ``FROM_BASE64``:
the driver writes bytes into the statement as an escaped literal, and a NUL,
quote, backslash or newline takes two bytes there, so an 8 MiB value could
need a 16 MiB statement, over MariaDB's default ``max_allowed_packet``.
Base64 takes 4 bytes for every 3, whatever they hold.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

from ..clock import adapted_now
from ..rows import PoppedValue, StoredRow
from ..serializers import INTEGER_FORMAT
from .base import NAMED_ROW_MARKS, ROW_MARKS, BaseOperations, row_params

# The server's error for an out-of-range BIGINT result.
ER_DATA_OUT_OF_RANGE = 1690
# A deadlock victim, and a lock wait given up: InnoDB rolled the statement back.
ER_LOCK_DEADLOCK = 1213
ER_LOCK_WAIT_TIMEOUT = 1205

#: Values longer than this (in bytes) are sent base64-encoded.
BASE64_ABOVE = 1024 * 1024
#: The placeholders of a row whose value is sent base64-encoded.
BASE64_ROW_MARKS = ROW_MARKS.replace("%s, %s, %s", "%s, %s, FROM_BASE64(%s)", 1)
NAMED_BASE64_ROW_MARKS = NAMED_ROW_MARKS.replace("%(value)s", "FROM_BASE64(%(value)s)", 1)

#: ``LAST_INSERT_ID()`` is unsigned: a negative counter comes back as its
#: two's complement, which :func:`signed` undoes.
UNSIGNED_RANGE = 2**64


def signed(value: int) -> int:
    """Return the signed 64-bit integer whose two's complement is ``value``."""
    return value - UNSIGNED_RANGE if value >= UNSIGNED_RANGE // 2 else value


class MySQLOperations(BaseOperations):
    """MySQL 8.0+: one statement per operation but ``pop``, without ``RETURNING``.

    On MySQL 8.0.19 and later the upserts name the new row with a row alias
    (``AS new`` ... ``new.column``), as Django's own MySQL backend does for
    ``bulk_create(update_conflicts=True)``; before (and on MariaDB, which
    this class also runs on) with ``VALUES(column)``.
    """

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.row_alias = self.uses_row_alias(connection)
        super().__init__(connection)

    def read_expiry_sql(self, expires: str) -> str:
        """``expires_at`` as text: mysqlclient turns a ``DATETIME`` into a datetime in Python.

        That costs a few microseconds a row; the text (always with six
        digits of microseconds, ``DATETIME(6)``) compares with the current
        time adapted as Django adapts it for the column.
        """
        return f"CAST({expires} AS CHAR)"

    def is_read_live(self, connection: BaseDatabaseWrapper, expires: Any) -> bool:
        """Compare an expiry read as text with the current time, as text of the same form."""
        now = str(adapted_now(connection))
        if len(now) == len("2000-01-01 00:00:00"):  # str() of a time on a whole second
            now += ".000000"
        return bool(str(expires) > now)

    @staticmethod
    def uses_row_alias(connection: BaseDatabaseWrapper) -> bool:
        """Return whether the server takes a row alias (MySQL 8.0.19+, not MariaDB)."""
        if getattr(connection, "mysql_is_mariadb", True):
            return False
        return bool(connection.mysql_version >= (8, 0, 19))  # type: ignore[attr-defined]

    def new(self, column: str) -> str:
        """Return how an ``ON DUPLICATE KEY UPDATE`` assignment names the inserted ``column``."""
        return f"new.{column}" if self.row_alias else f"VALUES({column})"

    def hand_back(self, value: str) -> str:
        """Return an assignment that hands ``value`` to the client and changes nothing.

        ``LAST_INSERT_ID(value)`` sets what ``cursor.lastrowid`` reads after
        the statement (as unsigned: see :func:`signed`); the ``id`` is assigned
        itself. Used first in an update list, it sees the row as it was.
        """
        return f"{self.id} = IF(LAST_INSERT_ID({value}) IS NULL, NULL, {self.id})"

    def is_transient(self, error: DatabaseError) -> bool:
        """Deadlock victims and abandoned lock waits may be run again."""
        return bool(error.args) and error.args[0] in (ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT)

    def build_vendor_statements(self) -> None:
        """Build the upserts with ``ON DUPLICATE KEY UPDATE`` and the cull with ``LIMIT``."""
        t, version, expires = self.table, self.version, self.expires
        alias = " AS new" if self.row_alias else ""
        update = f"{alias} ON DUPLICATE KEY UPDATE"
        insert = f"INSERT INTO {t} ({self.columns}) VALUES {NAMED_ROW_MARKS}{update}"
        expired = f"({expires} IS NOT NULL AND {expires} <= %(now)s)"
        # Assigned last: the conditions before test the old expiry.
        written = (self.value, self.integer, self.format, self.updated, expires)
        replace = ", ".join(f"{column} = {self.new(column)}" for column in written)
        # Every write adds one to the version (first_version is assigned before
        # it, so it sees the old one). Whether the row had expired (the pair
        # is new) goes back through LAST_INSERT_ID: 1 if so, else 0.
        first = self.first_version
        self.sql_set = (
            f"{insert} {self.hand_back(f'IF({expired}, 1, 0)')}, "
            f"{first} = IF({expired}, {version} + 1, {first}), {version} = {version} + 1, "
            f"{replace}"
        )
        # A live row is left exactly as it was, version included; the update
        # then sets LAST_INSERT_ID to 0, which tells it from an insert (both
        # count one affected row).
        keep_unless_expired = ", ".join(
            f"{column} = IF({expired}, {self.new(column)}, {column})" for column in written
        )
        self.sql_add = (
            f"{insert} {self.hand_back('0')}, "
            f"{first} = IF({expired}, {version} + 1, {first}), "
            f"{version} = IF({expired}, {version} + 1, {version}), {keep_unless_expired}"
        )
        self.sql_set_base64 = self.sql_set.replace(NAMED_ROW_MARKS, NAMED_BASE64_ROW_MARKS, 1)
        self.sql_add_base64 = self.sql_add.replace(NAMED_ROW_MARKS, NAMED_BASE64_ROW_MARKS, 1)
        self.sql_set_many_prefix = f"INSERT INTO {t} ({self.columns}) VALUES "
        # Positional, after the rows' own placeholders.
        self.sql_set_many_suffix = (
            f"{update} {first} = IF(({expires} IS NOT NULL AND {expires} <= %s), "
            f"{version} + 1, {first}), {version} = {version} + 1, {replace}"
        )
        int_format = f"'{INTEGER_FORMAT}'"
        is_int = f"{self.format} = {int_format}"
        integer, delta = self.integer, self.new(self.integer)
        # The first assignment sees the old row, whatever the assignment mode,
        # and hands the result back through LAST_INSERT_ID (0 when the value
        # is not an integer: then nothing changes and the statement counts one
        # row, like an insert, whose LAST_INSERT_ID is the new row's id).
        result = f"IF({expired}, {delta}, IF({is_int}, {integer} + {delta}, NULL))"
        self.sql_incr = (
            f"INSERT INTO {t} ({self.columns}) VALUES "
            f"(%(store)s, %(key)s, NULL, %(delta)s, {int_format}, NULL, %(now)s, 1, 1){update} "
            f"{self.hand_back(f'COALESCE({result}, 0)')}, "
            f"{integer} = IF({expired}, {delta}, IF({is_int}, {integer} + {delta}, {integer})), "
            f"{first} = IF({expired}, {version} + 1, {first}), "
            f"{version} = IF({expired} OR {is_int}, {version} + 1, {version}), "
            f"{self.updated} = IF({expired} OR {is_int}, {self.new(self.updated)}, "
            f"{self.updated}), "
            f"{self.value} = IF({expired}, NULL, {self.value}), "
            f"{self.format} = IF({expired}, {int_format}, {self.format}), "
            f"{expires} = IF({expired}, NULL, {expires})"
        )
        self.sql_cull = f"DELETE FROM {t} WHERE {expires} <= %s LIMIT %s"
        # No RETURNING: delete only a live row, so the count says whether
        # there was one (an expired row stays for cull).
        self.sql_delete = (
            f"DELETE FROM {t} WHERE {self.store} = %(store)s AND {self.key} = %(key)s "
            f"AND {self.named_live}"
        )
        self.sql_pop_select = (
            f"SELECT {self.id}, {version}, {self.value}, {integer}, {self.format}, {expires} "
            f"FROM {t} WHERE {self.store} = %s AND {self.key} = %s FOR UPDATE"
        )
        self.sql_pop_delete = f"DELETE FROM {t} WHERE {self.id} = %s AND {version} = %s"
        # Given the choice, the server walks a page of keys by looking up the
        # store alone in the (store, key) index and filtering the keys, which
        # reads every key before the page: iterating a store of a million
        # pairs took 45 s on MariaDB. The hint makes it a range scan of (store, key).
        self.page_source = f"{t} FORCE INDEX ({self.key_index})"

    def build_bounded_store_statements(self) -> None:
        """A single-table ``DELETE`` takes ``LIMIT``, which an ``IN`` subquery refuses."""
        super().build_bounded_store_statements()
        self.sql_delete_soonest_expiring = (
            f"DELETE FROM {self.table} WHERE {self.store} = %(store)s "
            f"AND {self.updated} < %(spare_since)s ORDER BY {self.trim_order} LIMIT %(count)s"
        )
        # The sum goes back through LAST_INSERT_ID, computed from the old row
        # by the first assignment.
        self.sql_incr_existing = self.sql_incr_existing_update.replace(
            " SET ", f" SET {self.hand_back(f'{self.integer} + %(delta)s')}, ", 1
        )

    def wire_row(self, row: StoredRow) -> tuple[str, Sequence[Any]]:
        """Send a value over :data:`BASE64_ABOVE` bytes base64-encoded."""
        if row.value is None or len(row.value) <= BASE64_ABOVE:
            return ROW_MARKS, row
        return BASE64_ROW_MARKS, row._replace(value=base64.b64encode(row.value).decode("ascii"))

    def upsert(
        self, connection: BaseDatabaseWrapper, sql: str, sql_base64: str, row: StoredRow
    ) -> tuple[int, int]:
        """Run ``sql`` for ``row`` (``sql_base64`` for a long value).

        Return the affected-row count and ``LAST_INSERT_ID``.
        """
        params = row_params(row, now=row.updated_at)
        if row.value is not None and len(row.value) > BASE64_ABOVE:
            sql = sql_base64
            params["value"] = base64.b64encode(row.value).decode("ascii")
        with connection.cursor() as cursor:
            self.execute(cursor, sql, params)
            return cursor.rowcount, cursor.lastrowid

    def set(self, connection: BaseDatabaseWrapper, row: StoredRow) -> bool:
        """Insert or overwrite a pair; return whether it was new (or had expired).

        One affected row is an insert; two an update, which hands back 1
        exactly when the row it replaced had expired.
        """
        affected, expired = self.upsert(connection, self.sql_set, self.sql_set_base64, row)
        return affected == 1 or expired == 1

    def add(self, connection: BaseDatabaseWrapper, row: StoredRow) -> bool:
        """Insert a pair unless a live one exists; return whether it was stored.

        Two affected rows replaced an expired row; one is an insert (with the
        new row's id) or a live row left alone (``LAST_INSERT_ID`` 0).
        """
        affected, last_id = self.upsert(connection, self.sql_add, self.sql_add_base64, row)
        return affected == 2 or last_id != 0

    def delete(self, connection: BaseDatabaseWrapper, store: str, key: str) -> bool:
        """Delete a live pair; return whether there was one."""
        params = {"store": store, "key": key, "now": adapted_now(connection)}
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_delete, params)
            return bool(cursor.rowcount > 0)

    def pop(self, connection: BaseDatabaseWrapper, store: str, key: str) -> PoppedValue | None:
        """Delete a pair; return its value and expiry if it was live, else ``None``.

        A locking read (which sees the latest version of the row, whatever
        the isolation level), then a ``DELETE`` of that row at that version:
        of several callers, only the one whose ``DELETE`` removes the row
        returns its value. A caller that finds the row changed reads again.
        """
        while True:
            with connection.cursor() as cursor:
                self.execute(cursor, self.sql_pop_select, (store, key))
                row = cursor.fetchone()
                if row is None:
                    return None
                self.execute(cursor, self.sql_pop_delete, row[:2])
                if cursor.rowcount != 1:
                    continue
            popped = PoppedValue._make(row[2:])
            if popped.expires_at is not None and not self.is_live(connection, popped.expires_at):
                return None
            return popped

    def incr(
        self, connection: BaseDatabaseWrapper, store: str, key: str, delta: int, now: Any
    ) -> int | None:
        """Add ``delta`` to an integer pair; ``None`` if the value is not an integer.

        One affected row is an insert (the new value is ``delta``) or a value
        that is not an integer, left alone (``LAST_INSERT_ID`` 0); two are an
        update, whose result ``LAST_INSERT_ID`` holds.
        """
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
            affected, last_id = cursor.rowcount, cursor.lastrowid
        if affected == 2:
            return signed(last_id)
        return delta if last_id != 0 else None

    def incr_existing(
        self, connection: BaseDatabaseWrapper, store: str, key: str, delta: int, now: Any
    ) -> int | None:
        """Add ``delta`` to a live integer pair in one ``UPDATE``; the sum comes back
        through ``LAST_INSERT_ID``."""
        params = self.incr_params(store, key, delta, now)
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_incr_existing, params)
            if cursor.rowcount != 1:
                return None
            return signed(cursor.lastrowid)

    # -- versions, compare-and-set and locks -------------------------------------

    def build_lock_acquire_statement(self) -> None:
        """Build :attr:`sql_acquire_lock` with ``ON DUPLICATE KEY UPDATE``, without ``RETURNING``.

        The owner is a fresh random token, so once ``owner`` is assigned (it
        comes first), ``owner = %(owner)s`` says whether the lock was taken:
        the later assignments test it too, because with left-to-right
        assignment the free-lock condition could change under them. With
        ``SIMULTANEOUS_ASSIGNMENT`` they see the old owner, and the condition
        alone decides, as it should.

        The new token goes back through ``LAST_INSERT_ID(expr)``, which
        hands ``expr`` to the client (``cursor.lastrowid``). The affected-row
        count tells the three outcomes apart (Django connects with
        ``CLIENT.FOUND_ROWS``): 2 for a lock taken over (the token is the new
        one), 1 for a row inserted (token 1) or left alone; the update sets
        ``LAST_INSERT_ID`` to 0 when it leaves the row, and an insert gives
        the new row's id, never 0.
        """
        owner, token = self.lock_owner, self.lock_token
        free = self.lock_free()
        taken = f"({free} OR {owner} = %(owner)s)"
        assignments = [
            f"{owner} = IF({free}, VALUES({owner}), {owner})",
            f"{token} = IF({taken}, LAST_INSERT_ID({token} + 1), {token} + LAST_INSERT_ID(0))",
        ]
        # The end of the lease is assigned last: the conditions before test the old one.
        for column in (self.lock_updated, self.lock_lease_end):
            assignments.append(f"{column} = IF({taken}, VALUES({column}), {column})")
        self.sql_acquire_lock = (
            f"INSERT INTO {self.lock_table} ({self.lock_columns}) VALUES {self.lock_row_marks} "
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
        params = self.cas_params(row, version)
        params["value"] = base64.b64encode(row.value).decode("ascii")
        with connection.cursor() as cursor:
            self.execute(cursor, sql, params)
            return bool(cursor.rowcount == 1)


class MariaDBOperations(MySQLOperations):
    """MariaDB 10.5+: the MySQL statements, and ``DELETE ... RETURNING`` for ``delete`` and ``pop``.

    ``RETURNING`` lets ``pop`` be one statement, and ``delete`` remove an
    expired row too while it tells whether the row was live.
    """

    def build_vendor_statements(self) -> None:
        """Keep the shared ``DELETE ... RETURNING`` statements."""
        sql_delete, sql_pop = self.sql_delete, self.sql_pop
        super().build_vendor_statements()
        self.sql_delete, self.sql_pop = sql_delete, sql_pop

    delete = BaseOperations.delete
    pop = BaseOperations.pop
