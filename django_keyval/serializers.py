"""How values become bytes in the database, and back.

A serializer is any class with a ``name`` and two methods::

    class MySerializer:
        name = "my-format"          # stored with every value it writes

        def dumps(self, value) -> bytes: ...
        def loads(self, data: bytes): ...

``dumps`` raises ``TypeError`` or ``ValueError`` for a value it cannot
represent. Each row records the ``name`` of the serializer that wrote it, so a
store always reads a value back with the serializer that wrote it, whatever
the current setting says.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import pickle
import sys
from functools import cache, lru_cache
from typing import Any, Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

from .exceptions import (
    ArgumentTypeError,
    BadSignatureError,
    DeserializationError,
    InvalidSerializerError,
)

__all__ = [
    "BUILTIN_FORMATS",
    "BYTES_FORMAT",
    "INTEGER_FORMAT",
    "JSON_FORMAT",
    "JSON_MAX_DEPTH",
    "NATIVE_FORMATS",
    "PICKLE_FORMAT",
    "SERIALIZER_FORMATS",
    "STR_FORMAT",
    "JSONSerializer",
    "PickleSerializer",
    "Serializer",
    "check_json_value",
    "get_serializer",
    "is_exact_json",
    "parse_json",
    "serializer_by_name",
    "signed_place",
]

#: The name rows carry when the value is a plain ``int`` kept in the integer
#: column, so that ``incr`` can do its arithmetic in SQL.
INTEGER_FORMAT = "int"
#: Plain ``str`` values are stored as their UTF-8 bytes under this name.
STR_FORMAT = "str"
#: Plain ``bytes`` values are stored as they are under this name.
BYTES_FORMAT = "bytes"
#: Formats used for exact ``int``, ``str`` and ``bytes`` values whatever the
#: serializer: they give the value back exactly and need no signature.
NATIVE_FORMATS = frozenset({INTEGER_FORMAT, STR_FORMAT, BYTES_FORMAT})
#: The name of the built-in signed pickle serializer (the default).
PICKLE_FORMAT = "pickle"
#: The name of the built-in JSON serializer.
JSON_FORMAT = "json"
#: The built-in serializers, which a store or the admin can name.
SERIALIZER_FORMATS = frozenset({PICKLE_FORMAT, JSON_FORMAT})
#: Every format read without any setting. A custom serializer may not take
#: one of these names: its rows would be read by the built-in serializers or
#: as native values, so its values would come back wrong or fail their
#: signature check.
BUILTIN_FORMATS = NATIVE_FORMATS | SERIALIZER_FORMATS


@runtime_checkable
class Serializer(Protocol):
    """The interface a serializer implements."""

    #: Recorded in each row the serializer writes (at most 50 characters).
    name: str

    def dumps(self, value: Any) -> bytes:
        """Return ``value`` as bytes; raise ``TypeError``/``ValueError`` if impossible."""
        ...  # pragma: no cover

    def loads(self, data: bytes) -> Any:
        """Return the value that :meth:`dumps` turned into ``data``."""
        ...  # pragma: no cover


_SIGNATURE_SALT = b"django_keyval.serializers.PickleSerializer"
_SIGNATURE_SIZE = 32
#: BLAKE2b's personalization: these signatures mean nothing to any other use of the key.
_SIGNATURE_PERSON = b"django-keyval"
# Payloads up to this size are signed in one call, joined to their place;
# longer ones are fed to the hash in two parts, so they are not copied.
_SIGN_IN_ONE_CALL = 64 * 1024


@lru_cache(maxsize=16)
def _signing_key(secret: str | bytes) -> bytes:
    # The key derivation of django.utils.crypto.salted_hmac() (SHA-256 of a
    # salt and the secret), done once per secret instead of once per value:
    # values are signed on every write and checked on every read.
    if isinstance(secret, str):
        secret = secret.encode()
    return hashlib.sha256(_SIGNATURE_SALT + secret).digest()


@lru_cache(maxsize=4096)
def signed_place(store: str, key: str, format_name: str) -> bytes:
    """Return the bytes that bind a signature to a store, a key and a format.

    Each part comes after its length in characters and a colon
    (``1:s3:key6:pickle``), so that no two places give the same bytes.
    Cached: a key read often costs its place once.
    """
    text = f"{len(store)}:{store}{len(key)}:{key}{len(format_name)}:{format_name}"
    return text.encode("utf-8", "surrogatepass")


def _signature(place: bytes, payload: bytes | memoryview, secret: str | bytes | None) -> bytes:
    """Keyed BLAKE2b of ``place`` then ``payload``; ``secret`` None: ``SECRET_KEY``."""
    key = _signing_key(settings.SECRET_KEY if secret is None else secret)
    if len(payload) <= _SIGN_IN_ONE_CALL:
        return hashlib.blake2b(
            place + payload, digest_size=_SIGNATURE_SIZE, key=key, person=_SIGNATURE_PERSON
        ).digest()
    mac = hashlib.blake2b(place, digest_size=_SIGNATURE_SIZE, key=key, person=_SIGNATURE_PERSON)
    mac.update(payload)
    return mac.digest()


class PickleSerializer:
    """Pickle, signed with a key derived from ``SECRET_KEY`` so foreign bytes are never unpickled.

    The stored bytes are a 32-byte signature followed by the pickle. The
    signature covers the place of the value as well as the pickle: it is
    the keyed BLAKE2b (a MAC, 32 bytes, personalization ``django-keyval``)
    of ``place + pickle``, keyed as :func:`~django.utils.crypto.salted_hmac`
    derives its keys (SHA-256 of this class's salt and the secret), where
    ``place`` is :func:`signed_place` of the store, the key and the format
    (``"pickle"``). So a signed value copied to another key, another
    store or another format fails its check. It is checked before
    unpickling, against ``SECRET_KEY`` and then each of
    ``SECRET_KEY_FALLBACKS``, so values survive a key rotation (they are
    signed with the new key when next written).

    Each method takes the place as ``store``, ``key`` and ``format_name``
    (by default ``name``); bytes signed for one place are refused at
    any other.
    """

    name = PICKLE_FORMAT
    protocol = pickle.HIGHEST_PROTOCOL

    def _place(self, store: str, key: str, format_name: str | None) -> bytes:
        return signed_place(store, key, self.name if format_name is None else format_name)

    def dumps(
        self, value: Any, store: str = "", key: str = "", format_name: str | None = None
    ) -> bytes:
        """Pickle ``value`` and prefix the signature for its place."""
        payload = pickle.dumps(value, self.protocol)
        place = self._place(store, key, format_name)
        return _signature(place, payload, None) + payload

    def loads(
        self,
        data: bytes | memoryview,
        store: str = "",
        key: str = "",
        format_name: str | None = None,
    ) -> Any:
        """Check the signature of ``data`` for its place, then unpickle it."""
        view = memoryview(data)  # slices without copying the payload
        payload = view[_SIGNATURE_SIZE:]
        place = signed_place(store, key, self.name if format_name is None else format_name)
        # SECRET_KEY first, inline: the check every read makes.
        expected = _signature(place, payload, None)
        if not (
            hmac.compare_digest(view[:_SIGNATURE_SIZE], expected)
            or self.signature_matches(data, store, key, format_name)
        ):
            raise BadSignatureError(
                "the pickled value's signature does not match SECRET_KEY for its place"
            )
        return pickle.loads(payload)

    def signature_matches(
        self,
        data: bytes | memoryview,
        store: str = "",
        key: str = "",
        format_name: str | None = None,
    ) -> bool:
        """Return whether ``data`` carries a signature for its place, made with
        ``SECRET_KEY`` or one of ``SECRET_KEY_FALLBACKS``.

        Nothing is unpickled: this is the check :meth:`loads` makes first.
        """
        view = memoryview(data)  # slices without copying the payload
        signature, payload = view[:_SIGNATURE_SIZE], view[_SIGNATURE_SIZE:]
        place = self._place(store, key, format_name)
        if hmac.compare_digest(signature, _signature(place, payload, None)):
            return True
        return any(
            hmac.compare_digest(signature, _signature(place, payload, secret))
            for secret in getattr(settings, "SECRET_KEY_FALLBACKS", ())
        )

    def is_signed_with_current_key(
        self,
        data: bytes | memoryview,
        store: str = "",
        key: str = "",
        format_name: str | None = None,
    ) -> bool:
        """Return whether ``data`` carries a signature for its place made with ``SECRET_KEY``."""
        view = memoryview(data)
        place = self._place(store, key, format_name)
        expected = _signature(place, view[_SIGNATURE_SIZE:], None)
        return hmac.compare_digest(view[:_SIGNATURE_SIZE], expected)

    def resign(
        self,
        data: bytes | memoryview,
        store: str = "",
        key: str = "",
        format_name: str | None = None,
    ) -> bytes:
        """Return ``data`` signed with ``SECRET_KEY``, once its signature for its place is
        checked (against ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``).

        Nothing is unpickled. Raises
        :class:`~django_keyval.exceptions.BadSignatureError` if the check fails.
        """
        if not self.signature_matches(data, store, key, format_name):
            raise BadSignatureError(
                "the pickled value's signature does not match SECRET_KEY for its place"
            )
        payload = memoryview(data)[_SIGNATURE_SIZE:]
        place = self._place(store, key, format_name)
        return _signature(place, payload, None) + payload


#: Lists and dicts may be nested this deep in a JSON value, and no deeper.
#: Python's JSON parser recurses once per level, within the interpreter's
#: recursion limit (1000 by default), and a value is read back wherever the
#: code that reads it stands on the stack (a view, a template, a signal), so
#: a value written near the limit might never be read back.
JSON_MAX_DEPTH = 500
# The path to a problem is cut to this many characters in messages.
_LONGEST_PATH = 200


def _json_problem(value: Any, depth: int = 0) -> tuple[str, type[Exception], str] | None:
    """Return ``(path below value, exception class, what is wrong)``, or ``None`` if exact.

    ``depth`` is how many lists and dicts hold ``value``. Only a value that
    fails builds a path, so checking a valid value costs no string formatting.
    """
    # Exact types: a subclass (an IntEnum, a SafeString) would come back as
    # its plain base type, a tuple as a list, an int dict key as a str.
    value_type = type(value)
    if value is None or value_type is str or value_type is bool:
        return None
    if value_type is int:
        limit = sys.get_int_max_str_digits()
        # Python refuses to turn an int of more than ``limit`` digits into
        # text (or back), so json.dumps() would fail on it. Fewer than
        # 3 * limit bits always means fewer digits, so the exact check is rare.
        if not limit or value.bit_length() <= 3 * limit or abs(value) < 10**limit:
            return None
        return (
            "",
            ValueError,
            f"is an int of more than {limit} digits, which Python will not turn into "
            "text (see sys.set_int_max_str_digits())",
        )
    if value_type is float:
        if math.isfinite(value):
            return None
        return "", ValueError, f"is {value!r}, which JSON cannot represent"
    if (value_type is list or value_type is dict) and depth >= JSON_MAX_DEPTH:
        return (
            "",
            RecursionError,
            f"is nested more than {JSON_MAX_DEPTH} lists and dicts deep, which JSON "
            "cannot be relied on to read back",
        )
    if value_type is list:
        for index, item in enumerate(value):
            problem = _json_problem(item, depth + 1)
            if problem is not None:
                return f"[{index}]{problem[0]}", problem[1], problem[2]
        return None
    if value_type is dict:
        for key, item in value.items():
            if type(key) is not str:
                return (
                    "",
                    TypeError,
                    f"has a key of type {type(key).__name__}; JSON object keys must be str",
                )
            problem = _json_problem(item, depth + 1)
            if problem is not None:
                return f"[{key!r}]{problem[0]}", problem[1], problem[2]
        return None
    return "", TypeError, f"is of type {value_type.__name__}, which JSON cannot represent"


def check_json_value(value: Any) -> None:
    """Raise unless JSON gives ``value`` back exactly, with the same types and contents.

    That is ``None``, ``bool``, ``int``, finite ``float``, ``str``, and lists
    and dicts (with ``str`` keys) of those, of exactly these types: JSON
    would quietly turn a tuple into a list, an ``int`` dict key into a
    ``str`` and an ``IntEnum`` into an ``int``. Raises ``TypeError`` (a type
    JSON lacks), ``ValueError`` (NaN, an infinity, an ``int`` of more
    digits than ``sys.get_int_max_str_digits()``) or ``RecursionError``
    (lists and dicts nested more than :data:`JSON_MAX_DEPTH` deep) naming
    where in ``value`` the problem is, for example ``value[2]['a']``.
    """
    problem = _json_problem(value)
    if problem is not None:
        path, error_class, message = problem
        if len(path) > _LONGEST_PATH:
            path = path[:_LONGEST_PATH] + "…"
        raise error_class(f"value{path} {message}")


def is_exact_json(value: Any) -> bool:
    """Return whether JSON gives ``value`` back exactly (see :func:`check_json_value`)."""
    return _json_problem(value) is None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):  # a literal too large for a float, such as 1e400
        raise ValueError(f"{text} is too large a number (it would be infinity)")
    return number


def parse_json(text: str | bytes) -> Any:
    """Parse strict JSON: ``NaN`` and ``Infinity``, which JSON proper lacks, are refused,
    and so are numbers too large for a float (``1e400``), which would be infinity.

    Raises ``ValueError`` naming the problem (a ``json.JSONDecodeError``,
    with its line and column, for text that is not JSON), also for text
    nested too deeply to parse, where ``json.loads`` raises ``RecursionError``.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None


class JSONSerializer:
    """JSON: readable by any program, limited to ``None``, bool, int, float, str, list and dict.

    Values JSON would silently change (tuples, dicts with non-``str`` keys,
    NaN and infinities) are refused with ``TypeError``/``ValueError``.
    """

    name = JSON_FORMAT

    def dumps(self, value: Any) -> bytes:
        """Return the compact UTF-8 JSON of ``value``."""
        check_json_value(value)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        """Parse the JSON in ``data``."""
        return json.loads(data)


_BUILTIN_SERIALIZERS: dict[str, type] = {
    PickleSerializer.name: PickleSerializer,
    JSONSerializer.name: JSONSerializer,
}


def get_serializer(spec: str) -> Serializer:
    """Return the serializer named by ``spec``: ``"pickle"``, ``"json"`` or a dotted path.

    Raise :class:`~django_keyval.exceptions.ArgumentTypeError` for a ``spec``
    that is not a ``str``, and
    :class:`~django_keyval.exceptions.InvalidSerializerError` for one that
    cannot be imported, lacks the interface or has a reserved or invalid name.
    """
    if not isinstance(spec, str):
        raise ArgumentTypeError(f"a serializer is given as a str, not {type(spec).__name__}")
    return _load_serializer(spec)


@cache
def _load_serializer(spec: str) -> Serializer:
    if spec in _BUILTIN_SERIALIZERS:
        return _BUILTIN_SERIALIZERS[spec]()  # type: ignore[no-any-return]
    try:
        serializer = import_string(spec)()
    except ImportError as error:
        raise InvalidSerializerError(f"cannot import the serializer {spec!r}: {error}") from error
    if not isinstance(serializer, Serializer) or not isinstance(serializer.name, str):
        raise InvalidSerializerError(
            f"{spec!r} lacks the serializer interface (name, dumps, loads)"
        )
    name = serializer.name
    if name.lower() in BUILTIN_FORMATS:
        raise InvalidSerializerError(
            f"{spec!r} is named {name!r}, a name reserved for the built-in formats "
            f"({', '.join(sorted(BUILTIN_FORMATS))})"
        )
    if not 0 < len(name) <= 50:
        raise InvalidSerializerError(f"{spec!r} has a name of {len(name)} characters (1 to 50)")
    return serializer


def serializer_by_name(name: str, *candidates: Serializer) -> Serializer:
    """Return the serializer that wrote rows tagged ``name``: built in, or among ``candidates``."""
    if name in _BUILTIN_SERIALIZERS:
        return get_serializer(name)
    for candidate in candidates:
        if candidate.name == name:
            return candidate
    raise DeserializationError(
        f"the value was written by a serializer named {name!r}, which is not configured"
    )
