"""Recording a live session as a transcript, event by event, so that nothing is lost.

* `TranscriptRecorder` is told every event of a live session and renders each one at once
  to a text chunk and a JSON object; `text()`/`jsonl()` join them, `attach()` streams them to
  an open file as they happen, so a killed console loses nothing.
* A line with a secret is handed over with its `Placeholder`, and only that is kept.
* Message lines are dot-stuffed exactly as sent; a BDAT chunk is written line by line, cut
  at its size, so replay sends the same bytes.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, TextIO, overload

from smtp_tutor.core.auth import b64encode_bytes
from smtp_tutor.core.patterns import LazyPattern
from smtp_tutor.core.placeholders import Placeholder, escape_line
from smtp_tutor.core.records import record
from smtp_tutor.core.replies import Reply
from smtp_tutor.core.transcript import (
    directive_word,
    format_duration,
    tls_directive,
    visible,
    wire_bytes,
)

__all__ = ["TranscriptRecorder"]

Format = Literal["text", "jsonl"]

_AUTH_HEAD = LazyPattern(r"^(\s*AUTH[ \t]+\S+)(?:[ \t]|$)", re.IGNORECASE)


@overload
def _clean(text: str) -> str: ...
@overload
def _clean(text: None) -> None: ...
def _clean(text: str | None) -> str | None:
    """Valid Unicode for JSON (lone surrogates replaced); the exact bytes go in "bytes"."""
    if text is None:
        return None
    return text.encode("utf-8", errors="replace").decode("utf-8")


@record(frozen=True)
class _Event:
    text: str  # the chunk of the text transcript, lines ending in "\n"
    record: dict[str, Any]  # the JSON object


class TranscriptRecorder:
    """Collects a session's events as transcript text and JSON Lines, secrets left out.

    ``clock`` gives seconds (monotonic); JSON ``t`` is the time since the recorder was made.
    With ``timing``, a reply given a latency is preceded by ``@time 12ms``.
    """

    def __init__(
        self, *, timing: bool = False, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.timing = timing
        self._clock = clock
        self._start = clock()
        self._events: list[_Event] = []
        self._attached: list[tuple[TextIO, Format]] = []
        self._in_data = False  # after a 354, until "." or the next reply: for JSON "data"

    # -- events

    def comment(self, text: str) -> None:
        lines = text.splitlines() or [""]
        chunk = "".join(f"# {visible(line)}".rstrip() + "\n" for line in lines)
        self._add(chunk, "event", event="comment", text=_clean(text))

    def connected(self, host: str, port: int, implicit_tls: bool = False) -> None:
        tls = " tls" if implicit_tls else ""
        chunk = f"@connect {directive_word(host)} {int(port)}{tls}\n"
        self._add(chunk, "event", event="connect", host=_clean(host), port=port, tls=implicit_tls)

    def tls_started(self, version: str | None, cipher: str | None) -> None:
        chunk = tls_directive(version, cipher) + "\n"
        self._add(chunk, "event", event="tls", version=_clean(version), cipher=_clean(cipher))

    def sent(self, line: str, secret: Placeholder | None = None) -> None:
        """A line put on the wire (without CRLF); message lines dot-stuffed, as sent.

        With ``secret``, only the line's ``AUTH <mechanism>`` head (if it has one) is kept and
        the placeholder stands for the rest; the real line is not stored anywhere.
        """
        if secret is None:
            written = escape_line(line)
            self._add(
                f"C: {written}".rstrip(" ") + "\n",
                "C",
                bytes=b64encode_bytes(wire_bytes(line)),
                text=_clean(line),
                line=written,
                secret=False,
            )
            return
        head = _AUTH_HEAD.match(line)
        written = (escape_line(head.group(1)) + " " if head else "") + secret.render()
        self._add(f"C: {written}\n", "C", bytes=None, text=None, line=written, secret=True)

    def sent_chunk(self, command: str, chunk: bytes) -> None:
        """A BDAT command and its chunk (RFC 3030), which replay can send again exactly.

        The chunk goes in C: lines, each standing for its text and CRLF; the last line
        holds only what is left of the size, so a chunk may end anywhere, even between CR
        and LF. No dot-stuffing: BDAT has none.
        """
        self.sent(command)
        pieces = chunk.split(b"\r\n")
        if pieces[-1] == b"":  # the chunk ends with CRLF, or is empty
            pieces.pop()
        position = 0
        for piece in pieces:
            held = chunk[position : position + len(piece) + 2]
            position += len(held)
            line = piece.decode("utf-8", errors="surrogateescape")
            written = escape_line(line)
            self._add(
                f"C: {written}".rstrip(" ") + "\n",
                "C",
                bytes=b64encode_bytes(held),
                text=_clean(line),
                line=written,
                secret=False,
                chunk=True,
            )

    def sent_data(self, data: bytes) -> None:
        """Bytes put on the wire in one piece (a whole message after 354), line by line."""
        pieces = data.split(b"\r\n")
        if pieces and pieces[-1] == b"":
            pieces.pop()
        for piece in pieces:
            self.sent(piece.decode("utf-8", errors="surrogateescape"))

    def received(self, reply: Reply, latency: float | None = None) -> None:
        chunk: list[str] = []
        if reply.problems:
            chunk.append(f"# malformed reply: {visible('; '.join(reply.problems))}\n")
        if latency is not None and not math.isfinite(latency):
            latency = None
        if self.timing and latency is not None:
            chunk.append(f"@time {format_duration(latency)}\n")
        code = f"{reply.code:03d}" if reply.code is not None and 0 <= reply.code <= 999 else "*"
        lines = reply.lines or ("",)
        for index, text in enumerate(lines):
            shown = visible(text)
            if shown.startswith(("/", "\\")):
                shown = "\\" + shown
            separator = "-" if index < len(lines) - 1 else " "
            chunk.append(f"S: {code}{separator}{shown}".rstrip(" ") + "\n")
        self._add(
            "".join(chunk),
            "S",
            bytes=b64encode_bytes(reply.raw),
            code=reply.code,
            enhanced=reply.enhanced,
            text=_clean(reply.text),
            lines=[_clean(line) for line in reply.lines],
            latency=latency,
            problems=list(reply.problems),
        )

    def closed(self, reason: str | None = None) -> None:
        shown = " ".join(visible(reason or "").split())
        self._add(
            f"@closed {shown}".rstrip() + "\n", "event", event="closed", reason=_clean(reason)
        )

    # -- output

    def text(self) -> str:
        return "".join(event.text for event in self._events)

    def jsonl(self) -> str:
        return "".join(_json_line(event.record) for event in self._events)

    def render(self, format: Format = "text") -> str:
        if format == "text":
            return self.text()
        if format == "jsonl":
            return self.jsonl()
        raise ValueError(f"unknown transcript format {format!r} (text or jsonl)")

    def attach(self, file: TextIO, format: Format = "text") -> None:
        """Write everything so far to ``file``, then each event as it happens, flushed.

        A file that fails to write is detached and its error raised from the event call.
        """
        if format not in ("text", "jsonl"):
            raise ValueError(f"unknown transcript format {format!r} (text or jsonl)")
        self._attached.append((file, format))
        self._emit(file, format, self._events)

    def detach(self, file: TextIO) -> None:
        self._attached = [(f, fmt) for f, fmt in self._attached if f is not file]

    # -- internals

    def _add(self, rendered: str, direction: str, **fields: Any) -> None:
        record: dict[str, Any] = {
            "t": round(self._clock() - self._start, 6),
            "dir": direction,
            "event": None,
            "code": None,
            "enhanced": None,
            "bytes": None,
        }
        if direction == "C":
            record["data"] = self._in_data
            if self._in_data and fields.get("line") == ".":
                self._in_data = False
        elif direction == "S":
            self._in_data = fields.get("code") == 354
        elif fields.get("event") in ("connect", "closed"):
            self._in_data = False
        record.update(fields)
        event = _Event(rendered, record)
        self._events.append(event)
        for file, format in list(self._attached):
            self._emit(file, format, [event])

    def _emit(self, file: TextIO, format: Format, events: Iterable[_Event]) -> None:
        try:
            for event in events:
                file.write(event.text if format == "text" else _json_line(event.record))
            file.flush()
        except (OSError, ValueError):
            self.detach(file)
            raise


_LINE_BREAKERS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _json_line(record: dict[str, Any]) -> str:
    """One JSON object on one line, even for readers that split on Unicode line breaks."""
    import json  # only for a JSON Lines transcript

    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_LINE_BREAKERS) + "\n"
