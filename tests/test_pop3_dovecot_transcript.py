"""A real Dovecot 2.3 POP3 dialogue (tests/pop3_dovecot_sessions.txt) read by the POP3 core.

The transcript was captured byte for byte from a private Dovecot on 127.0.0.1 (see its
header); no server is needed here. Each session is replayed through the dialogue — the C:
lines sent, the S: bytes received — and what the core made of it is checked against what
Dovecot meant, including which lines the checker predicted would be refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smtp_tutor.core.pop3.checker import check
from smtp_tutor.core.pop3.dialogue import Dialogue, Outcome, State
from smtp_tutor.core.pop3.redaction import track
from smtp_tutor.core.redaction import SecretTracker

TRANSCRIPT = Path(__file__).with_name("pop3_dovecot_sessions.txt")
FIRST_MESSAGE = (
    b"From: student@example.com\r\nTo: student@example.com\r\nSubject: first\r\n"
    b"Message-ID: <1@example.com>\r\n\r\nHello.\r\n.hidden dot line\r\n..two dots\r\n"
    b"last line\r\n"
)


@dataclass
class Replayed:
    dialogue: Dialogue
    outcomes: list[Outcome] = field(default_factory=list)
    refused_as_predicted: list[str] = field(default_factory=list)
    tracker: SecretTracker = field(default_factory=SecretTracker)
    sent: list[str] = field(default_factory=list)


def sessions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    name = ""
    for line in TRANSCRIPT.read_text("utf-8").splitlines():
        if line.startswith("# session: "):
            name = line.removeprefix("# session: ")
            found[name] = []
        elif name and line[:2] in ("C:", "S:", "@t"):
            found[name].append(line)
    return found


def replay(name: str, byte_by_byte: bool = False) -> Replayed:
    """Send each run of C: lines, then feed the run of S: lines that follows it."""
    result = Replayed(Dialogue())
    d = result.dialogue
    pending = b""
    predictions: list[tuple[str, bool]] = []

    def flush() -> None:
        nonlocal pending
        chunks = [pending[i : i + 1] for i in range(len(pending))] if byte_by_byte else [pending]
        for chunk in chunks:
            for outcome in d.receive(chunk):
                result.outcomes.append(outcome)
                if outcome.answered is not None and outcome.answered.command is not None:
                    line, predicted = predictions.pop(0)
                    if predicted:
                        assert outcome.response.is_error, f"{line!r} was predicted to fail"
                        result.refused_as_predicted.append(line)
        pending = b""

    for entry in sessions()[name]:
        if entry.startswith("S:"):
            pending += entry[3:].encode("utf-8") + b"\r\n"
        elif entry.startswith("@tls"):
            flush()
            d.tls_established(entry.split()[1])
        else:
            if pending:
                flush()
            line = entry[3:]
            errors = [f for f in check(line, d) if f.severity == "error"]
            user = d.projected_user
            sent = d.send(line)
            track(result.tracker, sent, user)
            result.sent.append(line)
            if sent.command is not None:
                predictions.append((line, bool(errors)))
    flush()
    result.outcomes += d.receive_eof()
    return result


def test_the_transcript_holds_every_session() -> None:
    names = set(sessions())
    assert {
        "main",
        "errors",
        "auth",
        "auth_ir",
        "apop",
        "apop_failed",
        "stls",
        "pipelined",
    } <= names


@pytest.mark.parametrize("name", sorted(sessions()))
def test_every_dovecot_response_is_well_formed_and_answers_a_line(name: str) -> None:
    replayed = replay(name)
    assert replayed.outcomes, name
    for outcome in replayed.outcomes:
        assert not outcome.response.malformed, (name, outcome.response)
        assert not outcome.unsolicited, (name, outcome.response)
    d = replayed.dialogue
    assert d.state is State.CLOSED and d.in_flight == ()


@pytest.mark.parametrize("name", sorted(sessions()))
def test_byte_by_byte_gives_the_same_outcomes(name: str) -> None:
    assert replay(name, byte_by_byte=True).outcomes == replay(name).outcomes


@pytest.mark.parametrize("name", sorted(sessions()))
def test_no_password_survives_redaction(name: str) -> None:
    replayed = replay(name)
    log = "\n".join(f"C: {line}" for line in replayed.sent)
    redacted = replayed.tracker.redact(log)
    assert "s3cret" not in redacted and "AHN0dWRlbnQAczNjcmV0" not in redacted
    assert "czNjcmV0" not in redacted and "a243affc013036bd6891d85f85d01cf9" not in redacted


def test_main_session() -> None:
    replayed = replay("main")
    d = replayed.dialogue
    by_line = {
        (o.answered.command.line if o.answered and o.answered.command else "<greeting>"): o
        for o in reversed(replayed.outcomes)  # the first answer to a repeated line wins
    }
    assert (
        d.greeting is not None
        and d.apop_timestamp == "<614e.1.6b11c1d0.MbmMICAim8VaZlMFDNWJmg==@vm>"
    )
    assert d.authenticated_user == "student"
    capa = by_line["CAPA"].response
    assert capa.lines[0] == "CAPA" and "SASL PLAIN LOGIN" in capa.lines
    # CAPA was asked again after login: Dovecot lists fewer capabilities there.
    assert d.capabilities_state is State.TRANSACTION and d.capabilities is not None
    assert not d.capabilities.has("USER") and d.capabilities.has("PIPELINING")
    assert by_line["PASS s3cret"].state_after is State.TRANSACTION
    assert d.sizes == {1: 148, 2: 93}
    assert d.uids == {1: "000000016b11c1d2", 2: "000000026b11c1d2"}
    retr = by_line["RETR 1"].response
    assert retr.text == "148 octets" and retr.body == FIRST_MESSAGE and len(retr.body) == 148
    top = by_line["TOP 1 0"].response
    assert top.body == FIRST_MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert by_line["LIST 9"].response.is_error
    assert d.deleted == set() and d.removed == frozenset()  # RSET undid the DELE
    quit_ = by_line["QUIT"]
    assert quit_.state_before is State.TRANSACTION and quit_.state_after is State.UPDATE
    # What the checker said would be refused, Dovecot refused.
    assert replayed.refused_as_predicted == [
        "RETR 1", "LIST 1", "DELE 1", "USER x", "STLS",
    ]  # fmt: skip


def test_errors_session() -> None:
    replayed = replay("errors")
    assert replayed.refused_as_predicted == [
        "PASS s3cret", "STAT", "PASS s3cret", "RETR 0", "RETR x", "TOP 1", "XYZZY", "STLS",
    ]  # fmt: skip
    codes = [o.response.code for o in replayed.outcomes if o.response.code]
    assert codes == ["AUTH"]
    assert replayed.dialogue.authenticated_user == "student"


def test_auth_session() -> None:
    replayed = replay("auth")
    kinds = [
        (o.answered.verb if o.answered else None, o.response.status_line) for o in replayed.outcomes
    ]
    assert kinds[1] == ("AUTH", "+OK")  # the bare AUTH lists mechanisms
    assert replayed.outcomes[1].response.lines == ("PLAIN", "LOGIN")
    challenges = [o for o in replayed.outcomes if o.auth_challenge]
    assert [o.response.text for o in challenges] == ["", "", "VXNlcm5hbWU6", "UGFzc3dvcmQ6"]
    logged_in = [o for o in replayed.outcomes if o.authenticated]
    assert len(logged_in) == 1 and logged_in[0].state_after is State.TRANSACTION
    assert replayed.dialogue.authenticated_user == "student"


def test_auth_initial_response_and_apop_sessions() -> None:
    assert replay("auth_ir").dialogue.authenticated_user == "student"
    apop = replay("apop")
    assert apop.dialogue.authenticated_user == "student"
    failed = replay("apop_failed")
    assert failed.dialogue.authenticated_user is None
    assert (
        failed.dialogue.close_reason is not None and "before login" in failed.dialogue.close_reason
    )


def test_stls_session() -> None:
    replayed = replay("stls")
    stls = next(o for o in replayed.outcomes if o.start_tls)
    assert stls.discarded == b"" and stls.response.text == "Begin TLS negotiation now."
    d = replayed.dialogue
    assert d.tls_active and d.tls_version == "TLSv1.3"
    assert d.capabilities is not None and not d.capabilities.has("STLS")  # asked again after TLS


def test_pipelined_session() -> None:
    replayed = replay("pipelined")
    verbs = [o.answered.verb for o in replayed.outcomes if o.answered]
    assert verbs == ["<greeting>", "USER", "PASS", "STAT", "LIST", "UIDL", "QUIT"]
    assert replayed.outcomes[4].response.lines == ("1 148", "2 93")
    assert replayed.dialogue.uids == {2: "000000026b11c1d2"}
