"""Statements shared by every database, and the ``ON CONFLICT`` upserts of SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from django.apps import apps
from django.db import DatabaseError, IntegrityError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from ..clock import adapted_now
from ..encoding import INT64_MAX, INT64_MIN
from ..exceptions import CounterOverflowError
from ..rows import (
    PageBounds,
    PageRow,
    PoppedValue,
    StoredRow,
    StoredValue,
    ValueRow,
    VersionedRow,
    VersionedValue,
    public_version,
    split_version,
)
from ..serializers import INTEGER_FORMAT

_T = TypeVar("_T")

#: Value bytes per multi-row INSERT, at most (one larger value goes alone).
MAX_STATEMENT_VALUE_BYTES = 4 * 1024 * 1024


#: Placeholders of one row in a multi-row upsert's ``VALUES``: one for each
#: field of :class:`StoredRow`, then ``version`` and ``first_version``, which start at 1.
ROW_MARKS = "(" + ", ".join(["%s"] * len(StoredRow._fields)) + ", 1, 1)"
#: The same with named placeholders, for statements that take one row as a mapping.
NAMED_ROW_MARKS = "(" + ", ".join(f"%({field})s" for field in StoredRow._fields) + ", 1, 1)"


def row_params(row: StoredRow, **extra: Any) -> dict[str, Any]:
    """Return the named parameters of a one-row statement: the row's fields and ``extra``."""
    params = row._asdict()
    params.update(extra)
    return params


class BaseOperations:
    """Build each statement once per database alias, then run it with parameters.

    Placeholders are ``%s``, or ``%(name)s`` where a statement uses a value
    more than once (Django translates both for SQLite). ``now`` parameters
    are already adapted with ``connection.ops.adapt_datetimefield_value``.
    """

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        KeyValPair = apps.get_model("django_keyval", "KeyValPair")  # noqa: N806
        quote = connection.ops.quote_name
        fields = {
            field.name: quote(str(field.column)) for field in KeyValPair._meta.concrete_fields
        }
        self.table = table = quote(KeyValPair._meta.db_table)
        KeyValLock = apps.get_model("django_keyval", "KeyValLock")  # noqa: N806
        lock_fields = {
            field.name: quote(str(field.column)) for field in KeyValLock._meta.concrete_fields
        }
        #: The table of locks and its columns.
        self.lock_table = quote(KeyValLock._meta.db_table)
        self.lock_store, self.lock_name = lock_fields["store"], lock_fields["name"]
        self.lock_owner, self.lock_lease_end = lock_fields["owner"], lock_fields["lease_end"]
        self.lock_token, self.lock_updated = lock_fields["token"], lock_fields["updated_at"]
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
        self.first_version = fields["first_version"]
        self.expires = expires = fields["expires_at"]
        self.updated = fields["updated_at"]
        #: The columns of :class:`StoredRow`, then ``version`` and ``first_version``.
        self.columns = ", ".join(
            [store, key, value, integer, fmt, expires, self.updated, self.version]
            + [self.first_version]
        )
        live = f"({expires} IS NULL OR {expires} > %s)"
        self.live = live
        where_key = f"{store} = %s AND {key} = %s"
        # Multi-row statements (``IN`` lists, ``VALUES`` rows) keep positional
        # placeholders; the one-key statements that repeat a value name it.
        named_key = f"{store} = %(store)s AND {key} = %(key)s"
        self.named_live = named_live = f"({expires} IS NULL OR {expires} > %(now)s)"

        # Reads fetch the expiry and test it in Python: most pairs have none,
        # and those then cost no clock reading or datetime adaptation at all.
        read = self.read_expiry_sql(expires)
        self.sql_get = f"SELECT {value}, {integer}, {fmt}, {read} FROM {table} WHERE {where_key}"
        self.sql_exists = f"SELECT {read} FROM {table} WHERE {where_key}"
        # Deletes take expired rows too (they are garbage anyway) and report
        # whether the row was live, so they need no clock reading either.
        self.sql_delete = f"DELETE FROM {table} WHERE {where_key} RETURNING {read}"
        self.sql_pop = (
            f"DELETE FROM {table} WHERE {where_key} RETURNING {value}, {integer}, {fmt}, {expires}"
        )
        # A new expiry is a change of the pair: its version goes up.
        self.sql_touch = (
            f"UPDATE {table} SET {expires} = %(expires_at)s, {self.updated} = %(now)s, "
            f"{self.version} = {self.version} + 1 WHERE {named_key} AND {named_live}"
        )
        self.sql_count = f"SELECT COUNT(*) FROM {table} WHERE {store} = %s AND {live}"
        self.sql_stores = f"SELECT DISTINCT {store} FROM {table} WHERE {live} ORDER BY {store}"
        self.sql_flush = f"DELETE FROM {table} WHERE {store} = %s"
        self.sql_flush_all = f"DELETE FROM {table}"
        self.build_vendor_statements()
        self.build_bounded_store_statements()
        self.build_coordination_statements()
        features = connection.features
        # Rows per multi-row statement: as many as the parameter limit allows.
        self.max_params = getattr(features, "max_query_params", None) or 10000
        # How Django turns the column's values into datetimes, as a query would.
        expires_field = cast("Field[Any, Any]", KeyValPair._meta.get_field("expires_at"))
        self.expires_column = expires_field.get_col(KeyValPair._meta.db_table)
        # Nothing here keeps ``connection``: one instance serves every thread
        # of the alias, and a connection belongs to the thread that opened it.

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
        conflict = (
            f"INSERT INTO {t} ({self.columns}) VALUES {NAMED_ROW_MARKS} ON CONFLICT ({s}, {k})"
        )
        expired = f"({t}.{self.expires} IS NOT NULL AND {t}.{self.expires} <= %(now)s)"
        int_format = f"'{INTEGER_FORMAT}'"
        replace = ", ".join(
            f"{column} = excluded.{column}"
            for column in (self.value, self.integer, self.format, self.expires, self.updated)
        )
        # Every write adds one to the version, whatever the row held before, so
        # that a version never comes back. A pair counts as new when no row
        # existed or the row had expired: then its first version is the one
        # this write gives it, which RETURNING reports in the same statement.
        version, first = self.version, self.first_version
        next_version = f"{t}.{version} + 1"
        self.sql_set = (
            f"{conflict} DO UPDATE SET {version} = {next_version}, {first} = CASE WHEN "
            f"{expired} THEN {next_version} ELSE {t}.{first} END, {replace} "
            f"RETURNING {version}, {first}"
        )
        self.sql_add = (
            f"{conflict} DO UPDATE SET {version} = {next_version}, {first} = {next_version}, "
            f"{replace} WHERE {expired}"
        )
        self.sql_set_many_prefix = f"INSERT INTO {t} ({self.columns}) VALUES "
        # Positional, after the rows' own placeholders.
        self.sql_set_many_suffix = (
            f" ON CONFLICT ({s}, {k}) DO UPDATE SET {version} = {next_version}, "
            f"{first} = CASE WHEN ({t}.{self.expires} IS NOT NULL AND {t}.{self.expires} <= %s) "
            f"THEN {next_version} ELSE {t}.{first} END, {replace}"
        )
        i = f"{t}.{self.integer}"
        self.sql_incr = (
            f"INSERT INTO {t} ({self.columns}) VALUES "
            f"(%(store)s, %(key)s, NULL, %(delta)s, {int_format}, NULL, %(now)s, 1, 1) "
            f"ON CONFLICT ({s}, {k}) DO UPDATE SET "
            f"{self.integer} = CASE WHEN {expired} THEN excluded.{self.integer} "
            f"ELSE {i} + excluded.{self.integer} END, "
            f"{version} = {next_version}, "
            f"{first} = CASE WHEN {expired} THEN {next_version} ELSE {t}.{first} END, "
            f"{self.expires} = CASE WHEN {expired} THEN NULL ELSE {t}.{self.expires} END, "
            f"{self.value} = NULL, {self.format} = excluded.{self.format}, "
            f"{self.updated} = excluded.{self.updated} "
            # The bounds keep the sum inside 64 bits: an overflow would raise a
            # database error (PostgreSQL) or silently turn into a float (SQLite).
            f"WHERE {expired} OR ({t}.{self.format} = {int_format} "
            f"AND {i} BETWEEN %(low)s AND %(high)s) "
            f"RETURNING {self.integer}"
        )
        self.sql_cull = (
            f"DELETE FROM {t} WHERE {self.id} IN "
            f"(SELECT {self.id} FROM {t} WHERE {self.expires} <= %s LIMIT %s)"
        )

    # -- single keys ---------------------------------------------------------

    @classmethod
    def is_live(cls, connection: BaseDatabaseWrapper, expires: Any, now: Any = None) -> bool:
        """Return whether ``expires``, as the driver returned it, is in the future.

        It is compared with the current time adapted as Django adapts it for
        the column: an aware or naive datetime (PostgreSQL) or a string
        (SQLite, MariaDB), which orders like the time it stands for. A
        caller checking many rows passes ``now``, adapted, once.
        """
        if now is None:
            now = adapted_now(connection)
        if isinstance(now, str) and not isinstance(expires, str):
            expires = str(expires)
        return bool(expires > now)

    def expiry_datetime(
        self, connection: BaseDatabaseWrapper, expires: Any
    ) -> datetime.datetime | None:
        """Return an expiry as the driver returned it as a datetime, as the ORM would.

        ``connection`` is the calling thread's: the converters Django gives
        (bound to ``connection.ops``) read its time zone.
        """
        column = self.expires_column
        for converter in (
            *connection.ops.get_db_converters(column),
            *column.get_db_converters(connection),
        ):
            expires = converter(expires, column, connection)
        return expires  # type: ignore[no-any-return]

    def read_expiry_sql(self, expires: str) -> str:
        """The expression by which ``get``, ``exists`` and ``delete`` return ``expires_at``.

        :meth:`is_read_live` judges what it returns.
        """
        return expires

    def is_read_live(self, connection: BaseDatabaseWrapper, expires: Any) -> bool:
        """Return whether an expiry read through :meth:`read_expiry_sql` is in the future."""
        return self.is_live(connection, expires)

    def get(self, connection: BaseDatabaseWrapper, store: str, key: str) -> StoredValue | None:
        """Return the value of a live pair, or ``None``."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_get, (store, key))
            row = cursor.fetchone()
        if row is None or (row[3] is not None and not self.is_read_live(connection, row[3])):
            return None
        return StoredValue(row[0], row[1], row[2])

    def exists(self, connection: BaseDatabaseWrapper, store: str, key: str) -> bool:
        """Return whether a live pair exists."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_exists, (store, key))
            row = cursor.fetchone()
        return row is not None and (row[0] is None or self.is_read_live(connection, row[0]))

    def set(self, connection: BaseDatabaseWrapper, row: StoredRow) -> bool:
        """Insert or overwrite a pair; return whether it was new (or had expired)."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_set, row_params(row, now=row.updated_at))
            version, first_version = cursor.fetchone()
            return bool(version == first_version)

    def add(self, connection: BaseDatabaseWrapper, row: StoredRow) -> bool:
        """Insert a pair unless a live one exists; return whether it was stored."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_add, row_params(row, now=row.updated_at))
            return bool(cursor.rowcount == 1)

    def delete(self, connection: BaseDatabaseWrapper, store: str, key: str) -> bool:
        """Delete a pair; return whether it was live."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_delete, (store, key))
            row = cursor.fetchone()
        return row is not None and (row[0] is None or self.is_read_live(connection, row[0]))

    def pop(self, connection: BaseDatabaseWrapper, store: str, key: str) -> PoppedValue | None:
        """Delete a pair; return its value and expiry if it was live, else ``None``."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_pop, (store, key))
            row = cursor.fetchone()
        if row is None or (row[3] is not None and not self.is_live(connection, row[3])):
            return None
        return PoppedValue._make(row)

    def touch(
        self, connection: BaseDatabaseWrapper, store: str, key: str, expires: Any, now: Any
    ) -> bool:
        """Give a live pair a new expiry; return whether there was one."""
        params = {"store": store, "key": key, "expires_at": expires, "now": now}
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_touch, params)
            return bool(cursor.rowcount > 0)

    def incr(
        self, connection: BaseDatabaseWrapper, store: str, key: str, delta: int, now: Any
    ) -> int | None:
        """Add ``delta`` to an integer pair (a missing pair counts as 0).

        Return the new value, or ``None`` when the stored value is not an
        integer or the result would overflow (nothing is changed then).
        """
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_incr, self.incr_params(store, key, delta, now))
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    # -- many keys -----------------------------------------------------------

    def batches(self, items: Sequence[Any], params_per_item: int, extra: int = 2) -> Iterable[Any]:
        """Split ``items`` so each statement stays under the parameter limit."""
        size = max(1, min(1000, (self.max_params - extra) // params_per_item))
        for start in range(0, len(items), size):
            yield items[start : start + size]

    def row_batches(self, rows: Sequence[StoredRow]) -> Iterable[Sequence[StoredRow]]:
        """Split rows for multi-row inserts by parameter count and by bytes.

        The byte bound keeps each statement well under MariaDB's default
        ``max_allowed_packet`` (16 MiB) even when values are near the 8 MiB limit.
        """
        suffix_params = len(self.set_many_suffix_params(None))
        for batch in self.batches(rows, len(StoredRow._fields), extra=suffix_params):
            start, size = 0, 0
            for index, row in enumerate(batch):
                row_size = len(row.value or b"")
                if size and size + row_size > MAX_STATEMENT_VALUE_BYTES:
                    yield batch[start:index]
                    start, size = index, 0
                size += row_size
            yield batch[start:]

    def wire_row(self, row: StoredRow) -> tuple[str, Sequence[Any]]:
        """Return the placeholders of ``row`` in a multi-row upsert, and its parameters.

        Here the row goes as it is; a backend may send some values another way.
        """
        return ROW_MARKS, row

    def get_many(
        self, connection: BaseDatabaseWrapper, store: str, keys: Sequence[str], now: Any
    ) -> list[ValueRow]:
        """Return a :class:`ValueRow` for each live pair among ``keys``."""
        columns = f"{self.key}, {self.value}, {self.integer}, {self.format}, {self.expires}"
        rows = self.select_keys(connection, store, keys, columns, f"AND {self.live}", now)
        return [ValueRow._make(row) for row in rows]

    def key_batches(
        self, store: str, keys: Sequence[str], params: Sequence[Any]
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """Yield ``store = %s AND key IN (...)`` and its parameters, then ``params``, per batch.

        The batches of ``keys`` stay under the parameter limit with ``params``.
        """
        for batch in self.batches(keys, 1, extra=1 + len(params)):
            marks = ", ".join(["%s"] * len(batch))
            yield f"{self.store} = %s AND {self.key} IN ({marks})", (store, *batch, *params)

    def select_keys(
        self,
        connection: BaseDatabaseWrapper,
        store: str,
        keys: Sequence[str],
        columns: str,
        condition: str = "",
        *params: Any,
    ) -> list[tuple[Any, ...]]:
        """Return ``columns`` of the rows of ``store`` among ``keys`` that meet ``condition``.

        ``condition`` (``"AND ..."``) takes ``params``; the keys go in
        batches under the parameter limit, one statement each.
        """
        rows: list[tuple[Any, ...]] = []
        with connection.cursor() as cursor:
            for where, batch_params in self.key_batches(store, keys, params):
                self.execute(
                    cursor,
                    f"SELECT {columns} FROM {self.table} WHERE {where} {condition}",
                    batch_params,
                )
                rows.extend(cursor.fetchall())
        return rows

    def delete_keys(
        self,
        connection: BaseDatabaseWrapper,
        store: str,
        keys: Sequence[str],
        condition: str,
        *params: Any,
    ) -> int:
        """Delete the rows of ``store`` among ``keys`` that meet ``condition``; return how many.

        As :meth:`select_keys`, one statement per batch of keys.
        """
        deleted = 0
        with connection.cursor() as cursor:
            for where, batch_params in self.key_batches(store, keys, params):
                self.execute(
                    cursor, f"DELETE FROM {self.table} WHERE {where} {condition}", batch_params
                )
                deleted += cursor.rowcount
        return deleted

    def set_many(self, connection: BaseDatabaseWrapper, rows: Sequence[StoredRow]) -> None:
        """Insert or overwrite many pairs (written at the same time), a few statements in all."""
        if not rows:
            return
        suffix_params = self.set_many_suffix_params(rows[0].updated_at)
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
                    (*params, *suffix_params),
                )

    def set_many_suffix_params(self, now: Any) -> tuple[Any, ...]:
        """Parameters of the statement's tail after the ``VALUES`` rows."""
        return (now,)

    def delete_many(
        self, connection: BaseDatabaseWrapper, store: str, keys: Sequence[str], now: Any
    ) -> int:
        """Delete the live pairs among ``keys``; return how many there were."""
        return self.delete_keys(connection, store, keys, f"AND {self.live}", now)

    # -- whole stores ----------------------------------------------------------

    def count(self, connection: BaseDatabaseWrapper, store: str, now: Any) -> int:
        """Return the number of live pairs in ``store``."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_count, (store, now))
            return int(cursor.fetchone()[0])

    def count_all(self, connection: BaseDatabaseWrapper, now: Any) -> int:
        """Return the number of live pairs of every store."""
        with connection.cursor() as cursor:
            self.execute(cursor, f"SELECT COUNT(*) FROM {self.table} WHERE {self.live}", (now,))
            return int(cursor.fetchone()[0])

    def stores(self, connection: BaseDatabaseWrapper, now: Any) -> list[str]:
        """Return the names of the stores that hold live pairs, sorted."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_stores, (now,))
            return [name for (name,) in cursor.fetchall()]

    def page_sql(self, connection: BaseDatabaseWrapper, columns: str, bounds: PageBounds) -> str:
        """Return the ``SELECT`` of ``columns`` for the rows of a key-ordered page.

        Keys sort by code point on every database (see
        :class:`~django_keyval.models.BinaryCollationCharField`), so a prefix is
        a key range and paging goes on from the last key seen. The
        parameters are the fields of ``bounds``.
        """
        sql = (
            f"SELECT {columns} FROM {self.page_source} WHERE {self.store} = %(store)s "
            f"AND {self.key} {'>=' if bounds.inclusive else '>'} %(low)s"
        )
        if bounds.high is not None:
            sql += f" AND {self.key} < %(high)s"
        limit = self.limit_sql(connection, bounds.size)
        return sql + f" AND {self.named_live} ORDER BY {self.key} {limit}"

    def limit_sql(self, connection: BaseDatabaseWrapper, size: int) -> str:
        """Return the clause that keeps the first ``size`` rows (here ``LIMIT``, a parameter)."""
        return "LIMIT %(size)s"

    def length_sql(self, connection: BaseDatabaseWrapper) -> str:
        """Return the expression of the length of the value in bytes."""
        return f"LENGTH({self.value})"

    def page_keys(self, connection: BaseDatabaseWrapper, bounds: PageBounds) -> list[str]:
        """Return the live keys within ``bounds``, in order."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.page_sql(connection, self.key, bounds), bounds._asdict())
            return [key for (key,) in cursor.fetchall()]

    def page(
        self, connection: BaseDatabaseWrapper, bounds: PageBounds, inline_bytes: int
    ) -> list[PageRow]:
        """Return the live rows within ``bounds``, in key order.

        A value longer than ``inline_bytes`` is left out, so that a page's
        size stays bounded; its :attr:`PageRow.length` says how long it is.
        """
        v, length = self.value, self.length_sql(connection)
        columns = (
            f"{self.key}, CASE WHEN {length} > %(inline_bytes)s THEN NULL "
            f"ELSE {v} END, {self.integer}, {self.format}, {self.expires}, {length}"
        )
        params = bounds._asdict()
        params["inline_bytes"] = inline_bytes
        with connection.cursor() as cursor:
            self.execute(cursor, self.page_sql(connection, columns, bounds), params)
            return [PageRow._make(row) for row in cursor.fetchall()]

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
            f"{expires} > %(now)s) AND {self.format} = '{INTEGER_FORMAT}' "
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
        """Parameters of ``incr`` and ``incr_existing``: the bounds keep the sum inside 64 bits."""
        low = INT64_MIN - min(delta, 0)
        high = INT64_MAX - max(delta, 0)
        return {"store": store, "key": key, "delta": delta, "now": now, "low": low, "high": high}

    def get_many_with_expiry(
        self, connection: BaseDatabaseWrapper, store: str, keys: Sequence[str]
    ) -> list[ValueRow]:
        """Return a :class:`ValueRow` for each row among ``keys``.

        Expired rows are included, for the caller to tell and delete.
        """
        columns = f"{self.key}, {self.value}, {self.integer}, {self.format}, {self.expires}"
        return [ValueRow._make(row) for row in self.select_keys(connection, store, keys, columns)]

    def expiry(
        self, connection: BaseDatabaseWrapper, store: str, key: str, now: Any
    ) -> tuple[Any] | None:
        """Return ``(expires_at,)`` of a live pair, as the driver returns it; ``None``: missing."""
        rows = self.select_keys(connection, store, [key], self.expires, f"AND {self.live}", now)
        return None if not rows else (rows[0][0],)

    def delete_expired_keys(
        self, connection: BaseDatabaseWrapper, store: str, keys: Sequence[str], now: Any
    ) -> int:
        """Delete those of ``keys`` whose pair has expired (not one set again); return how many."""
        return self.delete_keys(connection, store, keys, f"AND {self.expires} <= %s", now)

    # -- versions, compare-and-set and locks -------------------------------------
    #
    # These statements name their parameters: ``store``, ``key``, the written
    # row's ``value``, ``integer``, ``serializer``, ``expires_at`` and
    # ``updated_at``, and ``now`` (the adapted current time, to tell expired
    # rows). A version as callers see it is the row's id and its write
    # counter together (see :func:`~django_keyval.rows.public_version`).
    #
    # Locks live in a table of their own, which nothing that deletes or
    # rewrites pairs touches: a lock's row holds its holder's ``owner``
    # token (empty when free), the end of its lease in microseconds since
    # the epoch (``lease_end``, compared with ``now_us``) and its fencing
    # ``token``, which each acquisition raises by one. Its row is never
    # deleted, so the token only ever goes up.

    def build_coordination_statements(self) -> None:
        """Build the versioned reads, ``cas`` and the lock statements."""
        t, version, fmt = self.table, self.version, self.format
        named_key = f"{self.store} = %(store)s AND {self.key} = %(key)s"
        live = f"({self.expires} IS NULL OR {self.expires} > %(now)s)"
        self.sql_get_versioned = (
            f"SELECT {self.value}, {self.integer}, {fmt}, {self.id}, {version} FROM {t} "
            f"WHERE {named_key} AND {live}"
        )
        # No read first: the version test and the write are one statement,
        # so a writer that got in between makes the WHERE clause fail. The
        # id tells this life of the key from an earlier one.
        write = (
            f"{self.value} = %(value)s, {self.integer} = %(integer)s, {fmt} = %(serializer)s, "
            f"{self.updated} = %(updated_at)s, {version} = {version} + 1"
        )
        where_version = (
            f"WHERE {named_key} AND {self.id} = %(row_id)s AND {version} = %(version)s AND {live}"
        )
        self.sql_cas = f"UPDATE {t} SET {write}, {self.expires} = %(expires_at)s {where_version}"
        self.sql_cas_keep_expiry = f"UPDATE {t} SET {write} {where_version}"
        self.build_lock_statements()

    def build_lock_statements(self) -> None:
        """Build the statements on the table of locks."""
        lock_table = self.lock_table
        self.lock_columns = ", ".join(
            [self.lock_store, self.lock_name, self.lock_owner, self.lock_lease_end]
            + [self.lock_token, self.lock_updated]
        )
        #: The ``VALUES`` row of a lock taken for the first time: token 1.
        self.lock_row_marks = "(%(store)s, %(key)s, %(owner)s, %(lease_end)s, 1, %(now)s)"
        lock_key = f"{self.lock_store} = %(store)s AND {self.lock_name} = %(key)s"
        held = f"{self.lock_lease_end} > %(now_us)s"
        self.sql_lock_holder = (
            f"SELECT {self.lock_owner} FROM {lock_table} WHERE {lock_key} AND {held}"
        )
        owned = f"WHERE {lock_key} AND {self.lock_owner} = %(owner)s AND {held}"
        # Releasing ends the lease; the token stays for the next acquisition to raise.
        self.sql_release_lock = (
            f"UPDATE {lock_table} SET {self.lock_owner} = '', {self.lock_lease_end} = 0, "
            f"{self.lock_updated} = %(now)s {owned}"
        )
        self.sql_extend_lock = (
            f"UPDATE {lock_table} SET {self.lock_lease_end} = %(lease_end)s, "
            f"{self.lock_updated} = %(now)s {owned}"
        )
        # The steps of acquire_lock_in_steps.
        self.sql_take_lock = (
            f"UPDATE {lock_table} SET {self.lock_owner} = %(owner)s, "
            f"{self.lock_lease_end} = %(lease_end)s, {self.lock_token} = {self.lock_token} + 1, "
            f"{self.lock_updated} = %(now)s WHERE {lock_key} AND {self.lock_free()}"
        )
        self.sql_lock_token = f"SELECT {self.lock_token} FROM {lock_table} WHERE {lock_key}"
        self.sql_insert_lock = (
            f"INSERT INTO {lock_table} ({self.lock_columns}) VALUES {self.lock_row_marks}"
        )
        self.build_lock_acquire_statement()

    def build_lock_acquire_statement(self) -> None:
        """Build :attr:`sql_acquire_lock` (here with ``INSERT ... ON CONFLICT``)."""
        t = self.lock_table
        self.sql_acquire_lock = (
            f"INSERT INTO {t} ({self.lock_columns}) VALUES {self.lock_row_marks} "
            f"ON CONFLICT ({self.lock_store}, {self.lock_name}) DO UPDATE SET "
            f"{self.lock_owner} = excluded.{self.lock_owner}, "
            f"{self.lock_lease_end} = excluded.{self.lock_lease_end}, "
            f"{self.lock_token} = {t}.{self.lock_token} + 1, "
            f"{self.lock_updated} = excluded.{self.lock_updated} "
            f"WHERE {self.lock_free(t + '.')} RETURNING {self.lock_token}"
        )

    def lock_free(self, prefix: str = "") -> str:
        """The condition under which a lock may be taken: its lease has ended (or it was released).

        ``prefix`` qualifies the column.
        """
        return f"{prefix}{self.lock_lease_end} <= %(now_us)s"

    def get_versioned(
        self, connection: BaseDatabaseWrapper, store: str, key: str, now: Any
    ) -> VersionedValue | None:
        """Return the value and version of a live pair, or ``None``."""
        params = {"store": store, "key": key, "now": now}
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_get_versioned, params)
            row = cursor.fetchone()
        if row is None:
            return None
        value, integer, serializer, row_id, counter = row
        return VersionedValue(value, integer, serializer, public_version(row_id, counter))

    def get_many_versioned(
        self, connection: BaseDatabaseWrapper, store: str, keys: Sequence[str], now: Any
    ) -> list[VersionedRow]:
        """Return a :class:`~django_keyval.rows.VersionedRow` for each live pair among ``keys``.

        (One statement per 1000 keys.)
        """
        columns = (
            f"{self.key}, {self.value}, {self.integer}, {self.format}, {self.id}, {self.version}"
        )
        rows = self.select_keys(connection, store, keys, columns, f"AND {self.live}", now)
        return [
            VersionedRow(key, value, integer, fmt, public_version(row_id, counter))
            for key, value, integer, fmt, row_id, counter in rows
        ]

    def cas_params(self, row: StoredRow, version: int) -> dict[str, Any]:
        """Parameters of ``cas``: the row's, and the row id and counter ``version`` stands for."""
        row_id, counter = split_version(version)
        return row_params(row, now=row.updated_at, row_id=row_id, version=counter)

    def cas(
        self, connection: BaseDatabaseWrapper, row: StoredRow, version: int, keep_expiry: bool
    ) -> bool:
        """Overwrite a live pair with ``row`` if it is at ``version``; return whether it was.

        With ``keep_expiry`` the pair keeps its expiry, else it gets ``row.expires_at``.
        """
        sql = self.sql_cas_keep_expiry if keep_expiry else self.sql_cas
        with connection.cursor() as cursor:
            self.execute(cursor, sql, self.cas_params(row, version))
            return bool(cursor.rowcount == 1)

    def acquire_lock(self, connection: BaseDatabaseWrapper, params: dict[str, Any]) -> int | None:
        """Take the lock for ``params["owner"]`` if it is free; return its new fencing token.

        ``None`` when another owner holds the lease (nothing is changed then).
        """
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_acquire_lock, params)
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    def acquire_lock_in_steps(
        self, connection: BaseDatabaseWrapper, params: dict[str, Any]
    ) -> int | None:
        """:meth:`acquire_lock` without an upsert or ``RETURNING``, for any database.

        In one transaction: take the lock with an ``UPDATE`` if it is free,
        then read the token this transaction wrote (the row stays locked
        until the commit, so no other acquisition can come between); with
        no row to take, ``INSERT`` one with token 1, and if a concurrent
        acquirer inserted it first, give up.
        """

        def attempt() -> int | None:
            with connection.cursor() as cursor:
                self.execute(cursor, self.sql_take_lock, params)
                if cursor.rowcount == 1:
                    self.execute(cursor, self.sql_lock_token, params)
                    return int(cursor.fetchone()[0])
                try:
                    with transaction.atomic(using=connection.alias):
                        self.execute(cursor, self.sql_insert_lock, params)
                except IntegrityError:
                    return None  # another acquirer's row, or a held lock
                return 1

        return self.in_transaction(connection, attempt)

    def release_lock(self, connection: BaseDatabaseWrapper, params: dict[str, Any]) -> bool:
        """Free the lock if ``params["owner"]`` holds its lease; return whether it did."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_release_lock, params)
            return bool(cursor.rowcount == 1)

    def extend_lock(self, connection: BaseDatabaseWrapper, params: dict[str, Any]) -> bool:
        """Move the end of the lease to ``params["lease_end"]`` if ``owner`` holds it."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_extend_lock, params)
            return bool(cursor.rowcount == 1)

    def lock_holder(self, connection: BaseDatabaseWrapper, params: dict[str, Any]) -> str | None:
        """Return the owner token holding the lock's lease, or ``None`` if it is free."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_lock_holder, params)
            row = cursor.fetchone()
        return None if row is None else str(row[0])
