"""The lines of ``manage.py keyval list --values``: each key with its expiry and value."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from itertools import islice
from typing import Any

from django.utils import timezone

from .conf import keyval_settings
from .encoding import decode_value
from .exceptions import BadSignatureError, DeserializationError
from .serializers import Serializer, get_serializer
from .store import KeyVal, stored_rows

#: Keys whose rows are read in one query, so memory stays bounded whatever the store holds.
BATCH_SIZE = 100
#: The widest the key column gets; longer keys push their line's other columns right.
KEY_COLUMN_WIDTH = 40
#: Width of the expiry column: an ISO 8601 time to the second, with its UTC offset.
EXPIRY_COLUMN_WIDTH = len("2000-01-01T00:00:00+00:00")
#: Lines are never cut shorter than this, however narrow the terminal claims to be.
MIN_WIDTH = 40


def expiry_text(expires_at: datetime.datetime | None) -> str:
    """Return ``never``, or the expiry time in the current time zone, to the second."""
    if expires_at is None:
        return "never"
    if timezone.is_aware(expires_at):
        expires_at = timezone.localtime(expires_at)
    return expires_at.isoformat(timespec="seconds")


def value_text(
    store: str,
    key: str,
    row: tuple[Any, Any, str],
    candidates: list[Serializer],
) -> str:
    """Return the ``repr()`` of a row's value on one line, or why it cannot be shown."""
    data, integer, serializer_name = row
    try:
        value = decode_value(store, key, serializer_name, data, integer, *candidates)
    except BadSignatureError:
        return "<not shown: its signature does not match, so it was not unpickled>"
    except DeserializationError as error:
        return f"<not shown: {error.__cause__ or error}>"
    try:
        text = repr(value)
    except RecursionError:
        return "<not shown: nested too deeply>"
    except Exception as error:  # a user class's __repr__ may raise anything
        return f"<not shown: its repr() raised {type(error).__name__}>"
    return " ".join(text.splitlines())


def cut(line: str, width: int) -> str:
    """Return ``line``, cut to ``width`` characters with ``...`` when it is longer."""
    width = max(width, MIN_WIDTH)
    return line if len(line) <= width else line[: width - 3] + "..."


def listing_lines(kv: KeyVal, prefix: str, width: int) -> Iterator[str]:
    """Yield a line per live key of ``kv`` starting with ``prefix``: key, expiry, value.

    In key order, the keys aligned within each batch of ``BATCH_SIZE``, each
    line cut to ``width`` characters. A value that cannot be decoded (a
    pickle whose signature does not match, a serializer that is gone) shows
    the reason instead; it is never unpickled.
    """
    candidates = [get_serializer(keyval_settings.SERIALIZER)]
    rows = stored_rows(kv.routed(), BATCH_SIZE, prefix)
    while batch := list(islice(rows, BATCH_SIZE)):
        key_width = min(max(len(row.key) for row in batch), KEY_COLUMN_WIDTH)
        for row in batch:
            shown = value_text(
                kv.name, row.key, (row.value, row.integer, row.serializer), candidates
            )
            expiry = expiry_text(row.expires_at)
            line = f"{row.key:<{key_width}}  {expiry:<{EXPIRY_COLUMN_WIDTH}}  {shown}"
            yield cut(line, width)
