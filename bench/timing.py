"""Timing calls one by one."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any


def time_calls(call: Callable[[Any], Any], arguments: list[Any]) -> list[int]:
    """Call ``call`` on each argument; return each call's duration in nanoseconds.

    The garbage collector is paused during the calls, so that a collection
    triggered by garbage one system left is not billed to another; it runs
    between batches instead.
    """
    clock = time.perf_counter_ns
    durations: list[int] = []
    append = durations.append
    gc.disable()
    try:
        for argument in arguments:
            start = clock()
            call(argument)
            append(clock() - start)
    finally:
        gc.enable()
    return durations


def time_interleaved(
    calls: dict[str, tuple[Callable[[Any], Any], list[Any]]],
) -> dict[str, list[int]]:
    """Time several systems call by call in turns; return each one's durations in nanoseconds.

    ``calls`` maps a name to a callable and its arguments (lists of the same
    length). The i-th call of every system is made before the (i+1)-th of
    any, so that a slow patch of a busy machine, which lasts longer than a
    call, falls on each system alike. The garbage collector is paused as in
    :func:`time_calls`.
    """
    clock = time.perf_counter_ns
    durations: dict[str, list[int]] = {name: [] for name in calls}
    count = len(next(iter(calls.values()))[1])
    gc.disable()
    try:
        for index in range(count):
            for name, (call, arguments) in calls.items():
                start = clock()
                call(arguments[index])
                durations[name].append(clock() - start)
    finally:
        gc.enable()
    return durations


def timer_overhead_ns() -> float:
    """Median cost of timing one call of a do-nothing function (included in every figure)."""
    return float(statistics.median(time_calls(lambda argument: None, [None] * 10_000)))
