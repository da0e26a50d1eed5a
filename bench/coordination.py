"""Measure the coordination operations against ``set`` on each database.

Run from the repository root::

    python bench/coordination.py                    # every reachable database
    python bench/coordination.py --quick            # seconds; what CI runs
    python bench/coordination.py --databases sqlite-wal,postgresql --rst out.rst

Operations, one process and no contention, in rounds that interleave them:

``set``
    overwrite an existing key (the reference);
``cas``
    overwrite it at the version read before the clock starts (one statement);
``update``
    ``update(key, lambda n: n + 1)``: read with the version, then ``cas``;
``lock``
    ``acquire()`` then ``release()`` of a free lock (two statements).

The figure for each is the median over all calls of all rounds, in
microseconds, and its ratio to ``set`` on the same database. The method of
``bench/run.py`` (``bench/README.rst``) applies: rounds rotate the order of
the operations, a first round warms up and is not counted, each call is
timed alone with the garbage collector paused.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from typing import Any

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)

import django  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.run import BenchmarkError, note, select_databases, usable_databases  # noqa: E402
from bench.settings import Database, django_settings  # noqa: E402
from bench.timing import time_calls  # noqa: E402

#: The operations, in the order of the table.
OPERATIONS = ["set", "cas", "update", "lock"]
#: The value every operation writes: the small dict of ``bench/run.py``, with a counter.
VALUE = {"id": 12345, "name": "Ada Lovelace", "roles": ["admin", "editor"], "active": True}


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the command line options."""
    parser = argparse.ArgumentParser(
        prog="python bench/coordination.py",
        description="Measure cas, update and lock against set on each database.",
    )
    parser.add_argument("--databases", help="comma-separated aliases (default: every reachable)")
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks that it runs")
    parser.add_argument("--rounds", type=int, help="measured rounds (default 10; quick: 1)")
    parser.add_argument(
        "--iterations", type=int, help="calls per operation and round (default 200; quick: 3)"
    )
    parser.add_argument("--rst", metavar="FILE", help="write the table as reStructuredText")
    parser.add_argument(
        "--workdir",
        default=os.path.join(tempfile.gettempdir(), "django-keyval-bench"),
        help="directory for the SQLite files (default: %(default)s)",
    )
    options = parser.parse_args(argv)
    options.rounds = options.rounds or (1 if options.quick else 10)
    options.iterations = options.iterations or (3 if options.quick else 200)
    if options.rounds < 1 or options.iterations < 1:
        parser.error("--rounds and --iterations must be at least 1")
    return options


def operations(database: Database) -> dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]]:
    """Return, for each operation, a setup run before a batch and the call to time.

    The setup returns the list of arguments of the batch's calls (so that a
    ``cas`` has its current version without a read inside the clock).
    """
    from django_keyval.models import KeyVal

    kv = KeyVal("bench.coordination", using=database.alias)
    kv.set("set", VALUE)
    kv.set("cas", VALUE)
    kv.set("update", 0)

    def cas_versions(count: int) -> list[int]:
        first = kv.get_versioned("cas")[1]
        return list(range(first, first + count))

    lock = kv.lock("lock", timeout=30)

    def lock_round(_: Any) -> None:
        lock.acquire(blocking=False)
        lock.release()

    return {
        "set": (lambda count: [None] * count, lambda _: kv.set("set", VALUE)),
        "cas": (cas_versions, lambda version: kv.cas("cas", VALUE, version)),
        "update": (lambda count: [None] * count, lambda _: kv.update("update", lambda n: n + 1)),
        "lock": (lambda count: [None] * count, lock_round),
    }


def measure(database: Database, rounds: int, iterations: int) -> dict[str, list[int]]:
    """Return every call's duration (ns) per operation, warm-up round excluded."""
    chosen = operations(database)
    durations: dict[str, list[int]] = {name: [] for name in OPERATIONS}
    order = list(OPERATIONS)
    for round_number in range(rounds + 1):
        for name in order:
            setup, call = chosen[name]
            arguments = setup(iterations if round_number else max(1, iterations // 10))
            timed = time_calls(call, arguments)
            if round_number:
                durations[name].extend(timed)
        order = order[1:] + order[:1]  # rotate, so a slow patch falls on each alike
    return durations


def format_rst(results: dict[str, dict[str, float]], titles: dict[str, str]) -> str:
    """Return the table: microseconds per operation and the ratio to ``set``, per database."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :stub-columns: 1",
        "",
        "   * - Database",
        *[f"     - {name}" for name in OPERATIONS],
    ]
    for alias, medians in results.items():
        lines.append(f"   * - {titles[alias]}")
        for name in OPERATIONS:
            ratio = medians[name] / medians["set"]
            figure = f"{medians[name]:.0f} µs" + ("" if name == "set" else f" ({ratio:.2f}x)")
            lines.append(f"     - {figure}")
    return "\n".join(lines) + "\n"


def run(options: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Measure every usable database; print and return the medians (µs)."""
    candidates, named = select_databases(options.databases)
    os.makedirs(options.workdir, exist_ok=True)
    settings.configure(**django_settings(candidates, options.workdir))
    django.setup()
    databases = usable_databases(candidates, named)
    results: dict[str, dict[str, float]] = {}
    for database in databases:
        note(f"measuring {database.alias}")
        durations = measure(database, options.rounds, options.iterations)
        results[database.alias] = {
            name: statistics.median(values) / 1000 for name, values in durations.items()
        }
    header = f"{'database':<18}" + "".join(f"{name:>16}" for name in OPERATIONS)
    print(header)
    for alias, medians in results.items():
        cells = []
        for name in OPERATIONS:
            ratio = medians[name] / medians["set"]
            cells.append(f"{medians[name]:>8.0f} ({ratio:4.2f}x)")
        print(f"{alias:<18}" + "".join(f"{cell:>16}" for cell in cells))
    if options.rst:
        titles = {database.alias: database.title for database in databases}
        with open(options.rst, "w") as file:
            file.write(format_rst(results, titles))
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; 2 when a database named cannot be used."""
    options = parse_arguments(argv)
    try:
        run(options)
    except BenchmarkError as error:
        note(f"error: {error}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
