"""Sphinx configuration of the django-keyval documentation.

Build the pages, and run every example in them against SQLite::

    sphinx-build -W --keep-going -n -b html docs docs/_build/html
    sphinx-build -W --keep-going -n -b doctest docs docs/_build/doctest
"""

from __future__ import annotations

import doctest
import os
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS)]

# Autodoc imports django_keyval.models, which needs a configured Django.
os.environ["DJANGO_SETTINGS_MODULE"] = "docs_settings"

import django  # noqa: E402

django.setup()

import keyval_console  # noqa: E402

import django_keyval  # noqa: E402

project = "django-keyval"
author = "django-keyval developers"
copyright = "django-keyval developers"  # noqa: A001  (Sphinx's name for it)
release = django_keyval.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "keyval_console",  # docs/keyval_console.py: tested command examples
]

exclude_patterns = ["_build"]
html_theme = "furo"
# Until the changelog gives this release a date, the sidebar must not suggest
# that it can be installed from PyPI.
_unreleased = f"{release} (unreleased)" in (ROOT / "HISTORY.rst").read_text(encoding="utf-8")
html_title = f"django-keyval {release}" + (" (unreleased)" if _unreleased else "")
html_static_path = ["_static"]
html_css_files = ["custom.css"]

# Keep the order of the source, which groups methods by what they do.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

# Every cross-reference must resolve (sphinx-build -n); these name types of
# Python, typing and Django, which have no pages here (and intersphinx would
# need the network, which the CI machines do not have).
nitpick_ignore_regex = [
    ("py:class", r"(collections\.abc|datetime|typing|types)\..*"),
    ("py:.*", r"django\..*"),
    ("py:class", r"(Any|Iterable|Iterator|AsyncIterator|Mapping|Callable)"),
    ("py:class", r"BaseDatabaseWrapper"),
    # Django's form field class, as the annotations of the admin's value kinds name it.
    ("py:class", r"Field"),
    ("py:class", r"(int|float|str|bytes|bool|dict|list|tuple|object|None|NoneType|type)"),
    ("py:exc", r"(KeyError|NameError|TypeError|ValueError|OverflowError|Exception)"),
    # Type variables of generic helpers.
    ("py:class", r".*\._T"),
]

# Exception messages are part of what the pages show, so they are compared
# too (Sphinx's default would ignore them).
doctest_default_flags = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1

# The doctest builder runs the examples of every page against the SQLite
# files of docs_settings; each page starts with empty stores.
doctest_global_setup = (
    """
from django_keyval.models import KeyVal
"""
    + keyval_console.DOCTEST_SETUP
)
doctest_global_cleanup = """
from django_keyval.models import KeyVal as _KeyVal
_KeyVal.flush_all()
_KeyVal.flush_all(using="other")
"""


def _create_tables(app: Any) -> None:
    """Create the tables for the doctest builder (the HTML builder needs none)."""
    if app.builder.name != "doctest":
        return
    from django.core.management import call_command

    for alias in ("default", "other"):
        call_command("migrate", database=alias, verbosity=0, interactive=False)


def _resolve_short_keyval_references(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``KeyVal.method`` written in any module's docstring.

    ``KeyVal`` is documented where users import it, ``django_keyval.models``;
    a docstring elsewhere (the exceptions, the serializers) may still name it
    briefly.
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not (target == "KeyVal" or target.startswith("KeyVal.")):
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env,
        node["refdoc"],
        app.builder,
        node["reftype"],
        f"django_keyval.models.{target}",
        node,
        contnode,
    )


def setup(app: Any) -> None:
    """Hook the table creation and the reference resolution into the build."""
    app.connect("builder-inited", _create_tables)
    app.connect("missing-reference", _resolve_short_keyval_references)
