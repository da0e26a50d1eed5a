"""Check an installed django-keyval (from a wheel or an sdist) in a bare project.

Run with the interpreter of a fresh virtual environment into which only the
built artifact was installed, from a folder outside the source tree, so that
the installed copy is the one imported. ``nox -s build`` does exactly that.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django_keyval",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    USE_TZ=True,
    SECRET_KEY="check-dist-not-secret",
)
django.setup()

from django.core.management import call_command  # noqa: E402

import django_keyval  # noqa: E402
from django_keyval.models import KeyVal  # noqa: E402

package_dir = Path(django_keyval.__file__).resolve().parent
if "site-packages" not in package_dir.parts:
    sys.exit(f"imported django_keyval from {package_dir}, not from the install")

version = metadata.version("django-keyval")
if version != django_keyval.__version__:
    sys.exit(f"metadata says {version}, django_keyval says {django_keyval.__version__}")

if not (package_dir / "py.typed").is_file():
    sys.exit("py.typed is missing from the installed package")
if not list(package_dir.glob("migrations/0*.py")):
    sys.exit("the migrations are missing from the installed package")

call_command("migrate", verbosity=0)
kv = KeyVal("check_dist")
assert kv.set("answer", {"value": 42}) is True
assert kv.get("answer") == {"value": 42}
assert kv.delete("answer") is True

print(f"django-keyval {version} installed in {package_dir}: migrate, set, get, delete OK")
