#!/usr/bin/env python3
"""Set up a virtual environment, then run the example project or the tests.

    python3 dev.py demo    the example project on its SQLite database:
                           migrate, then store and read values through the
                           Python API and through ``manage.py keyval``
    python3 dev.py test    the whole test suite; extra arguments are passed
                           to runtests.py (test labels, for instance)

The environment is made in ``.venv`` beside this file and reused afterwards.
Only the standard library is used here, so a fresh machine needs nothing but
Python 3.10 or newer. ``KEYVAL_TEST_DB=postgresql|mysql|galera`` picks the test
database (see README.rst); for ``mysql`` the mysqlclient driver is installed
too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
EXAMPLE = ROOT / "example"


def venv_python() -> Path:
    """Return the interpreter of the project's virtual environment."""
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def show(arg: object) -> str:
    """Shorten a path for printing: relative to the project, or bare 'python'."""
    if arg == venv_python():
        return "python"
    if isinstance(arg, Path):
        return os.path.relpath(arg, ROOT)
    return str(arg)


def run(*args: object, check: bool = True) -> int:
    """Print a command, run it from the project folder, return its status.

    With ``check`` a failing command ends this script with the same status.
    """
    print("$", " ".join(show(arg) for arg in args), flush=True)
    # pip's "new version available" notice is noise in every run's output.
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    status = subprocess.run([str(arg) for arg in args], cwd=ROOT, env=env).returncode
    if check and status != 0:
        print(f"dev.py: command failed with exit status {status}", file=sys.stderr)
        sys.exit(status)
    return status


def install(extras: str = "") -> Path:
    """Create .venv if needed, install the package into it, return its python."""
    python = venv_python()
    if not python.exists():
        print(f"Creating a virtual environment in {show(VENV)}/", flush=True)
        venv.create(VENV, with_pip=True)
        # The pip bundled with Python 3.10 predates editable installs of
        # projects configured only through pyproject.toml/setup.cfg (PEP 660).
        run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(python, "-m", "pip", "install", "--quiet", "--editable", f".{extras}")
    return python


def demo() -> int:
    """Run the example project: migrate, the API walkthrough, the command."""
    python = install()
    manage = EXAMPLE / "manage.py"
    run(python, manage, "migrate", "--verbosity", "1")
    print("\n# The Python API (example/demo.py)", flush=True)
    run(python, EXAMPLE / "demo.py")
    print("\n# The same store from the command line", flush=True)
    keyval = [python, manage, "keyval"]
    run(*keyval, "set", "demo", "greeting", "hello")
    run(*keyval, "get", "demo", "greeting")
    # The 0.1.2 form of the same command line still works.
    run(*keyval, "-c", "get", "-n", "demo", "-k", "greeting")
    run(*keyval, "del", "demo", "greeting")
    # The key is gone now: the command reports it and exits non-zero, which is
    # how shell scripts tell a missing key from a found one.
    status = run(*keyval, "get", "demo", "greeting", check=False)
    print(f"(exit status {status}: the key was deleted)")
    print("\nDemo finished.")
    return 0


def test(runtests_args: list[str]) -> int:
    """Install the test requirements and run runtests.py; return its status."""
    extras = "[test]"
    if os.environ.get("KEYVAL_TEST_DB") in ("mysql", "galera"):
        extras = "[test,mysql]"
    python = install(extras)
    return run(python, ROOT / "runtests.py", *runtests_args, check=False)


def main() -> int:
    # Checked at run time too: this script is what a user with an old Python runs first.
    if sys.version_info < (3, 10):  # noqa: UP036
        sys.exit("dev.py needs Python 3.10 or newer.")
    parser = argparse.ArgumentParser(
        description="Set up .venv, then run the demo or the test suite.",
    )
    parser.add_argument("command", choices=["demo", "test"])
    parser.add_argument(
        "runtests_args",
        nargs=argparse.REMAINDER,
        help="for 'test': arguments passed on to runtests.py",
    )
    options = parser.parse_args()
    if options.command == "demo":
        if options.runtests_args:
            parser.error("'demo' takes no further arguments")
        return demo()
    return test(options.runtests_args)


if __name__ == "__main__":
    sys.exit(main())
