"""The lines of ``manage.py keyval list --values``: each key with its expiry and value."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from itertools import islice
from typing import Any

from django.db import router
from django.utils import timezone

from .conf import keyval_settings
from .encoding import decode_value
from .exceptions import BadSignatureError, DeserializationError
from .models import KeyVal, KeyValPair
from .serializers import Serializer, get_serializer

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
    alias = kv.using or router.db_for_read(KeyValPair, store=kv.name)
    candidates = [get_serializer(keyval_settings.SERIALIZER)]
    keys = kv.keys(prefix)
    while batch := list(islice(keys, BATCH_SIZE)):
        found = (
            KeyValPair.objects.using(alias)
            .filter(store=kv.name, key__in=batch)
            .exclude(expires_at__lte=timezone.now())
            .values_list("key", "value", "integer_value", "serializer", "expires_at")
        )
        rows = {
            key: (expires_at, (data, integer, name))
            for key, data, integer, name, expires_at in found
        }
        live = [
            key for key in batch if key in rows
        ]  # those expired or deleted meanwhile are left out
        key_width = min(max((len(key) for key in live), default=0), KEY_COLUMN_WIDTH)
        for key in live:
            expires_at, row = rows[key]
            line = (
                f"{key:<{key_width}}  {expiry_text(expires_at):<{EXPIRY_COLUMN_WIDTH}}  "
                f"{value_text(kv.name, key, row, candidates)}"
            )
            yield cut(line, width)
