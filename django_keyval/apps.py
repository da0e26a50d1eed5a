"""Application configuration of django-keyval."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KeyValConfig(AppConfig):
    """Registers the system checks, and the SQL functions SQLite lacks."""

    name = "django_keyval"
    verbose_name = _("Key-value store")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
        from .functions import connect_sqlite_functions

        connect_sqlite_functions()
