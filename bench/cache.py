"""Django's cache API on three backends: KeyValCache, DatabaseCache and RedisCache.

Run from the repository root::

    python bench/cache.py                         # every reachable database
    python bench/cache.py --databases sqlite,postgresql --rounds 5
    python bench/cache.py --quick                 # seconds; what CI runs

Each backend is used as a project would configure it: ``KeyValCache`` and
``DatabaseCache`` with Django's defaults (``TIMEOUT`` 300, ``MAX_ENTRIES``
300, ``CULL_FREQUENCY`` 3: culling on), on the same database; Django's
``RedisCache`` on the local Redis server (``KEYVAL_BENCH_REDIS_URL``), for
scale. Every round times each operation on each backend, one call at a time,
in turns; the figure is the median over the rounds of each round's median,
in microseconds per call. Then 8 threads (each with its own database
connection) call ``incr`` on one key at once, and the final count is checked
against the number of calls. The method is written down in
``bench/README.rst``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)

import django  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.settings import DATABASES, CurrentDatabaseRouter, django_settings  # noqa: E402
from bench.timing import time_calls  # noqa: E402

#: Keys read by the hits and overwritten by ``set``: a third of ``MAX_ENTRIES``.
#: They sort after every other key: ``DatabaseCache`` culls in key order, and
#: would otherwise cull them while they are written back before each round,
#: so that its "hits" would be misses.
HOT_KEYS = [f"~hot-{number:03}" for number in range(100)]
#: The value every write stores: a small dict, as a cache holds.
VALUE = {"id": 12345, "name": "Ada Lovelace", "roles": ["admin", "editor"], "active": True}
#: Threads, and ``incr`` calls each, of the exactness check.
INCR_THREADS = 8
INCR_CALLS = 50

OPERATIONS = [
    ("get_hit", "get (hit)"),
    ("get_miss", "get (miss)"),
    ("set", "set (overwrite)"),
    ("set_new", "set (new key)"),
    ("add", "add (new key)"),
    ("incr", "incr"),
    ("get_many", "get_many (100 keys)"),
    ("set_many", "set_many (100 keys)"),
]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Return the command line options."""
    parser = argparse.ArgumentParser(
        prog="python bench/cache.py", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--databases", help=f"comma-separated, from {', '.join(DATABASES)}")
    parser.add_argument("--rounds", type=int, help="measured rounds (default 5; quick: 1)")
    parser.add_argument(
        "--iterations", type=int, help="calls per operation and round (default 100; quick: 3)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks that it runs")
    parser.add_argument("--rst", metavar="FILE", help="also write the tables as reStructuredText")
    parser.add_argument(
        "--workdir", default=os.path.join(tempfile.gettempdir(), "django-keyval-bench")
    )
    options = parser.parse_args(argv)
    options.rounds = options.rounds or (1 if options.quick else 5)
    options.iterations = options.iterations or (3 if options.quick else 100)
    return options


def backends(alias: str) -> dict[str, Any]:
    """Return the caches to compare on database ``alias``: ``{title: cache}``."""
    from django.core.cache.backends.db import DatabaseCache

    from bench.settings import CACHE_TABLE
    from bench.systems import redis_unavailable, redis_url
    from django_keyval.cache import KeyValCache

    caches: dict[str, Any] = {
        "KeyValCache": KeyValCache("bench.cache", {"OPTIONS": {"DATABASE": alias}}),
        # Found through the router, which points at the database measured.
        "DatabaseCache": DatabaseCache(CACHE_TABLE, {}),
    }
    if redis_unavailable() is None:
        from django.core.cache.backends.redis import RedisCache

        caches["RedisCache"] = RedisCache(redis_url(), {})
    return caches


def calls(cache: Any, counter: list[int]) -> dict[str, Callable[[Any], Any]]:
    """The measured callables of one cache; ``counter`` numbers the new keys."""

    def new_key(_: Any) -> str:
        counter[0] += 1
        return f"new-{counter[0]}"

    many = dict.fromkeys(HOT_KEYS, VALUE)
    return {
        "get_hit": cache.get,
        "get_miss": cache.get,
        "set": lambda key: cache.set(key, VALUE),
        "set_new": lambda _: cache.set(new_key(_), VALUE),
        "add": lambda _: cache.add(new_key(_), VALUE),
        "incr": cache.incr,
        "get_many": lambda _: cache.get_many(HOT_KEYS),
        "set_many": lambda _: cache.set_many(many),
    }


def statement_call(cache: Any, alias: str) -> Callable[[Any], Any]:
    """The statement ``KeyValCache.set`` sends for an overwrite, alone: rows built in advance.

    What no cache sending that statement can beat: its figure, against
    ``DatabaseCache``'s ``set``, tells whether the 2x target is reachable.
    """
    import datetime

    from django.db import connections

    from django_keyval.backends import operations_for
    from django_keyval.clock import adapt_datetime
    from django_keyval.encoding import encode_value
    from django_keyval.rows import StoredRow

    store = cache.store
    connection = connections[alias]
    operations = operations_for(connection)
    now = datetime.datetime.now(datetime.timezone.utc)
    expires = adapt_datetime(connection, now + datetime.timedelta(seconds=300))
    updated = adapt_datetime(connection, now)
    rows = {}
    for hot in HOT_KEYS:
        key = cache.make_key(hot)
        data, integer, name = encode_value(store.name, key, VALUE, "pickle")
        rows[hot] = StoredRow(store.name, key, data, integer, name, expires, updated)
    return lambda key: operations.set(connection, rows[key])


def arguments(operation: str, iterations: int) -> list[Any]:
    """The argument of each call of ``operation``."""
    if operation == "get_miss":
        return [f"missing-{number}" for number in range(iterations)]
    if operation == "incr":
        return ["counter"] * iterations
    return [HOT_KEYS[number % len(HOT_KEYS)] for number in range(iterations)]


def vacuum(alias: str) -> None:
    """On PostgreSQL, ``VACUUM ANALYZE`` both tables, as autovacuum would between rounds.

    A round leaves tens of thousands of dead rows in tables of a few hundred
    (every write and cull makes some); autovacuum, which would clean them
    within a minute in a running site, may not get to them during the
    benchmark, and their index entries then slow down planning and lookups
    of both backends.
    """
    from django.db import connections

    from bench.settings import CACHE_TABLE
    from django_keyval.models import KeyValPair

    connection = connections[alias]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in (KeyValPair._meta.db_table, CACHE_TABLE):
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


def measure(alias: str, rounds: int, iterations: int) -> dict[str, dict[str, float]]:
    """Return ``{operation: {cache title: median microseconds per call}}`` on ``alias``."""
    CurrentDatabaseRouter.current = alias
    caches = backends(alias)
    per_round: dict[str, dict[str, list[float]]] = {slug: {} for slug, _ in OPERATIONS}
    counter = [0]
    for cache in caches.values():
        cache.clear()
        cache.set_many(dict.fromkeys(HOT_KEYS, VALUE))
        cache.set("counter", 0)
    titles = list(caches)
    statement = statement_call(caches["KeyValCache"], alias)
    statement_figures: list[float] = []
    # A first round, not counted, warms up connections and statement caches.
    for round_number in range(-1, rounds):
        # The order of the backends rotates, so a slow patch of a busy
        # machine falls on each alike.
        turn = round_number % len(titles)
        order = titles[turn:] + titles[:turn]
        vacuum(alias)
        for title, cache in caches.items():
            present = len(cache.get_many(HOT_KEYS))
            if present != len(HOT_KEYS):
                raise RuntimeError(f"{title} holds {present} of the 100 hot keys: hits would miss")
        for slug, _label in OPERATIONS:
            for title in order:
                cache = caches[title]
                call = calls(cache, counter)[slug]
                if slug == "incr":
                    # New keys written since may have culled it.
                    cache.add("counter", 0)
                many = slug in ("get_many", "set_many")
                count = max(1, iterations // 10) if many else iterations
                durations = time_calls(call, arguments(slug, count if round_number >= 0 else 2))
                if round_number >= 0:
                    per_round[slug].setdefault(title, []).append(
                        statistics.median(durations) / 1000
                    )
            if slug == "set":
                durations = time_calls(statement, arguments(slug, iterations))
                if round_number >= 0:
                    statement_figures.append(statistics.median(durations) / 1000)
        for cache in caches.values():
            # Start each round with the hot keys present, as culling may have taken some.
            cache.set_many(dict.fromkeys(HOT_KEYS, VALUE))
    for cache in caches.values():
        cache.clear()
    figures = {
        slug: {title: statistics.median(figures) for title, figures in by_cache.items()}
        for slug, by_cache in per_round.items()
    }
    # Not an operation of the tables: the floor of KeyValCache's set (overwrite).
    figures["set_statement"] = {"KeyValCache": statistics.median(statement_figures)}
    return figures


def incr_exactness(alias: str) -> dict[str, tuple[int, int, int]]:
    """8 threads ``incr`` one key at once; return ``{cache title: (final, calls, errors)}``.

    A call that raised (SQLite's "database is locked" under ``DatabaseCache``)
    is counted as an error, not as a call that should have counted.
    """
    from django.db import connections

    CurrentDatabaseRouter.current = alias
    results: dict[str, tuple[int, int, int]] = {}
    for title, cache in backends(alias).items():
        cache.set("race", 0, None)
        barrier = threading.Barrier(INCR_THREADS)
        errors: list[BaseException] = []

        def work(
            cache: Any = cache,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            barrier.wait()
            for _ in range(INCR_CALLS):
                try:
                    cache.incr("race")
                except Exception as error:  # noqa: BLE001 - counted and reported
                    errors.append(error)
            connections.close_all()

        threads = [threading.Thread(target=work) for _ in range(INCR_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            note = f"{type(errors[0]).__name__}: {errors[0]}"
            print(f"incr from {INCR_THREADS} threads, {title}: {len(errors)} calls raised ({note})")
        results[title] = (cache.get("race"), INCR_THREADS * INCR_CALLS - len(errors), len(errors))
        cache.delete("race")
    return results


def format_table(title: str, figures: dict[str, dict[str, float]]) -> str:
    """Return the figures of one database as a plain-text table."""
    titles = list(next(iter(figures.values())))
    lines = [title, f"{'operation':<22}" + "".join(f"{name:>15}" for name in titles)]
    for slug, label in OPERATIONS:
        lines.append(f"{label:<22}" + "".join(f"{figures[slug][name]:>13.1f}us" for name in titles))
    return "\n".join(lines)


def format_rst(title: str, figures: dict[str, dict[str, float]], exact: dict[str, Any]) -> str:
    """Return the figures of one database as a reStructuredText list-table."""
    titles = list(next(iter(figures.values())))
    lines = [title, "~" * len(title), "", ".. list-table::", "   :header-rows: 1", ""]
    lines.append("   * - microseconds per call")
    lines.extend(f"     - {name}" for name in titles)
    for slug, label in OPERATIONS:
        lines.append(f"   * - {label}")
        base = figures[slug]["DatabaseCache"]
        for name in titles:
            ratio = "" if name == "DatabaseCache" else f" ({base / figures[slug][name]:.1f}x)"
            lines.append(f"     - {figures[slug][name]:.1f}{ratio}")
    floor = figures["set_statement"]["KeyValCache"]
    lines.append("   * - set (overwrite): KeyValCache's statement alone")
    for name in titles:
        if name == "KeyValCache":
            lines.append(f"     - {floor:.1f} ({figures['set']['DatabaseCache'] / floor:.1f}x)")
        else:
            lines.append("     -")
    lines.append(f"   * - incr from {INCR_THREADS} threads: count / calls")
    lines.extend(f"     - {exact[name][0]} / {exact[name][1]}" for name in titles)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    from bench.run import select_databases, usable_databases

    os.makedirs(options.workdir, exist_ok=True)
    candidates, named = select_databases(options.databases)
    settings.configure(**django_settings(candidates, options.workdir))
    django.setup()
    databases = usable_databases(candidates, named)
    targets_met = True
    rst: list[str] = []
    for database in databases:
        figures = measure(database.alias, options.rounds, options.iterations)
        print(format_table(f"\n{database.title}: microseconds per call (median)", figures))
        exact = incr_exactness(database.alias)
        for title, (final, expected, _errors) in exact.items():
            print(f"incr from {INCR_THREADS} threads, {title}: {final} of {expected}")
        rst.append(format_rst(database.title, figures, exact))
        floor = figures["set_statement"]["KeyValCache"]
        for slug in ("set", "set_new"):
            ratio = figures[slug]["DatabaseCache"] / figures[slug]["KeyValCache"]
            met = ratio >= 2
            targets_met &= met
            print(
                f"target {slug}: KeyValCache {ratio:.1f}x as fast as DatabaseCache (>= 2x): "
                f"{'met' if met else 'NOT met'}"
            )
        reachable = figures["set"]["DatabaseCache"] / floor
        print(
            f"set's statement alone (rows built in advance): {floor:.1f}us, "
            f"{reachable:.1f}x as fast as DatabaseCache's set: the most any cache sending it "
            f"could reach"
        )
        for slug in ("get_hit", "get_miss"):
            met = figures[slug]["KeyValCache"] <= figures[slug]["DatabaseCache"]
            targets_met &= met
            print(
                f"target {slug}: KeyValCache {figures[slug]['KeyValCache']:.1f}us, "
                f"DatabaseCache {figures[slug]['DatabaseCache']:.1f}us (no slower): "
                f"{'met' if met else 'NOT met'}"
            )
        final, expected, _errors = exact["KeyValCache"]
        targets_met &= final == expected
        print(f"target incr exact: {'met' if final == expected else 'NOT met'}")
    print(f"\nall targets met: {targets_met}")
    if options.rst:
        with open(options.rst, "w", encoding="utf-8") as output:
            output.write("\n".join(rst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
