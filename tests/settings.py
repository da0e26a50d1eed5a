"""Minimal settings for the test suite.

``KEYVAL_TEST_DB`` picks the database: ``sqlite`` (default, in WAL mode
with ``KEYVAL_TEST_SQLITE_WAL=1``), ``postgresql``, ``mysql`` (MariaDB) or
``galera`` (the 3-node MariaDB Galera cluster of ``python3 -m tests.galera
start``). Each gets a second database, ``other``, for the tests of
``using=`` and routers. On ``galera``, ``default`` and ``other`` are on
node 1, and ``node2`` and ``node3`` reach the same test database (a test
mirror of ``default``) through the other two nodes. ``KEYVAL_TEST_OPERATIONS=mysql|portable``
forces that operations class on every alias (the MySQL class on MariaDB,
the portable class anywhere), and checks every statement it sends (see
``tests/statements.py``).
"""

import os
import tempfile
from typing import Any

DATABASE_VENDOR = os.environ.get("KEYVAL_TEST_DB", "sqlite")
# Lets several runs share one server at once (test_keyval_default_SUFFIX).
_SUFFIX = os.environ.get("KEYVAL_TEST_DB_SUFFIX", "")

if DATABASE_VENDOR == "sqlite":
    # Files, not memory: the concurrency tests open the database from other processes.
    _directory = os.environ.get("KEYVAL_TEST_SQLITE_DIR", tempfile.gettempdir())
    # KEYVAL_TEST_SQLITE_WAL=1: write-ahead logging instead of the default
    # rollback journal (readers then never wait for a writer).
    _OPTIONS = (
        {"init_command": "PRAGMA journal_mode=WAL;"}
        if os.environ.get("KEYVAL_TEST_SQLITE_WAL")
        else {}
    )
    DATABASES = {
        alias: {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(_directory, f"keyval_{alias}{_SUFFIX}.sqlite3"),
            "OPTIONS": _OPTIONS,
            "TEST": {"NAME": os.path.join(_directory, f"test_keyval_{alias}{_SUFFIX}.sqlite3")},
        }
        for alias in ("default", "other")
    }
elif DATABASE_VENDOR == "postgresql":
    DATABASES = {
        alias: {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("KEYVAL_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("KEYVAL_PG_PORT", "5432"),
            "USER": os.environ.get("KEYVAL_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("KEYVAL_PG_PASSWORD", ""),
            "NAME": f"keyval_{alias}",
            "TEST": {"NAME": f"test_keyval_{alias}{_SUFFIX}"},
        }
        for alias in ("default", "other")
    }
elif DATABASE_VENDOR in ("mysql", "galera"):

    def _mysql_database(alias: str, port: str, mirror: str | None = None) -> dict[str, Any]:
        return {
            "ENGINE": "django.db.backends.mysql",
            "HOST": os.environ.get("KEYVAL_MYSQL_HOST", "127.0.0.1"),
            "PORT": port,
            "USER": os.environ.get("KEYVAL_MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("KEYVAL_MYSQL_PASSWORD", ""),
            "NAME": f"keyval_{alias}",
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {
                "NAME": f"test_keyval_{alias}{_SUFFIX}",
                "CHARSET": "utf8mb4",
                "COLLATION": "utf8mb4_unicode_ci",
                "MIRROR": mirror,
            },
        }

    if DATABASE_VENDOR == "mysql":
        _port = os.environ.get("KEYVAL_MYSQL_PORT", "3306")
        DATABASES = {alias: _mysql_database(alias, _port) for alias in ("default", "other")}
    else:
        from .galera import sql_port

        DATABASES = {
            "default": _mysql_database("default", str(sql_port(1))),
            "other": _mysql_database("other", str(sql_port(1))),
            "node2": _mysql_database("node2", str(sql_port(2)), mirror="default"),
            "node3": _mysql_database("node3", str(sql_port(3)), mirror="default"),
        }
else:
    raise ValueError(
        f"KEYVAL_TEST_DB must be sqlite, postgresql, mysql or galera, not {DATABASE_VENDOR!r}"
    )

SECRET_KEY = "django-keyval-tests-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_keyval",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test logins
_FORCED_CLASSES = {
    "mysql": "django_keyval.backends.mysql.MySQLOperations",
    "portable": "django_keyval.backends.portable.PortableOperations",
}  # as in tests/statements.py
_FORCED = os.environ.get("KEYVAL_TEST_OPERATIONS", "")
if _FORCED:
    if _FORCED not in _FORCED_CLASSES:
        raise ValueError(f"KEYVAL_TEST_OPERATIONS must be mysql or portable, not {_FORCED!r}")
    KEYVAL_OPERATIONS = dict.fromkeys(DATABASES, _FORCED_CLASSES[_FORCED])
    INSTALLED_APPS.append("tests.apps.StatementCheckConfig")
    # The portable class says what it costs (keyval.W002); here it is chosen.
    SILENCED_SYSTEM_CHECKS = ["keyval.W002"]

# Culling on write is tested on its own; elsewhere it would add queries at random.
KEYVAL_CULL_EVERY = 0
