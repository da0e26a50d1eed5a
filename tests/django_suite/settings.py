"""The test settings plus the ``cache`` app of Django's own test suite (its ``Poll`` model)."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "cache"]
