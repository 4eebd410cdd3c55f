"""End to end in a real pseudo-terminal: a person's whole session, typed key by key.

`smtp-tutor` runs under pexpect exactly as a student starts it, against the embedded sandbox
and against a real Postfix on 127.0.0.1: EHLO, STARTTLS, EHLO, AUTH LOGIN, MAIL, RCPT, DATA
with a Chinese subject and a line starting with a dot, the final dot, QUIT. The screen and
the delivered message are both checked.
"""

from __future__ import annotations

import base64
import email
import email.policy
import os
import re
import shutil
import sys
from pathlib import Path

import pexpect
import pytest

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][AB0-9]|\r")


def smtp_tutor() -> list[str]:
    script = shutil.which("smtp-tutor", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "smtp_tutor"]


class Terminal:
    """A running smtp-tutor in a pseudo-terminal, typed into like a person would."""

    def __init__(self, args: list[str], home: Path) -> None:
        env = dict(
            os.environ,
            PROMPT_TOOLKIT_NO_CPR="1",
            TERM="xterm",
            NO_COLOR="1",
            XDG_DATA_HOME=str(home / "data"),
            XDG_STATE_HOME=str(home / "state"),
            XDG_CONFIG_HOME=str(home / "config"),
            LANG="C.UTF-8",
        )
        command = smtp_tutor()
        self.child = pexpect.spawn(
            command[0],
            [*command[1:], *args],
            env=env,
            encoding="utf-8",
            timeout=20,
            dimensions=(50, 160),
        )
        self.log: list[str] = []

    def expect(self, pattern: str) -> str:
        self.child.expect(pattern)
        seen = (self.child.before or "") + str(self.child.after or "")
        self.log.append(seen)
        return seen

    def type(self, line: str, then: str) -> str:
        """Type a line and Enter, then wait until `then` (a regex) shows up."""
        self.child.send(line + "\r")
        return self.expect(then)

    @property
    def screen(self) -> str:
        return ANSI.sub("", "".join(self.log))

    def close(self) -> int:
        self.child.expect(pexpect.EOF)
        self.child.close()
        return int(self.child.exitstatus or 0)


def full_session(term: Terminal, domain: str, user: str, password: str) -> None:
    term.expect(r"220 ")
    term.type("EHLO me.example", r"250 [^\n]*\n")
    term.type("STARTTLS", r"say EHLO again")
    term.type("EHLO me.example", r"250 [^\n]*\n")
    term.type("AUTH LOGIN", r"username>")
    term.type(user, r"password>")
    term.type(password, r"235 ")
    term.type(f"MAIL FROM:<{user}@{domain}>", r"250 ")
    term.type(f"RCPT TO:<{user}@{domain}>", r"250 ")
    term.type("DATA", r"354 ")
    term.type("From: <student@" + domain + ">", r"data>")
    term.type("Subject: 你好，世界", r":fix rewrites line 2")
    term.type(":fix", r"rewritten")  # the explicit act: encode it with RFC 2047
    term.type("Date: Fri, 27 Nov 2026 10:00:00 +0000", r"data>")
    term.type("Message-ID: <e2e@me.example>", r"data>")
    term.type("", r"data>")
    term.type(".leading dot line", r"dot-stuffed")
    term.type("last line", r"data>")
    term.type(".", r"250 ")
    term.type("QUIT", r"221 ")
    term.type(":quit", pexpect.EOF)


def check_screen(screen: str, password: str) -> None:
    assert "TLS active: TLSv1." in screen
    assert "decoded challenge" in screen
    assert base64.b64encode(b"student").decode() in screen
    assert password not in screen.replace("student / secret", "")
    assert base64.b64encode(password.encode()).decode() not in screen
    assert "dot-stuffed: sent as ..leading dot line" in screen
    assert "=?utf-8?b?" in screen.lower()


def check_message(raw: bytes) -> None:
    message = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert message["Subject"] == "你好，世界"
    body = message.get_content()
    assert ".leading dot line\n" in body and "..leading" not in body
    assert body.rstrip("\n").endswith("last line")


def test_whole_session_against_the_sandbox(tmp_path: Path) -> None:
    term = Terminal([], tmp_path)
    term.expect(r"student / secret")
    full_session(term, "example.com", "student", "secret")
    check_screen(term.screen, "secret")
    maildir = tmp_path / "data" / "smtp-tutor" / "sandbox" / "Maildir" / "new"
    [stored] = list(maildir.iterdir())
    check_message(stored.read_bytes())


@pytest.mark.postfix
def test_whole_session_against_postfix(tmp_path: Path, postfix: object) -> None:
    from tests.postfix import PostfixInstance

    assert isinstance(postfix, PostfixInstance)
    term = Terminal(["connect", postfix.host, str(postfix.port)], tmp_path)
    full_session(term, postfix.domain, postfix.user, postfix.password)
    check_screen(term.screen, postfix.password)
    check_message(postfix.wait_for_message(containing=b"e2e@me.example"))


def test_chinese_console_end_to_end(tmp_path: Path) -> None:
    term = Terminal(["--lang", "zh"], tmp_path)
    term.expect(r"演示账号")
    term.type("EHLO me.example", r"250 [^\n]*\n")
    term.type("RCPT TO:<a@b.example>", r"503 ")
    term.type(":quit", pexpect.EOF)
    screen = term.screen
    assert "在 MAIL 之前发 RCPT" in screen
    assert "正在连接" in screen
