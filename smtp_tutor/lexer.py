"""A pygments lexer for SMTP: raw dialogues and `C:`/`S:` transcripts.

One lexer serves the console (replies coloured by class) and `pygmentize -l smtp FILE`. It is
line-based like the protocol: a line that starts with a digit is a server reply, any other line
is a client command, and after a final `354` reply the client's lines are message content until
the lone `.` (in a transcript, so are the `C:` lines of a chunk after `BDAT <size>`). Reply
codes get token types of their own so a style can colour 2xx, 3xx, 4xx and 5xx apart, and a
line that only looks like a reply (`600 x`, `25O`) is flagged rather than guessed at. Every
token type is a standard pygments type or a subtype of one (`Generic.Inserted.ReplyOk`), so
any style, and the terminal formatter's palette, colours it: `pygmentize -l smtp FILE` with
no options shows 2xx green, 3xx purple, 4xx amber (yellow), 5xx red. In transcripts the
expectation forms of docs/transcript.md (`S: 2xx`, `S: *`, a `/regex/`) and every
`{placeholder}` are coloured too. Like every pygments lexer it never drops a character: the
token values always concatenate back to the input.

Only pygments is imported here; prompt_toolkit is imported inside `highlight_fragments` so the
command-line tools do not pay for it. pygments compiles every state's regular expressions
when a lexer class is first used (about 10 ms here), so the console's replies go through a
lexer made of the few states server text can reach from "replies" (the same rules), and the
whole lexer is made only when a dialogue or transcript is highlighted.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pygments.lexer import RegexLexer, bygroups, default
from pygments.style import Style
from pygments.token import (
    Comment,
    Generic,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
    _TokenType,
)

__all__ = [
    "ANY_REPLY",
    "ENHANCED",
    "MALFORMED",
    "REPLY_TOKENS",
    "POP3Lexer",
    "SMTPLexer",
    "SMTPStyle",
    "highlight_fragments",
    "highlight_pop3_fragments",
    "highlight_reply_fragments",
]

#: Reply codes by class, each a subtype of a standard type that pygments' default style and
#: terminal palette colour (green, purple/magenta, amber/yellow, red); prompt_toolkit sees
#: them as `class:pygments.generic.inserted.replyok` and so on.
REPLY_TOKENS: dict[str, _TokenType] = {
    "2": Generic.Inserted.ReplyOk,
    "3": Generic.Subheading.ReplyIntermediate,
    "4": String.Escape.ReplyTransient,
    "5": Generic.Deleted.ReplyPermanent,
}
#: The head of a line that stands where a reply should but breaks RFC 5321 §4.2's grammar.
MALFORMED = Generic.Error.ReplyMalformed
#: An RFC 3463 `class.subject.detail` code at the start of a reply's text.
ENHANCED = Number.Enhanced
#: `S: *` in a transcript: any reply at all is expected.
ANY_REPLY = Keyword.Pseudo.AnyReply

Rule = tuple[Any, ...]

# A line break; a lone CR (which pygments' own preprocessing would turn into LF) stays in the line.
_EOL = r"\r?\n"
# End of the line (or of the text) ahead, without consuming it.
_AT_EOL = r"(?=[\r\n]|\Z)"
# A reply code RFC 5321 defines (first digit 2-5, second 0-5) and what may follow it.
_CODE = r"([2-5][0-5][0-9])([ -]|" + _AT_EOL + ")"
_ENHANCED_CODE = r"(?:([245]\.[0-9]{1,3}\.[0-9]{1,3})(?![^\s]))?"
# A base64 blob that fills the rest of the line (or `=`, the empty initial response).
_BASE64 = r"(?:[A-Za-z0-9+/]+={0,2}|=)(?=[^\S\r\n]*(?:[\r\n]|\Z))"
# A placeholder (docs/transcript.md): `{name}`, `{"literal"}`, `{encoding arg name=value}`.
_WORD = r"(?:[A-Za-z_][\w.-]*|\"(?:[^\"\\\r\n]|\\[^\r\n])*\")"
_ARGUMENT = r"(?:[A-Za-z_][\w.-]*[^\S\r\n]*=[^\S\r\n]*)?" + _WORD
_PLACEHOLDER = r"\{[^\S\r\n]*" + _WORD + r"(?:[^\S\r\n]+" + _ARGUMENT + r")*[^\S\r\n]*\}"
# In a transcript's C: lines `{{` stands for one `{`.
_BRACE_ESCAPE: tuple[str, _TokenType] = (r"\{\{", String.Escape)
# RFC 5322 field name: printable ASCII except the colon.
_HEADER_NAME = r"([!-9;-~]+)(:)"
# At most one blank after `C:` belongs to the prefix (possessive: a second one is content).
_CLIENT_PREFIX = r"(C:[^\S\r\n]?+)"
# After `C: `: a BDAT command with a size above zero, whose chunk follows in C: lines.
_CHUNK_AHEAD = r"(?=(?i:BDAT)[^\S\r\n]+0*[1-9][0-9]*(?![^\s]))"
_VERBS = (
    "DATA|RSET|VRFY|EXPN|HELP|NOOP|QUIT|STARTTLS|TURN|ETRN|ATRN|XCLIENT|XFORWARD|SEND|SOML|SAML"
)


def _reply(lexer: RegexLexer, match: re.Match[str]) -> Iterator[tuple[int, _TokenType, str]]:
    """The code and its separator in one token coloured by class, as the console shows them."""
    yield match.start(), REPLY_TOKENS[match.group(1)[0]], match.group(1) + match.group(2)
    if match.re.groups >= 3 and match.group(3):
        yield match.start(3), ENHANCED, match.group(3)


def _line_tail(token: _TokenType, placeholders: bool = True, words: bool = False) -> list[Rule]:
    """The rest of a line in `token`, ending the state at the line break; matches any text.

    `words` stops each token at whitespace, for states whose earlier rules look at each word.
    """
    run = r"[^\s{]+" if words else r"[^\s{][^\r\n{]*"
    rules: list[Rule] = [_BRACE_ESCAPE, (_PLACEHOLDER, Name.Variable)] if placeholders else []
    return [
        *rules,
        (run, token),
        (r"\{", token),
        (r"[^\S\r\n]+", Whitespace),
        (_EOL, Whitespace, "#pop"),
        (r"\r", Whitespace),
    ]


def _server_rules(
    then: tuple[str, ...], data: str | None, auth: str | None, text: str = "reply-text"
) -> list[Rule]:
    """Reply rules; `then` runs before the next state, `data`/`auth` follow a final 354/334.

    `text` is the state for the reply's text ("expect-text" in a transcript, where a text
    may be a `/regex/`).
    """
    rules: list[Rule] = []
    if data is not None:
        rules.append((r"(354)( |" + _AT_EOL + ")", _reply, (*then, data, text)))
    after_334 = (auth,) if auth is not None else ()
    rules.append((r"(334)( |" + _AT_EOL + ")", _reply, (*then, *after_334, "challenge")))
    rules.append((_CODE + _ENHANCED_CODE, _reply, (*then, text)))
    return rules


#: Transcript lines that keep their meaning between 334 and its answer, and inside a message;
#: a server line or a closed connection ends either.
_TRANSCRIPT_META: list[Rule] = [
    (r"[^\S\r\n]*" + _EOL, Whitespace),
    (r"(?=S:)", bygroups(), "#pop"),
    (r"#[^\r\n]*", Comment.Single),
    (r"@(?:closed|connect)(?![\w.-])", Comment.Preproc, ("#pop", "directive")),
    (r"@[A-Za-z_][\w.-]*", Comment.Preproc, "directive"),
]


def _data_states(kind: str) -> dict[str, list[Rule]]:
    """Message content after 354: headers until the empty line, then body, until the lone `.`.

    `kind` is "raw" (lines as sent) or "transcript" (each line behind `C:`; placeholders
    allowed, comments and directives keep their meaning, an `S:` line ends the message).
    """
    transcript = kind == "transcript"
    prefix = _CLIENT_PREFIX if transcript else r"()"
    head, body = f"{kind}-headers", f"{kind}-body"
    line, value = f"{kind}-line", f"{kind}-header-value"
    extra = _TRANSCRIPT_META if transcript else []
    anything_else: list[Rule] = [
        (r"[^\s][^\r\n]*", Text),
        (r"[^\S\r\n]+", Whitespace),
        (_EOL, Whitespace),
        (r"\r", Whitespace),
    ]
    lone_dot = r"^" + prefix + r"(\.)" + _AT_EOL
    stuffed_dot = r"^" + prefix + r"(\.)"
    return {
        head: [
            (lone_dot, bygroups(Generic.Prompt, Keyword), "#pop"),
            (stuffed_dot, bygroups(Generic.Prompt, String.Escape), ("#pop", body, line)),
            (
                r"^" + prefix + "(" + _EOL + ")",
                bygroups(Generic.Prompt, Whitespace),
                ("#pop", body),
            ),
            (r"^" + prefix + _HEADER_NAME, bygroups(Generic.Prompt, Name.Tag, Punctuation), value),
            # A folded continuation of the header above.
            (r"^" + prefix + r"([^\S\r\n]+)", bygroups(Generic.Prompt, Whitespace), value),
            *extra,
            # Any other line ends the header section, as in Python's email parser.
            (r"^" + prefix + r"(?=[^\r\n])", bygroups(Generic.Prompt), ("#pop", body, line)),
            *anything_else,
        ],
        body: [
            (lone_dot, bygroups(Generic.Prompt, Keyword), "#pop"),
            (stuffed_dot, bygroups(Generic.Prompt, String.Escape), line),
            *extra,
            *([(r"^" + prefix, bygroups(Generic.Prompt), line)] if transcript else []),
            *anything_else,
        ],
        line: _line_tail(Text, placeholders=transcript),
        value: _line_tail(String, placeholders=transcript),
    }


class SMTPLexer(RegexLexer):
    """SMTP dialogues as typed over telnet, and transcripts in the style of RFC 5321's examples."""

    name = "SMTP"
    aliases: ClassVar[list[str]] = ["smtp", "smtp-transcript"]
    filenames: ClassVar[list[str]] = ["*.smtp"]
    mimetypes: ClassVar[list[str]] = ["text/x-smtp"]
    url = "https://www.rfc-editor.org/rfc/rfc5321"

    tokens: ClassVar[dict[str, list[Any]]] = {
        "root": [
            (r"[^\S\r\n]*" + _EOL, Whitespace),
            (r"#[^\r\n]*", Comment.Single),
            (r"@[A-Za-z_][\w.-]*", Comment.Preproc, "directive"),
            (r"(S:)([^\S\r\n]*)", bygroups(Generic.Prompt, Whitespace), "transcript-server"),
            # BDAT with a size: the C: lines after it are the chunk's bytes, not commands.
            (_CLIENT_PREFIX + _CHUNK_AHEAD, Generic.Prompt, ("transcript-chunk", "command")),
            (_CLIENT_PREFIX, Generic.Prompt, "command"),
            *_server_rules((), "raw-headers", "raw-auth"),
            (r"[0-9][^\s]*", MALFORMED, "reply-text"),
            default("command"),
        ],
        # Stack start for text known to come from the server: every line is a reply.
        "replies": [
            (r"[^\S\r\n]*" + _EOL, Whitespace),
            *_server_rules((), None, None),
            (r"[^\s]+", MALFORMED, "reply-text"),
            (r"\s", Whitespace),
        ],
        "transcript-server": [
            *_server_rules(("#pop",), "transcript-headers", "transcript-auth", "expect-text"),
            # Expectations (docs/transcript.md): any code of a class, or any reply at all.
            (r"([2-5][xX][xX])([ -]|" + _AT_EOL + ")", _reply, ("#pop", "expect-text")),
            (r"\*(?:[ -]|" + _AT_EOL + ")", ANY_REPLY, ("#pop", "expect-text")),
            (r"[^\s]+", MALFORMED, ("#pop", "reply-text")),
            (_EOL, Whitespace, "#pop"),
            (r"\s", Whitespace),
        ],
        "reply-text": _line_tail(Text, placeholders=False),
        # A transcript reply's text: `/regex/` to the end of the line is matched by replay;
        # a leading backslash keeps a text that starts with `/` or `\` literal.
        "expect-text": [
            (r"/[^\r\n]*/(?=\r?\n|\Z)", String.Regex, "#pop"),
            (r"\\(?=[/\\])", String.Escape, ("#pop", "reply-text")),
            default(("#pop", "reply-text")),
        ],
        # The text of a 334 reply is a base64 challenge (RFC 4954 §4).
        "challenge": [(_BASE64, String.Other), *_line_tail(Text, placeholders=False)],
        # After 334 the client's next line is a base64 response or `*` to cancel, whatever it says.
        "raw-auth": [
            (r"(?=[0-9])", bygroups(), "#pop"),
            (r"\*" + _AT_EOL, Keyword, "#pop"),
            (_PLACEHOLDER + _AT_EOL, Name.Variable, "#pop"),
            (_BASE64, String.Other, "#pop"),
            default("#pop"),
        ],
        "transcript-auth": [
            *_TRANSCRIPT_META,
            (_CLIENT_PREFIX + r"(\*)" + _AT_EOL, bygroups(Generic.Prompt, Keyword), "#pop"),
            (
                _CLIENT_PREFIX + "(" + _PLACEHOLDER + ")" + _AT_EOL,
                bygroups(Generic.Prompt, Name.Variable),
                "#pop",
            ),
            (_CLIENT_PREFIX + "(" + _BASE64 + ")", bygroups(Generic.Prompt, String.Other), "#pop"),
            default("#pop"),
        ],
        "command": [
            (
                r"(?i)(MAIL)([^\S\r\n]+)(FROM:)",
                bygroups(Keyword, Whitespace, Keyword.Pseudo),
                ("#pop", "path"),
            ),
            (
                r"(?i)(RCPT)([^\S\r\n]+)(TO:)",
                bygroups(Keyword, Whitespace, Keyword.Pseudo),
                ("#pop", "path"),
            ),
            (
                r"(?i)(AUTH)([^\S\r\n]+)([A-Za-z0-9_-]+)",
                bygroups(Keyword, Whitespace, Name.Constant),
                ("#pop", "auth-args"),
            ),
            (r"(?i)(?:EHLO|HELO|LHLO)(?![^\s])", Keyword, ("#pop", "domain")),
            (r"(?i)BDAT(?![^\s])", Keyword, ("#pop", "bdat")),
            (r"(?i)(?:" + _VERBS + r")(?![^\s])", Keyword, ("#pop", "args")),
            (r"[^\S\r\n]+", Whitespace),
            (_BRACE_ESCAPE[0], String.Escape, ("#pop", "args")),
            (_PLACEHOLDER, Name.Variable, ("#pop", "args")),
            (r"[^\s{]+|\{", Text, ("#pop", "args")),
            (_EOL, Whitespace, "#pop"),
            (r"\r", Whitespace),
        ],
        # The reverse-path or forward-path after FROM:/TO:, then ESMTP parameters.
        "path": [
            (r"[^\S\r\n]+", Whitespace),
            (r"<[^>{\r\n]*>", Name.Label, ("#pop", "params")),
            (r"<", Name.Label, ("#pop", "params", "address")),
            _BRACE_ESCAPE,
            (_PLACEHOLDER, Name.Variable, ("#pop", "params")),
            (r"[^\s<{]+|\{", Name.Label, ("#pop", "params")),
            (_EOL, Whitespace, "#pop"),
            (r"\r", Whitespace),
        ],
        "address": [
            _BRACE_ESCAPE,
            (_PLACEHOLDER, Name.Variable),
            (r"[^>{\r\n]+|\{", Name.Label),
            (r">", Name.Label, "#pop"),
            default("#pop"),
        ],
        "params": [
            (r"([A-Za-z0-9][A-Za-z0-9-]*)(=)", bygroups(Name.Attribute, Operator), "value"),
            (r"[A-Za-z0-9][A-Za-z0-9-]*(?![^\s])", Name.Attribute),
            *_line_tail(Text, words=True),
        ],
        "value": [
            _BRACE_ESCAPE,
            (_PLACEHOLDER, Name.Variable),
            (r"[^\s{]+|\{", String),
            default("#pop"),
        ],
        "auth-args": [(_BASE64, String.Other), *_line_tail(Text, words=True)],
        "domain": _line_tail(String),
        "bdat": [
            (r"[0-9]+(?![^\s])", Number.Integer),
            (r"(?i)LAST(?![^\s])", Keyword.Pseudo),
            *_line_tail(Text, words=True),
        ],
        "args": [
            (r"<[^>{\r\n]*>", Name.Label),
            (r"<", Name.Label, "address"),
            *_line_tail(Text, words=True),
        ],
        "directive": _line_tail(Comment.PreprocFile, placeholders=False, words=True),
        # The chunk's lines, until a reply, a directive or the next chunk's BDAT. (The
        # lexer does not count octets: a chunk line that reads "C: BDAT 5" ends it early.)
        "transcript-chunk": [
            *_TRANSCRIPT_META,
            (r"(?=" + _CLIENT_PREFIX + _CHUNK_AHEAD + ")", bygroups(), "#pop"),
            (r"^" + _CLIENT_PREFIX, bygroups(Generic.Prompt), "transcript-line"),
            (r"[^\s][^\r\n]*", Text),
            (r"[^\S\r\n]+", Whitespace),
            (_EOL, Whitespace),
            (r"\r", Whitespace),
        ],
        **_data_states("raw"),
        **_data_states("transcript"),
    }

    def analyse_text(text: str) -> float:  # type: ignore[misc]  # pygments makes it static
        """A greeting then EHLO/HELO is an SMTP dialogue; modest, to not steal other guesses."""
        greeting = re.match(r"\s*(?:S:\s*)?220[ -]", text)
        hello = re.search(r"^(?:C:\s*)?(?:EHLO|HELO) ", text, re.MULTILINE | re.IGNORECASE)
        return 0.4 if greeting and hello else 0.0


class SMTPStyle(Style):
    """ANSI colour names only, so the terminal's own palette keeps them readable on dark and light.

    The reply colours match the console's STYLE_RULES in `smtp_tutor.console.render`.
    """

    name = "smtp"
    styles: ClassVar[dict[_TokenType, str]] = {
        REPLY_TOKENS["2"]: "bold ansigreen",
        REPLY_TOKENS["3"]: "bold ansicyan",
        REPLY_TOKENS["4"]: "bold ansiyellow",
        REPLY_TOKENS["5"]: "bold ansired",
        MALFORMED: "bold ansimagenta",
        ENHANCED: "ansiblue",
        ANY_REPLY: "bold ansibrightblack",
        String.Regex: "italic ansicyan",
        Comment: "italic ansibrightblack",
        Comment.Preproc: "noitalic bold ansibrightblack",
        Comment.PreprocFile: "noitalic nobold ansibrightblack",
        Generic.Prompt: "bold ansibrightblack",
        Keyword: "bold",
        Name.Constant: "italic",
        Name.Label: "underline",
        Name.Attribute: "ansiblue",
        Name.Tag: "bold ansiblue",
        Name.Variable: "bold ansibrightmagenta",
        String: "ansicyan",
        String.Other: "italic",
        String.Escape: "bold ansiblue",
        Number: "ansiblue",
    }


Fragments = list[tuple[str, str]]


def reachable_states(tokens: Mapping[str, list[Any]], start: str) -> set[str]:
    """The states a lexer can enter from `start`: its rules' new states, followed."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        state = todo.pop()
        if state in seen or state.startswith("#"):  # "#pop", "#push"
            continue
        seen.add(state)
        for rule in tokens[state]:
            if isinstance(rule, default):
                new = rule.state
            elif isinstance(rule, tuple) and len(rule) > 2:
                new = rule[2]
            else:
                continue
            todo += [new] if isinstance(new, str) else list(new)
    return seen


class _RepliesLexer(RegexLexer):
    """SMTPLexer's states that server text reaches from "replies": the same rules, fewer to
    compile. Not registered with pygments; only `highlight_reply_fragments` uses it."""

    name = "SMTP replies"
    tokens: ClassVar[dict[str, list[Any]]] = {
        state: SMTPLexer.tokens[state]
        for state in sorted(reachable_states(SMTPLexer.tokens, "replies"))
    }


@functools.cache
def _lexer(replies_only: bool) -> RegexLexer:
    return _RepliesLexer() if replies_only else SMTPLexer()


def highlight_reply_fragments(raw_text: str) -> Fragments:
    """Server text as prompt_toolkit fragments: every line is a reply, none a command.

    Line ends are normalised to LF, as pygments does, so a CR never reaches the terminal.
    """
    return _fragments(raw_text, ("replies",), _lexer(True))


def highlight_fragments(text: str) -> Fragments:
    """A whole dialogue or transcript (client and server lines) as prompt_toolkit fragments."""
    return _fragments(text, ("root",), _lexer(False))


def _fragments(text: str, stack: tuple[str, ...], lexer: RegexLexer) -> Fragments:
    from prompt_toolkit.styles.pygments import pygments_token_to_classname

    text = text.replace("\r\n", "\n").replace("\r", "\n")
    fragments: Fragments = []
    styles: dict[_TokenType, str] = {}
    for _pos, token, value in lexer.get_tokens_unprocessed(text, stack):
        style = styles.get(token) or styles.setdefault(
            token, "class:" + pygments_token_to_classname(token)
        )
        if fragments and fragments[-1][0] == style:
            fragments[-1] = (style, fragments[-1][1] + value)
        elif value:
            fragments.append((style, value))
    return fragments


# --- POP3 ----------------------------------------------------------------------------------

#: A POP3 status indicator where a response starts, and the RFC 2449 code in brackets after it.
_POP3_STATUS = r"(\+OK|-ERR)(?=[ \t]|[\r\n]|\Z)([ \t]*)(\[[!-.0-\\^-~]+(?:/[!-.0-\\^-~]+)*\])?"


def _pop3_status(lexer: RegexLexer, match: re.Match[str]) -> Iterator[tuple[int, _TokenType, str]]:
    token = REPLY_TOKENS["2"] if match.group(1) == "+OK" else REPLY_TOKENS["5"]
    yield match.start(1), token, match.group(1)
    if match.group(2):
        yield match.start(2), Whitespace, match.group(2)
    if match.group(3):
        yield match.start(3), ENHANCED, match.group(3)


class POP3Lexer(RegexLexer):
    """POP3 dialogues and `# protocol: pop3` transcripts: +OK green, -ERR red, [CODE] blue.

    Line-based like the SMTP lexer: a line that starts with +OK, -ERR or "+ " is a response
    (in a transcript after `S:`), a lone "." ends a multiline one, other `S:` lines are the
    body of one, and every other line is a command whose keyword is coloured. Like every
    pygments lexer it never drops a character.
    """

    name = "POP3"
    aliases: ClassVar[list[str]] = ["pop3"]
    filenames: ClassVar[list[str]] = ["*.pop3"]
    mimetypes: ClassVar[list[str]] = []

    tokens: ClassVar[dict[str, list[Rule]]] = {
        "root": [
            (r"#[^\r\n]*", Comment),
            (r"(@[A-Za-z]+)([^\r\n]*)", bygroups(Comment.Preproc, Comment.PreprocFile)),
            (r"(S:)([^\S\r\n]*)", bygroups(Generic.Prompt, Whitespace), "response"),
            (_CLIENT_PREFIX, Generic.Prompt, "command"),
            default("line"),
        ],
        "line": [
            (r"(?=\+OK|-ERR|\+ |\+" + _AT_EOL + ")", Text, ("#pop", "response")),
            default(("#pop", "command")),
        ],
        "response": [
            (_POP3_STATUS, _pop3_status, ("#pop", "tail")),
            (r"\+(?= |" + _AT_EOL + ")", REPLY_TOKENS["3"], ("#pop", "tail")),
            (r"\*(?=[ \t]|" + _AT_EOL + ")", ANY_REPLY, ("#pop", "tail")),
            (r"\." + _AT_EOL, Punctuation, ("#pop", "tail")),
            default(("#pop", "body")),
        ],
        "command": [
            (r"[A-Za-z]{3,4}(?=[ \t]|" + _AT_EOL + ")", Keyword, ("#pop", "args")),
            default(("#pop", "args")),
        ],
        "args": _line_tail(String),
        "tail": _line_tail(Text, placeholders=False),
        "body": _line_tail(String.Other, placeholders=False),
    }

    def analyse_text(text: str) -> float:  # type: ignore[misc]  # pygments makes it static
        """A `# protocol: pop3` header, or a +OK greeting then USER/CAPA, is POP3."""
        if re.match(r"\s*#\s*protocol:\s*pop3", text, re.IGNORECASE):
            return 0.9
        greeting = re.match(r"\s*(?:S:\s*)?\+OK", text)
        command = re.search(r"^(?:C:\s*)?(?:USER|CAPA|APOP|STLS) ?", text, re.MULTILINE)
        return 0.4 if greeting and command else 0.0


def highlight_pop3_fragments(text: str) -> Fragments:
    """POP3 responses (a whole multiline one too) as prompt_toolkit fragments."""
    from prompt_toolkit.styles.pygments import pygments_token_to_classname

    text = text.replace("\r\n", "\n").replace("\r", "\n")
    fragments: Fragments = []
    stack = ("root",)
    for _pos, token, value in _pop3_lexer().get_tokens_unprocessed(text, stack):
        style = "class:" + pygments_token_to_classname(token)
        if fragments and fragments[-1][0] == style:
            fragments[-1] = (style, fragments[-1][1] + value)
        elif value:
            fragments.append((style, value))
    return fragments


@functools.cache
def _pop3_lexer() -> POP3Lexer:
    """Made on first use: pygments compiles a lexer's states when the first one is made."""
    return POP3Lexer()
