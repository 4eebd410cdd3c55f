""":mailbox on a class sandbox (`serve --web`): found via EHLO, asked as the AUTH user."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smtp_tutor.client.sandbox_api import web_address
from smtp_tutor.client.session import Target
from smtp_tutor.console.app import ConsoleOptions
from tests.consoles import run_console, screen_text
from tests.web import PASSWORDS, classroom, subject_message


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


def _console(host: str, port: int, lines: list[str]) -> str:
    options = ConsoleOptions(color=False, toolbar=False, lang="en")
    code, out, _ = asyncio.run(run_console(Target(host, port), lines, options))
    assert code == 0
    return screen_text(out)


def test_mailbox_shows_alices_newest_message_from_the_class_sandbox(tmp_path: Path) -> None:
    with classroom(tmp_path) as room:
        room.send("alice", "alice@example.org", ["x@example.org"], subject_message("older one"))
        room.send("alice", "alice@example.org", ["x@example.org"], subject_message("alice newest"))
        room.send("bob", "bob@example.org", ["x@example.org"], subject_message("bob newest"))
        room.wait_for(3)
        host, port = room.sandbox.host, room.sandbox.port
        before = _console(host, port, ["EHLO me", ":mailbox", "QUIT"])
        assert "AUTH first" in before and room.web.url in before
        text = _console(
            host, port, ["EHLO me", "AUTH PLAIN", "alice", PASSWORDS["alice"], ":mailbox", "QUIT"]
        )
    shown = text[text.rindex("235") :]
    assert "Subject: alice newest" in shown
    assert "bob newest" not in shown and "older one" not in shown
    assert PASSWORDS["alice"] not in text


def test_mailbox_refuses_a_web_view_on_another_host(tmp_path: Path) -> None:
    assert web_address(("http://127.0.0.1:8025/",), "127.0.0.1") == "http://127.0.0.1:8025/"
    assert web_address(("http://localhost:8025",), "::1") == "http://localhost:8025/"
    assert web_address(("http://10.0.0.5:8025/",), "127.0.0.1") is None
    assert web_address(("http://evil.example/",), "sandbox.example") is None
    assert web_address(("file:///etc/passwd",), "127.0.0.1") is None
    assert web_address(("http://u:p@127.0.0.1/",), "127.0.0.1") is None
