"""The layers hold: no import circle, no upward import, and the documented diagram is current."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import layers  # noqa: E402

pytestmark = pytest.mark.pure


def test_no_import_circle_and_no_upward_import() -> None:
    assert layers.problems(layers.build()) == []


def test_the_check_fails_when_a_circle_is_added(tmp_path: Path) -> None:
    """The check can fail: a copy of the tree with one import that closes a circle."""
    copy = tmp_path / "smtp_tutor"
    shutil.copytree(ROOT / "smtp_tutor", copy, ignore=shutil.ignore_patterns("__pycache__"))
    replies = copy / "core" / "replies.py"
    replies.write_text(replies.read_text() + "\nfrom smtp_tutor.core import dialogue  # circle\n")
    found = layers.problems(layers.build(copy))
    assert any(p.startswith("import circle:") and "smtp_tutor.core.replies" in p for p in found)


def test_the_check_fails_on_an_upward_import(tmp_path: Path) -> None:
    copy = tmp_path / "smtp_tutor"
    shutil.copytree(ROOT / "smtp_tutor", copy, ignore=shutil.ignore_patterns("__pycache__"))
    checker = copy / "core" / "checker.py"
    checker.write_text(checker.read_text() + "\nfrom smtp_tutor.console import render\n")
    found = layers.problems(layers.build(copy))
    assert "upward import: smtp_tutor.core.checker imports smtp_tutor.console.render" in found


def test_a_lazy_import_counts_and_a_type_checking_one_does_not(tmp_path: Path) -> None:
    copy = tmp_path / "smtp_tutor"
    shutil.copytree(ROOT / "smtp_tutor", copy, ignore=shutil.ignore_patterns("__pycache__"))
    replies = copy / "core" / "replies.py"
    replies.write_text(
        replies.read_text()
        + "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        + "    from smtp_tutor.console import app\n\n"
        + "def _later() -> None:\n    from smtp_tutor.client import session  # noqa\n"
    )
    found = layers.problems(layers.build(copy))
    assert "upward import: smtp_tutor.core.replies imports smtp_tutor.client.session" in found
    assert not any("core.replies imports smtp_tutor.console" in p for p in found)


def test_the_documented_diagram_is_the_code_s() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert layers.with_diagram(doc, layers.text_diagram(layers.build())) == doc, (
        "docs/architecture.md is stale: run python tools/layers.py --doc"
    )
