"""A plain message's defects are found without building the message: the parser's answer.

`plain_message_defects` (sandbox/storage.py) claims to know what the email parser finds in a
plain one-part message from its headers alone; these tests hold it to the parser on random
messages, good and broken, and check that it hands everything else to the parser.
"""

from __future__ import annotations

import email
import email.policy
import random

import pytest

from smtp_tutor.sandbox import storage
from smtp_tutor.sandbox.storage import StoredMessage, plain_message_defects

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`

NAMES = [b"From", b"To", b"Cc", b"Subject", b"Date", b"Message-ID", b"Content-Type",
         b"content-type", b"MIME-Version", b"Content-Transfer-Encoding", b"Reply-To",
         b"X-Mailer", b"Received", b"Sender", b"Bcc", b"In-Reply-To", b"References",
         b"Resent-From", b"X", b"From ", b" From", b"", b"Bad Name"]  # fmt: skip
VALUES = [b"alice@example.org", b"<alice@example.org>", b"Alice <alice@example.org>",
          b"a@@b", b"<no-end@example.org", b'"unterminated <x@y>', b"undisclosed-recipients:;",
          b"hello world", b"=?utf-8?q?caf=C3=A9?=", b"=?utf-8?b?bad!?=", b"caf\xc3\xa9",
          b"Mon, 7 Dec 2026 10:00:00 +0000", b"not a date", b"<id.1@host>", b"<a b@c>",
          b"text/plain", b"text/plain; charset=utf-8", b"text/html; charset=\"x", b"text/",
          b"multipart/mixed; boundary=b", b"message/rfc822", b"1.0", b"base64", b"", b" ",
          b"\t", b"a,b", b"(comment) x@y", b"x@[1.2.3.4]", b"\x01ctl", b"a\tb", b"x" * 90,
          b"; ; ;", b"<>", b"@", b":"]  # fmt: skip
SEPARATORS = [b": ", b":", b":\t", b":  ", b" : "]
ENDS = [b"\r\n"] * 8 + [b"\n", b"\r\n ", b"\r\n\t", b"\r"]
BODIES = [b"body\r\n", b"", b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n",
          b"From me\r\n", b"caf\xc3\xa9\r\n", b"line\nbare LF\r\n"]  # fmt: skip


def _random_message(rnd: random.Random) -> bytes:
    crlf = rnd.random() < 0.8  # most messages end their lines well, as clients do
    lines = [
        rnd.choice(NAMES)
        + rnd.choice(SEPARATORS)
        + rnd.choice(VALUES)
        + (b"\r\n" if crlf else rnd.choice(ENDS))
        for _ in range(rnd.randint(0, 7))
    ]
    head_end = b"\r\n" if crlf else rnd.choice([b"\r\n", b"", b"\n"])
    return b"".join(lines) + head_end + rnd.choice(BODIES)


def _parser_says(raw: bytes) -> list[str]:
    """What `StoredMessage.defects` says with the fast path taken out: the parser alone."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    found = []
    for part in message.walk():
        found.extend(type(d).__name__ for d in part.defects)
        mine = []
        try:
            for name, value in part.raw_items():
                parsed = email.policy.default.header_fetch_parse(name, value)
                mine.extend(type(d).__name__ for d in getattr(parsed, "defects", ()))
        except Exception:  # the parser gives up on a header: the part's header defects go
            continue
        found.extend(mine)
    return found


def test_the_fast_path_agrees_with_the_parser_on_random_messages() -> None:
    rnd = random.Random(5322)
    fast = 0
    for _ in range(12_000):
        raw = _random_message(rnd)
        plain = plain_message_defects(raw)
        if plain is None:  # the parser's own answer: the oracle is what the slow path says
            assert [type(d).__name__ for d in StoredMessage("k", raw).defects] == _parser_says(
                raw
            ), raw
            continue
        fast += 1
        assert [type(d).__name__ for d in plain] == _parser_says(raw), raw
    assert fast > 1_000  # the fast path was taken, not only the parser


def test_what_the_fast_path_leaves_to_the_parser() -> None:
    plain = b"From: <a@example.org>\r\nTo: <b@example.org>\r\nSubject: hi\r\n\r\nbody\r\n"
    assert plain_message_defects(plain) == []
    assert plain_message_defects(b"To: a@@b\r\n\r\nx") is not None  # broken, but plain
    for raw in (
        b"Subject: folded\r\n line\r\n\r\nbody",  # a fold
        b"Subject: caf\xc3\xa9\r\n\r\nbody",  # not ASCII
        b"Subject: bare\nFrom: a\r\n\r\nbody",  # a bare LF
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nx",
        b"From someone Mon Dec  7\r\nSubject: x\r\n\r\nbody",  # an mbox From line
        b"Subject: no end of the header section",
        b"\r\nbody only",
        b"X-Big: " + b"x" * (storage._PLAIN_HEAD_LIMIT + 1) + b"\r\n\r\nbody",
    ):
        assert plain_message_defects(raw) is None, raw


def test_a_broken_plain_header_keeps_its_defects() -> None:
    raw = b"From: <a@example.org\r\nDate: not a date\r\nSubject: =?utf-8?b?bad!?=\r\n\r\nx\r\n"
    names = [type(d).__name__ for d in StoredMessage("k", raw).defects]
    assert names == _parser_says(raw)
    assert "InvalidHeaderDefect" in names
