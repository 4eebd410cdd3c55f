"""The web view in real headless Chromium: live list, dialogue diagram, script safety, isolation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import Witness, browser  # noqa: F401 (the fixture)
from tests.web import PASSWORDS, TOKEN, Classroom, classroom, subject_message

WAIT = 10


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classroom]:
    with classroom(tmp_path_factory.mktemp("web-browser")) as room:
        yield room


@pytest.fixture(scope="module")
def witness() -> Iterator[Witness]:
    with Witness() as witness:
        yield witness


def _wait(condition: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = condition()
        except Exception:
            found = None
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _as_teacher(browser: Any, room: Classroom) -> None:  # noqa: F811
    browser.delete_all_cookies()
    browser.get(f"{room.base}/teacher?token={TOKEN}")
    _wait(lambda: browser.find_element("id", "messages"), "the message list")


def _sign_in(browser: Any, room: Classroom, name: str) -> None:  # noqa: F811
    browser.delete_all_cookies()
    browser.get(f"{room.base}/login")
    browser.find_element("id", "name").send_keys(name)
    browser.find_element("id", "password").send_keys(PASSWORDS[name])
    browser.find_element("id", "sign-in").click()
    _wait(lambda: browser.find_element("id", "messages"), "the message list")


def _rows(browser: Any) -> list[str]:  # noqa: F811
    return [row.text for row in browser.find_elements("css selector", "#messages tbody tr")]


def test_a_message_sent_with_smtplib_appears_without_a_reload(
    browser: Any,  # noqa: F811
    room: Classroom,
) -> None:
    _as_teacher(browser, room)
    _wait(lambda: browser.find_element("css selector", "#live.on"), "the live stream")
    browser.execute_script("window.notReloaded = true;")
    room.send("alice", "alice@example.org", ["bob@example.org"], subject_message("live one"))
    _wait(lambda: any("live one" in row for row in _rows(browser)), "the new row")
    assert browser.execute_script("return window.notReloaded === true;")


def test_the_dialogue_diagram_shows_the_commands(browser: Any, room: Classroom) -> None:  # noqa: F811
    room.send("bob", "bob@example.org", ["carol@example.org"], subject_message("diagram"))
    key = next(m["id"] for m in room.wait_for(1, "bob") if m["subject"] == "diagram")
    _sign_in(browser, room, "bob")
    browser.get(f"{room.base}/messages/{key}")
    svg = browser.find_element("css selector", "#diagram svg")
    text = svg.get_attribute("textContent")
    assert "ehlo student.test" in text
    assert "mail FROM:<bob@example.org>" in text
    assert "rcpt TO:<carol@example.org>" in text
    assert "AUTH" in text and PASSWORDS["bob"] not in browser.page_source
    link = browser.find_element("id", "transcript-link")
    assert link.get_attribute("href").endswith("/transcript")


def test_a_script_in_an_html_message_does_not_run(
    browser: Any,  # noqa: F811
    room: Classroom,
    witness: Witness,
) -> None:
    here = f"http://127.0.0.1:{witness.port}"
    hostile = (
        '<p id="shown">hello from html</p>'
        f"<script>fetch('{here}/script-ran');document.title='pwned';"
        "try{parent.document.title='pwned'}catch(e){}</script>"
        f'<img src="{here}/image-loaded" onerror="fetch(\'{here}/onerror-ran\')">'
        f"<svg onload=\"fetch('{here}/svg-ran')\"></svg>"
    )
    room.send(
        "alice",
        "alice@example.org",
        ["alice@example.org"],
        subject_message("hostile", html=hostile),
    )
    key = next(m["id"] for m in room.wait_for(1, "alice") if m["subject"] == "hostile")
    _sign_in(browser, room, "alice")
    browser.get(f"{room.base}/messages/{key}")
    frame = browser.find_element("id", "html-part")
    assert frame.get_attribute("sandbox") == ""
    browser.switch_to.frame(frame)
    try:
        shown = _wait(lambda: browser.find_element("id", "shown"), "the HTML part")
        assert shown.text == "hello from html"  # the frame shows the message…
        time.sleep(1.0)  # …and gives any script time to run
        assert browser.title != "pwned"
    finally:
        browser.switch_to.default_content()
    assert browser.title != "pwned"
    assert witness.paths == []


def test_a_student_cannot_see_another_students_message(browser: Any, room: Classroom) -> None:  # noqa: F811
    room.send("bob", "bob@example.org", ["carol@example.org"], subject_message("bob secret"))
    key = next(m["id"] for m in room.wait_for(1, "bob") if m["subject"] == "bob secret")
    _sign_in(browser, room, "alice")
    assert not any("bob secret" in row for row in _rows(browser))
    browser.get(f"{room.base}/messages/{key}")
    assert browser.find_element("tag name", "h1").text == "404"
    assert "bob secret" not in browser.page_source
    browser.get(f"{room.base}/api/messages/{key}")
    assert '"not_found"' in browser.page_source


def test_the_teacher_page_lists_both_students(browser: Any, room: Classroom) -> None:  # noqa: F811
    room.send("alice", "alice@example.org", ["x@example.org"], subject_message("alice for teacher"))
    room.send("bob", "bob@example.org", ["x@example.org"], subject_message("bob for teacher"))
    room.wait_for(2)
    _as_teacher(browser, room)
    rows = _wait(
        lambda: (
            (r := _rows(browser))
            and any("alice for teacher" in x for x in r)
            and any("bob for teacher" in x for x in r)
            and r
        ),
        "both rows",
    )
    assert TOKEN not in browser.page_source
    assert any("alice" in row for row in rows) and any("bob" in row for row in rows)
