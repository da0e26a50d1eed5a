"""Fetch Django's own cache tests for the installed Django and run them against KeyValCache.

    python -m tests.django_suite                     # on SQLite
    KEYVAL_TEST_DB=postgresql python -m tests.django_suite
    python -m tests.django_suite -v KeyValCacheTests.test_cull
    python -m tests.django_suite --parallel 4   # the sleeps of the tests overlap

The source distribution of the installed Django release is downloaded once
(``pip download --no-deps --no-binary :all: django==X.Y.Z``) into
``.django-suite/`` at the top of the repository, which git ignores, and its
``tests/cache/`` folder is unpacked beside it. The tests are then run
unmodified by Django's test runner, with ``tests/settings.py`` (the database
``KEYVAL_TEST_DB`` picks) plus Django's ``cache`` test app. The exit status
is 0 when every test passed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import time
import unittest
import warnings
from pathlib import Path

from tests.sdists import download_sdist

REPOSITORY = Path(__file__).resolve().parents[2]
DOWNLOADS = REPOSITORY / ".django-suite"
TEST_MODULE = "tests.django_suite.cache_backend"


def django_tests_folder(version: str) -> Path:
    """Return the ``tests/`` folder of Django ``version``'s sdist, fetching it if needed."""
    folder = DOWNLOADS / f"django-{version}" / "tests"
    if (folder / "cache" / "tests.py").exists():
        return folder
    DOWNLOADS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DOWNLOADS) as download:
        archive = download_sdist(f"django=={version}", Path(download))
        prefix = f"{archive.name.removesuffix('.tar.gz')}/tests/cache/"
        with tarfile.open(archive) as sdist:
            members = [member for member in sdist.getmembers() if member.name.startswith(prefix)]
            if not members:
                raise SystemExit(f"{archive.name} holds no {prefix}")
            target = DOWNLOADS / f"django-{version}"
            for member in members:
                member.name = member.name.removeprefix(archive.name.removesuffix(".tar.gz") + "/")
            sdist.extractall(target, members=members, filter="data")
    return folder


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.django_suite")
    parser.add_argument("labels", nargs="*", help="tests to run, e.g. KeyValCacheTests.test_cull")
    parser.add_argument("-v", "--verbose", action="store_true", help="name each test")
    parser.add_argument("--failfast", action="store_true", help="stop at the first failure")
    parser.add_argument(
        "--parallel",
        type=int,
        default=0,
        help="run in N processes, each on a clone of the test database "
        "(most of the time goes to the tests' sleeps)",
    )
    options = parser.parse_args(argv)
    import django

    folder = django_tests_folder(django.get_version())
    sys.path.insert(0, str(folder))
    sys.path.insert(0, str(REPOSITORY))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.django_suite.settings"
    # Warnings from django-keyval are errors here, as in runtests.py.
    warnings.filterwarnings("error", module="django_keyval")
    django.setup()

    from django.conf import settings
    from django.db import connection
    from django.test.utils import get_runner

    labels = [
        label if label.startswith("tests.") else f"{TEST_MODULE}.{label}"
        for label in options.labels
    ]
    runner_class = get_runner(settings)

    class Runner(runner_class):  # type: ignore[valid-type,misc]
        """Django's runner, keeping the result to report its counts."""

        result: unittest.TestResult

        def run_suite(self, suite: unittest.TestSuite, **kwargs: object) -> unittest.TestResult:
            self.result = super().run_suite(suite, **kwargs)
            return self.result

    runner = Runner(
        verbosity=2 if options.verbose else 1,
        interactive=False,
        failfast=options.failfast,
        parallel=options.parallel,
    )
    started = time.monotonic()
    runner.run_tests(labels or [TEST_MODULE])
    result = runner.result
    passed = result.testsRun - len(result.failures) - len(result.errors) - len(result.skipped)
    passed -= len(result.unexpectedSuccesses)
    print(
        f"Django {django.get_version()} cache tests on {connection.vendor}: "
        f"ran {result.testsRun}, passed {passed}, skipped {len(result.skipped)}, "
        f"failed {len(result.failures)}, errors {len(result.errors)} "
        f"in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
