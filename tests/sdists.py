"""Source distributions from PyPI, fetched at run time and never committed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def download_sdist(requirement: str, destination: Path) -> Path:
    """Download the source distribution of ``requirement`` with pip; return its archive."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            requirement,
            "--dest",
            str(destination),
        ],
        check=True,
    )
    (archive,) = destination.glob("*.tar.gz")
    return archive
