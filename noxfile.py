"""Test sessions for every supported Python/Django pair, and checks around them.

    nox -s tests            the suite on every pair below (SQLite by default;
                            KEYVAL_TEST_DB=postgresql|mysql is passed through)
    nox -s build            build sdist and wheel, install each in a fresh venv
    nox -s lint             ruff and mypy
    nox -s django_cache_suite
                            Django's own cache tests against KeyValCache, for
                            each Django release series (KEYVAL_TEST_DB too)

The interpreters are looked up as python3.10 ... python3.13 on PATH.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).resolve().parent

# Keep in step with the classifiers in setup.cfg: exactly these pairs are
# supported. Django 6.x requires Python 3.12 or newer.
SUPPORTED = [
    ("3.10", "5.2"),
    ("3.11", "5.2"),
    ("3.12", "5.2"),
    ("3.13", "5.2"),
    ("3.12", "6.0"),
    ("3.13", "6.0"),
    ("3.12", "6.1"),
    ("3.13", "6.1"),
]


@nox.session
@nox.parametrize(
    "python,django",
    SUPPORTED,
    ids=[f"py{python}-django{django}" for python, django in SUPPORTED],
)
def tests(session: nox.Session, django: str) -> None:
    """Run runtests.py with the given Django release series."""
    extras = "test,mysql" if os.environ.get("KEYVAL_TEST_DB") == "mysql" else "test"
    session.install(f".[{extras}]", f"Django~={django}.0")
    session.run("python", "-m", "django", "--version")
    session.run("python", "runtests.py", *session.posargs)


# Django's cache tests for each release series: the newest Python each supports.
CACHE_SUITE = [("3.12", "5.2"), ("3.12", "6.0"), ("3.12", "6.1")]


@nox.session
@nox.parametrize(
    "python,django",
    CACHE_SUITE,
    ids=[f"django{django}" for _, django in CACHE_SUITE],
)
def django_cache_suite(session: nox.Session, django: str) -> None:
    """Run Django's BaseCacheTests against KeyValCache (python -m tests.django_suite)."""
    extras = "test,mysql" if os.environ.get("KEYVAL_TEST_DB") == "mysql" else "test"
    session.install(f".[{extras}]", f"Django~={django}.0")
    session.run("python", "-m", "tests.django_suite", *session.posargs)


@nox.session(python="3.12")
def build(session: nox.Session) -> None:
    """Build the sdist and the wheel; install each in a fresh venv and use it."""
    session.install("build")
    tmp = Path(session.create_tmp()).resolve()
    dist = tmp / "dist"
    session.run("python", "-m", "build", "--outdir", str(dist), str(ROOT))
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    for kind, artifact in (("wheel", wheel), ("sdist", sdist)):
        env_dir = tmp / f"venv-{kind}"
        session.run("python", "-m", "venv", "--clear", str(env_dir))
        python = str(env_dir / "bin" / "python")
        session.run(python, "-m", "pip", "install", "--quiet", str(artifact), external=True)
        # Run from the temporary folder so that the source tree is not on
        # sys.path and the installed copy is the one imported.
        with session.chdir(tmp):
            session.run(python, str(ROOT / ".ci" / "check_dist.py"), external=True)


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """Check style with ruff and types with mypy (django-stubs)."""
    # mypy also checks the tests and runtests.py, which import the test extra.
    session.install("-e", ".[dev,test]")
    session.run("ruff", "check", ".")
    session.run("mypy")
