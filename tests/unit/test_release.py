"""Which release answers: the version and commit that /healthz and `opply --version` report."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from opply.entrypoints import cli, release

PACKAGE_DIR = Path(release.__file__).resolve().parent.parent


def git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_a_checkout_reports_the_commit_it_has_checked_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPPLY_GIT_COMMIT", raising=False)

    assert release.commit() == git(PACKAGE_DIR, "rev-parse", "HEAD")


def test_the_commit_baked_into_an_image_wins_over_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPPLY_GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567")

    assert release.commit() == "0123456789abcdef0123456789abcdef01234567"


def test_a_copy_outside_any_checkout_reports_an_unknown_commit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPPLY_GIT_COMMIT", raising=False)
    (tmp_path / "__init__.py").write_text("")

    assert release.commit(tmp_path) == "unknown"


def test_a_copy_unpacked_inside_another_repository_does_not_report_its_commit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPPLY_GIT_COMMIT", raising=False)
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet",
        "--allow-empty", "-m", "another project")  # fmt: skip
    copy = tmp_path / "releases" / "opply"
    copy.mkdir(parents=True)
    (copy / "__init__.py").write_text("")

    assert release.commit(copy) == "unknown"


def test_opply_version_prints_the_version_and_commit_that_healthz_reports(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])

    assert exited.value.code == 0
    printed = capsys.readouterr().out.strip()
    current = release.current()
    assert printed == f"opply {metadata.version('opply')} ({current.commit})"
    assert current.version == metadata.version("opply")
