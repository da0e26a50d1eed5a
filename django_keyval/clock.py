"""The one clock of the store: the current time, and times as the columns take them.

Every expiry and lease is judged against :func:`now` (Django's
``timezone.now()``, read at call time so that tests may mock it), adapted
for the connection's column with :func:`adapt_datetime`.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

__all__ = ["adapt_datetime", "adapted_now", "now"]


def now() -> datetime.datetime:
    """Return the current time: aware in UTC with ``USE_TZ``, else naive local time."""
    return timezone.now()


#: Where Django's ``adapt_datetimefield_value`` turns an aware datetime into
#: the ``str()`` of the naive one in the connection's time zone.
_NAIVE_STRING_ADAPTERS = frozenset(
    {"django.db.backends.sqlite3.operations", "django.db.backends.mysql.operations"}
)


_naive_string_classes: dict[type[Any], bool] = {}


def _adapts_to_naive_strings(operations_class: type[Any]) -> bool:
    # Django's own adapter only: a third-party backend may override it.
    try:
        return _naive_string_classes[operations_class]
    except KeyError:
        adapter = operations_class.adapt_datetimefield_value
        found = getattr(adapter, "__module__", None) in _NAIVE_STRING_ADAPTERS
        _naive_string_classes[operations_class] = found
        return found


def adapt_datetime(connection: BaseDatabaseWrapper, value: datetime.datetime | None) -> Any:
    """Return an aware datetime (or ``None``) as ``connection.ops.adapt_datetimefield_value`` would.

    Every write adapts two datetimes (its time and its expiry), and Django's
    adapter costs microseconds on SQLite and MySQL; for the common case, a
    UTC datetime for a connection in UTC, the result is computed directly
    (the same string, a test compares them). Anything else goes to Django.
    """
    if value is None:
        return None
    if (
        value.tzinfo is datetime.timezone.utc
        and _adapts_to_naive_strings(type(connection.ops))
        and connection.timezone is datetime.timezone.utc
    ):
        return value.replace(tzinfo=None).isoformat(" ")
    return connection.ops.adapt_datetimefield_value(value)


def adapted_now(connection: BaseDatabaseWrapper) -> Any:
    """Return the current time adapted for ``connection``'s columns, as statements take it."""
    return adapt_datetime(connection, timezone.now())
