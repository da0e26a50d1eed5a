"""Growth: does a store stay as fast, and as small in memory, at a million pairs?

Measured on one database at a time, in the table emptied first:

1. ``get`` (KeyVal and its floor, interleaved) on random keys of a store of
   1,000 pairs;
2. the same once the store holds ``size`` pairs;
3. iterating ``keys()`` over all of them: time, and the peak of the memory
   Python allocates meanwhile (``tracemalloc``);
4. ``flush()`` of the whole store: time, statements (``CaptureQueriesContext``)
   and peak Python memory;
5. ``cull()`` of ``size`` expired pairs: the same figures.

Rows are written by multi-row ``INSERT`` statements, each value encoded as
``set`` encodes it (a pickle signed for its store and key), which is much
faster than ``set_many``.
"""

from __future__ import annotations

import math
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_keyval.backends import operations_for
from django_keyval.backends.base import ROW_MARKS
from django_keyval.conf import keyval_settings
from django_keyval.encoding import encode_value
from django_keyval.models import KeyVal
from django_keyval.rows import StoredRow

from .operations import OPERATIONS_BY_SLUG
from .settings import Database
from .systems import VALUE, FloorSystem
from .timing import time_calls

STORE = "bench.growth"
SMALL_SIZE = 1000
#: Rows written per transaction while filling.
FILL_TRANSACTION_ROWS = 50_000


def key_name(index: int) -> str:
    """The key of the ``index``-th pair of the growth store."""
    return f"key:{index:09d}"


def fill(alias: str, start: int, stop: int, expired: bool = False) -> float:
    """Insert the pairs ``start`` to ``stop - 1``; return the seconds it took."""
    connection = connections[alias]
    operations = operations_for(connection)
    adapt = connection.ops.adapt_datetimefield_value
    now = timezone.now()
    db_now = adapt(now)
    db_expires = adapt(now - timedelta(days=1)) if expired else None
    # As many rows a statement as the parameter limit allows (SQLite: 999).
    max_params = connection.features.max_query_params or 10_000
    per_statement = max(1, min(1000, max_params // len(StoredRow._fields)))
    prefix = operations.sql_set_many_prefix
    started = time.perf_counter()
    for chunk in range(start, stop, FILL_TRANSACTION_ROWS):
        chunk_stop = min(chunk + FILL_TRANSACTION_ROWS, stop)
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            for first in range(chunk, chunk_stop, per_statement):
                last = min(first + per_statement, chunk_stop)
                params: list[Any] = []
                for index in range(first, last):
                    # Each pickle is signed for its store and key: a value
                    # signed once for every key would fail the check on read.
                    key = key_name(index)
                    data, integer, serializer = encode_value(STORE, key, VALUE, "pickle")
                    params += StoredRow(STORE, key, data, integer, serializer, db_expires, db_now)
                cursor.execute(prefix + ", ".join([ROW_MARKS] * (last - first)), params)
    analyze(alias)
    return time.perf_counter() - started


def analyze(alias: str) -> None:
    """Refresh the planner's statistics, as autovacuum (PostgreSQL) or InnoDB would by then."""
    connection = connections[alias]
    table = operations_for(connection).table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {table}")
        elif connection.vendor == "mysql":
            cursor.execute(f"ANALYZE TABLE {table}")
            cursor.fetchall()


def measure_gets(
    alias: str, size: int, rounds: int, iterations: int, seed: int
) -> dict[str, dict[str, float]]:
    """Median ``get`` of random existing keys, KeyVal and floor interleaved."""
    kv = KeyVal(STORE, using=alias)
    floor = FloorSystem(alias, store=STORE, operations=[OPERATIONS_BY_SLUG["get_hit"]])
    systems: list[tuple[str, Callable[[Any], Any], Callable[[list[str]], list[Any]]]] = [
        ("keyval", kv.get, lambda keys: keys),
        ("floor", floor.calls["get_hit"], lambda keys: floor.prepare("get_hit", keys)),
    ]
    randomness = random.Random(seed)
    samples: dict[str, list[int]] = {name: [] for name, _, _ in systems}
    for round_number in range(-1, rounds):
        keys = [key_name(randomness.randrange(size)) for _ in range(iterations)]
        order = systems if round_number % 2 else systems[::-1]
        for name, call, prepare in order:
            durations = time_calls(call, prepare(keys))
            if round_number >= 0:
                samples[name].extend(durations)
    return {
        name: {"median_us": statistics.median(values) / 1000, "samples": len(values)}
        for name, values in samples.items()
    }


def traced(function: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``function``; return its result, seconds, and peak Python memory growth in MB."""
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        started = time.perf_counter()
        result = function()
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    return result, seconds, peak / 1e6


def measure_growth(database: Database, size: int, quick: bool = False) -> dict[str, Any]:
    """Run the growth measurements on ``database`` with ``size`` pairs; return the figures."""
    alias = database.alias
    connection = connections[alias]
    rounds, iterations = (2, 20) if quick else (10, 300)
    KeyVal.flush_all(using=alias)
    kv = KeyVal(STORE, using=alias)
    figures: dict[str, Any] = {
        "size": size,
        "small_size": SMALL_SIZE,
        "title": database.title,
        "name": database.name,
    }

    fill(alias, 0, SMALL_SIZE)
    figures["get_small"] = measure_gets(alias, SMALL_SIZE, rounds, iterations, seed=1)
    figures["fill_seconds"] = fill(alias, SMALL_SIZE, size)
    figures["get_large"] = measure_gets(alias, size, rounds, iterations, seed=2)

    started = time.perf_counter()
    counted = sum(1 for _ in kv.keys())  # noqa: SIM118 (keys() is measured)
    figures["keys_seconds"] = time.perf_counter() - started
    counted_traced, _, keys_peak = traced(lambda: sum(1 for _ in kv.keys()))  # noqa: SIM118
    if counted != size or counted_traced != size:
        raise RuntimeError(f"keys() gave {counted} keys, not {size}")
    figures["keys_peak_mb"] = keys_peak

    with CaptureQueriesContext(connection) as queries:
        _, seconds, peak = traced(kv.flush)
    figures["flush"] = {
        # flush() returns None (as 0.1.2 did): the rows it deleted are those gone.
        "rows": counted - kv.count(),
        "seconds": seconds,
        "peak_mb": peak,
        "statements": len(queries),
        "sql": sorted({query["sql"].split(" WHERE ")[0] for query in queries.captured_queries}),
    }

    fill(alias, 0, size, expired=True)
    with CaptureQueriesContext(connection) as queries:
        culled, seconds, peak = traced(lambda: KeyVal.cull(using=alias))
    figures["cull"] = {
        "rows": culled,
        "seconds": seconds,
        "peak_mb": peak,
        "statements": len(queries),
        "batch_size": keyval_settings.CULL_BATCH_SIZE,
        "sql": sorted({query["sql"].split(" WHERE ")[0] for query in queries.captured_queries}),
    }
    KeyVal.flush_all(using=alias)
    figures["text"] = growth_text(figures)
    return figures


def growth_text(figures: dict[str, Any]) -> str:
    """Return the printed report of one database's growth figures."""
    size, small = figures["size"], figures["small_size"]
    get_small, get_large = figures["get_small"], figures["get_large"]
    flush, cull = figures["flush"], figures["cull"]
    growth = get_large["keyval"]["median_us"] / get_small["keyval"]["median_us"]
    return "\n".join(
        [
            f"Growth on {figures['title']}: {size:,} pairs",
            f"get (hit) at {small:,} pairs: KeyVal {get_small['keyval']['median_us']:.1f} µs, "
            f"floor {get_small['floor']['median_us']:.1f} µs",
            f"get (hit) at {size:,} pairs: KeyVal {get_large['keyval']['median_us']:.1f} µs "
            f"({growth:.2f}x the small store), floor {get_large['floor']['median_us']:.1f} µs",
            f"filling {size - small:,} pairs with multi-row INSERTs: "
            f"{figures['fill_seconds']:.1f} s",
            f"keys() over {size:,} pairs: {figures['keys_seconds']:.1f} s; "
            f"peak Python memory +{figures['keys_peak_mb']:.1f} MB",
            f"flush() of {flush['rows']:,} pairs: {flush['seconds']:.2f} s in "
            f"{flush['statements']} statement(s), peak Python memory +{flush['peak_mb']:.2f} MB",
            f"cull() of {cull['rows']:,} expired pairs: {cull['seconds']:.2f} s in "
            f"{cull['statements']:,} statement(s) of at most {cull['batch_size']:,} rows, "
            f"peak Python memory +{cull['peak_mb']:.2f} MB",
        ]
    )


def growth_targets(alias: str, figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the growth targets (see ``bench/README.rst``), measured on ``alias``."""
    size, name = figures["size"], figures["name"]
    growth = (
        figures["get_large"]["keyval"]["median_us"] / figures["get_small"]["keyval"]["median_us"]
    )
    flush, cull = figures["flush"], figures["cull"]
    # Loading the rows would take far more than this: a million keys alone are ~70 MB.
    no_rows_mb = 10.0
    cull_statements = math.ceil(size / cull["batch_size"]) + 1
    checks = [
        (
            f"get at {size:,} <= 1.5x get at {figures['small_size']:,}",
            growth,
            1.5,
            growth <= 1.5,
            f"get (hit) on {name} at {size:,} pairs: {growth:.2f}x get at "
            f"{figures['small_size']:,} pairs (target <= 1.5x)",
        ),
        (
            "keys() peak memory < 50 MB",
            figures["keys_peak_mb"],
            50.0,
            figures["keys_peak_mb"] < 50,
            f"keys() on {name} over {size:,} pairs: peak Python memory "
            f"+{figures['keys_peak_mb']:.1f} MB "
            "(target < 50 MB)",
        ),
        (
            "flush() loads no rows",
            flush["peak_mb"],
            no_rows_mb,
            flush["rows"] == size and flush["statements"] <= 1 and flush["peak_mb"] < no_rows_mb,
            f"flush() on {name} of {flush['rows']:,} pairs: {flush['seconds']:.2f} s, "
            f"{flush['statements']} statement(s), +{flush['peak_mb']:.2f} MB "
            "(target: no rows loaded, bounded statements)",
        ),
        (
            "cull() loads no rows",
            cull["peak_mb"],
            no_rows_mb,
            cull["rows"] == size
            and cull["statements"] <= cull_statements
            and cull["peak_mb"] < no_rows_mb
            and all(sql.startswith("DELETE") for sql in cull["sql"]),
            f"cull() on {name} of {cull['rows']:,} expired pairs: {cull['seconds']:.2f} s, "
            f"{cull['statements']:,} DELETE statement(s), +{cull['peak_mb']:.2f} MB "
            "(target: no rows loaded, bounded statements)",
        ),
    ]
    return [
        {
            "database": alias,
            "target": target,
            "measured": measured,
            "limit": limit,
            "passed": bool(passed),
            "text": text,
        }
        for target, measured, limit, passed, text in checks
    ]
