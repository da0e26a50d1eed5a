"""``KeyValCache``: what Django's own cache tests (``python -m tests.django_suite``) do not cover.

Configuration, the store the pairs land in, culling per store, long keys,
forged values, sessions and ``cache_page`` on it, database routing, and 8
processes calling ``incr`` and ``add`` at once.
"""

from __future__ import annotations

import logging
import pickle
import threading
from typing import Any, cast
from unittest import mock

from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBSessionStore
from django.contrib.sessions.models import Session
from django.core.cache import CacheKeyWarning, caches
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, router, transaction
from django.http import HttpRequest, HttpResponse
from django.test import TestCase, TransactionTestCase, override_settings
from django.urls import path
from django.views.decorators.cache import cache_page

from django_keyval.cache import MAX_TIMEOUT, KeyValCache, stored_key
from django_keyval.models import KeyVal, KeyValPair
from tests.helpers import forced_operations, vendor_classes_only

from .helpers import CreatesFile, write_raw
from .workers import run_in_processes

STORE = "tests.cache"
BACKEND = "django_keyval.cache.KeyValCache"


def keyval_caches(**options: Any) -> dict[str, Any]:
    """A ``CACHES`` setting whose default cache is a ``KeyValCache`` on ``STORE``."""
    return {"default": {"BACKEND": BACKEND, "LOCATION": STORE, "OPTIONS": options}}


# -- views for cache_page and the session tests ---------------------------------------

calls = {"cached": 0}


@cache_page(60)
def cached_view(request: HttpRequest) -> HttpResponse:
    calls["cached"] += 1
    return HttpResponse(f"rendered {calls['cached']} time(s)")


def session_view(request: HttpRequest) -> HttpResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(str(request.session["visits"]))


urlpatterns = [path("cached/", cached_view), path("session/", session_view)]


def stored_keys(store: str = STORE) -> list[str]:
    return sorted(KeyValPair.objects.filter(store=store).values_list("key", flat=True))


@override_settings(CACHES=keyval_caches())
class KeyValCacheTests(TestCase):
    def setUp(self) -> None:
        self.cache = caches["default"]

    def test_pairs_are_rows_of_the_location_store(self) -> None:
        self.cache.set("greeting", {"text": "hi"})
        self.cache.set("hits", 41)
        pair = KeyValPair.objects.get(store=STORE, key=":1:greeting")
        self.assertEqual(pair.serializer, "pickle")
        self.assertEqual(KeyValPair.objects.get(store=STORE, key=":1:hits").integer_value, 41)
        # The same pairs through the store API.
        self.assertEqual(KeyVal(STORE).get(":1:greeting"), {"text": "hi"})
        self.assertEqual(cast(KeyValCache, self.cache).store.name, STORE)

    def test_default_timeout_is_300_seconds(self) -> None:
        self.cache.set("k", 1)
        remaining = KeyVal(STORE).expires_at(":1:k") - KeyValPair.objects.get(key=":1:k").updated_at
        self.assertAlmostEqual(remaining.total_seconds(), 300, delta=1)

    @override_settings(CACHES={"default": {"BACKEND": BACKEND, "LOCATION": STORE, "TIMEOUT": None}})
    def test_timeout_none_never_expires(self) -> None:
        caches["default"].set("k", 1)
        self.assertIsNone(KeyVal(STORE).expires_at(":1:k"))

    def test_timeouts_beyond_datetimes_never_expire(self) -> None:
        self.cache.set("far", 1, MAX_TIMEOUT + 1)
        self.cache.set("near", 1, 3600)
        self.assertIsNone(KeyVal(STORE).expires_at(":1:far"))
        self.assertIsNotNone(KeyVal(STORE).expires_at(":1:near"))

    def test_set_with_zero_or_negative_timeout_deletes(self) -> None:
        for timeout in (0, -5):
            with self.subTest(timeout=timeout):
                self.cache.set("k", 1)
                with self.assertNumQueries(1):
                    self.cache.set("k", 2, timeout)
                self.assertEqual(stored_keys(), [])
                self.cache.set_many({"a": 1, "b": 2}, timeout)
                self.assertEqual(stored_keys(), [])

    def test_incr_is_one_statement_and_keeps_the_expiry(self) -> None:
        self.cache.set("n", 1, 60)
        expires = KeyVal(STORE).expires_at(":1:n")
        # The portable class: an UPDATE and a SELECT, in a savepoint here.
        with self.assertNumQueries(4 if forced_operations() == "portable" else 1):
            self.assertEqual(self.cache.incr("n", 5), 6)
        self.assertEqual(self.cache.decr("n", 2), 4)
        self.assertEqual(KeyVal(STORE).expires_at(":1:n"), expires)
        with self.assertRaisesMessage(ValueError, "Key 'missing' not found."):
            self.cache.incr("missing")
        self.assertFalse(self.cache.has_key("missing"))

    def test_unpicklable_values_raise_what_pickling_raised(self) -> None:
        class Unpicklable:
            def __reduce__(self) -> Any:
                raise pickle.PicklingError("not this one")

        for write in (
            lambda: self.cache.set("k", Unpicklable()),
            lambda: self.cache.add("k", Unpicklable()),
            lambda: self.cache.set_many({"k": Unpicklable()}),
        ):
            with self.assertRaisesMessage(pickle.PicklingError, "not this one"):
                write()
        self.assertEqual(stored_keys(), [])

    def test_touch_and_empty_bulk_calls(self) -> None:
        self.cache.set("k", 1, 10)
        self.assertIs(self.cache.touch("k", None), True)
        self.assertIsNone(KeyVal(STORE).expires_at(":1:k"))
        self.assertIs(self.cache.touch("missing", 10), False)
        with self.assertNumQueries(0):
            self.assertEqual(self.cache.get_many([]), {})
            self.assertEqual(self.cache.set_many({}), [])
            self.cache.delete_many([])

    @override_settings(KEYVAL_SERIALIZER="json")
    def test_values_are_pickled_whatever_keyval_serializer_says(self) -> None:
        response = HttpResponse("pickled")
        self.cache.set("response", response)
        self.assertEqual(self.cache.get("response").content, b"pickled")

    def test_clear_deletes_this_store_only(self) -> None:
        neighbour = KeyVal("tests.cache.neighbour")
        neighbour.set("kept", 1)
        self.cache.set_many({"a": 1, "b": 2})
        self.cache.clear()
        self.assertEqual(stored_keys(), [])
        self.assertEqual(neighbour.get("kept"), 1)

    def test_admin_lists_the_pairs_under_the_store_name(self) -> None:
        from django.contrib.auth.models import User

        self.cache.set("shown", "in the admin")
        self.client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
        response = self.client.get("/admin/django_keyval/keyvalpair/", {"store": STORE})
        self.assertContains(response, ":1:shown")


class ConfigurationTests(TestCase):
    def test_location_is_required(self) -> None:
        for location in ("", None):
            with (
                self.subTest(location=location),
                self.assertRaisesMessage(ImproperlyConfigured, "KeyValCache needs LOCATION"),
            ):
                KeyValCache(location, {})  # type: ignore[arg-type]

    def test_unknown_options_are_refused(self) -> None:
        with self.assertRaisesMessage(ImproperlyConfigured, "unknown: MAX_ENTRY"):
            KeyValCache(STORE, {"OPTIONS": {"MAX_ENTRY": 10}})

    def test_database_must_be_an_alias(self) -> None:
        with self.assertRaisesMessage(ImproperlyConfigured, "'nowhere', which is not in DATABASES"):
            KeyValCache(STORE, {"OPTIONS": {"DATABASE": "nowhere"}})

    def test_cull_frequency_may_not_be_negative(self) -> None:
        with self.assertRaisesMessage(ImproperlyConfigured, "must be 0 or more, not -1"):
            KeyValCache(STORE, {"OPTIONS": {"CULL_FREQUENCY": -1}})


@override_settings(CACHES=keyval_caches(MAX_ENTRIES=10, CULL_FREQUENCY=2))
class CullingTests(TestCase):
    """``MAX_ENTRIES`` counts and culls this cache's store only, expired pairs first."""

    def setUp(self) -> None:
        self.cache = caches["default"]
        self.neighbour = KeyVal("tests.cache.neighbour")
        self.neighbour.set_many({f"n{i}": i for i in range(30)})
        self.neighbour.set_many({f"expired{i}": i for i in range(5)}, timeout=0)

    def assert_neighbour_untouched(self) -> None:
        self.assertEqual(KeyValPair.objects.filter(store="tests.cache.neighbour").count(), 35)

    @override_settings(CACHES=keyval_caches(MAX_ENTRIES=None))
    @vendor_classes_only
    def test_max_entries_none_never_counts(self) -> None:
        cache = caches["default"]
        with self.assertNumQueries(1):
            cache.set("k", 1)
        with self.assertNumQueries(1):
            cache.set_many({f"k{i}": i for i in range(20)})
        self.assertEqual(len(stored_keys()), 21)

    def test_the_store_stays_at_max_entries(self) -> None:
        for i in range(25):
            self.cache.set(f"k{i:02}", i)
            self.assertLessEqual(len(stored_keys()), 10)
        self.assertTrue(self.cache.has_key("k24"))  # the last write stays
        self.assert_neighbour_untouched()

    def test_expired_pairs_go_first(self) -> None:
        self.cache.set_many({f"k{i}": i for i in range(8)})
        self.cache.set_many({f"short{i}": i for i in range(2)}, 1)
        KeyValPair.objects.filter(store=STORE, key__contains="short").update(
            expires_at=KeyValPair.objects.get(store=STORE, key=":1:k0").updated_at
        )
        self.cache.set("new", 1)  # 11 rows > 10: the 2 expired ones go, which is enough
        self.assertEqual(stored_keys(), sorted([*(f":1:k{i}" for i in range(8)), ":1:new"]))
        self.assert_neighbour_untouched()

    @override_settings(CACHES=keyval_caches(MAX_ENTRIES=5, CULL_FREQUENCY=0))
    def test_cull_frequency_zero_keeps_only_the_write(self) -> None:
        cache = caches["default"]
        cache.set_many({f"k{i}": i for i in range(5)})
        cache.set("sixth", 6)
        self.assertEqual(stored_keys(), [":1:sixth"])
        # More than MAX_ENTRIES at once: the pairs of the write all stay, no other.
        cache.set_many({f"m{i}": i for i in range(7)})
        self.assertEqual(stored_keys(), [f":1:m{i}" for i in range(7)])
        self.assert_neighbour_untouched()


@override_settings(CACHES=keyval_caches(MAX_ENTRIES=10, CULL_FREQUENCY=2))
class CountBudgetTests(TransactionTestCase):
    """New keys are counted only while the store may overflow; culling stays on time.

    Outside a transaction (as a cache is mostly used): a count inside one is
    believed only once it commits.
    """

    databases = {"default", "other"}

    def setUp(self) -> None:
        self.cache = caches["default"]
        self.cache.clear()  # this process knows nothing of the store's rows again

    def assert_at_most_max_entries(self) -> None:
        self.assertLessEqual(len(stored_keys()), 10)

    @vendor_classes_only
    def test_new_keys_are_counted_while_the_store_could_overflow(self) -> None:
        with self.assertNumQueries(2):  # the upsert, which says the key is new; the count
            self.cache.set("k0", 0)
        with self.assertNumQueries(1):  # an overwrite: no count
            self.cache.set("k0", 1)
        with self.assertNumQueries(1):  # add of a present key: nothing written, no count
            self.assertIs(self.cache.add("k0", 3), False)
        # 1 row of 10 counted: half the room left (4 keys) is added without a count.
        for i in range(1, 5):
            with self.assertNumQueries(1):
                self.cache.set(f"k{i}", i)
        with self.assertNumQueries(2):  # 6 rows: half of the 4 left may follow uncounted
            self.cache.set("k5", 5)
        for i in range(6, 8):
            with self.assertNumQueries(1):
                self.cache.set(f"k{i}", i)
        for i in range(8, 11):  # 9 rows, then 10: every new key is counted
            with self.assertNumQueries(2 if i < 10 else 4):  # 11 > 10: delete expired, cull
                self.cache.set(f"k{i}", i)
        self.assertEqual(len(stored_keys()), 6)  # 11 rows, 5 culled; the write stays
        self.assertTrue(self.cache.has_key("k10"))

    def test_keys_added_by_another_process_are_found_within_half_the_room(self) -> None:
        self.cache.clear()
        self.cache.set("k0", 0)  # counted: 1 row, room for 9
        other = KeyVal(STORE)  # what another process would write: unseen by this one
        other.set_many({f"other{i}": i for i in range(30)})
        for i in range(1, 5):  # within half the room: not counted
            self.cache.set(f"k{i}", i)
        self.assertEqual(len(stored_keys()), 35)
        self.cache.set("k5", 5)  # over half the room: counted (36 rows), half of them culled
        self.assertEqual(len(stored_keys()), 18)
        self.cache.set("k6", 6)  # 19 rows: still over, culled again
        self.assertLessEqual(len(stored_keys()), 10)
        self.assertTrue(self.cache.has_key("k6"))

    @override_settings(CACHES=keyval_caches(MAX_ENTRIES=100))
    def test_keys_added_while_another_thread_counts_stay_noted(self) -> None:
        cache = caches["default"]
        cache.clear()
        cache.set_many({f"k{i}": i for i in range(50)})  # counted: 50 rows, room for 50
        counted, resume = threading.Event(), threading.Event()
        real = KeyVal.trim_and_count

        def slow_in_the_thread(store: KeyVal, *args: Any) -> tuple[int, int]:
            result = real(store, *args)
            if threading.current_thread() is thread:
                counted.set()  # the count is done; its figure not yet recorded
                resume.wait(10)
            return result

        def add_in_a_thread() -> None:
            try:
                for i in range(26):  # the 26th new key is over half the room: a count
                    caches["default"].set(f"t{i}", i)
            finally:
                connections.close_all()

        with mock.patch.object(KeyVal, "trim_and_count", slow_in_the_thread):
            thread = threading.Thread(target=add_in_a_thread)
            thread.start()
            self.assertTrue(counted.wait(10))
            for i in range(20):  # written after that count, seen by counts of their own
                cache.set(f"m{i}", i)
            resume.set()
            thread.join(10)
        self.assertEqual(len(stored_keys()), 96)
        # The thread's older figure (76 rows) must not stand for the 96 rows there are.
        for i in range(20):
            cache.set(f"n{i}", i)
            self.assertLessEqual(len(stored_keys()), 100)

    def test_a_count_rolled_back_is_not_believed(self) -> None:
        self.cache.set_many({f"k{i}": i for i in range(10)})  # counted: 10 rows, full
        with self.assertRaises(RuntimeError), transaction.atomic():
            self.cache.set("undone", 1)  # counted and culled, then all rolled back
            raise RuntimeError
        self.assertEqual(len(stored_keys()), 10)
        for i in range(6):
            self.cache.set(f"new{i}", i)
            self.assert_at_most_max_entries()

    @override_settings(CACHES=keyval_caches(MAX_ENTRIES=20))
    def test_each_database_a_router_picks_is_counted_for_itself(self) -> None:
        class Router:
            alias = "default"

            def db_for_write(self, model: Any, **hints: Any) -> str:
                return Router.alias

            db_for_read = db_for_write

        cache = caches["default"]
        saved = router.routers
        router.routers = [Router()]
        try:
            cache.set("k0", 0)  # counted on "default": 1 row, room for 19
            KeyVal(STORE, using="other").set_many({f"other{i}": i for i in range(19)})
            Router.alias = "other"  # the same store, on a database with 19 rows
            for i in range(1, 7):
                cache.set(f"k{i}", i)
                rows = KeyValPair.objects.using("other").filter(store=STORE).count()
                self.assertLessEqual(rows, 20)
        finally:
            router.routers = saved


@override_settings(CACHES=keyval_caches())
class LongKeyTests(TestCase):
    def setUp(self) -> None:
        self.cache = caches["default"]

    def test_keys_over_500_characters_are_digested(self) -> None:
        long_a, long_b = "a" * 600, "a" * 599 + "b"
        with self.assertWarns(CacheKeyWarning):  # memcached's limit, a warning only
            self.cache.set(long_a, "A")
        with self.assertWarns(CacheKeyWarning):
            self.cache.set(long_b, "B")
        with self.assertWarns(CacheKeyWarning):
            self.assertEqual(self.cache.get(long_a), "A")
        with self.assertWarns(CacheKeyWarning):
            self.assertEqual(self.cache.get_many([long_a, long_b]), {long_a: "A", long_b: "B"})
        keys = stored_keys()
        self.assertEqual(len(keys), 2)
        for key in keys:
            self.assertTrue(key.startswith(":1:" + "a" * 397 + "#sha256="))
            self.assertEqual(len(key), 400 + len("#sha256=") + 64)

    def test_stored_key(self) -> None:
        self.assertEqual(stored_key(":1:short"), ":1:short")
        self.assertEqual(stored_key("x" * 500), "x" * 500)
        digested = stored_key("x" * 501)
        self.assertEqual(digested, "x" * 400 + "#sha256=" + _sha256("x" * 501))
        self.assertEqual(stored_key("x" * 501), digested)  # deterministic

    def test_keys_the_store_cannot_hold_are_digested_too(self) -> None:
        for key in ("nul\x00inside", "lone \ud800 surrogate"):
            with self.subTest(key=key), self.assertWarns(CacheKeyWarning):
                self.cache.set(key, key)
                self.assertEqual(self.cache.get(key), key)
                self.assertIs(self.cache.delete(key), True)
        self.assertTrue(stored_key(":1:nul\x00inside").startswith(":1:nulinside#sha256="))

    def test_a_crafted_key_never_reaches_a_digested_keys_row(self) -> None:
        # The stored form of a long key (and of one with a NUL), passed as a
        # key of its own: it holds "#sha256=", so it is digested in turn.
        for key in ("L" * 600, "nul\x00inside"):
            with self.subTest(key=key[:10]):
                with self.assertWarns(CacheKeyWarning):
                    self.cache.set(key, "the real value")
                crafted = stored_key(self.cache.make_key(key))[len(":1:") :]
                self.assertIn("#sha256=", crafted)
                self.assertIsNone(self.cache.get(crafted))
                self.assertIs(self.cache.has_key(crafted), False)
                self.cache.set(crafted, "overwritten?")
                self.assertIs(self.cache.add(crafted, "added?"), False)
                self.assertIs(self.cache.delete(crafted), True)
                with self.assertWarns(CacheKeyWarning):
                    self.assertEqual(self.cache.get(key), "the real value")
        self.assertNotIn(stored_key(":1:a#sha256=b"), (":1:a#sha256=b",))


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


@override_settings(CACHES=keyval_caches())
class ForgedValueTests(TestCase):
    """A pickle not signed with ``SECRET_KEY`` is never unpickled: it reads as a miss."""

    def setUp(self) -> None:
        self.cache = caches["default"]
        self.cache.set_many({"forged": "original", "fine": "value"})
        self.marker = f"/tmp/keyval-cache-forged-{id(self)}"
        write_raw(STORE, ":1:forged", pickle.dumps(CreatesFile(self.marker)))

    def assert_not_unpickled(self) -> None:
        import os

        self.assertFalse(os.path.exists(self.marker))

    def test_get_is_a_miss_logged_and_the_row_deleted(self) -> None:
        with self.assertLogs("django_keyval.cache", logging.WARNING) as logs:
            self.assertEqual(self.cache.get("forged", "default"), "default")
        self.assertIn("':1:forged'", logs.output[0])
        self.assertIn("signature", logs.output[0])
        self.assert_not_unpickled()
        self.assertEqual(stored_keys(), [":1:fine"])
        # A miss like any other: get_or_set fills it again.
        self.assertEqual(self.cache.get_or_set("forged", "fresh"), "fresh")

    def test_get_many_drops_it_and_keeps_the_others(self) -> None:
        with self.assertLogs("django_keyval.cache", logging.WARNING):
            self.assertEqual(self.cache.get_many(["forged", "fine"]), {"fine": "value"})
        self.assert_not_unpickled()
        self.assertEqual(stored_keys(), [":1:fine"])

    def test_incr_refuses_it_without_unpickling(self) -> None:
        with self.assertRaises(TypeError):
            self.cache.incr("forged")
        self.assert_not_unpickled()


@override_settings(
    CACHES=keyval_caches(),
    ROOT_URLCONF="tests.test_cache",
    SESSION_ENGINE="django.contrib.sessions.backends.cache",
)
class DjangoFeaturesTests(TestCase):
    """Sessions and ``cache_page`` on the cache."""

    def test_cache_page(self) -> None:
        calls["cached"] = 0
        first = self.client.get("/cached/")
        second = self.client.get("/cached/")
        self.assertEqual(first.content, b"rendered 1 time(s)")
        self.assertEqual(second.content, b"rendered 1 time(s)")
        self.assertEqual(calls["cached"], 1)
        self.assertTrue(any("views.decorators.cache.cache_page" in key for key in stored_keys()))
        caches["default"].clear()
        self.assertEqual(self.client.get("/cached/").content, b"rendered 2 time(s)")

    def test_cache_sessions(self) -> None:
        self.assertEqual(self.client.get("/session/").content, b"1")
        self.assertEqual(self.client.get("/session/").content, b"2")
        session_key = self.client.cookies["sessionid"].value
        self.assertEqual(CacheSessionStore(session_key)["visits"], 2)
        self.assertIn(f":1:django.contrib.sessions.cache{session_key}", stored_keys())
        self.assertFalse(Session.objects.exists())

    @override_settings(SESSION_ENGINE="django.contrib.sessions.backends.cached_db")
    def test_cached_db_sessions(self) -> None:
        self.assertEqual(self.client.get("/session/").content, b"1")
        self.assertEqual(self.client.get("/session/").content, b"2")
        session_key = self.client.cookies["sessionid"].value
        self.assertIn(f":1:django.contrib.sessions.cached_db{session_key}", stored_keys())
        self.assertTrue(Session.objects.filter(session_key=session_key).exists())
        # Read from the cache; after clearing it, from the database again.
        caches["default"].clear()
        self.assertEqual(CachedDBSessionStore(session_key)["visits"], 2)
        self.assertEqual(self.client.get("/session/").content, b"3")


class DatabaseTests(TestCase):
    databases = {"default", "other"}

    @override_settings(CACHES=keyval_caches(DATABASE="other"))
    def test_database_option(self) -> None:
        caches["default"].set("k", "elsewhere")
        self.assertFalse(KeyValPair.objects.using("default").filter(store=STORE).exists())
        self.assertEqual(KeyVal(STORE, using="other").get(":1:k"), "elsewhere")
        self.assertEqual(caches["default"].get("k"), "elsewhere")

    @override_settings(CACHES=keyval_caches())
    def test_routers_decide_without_the_option(self) -> None:
        class OtherRouter:
            def db_for_read(self, model: Any, **hints: Any) -> str:
                return "other"

            def db_for_write(self, model: Any, **hints: Any) -> str:
                return "other"

        saved = router.routers
        router.routers = [OtherRouter()]
        try:
            cache = caches["default"]
            cache.set("k", "routed")
            self.assertEqual(cache.get("k"), "routed")
            self.assertEqual(cache.incr_version("k"), 2)
        finally:
            router.routers = saved
        self.assertFalse(KeyValPair.objects.using("default").filter(store=STORE).exists())
        self.assertEqual(KeyVal(STORE, using="other").get(":2:k"), "routed")


@override_settings(CACHES=keyval_caches())
class AsyncTests(TestCase):
    async def test_async_methods(self) -> None:
        cache = caches["default"]
        await cache.aset("n", 1)
        self.assertEqual(await cache.aincr("n", 4), 5)
        self.assertEqual(await cache.adecr("n"), 4)
        self.assertIs(await cache.ahas_key("n"), True)
        await cache.aset_many({"a": 1, "b": 2})
        self.assertEqual(await cache.aget_many(["a", "b", "c"]), {"a": 1, "b": 2})
        await cache.adelete_many(["a", "b"])
        self.assertEqual(await cache.aget_many(["a", "b"]), {})
        self.assertEqual(await cache.aget_or_set("c", 3), 3)


PROCESSES = 8


class ConcurrencyTests(TransactionTestCase):
    """8 processes, each with its own connection, on one cache key at once."""

    available_apps = ["django_keyval"]

    def test_incr_loses_no_update(self) -> None:
        cache = KeyValCache(STORE, {"TIMEOUT": None})
        cache.set("hits", 0)
        results = run_in_processes(
            "cache_incr", connection.settings_dict["NAME"], [(STORE, "hits", 50)] * PROCESSES
        )
        self.assertEqual(cache.get("hits"), PROCESSES * 50)
        # Every result was returned to exactly one caller.
        every = sorted(value for values in results for value in values)
        self.assertEqual(every, list(range(1, PROCESSES * 50 + 1)))

    def test_add_has_one_winner(self) -> None:
        results = run_in_processes(
            "cache_add", connection.settings_dict["NAME"], [(STORE, "lock")] * PROCESSES
        )
        self.assertEqual(results.count(True), 1)
        winner = results.index(True)
        self.assertEqual(KeyValCache(STORE, {}).get("lock"), winner)
