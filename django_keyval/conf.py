"""Settings of django-keyval, read once and re-read when ``override_settings`` changes them."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

#: Serialized values larger than this many bytes are refused (8 MiB).
DEFAULT_MAX_VALUE_SIZE = 8 * 1024 * 1024

DEFAULTS: dict[str, Any] = {
    "KEYVAL_SERIALIZER": "pickle",
    "KEYVAL_MAX_VALUE_SIZE": DEFAULT_MAX_VALUE_SIZE,
    "KEYVAL_CULL_EVERY": 1000,
    "KEYVAL_CULL_BATCH_SIZE": 1000,
    "KEYVAL_OPERATIONS": {},
}


class KeyValSettings:
    """Each property is the Django setting of the same name, or its default.

    Values are cached: every store operation reads several of them, and
    looking up an unset setting on ``django.conf.settings`` costs an
    exception each time. The cache is emptied whenever Django announces a
    changed setting (``override_settings`` does).
    """

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        try:
            return self._cache[name]
        except KeyError:
            value = self._cache[name] = getattr(django_settings, name, DEFAULTS[name])
            return value

    def clear(self) -> None:
        """Forget the cached values; the next read looks at the settings again."""
        self._cache.clear()

    @property
    def SERIALIZER(self) -> str:
        """``KEYVAL_SERIALIZER``: ``"pickle"``, ``"json"`` or a dotted path to a class."""
        return self._get("KEYVAL_SERIALIZER")  # type: ignore[no-any-return]

    @property
    def MAX_VALUE_SIZE(self) -> int:
        """``KEYVAL_MAX_VALUE_SIZE``: the largest serialized value accepted, in bytes."""
        return self._get("KEYVAL_MAX_VALUE_SIZE")  # type: ignore[no-any-return]

    @property
    def CULL_EVERY(self) -> int:
        """``KEYVAL_CULL_EVERY``: writes with a timeout between two culls on write; 0 disables."""
        return self._get("KEYVAL_CULL_EVERY")  # type: ignore[no-any-return]

    @property
    def CULL_BATCH_SIZE(self) -> int:
        """``KEYVAL_CULL_BATCH_SIZE``: expired rows deleted by one cull statement."""
        return self._get("KEYVAL_CULL_BATCH_SIZE")  # type: ignore[no-any-return]

    @property
    def OPERATIONS(self) -> dict[str, str]:
        """``KEYVAL_OPERATIONS``: database alias -> dotted path of the operations class to use."""
        return self._get("KEYVAL_OPERATIONS")  # type: ignore[no-any-return]


keyval_settings = KeyValSettings()


@receiver(setting_changed)
def _reload_settings(setting: str, **kwargs: Any) -> None:
    if setting.startswith("KEYVAL_"):
        keyval_settings.clear()
