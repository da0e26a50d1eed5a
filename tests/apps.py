"""The test suite as an app, so that it can hook into Django's start-up."""

from __future__ import annotations

from django.apps import AppConfig


class StatementCheckConfig(AppConfig):
    """Installed when ``KEYVAL_TEST_OPERATIONS`` forces an operations class."""

    name = "tests"
    label = "keyval_tests"

    def ready(self) -> None:
        """Check every statement the forced class sends (see :mod:`tests.statements`)."""
        from .statements import install

        install()
