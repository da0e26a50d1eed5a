"""Helpers several test modules share."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import os
import pickle
import unittest
from io import StringIO
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.utils import timezone

from django_keyval.models import KeyValPair
from django_keyval.serializers import PickleSerializer


class Point:
    """A user class: pickle stores it, JSON cannot."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


class Colour(enum.IntEnum):
    """An int subclass: JSON would give it back as a plain int."""

    RED = 1


class TTYStringIO(StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class CreatesFile:
    """Unpickling this opens (creates) a file: the proof that a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


class ReversedJSONSerializer:
    """A custom serializer for the tests: JSON written back to front; keeps tuples."""

    name = "reversed-json"

    def dumps(self, value: Any) -> bytes:
        if isinstance(value, tuple):
            value = {"__tuple__": list(value)}
        return json.dumps(value).encode()[::-1]

    def loads(self, data: bytes) -> Any:
        value = json.loads(data[::-1])
        if isinstance(value, dict) and "__tuple__" in value:
            return tuple(value["__tuple__"])
        return value


class UnpicklableSerializer:
    """A custom serializer that reads every value back as something pickle refuses."""

    name = "unpicklable"

    def dumps(self, value: Any) -> bytes:
        return b"?"

    def loads(self, data: bytes) -> Any:
        return [lambda: None]


def forged_pickle(path: str) -> bytes:
    """A pickle that creates ``path`` when loaded, with a signature made up by the forger."""
    return b"\x00" * 32 + pickle.dumps(CreatesFile(path))


def insert_raw(
    store: str, key: str, value: bytes, serializer: str = "pickle", using: str = "default"
) -> KeyValPair:
    """Write a row with raw SQL, as something other than the store (an attacker) would."""
    db = connections[using]
    quote = db.ops.quote_name
    columns = ", ".join(
        quote(name)
        for name in (
            "store",
            "key",
            "value",
            "serializer",
            "version",
            "first_version",
            "updated_at",
        )
    )
    now = db.ops.adapt_datetimefield_value(timezone.now())
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(KeyValPair._meta.db_table)} ({columns}) "
            "VALUES (%s, %s, %s, %s, 1, 1, %s)",
            [store, key, value, serializer, now],
        )
    row: KeyValPair = KeyValPair.objects.using(using).get(store=store, key=key)
    return row


def rows(using: str = "default") -> list[tuple[Any, ...]]:
    """Every row as (store, key, serializer, value bytes, integer, expiry)."""
    return [
        (store, key, fmt, None if data is None else bytes(data), integer, expires)
        for store, key, fmt, data, integer, expires in KeyValPair.objects.using(using)
        .order_by("store", "key")
        .values_list("store", "key", "serializer", "value", "integer_value", "expires_at")
    ]


def write_raw(store: str, key: str, data: bytes, serializer: str = "pickle") -> None:
    """Overwrite a row's bytes with raw SQL, as someone with database access could."""
    table = connection.ops.quote_name(KeyValPair._meta.db_table)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {quote('value')} = %s, {quote('serializer')} = %s, "
            f"{quote('integer_value')} = NULL WHERE {quote('store')} = %s AND {quote('key')} = %s",
            [data, serializer, store, key],
        )


def sample_values() -> dict[str, dict[str, Any]]:
    """Values of every kind, in two stores."""
    aware = datetime.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=datetime.timezone.utc)
    return {
        "app": {
            "int": 42,
            "negative": -(2**63),
            "big int": 2**70,
            "float": 0.1,
            "negative zero": -0.0,
            "nan": float("nan"),
            "bool": True,
            "none": None,
            "str": "héllo ☃ \U0001f600",
            "lone surrogate": "\ud800",
            "empty": "",
            "list": [1, "two", [3.5, None], {"k": False}],
            "dict": {"a": {"b": [1, 2]}},
            "dict int keys": {1: "one"},
            "tuple": (1, 2),
            "nested tuple": [1, (2, 3)],
            "set": {1, 2, 3},
            "frozenset": frozenset({"a"}),
            "bytes": b"\x00\xff",
            "decimal": decimal.Decimal("1.10"),
            "aware datetime": aware,
            "naive datetime": datetime.datetime(2000, 1, 1, 12, 30),
            "date": datetime.date(1999, 12, 31),
            "point": Point(1, 2),
            "int enum": Colour.RED,
        },
        "other store": {"int": 1, "über/ключ %_": "x"},
    }


def typed(value: Any) -> Any:
    """A value with its types spelt out, so 1 == 1.0 == True cannot hide a change."""
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [typed(item) for item in value])
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    return (type(value).__name__, value)


class MisconfiguredSerializer(ReversedJSONSerializer):
    """Reads the rows of :class:`ReversedJSONSerializer`, but cannot be created."""

    def __init__(self) -> None:
        raise ImproperlyConfigured("MisconfiguredSerializer needs a setting that is missing")


class RenamedPickleSerializer(PickleSerializer):
    """The signed pickle under another name."""

    name = "renamed-pickle"


class ShardByStoreRouter:
    """Place each store by its name: ``cache.*`` stores on ``other``, the rest on ``default``.

    The store API passes the name as the ``store`` hint; without it (the
    admin, ``flush_all``...), the pairs table is on ``default``.
    """

    def shard(self, model: Any, hints: dict[str, Any]) -> str | None:
        if model._meta.app_label != "django_keyval":
            return None
        store = hints.get("store")
        return "other" if store is not None and store.startswith("cache.") else "default"

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self.shard(model, hints)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return self.shard(model, hints)


def forced_operations() -> str:
    """Return the operations class the run forces (``KEYVAL_TEST_OPERATIONS``), or ``""``."""
    return os.environ.get("KEYVAL_TEST_OPERATIONS", "")


#: For tests that pin the statements of the vendor classes (one per single-key
#: operation...): a forced class sends its own, pinned in ``test_backends``.
vendor_classes_only = unittest.skipIf(
    bool(forced_operations()), "pins the vendor classes' statements; test_backends pins these"
)
