"""POP3 transcripts in JSON Lines read back as the text form does, and APOP replayed anew.

The APOP digest depends on the greeting's timestamp, which changes each session: the
transcript keeps `{apop password=password}` and replay computes it from the new greeting.
"""

from __future__ import annotations

import io

import pytest

from smtp_tutor.core.placeholders import Placeholder, ResolveError, parse_template
from smtp_tutor.core.pop3.transcript import (
    Pop3Expect,
    parse_pop3_script,
    parse_pop3_transcript,
)
from smtp_tutor.core.records import replace  # a record (Directive) or a dataclass
from smtp_tutor.core.transcript import Send, TranscriptError, resolve
from tests.test_pop3_replay import Pop3Recorder, Status, _multiline, make_response

pytestmark = pytest.mark.pure


def _both_forms() -> tuple[str, str]:
    rec = Pop3Recorder(clock=lambda: 0.0)
    jsonl = io.StringIO()
    rec.attach(jsonl, "jsonl")
    rec.connected("127.0.0.1", 110)
    rec.received(make_response(Status.OK, "ready <1.2@pop.example>"))
    rec.sent("APOP student c4c9334bac560ecc979e58001b3e22fb", Placeholder.apop())
    rec.received(make_response(Status.OK, "logged in"))
    rec.sent("LIST")
    rec.received(_multiline(b".\r\n"))  # an empty mailbox: a body of no lines
    rec.sent("RETR 1")
    rec.received(_multiline(b"Subject: x\r\n\r\n..dot\r\n/not a regex/\r\n.\r\n"))
    rec.sent("DELE 9")
    rec.received(make_response(Status.ERR, "[SYS/PERM] no such message"))
    rec.sent("QUIT")
    rec.received(make_response(Status.OK, "/bye/"))
    rec.closed("done")
    return rec.text(), jsonl.getvalue()


def _without_lines(item: object) -> object:
    item = replace(item, line_no=0)  # type: ignore[type-var]
    return replace(item, end_line_no=0) if isinstance(item, Pop3Expect) else item


def test_a_jsonl_transcript_gives_the_items_of_the_text_one() -> None:
    text, jsonl = _both_forms()
    from_text = parse_pop3_transcript(text, "s.pop3")
    from_jsonl = parse_pop3_script(jsonl, "s.jsonl")
    assert parse_pop3_script(text, "s.pop3") == from_text  # the text form as before
    assert [_without_lines(i) for i in from_jsonl.items] == [
        _without_lines(i) for i in from_text.items
    ]
    retr = from_jsonl.expects[3]
    assert retr.body == ("Subject: x", "", "..dot", "/not a regex/") and retr.multiline
    assert from_jsonl.expects[2].body == () and from_jsonl.expects[2].multiline
    assert from_jsonl.sends[0].text == "APOP student {apop password=password}"
    assert "c4c9334b" not in jsonl
    # Line numbers are the JSONL records' own.
    records = jsonl.splitlines()
    assert '"RETR 1"' in records[from_jsonl.sends[2].line_no - 1]


def test_a_hand_written_record_without_bytes_uses_its_lines() -> None:
    jsonl = "\n".join(
        [
            '{"dir":"event","event":"comment","text":"protocol: pop3"}',
            '{"dir":"S","status":"+OK","text":"ready"}',
            '{"dir":"C","line":"CAPA"}',
            '{"dir":"S","status":"+OK","text":"","lines":["a",".b"]}',
        ]
    )
    greeting, expect = parse_pop3_script(jsonl, "h.jsonl").expects
    assert greeting.line_no == 2
    assert expect.body == ("a", "..b") and expect.line_no == 4


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ('{"dir":"S","status":"250","text":""}', "'status' must be"),
        ('{"dir":"S","status":"+OK"}', "'text' must be a string"),
        ('{"dir":"S","status":"+OK","text":"","bytes":"!!"}', "'bytes' is not base64"),
        ('{"dir":"S","status":"+OK","text":"","lines":[1]}', "'lines' must be a list"),
        ("[1]", "one JSON object a line"),
    ],
)
def test_a_bad_record_is_one_error_naming_its_line(record: str, why: str) -> None:
    jsonl = '{"dir":"event","event":"comment","text":"protocol: pop3"}\n' + record
    with pytest.raises(TranscriptError, match=why) as caught:
        parse_pop3_script(jsonl, "bad.jsonl")
    assert caught.value.line_no == 2


def test_the_apop_placeholder_answers_the_greeting_it_is_given() -> None:
    placeholder = Placeholder.apop()
    assert placeholder.render() == "{apop password=password}"
    send = Send(
        1, "APOP mrose {apop password=password}", parse_template("APOP mrose {apop password}")
    )
    assert send.variables() == ("password",)
    # RFC 1939 section 7's example.
    line = resolve(send, {"password": "tanstaaf"}, challenge="<1896.697170952@dbc.mtview.ca.us>")
    assert line == "APOP mrose c4c9334bac560ecc979e58001b3e22fb"
    other = resolve(send, {"password": "tanstaaf"}, challenge="<2@x>")
    assert other != line  # a new greeting, a new digest
    with pytest.raises(ResolveError, match="timestamp"):
        resolve(send, {"password": "tanstaaf"})
