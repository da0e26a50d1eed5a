"""The operations the benchmark measures, by slug, with the label the reports show."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OPERATIONS", "OPERATIONS_BY_SLUG", "Operation"]


@dataclass(frozen=True)
class Operation:
    """One measured operation."""

    slug: str
    label: str
    keys_per_call: int = 1


OPERATIONS = [
    Operation("set_new", "set (new key)"),
    Operation("set_overwrite", "set (overwrite)"),
    Operation("get_hit", "get (hit)"),
    Operation("get_miss", "get (miss)"),
    Operation("exists_hit", "exists (hit)"),
    Operation("exists_miss", "exists (miss)"),
    Operation("delete", "delete"),
    Operation("pop", "pop"),
    Operation("add", "add (new key)"),
    Operation("incr", "incr"),
    Operation("get_many", "get_many (100 keys)", keys_per_call=100),
    Operation("set_many", "set_many (100 keys)", keys_per_call=100),
]
OPERATIONS_BY_SLUG = {operation.slug: operation for operation in OPERATIONS}
