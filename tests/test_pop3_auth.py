"""POP3 logins beyond USER/PASS — APOP and SASL AUTH — and keeping their secrets out of sight."""

from __future__ import annotations

import pytest

from smtp_tutor.core.auth import AuthError, b64encode_bytes
from smtp_tutor.core.catalogue import localize
from smtp_tutor.core.pop3.auth import Pop3AuthExchange, apop_command, apop_digest
from smtp_tutor.core.pop3.dialogue import Dialogue
from smtp_tutor.core.pop3.redaction import mask_line, masked, track
from smtp_tutor.core.pop3.responses import Expect, Response, ResponseParser
from smtp_tutor.core.redaction import MASK, SecretTracker

RFC_TIMESTAMP = "<1896.697170952@dbc.mtview.ca.us>"


def response(data: bytes, expect: Expect = Expect.SASL) -> Response:
    parser = ResponseParser()
    parser.expect(expect)
    [parsed] = parser.feed(data)
    return parsed


# -- APOP ----------------------------------------------------------------------------------


def test_apop_digest_is_the_rfc_1939_example() -> None:
    assert apop_digest(RFC_TIMESTAMP, "tanstaaf") == "c4c9334bac560ecc979e58001b3e22fb"
    greeting = f"POP3 server ready {RFC_TIMESTAMP}"
    assert apop_command("mrose", "tanstaaf", greeting) == (
        "APOP mrose c4c9334bac560ecc979e58001b3e22fb"
    )


def test_apop_digest_that_dovecot_accepted() -> None:
    # From tests/pop3_dovecot_sessions.txt (session "apop"): Dovecot answered +OK Logged in.
    timestamp = "<614e.d.6b11c241.1NPH4sV5QGTbCnxxQPrX0Q==@vm>"
    assert apop_digest(timestamp, "s3cret") == "a243affc013036bd6891d85f85d01cf9"


def test_apop_refuses_what_cannot_work() -> None:
    with pytest.raises(AuthError, match="timestamp"):
        apop_command("mrose", "tanstaaf", "POP3 server ready")
    with pytest.raises(AuthError, match="one word"):
        apop_command("m rose", "tanstaaf", RFC_TIMESTAMP)
    with pytest.raises(AuthError, match="empty"):
        apop_digest(RFC_TIMESTAMP, "")


# -- SASL AUTH -----------------------------------------------------------------------------


def test_auth_plain_with_a_challenge_as_dovecot_does_it() -> None:
    ex = Pop3AuthExchange("PLAIN", user="student", password="s3cret")
    step = ex.start()
    assert step.line == "AUTH PLAIN" and not step.secret
    step = ex.feed_response(response(b"+ \r\n"))
    assert step.line == b64encode_bytes(b"\0student\0s3cret") and step.secret
    step = ex.feed_response(response(b"+OK Logged in.\r\n"))
    assert step.done and step.success and ex.success
    assert str(step.note) == "+OK: logged in" and localize(step.note, "zh") == "+OK：已登录"


def test_auth_plain_with_an_initial_response() -> None:
    ex = Pop3AuthExchange("PLAIN", initial_response=True, user="student", password="s3cret")
    assert ex.command() == "AUTH PLAIN AHN0dWRlbnQAczNjcmV0"
    step = ex.feed_response(response(b"-ERR [AUTH] Authentication failed.\r\n"))
    assert step.done and step.success is False and str(step.note) == "-ERR: the login was refused"


def test_auth_login_asks_for_each_value() -> None:
    ex = Pop3AuthExchange("LOGIN")
    step = ex.start()
    assert step.line == "AUTH LOGIN"
    step = ex.feed_response(response(b"+ VXNlcm5hbWU6\r\n"))
    assert step.need == "username" and step.challenge == "Username:" and step.echo
    step = ex.provide("student")
    assert step.line == "c3R1ZGVudA==" and not step.secret
    step = ex.feed_response(response(b"+ UGFzc3dvcmQ6\r\n"))
    assert step.need == "password" and not step.echo
    step = ex.provide("s3cret")
    assert step.line == "czNjcmV0" and step.secret
    assert ex.feed_response(response(b"+OK Logged in.\r\n")).success
    assert ex.user == "student" and ex.secret_values() == ("s3cret",)
    assert ex.secret_lines == ("czNjcmV0",) and "s3cret" not in repr(ex)


def test_auth_cancel_speaks_pop3() -> None:
    ex = Pop3AuthExchange("PLAIN")
    ex.start()
    ex.feed_response(response(b"+ \r\n"))
    step = ex.cancel()
    assert step.line == "*" and "-ERR" in str(step.note) and "501" not in str(step.note)
    step = ex.feed_response(response(b"-ERR Authentication aborted by client.\r\n"))
    assert step.done and not step.success and ex.cancelled
    assert "-ERR is the expected answer" in str(step.note)


def test_a_typed_auth_line_and_a_malformed_answer() -> None:
    ex = Pop3AuthExchange.from_command("AUTH PLAIN AHN0dWRlbnQAczNjcmV0")
    assert ex.mechanism == "PLAIN" and ex.secret_lines == ("AUTH PLAIN AHN0dWRlbnQAczNjcmV0",)
    step = ex.feed_response(response(b"garbage\r\n"))
    assert step.done and step.success is False and "neither +OK" in str(step.note)


def test_unsupported_mechanism() -> None:
    with pytest.raises(AuthError, match="not supported"):
        Pop3AuthExchange("GSSAPI")


# -- redaction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("PASS s3cret", f"PASS {MASK}"),
        ("pass my secret pass", f"pass {MASK}"),
        ("PASS s3cret\r\n", f"PASS {MASK}\r\n"),
        ("APOP mrose c4c9334bac560ecc979e58001b3e22fb", f"APOP mrose {MASK}"),
        ("AUTH PLAIN AHN0dWRlbnQAczNjcmV0", f"AUTH PLAIN {MASK}"),
        ("AUTH PLAIN", "AUTH PLAIN"),
        ("USER student", "USER student"),
        ("RETR 1", "RETR 1"),
    ],
)
def test_mask_line(line: str, shown: str) -> None:
    assert mask_line(line) == shown


def test_answers_to_a_challenge_are_masked_whole() -> None:
    assert mask_line("czNjcmV0", auth_response=True) == MASK
    assert mask_line("*", auth_response=True) == "*"


def test_a_session_s_secrets_are_tracked_and_redacted() -> None:
    d = Dialogue()
    d.receive(b"+OK ready <1.2@host>\r\n")
    tracker = SecretTracker()
    shown: list[str] = []
    answers = {
        "USER student": b"+OK\r\n",
        "PASS my s3cret": b"-ERR [AUTH] no\r\n",
        "APOP student 0123456789abcdef0123456789abcdef": b"-ERR [AUTH] no\r\n",
        "AUTH PLAIN AHN0dWRlbnQAczNjcmV0": b"-ERR [AUTH] no\r\n",
        "AUTH LOGIN": b"+ VXNlcm5hbWU6\r\n",
        "c3R1ZGVudA==": b"+ UGFzc3dvcmQ6\r\n",
        "b3RoZXJwYXNz": b"+OK Logged in.\r\n",
    }
    lines = list(answers)
    for line, answer in answers.items():
        user = d.projected_user
        sent = d.send(line)
        track(tracker, sent, user)
        shown.append(masked(sent))
        d.receive(answer)
    assert shown == [
        "USER student", f"PASS {MASK}", f"APOP student {MASK}", f"AUTH PLAIN {MASK}",
        "AUTH LOGIN", MASK, MASK,
    ]  # fmt: skip
    log = "\n".join(f"C: {line}" for line in lines)
    redacted = tracker.redact(log)
    for secret in ("my s3cret", "0123456789abcdef0123456789abcdef", "AHN0dWRlbnQAczNjcmV0"):
        assert secret not in redacted
    assert "b3RoZXJwYXNz" not in redacted and "C: USER student" in redacted
    # the PLAIN blob a console would build for the same password is known too
    assert b64encode_bytes(b"\0student\0my s3cret") in tracker.forms


def test_lines_without_secrets_teach_the_tracker_nothing() -> None:
    d = Dialogue()
    d.receive(b"+OK\r\n")
    tracker = SecretTracker()
    for line in ("USER student", "AUTH PLAIN =", "CAPA"):
        track(tracker, d.send(line))
    assert tracker.forms == frozenset() and tracker.lines == frozenset()
