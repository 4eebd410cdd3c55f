"""The dialogue state machine: phases, capabilities, and what resets them."""

from __future__ import annotations

import base64

import pytest

from smtp_tutor.core.dialogue import (
    ALLOWED_PHASES,
    AUTH_RESPONSE,
    DATA_LINE,
    END_OF_DATA,
    Capabilities,
    Dialogue,
    Phase,
)
from smtp_tutor.core.replies import make_reply

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`

EHLO_REPLY = make_reply(
    250, "mail.example.com", "PIPELINING", "SIZE 10240000", "STARTTLS", "AUTH PLAIN LOGIN",
    "8BITMIME", "ENHANCEDSTATUSCODES",
)  # fmt: skip


def greeted() -> Dialogue:
    d = Dialogue()
    d.receive(make_reply(220, "mail.example.com ESMTP"))
    return d


def ready() -> Dialogue:
    d = greeted()
    d.send("EHLO client.example")
    d.receive(EHLO_REPLY)
    return d


def test_greeting_moves_to_greeted() -> None:
    d = Dialogue()
    assert d.phase is Phase.AWAITING_GREETING
    outcome = d.receive(make_reply(220, "hi"))
    assert outcome.success and d.phase is Phase.GREETED
    assert outcome.answered is not None and outcome.answered.verb == "<greeting>"


def test_554_greeting_means_no_service() -> None:
    d = Dialogue()
    d.receive(make_reply(554, "no SMTP service here"))
    assert d.service_refused and d.phase is Phase.GREETED


def test_421_greeting_closes() -> None:
    d = Dialogue()
    outcome = d.receive(make_reply(421, "4.3.2 busy"))
    assert outcome.closed and d.phase is Phase.CLOSED


def test_ehlo_parses_capabilities() -> None:
    d = ready()
    caps = d.capabilities
    assert caps is not None
    assert caps.server_name == "mail.example.com"
    assert caps.has("pipelining") and caps.has("STARTTLS")
    assert caps.size_limit == 10240000
    assert caps.auth_mechanisms == ("PLAIN", "LOGIN")
    assert d.phase is Phase.READY and d.said_hello == "EHLO"


def test_old_style_auth_keyword() -> None:
    caps = Capabilities.from_ehlo(make_reply(250, "x", "AUTH=LOGIN PLAIN", "SIZE 0"))
    assert caps.auth_mechanisms == ("LOGIN", "PLAIN")
    assert caps.size_limit is None  # SIZE 0: no fixed limit


def test_helo_has_no_extensions() -> None:
    d = greeted()
    d.send("HELO client.example")
    d.receive(make_reply(250, "mail.example.com"))
    assert d.phase is Phase.READY and d.said_hello == "HELO"
    assert d.capabilities == Capabilities()


def test_failed_ehlo_keeps_phase() -> None:
    d = greeted()
    d.send("EHLO")
    outcome = d.receive(make_reply(501, "5.5.4 Syntax: EHLO hostname"))
    assert not outcome.success and d.phase is Phase.GREETED and d.capabilities is None


def test_full_transaction() -> None:
    d = ready()
    d.send("MAIL FROM:<a@example.com>")
    d.receive(make_reply(250, "2.1.0 OK"))
    assert d.phase is Phase.MAIL and d.mail_from == "a@example.com"
    d.send("RCPT TO:<b@example.com>")
    d.receive(make_reply(250, "2.1.5 OK"))
    d.send("RCPT TO:<c@example.com>")
    d.receive(make_reply(550, "5.1.1 unknown"))
    assert d.phase is Phase.RCPT and d.recipients == ["b@example.com"]
    assert d.phase_label == "RCPT×1"
    d.send("DATA")
    d.receive(make_reply(354, "go ahead"))
    assert d.phase is Phase.DATA and d.sending_data
    d.send("Subject: hi")
    d.send("")
    d.send("..dot")
    assert d.data_lines == 3
    sent = d.send(".")
    assert sent.verb == END_OF_DATA and not d.sending_data
    outcome = d.receive(make_reply(250, "2.0.0 queued"))
    assert outcome.success and d.phase is Phase.READY and d.recipients == []


def test_failure_after_the_dot_still_ends_the_transaction() -> None:
    d = ready()
    for line, reply in [("MAIL FROM:<a@x>", 250), ("RCPT TO:<b@x>", 250), ("DATA", 354)]:
        d.send(line)
        d.receive(make_reply(reply, "ok"))
    d.send(".")
    outcome = d.receive(make_reply(554, "5.6.0 rejected"))
    assert not outcome.success and d.phase is Phase.READY


def test_rset_ends_the_transaction_but_keeps_capabilities() -> None:
    d = ready()
    d.send("MAIL FROM:<a@x>")
    d.receive(make_reply(250, "ok"))
    d.send("RSET")
    d.receive(make_reply(250, "2.0.0 OK"))
    assert d.phase is Phase.READY and d.mail_from is None
    assert d.capabilities is not None and d.capabilities.has("PIPELINING")


def test_rset_before_ehlo_stays_greeted() -> None:
    d = greeted()
    d.send("RSET")
    d.receive(make_reply(250, "ok"))
    assert d.phase is Phase.GREETED


def test_new_ehlo_resets_transaction_and_replaces_capabilities() -> None:
    d = ready()
    d.send("MAIL FROM:<a@x>")
    d.receive(make_reply(250, "ok"))
    d.send("EHLO again")
    d.receive(make_reply(250, "other", "SMTPUTF8"))
    assert d.phase is Phase.READY and d.mail_from is None
    assert d.capabilities is not None
    assert d.capabilities.has("SMTPUTF8") and not d.capabilities.has("PIPELINING")


def test_starttls_forgets_everything() -> None:
    d = ready()
    d.send("STARTTLS")
    outcome = d.receive(make_reply(220, "2.0.0 Ready to start TLS"))
    assert outcome.start_tls and d.tls_pending
    d.tls_established("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    assert d.tls_active and not d.tls_pending
    assert d.phase is Phase.GREETED and d.capabilities is None and d.said_hello is None
    assert d.tls_version == "TLSv1.3"


def test_refused_starttls_does_not_start_tls() -> None:
    d = ready()
    d.send("STARTTLS")
    outcome = d.receive(make_reply(454, "4.7.0 TLS not available"))
    assert not outcome.start_tls and not d.tls_pending


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_auth_login_exchange_learns_the_user_not_the_password() -> None:
    d = ready()
    d.send("AUTH LOGIN")
    assert d.receive(make_reply(334, "VXNlcm5hbWU6")).auth_challenge
    assert d.awaiting_auth_response
    assert d.send(b64("student")).verb == AUTH_RESPONSE
    d.receive(make_reply(334, "UGFzc3dvcmQ6"))
    d.send(b64("secret"))
    outcome = d.receive(make_reply(235, "2.7.0 Authentication successful"))
    assert outcome.authenticated and d.authenticated and d.authenticated_user == "student"
    assert "secret" not in repr(vars(d))


def test_auth_plain_initial_response() -> None:
    d = ready()
    d.send("AUTH PLAIN " + b64("\0student\0secret"))
    d.receive(make_reply(235, "2.7.0 ok"))
    assert d.authenticated_user == "student"


def test_auth_failure() -> None:
    d = ready()
    d.send("AUTH PLAIN " + b64("\0student\0wrong"))
    outcome = d.receive(make_reply(535, "5.7.8 Authentication credentials invalid"))
    assert not outcome.success and not d.authenticated and not d.awaiting_auth_response


def test_auth_cancel() -> None:
    d = ready()
    d.send("AUTH LOGIN")
    d.receive(make_reply(334, "VXNlcm5hbWU6"))
    d.send("*")
    d.receive(make_reply(501, "5.7.0 Auth aborted"))
    assert not d.awaiting_auth_response and not d.authenticated


def test_pipelined_replies_match_commands_in_order() -> None:
    d = ready()
    for line in ("MAIL FROM:<a@x>", "RCPT TO:<b@x>", "RCPT TO:<nobody@x>", "DATA"):
        d.send(line)
    assert len(d.in_flight) == 4
    verbs = []
    for code in (250, 250, 550, 354):
        outcome = d.receive(make_reply(code, "x"))
        assert outcome.answered is not None
        verbs.append(outcome.answered.verb)
    assert verbs == ["MAIL", "RCPT", "RCPT", "DATA"]
    assert d.phase is Phase.DATA and d.recipients == ["b@x"]


def test_unsolicited_reply() -> None:
    d = ready()
    outcome = d.receive(make_reply(250, "surprise"))
    assert outcome.unsolicited and outcome.answered is None


def test_421_anywhere_closes() -> None:
    d = ready()
    d.send("MAIL FROM:<a@x>")
    outcome = d.receive(make_reply(421, "4.4.2 idle timeout"))
    assert outcome.closed and d.phase is Phase.CLOSED and not d.in_flight
    assert not outcome.unsolicited


def test_quit() -> None:
    d = ready()
    d.send("QUIT")
    outcome = d.receive(make_reply(221, "2.0.0 Bye"))
    assert outcome.closed and d.phase is Phase.CLOSED


def test_connection_lost() -> None:
    d = ready()
    d.connection_lost("peer reset")
    assert d.phase is Phase.CLOSED and d.close_reason == "peer reset"


def test_malformed_reply_does_not_move_the_phase() -> None:
    d = ready()
    d.send("MAIL FROM:<a@x>")
    from smtp_tutor.core.replies import Reply

    outcome = d.receive(Reply(code=None, lines=("garbage",), raw=b"garbage\r\n", problems=("x",)))
    assert not outcome.success and d.phase is Phase.READY


@pytest.mark.parametrize(
    ("phase", "expected_first"),
    [(Phase.GREETED, "EHLO"), (Phase.READY, "MAIL"), (Phase.MAIL, "RCPT"), (Phase.RCPT, "RCPT")],
)
def test_valid_verbs_put_the_next_step_first(phase: Phase, expected_first: str) -> None:
    d = ready()
    d.phase = phase
    verbs = d.valid_verbs()
    assert verbs[0] == expected_first
    assert all(d.allowed(v) for v in verbs)


def test_valid_verbs_hide_done_extensions() -> None:
    d = ready()
    assert "STARTTLS" in d.valid_verbs() and "AUTH" in d.valid_verbs()
    d.tls_active, d.authenticated = True, True
    assert "STARTTLS" not in d.valid_verbs() and "AUTH" not in d.valid_verbs()


def test_tables_cover_every_phase_sensibly() -> None:
    for verb, phases in ALLOWED_PHASES.items():
        assert Phase.CLOSED not in phases and Phase.DATA not in phases, verb
        assert Phase.AWAITING_GREETING not in phases, verb


def test_bdat_chunks_and_last() -> None:
    d = ready()
    for line, code in [("MAIL FROM:<a@x>", 250), ("RCPT TO:<b@x>", 250), ("BDAT 10", 250)]:
        d.send(line)
        d.receive(make_reply(code, "ok"))
    assert d.phase is Phase.RCPT  # more chunks may follow
    d.send("BDAT 5 LAST")
    d.receive(make_reply(250, "2.0.0 queued"))
    assert d.phase is Phase.READY and d.recipients == []


def test_send_gives_the_wire_bytes_from_the_one_encoder() -> None:
    """The live send and transcripts agree, even on a lone surrogate (no exception)."""
    from smtp_tutor.core.command_line import wire_bytes

    d = Dialogue()
    d.receive(make_reply(220, "ready"))
    assert d.send("NOOP").wire == b"NOOP\r\n"
    assert d.send("NOOP \udcff").wire == b"NOOP \xff\r\n"  # a byte the terminal could not decode
    assert d.send("A\ud800B").wire == b"A?B\r\n" == wire_bytes("A\ud800B")


def test_one_rule_says_which_commands_end_a_pipelined_group() -> None:
    from smtp_tutor.core.dialogue import ends_group

    assert all(ends_group(v) for v in ("EHLO", "helo", "DATA", "STARTTLS", "AUTH", "BDAT", "QUIT"))
    assert not any(ends_group(v) for v in ("MAIL", "RCPT", "RSET", ""))


def test_one_reader_of_the_user_name_in_an_auth_answer() -> None:
    from smtp_tutor.core.auth import user_in_answer

    assert user_in_answer("PLAIN", "\0student\0secret") == "student"
    assert user_in_answer("plain", "student\0secret") is None
    assert user_in_answer("CRAM-MD5", "student 0123abcd") == "student"
    assert user_in_answer("CRAM-MD5", "nospace") is None
    assert user_in_answer("XOAUTH2", "user=me@example.com\x01auth=Bearer t\x01\x01") == (
        "me@example.com"
    )
    assert user_in_answer("LOGIN", "student") is None  # LOGIN's answer is the name itself


@pytest.mark.pure
def test_sending_data_follows_the_final_dots_in_flight() -> None:
    """Pipelined after DATA: the "." in flight ends message text until its reply comes."""
    d = Dialogue()
    d.receive(make_reply(220, "hi"))
    for line, code in (("EHLO me", 250), ("MAIL FROM:<a@x> SIZE=5", 250), ("RCPT TO:<b@x>", 250)):
        d.send(line)
        d.receive(make_reply(code, "ok"))
    assert d.mail_from == "a@x" and d.mail_parameters == {"SIZE": "5"} and d.recipients == ["b@x"]
    d.send("DATA")
    d.receive(make_reply(354, "go"))
    assert d.sending_data and d.send("text").verb == DATA_LINE
    assert d.send(".").verb == END_OF_DATA
    assert not d.sending_data and d.send("MAIL FROM:<c@x>").verb == "MAIL"  # pipelined
    d.receive(make_reply(250, "queued"))  # answers the "."
    assert d.phase is Phase.READY and not d.sending_data and d.recipients == []
    d.receive(make_reply(250, "ok"))  # answers the MAIL
    assert d.mail_from == "c@x"
    d.send("RCPT TO:<e@x>")
    d.receive(make_reply(250, "ok"))
    d.send("DATA")
    d.receive(make_reply(354, "go"))
    d.send(".")
    d.connection_lost()
    assert not d.sending_data and d.in_flight == ()
