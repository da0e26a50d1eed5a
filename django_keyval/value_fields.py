"""The form field the admin edits a value with, chosen by the value's type.

Each :class:`ValueKind` is one type an editor can give a value: text, a
whole number, a number with a fraction, true or false, a date, a date and
time, a time, a decimal, or JSON (lists, dicts and ``null``). A value of any
other type (a tuple, ``bytes``, a ``set``, an object of the project's own
classes) has no kind: the admin shows it read-only.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from django import forms
from django.contrib.admin import widgets as admin_widgets
from django.forms import Field
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from .serializers import is_exact_json, parse_json

__all__ = [
    "VALUE_KINDS",
    "JSONValueField",
    "ValueKind",
    "kind_of",
    "kinds_for_json",
    "parse_json_value",
]

#: A ``str`` longer than this, or with a line break, is edited in a textarea.
SHORT_TEXT_LENGTH = 80


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


class ValueKind(NamedTuple):
    """One type a value can be edited as, with the form field that edits it."""

    #: The choice's value, also the suffix of its form field (``value_str``).
    name: str
    #: What the editor sees in the list of types.
    label: Any
    #: Whether a JSON store can hold values of this kind.
    json: bool
    #: Return a new form field for this kind; ``long`` asks for a larger widget.
    make_field: Callable[[bool], Field]

    @property
    def field_name(self) -> str:
        """The name of this kind's field in the form."""
        return f"value_{self.name}"


def _text_field(long: bool) -> forms.Field:
    widget: forms.Widget
    if long:
        widget = forms.Textarea(attrs={"rows": 6, "cols": 80, "class": "vLargeTextField"})
    else:
        widget = forms.TextInput(attrs={"class": "vTextField keyval-text"})
    # An empty string is a value like any other, and spaces are kept as typed.
    return forms.CharField(required=False, strip=False, widget=widget)


def _integer_field(long: bool) -> forms.Field:
    return forms.IntegerField(widget=forms.NumberInput(attrs={"class": "vIntegerField"}))


def _float_field(long: bool) -> forms.Field:
    # step="any": the browser would otherwise accept whole numbers only.
    return forms.FloatField(widget=forms.NumberInput(attrs={"step": "any"}))


def _boolean_field(long: bool) -> forms.Field:
    return forms.BooleanField(required=False)


def _date_field(long: bool) -> forms.Field:
    return forms.DateField(widget=admin_widgets.AdminDateWidget)


def _datetime_field(long: bool) -> forms.Field:
    return forms.SplitDateTimeField(widget=admin_widgets.AdminSplitDateTime)


def _time_field(long: bool) -> forms.Field:
    return forms.TimeField(widget=admin_widgets.AdminTimeWidget)


def _decimal_field(long: bool) -> forms.Field:
    return forms.DecimalField(widget=forms.NumberInput(attrs={"step": "any"}))


def _json_field(long: bool) -> forms.Field:
    return JSONValueField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80, "class": "vLargeTextField"}),
        help_text=_('For example ["a", "b"], {"a": 1, "b": [true, null]} or null.'),
    )


#: Every kind, in the order the type menu lists them.
VALUE_KINDS: dict[str, ValueKind] = {
    kind.name: kind
    for kind in (
        ValueKind("str", _("Text (str)"), True, _text_field),
        ValueKind("int", _("Whole number (int)"), True, _integer_field),
        ValueKind("float", _("Number with a fraction (float)"), True, _float_field),
        ValueKind("bool", _("True or false (bool)"), True, _boolean_field),
        ValueKind("json", _("JSON: list, dict or null"), True, _json_field),
        ValueKind("date", pgettext_lazy("value type", "Date (date)"), False, _date_field),
        ValueKind("datetime", _("Date and time (datetime)"), False, _datetime_field),
        ValueKind("time", pgettext_lazy("value type", "Time (time)"), False, _time_field),
        ValueKind("decimal", _("Decimal (Decimal)"), False, _decimal_field),
    )
}


def kinds_for_json() -> list[ValueKind]:
    """Return the kinds a store that writes JSON can hold."""
    return [kind for kind in VALUE_KINDS.values() if kind.json]


def _fits_in_text(value: int) -> bool:
    # Python refuses to turn an int of more than sys.get_int_max_str_digits()
    # digits into text, so a number input could not show it.
    try:
        str(value)
    except ValueError:
        return False
    return True


def kind_of(value: Any) -> ValueKind | None:
    """Return the kind that edits ``value`` exactly, or ``None`` when no form field can.

    Types are matched exactly: a subclass of ``str`` or ``dict`` (an
    ``OrderedDict``, an enum member) would come back as the plain type.
    """
    value_type = type(value)
    name: str | None = None
    if value_type is str:
        name = "str"
    elif value_type is bool:
        name = "bool"
    elif value_type is int:
        name = "int" if _fits_in_text(value) else None
    elif value_type is float:
        name = "float" if math.isfinite(value) else None
    elif value_type is datetime.datetime:
        name = "datetime"
    elif value_type is datetime.date:
        name = "date"
    elif value_type is datetime.time:
        name = "time" if value.tzinfo is None else None
    elif value_type is decimal.Decimal:
        name = "decimal" if value.is_finite() else None
    elif value is None or value_type in (list, dict):
        try:
            name = "json" if is_exact_json(value) else None
        except RecursionError:
            name = None
    return None if name is None else VALUE_KINDS[name]
