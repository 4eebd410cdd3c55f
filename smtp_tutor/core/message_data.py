"""DATA transparency (RFC 5321 §4.5.2) and line endings (§2.3.8), without I/O.

After ``354`` the client sends the message as CRLF lines, doubles a leading ``.`` on every
line ("dot-stuffing") and ends with a line holding only ``.``. The server does the reverse.
Getting this wrong either cuts a message short (a body line ``.``), silently eats a dot
(``.x`` arrives as ``x``), or — with bare LF — is exactly the ambiguity behind the 2023
"SMTP smuggling" attacks, after which Postfix and sendmail reject bare LF. So the console
never sends a bare CR or LF: everything goes through `encode_message_for_data`.
"""

from __future__ import annotations

import re

from smtp_tutor.core.records import record

__all__ = [
    "CRLF",
    "END_OF_DATA",
    "TEXT_LINE_LIMIT",
    "EndOfData",
    "EndOfDataDetector",
    "bare_line_endings",
    "dot_stuff",
    "dot_unstuff",
    "encode_message_for_data",
    "is_end_of_data_line",
    "long_lines",
    "normalise_line_endings",
    "stuff_line",
]

CRLF = b"\r\n"
#: The terminating sequence as it appears after a line: CRLF "." CRLF.
END_OF_DATA = b"\r\n.\r\n"
#: RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including the CRLF.
TEXT_LINE_LIMIT = 998

_ANY_EOL = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(^|\r\n)\.")
_BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def _as_bytes(data: bytes | str) -> bytes:
    # surrogateescape gives back the original bytes of text read with that error handler.
    return data.encode("utf-8", errors="surrogateescape") if isinstance(data, str) else data


def normalise_line_endings(data: bytes | str) -> bytes:
    """Every bare LF and bare CR becomes CRLF; CRLF stays. Text is encoded as UTF-8.

    ``\\r\\r\\n`` is a bare CR followed by a CRLF, so it becomes two line ends.
    """
    return _ANY_EOL.sub(CRLF, _as_bytes(data))


def dot_stuff(message: bytes) -> bytes:
    """Double the leading ``.`` of every line (§4.5.2); lines are CRLF-terminated.

    Only CRLF starts a line: normalise first (`encode_message_for_data` does), or a bare
    LF followed by a dot goes out unstuffed — as the RFC says it should, since it is not a
    line end, but a lax server may see a line there.
    """
    return _LEADING_DOT.sub(rb"\1..", message)


def dot_unstuff(data: bytes) -> bytes:
    """What a server does: drop one leading ``.`` from every line of the received data.

    ``data`` is what came before the terminator; a line that is only ``.`` cannot occur in
    it (that is the terminator) and would become empty.
    """
    return _LEADING_DOT.sub(rb"\1", data)


def stuff_line(line: str) -> str:
    """One console line as it goes on the wire: ``.x`` → ``..x``, for "you typed / sent"."""
    return "." + line if line.startswith(".") else line


def is_end_of_data_line(line: str) -> bool:
    """Whether a line the student typed ends the message: exactly ``.``, nothing else.

    ``" ."`` or ``". "`` are ordinary text lines (sent as they are / dot-stuffed).
    """
    return line == "."


def encode_message_for_data(message: bytes | str) -> bytes:
    """The exact bytes to send after ``354``: normalised, stuffed, CRLF-ended, then ``.``.

    An empty message is just ``.\\r\\n``: the CRLF of the DATA command line is the first half
    of the terminator (§4.1.1.4).
    """
    body = dot_stuff(normalise_line_endings(message))
    if body and not body.endswith(CRLF):
        body += CRLF
    return body + b".\r\n"


@record(frozen=True)
class EndOfData:
    """A complete message as a server sees it once the terminator arrived."""

    message: bytes  # dot-unstuffed; ends in CRLF unless empty
    rest: bytes  # bytes after the terminator (the next, pipelined commands)
    size: int  # bytes received up to and including the terminator


class EndOfDataDetector:
    """Find the end of the mail data in a byte stream that arrives in chunks of any size.

    The terminator is ``CRLF . CRLF``, or ``. CRLF`` as the very first line (empty message);
    it may be split across any chunk boundary. A bare LF is not a line end, so ``\\n.\\n``
    does not end the message — the strict reading that defeats SMTP smuggling.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scanned = 0  # no terminator starts before this offset
        self._result: EndOfData | None = None

    @property
    def done(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> EndOfData | None:
        return self._result

    @property
    def received(self) -> int:
        """Bytes buffered so far (before the end is found)."""
        return len(self._buf)

    def feed(self, data: bytes) -> EndOfData | None:
        """Add received bytes; returns the message once the terminator is complete."""
        if self._result is not None:
            raise RuntimeError(
                "the message is already complete; feed EndOfData.rest to whatever comes next"
            )
        self._buf += data
        buf = self._buf
        if buf[:3] == b".\r\n":
            return self._complete(0, 3)
        if len(buf) < 3 and b".\r\n".startswith(bytes(buf)):
            return None  # could still become the empty-message terminator
        start = max(0, self._scanned)
        found = buf.find(END_OF_DATA, start)
        if found < 0:
            self._scanned = max(0, len(buf) - (len(END_OF_DATA) - 1))
            return None
        return self._complete(found + 2, found + len(END_OF_DATA))

    def _complete(self, message_end: int, terminator_end: int) -> EndOfData:
        buf = bytes(self._buf)
        self._result = EndOfData(
            message=dot_unstuff(buf[:message_end]),
            rest=buf[terminator_end:],
            size=terminator_end,
        )
        self._buf = bytearray()
        return self._result


def long_lines(message: bytes, limit: int = TEXT_LINE_LIMIT) -> list[int]:
    """1-based numbers of lines longer than ``limit`` octets, line ending not counted.

    Lines are split at CRLF, CR or LF — the lines as they will be sent after
    normalisation — so the check is right whether or not the caller normalised first.
    Dot-stuffing may add one octet on the wire; check the stuffed form if that matters.
    """
    lines = _ANY_EOL.split(message)
    if lines and lines[-1] == b"":
        lines.pop()  # the empty tail after a final line ending is not a line
    return [n for n, line in enumerate(lines, start=1) if len(line) > limit]


def bare_line_endings(data: bytes) -> list[int]:
    """Offsets of every CR not followed by LF and every LF not preceded by CR (§2.3.8)."""
    return [m.start() for m in _BARE.finditer(data)]
