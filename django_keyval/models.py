"""The tables of key-value pairs and of locks, and :class:`KeyVal`, the API to use them."""

from __future__ import annotations

import datetime
import time
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .conf import keyval_settings
from .encoding import decode_value
from .serializers import get_serializer

# The public API lives beside its table: ``from django_keyval.models import KeyVal``.
from .store import KeyVal

# Also importable from here, beside the columns they limit.
from .validation import MAX_KEY_LENGTH as MAX_KEY_LENGTH
from .validation import MAX_STORE_NAME_LENGTH as MAX_STORE_NAME_LENGTH

#: Lease ends are kept as microseconds since this moment.
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

__all__ = ["KeyVal", "KeyValLock", "KeyValPair"]


class BinaryCollationCharField(models.CharField):  # type: ignore[type-arg]
    """A ``CharField`` compared and sorted by code point on every database.

    The default collations of MariaDB/MySQL ignore case, accents and trailing
    spaces, and PostgreSQL's may sort by locale; either would make two
    different keys collide or break key order. SQLite's default (``BINARY``)
    already compares by code point.
    """

    COLLATIONS = {
        "postgresql": "C",
        "mysql": "utf8mb4_0900_bin",
        "mariadb": "utf8mb4_nopad_bin",
    }

    def db_parameters(self, connection: BaseDatabaseWrapper) -> dict[str, Any]:
        """Add the vendor's binary collation to the column definition."""
        parameters = super().db_parameters(connection)
        vendor = connection.vendor
        if vendor == "mysql" and getattr(connection, "mysql_is_mariadb", False):
            vendor = "mariadb"
        if vendor in self.COLLATIONS:
            parameters["collation"] = self.COLLATIONS[vendor]
        return parameters


class ExpiryIndex(models.Index):
    """An index on ``expires_at`` of the pairs that expire, where the database allows.

    Most pairs never expire, and every write sets ``expires_at`` (usually
    ``NULL`` again): leaving ``NULL`` out of the index spares those writes
    the index upkeep. SQLite and PostgreSQL get ``WHERE expires_at IS NOT
    NULL``; databases without partial indexes (MariaDB, MySQL) get a plain
    index on the column, so that culling expired pairs is an index range
    scan everywhere.

    The condition is added only when the index is created, rather than kept
    in ``condition``, so that Django does not warn (``models.W037``) on a
    database that would ignore it.
    """

    def __init__(self, *, name: str) -> None:
        super().__init__(fields=["expires_at"], name=name)

    def deconstruct(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        """Only the name varies: the column and the condition are fixed."""
        return (f"{__name__}.{type(self).__name__}", (), {"name": self.name})

    def create_sql(self, model: Any, schema_editor: Any, using: str = "", **kwargs: Any) -> Any:
        """Return the statement that creates the index, partial where supported."""
        condition = None
        if schema_editor.connection.features.supports_partial_indexes:
            condition = models.Q(expires_at__isnull=False)
        index = models.Index(fields=self.fields, name=self.name, condition=condition)
        return index.create_sql(model, schema_editor, using=using, **kwargs)


class KeyValPair(models.Model):
    """One key-value pair of one store.

    Plain ``int`` values (that fit 64 bits) are kept in ``integer_value`` so
    that counters can be incremented in SQL; every other value is kept as the
    bytes its serializer made, in ``value``.
    """

    store = BinaryCollationCharField(_("store"), max_length=MAX_STORE_NAME_LENGTH)
    key = BinaryCollationCharField(_("key"), max_length=MAX_KEY_LENGTH)
    value = models.BinaryField(_("serialized value"), null=True, blank=True)
    integer_value = models.BigIntegerField(_("integer value"), null=True, blank=True)
    serializer = models.CharField(
        _("serializer"),
        max_length=50,
        help_text=_('Name of the serializer that wrote the value; "int" for integer values.'),
    )
    version = models.BigIntegerField(
        _("version"),
        default=1,
        help_text=_(
            "Each write adds one, also when the pair is created again over an expired row."
        ),
    )
    first_version = models.BigIntegerField(
        _("first version"),
        default=1,
        help_text=_("The version the pair had when it was created: it is new while the two match."),
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("key-value pair")
        verbose_name_plural = _("key-value pairs")
        ordering = ["store", "key"]
        constraints = [
            models.UniqueConstraint(fields=["store", "key"], name="django_keyval_store_key_uniq"),
        ]
        indexes = [ExpiryIndex(name="django_keyval_expires_idx")]

    def __str__(self) -> str:
        return f"{self.store}: {self.key}"

    @property
    def is_expired(self) -> bool:
        """Whether the pair's expiry time has passed (it then counts as missing)."""
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def decoded_value(self) -> Any:
        """Return the stored value, checking a pickle's signature before unpickling it."""
        configured = get_serializer(keyval_settings.SERIALIZER)
        return decode_value(
            self.store, self.key, self.serializer, self.value, self.integer_value, configured
        )


class KeyValLock(models.Model):
    """The state of one lock of one store: its holder, the end of its lease, its fencing token.

    Locks live apart from the pairs so that nothing that deletes or rewrites
    pairs (``flush``, ``trim``, culling, ``delete``, import, the admin)
    reaches them, and a lock's row is never deleted: its ``token`` only
    ever goes up, for as long as the database lives.
    """

    store = BinaryCollationCharField(_("store"), max_length=MAX_STORE_NAME_LENGTH)
    name = BinaryCollationCharField(_("name"), max_length=MAX_KEY_LENGTH)
    owner = BinaryCollationCharField(
        _("owner"),
        max_length=32,
        blank=True,
        help_text=_("The random token of the Lock that holds it; empty once released."),
    )
    lease_end = models.BigIntegerField(
        _("end of the lease"),
        default=0,
        help_text=_("In microseconds since 1970 (UTC); the lock is free from then on."),
    )
    token = models.BigIntegerField(
        _("fencing token"), help_text=_("The token of the latest acquisition; only goes up.")
    )
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("lock")
        verbose_name_plural = _("locks")
        ordering = ["store", "name"]
        constraints = [
            models.UniqueConstraint(fields=["store", "name"], name="django_keyval_lock_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.store}: {self.name}"

    @property
    def lease_ends_at(self) -> datetime.datetime:
        """When the lease ends (or ended): an aware datetime in UTC."""
        return EPOCH + datetime.timedelta(microseconds=self.lease_end)

    @property
    def is_held(self) -> bool:
        """Whether a holder's lease is running now."""
        return bool(self.owner) and self.lease_end > time.time_ns() // 1000
