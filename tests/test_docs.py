"""The API reference (docs/api.rst) names every public method, exception and export.

The reference lists methods one by one (``.. automethod::``) so that the page
can group them; these tests catch a method, an exception or a name of a
module's ``__all__`` added to the code but not to the page, and an entry left
on the page after its method went.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
import subprocess
import sys
from contextlib import suppress
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import skipUnless

from django.test import SimpleTestCase

import django_keyval
from django_keyval.exceptions import KeyValError
from django_keyval.models import KeyVal

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.rst"
INTERNALS_PAGE = API_PAGE.parent / "internals.rst"

#: Modules whose names are internals: documented, if at all, on the internals page.
INTERNAL_MODULES = (
    "django_keyval.admin",
    "django_keyval.async_api",
    "django_keyval.backends",
    "django_keyval.checks",
    "django_keyval.conf",
    "django_keyval.descriptors",
    "django_keyval.encoding",
    "django_keyval.forms",
    "django_keyval.listing",
    "django_keyval.store",
    "django_keyval.streams",
    "django_keyval.validation",
)

# ``.. automethod:: set`` inside ``.. autoclass:: django_keyval.models.KeyVal``,
# or written out in full; the same for properties and attributes.
_MEMBER_DIRECTIVE = re.compile(
    r"^\s*\.\. auto(?:method|property|attribute)::\s+"
    r"(?:django_keyval\.models\.KeyVal\.)?(?P<name>\w+)\s*$",
    re.MULTILINE,
)
_EXCEPTION_DIRECTIVE = re.compile(
    r"^\s*\.\. autoexception::\s+(?P<name>django_keyval(?:\.\w+)+)\s*$", re.MULTILINE
)
_KEYVAL_CLASS = re.compile(
    r"^\.\. autoclass:: django_keyval\.models\.KeyVal\s*$(?P<body>.*?)(?=^\S)",
    re.MULTILINE | re.DOTALL,
)
# Any autodoc directive that names its object in full, at any indentation.
_DOTTED_DIRECTIVE = re.compile(
    r"^\s*\.\. auto\w+::\s+(?P<path>django_keyval(?:\.\w+)+)\s*$", re.MULTILINE
)


def public_members(cls: type) -> set[str]:
    """Names of the public attributes of ``cls``: methods, async twins, properties."""
    return {name for name in dir(cls) if not name.startswith("_")}


def public_exceptions() -> set[str]:
    """Dotted paths of the public exception classes of every module of the package.

    Those of :mod:`django_keyval.exceptions`, and any other module's
    subclasses of :class:`~django_keyval.exceptions.KeyValError` (such as
    none today: every one is defined in :mod:`django_keyval.exceptions`).
    """
    found = set()
    modules = pkgutil.walk_packages(django_keyval.__path__, prefix="django_keyval.")
    for module_name in [django_keyval.__name__, *(info.name for info in modules)]:
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module_name
                and not name.startswith("_")
                and (module_name == "django_keyval.exceptions" or issubclass(value, KeyValError))
            ):
                found.add(f"{module_name}.{name}")
    return found


def package_modules() -> list[ModuleType]:
    """The package and every module in it, imported."""
    modules = pkgutil.walk_packages(django_keyval.__path__, prefix="django_keyval.")
    names = [django_keyval.__name__, *(info.name for info in modules)]
    return [importlib.import_module(name) for name in names]


def exported_names() -> dict[str, Any]:
    """``{"module.name": object}`` for every name in the ``__all__`` of a module of the package."""
    return {
        f"{module.__name__}.{name}": getattr(module, name)
        for module in package_modules()
        for name in getattr(module, "__all__", ())
    }


def resolve(path: str) -> Any:
    """Return the object a dotted path names (a module, or an attribute of one)."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(path)


def documented_paths(page: str) -> set[str]:
    """Dotted paths of the objects ``page`` renders with an autodoc directive."""
    return {m["path"] for m in _DOTTED_DIRECTIVE.finditer(page)}


def undocumented_exports(page: str, exports: dict[str, Any]) -> set[str]:
    """Those of ``exports`` (``{"module.name": object}``) that ``page`` does not render.

    A name re-exported from the module that defines it (``KeyVal`` in
    ``django_keyval.store`` and ``django_keyval.models``) is documented once,
    under either path: a class or function counts as documented when the
    page renders the same object.
    """
    paths = documented_paths(page)
    rendered = set()
    for path in paths:
        # A stale entry is reported by test_every_documented_path_exists.
        with suppress(ImportError, AttributeError):
            rendered.add(id(resolve(path)))
    return {
        path
        for path, value in exports.items()
        if path not in paths
        and not ((inspect.isclass(value) or inspect.isroutine(value)) and id(value) in rendered)
    }


def documented_members(page: str) -> set[str]:
    """Names documented under the ``KeyVal`` autoclass of ``page``."""
    match = _KEYVAL_CLASS.search(page)
    if match is None:
        return set()
    return {m["name"] for m in _MEMBER_DIRECTIVE.finditer(match["body"])}


def documented_exceptions(page: str) -> set[str]:
    """Names of the exceptions ``page`` renders with ``autoexception``."""
    return {m["name"] for m in _EXCEPTION_DIRECTIVE.finditer(page)}


class ReferenceCoverageTests(SimpleTestCase):
    """docs/api.rst against the code."""

    page = API_PAGE.read_text(encoding="utf-8")

    def test_every_public_keyval_member_is_documented(self) -> None:
        missing = public_members(KeyVal) - documented_members(self.page)
        self.assertEqual(
            missing,
            set(),
            f"add an '.. automethod::' (or autoproperty) line to {API_PAGE} for each",
        )

    def test_no_documented_member_is_stale(self) -> None:
        stale = documented_members(self.page) - public_members(KeyVal)
        self.assertEqual(stale, set(), f"{API_PAGE} documents members KeyVal no longer has")

    def test_async_twins_are_covered(self) -> None:
        # The twins are the easiest to forget; name a few so that a parser
        # that found nothing at all cannot pass.
        documented = documented_members(self.page)
        for name in ("aget", "aset", "aflush_all", "akeys", "acull", "astores"):
            with self.subTest(name=name):
                self.assertIn(name, documented)

    def test_every_exception_is_documented(self) -> None:
        missing = public_exceptions() - documented_exceptions(self.page)
        self.assertEqual(missing, set(), f"add an '.. autoexception::' line to {API_PAGE} for each")

    def test_no_documented_exception_is_stale(self) -> None:
        stale = documented_exceptions(self.page) - public_exceptions()
        self.assertEqual(stale, set())

    def test_every_name_in_a_modules_all_is_documented(self) -> None:
        internals = INTERNALS_PAGE.read_text(encoding="utf-8")
        missing = undocumented_exports(self.page + internals, exported_names())
        self.assertEqual(
            missing,
            set(),
            f"add an autodoc entry (autoclass, autofunction, autodata...) to {API_PAGE} "
            f"or, for an internal name, to {INTERNALS_PAGE}, for each",
        )

    def test_the_public_reference_documents_no_internals(self) -> None:
        internal = {
            path for path in documented_paths(self.page) if path.startswith(INTERNAL_MODULES)
        }
        self.assertEqual(internal, set(), f"move these to {INTERNALS_PAGE}")
        for name in ("signature_matches", "serializer_by_name", "_FORMAT", "execute"):
            with self.subTest(name):
                self.assertNotIn(name, self.page)

    def test_the_internals_page_says_what_it_is(self) -> None:
        internals = INTERNALS_PAGE.read_text(encoding="utf-8")
        self.assertTrue(internals.startswith("=========\nInternals\n=========\n"))
        self.assertIn("Nothing on this page is part of django-keyval's public API", internals)
        self.assertIn("django_keyval.backends.base.BaseOperations", internals)

    def test_methods_of_the_class_and_of_a_store_are_shown_alike(self) -> None:
        # flush_all, cull and stores work on the class and on an instance, as
        # their async twins do; all six are classmethods to the reader.
        for name in ("flush_all", "cull", "stores", "aflush_all", "acull", "astores"):
            with self.subTest(name):
                self.assertIsInstance(inspect.getattr_static(KeyVal, name), classmethod)

    def test_the_modules_with_all_are_found(self) -> None:
        # So that a discovery that found nothing cannot pass the test above.
        modules = {path.rpartition(".")[0] for path in exported_names()}
        for module in (
            "django_keyval.models",
            "django_keyval.forms",
            "django_keyval.validation",
            "django_keyval.serializers",
            "django_keyval.backends",
        ):
            with self.subTest(module=module):
                self.assertIn(module, modules)

    def test_every_documented_path_exists(self) -> None:
        internals = INTERNALS_PAGE.read_text(encoding="utf-8")
        for path in sorted(documented_paths(self.page + internals)):
            with self.subTest(path=path):
                try:
                    resolve(path)
                except (ImportError, AttributeError) as error:
                    self.fail(f"{API_PAGE} documents {path}, which does not exist: {error}")

    def test_every_documented_member_has_a_docstring(self) -> None:
        # autodoc renders an empty entry for a member without one.
        for name in sorted(documented_members(self.page)):
            with self.subTest(name=name):
                self.assertTrue(inspect.getdoc(getattr(KeyVal, name)), f"KeyVal.{name}")


class ParserTests(SimpleTestCase):
    """The parsing above notices what is missing (so the tests above can fail)."""

    page = """\
.. autoclass:: django_keyval.models.KeyVal
   :no-members:

   .. automethod:: get
   .. autoproperty:: name
   .. automethod:: django_keyval.models.KeyVal.aget

.. automethod:: django_keyval.models.KeyVal.set_elsewhere

.. autoexception:: django_keyval.exceptions.KeyValError
"""

    def test_members_are_read_from_the_keyval_class_only(self) -> None:
        self.assertEqual(documented_members(self.page), {"get", "name", "aget"})

    def test_a_member_left_out_is_reported(self) -> None:
        class Store:
            def get(self) -> None: ...

            async def aget(self) -> None: ...

            def pop(self) -> None: ...

            @property
            def name(self) -> str:
                return "store"

        self.assertEqual(public_members(Store) - documented_members(self.page), {"pop"})

    def test_exceptions_are_read(self) -> None:
        self.assertEqual(documented_exceptions(self.page), {"django_keyval.exceptions.KeyValError"})
        self.assertIn(
            "django_keyval.exceptions.KeyNotFoundError",
            public_exceptions() - documented_exceptions(self.page),
        )

    def test_every_exception_is_defined_in_the_exceptions_module(self) -> None:
        self.assertTrue(public_exceptions())
        for path in public_exceptions():
            self.assertTrue(path.startswith("django_keyval.exceptions."), path)

    def test_a_page_without_the_class_documents_nothing(self) -> None:
        self.assertEqual(documented_members("Nothing here.\n"), set())

    def test_dotted_paths_are_read_at_any_indentation(self) -> None:
        self.assertEqual(
            documented_paths(self.page),
            {
                "django_keyval.models.KeyVal",
                "django_keyval.models.KeyVal.aget",
                "django_keyval.models.KeyVal.set_elsewhere",
                "django_keyval.exceptions.KeyValError",
            },
        )

    def test_an_export_left_out_is_reported(self) -> None:
        from django_keyval import forms, validation

        exports = {
            "django_keyval.forms.decoded": forms.decoded,
            "django_keyval.validation.Timeout": validation.Timeout,
        }
        self.assertEqual(undocumented_exports(self.page, exports), set(exports))

    def test_a_reexport_is_documented_under_the_path_of_its_object(self) -> None:
        # The page renders django_keyval.models.KeyVal, the class store.py defines.
        exports = {"django_keyval.store.KeyVal": KeyVal}
        self.assertEqual(undocumented_exports(self.page, exports), set())

    def test_a_name_is_resolved_in_its_module(self) -> None:
        self.assertIs(resolve("django_keyval.models.KeyVal.aget"), KeyVal.aget)
        with self.assertRaises(AttributeError):
            resolve("django_keyval.models.KeyVal.set_elsewhere")


class InstallationTests(SimpleTestCase):
    """README and the installation page say how to get this version, not PyPI's 0.1.2."""

    root = API_PAGE.parent.parent
    version = django_keyval.__version__

    def unreleased(self) -> bool:
        history = (self.root / "HISTORY.rst").read_text(encoding="utf-8")
        return f"{self.version} (unreleased)" in history

    def test_pages_name_the_wheel_of_this_version(self) -> None:
        wheel = f"django_keyval-{self.version}-py3-none-any.whl"
        for page in (self.root / "README.rst", self.root / "docs" / "installation.rst"):
            with self.subTest(page=page.name):
                text = page.read_text(encoding="utf-8")
                self.assertIn('pip install "django-keyval>=0.2"', text)
                self.assertIn("python -m build", text)
                self.assertIn(wheel, text)
                self.assertNotRegex(text, r"pip install django-keyval\s*$")

    @skipUnless(
        importlib.util.find_spec("docutils"),
        "docs/conf.py loads Sphinx extensions: install the docs extra (.ci/run runs this "
        "module again once it has)",
    )
    def test_sidebar_title_says_unreleased_until_the_changelog_dates_the_release(self) -> None:
        # In a process of its own: conf.py configures Django for the docs.
        process = subprocess.run(
            [
                sys.executable,
                "-c",
                "import runpy; print(runpy.run_path('docs/conf.py')['html_title'])",
            ],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        suffix = " (unreleased)" if self.unreleased() else ""
        self.assertEqual(process.stdout, f"django-keyval {self.version}{suffix}\n")
