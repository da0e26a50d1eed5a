"""What each column an overwrite sets costs, when its value does not change.

Run from the repository root::

    python bench/columns.py --databases sqlite-wal,postgresql,mysql

``set`` without a timeout on a pair that had none still assigns
``expires_at`` (``NULL`` again), and a value of the same kind assigns
``serializer`` and ``integer_value`` their old values. Leaving such a
column out of the statement is only possible where the old value is known
to match, so this script measures first whether it would pay.

On each database it captures the statement ``KeyVal.set`` runs (as the
floor of ``bench/run.py`` does), then replays overwrites of existing pairs
without expiry through Django's cursor. Each batch of calls runs in one
transaction: a commit that waits for the disk costs the same whatever the
statement set, and on a busy machine its spread (milliseconds) would hide
the statement's own cost (microseconds). ``--autocommit`` commits each
call instead, as ``set`` outside ``atomic()`` does.

``store``
    the statement as ``set`` sends it;
``without expires_at``
    the same without the ``expires_at`` assignment;
``without unchanged``
    the same without ``expires_at``, ``integer_value`` and ``serializer``;
``plain expiry index`` (SQLite and PostgreSQL only)
    the store's statement while ``expires_at`` has a plain index instead of
    the partial one (as before migration ``0002``).

The variants take turns within each round, their order rotating; the figure
is the median of every call, and the ratio divides it by ``store``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)

import django  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.run import (  # noqa: E402
    BenchmarkError,
    note,
    select_databases,
    usable_databases,
)
from bench.settings import Database, django_settings  # noqa: E402
from bench.timing import time_calls  # noqa: E402

STORE = "bench.columns"
PLAIN_INDEX = "keyval_bench_plain_expires"
#: Columns whose assignment is left out in ``without unchanged``.
UNCHANGED = ("expires_at", "integer_value", "serializer")


def capture_set(alias: str, key: str) -> tuple[str, Any]:
    """Return the statement and parameters ``KeyVal.set`` runs to overwrite ``key``."""
    from django.db import connections

    from bench.systems import VALUE
    from django_keyval.models import KeyVal

    captured: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        # Named (``%(key)s``) parameters come as a mapping, others as a sequence.
        captured.append((sql, dict(params) if isinstance(params, Mapping) else tuple(params)))
        return execute(sql, params, many, context)

    with connections[alias].execute_wrapper(capture):
        KeyVal(STORE, using=alias).set(key, VALUE)
    (statement,) = captured
    return statement


def without(sql: str, columns: tuple[str, ...], quote: Callable[[str], str]) -> str:
    """Return ``sql`` without the upsert's assignments of ``columns``."""
    for column in columns:
        name = quote(column)
        for assignment in (f", {name} = excluded.{name}", f", {name} = VALUES({name})"):
            if assignment in sql:
                sql = sql.replace(assignment, "", 1)
                break
        else:
            raise BenchmarkError(f"no assignment of {column} in {sql}")
    return sql


def measure(
    database: Database, pairs: int, rounds: int, iterations: int, autocommit: bool = False
) -> dict[str, Any]:
    """Time the variants on ``database``; return medians and ratios."""
    from django.db import connections, transaction

    from bench.systems import VALUE
    from django_keyval.models import KeyVal, KeyValPair

    alias = database.alias
    connection = connections[alias]
    quote = connection.ops.quote_name
    table = quote(KeyValPair._meta.db_table)
    kv = KeyVal(STORE, using=alias)
    kv.flush()
    keys = [f"key:{index:05d}" for index in range(pairs)]
    kv.set_many(dict.fromkeys(keys, VALUE))
    sql, params = capture_set(alias, keys[0])

    def with_key(key: str) -> Any:
        """Return the captured parameters with ``key`` in place of the probe key."""
        if isinstance(params, dict):
            return {name: key if value == keys[0] else value for name, value in params.items()}
        return tuple(key if value == keys[0] else value for value in params)

    variants = {
        "store": sql,
        "without expires_at": without(sql, ("expires_at",), quote),
        "without unchanged": without(sql, UNCHANGED, quote),
    }
    partial = connection.features.supports_partial_indexes
    names = [*variants, "plain expiry index"] if partial else list(variants)

    def run(statement: str) -> Callable[[Any], Any]:
        def call(arguments: Any) -> Any:
            with connection.cursor() as cursor:
                cursor.execute(statement, arguments)
                return cursor.fetchone() if cursor.description else cursor.rowcount

        return call

    @contextlib.contextmanager
    def plain_expiry_index() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX {quote('django_keyval_expires_idx')}")
            cursor.execute(f"CREATE INDEX {quote(PLAIN_INDEX)} ON {table} ({quote('expires_at')})")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX {quote(PLAIN_INDEX)}")
                cursor.execute(
                    f"CREATE INDEX {quote('django_keyval_expires_idx')} ON {table} "
                    f"({quote('expires_at')}) WHERE {quote('expires_at')} IS NOT NULL"
                )

    randomness = random.Random(17)
    samples: dict[str, list[int]] = {name: [] for name in names}
    for round_number in range(-1, rounds):
        shift = max(round_number, 0) % len(names)
        for name in names[shift:] + names[:shift]:
            chosen = [randomness.choice(keys) for _ in range(iterations)]
            arguments = [with_key(key) for key in chosen]
            with contextlib.ExitStack() as stack:
                if name == "plain expiry index":
                    stack.enter_context(plain_expiry_index())
                statement = sql if name == "plain expiry index" else variants[name]
                if not autocommit:
                    stack.enter_context(transaction.atomic(using=alias))
                durations = time_calls(run(statement), arguments)
            if round_number >= 0:
                samples[name].extend(durations)
    kv.flush()
    store_median = statistics.median(samples["store"])
    return {
        name: {
            "median_us": statistics.median(values) / 1000,
            "ratio": statistics.median(values) / store_median,
            "samples": len(values),
        }
        for name, values in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: print, per database, each variant's median and ratio."""
    parser = argparse.ArgumentParser(prog="python bench/columns.py", description=__doc__)
    parser.add_argument("--databases", default="sqlite-wal,postgresql,mysql")
    parser.add_argument("--pairs", type=int, default=2000, help="pairs overwritten at random")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=200, help="calls per variant a round")
    parser.add_argument(
        "--autocommit", action="store_true", help="commit each call (default: each batch)"
    )
    parser.add_argument(
        "--workdir", default=os.path.join(tempfile.gettempdir(), "django-keyval-bench")
    )
    options = parser.parse_args(argv)
    try:
        candidates, named = select_databases(options.databases)
        os.makedirs(options.workdir, exist_ok=True)
        settings.configure(**django_settings(candidates, options.workdir))
        django.setup()
        databases = usable_databases(candidates, named)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Load average at the start: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    for database in databases:
        note(f"measuring {database.alias}")
        figures = measure(
            database, options.pairs, options.rounds, options.iterations, options.autocommit
        )
        print(
            f"\n{database.title}: overwrite of a pair without expiry, without a timeout "
            f"({'autocommit' if options.autocommit else 'each batch in a transaction'})"
        )
        for name, cell in figures.items():
            print(
                f"  {name:<20} {cell['median_us']:7.1f} µs  {cell['ratio']:.2f}x  "
                f"({cell['samples']} calls)"
            )
    print(f"\nLoad average at the end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
