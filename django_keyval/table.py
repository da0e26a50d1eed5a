"""The one way in to the table of pairs: routing, the clock, transactions and retries.

Every read and write of :class:`~django_keyval.models.KeyValPair`'s table
goes through here, as Django's ``DatabaseCache`` keeps its table to its own
methods: :class:`~django_keyval.models.KeyVal` on top (validation and
encoding), and the cache, locks, import and export, listing, the command
and the admin's form through ``KeyVal`` or through a :class:`Table`. The
admin's changelist queryset is the one reader that goes through the ORM
(for its filters, search and paging).

* **Routing** is decided once per operation, by :func:`route` (the only
  caller of Django's ``router.db_for_read``/``db_for_write`` in the
  package), and the alias chosen is kept in :attr:`Table.alias` for callers
  that must report it or stay on it.
* **The clock**: :meth:`Table.now` is the current time as the columns take
  it (:mod:`django_keyval.clock`).
* **Transactions and retries**: :meth:`Table.atomic` runs a function in a
  transaction, again after an error that undid it entirely (a deadlock
  victim, a busy SQLite file); single statements retry the same way inside
  the operations class.

A :class:`Table` holds the connection of the thread that made it: make one
per operation (it is cheap), never share one across threads.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from django.apps import apps
from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper

from .backends import BaseOperations, operations_for
from .clock import adapt_datetime, adapted_now

__all__ = ["Table", "pair_model", "route", "table"]

_T = TypeVar("_T")


def pair_model() -> type[models.Model]:
    """Return the model of the table, :class:`~django_keyval.models.KeyValPair`.

    Found through the app registry, as Django's own apps find their models,
    so that no module of the package needs to import ``models.py`` (which
    imports the store, to offer ``KeyVal`` beside its table).
    """
    return apps.get_model("django_keyval", "KeyValPair")


def route(write: bool, store: str | None = None, instance: Any = None) -> str:
    """Return the database alias the routers choose for a read (or a write) of the table.

    The routers get the store's name as the ``store`` hint, so that they can
    place stores on different databases; operations over every store give
    none. ``instance`` is a ``KeyValPair`` the admin is editing, given as
    Django gives it.
    """
    model = pair_model()
    hints: dict[str, Any] = {}
    if store is not None:
        hints["store"] = store
    if instance is not None:
        hints["instance"] = instance
    if write:
        return str(router.db_for_write(model, **hints))
    return str(router.db_for_read(model, **hints))


class Table(NamedTuple):
    """The table on one database, for an operation in the calling thread."""

    #: The database alias the operation runs on.
    alias: str
    #: That database's connection in this thread.
    connection: BaseDatabaseWrapper
    #: The statements for that database (see :mod:`django_keyval.backends`).
    operations: BaseOperations

    def now(self) -> Any:
        """Return the current time adapted for the columns, as statements take it."""
        return adapted_now(self.connection)

    def adapt(self, value: datetime.datetime | None) -> Any:
        """Return ``value`` (an aware datetime, or ``None``) adapted for the columns."""
        return None if value is None else adapt_datetime(self.connection, value)

    def atomic(self, function: Callable[[], _T]) -> _T:
        """Call ``function`` in a transaction; the whole again after a transient error.

        Inside the caller's own transaction it simply runs (a retry could
        not help there).
        """
        return self.operations.in_transaction(self.connection, function)

    def atomic_unless_single(self, function: Callable[[], _T], single: bool) -> _T:
        """Call ``function``, in a transaction unless it sends a ``single`` statement.

        One statement is atomic by itself: the transaction would only add the
        queries that open and close it.
        """
        return function() if single else self.atomic(function)


def table(using: str | None, write: bool, store: str | None = None) -> Table:
    """Return the :class:`Table` on ``using``, or on the database the routers choose.

    ``store`` is the routers' hint (see :func:`route`).
    """
    alias = using if using is not None else route(write, store)
    connection = connections[alias]
    return Table(alias, connection, operations_for(connection))
