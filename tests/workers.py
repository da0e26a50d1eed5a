"""Work done in child processes by the concurrency and fault tests.

Every child is a fresh interpreter (the ``spawn`` start method), so it sets up
Django itself and then opens its own connection to the parent's *test*
database, whose name the parent passes in. The parent side is
:func:`run_in_processes`: it starts the children, lets them begin together
(a barrier, so their work really overlaps) and gathers what each returns.

The functions named by the tests (``set_keys``, ``pop_keys``, ...) run in the
children; each takes the child's index first and returns something picklable.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

#: How long a child may take to start and reach the barrier (imports, Django setup, connection).
START_TIMEOUT = 60.0

#: The value ``pop_default`` returns for a missing key in these tests (no test stores it).
POPPED_NOTHING = "<nothing>"


# -- parent side -------------------------------------------------------------------


def run_in_processes(
    function_name: str,
    database_name: str,
    arguments: Sequence[tuple[Any, ...]],
    timeout: float = 120.0,
) -> list[Any]:
    """Run ``function_name(index, *arguments[index])`` in one new process per entry.

    The children connect to ``database_name`` (the parent's test database) and
    start their work together. Return their results in index order; if any
    child raised, raise ``AssertionError`` with every child's traceback.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(arguments))
    results = context.Queue()
    processes = [
        context.Process(
            target=child_main,
            args=(function_name, database_name, index, barrier, results, args),
            name=f"keyval-{function_name}-{index}",
        )
        for index, args in enumerate(arguments)
    ]
    for process in processes:
        process.start()
    collected: dict[int, tuple[str, Any]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(collected) < len(processes):
            try:
                index, status, payload = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                missing = sorted(set(range(len(processes))) - set(collected))
                raise AssertionError(
                    f"{function_name}: children {missing} gave no result within {timeout} s"
                ) from None
            collected[index] = (status, payload)
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
    errors = [
        f"--- child {index} ---\n{payload}"
        for index, (status, payload) in sorted(collected.items())
        if status == "error"
    ]
    if errors:
        raise AssertionError(
            f"{len(errors)} of {len(processes)} children running {function_name} raised:\n"
            + "\n".join(errors)
        )
    return [collected[index][1] for index in range(len(processes))]


def start_process(
    function_name: str, database_name: str, arguments: tuple[Any, ...]
) -> tuple[multiprocessing.process.BaseProcess, Any]:
    """Start one child running ``function_name(0, events, *arguments)``; don't wait for it.

    ``events`` is a ``multiprocessing`` queue the child reports its progress
    on; it is returned with the process, for the fault tests that kill the
    child in the middle of its work.
    """
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    process = context.Process(
        target=child_main,
        args=(function_name, database_name, 0, None, events, (events, *arguments)),
        name=f"keyval-{function_name}",
    )
    process.start()
    return process, events


# -- child side --------------------------------------------------------------------


def connect_to_test_database(database_name: str, alias: str = "default") -> None:
    """Set up Django in a fresh process and point ``alias`` at the parent's test database."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections

    settings.DATABASES[alias]["NAME"] = database_name
    connections[alias].settings_dict["NAME"] = database_name


def child_main(
    function_name: str,
    database_name: str,
    index: int,
    barrier: Any,
    results: Any,
    arguments: tuple[Any, ...],
) -> None:
    """Entry point of every child: set up, wait for the others, work, report."""
    try:
        connect_to_test_database(database_name)
        from django.db import connection

        # Connect before the barrier, so the work itself starts together.
        connection.ensure_connection()
        function: Callable[..., Any] = globals()[function_name]
        if barrier is not None:
            barrier.wait(timeout=START_TIMEOUT)
        payload = function(index, *arguments)
    except BaseException:
        if barrier is not None:
            barrier.abort()  # the others stop waiting for this child
        results.put((index, "error", traceback.format_exc()))
    else:
        results.put((index, "ok", payload))
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not even have started
            pass


def _store(name: str) -> Any:
    from django_keyval.models import KeyVal

    return KeyVal(name)


def written_value(key: str, index: int) -> Any:
    """The value child ``index`` writes under ``key``: an int for odd children, else a str.

    Both kinds are used because plain ints live in their own column.
    """
    if index % 2:
        return index * 1_000_000 + int(key.rsplit("-", 1)[1])
    return f"{key}@{index}"


def set_keys(index: int, store_name: str, keys: list[str]) -> list[tuple[str, bool]]:
    """``set`` each key (odd children go backwards); return ``(key, was_new)`` pairs."""
    kv = _store(store_name)
    ordered = keys if index % 2 == 0 else keys[::-1]
    return [(key, kv.set(key, written_value(key, index))) for key in ordered]


def pop_keys(index: int, store_name: str, keys: list[str]) -> list[tuple[str, Any]]:
    """Pop each key (``pop_default``; every third child ``pop``); return what was popped."""
    from django_keyval.exceptions import KeyNotFoundError

    kv = _store(store_name)
    popped = []
    ordered = keys if index % 2 == 0 else keys[::-1]
    for key in ordered:
        if index % 3 == 2:
            with suppress(KeyNotFoundError):
                popped.append((key, kv.pop(key)))
        else:
            value = kv.pop_default(key, POPPED_NOTHING)
            if value != POPPED_NOTHING:
                popped.append((key, value))
    return popped


def delete_keys(index: int, store_name: str, keys: list[str]) -> list[tuple[str, bool]]:
    """Delete each key; return ``(key, deleted)`` pairs.

    Even children pass ``ignore_keyerror=True``; odd ones count
    :class:`~django_keyval.exceptions.KeyNotFoundError` as "not deleted".
    """
    from django_keyval.exceptions import KeyNotFoundError

    kv = _store(store_name)
    outcomes = []
    ordered = keys if index % 2 == 0 else keys[::-1]
    for key in ordered:
        if index % 2 == 0:
            outcomes.append((key, kv.delete(key, ignore_keyerror=True)))
        else:
            try:
                outcomes.append((key, kv.delete(key)))
            except KeyNotFoundError:
                outcomes.append((key, False))
    return outcomes


def add_keys(index: int, store_name: str, keys: list[str]) -> list[tuple[str, bool]]:
    """``add`` each key with this child's value; return ``(key, added)`` pairs."""
    kv = _store(store_name)
    ordered = keys if index % 2 == 0 else keys[::-1]
    return [(key, kv.add(key, written_value(key, index))) for key in ordered]


def set_many_shuffled(index: int, store_name: str, keys: list[str], calls: int, size: int) -> int:
    """Call ``set_many`` ``calls`` times, each with ``size`` of ``keys`` in a random order."""
    kv = _store(store_name)
    rng = random.Random(index)
    for _ in range(calls):
        chosen = rng.sample(keys, size)
        kv.set_many({key: written_value(key, index) for key in chosen})
    return calls


def increment(index: int, store_name: str, key: str, times: int) -> list[int]:
    """``incr`` one key ``times`` times; return every result."""
    kv = _store(store_name)
    return [kv.incr(key) for _ in range(times)]


def increment_reporting(index: int, events: Any, store_name: str, key: str) -> int:
    """Report ``"started"``, ``incr`` ``key`` once, report ``("done", time.time())``."""
    kv = _store(store_name)
    events.put("started")
    value: int = kv.incr(key)
    events.put(("done", time.time()))
    return value


# -- mixed writers, readers and flushers ------------------------------------------------


def mixed_value(writer: int, serial: int, key: str) -> dict[str, Any]:
    """A value whose content says which writer wrote it under which key."""
    return {"writer": writer, "serial": serial, "key": key, "check": f"{writer}/{serial}/{key}"}


def check_mixed_value(key: str, value: Any, writers: int) -> str | None:
    """Return why ``value`` found under ``key`` cannot have been written, or ``None``."""
    if key.startswith("count-"):
        if type(value) is int and value >= 1:
            return None
        return f"{key!r} holds {value!r}, not a positive counter"
    if not isinstance(value, dict) or set(value) != {"writer", "serial", "key", "check"}:
        return f"{key!r} holds {value!r}, which no writer wrote"
    writer, serial = value["writer"], value["serial"]
    if (
        value["key"] != key
        or value["check"] != f"{writer}/{serial}/{key}"
        or not (type(writer) is int and 0 <= writer < writers)
    ):
        return f"{key!r} holds {value!r}, which no writer wrote under that key"
    return None


def mixed_work(
    index: int, role: str, store_name: str, keys: list[str], writers: int, seconds: float
) -> dict[str, Any]:
    """Work as ``role`` (writer, reader or flusher) on one store for ``seconds``.

    Return the number of operations done, the number of values read, and
    every value read that no writer wrote.
    """
    kv = _store(store_name)
    rng = random.Random(index)
    operations = 0
    values_seen = 0
    wrong: list[str] = []
    deadline = time.monotonic() + seconds

    def check(key: str, value: Any) -> None:
        nonlocal values_seen
        values_seen += 1
        problem = check_mixed_value(key, value, writers)
        if problem:
            wrong.append(problem)

    while time.monotonic() < deadline:
        operations += 1
        key = rng.choice(keys)
        if role == "writer":
            step = operations % 7
            if step == 0:
                kv.set(key, mixed_value(index, operations, key))
            elif step == 1:
                chosen = rng.sample(keys, 5)  # in random order, as a caller would pass them
                kv.set_many({k: mixed_value(index, operations, k) for k in chosen})
            elif step == 2:
                kv.add(key, mixed_value(index, operations, key))
            elif step == 3:
                value = kv.pop_default(key)
                if value is not None:
                    check(key, value)
            elif step == 4:
                kv.delete(key, ignore_keyerror=True)
            elif step == 5:
                kv.delete_many(rng.sample(keys, 3))
            else:
                kv.incr(f"count-{index}")
        elif role == "reader":
            step = operations % 6
            if step == 0:
                value = kv.get_default(key)
                if value is not None:
                    check(key, value)
            elif step == 1:
                for found_key, value in kv.get_many(rng.sample(keys, 8)).items():
                    check(found_key, value)
            elif step == 2:
                for found_key, value in kv.items():
                    check(found_key, value)
            elif step == 3:
                kv.exists(key)
            elif step == 4:
                if kv.count() < 0:
                    wrong.append("count() < 0")
            else:
                list(kv.keys())
        elif role == "flusher":
            kv.flush()
        else:
            raise ValueError(f"unknown role {role!r}")
    return {"role": role, "operations": operations, "values_seen": values_seen, "wrong": wrong}


# -- faults ------------------------------------------------------------------------------


def set_many_and_stall(
    index: int, events: Any, store_name: str, pairs: int, stall_after: int | None
) -> None:
    """Call ``set_many`` with ``pairs`` int values; report on ``events`` as it goes.

    Puts ``"started"`` when the first statement of the call is sent. With
    ``stall_after``, the child puts ``"stalled"`` once that many statements
    have run (inside the open transaction) and then sleeps until it is
    killed. Puts ``"committed"`` if the call returns.
    """
    from django.db import connection

    kv = _store(store_name)
    mapping = {f"k-{n:07d}": n for n in range(pairs)}
    statements = 0

    def watch(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal statements
        if statements == 0:
            events.put("started")
        result = execute(sql, params, many, context)
        statements += 1
        if stall_after is not None and statements == stall_after:
            events.put("stalled")
            time.sleep(600)
        return result

    with connection.execute_wrapper(watch):
        kv.set_many(mapping)
    events.put("committed")


def read_and_write(index: int, store_name: str, key: str) -> dict[str, Any]:
    """Write, read back and count one store; return the seconds it took and what was seen."""
    kv = _store(store_name)
    started = time.monotonic()
    kv.set(f"{key}-{index}", index)
    value = kv.get(f"{key}-{index}")
    count = kv.count()
    return {"seconds": time.monotonic() - started, "value": value, "count": count}


# -- the cache backend ---------------------------------------------------------------------


def _keyval_cache(store_name: str) -> Any:
    from django_keyval.cache import KeyValCache

    return KeyValCache(store_name, {"TIMEOUT": None})


def cache_incr(index: int, store_name: str, key: str, times: int) -> list[int]:
    """``KeyValCache.incr`` one key ``times`` times; return every result."""
    cache = _keyval_cache(store_name)
    return [cache.incr(key) for _ in range(times)]


def cache_add(index: int, store_name: str, key: str) -> bool:
    """``KeyValCache.add`` one key with this child's index; return whether it was stored."""
    return bool(_keyval_cache(store_name).add(key, index))


# -- coordination: update() and locks ------------------------------------------------------


def append_with_update(index: int, store_name: str, key: str, times: int) -> int:
    """Append ``"<index>-<n>"`` to the list under ``key`` with ``update()``, ``times`` times.

    Return how often the function was called in all (lost races call it again).
    """
    kv = _store(store_name)
    calls = 0
    for number in range(times):
        item = f"{index}-{number}"

        def append(items: list[str], item: str = item) -> list[str]:
            nonlocal calls
            calls += 1
            return [*items, item]

        kv.update(key, append, default=[])
    return calls


def increment_file_under_lock(
    index: int, store_name: str, lock_name: str, path: str, times: int
) -> list[int]:
    """``times`` times: take the lock, add one to the number in the file ``path``; return tokens.

    The file is read, the process sleeps briefly, then the file is written:
    without mutual exclusion, increments are lost.
    """
    kv = _store(store_name)
    tokens = []
    for _ in range(times):
        with kv.lock(lock_name, timeout=30) as lock:
            with open(path) as file:
                number = int(file.read())
            time.sleep(0.001)
            with open(path, "w") as file:
                file.write(str(number + 1))
            tokens.append(lock.token)
    return tokens


def hold_lock_until_killed(
    index: int, events: Any, store_name: str, lock_name: str, lease: float
) -> None:
    """Take the lock with a lease of ``lease`` seconds, report its token, and hang.

    Puts ``("acquired", token)`` on ``events``; the parent then kills this process.
    """
    kv = _store(store_name)
    lock = kv.lock(lock_name, timeout=lease)
    lock.acquire()
    events.put(("acquired", lock.token))
    time.sleep(600)


def take_lock_after_lease(
    index: int, events: Any, store_name: str, lock_name: str, hold: float
) -> None:
    """Wait for the lock (its current lease to end), hold it ``hold`` seconds, release it.

    Puts ``("acquired", token)`` once it holds the lock, then ``("released", owned)``
    with whether it still held it just before releasing.
    """
    kv = _store(store_name)
    lock = kv.lock(lock_name, timeout=30)
    lock.acquire(blocking_timeout=30)
    events.put(("acquired", lock.token))
    time.sleep(hold)
    owned = lock.owned()
    lock.release()
    events.put(("released", owned))


def lock_or_maintain(index: int, role: str, store_name: str, *arguments: Any) -> Any:
    """``role`` "lock": :func:`increment_file_under_lock`; else: :func:`maintain_in_a_loop`."""
    if role == "lock":
        return increment_file_under_lock(index, store_name, *arguments)
    return maintain_in_a_loop(index, store_name, *arguments)


def maintain_in_a_loop(index: int, store_name: str, path: str, target: int) -> int:
    """Trim, cull, flush and clear the cache of ``store_name`` until ``path`` holds ``target``.

    Every operation that deletes or rewrites pairs, again and again, while
    other processes take a lock of the same store; return how many rounds
    ran (at most for four minutes).
    """
    from django_keyval.models import KeyVal

    kv = _store(store_name)
    cache = _keyval_cache(store_name)
    rounds = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        kv.set_many({f"filler-{n}": n for n in range(10)}, timeout=60)
        kv.set("counter", "a pair named like the lock", timeout=0.001)
        kv.trim(0, cull_frequency=0)
        KeyVal.cull()
        kv.flush()
        KeyVal.flush_all()
        cache.clear()
        kv.delete("counter", ignore_keyerror=True)
        rounds += 1
        with open(path) as file:
            text = file.read()
        if text and int(text) >= target:
            break
    return rounds
