"""The transcript format: recorder → text/JSONL, parser → script, placeholders → real lines."""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pygments.token import Error, Name

from smtp_tutor.console.files import write_private
from smtp_tutor.core.auth import (
    b64encode_text,
    cram_md5_response,
    login_responses,
    plain_response,
    xoauth2_string,
)
from smtp_tutor.core.placeholders import (
    MissingVariable,
    Placeholder,
    ResolveError,
    Variable,
    escape_line,
    parse_template,
)
from smtp_tutor.core.recorder import TranscriptRecorder
from smtp_tutor.core.redaction import secret_forms
from smtp_tutor.core.replies import Reply, ReplyParser, make_reply
from smtp_tutor.core.transcript import (
    Directive,
    Expect,
    Script,
    Send,
    TranscriptError,
    parse_duration,
    parse_transcript,
    resolve,
    variables_needed,
)
from smtp_tutor.lexer import SMTPLexer

USER = "student"
PASSWORD = "S3cret-Pa55word!"
CHALLENGE = b64encode_text("<1896.697170952@mx.example>")


class FakeClock:
    """Advances 1 ms per reading, so JSON timestamps are deterministic."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


class Session:
    """Drives a recorder and remembers what really crossed the wire, for comparisons."""

    def __init__(self, rec: TranscriptRecorder) -> None:
        self.rec = rec
        self.sent: list[str] = []
        self.replies: list[Reply] = []

    def send(self, line: str, secret: Placeholder | None = None) -> None:
        self.sent.append(line)
        self.rec.sent(line, secret=secret)

    def reply(self, code: int, *lines: str, latency: float | None = None) -> Reply:
        reply = make_reply(code, *lines)
        self.replies.append(reply)
        self.rec.received(reply, latency)
        return reply


def golden_session(rec: TranscriptRecorder | None = None) -> Session:
    s = Session(rec or TranscriptRecorder(clock=FakeClock()))
    s.rec.comment("smtp-tutor session with the sandbox")
    s.rec.connected("127.0.0.1", 2525)
    s.reply(220, "localhost ESMTP smtp-tutor sandbox")
    s.send("EHLO client.example")
    s.reply(250, "localhost", "SIZE 33554432", "8BITMIME", "SMTPUTF8", "STARTTLS")
    s.send("STARTTLS")
    s.reply(220, "2.0.0 Ready to start TLS")
    s.rec.tls_started("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    s.send("EHLO client.example")
    s.reply(250, "localhost", "SIZE 33554432", "AUTH CRAM-MD5 LOGIN PLAIN")
    s.send("AUTH CRAM-MD5")
    s.reply(334, CHALLENGE)
    s.send(cram_md5_response(USER, PASSWORD, CHALLENGE), secret=Placeholder.cram_md5(USER))
    s.reply(535, "5.7.8 Authentication credentials invalid")
    s.send("AUTH PLAIN " + plain_response(USER, PASSWORD), secret=Placeholder.plain(USER))
    s.reply(535, "5.7.8 Authentication credentials invalid")
    s.send("AUTH LOGIN")
    s.reply(334, "VXNlcm5hbWU6")
    user_line, password_line = login_responses(USER, PASSWORD)
    s.send(user_line)
    s.reply(334, "UGFzc3dvcmQ6")
    s.send(password_line, secret=Placeholder.login_password())
    s.reply(235, "2.7.0 Authentication successful")
    s.send("MAIL FROM:<student@example.org>")
    s.reply(250, "2.1.0 Ok")
    s.send("RCPT TO:<teacher@example.org>")
    s.reply(250, "2.1.5 Ok")
    s.send("DATA")
    s.reply(354, "End data with <CR><LF>.<CR><LF>")
    for line in (
        "From: <student@example.org>",
        "To: <teacher@example.org>",
        "Subject: =?UTF-8?B?5L2g5aW9?=",
        "",
        "你好，世界！这是一封测试邮件。",
        "..this line starts with a dot",
        "{name} is not a placeholder here",
        ".",
    ):
        s.send(line)
    s.reply(250, "2.0.0 Ok: queued as 4F2A1")
    s.send("QUIT")
    s.reply(221, "2.0.0 Bye")
    s.rec.closed("the session ended with QUIT (221)")
    return s


GOLDEN = """\
# smtp-tutor session with the sandbox
@connect 127.0.0.1 2525
S: 220 localhost ESMTP smtp-tutor sandbox
C: EHLO client.example
S: 250-localhost
S: 250-SIZE 33554432
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
@tls TLSv1.3 TLS_AES_256_GCM_SHA384
C: EHLO client.example
S: 250-localhost
S: 250-SIZE 33554432
S: 250 AUTH CRAM-MD5 LOGIN PLAIN
C: AUTH CRAM-MD5
S: 334 PDE4OTYuNjk3MTcwOTUyQG14LmV4YW1wbGU+
C: {cram-md5 user="student" password=password}
S: 535 5.7.8 Authentication credentials invalid
C: AUTH PLAIN {plain user="student" password=password}
S: 535 5.7.8 Authentication credentials invalid
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: c3R1ZGVudA==
S: 334 UGFzc3dvcmQ6
C: {base64 password}
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<student@example.org>
S: 250 2.1.0 Ok
C: RCPT TO:<teacher@example.org>
S: 250 2.1.5 Ok
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: From: <student@example.org>
C: To: <teacher@example.org>
C: Subject: =?UTF-8?B?5L2g5aW9?=
C:
C: 你好，世界！这是一封测试邮件。
C: ..this line starts with a dot
C: {{name} is not a placeholder here
C: .
S: 250 2.0.0 Ok: queued as 4F2A1
C: QUIT
S: 221 2.0.0 Bye
@closed the session ended with QUIT (221)
"""


def secrets_of_golden() -> set[str]:
    forms = secret_forms(PASSWORD, USER)
    forms.add(plain_response(USER, PASSWORD))
    forms.add(login_responses(USER, PASSWORD)[1])
    forms.add(cram_md5_response(USER, PASSWORD, CHALLENGE))
    return forms


def replay(script: Script, replies: list[Reply], variables: dict[str, str]) -> list[str]:
    """What a replayer would send, checking each expectation against the recorded reply."""
    pending = list(replies)
    last: Reply | None = None
    lines: list[str] = []
    for item in script.items:
        if isinstance(item, Expect):
            last = pending.pop(0)
            assert item.mismatch(last) is None, (item, last)
            assert item.code == last.code
        elif isinstance(item, Send):
            lines.append(resolve(item, variables, last))
    assert pending == []
    return lines


# -- the golden session -------------------------------------------------------------------


def test_golden_transcript_text() -> None:
    assert golden_session().rec.text() == GOLDEN


def test_secrets_never_reach_text_jsonl_or_the_recorder() -> None:
    rec = golden_session().rec
    text, jsonl = rec.text(), rec.jsonl()
    kept = repr(rec.__dict__)
    for form in secrets_of_golden():
        assert form not in text, form
        assert form not in jsonl, form
        assert form not in kept, form
    # The user name is not a secret: it stays readable.
    assert 'user="student"' in text and "c3R1ZGVudA==" in text


def test_golden_round_trip_resolves_to_the_lines_sent() -> None:
    session = golden_session()
    script = parse_transcript(session.rec.text(), "golden.smtp")
    assert variables_needed(script) == ["password"]
    assert replay(script, session.replies, {"password": PASSWORD}) == session.sent


def test_round_trip_with_other_credentials_builds_their_lines() -> None:
    script = parse_transcript(GOLDEN)
    sends = {s.line_no: s for s in script.sends}
    other = {"password": "another one"}
    assert resolve(sends[21], other) == "AUTH PLAIN " + plain_response(USER, "another one")
    assert resolve(sends[27], other) == b64encode_text("another one")
    challenge = make_reply(334, CHALLENGE)
    assert resolve(sends[19], other, challenge) == cram_md5_response(USER, "another one", CHALLENGE)


def test_golden_items_carry_line_numbers_and_data_flags() -> None:
    script = parse_transcript(GOLDEN, "golden.smtp")
    assert script.source == "golden.smtp"
    first = script.items[0]
    assert first == Directive(2, "connect", ("127.0.0.1", "2525"), "127.0.0.1 2525")
    ehlo = script.expects[1]
    assert (ehlo.line_no, ehlo.end_line_no, ehlo.code) == (5, 9, 250)
    assert ehlo.lines == ("localhost", "SIZE 33554432", "8BITMIME", "SMTPUTF8", "STARTTLS")
    data = [s for s in script.sends if s.data]
    assert [s.line_no for s in data] == list(range(35, 43))
    assert data[-1].end_of_data and data[-1].text == "."
    assert data[5].parts == ("..this line starts with a dot",)  # wire form: still stuffed
    assert data[6].parts == ("{name} is not a placeholder here",)
    assert not any(s.data for s in script.sends if s.line_no > 42)
    tls = [d for d in script.directives if d.name == "tls"]
    assert tls == [Directive(12, "tls", ("TLSv1.3", "TLS_AES_256_GCM_SHA384"), tls[0].rest)]


def test_lexer_reads_the_golden_transcript_without_errors() -> None:
    tokens = list(SMTPLexer().get_tokens_unprocessed(GOLDEN))
    assert "".join(value for _p, _t, value in tokens) == GOLDEN
    assert Error not in {token for _p, token, _v in tokens}
    # The placeholder-free LOGIN user line is still seen as a base64 answer.
    assert any(value == "c3R1ZGVudA==" for _p, _t, value in tokens)


def test_the_documented_examples_parse_and_the_first_is_the_golden_one() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "transcript.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```smtp\n(.*?)```", doc, re.DOTALL)
    assert len(blocks) == 4 and blocks[0] == GOLDEN
    for block in blocks:
        assert parse_transcript(block, "docs/transcript.md").items
    script = parse_transcript(blocks[2])
    assert variables_needed(script) == ["user", "password"]
    (auth_expect,) = [e for e in script.expects if e.patterns]
    assert auth_expect.matches(make_reply(250, "mx", "AUTH LOGIN PLAIN"))
    assert not auth_expect.matches(make_reply(250, "mx", "AUTH LOGIN"))
    assert chunks_back(blocks[3]) == [b"Subject: chunks repl", b"ayed\r\nMessage-ID: <b"]


# -- JSON Lines ---------------------------------------------------------------------------


def test_jsonl_has_one_valid_object_per_event_with_the_required_keys() -> None:
    session = golden_session()
    records = [json.loads(line) for line in session.rec.jsonl().splitlines()]
    assert all({"t", "dir", "event", "code", "enhanced", "bytes"} <= r.keys() for r in records)
    assert [r["t"] for r in records] == sorted(r["t"] for r in records)
    assert records[0]["t"] == pytest.approx(0.001)
    events = [r["event"] for r in records if r["dir"] == "event"]
    assert events == ["comment", "connect", "tls", "closed"]
    assert records[1] | {"t": 0} == {
        "t": 0,
        "dir": "event",
        "event": "connect",
        "code": None,
        "enhanced": None,
        "bytes": None,
        "host": "127.0.0.1",
        "port": 2525,
        "tls": False,
    }

    client = [r for r in records if r["dir"] == "C"]
    assert len(client) == len(session.sent)
    for record, line in zip(client, session.sent, strict=True):
        if record["secret"]:
            assert record["bytes"] is None and record["text"] is None
            assert "{" in record["line"]
        else:
            assert base64.b64decode(record["bytes"]) == line.encode() + b"\r\n"
            assert record["text"] == line
    assert [r["data"] for r in client].count(True) == 8

    server = [r for r in records if r["dir"] == "S"]
    for record, reply in zip(server, session.replies, strict=True):
        assert base64.b64decode(record["bytes"]) == reply.raw
        assert (record["code"], record["enhanced"]) == (reply.code, reply.enhanced)
        assert record["lines"] == list(reply.lines)
    assert server[-1]["enhanced"] == "2.0.0"


# -- the recorder ---------------------------------------------------------------------------


def test_timing_is_optional_and_reads_as_a_directive_before_the_reply() -> None:
    for timing, expected in ((False, "S: 220 hi\n"), (True, "@time 4.2ms\nS: 220 hi\n")):
        rec = TranscriptRecorder(timing=timing, clock=FakeClock())
        rec.received(make_reply(220, "hi"), 0.0042)
        assert rec.text() == expected
        assert json.loads(rec.jsonl())["latency"] == 0.0042
    rec = TranscriptRecorder(timing=True, clock=FakeClock())
    for latency in (0.0125, 12.5, None, float("nan")):
        rec.received(make_reply(250, "ok"), latency)
    assert rec.text().count("@time") == 2
    assert "@time 12ms\n" in rec.text() and "@time 12.5s\n" in rec.text()
    assert parse_duration("12ms") == pytest.approx(0.012)
    assert parse_duration("1.5s") == 1.5
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_secret_lines_keep_only_the_auth_head() -> None:
    rec = TranscriptRecorder(clock=FakeClock())
    token = "ya29.a0AfH6SMBx-token"
    rec.sent("AUTH XOAUTH2 " + xoauth2_string(USER, token), secret=Placeholder.xoauth2(USER))
    rec.sent("AUTH PLAIN", secret=Placeholder.plain(None))
    rec.sent("hand-typed-answer", secret=Placeholder.variable("answer"))
    assert rec.text() == (
        'C: AUTH XOAUTH2 {xoauth2 user="student" token=token}\n'
        "C: AUTH PLAIN {plain user=user password=password}\n"
        "C: {answer}\n"
    )
    assert token not in rec.jsonl() and xoauth2_string(USER, token) not in repr(rec.__dict__)
    script = parse_transcript(rec.text())
    assert variables_needed(script) == ["token", "user", "password", "answer"]
    assert resolve(script.sends[0], {"token": token}) == "AUTH XOAUTH2 " + xoauth2_string(
        USER, token
    )


def test_malformed_replies_are_flagged_and_still_parse() -> None:
    rec = TranscriptRecorder(clock=FakeClock())
    replies = ReplyParser().feed(b"hello\n250-a\r\n251 b\r\n250 /var/mail ok\r\n")
    for reply in replies:
        rec.received(reply)
    assert rec.text() == (
        "# malformed reply: line does not start with a three-digit reply code; "
        "line ends in a bare LF instead of CRLF\n"
        "S: * hello\n"
        "# malformed reply: lines of one reply carry different codes (250 and 251)\n"
        "S: 250-a\n"
        "S: 250 b\n"
        "S: 250 \\/var/mail ok\n"
    )
    script = parse_transcript(rec.text())
    assert [e.code for e in script.expects] == [None, 250, 250]
    assert script.expects[2].lines == ("/var/mail ok",) and not script.expects[2].patterns
    assert all(e.matches(r) for e, r in zip(script.expects, replies, strict=True))


def test_unsafe_characters_in_sent_lines_are_escaped_and_come_back() -> None:
    lines = ["a\rb", "bare\nLF", "trailing  ", "\t", "{x} and {{", 'q"uote\\', "\udc80raw"]
    rec = TranscriptRecorder(clock=FakeClock())
    for line in lines:
        rec.sent(line)
    assert rec.text().splitlines()[:3] == ['C: a{"\\r"}b', 'C: bare{"\\n"}LF', 'C: trailing{"  "}']
    text = rec.text()
    assert text.encode("utf-8")  # no lone surrogate left in the file
    script = parse_transcript(text)
    assert [resolve(s, {}) for s in script.sends] == lines
    record = json.loads(rec.jsonl().splitlines()[-1])
    assert base64.b64decode(record["bytes"]) == b"\x80raw\r\n"


def test_sent_data_records_a_message_line_by_line() -> None:
    rec = TranscriptRecorder(clock=FakeClock())
    rec.received(make_reply(354, "go"))
    rec.sent_data(b"Subject: x\r\n\r\n..dot\r\n\xff\r\n.\r\n")
    assert rec.text() == 'S: 354 go\nC: Subject: x\nC:\nC: ..dot\nC: {"\\udcff"}\nC: .\n'
    record = json.loads(rec.jsonl().splitlines()[4])
    assert base64.b64decode(record["bytes"]) == b"\xff\r\n" and record["data"] is True


def chunks_back(text: str) -> list[bytes]:
    """The chunks a transcript's BDAT commands carry, as replay would send them."""
    chunks: list[bytes] = []
    for send in parse_transcript(text).sends:
        if send.chunk is None and send.text.upper().startswith("BDAT"):
            chunks.append(b"")
        elif send.chunk is not None:
            chunks[-1] += send.chunk_bytes()
    return chunks


def test_bdat_chunks_are_c_lines_cut_at_the_size() -> None:
    rec = TranscriptRecorder(clock=FakeClock())
    message = b"Subject: x\r\n\r\n.dot\r\nend\r\n"
    pieces = [message[:11], message[11:20], message[20:], b""]  # "…x\r" | "\n\r\n.dot\r\n" | …
    for index, piece in enumerate(pieces):
        last = " LAST" if index == len(pieces) - 1 else ""
        rec.sent_chunk(f"BDAT {len(piece)}{last}", piece)
        rec.received(make_reply(250, "ok"))
    assert rec.text() == (
        'C: BDAT 11\nC: Subject: x{"\\r"}\nS: 250 ok\n'
        'C: BDAT 9\nC: {"\\n"}\nC: .dot\nS: 250 ok\n'  # no dot-stuffing: BDAT has none
        "C: BDAT 5\nC: end\nS: 250 ok\n"
        "C: BDAT 0 LAST\nS: 250 ok\n"
    )
    assert chunks_back(rec.text()) == pieces
    sends = parse_transcript(rec.text()).sends
    assert [(s.chunk, s.chunk_ends, s.data, s.content) for s in sends[:2]] == [
        (None, False, False, False),
        (11, True, False, True),
    ]
    records = [json.loads(line) for line in rec.jsonl().splitlines()]
    chunk_records = [r for r in records if r.get("chunk")]
    assert b"".join(base64.b64decode(r["bytes"]) for r in chunk_records) == message


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=200)
    | st.lists(st.sampled_from([b"\r\n", b"\r", b"\n", b"a", b".", "你".encode()])).map(b"".join),
    st.lists(st.integers(min_value=1, max_value=40), max_size=8),
)
def test_any_chunking_of_any_bytes_survives_the_round_trip(message: bytes, cuts: list[int]) -> None:
    chunks, position = [], 0
    for size in cuts:
        chunks.append(message[position : position + size])
        position += size
    chunks.append(message[position:])
    rec = TranscriptRecorder(clock=FakeClock())
    for chunk in chunks:
        rec.sent_chunk(f"BDAT {len(chunk)}", chunk)
    assert chunks_back(rec.text()) == chunks


@pytest.mark.parametrize(
    ("text", "line_no", "message"),
    [
        ("C: BDAT 10\nC: abc\nS: 250 ok\n", 3, "the BDAT at line 1 announced 10 bytes"),
        ("C: BDAT 10\nC: abc\n@closed\n", 3, "hold only 5"),
        ("C: BDAT 10 LAST\nC: abc\n# the end\n", 3, "hold only 5"),
        ("C: BDAT 9\nC: {base64 password}\n", 2, "placeholder cannot stand in BDAT chunk data"),
    ],
)
def test_bdat_chunk_data_must_hold_the_announced_size(
    text: str, line_no: int, message: str
) -> None:
    with pytest.raises(TranscriptError) as info:
        parse_transcript(text, "t.smtp")
    assert info.value.line_no == line_no and message in info.value.message


def test_after_a_chunk_and_inside_data_bdat_is_what_it_looks_like() -> None:
    script = parse_transcript(
        "C: BDAT 3\nC: abc\nC: BDAT 2 LAST\nC: d\nS: 250\nS: 250\n"
        "C: DATA\nS: 354\nC: BDAT 99\nC: .\nS: 250\nC: bdat x\nS: 501\n"
    )
    assert [(s.text, s.chunk) for s in script.sends] == [
        ("BDAT 3", None),
        ("abc", 3),
        ("BDAT 2 LAST", None),
        ("d", 2),  # "d" and its CR: the chunk ends between CR and LF
        ("DATA", None),
        ("BDAT 99", None),  # message content, not a command
        (".", None),
        ("bdat x", None),  # no size: the server will say 501, nothing follows
    ]


def test_comments_directives_and_events() -> None:
    rec = TranscriptRecorder(clock=FakeClock())
    rec.comment("two\nlines")
    rec.connected("mx.example", 465, implicit_tls=True)
    rec.tls_started("TLSv1.2", None)
    rec.tls_started(None, None)
    rec.closed("server hung up\r\nhard")
    rec.closed()
    assert rec.text() == (
        "# two\n# lines\n@connect mx.example 465 tls\n@tls TLSv1.2\n@tls\n"
        "@closed server hung up\\r\\nhard\n@closed\n"
    )
    script = parse_transcript(rec.text())
    assert [(d.name, d.args) for d in script.directives] == [
        ("connect", ("mx.example", "465", "tls")),
        ("tls", ("TLSv1.2",)),
        ("tls", ()),
        ("closed", ("server", "hung", "up\\r\\nhard")),
        ("closed", ()),
    ]


def test_attach_writes_each_event_immediately(tmp_path: Path) -> None:
    text_path, json_path = tmp_path / "live.smtp", tmp_path / "live.jsonl"
    rec = TranscriptRecorder(clock=FakeClock())
    rec.connected("127.0.0.1", 2525)
    with text_path.open("w", encoding="utf-8") as text_file, json_path.open("w") as json_file:
        rec.attach(text_file)  # what happened before attaching is written at once
        rec.attach(json_file, format="jsonl")
        assert text_path.read_text(encoding="utf-8") == "@connect 127.0.0.1 2525\n"
        rec.received(make_reply(220, "ready"))
        assert text_path.read_text(encoding="utf-8").endswith("S: 220 ready\n")
        rec.sent("EHLO me")
        assert text_path.read_text(encoding="utf-8") == rec.text()
        assert json_path.read_text() == rec.jsonl()
        assert len(json_path.read_text().splitlines()) == 3
        rec.detach(json_file)
        rec.sent("QUIT")
        assert text_path.read_text(encoding="utf-8") == rec.text()
        assert len(json_path.read_text().splitlines()) == 3


def test_a_broken_attached_file_is_detached_and_reported(tmp_path: Path) -> None:
    rec = TranscriptRecorder(clock=FakeClock())
    handle = (tmp_path / "t.smtp").open("w", encoding="utf-8")
    rec.attach(handle)
    handle.close()
    with pytest.raises(ValueError):
        rec.sent("NOOP")
    rec.sent("QUIT")  # detached: no further errors, and nothing was lost in memory
    assert rec.text() == "C: NOOP\nC: QUIT\n"
    with pytest.raises(ValueError, match="unknown transcript format"):
        rec.attach(handle, format="xml")  # type: ignore[arg-type]


def test_write_saves_text_or_jsonl_privately(tmp_path: Path) -> None:
    rec = golden_session().rec
    target = tmp_path / "session.smtp"
    target.write_text("old content")
    write_private(target, rec.render())
    assert target.read_text(encoding="utf-8") == GOLDEN
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    write_private(tmp_path / "session.jsonl", rec.render("jsonl"))
    assert (tmp_path / "session.jsonl").read_text(encoding="utf-8") == rec.jsonl()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session.jsonl", "session.smtp"]


# -- expectations ---------------------------------------------------------------------------


EXPECTATIONS = """\
S: 2xx
S: 250
S: 250 /queued as [0-9A-F]+/
S: 5XX /(?i)denied/
S: *
S: 250-first line is only informative
S: 250 /PIPELINING/
S: 250 recorded text is not compared
"""


def test_expectation_forms() -> None:
    exact_class, exact, regex, class_regex, anything, multi, text_only = parse_transcript(
        EXPECTATIONS
    ).items
    assert isinstance(exact_class, Expect) and exact_class.code_class == "2xx"
    assert exact_class.code is None and exact_class.describe() == "2xx"
    assert exact_class.matches(make_reply(221, "bye"))
    assert exact_class.mismatch(make_reply(421, "busy")) == "expected 2xx, got 421"

    assert isinstance(exact, Expect) and exact.code == 250 and not exact.patterns
    assert exact.matches(make_reply(250, "anything at all"))
    assert exact.mismatch(make_reply(251, "x")) == "expected 250, got 251"

    assert isinstance(regex, Expect) and regex.describe() == "250 /queued as [0-9A-F]+/"
    assert regex.matches(make_reply(250, "2.0.0 Ok: queued as 4F2A1"))
    assert "to match /queued as" in (regex.mismatch(make_reply(250, "2.0.0 Ok")) or "")

    assert isinstance(class_regex, Expect) and class_regex.code_class == "5xx"
    assert class_regex.matches(make_reply(554, "5.7.1 Access DENIED"))
    assert not class_regex.matches(make_reply(554, "5.7.1 no"))

    assert isinstance(anything, Expect) and anything.describe() == "any reply"
    assert anything.matches(ReplyParser().feed(b"garbage\r\n")[0])

    assert isinstance(multi, Expect) and multi.lines[0] == "first line is only informative"
    assert multi.matches(make_reply(250, "mx", "SIZE 10", "PIPELINING"))
    assert not multi.matches(make_reply(250, "mx", "SIZE 10"))

    assert isinstance(text_only, Expect) and text_only.matches(make_reply(250, "other"))
    assert not exact.matches(ReplyParser().feed(b"no code\r\n")[0])


def test_message_content_follows_354_or_3xx_after_data() -> None:
    script = parse_transcript(
        "C: DATA\nS: 3xx\nC: body\nC: .\nS: 2xx\nC: NOOP\n"
        "S: 354 go\nC: cut short\n@closed\nC: QUIT\n"
        "C: RCPT TO:<x>\nS: 3xx\nC: not data\n"
    )
    assert [s.data for s in script.sends] == [
        False,
        True,
        True,
        False,
        True,
        False,
        False,
        False,
    ]


# -- placeholders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placeholder", "written"),
    [
        (Placeholder.variable("password"), "{password}"),
        (Placeholder.login_password(), "{base64 password}"),
        (Placeholder.login_user(), "{base64 user}"),
        (Placeholder.login_user("ü ser"), '{base64 "ü ser"}'),
        (Placeholder.plain(USER), '{plain user="student" password=password}'),
        (
            Placeholder.plain(USER, authzid="admin", password_var="pw"),
            '{plain user="student" password=pw authzid="admin"}',
        ),
        (Placeholder.cram_md5(None), "{cram-md5 user=user password=password}"),
        (Placeholder.xoauth2("a@b"), '{xoauth2 user="a@b" token=token}'),
    ],
)
def test_placeholders_render_and_parse_back(placeholder: Placeholder, written: str) -> None:
    assert placeholder.render() == written
    assert parse_template(written) == (placeholder,)


def test_positional_and_named_arguments_mean_the_same() -> None:
    assert parse_template("{plain user password}") == parse_template(
        "{plain user=user password=password}"
    )
    assert parse_template('{ base64   value="x" }') == (Placeholder.base64("x"),)
    assert parse_template('{xoauth2 "me" token=t}') == (
        Placeholder("xoauth2", (("user", "me"), ("token", Variable("t")))),
    )


def test_resolve_computes_every_encoding() -> None:
    send = parse_transcript(
        'C: {user} {base64 "é"} {plain u p} {xoauth2 u t} {plain u p authzid="z"}\n'
    ).sends[0]
    values = {"user": "raw", "u": "ann", "p": "pw", "t": "tok"}
    assert resolve(send, values) == " ".join(
        [
            "raw",
            b64encode_text("é"),
            plain_response("ann", "pw"),
            xoauth2_string("ann", "tok"),
            plain_response("ann", "pw", "z"),
        ]
    )


def test_missing_variables_are_all_listed() -> None:
    send = parse_transcript("C: AUTH PLAIN {plain user password}\n").sends[0]
    with pytest.raises(MissingVariable) as info:
        resolve(send, {})
    assert info.value.names == ("user", "password") and info.value.name == "user"
    assert "user, password" in str(info.value)
    assert isinstance(info.value, ResolveError) and isinstance(info.value, ValueError)


def test_cram_md5_needs_a_334_challenge() -> None:
    send = parse_transcript("C: {cram-md5 user password}\n").sends[0]
    values = {"user": USER, "password": PASSWORD}
    with pytest.raises(ResolveError, match="334 challenge"):
        resolve(send, values, None)
    with pytest.raises(ResolveError, match="334 challenge"):
        resolve(send, values, make_reply(250, "ok"))
    with pytest.raises(ResolveError, match="not base64"):
        resolve(send, values, make_reply(334, "not base64!"))
    expected = cram_md5_response(USER, PASSWORD, CHALLENGE)
    assert resolve(send, values, make_reply(334, CHALLENGE)) == expected


def test_bad_credentials_give_a_resolve_error_without_the_secret() -> None:
    send = parse_transcript("C: {plain user password}\n").sends[0]
    with pytest.raises(ResolveError) as info:
        resolve(send, {"user": "a\0b", "password": "hunter2"})
    assert "hunter2" not in str(info.value) and "NUL" in str(info.value)


def test_escape_line_is_the_inverse_of_parse_template() -> None:
    for line in ["", "{", "}", "{{}}", "{x}", "a b  ", "\x00", "\u2028", "x\ufeff"]:
        assert "".join(parse_template(escape_line(line))) == line  # type: ignore[arg-type]


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line_no", "message"),
    [
        ("S: 220 hi\n@foo bar\n", 2, "unknown directive '@foo'"),
        ("# c\r\n\r\nC: AUTH PLAIN {plain user\r\n", 3, "unterminated placeholder"),
        ("C: {rot13 password}\n", 1, "unknown placeholder encoding 'rot13'"),
        ("S: 250-a\nC: QUIT\n", 1, "reply is not finished"),
        ("S: 220 x\nS: 250-a\n# end\n", 2, "reply is not finished"),
        ("S: 250-a\nS: 251 b\n", 2, "one reply has one code"),
        ("S: hello\n", 1, "starts with a reply code"),
        ("S:\n", 1, "without a reply code"),
        ("S: 250x\n", 1, "expected a space or '-' after '250'"),
        ("S: 250 /unterminated\n", 1, "unterminated /regex/"),
        ("S: 250 /(/\n", 1, "invalid regex"),
        ("C: x\nhello\n", 2, "a line starts with 'C:'"),
        ("  C: indented\n", 1, "a line starts with 'C:'"),
        ("@connect host\n", 1, "@connect takes HOST PORT"),
        ("@connect host 99999\n", 1, "not a port number"),
        ("@connect host 25 ssl\n", 1, "only be 'tls'"),
        ("@tls a b c\n", 1, "@tls takes at most"),
        ("@time soon\n", 1, "invalid duration"),
        ("@\n", 1, "needs a name"),
        ("C: {}\n", 1, "empty placeholder"),
        ("C: {plain user}\n", 1, "plain needs password"),
        ("C: {plain user=a user=b password}\n", 1, "given twice"),
        ("C: {plain user=a b}\n", 1, "positional value after name=value"),
        ("C: {base64 a b}\n", 1, "too many values"),
        ("C: {xoauth2 user=u secret=t}\n", 1, "has no parameter 'secret'"),
        ('C: {base64 "x}\n', 1, "unterminated quoted literal"),
        ('C: {"\\q"}\n', 1, "unknown escape"),
        ('C: {"a" b}\n', 1, "quoted literal stands alone"),
        ("C: {x!}\n", 1, "unexpected '!'"),
        ("C: a\x00b\n", 1, "control character U+0000"),
    ],
)
def test_parse_errors_name_the_line(text: str, line_no: int, message: str) -> None:
    with pytest.raises(TranscriptError) as info:
        parse_transcript(text, "t.smtp")
    error = info.value
    assert isinstance(error, ValueError)
    assert error.line_no == line_no
    assert message in error.message
    assert str(error).startswith(f"t.smtp:{line_no}: ")
    assert len(str(error).splitlines()) == 1


def test_blank_lines_comments_bom_and_crlf_are_accepted() -> None:
    script = parse_transcript("\ufeff# hi\r\n\r\n   \r\nS: 220 x\r\nC:\r\nC:  two spaces\r\n")
    assert [type(i) for i in script.items] == [Expect, Send, Send]
    assert [s.text for s in script.sends] == ["", " two spaces"]


# -- properties -----------------------------------------------------------------------------

LINE_CHARS = st.characters(codec="utf-8") | st.sampled_from(
    ["\udc80", "\udcff", "\r", "\n", "{", "}", '"', "\\", " ", "\t", "\u2028", "\ufeff", "\x85"]
)
SNIPPETS = st.sampled_from(
    [
        "C: BDAT 3",
        "C: BDAT 0 LAST",
        " LAST",
        "C: ",
        "S: ",
        "C:",
        "S:",
        "\n",
        "\r\n",
        "250 ",
        "250-",
        "2xx ",
        "* ",
        "/",
        "/(/",
        "{",
        "}",
        "{{",
        '"',
        "\\",
        "=",
        "{plain ",
        "{base64 ",
        "{cram-md5 ",
        "user=",
        "password",
        "@connect ",
        "@tls ",
        "@time ",
        "@closed",
        "@x",
        "# ",
        "12ms",
        "99999",
        "\x00",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(SNIPPETS | st.text(max_size=6), max_size=30).map("".join))
def test_parse_arbitrary_text_returns_a_script_or_a_transcript_error(text: str) -> None:
    try:
        script = parse_transcript(text)
    except TranscriptError as exc:
        assert exc.line_no >= 1 and len(str(exc).splitlines()) == 1
    else:
        assert isinstance(script, Script)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(LINE_CHARS, max_size=20), max_size=6))
def test_any_sent_line_survives_the_round_trip(lines: list[str]) -> None:
    rec = TranscriptRecorder(clock=FakeClock())
    for line in lines:
        rec.sent(line)
    text = rec.text()
    text.encode("utf-8")
    assert text.count("\n") == len(lines)
    assert [resolve(s, {}) for s in parse_transcript(text).sends] == lines


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 999),
    st.lists(st.text(LINE_CHARS, max_size=15), min_size=1, max_size=4),
    st.text(LINE_CHARS, max_size=15),
    st.text(LINE_CHARS, max_size=15),
)
def test_any_reply_comment_or_event_survives_the_round_trip(
    code: int, lines: list[str], comment: str, host: str
) -> None:
    rec = TranscriptRecorder(timing=True, clock=FakeClock())
    rec.comment(comment)
    rec.connected(host, 25)
    rec.tls_started(host, comment)
    reply = make_reply(code, *lines)
    rec.received(reply, 0.001)
    rec.closed(comment)
    script = parse_transcript(rec.text())
    (expect,) = script.expects
    assert expect.code == code and expect.matches(reply)
    assert [d.name for d in script.directives] == ["connect", "tls", "time", "closed"]
    tokens = list(SMTPLexer().get_tokens_unprocessed(rec.text()))
    assert Error not in {token for _p, token, _v in tokens}
    assert all(json.loads(line) for line in rec.jsonl().splitlines())
    rec.text().encode("utf-8")
    rec.jsonl().encode("utf-8")  # what write() and attach() need


def test_lexer_colours_simple_placeholders_as_variables() -> None:
    tokens = list(SMTPLexer().get_tokens_unprocessed("S: 334 UGFzc3dvcmQ6\nC: {password}\n"))
    assert (Name.Variable, "{password}") in [(t, v) for _p, t, v in tokens]
