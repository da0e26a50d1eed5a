"""The admin's form for a key-value pair: each value edited with a field fit for its type.

A pickle can run code when it is loaded, so the admin never takes one from a
user. The editor picks the value's type (text, number, true or false, date,
JSON...) and types the value into the matching field; the value is written
through :class:`~django_keyval.models.KeyVal`, which stores it as the API
would. Values no field can edit exactly (tuples, ``bytes``, sets, instances
of the project's classes, values that cannot be decoded) are shown
read-only and can be replaced by a new value.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from django import forms
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone
from django.utils.html import format_html, format_html_join, json_script
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .conf import keyval_settings
from .display import DecodedValue, decoded
from .encoding import encode_value
from .exceptions import KeyValError, PairChangedError
from .models import KeyValPair
from .serializers import NATIVE_FORMATS, SERIALIZER_FORMATS, get_serializer
from .store import KeyVal
from .table import route
from .validation import validate_key, validate_store_name
from .value_fields import (
    VALUE_KINDS,
    JSONValueField,
    ValueKind,
    kinds_for_json,
    parse_json_value,
)

if TYPE_CHECKING:
    _PairModelForm = forms.ModelForm[KeyValPair]
else:  # ModelForm cannot be subscripted at run time
    _PairModelForm = forms.ModelForm

__all__ = [
    "DecodedValue",
    "JSONValueField",
    "KeyValPairForm",
    "StoreNameInput",
    "decoded",
    "parse_json_value",
    "store_serializers",
]

#: The type menu's choice that leaves a read-only value as it is.
KEEP = ""
#: The most store names the add form offers.
MAX_STORE_CHOICES = 1000


def _configured_serializer_name() -> str:
    try:
        return get_serializer(keyval_settings.SERIALIZER).name
    except (TypeError, ValueError):  # a bad setting is reported by the system checks
        return str(keyval_settings.SERIALIZER)


def store_serializers(using: str, store: str | None = None) -> dict[str, str]:
    """Return ``{store: serializer name}``: the serializer most of each store's pairs use.

    Only values written by a serializer count: plain ``int``, ``str`` and
    ``bytes`` are stored the same way whatever the serializer. A store
    whose pairs are all such values is missing from the result, as is a
    store that does not exist. ``store`` limits the answer to one store.
    """
    rows = KeyValPair.objects.using(using).exclude(serializer__in=NATIVE_FORMATS)
    if store is not None:
        rows = rows.filter(store=store)
    counts = rows.order_by().values_list("store", "serializer").annotate(pairs=Count("pk"))
    chosen: dict[str, tuple[int, str]] = {}
    for name, serializer, pairs in counts:
        if name not in chosen or (pairs, serializer) > chosen[name]:
            chosen[name] = (pairs, serializer)
    return {name: serializer for name, (_pairs, serializer) in chosen.items()}


class StoreNameInput(forms.TextInput):
    """A text input that offers the existing store names and tells a new one apart.

    The names come as a ``<datalist>``, so any other name can still be typed;
    a script shows under the field whether the store exists and which
    serializer its values will be written with.
    """

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            attrs={"list": "keyval-store-names", "class": "vTextField", **(attrs or {})}
        )
        #: ``{store name: serializer name}`` of the existing stores ("" if none).
        self.stores: dict[str, str] = {}
        #: The serializer a new store's values are written with.
        self.default_serializer = ""

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> Any:
        """Render the input, the datalist of names and the place for the hint."""
        options = format_html_join("", '<option value="{}">', ((store,) for store in self.stores))
        return format_html(
            '{}<datalist id="keyval-store-names">{}</datalist>{}'
            '<div class="help keyval-store-hint" aria-live="polite"'
            ' data-default-serializer="{}"></div>',
            super().render(name, value, attrs, renderer),
            options,
            json_script(self.stores, "keyval-store-serializers"),
            self.default_serializer,
        )


class KeyValPairForm(_PairModelForm):
    """Add or change a pair: store, key, the value's type and value, expiry.

    The value is written with :meth:`KeyVal.set <django_keyval.models.KeyVal.set>`
    (or :meth:`~django_keyval.models.KeyVal.add` for a new pair), so it is
    stored exactly as the API stores it, with the serializer the store's
    pairs already use. Saving refuses to overwrite a value that changed
    since the page was shown (the pair's ``version`` tells), and asks for
    confirmation before changing the type of a value.
    """

    value_type = forms.ChoiceField(label=_("Type"), required=False)
    confirm_type_change = forms.BooleanField(
        label=_("Change the type"),
        required=False,
        help_text=_(
            "Needed to store a value of another type than the stored one: code that "
            "expects the old type (incr() on a counter, for one) would then fail."
        ),
    )
    opened_version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    # One field per kind of value; a script shows the one of the chosen type.
    value_str = VALUE_KINDS["str"].make_field(False)
    value_int = VALUE_KINDS["int"].make_field(False)
    value_float = VALUE_KINDS["float"].make_field(False)
    value_bool = VALUE_KINDS["bool"].make_field(False)
    value_json = VALUE_KINDS["json"].make_field(False)
    value_date = VALUE_KINDS["date"].make_field(False)
    value_datetime = VALUE_KINDS["datetime"].make_field(False)
    value_time = VALUE_KINDS["time"].make_field(False)
    value_decimal = VALUE_KINDS["decimal"].make_field(False)

    class Meta:
        model = KeyValPair
        fields = ["store", "key", "expires_at"]
        help_texts = {"expires_at": _("Leave empty for a pair that never expires.")}

    class Media:
        js = ["django_keyval/admin/keyval.js"]
        css = {"all": ["django_keyval/admin/keyval.css"]}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.adding = self.instance._state.adding
        self.using = route(True, instance=self.instance)
        #: Whether the add form creates the store (it had no pair).
        self.new_store = False
        self.current: DecodedValue | None = None if self.adding else decoded(self.instance)
        for name in ("store", "key"):
            if name in self.fields:  # kept exactly as typed, as the API keeps them
                field = self.fields[name]
                assert isinstance(field, forms.CharField)
                field.strip = False
        if "store" in self.fields:
            self._offer_store_names()
        if "expires_at" in self.fields:
            self.fields["expires_at"].show_hidden_initial = True
        self.fields["opened_version"].initial = None if self.adding else self.instance.version
        self._set_up_value_fields()

    def _offer_store_names(self) -> None:
        widget = StoreNameInput()
        widget.stores = dict.fromkeys(
            KeyValPair.objects.using(self.using)
            .order_by("store")
            .values_list("store", flat=True)
            .distinct()[:MAX_STORE_CHOICES],
            "",
        )
        widget.stores.update(
            (name, serializer)
            for name, serializer in store_serializers(self.using).items()
            if name in widget.stores
        )
        widget.default_serializer = _configured_serializer_name()
        field = self.fields["store"]
        field.widget = widget
        field.help_text = gettext(
            "Pick an existing store or type a new name. Values are written with the "
            "serializer the store's pairs use; a new store's with KEYVAL_SERIALIZER "
            "(%(serializer)s)."
        ) % {"serializer": widget.default_serializer}

    def _kinds(self) -> list[ValueKind]:
        spec = self._serializer_spec()
        if spec is not None and get_serializer(spec).name == "json":
            return kinds_for_json()
        return list(VALUE_KINDS.values())

    def _set_up_value_fields(self) -> None:
        current = self.current
        stored_kind = None if current is None else current.kind
        type_field = self.fields["value_type"]
        assert isinstance(type_field, forms.ChoiceField)
        choices: list[tuple[str, Any]] = [(kind.name, kind.label) for kind in self._kinds()]
        if stored_kind is not None and stored_kind.name not in dict(choices):
            choices.append((stored_kind.name, stored_kind.label))
        if self.adding:
            type_field.initial = "str"
            self.fields.pop("confirm_type_change")
        elif stored_kind is None:
            choices.insert(0, (KEEP, gettext("Keep the stored value")))
            type_field.initial = KEEP
        else:
            type_field.initial = stored_kind.name
        type_field.choices = choices
        type_field.required = self.adding
        type_field.show_hidden_initial = not self.adding
        chosen = self.data.get(self.add_prefix("value_type")) if self.is_bound else None
        for kind in VALUE_KINDS.values():
            long = False
            if kind is stored_kind and kind.name == "str" and current is not None:
                text = current.value
                long = len(text) > 80 or "\n" in text
            field = kind.make_field(long or (self.adding and kind.name == "str"))
            field.label = gettext("Value")
            if kind is stored_kind and current is not None:
                field.initial = self._initial_of(current)
            if not self.adding:
                field.show_hidden_initial = True
            if self.is_bound and kind.name != chosen:
                # Only the field of the chosen type is read; the others keep their initial.
                field.disabled = True
                field.required = False
            elif not self.is_bound:
                # Hidden fields must not block the browser's submit with a "required" check.
                field.required = False
            self.fields[kind.field_name] = field

    @staticmethod
    def _initial_of(current: DecodedValue) -> Any:
        if current.json_text is not None and current.kind is VALUE_KINDS["json"]:
            return current.json_text
        return current.value

    @property
    def chosen_kind(self) -> ValueKind | None:
        """The kind of value the form writes, ``None`` when it keeps the stored one."""
        name = self.cleaned_data.get("value_type") if hasattr(self, "cleaned_data") else None
        return VALUE_KINDS.get(name or KEEP)

    @property
    def value_editable(self) -> bool:
        """Whether the form can set the value: the stored one has a field that edits it."""
        return self.current is None or self.current.kind is not None

    def value_edited(self) -> bool:
        """Whether the form sets a new value (always when adding)."""
        kind = self.chosen_kind
        if kind is None:
            return False
        if self.adding:
            return True
        return "value_type" in self.changed_data or kind.field_name in self.changed_data

    def new_value(self) -> Any:
        """The value the form writes; call after ``is_valid()``, if :meth:`value_edited`."""
        kind = self.chosen_kind
        assert kind is not None
        value = self.cleaned_data[kind.field_name]
        stored = self.current.value if self.current is not None else None
        if (
            isinstance(value, datetime.datetime)
            and isinstance(stored, datetime.datetime)
            and stored.tzinfo is None
            and timezone.is_aware(value)
        ):
            value = timezone.make_naive(value)  # a naive stored datetime stays naive
        return value

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
        # KeyVal(name, serializer="json") keeps writing JSON); otherwise use
        # the one the store's other pairs use, or KEYVAL_SERIALIZER.
        if not self.adding and self.instance.serializer in SERIALIZER_FORMATS:
            return self.instance.serializer
        store = self._store_name()
        if store is None:
            return None
        name = store_serializers(self.using, store).get(store)
        if name in SERIALIZER_FORMATS:
            return name
        return None  # no pair written by a serializer, or KEYVAL_SERIALIZER's own name

    def _store_name(self) -> str | None:
        if not self.adding:
            return str(self.instance.store)
        if hasattr(self, "cleaned_data"):
            store: str | None = self.cleaned_data.get("store")
            return store
        return None

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
        """Check the value, that a new pair's key is free, and that nobody changed the pair since.

        A key is taken when the store has a pair for it that has not
        expired (:meth:`KeyVal.exists <django_keyval.models.KeyVal.exists>`):
        a pair that has expired counts as missing, so adding one over it
        overwrites it, as :meth:`KeyVal.set <django_keyval.models.KeyVal.set>` does.
        """
        cleaned = super().clean() or self.cleaned_data
        store = cleaned.get("store") if self.adding else self.instance.store
        key = cleaned.get("key") if self.adding else self.instance.key
        if self.adding and store and key:
            if KeyVal(store, using=self.using).exists(key):
                # The message model validation gives for the unique constraint.
                self.add_error(
                    None, self.instance.unique_error_message(KeyValPair, ["store", "key"])
                )
            self.new_store = not KeyValPair.objects.using(self.using).filter(store=store).exists()
        if not self.adding:
            for problem in self.changes_since_opened():
                self.add_error(None, problem)
            if self.errors:
                return cleaned
        kind = self.chosen_kind
        if kind is None or kind.field_name in self.errors or not store or not key:
            return cleaned
        if not self.value_edited():
            return cleaned
        value = self.new_value()
        current = self.current
        if (
            current is not None
            and not cleaned.get("confirm_type_change")
            and (current.kind is None or type(value) is not type(current.value))
        ):
            self.add_error(
                "value_type",
                gettext(
                    "The stored value is of type %(old)s, the new one of type %(new)s: "
                    "code that expects a %(old)s would fail. Tick “Change the type” "
                    "to store it anyway."
                )
                % {"old": current.type_name, "new": type(value).__name__},
            )
            return cleaned
        try:
            encode_value(store, key, value, self._serializer_spec())
        except KeyValError as error:
            self.add_error(kind.field_name, str(error))
        return cleaned

    def _opened_expiry(self) -> datetime.datetime | None:
        """The expiry the page showed (its hidden copy), to the second."""
        field = self.fields["expires_at"]
        name = self.add_initial_prefix("expires_at")
        shown = field.hidden_widget().value_from_datadict(self.data, self.files, name)
        try:
            opened: datetime.datetime | None = field.clean(shown)
        except forms.ValidationError:
            return None
        return opened

    def changes_since_opened(self) -> list[str]:
        """Lock the pair's row and return why this save would overwrite someone else's change.

        Empty when the save may go ahead: nothing of what it writes changed
        since the page was shown. A new value needs the pair to have the
        version the page showed; a new expiry alone needs the expiry to be
        the one the page showed (so a value that code changed meanwhile,
        with ``incr`` for one, is kept). Inside the admin's transaction the
        row stays locked until the save is written.
        """
        value_edited = self.value_edited()
        expiry_edited = "expires_at" in self.changed_data
        if not (value_edited or expiry_edited):
            return []
        pair = self.instance
        rows = KeyValPair.objects.using(self.using).filter(store=pair.store, key=pair.key)
        # A write that changes nothing: it takes the row's write lock on
        # every database (SQLite has no SELECT ... FOR UPDATE). It finds the
        # row through the (store, key) index, as every statement of the store
        # does, so that it takes InnoDB's locks in the same order as a
        # concurrent write (by primary key it could deadlock with one).
        rows.update(version=F("version"))
        found = rows.values_list("pk", "version", "expires_at").first()
        if found is None or found[0] != pair.pk:
            return [gettext("This pair was deleted since you opened it; nothing was saved.")]
        _, version, expires = found
        opened = self.cleaned_data.get("opened_version")
        if value_edited and version != opened:
            return [
                gettext(
                    "This pair was changed since you opened it (version %(opened)s then, "
                    "version %(now)s now). Your value was not saved, so as not to overwrite "
                    "that change: reload the page to see the current value."
                )
                % {"opened": opened, "now": version}
            ]
        if not value_edited and expiry_edited:
            shown = self._opened_expiry()
            now = None if expires is None else expires.replace(microsecond=0)
            if now != shown:
                return [
                    gettext(
                        "The expiry of this pair was changed since you opened it. Your expiry "
                        "was not saved: reload the page to see the current one."
                    )
                ]
        return []

    def store_pair(self, using: str | None = None) -> KeyValPair:
        """Write the pair and return the form's instance, refreshed.

        The admin calls this instead of ``save()``: the value goes through
        :meth:`KeyVal.set <django_keyval.models.KeyVal.set>` (``add`` for a
        new pair), with the expiry entered, so it is stored as the API would
        store it; a change of expiry alone only updates the expiry (and the
        version). Call it once ``is_valid()`` has returned ``True``. Raises
        :class:`~django_keyval.exceptions.PairChangedError`, writing
        nothing, if the pair changed since the form checked it.
        """
        using = using or self.using
        instance = self.instance
        if self.adding:
            store, key = self.cleaned_data["store"], self.cleaned_data["key"]
        else:
            store, key = instance.store, instance.key
        expires = self.cleaned_data.get("expires_at")
        rows = KeyValPair.objects.using(using).filter(store=store, key=key)
        with transaction.atomic(using=using):
            if not self.adding:
                problems = self.changes_since_opened()
                if problems:
                    raise PairChangedError(problems[0])
            if self.value_edited():
                now = timezone.now()
                timeout = None if expires is None else max((expires - now).total_seconds(), 0.0)
                store_api = KeyVal(store, using=using, serializer=self._serializer_spec())
                if self.adding:
                    if not store_api.add(key, self.new_value(), timeout=timeout):
                        raise PairChangedError(
                            gettext("Key %(key)r was added to store %(store)r meanwhile.")
                            % {"key": key, "store": store}
                        )
                else:
                    store_api.set(key, self.new_value(), timeout=timeout)
                if expires is not None:
                    # set() takes a timeout; pin the expiry to the very time entered.
                    rows.update(expires_at=expires)
            elif "expires_at" in self.changed_data:
                # A new expiry is a change of the pair: its version goes up,
                # as touch() does.
                rows.update(expires_at=expires, updated_at=timezone.now(), version=F("version") + 1)
        fresh: KeyValPair | None = rows.first()
        if fresh is not None:
            for field in KeyValPair._meta.concrete_fields:
                setattr(instance, field.attname, getattr(fresh, field.attname))
            instance._state.adding = False
            instance._state.db = using
            instance.__dict__.pop("_keyval_decoded", None)
        return instance
