"""config.toml: a missing file gives the defaults, a bad one the defaults and one problem line."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtp_tutor.console.config import ConsoleConfig, load_config

pytestmark = pytest.mark.pure


def test_a_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / "config.toml") == ConsoleConfig()


def test_settings_are_read_and_bad_ones_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('editing_mode = "vi"\ntoolbar = false\ncolour = "red"\n', "utf-8")
    config = load_config(path)
    assert config.editing_mode == "vi" and config.toolbar is False
    assert config.problems == ["unknown setting 'colour'"]


@pytest.mark.parametrize(
    "content", ['editing_mode = "vi', b"\xff\xfe not utf-8", None], ids=["toml", "utf8", "dir"]
)
def test_an_unreadable_file_is_one_problem_and_the_defaults(
    tmp_path: Path, content: str | bytes | None
) -> None:
    path = tmp_path / "config.toml"
    if content is None:
        path.mkdir()  # a folder where the file should be
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, "utf-8")
    config = load_config(path)
    assert len(config.problems) == 1 and "\n" not in config.problems[0]
    assert config.editing_mode == ConsoleConfig().editing_mode
