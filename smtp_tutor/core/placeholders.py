"""``C:`` line templates, so that a transcript can be shared and survives any editor.

* Secrets never reach the recorder's memory in clear: a line that carries a password or a
  token is handed over with a `Placeholder` that says how it was built, and only the
  placeholder (``{base64 password}``) is kept. Replay computes the real line again from
  variables (`resolve`), so the file can be shared and replayed with other credentials.
* Sent lines are kept in their wire form, escaped so that any line survives an editor:
  ``{`` is written ``{{``; control characters, lone surrogates and trailing blanks go in a
  quoted literal (``{"\\r"}``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from smtp_tutor.core.auth import (
    AuthError,
    apop_digest,
    b64encode_text,
    cram_md5_response,
    plain_response,
    xoauth2_string,
)
from smtp_tutor.core.patterns import LazyPattern
from smtp_tutor.core.records import record

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    from typing import Literal

    _Token = tuple[Literal["name", "str", "eq"], str]

__all__ = [
    "ENCODINGS",
    "MissingVariable",
    "Placeholder",
    "ResolveError",
    "Variable",
    "escape_line",
    "needs_escape",
    "parse_template",
    "quote",
    "snippet",
]

#: Computed placeholders: encoding → (parameters in positional order, how many are required).
ENCODINGS: dict[str, tuple[tuple[str, ...], int]] = {
    "base64": (("value",), 1),
    "plain": (("user", "password", "authzid"), 2),
    "cram-md5": (("user", "password"), 2),
    "xoauth2": (("user", "token"), 2),
    "apop": (("password",), 1),
}

_NAME = LazyPattern(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t", "0": "\0"}
_QUOTE_NAMES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- placeholders


@record(frozen=True)
class Variable:
    """A reference to a value given at replay time (``--var NAME=VALUE``, env, prompt)."""

    name: str


#: A placeholder argument: a variable, or a literal string (written in double quotes).
Value = Variable | str


def quote(text: str) -> str:
    """A double-quoted literal that survives any editor: controls and odd characters escaped."""
    out = ['"']
    for ch in text:
        if ch in _QUOTE_NAMES:
            out.append(_QUOTE_NAMES[ch])
        elif needs_escape(ch):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def needs_escape(ch: str) -> bool:
    """Characters a text file cannot carry safely on a line (or that editors drop or split)."""
    return ch in "\u2028\u2029\ufeff" or unicodedata.category(ch) in ("Cc", "Cs")


def _var(name: str) -> Variable:
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid variable name {name!r} (letters, digits, _ . -)")
    return Variable(name)


def _render_value(value: Value) -> str:
    return value.name if isinstance(value, Variable) else quote(value)


@record(frozen=True)
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
    def apop(cls, password_var: str = "password") -> Placeholder:
        """The APOP digest (RFC 1939 §7), computed at replay from the new greeting's timestamp."""
        return cls("apop", (("password", _var(password_var)),))

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
        """The real text; ``challenge`` is the text of the 334 reply CRAM-MD5 answers, or for
        APOP the ``<timestamp>`` of the POP3 greeting."""
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
            if self.encoding == "apop":
                if challenge is None:
                    raise ResolveError(
                        f"{self.render()} needs the <timestamp> of the server's greeting, "
                        "and its greeting had none"
                    )
                return apop_digest(challenge, values["password"])
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
        if index >= body_end or needs_escape(ch):
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
        if ch != "\t" and needs_escape(ch) and ch not in "\u2028\u2029\ufeff":
            raise ValueError(
                f"control character U+{ord(ch):04X} in a C: line; write it as "
                f"{Placeholder.literal(ch).render()}"
            )
        literal.append(ch)
        i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _parse_placeholder(text: str, start: int) -> tuple[Placeholder, int]:
    """Read ``{...}`` starting at ``text[start]``; return it and the index after ``}``."""
    tokens: list[_Token] = []
    i = start + 1
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i >= len(text):
            raise ValueError(
                f"unterminated placeholder {snippet(text[start:])}: no closing '}}' "
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
                raise ValueError(
                    f"unexpected {ch!r} in placeholder {snippet(text[start:])} "
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
            raise ValueError(f"unknown escape {text[i : i + 2]!r} in a quoted literal")
        code = int(digits, 16)
        if code > 0x10FFFF:
            raise ValueError(f"escape {text[i : i + 2 + width]!r} is beyond Unicode")
        out.append(chr(code))
        i += 2 + width
    raise ValueError(f"unterminated quoted literal {snippet(text[start:])}")


def _build_placeholder(tokens: list[_Token], written: str) -> Placeholder:
    if not tokens:
        raise ValueError("empty placeholder {}; write {{ for a literal '{'")
    kind, head = tokens[0]
    if len(tokens) == 1:
        if kind == "name":
            return Placeholder(None, (("value", Variable(head)),))
        if kind == "str":
            return Placeholder(None, (("value", head),))
    if kind != "name":
        raise ValueError(f"a quoted literal stands alone in its placeholder: {snippet(written)}")
    if head not in ENCODINGS:
        known = ", ".join(ENCODINGS)
        raise ValueError(f"unknown placeholder encoding {head!r} (known: {known})")
    params, required = ENCODINGS[head]
    given: dict[str, Value] = {}
    positional = 0
    rest = tokens[1:]
    i = 0
    while i < len(rest):
        kind, word = rest[i]
        if kind == "eq":
            raise ValueError(f"'=' without a parameter name in {snippet(written)}")
        if i + 1 < len(rest) and rest[i + 1][0] == "eq":
            if kind != "name":
                raise ValueError(f"a parameter name cannot be quoted in {snippet(written)}")
            if word not in params:
                raise ValueError(f"{head} has no parameter {word!r} (it takes {', '.join(params)})")
            if word in given:
                raise ValueError(f"parameter {word!r} is given twice in {snippet(written)}")
            if i + 2 >= len(rest) or rest[i + 2][0] == "eq":
                raise ValueError(f"parameter {word!r} has no value in {snippet(written)}")
            given[word] = _token_value(rest[i + 2])
            i += 3
            continue
        if given.keys() - set(params[:positional]):
            raise ValueError(f"a positional value after name=value in {snippet(written)}")
        if positional >= len(params):
            raise ValueError(f"too many values for {head} (it takes {', '.join(params)})")
        given[params[positional]] = _token_value(rest[i])
        positional += 1
        i += 1
    missing = [p for p in params[:required] if p not in given]
    if missing:
        raise ValueError(f"{head} needs {' and '.join(missing)} in {snippet(written)}")
    return Placeholder(head, tuple((p, given[p]) for p in params if p in given))


def _token_value(token: _Token) -> Value:
    kind, word = token
    return Variable(word) if kind == "name" else word


def snippet(text: str, limit: int = 40) -> str:
    """Part of the user's text for a one-line message."""
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(shown)
