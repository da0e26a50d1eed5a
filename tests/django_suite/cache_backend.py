"""Django's ``BaseCacheTests``, unmodified, against :class:`~django_keyval.cache.KeyValCache`.

Set up as Django sets up its database cache (``DBCacheTests``): every cache
alias the tests use (``default``, ``prefix``, ``v2``, ``cull``,
``zero_cull``...) is a ``KeyValCache``, all on one store, like
``DBCacheTests`` puts them all in one table. The two query-count tests
``DBCacheTests`` adds (``get_many`` and ``delete_many`` in one query each)
run too, taken from Django's class as they are.

Importable only once :mod:`tests.django_suite.__main__` has put Django's
``tests/`` folder on ``sys.path``.
"""

from __future__ import annotations

from cache.tests import (  # type: ignore[import-not-found]
    BaseCacheTests,
    DBCacheTests,
    caches_setting_for_tests,
)
from django.test import TransactionTestCase, override_settings

#: The store every cache alias of the tests keeps its pairs in.
STORE = "django cache suite"

KEYVAL_CACHES = caches_setting_for_tests(
    BACKEND="django_keyval.cache.KeyValCache",
    # A space, as Django uses for its table name: names are data here, not SQL.
    LOCATION=STORE,
)


@override_settings(CACHES=KEYVAL_CACHES)
class KeyValCacheTests(BaseCacheTests, TransactionTestCase):  # type: ignore[misc]
    """Every test of ``BaseCacheTests``, plus ``DBCacheTests``' query counts."""

    available_apps = ["cache", "django_keyval"]

    test_get_many_num_queries = DBCacheTests.test_get_many_num_queries
    test_delete_many_num_queries = DBCacheTests.test_delete_many_num_queries


@override_settings(CACHES=KEYVAL_CACHES, USE_TZ=False)
class KeyValCacheWithoutTimeZoneTests(KeyValCacheTests):
    """The same with ``USE_TZ = False`` (naive datetimes in the expiry column)."""
