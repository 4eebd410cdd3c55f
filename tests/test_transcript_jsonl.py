"""JSON Lines transcripts read back: the same script items as the text form of the session."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtp_tutor.core import records  # its items are records
from smtp_tutor.core.placeholders import Placeholder
from smtp_tutor.core.recorder import TranscriptRecorder
from smtp_tutor.core.replies import ReplyParser, make_reply
from smtp_tutor.core.transcript import (
    Directive,
    Expect,
    Item,
    Script,
    TranscriptError,
    parse_transcript,
    resolve,
)
from smtp_tutor.core.transcript_jsonl import is_jsonl, parse_jsonl, parse_script


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def unnumbered(script: Script) -> list[Item]:
    """The items without their line numbers (which name a line of each file)."""
    fields = {"line_no": 0}
    return [
        records.replace(item, **fields, **({"end_line_no": 0} if isinstance(item, Expect) else {}))
        for item in script.items
    ]


def session(rec: TranscriptRecorder) -> TranscriptRecorder:
    rec.comment("a session")
    rec.connected("127.0.0.1", 2525)
    rec.received(make_reply(220, "localhost ESMTP"), 0.0021)
    rec.sent("EHLO me.example")
    rec.received(make_reply(250, "localhost", "PIPELINING", "STARTTLS", "AUTH PLAIN"), 0.001)
    rec.sent("STARTTLS")
    rec.received(make_reply(220, "2.0.0 go ahead"), 0.001)
    rec.tls_started("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    rec.sent("AUTH PLAIN AHN0dWRlbnQAc2VjcmV0", secret=Placeholder.plain("student"))
    rec.received(make_reply(235, "2.7.0 ok"), 0.001)
    rec.sent("MAIL FROM:<student@example.org>")
    rec.received(make_reply(250, "/var/mail ok"), None)
    rec.sent("DATA")
    rec.received(make_reply(354, "go"), 0.001)
    rec.sent_data(b"Subject: hi\r\n\r\n..dot\r\n{brace}\r\n.\r\n")
    rec.received(make_reply(250, "queued"), 0.001)
    rec.sent_chunk("BDAT 9 LAST", b"abc\r\ndefg")
    rec.received(make_reply(250, "chunk"), 0.001)
    rec.sent("QUIT")
    rec.received(make_reply(221, "bye"), 0.001)
    rec.closed("the session ended with QUIT (221)")
    return rec


def test_a_session_in_jsonl_reads_as_its_text_transcript() -> None:
    rec = session(TranscriptRecorder(timing=True, clock=FakeClock()))
    from_text = parse_transcript(rec.text(), "s.smtp")
    from_jsonl = parse_jsonl(rec.jsonl(), "s.jsonl")
    assert unnumbered(from_jsonl) == unnumbered(from_text)
    assert from_jsonl.source == "s.jsonl"
    assert [resolve(s, {"password": "secret"}) for s in from_jsonl.sends][2] == (
        "AUTH PLAIN AHN0dWRlbnQAc2VjcmV0"
    )
    # Line numbers are the JSONL records' lines: the greeting is record 3.
    records = rec.jsonl().splitlines()
    first = from_jsonl.expects[0]
    assert json.loads(records[first.line_no - 1])["lines"] == ["localhost ESMTP"]
    assert first.end_line_no == first.line_no
    assert {item.line_no for item in from_jsonl.items} <= set(range(1, len(records) + 1))


def test_jsonl_always_carries_latency_so_timing_off_only_loses_time_directives() -> None:
    rec = session(TranscriptRecorder(timing=False, clock=FakeClock()))
    from_jsonl = unnumbered(parse_jsonl(rec.jsonl()))
    without_time = [i for i in from_jsonl if not (isinstance(i, Directive) and i.name == "time")]
    assert without_time == unnumbered(parse_transcript(rec.text()))
    assert len(from_jsonl) - len(without_time) == 8


def test_detected_by_content_not_by_name() -> None:
    rec = session(TranscriptRecorder(timing=True, clock=FakeClock()))
    assert is_jsonl(rec.jsonl()) and is_jsonl("\ufeff\n  " + rec.jsonl())
    assert not is_jsonl(rec.text()) and not is_jsonl("") and not is_jsonl("# {x}\n")
    assert unnumbered(parse_script(rec.jsonl(), "x.smtp")) == unnumbered(parse_script(rec.text()))


@pytest.mark.parametrize(
    ("text", "line_no", "message"),
    [
        ('{"dir":"C","line":"EHLO x"}\n{"dir":"S",\n', 2, "not a JSON record"),
        ('{"dir":"C","line":"EHLO x"}\n\n[1, 2]\n', 3, "one JSON object a line, not list"),
        ('{"dir":"X"}\n', 1, "'dir' must be"),
        ('{"dir":"C","text":"EHLO"}\n', 1, "'line' must be a string"),
        ('{"dir":"C","line":"a\\r\\nb"}\n', 1, "line break"),
        ('{"dir":"S","code":"250","lines":["ok"]}\n', 1, "'code' must be a number or null"),
        ('{"dir":"S","code":true,"lines":["ok"]}\n', 1, "not true"),
        ('{"dir":"S","code":250,"lines":[1]}\n', 1, "list of strings"),
        ('{"dir":"S","code":250,"lines":["x"],"latency":"1"}\n', 1, "'latency'"),
        ('{"dir":"event","event":"boom"}\n', 1, "'event' must be one of"),
        ('{"dir":"event","event":"connect","host":"h","port":"25"}\n', 1, "'port'"),
        ('{"dir":"event","event":"connect","host":"h","port":99999}\n', 1, "not a port"),
        ('{"dir":"C","line":"{plain user"}\n', 1, "unterminated placeholder"),
        # One reply per record: a record whose code breaks the grammar of the next...
        (
            '{"dir":"C","line":"EHLO x"}\n{"dir":"C","line":"BDAT 10"}\n{"dir":"C","line":"ab"}\n'
            '{"dir":"S","code":250,"lines":["ok"]}\n',
            4,
            "the BDAT at line 2",
        ),
    ],
)
def test_bad_jsonl_is_one_transcript_error_naming_the_record(
    text: str, line_no: int, message: str
) -> None:
    with pytest.raises(TranscriptError) as caught:
        parse_jsonl(text, "bad.jsonl")
    assert caught.value.line_no == line_no, str(caught.value)
    assert message in caught.value.message
    assert str(caught.value).startswith(f"bad.jsonl:{line_no}: ")
    assert "\n" not in str(caught.value)


# -- property: any recorded session reads the same from either file --------------------------

# Text the recorder may be handed: anything, with the characters that need escaping likely.
TEXT = st.text(
    st.characters(codec="utf-8")
    | st.sampled_from(["\r", "\n", "{", "}", '"', "\\", "/", " ", "\t", "\u2028", "\x85", "\x1b"]),
    max_size=12,
)
WORD = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=10)
LATENCY = st.none() | st.floats(0, 100) | st.sampled_from([float("inf"), -1.0])
RAW_REPLY = st.lists(
    st.sampled_from([b"250-", b"250 ", b"550 ", b"354 ", b"334 ", b"25", b"x", b"\xff", b" "])
    | st.binary(max_size=6),
    min_size=1,
    max_size=5,
).map(lambda parts: b"".join(parts) + b"\r\n")
SECRETS = st.sampled_from(
    [
        Placeholder.login_password(),
        Placeholder.plain("student"),
        Placeholder.plain(None),
        Placeholder.cram_md5("student"),
        Placeholder.xoauth2("me@example.org"),
        Placeholder.variable("answer"),
    ]
)
EVENT = st.one_of(
    st.tuples(st.just("sent"), TEXT),
    st.tuples(st.just("secret"), st.sampled_from(["AUTH PLAIN x", "x", "AUTH XOAUTH2 y"]), SECRETS),
    st.tuples(st.just("data"), st.binary(max_size=30)),
    st.tuples(st.just("chunk"), st.binary(max_size=20), st.booleans()),
    st.tuples(
        st.just("reply"),
        st.integers(200, 599) | st.integers(0, 999),
        st.lists(WORD, min_size=1, max_size=3),
        LATENCY,
    ),
    st.tuples(st.just("raw-reply"), RAW_REPLY, LATENCY),
    st.tuples(st.just("comment"), TEXT),
    st.tuples(st.just("connect"), WORD, st.integers(0, 65535), st.booleans()),
    st.tuples(st.just("tls"), st.none() | WORD, st.none() | WORD),
    st.tuples(st.just("closed"), st.none() | TEXT),
)


def record(events: list[tuple[object, ...]], timing: bool) -> TranscriptRecorder:
    rec = TranscriptRecorder(timing=timing, clock=FakeClock())
    for kind, *args in events:
        if kind == "sent":
            rec.sent(args[0])
        elif kind == "secret":
            rec.sent(args[0], secret=args[1])
        elif kind == "data":
            rec.sent_data(args[0])
        elif kind == "chunk":
            chunk = args[0]
            rec.sent_chunk(f"BDAT {len(chunk)}{' LAST' if args[1] else ''}", chunk)
        elif kind == "reply":
            rec.received(make_reply(args[0], *args[1]), args[2])
        elif kind == "raw-reply":
            parser = ReplyParser()
            replies = parser.feed(args[0]) + parser.feed_eof()
            for reply in replies:
                rec.received(reply, args[1])
        elif kind == "comment":
            rec.comment(args[0])
        elif kind == "connect":
            rec.connected(args[0], args[1], implicit_tls=args[2])
        elif kind == "tls":
            rec.tls_started(args[0], args[1])
        else:
            rec.closed(args[0])
    return rec


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENT, max_size=14))
def test_recorder_jsonl_parse_equals_recorder_text_parse(events: list[tuple[object, ...]]) -> None:
    rec = record(events, timing=True)
    try:
        from_text = parse_transcript(rec.text(), "s")
    except TranscriptError as error:
        # A session the text form cannot hold (a chunk cut short by a reply): JSONL neither,
        # and the error names the record of the same event.
        with pytest.raises(TranscriptError) as caught:
            parse_jsonl(rec.jsonl(), "s")
        assert caught.value.message.split(" at line ")[0] == error.message.split(" at line ")[0]
        return
    assert unnumbered(parse_jsonl(rec.jsonl(), "s")) == unnumbered(from_text)
