"""DATA transparency: line endings, dot-stuffing, and finding the end of the data."""

from __future__ import annotations

import itertools
import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtp_tutor.core.message_data import (
    END_OF_DATA,
    TEXT_LINE_LIMIT,
    EndOfData,
    EndOfDataDetector,
    bare_line_endings,
    dot_stuff,
    dot_unstuff,
    encode_message_for_data,
    is_end_of_data_line,
    long_lines,
    normalise_line_endings,
    stuff_line,
)

# ------------------------------------------------------------------ normalise_line_endings


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        (b"", b""),
        (b"a", b"a"),
        (b"a\r\nb", b"a\r\nb"),
        (b"a\nb", b"a\r\nb"),
        (b"a\rb", b"a\r\nb"),
        (b"a\n", b"a\r\n"),
        (b"\n", b"\r\n"),
        (b"\r", b"\r\n"),
        (b"\n\n", b"\r\n\r\n"),
        (b"\r\r", b"\r\n\r\n"),
        (b"\n\r", b"\r\n\r\n"),  # LF then CR: two bare endings, not one CRLF
        (b"\r\r\n", b"\r\n\r\n"),  # bare CR, then a real CRLF
        (b"a\r\n\nb", b"a\r\n\r\nb"),
        ("héllo\nwörld", "héllo\r\nwörld".encode()),
        ("x\r\ny", b"x\r\ny"),
    ],
)
def test_normalise_line_endings(given_: bytes | str, expected: bytes) -> None:
    assert normalise_line_endings(given_) == expected


def test_normalise_str_uses_utf8_and_surrogateescape() -> None:
    original = b"caf\xe9\nok"  # Latin-1 bytes read as text with surrogateescape
    text = original.decode("utf-8", errors="surrogateescape")
    assert normalise_line_endings(text) == b"caf\xe9\r\nok"


@given(st.binary())
def test_normalised_output_has_no_bare_endings(data: bytes) -> None:
    out = normalise_line_endings(data)
    assert bare_line_endings(out) == []
    assert normalise_line_endings(out) == out  # idempotent
    # Nothing but line endings changes.
    assert out.replace(b"\r\n", b"") == data.replace(b"\r\n", b"").replace(b"\r", b"").replace(
        b"\n", b""
    )


# ------------------------------------------------------------------ dot-stuffing


@pytest.mark.parametrize(
    ("plain", "stuffed"),
    [
        (b"", b""),
        (b".", b".."),
        (b"..", b"..."),
        (b".\r\n", b"..\r\n"),
        (b".x\r\n", b"..x\r\n"),
        (b"x.\r\n", b"x.\r\n"),  # only a leading dot counts
        (b" .\r\n", b" .\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n"),  # the terminator inside data
        (b"a\r\n.\r\n.\r\n", b"a\r\n..\r\n..\r\n"),  # consecutive dot lines
        (b".a\r\n.b\r\n.c", b"..a\r\n..b\r\n..c"),
        (b"\r\n.\r\n", b"\r\n..\r\n"),
        (b"a\n.b\r\n", b"a\n.b\r\n"),  # bare LF is not a line start
        (b"a\r.b\r\n", b"a\r.b\r\n"),
    ],
)
def test_dot_stuff_and_unstuff(plain: bytes, stuffed: bytes) -> None:
    assert dot_stuff(plain) == stuffed
    assert dot_unstuff(stuffed) == plain


def test_unstuff_removes_only_one_dot() -> None:
    assert dot_unstuff(b"...x\r\n") == b"..x\r\n"
    assert dot_unstuff(b"x\r\n..\r\n") == b"x\r\n.\r\n"


@pytest.mark.parametrize(
    ("line", "sent"),
    [("", ""), (".", ".."), ("..", "..."), (".x", "..x"), ("x.", "x."), (" .x", " .x")],
)
def test_stuff_line(line: str, sent: str) -> None:
    assert stuff_line(line) == sent


@pytest.mark.parametrize(
    ("line", "ends"),
    [(".", True), ("..", False), (" .", False), (". ", False), ("", False), (".x", False)],
)
def test_is_end_of_data_line(line: str, ends: bool) -> None:
    assert is_end_of_data_line(line) is ends


crlf_text = st.lists(
    st.binary().map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    max_size=8,
).map(b"\r\n".join)


@given(crlf_text)
def test_unstuff_inverts_stuff(message: bytes) -> None:
    assert dot_unstuff(dot_stuff(message)) == message


@given(crlf_text)
def test_stuffed_data_never_contains_a_terminator(message: bytes) -> None:
    wire = dot_stuff(message)
    assert END_OF_DATA not in wire
    assert not wire.startswith(b".\r\n")
    lines = wire.split(b"\r\n")
    assert all(line != b"." for line in lines)


# ------------------------------------------------------------------ encode_message_for_data


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (b"", b".\r\n"),
        ("", b".\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b"..", b"...\r\n.\r\n"),
        (b".x", b"..x\r\n.\r\n"),
        (b"hi", b"hi\r\n.\r\n"),
        (b"hi\r\n", b"hi\r\n.\r\n"),
        (b"hi\n", b"hi\r\n.\r\n"),
        (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),  # bare-LF dot line gets stuffed after fixing
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"\r\n", b"\r\n.\r\n"),
        (b"\n\n", b"\r\n\r\n.\r\n"),
        ("Subject: é\n\nbody", "Subject: é\r\n\r\nbody\r\n.\r\n".encode()),
    ],
)
def test_encode_message_for_data(message: bytes | str, wire: bytes) -> None:
    assert encode_message_for_data(message) == wire


@given(st.binary())
def test_encoded_data_is_well_formed(message: bytes) -> None:
    wire = encode_message_for_data(message)
    assert wire.endswith(b".\r\n")
    assert bare_line_endings(wire) == []
    body = wire[: -len(b".\r\n")]
    assert body == b"" or body.endswith(b"\r\n")
    assert END_OF_DATA not in body
    assert not body.startswith(b".\r\n")


# ------------------------------------------------------------------ EndOfDataDetector


def _feed_all(chunks: list[bytes]) -> tuple[EndOfDataDetector, EndOfData | None, int]:
    """Feed until done; returns how many chunks were consumed."""
    det = EndOfDataDetector()
    for i, chunk in enumerate(chunks):
        result = det.feed(chunk)
        if result is not None:
            return det, result, i + 1
    return det, None, len(chunks)


@pytest.mark.parametrize(
    ("stream", "message", "rest"),
    [
        (b".\r\n", b"", b""),
        (b".\r\nQUIT\r\n", b"", b"QUIT\r\n"),
        (b"\r\n.\r\n", b"\r\n", b""),
        (b"hi\r\n.\r\n", b"hi\r\n", b""),
        (b"hi\r\n.\r\nQUIT\r\n", b"hi\r\n", b"QUIT\r\n"),
        (b"..\r\n.\r\n", b".\r\n", b""),
        (b"a\r\n..\r\nb\r\n.\r\n", b"a\r\n.\r\nb\r\n", b""),
        (b"..x\r\n.\r\n", b".x\r\n", b""),
        (b"a\r\n.\r\n.\r\n", b"a\r\n", b".\r\n"),  # first terminator wins
    ],
)
def test_detector_whole_and_byte_by_byte(stream: bytes, message: bytes, rest: bytes) -> None:
    size = len(stream) - len(rest)
    det, result, _ = _feed_all([stream])
    assert result == EndOfData(message=message, rest=rest, size=size)
    assert det.done and det.result == result
    # Byte by byte, the end is reported the moment the terminator's LF arrives.
    det, result, used = _feed_all([stream[i : i + 1] for i in range(len(stream))])
    assert result == EndOfData(message=message, rest=b"", size=size)
    assert used == size


@pytest.mark.parametrize(
    "stream",
    [
        b"",
        b".",
        b".\r",
        b"..\r\n",
        b"hi\r\n.",
        b"hi\r\n.\r",
        b"hi\n.\n",  # bare LF: not a terminator (SMTP smuggling)
        b"hi\r\n.\n",
        b"hi\n.\r\n",
        b"hi\r.\r\n",
        b"hi\r\n. \r\n",
        b".x\r\n",
    ],
)
def test_detector_not_finished(stream: bytes) -> None:
    det = EndOfDataDetector()
    for i in range(len(stream)):
        assert det.feed(stream[i : i + 1]) is None
    assert det.feed(b"") is None
    assert not det.done and det.result is None
    assert det.received == len(stream)


def test_detector_split_at_every_position() -> None:
    stream = b"Subject: x\r\n\r\n..dot\r\n.\r\nMAIL FROM:<a@b>\r\n"
    for cut in range(len(stream) + 1):
        det = EndOfDataDetector()
        first = det.feed(stream[:cut])
        result = first if first is not None else det.feed(stream[cut:])
        assert result is not None, cut
        assert result.message == b"Subject: x\r\n\r\n.dot\r\n"
        fed = cut if first is not None else len(stream)
        assert result.rest == stream[result.size : fed]
        assert stream[result.size :] == result.rest + stream[fed:]
        assert stream[result.size :] == b"MAIL FROM:<a@b>\r\n"


def test_detector_terminator_spread_over_three_chunks() -> None:
    det = EndOfDataDetector()
    assert det.feed(b"line one\r") is None
    assert det.feed(b"\n.") is None
    result = det.feed(b"\r\nNOOP\r\n")
    assert result == EndOfData(b"line one\r\n", b"NOOP\r\n", len(b"line one\r\n.\r\n"))


def test_detector_refuses_feed_after_end() -> None:
    det = EndOfDataDetector()
    assert det.feed(b".\r\n") is not None
    with pytest.raises(RuntimeError, match="already complete"):
        det.feed(b"more")


@settings(max_examples=200)
@given(st.binary(max_size=300), st.data())
def test_detector_recovers_encoded_message_in_random_chunks(
    message: bytes, data: st.DataObject
) -> None:
    wire = encode_message_for_data(message) + b"RSET\r\n"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    bounds = [0, *cuts, len(wire)]
    chunks = [wire[a:b] for a, b in itertools.pairwise(bounds)]
    det = EndOfDataDetector()
    fed = 0
    result = None
    for chunk in chunks:
        fed += len(chunk)
        result = det.feed(chunk)
        if result is not None:
            break
    assert result is not None
    expected = normalise_line_endings(message)
    if expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert result.message == expected
    assert result.size == len(wire) - len(b"RSET\r\n")
    assert result.rest == wire[result.size : fed]


# ------------------------------------------------------------------ line checks


def test_long_lines_limits() -> None:
    ok = b"x" * TEXT_LINE_LIMIT
    long = b"y" * (TEXT_LINE_LIMIT + 1)
    message = b"\r\n".join([ok, long, b"short", long]) + b"\r\n"
    assert long_lines(message) == [2, 4]
    assert long_lines(message, limit=5) == [1, 2, 4]
    assert long_lines(b"") == []
    assert long_lines(b"\r\n") == []
    assert long_lines(long) == [1]  # a final line without CRLF still counts


def test_long_lines_counts_bare_endings_as_they_will_be_sent() -> None:
    assert long_lines(b"abc\ndefgh\rij", limit=4) == [2]
    assert long_lines(b"abcdef\r\n", limit=6) == []
    assert long_lines(b"abcdefg\r\n", limit=6) == [1]


@pytest.mark.parametrize(
    ("data", "offsets"),
    [
        (b"", []),
        (b"a\r\nb", []),
        (b"a\nb", [1]),
        (b"a\rb", [1]),
        (b"\r", [0]),
        (b"\n", [0]),
        (b"\n\r", [0, 1]),
        (b"\r\r\n", [0]),
        (b"\r\n\n", [2]),
        (b"x\r\n.\n", [4]),
    ],
)
def test_bare_line_endings(data: bytes, offsets: list[int]) -> None:
    assert bare_line_endings(data) == offsets


# ------------------------------------------------------------------ against a real server


class _Recorder:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.contents.append(envelope.original_content)
        return "250 OK"


def test_encoded_message_arrives_intact_at_aiosmtpd() -> None:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    recorder = _Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    message = "Subject: dots\n\n.\n..\n.x\nmiddle\r\n.\r\nnot the end\rlast line é"
    wire = encode_message_for_data(message)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            replies = sock.makefile("rb")

            def send(data: bytes) -> int:
                sock.sendall(data)
                while True:
                    line = replies.readline()
                    if line[3:4] != b"-":
                        return int(line[:3])

            assert int(replies.readline()[:3]) == 220
            assert send(b"EHLO client.example\r\n") == 250
            assert send(b"MAIL FROM:<a@example.com>\r\n") == 250
            assert send(b"RCPT TO:<b@example.com>\r\n") == 250
            assert send(b"DATA\r\n") == 354
            assert send(wire) == 250
            assert send(b"QUIT\r\n") == 221
            replies.close()
    finally:
        controller.stop()
    detector = EndOfDataDetector()
    ours = detector.feed(wire)
    assert ours is not None
    assert recorder.contents == [ours.message]
    assert ours.message == normalise_line_endings(message) + b"\r\n"
