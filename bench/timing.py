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


def timer_overhead_ns() -> float:
    """Median cost of timing one call of a do-nothing function (included in every figure)."""
    return float(statistics.median(time_calls(lambda argument: None, [None] * 10_000)))
