"""The POP3 dialogue: its tables, and sessions driven line by line and byte by byte."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtp_tutor.core.pop3.command_line import KNOWN_COMMANDS, LineError, parse_command, parse_number
from smtp_tutor.core.pop3.dialogue import (
    AUTH_RESPONSE,
    EXPECT,
    GREETING,
    TRANSITIONS,
    VALID_IN,
    Dialogue,
    Outcome,
    State,
    apop_timestamp,
    ends_group,
)
from smtp_tutor.core.pop3.responses import Expect, ResponseParser, Status

GREETING_LINE = b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"


def greeted() -> Dialogue:
    d = Dialogue()
    [outcome] = d.receive(GREETING_LINE)
    assert outcome.answered is not None and outcome.answered.verb == GREETING
    return d


def step(d: Dialogue, line: str, answer: bytes) -> Outcome:
    d.send(line)
    [outcome] = d.receive(answer)
    return outcome


def logged_in() -> Dialogue:
    d = greeted()
    step(d, "USER mrose", b"+OK mrose is a real hoopy frood\r\n")
    step(d, "PASS secret", b"+OK mrose's maildrop has 2 messages (320 octets)\r\n")
    assert d.state is State.TRANSACTION
    return d


# -- the tables ----------------------------------------------------------------------------


def test_every_known_command_has_states_and_update_and_closed_accept_nothing() -> None:
    assert set(VALID_IN) == set(KNOWN_COMMANDS)
    for verb, states in VALID_IN.items():
        assert states and states <= {State.AUTHORIZATION, State.TRANSACTION}, verb


def test_rfc_1939_state_membership() -> None:
    authorization = {v for v, s in VALID_IN.items() if State.AUTHORIZATION in s}
    transaction = {v for v, s in VALID_IN.items() if State.TRANSACTION in s}
    assert {"USER", "PASS", "APOP", "AUTH", "STLS", "CAPA", "QUIT"} <= authorization
    assert not {"STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL"} & authorization
    assert {"STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "QUIT"} <= transaction
    assert not {"USER", "PASS", "APOP", "AUTH", "STLS"} & transaction


def test_transitions_start_where_their_command_is_valid() -> None:
    for (state, verb, status), target in TRANSITIONS.items():
        assert status in (Status.OK, Status.ERR)
        real_verb = "AUTH" if verb == AUTH_RESPONSE else verb
        assert state in VALID_IN[real_verb], (state, verb)
        assert target is not state
    assert TRANSITIONS[(State.TRANSACTION, "QUIT", Status.OK)] is State.UPDATE
    assert TRANSITIONS[(State.TRANSACTION, "QUIT", Status.ERR)] is State.UPDATE
    assert (State.AUTHORIZATION, "PASS", Status.ERR) not in TRANSITIONS


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("LIST", Expect.MULTILINE), ("LIST 1", Expect.SINGLE), ("UIDL", Expect.MULTILINE),
        ("UIDL 2", Expect.SINGLE), ("RETR 1", Expect.MULTILINE), ("TOP 1 0", Expect.MULTILINE),
        ("CAPA", Expect.MULTILINE), ("AUTH", Expect.MULTILINE), ("AUTH PLAIN", Expect.SASL),
        ("STAT", Expect.SINGLE), ("USER a", Expect.SINGLE), ("DELE 1", Expect.SINGLE),
        ("QUIT", Expect.SINGLE), ("XYZZY", Expect.SINGLE), ("list", Expect.MULTILINE),
    ],
)  # fmt: skip
def test_which_answers_are_multiline(line: str, expect: Expect) -> None:
    d = greeted()
    assert d.send(line).expect is expect
    assert EXPECT.get((parse_command(line).keyword, bool(parse_command(line).args))) in (
        expect,
        None,
    )


def test_group_enders() -> None:
    assert ends_group("stls") and ends_group("AUTH") and ends_group("QUIT")
    assert not ends_group("RETR") and not ends_group("USER")


# -- commands and encoding ---------------------------------------------------------------


def test_parse_command_keeps_pass_spaces() -> None:
    c = parse_command("PASS my secret ")
    assert c.keyword == "PASS" and c.argument == "my secret " and c.known
    c = parse_command("  retr   1")
    assert c.keyword == "RETR" and c.args == ("1",)
    assert parse_command("").keyword == "" and not parse_command("HELO x").known


@pytest.mark.parametrize(("text", "number"), [("1", 1), ("007", 7), ("0", 0)])
def test_parse_number(text: str, number: int) -> None:
    assert parse_number(text) == number


@pytest.mark.parametrize("text", ["", "-1", "+1", "1.0", "one", "١", "1" * 19])
def test_parse_number_refuses(text: str) -> None:
    assert parse_number(text) is None


def test_send_returns_the_wire_bytes_and_refuses_cr_lf() -> None:
    d = greeted()
    sent = d.send("USER student")
    assert sent.wire == b"USER student\r\n" and sent.verb == "USER" and not sent.secret
    for bad in ("USER a\r\nDELE 1", "USER a\nb", "USER a\r"):
        with pytest.raises(LineError, match="CR or LF"):
            d.send(bad)
    assert len(d.in_flight) == 1  # nothing refused was recorded
    assert d.send("PASS s\udce9").wire == b"PASS s\xe9\r\n"  # a byte the terminal kept


def test_secret_flags() -> None:
    d = greeted()
    assert d.send("PASS x").secret and d.send("APOP mrose c4c9").secret
    assert d.send("AUTH PLAIN AGEAYg==").secret
    assert not d.send("AUTH PLAIN =").secret and not d.send("AUTH LOGIN").secret


# -- a whole session -------------------------------------------------------------------------


def test_greeting_gives_the_apop_timestamp() -> None:
    d = greeted()
    assert d.greeted and not d.service_refused
    assert d.apop_timestamp == "<1896.697170952@dbc.mtview.ca.us>"
    assert apop_timestamp("+OK ready") is None


def test_refusing_greeting() -> None:
    d = Dialogue()
    d.receive(b"-ERR [SYS/TEMP] try later\r\n")
    assert d.service_refused and d.state is State.AUTHORIZATION


def test_user_pass_login() -> None:
    d = greeted()
    out = step(d, "USER mrose", b"+OK mrose is a real hoopy frood\r\n")
    assert d.user == "mrose" and out.state_after is State.AUTHORIZATION and out.success
    assert d.state_label == "AUTHORIZATION (USER mrose)"
    out = step(d, "PASS secret", b"+OK maildrop locked and ready\r\n")
    assert out.authenticated and out.state_before is State.AUTHORIZATION
    assert out.state_after is State.TRANSACTION and d.authenticated_user == "mrose"
    assert d.user is None


def test_a_refused_pass_wants_user_again() -> None:
    d = greeted()
    step(d, "USER mrose", b"+OK\r\n")
    out = step(d, "PASS wrong", b"-ERR [AUTH] Authentication failed.\r\n")
    assert not out.success and out.state_after is State.AUTHORIZATION and d.user is None
    assert out.response.code == "AUTH"
    step(d, "USER nobody", b"-ERR sorry, no mailbox for nobody here\r\n")
    assert d.user is None


def test_apop_login() -> None:
    d = greeted()
    out = step(d, "APOP mrose c4c9334bac560ecc979e58001b3e22fb", b"+OK maildrop has 1 message\r\n")
    assert out.authenticated and d.state is State.TRANSACTION and d.authenticated_user == "mrose"


def test_auth_plain_with_a_challenge() -> None:
    d = greeted()
    out = step(d, "AUTH PLAIN", b"+ \r\n")
    assert out.auth_challenge and d.awaiting_auth_response and d.auth_mechanism == "PLAIN"
    sent = d.send("AHN0dWRlbnQAczNjcmV0")
    assert sent.verb == AUTH_RESPONSE and sent.secret and sent.expect is Expect.SASL
    [out] = d.receive(b"+OK Logged in.\r\n")
    assert out.authenticated and d.state is State.TRANSACTION
    assert d.authenticated_user == "student" and d.auth_mechanism is None


def test_auth_plain_with_an_initial_response() -> None:
    d = greeted()
    out = step(d, "AUTH PLAIN AHN0dWRlbnQAczNjcmV0", b"+OK Logged in.\r\n")
    assert out.authenticated and d.state is State.TRANSACTION and d.authenticated_user == "student"


def test_auth_login_never_takes_the_password_for_the_user() -> None:
    d = greeted()
    step(d, "AUTH LOGIN", b"+ VXNlcm5hbWU6\r\n")
    step(d, "not base64!", b"+ UGFzc3dvcmQ6\r\n")
    step(d, "czNjcmV0", b"+OK Logged in.\r\n")  # base64 of the password
    assert d.state is State.TRANSACTION and d.authenticated_user is None


def test_auth_cancelled_and_failed() -> None:
    d = greeted()
    step(d, "AUTH PLAIN", b"+ \r\n")
    out = step(d, "*", b"-ERR Authentication aborted by client.\r\n")
    assert not out.success and d.state is State.AUTHORIZATION and not d.awaiting_auth_response
    assert d.in_flight == ()


def test_bare_auth_lists_mechanisms_and_logs_nobody_in() -> None:
    d = greeted()
    out = step(d, "AUTH", b"+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n")
    assert out.response.lines == ("PLAIN", "LOGIN") and d.state is State.AUTHORIZATION


def test_capa() -> None:
    d = greeted()
    out = step(
        d, "CAPA", b"+OK\r\nTOP\r\nUSER\r\nSASL PLAIN LOGIN\r\nLOGIN-DELAY 900\r\nSTLS\r\n.\r\n"
    )
    caps = d.capabilities
    assert out.success and caps is not None and d.capabilities_state is State.AUTHORIZATION
    assert caps.has("top") and caps.sasl_mechanisms == ("PLAIN", "LOGIN")
    assert caps.login_delay == 900 and caps.params("STLS") == () and not caps.has("UIDL")


def test_stls_drops_what_came_before_the_handshake_and_forgets_capa() -> None:
    d = greeted()
    step(d, "CAPA", b"+OK\r\nSTLS\r\nUSER\r\n.\r\n")
    d.send("STLS")
    d.send("USER pipelined-too-early")
    [out] = d.receive(b"+OK Begin TLS negotiation now.\r\n-ERR injected\r\n+OK also\r\n")
    assert out.start_tls and d.tls_pending and d.capabilities is None
    assert out.discarded == b"-ERR injected\r\n+OK also\r\n"
    assert d.in_flight == ()
    d.tls_established("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    assert d.tls_active and not d.tls_pending and d.tls_version == "TLSv1.3"
    out = step(d, "CAPA", b"+OK\r\nUSER\r\n.\r\n")
    assert out.success and d.capabilities is not None and not d.capabilities.has("STLS")


def test_stls_refused_changes_nothing() -> None:
    d = greeted()
    out = step(d, "STLS", b"-ERR TLS not configured\r\n")
    assert not out.start_tls and not d.tls_pending


def test_stat_list_uidl_are_remembered() -> None:
    d = logged_in()
    step(d, "STAT", b"+OK 2 320\r\n")
    assert (d.message_count, d.maildrop_size) == (2, 320)
    step(d, "LIST", b"+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n")
    assert d.sizes == {1: 120, 2: 200}
    step(d, "LIST 2", b"+OK 2 210\r\n")
    assert d.sizes == {1: 120, 2: 210}
    step(d, "UIDL", b"+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n")
    assert d.uids == {1: "whqtswO00WBw418f9t5JxYwZ", 2: "QhdPYR:00WBw1Ph7x7"}
    step(d, "STAT", b"+OK garbage\r\n")
    assert d.message_count == 2  # an answer it cannot read teaches nothing


def test_retr_keeps_the_message_byte_for_byte() -> None:
    message = b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n"
    d = logged_in()
    out = step(d, "RETR 1", b"+OK 40 octets\r\nSubject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n")
    assert out.response.body == message


def test_dele_rset_quit_update() -> None:
    d = logged_in()
    step(d, "DELE 1", b"+OK message 1 deleted\r\n")
    step(d, "DELE 2", b"+OK message 2 deleted\r\n")
    assert d.deleted == {1, 2} and d.state_label == "TRANSACTION (DELE×2)"
    step(d, "DELE 1", b"-ERR message 1 already deleted\r\n")
    step(d, "RSET", b"+OK maildrop has 2 messages (320 octets)\r\n")
    assert d.deleted == set()
    step(d, "DELE 2", b"+OK message 2 deleted\r\n")
    out = step(d, "QUIT", b"+OK dewey POP3 server signing off (1 message left)\r\n")
    assert out.state_before is State.TRANSACTION and out.state_after is State.UPDATE
    assert not out.closed and d.removed == frozenset({2})
    assert "removed the 1 message" in str(d.close_reason)
    assert d.valid_commands() == []
    assert d.receive_eof() == [] and d.state is State.CLOSED
    assert "removed the 1 message" in str(d.close_reason)  # UPDATE's word stays


def test_quit_err_in_transaction_still_enters_update() -> None:
    d = logged_in()
    step(d, "DELE 1", b"+OK\r\n")
    out = step(d, "QUIT", b"-ERR some deleted messages not removed\r\n")
    assert out.state_after is State.UPDATE and d.removed is None
    assert "may not have been removed" in str(d.close_reason)


def test_quit_before_login_closes_without_update() -> None:
    d = greeted()
    out = step(d, "QUIT", b"+OK dewey POP3 server signing off\r\n")
    assert out.closed and d.state is State.CLOSED and d.removed is None
    assert "before login" in str(d.close_reason)


def test_a_dropped_connection_commits_nothing() -> None:
    d = logged_in()
    step(d, "DELE 1", b"+OK\r\n")
    d.connection_lost()
    assert d.state is State.CLOSED and d.removed is None
    assert "stay in the mailbox" in str(d.close_reason) and "RFC 1939 §6" in str(d.close_reason)
    d2 = logged_in()
    d2.connection_lost()
    assert str(d2.close_reason) == "the connection was closed"


def test_a_drop_inside_retr() -> None:
    d = logged_in()
    d.send("RETR 1")
    assert d.receive(b"+OK 500 octets\r\nSubject: cut\r\n") == []
    [out] = d.receive_eof()
    assert out.response.malformed and out.response.body == b"Subject: cut\r\n"
    assert [p.id for p in out.response.problems] == ["closed_mid_response"]
    assert d.state is State.CLOSED


def test_pipelined_login_and_commands() -> None:
    d = greeted()
    for line in ("USER student", "PASS s3cret", "STAT", "LIST", "QUIT"):
        d.send(line)
    assert d.projected_state is State.UPDATE and len(d.in_flight) == 5
    assert d.projected_user is None
    data = b"+OK\r\n+OK Logged in.\r\n+OK 2 241\r\n"
    data += b"+OK 2 messages:\r\n1 148\r\n2 93\r\n.\r\n+OK Logging out.\r\n"
    outcomes = [o for byte in data for o in d.receive(bytes([byte]))]
    verbs = [o.answered.verb for o in outcomes if o.answered]
    assert verbs == ["USER", "PASS", "STAT", "LIST", "QUIT"]
    assert [o.state_after for o in outcomes] == [
        State.AUTHORIZATION, State.TRANSACTION, State.TRANSACTION, State.TRANSACTION, State.UPDATE
    ]  # fmt: skip
    assert outcomes[3].response.lines == ("1 148", "2 93")


def test_projected_user_counts_a_user_in_flight() -> None:
    d = greeted()
    d.send("USER alice")
    assert d.projected_user == "alice" and d.user is None
    assert d.allowed("PASS") and not d.allowed("STAT")
    d.send("PASS x")
    assert d.allowed("STAT") and not d.allowed("USER")


def test_unsolicited_response() -> None:
    d = logged_in()
    [out] = d.receive(b"-ERR autologout timer expired\r\n")
    assert out.unsolicited and out.answered is None and d.state is State.TRANSACTION


def test_valid_commands() -> None:
    d = greeted()
    assert d.valid_commands() == ["USER", "CAPA", "STLS", "AUTH", "APOP", "QUIT"]
    step(d, "CAPA", b"+OK\r\nUSER\r\n.\r\n")
    assert d.valid_commands() == ["USER", "CAPA", "APOP", "QUIT"]
    step(d, "USER a", b"+OK\r\n")
    assert d.valid_commands()[0] == "PASS"
    step(d, "PASS b", b"+OK\r\n")
    assert d.valid_commands() == ["STAT", "LIST", "RETR", "DELE", "RSET", "NOOP", "CAPA", "QUIT"]


def test_implicit_tls() -> None:
    d = Dialogue()
    d.tls_at_connect("TLSv1.3")
    assert d.tls_active and "STLS" not in greeted_after(d).valid_commands()


def greeted_after(d: Dialogue) -> Dialogue:
    d.receive(b"+OK ready\r\n")
    return d


def test_a_parser_with_smaller_limits_can_be_given() -> None:
    d = Dialogue(ResponseParser(max_body=10))
    d.receive(b"+OK\r\n")
    step(d, "USER a", b"+OK\r\n")
    step(d, "PASS b", b"+OK\r\n")
    out = step(d, "RETR 1", b"+OK\r\n" + b"x" * 50 + b"\r\n.\r\n")
    assert [p.id for p in out.response.problems] == ["too_big"]


_LINES = st.lists(
    st.sampled_from(
        ["USER a", "PASS b", "APOP a b", "AUTH PLAIN", "AUTH", "STLS", "CAPA", "STAT", "LIST",
         "LIST 1", "RETR 1", "TOP 1 0", "DELE 1", "RSET", "NOOP", "UIDL", "QUIT", "xyz", "*"]
    ),
    max_size=12,
)  # fmt: skip


@given(_LINES, st.binary(max_size=600))
def test_any_dialogue_with_any_bytes_never_raises(lines: list[str], data: bytes) -> None:
    d = Dialogue(ResponseParser(hard_line_limit=64, max_body=128))
    for line in lines:
        d.send(line)
    for index in range(0, len(data), 7):
        for outcome in d.receive(data[index : index + 7]):
            assert outcome.state_after in State
    d.receive_eof()
    assert d.state is State.CLOSED and d.in_flight == ()
