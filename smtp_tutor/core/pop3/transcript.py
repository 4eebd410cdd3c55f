"""POP3 transcripts: the `C:`/`S:` format of docs/transcript.md, for a POP3 dialogue.

A transcript says which protocol it speaks in its first line, ``# protocol: pop3`` (no such
line: SMTP, so every older file keeps its meaning). The rest is the SMTP format's: ``C:``
lines are templates with placeholders (``C: PASS {password}``), directives are the same
(``@connect``, ``@tls``, ``@time``, ``@closed``), comments and blank lines are ignored.
Only ``S:`` lines differ, as POP3's responses do:

* a status line, ``S: +OK text``, ``S: -ERR [CODE] text``, ``S: + challenge`` or ``S: *``
  (any response), optionally ending in ``/regex/`` searched in the response's text;
* after a +OK (or ``*``) that answers a multiline command (LIST, UIDL, RETR, TOP, CAPA…),
  the body's lines as they were on the wire, byte-stuffed, then ``S: .``. A hand-written
  script may leave the body out (the status line alone); one that starts it must end it.

Which command a response answers, and so whether it has a body, is decided by the POP3
core's own `Dialogue` fed the script's lines, so the parser cannot disagree with the
console or replay. `Pop3Recorder` writes the format; secrets are placeholders, as for SMTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from smtp_tutor.core.placeholders import Placeholder, escape_line, snippet
from smtp_tutor.core.pop3.dialogue import Dialogue
from smtp_tutor.core.pop3.responses import Expect, Response, Status, body_lines, make_response
from smtp_tutor.core.recorder import TranscriptRecorder
from smtp_tutor.core.records import replace  # its items may be core.transcript records
from smtp_tutor.core.transcript import (
    DIRECTIVES,
    Directive,
    Send,
    TranscriptError,
    _compile,
    _Parser,
    _Problem,
    _template,
    format_duration,
    visible,
)

__all__ = [
    "PROTOCOL_HEADER",
    "Pop3Expect",
    "Pop3Recorder",
    "Pop3Script",
    "parse_pop3_script",
    "parse_pop3_transcript",
    "script_protocol",
]

PROTOCOL_HEADER = "# protocol: pop3"
_HEADER = re.compile(r"#[ \t]*protocol:[ \t]*(\S+)[ \t]*$", re.IGNORECASE)
_STATUS = re.compile(r"(\+OK|-ERR|\+|\*)(?=[ \t]|$)[ \t]?(.*)$", re.DOTALL)
_AUTH_HEAD = re.compile(r"^(\s*(?:PASS|AUTH[ \t]+\S+|APOP[ \t]+\S+))(?:[ \t]|$)", re.IGNORECASE)


def script_protocol(text: str) -> str:
    """``pop3`` or ``smtp``: what the first non-blank line's ``# protocol:`` says (SMTP if none).

    JSON Lines transcripts carry it as their first comment record (``"text":"protocol: pop3"``).
    """
    for line in text.removeprefix("\ufeff").splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("{"):
            found = re.search(r'"text"\s*:\s*"protocol:\s*([A-Za-z0-9]+)"', stripped)
            return found.group(1).lower() if found else "smtp"
        match = _HEADER.match(stripped)
        return match.group(1).lower() if match else "smtp"
    return "smtp"


# --------------------------------------------------------------------------- the script


@dataclass(frozen=True)
class Pop3Expect:
    """One server response and what replay checks about it.

    ``status`` is "+OK", "-ERR", "+" or "*" (any). Every pattern must be found in the
    response's text (its status line after the indicator; for a multiline response, then
    its body's lines too, joined by newlines). ``body`` holds the written body lines
    (None: none written); the body's text is informative, as the SMTP reply texts are.
    """

    line_no: int
    status: str
    patterns: tuple[re.Pattern[str], ...]
    text: str
    body: tuple[str, ...] | None
    end_line_no: int
    multiline: bool = False  # the command it answers expects a multiline +OK

    def describe(self) -> str:
        extra = "".join(f" /{p.pattern}/" for p in self.patterns)
        return (self.status if self.status != "*" else "any response") + extra

    def mismatch(self, response: Response) -> str | None:
        """Why ``response`` does not meet this expectation, or None when it does."""
        got = response.status.value if response.status is not None else "no +OK/-ERR"
        if self.status != "*" and got != self.status:
            return f"expected {self.status}, got {got} {snippet(response.text)}"
        if self.body is not None and response.ok and not response.multiline:
            return "expected a multiline response (ended by a lone '.'), got one line"
        text = response.text
        if response.multiline:
            text += "\n" + "\n".join(response.lines)
        for pattern in self.patterns:
            if pattern.search(text) is None:
                return f"expected the text to match /{pattern.pattern}/, got {snippet(text)}"
        return None


Pop3Item = Send | Pop3Expect | Directive


@dataclass(frozen=True)
class Pop3Script:
    source: str
    items: tuple[Pop3Item, ...]
    protocol: str = "pop3"

    @property
    def sends(self) -> tuple[Send, ...]:
        return tuple(i for i in self.items if isinstance(i, Send))

    @property
    def expects(self) -> tuple[Pop3Expect, ...]:
        return tuple(i for i in self.items if isinstance(i, Pop3Expect))

    @property
    def directives(self) -> tuple[Directive, ...]:
        return tuple(i for i in self.items if isinstance(i, Directive))


def pop3_variables_needed(script: Pop3Script) -> list[str]:
    return list(dict.fromkeys(name for send in script.sends for name in send.variables()))


@dataclass
class _Open:
    line_no: int
    status: str
    text: str
    patterns: list[re.Pattern[str]]
    body: list[str]
    multiline: bool


class _Pop3Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Pop3Item] = []
        self.dialogue = Dialogue()
        self.open: _Open | None = None  # a multiline response whose "S: ." has not come

    def parse(self, text: str) -> Pop3Script:
        lines = text.removeprefix("\ufeff").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for line_no, raw in enumerate(lines, 1):
            try:
                self.line(line_no, raw.removesuffix("\r"))
            except _Problem as exc:
                raise TranscriptError(str(exc), line_no, self.source) from None
        if self.open is not None:
            self.unfinished(len(lines))
        return Pop3Script(self.source, tuple(self.items))

    def line(self, line_no: int, line: str) -> None:
        if line.strip(" \t") == "" or line.startswith("#"):
            return
        if line.startswith("S:"):
            self.server(line_no, line[2:])
            return
        if self.open is not None:
            self.unfinished(line_no)
        if line.startswith("C:"):
            self.client(line_no, line[2:])
        elif line.startswith("@"):
            self.directive(line_no, line)
        else:
            raise _Problem(f"a line starts with 'C:', 'S:', '#' or '@', not {snippet(line[:20])}")

    def unfinished(self, line_no: int) -> None:
        """A body was begun but not ended; a status line alone (no body) is fine."""
        assert self.open is not None
        if self.open.body:
            raise TranscriptError(
                f"the multiline response at line {self.open.line_no} is not finished: "
                "end its body with 'S: .'",
                line_no,
                self.source,
            )
        self.finish(line_no, with_body=False)

    def client(self, line_no: int, body: str) -> None:
        if body[:1] in (" ", "\t"):
            body = body[1:]
        parts = _template(body)
        self.items.append(Send(line_no, body, parts))
        shown = "".join(p if isinstance(p, str) else p.render() for p in parts)
        self.dialogue.send(shown.replace("\r", " ").replace("\n", " "))

    def server(self, line_no: int, text: str) -> None:
        if self.open is not None:  # a body line, as on the wire (stuffed), or its end
            body = text[1:] if text[:1] in (" ", "\t") else text
            if body == ".":
                self.finish(line_no, with_body=True)
            else:
                self.open.body.append(body)
            return
        text = text.lstrip(" \t")
        match = _STATUS.fullmatch(text)
        if match is None:
            raise _Problem(
                f"an S: line starts with +OK, -ERR, '+' or * (or is a body line after a "
                f"multiline +OK), not {snippet(text[:12])}"
            )
        status, rest = match.group(1), match.group(2)
        patterns: list[re.Pattern[str]] = []
        regex = re.search(r"(?:^|[ \t])(/.*/)$", rest)
        if rest.startswith("/"):
            patterns.append(_compile(rest))
            rest = ""
        elif regex is not None and not rest.startswith("\\"):
            patterns.append(_compile(regex.group(1)))
            rest = rest[: regex.start()].rstrip()
        elif rest.startswith("\\"):
            rest = rest[1:]
        multiline = self._expects_multiline()
        self.open = _Open(line_no, status, rest, patterns, [], multiline)
        if not (multiline and status in ("+OK", "*")):
            self.finish(line_no, with_body=False)

    def _expects_multiline(self) -> bool:
        if not self.dialogue.greeted:
            return False
        in_flight = self.dialogue.in_flight
        return bool(in_flight) and in_flight[0].expect is Expect.MULTILINE

    def finish(self, line_no: int, *, with_body: bool) -> None:
        open_ = self.open
        assert open_ is not None
        self.open = None
        body = tuple(open_.body) if with_body else None
        self.items.append(
            Pop3Expect(
                open_.line_no,
                open_.status,
                tuple(open_.patterns),
                open_.text,
                body,
                line_no,
                open_.multiline,
            )
        )
        status = {"+OK": Status.OK, "-ERR": Status.ERR, "+": Status.CONTINUE}.get(
            open_.status, Status.OK
        )
        multiline = open_.multiline and status is Status.OK
        unstuffed = b"".join(
            (line[1:] if line.startswith(".") else line).encode("utf-8", "surrogateescape")
            + b"\r\n"
            for line in (body or ())
        )
        response = make_response(status, open_.text, unstuffed if multiline else None)
        self.dialogue.receive(response.raw)

    def directive(self, line_no: int, line: str) -> None:
        match = re.fullmatch(r"@(\S*)(?:[ \t]+(.*))?", line, re.DOTALL)
        name = match.group(1) if match else ""
        rest = (match.group(2) or "").rstrip() if match else ""
        if not name:
            raise _Problem("a directive needs a name after '@' (e.g. @connect)")
        if name not in DIRECTIVES:
            known = ", ".join("@" + d for d in sorted(DIRECTIVES))
            raise _Problem(f"unknown directive {snippet('@' + name)} (known: {known})")
        args = tuple(rest.split())
        if name == "connect":
            _Parser.check_connect(args)
            if any(isinstance(i, Directive) and i.name == "connect" for i in self.items):
                self.dialogue = Dialogue()
            if len(args) == 3:
                self.dialogue.tls_at_connect()
        elif name == "tls":
            if len(args) > 2:
                raise _Problem("@tls takes at most a version and a cipher")
            self.dialogue.tls_established()
        elif name == "time" and len(args) != 1:
            raise _Problem("@time takes one duration, e.g. @time 12ms")
        self.items.append(Directive(line_no, name, args, rest))


def parse_pop3_transcript(text: str, source: str = "<transcript>") -> Pop3Script:
    """Read a POP3 transcript; `TranscriptError` (with ``line_no``) for anything malformed."""
    return _Pop3Parser(source).parse(text)


def parse_pop3_script(text: str, source: str = "<transcript>") -> Pop3Script:
    """A POP3 transcript in either form, text or JSON Lines, told apart by its content."""
    from smtp_tutor.core.transcript_jsonl import at_record, is_jsonl, jsonl_text

    if not is_jsonl(text):
        return parse_pop3_transcript(text, source)
    rendered, origin = jsonl_text(text, source, server=_jsonl_response)
    try:
        script = parse_pop3_transcript(rendered, source)
    except TranscriptError as exc:
        raise at_record(exc, origin, source) from None

    def record_line(line_no: int) -> int:
        return origin[line_no - 1] if 0 < line_no <= len(origin) else line_no

    items: list[Pop3Item] = []
    for item in script.items:
        moved = replace(item, line_no=record_line(item.line_no))
        if isinstance(moved, Pop3Expect):
            moved = replace(moved, end_line_no=record_line(moved.end_line_no))
        items.append(moved)
    return Pop3Script(source, tuple(items))


def _jsonl_response(record: dict[str, Any]) -> list[str]:
    """The text lines `Pop3Recorder` writes for one S record: its raw bytes if it has them
    (the body in wire form), else its status, text and body lines."""
    from smtp_tutor.core.auth import AuthError, b64decode_bytes
    from smtp_tutor.core.transcript_jsonl import record_field

    status = record_field(record, "status", str, "a POP3 S record")
    text = record_field(record, "text", str, "a POP3 S record")
    if status not in ("+OK", "-ERR", "+", "*"):
        raise ValueError(
            f'a POP3 S record: \'status\' must be "+OK", "-ERR", "+" or "*", not {status[:20]!r}'
        )
    shown = visible(text)
    if shown.startswith(("/", "\\")) or shown.endswith("/"):
        shown = "\\" + shown
    lines = [f"S: {status} {shown}".rstrip(" ")]
    encoded = record.get("bytes")
    if isinstance(encoded, str):
        try:
            wire = body_lines(b64decode_bytes(encoded))[1:]  # after the status line
        except AuthError:
            raise ValueError("a POP3 S record: 'bytes' is not base64") from None
        body = [line.decode("utf-8", errors="replace") for line in wire]
    else:
        texts = record.get("lines") or []
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ValueError("a POP3 S record: 'lines' must be a list of strings")
        body = ["." + t if t.startswith(".") else t for t in texts] + (["."] if texts else [])
    lines += [f"S: {visible(line)}".rstrip(" ") for line in body]
    if body and body[-1] != ".":
        lines.append("S: .")  # the connection closed inside the body
    return lines


# --------------------------------------------------------------------------- the recorder


class Pop3Recorder(TranscriptRecorder):
    """`TranscriptRecorder` for POP3: the protocol header first, responses as POP3 writes them.

    A secret line keeps its head (``PASS``, ``APOP user``, ``AUTH PLAIN``) and the
    placeholder stands for the rest: ``C: PASS {password}``. The real line is kept nowhere.
    """

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.comment(PROTOCOL_HEADER.removeprefix("# "))

    def sent(self, line: str, secret: Placeholder | None = None) -> None:
        if secret is None:
            super().sent(line)
            return
        head = _AUTH_HEAD.match(line)
        written = (escape_line(head.group(1)) + " " if head else "") + secret.render()
        self._add(f"C: {written}\n", "C", bytes=None, text=None, line=written, secret=True)

    def received(self, reply: object, latency: float | None = None) -> None:  # type: ignore[override]
        """One POP3 `Response`: its status line, and for a multiline one its body and "."."""
        assert isinstance(reply, Response)
        response = reply
        chunk: list[str] = []
        if response.problems:
            problems = "; ".join(str(p) for p in response.problems)
            chunk.append(f"# malformed response: {visible(problems)}\n")
        if self.timing and latency is not None and latency >= 0:
            chunk.append(f"@time {format_duration(latency)}\n")
        status = response.status.value if response.status is not None else "*"
        text = visible(response.text)
        if text.startswith(("/", "\\")) or text.endswith("/"):
            text = "\\" + text
        chunk.append(f"S: {status} {text}".rstrip(" ") + "\n")
        if response.multiline:
            raw_lines = body_lines(response.raw)[1:]  # the wire form: stuffed, "." last
            for line in raw_lines:
                shown = visible(line.decode("utf-8", errors="replace"))
                chunk.append(f"S: {shown}".rstrip(" ") + "\n")
            if not raw_lines or raw_lines[-1] != b".":
                chunk.append("S: .\n")  # the connection closed inside the body
        self._add(
            "".join(chunk),
            "S",
            bytes=_b64(response.raw),
            status=status,
            code=None,
            enhanced=response.code,
            text=response.text,
            lines=list(response.lines),
            latency=latency,
            problems=[str(p) for p in response.problems],
        )


def _b64(data: bytes) -> str:
    from smtp_tutor.core.auth import b64encode_bytes

    return b64encode_bytes(data)
