"""`smtp-tutor connect --pop3` against a real Dovecot, as a student types it.

In a real pseudo-terminal (pexpect): USER, PASS (masked on screen, kept out of the history
file), STAT, RETR 1 (the message shown and linted), QUIT. Then STLS before the login, POP3S
on the implicit-TLS port, and piped input as `printf … | smtp-tutor connect --pop3` runs it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pexpect
import pytest

from tests.dovecot import (  # noqa: F401 (fixtures)
    DovecotInstance,
    dovecot_account_fixture,
    dovecot_fixture,
)
from tests.test_terminal import Terminal, smtp_tutor

pytestmark = pytest.mark.dovecot

PASSWORD = "Pop3-s3cret-word"
# No Date and no Message-ID: the lint has something to say about the fetched message.
MESSAGE = (
    b"From: <teacher@example.org>\r\n"
    b"To: <student@example.org>\r\n"
    b"Subject: fetch me by hand\r\n"
    b"\r\n"
    b"hello from the other half of the seed\r\n"
    b".a line that starts with a dot\r\n"
)


def _env(home: Path) -> dict[str, str]:
    return dict(
        os.environ,
        NO_COLOR="1",
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CONFIG_HOME=str(home / "config"),
        LANG="C.UTF-8",
    )


def _account(dovecot: DovecotInstance) -> str:
    account = dovecot.add_account(password=PASSWORD)
    dovecot.deliver(MESSAGE, account.name)
    return account.name


def test_user_pass_stat_retr_quit_in_a_terminal(tmp_path: Path, dovecot: DovecotInstance) -> None:
    user = _account(dovecot)
    term = Terminal(["connect", "--pop3", "127.0.0.1", str(dovecot.port)], tmp_path)
    term.expect(r"Dovecot \(Debian\) ready\.[^\n]*\n")
    term.type(f"USER {user}", r"ms\)")
    term.type(f"PASS {PASSWORD}", r"Logged in\.")
    term.type("STAT", r"1 \d+[^\n]*ms\)")
    term.type("RETR 1", r"checked, as a message typed after DATA would be:[^\n]*\n[^\n]*\n")
    term.type("QUIT", r"Logging out\.")
    term.type(":quit", pexpect.EOF)
    assert term.close() == 0
    screen = term.screen
    assert PASSWORD not in screen
    assert "PASS " + "*" * len(PASSWORD) in screen  # masked character for character
    assert "pop3 trans> " in screen  # the state in the prompt
    assert "Subject: fetch me by hand" in screen
    assert "..a line that starts with a dot" in screen  # the body as it came, stuffed
    assert "Date" in screen.split("would be:")[1]  # the lint's finding: no Date header
    history = (tmp_path / "state" / "smtp-tutor" / "pop3-history").read_text("utf-8")
    assert f"+USER {user}" in history and "+STAT" in history and "+RETR 1" in history
    assert "PASS" not in history and PASSWORD not in history


def test_stls_then_login(tmp_path: Path, dovecot: DovecotInstance) -> None:
    user = _account(dovecot)
    transcript = tmp_path / "stls.pop3"
    lines = f"CAPA\nSTLS\nCAPA\nUSER {user}\nPASS {PASSWORD}\nSTAT\nQUIT\n"
    result = _piped(tmp_path, dovecot.port, lines, "--transcript", str(transcript))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "TLS active: TLSv1." in out
    assert "say CAPA again" in out
    assert "Logged in." in out and PASSWORD not in out
    text = transcript.read_text("utf-8")
    assert text.startswith("# protocol: pop3\n")
    assert "C: STLS\n" in text and "\n@tls TLSv1." in text
    assert "C: PASS {password}\n" in text and PASSWORD not in text
    # After STLS, Dovecot no longer offers STLS in CAPA: the second CAPA saw the change.
    second_capa = text.split("@tls")[1]
    assert "S: STLS" not in second_capa.split("C: USER")[0]


def test_pop3s_on_the_implicit_tls_port(tmp_path: Path, dovecot: DovecotInstance) -> None:
    user = _account(dovecot)
    lines = f"USER {user}\nPASS {PASSWORD}\nSTAT\nQUIT\n"
    result = _piped(tmp_path, dovecot.pop3s_port, lines, "--tls")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("TLS active: TLSv1.") < out.index("+OK Dovecot (Debian) ready.")
    assert "+OK 1 " in out and "Logging out." in out


def test_piped_input_works_like_the_smtp_pipe_mode(
    tmp_path: Path, dovecot: DovecotInstance
) -> None:
    user = _account(dovecot)
    lines = f"USER {user}\nPASS {PASSWORD}\nSTAT\nQUIT\n"
    result = _piped(tmp_path, dovecot.port, lines)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"pop3> USER {user}\n" in out
    assert "pop3> PASS ********\n" in out  # echoed masked, its length hidden too
    assert PASSWORD not in out and PASSWORD not in result.stderr
    assert "pop3 trans> STAT\n" in out and "+OK 1 " in out
    assert "\x1b" not in out  # plain lines: no escape sequences in a log
    assert "Traceback" not in result.stderr


def test_a_wrong_password_is_explained_and_not_shown(
    tmp_path: Path, dovecot: DovecotInstance
) -> None:
    user = _account(dovecot)
    result = _piped(tmp_path, dovecot.port, f"USER {user}\nPASS wrong-{PASSWORD}\nQUIT\n")
    assert result.returncode == 0, result.stderr
    assert "-ERR [AUTH] Authentication failed." in result.stdout
    assert "↳ [AUTH]" in result.stdout  # the extended code explained
    assert PASSWORD not in result.stdout


def _piped(home: Path, port: int, lines: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*smtp_tutor(), "connect", "--pop3", "127.0.0.1", str(port), "--timeout", "10", *options],
        input=lines,
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=60,
    )


def test_a_recorded_transcript_replays_green_against_dovecot(
    tmp_path: Path, dovecot: DovecotInstance
) -> None:
    user = _account(dovecot)
    transcript = tmp_path / "session.pop3"
    lines = f"CAPA\nUSER {user}\nPASS {PASSWORD}\nSTAT\nLIST\nUIDL\nTOP 1 0\nRETR 1\nQUIT\n"
    recorded = _piped(tmp_path, dovecot.port, lines, "--transcript", str(transcript))
    assert recorded.returncode == 0, recorded.stderr
    text = transcript.read_text("utf-8")
    assert PASSWORD not in text
    assert "S: ..a line that starts with a dot\n" in text  # the body in wire form
    server = f"127.0.0.1:{dovecot.port}"
    replayed = subprocess.run(
        [
            *smtp_tutor(),
            "replay",
            str(transcript),
            "--server",
            server,
            "--var",
            f"password={PASSWORD}",
        ],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout.splitlines()[-1].startswith("9 commands, 10 responses matched")
    assert PASSWORD not in replayed.stdout
    # The wrong password: a mismatch, reported on stdout, exit 1.
    wrong = subprocess.run(
        [*smtp_tutor(), "replay", str(transcript), "--server", server, "--var", "password=nope"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
    )
    assert wrong.returncode == 1
    assert "expected +OK, got -ERR" in wrong.stdout and "(answering pass)" in wrong.stdout
