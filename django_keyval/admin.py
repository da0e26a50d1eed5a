"""The Django admin for key-value pairs: browse, search, edit as JSON, flush stores.

Values are decoded for display with their signature checked first, so a
pickle written into the table by anything but the store is shown as
"⚠ signature mismatch" and never unpickled.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Value
from django.db.models.functions import Length, Substr
from django.db.models.lookups import Contains
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .display import PREFIX_ATTRIBUTE, PREVIEW_BYTES, SIZE_ATTRIBUTE, decoded
from .exceptions import PairChangedError
from .forms import KeyValPairForm
from .functions import UnicodeLower
from .models import KeyVal, KeyValLock, KeyValPair
from .table import route
from .value_fields import VALUE_KINDS

if TYPE_CHECKING:
    Pairs = QuerySet[KeyValPair]
    _PairAdmin = admin.ModelAdmin[KeyValPair]
else:  # ModelAdmin cannot be subscripted at run time
    _PairAdmin = admin.ModelAdmin

__all__ = [
    "ExpiryListFilter",
    "KeyValLockAdmin",
    "KeyValPairAdmin",
    "PairChangeList",
    "StoreListFilter",
    "short_duration",
]


def short_duration(seconds: float) -> str:
    """Return ``seconds`` as a short, rounded-down duration: "45 s", "10 min", "2 h", "3 days".

    The number and its unit are joined by a no-break space, so they never
    end up on two lines of a narrow column.
    """
    seconds = int(seconds)
    if seconds < 60:
        return gettext("%(count)d\u00a0s") % {"count": seconds}
    if seconds < 3600:
        return gettext("%(count)d\u00a0min") % {"count": seconds // 60}
    if seconds < 2 * 86400:
        return gettext("%(count)d\u00a0h") % {"count": seconds // 3600}
    days = seconds // 86400
    return ngettext("%(count)d\u00a0day", "%(count)d\u00a0days", days) % {"count": days}


def _exact_time(when: datetime.datetime) -> str:
    return formats.localize(timezone.localtime(when) if timezone.is_aware(when) else when)


class PairChangeList(ChangeList):
    """The list of pairs: reads at most :data:`~django_keyval.display.PREVIEW_BYTES` of each value.

    A page of large values would otherwise load them all whole to show 80
    characters of each.
    """

    def get_queryset(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Pairs:
        """Defer the value; select its first bytes and its size instead."""
        queryset: Pairs = super().get_queryset(request, *args, **kwargs)
        bounded: Pairs = queryset.defer("value").annotate(
            **{
                PREFIX_ATTRIBUTE: Substr("value", 1, PREVIEW_BYTES),
                SIZE_ATTRIBUTE: Length("value"),
            }
        )
        return bounded


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
            ("live", _("Expires later")),
            ("durable", _("Never expires")),
            ("expired", _("Expired")),
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
    list_display = (
        "store",
        "key",
        "value_preview",
        "value_type_name",
        "expiry",
        "version",
        "updated",
    )
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
        would tell case. Both sides are lowercased by the database instead
        (every letter, not only ASCII ones: see
        :class:`~django_keyval.functions.UnicodeLower`), so the search
        ignores case alike everywhere. Quoted words are kept
        whole, as in Django's own admin search.
        """
        for word in smart_split(search_term):
            if word[0] in "\"'" and word[-1] == word[0] and len(word) > 1:
                word = unescape_string_literal(word)
            needle = UnicodeLower(Value(word))
            queryset = queryset.filter(
                Q(Contains(UnicodeLower("key"), needle))
                | Q(Contains(UnicodeLower("store"), needle))
            )
        return queryset, False

    # -- columns and read-only fields ------------------------------------------

    class Media:
        css = {"all": ["django_keyval/admin/keyval.css"]}

    @admin.display(description=_("value"))
    def value_preview(self, pair: KeyValPair) -> str:
        """The value's ``repr`` on one line, cut short; a marker if it cannot be decoded."""
        return decoded(pair).preview()

    @admin.display(description=_("type"))
    def value_type_name(self, pair: KeyValPair) -> str:
        """The name of the value's type."""
        return decoded(pair).type_name

    @admin.display(description=_("expires"), ordering="expires_at")
    def expiry(self, pair: KeyValPair) -> str:
        """When the pair expires, relative to now ("in 10 min", "expired 2 h ago"), or "Never".

        The exact time is in the ``title``, shown when the pointer rests on it.
        """
        if pair.expires_at is None:
            return gettext("Never")
        expires = pair.expires_at
        exact = _exact_time(expires)
        now = timezone.now() if timezone.is_aware(expires) else datetime.datetime.now()
        seconds = (expires - now).total_seconds()
        if seconds > 0:
            return format_html(
                '<span title="{}">{}</span>',
                exact,
                gettext("in %(time)s") % {"time": short_duration(seconds)},
            )
        return format_html(
            '<span class="keyval-expired" title="{}">{}</span>',
            exact,
            gettext("expired %(time)s ago") % {"time": short_duration(-seconds)},
        )

    @admin.display(description=_("updated at"), ordering="updated_at")
    def updated(self, pair: KeyValPair) -> str:
        """How long ago the pair was last written ("5 min ago"); the exact time on hover."""
        written = pair.updated_at
        now = timezone.now() if timezone.is_aware(written) else datetime.datetime.now()
        seconds = (now - written).total_seconds()
        ago = (
            gettext("just now")
            if seconds < 60
            else gettext("%(time)s ago") % {"time": short_duration(seconds)}
        )
        return format_html('<span title="{}">{}</span>', _exact_time(written), ago)

    @admin.display(description=_("value"))
    def value_display(self, pair: KeyValPair) -> str:
        """The whole value, pretty-printed, with the reason when it cannot be edited here."""
        current = decoded(pair)
        reason = ""
        if current.problem:
            reason = gettext(
                "This value cannot be decoded, so it cannot be edited. To replace it, "
                "choose the type of a new value below."
            )
        elif current.kind is None:
            reason = gettext(
                "No field can edit a value of type %(type)s exactly, so it is shown "
                "read-only. To replace it, choose the type of a new value below."
            ) % {"type": current.type_name}
        return format_html(
            '<div class="keyval-readonly"><pre class="keyval-value">{}</pre>{}</div>',
            current.pretty(),
            format_html('<div class="help keyval-reason">{}</div>', reason) if reason else "",
        )

    # -- the change form -------------------------------------------------------------

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        """The list of pairs reads a bounded prefix of each value, never the whole value."""
        return PairChangeList

    def get_fieldsets(self, request: HttpRequest, obj: KeyValPair | None = None) -> Any:
        """The add form asks for store, key, type, value and expiry; the change form shows more."""
        value_fields = ["value_type", *(kind.field_name for kind in VALUE_KINDS.values())]
        if obj is None:
            return [(None, {"fields": ["store", "key", *value_fields, "expires_at"]})]
        editable = self.has_change_permission(request, obj)
        shown: list[str] = []
        if not editable or decoded(obj).kind is None:
            shown.append("value_display")
        if editable:
            shown += [value_fields[0], "confirm_type_change", *value_fields[1:]]
        else:
            shown.append("value_type_name")
        record = ["serializer", "version", "updated_at"]
        if editable:
            record.append("opened_version")  # a hidden input: the version the page shows
        return [
            (None, {"fields": ["store", "key"]}),
            (_("Value"), {"fields": shown}),
            (_("Expiry"), {"fields": ["expires_at"]}),
            (_("Record"), {"fields": record}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: KeyValPair | None = None) -> Any:
        """Store and key name a pair, so they are fixed once it exists."""
        if obj is None:
            return ()
        return (
            "store",
            "key",
            "value_display",
            "value_type_name",
            "serializer",
            "version",
            "updated_at",
        )

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Show the page again, with the reason, when a save lost a race with another writer.

        The form checks that nobody changed the pair since the page was
        shown; a writer that slips in after that check makes the save raise
        :class:`~django_keyval.exceptions.PairChangedError`, which rolls the
        admin's transaction back.
        """
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except PairChangedError as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(
        self, request: HttpRequest, obj: KeyValPair, form: ModelForm[KeyValPair], change: bool
    ) -> None:
        """Write the pair through the store API, not with ``Model.save()``."""
        assert isinstance(form, KeyValPairForm)
        form.store_pair(route(True, instance=obj))
        if not change and form.new_store:
            self.message_user(
                request,
                gettext("Store “%(store)s” had no pairs: this pair is its first.")
                % {"store": obj.store},
                messages.WARNING,
            )

    # -- actions -------------------------------------------------------------------------

    @admin.action(description=_("Flush the stores of the selected pairs"), permissions=["delete"])
    def flush_selected_stores(self, request: HttpRequest, queryset: Pairs) -> HttpResponse | None:
        """Delete every pair of each store that has a selected pair, after a confirmation page."""
        using = queryset.db
        selected = dict(queryset.order_by("store").values_list("store").annotate(pairs=Count("pk")))
        if request.POST.get("post") == "yes":
            with transaction.atomic(using=using):
                # The rows the list showed, expired ones too, counted in the
                # transaction that deletes them (flush() returns None).
                deleted = KeyValPair.objects.using(using).filter(store__in=list(selected)).count()
                for store in selected:
                    KeyVal(store, using=using).flush()
            self.message_user(
                request,
                gettext("Flushed %(stores)s (%(pairs)s deleted).")
                % {
                    "stores": ngettext("%(count)d store", "%(count)d stores", len(selected))
                    % {"count": len(selected)},
                    "pairs": ngettext("%(count)d pair", "%(count)d pairs", deleted)
                    % {"count": deleted},
                },
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


if TYPE_CHECKING:
    _LockAdmin = admin.ModelAdmin[KeyValLock]
else:
    _LockAdmin = admin.ModelAdmin


@admin.register(KeyValLock)
class KeyValLockAdmin(_LockAdmin):
    """The locks, as locks: name, held or free, the end of the lease, the fencing token.

    Read-only: a lock's state belongs to its holders, and its row is never
    deleted (its token must only go up), so the admin offers no add, change
    or delete.
    """

    list_display = ["name", "store", "state", "lease_ends", "token", "updated_at"]
    list_filter = ["store"]
    search_fields = ["name", "store"]
    ordering = ["store", "name"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Locks are taken with ``KeyVal.lock()``, never added by hand."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A lock's state is its holders'; the admin only shows it."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A lock's row is kept for good: deleting it would let its fencing token start again."""
        return False

    @admin.display(description=_("state"))
    def state(self, lock: KeyValLock) -> str:
        """Held (for how much longer) or free."""
        if not lock.is_held:
            return gettext("free")
        left = (lock.lease_ends_at - timezone.now()).total_seconds()
        return gettext("held, %(left)s left") % {"left": short_duration(max(left, 0))}

    @admin.display(description=_("end of the lease"), ordering="lease_end")
    def lease_ends(self, lock: KeyValLock) -> str:
        """When the latest lease ends or ended; a lock never taken shows a dash."""
        if not lock.lease_end:
            return "-"
        return _exact_time(lock.lease_ends_at)
