"""The admin of key-value pairs, through Django's test client."""

from __future__ import annotations

import datetime
import os
import pickle
import re
import tempfile
import time
import tracemalloc
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

from django.contrib.auth.models import Permission, User
from django.db import connection, transaction
from django.db.models import F
from django.test import TestCase, TransactionTestCase, override_settings
from django.urls import reverse
from django.utils import formats, timezone

from django_keyval.display import PREVIEW_BYTES, DecodedValue, decoded
from django_keyval.exceptions import PairChangedError
from django_keyval.forms import KeyValPairForm
from django_keyval.models import KeyVal, KeyValPair
from tests.helpers import CreatesFile, Point, insert_raw
from tests.workers import start_process

CHANGELIST = reverse("admin:django_keyval_keyvalpair_changelist")
ADD = reverse("admin:django_keyval_keyvalpair_add")


def change_url(pair: KeyValPair) -> str:
    return reverse("admin:django_keyval_keyvalpair_change", args=[pair.pk])


def pair(store: str, key: str) -> KeyValPair:
    row: KeyValPair = KeyValPair.objects.get(store=store, key=key)
    return row


def raw_bytes(row: KeyValPair) -> bytes:
    assert row.value is not None
    return bytes(row.value)


class BrokenRepr:
    """A value whose repr() raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def split_datetime(when: datetime.datetime | None) -> dict[str, str]:
    """The two inputs of the admin's date and time widget."""
    if when is None:
        return {"expires_at_0": "", "expires_at_1": ""}
    when = timezone.localtime(when)
    return {"expires_at_0": when.strftime("%Y-%m-%d"), "expires_at_1": when.strftime("%H:%M:%S")}


class FormFields(HTMLParser):
    """The names and values a browser would send for the pair's form."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] = {}
        self.in_form = False
        self.textarea: str | None = None
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        name = attributes.get("name") or ""
        if tag == "form":
            self.in_form = attributes.get("id") == "keyvalpair_form"
        elif not self.in_form or "disabled" in attributes:
            return
        elif tag == "input" and name and attributes.get("type") not in ("submit", "button"):
            if attributes.get("type") == "checkbox":
                if "checked" in attributes:
                    self.data[name] = attributes.get("value") or "on"
            else:
                self.data[name] = attributes.get("value") or ""
        elif tag == "textarea":
            self.textarea = name
            self.data[name] = ""
        elif tag == "select":
            self.select = name
        elif tag == "option" and self.select and "selected" in attributes:
            self.data[self.select] = attributes.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        elif tag == "textarea":
            self.textarea = None
        elif tag == "select":
            self.select = None

    def handle_data(self, data: str) -> None:
        if self.textarea:
            # Browsers drop the line break that follows <textarea>.
            text = self.data[self.textarea] + data
            self.data[self.textarea] = text[1:] if text.startswith("\n") else text


class AdminTestCase(TestCase):
    superuser: User

    @classmethod
    def setUpTestData(cls) -> None:
        cls.superuser = User.objects.create_superuser("admin", "admin@example.com", "password")

    def setUp(self) -> None:
        self.client.force_login(self.superuser)

    def staff(self, username: str, *codenames: str) -> User:
        user: User = User.objects.create_user(username, password="password", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="django_keyval", codename__in=codenames
            )
        )
        return user

    def page_data(self, url: str) -> dict[str, Any]:
        """What a browser without scripts would send for the form of the page at ``url``."""
        response = self.client.get(url)
        self.assertEqual(response.status_code, 200)
        parser = FormFields()
        parser.feed(response.content.decode())
        return parser.data

    def post_page(self, url: str, **changes: Any) -> Any:
        """Open the page at ``url``, change some fields (``None``: untick), and save it."""
        data = self.page_data(url)
        for name, value in changes.items():
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
        return self.client.post(url, data)

    @staticmethod
    def admin_column(response: Any, row: KeyValPair, name: str) -> str:
        return str(getattr(response.context["cl"].model_admin, name)(row))

    def result_keys(self, response: Any) -> list[tuple[str, str]]:
        return [(row.store, row.key) for row in response.context["cl"].result_list]


class ChangeListTests(AdminTestCase):
    def test_values_are_shown_decoded_with_their_type(self) -> None:
        kv = KeyVal("app.settings")
        kv.set("greeting", {"text": "hi"})
        kv.set("count", 42)
        kv.set("tags", {"a"})
        kv.set("when", datetime.date(2024, 5, 6))
        kv.set("blob", b"\x00raw")
        kv.set("where", Point(1, 2))
        response = self.client.get(CHANGELIST)
        self.assertEqual(response.status_code, 200)
        for text in (
            "{&#x27;text&#x27;: &#x27;hi&#x27;}",
            '<td class="field-value_preview">42</td>',
            "{&#x27;a&#x27;}",
            "datetime.date(2024, 5, 6)",
            "b&#x27;\\x00raw&#x27;",
            "Point(1, 2)",
        ):
            self.assertContains(response, text)
        for type_name in ("dict", "int", "set", "date", "bytes", "Point"):
            self.assertContains(response, f'<td class="field-value_type_name">{type_name}</td>')
        self.assertContains(response, '<td class="field-expiry">Never</td>', count=6)
        # The signed pickle itself never reaches the page.
        self.assertNotContains(response, "\\x80")

    def test_long_values_are_cut_to_one_short_line(self) -> None:
        KeyVal("s").set("long", "x" * 500)
        KeyVal("s").set("lines", "one\ntwo")
        response = self.client.get(CHANGELIST)
        self.assertContains(response, "&#x27;" + "x" * 78 + "…")
        self.assertNotContains(response, "x" * 80)
        self.assertContains(response, "&#x27;one\\ntwo&#x27;")

    def test_expiry_is_relative_with_the_exact_time_on_hover(self) -> None:
        kv = KeyVal("s")
        now = timezone.now()
        for key, offset in (
            ("soon", datetime.timedelta(minutes=10, seconds=30)),
            ("later", datetime.timedelta(hours=5, minutes=1)),
            ("days", datetime.timedelta(days=3, minutes=1)),
            ("gone", -datetime.timedelta(hours=2, minutes=1)),
            ("just", -datetime.timedelta(seconds=45)),
        ):
            kv.set(key, 1)
            KeyValPair.objects.filter(key=key).update(expires_at=now + offset)
        kv.set("durable", 1)
        response = self.client.get(CHANGELIST)
        cells = {
            row.key: self.admin_column(response, row, "expiry")
            for row in response.context["cl"].result_list
        }
        exact = formats.localize(
            timezone.localtime(now + datetime.timedelta(minutes=10, seconds=30))
        )
        self.assertEqual(cells["soon"], f'<span title="{exact}">in 10\u00a0min</span>')
        self.assertIn(">in 5\u00a0h</span>", cells["later"])
        self.assertIn(">in 3\u00a0days</span>", cells["days"])
        self.assertIn('class="keyval-expired"', cells["gone"])
        self.assertIn(">expired 2\u00a0h ago</span>", cells["gone"])
        self.assertIn(">expired 45\u00a0s ago</span>", cells["just"])
        self.assertEqual(cells["durable"], "Never")

    def test_column_labels_are_capitalised(self) -> None:
        KeyVal("s").set("k", 1)
        response = self.client.get(CHANGELIST)
        headers = re.findall(
            r'<div class="text">(?:<a [^>]*>|<span>)([^<]*)<', response.content.decode()
        )
        self.assertEqual(
            headers[1:], ["Store", "Key", "Value", "Type", "Expires", "Version", "Updated at"]
        )
        for choice in ("Expires later", "Never expires", "Expired"):
            self.assertContains(response, f"{choice}</a>")

    def test_ordered_by_store_then_key(self) -> None:
        KeyVal("b").set("a", 1)
        KeyVal("a").set("z", 1)
        KeyVal("a").set("B", 1)
        KeyVal("a").set("b", 1)
        response = self.client.get(CHANGELIST)
        self.assertEqual(
            self.result_keys(response), [("a", "B"), ("a", "b"), ("a", "z"), ("b", "a")]
        )

    def test_filter_by_store(self) -> None:
        KeyVal("alpha").set("one", 1)
        KeyVal("alpha").set("two", 2)
        KeyVal("beta").set("one", 3)
        response = self.client.get(CHANGELIST)
        self.assertContains(response, "?store=alpha")
        self.assertContains(response, "?store=beta")
        response = self.client.get(CHANGELIST, {"store": "beta"})
        self.assertEqual(self.result_keys(response), [("beta", "one")])

    def test_filter_by_expiry(self) -> None:
        kv = KeyVal("s")
        kv.set("durable", 1)
        kv.set("live", 2, timeout=3600)
        kv.set("expired", 3, timeout=3600)
        KeyValPair.objects.filter(key="expired").update(expires_at=timezone.now())
        for state in ("durable", "live", "expired"):
            with self.subTest(state):
                response = self.client.get(CHANGELIST, {"expiry": state})
                self.assertEqual(self.result_keys(response), [("s", state)])
        response = self.client.get(CHANGELIST, {"expiry": "live", "_facets": "1"})
        self.assertContains(response, "Never expires (1)")

    def test_search_by_key_and_store(self) -> None:
        KeyVal("users").set("greeting", 1)
        KeyVal("users").set("farewell", 2)
        KeyVal("greetings.archive").set("old", 3)
        response = self.client.get(CHANGELIST, {"q": "greet"})
        self.assertEqual(
            self.result_keys(response), [("greetings.archive", "old"), ("users", "greeting")]
        )

    def test_search_ignores_case_and_takes_each_word(self) -> None:
        # Keys tell case (a binary collation), which must not make the search do so.
        KeyVal("users").set("Greeting", 1)
        KeyVal("Users").set("farewell_100%", 2)
        KeyVal("other").set("greeting two", 3)
        for term, expected in (
            ("GREET", [("other", "greeting two"), ("users", "Greeting")]),
            ("greet users", [("users", "Greeting")]),
            ('"greeting two"', [("other", "greeting two")]),
            ("USERS 100%", [("Users", "farewell_100%")]),
            ("_1", [("Users", "farewell_100%")]),
            ("%", [("Users", "farewell_100%")]),
            ("nothing", []),
        ):
            with self.subTest(term=term):
                response = self.client.get(CHANGELIST, {"q": term})
                self.assertEqual(self.result_keys(response), expected)

    def test_search_folds_the_case_of_every_letter(self) -> None:
        # SQLite's own LOWER() folds ASCII letters only.
        KeyVal("Ünïcode").set("kéy", 1)
        KeyVal("plain").set("ΣΟΦΙΑ", 2)
        KeyVal("plain").set("key", 3)
        for term, expected in (
            ("KÉY", [("Ünïcode", "kéy")]),
            ("üNÏ", [("Ünïcode", "kéy")]),
            ("σοφ", [("plain", "ΣΟΦΙΑ")]),
            ("KEY", [("plain", "key")]),
        ):
            with self.subTest(term=term):
                response = self.client.get(CHANGELIST, {"q": term})
                self.assertEqual(self.result_keys(response), expected)

    def test_paginated(self) -> None:
        KeyVal("s").set_many({f"k{number:03}": number for number in range(105)})
        response = self.client.get(CHANGELIST)
        self.assertEqual(response.context["cl"].result_count, 105)
        self.assertEqual(len(response.context["cl"].result_list), 100)
        response = self.client.get(CHANGELIST, {"p": "2"})
        self.assertEqual(self.result_keys(response), [("s", f"k{n}") for n in range(100, 105)])

    def test_queries_do_not_grow_with_rows(self) -> None:
        KeyVal("s").set_many({f"k{number}": [number] for number in range(3)})
        self.client.get(CHANGELIST)  # warm the session and content-type caches
        with self.assertNumQueries(6) as small:
            self.client.get(CHANGELIST)
        KeyVal("t").set_many({f"k{number}": {"n": number} for number in range(60)})
        with self.assertNumQueries(len(small.captured_queries)):
            self.client.get(CHANGELIST)

    def test_large_values_are_previewed_from_their_first_bytes(self) -> None:
        big = PREVIEW_BYTES + 10
        KeyVal("s").set("text", "é" + "a" * big)
        KeyVal("s").set("blob", b"\x00" * big)
        KeyVal("s").set("doc", {"items": ["x" * big]})
        KeyVal("s").set("point", Point(1, 2 ** (8 * big)))
        KeyVal("j", serializer="json").set("doc", [1.5] * (big // 3))
        response = self.client.get(CHANGELIST)
        cells = {
            (row.store, row.key): (
                self.admin_column(response, row, "value_preview"),
                self.admin_column(response, row, "value_type_name"),
            )
            for row in response.context["cl"].result_list
        }
        self.assertEqual(cells["s", "text"], ("'é" + "a" * 77 + "…", "str"))
        self.assertEqual(cells["s", "blob"][1], "bytes")
        self.assertTrue(cells["s", "blob"][0].startswith("b'\\x00\\x00"))
        self.assertEqual(cells["s", "doc"][1], "dict")
        self.assertIn("open the pair to see it", cells["s", "doc"][0])
        self.assertEqual(cells["s", "point"][1], "Point")
        self.assertEqual(cells["j", "doc"], (("[" + "1.5," * 40)[:79] + "…", "list"))
        # The change page still shows and edits the whole value.
        response = self.client.get(change_url(pair("s", "text")))
        self.assertEqual(len(response.context["adminform"].form["value_str"].value()), big + 1)

    def test_the_list_never_loads_whole_values(self) -> None:
        # Ten values of 8 MiB: the page holds a bounded prefix of each.
        size = 8 * 1024 * 1024
        kv = KeyVal("big")
        for number in range(10):
            kv.set(f"text{number}", chr(ord("a") + number) * size)
        kv.set("pickled", [b"x" * (size - 100)])
        self.client.get(CHANGELIST)  # warm the caches
        tracemalloc.start()
        try:
            response = self.client.get(CHANGELIST)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertEqual(len(response.context["cl"].result_list), 11)
        self.assertContains(response, "&#x27;jjjjjjj")
        self.assertLess(peak, size // 2, f"peak {peak / 2**20:.1f} MiB")

    @override_settings(KEYVAL_SERIALIZER="tests.helpers.ReversedJSONSerializer")
    def test_values_of_the_configured_custom_serializer_are_decoded(self) -> None:
        KeyVal("s").set("custom", [1, 2])
        self.assertEqual(pair("s", "custom").serializer, "reversed-json")
        response = self.client.get(CHANGELIST)
        self.assertContains(response, '<td class="field-value_preview">[1, 2]</td>')

    def test_undecodable_values_are_marked(self) -> None:
        insert_raw("s", "bad-json", b"{nope", "json")
        insert_raw("s", "unknown", b"data", "mystery-serializer")
        response = self.client.get(CHANGELIST)
        self.assertContains(
            response, '<td class="field-value_preview">⚠ cannot decode</td>', count=2
        )
        self.assertContains(response, '<td class="field-value_type_name">?</td>', count=2)

    def test_a_value_whose_repr_fails(self) -> None:
        KeyVal("s").set("broken", BrokenRepr())
        response = self.client.get(CHANGELIST)
        self.assertContains(response, "&lt;BrokenRepr: repr() failed: RuntimeError&gt;")
        response = self.client.get(change_url(pair("s", "broken")))
        self.assertContains(response, "&lt;BrokenRepr: repr() failed: RuntimeError: no repr&gt;")


class TamperedPickleTests(AdminTestCase):
    """A pickle written into the table by someone else is shown, never loaded."""

    def setUp(self) -> None:
        super().setUp()
        directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, directory)
        self.path = os.path.join(directory, "pwned")
        payload = pickle.dumps(CreatesFile(self.path))
        self.row = insert_raw("s", "evil", b"\x00" * 32 + payload, "pickle")

    def test_the_payload_would_create_the_file_if_unpickled(self) -> None:
        # Proves that the tests below would notice an unpickling.
        pickle.loads(raw_bytes(self.row)[32:]).close()
        self.assertTrue(os.path.exists(self.path))
        os.remove(self.path)

    def test_list_and_change_pages_render_without_unpickling(self) -> None:
        response = self.client.get(CHANGELIST)
        self.assertContains(response, '<td class="field-value_preview">⚠ signature mismatch</td>')
        response = self.client.get(change_url(self.row))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "⚠ signature mismatch: the value of key &#x27;evil&#x27;")
        self.assertContains(response, "it was not unpickled")
        self.assertEqual(response.context["adminform"].form["value_type"].value(), "")
        self.assertContains(response, "This value cannot be decoded, so it cannot be edited.")
        self.client.get(reverse("admin:django_keyval_keyvalpair_history", args=[self.row.pk]))
        self.client.get(reverse("admin:django_keyval_keyvalpair_delete", args=[self.row.pk]))
        self.assertFalse(os.path.exists(self.path))

    def test_saving_the_expiry_keeps_the_bytes(self) -> None:
        expires = (timezone.now() + datetime.timedelta(days=2)).replace(microsecond=0)
        response = self.post_page(change_url(self.row), **split_datetime(expires))
        self.assertRedirects(response, CHANGELIST)
        stored = pair("s", "evil")
        self.assertEqual(raw_bytes(stored), raw_bytes(self.row))
        self.assertEqual(stored.serializer, "pickle")
        self.assertEqual(stored.expires_at, expires)
        self.assertFalse(os.path.exists(self.path))

    def test_html_in_the_key_is_escaped(self) -> None:
        row = insert_raw("s", "<b>bold</b>", b"\x00" * 40, "pickle")
        response = self.client.get(change_url(row))
        self.assertContains(response, "&lt;b&gt;bold&lt;/b&gt;")
        self.assertNotContains(response, "<b>bold</b>")
        response = self.client.get(CHANGELIST)
        self.assertNotContains(response, "<b>bold</b>")

    def test_deleting_it(self) -> None:
        url = reverse("admin:django_keyval_keyvalpair_delete", args=[self.row.pk])
        response = self.client.post(url, {"post": "yes"})
        self.assertRedirects(response, CHANGELIST)
        self.assertFalse(KeyValPair.objects.exists())
        self.assertFalse(os.path.exists(self.path))


class ChangeFormTests(AdminTestCase):
    def test_each_type_gets_its_own_field(self) -> None:
        kv = KeyVal("s")
        values = {
            "text": ("hello", "str", 'type="text"', 'value="hello"'),
            "lines": ("one\ntwo", "str", "<textarea", "one\ntwo</textarea>"),
            "count": (42, "int", 'type="number"', 'value="42"'),
            "ratio": (0.25, "float", 'step="any"', 'value="0.25"'),
            "on": (True, "bool", 'type="checkbox"', "checked"),
            "doc": ({"a": [1, None]}, "json", "<textarea", "&quot;a&quot;: ["),
            "day": (datetime.date(2024, 5, 6), "date", 'class="vDateField"', 'value="2024-05-06"'),
            "at": (
                datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
                "datetime",
                'class="vTimeField"',
                'value="07:08:09"',
            ),
            "price": (Decimal("9.95"), "decimal", 'type="number"', 'value="9.95"'),
        }
        for key, (value, *_rest) in values.items():
            kv.set(key, value)
        for key, (_value, kind, widget, shown) in values.items():
            with self.subTest(key):
                response = self.client.get(change_url(pair("s", key)))
                form = response.context["adminform"].form
                self.assertEqual(form["value_type"].value(), kind)
                field_html = str(form[f"value_{kind}"])
                self.assertIn(widget, field_html)
                self.assertIn(shown, field_html)
                # No read-only rendering, and no empty box: the field shows the value.
                self.assertNotContains(response, '<pre class="keyval-value"')

    def test_typing_text_for_a_string_just_works(self) -> None:
        KeyVal("s").set("greeting", "hi")
        url = change_url(pair("s", "greeting"))
        response = self.post_page(url, value_str="hello")
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("s").get("greeting"), "hello")
        self.post_page(url, value_str="  spaces kept  ")
        self.assertEqual(KeyVal("s").get("greeting"), "  spaces kept  ")
        self.post_page(url, value_str="")
        self.assertEqual(KeyVal("s").get("greeting"), "")

    def test_saving_each_type(self) -> None:
        kv = KeyVal("s")
        for key, initial, changes, expected in (
            ("count", 1, {"value_int": "7"}, 7),
            ("ratio", 0.5, {"value_float": "1e-7"}, 1e-7),
            ("on", True, {"value_bool": None}, False),
            ("off", False, {"value_bool": "on"}, True),
            (
                "doc",
                {"a": 1},
                {"value_json": '{"new": [1, 2, {"x": null}]}'},
                {"new": [1, 2, {"x": None}]},
            ),
            (
                "day",
                datetime.date(2024, 1, 1),
                {"value_date": "2025-02-03"},
                datetime.date(2025, 2, 3),
            ),
            ("t", datetime.time(1, 2), {"value_time": "13:14:15"}, datetime.time(13, 14, 15)),
            ("price", Decimal("1.5"), {"value_decimal": "2.25"}, Decimal("2.25")),
            (
                "at",
                datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
                {"value_datetime_0": "2025-02-03", "value_datetime_1": "04:05:06"},
                datetime.datetime(2025, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
            ),
            (
                "naive",
                datetime.datetime(2024, 1, 1),
                {"value_datetime_0": "2025-02-03", "value_datetime_1": "04:05:06"},
                datetime.datetime(2025, 2, 3, 4, 5, 6),
            ),
        ):
            with self.subTest(key):
                kv.set(key, initial)
                response = self.post_page(change_url(pair("s", key)), **changes)
                self.assertRedirects(response, CHANGELIST)
                stored = kv.get(key)
                self.assertEqual(stored, expected)
                self.assertIs(type(stored), type(expected))
                self.assertEqual(pair("s", key).version, 2)
        self.assertEqual(kv.incr("count"), 8)  # still in the integer column

    def test_bad_input_is_a_form_error_and_keeps_the_value(self) -> None:
        kv = KeyVal("s")
        kv.set("count", 5)
        kv.set("ratio", 0.5)
        kv.set("day", datetime.date(2024, 1, 1))
        for key, changes, message in (
            ("count", {"value_int": "hello"}, "Enter a whole number."),
            ("count", {"value_int": ""}, "This field is required."),
            ("ratio", {"value_float": "1e400"}, "Enter a number."),
            ("ratio", {"value_float": "nan"}, "Enter a number."),
            ("day", {"value_date": "32/13/2024"}, "Enter a valid date."),
        ):
            with self.subTest(changes):
                response = self.post_page(change_url(pair("s", key)), **changes)
                self.assertEqual(response.status_code, 200)
                self.assertContains(response, message)
        self.assertEqual((kv.get("count"), kv.get("ratio")), (5, 0.5))
        self.assertEqual(kv.get("day"), datetime.date(2024, 1, 1))

    def test_changing_the_type_needs_a_confirmation(self) -> None:
        KeyVal("s").set("counter", 5)
        url = change_url(pair("s", "counter"))
        response = self.post_page(url, value_type="str", value_str="five")
        self.assertContains(
            response,
            "The stored value is of type int, the new one of type str: code that expects "
            "a int would fail.",
        )
        self.assertContains(response, "Change the type")
        self.assertEqual(KeyVal("s").get("counter"), 5)
        # A JSON text of another type is a change of type as well.
        response = self.post_page(url, value_type="json", value_json='"five"')
        self.assertContains(response, "Tick “Change the type” to store it anyway.")
        response = self.post_page(url, value_type="str", value_str="five", confirm_type_change="on")
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("s").get("counter"), "five")
        # The same type through JSON needs no confirmation.
        KeyVal("s").set("n", 1)
        response = self.post_page(change_url(pair("s", "n")), value_type="json", value_json="2")
        self.assertRedirects(response, CHANGELIST)
        row = pair("s", "n")
        self.assertEqual((row.integer_value, row.serializer), (2, "int"))

    def test_an_integer_goes_to_the_integer_column(self) -> None:
        KeyVal("s").set("counter", "not yet")
        self.post_page(
            change_url(pair("s", "counter")),
            value_type="int",
            value_int="7",
            confirm_type_change="on",
        )
        row = pair("s", "counter")
        self.assertEqual((row.integer_value, row.serializer), (7, "int"))
        self.assertEqual(KeyVal("s").incr("counter"), 8)

    def test_a_json_store_keeps_writing_json(self) -> None:
        KeyVal("j", serializer="json").set("doc", [1])
        response = self.client.get(change_url(pair("j", "doc")))
        choices = dict(response.context["adminform"].form.fields["value_type"].choices)
        self.assertEqual(list(choices), ["str", "int", "float", "bool", "json"])
        self.post_page(change_url(pair("j", "doc")), value_json='["a"]')
        row = pair("j", "doc")
        self.assertEqual((raw_bytes(row), row.serializer), (b'["a"]', "json"))
        # A str of a JSON store given a list keeps to JSON, as the store's pairs do.
        KeyVal("j", serializer="json").set("name", "x")
        self.post_page(
            change_url(pair("j", "name")),
            value_type="json",
            value_json="[2]",
            confirm_type_change="on",
        )
        row = pair("j", "name")
        self.assertEqual((raw_bytes(row), row.serializer), (b"[2]", "json"))

    def test_empty_containers_and_null_are_values(self) -> None:
        KeyVal("s").set("v", [1])
        for text, expected in (("[]", []), ("{}", {}), ("null", None)):
            with self.subTest(text):
                self.post_page(
                    change_url(pair("s", "v")),
                    value_type="json",
                    value_json=text,
                    confirm_type_change="on",
                )
                self.assertEqual(KeyVal("s").get("v"), expected)
                self.assertIs(type(KeyVal("s").get("v")), type(expected))

    def test_invalid_json_is_a_form_error(self) -> None:
        KeyVal("s").set("doc", [1])
        url = change_url(pair("s", "doc"))
        for text, message in (
            (
                "{'single': 1}",
                "Enter valid JSON: Expecting property name enclosed in double quotes",
            ),
            ("[1, 2", "Enter valid JSON: Expecting &#x27;,&#x27; delimiter (line 1, column 6)."),
            ("NaN", "Enter valid JSON: NaN is not a number JSON allows."),
            ("[Infinity]", "Enter valid JSON: Infinity is not a number JSON allows."),
            ("[" * 100_000 + "]" * 100_000, "Enter valid JSON: it is nested too deeply."),
            ("", "This field is required."),
        ):
            with self.subTest(text[:10]):
                response = self.post_page(url, value_json=text)
                self.assertEqual(response.status_code, 200)
                self.assertContains(response, message)
        self.assertEqual(KeyVal("s").get("doc"), [1])

    @override_settings(KEYVAL_MAX_VALUE_SIZE=100)
    def test_a_value_over_the_size_limit_is_a_form_error(self) -> None:
        KeyVal("s").set("doc", "small")
        response = self.post_page(change_url(pair("s", "doc")), value_str="z" * 200)
        self.assertContains(response, "the limit (KEYVAL_MAX_VALUE_SIZE) is 100 bytes")
        self.assertEqual(KeyVal("s").get("doc"), "small")

    def test_setting_and_clearing_the_expiry(self) -> None:
        KeyVal("s").set("doc", {"a": 1})
        url = change_url(pair("s", "doc"))
        expires = (timezone.now() + datetime.timedelta(hours=5)).replace(microsecond=0)
        response = self.post_page(url, **split_datetime(expires))
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("s").expires_at("doc"), expires)
        self.assertEqual(KeyVal("s").get("doc"), {"a": 1})
        self.post_page(url, value_json='{"a": 2}')
        self.assertEqual(KeyVal("s").get("doc"), {"a": 2})
        self.assertEqual(KeyVal("s").expires_at("doc"), expires)
        self.post_page(url, **split_datetime(None))
        self.assertIsNone(KeyVal("s").expires_at("doc"))

    def test_an_expiry_in_the_past_is_refused(self) -> None:
        KeyVal("s").set("doc", 1)
        past = timezone.now() - datetime.timedelta(hours=1)
        response = self.post_page(change_url(pair("s", "doc")), **split_datetime(past))
        self.assertContains(response, "This time has passed; the pair would expire at once.")
        self.assertIsNone(KeyVal("s").expires_at("doc"))

    def test_an_expired_pair_can_be_given_a_new_value(self) -> None:
        KeyVal("s").set("doc", 1, timeout=60)
        past = (timezone.now() - datetime.timedelta(hours=1)).replace(microsecond=0)
        KeyValPair.objects.filter(key="doc").update(expires_at=past)
        response = self.post_page(
            change_url(pair("s", "doc")), value_int="2", **split_datetime(None)
        )
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("s").get("doc"), 2)

    def test_an_unchanged_page_rewrites_nothing(self) -> None:
        kv = KeyVal("s")
        kv.set("doc", {"a": [1, 2]})
        kv.set("text", "hi")
        kv.set("at", timezone.now())
        self.post_page(change_url(pair("s", "doc")), value_json='{\r\n "a":[1,2]}')
        for key in ("doc", "text", "at"):
            with self.subTest(key):
                response = self.post_page(change_url(pair("s", key)))
                self.assertRedirects(response, CHANGELIST)
                self.assertEqual(pair("s", key).version, 1)

    def test_store_and_key_are_fixed_once_the_pair_exists(self) -> None:
        KeyVal("s").set("doc", 1)
        response = self.post_page(
            change_url(pair("s", "doc")), store="other", key="other", value_int="2"
        )
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(list(KeyValPair.objects.values_list("store", "key")), [("s", "doc")])
        self.assertEqual(KeyVal("s").get("doc"), 2)

    def test_a_change_is_logged(self) -> None:
        KeyVal("s").set("doc", 1)
        self.post_page(change_url(pair("s", "doc")), value_int="2")
        response = self.client.get(
            reverse("admin:django_keyval_keyvalpair_history", args=[pair("s", "doc").pk])
        )
        self.assertContains(response, "Changed Value.")


class ConcurrentEditTests(AdminTestCase):
    """A save never overwrites what someone else wrote since the page was shown."""

    def test_an_expiry_only_save_keeps_a_value_changed_meanwhile(self) -> None:
        kv = KeyVal("s")
        kv.set("hits", 10)
        url = change_url(pair("s", "hits"))
        data = self.page_data(url)
        for _ in range(5):
            kv.incr("hits")
        expires = (timezone.now() + datetime.timedelta(days=1)).replace(microsecond=0)
        response = self.client.post(url, {**data, **split_datetime(expires)})
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(kv.get("hits"), 15)
        self.assertEqual(kv.expires_at("hits"), expires)

    def test_a_new_value_over_a_changed_one_is_refused(self) -> None:
        kv = KeyVal("s")
        kv.set("hits", 10)
        url = change_url(pair("s", "hits"))
        data = self.page_data(url)
        kv.incr("hits")
        response = self.client.post(url, {**data, "value_int": "100"})
        self.assertEqual(response.status_code, 200)
        self.assertContains(
            response,
            "This pair was changed since you opened it (version 1 then, version 2 now). "
            "Your value was not saved",
        )
        self.assertEqual(kv.get("hits"), 11)
        # Reloading the page shows the new value and version; saving then works.
        response = self.client.post(url, {**self.page_data(url), "value_int": "100"})
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(kv.get("hits"), 100)

    def test_a_new_expiry_over_a_changed_one_is_refused(self) -> None:
        kv = KeyVal("s")
        kv.set("doc", "x", timeout=3600)
        url = change_url(pair("s", "doc"))
        data = self.page_data(url)
        kv.touch("doc", 7200)
        mine = (timezone.now() + datetime.timedelta(days=3)).replace(microsecond=0)
        response = self.client.post(url, {**data, **split_datetime(mine)})
        self.assertContains(response, "The expiry of this pair was changed since you opened it.")
        self.assertNotEqual(kv.expires_at("doc"), mine)

    def test_a_pair_deleted_meanwhile(self) -> None:
        KeyVal("s").set("doc", "x")
        url = change_url(pair("s", "doc"))
        data = self.page_data(url)
        KeyVal("s").delete("doc")
        response = self.client.post(url, {**data, "value_str": "y"}, follow=True)
        self.assertFalse(KeyVal("s").exists("doc"))
        self.assertEqual(response.status_code, 200)

    def test_the_form_refuses_a_write_that_lost_the_race(self) -> None:
        # Another writer slips in between the form's check and its write.
        KeyVal("s").set("doc", "x")
        row = pair("s", "doc")
        data = self.page_data(change_url(row))
        form = KeyValPairForm(
            {**data, "store": "s", "key": "doc", "value_str": "mine"}, instance=row
        )
        self.assertTrue(form.is_valid(), form.errors)
        KeyVal("s").set("doc", "theirs")
        with self.assertRaises(PairChangedError):
            form.store_pair("default")
        self.assertEqual(KeyVal("s").get("doc"), "theirs")

    def test_the_admin_shows_a_lost_race_as_a_message(self) -> None:
        KeyVal("s").set("doc", "x")
        row = pair("s", "doc")
        url = change_url(row)
        data = self.page_data(url)
        original = KeyValPairForm.changes_since_opened
        calls = []

        def check_then_lose_the_race(form: KeyValPairForm) -> list[str]:
            problems = original(form)
            calls.append(problems)
            if len(calls) == 1:
                # Past the form's check, a real write by another connection's
                # code is impossible inside this transaction; change the version
                # as it would have.
                KeyValPair.objects.filter(pk=row.pk).update(version=F("version") + 1)
            return problems

        KeyValPairForm.changes_since_opened = check_then_lose_the_race  # type: ignore[method-assign,assignment]
        self.addCleanup(setattr, KeyValPairForm, "changes_since_opened", original)
        response = self.client.post(url, {**data, "value_str": "mine"}, follow=True)
        self.assertContains(response, "This pair was changed since you opened it")
        self.assertEqual(KeyVal("s").get("doc"), "x")
        self.assertEqual(pair("s", "doc").version, 1)  # the transaction was rolled back


class SaveLockTests(TransactionTestCase):
    """While a save is checked and written, the pair's row is held: another process waits."""

    def test_an_incr_in_another_process_waits_for_the_save(self) -> None:
        KeyVal("s").set("hits", 10)
        row = pair("s", "hits")
        page = {
            "store": "s",  # read-only in the admin, which leaves them out of its form
            "key": "hits",
            "value_type": "int",
            "initial-value_type": "int",
            "value_int": "100",
            "initial-value_int": "10",
            "opened_version": "1",
            "expires_at_0": "",
            "expires_at_1": "",
            "initial-expires_at_0": "",
            "initial-expires_at_1": "",
        }
        form = KeyValPairForm(page, instance=row)
        database = connection.settings_dict["NAME"]
        with transaction.atomic():  # as the admin's change view runs
            self.assertTrue(form.is_valid(), form.errors)  # checks, and locks the row
            process, events = start_process("increment_reporting", database, ("s", "hits"))
            self.addCleanup(process.join, 30)
            self.assertEqual(events.get(timeout=60), "started")
            time.sleep(1.0)  # the child's incr is now waiting for the row
            form.store_pair("default")
            committed = time.time()
        done, finished = events.get(timeout=60)
        self.assertEqual(done, "done")
        self.assertGreaterEqual(finished, committed)
        # The save was not refused, and the incr was not lost: it came after it.
        self.assertEqual(KeyVal("s").get("hits"), 101)
        self.assertEqual(pair("s", "hits").version, 3)


class ReadOnlyValueTests(AdminTestCase):
    """Values no field can edit are shown in full, with the reason, and can be replaced."""

    values = {
        "set": {1, 2},
        "tuple": (1, "a"),
        "instance": Point(3, 4),
        "int keys": {1: "one"},
        "nan": float("nan"),
        "bytes": b"abc",
    }

    def test_shown_with_the_reason_and_saving_keeps_the_value(self) -> None:
        kv = KeyVal("s")
        for key, value in self.values.items():
            kv.set(key, value)
        expires = (timezone.now() + datetime.timedelta(days=1)).replace(microsecond=0)
        for key, value in self.values.items():
            with self.subTest(key):
                url = change_url(pair("s", key))
                response = self.client.get(url)
                form = response.context["adminform"].form
                self.assertEqual(form["value_type"].value(), "")
                self.assertContains(response, '<pre class="keyval-value">')
                self.assertContains(
                    response, f"No field can edit a value of type {type(value).__name__} exactly"
                )
                response = self.post_page(url, **split_datetime(expires))
                self.assertRedirects(response, CHANGELIST)
                stored = kv.get(key)
                if key == "nan":
                    self.assertNotEqual(stored, stored)
                else:
                    self.assertEqual(stored, value)
                    self.assertIs(type(stored), type(value))
                self.assertEqual(kv.expires_at(key), expires)

    def test_an_int_too_long_for_text_is_shown_and_kept(self) -> None:
        huge = 7 * 10**5000  # more digits than Python turns into text by default
        KeyVal("s").set("huge", huge)
        KeyVal("s").set("in a list", [huge])
        for key in ("huge", "in a list"):
            with self.subTest(key):
                url = change_url(pair("s", key))
                response = self.client.get(url)
                # Python 3.10 says "(4300)", later ones "(4300 digits)".
                self.assertContains(response, "Exceeds the limit (4300")
                self.assertEqual(response.context["adminform"].form["value_type"].value(), "")
                response = self.post_page(url, value_int="1")
                self.assertRedirects(response, CHANGELIST)
        response = self.client.get(CHANGELIST)
        self.assertContains(response, "repr() failed: ValueError", count=2)
        self.assertEqual(
            KeyVal("s").get_many(["huge", "in a list"]), {"huge": huge, "in a list": [huge]}
        )

    def test_the_full_value_is_pretty_printed(self) -> None:
        KeyVal("s").set("set", set(range(40)))
        response = self.client.get(change_url(pair("s", "set")))
        self.assertContains(response, "{0,\n 1,\n 2,")

    def test_replacing_it_needs_a_type_and_a_confirmation(self) -> None:
        KeyVal("s").set("tuple", (1, 2))
        url = change_url(pair("s", "tuple"))
        response = self.post_page(url, value_type="json", value_json="[1, 2]")
        self.assertContains(response, "The stored value is of type tuple, the new one of type list")
        self.assertEqual(KeyVal("s").get("tuple"), (1, 2))
        response = self.post_page(
            url, value_type="json", value_json="[1, 2]", confirm_type_change="on"
        )
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("s").get("tuple"), [1, 2])

    def test_an_undecodable_pair_can_be_replaced(self) -> None:
        row = insert_raw("s", "broken", b"{nope", "json")
        url = change_url(row)
        response = self.client.get(url)
        self.assertContains(response, "⚠ cannot decode: cannot decode the value of key")
        self.assertContains(response, "This value cannot be decoded, so it cannot be edited.")
        response = self.post_page(
            url, value_type="str", value_str="fixed", confirm_type_change="on"
        )
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("s").get("broken"), "fixed")


class AddFormTests(AdminTestCase):
    def post_add(self, **data: str) -> Any:
        return self.client.post(ADD, {**split_datetime(None), "value_type": "str", **data})

    def test_adding_a_pair(self) -> None:
        response = self.client.get(ADD)
        self.assertEqual(response.context["adminform"].form["value_type"].value(), "str")
        expires = (timezone.now() + datetime.timedelta(days=3)).replace(microsecond=0)
        response = self.client.post(
            ADD,
            {
                "store": "app",
                "key": "greeting",
                "value_type": "json",
                "value_json": '{"text": "hi"}',
                **split_datetime(expires),
            },
        )
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("app").get("greeting"), {"text": "hi"})
        self.assertEqual(KeyVal("app").expires_at("greeting"), expires)
        self.post_add(store="app", key="counter", value_type="int", value_int="10")
        self.assertEqual(KeyVal("app").incr("counter"), 11)
        self.post_add(store="app", key="hello", value_str="hello")
        self.assertEqual(KeyVal("app").get("hello"), "hello")
        self.assertContains(self.client.get(CHANGELIST), "The key-value pair")

    def test_the_store_field_offers_the_stores_and_their_serializers(self) -> None:
        KeyVal("app").set("a", [1])
        KeyVal("j", serializer="json").set("a", [1])
        KeyVal("plain").set("n", 1)
        response = self.client.get(ADD)
        self.assertContains(response, 'list="keyval-store-names"')
        for store in ("app", "j", "plain"):
            self.assertContains(response, f'<option value="{store}">')
        self.assertContains(
            response,
            '<script id="keyval-store-serializers" type="application/json">'
            '{"app": "pickle", "j": "json", "plain": ""}</script>',
            html=True,
        )
        self.assertContains(response, "a new store's with KEYVAL_SERIALIZER (pickle).")

    def test_a_key_added_to_a_json_store_is_written_as_json(self) -> None:
        KeyVal("j", serializer="json").set("a", [1])
        self.post_add(store="j", key="b", value_type="json", value_json='{"x": 1}')
        row = pair("j", "b")
        self.assertEqual((raw_bytes(row), row.serializer), (b'{"x":1}', "json"))
        response = self.post_add(store="j", key="c", value_type="date", value_date="2024-01-02")
        self.assertContains(response, "with the json serializer")
        self.assertFalse(KeyVal("j").exists("c"))

    def test_a_new_store_is_warned_about(self) -> None:
        KeyVal("app").set("a", 1)
        response = self.post_add(store="app", key="b", value_str="x")
        response = self.client.get(CHANGELIST)
        self.assertNotContains(response, "had no pairs")
        response = self.client.post(
            ADD,
            {
                **split_datetime(None),
                "store": "fresh",
                "key": "k",
                "value_type": "str",
                "value_str": "x",
            },
            follow=True,
        )
        self.assertContains(response, "Store “fresh” had no pairs: this pair is its first.")

    def test_store_and_key_are_kept_as_typed(self) -> None:
        response = self.post_add(store="ws ", key=" padded ", value_str="x")
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("ws ").get(" padded "), "x")
        self.assertFalse(KeyVal("ws").exists("padded"))

    def test_add_then_continue_editing(self) -> None:
        response = self.post_add(store="app", key="k", value_str="x", _continue="1")
        self.assertRedirects(response, change_url(pair("app", "k")))

    def test_an_existing_pair_is_not_overwritten(self) -> None:
        KeyVal("app").set("greeting", "old")
        response = self.post_add(store="app", key="greeting", value_str="new")
        self.assertContains(response, "Key-value pair with this Store and Key already exists.")
        self.assertEqual(KeyVal("app").get("greeting"), "old")

    def test_a_pair_that_expired_is_overwritten(self) -> None:
        # The store API counts an expired pair as missing, so the add form does too.
        KeyVal("app").set("greeting", "old", timeout=3600)
        KeyValPair.objects.filter(key="greeting").update(
            expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
        self.assertFalse(KeyVal("app").exists("greeting"))
        response = self.post_add(store="app", key="greeting", value_str="new")
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("app").get("greeting"), "new")
        self.assertIsNone(KeyVal("app").expires_at("greeting"))
        self.assertEqual(KeyValPair.objects.count(), 1)

    def test_bad_store_names_and_keys_are_form_errors(self) -> None:
        for data, message in (
            ({"store": "s" * 201, "key": "k"}, "at most 200 characters (it has 201)"),
            ({"store": "s", "key": "k" * 501}, "at most 500 characters (it has 501)"),
            ({"store": "", "key": "k"}, "This field is required."),
            ({"store": "s\x00", "key": "k"}, "Null characters are not allowed."),
            ({"store": "s", "key": "k\x00"}, "Null characters are not allowed."),
        ):
            with self.subTest(data):
                response = self.post_add(value_str="1", **data)
                self.assertContains(response, message)
        self.assertFalse(KeyValPair.objects.exists())

    def test_lone_surrogates_are_form_errors(self) -> None:
        # A browser cannot send one, so the form is tested directly.
        for data, message in (
            ({"store": "s\ud800", "key": "k"}, "a store name may not contain a lone surrogate"),
            ({"store": "s", "key": "k\ud800"}, "a key may not contain a lone surrogate"),
        ):
            with self.subTest(data):
                form = KeyValPairForm({"value_type": "str", "value_str": "1", **data})
                self.assertFalse(form.is_valid())
                self.assertIn(message, str(form.errors))

    def test_invalid_json_is_a_form_error(self) -> None:
        response = self.post_add(store="s", key="k", value_type="json", value_json="{")
        self.assertContains(response, "Enter valid JSON")
        self.assertFalse(KeyValPair.objects.exists())

    def test_a_number_too_large_for_a_float_is_a_form_error(self) -> None:
        for value_type, field, text, message in [
            ("json", "value_json", "1e400", "Enter valid JSON: 1e400 is too large a number"),
            ("json", "value_json", "[1, -1e400]", "Enter valid JSON: -1e400 is too large a number"),
            ("float", "value_float", "1e400", "Enter a number."),
        ]:
            with self.subTest(text, value_type=value_type):
                response = self.post_add(store="s", key="k", value_type=value_type, **{field: text})
                self.assertContains(response, message)
        self.assertFalse(KeyValPair.objects.exists())

    def test_json_nested_too_deeply_to_read_back_is_a_form_error(self) -> None:
        deep = "[" * 600 + "]" * 600
        KeyVal("j", serializer="json").set("first", [1])
        response = self.post_add(store="j", key="k", value_type="json", value_json=deep)
        self.assertContains(response, "is nested more than 500 lists and dicts deep")
        self.assertFalse(KeyVal("j").exists("k"))

    def test_an_integer_with_too_many_digits(self) -> None:
        response = self.post_add(store="s", key="k", value_type="json", value_json="9" * 5000)
        self.assertContains(response, "Enter valid JSON: Exceeds the limit")
        response = self.post_add(store="s", key="k", value_type="int", value_int="9" * 5000)
        self.assertContains(response, "Enter a whole number.")
        self.assertFalse(KeyValPair.objects.exists())


class ActionTests(AdminTestCase):
    def setUp(self) -> None:
        super().setUp()
        KeyVal("alpha").set_many({"a1": 1, "a2": 2, "a3": 3})
        KeyVal("beta").set_many({"b1": 1, "b2": 2})
        KeyVal("gamma").set("g1", 1)

    def selected(self, *keys: str) -> list[str]:
        return [
            str(pk) for pk in KeyValPair.objects.filter(key__in=keys).values_list("pk", flat=True)
        ]

    def test_flush_asks_for_confirmation_then_flushes_the_stores(self) -> None:
        data = {
            "action": "flush_selected_stores",
            "_selected_action": self.selected("a1", "b1", "b2"),
        }
        response = self.client.post(CHANGELIST, data)
        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(
            response, "admin/django_keyval/keyvalpair/flush_selected_confirmation.html"
        )
        self.assertContains(response, "Are you sure you want to flush these 2 stores?")
        for store, total, selected in (("alpha", 3, 1), ("beta", 2, 2)):
            self.assertContains(
                response,
                f'<tr><td class="store">{store}</td><td class="total">{total}</td>'
                f'<td class="selected">{selected}</td></tr>',
                html=True,
            )
        self.assertContains(response, "In all, 5 pairs will be deleted.")
        self.assertEqual(KeyValPair.objects.count(), 6)  # nothing deleted yet

        response = self.client.post(CHANGELIST, {**data, "post": "yes"}, follow=True)
        self.assertRedirects(response, CHANGELIST)
        self.assertContains(response, "Flushed 2 stores (5 pairs deleted).")
        self.assertEqual(KeyVal.stores(), ["gamma"])
        self.assertEqual(KeyVal("gamma").get("g1"), 1)

    def test_flush_one_store(self) -> None:
        data = {"action": "flush_selected_stores", "_selected_action": self.selected("g1")}
        response = self.client.post(CHANGELIST, data)
        self.assertContains(response, "Are you sure you want to flush this store?")
        self.assertContains(response, "In all, 1 pair will be deleted.")
        response = self.client.post(CHANGELIST, {**data, "post": "yes"}, follow=True)
        self.assertContains(response, "Flushed 1 store (1 pair deleted).")
        self.assertEqual(KeyVal.stores(), ["alpha", "beta"])

    def test_delete_selected(self) -> None:
        data = {"action": "delete_selected", "_selected_action": self.selected("a1", "b2")}
        response = self.client.post(CHANGELIST, data)
        self.assertContains(
            response, "Are you sure you want to delete the selected key-value pairs?"
        )
        response = self.client.post(CHANGELIST, {**data, "post": "yes"}, follow=True)
        self.assertContains(response, "Successfully deleted 2 key-value pairs.")
        self.assertEqual(
            sorted(KeyValPair.objects.values_list("key", flat=True)), ["a2", "a3", "b1", "g1"]
        )


class PermissionTests(AdminTestCase):
    def setUp(self) -> None:
        KeyVal("s").set("doc", [1])
        self.row = pair("s", "doc")

    def test_staff_without_permissions_sees_nothing(self) -> None:
        self.client.force_login(self.staff("nobody"))
        response = self.client.get(reverse("admin:index"))
        self.assertNotContains(response, "Key-value pairs")
        for url in (CHANGELIST, ADD, change_url(self.row)):
            with self.subTest(url):
                self.assertEqual(self.client.get(url).status_code, 403)
        self.assertEqual(
            self.client.post(
                CHANGELIST, {"action": "flush_selected_stores", "_selected_action": [self.row.pk]}
            ).status_code,
            403,
        )
        self.assertEqual(KeyVal("s").get("doc"), [1])

    def test_view_permission_only_shows(self) -> None:
        self.client.force_login(self.staff("viewer", "view_keyvalpair"))
        response = self.client.get(CHANGELIST)
        self.assertContains(response, "[1]")
        self.assertNotContains(response, "flush_selected_stores")
        self.assertNotContains(response, "delete_selected")
        response = self.client.get(change_url(self.row))
        self.assertContains(response, '<pre class="keyval-value"')
        self.assertNotContains(response, "<textarea")
        self.assertNotContains(response, 'name="_save"')
        self.assertNotContains(response, "Opened version")
        response = self.client.post(
            change_url(self.row), {"value_json": "2", **split_datetime(None)}
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(self.client.get(ADD).status_code, 403)
        url = reverse("admin:django_keyval_keyvalpair_delete", args=[self.row.pk])
        self.assertEqual(self.client.post(url, {"post": "yes"}).status_code, 403)
        for action in ("flush_selected_stores", "delete_selected"):
            self.client.post(
                CHANGELIST, {"action": action, "_selected_action": [self.row.pk], "post": "yes"}
            )
        self.assertEqual(KeyVal("s").get("doc"), [1])

    def test_change_permission_cannot_flush(self) -> None:
        self.client.force_login(self.staff("editor", "view_keyvalpair", "change_keyvalpair"))
        response = self.client.get(CHANGELIST)
        self.assertNotContains(response, "flush_selected_stores")
        self.client.post(
            CHANGELIST,
            {"action": "flush_selected_stores", "_selected_action": [self.row.pk], "post": "yes"},
        )
        self.assertEqual(KeyVal("s").get("doc"), [1])
        response = self.post_page(change_url(self.row), value_json="[2]")
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("s").get("doc"), [2])

    def test_delete_permission_may_flush(self) -> None:
        self.client.force_login(self.staff("cleaner", "view_keyvalpair", "delete_keyvalpair"))
        self.assertContains(self.client.get(CHANGELIST), "flush_selected_stores")
        self.client.post(
            CHANGELIST,
            {"action": "flush_selected_stores", "_selected_action": [self.row.pk], "post": "yes"},
        )
        self.assertEqual(KeyVal.stores(), [])


class DecodedValueTests(TestCase):
    def test_decoding_happens_once_per_instance(self) -> None:
        KeyVal("s").set("doc", [1])
        row = pair("s", "doc")
        self.assertIs(decoded(row), decoded(row))
        self.assertIsInstance(decoded(row), DecodedValue)

    @override_settings(KEYVAL_SERIALIZER="no.such.Serializer")
    def test_a_broken_serializer_setting_still_decodes_builtin_formats(self) -> None:
        KeyVal("s", serializer="pickle").set("doc", {1})
        self.assertEqual(decoded(pair("s", "doc")).value, {1})

    def test_deeply_nested_lists_are_not_json(self) -> None:
        value: list[Any] = []
        for _ in range(5000):
            value = [value]
        KeyVal("s").set("deep", 1)
        row = pair("s", "deep")
        row.__dict__["_keyval_decoded"] = decoded_value = decoded(row)
        decoded_value.value = value
        self.assertIsNone(decoded_value.json_text)
