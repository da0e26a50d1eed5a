"""``KeyValCache``: Django's cache API on a store, in the project's own database.

::

    CACHES = {
        "default": {
            "BACKEND": "django_keyval.cache.KeyValCache",
            "LOCATION": "cache",  # the store the cache keeps its pairs in
        }
    }

It needs no table of its own (no ``createcachetable``): its pairs are rows of
the store ``LOCATION``, written as :class:`~django_keyval.models.KeyVal`
writes them.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

from . import clock
from .exceptions import DeserializationError, KeyNotFoundError, SerializationError
from .store import KeyVal
from .table import route
from .validation import MAX_KEY_LENGTH

__all__ = ["MAX_TIMEOUT", "KeyValCache", "stored_key"]

logger = logging.getLogger("django_keyval.cache")

#: Timeouts longer than this (about 1000 years) are stored as "never expires".
MAX_TIMEOUT = 1000 * 365 * 24 * 3600

#: The characters of a long key kept, readable, before its digest.
KEPT_KEY_CHARACTERS = 400
DIGEST_MARKER = "#sha256="

# What the store cannot hold in a key: NUL, and lone surrogates (not UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

_OPTIONS = frozenset({"MAX_ENTRIES", "CULL_FREQUENCY", "DATABASE"})


class _RowBudget:
    """How many rows a store held at this process's last count, and how many keys it added since.

    Shared by every cache of the process that writes the same store on the
    same database (Django makes one cache object per thread), so that they
    count for each other.
    """

    __slots__ = ("counted", "lock", "noted", "noted_at_count")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counted: int | None = None  # None: not counted yet, or forgotten
        self.noted = 0  # new keys noted, ever
        self.noted_at_count = 0  # ... when the count in ``counted`` began

    def needs_count(self, new_keys: int, max_entries: int) -> int | None:
        """Note ``new_keys`` added; return a mark for :meth:`record` if the store must be counted.

        It must once the store could hold more than ``max_entries`` rows, or
        once this process has used half the room left at its last count:
        other processes add keys too, and halving bounds what they can add
        unseen. Return ``None`` when no count is needed.
        """
        with self.lock:
            self.noted += new_keys
            if self.counted is not None:
                added = self.noted - self.noted_at_count
                room = max_entries - self.counted
                if self.counted + added <= max_entries and added <= room // 2:
                    return None
            # Until a count is recorded, every new key is counted.
            self.counted = None
            return self.noted

    def record(self, rows: int, mark: int) -> None:
        """Note that a count that began at ``mark`` (from :meth:`needs_count`) found ``rows``.

        Keys noted since ``mark`` (by other threads) stay noted, whether or
        not the count saw them.
        """
        with self.lock:
            if mark >= self.noted_at_count:
                self.counted, self.noted_at_count = rows, mark

    def forget(self) -> None:
        """Count again at the next new key (the store was cleared)."""
        with self.lock:
            self.counted = None


_budgets: dict[tuple[str, str], _RowBudget] = {}
_budgets_lock = threading.Lock()


def _budget_of(alias: str, location: str) -> _RowBudget:
    try:
        return _budgets[alias, location]
    except KeyError:
        with _budgets_lock:
            return _budgets.setdefault((alias, location), _RowBudget())


def stored_key(cache_key: str) -> str:
    """Return the store key that holds ``cache_key`` (the key after ``KEY_PREFIX`` and version).

    A key the store can hold is used as it is, unless it holds
    ``#sha256=``. Any other key (longer than 500 characters, holding a NUL
    or a lone surrogate, or holding ``#sha256=``) becomes its first 400
    characters that the store can hold, ``#sha256=`` and the SHA-256 digest
    of the whole key in hex: at most 472 characters, the same every time.

    So a key kept as it is never holds ``#sha256=`` and a digested key
    always does: no key can be passed in the stored form of another to
    reach its row, and two digested keys share a row only if their SHA-256
    digests are equal.
    """
    if (
        len(cache_key) <= MAX_KEY_LENGTH
        and DIGEST_MARKER not in cache_key
        and not _UNSTORABLE.search(cache_key)
    ):
        return cache_key
    digest = hashlib.sha256(cache_key.encode("utf-8", "surrogatepass")).hexdigest()
    kept = _UNSTORABLE.sub("", cache_key[:KEPT_KEY_CHARACTERS])
    return f"{kept}{DIGEST_MARKER}{digest}"


def _pickling_error(error: SerializationError) -> BaseException:
    """Return what pickling raised (``pickle.PickleError``...): Django's caches raise it."""
    return error.__cause__ or error


class KeyValCache(BaseCache):
    """A Django cache backend that keeps its pairs in the store named by ``LOCATION``.

    ``OPTIONS``:

    ``MAX_ENTRIES`` (default 300)
        The most pairs the store keeps. When the store holds more than
        ``MAX_ENTRIES`` rows, the write that added the key too many deletes
        its expired pairs, then, if still needed, ``1/CULL_FREQUENCY`` of the
        others, soonest to expire first; the pairs of the write itself stay.
        Not every new key costs a ``COUNT``: each process counts the store
        again once its new keys could have filled it, or half the room left
        at its last count (see :doc:`cache`). ``None``: never count or cull.
    ``CULL_FREQUENCY`` (default 3)
        The fraction deleted as above; ``0`` deletes every other pair.
    ``DATABASE``
        The database alias to use; without it the database routers decide,
        as for :class:`~django_keyval.models.KeyVal`.

    Values are written as the store writes them: ``int`` values in the
    integer column (so :meth:`incr` happens in SQL), everything else as a
    signed pickle. A pair whose bytes fail their signature check (a row
    forged in the table, or written under another ``SECRET_KEY``) is never
    unpickled: it reads as a miss, is deleted, and a warning is logged on
    the ``django_keyval.cache`` logger.
    """

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        options = params.get("OPTIONS", {})
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ImproperlyConfigured(
                f"KeyValCache OPTIONS accept {', '.join(sorted(_OPTIONS))}; "
                f"unknown: {', '.join(unknown)}"
            )
        super().__init__(params)
        if "MAX_ENTRIES" in options and options["MAX_ENTRIES"] is None:
            # BaseCache would take None for its default, 300.
            self._max_entries = None  # type: ignore[assignment]
        if self._cull_frequency < 0:
            raise ImproperlyConfigured(
                f"KeyValCache OPTIONS['CULL_FREQUENCY'] must be 0 or more, "
                f"not {self._cull_frequency}"
            )
        if not location or not isinstance(location, str):
            raise ImproperlyConfigured(
                "KeyValCache needs LOCATION: the name of the store to keep the cache in"
            )
        alias = options.get("DATABASE")
        if alias is not None and alias not in connections.settings:
            raise ImproperlyConfigured(
                f"KeyValCache OPTIONS['DATABASE'] names {alias!r}, which is not in DATABASES"
            )
        self._location = location
        self._alias: str | None = alias
        self._store: KeyVal | None = None
        #: The store bound to each database the routers sent a write to.
        self._writers: dict[str, KeyVal] = {}

    @property
    def store(self) -> KeyVal:
        """The :class:`~django_keyval.models.KeyVal` this cache keeps its pairs in."""
        if self._store is None:
            # The cache's values are always signed pickles, whatever
            # KEYVAL_SERIALIZER says: responses and querysets are not JSON.
            self._store = KeyVal(self._location, using=self._alias, serializer="pickle")
        return self._store

    # -- keys and timeouts ---------------------------------------------------

    def _key(self, key: Any, version: int | None) -> str:
        return stored_key(self.make_and_validate_key(key, version=version))

    def _timeout(self, timeout: Any) -> float | None:
        """Return the timeout in seconds for the store: ``None`` never, 0 already expired."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return None
        seconds = float(timeout)
        if seconds > MAX_TIMEOUT:
            return None
        return max(0.0, seconds)

    def _writer(self) -> KeyVal:
        """The store on the database this cache writes to now, routed once per operation.

        A write that may add keys needs the database it wrote to (each keeps
        its own row budget): routing once and staying on the result keeps
        the two the same, and saves routing again.
        """
        if self._alias is not None:
            return self.store
        alias = route(True, self._location)
        try:
            return self._writers[alias]
        except KeyError:
            writer = self._writers[alias] = self.store.bound_to(alias)
            return writer

    def _added(self, writer: KeyVal, new_keys: int, spare_since: Any) -> None:
        """Count and trim the store after a write that may have added ``new_keys`` keys."""
        max_entries: int | None = self._max_entries  # None: OPTIONS["MAX_ENTRIES"] None
        if max_entries is None:
            return
        alias = str(writer.using)
        budget = _budget_of(alias, self._location)
        mark = budget.needs_count(new_keys, max_entries)
        if mark is None:
            return
        counted, deleted = writer.trim_and_count(max_entries, self._cull_frequency, spare_since)
        rows = counted - deleted
        if connections[alias].in_atomic_block:
            # A rollback would undo the write, the count and the cull: the
            # figure holds only once they are committed. Until then each
            # new key is counted.
            transaction.on_commit(lambda: budget.record(rows, mark), using=alias)
        else:
            budget.record(rows, mark)

    # -- reads ----------------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """Fetch a given key from the cache; return ``default`` if it is missing."""
        stored = self._key(key, version)
        try:
            return self.store.get_default(stored, default)
        except DeserializationError as error:
            self._forget_undecodable(stored, error)
            return default

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """Fetch many keys in one query; return a dict of those found.

        Expired pairs met among them are deleted (one more statement).
        """
        by_stored = {self._key(key, version): key for key in keys}
        if not by_stored:
            return {}
        try:
            found = self.store.get_many(by_stored, delete_expired=True)
        except DeserializationError:
            # Rare: read them one by one, so the others still count as hits.
            missing = object()
            found = {}
            for stored in by_stored:
                value = self.get(by_stored[stored], missing, version)
                if value is not missing:
                    found[stored] = value
        return {by_stored[stored]: value for stored, value in found.items()}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        """Return whether the key is in the cache and has not expired."""
        return self.store.exists(self._key(key, version))

    def _forget_undecodable(self, stored: str, error: Exception) -> None:
        logger.warning(
            "KeyValCache %r: treating key %r as a miss: %s", self._location, stored, error
        )
        self.store.delete(stored, ignore_keyerror=True)

    # -- writes ------------------------------------------------------------------

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        """Set a value in the cache, for ``timeout`` seconds (``None``: forever)."""
        stored = self._key(key, version)
        seconds = self._timeout(timeout)
        if seconds == 0:
            # Expired at once: the pair must go, not be rewritten as garbage.
            self.store.delete(stored, ignore_keyerror=True)
            return
        started = clock.now()
        writer = self._writer()
        try:
            created = writer.set(stored, value, seconds)
        except SerializationError as error:
            raise _pickling_error(error) from None
        if created:
            self._added(writer, 1, started)

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Set a value unless the key is in the cache; return whether it was stored."""
        stored = self._key(key, version)
        started = clock.now()
        writer = self._writer()
        try:
            added = writer.add(stored, value, self._timeout(timeout))
        except SerializationError as error:
            raise _pickling_error(error) from None
        if added:
            self._added(writer, 1, started)
        return added

    def set_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        """Set many values in one statement (per 1000 keys); return ``[]``: none fails alone."""
        mapping = {self._key(key, version): value for key, value in data.items()}
        if not mapping:
            return []
        seconds = self._timeout(timeout)
        if seconds == 0:
            self.store.delete_many(mapping)
            return []
        started = clock.now()
        writer = self._writer()
        try:
            writer.set_many(mapping, seconds)
        except SerializationError as error:
            raise _pickling_error(error) from None
        self._added(writer, len(mapping), started)
        return []

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Give the key a new timeout; return ``False`` if it is not in the cache."""
        return self.store.touch(self._key(key, version), self._timeout(timeout))

    def delete(self, key: Any, version: int | None = None) -> bool:
        """Delete a key; return whether it was in the cache."""
        return self.store.delete(self._key(key, version), ignore_keyerror=True)

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Delete many keys in one statement (per 1000 keys)."""
        stored = [self._key(key, version) for key in keys]
        if stored:
            self.store.delete_many(stored)

    def clear(self) -> None:
        """Delete every pair of this cache's store, and nothing else."""
        writer = self._writer()
        writer.flush()
        _budget_of(str(writer.using), self._location).forget()

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Add ``delta`` to an integer value in one SQL statement; return the new value.

        Raise ``ValueError`` if the key is not in the cache and ``TypeError``
        if its value is not an integer. The pair keeps its expiry.
        """
        stored = self._key(key, version)
        try:
            return self.store.incr(stored, delta, create=False)
        except KeyNotFoundError:
            raise ValueError(f"Key {key!r} not found.") from None

    def decr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Subtract ``delta``; see :meth:`incr`."""
        return self.incr(key, -delta, version)

    # -- async: one thread hop per call, not one per key -----------------------

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """Async :meth:`get_many`."""
        return await sync_to_async(self.get_many, thread_sensitive=True)(list(keys), version)

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        """Async :meth:`has_key`."""
        return await sync_to_async(self.has_key, thread_sensitive=True)(key, version)

    async def aset_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        """Async :meth:`set_many`."""
        return await sync_to_async(self.set_many, thread_sensitive=True)(data, timeout, version)

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Async :meth:`delete_many`."""
        await sync_to_async(self.delete_many, thread_sensitive=True)(list(keys), version)

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Async :meth:`incr`: still one SQL statement, never lost under concurrency."""
        return await sync_to_async(self.incr, thread_sensitive=True)(key, delta, version)

    async def adecr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Async :meth:`decr`."""
        return await sync_to_async(self.decr, thread_sensitive=True)(key, delta, version)
