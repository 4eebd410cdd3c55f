"""The reply parser: the grammar of RFC 5321 §4.2, and never a crash on hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtp_tutor.core.replies import (
    HARD_LINE_LIMIT,
    Reply,
    ReplyParser,
    make_reply,
    parse_enhanced,
)

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`


def parse_all(data: bytes) -> list[Reply]:
    parser = ReplyParser()
    return parser.feed(data) + parser.feed_eof()


def test_single_line_reply() -> None:
    [reply] = parse_all(b"220 mail.example.com ESMTP ready\r\n")
    assert reply.code == 220
    assert reply.lines == ("mail.example.com ESMTP ready",)
    assert reply.code_class == 2 and reply.is_positive and not reply.malformed
    assert reply.raw == b"220 mail.example.com ESMTP ready\r\n"


def test_multiline_reply_is_one_reply() -> None:
    data = b"250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"
    [reply] = parse_all(data)
    assert reply.code == 250
    assert reply.lines == ("mail.example.com", "PIPELINING", "SIZE 1000", "8BITMIME")
    assert reply.is_multiline
    assert reply.raw == data


def test_enhanced_status_code() -> None:
    [reply] = parse_all(b"550 5.1.1 <nobody@example.com>: User unknown\r\n")
    assert reply.enhanced == "5.1.1"
    assert reply.message_lines == ("<nobody@example.com>: User unknown",)
    assert reply.is_error
    assert parse_enhanced("2.0.0 OK") == "2.0.0"
    assert parse_enhanced("250 OK") is None
    assert parse_enhanced("3.0.0 no") is None  # class 3 does not exist


def test_code_alone_is_a_valid_last_line() -> None:
    [reply] = parse_all(b"250\r\n")
    assert reply.code == 250 and reply.lines == ("",) and not reply.malformed


def test_byte_by_byte_feeding_gives_the_same_replies() -> None:
    data = b"220 hi\r\n250-a\r\n250 b\r\n354 go on\r\n"
    parser = ReplyParser()
    replies = [r for byte in data for r in parser.feed(bytes([byte]))]
    assert [r.code for r in replies] == [220, 250, 354]
    assert replies == parse_all(data)


def test_has_partial_tracks_unfinished_replies() -> None:
    parser = ReplyParser()
    parser.feed(b"250-first\r\n")
    assert parser.has_partial
    parser.feed(b"250 last\r\n")
    assert not parser.has_partial


def test_missing_code_is_malformed_not_an_exception() -> None:
    [reply] = parse_all(b"hello there\r\n")
    assert reply.code is None and reply.malformed
    assert "three-digit" in reply.problems[0]
    assert reply.raw == b"hello there\r\n"


def test_mixed_codes_in_one_multiline_reply() -> None:
    [reply] = parse_all(b"250-first\r\n251 second\r\n")
    assert reply.malformed and reply.code == 250
    assert any("different codes" in p for p in reply.problems)
    assert reply.lines == ("first", "second")


def test_non_utf8_text_is_kept_raw_and_flagged() -> None:
    [reply] = parse_all(b"550 \xff\xfe bad\r\n")
    assert reply.code == 550 and reply.malformed
    assert reply.raw == b"550 \xff\xfe bad\r\n"
    assert any("UTF-8" in p for p in reply.problems)


def test_utf8_text_is_fine() -> None:
    [reply] = parse_all("250 2.0.0 好的\r\n".encode())
    assert not reply.malformed and reply.lines == ("2.0.0 好的",)


def test_line_over_rfc_limit_is_flagged() -> None:
    data = b"250 " + b"x" * 600 + b"\r\n"
    [reply] = parse_all(data)
    assert reply.code == 250 and reply.malformed and reply.raw == data
    assert any("512" in p for p in reply.problems)


def test_huge_line_without_newline_is_bounded() -> None:
    parser = ReplyParser()
    replies = parser.feed(b"250 " + b"y" * (1024 * 1024))
    assert len(replies) == 1
    assert replies[0].malformed and len(replies[0].raw) == HARD_LINE_LIMIT
    # The rest of that line is dropped; the next line parses normally.
    more = parser.feed(b"y" * 1000 + b"\r\n221 bye\r\n")
    assert [r.code for r in more] == [221]


def test_code_without_space() -> None:
    [reply] = parse_all(b"250OK\r\n")
    assert reply.code == 250 and reply.malformed
    assert any("space" in p for p in reply.problems)


def test_codes_outside_the_defined_range() -> None:
    six, one, bad_second = parse_all(b"600 what\r\n199 hm\r\n260 odd\r\n")
    assert six.code == 600 and six.malformed
    assert one.code == 199 and one.malformed
    assert bad_second.code == 260 and bad_second.malformed


def test_bare_lf_is_accepted_but_flagged() -> None:
    [reply] = parse_all(b"220 hi\n")
    assert reply.code == 220 and reply.malformed
    assert any("bare LF" in p for p in reply.problems)


def test_eof_in_the_middle_of_a_multiline_reply() -> None:
    parser = ReplyParser()
    assert parser.feed(b"250-one\r\n250-two\r\n") == []
    [reply] = parser.feed_eof()
    assert reply.malformed and reply.lines == ("one", "two")
    assert any("closed" in p for p in reply.problems)


def test_eof_in_the_middle_of_a_line() -> None:
    parser = ReplyParser()
    parser.feed(b"250 par")
    [reply] = parser.feed_eof()
    assert reply.code == 250 and reply.malformed


def test_stray_line_interrupts_a_multiline_reply() -> None:
    first, last = parse_all(b"250-a\r\ngarbage\r\n250 b\r\n")
    assert first.malformed and first.lines == ("a", "garbage")
    assert last.code == 250 and not last.malformed


def test_ten_thousand_continuation_lines_are_capped() -> None:
    data = b"250-x\r\n" * 10_000 + b"250 end\r\n"
    [reply] = parse_all(data)
    assert reply.malformed and len(reply.lines) == 1000
    assert any("dropped" in p for p in reply.problems)


def test_make_reply_round_trips() -> None:
    reply = make_reply(250, "first", "2.0.0 second")
    assert parse_all(reply.raw) == [reply]


@settings(max_examples=300)
@given(st.binary(max_size=2000), st.lists(st.integers(min_value=1, max_value=64), max_size=20))
def test_parser_never_raises_and_keeps_every_byte(data: bytes, cuts: list[int]) -> None:
    parser = ReplyParser(hard_line_limit=4096)
    replies: list[Reply] = []
    position = 0
    for size in cuts:
        replies += parser.feed(data[position : position + size])
        position += size
    replies += parser.feed(data[position:])
    replies += parser.feed_eof()
    kept = b"".join(r.raw for r in replies)
    assert len(kept) <= len(data)
    if len(data) < 4096:  # nothing is dropped below the hard limit
        assert kept == data
    for reply in replies:
        assert reply.code is None or 0 <= reply.code <= 999
        assert reply.malformed or (reply.code is not None and 200 <= reply.code < 600)


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)
_SPECS = st.lists(
    st.tuples(st.integers(200, 559), st.lists(_TEXT, min_size=1, max_size=5)), max_size=10
)


@given(_SPECS)
def test_well_formed_replies_parse_back(specs: list[tuple[int, list[str]]]) -> None:
    specs = [(code, lines) for code, lines in specs if (code // 10) % 10 <= 5]
    replies = [make_reply(code, *lines) for code, lines in specs]
    stream = b"".join(r.raw for r in replies)
    parsed = parse_all(stream)
    assert [(r.code, r.lines) for r in parsed] == [(r.code, r.lines) for r in replies]
    assert all(not r.malformed or any("512" in p for p in r.problems) for r in parsed)
