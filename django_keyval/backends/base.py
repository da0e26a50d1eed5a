"""Statements shared by every database, and the ``ON CONFLICT`` upserts of SQLite and PostgreSQL."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from ..encoding import INT64_MAX, INT64_MIN
from ..exceptions import CounterOverflowError

_T = TypeVar("_T")

#: Value bytes per multi-row INSERT, at most (one larger value goes alone).
MAX_STATEMENT_VALUE_BYTES = 4 * 1024 * 1024

#: Placeholders of one row in the upserts' ``VALUES`` (``version`` starts at 1).
ROW_MARKS = "(%s, %s, %s, %s, %s, 1, %s, %s)"

#: A row as the store decodes it: (key, value bytes, integer value, serializer name).
Row = tuple[str, Any, Any, str]


class BaseOperations:
    """Build each statement once per database alias, then run it with parameters.

    Placeholders are ``%s`` on every backend (Django translates them for
    SQLite). ``now`` parameters are already adapted with
    ``connection.ops.adapt_datetimefield_value``.
    """

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        from ..models import KeyValPair

        quote = connection.ops.quote_name
        fields = {
            field.name: quote(str(field.column)) for field in KeyValPair._meta.concrete_fields
        }
        self.table = table = quote(KeyValPair._meta.db_table)
        #: The (store, key) unique index, which key-ordered pages walk.
        self.key_index = quote(
            next(
                constraint.name
                for constraint in KeyValPair._meta.constraints
                if getattr(constraint, "fields", None) == ("store", "key")
            )
        )
        #: The table as key-ordered pages name it (a backend may add an index hint).
        self.page_source = table
        self.id = fields["id"]
        self.store = store = fields["store"]
        self.key = key = fields["key"]
        self.value = value = fields["value"]
        self.integer = integer = fields["integer_value"]
        self.format = fmt = fields["serializer"]
        self.version = fields["version"]
        self.expires = expires = fields["expires_at"]
        self.updated = fields["updated_at"]
        self.columns = ", ".join(
            [store, key, value, integer, fmt, self.version, expires, self.updated]
        )
        live = f"({expires} IS NULL OR {expires} > %s)"
        self.live = live
        where_key = f"{store} = %s AND {key} = %s"

        # Reads fetch the expiry and test it in Python: most pairs have none,
        # and those then cost no clock reading or datetime adaptation at all.
        self.sql_get = f"SELECT {value}, {integer}, {fmt}, {expires} FROM {table} WHERE {where_key}"
        self.sql_exists = f"SELECT {expires} FROM {table} WHERE {where_key}"
        self.sql_expires_at = f"SELECT {expires} FROM {table} WHERE {where_key} AND {live}"
        # Deletes take expired rows too (they are garbage anyway) and report
        # whether the row was live, so they need no clock reading either.
        self.sql_delete = f"DELETE FROM {table} WHERE {where_key} RETURNING {expires}"
        self.sql_pop = (
            f"DELETE FROM {table} WHERE {where_key} RETURNING {value}, {integer}, {fmt}, {expires}"
        )
        self.sql_touch = (
            f"UPDATE {table} SET {expires} = %s, {self.updated} = %s WHERE {where_key} AND {live}"
        )
        self.sql_count = f"SELECT COUNT(*) FROM {table} WHERE {store} = %s AND {live}"
        self.sql_stores = f"SELECT DISTINCT {store} FROM {table} WHERE {live} ORDER BY {store}"
        self.sql_flush = f"DELETE FROM {table} WHERE {store} = %s"
        self.sql_flush_all = f"DELETE FROM {table}"
        self.build_vendor_statements()
        self.build_bounded_store_statements()
        features = connection.features
        # Rows per multi-row statement: as many as the parameter limit allows.
        self.max_params = getattr(features, "max_query_params", None) or 10000

    # -- running statements ------------------------------------------------

    #: How long an operation outside a transaction keeps retrying a transient
    #: error (a deadlock, a busy SQLite file), in seconds.
    retry_seconds = 60.0

    def is_transient(self, error: DatabaseError) -> bool:
        """Return whether ``error`` undid the failed statement or transaction entirely.

        Such an error (a deadlock victim, a lock wait given up) left nothing
        behind, so the statement may simply be run again. Backends say which.
        """
        return False

    def execute(
        self, cursor: Any, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> None:
        """Run one statement; outside a transaction, again after a transient error."""
        try:
            cursor.execute(sql, params)
        except DatabaseError as error:
            # Only the failure path pays for the checks and the retry loop.
            # Inside the caller's transaction a retry could not help (the
            # transaction may hold what the other side waits for): raise.
            if cursor.db.in_atomic_block or not self.is_transient(error):
                raise
            self.retrying(lambda: cursor.execute(sql, params))

    def in_transaction(self, connection: BaseDatabaseWrapper, function: Callable[[], _T]) -> _T:
        """Call ``function`` in ``transaction.atomic``; the whole again after a transient error."""

        def run() -> _T:
            with transaction.atomic(using=connection.alias):
                return function()

        if connection.in_atomic_block:
            return run()
        return self.retrying(run)

    def retrying(self, function: Callable[[], _T]) -> _T:
        """Call ``function`` until it ends without a transient error, or time runs out."""
        deadline = time.monotonic() + self.retry_seconds
        while True:
            try:
                return function()
            except DatabaseError as error:
                if not self.is_transient(error) or time.monotonic() > deadline:
                    raise
            # A short random pause keeps the processes that collided from
            # colliding again in lockstep.
            time.sleep(random.uniform(0, 0.01))

    # -- vendor statements -------------------------------------------------

    def build_vendor_statements(self) -> None:
        """Build the upserts (here with ``INSERT ... ON CONFLICT``) and the cull."""
        t, k, s = self.table, self.key, self.store
        conflict = f"INSERT INTO {t} ({self.columns}) VALUES {ROW_MARKS} ON CONFLICT ({s}, {k})"
        expired = f"({t}.{self.expires} IS NOT NULL AND {t}.{self.expires} <= %s)"
        replace = ", ".join(
            f"{column} = excluded.{column}"
            for column in (self.value, self.integer, self.format, self.expires, self.updated)
        )
        # A pair counts as new when no row existed or the row had expired: then
        # version restarts at 1, which RETURNING reports in the same statement.
        self.sql_set = (
            f"{conflict} DO UPDATE SET {self.version} = CASE WHEN {expired} THEN 1 "
            f"ELSE {t}.{self.version} + 1 END, {replace} RETURNING {self.version}"
        )
        self.sql_add = f"{conflict} DO UPDATE SET {self.version} = 1, {replace} WHERE {expired}"
        self.sql_set_many_prefix = f"INSERT INTO {t} ({self.columns}) VALUES "
        self.sql_set_many_suffix = (
            f" ON CONFLICT ({s}, {k}) DO UPDATE SET {self.version} = CASE WHEN {expired} "
            f"THEN 1 ELSE {t}.{self.version} + 1 END, {replace}"
        )
        i = f"{t}.{self.integer}"
        self.sql_incr = (
            f"INSERT INTO {t} ({self.columns}) VALUES (%s, %s, NULL, %s, 'int', 1, NULL, %s) "
            f"ON CONFLICT ({s}, {k}) DO UPDATE SET "
            f"{self.integer} = CASE WHEN {expired} THEN excluded.{self.integer} "
            f"ELSE {i} + excluded.{self.integer} END, "
            f"{self.version} = CASE WHEN {expired} THEN 1 ELSE {t}.{self.version} + 1 END, "
            f"{self.expires} = CASE WHEN {expired} THEN NULL ELSE {t}.{self.expires} END, "
            f"{self.value} = NULL, {self.format} = excluded.{self.format}, "
            f"{self.updated} = excluded.{self.updated} "
            # The bounds keep the sum inside 64 bits: an overflow would raise a
            # database error (PostgreSQL) or silently turn into a float (SQLite).
            f"WHERE {expired} OR ({t}.{self.format} = 'int' AND {i} BETWEEN %s AND %s) "
            f"RETURNING {self.integer}"
        )
        self.sql_cull = (
            f"DELETE FROM {t} WHERE {self.id} IN "
            f"(SELECT {self.id} FROM {t} WHERE {self.expires} <= %s LIMIT %s)"
        )

    # -- single keys ---------------------------------------------------------

    @staticmethod
    def is_live(connection: BaseDatabaseWrapper, expires: Any) -> bool:
        """Return whether ``expires``, as the driver returned it, is in the future.

        It is compared with the current time adapted as Django adapts it for
        the column: an aware or naive datetime (PostgreSQL) or a string
        (SQLite, MariaDB), which orders like the time it stands for.
        """
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        if isinstance(now, str) and not isinstance(expires, str):
            expires = str(expires)
        return bool(expires > now)

    def get(self, connection: BaseDatabaseWrapper, store: str, key: str) -> Any:
        """Return ``(value, integer, serializer)`` of a live pair, or ``None``."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_get, (store, key))
            row = cursor.fetchone()
        if row is None or (row[3] is not None and not self.is_live(connection, row[3])):
            return None
        return row[:3]

    def exists(self, connection: BaseDatabaseWrapper, store: str, key: str) -> bool:
        """Return whether a live pair exists."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_exists, (store, key))
            row = cursor.fetchone()
        return row is not None and (row[0] is None or self.is_live(connection, row[0]))

    def expires_at(self, connection: BaseDatabaseWrapper, store: str, key: str, now: Any) -> Any:
        """Return ``(expires_at,)`` of a live pair as the driver returns it, or ``None``."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_expires_at, (store, key, now))
            return cursor.fetchone()

    def set(self, connection: BaseDatabaseWrapper, row: Sequence[Any], now: Any) -> bool:
        """Insert or overwrite a pair; return whether it was new (or had expired)."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_set, (*row, now))
            return bool(cursor.fetchone()[0] == 1)

    def add(self, connection: BaseDatabaseWrapper, row: Sequence[Any], now: Any) -> bool:
        """Insert a pair unless a live one exists; return whether it was stored."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_add, (*row, now))
            return bool(cursor.rowcount == 1)

    def delete(self, connection: BaseDatabaseWrapper, store: str, key: str) -> bool:
        """Delete a pair; return whether it was live."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_delete, (store, key))
            row = cursor.fetchone()
        return row is not None and (row[0] is None or self.is_live(connection, row[0]))

    def pop(self, connection: BaseDatabaseWrapper, store: str, key: str) -> Any:
        """Delete a pair; return ``(value, integer, serializer, expires_at)`` if it was live."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_pop, (store, key))
            row = cursor.fetchone()
        if row is None or (row[3] is not None and not self.is_live(connection, row[3])):
            return None
        return row

    def touch(
        self, connection: BaseDatabaseWrapper, store: str, key: str, expires: Any, now: Any
    ) -> bool:
        """Give a live pair a new expiry; return whether there was one."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_touch, (expires, now, store, key, now))
            return bool(cursor.rowcount > 0)

    def incr(
        self, connection: BaseDatabaseWrapper, store: str, key: str, delta: int, now: Any
    ) -> int | None:
        """Add ``delta`` to an integer pair (a missing pair counts as 0).

        Return the new value, or ``None`` when the stored value is not an
        integer or the result would overflow (nothing is changed then).
        """
        low = INT64_MIN - min(delta, 0)
        high = INT64_MAX - max(delta, 0)
        params = (store, key, delta, now, now, now, now, now, low, high)
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_incr, params)
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    # -- many keys -----------------------------------------------------------

    def batches(self, items: Sequence[Any], params_per_item: int, extra: int = 2) -> Iterable[Any]:
        """Split ``items`` so each statement stays under the parameter limit."""
        size = max(1, min(1000, (self.max_params - extra) // params_per_item))
        for start in range(0, len(items), size):
            yield items[start : start + size]

    def row_batches(self, rows: Sequence[Sequence[Any]]) -> Iterable[Sequence[Sequence[Any]]]:
        """Split rows for multi-row inserts by parameter count and by bytes.

        The byte bound keeps each statement well under MariaDB's default
        ``max_allowed_packet`` (16 MiB) even when values are near the 8 MiB limit.
        """
        for batch in self.batches(rows, 7, extra=1):
            start, size = 0, 0
            for index, row in enumerate(batch):
                row_size = len(row[2] or b"")
                if size and size + row_size > MAX_STATEMENT_VALUE_BYTES:
                    yield batch[start:index]
                    start, size = index, 0
                size += row_size
            yield batch[start:]

    def wire_row(self, row: Sequence[Any]) -> tuple[str, Sequence[Any]]:
        """Return the placeholders of ``row`` in a multi-row upsert, and its parameters.

        Here the row goes as it is; a backend may send some values another way.
        """
        return ROW_MARKS, row

    def get_many(
        self, connection: BaseDatabaseWrapper, store: str, keys: Sequence[str], now: Any
    ) -> list[Row]:
        """Return ``(key, value, integer, serializer)`` for each live pair among ``keys``."""
        rows: list[Row] = []
        with connection.cursor() as cursor:
            for batch in self.batches(keys, 1):
                marks = ", ".join(["%s"] * len(batch))
                self.execute(
                    cursor,
                    f"SELECT {self.key}, {self.value}, {self.integer}, {self.format} "
                    f"FROM {self.table} WHERE {self.store} = %s AND {self.key} IN ({marks}) "
                    f"AND {self.live}",
                    (store, *batch, now),
                )
                rows.extend(cursor.fetchall())
        return rows

    def set_many(
        self, connection: BaseDatabaseWrapper, rows: Sequence[Sequence[Any]], now: Any
    ) -> None:
        """Insert or overwrite many pairs, a few multi-row statements in all."""
        with connection.cursor() as cursor:
            for batch in self.row_batches(rows):
                marks: list[str] = []
                params: list[Any] = []
                for row in batch:
                    mark, wire = self.wire_row(row)
                    marks.append(mark)
                    params.extend(wire)
                self.execute(
                    cursor,
                    self.sql_set_many_prefix + ", ".join(marks) + self.sql_set_many_suffix,
                    (*params, *self.set_many_suffix_params(now)),
                )

    def set_many_suffix_params(self, now: Any) -> tuple[Any, ...]:
        """Parameters of the statement's tail after the ``VALUES`` rows."""
        return (now,)

    def delete_many(
        self, connection: BaseDatabaseWrapper, store: str, keys: Sequence[str], now: Any
    ) -> int:
        """Delete the live pairs among ``keys``; return how many there were."""
        deleted = 0
        with connection.cursor() as cursor:
            for batch in self.batches(keys, 1):
                marks = ", ".join(["%s"] * len(batch))
                self.execute(
                    cursor,
                    f"DELETE FROM {self.table} WHERE {self.store} = %s "
                    f"AND {self.key} IN ({marks}) AND {self.live}",
                    (store, *batch, now),
                )
                deleted += cursor.rowcount
        return deleted

    # -- whole stores ----------------------------------------------------------

    def count(self, connection: BaseDatabaseWrapper, store: str, now: Any) -> int:
        """Return the number of live pairs in ``store``."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_count, (store, now))
            return int(cursor.fetchone()[0])

    def stores(self, connection: BaseDatabaseWrapper, now: Any) -> list[str]:
        """Return the names of the stores that hold live pairs, sorted."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_stores, (now,))
            return [name for (name,) in cursor.fetchall()]

    def page(
        self,
        connection: BaseDatabaseWrapper,
        store: str,
        low: str,
        inclusive: bool,
        high: str | None,
        now: Any,
        with_values: bool,
        size: int,
        inline_bytes: int = 0,
    ) -> list[tuple[Any, ...]]:
        """Return up to ``size`` live rows with ``low <(=) key < high``, in key order.

        Keys sort by code point on every database (see
        :class:`~django_keyval.models.BinaryCollationCharField`), so a prefix is
        a key range and paging goes on from the last key seen.

        Rows are ``(key,)``, or with values ``(key, value, integer, serializer,
        length of value)`` where a value longer than ``inline_bytes`` is left
        out (``None``), so that a page's size stays bounded.
        """
        columns = self.key
        params: list[Any] = []
        if with_values:
            v = self.value
            columns += (
                f", CASE WHEN LENGTH({v}) > %s THEN NULL ELSE {v} END, {self.integer}, "
                f"{self.format}, LENGTH({v})"
            )
            params.append(inline_bytes)
        sql = (
            f"SELECT {columns} FROM {self.page_source} WHERE {self.store} = %s "
            f"AND {self.key} {'>=' if inclusive else '>'} %s"
        )
        params += [store, low]
        if high is not None:
            sql += f" AND {self.key} < %s"
            params.append(high)
        sql += f" AND {self.live} ORDER BY {self.key} LIMIT %s"
        params += [now, size]
        with connection.cursor() as cursor:
            self.execute(cursor, sql, params)
            return list(cursor.fetchall())

    def flush(self, connection: BaseDatabaseWrapper, store: str) -> int:
        """Delete every row of ``store``, expired ones included; return how many."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_flush, (store,))
            return int(cursor.rowcount)

    def flush_all(self, connection: BaseDatabaseWrapper) -> int:
        """Delete every row of every store; return how many."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_flush_all)
            return int(cursor.rowcount)

    def cull(self, connection: BaseDatabaseWrapper, now: Any, batch_size: int) -> int:
        """Delete up to ``batch_size`` expired rows; return how many."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_cull, (now, batch_size))
            return int(cursor.rowcount)

    def overflow_error(self, delta: int) -> CounterOverflowError:
        """Return the error for an ``incr`` whose result would leave 64 bits."""
        return CounterOverflowError(
            f"adding {delta} would take the counter outside the signed 64-bit range"
        )

    # -- bounded stores and strict counters (the cache backend's needs) ------

    def build_bounded_store_statements(self) -> None:
        """Build the statements that keep a store under a number of pairs, and ``incr_existing``."""
        t, store, key, expires = self.table, self.store, self.key, self.expires
        self.sql_count_rows = f"SELECT COUNT(*) FROM {t} WHERE {store} = %(store)s"
        self.sql_delete_expired_of_store = (
            f"DELETE FROM {t} WHERE {store} = %(store)s AND {expires} <= %(now)s"
        )
        # Soonest to expire first (pairs without expiry last): they were
        # closest to going anyway. Pairs written since ``spare_since`` stay.
        self.trim_order = f"({expires} IS NULL), {expires}, {key}"
        self.sql_delete_soonest_expiring = (
            f"DELETE FROM {t} WHERE {self.id} IN (SELECT {self.id} FROM {t} "
            f"WHERE {store} = %(store)s AND {self.updated} < %(spare_since)s "
            f"ORDER BY {self.trim_order} LIMIT %(count)s)"
        )
        self.sql_incr_existing_update = (
            f"UPDATE {t} SET {self.integer} = {self.integer} + %(delta)s, "
            f"{self.version} = {self.version} + 1, {self.updated} = %(now)s "
            f"WHERE {store} = %(store)s AND {key} = %(key)s AND ({expires} IS NULL OR "
            f"{expires} > %(now)s) AND {self.format} = 'int' "
            f"AND {self.integer} BETWEEN %(low)s AND %(high)s"
        )
        self.sql_incr_existing = f"{self.sql_incr_existing_update} RETURNING {self.integer}"

    def count_rows(self, connection: BaseDatabaseWrapper, store: str) -> int:
        """Return the number of rows of ``store``, expired ones included."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_count_rows, {"store": store})
            return int(cursor.fetchone()[0])

    def delete_expired_of_store(self, connection: BaseDatabaseWrapper, store: str, now: Any) -> int:
        """Delete the expired rows of ``store`` (no other store's); return how many."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_delete_expired_of_store, {"store": store, "now": now})
            return int(cursor.rowcount)

    def delete_soonest_expiring(
        self, connection: BaseDatabaseWrapper, store: str, count: int, spare_since: Any
    ) -> int:
        """Delete up to ``count`` rows of ``store`` written before ``spare_since``; return how many.

        Those that expire soonest go first, pairs without expiry last.
        """
        params = {"store": store, "count": count, "spare_since": spare_since}
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_delete_soonest_expiring, params)
            return int(cursor.rowcount)

    def incr_existing(
        self, connection: BaseDatabaseWrapper, store: str, key: str, delta: int, now: Any
    ) -> int | None:
        """Add ``delta`` to a live integer pair, in one statement.

        Return the new value, or ``None`` when nothing changed: the pair is
        missing or expired, its value is not an integer, or the result would
        overflow.
        """
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_incr_existing, self.incr_params(store, key, delta, now))
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    def incr_params(store: str, key: str, delta: int, now: Any) -> dict[str, Any]:
        """Parameters of ``incr_existing``: the bounds keep the sum inside 64 bits."""
        low = INT64_MIN - min(delta, 0)
        high = INT64_MAX - max(delta, 0)
        return {"store": store, "key": key, "delta": delta, "now": now, "low": low, "high": high}

    def get_many_with_expiry(
        self, connection: BaseDatabaseWrapper, store: str, keys: Sequence[str]
    ) -> list[tuple[str, Any, Any, str, Any]]:
        """Return ``(key, value, integer, serializer, expires_at)`` for each row among ``keys``.

        Expired rows are included, for the caller to tell and delete.
        """
        rows: list[tuple[str, Any, Any, str, Any]] = []
        with connection.cursor() as cursor:
            for batch in self.batches(keys, 1, extra=1):
                marks = ", ".join(["%s"] * len(batch))
                self.execute(
                    cursor,
                    f"SELECT {self.key}, {self.value}, {self.integer}, {self.format}, "
                    f"{self.expires} FROM {self.table} "
                    f"WHERE {self.store} = %s AND {self.key} IN ({marks})",
                    (store, *batch),
                )
                rows.extend(cursor.fetchall())
        return rows

    def delete_expired_keys(
        self, connection: BaseDatabaseWrapper, store: str, keys: Sequence[str], now: Any
    ) -> int:
        """Delete those of ``keys`` whose pair has expired (not one set again); return how many."""
        deleted = 0
        with connection.cursor() as cursor:
            for batch in self.batches(keys, 1):
                marks = ", ".join(["%s"] * len(batch))
                self.execute(
                    cursor,
                    f"DELETE FROM {self.table} WHERE {self.store} = %s "
                    f"AND {self.key} IN ({marks}) AND {self.expires} <= %s",
                    (store, *batch, now),
                )
                deleted += cursor.rowcount
        return deleted
