"""The cache of header defects (sandbox/storage.py `header_defects`) gives what the parser does.

A stored message's defects are worked out once per (name, value) and not at all for a plain
ASCII unstructured header; these tests hold that the shortcut and the cache change nothing:
the same defects as `policy.header_fetch_parse` finds, for good and for broken headers,
a second time from the cache, and once per message in the web view's index.
"""

from __future__ import annotations

import email.policy
from pathlib import Path

import pytest

from smtp_tutor.sandbox import storage
from smtp_tutor.sandbox.storage import Mailbox, StoredMessage, header_defects
from smtp_tutor.web.index import Entry

pytestmark = pytest.mark.pure

HEADERS = [
    ("Subject", "plain words"),
    ("Subject", "=?utf-8?q?caf=C3=A9?="),
    ("Subject", "=?utf-8?b?not base64!?="),  # a broken encoded word
    ("Subject", "tab\there"),
    ("To", "Bob <bob@example.org>"),
    ("To", "Bob <bob@example.org"),  # no closing bracket
    ("From", "a@@example.org"),
    ("Cc", '"unterminated <x@example.org>'),
    ("From", "=?utf-8?q?Ren=C3=A9?= <rene@example.org>"),
    ("Date", "not a date"),
    ("Message-ID", "<no-end@example.org"),
    ("To", "caf\udcc3\udca9@example.org"),  # undecodable bytes, as a bytes parse keeps them
    ("X-Long", "x" * 3000),
    ("To", ", ".join(f"u{n}@example.org" for n in range(400))),  # longer than the cached limit
]


def _parsed(name: str, value: str) -> list[str]:
    found = email.policy.default.header_fetch_parse(name, value)
    return sorted(type(d).__name__ for d in getattr(found, "defects", ()))


def _names(defects: tuple[object, ...]) -> list[str]:
    return sorted(type(d).__name__ for d in defects)


@pytest.mark.parametrize(("name", "value"), HEADERS)
def test_the_cached_defects_are_the_parsers(name: str, value: str) -> None:
    storage._default_header_defects.cache_clear()
    first = header_defects(email.policy.default, name, value)
    again = header_defects(email.policy.default, name, value)
    assert _names(first) == _names(again) == _parsed(name, value)


def test_some_of_the_headers_are_defective() -> None:
    """The cases above would prove little if none had a defect."""
    broken = [(n, v) for n, v in HEADERS if _parsed(n, v)]
    assert len(broken) >= 4


def test_a_repeated_header_is_parsed_once() -> None:
    storage._default_header_defects.cache_clear()
    for _ in range(50):
        header_defects(email.policy.default, "To", "Bob <bob@example.org")
    info = storage._default_header_defects.cache_info()
    assert (info.misses, info.hits) == (1, 49)


def test_plain_unstructured_headers_and_long_ones_are_not_cached() -> None:
    storage._default_header_defects.cache_clear()
    assert header_defects(email.policy.default, "Subject", "plain words") == ()
    header_defects(email.policy.default, "X-Long", "=?" + "x" * 3000)
    assert storage._default_header_defects.cache_info().currsize == 0


def test_another_policy_is_parsed_as_it_is_not_from_the_cache() -> None:
    strict = email.policy.default.clone(max_line_length=40)
    storage._default_header_defects.cache_clear()
    got = header_defects(strict, "To", "Bob <bob@example.org")
    assert _names(got) == _parsed("To", "Bob <bob@example.org")
    assert storage._default_header_defects.cache_info().currsize == 0
    assert header_defects(email.policy.compat32, "To", "Bob <bob@example.org") == ()


def _raw(to: str, subject: str = "hello") -> bytes:
    return f"From: a@example.org\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


def _uncached(stored: StoredMessage) -> list[str]:
    found: list[str] = []
    for part in stored.message.walk():
        found += [type(d).__name__ for d in part.defects]
        for name, value in part.raw_items():
            found += _parsed(name, value)
    return sorted(found)


@pytest.mark.parametrize(
    "raw",
    [
        _raw("b@example.org"),
        _raw("Bob <b@example.org"),
        _raw("b@example.org", "=?utf-8?b?not base64!?="),
        "From: a@example.org\r\nTo: café@example.org\r\n\r\nx\r\n".encode(),
        b"From: a@example.org\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n",
    ],
)
def test_a_messages_defects_are_the_same_from_the_cache(raw: bytes) -> None:
    storage._default_header_defects.cache_clear()
    cold = sorted(type(d).__name__ for d in StoredMessage("k", raw).defects)
    warm = sorted(type(d).__name__ for d in StoredMessage("k", raw).defects)
    assert cold == warm == _uncached(StoredMessage("k", raw))


def test_an_smtputf8_message_keeps_its_other_defects() -> None:
    raw = "From: a@example.org\r\nTo: café@example.org, Bob <b@example.org\r\n\r\nx\r\n".encode()
    plain = {type(d).__name__ for d in StoredMessage("k", raw).defects}
    utf8 = {type(d).__name__ for d in StoredMessage("k", raw, {"smtputf8": True}).defects}
    assert "NonASCIILocalPartDefect" in plain and "NonASCIILocalPartDefect" not in utf8
    assert utf8 and utf8 <= plain  # the unclosed bracket is still reported


def test_the_index_works_a_messages_defects_out_once(tmp_path: Path) -> None:
    raw = _raw("Bob <b@example.org")
    entry = Entry("k", {"accounts": ["bob"]}, ["bob"], _raw=raw)
    mailbox = Mailbox(tmp_path / "Maildir")  # not read: the bytes came with the entry
    first = entry.summary(mailbox)
    assert first["defects"] == [type(d).__name__ for d in StoredMessage("k", raw).defects]
    assert first["defects"]
    assert entry.summary(mailbox) is first and entry._raw is None  # the bytes let go
    entry.changed()  # a teacher cleared it for one account: the summary again, same defects
    assert entry.summary(mailbox)["defects"] == first["defects"]
