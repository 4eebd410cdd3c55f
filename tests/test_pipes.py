"""Pipes and dumb terminals, as `telnet` and `openssl s_client` allow: plain lines both ways.

Real processes: the installed `smtp-tutor` entry point with its standard input and output
as pipes (scripted telnet, `… | tee log`), or in a pseudo-terminal with TERM=dumb.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from smtp_tutor.sandbox import SandboxConfig, ThreadedSandbox

CLI = [sys.executable, "-m", "smtp_tutor"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSandbox]:
    with ThreadedSandbox(
        SandboxConfig(port=0, mailbox=tmp_path_factory.mktemp("pipes") / "Maildir")
    ) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return dict(
        os.environ,
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        TERM="xterm-256color",
        LANG="C.UTF-8",
    )


def run_piped(args: list[str], stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def test_scripted_lines_from_a_pipe_are_sent_and_plain_lines_come_out(
    sandbox: ThreadedSandbox, env: dict[str, str]
) -> None:
    done = run_piped(["connect", sandbox.host, str(sandbox.port)], "EHLO x\nQUIT\n", env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "\x1b" not in out and "\r" not in out  # no escapes, no carriage returns
    assert "not a terminal" not in done.stderr.lower()
    lines = out.splitlines()
    assert "smtp> EHLO x" in lines  # what was sent is in the log, after its prompt
    assert "250-PIPELINING" in lines and "221 2.0.0 localhost closing connection" in out
    assert lines.index("smtp> EHLO x") < lines.index("250-PIPELINING")


def test_a_whole_message_from_a_pipe_is_stored_as_written(
    sandbox: ThreadedSandbox, env: dict[str, str]
) -> None:
    body = ["From: a@example.com", "Subject:我是标题", "charset=gb2312", "", ".dot", "end"]
    script = [
        "EHLO x",
        "AUTH LOGIN",
        "c3R1ZGVudA==",  # hand-made base64, as in the seed: sent as written
        "c2VjcmV0",
        "MAIL FROM:<piped@example.com>",
        "RCPT TO:<b@example.com>",
        "DATA",
        *body,
        ".",
        "QUIT",
    ]
    done = run_piped(["connect", sandbox.host, str(sandbox.port)], "\n".join(script) + "\n", env)
    assert done.returncode == 0, done.stderr
    assert "235 2.7.0" in done.stdout
    assert "c2VjcmV0" not in done.stdout  # the password's base64 is echoed masked
    [stored] = [
        m for m in sandbox.mailbox().messages() if m.envelope["mail_from"] == "piped@example.com"
    ]
    assert stored.raw == "".join(f"{line}\r\n" for line in body).encode()
    assert stored.envelope["auth_user"] == "student"


def test_the_sandbox_console_reads_a_pipe_too(env: dict[str, str]) -> None:
    done = run_piped([], "EHLO x\nQUIT\n", env)
    assert done.returncode == 0, done.stderr
    assert "250 HELP" in done.stdout and "\x1b" not in done.stdout


def test_an_empty_pipe_ends_the_session_cleanly(
    sandbox: ThreadedSandbox, env: dict[str, str]
) -> None:
    done = run_piped(["connect", sandbox.host, str(sandbox.port)], "", env)
    assert done.returncode == 0, done.stderr
    assert "220 " in done.stdout


def test_a_dumb_terminal_gets_no_escape_sequences(
    sandbox: ThreadedSandbox, env: dict[str, str]
) -> None:
    child = pexpect.spawn(
        CLI[0],
        [*CLI[1:], "connect", sandbox.host, str(sandbox.port)],
        env=dict(env, TERM="dumb"),
        encoding="utf-8",
        timeout=20,
    )
    seen = io.StringIO()
    child.logfile_read = seen
    child.expect("smtp> ")
    child.send("EHLO dumb.example\r")
    child.expect("250 HELP")
    child.expect("smtp> ")
    child.send("QUIT\r")
    child.expect("221 ")
    child.expect("smtp> ")
    child.send(":quit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    screen = seen.getvalue()
    assert "220 " in screen and "250-PIPELINING" in screen
    assert "\x1b" not in screen
