"""`smtp-tutor lessons --reset` and `--check`, the real program in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smtp_tutor.core.messages import message


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("XDG_", "LC_", "LANG", "PYTHON"))
    }
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        environment[name] = str(tmp_path / name.lower())
    environment.update(LC_ALL="C.UTF-8", NO_COLOR="1")
    return environment


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smtp_tutor", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_reset_all_says_so_in_words(env: dict[str, str], lang: str) -> None:
    result = run(env, "lessons", "--reset", "--lang", lang)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first == message("lessons_ui", "reset_done", lang)
    assert "reset_done" not in result.stdout


def test_reset_one_lesson_names_it(env: dict[str, str]) -> None:
    result = run(env, "lessons", "--reset", "greeting")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "Progress of lesson 1 (The greeting: reading a reply code) forgotten: "
        "it starts again at step 1."
    )
    zh = run(env, "lessons", "--reset", "1", "--lang", "zh").stdout.splitlines()[0]
    assert zh.startswith("第 1 课（问候：读懂回复码）的进度已清除"), zh
