"""Sequence diagrams of transcripts: an SVG (or an HTML page around it) of who said what.

A transcript is easy to replay but hard to *see*; a teacher wants the dialogue on a slide.
Theory of operation:

* `_Builder` walks a parsed `Script` once and turns it into rows (arrows and notes) and
  background bands (the TLS stretch, the authenticated stretch). It decides no SMTP state
  itself: a `Dialogue` follows the script (`core.transcript_dialogue`) and says which line
  answers an AUTH challenge and which reply authenticated. The builder draws: message
  content collapsed into one arrow, who authenticated, which AUTH answers are credentials.
* `_Layout` gives every row a height and a y position; `render_svg` then writes the SVG as
  plain strings. No browser, no drawing library: the output is made by our own code, every
  text escaped for XML, every character XML 1.0 cannot carry shown as an escape.
* Secrets never appear. Placeholders (``{base64 password}``) are drawn as written, and a
  credential that a hand-written transcript carries in clear is drawn as ``********``.
* Text widths are estimated (monospace cells, wide East Asian characters count two), so
  long lines are cut with ``…``; the full text is in each arrow's ``<title>`` tooltip.
"""

from __future__ import annotations

import html
import os
import secrets
import sys
import unicodedata
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from pathlib import Path
from typing import BinaryIO, Literal, TextIO
from xml.sax.saxutils import escape, quoteattr

from smtp_tutor.core.auth import AuthError, b64decode_bytes, parse_challenge, user_in_answer
from smtp_tutor.core.dialogue import AUTH_RESPONSE, Outcome
from smtp_tutor.core.placeholders import Placeholder, Variable
from smtp_tutor.core.redaction import mask
from smtp_tutor.core.transcript import Directive, Expect, Script, Send
from smtp_tutor.core.transcript_dialogue import TranscriptDialogue
from smtp_tutor.core.transcript_jsonl import parse_script

__all__ = [
    "COLOURS",
    "FONT_FAMILY",
    "MONO_FAMILY",
    "STDIO",
    "SUFFIXES",
    "DiagramError",
    "DiagramWriteError",
    "render_html",
    "render_svg",
    "write_diagram",
]

#: Fonts with Chinese glyphs are listed so a browser (or cairo) can draw 你好 without boxes.
FONT_FAMILY = "DejaVu Sans, Noto Sans CJK SC, WenQuanYi Micro Hei, Microsoft YaHei, sans-serif"
MONO_FAMILY = (
    "DejaVu Sans Mono, Noto Sans Mono CJK SC, Noto Sans CJK SC, WenQuanYi Micro Hei Mono, "
    "WenQuanYi Micro Hei, Microsoft YaHei, monospace"
)

#: Reply colours by class, as the console shows them (green, cyan, amber, red, magenta),
#: darkened enough to read on white.
COLOURS: dict[str, str] = {
    "2xx": "#2e7d32",
    "3xx": "#00838f",
    "4xx": "#b26a00",
    "5xx": "#c62828",
    "malformed": "#b0179a",
    "any": "#616161",
}
_COMMAND = "#263238"
_MESSAGE = "#455a64"
_PLACEHOLDER = "#5e35b1"
_DIM = "#757575"
_LIFELINE = "#9e9e9e"
_TLS_FILL, _TLS_EDGE, _TLS_TEXT = "#e6f4ea", "#9fd3b0", "#1b5e20"
_AUTH_FILL, _AUTH_EDGE, _AUTH_TEXT = "#fdf1d3", "#e6c463", "#7a5200"

#: Output suffixes `write_diagram` knows.
SUFFIXES: dict[str, Literal["svg", "html"]] = {".svg": "svg", ".html": "html", ".htm": "html"}
#: The file name that means standard input (for the transcript) or output (for the diagram).
STDIO = "-"

_CLASS_NAMES = {
    "2xx": "2xx success",
    "3xx": "3xx go on",
    "4xx": "4xx try again later",
    "5xx": "5xx failed",
    "malformed": "malformed reply",
}

# Geometry, in SVG user units (pixels).
_WIDTH = 920
_CLIENT_X = 150
_SERVER_X = 780
_LABEL_X = _CLIENT_X + 14
_MONO_SIZE = 13
_MONO_CELL = _MONO_SIZE * 0.6  # DejaVu Sans Mono advance; CJK counts two cells
_SANS_SIZE = 12
_SANS_CELL = _SANS_SIZE * 0.62  # a generous average for proportional text
_LINE_H = 17
_HEAD_TOP = 62
_HEAD_H = 38
_MAX_REPLY_LINES = 8  # more than this: the first ones, then "(+N lines)"
_TOOLTIP_MESSAGE_LINES = 40
_MASK = "********"


class DiagramError(ValueError):
    """Bad input for a diagram (suffix, unreadable transcript); str() is one line."""


class DiagramWriteError(OSError):
    """The diagram could not be written; str() is one line."""


# --------------------------------------------------------------------------- text helpers

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _visible(text: str) -> str:
    """Text every XML parser accepts and no reader is fooled by: controls shown as escapes."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif (
            unicodedata.category(ch) in ("Cc", "Cs")
            or ch in _BIDI
            or ch in "\u2028\u2029\ufeff"
            or code in (0xFFFE, 0xFFFF)
        ):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _cells(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _width(text: str) -> int:
    return sum(_cells(ch) for ch in text)


Segment = tuple[str, str]  # (text, style): "text", "code", "placeholder", "dim"


def _truncate(segments: list[Segment], limit: int) -> tuple[list[Segment], bool]:
    """Cut segments to ``limit`` cells, ending in "…" when anything was left out."""
    if sum(_width(text) for text, _ in segments) <= limit:
        return segments, False
    out: list[Segment] = []
    room = limit - 1
    for text, style in segments:
        kept: list[str] = []
        for ch in text:
            cost = _cells(ch)
            if cost > room:
                break
            kept.append(ch)
            room -= cost
        else:
            out.append((text, style))
            continue
        if kept:
            out.append(("".join(kept), style))
        break
    out.append(("…", "dim"))
    return out, True


def _plain(segments: list[Segment]) -> str:
    return "".join(text for text, _ in segments)


def _send_segments(send: Send) -> list[Segment]:
    """A C: line as drawn: literal text made visible, placeholders as their written form."""
    segments: list[Segment] = []
    for part in send.parts:
        if isinstance(part, Placeholder):
            segments.append((part.render(), "placeholder"))
        elif part:
            segments.append((_visible(part), "text"))
    return segments


def _send_text(send: Send) -> str:
    """The line sent, placeholders as written (for reading headers, never for display)."""
    return "".join(p.render() if isinstance(p, Placeholder) else p for p in send.parts)


def _decoded_word(text: str) -> str | None:
    """A base64 word decoded to printable UTF-8 text, or None."""
    try:
        value = b64decode_bytes(text.strip()).decode("utf-8")
    except (AuthError, UnicodeDecodeError):
        return None
    return value if value and value.isprintable() else None


def _placeholder_user(placeholder: Placeholder) -> str | None:
    """The user name a placeholder stands for: a literal, or ``{var}`` for a variable."""
    for param, value in placeholder.args:
        if param == "user" or (placeholder.encoding == "base64" and param == "value"):
            return "{" + value.name + "}" if isinstance(value, Variable) else value
    return None


# --------------------------------------------------------------------------- model


@dataclass
class _Arrow:
    kind: Literal["command", "reply", "message"]
    lines: list[list[Segment]]
    tooltip: str
    colour: str
    line_no: int
    css: str = ""
    code: str = ""
    latency: str | None = None


@dataclass
class _Note:
    kind: Literal["connect", "tls", "auth", "closed", "state"]
    text: str
    line_no: int


Row = _Arrow | _Note


@dataclass
class _Band:
    kind: Literal["tls", "auth"]
    label: _Note  # the note row that opens the band (its text can still change)
    start: int  # index of the first row inside the band
    end: int = -1  # index after the last row; -1 while open


@dataclass
class _Auth:
    """The AUTH exchange being drawn: who is logging in, and how many answers were given
    (the first LOGIN answer is the user name, not a secret). The `Dialogue` says when it
    starts, which lines answer it and how it ends."""

    mechanism: str
    user: str | None = None
    answers: int = 0
    login_user_given: bool = False


@dataclass
class _Builder:
    rows: list[Row] = field(default_factory=list)
    bands: list[_Band] = field(default_factory=list)
    server: str = ""
    tls: _Band | None = None
    authenticated: _Band | None = None
    auth: _Auth | None = None
    pending_time: str | None = None
    dialogue: TranscriptDialogue = field(default_factory=TranscriptDialogue)
    message: list[Send] = field(default_factory=list)
    chunk: list[Send] = field(default_factory=list)  # BDAT chunk data so far

    def build(self, script: Script) -> _Builder:
        for item in script.items:
            if isinstance(item, Send) and item.chunk is not None:
                self.chunk.append(item)
                if item.chunk_ends:
                    self.flush_chunk()
                continue
            if isinstance(item, Send) and item.data:
                self.dialogue.send(item)
                self.message.append(item)
                if item.end_of_data:
                    self.flush_message(ended=True)
                continue
            self.flush_message(ended=False)
            if isinstance(item, Send):
                self.command(item)
            elif isinstance(item, Expect):
                self.reply(item)
            else:
                self.directive(item)
        self.flush_message(ended=False)
        self.close_band("auth")
        self.close_band("tls")
        return self

    # -- bands

    def open_band(self, kind: Literal["tls", "auth"], text: str, line_no: int) -> _Band:
        note = _Note(kind, text, line_no)
        band = _Band(kind, note, len(self.rows))
        self.rows.append(note)
        self.bands.append(band)
        if kind == "tls":
            self.tls = band
        else:
            self.authenticated = band
        return band

    def close_band(self, kind: Literal["tls", "auth"]) -> None:
        band = self.tls if kind == "tls" else self.authenticated
        if band is not None:
            band.end = len(self.rows)
        if kind == "tls":
            self.tls = None
        else:
            self.authenticated = None

    # -- items

    def directive(self, item: Directive) -> None:
        self.dialogue.directive(item)
        if item.name == "time":
            self.pending_time = item.args[0]
        elif item.name == "connect":
            self.close_band("auth")
            self.close_band("tls")
            self.auth = None
            host, port = item.args[0], item.args[1]
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            self.server = self.server or _visible(address)
            implicit = len(item.args) == 3
            text = f"connect to {address}" + (" (TLS from the first byte)" if implicit else "")
            self.rows.append(_Note("connect", _visible(text), item.line_no))
            if implicit:
                self.open_band("tls", "TLS", item.line_no)
        elif item.name == "tls":
            details = " ".join(_visible(arg) for arg in item.args if arg != "?")
            text = f"TLS {details}".rstrip()
            if self.tls is not None and self.tls.label.text == "TLS":
                self.tls.label.text = text  # the handshake of an implicit-TLS connection
            else:
                self.close_band("auth")  # RFC 3207: the session starts again after STARTTLS
                self.close_band("tls")
                self.open_band("tls", text, item.line_no)
        else:  # closed
            reason = " ".join(_visible(item.rest).split())
            self.close_band("auth")
            self.close_band("tls")
            self.auth = None
            text = f"connection closed: {reason}" if reason else "connection closed"
            self.rows.append(_Note("closed", text, item.line_no))

    def command(self, send: Send) -> None:
        sent = self.dialogue.send(send)
        verb = sent.verb if sent is not None else ""
        segments = _send_segments(send)
        hidden = False
        if verb == "AUTH":
            hidden = self.auth_command(send, _send_text(send).split(maxsplit=2))
        elif verb == AUTH_RESPONSE:
            hidden = self.auth_answer(send)
        if hidden:
            shown = mask(_send_text(send))
            segments = [(_visible(shown), "text"), ("  (credential in clear, not shown)", "dim")]
        plain = _plain(segments)
        self.rows.append(
            _Arrow(
                "command",
                [segments],
                f"line {send.line_no}: C: {plain}",
                _COMMAND,
                send.line_no,
                css="command",
            )
        )

    def auth_command(self, send: Send, words: list[str]) -> bool:
        """Start an exchange; True when the line carries a credential in clear."""
        mechanism = words[1].upper() if len(words) > 1 else ""
        self.auth = auth = _Auth(mechanism)
        placeholders = send.placeholders
        if placeholders:
            auth.user = _placeholder_user(placeholders[0])
            auth.login_user_given = mechanism == "LOGIN"
            return False
        initial = words[2].strip() if len(words) > 2 else ""
        if not initial or initial == "=":
            return False
        if mechanism == "LOGIN":  # the initial response is the user name: not a secret
            auth.user = _decoded_word(initial)
            auth.login_user_given = True
            return False
        auth.user = _clear_user(mechanism, initial)
        return True

    def auth_answer(self, send: Send) -> bool:
        """An answer to a 334 challenge; True when it carries a credential in clear."""
        auth = self.auth
        if auth is None:  # the exchange began before what this script shows (an @tls)
            auth = self.auth = _Auth(self.dialogue.dialogue.auth_mechanism or "")
        auth.answers += 1
        is_login_user = (
            auth.mechanism == "LOGIN" and auth.answers == 1 and not auth.login_user_given
        )
        placeholders = send.placeholders
        if placeholders:
            user = _placeholder_user(placeholders[0])
            if user is not None and (placeholders[0].encoding != "base64" or is_login_user):
                auth.user = user
            return False
        text = _send_text(send).strip()
        if text in ("", "*", "="):
            return False
        if is_login_user:
            auth.user = _decoded_word(text)
            return False
        if auth.user is None:
            auth.user = _clear_user(auth.mechanism, text)
        return True

    def reply(self, expect: Expect) -> None:
        outcome = self.dialogue.receive(expect)
        css, colour = _reply_class(expect)
        code = f"{expect.code:03d}" if expect.code is not None else expect.code_class or "*"
        texts = expect.lines or ("",)
        full: list[str] = []
        for index, text in enumerate(texts):
            separator = "-" if index < len(texts) - 1 else " "
            full.append(f"{code}{separator}{_visible(text)}".rstrip(" "))
        lines: list[list[Segment]] = [
            [(code, "code"), (line[len(code) :], "text")] for line in full
        ]
        if len(lines) > _MAX_REPLY_LINES:
            rest = len(lines) - (_MAX_REPLY_LINES - 1)
            lines = [*lines[: _MAX_REPLY_LINES - 1], [(f"(+{rest} lines)", "dim")]]
        if expect.code == 334 and len(texts) == 1:
            challenge = parse_challenge(texts[0])
            if challenge.valid and challenge.text:
                lines[0].append((f"  = {_visible(challenge.text)!r}", "dim"))
        self.rows.append(
            _Arrow(
                "reply",
                lines,
                f"line {expect.line_no}: S: " + "\nS: ".join(full),
                colour,
                expect.line_no,
                css=f"reply r{css}",
                code=code,
                latency=self.pending_time,
            )
        )
        self.pending_time = None
        self.track_auth(outcome, expect.line_no)

    def track_auth(self, outcome: Outcome, line_no: int) -> None:
        """A reply to AUTH or to an answer: a challenge goes on, 235 opens the band."""
        answered = outcome.answered
        if answered is None or answered.verb not in ("AUTH", AUTH_RESPONSE):
            return
        if outcome.auth_challenge:
            return
        auth, self.auth = self.auth, None
        if outcome.authenticated:
            self.close_band("auth")
            user = auth.user if auth is not None else None
            who = f"authenticated as {_visible(user)}" if user else "authenticated"
            self.open_band("auth", who, line_no)

    def flush_message(self, *, ended: bool) -> None:
        """Message content between 354 and the lone "." as one arrow."""
        if not self.message:
            return
        sends, self.message = self.message, []
        content = sends[:-1] if ended else sends
        lines = [_unstuff(_send_text(send)) for send in content]
        count = len(lines)
        label = _content_label(f"message: {count} {'line' if count == 1 else 'lines'}", lines)
        if not ended:
            label += ' (no final ".")'
        self.content_arrow(label, lines, sends, "message content", "." if ended else None)

    def flush_chunk(self) -> None:
        """A BDAT chunk's data lines (RFC 3030) as one arrow, like a message after DATA."""
        sends, self.chunk = self.chunk, []
        lines = [_send_text(send) for send in sends]
        size = sum(send.chunk or 0 for send in sends)
        label = _content_label(f"chunk: {size} bytes", lines)
        self.content_arrow(label, lines, sends, "BDAT chunk data")

    def content_arrow(
        self, label: str, lines: list[str], sends: list[Send], what: str, tail: str | None = None
    ) -> None:
        first, last = sends[0].line_no, sends[-1].line_no
        shown = [_visible(line) for line in lines[:_TOOLTIP_MESSAGE_LINES]]
        if len(lines) > _TOOLTIP_MESSAGE_LINES:
            shown.append(f"… (+{len(lines) - _TOOLTIP_MESSAGE_LINES} lines)")
        if tail is not None:
            shown.append(tail)
        tooltip = f"lines {first}-{last}: {what}\n" + "\n".join(shown)
        self.rows.append(
            _Arrow(
                "message",
                [[(label, "text")]],
                tooltip,
                _MESSAGE,
                first,
                css="command message",
            )
        )


def _clear_user(mechanism: str, blob: str) -> str | None:
    """The user name inside a clear PLAIN, CRAM-MD5 or XOAUTH2 answer (never the secret)."""
    try:
        raw = b64decode_bytes(blob.strip())
    except AuthError:
        return None
    user = user_in_answer(mechanism, raw.decode("utf-8", errors="replace"))
    return user if user and user.isprintable() else None


def _content_label(head: str, lines: list[str]) -> str:
    """What an arrow of message lines says: the head, then the Subject or the first line."""
    subject = _subject(lines)
    if subject is not None:
        return f"{head}, Subject: {_visible(subject)}"
    return f"{head}, first: {_visible(lines[0])}" if lines else head


def _unstuff(line: str) -> str:
    """A content line as the recipient sees it (RFC 5321 §4.5.2: drop one leading dot)."""
    return line[1:] if line.startswith(".") else line


def _subject(lines: list[str]) -> str | None:
    """The Subject header of a message's lines (folded lines joined, encoded words decoded)."""
    value: str | None = None
    for line in lines:
        if line == "":
            break
        if value is not None:
            if line[:1] in (" ", "\t"):
                value += line
                continue
            break
        name, colon, rest = line.partition(":")
        if colon and name.strip().lower() == "subject":
            value = rest.strip()
    if value is None:
        return None
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return value


def _reply_class(expect: Expect) -> tuple[str, str]:
    """(class name, colour): by the first digit of the code, as the console colours it."""
    if expect.code is not None:
        valid = 200 <= expect.code <= 599 and (expect.code // 10) % 10 <= 5
        name = f"{expect.code // 100}xx" if valid else "malformed"
    elif expect.code_class is not None:
        digit = expect.code_class[0]
        name = f"{digit}xx" if digit in "2345" else "malformed"
    else:  # "S: *": a recorded reply without a valid code, or "any reply" in a script
        name = "malformed" if any(expect.lines) else "any"
    return name, COLOURS[name]


# --------------------------------------------------------------------------- layout


def _row_height(row: Row) -> int:
    if isinstance(row, _Note):
        return 30
    return 10 + len(row.lines) * _LINE_H + 14


def _svg_text(segments: list[Segment], x: float, y: float, colour: str, family: str) -> str:
    spans: list[str] = []
    for text, style in segments:
        attributes = ""
        if style == "code":
            attributes = ' font-weight="bold"'
        elif style == "placeholder":
            attributes = f' fill="{_PLACEHOLDER}" font-style="italic" font-weight="bold"'
        elif style == "dim":
            attributes = f' fill="{_DIM}"'
        if attributes:
            spans.append(f"<tspan{attributes}>{escape(text)}</tspan>")
        else:
            spans.append(escape(text))
    return (
        f'<text x="{x:g}" y="{y:g}" fill="{colour}" font-family={quoteattr(family)} '
        f'font-size="{_MONO_SIZE if family == MONO_FAMILY else _SANS_SIZE}">'
        + "".join(spans)
        + "</text>"
    )


def _arrow_svg(row: _Arrow, top: int) -> str:
    left_to_right = row.kind != "reply"
    limit = int((_SERVER_X - _LABEL_X - 16) / _MONO_CELL)
    parts: list[str] = []
    truncated = False
    for index, segments in enumerate(row.lines):
        cut, was_cut = _truncate(segments, limit)
        truncated = truncated or was_cut
        y = top + 10 + (index + 1) * _LINE_H - 4
        font = MONO_FAMILY if row.kind != "message" else FONT_FAMILY
        parts.append(_svg_text(cut, _LABEL_X, y, row.colour, font))
    y = top + 10 + len(row.lines) * _LINE_H + 5
    start, end = (_CLIENT_X, _SERVER_X) if left_to_right else (_SERVER_X, _CLIENT_X)
    tip = end - 1 if left_to_right else end + 1
    back = tip - 10 if left_to_right else tip + 10
    dash = ' stroke-dasharray="7 4"' if row.kind == "message" else ""
    parts.append(
        f'<line x1="{start}" y1="{y}" x2="{back}" y2="{y}" stroke="{row.colour}" '
        f'stroke-width="1.6"{dash}/>'
    )
    parts.append(
        f'<polygon points="{tip},{y} {back},{y - 5} {back},{y + 5}" fill="{row.colour}" '
        f'stroke="{row.colour}" stroke-width="1"/>'
    )
    if row.latency is not None:
        parts.append(
            f'<text class="latency" x="{_SERVER_X + 10}" y="{y + 4}" fill="{_DIM}" '
            f'font-size="11">{escape(_visible(row.latency))}</text>'
        )
    attributes = f'class={quoteattr("arrow " + row.css)} data-line="{row.line_no}"'
    if row.code:
        attributes += f" data-code={quoteattr(row.code)}"
    if truncated:
        attributes += ' data-truncated="true"'
    title = f"<title>{escape(row.tooltip)}</title>"
    return f"<g {attributes}>{title}" + "".join(parts) + "</g>"


def _note_svg(row: _Note, top: int) -> str:
    colours = {
        "tls": _TLS_TEXT,
        "auth": _AUTH_TEXT,
        "connect": _COMMAND,
        "closed": _DIM,
        "state": _PLACEHOLDER,  # a POP3 state (RFC 1939): AUTHORIZATION, UPDATE
    }
    limit = int((_WIDTH - 2 * 44) / _SANS_CELL)
    segments, _ = _truncate([(row.text, "text")], limit)
    y = top + 19
    if row.kind in ("tls", "auth"):
        x = 24 if row.kind == "tls" else 40
        text = _svg_text(segments, x, y, colours[row.kind], FONT_FAMILY)
        text = text.replace("<text ", '<text font-weight="bold" ', 1)
    else:
        text = _svg_text(segments, _WIDTH / 2, y, colours[row.kind], FONT_FAMILY)
        text = text.replace("<text ", '<text text-anchor="middle" font-style="italic" ', 1)
    title = f"<title>{escape(f'line {row.line_no}: {row.text}')}</title>"
    return f'<g class="note {row.kind}" data-line="{row.line_no}">{title}{text}</g>'


def _head_svg(x: int, name: str, detail: str, y: int) -> str:
    box = (
        f'<rect x="{x - 75}" y="{y}" width="150" height="{_HEAD_H}" rx="5" fill="#f5f5f5" '
        f'stroke="#546e7a" stroke-width="1.2"/>'
    )
    label = (
        f'<text x="{x}" y="{y + (16 if detail else 24)}" text-anchor="middle" font-size="14" '
        f'font-weight="bold" fill="{_COMMAND}">{escape(name)}</text>'
    )
    if detail:
        segments, _ = _truncate([(detail, "text")], 22)
        label += (
            f'<text x="{x}" y="{y + 31}" text-anchor="middle" font-size="11" '
            f'fill="{_DIM}">{escape(_plain(segments))}</text>'
        )
    return f'<g class="head">{box}{label}</g>'


def render_svg(script: Script, *, title: str | None = None) -> str:
    """The dialogue as a standalone SVG document (UTF-8 text, no XML declaration needed)."""
    return _svg(script, title)


def _build(script: Script) -> _Builder:
    """The rows and bands of a script; a POP3 one's come from `diagram.pop3`."""
    if getattr(script, "protocol", "smtp") == "pop3":
        from smtp_tutor.diagram.pop3 import build

        return build(script, sys.modules[__name__])  # type: ignore[arg-type]
    return _Builder().build(script)


def _svg(script: Script, title: str | None) -> str:
    built = _build(script)
    protocol = "POP3" if getattr(script, "protocol", "smtp") == "pop3" else "SMTP"
    heading = _visible(title if title is not None else script.source)
    y = _HEAD_TOP + _HEAD_H + 14
    tops: list[int] = []
    for row in built.rows:
        tops.append(y)
        y += _row_height(row)
    if not built.rows:
        y += 30
    bottom = y + 12
    height = bottom + 20

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family={quoteattr(FONT_FAMILY)} '
        f'xml:space="preserve" role="img">',
        f"<title>{escape(protocol + ' dialogue: ' + heading)}</title>",
        f'<rect x="0" y="0" width="{_WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    limit = int((_WIDTH - 40) / (16 * 0.62))
    shown, _ = _truncate([(heading, "text")], limit)
    out.append(
        f'<text class="heading" x="20" y="30" font-size="16" font-weight="bold" '
        f'fill="{_COMMAND}">{escape(_plain(shown))}</text>'
    )
    out.append(
        f'<text x="20" y="48" font-size="11" fill="{_DIM}">{protocol} sequence diagram: '
        "commands left to right, replies right to left</text>"
    )
    for band in built.bands:
        end = band.end if band.end >= 0 else len(built.rows)
        top = tops[band.start] + 2
        last = tops[end - 1] + _row_height(built.rows[end - 1]) if end > band.start else top
        inset = 12 if band.kind == "tls" else 28
        fill, edge = (_TLS_FILL, _TLS_EDGE) if band.kind == "tls" else (_AUTH_FILL, _AUTH_EDGE)
        out.append(
            f'<rect class="band {band.kind}" x="{inset}" y="{top}" width="{_WIDTH - 2 * inset}" '
            f'height="{max(last - top - 2, 4)}" rx="6" fill="{fill}" stroke="{edge}" '
            f'stroke-width="1"><title>{escape(band.label.text)}</title></rect>'
        )
    lifeline_top = _HEAD_TOP + _HEAD_H
    for x in (_CLIENT_X, _SERVER_X):
        out.append(
            f'<line class="lifeline" x1="{x}" y1="{lifeline_top}" x2="{x}" y2="{bottom}" '
            f'stroke="{_LIFELINE}" stroke-width="1.2" stroke-dasharray="5 4"/>'
        )
    out.append(_head_svg(_CLIENT_X, "client", "", _HEAD_TOP))
    out.append(_head_svg(_SERVER_X, "server", built.server, _HEAD_TOP))
    if not built.rows:
        out.append(
            f'<text x="{_WIDTH / 2:g}" y="{lifeline_top + 30}" text-anchor="middle" '
            f'font-size="12" fill="{_DIM}">(nothing in this transcript)</text>'
        )
    for row, top in zip(built.rows, tops, strict=True):
        out.append(_arrow_svg(row, top) if isinstance(row, _Arrow) else _note_svg(row, top))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- HTML


def render_html(script: Script, *, title: str | None = None) -> str:
    """A standalone UTF-8 page: heading, the transcript's name, a legend and the SVG."""
    heading = _visible(title if title is not None else script.source)
    source = _visible(script.source)
    swatches = [
        f'<li><span class="swatch line" style="background:{COLOURS[name]}"></span>'
        f"{html.escape(label)}</li>"
        for name, label in _CLASS_NAMES.items()
    ]
    swatches += [
        f'<li><span class="swatch line" style="background:{_COMMAND}"></span>command</li>',
        f'<li><span class="swatch" style="background:{_TLS_FILL};border-color:{_TLS_EDGE}">'
        "</span>TLS</li>",
        f'<li><span class="swatch" style="background:{_AUTH_FILL};border-color:{_AUTH_EDGE}">'
        "</span>authenticated</li>",
        '<li><span class="ph">{placeholder}</span> a secret, never written</li>',
        '<li><span class="dim">12ms</span> latency of the reply</li>',
    ]
    legend = "\n".join(swatches)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="smtp-tutor diagram">
<title>{html.escape(heading)}</title>
<style>
body {{ font-family: {FONT_FAMILY}; color: {_COMMAND}; margin: 24px; background: #ffffff; }}
h1 {{ font-size: 20px; margin: 0 0 4px; word-break: break-all; }}
p.source {{ color: {_DIM}; margin: 0 0 12px; }}
code {{ font-family: {MONO_FAMILY}; }}
ul.legend {{ list-style: none; padding: 0; margin: 0 0 16px; display: flex; flex-wrap: wrap;
  gap: 6px 18px; font-size: 13px; }}
ul.legend li {{ display: flex; align-items: center; gap: 6px; }}
.swatch {{ display: inline-block; width: 22px; height: 14px; border: 1px solid transparent;
  border-radius: 3px; }}
.swatch.line {{ height: 4px; }}
.ph {{ color: {_PLACEHOLDER}; font-style: italic; font-weight: bold; font-family: {MONO_FAMILY}; }}
.dim {{ color: {_DIM}; }}
figure {{ margin: 0; }}
figure svg {{ max-width: 100%; height: auto; }}
figure svg text {{ white-space: pre; }}
</style>
</head>
<body>
<h1>{html.escape(heading)}</h1>
<p class="source">transcript: <code>{html.escape(source)}</code>
 — hover over an arrow for its full text and line number</p>
<ul class="legend">
{legend}
</ul>
<figure>
{_svg(script, title)}</figure>
</body>
</html>
"""


# --------------------------------------------------------------------------- files


def write_diagram(
    transcript_path: Path | str,
    output: Path | str,
    *,
    kind: Literal["svg", "html"] | None = None,
    stdin: BinaryIO | None = None,
    stdout: TextIO | None = None,
) -> None:
    """Draw the transcript at ``transcript_path`` into ``output`` (.svg or .html).

    The transcript is text or JSON Lines (told apart by its content). ``-`` reads it from
    ``stdin`` / writes the diagram to ``stdout`` (the process's own by default); ``kind``
    picks SVG or HTML, else the output's suffix does (SVG for ``-``).

    `DiagramError` for an unsupported suffix or an unreadable transcript, `TranscriptError`
    (``file:line: why``) for a malformed one (both ValueError: the user's input), and
    `DiagramWriteError` (an OSError) when the output cannot be written. Each is one line.
    """
    to_stdout = str(output) == STDIO
    if kind is None:
        kind = "svg" if to_stdout else SUFFIXES.get(Path(output).suffix.lower())
    if kind is None:
        raise DiagramError(
            f"cannot draw to {_visible(str(output))}: the name must end in .svg or .html "
            "(or say --format svg|html)"
        )
    script = _read_script(transcript_path, stdin)
    content = render_svg(script) if kind == "svg" else render_html(script)
    try:
        if to_stdout:
            stream = stdout if stdout is not None else sys.stdout
            stream.write(content)
            stream.flush()
        else:
            _write_atomic(Path(output), content)
    except BrokenPipeError:
        raise  # the reader left: not a failure to write a file
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = "to standard output" if to_stdout else _visible(str(output))
        raise DiagramWriteError(f"cannot write {where}: {reason}") from None


def _read_script(transcript_path: Path | str, stdin: BinaryIO | None) -> Script:
    from_stdin = str(transcript_path) == STDIO
    source = "<stdin>" if from_stdin else str(transcript_path)
    name = _visible(source)
    try:
        if from_stdin:
            stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
            if stream is None:
                raise DiagramError("cannot read the transcript from standard input: there is none")
            data = stream.read()
        else:
            data = Path(transcript_path).read_bytes()
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DiagramError(f"cannot read {name}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DiagramError(f"cannot read {name}: {exc.strerror or exc}") from None
    from smtp_tutor.core.pop3.transcript import parse_pop3_script, script_protocol

    if script_protocol(text) == "pop3":
        return parse_pop3_script(text, source)  # type: ignore[return-value]
    return parse_script(text, source)


def _write_atomic(target: Path, content: str) -> None:
    """Replace ``target`` in one step, so a reader never sees half a diagram.

    The file is created like any other (0666 less the umask): a diagram is made to be shared.
    """
    temp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(content)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
