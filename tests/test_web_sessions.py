"""The sandbox records every session server-side: a replayable transcript with no secret in it."""

from __future__ import annotations

import base64
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtp_tutor.core.transcript import parse_transcript
from smtp_tutor.sandbox import SandboxConfig, ThreadedSandbox, client_tls_context
from smtp_tutor.sandbox.sessions import SessionLog, SessionRecorder

PASSWORD = "s3cret-Passw0rd!"
TIMEOUT = 10


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[ThreadedSandbox]:
    config = SandboxConfig(mailbox=tmp_path / "Maildir", users={"alice": PASSWORD})
    with ThreadedSandbox(config, record_sessions=True) as sandbox:
        yield sandbox


def _log(sandbox: ThreadedSandbox) -> SessionLog:
    log = sandbox.sandbox.sessions
    assert log is not None
    return log


def _finished(log: SessionLog, count: int) -> list:
    import time

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        done = [record for record in log.sessions() if not record.open]
        if len(done) >= count:
            return done
        time.sleep(0.02)
    raise AssertionError(f"{count} sessions did not finish: {log.sessions()}")


def _no_secret(text: str) -> None:
    assert PASSWORD not in text
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    assert encoded not in text and encoded.rstrip("=") not in text
    plain = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()
    assert plain not in text


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_a_session_is_recorded_with_its_secrets_replaced(
    recording: ThreadedSandbox, mechanism: str
) -> None:
    with smtplib.SMTP(recording.host, recording.port, timeout=TIMEOUT) as client:
        client.ehlo("client.test")
        client.user, client.password = "alice", PASSWORD
        method = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login}.get(
            mechanism, client.auth_cram_md5
        )
        client.auth(mechanism, method, initial_response_ok=mechanism == "PLAIN")
        client.sendmail("alice@example.org", ["bob@example.org"], b"Subject: hi\r\n\r\n.dot\r\n")
    log = _log(recording)
    (record,) = _finished(log, 1)
    assert record.auth_user == "alice"
    assert record.helo == "client.test"
    assert record.client[0] == "127.0.0.1"
    assert len(record.message_keys) == 1
    assert recording.mailbox().get(record.message_keys[0]).envelope["session"] == record.id
    text = log.transcript(record)
    _no_secret(text)
    assert "C: ehlo client.test" in text  # as smtplib sent it
    assert "C: mail FROM:<alice@example.org>" in text
    assert "C: ..dot" in text  # wire form, dot-stuffed as sent
    assert "S: 235 2.7.0" in text
    expected = {
        "PLAIN": 'C: AUTH PLAIN {plain user="alice" password=password}',
        "LOGIN": "C: {base64 password}",
        "CRAM-MD5": 'C: {cram-md5 user="alice" password=password}',
    }[mechanism]
    assert expected in text
    if mechanism == "LOGIN":
        assert "C: " + base64.b64encode(b"alice").decode() in text  # a user name is no secret
    script = parse_transcript(text, source="session")  # replayable: it parses
    assert script.items
    assert record.last_command is not None and record.last_command.upper() == "QUIT"


def test_starttls_and_errors_are_in_the_record(recording: ThreadedSandbox) -> None:
    with smtplib.SMTP(recording.host, recording.port, timeout=TIMEOUT) as client:
        client.ehlo("client.test")
        client.starttls(context=client_tls_context(recording.cert_path))
        client.ehlo("client.test")
        code, _ = client.docmd("RCPT TO:<x@example.org>")
        assert code == 503
    (record,) = _finished(_log(recording), 1)
    assert record.tls is not None and record.tls["version"].startswith("TLS")
    assert record.last_error is not None and record.last_error.startswith("503")
    text = _log(recording).transcript(record)
    assert "@tls TLS" in text


def test_a_password_typed_where_no_secret_was_expected_is_masked(
    recording: ThreadedSandbox,
) -> None:
    with socket.create_connection((recording.host, recording.port), timeout=TIMEOUT) as sock:
        sock.recv(1000)
        sock.sendall(f"NOOP {PASSWORD}\r\nQUIT\r\n".encode())
        while sock.recv(1000):
            pass
    (record,) = _finished(_log(recording), 1)
    text = _log(recording).transcript(record)
    _no_secret(text)
    assert "C: NOOP ********" in text


@pytest.mark.pure
def test_the_log_is_bounded_and_drops_the_oldest_finished_sessions() -> None:
    log = SessionLog(max_sessions=3, max_bytes=10_000)
    recorders = [SessionRecorder(log, ("127.0.0.1", 1000 + n)) for n in range(5)]
    assert len(log) == 5  # open sessions are never dropped
    for recorder in recorders[:4]:
        recorder.received(b"NOOP\r\n")
        recorder.closed()
    assert len(log) == 3
    log_ids = [record.id for record in log.sessions()]
    assert recorders[4].id in log_ids and recorders[0].id not in log_ids
    big = SessionRecorder(log, ("127.0.0.1", 2000))
    big.received(b"DATA\r\n")
    big.sent(b"354 go ahead\r\n")
    big.received(b"x" * 2_000_000 + b"\r\n.\r\n")
    assert big.record.size <= 1024 * 1024 + 100
    assert big.record.elided > 0


@pytest.mark.pure
def test_pipelined_bytes_and_split_lines_are_recorded_in_wire_order() -> None:
    log = SessionLog()
    recorder = SessionRecorder(log, ("127.0.0.1", 1))
    recorder.sent(b"220 hi")
    recorder.received(b"EHLO a\r\nMAIL FROM:<a@b>\r\nRC")
    recorder.received(b"PT TO:<c@d>\r\nBDAT 7 LAST\r\nab\r\n")
    recorder.received(b"cd.QUIT\r\n")
    kinds = [(kind, payload) for _t, kind, payload in recorder.record.events]
    assert kinds[1:4] == [("C", "EHLO a"), ("C", "MAIL FROM:<a@b>"), ("C", "RCPT TO:<c@d>")]
    assert kinds[4] == ("chunk", ("BDAT 7 LAST", b"ab\r\ncd."))
    assert kinds[5] == ("C", "QUIT")
