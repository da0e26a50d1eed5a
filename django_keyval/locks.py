"""``Lock``: a lease on a name in a store, with fencing tokens.

A lock is a row of its own table (:class:`~django_keyval.models.KeyValLock`),
apart from the pairs: nothing that deletes or rewrites pairs (``flush``,
``flush_all``, ``trim``, culling, ``delete``, ``pop`` or ``set`` of the same
name, import, the admin, the cache's ``clear()``) reaches it. The row holds
the holder's owner token (empty when free), the end of the lease in
microseconds since the epoch, and the fencing token. Taking the lock is one
statement, an upsert that takes the row only when the lease has ended, and
adds one to its token.

The fencing token of an acquisition is the token that statement wrote. A
lock's row is never deleted, so every acquisition gets a larger token than
all those before it, for as long as the database lives. Each database
orders competing statements on one row (SQLite lets one writer in at a
time; PostgreSQL's ``ON CONFLICT DO UPDATE`` and MariaDB's ``ON DUPLICATE
KEY UPDATE`` lock the row and test the latest committed version of it,
whatever the isolation level), so tokens follow the order of the
acquisitions.

Leases are measured with the clock of the process that writes them, as
every expiry in a store is: the hosts sharing a lock need synchronized
clocks.
"""

from __future__ import annotations

import asyncio
import datetime
import random
import secrets
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from asgiref.sync import sync_to_async
from django.db.backends.base.base import BaseDatabaseWrapper

from . import clock
from .exceptions import (
    InvalidTimeoutError,
    LockAlreadyHeldError,
    LockNotOwnedError,
    LockTimeoutError,
)
from .table import Table
from .validation import timeout_seconds

__all__ = ["Lock"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MICROSECOND = datetime.timedelta(microseconds=1)

#: The shortest lease, in seconds: expiries and leases are kept to the
#: microsecond, but a lease must outlast the statement that takes it.
MIN_LEASE = 0.001

#: The first pause between two tries of a blocking acquisition, in seconds;
#: each later pause is up to twice as long, up to :data:`MAX_POLL_INTERVAL`.
FIRST_POLL_INTERVAL = 0.002
MAX_POLL_INTERVAL = 0.1

#: Returns the table a lock operation runs on (routed for each operation).
Database = Callable[[], Table]


def lease_seconds(timeout: Any) -> float:
    """Return a lease ``timeout`` (seconds or ``timedelta``) in seconds; at least 1 ms."""
    seconds = timeout_seconds(timeout, "a lock's timeout")
    if not seconds >= MIN_LEASE:
        raise InvalidTimeoutError(
            f"a lock's timeout must be at least {MIN_LEASE * 1000:g} ms, not {timeout!r}"
        )
    if seconds > 100 * 365 * 24 * 3600:
        raise InvalidTimeoutError(f"a lock's timeout of {timeout!r} is too large")
    return seconds


def _blocking_seconds(blocking_timeout: Any) -> float | None:
    if blocking_timeout is None:
        return None
    return timeout_seconds(blocking_timeout, "blocking_timeout")


class Lock:
    """A lock on ``name`` in a store, held for a lease of ``timeout`` seconds.

    Make one with :meth:`KeyVal.lock() <django_keyval.models.KeyVal.lock>`.
    Use it as a context manager (``with kv.lock("name", timeout=30) as lock:``),
    or call :meth:`acquire` and :meth:`release`. A holder that dies keeps the
    lock until its lease ends; :meth:`extend` renews the lease of a holder
    that needs longer. Each acquisition gets a fencing token, :attr:`token`.

    A ``Lock`` is not re-entrant: acquire it again only after releasing it.
    It is meant for one thread at a time.
    """

    def __init__(
        self,
        database: Database,
        store: str,
        name: str,
        timeout: Any,
        blocking: bool = True,
        blocking_timeout: Any = None,
    ) -> None:
        self._database = database
        self._store = store
        self._name = name
        self._lease = lease_seconds(timeout)
        self._timeout = timeout
        self._blocking = bool(blocking)
        self._blocking_timeout = _blocking_seconds(blocking_timeout)
        self._owner: str | None = None
        self._token: int | None = None

    def __repr__(self) -> str:
        return f"<Lock {self._name!r} of store {self._store!r} (token {self._token})>"

    @property
    def name(self) -> str:
        """The lock's name: the key of its row in the store."""
        return self._name

    @property
    def timeout(self) -> Any:
        """The lease each acquisition takes, as given (seconds or a ``timedelta``)."""
        return self._timeout

    @property
    def token(self) -> int | None:
        """The fencing token of this ``Lock``'s latest acquisition; ``None`` before the first.

        Larger than the token of every earlier acquisition of the same lock
        name in the store, by any process. Give it to the resource the lock
        protects, so that it can refuse a write carrying a smaller token than
        one it has already seen.
        """
        return self._token

    # -- plumbing ---------------------------------------------------------------

    def _params(
        self, connection: BaseDatabaseWrapper, lease: float | None = None, **extra: Any
    ) -> dict[str, Any]:
        now = clock.now()
        params: dict[str, Any] = {
            "store": self._store,
            "key": self._name,
            "now": clock.adapt_datetime(connection, now),
            "now_us": (now - _EPOCH) // _MICROSECOND,
            "owner": self._owner,
        }
        params.update(extra)
        if lease is not None:
            lease_end = now + datetime.timedelta(seconds=lease)
            params["lease_end"] = (lease_end - _EPOCH) // _MICROSECOND
        return params

    def _try_acquire(self) -> bool:
        _, connection, operations = self._database()
        # A new owner token for each acquisition: a lease this Lock held
        # before and lost can never be mistaken for the new one.
        self._owner = secrets.token_hex(16)
        token = operations.acquire_lock(connection, self._params(connection, lease=self._lease))
        if token is None:
            self._owner = None
            return False
        self._token = token
        return True

    def _poll_intervals(self, blocking: bool | None, blocking_timeout: Any) -> Any:
        """Yield how long to sleep before each new try; stop when time is up."""
        if blocking is None:
            blocking = self._blocking
        if not blocking:
            return
        if blocking_timeout is None:
            seconds = self._blocking_timeout
        else:
            seconds = _blocking_seconds(blocking_timeout)
        deadline = None if seconds is None else time.monotonic() + seconds
        interval = FIRST_POLL_INTERVAL
        while True:
            # Random pauses that grow keep waiters from polling in lockstep
            # and from loading the database while a long lease runs.
            pause = random.uniform(interval / 2, interval)
            interval = min(interval * 2, MAX_POLL_INTERVAL)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                pause = min(pause, left)
            yield pause

    # -- the API ----------------------------------------------------------------

    def acquire(self, blocking: bool | None = None, blocking_timeout: Any = None) -> bool:
        """Take the lock; return whether it was taken.

        Blocking (the default given to :meth:`KeyVal.lock()
        <django_keyval.models.KeyVal.lock>`), wait for the holder's release
        or the end of its lease, trying again after growing random pauses,
        for at most ``blocking_timeout`` seconds (``None``: the lock's own,
        which by default waits without end). Not blocking, try once.

        A ``Lock`` is not re-entrant: while it holds its lease, ``acquire()``
        raises :class:`~django_keyval.exceptions.LockAlreadyHeldError` and
        the lease goes on as it was.
        """
        self._refuse_if_held()
        if self._try_acquire():
            return True
        for pause in self._poll_intervals(blocking, blocking_timeout):
            time.sleep(pause)
            if self._try_acquire():
                return True
        return False

    def release(self) -> None:
        """Free the lock.

        Raise :class:`~django_keyval.exceptions.LockNotOwnedError`, and
        change nothing, if this ``Lock`` does not hold the lease (its lease
        ended, whether or not another holder took the lock since).
        """
        _, connection, operations = self._database()
        owner = self._owner
        self._owner = None
        if owner is None or not operations.release_lock(
            connection, self._params(connection, owner=owner)
        ):
            raise self._not_owned("release")

    def extend(self, timeout: Any) -> None:
        """Make the lease end ``timeout`` seconds (or a ``timedelta``) from now.

        Raise :class:`~django_keyval.exceptions.LockNotOwnedError`, and
        change nothing, if this ``Lock`` does not hold the lease.
        """
        lease = lease_seconds(timeout)
        _, connection, operations = self._database()
        if self._owner is None or not operations.extend_lock(
            connection, self._params(connection, lease=lease)
        ):
            raise self._not_owned("extend")

    def locked(self) -> bool:
        """Return whether anyone (this ``Lock`` included) holds the lock."""
        _, connection, operations = self._database()
        return operations.lock_holder(connection, self._params(connection)) is not None

    def owned(self) -> bool:
        """Return whether this ``Lock`` holds the lock, its lease not ended."""
        if self._owner is None:
            return False
        _, connection, operations = self._database()
        return bool(operations.lock_holder(connection, self._params(connection)) == self._owner)

    def _refuse_if_held(self) -> None:
        # Taking the lock again with a new owner token would fail against
        # this Lock's own lease and lose track of it (owned() False,
        # release() refused, the lock taken until the lease ends).
        if self._owner is not None and self.owned():
            raise LockAlreadyHeldError(
                f"this Lock holds lock {self._name!r} of store {self._store!r} already; "
                "release() it before acquiring it again"
            )

    def _not_owned(self, action: str) -> LockNotOwnedError:
        return LockNotOwnedError(
            f"cannot {action} lock {self._name!r} of store {self._store!r}: this Lock does not "
            "hold it (never acquired, already released, or its lease ended)"
        )

    def _timed_out(self) -> LockTimeoutError:
        return LockTimeoutError(
            f"could not acquire lock {self._name!r} of store {self._store!r} "
            + (
                f"within {self._blocking_timeout} s"
                if self._blocking and self._blocking_timeout is not None
                else "at once (blocking=False)"
            )
        )

    def __enter__(self) -> Lock:
        if not self.acquire():
            raise self._timed_out()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Raises LockNotOwnedError if the lease ran out inside the block:
        # the caller must learn that its critical section was not protected.
        self.release()

    # -- async twins --------------------------------------------------------------

    async def aacquire(self, blocking: bool | None = None, blocking_timeout: Any = None) -> bool:
        """Async :meth:`acquire`; it waits with ``asyncio.sleep``, not in a thread."""
        await sync_to_async(self._refuse_if_held)()
        try_acquire = sync_to_async(self._try_acquire)
        if await try_acquire():
            return True
        for pause in self._poll_intervals(blocking, blocking_timeout):
            await asyncio.sleep(pause)
            if await try_acquire():
                return True
        return False

    async def arelease(self) -> None:
        """Async :meth:`release`."""
        await sync_to_async(self.release)()

    async def aextend(self, timeout: Any) -> None:
        """Async :meth:`extend`."""
        await sync_to_async(self.extend)(timeout)

    async def alocked(self) -> bool:
        """Async :meth:`locked`."""
        return await sync_to_async(self.locked)()

    async def aowned(self) -> bool:
        """Async :meth:`owned`."""
        return await sync_to_async(self.owned)()

    async def __aenter__(self) -> Lock:
        if not await self.aacquire():
            raise self._timed_out()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.arelease()
