"""How a value becomes the columns of its row, and back.

A plain ``int`` that fits 64 bits goes in the integer column (so that
``incr`` adds in SQL), a ``str`` as its UTF-8 bytes, plain ``bytes`` as they
are, and any other value as the bytes of a serializer
(:mod:`django_keyval.serializers`). Each row records its format, so it is
always read back the way it was written. Every path that writes values (the
store, import, the admin) encodes them here, and every path that reads them
decodes them here.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from .conf import keyval_settings
from .exceptions import (
    BadSignatureError,
    DeserializationError,
    SerializationError,
    ValueTooLargeError,
)
from .serializers import (
    BYTES_FORMAT,
    INTEGER_FORMAT,
    PICKLE_FORMAT,
    STR_FORMAT,
    JSONSerializer,
    PickleSerializer,
    Serializer,
    get_serializer,
    serializer_by_name,
)

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "check_value_size",
    "decode_value",
    "encode_value",
]

#: The smallest ``int`` the integer column holds (and ``incr`` works with).
INT64_MIN = -(2**63)
#: The largest ``int`` the integer column holds (and ``incr`` works with).
INT64_MAX = 2**63 - 1

_PICKLE = PickleSerializer()


def check_value_size(store: str, key: str, size: int) -> None:
    """Raise :class:`~django_keyval.exceptions.ValueTooLargeError` if ``size`` bytes
    exceed ``KEYVAL_MAX_VALUE_SIZE``; ``store`` and ``key`` name the pair in the message.
    """
    limit = keyval_settings.MAX_VALUE_SIZE
    if size > limit:
        raise ValueTooLargeError(
            f"the value for key {key!r} in store {store!r} is {size} bytes "
            f"when serialized; the limit (KEYVAL_MAX_VALUE_SIZE) is {limit} bytes"
        )


def decode_value(
    store: str, key: str, serializer_name: str, data: Any, integer: Any, *candidates: Serializer
) -> Any:
    """Return the value of a row, read with the serializer that wrote it.

    ``candidates`` are the serializers besides the built-in ones that may
    have written it (the store's, ``KEYVAL_SERIALIZER``). Raises
    :class:`~django_keyval.exceptions.BadSignatureError` for a pickle whose
    signature does not match, without unpickling it, and
    :class:`~django_keyval.exceptions.DeserializationError` for other bytes
    that cannot be decoded. Both name the store and the key.
    """
    if serializer_name == INTEGER_FORMAT:
        return integer
    try:
        if serializer_name == PICKLE_FORMAT:  # the most common, so first
            return _PICKLE.loads(data, store, key)
        if isinstance(data, memoryview):
            data = bytes(data)
        if serializer_name == STR_FORMAT:
            return data.decode()
        if serializer_name == BYTES_FORMAT:
            return data
        serializer = serializer_by_name(serializer_name, *candidates)
        if isinstance(serializer, PickleSerializer):  # a subclass, under its own name
            return serializer.loads(data, store, key)
        return serializer.loads(data)
    except BadSignatureError:
        raise BadSignatureError(
            f"the value of key {key!r} in store {store!r} failed its signature check "
            "(it was not written there, as that format, with SECRET_KEY or "
            "SECRET_KEY_FALLBACKS); it was not unpickled"
        ) from None
    except Exception as error:
        raise DeserializationError(
            f"cannot decode the value of key {key!r} in store {store!r}: {error}"
        ) from error


def encode_value(
    store: str, key: str, value: Any, serializer: str | None = None
) -> tuple[Any, Any, str]:
    """Return ``(bytes or None, int or None, serializer name)``: the row
    :meth:`KeyVal.set <django_keyval.models.KeyVal.set>` writes.

    A plain ``int`` in the signed 64-bit range goes in the integer column
    (``"int"``), a ``str`` as its UTF-8 (``"str"``), plain ``bytes`` as they
    are (``"bytes"``, unless the serializer is JSON, which refuses them);
    any other value goes through ``serializer``, given as to
    ``KeyVal(serializer=...)`` (``None``: ``KEYVAL_SERIALIZER``). The
    inverse of :func:`decode_value`. Raises
    :class:`~django_keyval.exceptions.SerializationError` for a value the
    serializer refuses and :class:`~django_keyval.exceptions.ValueTooLargeError`
    over ``KEYVAL_MAX_VALUE_SIZE``; ``store`` and ``key`` name the pair in
    their messages.
    """
    value_type = type(value)
    if value_type is int and INT64_MIN <= value <= INT64_MAX:
        return None, value, INTEGER_FORMAT
    data = None
    if value_type is str:
        # A lone surrogate cannot be UTF-8: the serializer may still manage.
        with suppress(UnicodeEncodeError):
            data, name = value.encode(), STR_FORMAT
    elif value_type is bytes and not isinstance(
        get_serializer(serializer or keyval_settings.SERIALIZER), JSONSerializer
    ):
        # Raw bytes are safe to store as they are, but a JSON store
        # promises values JSON can represent, which bytes are not.
        data, name = value, BYTES_FORMAT
    if data is None:
        chosen = get_serializer(serializer or keyval_settings.SERIALIZER)
        name = chosen.name
        try:
            if isinstance(chosen, PickleSerializer):
                # Signed for its place: the value is refused anywhere else.
                data = chosen.dumps(value, store, key)
            else:
                data = chosen.dumps(value)
        except Exception as error:
            raise SerializationError(
                f"cannot store the value for key {key!r} in store {store!r} with the "
                f"{name} serializer: {type(error).__name__}: {error}"
            ) from error
    check_value_size(store, key, len(data))
    return data, None, name
