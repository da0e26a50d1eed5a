"""Measure django-keyval against its database's floor and the alternatives.

Run from the repository root::

    python bench/run.py                      # every reachable database
    python bench/run.py --quick              # seconds; what CI runs
    python bench/run.py --databases sqlite-wal,postgresql --json out.json --plot charts/
    python bench/run.py --growth --databases sqlite

The method is described in ``bench/README.rst``. The exit status is 0 when
the measurement ran, whether or not the targets were met; 1 on an error; 2
when a database named with ``--databases`` cannot be reached.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)

import django  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.report import (  # noqa: E402
    check_targets,
    format_table,
    print_targets,
    write_reports,
)
from bench.settings import DATABASES, Database, django_settings, variants_of  # noqa: E402
from bench.timing import time_calls, timer_overhead_ns  # noqa: E402

#: Keys loaded into every system before the first round; reads and overwrites use them.
HOT_KEY_COUNT = 1000
#: Counters the ``incr`` rounds go through.
COUNTER_COUNT = 10


class BenchmarkError(Exception):
    """Raised for a problem that stops the benchmark (exit status 2)."""


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the command line options."""
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Benchmark django-keyval against its database's floor and the alternatives.",
    )
    parser.add_argument(
        "--databases",
        help=f"comma-separated, from {', '.join(DATABASES)} (default: every reachable one)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny iteration counts: checks that the script runs"
    )
    parser.add_argument("--rounds", type=int, help="measured rounds (default 10; quick: 1)")
    parser.add_argument(
        "--iterations",
        type=int,
        help="calls per system and operation in each round (default 200; quick: 3); "
        "get_many/set_many make a tenth as many",
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        default=0.5,
        help="fewer calls for operations whose slowest system would take longer than this "
        "per round (default %(default)s)",
    )
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    parser.add_argument(
        "--rst",
        metavar="FILE",
        help="write the tables, targets and growth figures as reStructuredText to FILE",
    )
    parser.add_argument(
        "--plot",
        metavar="DIRECTORY",
        help="draw a chart per database of the ratios to the floor (DIRECTORY/bench-ALIAS.png)",
    )
    parser.add_argument(
        "--growth", action="store_true", help="also measure growth (slow at the default size)"
    )
    parser.add_argument(
        "--growth-size",
        type=int,
        help="pairs in the large store of the growth part (default 1,000,000; quick: 5,000)",
    )
    parser.add_argument(
        "--profile",
        metavar="OPERATION",
        help="instead of measuring, profile KeyVal's OPERATION (e.g. get_hit) with cProfile "
        "on the first database and print where the time goes",
    )
    parser.add_argument(
        "--no-main", action="store_true", help="skip the operations table (with --growth)"
    )
    parser.add_argument(
        "--floors-only",
        action="store_true",
        help="measure KeyVal and its two floors only, not the alternatives",
    )
    parser.add_argument(
        "--workdir",
        default=os.path.join(tempfile.gettempdir(), "django-keyval-bench"),
        help="directory for the SQLite files and diskcache (default: %(default)s)",
    )
    options = parser.parse_args(argv)
    options.rounds = options.rounds or (1 if options.quick else 10)
    options.iterations = options.iterations or (3 if options.quick else 200)
    options.growth_size = options.growth_size or (5_000 if options.quick else 1_000_000)
    if options.rounds < 1 or options.iterations < 1:
        parser.error("--rounds and --iterations must be at least 1")
    if options.growth_size < 2000:
        parser.error("--growth-size must be at least 2000")
    return options


def note(message: str) -> None:
    """Print a progress line to stderr."""
    print(message, file=sys.stderr, flush=True)


# -- databases ---------------------------------------------------------------------------


def select_databases(requested: str | None) -> tuple[list[Database], bool]:
    """Return the databases to try, and whether the user named them."""
    if not requested:
        return list(DATABASES.values()), False
    selected = []
    for alias in (name.strip() for name in requested.split(",")):
        if alias not in DATABASES:
            raise BenchmarkError(f"unknown database {alias!r}; choose from {', '.join(DATABASES)}")
        selected.append(DATABASES[alias])
    return selected, True


def prepare_database(database: Database) -> None:
    """Create the database if needed, and its tables (KeyValPair and the cache table)."""
    from django.core.management import call_command
    from django.db import DatabaseError, connections

    connection = connections[database.alias]
    if database.vendor != "sqlite":
        try:
            connection.ensure_connection()
        except DatabaseError:
            # Most likely the database does not exist yet: create it from the server's
            # maintenance database, then connect again.
            name = connection.settings_dict["NAME"]
            with connection._nodb_cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
            connection.ensure_connection()
    call_command("migrate", "django_keyval", database=database.alias, verbosity=0)
    call_command("createcachetable", database=database.alias, verbosity=0)


def usable_databases(candidates: list[Database], named: bool) -> list[Database]:
    """Connect to each candidate; skip (or, if named, refuse) those that fail."""
    usable = []
    for database in candidates:
        problem = None
        if not database.server_reachable():
            problem = f"nothing listens on {database.host}:{database.port}"
        else:
            try:
                prepare_database(database)
            except Exception as error:  # a missing driver, refused login, MySQL not MariaDB
                problem = f"{type(error).__name__}: {error}"
        if problem is None:
            usable.append(database)
        elif named:
            raise BenchmarkError(f"cannot use {database.alias}: {problem}")
        else:
            note(f"note: skipping {database.alias}: {problem}")
    return usable


# -- the machine ------------------------------------------------------------------------


def _command_output(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def describe_machine(databases: list[Database]) -> dict[str, Any]:
    """Return what the figures depend on: CPU, kernel, versions, durability settings."""
    import sqlite3

    from django.db import connections

    lscpu = _command_output("lscpu")
    fields = {
        name.strip(): value.strip()
        for name, _, value in (line.partition(":") for line in lscpu.splitlines())
    }
    machine: dict[str, Any] = {
        "cpu": fields.get("Model name", platform.processor()),
        "cpus": fields.get("CPU(s)", str(os.cpu_count())),
        "lscpu": lscpu,
        "uname": _command_output("uname", "-a") or " ".join(platform.uname()),
        "python": platform.python_version(),
        "django": django.get_version(),
        "sqlite": sqlite3.sqlite_version,
        # Other work on the machine shows here; the ratios, interleaved, suffer least.
        "load_average": " ".join(f"{load:.2f}" for load in os.getloadavg()),
        "databases": {},
        "packages": {},
    }
    for package in ("psycopg", "psycopg2", "MySQLdb", "diskcache", "redis", "matplotlib"):
        try:
            module = __import__(package)
        except ImportError:
            continue
        version = getattr(module, "__version__", None) or getattr(module, "version_info", "")
        machine["packages"][package] = (
            ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
        )
    for database in databases:
        connection = connections[database.alias]
        with connection.cursor() as cursor:
            if database.vendor == "sqlite":
                cursor.execute("PRAGMA journal_mode")
                journal = cursor.fetchone()[0]
                cursor.execute("PRAGMA synchronous")
                synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[cursor.fetchone()[0]]
                described = (
                    f"SQLite {sqlite3.sqlite_version}, journal_mode={journal}, "
                    f"synchronous={synchronous}"
                )
            elif database.vendor == "postgresql":
                cursor.execute("SHOW server_version")
                version = cursor.fetchone()[0]
                cursor.execute("SHOW synchronous_commit")
                synchronous = cursor.fetchone()[0]
                cursor.execute("SHOW fsync")
                fsync = cursor.fetchone()[0]
                described = f"PostgreSQL {version}, synchronous_commit={synchronous}, fsync={fsync}"
            else:
                cursor.execute("SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@sync_binlog")
                version, flush_log, sync_binlog = cursor.fetchone()
                described = (
                    f"MariaDB {version}, innodb_flush_log_at_trx_commit={flush_log}, "
                    f"sync_binlog={sync_binlog}"
                )
        machine["databases"][database.alias] = described
    from bench.systems import redis_unavailable, redis_url

    if redis_unavailable() is None:
        import redis

        info = redis.Redis.from_url(redis_url()).info("server")
        machine["redis_server"] = f"Redis {info['redis_version']} at {redis_url()}"
    return machine


# -- measuring ---------------------------------------------------------------------------


class Workload:
    """The keys each operation works on, the same for every system in a round."""

    def __init__(self, hot_key_count: int) -> None:
        self.hot_keys = [f"hot:{index:04d}" for index in range(hot_key_count)]
        self.counters = [f"counter:{index}" for index in range(COUNTER_COUNT)]

    def initial(self) -> dict[str, Any]:
        """Return the pairs every system holds before the first round."""
        from bench.systems import VALUE

        return {**dict.fromkeys(self.hot_keys, VALUE), **dict.fromkeys(self.counters, 0)}

    def arguments(
        self, slug: str, tag: str, start: int, count: int
    ) -> tuple[dict[str, Any] | None, list[Any]]:
        """Return the pairs to load before the clock starts (or None) and the arguments."""
        from bench.systems import VALUE

        hot = self.hot_keys
        if slug in ("set_new", "add"):
            return None, [f"{slug}:{tag}:{index}" for index in range(count)]
        if slug in ("get_miss", "exists_miss"):
            return None, [f"missing:{tag}:{index}" for index in range(count)]
        if slug in ("set_overwrite", "get_hit", "exists_hit"):
            return None, [hot[(start + index) % len(hot)] for index in range(count)]
        if slug in ("delete", "pop"):
            keys = [f"{slug}:{tag}:{index}" for index in range(count)]
            return dict.fromkeys(keys, VALUE), keys
        if slug == "incr":
            return None, [self.counters[index % COUNTER_COUNT] for index in range(count)]
        groups = []
        for index in range(count):
            first = ((start + index) * 100) % (len(hot) - 99)
            groups.append(hot[first : first + 100])
        if slug == "get_many":
            return None, groups
        return None, [dict.fromkeys(group, VALUE) for group in groups]


def build_systems(
    database: Database, workdir: str, only: str | None = None
) -> tuple[list[Any], list[str]]:
    """Return the systems measured on ``database``, and notes on those left out.

    With ``only`` (``"floors"``), just KeyVal and its two floors.
    """
    from bench.systems import (
        DatabaseCacheSystem,
        DiskCacheSystem,
        FloorSystem,
        KeyValSystem,
        KeyValVariantSystem,
        MinimalSystem,
        ORMSystem,
        RedisSystem,
        diskcache_available,
        redis_unavailable,
        redis_url,
    )

    systems: list[Any] = [
        MinimalSystem(database.alias),
        FloorSystem(database.alias),
        KeyValSystem(database.alias),
    ]
    if only is None:
        systems += [KeyValVariantSystem(database.alias, v) for v in variants_of(database)]
    notes = []
    if only is not None:
        return systems, notes
    systems += [ORMSystem(database.alias), DatabaseCacheSystem()]
    if database.vendor == "sqlite":
        reason = diskcache_available()
        if reason:
            notes.append(f"diskcache left out: {reason}")
        else:
            directory = os.path.join(workdir, f"diskcache-{database.alias}")
            systems.append(DiskCacheSystem(directory))
    reason = redis_unavailable()
    if reason:
        notes.append(f"redis-py left out: {reason}")
    else:
        systems.append(RedisSystem(redis_url(), prefix=f"keyval-bench:{database.alias}:"))
    return systems, notes


def measure_database(
    database: Database,
    systems: list[Any],
    workload: Workload,
    rounds: int,
    iterations: int,
    batch_seconds: float,
) -> dict[str, dict[str, list[int]]]:
    """Run every operation on every system, round by round; return the durations.

    Within a round each operation runs on every system in turn, and the
    order of the systems rotates from round to round, so that a slow patch
    of the machine falls on all of them alike. A first round, smaller and not
    counted, warms up connections, caches and the interpreter, and sets how
    many calls each operation makes per round: ``iterations`` (a tenth of it
    for the 100-key operations), fewer when the slowest system would take
    more than ``batch_seconds`` for them (writes that wait for a disk flush),
    but never fewer than a tenth of that.
    """
    from bench.operations import OPERATIONS
    from bench.settings import CurrentDatabaseRouter

    CurrentDatabaseRouter.current = database.alias
    for system in systems:
        system.clear()
        system.load(workload.initial())
    durations: dict[str, dict[str, list[int]]] = {
        operation.slug: {system.slug: [] for system in systems} for operation in OPERATIONS
    }
    counts: dict[str, int] = {}
    # Quick mode skips the warm-up: it only checks that everything runs.
    first_round = 0 if batch_seconds <= 0 else -1
    if first_round == 0:
        counts = {
            operation.slug: iterations if operation.keys_per_call == 1 else max(1, iterations // 10)
            for operation in OPERATIONS
        }
    for round_number in range(first_round, rounds):
        warm_up = round_number < 0
        label = "warm-up round" if warm_up else f"round {round_number + 1}/{rounds}"
        note(f"  {database.alias}: {label}")
        shift = max(round_number, 0) % len(systems)
        order = systems[shift:] + systems[:shift]
        for operation in OPERATIONS:
            most = iterations if operation.keys_per_call == 1 else max(1, iterations // 10)
            count = min(most, 5) if warm_up else counts[operation.slug]
            tag = "warm" if warm_up else str(round_number)
            load, arguments = workload.arguments(
                operation.slug, tag, max(round_number, 0) * count, count
            )
            slowest = 0.0
            for system in order:
                call = system.calls.get(operation.slug)
                if call is None:
                    continue
                if load:
                    system.load(load)
                prepared = system.prepare(operation.slug, arguments)
                measured = time_calls(call, prepared)
                slowest = max(slowest, statistics.median(measured) / 1e9)
                if not warm_up:
                    durations[operation.slug][system.slug].extend(measured)
            if warm_up:
                affordable = int(batch_seconds / slowest) if slowest else most
                counts[operation.slug] = max(max(1, most // 10), min(most, affordable))
    return durations


def summarize(durations: dict[str, dict[str, list[int]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Return per operation and system: median, quartiles, samples and ratios to both floors (µs).

    ``ratio_to_floor`` divides by the median of the store's own statement,
    ``ratio_to_minimal`` by that of the minimal statement (where there is one).
    """
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for slug, by_system in durations.items():
        summary[slug] = {}
        floor = statistics.median(by_system["floor"]) if by_system.get("floor") else None
        minimal = statistics.median(by_system["minimal"]) if by_system.get("minimal") else None
        for system, samples in by_system.items():
            if not samples:
                continue
            quartiles = statistics.quantiles(samples, n=4) if len(samples) > 1 else [samples[0]] * 3
            median = statistics.median(samples)
            summary[slug][system] = {
                "median_us": median / 1000,
                "p25_us": quartiles[0] / 1000,
                "p75_us": quartiles[2] / 1000,
                "samples": len(samples),
                "ratio_to_floor": median / floor if floor else float("nan"),
                "ratio_to_minimal": median / minimal if minimal else float("nan"),
            }
    return summary


def profile(database: Database, slug: str, calls: int) -> None:
    """Print cProfile's view of ``calls`` KeyVal calls of operation ``slug`` on ``database``."""
    import cProfile
    import pstats

    from bench.operations import OPERATIONS_BY_SLUG
    from bench.settings import CurrentDatabaseRouter
    from bench.systems import FloorSystem, KeyValSystem

    if slug not in OPERATIONS_BY_SLUG:
        raise BenchmarkError(
            f"unknown operation {slug!r}; choose from {', '.join(OPERATIONS_BY_SLUG)}"
        )
    CurrentDatabaseRouter.current = database.alias
    keyval, floor = KeyValSystem(database.alias), FloorSystem(database.alias)
    workload = Workload(HOT_KEY_COUNT)
    for system in (keyval, floor):
        system.clear()
        system.load(workload.initial())
    count = calls if OPERATIONS_BY_SLUG[slug].keys_per_call == 1 else max(1, calls // 10)
    for system in (keyval, floor):
        load, arguments = workload.arguments(slug, "profile", 0, count)
        if load:
            system.load(load)
        prepared = system.prepare(slug, arguments)
        profiler = cProfile.Profile()
        profiler.enable()
        time_calls(system.calls[slug], prepared)
        profiler.disable()
        print(
            f"\n{system.title} {OPERATIONS_BY_SLUG[slug].label} on {database.title}, {count} calls"
        )
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(22)


# -- main ----------------------------------------------------------------------------------


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; print the tables and targets; return every figure."""
    candidates, named = select_databases(options.databases)
    os.makedirs(options.workdir, exist_ok=True)
    for database in candidates:
        if database.vendor == "sqlite":
            # A fresh file each run, and a fresh diskcache directory.
            name = database.settings(options.workdir)["NAME"]
            for path in (name, name + "-wal", name + "-shm", name + "-journal"):
                if os.path.exists(path):
                    os.remove(path)
            shutil.rmtree(
                os.path.join(options.workdir, f"diskcache-{database.alias}"), ignore_errors=True
            )
    settings.configure(**django_settings(candidates, options.workdir))
    django.setup()

    databases = usable_databases(candidates, named)
    if not databases:
        raise BenchmarkError("no database could be used")
    machine = describe_machine(databases)
    overhead = timer_overhead_ns()
    figures: dict[str, Any] = {
        "command": "python bench/run.py " + " ".join(sys.argv[1:]),
        "settings": {
            "rounds": options.rounds,
            "iterations": options.iterations,
            "quick": options.quick,
            "batch_seconds": options.batch_seconds,
            "timer_overhead_us": overhead / 1000,
        },
        "machine": machine,
        "results": {},
        "growth": {},
    }
    print(
        f"Machine: {machine['cpu']} ({machine['cpus']} CPUs); Python {machine['python']}, "
        f"Django {machine['django']}"
    )
    print(f"Load average at the start: {machine['load_average']}")
    print(f"Timer overhead per call (in every figure): {overhead / 1000:.2f} µs")
    if options.profile:
        profile(databases[0], options.profile, options.iterations * 10)
        return figures
    if not options.no_main:
        workload = Workload(100 if options.quick else HOT_KEY_COUNT)
        for database in databases:
            database_started = time.monotonic()
            note(f"measuring {database.alias}")
            systems, notes = build_systems(
                database, options.workdir, only="floors" if options.floors_only else None
            )
            try:
                durations = measure_database(
                    database,
                    systems,
                    workload,
                    options.rounds,
                    options.iterations,
                    0 if options.quick else options.batch_seconds,
                )
            finally:
                for system in systems:
                    system.close()
            floor = next(system for system in systems if system.slug == "floor")
            for slug, count in floor.keyval_statements.items():
                if count != 1:
                    notes.append(
                        f"KeyVal ran {count} statements for {slug}; the floor runs the first"
                    )
            summary = summarize(durations)
            note(f"  {database.alias}: {time.monotonic() - database_started:.0f} s")
            figures["results"][database.alias] = {
                "title": database.title,
                "server": machine["databases"][database.alias],
                "summary": summary,
                "notes": notes,
                "keyval_statements": floor.keyval_statements,
                "floor_statements": floor.statements,
                "minimal_statements": next(
                    system.statements for system in systems if system.slug == "minimal"
                ),
            }
            print()
            print(
                format_table(f"{database.title}: {machine['databases'][database.alias]}", summary)
            )
            for line in notes:
                print(f"note: {line}")
    if options.growth:
        from bench.growth import measure_growth

        for database in databases:
            note(f"growth on {database.alias} ({options.growth_size:,} pairs)")
            result = measure_growth(database, options.growth_size, quick=options.quick)
            figures["growth"][database.alias] = result
            print()
            print(result["text"])
    figures["machine"]["load_average_at_end"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    figures["targets"] = check_targets(figures["results"], figures["growth"])
    print_targets(figures["targets"], quick=options.quick)
    write_reports(
        figures, json_path=options.json, rst_path=options.rst, plot_directory=options.plot
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    """Entry point: return the exit status."""
    options = parse_arguments(argv)
    started = time.monotonic()
    try:
        run(options)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    note(f"finished in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
