"""Export and import of pairs as JSON Lines (``manage.py keyval -c export|import``).

Each line is one JSON object describing one live pair::

    {"store": "app", "key": "greeting", "value": "hi", "expires_at": null}
    {"store": "app", "key": "n", "value": [1], "serializer": "json", "expires_at": null}
    {"store": "app", "key": "t", "pickle": "aXo...", "serializer": "pickle",
     "expires_at": "2030-01-01T00:00:00+00:00"}

(one line each; the last is wrapped here).

``value`` holds a value that JSON represents exactly: ``None``, ``bool``,
``int``, finite ``float``, ``str``, and lists and dicts (with ``str`` keys) of
those, of exactly these types (no subclasses, tuples or sets). Any other value
(``bytes`` included) goes as ``pickle``: the base64 of the signed pickle (the
32-byte signature followed by the pickle), for a pair stored with
pickle exactly as the store keeps it. The signature binds the pickle to the
line's store, key and format (its ``serializer``, or ``"pickle"``), as in the
database, so a pickle moved to another line is refused.

``serializer`` names the format the pair was stored in, so that an import
stores it the same way: ``"pickle"``, ``"json"``, the ``name`` of a custom
serializer, or ``"bytes"`` for a plain ``bytes`` value. It is left out for
a plain ``int`` or ``str`` stored natively, which the value alone
describes. An import stores a ``value`` without ``serializer`` as
:meth:`KeyVal.set` would (with ``KEYVAL_SERIALIZER``), and a ``pickle``
without ``serializer`` as a pickle.
``expires_at`` is an ISO 8601 time with its UTC offset, or ``null`` for a pair
that never expires.

An import checks every pickle's signature for its line against
``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``; a pair stored with pickle is
written back with the same pickle, without being unpickled, and signed anew
with ``SECRET_KEY``; only a pickle whose signature matches is ever
unpickled (to store it with its own serializer). So moving pairs between
two projects needs the exporting project's key among the importing
project's ``SECRET_KEY_FALLBACKS`` (or the same ``SECRET_KEY``) during the
import only: the imported pairs are signed with the importing project's key.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from . import clock
from .conf import keyval_settings
from .encoding import check_value_size, decode_value, encode_value
from .exceptions import DeserializationError, TransferError
from .rows import StoredRow
from .serializers import (
    INTEGER_FORMAT,
    NATIVE_FORMATS,
    PICKLE_FORMAT,
    SERIALIZER_FORMATS,
    STR_FORMAT,
    PickleSerializer,
    get_serializer,
    is_exact_json,
    parse_json,
)
from .store import KeyVal, stored_rows
from .table import route, table
from .validation import validate_key

__all__ = [
    "ImportResult",
    "SkippedPair",
    "TransferError",
    "count_pairs",
    "export_lines",
    "import_lines",
]

#: Rows read per page while exporting, so memory stays flat.
EXPORT_PAGE_SIZE = 1000
#: Pairs written per batch of statements while importing.
IMPORT_CHUNK_SIZE = 1000
#: Value bytes held before a batch is written while importing, at most (a
#: larger value goes alone), so that import memory is bounded in bytes too.
IMPORT_CHUNK_BYTES = 8 * 1024 * 1024

_FIELDS = {"store", "key", "value", "pickle", "serializer", "expires_at"}
_VALUE_FIELDS = ("value", "pickle")
#: Formats the value of a line describes alone, so it carries no "serializer".
_IMPLIED_FORMATS = frozenset({INTEGER_FORMAT, STR_FORMAT})

#: Called with the number of pairs handled so far, every ``EXPORT_PAGE_SIZE``
#: or ``IMPORT_CHUNK_SIZE`` pairs.
Progress = Callable[[int], None]


def _format_expiry(expires_at: datetime.datetime | None) -> str | None:
    if expires_at is None:
        return None
    if timezone.is_naive(expires_at):  # USE_TZ = False: times are in TIME_ZONE
        expires_at = timezone.make_aware(expires_at)
    return expires_at.astimezone(datetime.timezone.utc).isoformat()


def _parse_expiry(text: Any) -> datetime.datetime | None:
    """Return the expiry time of a line: in UTC, or naive in ``TIME_ZONE`` without ``USE_TZ``."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f'"expires_at" must be a string or null, not {type(text).__name__}')
    try:
        # Python 3.10's fromisoformat() does not know the "Z" suffix.
        expires_at = datetime.datetime.fromisoformat(
            text[:-1] + "+00:00" if text.endswith("Z") else text
        )
    except ValueError:
        raise ValueError(f'"expires_at" is not an ISO 8601 time: {text!r}') from None
    if expires_at.tzinfo is None:
        raise ValueError(f'"expires_at" must include a UTC offset: {text!r}')
    try:
        # In UTC, as the databases keep it: 9999-12-31T23:59:59-05:00 is in
        # the year 10000, which no datetime can hold.
        expires_at = expires_at.astimezone(datetime.timezone.utc)
        if not settings.USE_TZ:
            expires_at = timezone.make_naive(expires_at)  # in TIME_ZONE, as now is
    except OverflowError:
        raise ValueError(f'"expires_at" is outside the range of times: {text!r}') from None
    return expires_at


def _record(
    store: str, key: str, data: Any, integer: Any, serializer_name: str, candidates: list[Any]
) -> dict[str, Any]:
    """Return the ``value`` or ``pickle`` part of the line of one row, and its ``serializer``."""
    if serializer_name == INTEGER_FORMAT:
        return {"value": int(integer)}
    # Signature-checked: a tampered pickle raises BadSignatureError, unread.
    value = decode_value(store, key, serializer_name, data, integer, *candidates)
    try:
        exact = is_exact_json(value)
    except RecursionError:
        exact = False  # too deep to check (or to write as JSON): sent as a pickle
    record: dict[str, Any]
    if exact:
        record = {"value": value}
    elif serializer_name == PICKLE_FORMAT:
        record = {"pickle": base64.b64encode(bytes(data)).decode("ascii")}  # as stored
    else:
        # bytes, or a value of a custom serializer, that JSON cannot carry:
        # carry it as a signed pickle, and its format beside it.
        try:
            signed = PickleSerializer().dumps(value, store, key, serializer_name)
        except Exception as error:
            raise TransferError(
                f"cannot export key {key!r} of store {store!r}: its value is neither JSON "
                f"nor picklable ({type(error).__name__}: {error})"
            ) from error
        record = {"pickle": base64.b64encode(signed).decode("ascii")}
    if serializer_name not in _IMPLIED_FORMATS:
        record["serializer"] = serializer_name
    return record


def count_pairs(using: str | None = None, store: str | None = None) -> int:
    """Return how many pairs :func:`export_lines` would export now, in one query.

    ``using`` and ``store`` as for :func:`export_lines`.
    """
    if store is not None:
        return KeyVal(store, using=using).count()
    db = table(using, write=False)
    return db.operations.count_all(db.connection, db.now())


class SkippedPair(NamedTuple):
    """A pair :func:`export_lines` left out because its value cannot be read."""

    store: str
    key: str
    #: Why: a failed signature check, a serializer that is not configured, ...
    reason: str


def export_lines(
    using: str | None = None,
    store: str | None = None,
    progress: Progress | None = None,
    skipped: list[SkippedPair] | None = None,
) -> Iterator[str]:
    """Yield one JSON line (without newline) per live pair, by store then key.

    ``store`` limits the export to one store; ``using`` picks the database
    (by default the routers' ``db_for_read``). Rows are read
    ``EXPORT_PAGE_SIZE`` at a time, and values longer than a few kilobytes
    apart, a bounded number of bytes at a time (as
    :meth:`~django_keyval.models.KeyVal.items` reads them), so memory stays
    flat whatever the size of the values. A pickle whose signature does not
    match raises :class:`~django_keyval.exceptions.BadSignatureError` naming
    store and key; it is never unpickled. Expired pairs are left out.
    Without ``store``, the export covers the stores of one database (see
    :meth:`~django_keyval.models.KeyVal.stores`).

    With ``skipped``, a list, a pair whose value cannot be read (a failed
    signature check, a serializer that is missing or fails, a value neither
    JSON nor pickle can carry) is left out instead, and appended to it as a
    :class:`SkippedPair`; the export goes on with the next pair.
    """
    if store is not None:
        KeyVal(store, using=using)  # checks the name (and alias) before any query
    alias = using or route(False, store)
    candidates = [get_serializer(keyval_settings.SERIALIZER)]
    stores = [store] if store is not None else KeyVal.stores(using=alias)
    exported = 0
    for name in stores:
        for row in stored_rows(KeyVal(name, using=alias), EXPORT_PAGE_SIZE):
            line: dict[str, Any] = {"store": name, "key": row.key}
            try:
                record = _record(name, row.key, row.value, row.integer, row.serializer, candidates)
            except (DeserializationError, TransferError) as error:
                if skipped is None:
                    raise
                skipped.append(SkippedPair(name, row.key, str(error)))
                continue
            line.update(record)
            line["expires_at"] = _format_expiry(row.expires_at)
            yield json.dumps(line, ensure_ascii=True, allow_nan=False)
            exported += 1
            if progress is not None and exported % EXPORT_PAGE_SIZE == 0:
                progress(exported)


class ImportResult(NamedTuple):
    """What :func:`import_lines` did."""

    #: Pairs written (a key given on several lines counts each time).
    imported: int
    #: Lines skipped because their expiry time had passed.
    expired: int


class _LineReader:
    """Turns the lines of an export into rows ready for the database."""

    def __init__(self, using: str) -> None:
        self.using = using
        self.stores: dict[str, KeyVal] = {}

    def store(self, name: Any) -> KeyVal:
        if not isinstance(name, str):
            raise ValueError(f'"store" must be a string, not {type(name).__name__}')
        if name not in self.stores:
            self.stores[name] = KeyVal(name, using=self.using)
        return self.stores[name]

    def parse(self, text: str) -> tuple[str, str, Any, Any, str, datetime.datetime | None]:
        """Return ``(store, key, bytes, integer, serializer name, expiry)`` of one line."""
        try:
            record = parse_json(text)
        except ValueError as error:
            raise ValueError(f"not valid JSON: {error}") from None
        if not isinstance(record, dict):
            raise ValueError(f"expected a JSON object, not {type(record).__name__}")
        unknown = sorted(set(record) - _FIELDS)
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(unknown)}")
        for field in ("store", "key", "expires_at"):
            if field not in record:
                raise ValueError(f'the field "{field}" is missing')
        if sum(field in record for field in _VALUE_FIELDS) != 1:
            raise ValueError('a line has exactly one of the fields "value" and "pickle"')
        store = self.store(record["store"])
        key = record["key"]
        if not isinstance(key, str):
            raise ValueError(f'"key" must be a string, not {type(key).__name__}')
        validate_key(key)
        expires_at = _parse_expiry(record["expires_at"])
        wanted = record.get("serializer")
        if wanted is not None and not isinstance(wanted, str):
            raise ValueError(f'"serializer" must be a string, not {type(wanted).__name__}')
        if "pickle" in record:
            format_name = PICKLE_FORMAT if wanted is None else wanted
            data = self.pickle(store.name, key, format_name, record["pickle"])
            if format_name == PICKLE_FORMAT:
                # Stored with the same pickle, never unpickled here, and
                # signed with SECRET_KEY now: a pair that was signed with a
                # fallback stays readable once that fallback is retired.
                data = PickleSerializer().resign(data, store.name, key)
                return store.name, key, data, None, PICKLE_FORMAT, expires_at
            # Signed with one of our keys, so as safe to unpickle as a stored pickle.
            try:
                value = PickleSerializer().loads(data, store.name, key, format_name)
            except Exception as error:
                raise ValueError(
                    f"cannot unpickle the value of key {key!r} in store {store.name!r}: "
                    f"{type(error).__name__}: {error}"
                ) from None
        else:
            value = record["value"]
        data, integer, stored_as = encode_value(
            store.name, key, value, None if wanted is None else self.serializer_spec(wanted)
        )
        if wanted is not None and stored_as != wanted:
            raise ValueError(
                f'"serializer" is {wanted!r}, but the value of key {key!r} in store '
                f"{store.name!r} would be stored as {stored_as!r}"
            )
        return store.name, key, data, integer, stored_as, expires_at

    @staticmethod
    def serializer_spec(name: str) -> str | None:
        """Return what stores a value in the format ``name``, as KeyVal(serializer=...) takes it."""
        if name in NATIVE_FORMATS:
            # The value's type alone picks a native format, with any serializer
            # but JSON (which refuses bytes); parse() checks it picked this one.
            return PICKLE_FORMAT
        if name in SERIALIZER_FORMATS:
            return name
        configured = get_serializer(keyval_settings.SERIALIZER)
        if configured.name != name:
            raise ValueError(
                f'"serializer" is {name!r}, which is not the built-in pickle or json, '
                f"nor the name of the KEYVAL_SERIALIZER ({configured.name!r})"
            )
        return None  # KEYVAL_SERIALIZER

    @staticmethod
    def base64(text: Any, field: str) -> bytes:
        if not isinstance(text, str):
            raise ValueError(f'"{field}" must be a base64 string, not {type(text).__name__}')
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as error:
            raise ValueError(f'"{field}" is not valid base64: {error}') from None

    def pickle(self, store: str, key: str, format_name: str, text: Any) -> bytes:
        """Return the signed pickle of a line, once its signature is checked for its place."""
        data = self.base64(text, "pickle")
        if not PickleSerializer().signature_matches(data, store, key, format_name):
            raise ValueError(
                f"the pickled value of key {key!r} in store {store!r} failed its signature "
                f"check (it was not signed for this store, key and format ({format_name!r}) "
                "with SECRET_KEY or SECRET_KEY_FALLBACKS)"
            )
        check_value_size(store, key, len(data))
        return data


def import_lines(
    lines: Iterable[str | bytes], using: str | None = None, progress: Progress | None = None
) -> ImportResult:
    """Store the pairs of an export, all or none, in one transaction.

    ``lines`` are ``str``, or ``bytes`` in UTF-8 (as read from a binary
    file). Each line is checked (encoding, JSON, fields, types, names,
    sizes, the signature of a pickle) before its pair is written; the first
    bad line raises :class:`~django_keyval.exceptions.TransferError` naming its line number, and the
    transaction rolls back, leaving the database as it was. Blank lines are
    ignored. Pairs already in the database with the same store and key are
    overwritten; others stay. Expiry times are restored as they were; a pair
    whose expiry has already passed is skipped and counted in ``expired``.
    Each pair is stored in the format its ``serializer`` names; a ``value``
    without one as :meth:`KeyVal.set` would store it (with
    ``KEYVAL_SERIALIZER``), a ``pickle`` without one, or with ``"pickle"``,
    byte for byte and without unpickling it.
    """
    alias = using or route(True)
    if alias not in connections.settings:
        raise TransferError(f"there is no database {alias!r} in DATABASES")
    db = table(alias, write=True)
    now = clock.now()
    db_now = db.adapt(now)
    reader = _LineReader(alias)
    # Keyed by (store, key): one statement may not touch a row twice
    # (PostgreSQL's ON CONFLICT refuses), and a later line wins anyway.
    pending: dict[tuple[str, str], StoredRow] = {}
    pending_bytes = 0
    imported = expired = 0

    def write() -> None:
        nonlocal pending_bytes
        db.operations.set_many(db.connection, list(pending.values()))
        pending.clear()
        pending_bytes = 0

    # Not Table.atomic: the lines cannot be read twice, so a transient error
    # is not retried here but raised, and nothing is imported.
    with transaction.atomic(using=db.alias):
        for number, line in enumerate(lines, start=1):
            try:
                text = line.decode() if isinstance(line, bytes) else line
            except UnicodeDecodeError as error:
                raise TransferError(
                    f"line {number}: not UTF-8 text ({error}); nothing was imported"
                ) from None
            if not text.strip():
                continue
            try:
                store, key, data, integer, serializer_name, expires_at = reader.parse(text)
            except (ValueError, TypeError) as error:
                raise TransferError(f"line {number}: {error}; nothing was imported") from None
            if expires_at is not None and expires_at <= now:
                expired += 1
                continue
            row = StoredRow(
                store, key, data, integer, serializer_name, db.adapt(expires_at), db_now
            )
            if data is not None and pending and pending_bytes + len(data) > IMPORT_CHUNK_BYTES:
                write()
            pending[(store, key)] = row
            pending_bytes += 0 if data is None else len(data)
            imported += 1
            if len(pending) >= IMPORT_CHUNK_SIZE:
                write()
            if progress is not None and imported % IMPORT_CHUNK_SIZE == 0:
                progress(imported)
        if pending:
            write()
    return ImportResult(imported, expired)
