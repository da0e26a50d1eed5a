"""Run django-keyval 0.1.2's own test module, unmodified, against this package.

    python tests/legacy_012.py
    KEYVAL_TEST_DB=postgresql python tests/legacy_012.py
    KEYVAL_TEST_DB=mysql KEYVAL_TEST_OPERATIONS=mysql python tests/legacy_012.py

The 0.1.2 source distribution on PyPI ships ``django_keyval/tests.py``: the
closest thing there is to a definition of what 0.1.2's users rely on. It is
AGPL-licensed, so it is not part of this repository: each run downloads the
source distribution with pip into a temporary folder, takes the module from
it as it is, and runs it with ``tests/settings.py`` (the same
``KEYVAL_TEST_*`` variables as ``runtests.py``). The exit status is 0 when
every test passes.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sdists import download_sdist  # noqa: E402  (run as a script: ROOT first)

#: The release whose tests are run, and the module taken from its sdist.
REQUIREMENT = "django-keyval==0.1.2"
MEMBER = "django_keyval/tests.py"
#: The package the module is put in, beside (never instead of) this django_keyval.
PACKAGE = "keyval_012"


def fetch(directory: Path) -> None:
    """Download the 0.1.2 sdist into ``directory``; put its test module in ``PACKAGE``."""
    sdist = download_sdist(REQUIREMENT, directory)
    with tarfile.open(sdist) as archive:
        member = next(name for name in archive.getnames() if name.endswith("/" + MEMBER))
        extracted = archive.extractfile(member)
        assert extracted is not None
        source = extracted.read()
    package = directory / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tests.py").write_bytes(source)


def main() -> int:
    """Fetch the module, run it, and return the exit status."""
    with tempfile.TemporaryDirectory(prefix="keyval-012-") as folder:
        directory = Path(folder)
        fetch(directory)
        sys.path.insert(0, str(directory))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

        import django
        from django.conf import settings
        from django.test.utils import get_runner

        django.setup()
        runner = get_runner(settings)(verbosity=2, interactive=False)
        failures = runner.run_tests([f"{PACKAGE}.tests"])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
