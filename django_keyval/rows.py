"""The rows that cross module boundaries: what statements take and what they return.

Each is a ``NamedTuple``, so that a caller names the fields it reads rather
than counting positions. Values are undecoded here (bytes and the name of
their format, or the integer); :mod:`django_keyval.encoding` turns them into
Python values.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "PageBounds",
    "PageRow",
    "PoppedValue",
    "StoredRow",
    "StoredValue",
    "ValueRow",
    "VersionedRow",
    "VersionedValue",
    "public_version",
    "split_version",
]

#: A version as callers see it: the row's id times this, plus its write counter.
ROW_ID_FACTOR = 2**63


def public_version(row_id: int, counter: int) -> int:
    """Return the version callers see for a row's ``id`` and write ``counter``.

    The counter goes up by one with every write of the row and never starts
    again, and a row deleted and created again gets a new, larger id (ids
    are never reused), so the version of a key only ever goes up over its
    whole history in the database.
    """
    return int(row_id) * ROW_ID_FACTOR + int(counter)


def split_version(version: int) -> tuple[int, int]:
    """Return the row id and write counter a version from :func:`public_version` stands for."""
    return divmod(version, ROW_ID_FACTOR)


class StoredRow(NamedTuple):
    """The columns a write sets, as the upserts take them (``version`` aside)."""

    store: str
    key: str
    #: The serialized value (bytes), or ``None`` for an ``int`` kept in ``integer``.
    value: Any
    integer: int | None
    #: The name of the format ``value`` is in (``"int"`` with ``integer``).
    serializer: str
    #: When the pair expires, adapted for the column; ``None``: never.
    expires_at: Any
    #: The time of the write, adapted for the column; statements also use it
    #: to tell expired rows.
    updated_at: Any


class ValueRow(NamedTuple):
    """A live pair as reads return it, undecoded."""

    key: str
    value: Any
    integer: int | None
    serializer: str
    #: As the driver returns it (see :meth:`BaseOperations.expiry_datetime`).
    expires_at: Any


class PageBounds(NamedTuple):
    """Which rows of a store a key-ordered page holds, and how many at most."""

    store: str
    #: The key to start from, itself included when ``inclusive``.
    low: str
    inclusive: bool
    #: The key to stop before; ``None``: the end of the store.
    high: str | None
    #: The adapted current time: rows that expired by then are left out.
    now: Any
    size: int


class PageRow(NamedTuple):
    """One row of a key-ordered page (what the operations' ``page`` returns).

    A value longer than the page's ``inline_bytes`` is left out (``None``)
    and ``length`` says how long it is, so that it can be fetched apart.
    """

    key: str
    value: Any
    integer: int | None
    serializer: str
    expires_at: Any
    #: The length of the value in bytes (``None`` for an integer).
    length: int | None

    def value_row(self) -> ValueRow:
        """Return the row without its ``length``."""
        return ValueRow(self.key, self.value, self.integer, self.serializer, self.expires_at)


class StoredValue(NamedTuple):
    """The value of one live pair, undecoded (what ``get`` reads)."""

    value: Any
    integer: int | None
    serializer: str


class PoppedValue(NamedTuple):
    """The value of a pair that was just deleted, and its expiry (what ``pop`` returns)."""

    value: Any
    integer: int | None
    serializer: str
    #: As the driver returned it; ``None``: it never expired.
    expires_at: Any


class VersionedValue(NamedTuple):
    """The value of one live pair and its version (what ``get_versioned`` reads)."""

    value: Any
    integer: int | None
    serializer: str
    version: int


class VersionedRow(NamedTuple):
    """A live pair among several, with its key and version (``get_many_versioned``)."""

    key: str
    value: Any
    integer: int | None
    serializer: str
    version: int
