"""Which release this process runs: the package's version and the git commit it was made from.

``GET /healthz`` and ``opply --version`` say it, so that a rolling deploy can be watched
instance by instance. The commit comes from ``OPPLY_GIT_COMMIT`` when it is set (the image
bakes it in at build time: an image holds no ``.git``), else from git when the package runs
from a checkout, else it is ``unknown``.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

UNKNOWN = "unknown"
PACKAGE_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Release:
    version: str
    commit: str

    def __str__(self) -> str:
        return f"opply {self.version} ({self.commit})"


def version() -> str:
    try:
        return metadata.version("opply")
    except metadata.PackageNotFoundError:
        return UNKNOWN


def _git(folder: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(  # noqa: S603 - fixed arguments, no user input
            ["git", "-C", str(folder), *args],  # noqa: S607 - git from PATH, as an operator runs it
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def commit(package_dir: Path = PACKAGE_DIR) -> str:
    baked = os.environ.get("OPPLY_GIT_COMMIT", "").strip()
    if baked:
        return baked
    # Only a checkout that tracks this very package: a copy unpacked inside some other
    # repository's folder must not report that repository's commit.
    if _git(package_dir, "ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return UNKNOWN
    return _git(package_dir, "rev-parse", "HEAD") or UNKNOWN


@functools.cache
def current() -> Release:
    """Worked out once per process: a release does not change under a running process."""
    return Release(version=version(), commit=commit())
