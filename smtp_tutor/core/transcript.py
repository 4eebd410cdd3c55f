"""Transcripts: a session written down the way RFC 5321 writes its examples, and read back.

One text format serves three readers: a human (it looks like the RFC's ``C:``/``S:``
examples), the pygments lexer (`smtp_tutor.lexer`) and `smtp-tutor replay`, which sends the
``C:`` lines again and checks each ``S:`` reply. docs/transcript.md has the full grammar.

Theory of operation:

* ``C:`` lines are templates (`smtp_tutor.core.placeholders`), so a secret is written as the
  placeholder that builds it; `resolve` computes the real line again from variables.
* A BDAT chunk (RFC 3030) is bytes, not lines: after ``C: BDAT 120``, ``C:`` lines hold the
  chunk, each standing for its text and CRLF, cut at the announced size - so a chunk that
  ends inside a line, or between CR and LF, is written and replayed exactly.
* `parse_transcript` turns text into a `Script` of `Send`, `Expect` and `Directive` items,
  each with its line number; any mistake is one `TranscriptError` with ``file:line: why``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from smtp_tutor.core.command_line import wire_bytes
from smtp_tutor.core.patterns import LazyPattern
from smtp_tutor.core.placeholders import (
    MissingVariable,
    Placeholder,
    ResolveError,
    needs_escape,
    parse_template,
    quote,
    snippet,
)
from smtp_tutor.core.records import record
from smtp_tutor.core.replies import Reply

__all__ = [
    "DIRECTIVES",
    "Directive",
    "Expect",
    "Item",
    "Script",
    "Send",
    "TranscriptError",
    "directive_word",
    "format_duration",
    "parse_duration",
    "parse_transcript",
    "resolve",
    "tls_directive",
    "variables_needed",
    "visible",
    "wire_bytes",
]

#: Directives a transcript may use; anything else is a mistake, not an extension.
DIRECTIVES: frozenset[str] = frozenset({"connect", "tls", "time", "closed"})

_DURATION = LazyPattern(r"([0-9]+(?:\.[0-9]+)?)(ms|s)")
_S_LINE = LazyPattern(r"([0-9]{3}|[0-9][xX][xX]|\*)([ -]|$)(.*)", re.DOTALL)
_BDAT = LazyPattern(r"[ \t]*BDAT[ \t]+([0-9]{1,15})(?:[ \t]+LAST)?[ \t]*", re.IGNORECASE)


# --------------------------------------------------------------------------- errors


class TranscriptError(ValueError):
    """A transcript that cannot be read; str() is ``source:line: message`` on one line."""

    def __init__(self, message: str, line_no: int, source: str = "<transcript>") -> None:
        self.message = message
        self.line_no = line_no
        self.source = source
        super().__init__(f"{source}:{line_no}: {message}")


class _Problem(Exception):
    """A syntax problem inside one line; the caller adds the line number."""


# --------------------------------------------------------------------------- script items


@record(frozen=True)
class Send:
    """A ``C:`` line: what to send (after resolving its placeholders), without CRLF."""

    line_no: int
    text: str  # as written after "C: " (template syntax)
    parts: tuple[str | Placeholder, ...]
    data: bool = False  # message content between a 354 and the lone "."
    # BDAT chunk data: how many bytes of the line and its CRLF belong to the chunk (the
    # chunk's last line may hold only part of them), and whether the chunk ends here.
    chunk: int | None = None
    chunk_ends: bool = False

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.parts if isinstance(p, Placeholder))

    @property
    def end_of_data(self) -> bool:
        return self.data and self.parts == (".",)

    def variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for p in self.placeholders for n in p.variables()))

    @property
    def content(self) -> bool:
        """Message bytes rather than a command: DATA content or BDAT chunk data."""
        return self.data or self.chunk is not None

    def chunk_bytes(self) -> bytes:
        """The bytes of a BDAT chunk this line stands for (its text and CRLF, cut)."""
        if self.chunk is None:
            raise ValueError("not a line of BDAT chunk data")
        return wire_bytes(resolve(self, {}))[: self.chunk]


@record(frozen=True)
class Expect:
    """One server reply (one or more ``S:`` lines) and what replay checks about it.

    ``code`` set: exactly that code; ``code_class`` ("2xx"): any code of the class; both
    None (``S: *``): any reply. Every pattern must be found (``re.search``) in the reply's
    text, its lines joined by newlines. The recorded text itself is never compared.
    """

    line_no: int
    code: int | None
    code_class: str | None
    patterns: tuple[re.Pattern[str], ...]
    lines: tuple[str, ...]  # the text after the code on each S: line, as written
    end_line_no: int

    def describe(self) -> str:
        head = str(self.code) if self.code is not None else self.code_class or "any reply"
        extra = "".join(f" /{p.pattern}/" for p in self.patterns)
        return head + extra

    def mismatch(self, reply: Reply) -> str | None:
        """Why ``reply`` does not meet this expectation, or None when it does."""
        got = "no valid code" if reply.code is None else str(reply.code)
        if self.code is not None and reply.code != self.code:
            return f"expected {self.code}, got {got}"
        if self.code_class is not None and (
            reply.code is None or reply.code // 100 != int(self.code_class[0])
        ):
            return f"expected {self.code_class}, got {got}"
        for pattern in self.patterns:
            if pattern.search(reply.text) is None:
                return f"expected the text to match /{pattern.pattern}/, got {snippet(reply.text)}"
        return None

    def matches(self, reply: Reply) -> bool:
        return self.mismatch(reply) is None


@record(frozen=True)
class Directive:
    """A connection event: ``@connect HOST PORT [tls]``, ``@tls``, ``@time``, ``@closed``."""

    line_no: int
    name: str
    args: tuple[str, ...]
    rest: str = ""  # everything after the name, for @closed's free-text reason


Item = Send | Expect | Directive


@record(frozen=True)
class Script:
    source: str
    items: tuple[Item, ...]

    @property
    def sends(self) -> tuple[Send, ...]:
        return tuple(i for i in self.items if isinstance(i, Send))

    @property
    def expects(self) -> tuple[Expect, ...]:
        return tuple(i for i in self.items if isinstance(i, Expect))

    @property
    def directives(self) -> tuple[Directive, ...]:
        return tuple(i for i in self.items if isinstance(i, Directive))


def variables_needed(script: Script) -> list[str]:
    """Every variable the script's placeholders use, in order of first use."""
    return list(dict.fromkeys(name for send in script.sends for name in send.variables()))


def resolve(
    send: Send,
    variables: Mapping[str, str],
    last_reply: Reply | None = None,
    *,
    challenge: str | None = None,
) -> str:
    """The line to send, placeholders computed; `MissingVariable` lists every name lacking.

    ``last_reply`` is the reply received just before (CRAM-MD5 answers its 334 challenge);
    POP3 gives ``challenge`` itself, its greeting's APOP timestamp.
    """
    missing = [name for name in send.variables() if name not in variables]
    if missing:
        raise MissingVariable(*missing)
    if challenge is None and last_reply is not None and last_reply.code == 334:
        challenge = last_reply.text
    return "".join(
        part if isinstance(part, str) else part.compute(variables, challenge) for part in send.parts
    )


def parse_duration(text: str) -> float:
    """Seconds in an ``@time`` argument (``12ms``, ``0.4ms``, ``1.5s``); ValueError if bad."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r} (write e.g. 12ms or 1.5s)")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


def format_duration(seconds: float) -> str:
    """An ``@time`` argument that `parse_duration` reads back: 0.4ms, 12ms, 1.5s."""
    ms = max(seconds, 0.0) * 1000
    if ms < 10:
        return f"{ms:.1f}ms"
    if ms < 10_000:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.1f}s"


def visible(text: str) -> str:
    """Text for a comment, an S: line or a directive: one line, nothing an editor mangles."""
    return "".join(quote(ch)[1:-1] if needs_escape(ch) and ch != "\t" else ch for ch in text)


def directive_word(text: str | None) -> str:
    """One word for a directive argument; "?" when unknown."""
    shown = "".join("_" if ch.isspace() else ch for ch in visible(text or ""))
    return shown or "?"


def tls_directive(version: str | None, cipher: str | None) -> str:
    """The ``@tls`` line of a handshake: its version and cipher as words, when known."""
    if cipher:
        words = [directive_word(version), directive_word(cipher)]
    else:
        words = [directive_word(version)] if version else []
    return " ".join(["@tls", *words])


# --------------------------------------------------------------------------- parser


@record
class _OpenReply:
    first_line: int
    last_line: int
    code: str  # as written: "250", "2xx", "*"
    lines: list[str]
    patterns: list[re.Pattern[str]]


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Item] = []
        self.reply: _OpenReply | None = None  # a multiline reply still waiting for its end
        self.in_data = False
        self.last_verb = ""
        self.chunk_left = 0  # bytes of BDAT chunk data still to come in C: lines
        self.chunk_started = 0  # the BDAT line's number, for errors
        self.chunk_size = 0

    def error(self, line_no: int, message: str) -> TranscriptError:
        return TranscriptError(message, line_no, self.source)

    def parse(self, text: str) -> Script:
        text = text.removeprefix("\ufeff")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for line_no, raw in enumerate(lines, 1):
            line = raw.removesuffix("\r")
            try:
                self.line(line_no, line)
            except _Problem as exc:
                raise self.error(line_no, str(exc)) from None
        if self.reply is not None:
            raise self.error(self.reply.last_line, _UNFINISHED.format(code=self.reply.code))
        if self.chunk_left:
            raise self.error(len(lines), self.chunk_short())
        return Script(self.source, tuple(self.items))

    def chunk_short(self) -> str:
        held = self.chunk_size - self.chunk_left
        return (
            f"the BDAT at line {self.chunk_started} announced {self.chunk_size} bytes of chunk "
            f"data, but the C: lines after it hold only {held} (each stands for its text and "
            "CRLF)"
        )

    def line(self, line_no: int, line: str) -> None:
        if line.strip(" \t") == "" or line.startswith("#"):
            return
        if line.startswith("S:"):
            self.server(line_no, line[2:].lstrip(" \t"))
            return
        if self.reply is not None:
            raise self.error(self.reply.last_line, _UNFINISHED.format(code=self.reply.code))
        if line.startswith("C:"):
            self.client(line_no, line[2:])
        elif line.startswith("@"):
            if self.chunk_left:
                raise _Problem(self.chunk_short())
            self.directive(line_no, line)
        else:
            raise _Problem(f"a line starts with 'C:', 'S:', '#' or '@', not {snippet(line[:20])}")

    def client(self, line_no: int, body: str) -> None:
        if body[:1] in (" ", "\t"):
            body = body[1:]
        if self.chunk_left:
            self.chunk_line(line_no, body)
            return
        send = Send(line_no, body, _template(body), data=self.in_data)
        self.items.append(send)
        if self.in_data:
            if send.end_of_data:
                self.in_data = False
            return
        words = body.split(maxsplit=1)
        self.last_verb = words[0].upper() if words else ""
        bdat = _BDAT.fullmatch(body) if self.last_verb == "BDAT" else None
        if bdat is not None:
            self.chunk_left = self.chunk_size = int(bdat.group(1))
            self.chunk_started = line_no

    def chunk_line(self, line_no: int, body: str) -> None:
        parts = _template(body)
        try:
            text = resolve(Send(line_no, body, parts), {})
        except ResolveError:
            raise _Problem(
                "a placeholder cannot stand in BDAT chunk data: the chunk's size is fixed, so "
                "write the text itself"
            ) from None
        take = min(len(wire_bytes(text)), self.chunk_left)
        self.chunk_left -= take
        self.items.append(Send(line_no, body, parts, chunk=take, chunk_ends=self.chunk_left == 0))

    def server(self, line_no: int, body: str) -> None:
        match = _S_LINE.fullmatch(body)
        if match is None:
            if not body:
                raise _Problem("S: line without a reply code")
            found = snippet(body[:12])
            head = re.match(r"[0-9]{3}|[0-9][xX][xX]|\*", body)
            if head:
                raise _Problem(f"expected a space or '-' after {head.group()!r}, found {found}")
            raise _Problem(
                f"an S: line starts with a reply code (250), a class (2xx) or *, not {found}"
            )
        code, separator, text = match.group(1).lower(), match.group(2), match.group(3)
        if self.chunk_left:
            raise _Problem(self.chunk_short())
        self.in_data = False
        pattern = None
        if text.startswith("/"):
            pattern = _compile(text)
        elif text.startswith("\\"):
            text = text[1:]
        reply = self.reply
        if reply is None:
            reply = self.reply = _OpenReply(line_no, line_no, code, [], [])
        elif reply.code != code:
            raise _Problem(
                f"this line has {code} but the reply started at line {reply.first_line} with "
                f"{reply.code}; one reply has one code"
            )
        reply.last_line = line_no
        reply.lines.append(text)
        if pattern is not None:
            reply.patterns.append(pattern)
        if separator != "-":
            self.reply = None
            self.finish(reply)

    def finish(self, reply: _OpenReply) -> None:
        number = int(reply.code) if reply.code.isdigit() else None
        code_class = reply.code if reply.code.endswith("xx") else None
        self.items.append(
            Expect(
                reply.first_line,
                number,
                code_class,
                tuple(reply.patterns),
                tuple(reply.lines),
                reply.last_line,
            )
        )
        # As in the lexer: a final 354 starts message content (2xx/3xx forms only after DATA).
        self.in_data = number == 354 or (code_class == "3xx" and self.last_verb == "DATA")

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
            self.check_connect(args)
            self.in_data = False
        elif name == "tls" and len(args) > 2:
            raise _Problem("@tls takes at most a version and a cipher")
        elif name == "time":
            if len(args) != 1:
                raise _Problem("@time takes one duration, e.g. @time 12ms")
            try:
                parse_duration(args[0])
            except ValueError as exc:
                raise _Problem(str(exc)) from None
        elif name == "closed":
            self.in_data = False
        self.items.append(Directive(line_no, name, args, rest))

    @staticmethod
    def check_connect(args: tuple[str, ...]) -> None:
        if len(args) not in (2, 3):
            raise _Problem("@connect takes HOST PORT and optionally tls")
        port = args[1]
        if not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
            raise _Problem(f"@connect: {snippet(port)} is not a port number (0-65535)")
        if len(args) == 3 and args[2] != "tls":
            raise _Problem(f"@connect: the third word may only be 'tls', not {snippet(args[2])}")


_UNFINISHED = (
    "the reply is not finished: its last S: line needs a space after the code "
    "({code} text), not '-'"
)


def _template(text: str) -> tuple[str | Placeholder, ...]:
    """`parse_template`, its error a problem of this line."""
    try:
        return parse_template(text)
    except ValueError as exc:
        raise _Problem(str(exc)) from None


def _compile(text: str) -> re.Pattern[str]:
    if len(text) < 2 or not text.endswith("/"):
        raise _Problem(
            f"unterminated /regex/ {snippet(text)}: it must end with '/' "
            "(a reply text that starts with '/' is written with a backslash: \\/)"
        )
    try:
        return re.compile(text[1:-1])
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise _Problem(f"invalid regex {snippet(text)}: {' '.join(str(exc).split())}") from None


def parse_transcript(text: str, source: str = "<transcript>") -> Script:
    """Read a transcript; `TranscriptError` (with ``line_no``) for anything malformed."""
    return _Parser(source).parse(text)
