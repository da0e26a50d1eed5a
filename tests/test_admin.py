"""The admin of key-value pairs, through Django's test client."""

from __future__ import annotations

import datetime
import json
import os
import pickle
import tempfile
from typing import Any

from django.contrib.auth.models import Permission, User
from django.test import TestCase, override_settings
from django.urls import reverse
from django.utils import timezone

from django_keyval.forms import DecodedValue, KeyValPairForm, decoded
from django_keyval.models import KeyVal, KeyValPair
from tests.helpers import CreatesFile, Point, insert_raw

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
            self.assertContains(response, f'<td class="field-value_type">{type_name}</td>')
        self.assertContains(response, '<td class="field-expiry">never</td>', count=6)
        # The signed pickle itself never reaches the page.
        self.assertNotContains(response, "\\x80")

    def test_long_values_are_cut_to_one_short_line(self) -> None:
        KeyVal("s").set("long", "x" * 500)
        KeyVal("s").set("lines", "one\ntwo")
        response = self.client.get(CHANGELIST)
        self.assertContains(response, "&#x27;" + "x" * 78 + "…")
        self.assertNotContains(response, "x" * 80)
        self.assertContains(response, "&#x27;one\\ntwo&#x27;")

    def test_expired_pairs_are_marked(self) -> None:
        kv = KeyVal("s")
        kv.set("later", 1, timeout=3600)
        kv.set("gone", 2, timeout=3600)
        KeyValPair.objects.filter(key="gone").update(
            expires_at=timezone.now() - datetime.timedelta(1)
        )
        response = self.client.get(CHANGELIST)
        self.assertContains(response, '<strong class="keyval-expired">(expired)</strong>', count=1)
        row = response.content.decode().split('field-key">')[1]
        self.assertIn("gone", row.split("</tr>")[0])
        self.assertIn("(expired)", row.split("</tr>")[0])

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
        self.assertContains(response, "never expires (1)")

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
        self.assertContains(response, '<td class="field-value_type">?</td>', count=2)

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
        self.assertTrue(response.context["adminform"].form.fields["value_json"].disabled)
        self.client.get(reverse("admin:django_keyval_keyvalpair_history", args=[self.row.pk]))
        self.client.get(reverse("admin:django_keyval_keyvalpair_delete", args=[self.row.pk]))
        self.assertFalse(os.path.exists(self.path))

    def test_saving_the_expiry_keeps_the_bytes(self) -> None:
        expires = (timezone.now() + datetime.timedelta(days=2)).replace(microsecond=0)
        response = self.client.post(
            change_url(self.row), {"value_json": "[1]", **split_datetime(expires)}
        )
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
    def test_the_full_value_is_pretty_printed_and_editable_as_json(self) -> None:
        value = {"name": "Zoë", "items": [1, 2.5, None, True], "long": "y" * 300}
        KeyVal("s").set("doc", value)
        response = self.client.get(change_url(pair("s", "doc")))
        pretty = json.dumps(value, indent=2, ensure_ascii=False).replace('"', "&quot;")
        self.assertContains(response, '<pre class="keyval-value"')
        self.assertContains(response, pretty, count=2)  # the display and the textarea
        self.assertContains(response, "value (JSON)")
        self.assertContains(response, '<div class="readonly">dict</div>')

    def test_saving_new_json_stores_it_through_the_api(self) -> None:
        KeyVal("s").set("doc", {"old": 1})
        row = pair("s", "doc")
        response = self.client.post(
            change_url(row), {"value_json": '{"new": [1, 2, {"x": null}]}', **split_datetime(None)}
        )
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("s").get("doc"), {"new": [1, 2, {"x": None}]})
        updated = pair("s", "doc")
        self.assertEqual(updated.version, 2)
        self.assertEqual(updated.serializer, "pickle")
        self.assertIsNone(updated.expires_at)

    def test_an_integer_goes_to_the_integer_column(self) -> None:
        KeyVal("s").set("counter", "not yet")
        self.client.post(
            change_url(pair("s", "counter")), {"value_json": "7", **split_datetime(None)}
        )
        row = pair("s", "counter")
        self.assertEqual((row.integer_value, row.serializer), (7, "int"))
        self.assertEqual(KeyVal("s").incr("counter"), 8)

    def test_a_json_store_keeps_writing_json(self) -> None:
        KeyVal("j", serializer="json").set("doc", [1])
        self.client.post(
            change_url(pair("j", "doc")), {"value_json": '["a"]', **split_datetime(None)}
        )
        row = pair("j", "doc")
        self.assertEqual((raw_bytes(row), row.serializer), (b'["a"]', "json"))

    def test_empty_containers_and_null_are_values(self) -> None:
        KeyVal("s").set("v", 1)
        for text, expected in (
            ("[]", []),
            ("{}", {}),
            ('""', ""),
            ("null", None),
            ("false", False),
        ):
            with self.subTest(text):
                self.client.post(
                    change_url(pair("s", "v")), {"value_json": text, **split_datetime(None)}
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
                response = self.client.post(url, {"value_json": text, **split_datetime(None)})
                self.assertEqual(response.status_code, 200)
                self.assertContains(response, message)
        self.assertEqual(KeyVal("s").get("doc"), [1])

    @override_settings(KEYVAL_MAX_VALUE_SIZE=100)
    def test_a_value_over_the_size_limit_is_a_form_error(self) -> None:
        KeyVal("s").set("doc", "small")
        response = self.client.post(
            change_url(pair("s", "doc")),
            {"value_json": json.dumps("z" * 200), **split_datetime(None)},
        )
        self.assertContains(response, "the limit (KEYVAL_MAX_VALUE_SIZE) is 100 bytes")
        self.assertEqual(KeyVal("s").get("doc"), "small")

    def test_setting_and_clearing_the_expiry(self) -> None:
        KeyVal("s").set("doc", {"a": 1})
        url = change_url(pair("s", "doc"))
        expires = (timezone.now() + datetime.timedelta(hours=5)).replace(microsecond=0)
        response = self.client.post(url, {"value_json": '{"a": 1}', **split_datetime(expires)})
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("s").expires_at("doc"), expires)
        row = pair("s", "doc")
        self.assertEqual(row.version, 1)  # only the expiry changed: the value was not rewritten
        self.client.post(url, {"value_json": '{"a": 2}', **split_datetime(expires)})
        self.assertEqual(KeyVal("s").get("doc"), {"a": 2})
        self.assertEqual(KeyVal("s").expires_at("doc"), expires)
        self.client.post(url, {"value_json": '{"a": 2}', **split_datetime(None)})
        self.assertIsNone(KeyVal("s").expires_at("doc"))

    def test_an_expiry_in_the_past_is_refused(self) -> None:
        KeyVal("s").set("doc", 1)
        past = timezone.now() - datetime.timedelta(hours=1)
        response = self.client.post(
            change_url(pair("s", "doc")), {"value_json": "1", **split_datetime(past)}
        )
        self.assertContains(response, "This time has passed; the pair would expire at once.")
        self.assertIsNone(KeyVal("s").expires_at("doc"))

    def test_an_expired_pair_can_be_given_a_new_value(self) -> None:
        KeyVal("s").set("doc", 1, timeout=60)
        past = (timezone.now() - datetime.timedelta(hours=1)).replace(microsecond=0)
        KeyValPair.objects.filter(key="doc").update(expires_at=past)
        response = self.client.post(
            change_url(pair("s", "doc")), {"value_json": "2", **split_datetime(None)}
        )
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("s").get("doc"), 2)

    def test_unchanged_reindented_json_rewrites_nothing(self) -> None:
        KeyVal("s").set("doc", {"a": [1, 2]})
        self.client.post(
            change_url(pair("s", "doc")), {"value_json": '{\r\n "a":[1,2]}', **split_datetime(None)}
        )
        self.assertEqual(pair("s", "doc").version, 1)

    def test_store_and_key_are_fixed_once_the_pair_exists(self) -> None:
        KeyVal("s").set("doc", 1)
        response = self.client.post(
            change_url(pair("s", "doc")),
            {"store": "other", "key": "other", "value_json": "2", **split_datetime(None)},
        )
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(list(KeyValPair.objects.values_list("store", "key")), [("s", "doc")])
        self.assertEqual(KeyVal("s").get("doc"), 2)

    def test_a_change_is_logged(self) -> None:
        KeyVal("s").set("doc", 1)
        self.client.post(change_url(pair("s", "doc")), {"value_json": "2", **split_datetime(None)})
        response = self.client.get(
            reverse("admin:django_keyval_keyvalpair_history", args=[pair("s", "doc").pk])
        )
        self.assertContains(response, "Changed value (JSON).")


class ReadOnlyValueTests(AdminTestCase):
    """Values JSON cannot represent are shown in full but not editable."""

    values = {
        "set": {1, 2},
        "tuple": (1, "a"),
        "datetime": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "instance": Point(3, 4),
        "int keys": {1: "one"},
        "nan": float("nan"),
        "bytes": b"abc",
    }

    def test_the_json_field_is_disabled_and_saving_keeps_the_value(self) -> None:
        kv = KeyVal("s")
        for key, value in self.values.items():
            kv.set(key, value)
        expires = (timezone.now() + datetime.timedelta(days=1)).replace(microsecond=0)
        for key, value in self.values.items():
            with self.subTest(key):
                url = change_url(pair("s", key))
                response = self.client.get(url)
                field = response.context["adminform"].form.fields["value_json"]
                self.assertTrue(field.disabled)
                self.assertContains(response, "Read-only: JSON cannot represent a value of type")
                self.assertContains(response, "disabled")
                response = self.client.post(
                    url, {"value_json": '"replaced"', **split_datetime(expires)}
                )
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
                self.assertContains(response, "Exceeds the limit (4300 digits)")
                self.assertTrue(response.context["adminform"].form.fields["value_json"].disabled)
                response = self.client.post(url, {"value_json": "1", **split_datetime(None)})
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


class AddFormTests(AdminTestCase):
    def post_add(self, **data: str) -> Any:
        return self.client.post(ADD, {**split_datetime(None), **data})

    def test_adding_a_pair(self) -> None:
        response = self.client.get(ADD)
        self.assertContains(response, "value (JSON)")
        expires = (timezone.now() + datetime.timedelta(days=3)).replace(microsecond=0)
        response = self.client.post(
            ADD,
            {
                "store": "app",
                "key": "greeting",
                "value_json": '{"text": "hi"}',
                **split_datetime(expires),
            },
        )
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("app").get("greeting"), {"text": "hi"})
        self.assertEqual(KeyVal("app").expires_at("greeting"), expires)
        self.post_add(store="app", key="counter", value_json="10")
        self.assertEqual(KeyVal("app").incr("counter"), 11)
        self.assertContains(self.client.get(CHANGELIST), "The key-value pair")

    def test_add_then_continue_editing(self) -> None:
        response = self.post_add(store="app", key="k", value_json="[1]", _continue="1")
        self.assertRedirects(response, change_url(pair("app", "k")))

    def test_an_existing_pair_is_not_overwritten(self) -> None:
        KeyVal("app").set("greeting", "old")
        response = self.post_add(store="app", key="greeting", value_json='"new"')
        self.assertContains(response, "Key-value pair with this Store and Key already exists.")
        self.assertEqual(KeyVal("app").get("greeting"), "old")

    def test_a_pair_that_expired_is_overwritten(self) -> None:
        # The store API counts an expired pair as missing, so the add form does too.
        KeyVal("app").set("greeting", "old", timeout=3600)
        KeyValPair.objects.filter(key="greeting").update(
            expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
        self.assertFalse(KeyVal("app").exists("greeting"))
        response = self.post_add(store="app", key="greeting", value_json='"new"')
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("app").get("greeting"), "new")
        self.assertIsNone(KeyVal("app").expires_at("greeting"))
        row = pair("app", "greeting")
        self.assertEqual(row.version, 1)  # a new pair, as set() makes it
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
                response = self.post_add(value_json="1", **data)
                self.assertContains(response, message)
        self.assertFalse(KeyValPair.objects.exists())

    def test_lone_surrogates_are_form_errors(self) -> None:
        # A browser cannot send one, so the form is tested directly.
        for data, message in (
            ({"store": "s\ud800", "key": "k"}, "a store name may not contain a lone surrogate"),
            ({"store": "s", "key": "k\ud800"}, "a key may not contain a lone surrogate"),
        ):
            with self.subTest(data):
                form = KeyValPairForm({"value_json": "1", **data})
                self.assertFalse(form.is_valid())
                self.assertIn(message, str(form.errors))

    def test_invalid_json_is_a_form_error(self) -> None:
        response = self.post_add(store="s", key="k", value_json="{")
        self.assertContains(response, "Enter valid JSON")
        self.assertFalse(KeyValPair.objects.exists())

    def test_an_integer_with_too_many_digits(self) -> None:
        response = self.post_add(store="s", key="k", value_json="9" * 5000)
        self.assertContains(response, "Enter valid JSON: Exceeds the limit")


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
        self.assertContains(response, "Flushed 1 store (1 pairs deleted).")
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
        response = self.client.post(
            change_url(self.row), {"value_json": "2", **split_datetime(None)}
        )
        self.assertRedirects(response, CHANGELIST)
        self.assertEqual(KeyVal("s").get("doc"), 2)

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
