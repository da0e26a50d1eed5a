"""The systems the benchmark compares, each behind the same small interface.

A system maps an operation (see :data:`OPERATIONS`) to a callable taking one
argument: a key, a list of keys (``get_many``) or a mapping (``set_many``).
``prepare`` may turn those arguments into the form the callable wants before
the clock starts (the floor turns them into statement parameters).
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.core.cache import caches
from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from django_keyval.encoding import encode_value
from django_keyval.exceptions import KeyNotFoundError
from django_keyval.models import KeyVal, KeyValPair
from django_keyval.serializers import get_serializer

from .operations import OPERATIONS, Operation
from .settings import CACHE_ALIAS

#: The value every benchmark write stores: a small dict, as a cache holds.
VALUE: dict[str, Any] = {
    "id": 12345,
    "name": "Ada Lovelace",
    "roles": ["admin", "editor"],
    "active": True,
}

_MISSING = object()

#: Statements that only delimit a transaction; the floor never replays them.
TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


class System:
    """A key-value system under test, bound to one database (or none)."""

    #: Column title in the printed table.
    title = ""
    #: Key in the JSON output.
    slug = ""

    def __init__(self) -> None:
        self.calls: dict[str, Callable[[Any], Any]] = {}

    def prepare(self, operation: str, arguments: list[Any]) -> list[Any]:
        """Return the arguments in the form the operation's callable takes."""
        return arguments

    def load(self, mapping: Mapping[str, Any]) -> None:
        """Store ``mapping`` (outside the clock) so that later operations find it."""
        raise NotImplementedError

    def clear(self) -> None:
        """Remove everything this system stored."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the system holds open."""


class KeyValSystem(System):
    """django-keyval itself: ``KeyVal(name, using=alias)``."""

    title = "KeyVal"
    slug = "keyval"

    def __init__(self, alias: str, store: str = "bench.keyval") -> None:
        super().__init__()
        self.kv = kv = KeyVal(store, using=alias)
        self.calls = {
            "set_new": lambda key: kv.set(key, VALUE),
            "set_overwrite": lambda key: kv.set(key, VALUE),
            "get_hit": kv.get,
            # A miss through get_default(): get() raises KeyNotFoundError,
            # which is for callers that treat a missing key as an error.
            "get_miss": kv.get_default,
            "exists_hit": kv.exists,
            "exists_miss": kv.exists,
            "delete": kv.delete,
            "pop": kv.pop,
            "add": lambda key: kv.add(key, VALUE),
            "incr": kv.incr,
            "get_many": kv.get_many,
            "set_many": kv.set_many,
        }

    def load(self, mapping: Mapping[str, Any]) -> None:
        """Store ``mapping`` with ``set_many``."""
        self.kv.set_many(mapping)

    def clear(self) -> None:
        """Flush the store."""
        self.kv.flush()


class KeyValVariantSystem(KeyValSystem):
    """django-keyval with another operations class on the same database (its second alias)."""

    TITLES = {"portable": "KeyVal portable", "mysql-class": "KeyVal MySQL class"}

    def __init__(self, alias: str, variant: str) -> None:
        from .settings import variant_alias

        super().__init__(variant_alias(alias, variant), store=f"bench.keyval.{variant}")
        self.title = self.TITLES[variant]
        self.slug = f"keyval_{variant.replace('-', '_')}"


class FloorSystem(System):
    """The single statement KeyVal runs for each operation, through Django's cursor.

    The statements are not copied from the package: each is captured (with
    ``connection.execute_wrapper``) while KeyVal runs the operation once on a
    probe key, so the floor always runs exactly what KeyVal runs. The key
    parameters are then replaced by the measured keys before the clock
    starts; the other parameters (the serialized value, the time) are reused
    as captured. Writes go to their own store, ``bench.floor``.
    """

    title = "floor"
    slug = "floor"

    def __init__(
        self, alias: str, store: str = "bench.floor", operations: Sequence[Operation] = OPERATIONS
    ) -> None:
        super().__init__()
        self.connection = connections[alias]
        self.kv = KeyVal(store, using=alias)
        #: Per operation: number of statements KeyVal ran for it.
        self.keyval_statements: dict[str, int] = {}
        #: Per operation: the statement the floor runs.
        self.statements: dict[str, str] = {}
        #: Per operation: each parameter as (index of the key it takes, or None; value).
        self.templates: dict[
            str, list[tuple[int | None, Any]] | dict[str, tuple[int | None, Any]]
        ] = {}
        for operation in operations:
            self._capture(operation)

    def _capture(self, operation: Operation) -> None:
        probe_keys = [
            f"probe:{operation.slug}:{index:03d}" for index in range(operation.keys_per_call)
        ]
        if operation.slug == "set_many":
            probe: Any = dict.fromkeys(probe_keys, VALUE)
        elif operation.slug == "get_many":
            probe = probe_keys
        else:
            probe = probe_keys[0]
        statements: list[tuple[str, Any, bool]] = []

        def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            result = execute(sql, params, many, context)
            if sql.split(None, 1)[0].upper() in TRANSACTION_CONTROL:
                return result  # atomic()'s BEGIN on SQLite: not part of the statement
            # Named (``%(key)s``) parameters come as a mapping, others as a sequence.
            captured = dict(params) if isinstance(params, Mapping) else tuple(params or ())
            statements.append((sql, captured, context["cursor"].description is not None))
            return result

        keyval = KeyValSystem(self.kv.using or "", store=self.kv.name)
        # get, delete and pop of a missing probe key raise, after their statement ran.
        with self.connection.execute_wrapper(capture), contextlib.suppress(KeyNotFoundError):
            keyval.calls[operation.slug](probe)
        if not statements:
            raise RuntimeError(f"KeyVal ran no statement for {operation.label}")
        self.keyval_statements[operation.slug] = len(statements)
        # The floor is the one statement the operation needs: the first one
        # KeyVal runs (the report flags any operation that runs more).
        sql, params, returns_rows = statements[0]
        self.statements[operation.slug] = sql
        slots = {key: index for index, key in enumerate(probe_keys)}

        def slot(param: Any) -> tuple[int | None, Any]:
            return (
                (slots[param], None) if isinstance(param, str) and param in slots else (None, param)
            )

        self.templates[operation.slug] = (
            {name: slot(param) for name, param in params.items()}
            if isinstance(params, dict)
            else [slot(param) for param in params]
        )
        self.calls[operation.slug] = _statement_runner(
            self.connection,
            sql,
            "rowcount" if not returns_rows else "all" if operation.keys_per_call > 1 else "one",
        )

    def prepare(self, operation: str, arguments: list[Any]) -> list[Any]:
        """Turn each key (list of keys, mapping) into the statement's parameters."""
        template = self.templates[operation]
        prepared = []
        for argument in arguments:
            keys = list(argument) if isinstance(argument, (list, dict)) else [argument]
            if isinstance(template, dict):
                prepared.append(
                    {
                        name: value if slot is None else keys[slot]
                        for name, (slot, value) in template.items()
                    }
                )
            else:
                prepared.append(
                    tuple(value if slot is None else keys[slot] for slot, value in template)
                )
        return prepared

    def load(self, mapping: Mapping[str, Any]) -> None:
        """Store ``mapping`` in the floor's store (rows as KeyVal writes them)."""
        self.kv.set_many(mapping)

    def clear(self) -> None:
        """Flush the floor's store."""
        self.kv.flush()


class MinimalSystem(System):
    """The least SQL that does each operation, written by hand, through Django's cursor.

    It keeps none of KeyVal's guarantees: no version, no exact answer to
    "was the key new", no expiry written, no bound on a counter. Its
    upserts set the value alone, and each overwrite writes a value that
    differs from the stored one (MariaDB skips a write that changes nothing,
    which would make such a floor look twice as fast as any real overwrite).
    Reads test the expiry in SQL. The 100-key operations have no minimal
    statement here.
    """

    title = "minimal"
    slug = "minimal"

    def __init__(self, alias: str, store: str = "bench.minimal") -> None:
        super().__init__()
        self.connection = connection = connections[alias]
        self.kv = KeyVal(store, using=alias)
        self.store = store
        quote = connection.ops.quote_name
        columns = {field.name: quote(str(field.column)) for field in KeyValPair._meta.fields}
        table = quote(KeyValPair._meta.db_table)
        store_column, key, value = columns["store"], columns["key"], columns["value"]
        integer, expires = columns["integer_value"], columns["expires_at"]
        insert = (
            f"INTO {table} ({store_column}, {key}, {value}, {columns['serializer']}, "
            f"{columns['version']}, {columns['first_version']}, {columns['updated_at']}) "
            "VALUES (%s, %s, %s, 'pickle', 1, 1, %s)"
        )
        if connection.vendor == "mysql":
            upsert = f"INSERT {insert} ON DUPLICATE KEY UPDATE {value} = VALUES({value})"
            insert_new = f"INSERT IGNORE {insert}"
        else:
            upsert = (
                f"INSERT {insert} ON CONFLICT ({store_column}, {key}) "
                f"DO UPDATE SET {value} = excluded.{value}"
            )
            insert_new = f"INSERT {insert} ON CONFLICT DO NOTHING"
        where_key = f"{store_column} = %s AND {key} = %s"
        live = f"({expires} IS NULL OR {expires} > %s)"
        #: Per operation: the statement this system runs.
        self.statements = {
            "set_new": upsert,
            "set_overwrite": upsert,
            "get_hit": f"SELECT {value} FROM {table} WHERE {where_key} AND {live}",
            "get_miss": f"SELECT {value} FROM {table} WHERE {where_key} AND {live}",
            "exists_hit": f"SELECT 1 FROM {table} WHERE {where_key} AND {live}",
            "exists_miss": f"SELECT 1 FROM {table} WHERE {where_key} AND {live}",
            "delete": f"DELETE FROM {table} WHERE {where_key}",
            "pop": f"DELETE FROM {table} WHERE {where_key} RETURNING {value}",
            "add": insert_new,
            "incr": f"UPDATE {table} SET {integer} = {integer} + 1 WHERE {where_key}",
        }
        returns_rows = {"get_hit", "get_miss", "exists_hit", "exists_miss", "pop"}
        self.calls = {
            slug: _statement_runner(connection, sql, "one" if slug in returns_rows else "rowcount")
            for slug, sql in self.statements.items()
        }
        self.data = get_serializer("pickle").dumps(VALUE)
        self.writes = 0

    def prepare(self, operation: str, arguments: list[Any]) -> list[Any]:
        """Turn each key into the statement's parameters (a fresh value for each write)."""
        now = self.connection.ops.adapt_datetimefield_value(timezone.now())
        prepared: list[Any] = []
        for key in arguments:
            if operation in ("set_new", "set_overwrite", "add"):
                self.writes += 1
                # Same length every time, never the bytes already stored.
                data = self.data + b"%012d" % self.writes
                prepared.append((self.store, key, data, now))
            elif operation.startswith(("get", "exists")):
                prepared.append((self.store, key, now))
            else:
                prepared.append((self.store, key))
        return prepared

    def load(self, mapping: Mapping[str, Any]) -> None:
        """Store ``mapping`` in the system's store (rows as KeyVal writes them)."""
        self.kv.set_many(mapping)

    def clear(self) -> None:
        """Flush the system's store."""
        self.kv.flush()


def _statement_runner(connection: Any, sql: str, result: str) -> Callable[[Any], Any]:
    if result == "one":

        def run_one(params: Any) -> Any:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()

        return run_one
    if result == "all":

        def run_all(params: Any) -> Any:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()

        return run_all

    def run_rowcount(params: Any) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    return run_rowcount


class ORMSystem(System):
    """The same operations written plainly with the ORM on ``KeyValPair``.

    What a developer would write without the package: ``update_or_create``,
    ``filter().first()``, ``get_or_create``, an ``F()`` update, ``bulk_create``
    with ``update_conflicts``. Values use the package's serializer, so only the
    queries differ from KeyVal.
    """

    title = "ORM"
    slug = "orm"

    def __init__(self, alias: str, store: str = "bench.orm") -> None:
        super().__init__()
        self.alias = alias
        self.store = store
        self.kv = KeyVal(store, using=alias)
        self.objects = KeyValPair.objects.using(alias)
        self.calls = {
            "set_new": lambda key: self.set(key, VALUE),
            "set_overwrite": lambda key: self.set(key, VALUE),
            "get_hit": self.get,
            "get_miss": self.get,
            "exists_hit": self.exists,
            "exists_miss": self.exists,
            "delete": self.delete,
            "pop": self.pop,
            "add": lambda key: self.add(key, VALUE),
            "incr": self.incr,
            "get_many": self.get_many,
            "set_many": self.set_many,
        }

    def _fields(self, key: str, value: Any) -> dict[str, Any]:
        # The row KeyVal would write: a pickle signed for its store and key.
        data, integer, serializer = encode_value(self.store, key, value, "pickle")
        return {"value": data, "integer_value": integer, "serializer": serializer}

    def _live(self) -> Q:
        return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())

    def set(self, key: str, value: Any) -> bool:
        """``update_or_create``."""
        defaults = {**self._fields(key, value), "expires_at": None, "updated_at": timezone.now()}
        _, created = self.objects.update_or_create(store=self.store, key=key, defaults=defaults)
        return created

    def get(self, key: str, default: Any = None) -> Any:
        """``filter().first()``."""
        pair = self.objects.filter(self._live(), store=self.store, key=key).first()
        return default if pair is None else pair.decoded_value()

    def exists(self, key: str) -> bool:
        """``filter().exists()``."""
        return self.objects.filter(self._live(), store=self.store, key=key).exists()

    def delete(self, key: str) -> bool:
        """``filter().delete()``."""
        deleted, _ = self.objects.filter(self._live(), store=self.store, key=key).delete()
        return deleted > 0

    def pop(self, key: str, default: Any = None) -> Any:
        """``select_for_update().first()`` then ``delete()``, in a transaction."""
        with transaction.atomic(using=self.alias):
            pair = (
                self.objects.select_for_update()
                .filter(self._live(), store=self.store, key=key)
                .first()
            )
            if pair is None:
                return default
            pair.delete()
        return pair.decoded_value()

    def add(self, key: str, value: Any) -> bool:
        """``get_or_create``."""
        defaults = {**self._fields(key, value), "updated_at": timezone.now()}
        _, created = self.objects.get_or_create(store=self.store, key=key, defaults=defaults)
        return created

    def incr(self, key: str, delta: int = 1) -> int:
        """An ``F()`` update, then a read of the new value, in a transaction."""
        with transaction.atomic(using=self.alias):
            pairs = self.objects.filter(store=self.store, key=key, serializer="int")
            if not pairs.update(
                integer_value=F("integer_value") + delta, updated_at=timezone.now()
            ):
                self.objects.create(
                    store=self.store, key=key, **self._fields(key, delta), updated_at=timezone.now()
                )
                return delta
            return int(pairs.values_list("integer_value", flat=True).get())

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """``filter(key__in=...)``."""
        pairs = self.objects.filter(self._live(), store=self.store, key__in=keys)
        return {pair.key: pair.decoded_value() for pair in pairs}

    def set_many(self, mapping: Mapping[str, Any]) -> None:
        """``bulk_create(update_conflicts=True)`` in a transaction."""
        now = timezone.now()
        pairs = [
            KeyValPair(store=self.store, key=key, **self._fields(key, value), updated_at=now)
            for key, value in mapping.items()
        ]
        connection = connections[self.alias]
        target = {}
        if connection.features.supports_update_conflicts_with_target:
            target["unique_fields"] = ["store", "key"]
        with transaction.atomic(using=self.alias):
            self.objects.bulk_create(
                pairs,
                update_conflicts=True,
                update_fields=["value", "integer_value", "serializer", "expires_at", "updated_at"],
                **target,
            )

    def load(self, mapping: Mapping[str, Any]) -> None:
        """Store ``mapping`` with ``set_many``."""
        self.set_many(mapping)

    def clear(self) -> None:
        """Delete the store's rows."""
        self.kv.flush()


class DatabaseCacheSystem(System):
    """Django's ``DatabaseCache`` on the same database (found through the router)."""

    title = "DatabaseCache"
    slug = "database_cache"

    def __init__(self) -> None:
        super().__init__()
        self.cache = cache = caches[CACHE_ALIAS]
        self.calls = {
            "set_new": lambda key: cache.set(key, VALUE),
            "set_overwrite": lambda key: cache.set(key, VALUE),
            "get_hit": cache.get,
            "get_miss": cache.get,
            "exists_hit": cache.has_key,
            "exists_miss": cache.has_key,
            "delete": cache.delete,
            # No pop in Django's cache API.
            "add": lambda key: cache.add(key, VALUE),
            "incr": cache.incr,
            "get_many": cache.get_many,
            "set_many": cache.set_many,
        }

    def load(self, mapping: Mapping[str, Any]) -> None:
        """Store ``mapping`` with ``set_many``."""
        self.cache.set_many(mapping)

    def clear(self) -> None:
        """Empty the cache table."""
        self.cache.clear()


class DiskCacheSystem(System):
    """diskcache's ``Cache`` (SQLite with WAL, in its own directory).

    It has no ``get_many``/``set_many``; those run the single-key calls in
    one ``transact()`` block, the batching its documentation recommends.
    """

    title = "diskcache"
    slug = "diskcache"

    def __init__(self, directory: str) -> None:
        super().__init__()
        import diskcache

        self.cache = cache = diskcache.Cache(directory)
        self.calls = {
            "set_new": lambda key: cache.set(key, VALUE),
            "set_overwrite": lambda key: cache.set(key, VALUE),
            "get_hit": cache.get,
            "get_miss": cache.get,
            "exists_hit": cache.__contains__,
            "exists_miss": cache.__contains__,
            "delete": cache.delete,
            "pop": cache.pop,
            "add": lambda key: cache.add(key, VALUE),
            "incr": cache.incr,
            "get_many": self.get_many,
            "set_many": self.set_many,
        }

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """``get`` each key in one transaction."""
        found = {}
        with self.cache.transact():
            for key in keys:
                value = self.cache.get(key, _MISSING)
                if value is not _MISSING:
                    found[key] = value
        return found

    def set_many(self, mapping: Mapping[str, Any]) -> None:
        """``set`` each pair in one transaction."""
        with self.cache.transact():
            for key, value in mapping.items():
                self.cache.set(key, value)

    def load(self, mapping: Mapping[str, Any]) -> None:
        """Store ``mapping``."""
        self.set_many(mapping)

    def clear(self) -> None:
        """Empty the cache."""
        self.cache.clear()

    def close(self) -> None:
        """Close the cache's SQLite connection."""
        self.cache.close()


class RedisSystem(System):
    """redis-py against a Redis server, values pickled as a Python cache client does."""

    title = "redis-py"
    slug = "redis"

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        import redis

        self.client = client = redis.Redis.from_url(url)
        client.ping()
        self.prefix = prefix
        dumps, loads = pickle.dumps, pickle.loads
        protocol = pickle.HIGHEST_PROTOCOL

        def get(key: str) -> Any:
            data = client.get(key)
            return None if data is None else loads(data)

        def pop(key: str) -> Any:
            data = client.getdel(key)
            return None if data is None else loads(data)

        def get_many(keys: list[str]) -> dict[str, Any]:
            return {
                key: loads(data)
                for key, data in zip(keys, client.mget(keys), strict=True)
                if data is not None
            }

        self.calls = {
            "set_new": lambda key: client.set(key, dumps(VALUE, protocol)),
            "set_overwrite": lambda key: client.set(key, dumps(VALUE, protocol)),
            "get_hit": get,
            "get_miss": get,
            "exists_hit": client.exists,
            "exists_miss": client.exists,
            "delete": client.delete,
            "pop": pop,
            "add": lambda key: client.set(key, dumps(VALUE, protocol), nx=True),
            "incr": client.incr,
            "get_many": get_many,
            "set_many": lambda mapping: client.mset(
                {key: dumps(value, protocol) for key, value in mapping.items()}
            ),
        }

    def prepare(self, operation: str, arguments: list[Any]) -> list[Any]:
        """Put the benchmark's prefix in front of every key."""
        prefix = self.prefix
        if operation == "set_many":
            return [
                {prefix + key: value for key, value in mapping.items()} for mapping in arguments
            ]
        if operation == "get_many":
            return [[prefix + key for key in keys] for keys in arguments]
        return [prefix + key for key in arguments]

    def load(self, mapping: Mapping[str, Any]) -> None:
        """Store ``mapping`` with ``MSET`` (integers as Redis integers)."""
        self.client.mset(
            {
                self.prefix + key: value
                if type(value) is int
                else pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
                for key, value in mapping.items()
            }
        )

    def clear(self) -> None:
        """Delete the keys with the benchmark's prefix."""
        batch = []
        for key in self.client.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                self.client.delete(*batch)
                batch = []
        if batch:
            self.client.delete(*batch)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def diskcache_available() -> str | None:
    """Return why diskcache cannot be measured, or ``None`` if it can."""
    try:
        import diskcache  # noqa: F401
    except ImportError:
        return "diskcache is not installed (pip install -e '.[bench]')"
    return None


def redis_url() -> str:
    """The Redis server to compare with (``KEYVAL_BENCH_REDIS_URL``)."""
    return os.environ.get("KEYVAL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_unavailable() -> str | None:
    """Return why Redis cannot be measured, or ``None`` if it can."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed (pip install -e '.[bench]')"
    try:
        client = redis.Redis.from_url(redis_url(), socket_connect_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as error:
        return f"no Redis server at {redis_url()} ({error})"
    return None
