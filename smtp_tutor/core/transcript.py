"""Transcripts: a session written down the way RFC 5321 writes its examples, and read back.

One text format serves three readers: a human (it looks like the RFC's ``C:``/``S:``
examples), the pygments lexer (`smtp_tutor.lexer`) and `smtp-tutor replay`, which sends the
``C:`` lines again and checks each ``S:`` reply. docs/transcript.md has the full grammar.

Theory of operation:

* `TranscriptRecorder` is told every event of a live session and renders each one at once
  to a text chunk and a JSON object; `text()`/`jsonl()` join them, `attach()` streams them to
  an open file as they happen, so a killed console loses nothing.
* Secrets never reach the recorder's memory in clear: a line that carries a password or a
  token is handed over with a `Placeholder` that says how it was built, and only the
  placeholder (``{base64 password}``) is kept. Replay computes the real line again from
  variables (`resolve`), so the file can be shared and replayed with other credentials.
* Sent lines are kept in their wire form, escaped so that any line survives an editor:
  ``{`` is written ``{{``; control characters, lone surrogates and trailing blanks go in a
  quoted literal (``{"\\r"}``). Message lines are dot-stuffed exactly as sent.
* A BDAT chunk (RFC 3030) is bytes, not lines: after ``C: BDAT 120``, ``C:`` lines hold the
  chunk, each standing for its text and CRLF, cut at the announced size - so a chunk that
  ends inside a line, or between CR and LF, is written and replayed exactly.
* `parse_transcript` turns text into a `Script` of `Send`, `Expect` and `Directive` items,
  each with its line number; any mistake is one `TranscriptError` with ``file:line: why``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, overload

from smtp_tutor.core.auth import (
    AuthError,
    b64encode_bytes,
    b64encode_text,
    cram_md5_response,
    plain_response,
    xoauth2_string,
)
from smtp_tutor.core.replies import Reply

__all__ = [
    "DIRECTIVES",
    "ENCODINGS",
    "Directive",
    "Expect",
    "Item",
    "MissingVariable",
    "Placeholder",
    "ResolveError",
    "Script",
    "Send",
    "TranscriptError",
    "TranscriptRecorder",
    "Variable",
    "escape_line",
    "parse_duration",
    "parse_template",
    "parse_transcript",
    "resolve",
    "variables_needed",
]

Format = Literal["text", "jsonl"]

#: Computed placeholders: encoding → (parameters in positional order, how many are required).
ENCODINGS: dict[str, tuple[tuple[str, ...], int]] = {
    "base64": (("value",), 1),
    "plain": (("user", "password", "authzid"), 2),
    "cram-md5": (("user", "password"), 2),
    "xoauth2": (("user", "token"), 2),
}
#: Directives a transcript may use; anything else is a mistake, not an extension.
DIRECTIVES: frozenset[str] = frozenset({"connect", "tls", "time", "closed"})

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s)")
_S_LINE = re.compile(r"([0-9]{3}|[0-9][xX][xX]|\*)([ -]|$)(.*)", re.DOTALL)
_AUTH_HEAD = re.compile(r"^(\s*AUTH[ \t]+\S+)(?:[ \t]|$)", re.IGNORECASE)
_BDAT = re.compile(r"[ \t]*BDAT[ \t]+([0-9]{1,15})(?:[ \t]+LAST)?[ \t]*", re.IGNORECASE)
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t", "0": "\0"}
_QUOTE_NAMES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


# --------------------------------------------------------------------------- errors


class TranscriptError(ValueError):
    """A transcript that cannot be read; str() is ``source:line: message`` on one line."""

    def __init__(self, message: str, line_no: int, source: str = "<transcript>") -> None:
        self.message = message
        self.line_no = line_no
        self.source = source
        super().__init__(f"{source}:{line_no}: {message}")


class ResolveError(ValueError):
    """A placeholder cannot be computed (bad credentials, no challenge); safe to show."""


class MissingVariable(ResolveError):
    """Variables without a value; replay asks for `names` (or takes them from --var/env)."""

    def __init__(self, *names: str) -> None:
        self.names = tuple(dict.fromkeys(names))
        self.name = self.names[0] if self.names else ""
        listed = ", ".join(self.names)
        noun = "variable" if len(self.names) == 1 else "variables"
        super().__init__(f"no value for the {noun} {listed}")


class _Problem(Exception):
    """A syntax problem inside one line; the caller adds the line number."""


# --------------------------------------------------------------------------- placeholders


@dataclass(frozen=True)
class Variable:
    """A reference to a value given at replay time (``--var NAME=VALUE``, env, prompt)."""

    name: str


#: A placeholder argument: a variable, or a literal string (written in double quotes).
Value = Variable | str


def _quote(text: str) -> str:
    """A double-quoted literal that survives any editor: controls and odd characters escaped."""
    out = ['"']
    for ch in text:
        if ch in _QUOTE_NAMES:
            out.append(_QUOTE_NAMES[ch])
        elif _needs_escape(ch):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _needs_escape(ch: str) -> bool:
    """Characters a text file cannot carry safely on a line (or that editors drop or split)."""
    return ch in "\u2028\u2029\ufeff" or unicodedata.category(ch) in ("Cc", "Cs")


def _var(name: str) -> Variable:
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid variable name {name!r} (letters, digits, _ . -)")
    return Variable(name)


def _render_value(value: Value) -> str:
    return value.name if isinstance(value, Variable) else _quote(value)


@dataclass(frozen=True)
class Placeholder:
    """How a line (or part of one) is built at replay time, in place of what was sent.

    ``encoding`` None is the value itself (``{name}``, ``{"literal"}``); otherwise one of
    `ENCODINGS`, computed from ``args`` — (parameter, value) pairs in parameter order.
    """

    encoding: str | None
    args: tuple[tuple[str, Value], ...]

    # -- the forms the console records

    @classmethod
    def variable(cls, name: str) -> Placeholder:
        """``{name}``: the variable's value as is (e.g. an AUTH answer typed by hand)."""
        return cls(None, (("value", _var(name)),))

    @classmethod
    def literal(cls, text: str) -> Placeholder:
        """``{"text"}``: literal text with escapes, for characters a line cannot hold."""
        return cls(None, (("value", text),))

    @classmethod
    def base64(cls, value: Value) -> Placeholder:
        return cls("base64", (("value", value),))

    @classmethod
    def login_password(cls, var: str = "password") -> Placeholder:
        """The AUTH LOGIN password line: ``{base64 password}``."""
        return cls.base64(_var(var))

    @classmethod
    def login_user(cls, user: str | None = None, var: str = "user") -> Placeholder:
        """The LOGIN user line as a variable; by default that line is recorded in clear."""
        return cls.base64(user if user is not None else _var(var))

    @classmethod
    def plain(
        cls,
        user: str | None = None,
        *,
        authzid: str = "",
        user_var: str = "user",
        password_var: str = "password",
    ) -> Placeholder:
        """The PLAIN response; ``user`` None makes the user name a variable too."""
        args: list[tuple[str, Value]] = [
            ("user", user if user is not None else _var(user_var)),
            ("password", _var(password_var)),
        ]
        if authzid:
            args.append(("authzid", authzid))
        return cls("plain", tuple(args))

    @classmethod
    def cram_md5(
        cls, user: str | None = None, *, user_var: str = "user", password_var: str = "password"
    ) -> Placeholder:
        """The CRAM-MD5 response, computed at replay from the challenge just received."""
        return cls(
            "cram-md5",
            (
                ("user", user if user is not None else _var(user_var)),
                ("password", _var(password_var)),
            ),
        )

    @classmethod
    def xoauth2(
        cls, user: str | None = None, *, user_var: str = "user", token_var: str = "token"
    ) -> Placeholder:
        return cls(
            "xoauth2",
            (
                ("user", user if user is not None else _var(user_var)),
                ("token", _var(token_var)),
            ),
        )

    # -- text and values

    def render(self) -> str:
        """The canonical text: ``{name}``, ``{"x"}``, ``{base64 v}``, ``{plain user=… …}``."""
        if self.encoding is None:
            return "{" + _render_value(self.args[0][1]) + "}"
        if self.encoding == "base64":
            return "{base64 " + _render_value(self.args[0][1]) + "}"
        words = [f"{param}={_render_value(value)}" for param, value in self.args]
        return "{" + " ".join([self.encoding, *words]) + "}"

    def variables(self) -> tuple[str, ...]:
        return tuple(v.name for _p, v in self.args if isinstance(v, Variable))

    def compute(self, variables: Mapping[str, str], challenge: str | None = None) -> str:
        """The real text; ``challenge`` is the text of the 334 reply CRAM-MD5 answers."""
        missing = [name for name in self.variables() if name not in variables]
        if missing:
            raise MissingVariable(*missing)
        values = {
            param: variables[v.name] if isinstance(v, Variable) else v for param, v in self.args
        }
        try:
            if self.encoding is None:
                return values["value"]
            if self.encoding == "base64":
                return b64encode_text(values["value"])
            if self.encoding == "plain":
                return plain_response(values["user"], values["password"], values.get("authzid", ""))
            if self.encoding == "xoauth2":
                return xoauth2_string(values["user"], values["token"])
            if challenge is None:
                raise ResolveError(
                    f"{self.render()} needs the server's 334 challenge, and the last reply "
                    "was not one"
                )
            return cram_md5_response(values["user"], values["password"], challenge)
        except AuthError as exc:
            raise ResolveError(f"{self.render()}: {exc}") from None
        except UnicodeEncodeError:
            raise ResolveError(f"{self.render()}: a value cannot be encoded as UTF-8") from None

    def __str__(self) -> str:
        return self.render()


def escape_line(line: str) -> str:
    """A sent line in transcript form: ``{`` doubled, unsafe characters in quoted literals.

    Trailing blanks go in a literal too, so an editor that strips them changes nothing.
    """
    body_end = len(line.rstrip(" \t"))
    out: list[str] = []
    special: list[str] = []

    def flush_special() -> None:
        if special:
            out.append(Placeholder.literal("".join(special)).render())
            special.clear()

    for index, ch in enumerate(line):
        if index >= body_end or _needs_escape(ch):
            special.append(ch)
            continue
        flush_special()
        out.append("{{" if ch == "{" else ch)
    flush_special()
    return "".join(out)


def parse_template(text: str) -> tuple[str | Placeholder, ...]:
    """Split the text of a ``C:`` line into literal strings and placeholders.

    Raises `ValueError` with a one-line message for a malformed placeholder.
    """
    try:
        return _parse_template(text)
    except _Problem as exc:
        raise ValueError(str(exc)) from None


def _parse_template(text: str) -> tuple[str | Placeholder, ...]:
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            placeholder, i = _parse_placeholder(text, i)
            if placeholder.encoding is None and isinstance(placeholder.args[0][1], str):
                literal.append(placeholder.args[0][1])  # a quoted literal is only an escape
                continue
            if literal:
                parts.append("".join(literal))
                literal.clear()
            parts.append(placeholder)
            continue
        if ch != "\t" and _needs_escape(ch) and ch not in "\u2028\u2029\ufeff":
            raise _Problem(
                f"control character U+{ord(ch):04X} in a C: line; write it as "
                f"{Placeholder.literal(ch).render()}"
            )
        literal.append(ch)
        i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


_Token = tuple[Literal["name", "str", "eq"], str]


def _parse_placeholder(text: str, start: int) -> tuple[Placeholder, int]:
    """Read ``{...}`` starting at ``text[start]``; return it and the index after ``}``."""
    tokens: list[_Token] = []
    i = start + 1
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i >= len(text):
            raise _Problem(
                f"unterminated placeholder {_snippet(text[start:])}: no closing '}}' "
                "(write {{ for a literal '{')"
            )
        ch = text[i]
        if ch == "}":
            i += 1
            break
        if ch == '"':
            value, i = _parse_string(text, i)
            tokens.append(("str", value))
        elif ch == "=":
            tokens.append(("eq", "="))
            i += 1
        else:
            match = _NAME.match(text, i)
            if match is None:
                raise _Problem(
                    f"unexpected {ch!r} in placeholder {_snippet(text[start:])} "
                    "(write {{ for a literal '{')"
                )
            tokens.append(("name", match.group()))
            i = match.end()
    return _build_placeholder(tokens, text[start:i]), i


def _parse_string(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = text[i + 1 : i + 2]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}.get(esc)
        digits = text[i + 2 : i + 2 + width] if width else ""
        if width is None or not re.fullmatch(r"[0-9A-Fa-f]+", digits) or len(digits) != width:
            raise _Problem(f"unknown escape {text[i : i + 2]!r} in a quoted literal")
        code = int(digits, 16)
        if code > 0x10FFFF:
            raise _Problem(f"escape {text[i : i + 2 + width]!r} is beyond Unicode")
        out.append(chr(code))
        i += 2 + width
    raise _Problem(f"unterminated quoted literal {_snippet(text[start:])}")


def _build_placeholder(tokens: list[_Token], written: str) -> Placeholder:
    if not tokens:
        raise _Problem("empty placeholder {}; write {{ for a literal '{'")
    kind, head = tokens[0]
    if len(tokens) == 1:
        if kind == "name":
            return Placeholder(None, (("value", Variable(head)),))
        if kind == "str":
            return Placeholder(None, (("value", head),))
    if kind != "name":
        raise _Problem(f"a quoted literal stands alone in its placeholder: {_snippet(written)}")
    if head not in ENCODINGS:
        known = ", ".join(ENCODINGS)
        raise _Problem(f"unknown placeholder encoding {head!r} (known: {known})")
    params, required = ENCODINGS[head]
    given: dict[str, Value] = {}
    positional = 0
    rest = tokens[1:]
    i = 0
    while i < len(rest):
        kind, word = rest[i]
        if kind == "eq":
            raise _Problem(f"'=' without a parameter name in {_snippet(written)}")
        if i + 1 < len(rest) and rest[i + 1][0] == "eq":
            if kind != "name":
                raise _Problem(f"a parameter name cannot be quoted in {_snippet(written)}")
            if word not in params:
                raise _Problem(f"{head} has no parameter {word!r} (it takes {', '.join(params)})")
            if word in given:
                raise _Problem(f"parameter {word!r} is given twice in {_snippet(written)}")
            if i + 2 >= len(rest) or rest[i + 2][0] == "eq":
                raise _Problem(f"parameter {word!r} has no value in {_snippet(written)}")
            given[word] = _token_value(rest[i + 2])
            i += 3
            continue
        if given.keys() - set(params[:positional]):
            raise _Problem(f"a positional value after name=value in {_snippet(written)}")
        if positional >= len(params):
            raise _Problem(f"too many values for {head} (it takes {', '.join(params)})")
        given[params[positional]] = _token_value(rest[i])
        positional += 1
        i += 1
    missing = [p for p in params[:required] if p not in given]
    if missing:
        raise _Problem(f"{head} needs {' and '.join(missing)} in {_snippet(written)}")
    return Placeholder(head, tuple((p, given[p]) for p in params if p in given))


def _token_value(token: _Token) -> Value:
    kind, word = token
    return Variable(word) if kind == "name" else word


def _snippet(text: str, limit: int = 40) -> str:
    """Part of the user's text for a one-line message."""
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(shown)


# --------------------------------------------------------------------------- script items


@dataclass(frozen=True)
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
        return _wire(resolve(self, {}))[: self.chunk]


@dataclass(frozen=True)
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
                return f"expected the text to match /{pattern.pattern}/, got {_snippet(reply.text)}"
        return None

    def matches(self, reply: Reply) -> bool:
        return self.mismatch(reply) is None


@dataclass(frozen=True)
class Directive:
    """A connection event: ``@connect HOST PORT [tls]``, ``@tls``, ``@time``, ``@closed``."""

    line_no: int
    name: str
    args: tuple[str, ...]
    rest: str = ""  # everything after the name, for @closed's free-text reason


Item = Send | Expect | Directive


@dataclass(frozen=True)
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


def resolve(send: Send, variables: Mapping[str, str], last_reply: Reply | None = None) -> str:
    """The line to send, placeholders computed; `MissingVariable` lists every name lacking.

    ``last_reply`` is the reply received just before (CRAM-MD5 answers its 334 challenge).
    """
    missing = [name for name in send.variables() if name not in variables]
    if missing:
        raise MissingVariable(*missing)
    challenge = last_reply.text if last_reply is not None and last_reply.code == 334 else None
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


# --------------------------------------------------------------------------- parser


@dataclass
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
            raise _Problem(f"a line starts with 'C:', 'S:', '#' or '@', not {_snippet(line[:20])}")

    def client(self, line_no: int, body: str) -> None:
        if body[:1] in (" ", "\t"):
            body = body[1:]
        if self.chunk_left:
            self.chunk_line(line_no, body)
            return
        send = Send(line_no, body, _parse_template(body), data=self.in_data)
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
        parts = _parse_template(body)
        try:
            text = resolve(Send(line_no, body, parts), {})
        except ResolveError:
            raise _Problem(
                "a placeholder cannot stand in BDAT chunk data: the chunk's size is fixed, so "
                "write the text itself"
            ) from None
        take = min(len(_wire(text)), self.chunk_left)
        self.chunk_left -= take
        self.items.append(Send(line_no, body, parts, chunk=take, chunk_ends=self.chunk_left == 0))

    def server(self, line_no: int, body: str) -> None:
        match = _S_LINE.fullmatch(body)
        if match is None:
            if not body:
                raise _Problem("S: line without a reply code")
            found = _snippet(body[:12])
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
            raise _Problem(f"unknown directive {_snippet('@' + name)} (known: {known})")
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
            raise _Problem(f"@connect: {_snippet(port)} is not a port number (0-65535)")
        if len(args) == 3 and args[2] != "tls":
            raise _Problem(f"@connect: the third word may only be 'tls', not {_snippet(args[2])}")


_UNFINISHED = (
    "the reply is not finished: its last S: line needs a space after the code "
    "({code} text), not '-'"
)


def _compile(text: str) -> re.Pattern[str]:
    if len(text) < 2 or not text.endswith("/"):
        raise _Problem(
            f"unterminated /regex/ {_snippet(text)}: it must end with '/' "
            "(a reply text that starts with '/' is written with a backslash: \\/)"
        )
    try:
        return re.compile(text[1:-1])
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise _Problem(f"invalid regex {_snippet(text)}: {' '.join(str(exc).split())}") from None


def parse_transcript(text: str, source: str = "<transcript>") -> Script:
    """Read a transcript; `TranscriptError` (with ``line_no``) for anything malformed."""
    return _Parser(source).parse(text)


# --------------------------------------------------------------------------- recorder


def _visible(text: str) -> str:
    """Text for a comment, an S: line or a directive: one line, nothing an editor mangles."""
    return "".join(_quote(ch)[1:-1] if _needs_escape(ch) and ch != "\t" else ch for ch in text)


def _word(text: str | None) -> str:
    """One word for a directive argument; "?" when unknown."""
    shown = "".join("_" if ch.isspace() else ch for ch in _visible(text or ""))
    return shown or "?"


@overload
def _clean(text: str) -> str: ...
@overload
def _clean(text: None) -> None: ...
def _clean(text: str | None) -> str | None:
    """Valid Unicode for JSON (lone surrogates replaced); the exact bytes go in "bytes"."""
    if text is None:
        return None
    return text.encode("utf-8", errors="replace").decode("utf-8")


def _wire(line: str) -> bytes:
    """The bytes `Connection.send_line` puts on the wire for ``line``."""
    try:
        return line.encode("utf-8", errors="surrogateescape") + b"\r\n"
    except UnicodeEncodeError:
        return line.encode("utf-8", errors="replace") + b"\r\n"


def _duration(seconds: float) -> str:
    ms = max(seconds, 0.0) * 1000
    if ms < 10:
        return f"{ms:.1f}ms"
    if ms < 10_000:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.1f}s"


@dataclass(frozen=True)
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
        chunk = "".join(f"# {_visible(line)}".rstrip() + "\n" for line in lines)
        self._add(chunk, "event", event="comment", text=_clean(text))

    def connected(self, host: str, port: int, implicit_tls: bool = False) -> None:
        tls = " tls" if implicit_tls else ""
        chunk = f"@connect {_word(host)} {int(port)}{tls}\n"
        self._add(chunk, "event", event="connect", host=_clean(host), port=port, tls=implicit_tls)

    def tls_started(self, version: str | None, cipher: str | None) -> None:
        words = [_word(version), _word(cipher)] if cipher else [_word(version)] if version else []
        chunk = " ".join(["@tls", *words]) + "\n"
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
                bytes=b64encode_bytes(_wire(line)),
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
            chunk.append(f"# malformed reply: {_visible('; '.join(reply.problems))}\n")
        if latency is not None and not math.isfinite(latency):
            latency = None
        if self.timing and latency is not None:
            chunk.append(f"@time {_duration(latency)}\n")
        code = f"{reply.code:03d}" if reply.code is not None and 0 <= reply.code <= 999 else "*"
        lines = reply.lines or ("",)
        for index, text in enumerate(lines):
            shown = _visible(text)
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
        shown = " ".join(_visible(reason or "").split())
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

    def write(self, path: str | os.PathLike[str], format: Format = "text") -> None:
        """Save everything so far, replacing ``path`` atomically (mode 0600: private)."""
        content = self.render(format)
        target = Path(path)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

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
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_LINE_BREAKERS) + "\n"
