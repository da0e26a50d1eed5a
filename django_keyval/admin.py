"""The Django admin for key-value pairs: browse, search, edit as JSON, flush stores.

Values are decoded for display with their signature checked first, so a
pickle written into the table by anything but the store is shown as
"⚠ signature mismatch" and never unpickled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import router, transaction
from django.db.models import Count, Q, QuerySet, Value
from django.db.models.functions import Lower
from django.db.models.lookups import Contains
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .forms import KeyValPairForm, decoded
from .models import KeyVal, KeyValPair

if TYPE_CHECKING:
    Pairs = QuerySet[KeyValPair]
    _PairAdmin = admin.ModelAdmin[KeyValPair]
else:  # ModelAdmin cannot be subscripted at run time
    _PairAdmin = admin.ModelAdmin

__all__ = ["ExpiryListFilter", "KeyValPairAdmin", "StoreListFilter"]


class StoreListFilter(admin.SimpleListFilter):
    """Filter the pairs by store; lists every store that has pairs, expired ones included."""

    title = _("store")
    parameter_name = "store"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Return one choice per store name in the table."""
        names = (
            model_admin.get_queryset(request)
            .order_by("store")
            .values_list("store", flat=True)
            .distinct()
        )
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: Pairs) -> Pairs:
        """Keep the pairs of the chosen store."""
        store = self.value()
        return queryset if store is None else queryset.filter(store=store)


class ExpiryListFilter(admin.SimpleListFilter):
    """Filter the pairs by expiry: live with an expiry, durable (never expire), or expired."""

    title = _("expiry")
    parameter_name = "expiry"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        """Return the three expiry states."""
        return [
            ("live", _("expires later")),
            ("durable", _("never expires")),
            ("expired", _("expired")),
        ]

    def queryset(self, request: HttpRequest, queryset: Pairs) -> Pairs:
        """Keep the pairs in the chosen state, judged at the time of the request."""
        now = timezone.now()
        conditions = {
            "live": Q(expires_at__gt=now),
            "durable": Q(expires_at__isnull=True),
            "expired": Q(expires_at__lte=now),
        }
        condition = conditions.get(self.value() or "")
        return queryset if condition is None else queryset.filter(condition)


@admin.register(KeyValPair)
class KeyValPairAdmin(_PairAdmin):
    """Admin of :class:`~django_keyval.models.KeyValPair`.

    Values are shown decoded and edited as JSON through
    :class:`~django_keyval.forms.KeyValPairForm`, which writes them with
    :meth:`KeyVal.set <django_keyval.models.KeyVal.set>`.
    """

    form = KeyValPairForm
    list_display = ("store", "key", "value_preview", "value_type", "expiry", "updated_at")
    list_display_links = ("store", "key")
    list_filter = (StoreListFilter, ExpiryListFilter)
    search_fields = ("key", "store")
    ordering = ("store", "key")
    list_per_page = 100
    actions = ["flush_selected_stores"]
    flush_selected_confirmation_template = (
        "admin/django_keyval/keyvalpair/flush_selected_confirmation.html"
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[KeyValPair], search_term: str
    ) -> tuple[QuerySet[KeyValPair], bool]:
        """Find pairs whose key or store contains each word of the search, in any case.

        Keys and stores use a binary collation (``"Key"`` and ``"key"`` are
        two keys), under which MariaDB's ``LIKE``, and so ``icontains``,
        would tell case. Both sides are lowercased by the database instead,
        so the search ignores case alike everywhere. Quoted words are kept
        whole, as in Django's own admin search.
        """
        for word in smart_split(search_term):
            if word[0] in "\"'" and word[-1] == word[0] and len(word) > 1:
                word = unescape_string_literal(word)
            needle = Lower(Value(word))
            queryset = queryset.filter(
                Q(Contains(Lower("key"), needle)) | Q(Contains(Lower("store"), needle))
            )
        return queryset, False

    # -- columns and read-only fields ------------------------------------------

    @admin.display(description=_("value"))
    def value_preview(self, pair: KeyValPair) -> str:
        """The value's ``repr`` on one line, cut short; a marker if it cannot be decoded."""
        return decoded(pair).preview()

    @admin.display(description=_("type"))
    def value_type(self, pair: KeyValPair) -> str:
        """The name of the value's type."""
        return decoded(pair).type_name

    @admin.display(description=_("expires"), ordering="expires_at")
    def expiry(self, pair: KeyValPair) -> str:
        """When the pair expires, "never", or the time followed by "(expired)"."""
        if pair.expires_at is None:
            return gettext("never")
        expires = pair.expires_at
        when = formats.localize(
            timezone.localtime(expires) if timezone.is_aware(expires) else expires
        )
        if pair.is_expired:
            return format_html(
                '{} <strong class="keyval-expired">({})</strong>', when, _("expired")
            )
        return when

    @admin.display(description=_("value"))
    def value_display(self, pair: KeyValPair) -> str:
        """The whole value, pretty-printed."""
        return format_html(
            '<pre class="keyval-value" style="margin: 0; white-space: pre-wrap;">{}</pre>',
            decoded(pair).pretty(),
        )

    # -- the change form -------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: KeyValPair | None = None) -> Any:
        """The add form asks for store, key, JSON value and expiry; the change form shows more."""
        if obj is None:
            return [(None, {"fields": ["store", "key", "value_json", "expires_at"]})]
        value_fields = ["value_display", "value_type"]
        if self.has_change_permission(request, obj):
            value_fields.append("value_json")
        return [
            (None, {"fields": ["store", "key"]}),
            (_("Value"), {"fields": value_fields}),
            (_("Expiry"), {"fields": ["expires_at"]}),
            (_("Record"), {"fields": ["serializer", "version", "updated_at"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: KeyValPair | None = None) -> Any:
        """Store and key name a pair, so they are fixed once it exists."""
        if obj is None:
            return ()
        return (
            "store",
            "key",
            "value_display",
            "value_type",
            "serializer",
            "version",
            "updated_at",
        )

    def save_model(
        self, request: HttpRequest, obj: KeyValPair, form: ModelForm[KeyValPair], change: bool
    ) -> None:
        """Write the pair through the store API, not with ``Model.save()``."""
        assert isinstance(form, KeyValPairForm)
        form.store_pair(router.db_for_write(KeyValPair, instance=obj))

    # -- actions -------------------------------------------------------------------------

    @admin.action(description=_("Flush the stores of the selected pairs"), permissions=["delete"])
    def flush_selected_stores(self, request: HttpRequest, queryset: Pairs) -> HttpResponse | None:
        """Delete every pair of each store that has a selected pair, after a confirmation page."""
        using = queryset.db
        selected = dict(queryset.order_by("store").values_list("store").annotate(pairs=Count("pk")))
        if request.POST.get("post") == "yes":
            with transaction.atomic(using=using):
                deleted = sum(KeyVal(store, using=using).flush() for store in selected)
            self.message_user(
                request,
                ngettext(
                    "Flushed %(stores)d store (%(pairs)d pairs deleted).",
                    "Flushed %(stores)d stores (%(pairs)d pairs deleted).",
                    len(selected),
                )
                % {"stores": len(selected), "pairs": deleted},
                messages.SUCCESS,
            )
            return None  # back to the list
        totals = dict(
            KeyValPair.objects.using(using)
            .filter(store__in=list(selected))
            .order_by("store")
            .values_list("store")
            .annotate(pairs=Count("pk"))
        )
        stores = [
            {"name": store, "selected": count, "total": totals.get(store, count)}
            for store, count in selected.items()
        ]
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Flush stores"),
            "subtitle": None,
            "stores": stores,
            "pair_total": sum(store["total"] for store in stores),
            "selected_ids": list(queryset.values_list("pk", flat=True)),
            "opts": opts,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.flush_selected_confirmation_template, context)
