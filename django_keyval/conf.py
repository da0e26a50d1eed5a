"""Settings of django-keyval, read when used so ``override_settings`` works."""

from __future__ import annotations

from django.conf import settings as django_settings

#: Serialized values larger than this many bytes are refused (8 MiB).
DEFAULT_MAX_VALUE_SIZE = 8 * 1024 * 1024


class KeyValSettings:
    """Each property reads the Django setting of the same name, or its default."""

    @property
    def SERIALIZER(self) -> str:
        """``KEYVAL_SERIALIZER``: ``"pickle"``, ``"json"`` or a dotted path to a class."""
        return getattr(django_settings, "KEYVAL_SERIALIZER", "pickle")

    @property
    def MAX_VALUE_SIZE(self) -> int:
        """``KEYVAL_MAX_VALUE_SIZE``: the largest serialized value accepted, in bytes."""
        return getattr(django_settings, "KEYVAL_MAX_VALUE_SIZE", DEFAULT_MAX_VALUE_SIZE)

    @property
    def CULL_EVERY(self) -> int:
        """``KEYVAL_CULL_EVERY``: writes with a timeout between two culls on write; 0 disables."""
        return getattr(django_settings, "KEYVAL_CULL_EVERY", 1000)

    @property
    def CULL_BATCH_SIZE(self) -> int:
        """``KEYVAL_CULL_BATCH_SIZE``: expired rows deleted by one cull statement."""
        return getattr(django_settings, "KEYVAL_CULL_BATCH_SIZE", 1000)


keyval_settings = KeyValSettings()
