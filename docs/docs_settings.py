"""Django settings used while building the documentation.

Autodoc needs the app registry ready to import the models, and the doctest
builder runs every example of the guide against these two SQLite files, made
in a temporary folder that is removed when the build ends.
"""

import atexit
import os
import shutil
import tempfile

_directory = tempfile.mkdtemp(prefix="keyval-docs-")
atexit.register(shutil.rmtree, _directory, ignore_errors=True)
#: Where the command examples run (and write their export files).
DOCS_WORKDIR = _directory

DATABASES = {
    alias: {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_directory, f"{alias}.sqlite3"),
    }
    for alias in ("default", "other")
}
SECRET_KEY = "django-keyval-documentation-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_keyval",
]
