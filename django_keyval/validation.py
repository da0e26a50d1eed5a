"""Checks of keys, store names and timeouts, made before any query.

A failed statement would abort the caller's transaction on PostgreSQL, so
everything a database could refuse is refused here first, with an exception
that names the problem.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

from .exceptions import ArgumentTypeError, InvalidKeyError, InvalidTimeoutError

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_STORE_NAME_LENGTH",
    "Timeout",
    "expiry_from_timeout",
    "validate_key",
    "validate_store_name",
    "validate_text",
]

#: Store names may have up to this many characters.
MAX_STORE_NAME_LENGTH = 200
#: Keys may have up to this many characters. With store names, they fit the
#: 3072-byte index limit of InnoDB in utf8mb4 (4 bytes a character).
MAX_KEY_LENGTH = 500

#: A timeout: seconds (``int`` or ``float``), a ``timedelta``, or ``None`` for never.
Timeout = int | float | datetime.timedelta | None


def validate_text(text: Any, what: str, max_length: int) -> None:
    """Raise unless ``text`` is a ``str`` of at most ``max_length`` characters that
    every database can store: no NUL character and no lone surrogate.

    ``what`` names the text in the message (``"key"``, ``"store name"``).
    """
    # Checked before any query: PostgreSQL rejects NUL characters and no
    # driver can encode a lone surrogate, and a failed statement would abort
    # the caller's transaction on PostgreSQL.
    if not isinstance(text, str):
        raise ArgumentTypeError(f"a {what} must be a str, not {type(text).__name__}")
    if len(text) > max_length:
        raise InvalidKeyError(
            f"a {what} may have at most {max_length} characters; this one has {len(text)}"
        )
    if "\x00" in text:
        raise InvalidKeyError(f"a {what} may not contain a NUL character: {text!r}")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise InvalidKeyError(f"a {what} may not contain a lone surrogate: {text!r}") from None


def validate_key(key: Any) -> None:
    """Raise unless ``key`` is a ``str`` a key may be (see :func:`validate_text`)."""
    validate_text(key, "key", MAX_KEY_LENGTH)


def validate_store_name(name: Any) -> None:
    """Raise unless ``name`` is a non-empty ``str`` a store name may be."""
    validate_text(name, "store name", MAX_STORE_NAME_LENGTH)
    if not name:
        raise InvalidKeyError("a store name may not be empty")


def timeout_seconds(value: Any, what: str = "a timeout", none_allowed: bool = False) -> float:
    """Return ``value`` (seconds, ``int`` or ``float``, or a ``timedelta``) as a float >= 0.

    ``what`` names the value in the messages; ``none_allowed`` only adds
    ``None`` to the types the message lists (the caller handles it).
    """
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        if none_allowed:
            kinds = "seconds (int or float), a timedelta or None"
        else:
            kinds = "seconds (int or float) or a timedelta"
        raise ArgumentTypeError(f"{what} is {kinds}, not {type(value).__name__}")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise InvalidTimeoutError(f"{what} must be a finite number >= 0, not {value!r}")
    return seconds


def expiry_from_timeout(timeout: Timeout, now: datetime.datetime) -> datetime.datetime | None:
    """Turn a timeout (seconds or ``timedelta``; ``None`` for never) into an expiry time."""
    if timeout is None:
        return None
    seconds = timeout_seconds(timeout, none_allowed=True)
    try:
        return now + datetime.timedelta(seconds=seconds)
    except OverflowError:
        raise InvalidTimeoutError(f"the timeout {timeout!r} is too large") from None
