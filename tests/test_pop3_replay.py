"""POP3 transcripts: the protocol header, the recorder's output read back, the parser's errors.

The replay itself runs against real servers: Dovecot (tests/test_pop3_console_dovecot.py)
and the hostile ones (tests/test_pop3_hostile.py).
"""

from __future__ import annotations

import pytest

from smtp_tutor.core.placeholders import Placeholder
from smtp_tutor.core.pop3.responses import Expect, ResponseParser, Status, make_response
from smtp_tutor.core.pop3.transcript import (
    Pop3Expect,
    Pop3Recorder,
    parse_pop3_transcript,
    script_protocol,
)
from smtp_tutor.core.transcript import Directive, Send, TranscriptError, parse_transcript
from smtp_tutor.lexer import POP3Lexer

pytestmark = pytest.mark.pure


def _multiline(body: bytes) -> object:
    parser = ResponseParser()
    parser.expect(Expect.MULTILINE)
    [response] = parser.feed(b"+OK here it comes\r\n" + body)
    return response


def recorded_session() -> str:
    rec = Pop3Recorder(clock=lambda: 0.0)
    rec.connected("127.0.0.1", 110)
    rec.received(make_response(Status.OK, "ready <1.2@pop.example>"))
    rec.sent("CAPA")
    rec.received(_multiline(b"USER\r\nSTLS\r\n.\r\n"))
    rec.sent("USER student")
    rec.received(make_response(Status.OK))
    rec.sent("PASS hunter2 with spaces", Placeholder.variable("password"))
    rec.received(make_response(Status.ERR, "[AUTH] wrong"))
    rec.sent("USER student")
    rec.received(make_response(Status.OK))
    rec.sent("PASS hunter2", Placeholder.variable("password"))
    rec.received(make_response(Status.OK, "logged in"))
    rec.sent("RETR 1")
    rec.received(_multiline(b"Subject: x\r\n\r\n..dot\r\n/not a regex/\r\n.\r\n"))
    rec.sent("QUIT")
    rec.received(make_response(Status.OK, "/bye/"))
    rec.closed("done")
    return rec.text()


def test_the_recorder_writes_the_header_and_hides_the_password() -> None:
    text = recorded_session()
    assert text.startswith("# protocol: pop3\n@connect 127.0.0.1 110\nS: +OK ready")
    assert "hunter2" not in text
    assert "C: PASS {password}\n" in text
    assert "S: -ERR [AUTH] wrong\n" in text
    # The body as it was on the wire (stuffed), then the lone dot.
    assert "S: Subject: x\nS:\nS: ..dot\nS: /not a regex/\nS: .\n" in text
    assert "S: +OK \\/bye/\n" in text  # a text that looks like a regex is escaped


def test_what_the_recorder_writes_parses_back() -> None:
    script = parse_pop3_transcript(recorded_session(), "s.pop3")
    expects = script.expects
    assert [e.status for e in expects] == ["+OK", "+OK", "+OK", "-ERR", "+OK", "+OK", "+OK", "+OK"]
    capa, retr, quit_ = expects[1], expects[6], expects[7]
    assert capa.body == ("USER", "STLS") and capa.multiline
    assert retr.body == ("Subject: x", "", "..dot", "/not a regex/")
    assert quit_.text == "/bye/" and quit_.patterns == ()
    assert [s.text for s in script.sends][2] == "PASS {password}"
    assert script.sends[2].variables() == ("password",)
    assert isinstance(script.items[0], Directive)


def test_protocol_header_decides_and_no_header_means_smtp() -> None:
    assert script_protocol("# protocol: pop3\nS: +OK\n") == "pop3"
    assert script_protocol("\n  #protocol:POP3\n") == "pop3"
    assert script_protocol("# smtp-tutor session\nS: 220 x\n") == "smtp"
    assert script_protocol("S: 220 x\n") == "smtp"
    assert (
        script_protocol('{"t":0,"dir":"event","event":"comment","text":"protocol: pop3"}') == "pop3"
    )
    # An old SMTP file keeps parsing as SMTP.
    assert parse_transcript("S: 220 x\nC: QUIT\nS: 221 bye\n").expects[0].code == 220


def test_a_hand_written_script_may_leave_the_body_out_and_use_a_regex() -> None:
    text = "# protocol: pop3\nS: +OK\nC: LIST\nS: +OK /messages/\nC: STAT\nS: *\nC: QUIT\nS: +OK\n"
    script = parse_pop3_transcript(text)
    listing = script.expects[1]
    assert listing.body is None and listing.patterns[0].pattern == "messages"
    ok = make_response(Status.OK, "2 messages")
    assert listing.mismatch(ok) is None
    assert "expected +OK, got -ERR" in (listing.mismatch(make_response(Status.ERR, "no")) or "")
    assert script.expects[2].mismatch(make_response(Status.ERR, "x")) is None  # S: * is anything


def test_a_multiline_expectation_is_matched_as_a_whole() -> None:
    text = "# protocol: pop3\nS: +OK\nC: RETR 1\nS: +OK /(?m)^Subject: hi$/\nS: Subject: hi\nS: .\n"
    expect = parse_pop3_transcript(text).expects[1]
    assert isinstance(expect, Pop3Expect)
    assert expect.mismatch(_multiline(b"Subject: hi\r\n\r\nbody\r\n.\r\n")) is None  # type: ignore[arg-type]
    assert "match" in (expect.mismatch(_multiline(b"Subject: other\r\n.\r\n")) or "")  # type: ignore[arg-type]
    assert "multiline" in (expect.mismatch(make_response(Status.OK, "one line")) or "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "S: +OK\nC: RETR 1\nS: +OK\nS: Subject: x\nC: QUIT\n",
            "the multiline response at line 4 is not finished",
        ),
        ("S: 220 smtp\n", "starts with +OK, -ERR"),
        ("S: +OK\n@bogus\n", "unknown directive"),
        ("S: +OK\nC: PASS {password\n", "unterminated placeholder"),
        ("S: +OK\nX: what\n", "a line starts with"),
    ],
)
def test_mistakes_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(TranscriptError) as caught:
        parse_pop3_transcript("# protocol: pop3\n" + text, "bad.pop3")
    assert message in str(caught.value)
    assert str(caught.value).startswith("bad.pop3:") and "\n" not in str(caught.value)


def test_sends_keep_their_template() -> None:
    script = parse_pop3_transcript(
        '# protocol: pop3\nS: +OK\nC: AUTH PLAIN {plain user="s" password=password}\nS: +OK\n'
    )
    [send] = script.sends
    assert isinstance(send, Send) and send.variables() == ("password",)


def test_the_pop3_lexer_colours_a_transcript_without_losing_a_character() -> None:
    text = recorded_session()
    tokens = list(POP3Lexer().get_tokens(text))
    assert "".join(value for _token, value in tokens) == text
    kinds = {str(token) for token, value in tokens if value in ("+OK", "-ERR", "[AUTH]")}
    assert kinds == {
        "Token.Generic.Inserted.ReplyOk",
        "Token.Generic.Deleted.ReplyPermanent",
        "Token.Literal.Number.Enhanced",
    }
    assert POP3Lexer.analyse_text(text) == 0.9
