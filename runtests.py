#!/usr/bin/env python
"""Run the test suite with the minimal settings of ``tests/settings.py``.

    python runtests.py                      # every test, with coverage
    python runtests.py tests.test_store     # some tests
    KEYVAL_TEST_DB=postgresql python runtests.py

The full run measures coverage of ``django_keyval`` and fails under 95%.
``--no-coverage`` skips the measurement.
"""

import os
import sys
import warnings

FAIL_UNDER = 95


def main(argv: list[str]) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    measure = "--no-coverage" not in argv
    argv = [arg for arg in argv if arg != "--no-coverage"]
    labels = [arg for arg in argv if not arg.startswith("-")]
    cov = None
    if measure:
        import coverage

        cov = coverage.Coverage(source=["django_keyval"], branch=False)
        cov.start()

    # Our own warnings, and Django's deprecations, are errors here.
    warnings.simplefilter("error", DeprecationWarning)
    warnings.simplefilter("error", PendingDeprecationWarning)
    warnings.filterwarnings("error", module="django_keyval")

    import django
    from django.conf import settings
    from django.test.utils import get_runner

    django.setup()
    runner = get_runner(settings)(
        verbosity=2 if "-v" in argv else 1, interactive=False, failfast="--failfast" in argv
    )
    failures = runner.run_tests(labels or ["tests"])

    if cov is not None:
        cov.stop()
        cov.save()
        percent = cov.report(show_missing=True, skip_covered=True)
        if not labels and percent < FAIL_UNDER:
            print(f"Coverage {percent:.1f}% is under {FAIL_UNDER}%.", file=sys.stderr)
            return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
