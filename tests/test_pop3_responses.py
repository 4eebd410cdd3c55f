"""The POP3 response parser: RFC 1939 §3's grammar, RFC 2449 codes, and no crash on any bytes."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtp_tutor.core.pop3.responses import (
    Expect,
    Problem,
    Response,
    ResponseParser,
    Status,
    body_lines,
    byte_stuff,
    make_response,
)


def parse(data: bytes, *expect: Expect, **limits: int) -> list[Response]:
    parser = ResponseParser(**limits)
    for kind in expect:
        parser.expect(kind)
    return parser.feed(data) + parser.feed_eof()


def ids(response: Response) -> list[str]:
    return [p.id for p in response.problems]


# -- status lines ------------------------------------------------------------------------


def test_greeting_is_one_line_without_any_expectation() -> None:
    [r] = parse(b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n")
    assert r.status is Status.OK and r.ok and not r.is_error and not r.malformed
    assert r.text == "POP3 server ready <1896.697170952@dbc.mtview.ca.us>"
    assert r.raw == b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"
    assert r.body is None and not r.multiline and r.lines == ()


def test_err_with_text() -> None:
    [r] = parse(b"-ERR no such message\r\n")
    assert r.is_error and r.text == "no such message" and r.code is None
    assert r.status_line == "-ERR no such message"


def test_bare_status_without_text() -> None:
    [r] = parse(b"+OK\r\n")
    assert r.ok and r.text == "" and r.status_line == "+OK" and not r.malformed


@pytest.mark.parametrize(
    ("line", "code", "levels", "message"),
    [
        (b"-ERR [IN-USE] Another POP session?", "IN-USE", ("IN-USE",), "Another POP session?"),
        (b"-ERR [LOGIN-DELAY] wait 15 minutes", "LOGIN-DELAY", ("LOGIN-DELAY",), "wait 15 minutes"),
        (b"-ERR [SYS/TEMP] Internal error.", "SYS/TEMP", ("SYS", "TEMP"), "Internal error."),
        (b"-ERR [SYS/PERM] mailbox gone", "SYS/PERM", ("SYS", "PERM"), "mailbox gone"),
        (b"-ERR [AUTH] Authentication failed.", "AUTH", ("AUTH",), "Authentication failed."),
        (b"-ERR [A/B/C] deep", "A/B/C", ("A", "B", "C"), "deep"),
        (b"+OK [X-CODE] fine", "X-CODE", ("X-CODE",), "fine"),
    ],
)  # fmt: skip
def test_extended_response_codes(
    line: bytes, code: str, levels: tuple[str, ...], message: str
) -> None:
    [r] = parse(line + b"\r\n")
    assert r.code == code and r.code_levels == levels and r.message == message
    assert not r.malformed


@pytest.mark.parametrize(
    "text",
    [
        "[Internal error occurred. Refer to server log]",
        "[no closing",
        "[] empty",
        "[A//B] x",
        "x [IN-USE]",
    ],
)
def test_brackets_that_are_not_a_code_are_plain_text(text: str) -> None:
    [r] = parse(b"-ERR " + text.encode() + b"\r\n")
    assert r.code is None and r.message == text and not r.malformed


def test_lower_case_status_is_read_but_flagged() -> None:
    [r] = parse(b"+ok fine\r\n")
    assert r.status is Status.OK and r.text == "fine"
    assert ids(r) == ["status_case"]
    [r] = parse(b"-err nope\r\n")
    assert r.is_error and ids(r) == ["status_case"]


@pytest.mark.parametrize("line", [b"hello", b"OK ready", b"+OKAY", b"250 OK", b"", b"*", b"+x"])
def test_a_line_without_status_is_malformed_not_an_exception(line: bytes) -> None:
    [r] = parse(line + b"\r\n")
    assert r.status is None and r.malformed and ids(r)[0] == "no_status"
    assert r.raw == line + b"\r\n" and r.status_line == line.decode()


def test_continuation_when_sasl_is_expected() -> None:
    [r] = parse(b"+ VXNlcm5hbWU6\r\n", Expect.SASL)
    assert r.is_continuation and r.text == "VXNlcm5hbWU6" and not r.malformed
    [r] = parse(b"+ \r\n", Expect.SASL)
    assert r.is_continuation and r.text == "" and r.status_line == "+ "
    [r] = parse(b"+\r\n", Expect.SASL)  # the space trimmed away by some servers
    assert r.is_continuation and r.text == "" and not r.malformed


def test_continuation_nobody_asked_for_is_flagged() -> None:
    [r] = parse(b"+ abc\r\n", Expect.SINGLE)
    assert r.is_continuation and ids(r) == ["unexpected_continuation"]
    [r] = parse(b"+ abc\r\n", Expect.MULTILINE)
    assert r.is_continuation and ids(r) == ["unexpected_continuation"]


def test_final_answers_to_sasl_are_single_lines() -> None:
    rs = parse(
        b"+OK Logged in.\r\n-ERR [AUTH] Authentication failed.\r\n", Expect.SASL, Expect.SASL
    )
    assert [r.status for r in rs] == [Status.OK, Status.ERR]
    assert all(r.body is None for r in rs)


def test_status_line_over_512_octets_is_flagged() -> None:
    line = b"+OK " + b"x" * 508 + b"\r\n"  # 514 octets
    [r] = parse(line)
    assert ids(r) == ["line_too_long"] and r.raw == line
    [r] = parse(b"+OK " + b"x" * 506 + b"\r\n")  # exactly 512
    assert not r.malformed


def test_bare_lf_and_not_utf8() -> None:
    [r] = parse(b"+OK hi\n")
    assert r.ok and ids(r) == ["bare_lf"]
    [r] = parse(b"-ERR caf\xe9\r\n")
    assert r.is_error and ids(r) == ["not_utf8"] and r.text == "caf\ufffd"


# -- multiline responses -------------------------------------------------------------------


def test_list_scan_listing() -> None:
    data = b"+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n"
    [r] = parse(data, Expect.MULTILINE)
    assert r.ok and r.multiline and r.lines == ("1 120", "2 200")
    assert r.raw == data and r.body == b"1 120\r\n2 200\r\n" and not r.malformed


def test_err_to_a_multiline_command_stands_alone() -> None:
    rs = parse(b"-ERR no such message\r\n+OK next\r\n", Expect.MULTILINE, Expect.SINGLE)
    assert [(r.status, r.body) for r in rs] == [(Status.ERR, None), (Status.OK, None)]


def test_empty_multiline_body() -> None:
    [r] = parse(b"+OK\r\n.\r\n", Expect.MULTILINE)
    assert r.multiline and r.body == b"" and r.lines == ()


def test_byte_stuffing_is_undone_and_raw_keeps_it() -> None:
    data = b"+OK 40 octets\r\nSubject: x\r\n\r\n..hidden\r\n...two\r\n..\r\nend\r\n.\r\n"
    [r] = parse(data, Expect.MULTILINE)
    assert r.body == b"Subject: x\r\n\r\n.hidden\r\n..two\r\n.\r\nend\r\n"
    assert r.lines == ("Subject: x", "", ".hidden", "..two", ".", "end")
    assert r.raw == data and not r.malformed


def test_an_unstuffed_dot_line_is_unstuffed_as_the_rfc_says_and_flagged() -> None:
    [r] = parse(b"+OK\r\n.hidden\r\n.\r\n", Expect.MULTILINE)
    assert r.body == b"hidden\r\n" and ids(r) == ["dot_not_stuffed"]


def test_a_dot_followed_by_a_space_is_content_not_the_end() -> None:
    [r] = parse(b"+OK\r\n. \r\n.\r\n", Expect.MULTILINE)
    assert r.body == b" \r\n"


def test_body_lines_keep_their_endings_and_bytes() -> None:
    data = b"+OK\r\n8bit \xe9t\xe9\r\nbare\nlone\rcr\r\n.\r\n"
    [r] = parse(data, Expect.MULTILINE)
    assert r.body == b"8bit \xe9t\xe9\r\nbare\nlone\rcr\r\n"
    assert ids(r) == ["bare_lf"]  # bytes that are not UTF-8 are fine in a message body
    assert body_lines(r.body) == [b"8bit \xe9t\xe9", b"bare", b"lone\rcr"]
    assert r.lines[0] == "8bit \ufffdt\ufffd"


def test_pipelined_responses_in_one_chunk() -> None:
    data = b"+OK\r\n+OK Logged in.\r\n+OK 2 241\r\n+OK 2 messages:\r\n1 148\r\n2 93\r\n.\r\n"
    data += b"+OK bye\r\n"
    expect = [Expect.SINGLE, Expect.SINGLE, Expect.SINGLE, Expect.MULTILINE, Expect.SINGLE]
    rs = parse(data, *expect)
    assert [r.text for r in rs] == ["", "Logged in.", "2 241", "2 messages:", "bye"]
    assert rs[3].lines == ("1 148", "2 93")


def test_expectations_are_consumed_in_order() -> None:
    parser = ResponseParser()
    parser.expect(Expect.MULTILINE)
    parser.expect(Expect.SINGLE)
    assert parser.expected == (Expect.MULTILINE, Expect.SINGLE)
    parser.feed(b"+OK\r\n")
    assert parser.expected == (Expect.SINGLE,) and parser.has_partial
    [r] = parser.feed(b".\r\n")
    assert r.multiline and not parser.has_partial


def test_eof_inside_a_multiline_response() -> None:
    [r] = parse(b"+OK 148 octets\r\nFrom: a\r\npartial", Expect.MULTILINE)
    assert r.ok and r.body == b"From: a\r\npartial"
    assert ids(r) == ["closed_mid_line", "closed_mid_response"]


def test_eof_in_the_middle_of_a_status_line() -> None:
    [r] = parse(b"+OK half")
    assert r.ok and r.text == "half" and ids(r) == ["closed_mid_line"]


def test_reset_hands_back_what_was_unread() -> None:
    parser = ResponseParser()
    parser.expect(Expect.SINGLE)
    parser.expect(Expect.MULTILINE)
    [r] = parser.feed(b"+OK Begin TLS\r\n+OK injected\r\nline\r\npart")
    assert r.text == "Begin TLS"
    assert parser.reset() == b"+OK injected\r\nline\r\npart"
    assert parser.expected == () and not parser.has_partial


# -- bounded memory ------------------------------------------------------------------------


def test_an_overlong_status_line_is_cut_and_the_rest_dropped() -> None:
    parser = ResponseParser(hard_line_limit=100)
    parser.expect(Expect.SINGLE)
    parser.expect(Expect.SINGLE)
    [r] = parser.feed(b"-ERR " + b"x" * 1000)  # reported at once, before any LF
    assert r.is_error and len(r.raw) == 100 and ids(r) == ["line_cut", "line_too_long"]
    assert parser.feed(b"y" * 10_000) == []
    [after] = parser.feed(b"\r\n+OK next\r\n")
    assert after.text == "next" and not after.malformed


def test_a_megabyte_line_never_fills_memory() -> None:
    parser = ResponseParser()
    responses: list[Response] = []
    for _ in range(16):
        responses += parser.feed(b"z" * 65536)
        assert len(parser._buffer) <= 65536 + 1  # the cut line's tail is not kept
    [r] = responses  # reported as soon as it overflowed, with its head only
    assert len(r.raw) == 65536 and ids(r) == ["no_status", "line_cut", "line_too_long"]
    assert parser.feed_eof() == []


def test_an_overlong_body_line_is_cut_but_lines_stay_apart() -> None:
    data = b"+OK\r\n" + b"a" * 50 + b"\r\nshort\r\n.\r\n"
    [r] = parse(data, Expect.MULTILINE, hard_line_limit=20)
    assert r.body == b"a" * 20 + b"\r\nshort\r\n" and ids(r) == ["line_cut"]


def test_a_multiline_response_that_never_ends_stops_growing() -> None:
    parser = ResponseParser(max_body=1000)
    parser.expect(Expect.MULTILINE)
    parser.feed(b"+OK\r\n")
    for _ in range(2000):
        assert parser.feed(b"0123456789" * 5 + b"\r\n") == []
    [r] = parser.feed_eof()
    assert len(r.body or b"") <= 1000 and len(r.raw) <= 1000 + 5
    assert ids(r) == ["closed_mid_response", "too_big"]
    assert "dropped" in str(r.problems[-1])


def test_a_body_over_the_limit_keeps_its_head_and_counts_the_rest() -> None:
    body = b"".join(b"line %d\r\n" % i for i in range(100))
    [r] = parse(b"+OK\r\n" + body + b".\r\n", Expect.MULTILINE, max_body=100)
    assert body.startswith(r.body or b"x") and len(r.body or b"") <= 100
    problem = r.problems[-1]
    assert problem.id == "too_big" and problem.params["dropped"] == len(body) - len(r.body or b"")


# -- building responses ---------------------------------------------------------------------


def test_byte_stuff() -> None:
    assert byte_stuff(b"") == b".\r\n"
    assert byte_stuff(b".a\r\nb\r\n") == b"..a\r\nb\r\n.\r\n"
    assert byte_stuff(b"no ending") == b"no ending\r\n.\r\n"


def test_make_response_round_trips() -> None:
    cases = [
        (make_response(Status.OK, "POP3 ready"), Expect.SINGLE),
        (make_response(Status.ERR, "[IN-USE] locked"), Expect.SINGLE),
        (make_response(Status.CONTINUE), Expect.SASL),
        (make_response(Status.OK, "2 messages", b"1 10\r\n2 20\r\n"), Expect.MULTILINE),
        (make_response(Status.OK, "", b".dot\r\n..two\r\n"), Expect.MULTILINE),
    ]
    for response, expect in cases:
        assert parse(response.raw, expect) == [response]
    assert cases[1][0].code == "IN-USE"


def test_problems_read_in_chinese_and_survive_pickling() -> None:
    from smtp_tutor.core.catalogue import localize

    [r] = parse(b"hello\r\n")
    problem = r.problems[0]
    assert isinstance(problem, Problem) and problem.catalogue == "pop3_problems"
    assert "+OK" in localize(problem, "zh") and localize(problem, "zh") != str(problem)
    assert pickle.loads(pickle.dumps(problem)) == problem
    assert type(pickle.loads(pickle.dumps(problem))) is Problem


# -- properties ----------------------------------------------------------------------------

_EXPECTS = st.lists(st.sampled_from(list(Expect)), max_size=30)
_CUTS = st.lists(st.integers(min_value=1, max_value=64), max_size=20)
# Bytes that look like POP3 often enough to exercise every branch.
_POP3ISH = st.lists(
    st.sampled_from(
        [b"+OK", b"-ERR", b"+ ", b"+", b" ", b"[SYS/TEMP]", b"[", b"]", b".", b"..", b"\r\n",
         b"\n", b"\r", b"x", b"\xe9", b"0123456789" * 3]
    ),
    max_size=80,
).map(b"".join)  # fmt: skip


def _feed_in_chunks(
    data: bytes, expects: list[Expect], cuts: list[int], **limits: int
) -> list[Response]:
    parser = ResponseParser(**limits)
    for kind in expects:
        parser.expect(kind)
    responses: list[Response] = []
    position = 0
    for size in cuts:
        responses += parser.feed(data[position : position + size])
        position += size
    responses += parser.feed(data[position:])
    return responses + parser.feed_eof()


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=2000), _POP3ISH), _EXPECTS, _CUTS)
def test_parser_never_raises_and_chunking_does_not_matter(
    data: bytes, expects: list[Expect], cuts: list[int]
) -> None:
    limits = {"hard_line_limit": 40, "max_body": 200, "line_limit": 30}
    whole = _feed_in_chunks(data, expects, [], **limits)
    assert _feed_in_chunks(data, expects, cuts, **limits) == whole
    byte_by_byte = _feed_in_chunks(data, expects, [1] * len(data), **limits)
    assert byte_by_byte == whole
    assert sum(len(r.raw) for r in whole) <= len(data)
    for r in whole:
        assert all(isinstance(p, Problem) for p in r.problems)
        assert r.malformed or r.status is not None
        assert r.body is None or len(r.body) <= 200


@settings(max_examples=200)
@given(st.binary(max_size=1500), _EXPECTS)
def test_below_every_limit_no_byte_is_lost(data: bytes, expects: list[Expect]) -> None:
    responses = _feed_in_chunks(data, expects, [])
    assert b"".join(r.raw for r in responses) == data


_LINE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\r\n"),
    max_size=30,
)
_BODY = st.lists(_LINE_TEXT, max_size=8).map(lambda ls: "".join(f"{x}\r\n" for x in ls).encode())
_SPECS = st.lists(
    st.tuples(st.sampled_from([Status.OK, Status.ERR]), _LINE_TEXT, st.none() | _BODY), max_size=8
)


@given(_SPECS)
def test_well_formed_responses_parse_back(specs: list[tuple[Status, str, bytes | None]]) -> None:
    built = [
        make_response(status, text.strip(), body if status is Status.OK else None)
        for status, text, body in specs
    ]
    expects = [Expect.MULTILINE if r.body is not None else Expect.SINGLE for r in built]
    parsed = _feed_in_chunks(b"".join(r.raw for r in built), expects, [])
    assert [(r.status, r.text, r.body) for r in parsed] == [
        (r.status, r.text, r.body) for r in built
    ]
    assert not any(r.malformed for r in parsed)
