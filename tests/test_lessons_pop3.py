"""Lessons 14-16, POP3: their files, their setup mail, and the list that shows them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from smtp_tutor.console.lesson import file_setup_mail
from smtp_tutor.core.lessons import find_lesson, kind_of, load_lessons
from smtp_tutor.sandbox.accounts import AccountMailboxes

LESSONS, ERRORS = load_lessons()
POP3 = [lesson for lesson in LESSONS if lesson.protocol == "pop3"]


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


@pytest.mark.pure
def test_lessons_14_to_16_speak_pop3_in_both_languages() -> None:
    assert not ERRORS
    assert [(x.number, x.id) for x in POP3] == [
        (14, "pop3-login"),
        (15, "pop3-mailbox"),
        (16, "pop3-leaving"),
    ]
    for lesson in POP3:
        assert lesson.builtin and lesson.missing == ()
        assert {kind_of(step).protocol for step in lesson.steps} == {"pop3"}
        texts = [lesson.title, lesson.intro, lesson.outro]
        for step in lesson.steps:
            texts += [step.explain, step.goal, step.success]
            assert set(step.hints) == {"en", "zh"}, (lesson.id, step.id)
        assert all(text is not None and set(text.values) == {"en", "zh"} for text in texts)


@pytest.mark.pure
def test_the_lessons_cover_the_commands_the_issue_names() -> None:
    typed = {
        lesson.id: {line.split()[0].upper() for step in lesson.steps for line in step.solution}
        for lesson in POP3
    }
    assert {"CAPA", "STAT", "STLS", "USER", "PASS", "AUTH", "QUIT", ":RECONNECT"} <= typed[
        "pop3-login"
    ]
    assert {"STAT", "LIST", "UIDL", "TOP", "RETR", "QUIT"} <= typed["pop3-mailbox"]
    assert {"DELE", "RSET", "QUIT", ":RECONNECT", "STAT", "LIST"} <= typed["pop3-leaving"]
    # The last step maps every command to the seed's poplib calls.
    leaving = find_lesson(LESSONS, "pop3-leaving")
    assert leaving is not None
    last = leaving.steps[-1].explain
    for lang in ("en", "zh"):
        for call in ("user()", "pass_()", "stat()", "list()", "uidl()", "top(n, k)",
                     "retr(n)", "dele(n)", "rset()", "quit()"):  # fmt: skip
            assert call in last.values[lang], (lang, call)


@pytest.mark.pure
def test_setup_mail_is_filed_once_per_message_id(tmp_path: Path) -> None:
    mailbox = find_lesson(LESSONS, "pop3-mailbox")
    assert mailbox is not None and len(mailbox.setup_mail) == 2
    accounts = AccountMailboxes(tmp_path / "Maildir", ["student"])
    assert file_setup_mail(accounts, mailbox) == 2
    assert file_setup_mail(accounts, mailbox) == 0  # taken twice: nothing more
    stored = accounts.of("student").messages()
    assert [m.message["Message-ID"] for m in stored] == [
        "<20250304093000.lesson9@example.com>",
        "<20250304101500.reply@example.com>",
    ]
    # Stored with CRLF line ends, as SMTP delivers; the lone-dot line is there unstuffed.
    raw = stored[1].raw
    assert b"\r\n.\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert stored[1].envelope["lesson_setup"] == "pop3-mailbox"
    assert len(accounts.shared) == 2  # the shared Maildir keeps every message, as ever
    # One deleted (lesson 16 does that) comes back the next time.
    accounts.of("student").remove(accounts.of("student").keys()[0])
    leaving = find_lesson(LESSONS, "pop3-leaving")
    assert leaving is not None and file_setup_mail(accounts, leaving) == 1
    assert len(accounts.of("student")) == 2


def test_smtp_tutor_lessons_lists_14_to_16() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "smtp_tutor", "lessons", "--lang", "en"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for lesson in POP3:
        title = lesson.title.get("en")[0]
        assert title in result.stdout, result.stdout
    zh = subprocess.run(
        [sys.executable, "-m", "smtp_tutor", "lessons", "--lang", "zh"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "POP3：查看邮箱" in zh.stdout, zh.stdout
