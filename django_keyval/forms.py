"""The admin's form for a key-value pair: the value is edited as JSON, never as pickled bytes.

A pickle can run code when it is loaded, so the admin never takes one from a
user. Values are typed as JSON and written through :class:`~django_keyval.models.KeyVal`,
which stores them with the store's serializer; values JSON cannot represent
(sets, datetimes, instances of user classes, values that fail their
signature check) are shown but cannot be edited.
"""

from __future__ import annotations

import datetime
import json
import pprint
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from django import forms
from django.db import router, transaction
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import escape
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .conf import keyval_settings
from .encoding import decode_value, encode_value
from .exceptions import BadSignatureError, DeserializationError, KeyValError
from .models import KeyValPair
from .serializers import (
    SERIALIZER_FORMATS,
    Serializer,
    get_serializer,
    is_exact_json,
    parse_json,
)
from .store import KeyVal
from .validation import validate_key, validate_store_name

if TYPE_CHECKING:
    _PairModelForm = forms.ModelForm[KeyValPair]
else:  # ModelForm cannot be subscripted at run time
    _PairModelForm = forms.ModelForm

__all__ = ["DecodedValue", "JSONValueField", "KeyValPairForm", "decoded", "parse_json_value"]

#: Shown instead of a value whose pickle failed its signature check.
SIGNATURE_MISMATCH = "⚠ signature mismatch"
#: Shown instead of a value that cannot be decoded for another reason.
CANNOT_DECODE = "⚠ cannot decode"


class DecodedValue:
    """The value of one pair, decoded once for display, or the reason it cannot be.

    Decoding checks a pickle's signature before unpickling it
    (:func:`~django_keyval.encoding.decode_value`), so a value written into the
    table by anything but the store is never unpickled.
    """

    #: Characters of the value's ``repr`` shown in the list of pairs.
    PREVIEW_LENGTH = 80

    def __init__(self, pair: KeyValPair) -> None:
        #: The decoded value (``None`` when it could not be decoded).
        self.value: Any = None
        #: ``None`` when the value was decoded, else a short marker for the list.
        self.problem: str | None = None
        #: The full explanation of :attr:`problem`.
        self.detail = ""
        configured: tuple[Serializer, ...] = ()
        with suppress(TypeError, ValueError):  # a bad setting is reported by the system checks
            configured = (get_serializer(keyval_settings.SERIALIZER),)
        try:
            self.value = decode_value(
                pair.store, pair.key, pair.serializer, pair.value, pair.integer_value, *configured
            )
        except BadSignatureError as error:
            self.problem, self.detail = SIGNATURE_MISMATCH, str(error)
        except DeserializationError as error:
            self.problem, self.detail = CANNOT_DECODE, str(error)

    @property
    def type_name(self) -> str:
        """The name of the value's type, or ``"?"`` when it could not be decoded."""
        return "?" if self.problem else type(self.value).__name__

    @cached_property
    def json_text(self) -> str | None:
        """The value as indented JSON, or ``None`` if JSON cannot represent it exactly."""
        if self.problem or not self._is_json():
            return None
        return json.dumps(self.value, indent=2, ensure_ascii=False)

    def _is_json(self) -> bool:
        try:
            return is_exact_json(self.value)
        except RecursionError:
            return False

    def preview(self) -> str:
        """A one-line representation, cut to :attr:`PREVIEW_LENGTH` characters."""
        if self.problem:
            return self.problem
        value = self.value
        if type(value) in (str, bytes) and len(value) > self.PREVIEW_LENGTH:
            value = value[: self.PREVIEW_LENGTH]  # no need to repr megabytes to show 80 characters
        try:
            text = " ".join(repr(value).split())
        except Exception as error:  # a user class whose __repr__ fails
            return f"<{type(self.value).__name__}: repr() failed: {type(error).__name__}>"
        if len(text) > self.PREVIEW_LENGTH:
            text = text[: self.PREVIEW_LENGTH - 1] + "…"
        return text

    def pretty(self) -> str:
        """The whole value, pretty-printed: as JSON when it is JSON, else with ``pprint``."""
        if self.problem:
            return f"{self.problem}: {self.detail}"
        if self.json_text is not None:
            return self.json_text
        try:
            return pprint.pformat(self.value, width=100)
        except Exception as error:  # a user class whose __repr__ fails
            return f"<{type(self.value).__name__}: repr() failed: {type(error).__name__}: {error}>"


def decoded(pair: KeyValPair) -> DecodedValue:
    """Return the :class:`DecodedValue` of ``pair``, decoding it at most once per instance."""
    cached = pair.__dict__.get("_keyval_decoded")
    if cached is None:
        cached = pair.__dict__["_keyval_decoded"] = DecodedValue(pair)
    return cached


def parse_json_value(text: str) -> Any:
    """Parse ``text`` as strict JSON; raise ``forms.ValidationError`` naming the problem."""
    try:
        return parse_json(text)
    except json.JSONDecodeError as error:
        message = gettext("Enter valid JSON: %(problem)s (line %(line)d, column %(column)d).")
        params = {"problem": error.msg, "line": error.lineno, "column": error.colno}
        raise forms.ValidationError(message, code="invalid_json", params=params) from None
    except ValueError as error:  # NaN/Infinity, too deep, an integer with too many digits
        raise forms.ValidationError(
            gettext("Enter valid JSON: %(problem)s."),
            code="invalid_json",
            params={"problem": str(error)},
        ) from None


class JSONValueField(forms.CharField):
    """A textarea whose text is parsed as JSON; ``clean()`` returns the parsed value.

    Unlike ``forms.JSONField``, ``[]``, ``{}`` and ``""`` are values like any
    other, and NaN or infinities are refused.
    """

    widget = forms.Textarea

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def clean(self, value: Any) -> Any:
        """Return the parsed JSON value (``None`` when the field is disabled)."""
        if self.disabled:
            return None
        return parse_json_value(super().clean(value))

    def has_changed(self, initial: Any, data: Any) -> bool:
        """Compare values, not texts: the browser may change line endings or indentation."""
        if self.disabled:
            return False
        try:
            before = parse_json_value(initial or "")
            after = parse_json_value(data or "")
        except forms.ValidationError:
            return True
        return json.dumps(before, sort_keys=True) != json.dumps(after, sort_keys=True)


class KeyValPairForm(_PairModelForm):
    """Add or change a pair: store, key, value as JSON, expiry.

    The value is written with :meth:`KeyVal.set <django_keyval.models.KeyVal.set>`,
    so it is stored exactly as the API stores it (plain integers in the
    integer column, other values with the store's serializer). A value JSON
    cannot represent leaves the JSON field disabled; saving the form then
    changes only the expiry.
    """

    value_json = JSONValueField(
        label=_("value (JSON)"),
        help_text=_(
            'The value as JSON: for example 42, "text", [1, 2] or {"a": null}. '
            "It is stored with the store's serializer."
        ),
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80, "class": "vLargeTextField"}),
    )

    class Meta:
        model = KeyValPair
        fields = ["store", "key", "expires_at"]
        help_texts = {"expires_at": _("Leave empty for a pair that never expires.")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("value_json")
        if field is None or self.instance.pk is None:
            return
        current = decoded(self.instance)
        if current.json_text is not None:
            field.initial = current.json_text
            return
        field.disabled = True
        field.required = False
        if current.problem:
            # The admin renders help texts as HTML, and the detail quotes the key.
            field.help_text = gettext("Read-only: %(detail)s") % {"detail": escape(current.detail)}
        else:
            field.help_text = gettext(
                "Read-only: JSON cannot represent a value of type %(type)s, so it cannot be "
                "edited here. Saving keeps it as it is."
            ) % {"type": escape(current.type_name)}

    @property
    def value_editable(self) -> bool:
        """Whether the form sets the value (``False`` for values JSON cannot show)."""
        field = self.fields.get("value_json")
        return field is not None and not field.disabled

    def clean_store(self) -> str:
        """Refuse store names the store API would refuse."""
        store: str = self.cleaned_data["store"]
        try:
            validate_store_name(store)
        except KeyValError as error:
            raise forms.ValidationError(str(error), code="invalid_store") from None
        return store

    def clean_key(self) -> str:
        """Refuse keys the store API would refuse."""
        key: str = self.cleaned_data["key"]
        try:
            validate_key(key)
        except KeyValError as error:
            raise forms.ValidationError(str(error), code="invalid_key") from None
        return key

    def clean_expires_at(self) -> datetime.datetime | None:
        """Refuse a newly entered expiry that has already passed."""
        expires: datetime.datetime | None = self.cleaned_data["expires_at"]
        if expires is not None and "expires_at" in self.changed_data and expires <= timezone.now():
            raise forms.ValidationError(
                gettext("This time has passed; the pair would expire at once."),
                code="expiry_in_past",
            )
        return expires

    def _serializer_spec(self) -> str | None:
        # Keep the serializer the row was written with (a store created with
        # KeyVal(name, serializer="json") keeps writing JSON); rows of plain
        # integers, or of another serializer, follow KEYVAL_SERIALIZER.
        serializer = self.instance.serializer if self.instance.pk is not None else ""
        return serializer if serializer in SERIALIZER_FORMATS else None

    def _get_validation_exclusions(self) -> set[str]:
        # Model validation would check the unique constraint on (store, key)
        # against every row, so a key whose only row has expired would be
        # refused, though the store API counts it as missing and set()
        # overwrites it. clean() checks for a live pair instead; the key's own
        # checks are made by its form field and clean_key(). (This hook of
        # ModelForm is private, so django-stubs does not declare it.)
        exclude: set[str] = super()._get_validation_exclusions()  # type: ignore[misc]
        exclude.add("key")
        return exclude

    def clean(self) -> dict[str, Any]:
        """Check that the value can be stored, and that a new pair's key is not taken.

        A key is taken when the store has a pair for it that has not
        expired (:meth:`KeyVal.exists <django_keyval.models.KeyVal.exists>`):
        a pair that has expired counts as missing, so adding one over it
        overwrites it, as :meth:`KeyVal.set <django_keyval.models.KeyVal.set>` does.
        """
        cleaned = super().clean() or self.cleaned_data
        adding = self.instance._state.adding
        store = cleaned.get("store") if adding else self.instance.store
        key = cleaned.get("key") if adding else self.instance.key
        if adding and store and key:
            using = router.db_for_write(KeyValPair, instance=self.instance)
            if KeyVal(store, using=using).exists(key):
                # The message model validation gives for the unique constraint.
                self.add_error(
                    None, self.instance.unique_error_message(KeyValPair, ["store", "key"])
                )
        if self.value_editable and "value_json" in cleaned and store and key:
            try:
                encode_value(store, key, cleaned["value_json"], self._serializer_spec())
            except KeyValError as error:
                self.add_error("value_json", str(error))
        return cleaned

    def store_pair(self, using: str) -> KeyValPair:
        """Write the pair to database ``using`` and return the form's instance, refreshed.

        The admin calls this instead of ``save()``: the value goes through
        :meth:`KeyVal.set <django_keyval.models.KeyVal.set>` (when the pair is
        new or its JSON changed), with the expiry entered, so it is stored as
        the API would store it; a change of expiry alone only updates the
        expiry. Call it once ``is_valid()`` has returned ``True``.
        """
        instance = self.instance
        adding = instance._state.adding
        store, key = instance.store, instance.key
        expires = self.cleaned_data.get("expires_at")
        rows = KeyValPair.objects.using(using).filter(store=store, key=key)
        with transaction.atomic(using=using):
            if self.value_editable and (adding or "value_json" in self.changed_data):
                now = timezone.now()
                timeout = None if expires is None else max((expires - now).total_seconds(), 0.0)
                store_api = KeyVal(store, using=using, serializer=self._serializer_spec())
                store_api.set(key, self.cleaned_data["value_json"], timeout=timeout)
                if expires is not None:
                    # set() takes a timeout; pin the expiry to the very time entered.
                    rows.update(expires_at=expires)
            elif "expires_at" in self.changed_data:
                rows.update(expires_at=expires, updated_at=timezone.now())
        fresh: KeyValPair | None = rows.first()
        if fresh is not None:
            for field in KeyValPair._meta.concrete_fields:
                setattr(instance, field.attname, getattr(fresh, field.attname))
            instance._state.adding = False
            instance._state.db = using
            instance.__dict__.pop("_keyval_decoded", None)
        return instance
