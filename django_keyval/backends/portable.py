"""Any other database: portable SQL only, ``UPDATE`` then ``INSERT``.

For the backends without a class of their own (Oracle, SQL Server through
``mssql-django``, CockroachDB through ``django-cockroachdb``, third-party
backends). No vendor upsert and no ``RETURNING``: each write is a short
sequence of plain statements whose ``WHERE`` clauses say which state of the
row they apply to, so that a step that finds the row changed by another
process does nothing, and the sequence starts again:

* ``set`` overwrites a live row (``UPDATE ... WHERE`` live), else replaces an
  expired one (``UPDATE ... WHERE`` expired, version back to 1), else inserts;
  an insert that loses to a concurrent one (``IntegrityError`` on the unique
  ``(store, key)``) starts again, and then overwrites.
* ``add`` replaces an expired row or inserts; a lost insert looks for a live
  row (then ``add`` fails) or starts again.
* ``pop`` reads the row, then deletes it by id and version: only the caller
  whose ``DELETE`` removes the row returns its value. Inside a transaction
  the read is ``select_for_update()`` where the backend supports it.
* ``incr`` adds in an ``UPDATE`` and reads the result in the same transaction
  (the row stays locked between the two).

Statements are built with the connection's ``quote_name``, its
``limit_offset_sql`` and Django's ``Length`` compiled for it, and sent with
``%s`` placeholders, which every Django backend takes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.apps import apps
from django.db import DatabaseError, IntegrityError, OperationalError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.functions import Length
from django.db.models.sql import Query

from .. import clock
from ..clock import adapted_now
from ..rows import PoppedValue, StoredRow
from ..serializers import INTEGER_FORMAT
from .base import NAMED_ROW_MARKS, BaseOperations, row_params

#: SQLSTATEs of a serialization failure and of a deadlock victim (PostgreSQL,
#: CockroachDB, SQL Server through ODBC): the transaction was rolled back.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
#: MySQL/MariaDB: a deadlock victim, a lock wait given up.
TRANSIENT_MYSQL_ERRORS = frozenset({1213, 1205})
#: Oracle: a deadlock victim, a serialization failure.
TRANSIENT_ORACLE_ERRORS = ("ORA-00060", "ORA-08177")

_NAMED_PLACEHOLDER = re.compile(r"%\((\w+)\)s")

#: Rounds of a write that lost its insert to another process, at most.
MAX_ROUNDS = 100


class PortableOperations(BaseOperations):
    """Portable SQL for any backend: more round trips, the same guarantees.

    Round trips per operation (without a transaction of the caller's):
    ``get``, ``exists``, ``delete``, ``touch``, ``count``: 1; ``set`` of a
    live key: 1, of a new key: 3; ``add``: 2 (3 when a live pair is there);
    ``pop``: 2; ``incr`` of an existing counter: 2 in a transaction, of a new
    one 5; ``set_many``: ``set`` for each pair, in one transaction;
    ``cull``: 2 per batch.
    """

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.positional: dict[str, tuple[str, tuple[str, ...]]] = {}
        super().__init__(connection)

    # -- running statements ------------------------------------------------

    def is_transient(self, error: DatabaseError) -> bool:
        """Serialization failures, deadlock victims and a busy SQLite file were rolled back."""
        cause = error.__cause__
        if getattr(cause, "sqlstate", None) in TRANSIENT_SQLSTATES:
            return True
        codes = getattr(cause, "args", None) or error.args
        if codes and (codes[0] in TRANSIENT_MYSQL_ERRORS or codes[0] in TRANSIENT_SQLSTATES):
            return True
        text = str(error)
        if isinstance(error, OperationalError) and "database is locked" in text:
            return True
        return any(code in text for code in TRANSIENT_ORACLE_ERRORS)

    def execute(
        self, cursor: Any, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> None:
        """Run one statement with ``%s`` placeholders, whatever placeholders it was built with."""
        if isinstance(params, Mapping):
            sql, params = self.to_positional(sql, params)
        super().execute(cursor, sql, params)

    def to_positional(self, sql: str, params: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """Return ``sql`` with ``%s`` for each ``%(name)s``, and the parameters in their order."""
        try:
            positional, names = self.positional[sql]
        except KeyError:
            names = tuple(_NAMED_PLACEHOLDER.findall(sql))
            positional = _NAMED_PLACEHOLDER.sub("%s", sql)
            self.positional[sql] = (positional, names)
        return positional, tuple(params[name] for name in names)

    def limit_sql(self, connection: BaseDatabaseWrapper, size: int) -> str:
        """The connection's own clause for the first ``size`` rows (``size`` is an ``int``)."""
        return str(connection.ops.limit_offset_sql(0, int(size)))

    def length_sql(self, connection: BaseDatabaseWrapper) -> str:
        """Django's ``Length`` of the value, compiled for the connection (``LEN``...)."""
        KeyValPair = apps.get_model("django_keyval", "KeyValPair")  # noqa: N806
        query = Query(KeyValPair)
        compiler = query.get_compiler(connection=connection)
        sql, _ = compiler.compile(Length("value").resolve_expression(query))
        # The compiled column is qualified with the table name, which names the
        # same column in these single-table statements.
        return str(sql)

    # -- statements ----------------------------------------------------------

    def build_vendor_statements(self) -> None:
        """Build the ``UPDATE`` and ``INSERT`` statements the writes are made of."""
        t, version, expires = self.table, self.version, self.expires
        key = f"{self.store} = %(store)s AND {self.key} = %(key)s"
        expired = f"({expires} IS NOT NULL AND {expires} <= %(now)s)"
        write = (
            f"{self.value} = %(value)s, {self.integer} = %(integer)s, "
            f"{self.format} = %(serializer)s, {expires} = %(expires_at)s, "
            f"{self.updated} = %(updated_at)s"
        )
        self.sql_insert = f"INSERT INTO {t} ({self.columns}) VALUES {NAMED_ROW_MARKS}"
        self.sql_overwrite_live = (
            f"UPDATE {t} SET {write}, {version} = {version} + 1 WHERE {key} AND {self.named_live}"
        )
        # A new life of the key goes on counting: a version never comes back.
        # (first_version before version: MySQL assigns left to right.)
        first = self.first_version
        self.sql_replace_expired = (
            f"UPDATE {t} SET {write}, {first} = {version} + 1, {version} = {version} + 1 "
            f"WHERE {key} AND {expired}"
        )
        self.sql_delete = f"DELETE FROM {t} WHERE {key} AND {self.named_live}"
        self.sql_select_integer = f"SELECT {self.integer} FROM {t} WHERE {key}"
        self.sql_live_row = (
            f"SELECT {self.integer}, {self.format} FROM {t} WHERE {key} AND {self.named_live}"
        )
        # Oldest expiry first: a range of the expiry index.
        self.sql_cull_select = (
            f"SELECT {self.id} FROM {t} WHERE {expires} <= %(now)s ORDER BY {expires}"
        )

    def build_bounded_store_statements(self) -> None:
        """Order without a boolean expression, which not every database sorts by."""
        super().build_bounded_store_statements()
        expires = self.expires
        self.trim_order = f"CASE WHEN {expires} IS NULL THEN 1 ELSE 0 END, {expires}, {self.key}"
        self.sql_soonest_expiring_select = (
            f"SELECT {self.id} FROM {self.table} WHERE {self.store} = %(store)s "
            f"AND {self.updated} < %(spare_since)s ORDER BY {self.trim_order}"
        )

    # -- single keys ---------------------------------------------------------

    def insert(self, connection: BaseDatabaseWrapper, row: StoredRow) -> IntegrityError | None:
        """Insert ``row``; return the ``IntegrityError`` if the database refused it.

        The caller starts its sequence again: most likely another process
        inserted the key first. In a transaction, the insert gets a savepoint
        of its own, so that the failed statement leaves the transaction usable.
        """
        params = row_params(row)
        try:
            if connection.in_atomic_block:
                with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                    self.execute(cursor, self.sql_insert, params)
            else:
                with connection.cursor() as cursor:
                    self.execute(cursor, self.sql_insert, params)
        except IntegrityError as error:
            return error
        return None

    @staticmethod
    def again(error: IntegrityError, rounds: int) -> int:
        """Count a round lost to a concurrent writer; raise ``error`` after too many.

        A duplicate key means another process won the insert, and the next
        round sees its row. Round after round of refused inserts means the
        database refuses the row for another reason: that error is raised.
        """
        if rounds >= MAX_ROUNDS:
            raise error
        return rounds + 1

    def update(self, connection: BaseDatabaseWrapper, sql: str, params: Mapping[str, Any]) -> bool:
        """Run an ``UPDATE`` (or ``DELETE``); return whether it matched a row."""
        with connection.cursor() as cursor:
            self.execute(cursor, sql, params)
            return bool(cursor.rowcount > 0)

    def live_row(
        self, connection: BaseDatabaseWrapper, params: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """Return ``(integer, serializer)`` of the pair live at ``params["now"]``, or ``None``."""
        with connection.cursor() as cursor:
            self.execute(cursor, self.sql_live_row, params)
            row: tuple[Any, ...] | None = cursor.fetchone()
            return row

    def set(self, connection: BaseDatabaseWrapper, row: StoredRow) -> bool:
        """Overwrite a live pair, else replace an expired one, else insert; return whether new."""
        params = row_params(row, now=row.updated_at)
        rounds = 0
        while True:
            if self.update(connection, self.sql_overwrite_live, params):
                return False
            if self.update(connection, self.sql_replace_expired, params):
                return True
            error = self.insert(connection, row)
            if error is None:
                return True
            # Another process inserted the key meanwhile: overwrite it. Each
            # round tells live from expired at the current time, so a pair
            # that expires meanwhile is seen as expired by every statement.
            rounds = self.again(error, rounds)
            params["now"] = adapted_now(connection)

    def add(self, connection: BaseDatabaseWrapper, row: StoredRow) -> bool:
        """Replace an expired pair or insert one; ``False`` (nothing changed) if one is live."""
        params = row_params(row, now=row.updated_at)
        rounds = 0
        while True:
            if self.update(connection, self.sql_replace_expired, params):
                return True
            error = self.insert(connection, row)
            if error is None:
                return True
            if self.live_row(connection, params) is not None:
                return False
            # The pair in the way expired or went meanwhile: again, now.
            rounds = self.again(error, rounds)
            params["now"] = adapted_now(connection)

    def delete(self, connection: BaseDatabaseWrapper, store: str, key: str) -> bool:
        """Delete a live pair; return whether there was one (an expired row stays for cull)."""
        params = {"store": store, "key": key, "now": adapted_now(connection)}
        return self.update(connection, self.sql_delete, params)

    def pop(self, connection: BaseDatabaseWrapper, store: str, key: str) -> PoppedValue | None:
        """Read a pair, then delete it by id and version; return it if it was live.

        The expiry is adapted for the column, as the other classes return it.
        """
        KeyValPair = apps.get_model("django_keyval", "KeyValPair")  # noqa: N806
        while True:
            pairs = KeyValPair.objects.using(connection.alias).filter(store=store, key=key)
            if connection.in_atomic_block and connection.features.has_select_for_update:
                # The latest version of the row, locked until the caller's
                # transaction ends (a plain read could see an older snapshot).
                pairs = pairs.select_for_update()
            columns = ("id", "version", "value", "integer_value", "serializer", "expires_at")
            read = pairs.values_list(*columns).first
            # Outside a transaction a busy database is waited out, as
            # execute() does for the other statements.
            row = read() if connection.in_atomic_block else self.retrying(read)
            if row is None:
                return None
            row_id, version, value, integer, serializer_name, expires_at = row
            with connection.cursor() as cursor:
                self.execute(
                    cursor,
                    f"DELETE FROM {self.table} WHERE {self.id} = %s AND {self.version} = %s",
                    (row_id, version),
                )
                if cursor.rowcount != 1:
                    continue  # changed or gone meanwhile: read again
            if expires_at is not None and expires_at <= clock.now():
                return None
            adapt = connection.ops.adapt_datetimefield_value
            return PoppedValue(value, integer, serializer_name, adapt(expires_at))

    def incr(
        self, connection: BaseDatabaseWrapper, store: str, key: str, delta: int, now: Any
    ) -> int | None:
        """Add ``delta`` to an integer pair, or store ``delta`` for a missing or expired one.

        Return the new value, or ``None`` when the live value is not an
        integer or the result would overflow (nothing is changed then).
        """
        rounds = 0
        while True:
            params = self.incr_params(store, key, delta, now)
            result = self.incr_existing(connection, store, key, delta, now)
            if result is not None:
                return result
            counter = StoredRow(store, key, None, delta, INTEGER_FORMAT, None, now)
            if self.update(connection, self.sql_replace_expired, row_params(counter, now=now)):
                return delta
            error = self.insert(connection, counter)
            if error is None:
                return delta
            live = self.live_row(connection, params)
            if live is not None:
                integer, serializer_name = live
                if serializer_name != INTEGER_FORMAT or not (
                    params["low"] <= integer <= params["high"]
                ):
                    return None
            # Gone, expired or become a counter meanwhile: again, now.
            rounds = self.again(error, rounds)
            now = adapted_now(connection)

    def incr_existing(
        self, connection: BaseDatabaseWrapper, store: str, key: str, delta: int, now: Any
    ) -> int | None:
        """Add ``delta`` to a live integer pair, then read it, in one transaction."""
        params = self.incr_params(store, key, delta, now)

        def update_then_read() -> Any:
            with connection.cursor() as cursor:
                self.execute(cursor, self.sql_incr_existing_update, params)
                if cursor.rowcount != 1:
                    return None
                self.execute(cursor, self.sql_select_integer, params)
                return int(cursor.fetchone()[0])

        result: int | None = self.in_transaction(connection, update_then_read)
        return result

    def acquire_lock(self, connection: BaseDatabaseWrapper, params: dict[str, Any]) -> int | None:
        """Take the lock row with an ``UPDATE`` or an ``INSERT``, in one transaction."""
        return self.acquire_lock_in_steps(connection, params)

    # -- many keys and whole stores --------------------------------------------

    def row_batches(self, rows: Sequence[StoredRow]) -> Iterable[Sequence[StoredRow]]:
        """One row at a time: each is written by :meth:`set`."""
        for row in rows:
            yield [row]

    def set_many(self, connection: BaseDatabaseWrapper, rows: Sequence[StoredRow]) -> None:
        """Write each pair with :meth:`set` (the caller holds a transaction around them)."""
        for row in rows:
            self.set(connection, row)

    def delete_ids(
        self,
        connection: BaseDatabaseWrapper,
        ids: Sequence[Any],
        condition: str,
        params: Mapping[str, Any],
    ) -> int:
        """Delete the rows of ``ids`` that still meet ``condition``; return how many."""
        deleted = 0
        with connection.cursor() as cursor:
            for batch in self.batches(ids, 1):
                marks = ", ".join(["%s"] * len(batch))
                sql, positional = self.to_positional(condition, params)
                self.execute(
                    cursor,
                    f"DELETE FROM {self.table} WHERE {self.id} IN ({marks}) AND {sql}",
                    (*batch, *positional),
                )
                deleted += cursor.rowcount
        return deleted

    def select_ids(
        self, connection: BaseDatabaseWrapper, sql: str, params: Mapping[str, Any], size: int
    ) -> list[Any]:
        """Return the ids the ``SELECT`` finds, the first ``size`` of them."""
        with connection.cursor() as cursor:
            self.execute(cursor, f"{sql} {self.limit_sql(connection, size)}", params)
            return [row_id for (row_id,) in cursor.fetchall()]

    def cull(self, connection: BaseDatabaseWrapper, now: Any, batch_size: int) -> int:
        """Find up to ``batch_size`` expired rows, then delete those still expired."""
        params = {"now": now}
        ids = self.select_ids(connection, self.sql_cull_select, params, batch_size)
        if not ids:
            return 0
        return self.delete_ids(connection, ids, f"{self.expires} <= %(now)s", params)

    def delete_soonest_expiring(
        self, connection: BaseDatabaseWrapper, store: str, count: int, spare_since: Any
    ) -> int:
        """Find the rows to trim, then delete them (those not written since ``spare_since``)."""
        params = {"store": store, "spare_since": spare_since}
        ids = self.select_ids(connection, self.sql_soonest_expiring_select, params, count)
        if not ids:
            return 0
        return self.delete_ids(connection, ids, f"{self.updated} < %(spare_since)s", params)
