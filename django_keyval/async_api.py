# mypy: disable-error-code="no-any-return"
# (self is Any in this mixin, so every awaited result is Any to mypy.)
"""The async twins of :class:`~django_keyval.models.KeyVal`'s methods.

Each runs its sync counterpart through ``sync_to_async``, as Django's cache
API does, so it can be awaited from async views.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from asgiref.sync import sync_to_async

from .descriptors import StoreOrClassMethod
from .rows import ValueRow
from .validation import Timeout

_T = TypeVar("_T")
_R = TypeVar("_R")

#: Items fetched per thread hop while iterating asynchronously, at most.
ASYNC_ITERATION_CHUNK_SIZE = 1000
#: Bytes of stored values per thread hop, at most (or one value alone).
ASYNC_ITERATION_CHUNK_BYTES = 8 * 1024 * 1024


class AsyncMethods:
    """``a``-prefixed async twins of every method; mixed into ``KeyVal``.

    (``self`` is typed ``Any`` here: it is always a ``KeyVal``, which mypy
    cannot express for a mixin its subclass is defined after.)
    """

    async def aset(self: Any, key: str, value: Any, timeout: Timeout = None) -> bool:
        """Async :meth:`set`."""
        return await sync_to_async(self.set)(key, value, timeout)

    async def aget(self: Any, key: str) -> Any:
        """Async :meth:`get`."""
        return await sync_to_async(self.get)(key)

    async def aget_default(self: Any, key: str, default: Any = None) -> Any:
        """Async :meth:`get_default`."""
        return await sync_to_async(self.get_default)(key, default)

    async def apop(self: Any, key: str) -> Any:
        """Async :meth:`pop`."""
        return await sync_to_async(self.pop)(key)

    async def apop_default(self: Any, key: str, default: Any = None) -> Any:
        """Async :meth:`pop_default`."""
        return await sync_to_async(self.pop_default)(key, default)

    async def aexists(self: Any, key: str) -> bool:
        """Async :meth:`exists`."""
        return await sync_to_async(self.exists)(key)

    async def adelete(self: Any, key: str, ignore_keyerror: bool = False) -> bool:
        """Async :meth:`delete`."""
        return await sync_to_async(self.delete)(key, ignore_keyerror)

    async def aflush(self: Any) -> None:
        """Async :meth:`flush`."""
        await sync_to_async(self.flush)()

    @StoreOrClassMethod
    async def aflush_all(self_or_cls: Any, using: str | None = None) -> None:  # noqa: N805
        """Async :meth:`flush_all`."""
        await sync_to_async(self_or_cls.flush_all)(using)

    async def aadd(self: Any, key: str, value: Any, timeout: Timeout = None) -> bool:
        """Async :meth:`add`."""
        return await sync_to_async(self.add)(key, value, timeout)

    async def atouch(self: Any, key: str, timeout: Timeout) -> bool:
        """Async :meth:`touch`."""
        return await sync_to_async(self.touch)(key, timeout)

    async def aexpires_at(self: Any, key: str) -> datetime.datetime | None:
        """Async :meth:`expires_at`."""
        return await sync_to_async(self.expires_at)(key)

    @StoreOrClassMethod
    async def acull(self_or_cls: Any, using: str | None = None) -> int:  # noqa: N805
        """Async :meth:`cull`."""
        result = await sync_to_async(self_or_cls.cull)(using)
        return result

    async def aincr(self: Any, key: str, delta: int = 1, *, create: bool = True) -> int:
        """Async :meth:`incr`."""
        return await sync_to_async(self.incr)(key, delta, create=create)

    async def adecr(self: Any, key: str, delta: int = 1, *, create: bool = True) -> int:
        """Async :meth:`decr`."""
        return await sync_to_async(self.decr)(key, delta, create=create)

    async def atrim(
        self: Any,
        max_entries: int,
        cull_frequency: int = 3,
        spare_since: datetime.datetime | None = None,
    ) -> int:
        """Async :meth:`trim`."""
        return await sync_to_async(self.trim)(max_entries, cull_frequency, spare_since)

    async def atrim_and_count(
        self: Any,
        max_entries: int,
        cull_frequency: int = 3,
        spare_since: datetime.datetime | None = None,
    ) -> tuple[int, int]:
        """Async :meth:`trim_and_count`."""
        return await sync_to_async(self.trim_and_count)(max_entries, cull_frequency, spare_since)

    async def aget_many(
        self: Any, keys: Iterable[str], *, delete_expired: bool = False
    ) -> dict[str, Any]:
        """Async :meth:`get_many`."""
        return await sync_to_async(self.get_many)(keys, delete_expired=delete_expired)

    async def aset_many(self: Any, mapping: Mapping[str, Any], timeout: Timeout = None) -> None:
        """Async :meth:`set_many`."""
        return await sync_to_async(self.set_many)(mapping, timeout)

    async def adelete_many(self: Any, keys: Iterable[str]) -> int:
        """Async :meth:`delete_many`."""
        return await sync_to_async(self.delete_many)(keys)

    async def acount(self: Any) -> int:
        """Async :meth:`count`."""
        return await sync_to_async(self.count)()

    @StoreOrClassMethod
    async def astores(self_or_cls: Any, using: str | None = None) -> list[str]:  # noqa: N805
        """Async :meth:`stores`."""
        result = await sync_to_async(self_or_cls.stores)(using)
        return result

    async def aget_versioned(self: Any, key: str) -> tuple[Any, int]:
        """Async :meth:`get_versioned`."""
        return await sync_to_async(self.get_versioned)(key)

    async def aget_many_versioned(self: Any, keys: Iterable[str]) -> dict[str, tuple[Any, int]]:
        """Async :meth:`get_many_versioned`."""
        return await sync_to_async(self.get_many_versioned)(keys)

    async def acas(self: Any, key: str, value: Any, version: int, timeout: Timeout = None) -> bool:
        """Async :meth:`cas`."""
        return await sync_to_async(self.cas)(key, value, version, timeout)

    async def aupdate(
        self: Any, key: str, function: Callable[[Any], Any], *args: Any, **kwargs: Any
    ) -> Any:
        """Async :meth:`update` (``function`` runs in Django's sync thread)."""
        return await sync_to_async(self.update)(key, function, *args, **kwargs)

    async def _aiterate(
        self: Any,
        start: Callable[[str], Iterator[_R]],
        prefix: str,
        transform: Callable[[_R], _T],
    ) -> AsyncIterator[_T]:
        # The rows are fetched and decoded in Django's sync thread, a chunk
        # (bounded in items and in bytes) at a time, so the same database
        # connection serves the whole iteration.
        rows = await sync_to_async(start)(prefix)

        def take() -> list[_T]:
            chunk: list[_T] = []
            size = 0
            for row in rows:
                chunk.append(transform(row))
                if isinstance(row, ValueRow) and row.value is not None:
                    size += len(row.value)
                if len(chunk) >= ASYNC_ITERATION_CHUNK_SIZE or size >= ASYNC_ITERATION_CHUNK_BYTES:
                    break
            return chunk

        take_in_thread = sync_to_async(take)
        while chunk := await take_in_thread():
            for item in chunk:
                yield item

    def akeys(self: Any, prefix: str = "") -> AsyncIterator[str]:
        """Async :meth:`keys`: ``async for key in kv.akeys(): ...``."""
        return self._aiterate(self._page_keys, prefix, lambda key: key)

    def avalues(self: Any, prefix: str = "") -> AsyncIterator[Any]:
        """Async :meth:`values`."""
        return self._aiterate(self._page_through, prefix, self._decode_row)

    def aitems(self: Any, prefix: str = "") -> AsyncIterator[tuple[str, Any]]:
        """Async :meth:`items`."""
        return self._aiterate(
            self._page_through, prefix, lambda row: (row.key, self._decode_row(row))
        )
