"""`smtp-tutor lesson N --server HOST:PORT --user NAME`: a lesson on a class sandbox.

A real sandbox with its web view on 127.0.0.1 (tests/web.py), the real console driven by
prompt_toolkit pipe input, and the teacher's GET /api/dashboard to see what arrived.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from smtp_tutor.cli.main import main
from smtp_tutor.cli.remote_lesson import RemoteLesson, _scenario_changes
from smtp_tutor.client.sandbox_api import discover_web
from smtp_tutor.client.session import Target
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.console.progress import Progress
from smtp_tutor.core.lessons import Lesson, find_lesson, load_lessons
from smtp_tutor.sandbox import SandboxConfig, ThreadedSandbox
from tests.consoles import run_console, screen_text
from tests.web import PASSWORDS, Classroom, classroom

LESSONS, _ERRORS = load_lessons()


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.delenv("SMTP_TUTOR_PASSWORD", raising=False)


def _lesson(number: str) -> Lesson:
    found = find_lesson(LESSONS, number)
    assert found is not None
    return found


def _run(room: Classroom, tmp: Path, lines: list[str], base: str | None = None) -> str:
    """Lesson 1 as alice through the real console; the screen once every report is in."""
    lesson = _lesson("1")
    progress = Progress.load(tmp / "progress.json")
    remote = RemoteLesson(lesson, progress, base or room.web.url, "alice", PASSWORDS["alice"])
    options = ConsoleOptions(color=False, toolbar=False, lang="en")

    async def go() -> str:
        try:
            target = Target(room.sandbox.host, room.sandbox.port)
            code, out, _console = await run_console(target, lines, options, prepare=remote.prepare)
            await remote.drain()
        finally:
            remote.close()
        assert code == 0
        return screen_text(out)

    return asyncio.run(go())


def _alice(room: Classroom) -> tuple[dict[str, object], list[dict[str, object]]]:
    data = room.get("/api/dashboard", "teacher").json()
    alice = next(row for row in data["students"] if row["name"] == "alice")
    return alice, data["lessons"]


def test_the_class_sandbox_names_its_web_view_in_ehlo(tmp_path: Path) -> None:
    with classroom(tmp_path) as room:
        assert discover_web(room.sandbox.host, room.sandbox.port) == room.web.url


def test_lesson_one_on_the_class_sandbox_shows_on_the_teachers_dashboard(tmp_path: Path) -> None:
    with classroom(tmp_path) as room:
        screen = _run(room, tmp_path, ["NOOP", "HELP", "HELP MAIL", "QUIT"])
        alice, lessons = _alice(room)
    assert "Lesson finished" in screen and room.web.url in screen
    assert PASSWORDS["alice"] not in screen
    assert alice["lesson"] == "greeting" and alice["steps"] == 4
    assert alice["step"] == 5  # past the last step: done
    (lesson,) = lessons
    assert lesson["title"].startswith("1. ")
    assert [step["passed"] for step in lesson["steps"]] == [1, 1, 1, 1]


def test_a_failed_step_and_a_lesson_left_halfway(tmp_path: Path) -> None:
    with classroom(tmp_path) as room:
        screen = _run(room, tmp_path, ["EHLO me.example", "NOOP", "HELP"])
        alice, lessons = _alice(room)
    assert "✗" in screen
    assert alice["lesson"] == "greeting" and alice["step"] == 3
    (lesson,) = lessons
    assert [step["passed"] for step in lesson["steps"]] == [1, 1, 0, 0]
    assert [step["working"] for step in lesson["steps"]] == [0, 0, 1, 0]


def test_a_report_that_cannot_be_sent_is_one_line(tmp_path: Path) -> None:
    with classroom(tmp_path) as room:
        screen = _run(room, tmp_path, ["NOOP", "QUIT"], base=f"http://127.0.0.1:{_free_port()}/")
    failures = [line for line in screen.splitlines() if "could not report step" in line]
    assert failures and all("cannot reach the web view" in line for line in failures)
    assert "Traceback" not in screen and "✓" in screen  # the lesson went on


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_wrong_password_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMTP_TUTOR_PASSWORD", "not-Alices-pw")
    with classroom(tmp_path) as room:
        server = f"{room.sandbox.host}:{room.sandbox.port}"
        code = main(["lesson", "1", "--server", server, "--user", "alice", "--lang", "en"])
        alice, _lessons = _alice(room)
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1 and "did not accept the name alice" in err
    assert "not-Alices-pw" not in out + err
    assert alice["lesson"] is None


def test_an_unreachable_server_is_one_line_and_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    server = f"127.0.0.1:{_free_port()}"
    code = main(["lesson", "1", "--server", server, "--user", "alice", "--lang", "en"])
    _out, err = capsys.readouterr()
    assert code == 3
    assert err.count("\n") == 1 and err.startswith("smtp-tutor lesson: cannot reach")


def test_a_sandbox_without_a_web_view_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ThreadedSandbox(SandboxConfig(mailbox=tmp_path / "Maildir")) as sandbox:
        server = f"{sandbox.host}:{sandbox.port}"
        code = main(["lesson", "1", "--server", server, "--user", "alice", "--lang", "en"])
    _out, err = capsys.readouterr()
    assert code == 3
    assert err.count("\n") == 1 and "XSMTPTUTOR-WEB" in err


def test_user_without_server_and_server_without_user_are_usage_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["lesson", "1", "--user", "alice"]) == 2
    assert main(["lesson", "1", "--server", "127.0.0.1:1"]) == 2
    _out, err = capsys.readouterr()
    assert err.count("\n") == 2 and "--server" in err
    with pytest.raises(SystemExit) as exit_:
        main(["lesson", "1", "--server", "no-port-here"])
    assert exit_.value.code == 2


def test_a_scenario_a_class_sandbox_cannot_take_is_named() -> None:
    assert _scenario_changes(_lesson("1")) == ""
    starttls = _lesson("4")
    assert starttls.scenario and _scenario_changes(starttls)


def test_the_command_line_with_a_password_file(tmp_path: Path) -> None:
    """The real `smtp-tutor lesson 1 --server … --user alice --password-file F`, typed into."""
    secret = tmp_path / "password"
    secret.write_text(PASSWORDS["alice"] + "\n")
    homes = ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME")
    env = {**os.environ, "NO_COLOR": "1", **{name: str(tmp_path / name.lower()) for name in homes}}
    env.pop("SMTP_TUTOR_PASSWORD", None)
    with classroom(tmp_path) as room:
        server = f"{room.sandbox.host}:{room.sandbox.port}"
        command = [sys.executable, "-m", "smtp_tutor", "lesson", "1", "--lang", "en"]
        command += ["--server", server, "--user", "alice", "--password-file", str(secret)]
        done = subprocess.run(
            command,
            input="NOOP\nHELP\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        alice, _lessons = _alice(room)
    assert done.returncode == 0, done.stderr
    assert PASSWORDS["alice"] not in done.stdout + done.stderr
    assert alice["lesson"] == "greeting" and alice["step"] == 3
