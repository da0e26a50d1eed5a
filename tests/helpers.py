"""Helpers several test modules share."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

from django_keyval.models import KeyValPair


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
