"""The source distribution carries what its tests read, and the licence is declared."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Folders whose every file the sdist must carry (tests read docs/ and lessons/).
CARRIED = ("docs", "lessons", "tests", "smtp_tutor")
_SKIP = {".venv", ".git", ".hypothesis", "build", "dist", "__pycache__", ".pytest_cache"}


def _source_files(root: Path) -> set[str]:
    found = set()
    for folder in CARRIED:
        for path in (root / folder).rglob("*"):
            parts = set(path.relative_to(root).parts)
            if path.is_file() and not parts & _SKIP and path.suffix not in (".pyc", ".pyo"):
                found.add(path.relative_to(root).as_posix())
    return found


def _copy_tree(target: Path) -> None:
    """The checkout without venvs and build output: building writes egg-info beside it."""
    shutil.copytree(
        ROOT,
        target,
        ignore=shutil.ignore_patterns(*_SKIP, "*.egg-info", ".ruff_cache", "*.pyc"),
    )


@dataclass(frozen=True)
class Sdist:
    source: Path  # the copy of the checkout it was built from
    names: list[str]  # the archive's members
    unpacked: Path  # its top folder, extracted


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Sdist:
    """The checkout's sdist, built with `python -m build`, and its unpacked tree."""
    work = tmp_path_factory.mktemp("sdist")
    source = work / "source"
    _copy_tree(source)
    out = work / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (archive,) = out.glob("smtp_tutor-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(work / "unpacked", filter="data")
    return Sdist(source, names, work / "unpacked" / names[0].split("/")[0])


def test_sdist_has_every_file_of_docs_lessons_tests_and_the_package(
    sdist: Sdist,
) -> None:
    top = sdist.names[0].split("/")[0]
    members = {name.removeprefix(top + "/") for name in sdist.names}
    missing = sorted(_source_files(sdist.source) - members)
    assert not missing, f"not in the sdist: {missing}"
    for required in ("LICENSE", "README.md", "pyproject.toml", "MANIFEST.in", "docs/transcript.md"):
        assert required in members, required
    assert not [m for m in members if m.endswith(".pyc") or "__pycache__" in m]


def test_tests_that_read_docs_pass_in_the_unpacked_sdist(sdist: Sdist) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "documented_examples",
            "tests/test_transcript.py",
        ],
        cwd=sdist.unpacked,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout


def test_licence_file_is_declared_and_mit() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "2026 smtp-tutor developers" in text
    versions = [c for c in project["classifiers"] if c.startswith("Programming Language")]
    assert "Programming Language :: Python :: 3.11" in versions


def test_every_package_folder_is_in_the_wheel() -> None:
    """pyproject lists the packages by hand: a new folder left out would vanish from the wheel."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    folders = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "smtp_tutor").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert folders - listed == set()
