"""The databases the benchmark can use, and the Django settings it runs with.

The benchmark configures Django itself (``settings.configure``), so it needs
no project: each database is an alias, and every system under test is pointed
at one alias at a time.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

#: Name of the database the benchmark creates on PostgreSQL and MariaDB.
BENCH_DATABASE_NAME = os.environ.get("KEYVAL_BENCH_DB_NAME", "keyval_bench")
#: Table of Django's database cache backend, created with ``createcachetable``.
CACHE_TABLE = "keyval_bench_cache"
#: Alias of the DatabaseCache in ``CACHES``.
CACHE_ALIAS = "database"


@dataclass
class Database:
    """One database the benchmark can run on."""

    alias: str
    #: Short name, in the targets.
    name: str
    #: Long name, over the table.
    title: str
    vendor: str
    host: str = ""
    port: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def settings(self, workdir: str) -> dict[str, Any]:
        """Return the ``DATABASES`` entry of this database."""
        if self.vendor == "sqlite":
            return {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(
                    workdir, f"keyval_bench_{self.alias.replace('-', '_')}.sqlite3"
                ),
                "OPTIONS": dict(self.options),
            }
        engine = {"postgresql": "postgresql", "mysql": "mysql"}[self.vendor]
        prefix = {"postgresql": "KEYVAL_PG", "mysql": "KEYVAL_MYSQL"}[self.vendor]
        return {
            "ENGINE": f"django.db.backends.{engine}",
            "HOST": self.host,
            "PORT": str(self.port),
            "USER": os.environ.get(
                f"{prefix}_USER", "postgres" if self.vendor == "postgresql" else "root"
            ),
            "PASSWORD": os.environ.get(f"{prefix}_PASSWORD", ""),
            "NAME": BENCH_DATABASE_NAME,
            "OPTIONS": dict(self.options),
        }

    def server_reachable(self) -> bool:
        """Whether something listens on the server's port (always true for SQLite)."""
        if self.vendor == "sqlite":
            return True
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False


DATABASES: dict[str, Database] = {
    database.alias: database
    for database in [
        Database("sqlite", "SQLite", "SQLite (Django's default options)", "sqlite"),
        Database(
            "sqlite-wal",
            "SQLite-WAL",
            "SQLite with WAL (journal_mode=WAL, synchronous=NORMAL)",
            "sqlite",
            # init_command runs on every new connection (Django 5.1+). WAL
            # lets readers and the writer work at once; synchronous=NORMAL is
            # the setting the SQLite documentation recommends with WAL (a
            # commit is durable once the WAL is checkpointed).
            options={"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"},
        ),
        Database(
            "postgresql",
            "PostgreSQL",
            "PostgreSQL",
            "postgresql",
            host=os.environ.get("KEYVAL_PG_HOST", "127.0.0.1"),
            port=int(os.environ.get("KEYVAL_PG_PORT", "5432")),
            options={"connect_timeout": 3},
        ),
        Database(
            "postgresql-async",
            "PostgreSQL-async",
            "PostgreSQL with synchronous_commit=off",
            "postgresql",
            host=os.environ.get("KEYVAL_PG_HOST", "127.0.0.1"),
            port=int(os.environ.get("KEYVAL_PG_PORT", "5432")),
            # The same database, but commits return before the WAL reaches the
            # disk (PostgreSQL's counterpart of synchronous=NORMAL above): the
            # cost of each statement shows instead of the cost of a flush.
            options={"connect_timeout": 3, "options": "-c synchronous_commit=off"},
        ),
        Database(
            "mysql",
            "MariaDB",
            "MariaDB",
            "mysql",
            host=os.environ.get("KEYVAL_MYSQL_HOST", "127.0.0.1"),
            port=int(os.environ.get("KEYVAL_MYSQL_PORT", "3306")),
            options={"charset": "utf8mb4", "connect_timeout": 3},
        ),
    ]
}


#: Other operations classes measured beside each database's own: an alias
#: suffix (the same database under a second alias), the class, and which
#: vendors it runs on.
OPERATIONS_VARIANTS = {
    "portable": (
        "django_keyval.backends.portable.PortableOperations",
        ("sqlite", "postgresql", "mysql"),
    ),
    "mysql-class": ("django_keyval.backends.mysql.MySQLOperations", ("mysql",)),
}


def variant_alias(alias: str, variant: str) -> str:
    """The alias under which ``alias``'s database runs with the ``variant`` class."""
    return f"{alias}+{variant}"


def variants_of(database: Database) -> list[str]:
    """The variants (keys of :data:`OPERATIONS_VARIANTS`) measured on ``database``."""
    return [
        name for name, (_, vendors) in OPERATIONS_VARIANTS.items() if database.vendor in vendors
    ]


class CurrentDatabaseRouter:
    """Send every model to the database being measured.

    KeyVal, the ORM implementation and the floor are given the alias
    directly; only Django's ``DatabaseCache``, which has no ``using``
    argument, finds its database through this router.
    """

    current = "default"

    def db_for_read(self, model: Any, **hints: Any) -> str:
        """Return the database being measured."""
        return CurrentDatabaseRouter.current

    def db_for_write(self, model: Any, **hints: Any) -> str:
        """Return the database being measured."""
        return CurrentDatabaseRouter.current

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        """Create every table on every benchmark database."""
        return True


def django_settings(databases: list[Database], workdir: str) -> dict[str, Any]:
    """Return the keyword arguments for ``settings.configure``."""
    return {
        "DEBUG": False,
        "SECRET_KEY": "django-keyval-benchmark-not-secret",
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "INSTALLED_APPS": ["django_keyval"],
        # "default" stays the dummy backend: every system is given its alias.
        "DATABASES": {
            "default": {},
            **{db.alias: db.settings(workdir) for db in databases},
            **{
                variant_alias(db.alias, variant): db.settings(workdir)
                for db in databases
                for variant in variants_of(db)
            },
        },
        # The same databases under a second alias, with another operations class.
        "KEYVAL_OPERATIONS": {
            variant_alias(db.alias, variant): OPERATIONS_VARIANTS[variant][0]
            for db in databases
            for variant in variants_of(db)
        },
        # Chosen on purpose here: no need to warn about the portable class.
        "SILENCED_SYSTEM_CHECKS": ["keyval.W002"],
        "DATABASE_ROUTERS": ["bench.settings.CurrentDatabaseRouter"],
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "CACHES": {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            CACHE_ALIAS: {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": CACHE_TABLE,
                "TIMEOUT": None,
                # Culling disabled: DatabaseCache culls only when the table
                # holds more than MAX_ENTRIES rows, which never happens here.
                # (It still counts the rows before every write.)
                "OPTIONS": {"MAX_ENTRIES": 2**62},
            },
        },
    }
