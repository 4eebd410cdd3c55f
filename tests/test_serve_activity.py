"""`smtp-tutor serve` in a subprocess: a line per client event, and hostile clients survived.

Real sockets on 127.0.0.1 against the real program: a client that aborts the TLS handshake
after STARTTLS (garbage instead of a ClientHello, or a hang-up in the middle) costs one line
and no traceback, and the next client is served; every connection and stored message is one
line a teacher can read, with nothing a client sent able to drive the terminal.
"""

from __future__ import annotations

import re
import signal
import smtplib
import socket
import ssl
from pathlib import Path

import pytest

from smtp_tutor.sandbox import client_tls_context
from tests import test_cli
from tests.test_cli import Served, serving

env = test_cli.env  # the fixture: a private home, an English locale, no colour

ESC = "\x1b"
CONNECTED = re.compile(r"^\d\d:\d\d:\d\d 127\.0\.0\.1:\d+ connected$")


def _starttls(served: Served) -> socket.socket:
    """A raw client that has said EHLO and STARTTLS and got 220: the handshake is next."""
    sock = socket.create_connection((served.host, served.port), timeout=10)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"220 ")
    sock.sendall(b"EHLO hostile.example\r\n")
    while not reader.readline().startswith(b"250 "):
        pass
    sock.sendall(b"STARTTLS\r\n")
    assert reader.readline().startswith(b"220 ")
    return sock


def _send_a_message(served: Served, sender: str, subject: bytes, *, tls: bool) -> None:
    with smtplib.SMTP(served.host, served.port, timeout=10) as smtp:
        smtp.ehlo("client.example")
        if tls:
            smtp.starttls(context=client_tls_context(served.cert))
            smtp.ehlo("client.example")
        smtp.login("student", "secret")
        body = b"Subject: " + subject + b"\r\nFrom: <a@example.com>\r\n\r\nhello\r\n"
        assert smtp.sendmail(sender, ["friend@example.com", "other@example.net"], body) == {}


def _activity(stdout: str) -> list[str]:
    """The lines after the start-up summary."""
    return stdout.split("Press Ctrl+C to stop.\n", 1)[1].splitlines()


def test_an_aborted_tls_handshake_is_one_line_and_the_next_client_is_served(
    env: dict[str, str], tmp_path: Path
) -> None:
    with serving(env, "--mailbox", str(tmp_path / "Maildir")) as served:
        with _starttls(served) as garbage:
            garbage.sendall(b"this is not a TLS ClientHello\r\n\r\n")
            assert garbage.recv(100) == b""  # the server hung up
        with _starttls(served):
            pass  # hang up in the middle of the handshake
        # A client that starts a real handshake and drops it after the ClientHello.
        with _starttls(served) as half:
            outgoing = ssl.MemoryBIO()
            tls = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), outgoing, False, "x")
            with pytest.raises(ssl.SSLWantReadError):
                tls.do_handshake()
            half.sendall(outgoing.read())
            assert half.recv(1)  # the server's hello has begun: now hang up
        _send_a_message(served, "student@example.com", b"after the hostile ones", tls=True)
        code, stdout, stderr = served.stop(signal.SIGTERM)

    assert code == 0, stderr
    assert "Traceback" not in stdout + stderr
    assert stderr == ""
    lines = _activity(stdout)
    failed = [line for line in lines if "TLS handshake failed" in line]
    assert len(failed) == 1, lines
    assert failed[0].endswith("wrong version number; connection closed"), failed
    assert len([line for line in lines if "hung up during the TLS handshake" in line]) == 2, lines
    stored = [line for line in lines if " stored " in line]
    assert len(stored) == 1 and '"after the hostile ones"' in stored[0], lines
    assert len([line for line in lines if CONNECTED.match(line)]) == 4, lines
    assert len(list((tmp_path / "Maildir" / "new").iterdir())) == 1


def test_a_line_per_connection_and_per_message_with_nothing_that_drives_a_terminal(
    env: dict[str, str], tmp_path: Path
) -> None:
    hostile_subject = b"=?utf-8?b?5Lit5paH?= news \x1b]0;owned\x07 \x1b[2J\r end"
    with serving(env, "--mailbox", str(tmp_path / "Maildir")) as served:
        _send_a_message(served, "student@example.com", hostile_subject, tls=False)
        code, stdout, stderr = served.stop(signal.SIGINT)
    assert code == 0, stderr
    assert ESC not in stdout and "\x07" not in stdout and "\r" not in stdout
    lines = _activity(stdout)
    assert CONNECTED.match(lines[0]), lines
    stored = [line for line in lines if " stored " in line]
    assert len(stored) == 1, lines
    line = stored[0]
    assert re.match(r"^\d\d:\d\d:\d\d 127\.0\.0\.1:\d+ stored \S+: ", line), line
    assert "from <student@example.com> to <friend@example.com>, <other@example.net>" in line
    assert 'subject "中文 news ]0;owned [2J end"' in line  # decoded, controls stripped
    assert "AUTH user student" in line
    size = (tmp_path / "Maildir" / "new").iterdir().__next__().stat().st_size
    assert f", {size} bytes," in line


def test_quiet_prints_no_activity(env: dict[str, str], tmp_path: Path) -> None:
    with serving(env, "--quiet", "--mailbox", str(tmp_path / "Maildir")) as served:
        _send_a_message(served, "student@example.com", b"quiet", tls=False)
        code, stdout, stderr = served.stop(signal.SIGTERM)
    assert code == 0, stderr
    assert _activity(stdout) == ["Stopping the sandbox..."]


def test_a_connection_over_the_limit_is_named(env: dict[str, str], tmp_path: Path) -> None:
    with serving(env, "--max-connections", "1", "--mailbox", str(tmp_path / "Maildir")) as served:
        with socket.create_connection((served.host, served.port), timeout=10) as first:
            assert first.recv(100).startswith(b"220 ")
            with socket.create_connection((served.host, served.port), timeout=10) as second:
                assert second.recv(100).startswith(b"421 4.7.0")
        code, stdout, stderr = served.stop(signal.SIGTERM)
    assert code == 0, stderr
    refused = [line for line in _activity(stdout) if "refused with 421" in line]
    assert len(refused) == 1 and "all 1 connections in use" in refused[0]


def test_the_lines_follow_lang(env: dict[str, str], tmp_path: Path) -> None:
    with serving(env, "--lang", "zh", "--mailbox", str(tmp_path / "Maildir")) as served:
        with _starttls(served) as garbage:
            garbage.sendall(b"\x00\x01 nonsense\r\n")
            garbage.recv(100)
        _send_a_message(served, "student@example.com", b"zh", tls=False)
        code, stdout, stderr = served.stop(signal.SIGTERM)
    assert code == 0, stderr
    lines = _activity(stdout)
    assert any(line.endswith(" 已连接") for line in lines), lines
    assert any("TLS 握手失败" in line for line in lines), lines
    assert any("已保存" in line and "主题“zh”" in line for line in lines), lines
