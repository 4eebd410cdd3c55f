"""The Subject of a plain header section is read without the email parser: the same answer."""

from __future__ import annotations

import email.parser
import email.policy
import random

import pytest

from smtp_tutor.sandbox import activity, storage

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`

PIECES = [
    b"Subject:", b"subject: ", b"SUBJECT:\t", b"From: a@b", b"\r\n", b"\r\n ", b"\r\n\t", b" ",
    b"  ", b"\t", b"x", b"hello world", b"=?utf-8?q?caf=C3=A9?=", b":", b"To:", b"\n", b"\r",
    b"\xc3\xa9", b"From ", b"X-Y:", b"a  b", b"(c)", b'"q"', b"\r\n\r\n", b"Subject: two",
    b"x" * 50,
]  # fmt: skip


def _parsed(message: bytes) -> str:
    head = message[: activity.HEADER_LIMIT].split(b"\r\n\r\n", 1)[0]
    parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    subject = parsed.get("subject")
    return activity.printable(subject, activity.SUBJECT_LIMIT) if subject is not None else ""


def test_the_fast_path_agrees_with_the_parser_on_random_header_sections() -> None:
    rnd = random.Random(5321)
    fast = 0
    for _ in range(30_000):
        message = b"".join(rnd.choice(PIECES) for _ in range(rnd.randint(1, 12)))
        head = message[: activity.HEADER_LIMIT].split(b"\r\n\r\n", 1)[0]
        if activity._plain_subject(head) is not None:
            fast += 1
        assert activity.subject_of(message) == _parsed(message), message
    assert fast > 1000  # the fast path was taken, not only the parser


def test_what_the_fast_path_leaves_to_the_parser() -> None:
    assert activity._plain_subject(b"From: a\r\nSubject: plain") == "plain"
    assert activity._plain_subject(b"Subject: folded\r\n  line") == "folded  line"
    for head in (
        b"Subject: =?utf-8?q?caf=C3=A9?=",  # an encoded word
        b"Subject: caf\xc3\xa9",  # not ASCII
        b"Subject: bare\nline",  # a bare LF
        b"no field\r\nSubject: x",  # the parser ends the header section at the first line
        b" Subject: x",  # a continuation first
        b"From: a",  # no Subject at all
    ):
        assert activity._plain_subject(head) is None, head
    assert activity.subject_of(b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n") == "café"


def test_a_plain_message_id_has_no_defects_as_the_parser_says() -> None:
    policy = email.policy.default
    rnd = random.Random(1939)
    pieces = ["<", ">", "@", ".", "a", "b9", "x.y", "!#$", "  ", "\t", "(c)", '"q"', "[1.2.3.4]",
              "é", ",", "\\", " <a@b>", "..", "-", "_"]  # fmt: skip
    plain = 0
    for _ in range(30_000):
        value = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 9)))
        try:
            parsed = tuple(getattr(policy.header_fetch_parse("Message-ID", value), "defects", ()))
        except Exception:  # the parser itself gives up: the fast path never claims such a one
            assert not storage._PLAIN_MSG_ID.fullmatch(value), value
            continue
        if storage._PLAIN_MSG_ID.fullmatch(value):
            plain += 1
            assert parsed == (), value
        found = storage.header_defects(policy, "Message-ID", value)
        assert [repr(d) for d in found] == [repr(d) for d in parsed], value
    assert plain > 50


@pytest.mark.parametrize("name", ["From", "To", "Cc", "Sender", "Reply-To", "Resent-To"])
def test_a_plain_address_has_no_defects_as_the_parser_says(name: str) -> None:
    policy = email.policy.default
    rnd = random.Random(5321)
    pieces = ["<", ">", "@", ".", "a", "b9", "x.y", "!#$", "  ", "\t", "(c)", '"q"', "[1.2.3.4]",
              "é", ",", "\\", " <a@b>", "..", "-", "_", ":", ";", "Bob ", "<u.v@example.org>",
              "u@example.org"]  # fmt: skip
    plain = 0
    for _ in range(4_000):
        value = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 8)))
        try:
            parsed = tuple(getattr(policy.header_fetch_parse(name, value), "defects", ()))
        except Exception:  # the parser itself gives up: the fast path never claims such a one
            assert not storage._PLAIN_ADDRESS.fullmatch(value), value
            continue
        if storage._PLAIN_ADDRESS.fullmatch(value):
            plain += 1
            assert parsed == (), value
        found = storage.header_defects(policy, name, value)
        assert [repr(d) for d in found] == [repr(d) for d in parsed], value
    assert plain > 50
