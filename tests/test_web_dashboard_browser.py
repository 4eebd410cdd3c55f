"""The teacher's dashboard in real headless Chromium while a student runs a lesson remotely.

The student is the real `smtp-tutor lesson 1 --server HOST:PORT --user alice` in its own
process, typed into line by line; the teacher's page is open in Chromium and is never
reloaded (a marker set on `window` survives only without a navigation): app.js patches the
page's main part on the stream's `progress` and `session` events.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.browser import browser  # noqa: F401 (the fixture)
from tests.web import PASSWORDS, TOKEN, Classroom, classroom

WAIT = 15


def _wait(condition: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = found = condition()
        except Exception as error:  # the page swapped its main part under us: look again
            last, found = error, None
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last seen: {last!r})")


class Student:
    """`smtp-tutor lesson 1 --server … --user alice --password-file F`, typed into."""

    def __init__(self, room: Classroom, tmp: Path) -> None:
        secret = tmp / "password"
        secret.write_text(PASSWORDS["alice"] + "\n")
        homes = ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME")
        env = {**os.environ, "NO_COLOR": "1"}
        env.update({name: str(tmp / name.lower()) for name in homes})
        env.pop("SMTP_TUTOR_PASSWORD", None)
        server = f"{room.sandbox.host}:{room.sandbox.port}"
        command = [sys.executable, "-m", "smtp_tutor", "lesson", "1", "--lang", "en"]
        command += ["--server", server, "--user", "alice", "--password-file", str(secret)]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def type(self, line: str) -> None:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()

    def finish(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=60)
        return self.process.returncode, out, err


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Classroom]:
    with classroom(tmp_path / "room") as room:
        yield room


@pytest.fixture
def dashboard(browser: Any, room: Classroom) -> Any:  # noqa: F811
    browser.delete_all_cookies()
    browser.get(f"{room.base}/teacher?token={TOKEN}")
    browser.get(f"{room.base}/dashboard?lang=en")
    _wait(lambda: browser.find_element("css selector", '#students tr[data-student="alice"]'), "row")
    _wait(lambda: room.web.subscribers == 1, "the page's live stream")  # no indicator here
    browser.execute_script("window.notReloaded = true;")
    return browser


def _row(browser: Any, name: str = "alice") -> str:  # noqa: F811
    return str(browser.find_element("css selector", f'#students tr[data-student="{name}"]').text)


def _cell(browser: Any, css: str) -> str:  # noqa: F811
    return str(
        browser.find_element("css selector", f'#students tr[data-student="alice"] {css}').text
    )


def _bars(browser: Any) -> list[str]:  # noqa: F811
    found = browser.find_elements(
        "css selector", 'section.lesson[data-lesson="greeting"] .bar-label'
    )
    return [str(bar.text) for bar in found]


def test_the_dashboard_shows_a_students_step_after_they_pass_it(
    dashboard: Any, room: Classroom, tmp_path: Path
) -> None:
    assert _cell(dashboard, "td.lesson") == ""
    assert dashboard.find_elements("id", "no-lessons")
    student = Student(room, tmp_path)
    try:
        # The lesson's first report: alice is on step 1 of 4, nobody has passed anything.
        _wait(lambda: "1/4" in _cell(dashboard, "td.lesson"), "alice on step 1")
        assert _cell(dashboard, "td.lesson").startswith("1. ")
        assert _bars(dashboard)[0] == "step 1: 0 passed, 1 working on it"
        student.type("NOOP")
        _wait(lambda: "2/4" in _cell(dashboard, "td.lesson"), "alice on step 2")
        bars = _wait(
            lambda: (b := _bars(dashboard)) and b[0].startswith("step 1: 1 ") and b, "bars"
        )
        assert bars[:2] == [
            "step 1: 1 passed, 0 working on it",
            "step 2: 0 passed, 1 working on it",
        ]
        # Her SMTP session (no AUTH in a lesson) is hers on the dashboard: the lesson said so.
        _wait(lambda: _cell(dashboard, "td:nth-child(5)") == "NOOP", "her last command")
        assert dashboard.execute_script("return window.notReloaded === true;")
    finally:
        code, out, err = student.finish()
    assert code == 0, err
    assert PASSWORDS["alice"] not in out + err + dashboard.page_source


def test_a_failed_step_shows_the_error_reply_and_what_it_means(
    dashboard: Any, room: Classroom, tmp_path: Path
) -> None:
    student = Student(room, tmp_path)
    try:
        _wait(lambda: "1/4" in _cell(dashboard, "td.lesson"), "alice on step 1")
        student.type("NOPE")  # not a command: 500, and step 1 (NOOP) is not passed
        error = _wait(lambda: _cell(dashboard, "td:nth-child(6)"), "the error cell")
        assert error.startswith("500 ")
        explanation = dashboard.find_element(
            "css selector", '#students tr[data-student="alice"] td:nth-child(6) .dim'
        ).text
        assert explanation and explanation not in error.splitlines()[0]
        assert "1/4" in _cell(dashboard, "td.lesson")
        assert _bars(dashboard)[0] == "step 1: 0 passed, 1 working on it"
        assert dashboard.execute_script("return window.notReloaded === true;")
    finally:
        code, _out, err = student.finish()
    assert code == 0, err
