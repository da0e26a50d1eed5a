"""Serializers, signed pickles and tamper evidence."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.test import TestCase, override_settings

from django_keyval import exceptions
from django_keyval.models import KeyVal, KeyValPair
from django_keyval.serializers import (
    JSONSerializer,
    PickleSerializer,
    get_serializer,
    parse_json,
    serializer_by_name,
    signed_place,
)
from tests.helpers import Colour, CreatesFile, ReversedJSONSerializer, write_raw


class NamelessSerializer:
    def dumps(self, value: Any) -> bytes:
        return b""

    def loads(self, data: bytes) -> Any:
        return None


class ReservedNameSerializer(ReversedJSONSerializer):
    name = "INT"


class JSONNamedSerializer(ReversedJSONSerializer):
    name = "json"


class PickleNamedSerializer(ReversedJSONSerializer):
    name = "Pickle"


class LongNamedSerializer(ReversedJSONSerializer):
    name = "x" * 51


class PickleSigningTests(TestCase):
    def test_signature_is_keyed_blake2b_with_a_key_from_secret_key(self) -> None:
        # Keyed as salted_hmac() derives its keys; over the place (store, key,
        # format, each after its length) and the pickle.
        key = hashlib.sha256(
            b"django_keyval.serializers.PickleSerializer" + settings.SECRET_KEY.encode()
        ).digest()

        def signature(message: bytes) -> bytes:
            return hashlib.blake2b(
                message, digest_size=32, key=key, person=b"django-keyval"
            ).digest()

        data = PickleSerializer().dumps({"a": 1}, "s", "kéy")
        payload = pickle.dumps({"a": 1}, pickle.HIGHEST_PROTOCOL)
        self.assertEqual(data, signature("1:s3:kéy6:pickle".encode() + payload) + payload)
        self.assertEqual(signed_place("s", "kéy", "pickle"), "1:s3:kéy6:pickle".encode())
        # A long payload is signed in two parts, to the same signature.
        long_value = "x" * 100_000
        data = PickleSerializer().dumps(long_value, "s", "k")
        payload = pickle.dumps(long_value, pickle.HIGHEST_PROTOCOL)
        self.assertEqual(data, signature(b"1:s1:k6:pickle" + payload) + payload)

    def test_a_new_secret_key_signs_at_once(self) -> None:
        before = PickleSerializer().dumps(1, "s", "k")
        with override_settings(SECRET_KEY="a-secret-key-for-this-test-only"):
            during = PickleSerializer().dumps(1, "s", "k")
        self.assertNotEqual(before[:32], during[:32])
        self.assertEqual(PickleSerializer().dumps(1, "s", "k"), before)
        # Even when changed without Django's setting_changed signal.
        secret = settings.SECRET_KEY
        try:
            settings.SECRET_KEY = "changed-without-a-signal"
            with self.assertRaises(exceptions.BadSignatureError):
                PickleSerializer().loads(before, "s", "k")
        finally:
            settings.SECRET_KEY = secret

    def test_tampered_pickle_is_never_unpickled(self) -> None:
        kv = KeyVal("tests.tamper")
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "pwned")
            evil = pickle.dumps(CreatesFile(path))
            kv.set("victim", {"safe": True})
            kv.set("other", [1])
            for data in (b"\x00" * 32 + evil, evil, b""):
                write_raw("tests.tamper", "victim", data)
                for call in (
                    lambda: kv.get("victim"),
                    lambda: kv.get_default("victim", "default"),
                    lambda: kv.pop("victim"),
                    lambda: kv.pop_default("victim"),
                    lambda: kv.get_many(["victim", "other"]),
                    lambda: list(kv.items()),
                    lambda: list(kv.values()),
                    lambda: KeyValPair.objects.get(key="victim").decoded_value(),
                ):
                    with self.subTest(data=data[:8], call=call):
                        with self.assertRaises(exceptions.BadSignatureError) as raised:
                            call()
                        self.assertIsInstance(raised.exception, exceptions.KeyValError)
                        message = str(raised.exception)
                        self.assertIn("'victim'", message)
                        self.assertIn("'tests.tamper'", message)
                        self.assertFalse(os.path.exists(path))
                # A failed pop puts the bytes back; the other pair is untouched.
                self.assertTrue(KeyValPair.objects.filter(key="victim").exists())
                self.assertEqual(kv.get("other"), [1])

    def test_a_signed_value_is_refused_anywhere_but_where_it_was_written(self) -> None:
        kv = KeyVal("tests.splice")
        other = KeyVal("tests.other")
        kv.set("admin", {"role": "admin"})
        kv.set("user", {"role": "user"})
        other.set("admin", {"role": "user"})
        signed = bytes(KeyValPair.objects.get(store="tests.splice", key="admin").value)
        for store, key in [("tests.splice", "user"), ("tests.other", "admin")]:
            write_raw(store, key, signed)
            with (
                self.subTest(store=store, key=key),
                self.assertRaisesMessage(exceptions.BadSignatureError, f"{key!r}"),
            ):
                KeyVal(store).get(key)
        # Relabelled as another signed-pickle format (a subclass under its own name).
        with override_settings(KEYVAL_SERIALIZER="tests.helpers.RenamedPickleSerializer"):
            KeyVal("tests.splice").set("renamed", [1])
            self.assertEqual(KeyVal("tests.splice").get("renamed"), [1])
            write_raw("tests.splice", "admin", signed, serializer="renamed-pickle")
            with self.assertRaises(exceptions.BadSignatureError):
                KeyVal("tests.splice").get("admin")
        # Relabelled as a format that is not signed, the bytes come back as
        # that format's value: never unpickled (see the security page).
        write_raw("tests.splice", "admin", signed, serializer="bytes")
        self.assertEqual(kv.get("admin"), signed)
        write_raw("tests.splice", "admin", signed)  # back in its place: read again
        self.assertEqual(kv.get("admin"), {"role": "admin"})

    def test_pickle_signed_with_another_secret_is_refused(self) -> None:
        kv = KeyVal("tests.tamper")
        with override_settings(SECRET_KEY="some-other-secret-key-entirely"):
            kv.set("k", {"v": 1})
        with self.assertRaises(exceptions.BadSignatureError):
            kv.get("k")

    def test_key_rotation_with_fallbacks(self) -> None:
        kv = KeyVal("tests.rotation")
        with override_settings(SECRET_KEY="old-secret-key-value"):
            kv.set("k", {"v": 1})
            kv.set("kept", {"v": 2})
        with override_settings(
            SECRET_KEY="new-secret-key-value", SECRET_KEY_FALLBACKS=["old-secret-key-value"]
        ):
            self.assertEqual(kv.get("k"), {"v": 1})
            row = KeyValPair.objects.get(key="k")
            signed = PickleSerializer()
            self.assertFalse(
                signed.is_signed_with_current_key(bytes(row.value), "tests.rotation", "k")
            )
            kv.set("k", kv.get("k"))  # written again: signed with the new key
            row = KeyValPair.objects.get(key="k")
            self.assertTrue(
                signed.is_signed_with_current_key(bytes(row.value), "tests.rotation", "k")
            )
        with override_settings(SECRET_KEY="new-secret-key-value", SECRET_KEY_FALLBACKS=[]):
            self.assertEqual(kv.get("k"), {"v": 1})
            with self.assertRaises(exceptions.BadSignatureError):
                kv.get("kept")


class NativeFormatTests(TestCase):
    def test_int_str_and_bytes_are_stored_natively(self) -> None:
        kv = KeyVal("tests.native")
        kv.set("i", 7)
        kv.set("s", "text ✓")
        kv.set("b", b"\x00raw")
        rows = {row.key: row for row in KeyValPair.objects.filter(store="tests.native")}
        self.assertEqual(
            (rows["i"].serializer, rows["i"].integer_value, rows["i"].value), ("int", 7, None)
        )
        self.assertEqual((rows["s"].serializer, bytes(rows["s"].value)), ("str", "text ✓".encode()))
        self.assertEqual((rows["b"].serializer, bytes(rows["b"].value)), ("bytes", b"\x00raw"))
        self.assertEqual(rows["s"].decoded_value(), "text ✓")

    def test_subclasses_and_huge_ints_use_the_serializer(self) -> None:
        kv = KeyVal("tests.native")
        kv.set("bool", True)
        kv.set("huge", 2**64)
        rows = {row.key: row.serializer for row in KeyValPair.objects.filter(store="tests.native")}
        self.assertEqual(rows, {"bool": "pickle", "huge": "pickle"})


class JSONSerializerTests(TestCase):
    def test_json_store(self) -> None:
        kv = KeyVal("tests.json", serializer="json")
        value = {"list": [1, 2.5, None, True], "nested": {"s": "é"}}
        kv.set("k", value)
        self.assertEqual(kv.get("k"), value)
        row = KeyValPair.objects.get(store="tests.json", key="k")
        self.assertEqual(row.serializer, "json")
        self.assertEqual(json.loads(bytes(row.value)), value)

    def test_json_refuses_what_it_cannot_represent_before_any_query(self) -> None:
        kv = KeyVal("tests.json", serializer="json")
        kv.set("k", ["kept"])
        for value in (
            {1, 2},
            (1, 2),
            {1: "a"},
            float("nan"),
            float("inf"),
            object(),
            [b"x"],
            b"raw bytes",
            {"a": {3}},
            [Colour.RED],
            {"c": Colour.RED},
        ):
            with self.subTest(value=value), self.assertNumQueries(0):
                with self.assertRaises(TypeError) as raised:
                    kv.set("k", value)
                self.assertIsInstance(raised.exception, exceptions.SerializationError)
                self.assertIn("json", str(raised.exception))
        self.assertEqual(kv.get("k"), ["kept"])

    def test_json_nested_too_deeply_to_read_back_is_refused(self) -> None:
        # Python's JSON parser recurses once per level: a value written near
        # the recursion limit could not be read back by code deeper in the stack.
        kv = KeyVal("tests.json", serializer="json")
        deepest: Any = []
        for _ in range(499):
            deepest = [deepest]  # 500 lists, one in another
        kv.set("deepest", deepest)
        too_deep = [deepest]
        for value in (too_deep, {"a": deepest}):
            with (
                self.subTest(type(value).__name__),
                self.assertNumQueries(0),
                self.assertRaisesMessage(
                    exceptions.SerializationError, "is nested more than 500 lists and dicts deep"
                ),
            ):
                kv.set("k", value)
        self.assertFalse(kv.exists("k"))

        def from_deep_in_the_stack(read: Callable[[], Any], depth: int = 300) -> Any:
            return from_deep_in_the_stack(read, depth - 1) if depth else read()

        self.assertEqual(from_deep_in_the_stack(lambda: kv.get("deepest")), deepest)

    def test_parse_json_refuses_numbers_too_large_for_a_float(self) -> None:
        for text in ("1e400", "[-1e400]", '{"a": 1.5e309}'):
            with self.subTest(text), self.assertRaisesMessage(ValueError, "too large a number"):
                parse_json(text)
        self.assertEqual(parse_json("[1e308, 1e-400]"), [1e308, 0.0])

    @override_settings(KEYVAL_SERIALIZER="json")
    def test_setting_chooses_the_serializer(self) -> None:
        kv = KeyVal("tests.json")
        kv.set("k", [1])
        self.assertEqual(KeyValPair.objects.get(key="k").serializer, "json")
        with self.assertRaises(exceptions.SerializationError):
            kv.set("k", {1, 2})

    def test_rows_are_read_with_the_serializer_that_wrote_them(self) -> None:
        KeyVal("tests.mixed", serializer="json").set("j", [1, 2])
        KeyVal("tests.mixed").set("p", (1, 2))
        with override_settings(KEYVAL_SERIALIZER="json"):
            kv = KeyVal("tests.mixed")
            self.assertEqual(kv.get("p"), (1, 2))
            self.assertEqual(kv.get("j"), [1, 2])
        self.assertEqual(KeyVal("tests.mixed").get_many(["j", "p"]), {"j": [1, 2], "p": (1, 2)})


class CustomSerializerTests(TestCase):
    path = "tests.helpers.ReversedJSONSerializer"

    def test_custom_serializer_by_dotted_path(self) -> None:
        kv = KeyVal("tests.custom", serializer=self.path)
        kv.set("k", {"a": [1]})
        row = KeyValPair.objects.get(key="k")
        self.assertEqual(row.serializer, "reversed-json")
        self.assertEqual(bytes(row.value), b'}]1[ :"a"{')
        self.assertEqual(kv.get("k"), {"a": [1]})
        with override_settings(KEYVAL_SERIALIZER=self.path):
            self.assertEqual(KeyVal("tests.custom").get("k"), {"a": [1]})

    def test_model_decodes_with_the_configured_serializer(self) -> None:
        KeyVal("tests.custom", serializer=self.path).set("k", [1])
        row = KeyValPair.objects.get(key="k")
        with override_settings(KEYVAL_SERIALIZER=self.path):
            self.assertEqual(row.decoded_value(), [1])
        with self.assertRaises(exceptions.DeserializationError):
            row.decoded_value()

    def test_unconfigured_custom_serializer_is_a_clear_error(self) -> None:
        KeyVal("tests.custom", serializer=self.path).set("k", [1])
        with self.assertRaises(exceptions.DeserializationError) as raised:
            KeyVal("tests.custom").get("k")
        self.assertIn("reversed-json", str(raised.exception))
        self.assertIn("'k'", str(raised.exception))

    def test_bad_serializer_specs(self) -> None:
        invalid = exceptions.InvalidSerializerError
        for spec, error, message in (
            ("tests.nowhere.Serializer", invalid, "cannot import"),
            ("tests.test_serializers.NamelessSerializer", invalid, "interface"),
            ("tests.test_serializers.ReservedNameSerializer", invalid, "reserved"),
            # A custom serializer named like a built-in one would have its
            # rows read by the built-in one.
            ("tests.test_serializers.JSONNamedSerializer", invalid, "reserved"),
            ("tests.test_serializers.PickleNamedSerializer", invalid, "reserved"),
            ("tests.test_serializers.LongNamedSerializer", invalid, "51 characters"),
            (42, exceptions.ArgumentTypeError, "not int"),
            (["json"], exceptions.ArgumentTypeError, "not list"),
        ):
            with self.subTest(spec=spec), self.assertRaisesMessage(error, message):
                KeyVal("tests.custom", serializer=spec)  # type: ignore[arg-type]
        self.assertTrue(issubclass(invalid, ValueError))

    def test_lookup_helpers(self) -> None:
        self.assertIsInstance(get_serializer("json"), JSONSerializer)
        self.assertIs(get_serializer("pickle"), get_serializer("pickle"))
        custom = get_serializer(self.path)
        self.assertIs(serializer_by_name("reversed-json", custom), custom)
        with self.assertRaises(exceptions.DeserializationError):
            serializer_by_name("reversed-json")
