"""How the admin shows a stored value: decoded, with its type, or with the reason it cannot be.

Decoding checks a pickle's signature before unpickling it
(:func:`~django_keyval.encoding.decode_value`), so a value written into the
table by anything but the store is never unpickled. The list of pairs reads
at most :data:`PREVIEW_BYTES` of each value (see
:class:`~django_keyval.admin.PairChangeList`):
a longer value is previewed from its first bytes and never loaded whole.
"""

from __future__ import annotations

import json
import pickletools
import pprint
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from django.template.defaultfilters import filesizeformat
from django.utils.functional import cached_property
from django.utils.translation import gettext

from .conf import keyval_settings
from .encoding import decode_value
from .exceptions import BadSignatureError, DeserializationError
from .serializers import (
    BYTES_FORMAT,
    JSON_FORMAT,
    PICKLE_FORMAT,
    STR_FORMAT,
    Serializer,
    get_serializer,
    is_exact_json,
)
from .value_fields import ValueKind, kind_of

if TYPE_CHECKING:
    from .models import KeyValPair

__all__ = ["PREVIEW_BYTES", "DecodedValue", "decoded"]

#: Shown instead of a value whose pickle failed its signature check.
SIGNATURE_MISMATCH = "⚠ signature mismatch"
#: Shown instead of a value that cannot be decoded for another reason.
CANNOT_DECODE = "⚠ cannot decode"
#: The most bytes of one value the list of pairs reads. A value up to this
#: size is decoded in full; a longer one is previewed from its first bytes,
#: so a page of 100 pairs holds at most 100 times this, however large the values.
PREVIEW_BYTES = 64 * 1024
#: The names of the columns the list of pairs reads instead of ``value``.
PREFIX_ATTRIBUTE = "value_prefix"
SIZE_ATTRIBUTE = "value_size"

# The first opcode of a pickle, after its framing, tells the type of the
# value it holds. Read without loading anything, from a prefix whose
# signature cannot be checked: it only names a type.
_PICKLE_OPCODE_TYPES = {
    "EMPTY_DICT": "dict",
    "EMPTY_LIST": "list",
    "EMPTY_SET": "set",
    "FROZENSET": "frozenset",
    "EMPTY_TUPLE": "tuple",
    "MARK": "tuple",
    "SHORT_BINUNICODE": "str",
    "BINUNICODE": "str",
    "BINUNICODE8": "str",
    "SHORT_BINBYTES": "bytes",
    "BINBYTES": "bytes",
    "BINBYTES8": "bytes",
    "BYTEARRAY8": "bytearray",
    "BINFLOAT": "float",
    "LONG1": "int",
    "LONG4": "int",
}
_PICKLE_FRAMING = {"PROTO", "FRAME", "MEMOIZE"}
_SIGNATURE_SIZE = 32


def _pickled_type(payload: bytes) -> str:
    """Return the type name a pickle's first opcodes announce, or ``"?"``."""
    strings: list[str] = []
    with suppress(Exception):  # a prefix ends mid-opcode; any garbage is "?"
        for opcode, argument, _position in pickletools.genops(payload):
            name = opcode.name
            if name in _PICKLE_FRAMING:
                continue
            if name == "SHORT_BINUNICODE" and len(strings) < 2:
                strings.append(str(argument))  # perhaps a module and a class name
                continue
            if name == "STACK_GLOBAL" and len(strings) == 2:
                return strings[1]
            if name == "GLOBAL":
                return str(argument).rpartition(" ")[2]
            if strings:
                return "str"
            return _PICKLE_OPCODE_TYPES.get(name, "?")
    return "str" if len(strings) == 1 else "?"


class DecodedValue:
    """The value of one pair, decoded once for display, or the reason it cannot be."""

    #: Characters of the value's ``repr`` shown in the list of pairs.
    PREVIEW_LENGTH = 80

    def __init__(self, pair: KeyValPair) -> None:
        #: The decoded value (``None`` when it could not be decoded).
        self.value: Any = None
        #: ``None`` when the value was decoded, else a short marker for the list.
        self.problem: str | None = None
        #: The full explanation of :attr:`problem`.
        self.detail = ""
        #: Set when only the first :data:`PREVIEW_BYTES` were read: the size in bytes.
        self.partial_size: int | None = None
        self._partial_type = "?"
        self._partial_text = ""
        data = pair.__dict__.get(PREFIX_ATTRIBUTE, pair.__dict__.get("value"))
        size = pair.__dict__.get(SIZE_ATTRIBUTE)
        if data is not None and size is not None and size > PREVIEW_BYTES:
            self._read_prefix(pair.serializer, bytes(data), size)
            return
        if data is None and PREFIX_ATTRIBUTE not in pair.__dict__:
            data = pair.value  # loads a deferred value
        configured: tuple[Serializer, ...] = ()
        with suppress(TypeError, ValueError):  # a bad setting is reported by the system checks
            configured = (get_serializer(keyval_settings.SERIALIZER),)
        try:
            self.value = decode_value(
                pair.store, pair.key, pair.serializer, data, pair.integer_value, *configured
            )
        except BadSignatureError as error:
            self.problem, self.detail = SIGNATURE_MISMATCH, str(error)
        except DeserializationError as error:
            self.problem, self.detail = CANNOT_DECODE, str(error)

    def _read_prefix(self, serializer: str, prefix: bytes, size: int) -> None:
        self.partial_size = size
        if serializer in (STR_FORMAT, JSON_FORMAT):
            # A character cut in two at the end of the prefix is dropped.
            text = prefix.decode("utf-8", errors="ignore")
            if serializer == STR_FORMAT:
                self._partial_type, self._partial_text = "str", repr(text)
            else:
                self._partial_type, self._partial_text = _json_type(text), text
        elif serializer == BYTES_FORMAT:
            self._partial_type, self._partial_text = "bytes", repr(prefix)
        elif serializer == PICKLE_FORMAT:
            self._partial_type = _pickled_type(prefix[_SIGNATURE_SIZE:])

    @property
    def type_name(self) -> str:
        """The name of the value's type, or ``"?"`` when it could not be decoded."""
        if self.partial_size is not None:
            return self._partial_type
        return "?" if self.problem else type(self.value).__name__

    @property
    def kind(self) -> ValueKind | None:
        """The kind of form field that edits the value, ``None`` if none can."""
        if self.problem or self.partial_size is not None:
            return None
        return kind_of(self.value)

    @cached_property
    def json_text(self) -> str | None:
        """The value as indented JSON, or ``None`` if JSON cannot represent it exactly."""
        if self.problem or self.partial_size is not None or not self._is_json():
            return None
        return json.dumps(self.value, indent=2, ensure_ascii=False)

    def _is_json(self) -> bool:
        try:
            return is_exact_json(self.value)
        except RecursionError:
            return False

    def preview(self) -> str:
        """A one-line representation, cut to :attr:`PREVIEW_LENGTH` characters."""
        if self.problem:
            return self.problem
        if self.partial_size is not None:
            if not self._partial_text:
                return gettext("(%(size)s: open the pair to see it)") % {
                    "size": filesizeformat(self.partial_size)
                }
            return self._cut(" ".join(self._partial_text[: self.PREVIEW_LENGTH * 4].split()), True)
        value = self.value
        if type(value) in (str, bytes) and len(value) > self.PREVIEW_LENGTH:
            value = value[: self.PREVIEW_LENGTH]  # no need to repr megabytes to show 80 characters
        try:
            text = " ".join(repr(value).split())
        except Exception as error:  # a user class whose __repr__ fails
            return f"<{type(self.value).__name__}: repr() failed: {type(error).__name__}>"
        return self._cut(text, False)

    def _cut(self, text: str, always: bool) -> str:
        if always or len(text) > self.PREVIEW_LENGTH:
            text = text[: self.PREVIEW_LENGTH - 1] + "…"
        return text

    def pretty(self) -> str:
        """The whole value, pretty-printed: as JSON when it is JSON, else with ``pprint``."""
        if self.problem:
            return f"{self.problem}: {self.detail}"
        if self.json_text is not None:
            return self.json_text
        try:
            return pprint.pformat(self.value, width=100)
        except Exception as error:  # a user class whose __repr__ fails
            return f"<{type(self.value).__name__}: repr() failed: {type(error).__name__}: {error}>"


def _json_type(text: str) -> str:
    """Return the type of the JSON value ``text`` begins, from its first character."""
    first = text.lstrip()[:1]
    types = {"{": "dict", "[": "list", '"': "str", "t": "bool", "f": "bool", "n": "NoneType"}
    if first in types:
        return types[first]
    number = text.strip().split(None, 1)[0] if text.strip() else ""
    return "float" if any(mark in number for mark in ".eE") else "int"


def decoded(pair: KeyValPair) -> DecodedValue:
    """Return the :class:`DecodedValue` of ``pair``, decoding it at most once per instance."""
    cached = pair.__dict__.get("_keyval_decoded")
    if cached is None:
        cached = pair.__dict__["_keyval_decoded"] = DecodedValue(pair)
    return cached
