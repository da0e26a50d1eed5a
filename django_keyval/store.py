"""``KeyVal``: named stores of key-value pairs, kept in the project's database.

Import it from :mod:`django_keyval.models`, as the package always documented::

    from django_keyval.models import KeyVal
"""

from __future__ import annotations

import datetime
import functools
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from typing import Any, TypeVar

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from . import clock
from .async_api import AsyncMethods
from .backends import BaseOperations
from .clock import adapt_datetime, adapted_now
from .conf import keyval_settings
from .descriptors import StoreOrClassMethod
from .encoding import INT64_MAX, INT64_MIN, decode_value, encode_value
from .exceptions import (
    ArgumentTypeError,
    InvalidArgumentError,
    InvalidKeyError,
    KeyNotFoundError,
    KeyValError,
    NotAnIntegerError,
    StoreDisconnectedError,
    UpdateConflictError,
)
from .locks import Lock
from .rows import ROW_ID_FACTOR, PageBounds, PageRow, StoredRow, ValueRow
from .serializers import (
    BUILTIN_FORMATS,
    INTEGER_FORMAT,
    SERIALIZER_FORMATS,
    Serializer,
    get_serializer,
)
from .table import Table, table
from .validation import (
    MAX_KEY_LENGTH,
    Timeout,
    expiry_from_timeout,
    validate_key,
    validate_store_name,
    validate_text,
)

__all__ = ["KeyVal", "stored_rows"]

_T = TypeVar("_T")


# Stands for "no value" where None is a value a user may store.
_MISSING: Any = object()
# Stands for "keep the pair's expiry" where None means "never expire".
_KEEP: Any = object()

#: Versions are below this: a row id and a write counter, each under 2**63.
MAX_VERSION = ROW_ID_FACTOR * ROW_ID_FACTOR

#: How many lost races :meth:`KeyVal.update` retries by default.
UPDATE_RETRIES = 100
#: The longest pause, in seconds, before ``update`` tries again after a lost race.
UPDATE_MAX_PAUSE = 0.05

#: Rows fetched per query while iterating over keys, values or items.
ITERATION_CHUNK_SIZE = 1000
#: Values up to this size come with their page of keys; longer ones are
#: fetched apart, ``ITERATION_CHUNK_BYTES`` at a time (or one alone), so that
#: iterating holds a bounded number of bytes whatever the size of the values.
ITERATION_INLINE_BYTES = 8 * 1024
ITERATION_CHUNK_BYTES = 8 * 1024 * 1024


class KeyVal(AsyncMethods):
    """A named store of key-value pairs.

    ``KeyVal(name)`` connects to the store ``name`` (any non-empty string of
    up to 200 characters). Keys are strings of up to 500 characters; values
    may be anything the store's serializer accepts (with the default, signed
    pickle, anything that can be pickled). The same key in two stores is two
    independent pairs.

    ``using`` picks a database alias; without it, the database routers'
    ``db_for_read``/``db_for_write`` decide, as for any model.
    ``serializer`` (``"pickle"``, ``"json"`` or a dotted path) overrides the
    ``KEYVAL_SERIALIZER`` setting for values this store writes.

    >>> kv = KeyVal("docs.example")
    >>> kv.set("greeting", {"text": "hi"})
    True
    >>> kv.get("greeting")
    {'text': 'hi'}
    >>> kv.flush()
    """

    def __init__(self, name: str, using: str | None = None, serializer: str | None = None) -> None:
        validate_store_name(name)
        if using is not None:
            if not isinstance(using, str):
                raise ArgumentTypeError(
                    f"a database alias must be a str, not {type(using).__name__}"
                )
            if using not in connections.settings:
                raise InvalidKeyError(f"there is no database {using!r} in DATABASES")
        if serializer is not None:
            get_serializer(serializer)  # fail now, not at the first write
        self._name = name
        self._using = using
        self._serializer_spec = serializer
        self._connected = True

    @classmethod
    def connect(cls, name: str, using: str | None = None, serializer: str | None = None) -> KeyVal:
        """Return a store connected to ``name``; the same as ``KeyVal(name)``."""
        return cls(name, using=using, serializer=serializer)

    def __repr__(self) -> str:
        state = "" if self._connected else " (disconnected)"
        using = f" using {self._using!r}" if self._using else ""
        return f"<KeyVal {self._name!r}{using}{state}>"

    @property
    def name(self) -> str:
        """The store's name."""
        return self._name

    @property
    def using(self) -> str | None:
        """The database alias given to the constructor, or ``None`` to follow the routers."""
        return self._using

    def routed(self, write: bool = False) -> KeyVal:
        """Return this store bound to the database its reads (or writes) go to now.

        Without ``using``, each operation asks the routers where to go; a
        caller whose operations must stay on one database (or that must say
        which) routes once with this and uses the result, whose
        :attr:`using` names the database. With ``using``, the store itself
        is returned.
        """
        if self._using is not None:
            self._check_connected()
            return self
        return self.bound_to(self._table(write).alias)

    def bound_to(self, alias: str) -> KeyVal:
        """Return this store, with the same serializer, on the database ``alias``."""
        self._check_connected()
        return KeyVal(self._name, using=alias, serializer=self._serializer_spec)

    @property
    def connected(self) -> bool:
        """``False`` once :meth:`disconnect` was called."""
        return self._connected

    def disconnect(self, name: str | None = None) -> None:
        """Refuse any further use of this instance, except :meth:`flush_all`.

        The pairs stay in the database: a new ``KeyVal(name)`` sees them.
        ``name``, if given, must be this store's name.
        """
        self._check_connected()
        if name is not None:
            validate_store_name(name)
            if name != self._name:
                raise InvalidKeyError(
                    f"this KeyVal is connected to {self._name!r}, not to {name!r}"
                )
        self._connected = False

    # -- plumbing ------------------------------------------------------------

    def _check_connected(self) -> None:
        if not self._connected:
            raise StoreDisconnectedError(
                f"the KeyVal for store {self._name!r} was disconnected; "
                "create a new KeyVal to use the store again"
            )

    def _table(self, write: bool) -> Table:
        """The table this operation runs on: ``using``, or the routers' choice for the store."""
        self._check_connected()
        return table(self._using, write, self._name)

    def _serializer_spec_in_use(self) -> str:
        """The serializer this store writes with, as given: a built-in name or a dotted path."""
        return self._serializer_spec or keyval_settings.SERIALIZER

    def _serializer(self) -> Serializer:
        return get_serializer(self._serializer_spec_in_use())

    def _encode(self, key: str, value: Any) -> tuple[Any, Any, str]:
        """Return ``(bytes or None, int or None, serializer name)`` for ``value``."""
        return encode_value(self._name, key, value, self._serializer_spec)

    def _decode(self, key: str, data: Any, integer: Any, serializer_name: str) -> Any:
        if serializer_name == INTEGER_FORMAT:
            return integer
        if serializer_name in BUILTIN_FORMATS:
            return decode_value(self._name, key, serializer_name, data, integer)
        return decode_value(self._name, key, serializer_name, data, integer, self._serializer())

    def _decode_row(self, row: ValueRow) -> Any:
        return self._decode(row.key, row.value, row.integer, row.serializer)

    def _prepare_write(
        self, key: str, value: Any, timeout: Timeout
    ) -> tuple[BaseDatabaseWrapper, BaseOperations, StoredRow, bool]:
        """Check and encode a write: the database, its row, and whether it has a timeout.

        The row's ``updated_at`` is the adapted current time, which the
        statements also use to tell expired rows.
        """
        validate_key(key)
        _, connection, operations = self._table(write=True)
        now = clock.now()
        expires = expiry_from_timeout(timeout, now)
        adapted = None if expires is None else adapt_datetime(connection, expires)
        row = self._row(key, value, adapted, adapt_datetime(connection, now))
        return connection, operations, row, expires is not None

    def _row(self, key: str, value: Any, expires: Any, now: Any) -> StoredRow:
        data, integer, serializer_name = self._encode(key, value)
        return StoredRow(self._name, key, data, integer, serializer_name, expires, now)

    def _missing(self, key: str) -> KeyNotFoundError:
        return KeyNotFoundError(f"key {key!r} not found in store {self._name!r}")

    # -- the 0.1.2 API ---------------------------------------------------------

    def set(self, key: str, value: Any, timeout: Timeout = None) -> bool:
        """Store ``value`` under ``key``, replacing any value it had.

        Return ``True`` if the key was new (or had expired) and ``False`` if a
        value was overwritten; exact when several processes write the key at
        once. ``timeout`` is in seconds (or a ``timedelta``); ``None`` never
        expires.
        """
        connection, operations, row, timed = self._prepare_write(key, value, timeout)
        created = operations.set(connection, row)
        if timed:
            _cull_on_write(connection, operations, row.updated_at)
        return created

    def get(self, key: str) -> Any:
        """Return the value of ``key``.

        Raise :class:`~django_keyval.exceptions.KeyNotFoundError` if it is missing.
        """
        value = self.get_default(key, _MISSING)
        if value is _MISSING:
            raise self._missing(key)
        return value

    def get_default(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` if it is missing."""
        validate_key(key)
        _, connection, operations = self._table(write=False)
        row = operations.get(connection, self._name, key)
        if row is None:
            return default
        return self._decode(key, *row)

    def pop(self, key: str) -> Any:
        """Delete ``key`` and return its value.

        Raise :class:`~django_keyval.exceptions.KeyNotFoundError` if it is missing.

        Atomic: of several callers popping the same key, one gets the value.
        """
        value = self.pop_default(key, _MISSING)
        if value is _MISSING:
            raise self._missing(key)
        return value

    def pop_default(self, key: str, default: Any = None) -> Any:
        """Delete ``key`` and return its value, or return ``default`` if it is missing.

        A value that cannot be decoded (a failed signature check, a
        serializer that is missing or fails) stays stored, and the error is
        raised.
        """
        validate_key(key)
        _, connection, operations = self._table(write=True)
        spec = self._serializer_spec_in_use()
        if not (isinstance(spec, str) and spec in SERIALIZER_FORMATS):
            # A custom serializer is code that may fail in any way: its module
            # may not import, its constructor or its loads() may raise. The
            # delete and the decode share one transaction, so whatever
            # happens the row is never gone without its value returned.
            return operations.in_transaction(
                connection, lambda: self._pop_and_decode(connection, operations, key, default)
            )
        row = operations.pop(connection, self._name, key)
        if row is None:
            return default
        data, integer, serializer_name, expires = row
        try:
            return self._decode(key, data, integer, serializer_name)
        except BaseException:
            # Only built-in formats are decoded here, which cannot run user
            # code; a pickle that fails its signature check, a row of a
            # serializer that is not configured, or an interruption while
            # unpickling, put the row back (unless the key was set again
            # meanwhile), expiry included.
            stored = StoredRow(
                self._name, key, data, integer, serializer_name, expires, adapted_now(connection)
            )
            operations.add(connection, stored)
            raise

    def _pop_and_decode(
        self, connection: BaseDatabaseWrapper, operations: BaseOperations, key: str, default: Any
    ) -> Any:
        row = operations.pop(connection, self._name, key)
        if row is None:
            return default
        data, integer, serializer_name, _ = row
        return self._decode(key, data, integer, serializer_name)

    def exists(self, key: str) -> bool:
        """Return whether ``key`` has a value (that has not expired)."""
        validate_key(key)
        _, connection, operations = self._table(write=False)
        return operations.exists(connection, self._name, key)

    def delete(self, key: str, ignore_keyerror: bool = False) -> bool:
        """Delete ``key``; return ``True`` if it existed.

        A missing key raises :class:`~django_keyval.exceptions.KeyNotFoundError`,
        or returns ``False`` when ``ignore_keyerror`` is true.
        """
        validate_key(key)
        _, connection, operations = self._table(write=True)
        deleted = operations.delete(connection, self._name, key)
        if not deleted and not ignore_keyerror:
            raise self._missing(key)
        return deleted

    def flush(self) -> None:
        """Delete every pair of this store (expired ones too), and no other.

        Return ``None``, as 0.1.2 and ``dict.clear()`` do.
        """
        _, connection, operations = self._table(write=True)
        operations.flush(connection, self._name)

    @StoreOrClassMethod
    def flush_all(self_or_cls: Any, using: str | None = None) -> None:  # noqa: N805
        """Delete every pair of every store on one database; return ``None``, as 0.1.2 did.

        Call it on the class (``KeyVal.flush_all()``) or on any instance, even
        a disconnected one; on an instance, its database is used. The
        database is ``using``, else the instance's, else the routers'
        ``db_for_write(KeyValPair)`` (without a store hint): with stores
        spread over several databases, call it once for each.
        """
        _, connection, operations = table(_alias_of(self_or_cls, using), write=True)
        operations.flush_all(connection)

    # -- expiry ------------------------------------------------------------------

    def add(self, key: str, value: Any, timeout: Timeout = None) -> bool:
        """Store ``value`` only if ``key`` is missing (or expired); return whether it was stored.

        Atomic: of several callers adding the same key at once, exactly one wins.
        """
        connection, operations, row, timed = self._prepare_write(key, value, timeout)
        added = operations.add(connection, row)
        if timed:
            _cull_on_write(connection, operations, row.updated_at)
        return added

    def touch(self, key: str, timeout: Timeout) -> bool:
        """Give ``key`` a new timeout (``None``: never expire); ``False`` if it is missing.

        ``timeout`` has no default: forgetting it must not make a pair permanent.
        """
        validate_key(key)
        _, connection, operations = self._table(write=True)
        now = clock.now()
        adapt = functools.partial(adapt_datetime, connection)
        expires = adapt(expiry_from_timeout(timeout, now))
        return operations.touch(connection, self._name, key, expires, adapt(now))

    def expires_at(self, key: str) -> datetime.datetime | None:
        """Return when ``key`` expires (an aware datetime), or ``None`` if never.

        Raise :class:`~django_keyval.exceptions.KeyNotFoundError` if it is missing.
        """
        validate_key(key)
        _, connection, operations = self._table(write=False)
        found = operations.expiry(connection, self._name, key, adapted_now(connection))
        if found is None:
            raise self._missing(key)
        expires = operations.expiry_datetime(connection, found[0])
        if expires is not None and timezone.is_naive(expires):
            expires = timezone.make_aware(expires)
        return expires

    @StoreOrClassMethod
    def cull(self_or_cls: Any, using: str | None = None) -> int:  # noqa: N805
        """Delete the expired pairs of every store, in bounded batches; return how many.

        Pairs without a timeout are never culled. Works on the class and on
        instances, and on one database, like :meth:`flush_all`.
        """
        if isinstance(self_or_cls, KeyVal):
            self_or_cls._check_connected()
        _, connection, operations = table(_alias_of(self_or_cls, using), write=True)
        batch_size = keyval_settings.CULL_BATCH_SIZE
        total = 0
        while True:
            deleted = operations.cull(connection, adapted_now(connection), batch_size)
            total += deleted
            if deleted < batch_size:
                return total

    # -- counters ----------------------------------------------------------------

    def incr(self, key: str, delta: int = 1, *, create: bool = True) -> int:
        """Add ``delta`` to the integer value of ``key`` and return the result.

        A missing key counts as 0, so the first ``incr`` stores ``delta``;
        with ``create=False`` a missing (or expired) key raises
        :class:`~django_keyval.exceptions.KeyNotFoundError` instead and
        nothing is stored. The addition happens in the database: concurrent
        calls never lose an update. The pair keeps its expiry. A value that
        is not an ``int`` raises
        :class:`~django_keyval.exceptions.NotAnIntegerError`; a result
        outside 64 bits raises :class:`~django_keyval.exceptions.CounterOverflowError`.
        Either way the stored value is unchanged.
        """
        validate_key(key)
        if type(delta) is not int:
            raise ArgumentTypeError(f"delta must be an int, not {type(delta).__name__}")
        _, connection, operations = self._table(write=True)
        if not INT64_MIN <= delta <= INT64_MAX:
            raise operations.overflow_error(delta)
        while True:
            now = adapted_now(connection)
            if create:
                result = operations.incr(connection, self._name, key, delta, now)
            else:
                result = operations.incr_existing(connection, self._name, key, delta, now)
            if result is not None:
                return result
            # Nothing changed: find out why, with the value as it is now.
            row = operations.get(connection, self._name, key)
            if row is None:
                if not create:
                    raise self._missing(key)
                continue  # deleted meanwhile: start again from 0
            data, integer, serializer_name = row
            if serializer_name != INTEGER_FORMAT:
                what = "is not an integer"
                with suppress(KeyValError):
                    current = self._decode(key, data, integer, serializer_name)
                    if type(current) is int:
                        # Stored pickled: it does not fit the integer column.
                        what = "is an integer outside the signed 64-bit range incr works in"
                    else:
                        what = f"is not an integer but a {type(current).__name__}"
                        shown = _short_repr(current)
                        if shown is not None:
                            what += f", {shown}"
                raise NotAnIntegerError(f"the value of key {key!r} in store {self._name!r} {what}")
            if not create and integer is not None and INT64_MIN <= integer + delta <= INT64_MAX:
                continue  # changed meanwhile (expired, or set again): try again
            raise operations.overflow_error(delta)

    def decr(self, key: str, delta: int = 1, *, create: bool = True) -> int:
        """Subtract ``delta`` from the integer value of ``key``; see :meth:`incr`."""
        if type(delta) is not int:
            raise ArgumentTypeError(f"delta must be an int, not {type(delta).__name__}")
        return self.incr(key, -delta, create=create)

    def trim(
        self,
        max_entries: int,
        cull_frequency: int = 3,
        spare_since: datetime.datetime | None = None,
    ) -> int:
        """Keep this store at ``max_entries`` pairs or fewer; return how many pairs were deleted.

        When the store holds more rows than ``max_entries`` (expired ones
        count), its expired pairs are deleted first; if that is not enough,
        ``1/cull_frequency`` of the rest go (``0``: all of them), those that
        expire soonest first and pairs without expiry last. Pairs written at
        or after ``spare_since`` (an aware datetime) are never deleted: a
        writer passes the time it started, so its own pairs stay. Only this
        store is counted and trimmed; one ``COUNT`` query when nothing is
        to be done.
        """
        return self.trim_and_count(max_entries, cull_frequency, spare_since)[1]

    def trim_and_count(
        self,
        max_entries: int,
        cull_frequency: int = 3,
        spare_since: datetime.datetime | None = None,
    ) -> tuple[int, int]:
        """:meth:`trim`, also returning how many rows the store held.

        Return ``(counted, deleted)``: the store's rows when counted
        (expired ones included) and how many of them were deleted, so that
        ``counted - deleted`` rows were left. A caller that adds pairs can
        then tell how many more fit before it needs to count again
        (:class:`~django_keyval.cache.KeyValCache` does).
        """
        for name, number in (("max_entries", max_entries), ("cull_frequency", cull_frequency)):
            if type(number) is not int:
                raise ArgumentTypeError(f"{name} must be an int, not {type(number).__name__}")
        if cull_frequency < 0:
            raise InvalidKeyError(f"cull_frequency must be 0 or more, not {cull_frequency}")
        _, connection, operations = self._table(write=True)
        rows = operations.count_rows(connection, self._name)
        if rows <= max_entries:
            return rows, 0
        now = clock.now()
        adapt = functools.partial(adapt_datetime, connection)
        deleted = operations.delete_expired_of_store(connection, self._name, adapt(now))
        remaining = rows - deleted
        if remaining <= max_entries:
            return rows, deleted
        count = remaining if cull_frequency == 0 else remaining // cull_frequency
        if count:
            spare = adapt(now if spare_since is None else spare_since)
            deleted += operations.delete_soonest_expiring(connection, self._name, count, spare)
        return rows, deleted

    # -- many keys -----------------------------------------------------------------

    def _keys_list(self, keys: Iterable[str]) -> list[str]:
        """Return the distinct keys, sorted, so every caller locks rows in one order."""
        if isinstance(keys, (str, bytes)):
            raise ArgumentTypeError("keys must be an iterable of str, not a single str")
        key_list = list(keys)
        for key in key_list:
            validate_key(key)
        return sorted(set(key_list))

    def get_many(self, keys: Iterable[str], *, delete_expired: bool = False) -> dict[str, Any]:
        """Return ``{key: value}`` for those of ``keys`` that exist, in one query per 1000 keys.

        With ``delete_expired``, the expired pairs found among ``keys`` are
        deleted too, in one more statement when there are any (as Django's
        database cache does when it reads them).
        """
        key_list = self._keys_list(keys)
        _, connection, operations = self._table(write=False)
        if not key_list:
            return {}
        if delete_expired:
            rows = self._get_many_deleting_expired(connection, operations, key_list)
        else:
            rows = operations.get_many(connection, self._name, key_list, adapted_now(connection))
        found = {row.key: self._decode_row(row) for row in rows}
        return {key: found[key] for key in key_list if key in found}

    def _get_many_deleting_expired(
        self, connection: BaseDatabaseWrapper, operations: BaseOperations, key_list: list[str]
    ) -> list[ValueRow]:
        live: list[ValueRow] = []
        expired: list[str] = []
        rows = operations.get_many_with_expiry(connection, self._name, key_list)
        now = adapted_now(connection)
        for row in rows:
            if row.expires_at is None or operations.is_live(connection, row.expires_at, now):
                live.append(row)
            else:
                expired.append(row.key)
        if expired:
            _, write_connection, write_operations = self._table(write=True)
            write_operations.delete_expired_keys(
                write_connection, self._name, expired, adapted_now(write_connection)
            )
        return live

    def set_many(self, mapping: Mapping[str, Any], timeout: Timeout = None) -> None:
        """Store every pair of ``mapping``, all or none, in one transaction.

        Every value is serialized before the first query, so a value that
        cannot be stored leaves the store as it was.
        """
        if not isinstance(mapping, Mapping):
            raise ArgumentTypeError(f"set_many() takes a mapping, not {type(mapping).__name__}")
        db = self._table(write=True)
        connection, operations = db.connection, db.operations
        now = clock.now()
        expires = expiry_from_timeout(timeout, now)
        db_expires, db_now = db.adapt(expires), db.adapt(now)
        rows: list[StoredRow] = []
        for key, value in mapping.items():
            validate_key(key)
            rows.append(self._row(key, value, db_expires, db_now))
        if not rows:
            return
        rows.sort(key=lambda row: row.key)  # one lock order for every caller: no deadlocks
        db.atomic_unless_single(
            lambda: operations.set_many(connection, rows),
            single=_counts_one(operations.row_batches(rows)),
        )
        if expires is not None:
            _cull_on_write(connection, operations, db_now)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete those of ``keys`` that exist, in one transaction; return how many."""
        key_list = self._keys_list(keys)
        db = self._table(write=True)
        if not key_list:
            return 0
        return db.atomic_unless_single(
            lambda: db.operations.delete_many(db.connection, self._name, key_list, db.now()),
            single=_counts_one(db.operations.batches(key_list, 1)),
        )

    # -- listing ---------------------------------------------------------------------

    def _first_page(
        self, prefix: str, size: int
    ) -> tuple[BaseDatabaseWrapper, BaseOperations, PageBounds]:
        """Return the database and the bounds of the first page of keys starting with ``prefix``."""
        validate_text(prefix, "prefix", MAX_KEY_LENGTH)
        _, connection, operations = self._table(write=False)
        high = _prefix_upper_bound(prefix)
        bounds = PageBounds(self._name, prefix, True, high, adapted_now(connection), size)
        return connection, operations, bounds

    def _page_keys(self, prefix: str) -> Iterator[str]:
        """Iterate over the live keys starting with ``prefix``, in order, a page at a time."""
        connection, operations, bounds = self._first_page(prefix, ITERATION_CHUNK_SIZE)

        def keys(bounds: PageBounds) -> Iterator[str]:
            while True:
                page = operations.page_keys(connection, bounds)
                yield from page
                if len(page) < bounds.size:
                    return
                bounds = bounds._replace(low=page[-1], inclusive=False)

        return keys(bounds)

    def _page_through(self, prefix: str, page_size: int | None = None) -> Iterator[ValueRow]:
        """Iterate over the live rows whose key starts with ``prefix``, in key order.

        Rows are fetched ``page_size`` (default ``ITERATION_CHUNK_SIZE``) at
        a time, and long values apart (see :meth:`_fill_long_values`).
        """
        size = page_size or ITERATION_CHUNK_SIZE
        connection, operations, bounds = self._first_page(prefix, size)

        def rows(bounds: PageBounds) -> Iterator[ValueRow]:
            while True:
                page = operations.page(connection, bounds, ITERATION_INLINE_BYTES)
                yield from self._fill_long_values(connection, operations, page, bounds.now)
                if len(page) < bounds.size:
                    return
                bounds = bounds._replace(low=page[-1].key, inclusive=False)

        return rows(bounds)

    def _fill_long_values(
        self,
        connection: BaseDatabaseWrapper,
        operations: BaseOperations,
        page: list[PageRow],
        now: Any,
    ) -> Iterator[ValueRow]:
        """Yield the rows of ``page`` in order, fetching the values it left out.

        Those are fetched a few at a time, at most ``ITERATION_CHUNK_BYTES``
        together (or one alone); a pair deleted meanwhile is skipped.
        """
        start = 0
        while start < len(page):
            keys: list[str] = []
            size = 0
            end = start
            while end < len(page):
                row = page[end]
                if row.value is None and row.length is not None:
                    if keys and size + row.length > ITERATION_CHUNK_BYTES:
                        break
                    keys.append(row.key)
                    size += row.length
                end += 1
            fetched = {}
            if keys:
                fetched = {
                    row.key: row for row in operations.get_many(connection, self._name, keys, now)
                }
            for row in page[start:end]:
                if row.value is None and row.length is not None:
                    if row.key in fetched:
                        yield fetched[row.key]
                else:
                    yield row.value_row()
            start = end

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Iterate over the keys (starting with ``prefix``) in code point order.

        Rows are fetched 1000 at a time, and long values apart at most 8 MiB
        at a time, so memory stays flat however large the store.
        ``%`` and ``_`` in ``prefix`` are plain characters.
        """
        return self._page_keys(prefix)

    def values(self, prefix: str = "") -> Iterator[Any]:
        """Iterate over the values of the keys starting with ``prefix``, in key order."""
        return (value for _, value in self.items(prefix))

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """Iterate over ``(key, value)`` pairs whose key starts with ``prefix``, in key order."""
        return ((row.key, self._decode_row(row)) for row in self._page_through(prefix))

    def count(self) -> int:
        """Return the number of pairs in this store; ``len(kv)`` does the same."""
        _, connection, operations = self._table(write=False)
        return operations.count(connection, self._name, adapted_now(connection))

    @StoreOrClassMethod
    def stores(self_or_cls: Any, using: str | None = None) -> list[str]:  # noqa: N805
        """Return the names of the stores that hold pairs on one database, sorted.

        The database is chosen as for :meth:`flush_all` (the routers'
        ``db_for_read`` without a store hint, unless ``using`` names one).
        """
        if isinstance(self_or_cls, KeyVal):
            self_or_cls._check_connected()
        _, connection, operations = table(_alias_of(self_or_cls, using), write=False)
        return operations.stores(connection, adapted_now(connection))

    # -- versions, compare-and-set, update and locks ---------------------------------

    def get_versioned(self, key: str) -> tuple[Any, int]:
        """Return ``(value, version)`` of ``key``.

        The version is a positive integer that goes up by one whenever the
        pair's value or expiry changes, and never comes back over the key's
        whole history: a key deleted (or expired) and created again gets a
        larger version than any it had before. Pass it to :meth:`cas`.
        Raise :class:`~django_keyval.exceptions.KeyNotFoundError` if it is missing.
        """
        validate_key(key)
        _, connection, operations = self._table(write=False)
        row = operations.get_versioned(connection, self._name, key, adapted_now(connection))
        if row is None:
            raise self._missing(key)
        return self._decode(key, row.value, row.integer, row.serializer), row.version

    def get_many_versioned(self, keys: Iterable[str]) -> dict[str, tuple[Any, int]]:
        """Return ``{key: (value, version)}`` for those of ``keys`` that exist."""
        key_list = self._keys_list(keys)
        _, connection, operations = self._table(write=False)
        if not key_list:
            return {}
        rows = operations.get_many_versioned(
            connection, self._name, key_list, adapted_now(connection)
        )
        found = {
            row.key: (self._decode(row.key, row.value, row.integer, row.serializer), row.version)
            for row in rows
        }
        return {key: found[key] for key in key_list if key in found}

    def cas(self, key: str, value: Any, version: int, timeout: Timeout = None) -> bool:
        """Store ``value`` only if ``key``'s version is still ``version``; return whether it was.

        Compare-and-set: the pair must exist, be live and have the version
        read with :meth:`get_versioned`, else nothing is written and the
        result is ``False``. The test and the write are one statement.
        ``version=0`` means "only if ``key`` is missing", as :meth:`add`.
        ``timeout`` is the pair's new timeout, as for :meth:`set` (``None``:
        never expire).
        """
        _check_version(version)
        connection, operations, row, timed = self._prepare_write(key, value, timeout)
        if version == 0:
            written = operations.add(connection, row)
        else:
            written = operations.cas(connection, row, version, keep_expiry=False)
        if timed:
            _cull_on_write(connection, operations, row.updated_at)
        return written

    def update(
        self,
        key: str,
        function: Callable[[Any], Any],
        default: Any = _MISSING,
        timeout: Timeout = _KEEP,
        retries: int = UPDATE_RETRIES,
    ) -> Any:
        """Replace the value of ``key`` with ``function(value)``, atomically; return the new value.

        The value is read with its version and written back with :meth:`cas`;
        if another writer changed the pair in between, it starts again with
        the new value. So ``function`` may be called several times: it must
        not have side effects, nor change its argument in place. An exception
        it raises leaves the pair as it was.

        A missing key is updated from ``default`` (none given: raise
        :class:`~django_keyval.exceptions.KeyNotFoundError`). The pair keeps
        its expiry unless a ``timeout`` is given (``None``: never expire).
        After ``retries`` lost races in a row, raise
        :class:`~django_keyval.exceptions.UpdateConflictError`.
        """
        validate_key(key)
        if not callable(function):
            raise ArgumentTypeError(
                f"update() needs a callable function, not {type(function).__name__}"
            )
        if type(retries) is not int:
            raise ArgumentTypeError(f"retries must be an int, not {type(retries).__name__}")
        if retries < 0:
            raise InvalidArgumentError(f"retries must be >= 0, not {retries}")
        if timeout is not _KEEP:
            expiry_from_timeout(timeout, clock.now())  # refuse a bad timeout before reading
        # Read where the write goes: a lagging replica would only lose races.
        _, connection, operations = self._table(write=True)
        adapt = functools.partial(adapt_datetime, connection)
        for attempt in range(retries + 1):
            if attempt:
                # Random pauses that grow let the writers that collided spread out.
                time.sleep(random.uniform(0, min(UPDATE_MAX_PAUSE, 0.001 * 2**attempt)))
            stored = operations.get_versioned(connection, self._name, key, adapted_now(connection))
            if stored is None:
                if default is _MISSING:
                    raise self._missing(key)
                current, version = default, 0
            else:
                current = self._decode(key, stored.value, stored.integer, stored.serializer)
                version = stored.version
            new_value = function(current)
            now = clock.now()
            keep = timeout is _KEEP
            expires = None if keep else expiry_from_timeout(timeout, now)
            row = self._row(key, new_value, adapt(expires), adapt(now))
            if version == 0:
                written = operations.add(connection, row)
            else:
                written = operations.cas(connection, row, version, keep_expiry=keep)
            if written:
                if expires is not None:
                    _cull_on_write(connection, operations, row.updated_at)
                return new_value
        raise UpdateConflictError(
            f"update() of key {key!r} in store {self._name!r} lost the race to other writers "
            f"{retries + 1} times in a row; nothing was written"
        )

    def lock(
        self,
        name: str,
        timeout: float | datetime.timedelta,
        blocking: bool = True,
        blocking_timeout: float | datetime.timedelta | None = None,
    ) -> Lock:
        """Return a :class:`~django_keyval.locks.Lock` on ``name``, with a lease of ``timeout``.

        The lock is not taken yet: use the result in a ``with`` statement, or
        call its ``acquire()``. ``timeout`` (at least 0.001 seconds, or a
        ``timedelta``) is how long a holder keeps the lock if it never
        releases it, because it died for instance. ``blocking`` and
        ``blocking_timeout`` (``None``: wait without end) are the defaults of
        ``acquire()``. The lock lives in this store as the pair ``name``.
        """
        validate_key(name)
        self._check_connected()

        def database() -> Table:
            return self._table(write=True)

        return Lock(database, self._name, name, timeout, blocking, blocking_timeout)

    # -- dict-style access ---------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    def __contains__(self, key: object) -> bool:
        return self.exists(key)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[str]:
        return self.keys()


def stored_rows(
    store: KeyVal, page_size: int | None = None, prefix: str = ""
) -> Iterator[ValueRow]:
    """Iterate over the live pairs of ``store`` (whose key starts with ``prefix``), in key order.

    Each :class:`~django_keyval.rows.ValueRow` holds the value
    undecoded (bytes and serializer name, or the integer) and its expiry as
    a datetime (aware when ``USE_TZ`` is on), or ``None``. The pages are
    those of :meth:`KeyVal.items`, ``page_size`` rows at a time (default
    ``ITERATION_CHUNK_SIZE``), with long values fetched apart, so memory
    stays bounded in rows and in bytes; export reads a store this way.
    """
    _, connection, operations = store._table(write=False)
    for row in store._page_through(prefix, page_size):
        if row.expires_at is None:
            yield row
        else:
            yield row._replace(expires_at=operations.expiry_datetime(connection, row.expires_at))


def _check_version(version: Any) -> None:
    """Refuse a version that is not an ``int`` that :meth:`KeyVal.get_versioned` can return."""
    if type(version) is not int:
        raise ArgumentTypeError(f"a version must be an int, not {type(version).__name__}")
    if not 0 <= version < MAX_VERSION:
        raise InvalidArgumentError(f"a version must be between 0 and 2**126 - 1, not {version}")


def _alias_of(self_or_cls: Any, using: str | None) -> str | None:
    if using is None and isinstance(self_or_cls, KeyVal):
        return self_or_cls._using
    return using


def _counts_one(batches: Iterable[Any]) -> bool:
    """Return whether ``batches`` holds a single batch."""
    return sum(1 for _ in batches) == 1


_timed_writes = 0


def _cull_on_write(connection: BaseDatabaseWrapper, operations: BaseOperations, now: Any) -> None:
    """Every ``KEYVAL_CULL_EVERY`` writes with a timeout, delete one batch of expired rows."""
    global _timed_writes
    every = keyval_settings.CULL_EVERY
    if every <= 0:
        return
    _timed_writes += 1
    if _timed_writes % every == 0:
        operations.cull(connection, now, keyval_settings.CULL_BATCH_SIZE)


def _short_repr(value: Any, length: int = 40) -> str | None:
    """Return the ``repr()`` of ``value`` cut to ``length`` characters; ``None`` if it fails."""
    if type(value) in (str, bytes) and len(value) > length:
        value = value[:length]  # no need to repr megabytes to show a few characters
    try:
        text = repr(value)
    except Exception:  # a user class whose __repr__ fails, an int too long for text
        return None
    return text if len(text) <= length else text[: length - 1] + "…"


def _prefix_upper_bound(prefix: str) -> str | None:
    """Return the smallest string above every string starting with ``prefix``.

    ``None`` when there is none (an empty prefix, or one of only U+10FFFF).
    """
    characters = list(prefix)
    while characters:
        code = ord(characters.pop()) + 1
        if code == 0xD800:
            code = 0xE000  # surrogates cannot be stored, so skip them
        if code <= 0x10FFFF:
            return "".join(characters) + chr(code)
    return None
