"""Pure functions from protocol objects to styled text fragments.

Nothing here prints; the console decides where the fragments go. Keeping rendering pure
means every colour and every explanation can be tested from a `Reply` alone. Words come from
`data/console.toml` through `say`, so every line exists in English and Chinese.

A function that takes `width` wraps its prose to that many columns (`console/wrap.py`;
None: not wrapped); `terminal_columns` says how wide the screen is. Text shown as it came —
a reply, bytes on the wire, a stored message's lines — is marked with a class in
`wrap.VERBATIM_CLASSES` (an empty `class:reply` or `class:verbatim` fragment starts each such
line) and is never wrapped, by these functions or by anything that wraps their output again.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.output import DummyOutput, Output
from prompt_toolkit.output.plain_text import PlainTextOutput
from prompt_toolkit.styles import DEFAULT_ATTRS, Attrs, BaseStyle, Style
from prompt_toolkit.styles.pygments import pygments_token_to_classname

from smtp_tutor.console import wrap
from smtp_tutor.core.auth import AuthError, decode_challenge
from smtp_tutor.core.catalogue import load_catalogue, localize, message
from smtp_tutor.core.checker import Finding
from smtp_tutor.core.dialogue import Capabilities
from smtp_tutor.core.replies import Reply
from smtp_tutor.core.safe_text import visible
from smtp_tutor.lexer import SMTPStyle, highlight_reply_fragments

if TYPE_CHECKING:
    from smtp_tutor.client.tls import CertificateInfo, TLSInfo
    from smtp_tutor.sandbox.storage import StoredMessage

#: The console's own style classes; reply codes are coloured by the SMTP lexer's tokens.
STYLE_RULES = {
    "latency": "ansibrightblack",
    "sent": "ansibrightblack",
    "decoded": "ansicyan italic",
    "explain": "ansibrightblack italic",
    "finding.error": "ansired",
    "finding.warning": "ansiyellow",
    "finding.info": "ansicyan",
    "notice": "ansicyan",
    "malformed": "ansimagenta",
    "tls.ok": "ansigreen",
    "tls.warn": "ansiyellow",
    "banner": "bold",
    "raw.sent": "ansiblue",
    "raw.received": "ansibrightblack",
    "raw.control": "reverse",
    "bottom-toolbar": "noreverse bg:ansibrightblack ansiwhite",
    "toolbar.tls": "bg:ansibrightblack ansigreen bold",
    "toolbar.plain": "bg:ansibrightblack ansiyellow",
    "toolbar.phase": "bg:ansibrightblack ansiwhite bold",
    "toolbar.hint": "bg:ansibrightblack ansiwhite italic",
}

Fragments = list[tuple[str, str]]

#: Starts a line of text shown as it came (see the module's docstring).
REPLY_MARK = ("class:reply", "")
VERBATIM_MARK = ("class:verbatim", "")

#: Columns when nothing better is known: a pipe, a log, a test's buffer.
DEFAULT_COLUMNS = 80


def terminal_columns(output: Output | None) -> int:
    """How many columns `output` shows: its terminal's width, else COLUMNS, else 80.

    prompt_toolkit's `PlainTextOutput` (pipes, TERM=dumb) and `DummyOutput` always answer
    80 x 40 without looking, so for them the COLUMNS variable is asked, then the terminal
    their file is (TERM=dumb on a real terminal), then 80. No output known: what `shutil`
    finds for standard output.
    """
    if output is None:
        return shutil.get_terminal_size((DEFAULT_COLUMNS, 24)).columns
    if not isinstance(output, PlainTextOutput | DummyOutput):
        columns = output.get_size().columns
        return columns if columns > 0 else DEFAULT_COLUMNS
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(output.fileno()).columns or DEFAULT_COLUMNS
    except (OSError, ValueError, NotImplementedError):  # not a terminal, or no file at all
        return DEFAULT_COLUMNS


class RulesStyle(BaseStyle):
    """Style rules, parsed on first use: prompt_toolkit merges a style's rules with its own
    UI rules and parses the lot before it draws or prints, so a console's style is most
    often never parsed by itself (~1 ms a start, and 3 ms for three pygments-made styles)."""

    def __init__(self, rules: list[tuple[str, str]]) -> None:
        self._rules = rules
        self._parsed: Style | None = None

    @property
    def style_rules(self) -> list[tuple[str, str]]:
        return self._rules

    def get_attrs_for_style_str(self, style_str: str, default: Attrs = DEFAULT_ATTRS) -> Attrs:
        if self._parsed is None:
            self._parsed = Style(self._rules)
        return self._parsed.get_attrs_for_style_str(style_str, default)

    def invalidation_hash(self) -> int:
        return id(self)


def console_style(pygments_style: str = "default") -> BaseStyle:
    """The user's pygments style for everything, SMTP reply colours and ours on top."""
    from pygments.styles import get_style_by_name
    from pygments.util import ClassNotFound

    try:
        base = get_style_by_name(pygments_style)
    except ClassNotFound:
        base = get_style_by_name("default")
    # As prompt_toolkit's style_from_pygments_cls makes them, merged as merge_styles would.
    rules = [
        (pygments_token_to_classname(token), style)
        for pygments in (base, SMTPStyle)
        for token, style in pygments.styles.items()
    ]
    return RulesStyle([*rules, *STYLE_RULES.items()])


def say(key: str, lang: str, style: str = "class:notice", /, **params: object) -> Fragments:
    """One console message from the catalogue, as a line."""
    return [(style, message("console", key, lang, **params) + "\n")]


def reply_fragments(
    reply: Reply, latency: float | None = None, lang: str = "en", width: int | None = None
) -> Fragments:
    """A reply as one block, highlighted by the SMTP lexer, latency dimmed after it.

    The reply's own lines are never wrapped (each starts with `REPLY_MARK`); the notes under
    it (a decoded challenge, what is malformed) are wrapped to `width`."""
    text = reply.raw.decode("utf-8", errors="replace")
    # A server must not be able to move the cursor, ring the bell or rewrite what is shown:
    # every control character but the line ends is shown as \xNN.
    text = "\n".join(_visible_text(line) for line in text.replace("\r\n", "\n").split("\n"))
    if not text.endswith("\n"):
        text += "\n"
    fragments = _mark_lines(highlight_reply_fragments(text), REPLY_MARK)
    if latency is not None:
        # Put the latency before the final newline, on the reply's last line.
        style, last = fragments[-1]
        fragments[-1] = (style, last[:-1])
        fragments += [("class:latency", f"  ({latency * 1000:.0f} ms)"), ("", "\n")]
    if reply.code == 334 and not reply.malformed:
        fragments += _challenge_fragments(reply, lang)
    for problem in reply.problems:
        fragments += say("malformed", lang, "class:malformed", problem=_problem_text(problem, lang))
    return wrap.wrap_fragments(fragments, width)


def _mark_lines(fragments: Fragments, mark: tuple[str, str]) -> Fragments:
    """`fragments` with `mark` (an empty fragment) at the start of each line."""
    marked: Fragments = []
    line_start = True
    for style, text in fragments:
        for k, part in enumerate(text.split("\n")):
            if k:
                marked.append((style, "\n"))
                line_start = True
            if part:
                if line_start:
                    marked.append(mark)
                    line_start = False
                marked.append((style, part))
    return marked


def _problem_text(problem: str, lang: str) -> str:
    return localize(problem, lang)


def _challenge_fragments(reply: Reply, lang: str) -> Fragments:
    try:
        decoded = decode_challenge(reply.text)
    except AuthError:
        return say("challenge_not_base64", lang, "class:explain")
    return say("decoded_challenge", lang, "class:decoded", text=repr(decoded))


def explanation_fragments(
    reply: Reply, lang: str = "en", command: str | None = None, width: int | None = None
) -> Fragments:
    """After a 4xx/5xx: what the code means and what to do next, from the knowledge base."""
    if reply.code is None or not reply.is_error:
        return []
    from smtp_tutor.core.knowledge import load_knowledge  # at the first error, not at start

    kb = load_knowledge()
    info = kb.reply(reply.code, lang, command=command)
    fragments: Fragments = []
    if info is not None:
        fragments.append(("class:explain", f"  ↳ {reply.code} {info.title}: {info.next_step}\n"))
    if reply.enhanced:
        detail = kb.enhanced(reply.enhanced, lang)
        if detail is not None:
            fragments.append(("class:explain", f"  ↳ {reply.enhanced} {detail.title}\n"))
    return wrap.wrap_fragments(fragments, width)


def phase_name(label: str, lang: str) -> str:
    """A dialogue phase for a reader: SMTP's verbs (EHLO, RCPT×2, DATA) as they are, our words
    (greeted, ready, closed …) in the reader's language."""
    if label in _PHASE_WORDS:
        return message("console", f"toolbar_phase_{label.replace('-', '_')}", lang)
    return label


_PHASE_WORDS = frozenset({"awaiting-greeting", "greeted", "ready", "closed"})


def finding_fragments(
    findings: Sequence[Finding], lang: str = "en", width: int | None = None
) -> Fragments:
    marks = {"error": "✗", "warning": "!", "info": "i"}
    fragments: Fragments = []
    for finding in findings:
        # Parameters quote the line and the server (its advertised mechanisms, say).
        params = {name: _visible_text(str(value)) for name, value in finding.params.items()}
        if "phase" in params:
            params["phase"] = phase_name(params["phase"], lang)
        text = message("checker", finding.id, lang, **params)
        style = f"class:finding.{finding.severity}"
        fragments.append((style, f"  {marks[finding.severity]} {text}\n"))
    return wrap.wrap_fragments(fragments, width)


def tls_fragments(info: TLSInfo, lang: str = "en", width: int | None = None) -> Fragments:
    """The handshake's result in the words an administrator wants."""
    bits = message("console", "tls_bits", lang, bits=info.bits) if info.bits else ""
    fragments = say(
        "tls_active", lang, "class:tls.ok", version=info.version, cipher=info.cipher, bits=bits
    )
    cert = info.certificate
    if cert is not None:
        fragments += say("tls_subject", lang, "", subject=_visible_text(cert.subject))
        fragments += _certificate_details(cert, lang)
    if info.verified:
        fragments += say("tls_verified", lang, "class:tls.ok")
    else:
        # The reason may quote the certificate's names.
        reason = _visible_text(localize(info.verify_error, lang)) if info.verify_error else "?"
        fragments += say("tls_not_verified", lang, "class:tls.warn", reason=reason)
    discarded = getattr(info, "discarded_cleartext", 0)
    if discarded:
        fragments += say("tls_discarded", lang, "class:finding.error", count=discarded)
    return wrap.wrap_fragments(fragments, width)


def raw_fragments(direction: str, data: bytes) -> Fragments:
    """Bytes on the wire with CR and LF made visible: `C> EHLO me\\r\\n`."""
    style = "class:raw.sent" if direction == "sent" else "class:raw.received"
    arrow = "C>" if direction == "sent" else "S<"
    fragments: Fragments = []
    for line in data.splitlines(keepends=True):
        fragments.append((style, f"  {arrow} "))
        body = line.rstrip(b"\r\n")
        ending = line[len(body) :]
        fragments.append((style, _visible(body)))
        fragments.append(
            ("class:raw.control", ending.decode("ascii").replace("\r", "\\r").replace("\n", "\\n"))
        )
        fragments.append(("", "\n"))
    return fragments


def _visible(data: bytes) -> str:
    """Printable text as is; every other byte as \\xNN, so nothing can hide on screen."""
    return _visible_text(data.decode("utf-8", errors="backslashreplace"))


def _visible_text(text: str) -> str:
    """Server text for the screen: see `core.safe_text.visible`."""
    return visible(text)


def as_text(fragments: Fragments) -> FormattedText:
    return FormattedText(fragments)


def plain(fragments: Fragments) -> str:
    """The fragments without styling, for tests and non-terminal output."""
    return "".join(text for _style, text in fragments)


#: Body lines `:mailbox` shows unless asked for all (`:mailbox all`).
BODY_PREVIEW_LINES = 20

# A line Python's email parser takes as a header (or a header's continuation): its
# feedparser's own test. The first line that fails it ends the headers, for the parser.
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")


def mailbox_fragments(
    stored: StoredMessage,
    count: int,
    lang: str = "en",
    width: int | None = None,
    *,
    whole_body: bool = False,
) -> Fragments:
    """What the sandbox got: envelope, the header block as stored, the body, the defects.

    The header block is every line before the first empty one, exactly as stored — also a
    line Python's parser does not take as a header (it is marked, and why). The body is cut
    at `BODY_PREVIEW_LINES` lines unless `whole_body`, and then says how much is left out.
    Each defect the email package found comes with what it means. Stored lines are shown as
    they are, never wrapped; the words around them wrap to `width`.
    """
    envelope = stored.envelope
    none = message("console", "none", lang)
    tls = envelope.get("tls") or {}
    fragments = say("mailbox_title", lang, "class:banner", count=count, key=stored.key)
    fragments += say(
        "mailbox_envelope",
        lang,
        "",
        sender=envelope.get("mail_from", ""),
        recipients=", ".join(f"<{r}>" for r in envelope.get("rcpt_tos", [])),
    )
    fragments += say(
        "mailbox_session",
        lang,
        "",
        client=(envelope.get("client") or {}).get("address", "?"),
        helo=envelope.get("helo") or none,
        tls=tls.get("version") or none,
        user=envelope.get("auth_user") or none,
    )
    header_lines, body = _split_stored(stored.raw)
    fragments += say("mailbox_headers", lang, "class:notice")
    fragments += _header_block_fragments(header_lines, lang)
    body_lines = _lines_of(body)
    fragments += say("mailbox_body", lang, "class:notice", size=len(body), lines=len(body_lines))
    shown = body_lines if whole_body else body_lines[:BODY_PREVIEW_LINES]
    for line in shown:
        fragments += [VERBATIM_MARK, ("", f"    {_visible(line)}\n" if line else "\n")]
    if len(shown) < len(body_lines):
        fragments += say(
            "mailbox_body_more", lang, "class:notice", more=len(body_lines) - len(shown)
        )
    fragments += _defect_fragments(stored.defects, lang)
    return wrap.wrap_fragments(fragments, width)


def _split_stored(raw: bytes) -> tuple[list[bytes], bytes]:
    """The header block's lines (line ends removed) and the body after the first empty line."""
    offset = 0
    lines: list[bytes] = []
    while offset < len(raw):
        end = raw.find(b"\n", offset)
        end = len(raw) if end < 0 else end + 1
        line = raw[offset:end].removesuffix(b"\n").removesuffix(b"\r")
        offset = end
        if not line:
            return lines, raw[offset:]
        lines.append(line)
    return lines, b""


def _lines_of(body: bytes) -> list[bytes]:
    """The body's lines, split at LF only (a CR before it is the line end, any other CR is
    text), so what is shown is what a mail reader gets."""
    if not body:
        return []
    lines = body.removesuffix(b"\n").split(b"\n")
    return [line.removesuffix(b"\r") for line in lines]


def _header_block_fragments(lines: list[bytes], lang: str) -> Fragments:
    """Each stored header line; under a line the parser does not take as a header, why not;
    under a header with RFC 2047 encoded words, its decoded text."""
    if not lines:
        return say("mailbox_no_headers", lang, "class:explain")
    fragments: Fragments = []
    field: list[bytes] = []
    for k, line in enumerate(lines):
        name, colon, value = line.partition(b":")
        if _HEADER_LINE.match(line) and colon and line[:1] not in (b" ", b"\t"):
            fragments += [
                VERBATIM_MARK,
                ("class:pygments.name.tag", f"    {_visible(name)}"),
                ("", f":{_visible(value)}\n"),
            ]
        else:
            fragments += [VERBATIM_MARK, ("", f"    {_visible(line)}\n")]
        if not _HEADER_LINE.match(line):
            why = "mailbox_not_header_name" if colon else "mailbox_not_header_no_colon"
            fragments += say(why, lang, "class:finding.warning")
        field = [*field, line] if line[:1] in (b" ", b"\t") and field else [line]
        following = lines[k + 1] if k + 1 < len(lines) else b""
        if following[:1] not in (b" ", b"\t"):
            decoded = _decoded_header(b"".join(field))
            if decoded is not None:
                shown = _visible(field[0].partition(b":")[0])
                fragments += say("mailbox_decoded", lang, "class:decoded", name=shown, text=decoded)
    return fragments


def _decoded_header(field: bytes) -> str | None:
    """A header's value with its RFC 2047 encoded words decoded; None if it has none."""
    _name, colon, value = field.partition(b":")
    if not colon or b"=?" not in value:
        return None
    text = value.decode("ascii", errors="surrogateescape")
    from email.errors import HeaderParseError
    from email.header import decode_header, make_header

    try:
        decoded = str(make_header(decode_header(text)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return None
    decoded = _visible_text(decoded)
    return decoded if decoded != text.strip() else None


def _defect_fragments(defects: Sequence[Exception], lang: str) -> Fragments:
    """The email package's defects, each with what it means in plain words."""
    if not defects:
        return say("mailbox_no_defects", lang, "class:tls.ok")
    fragments = say("mailbox_defects", lang, "class:finding.warning")
    explained = load_catalogue("console").get("mailbox_defect", {})
    for defect in defects:
        name = type(defect).__name__
        detail = _visible_text(str(defect))
        line = f"    - {name}: {detail}" if detail else f"    - {name}"
        fragments.append(("class:finding.warning", line + "\n"))
        key = f"mailbox_defect.{name}" if name in explained else "mailbox_defect_unknown"
        fragments.append(("class:explain", f"      {message('console', key, lang)}\n"))
    return fragments


def hex_fragments(direction: str, data: bytes) -> Fragments:
    """A hex dump of bytes on the wire: offset, 16 bytes in hex, the printable ones beside."""
    style = "class:raw.sent" if direction == "sent" else "class:raw.received"
    arrow = "C>" if direction == "sent" else "S<"
    fragments: Fragments = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{byte:02x}" for byte in chunk)
        text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        fragments.append((style, f"  {arrow} {offset:04x}  {hexes:<47}  {text}\n"))
    return fragments


def caps_fragments(
    history: Sequence[tuple[str, Capabilities]], lang: str = "en", width: int | None = None
) -> Fragments:
    """The latest EHLO's keywords, each explained, and what changed since the one before.

    A table: explanations wrap under their own column, and the lines an explanation has of
    its own (AUTH's mechanisms, one each) start in that column too."""
    from smtp_tutor.core.knowledge import load_knowledge

    if not history:
        return say("caps_none", lang, "class:finding.warning")
    label, caps = history[-1]
    kb = load_knowledge()
    server = _visible_text(caps.server_name)
    fragments = say("caps_title", lang, "class:banner", server=server, context=label)
    for keyword, params in caps.keywords.items():
        shown = _visible_text(" ".join((keyword, *params)))  # explained as shown, escapes too
        info = kb.ehlo_line(shown, lang)
        summary = info.detail or info.summary if info is not None else ""
        first, *more = summary.split("\n")
        key = f"    {shown:<28}"
        column = wrap.display_width(key) + 1
        row = [("class:pygments.name.attribute", key), ("class:explain", f" {first}\n")]
        fragments += wrap.wrap_fragments(row, width, hang=column)
        for line in more:
            row = [("class:explain", " " * column + line.strip() + "\n")]
            fragments += wrap.wrap_fragments(row, width, hang=column + 2)
    if len(history) > 1:
        before_label, before = history[-2]
        fragments += _caps_diff(before_label, before, label, caps, lang)
    return wrap.wrap_fragments(fragments, width)


def _caps_diff(
    before_label: str, before: Capabilities, label: str, after: Capabilities, lang: str
) -> Fragments:
    added = [k for k in after.keywords if k not in before.keywords]
    removed = [k for k in before.keywords if k not in after.keywords]
    changed = [
        k
        for k in after.keywords
        if k in before.keywords and after.keywords[k] != before.keywords[k]
    ]
    fragments = say("caps_diff_title", lang, "class:notice", before=before_label, after=label)
    if not (added or removed or changed):
        return fragments + say("caps_same", lang, "class:explain")
    for keyword in added:
        shown = _visible_text(" ".join((keyword, *after.keywords[keyword])))
        fragments.append(("class:tls.ok", f"    + {shown}\n"))
    for keyword in removed:
        shown = _visible_text(" ".join((keyword, *before.keywords[keyword])))
        fragments.append(("class:finding.error", f"    - {shown}\n"))
    for keyword in changed:
        old = _visible_text(" ".join(before.keywords[keyword]))
        new = _visible_text(" ".join(after.keywords[keyword]))
        shown = _visible_text(keyword)
        fragments.append(("class:finding.warning", f"    ~ {shown}: {old} → {new}\n"))
    return fragments


def tls_detail_fragments(
    info: TLSInfo | None, alpn: str | None, lang: str = "en", width: int | None = None
) -> Fragments:
    """`:tls`: the whole chain as sent, version, cipher, SNI and ALPN, the verdict explained."""
    if info is None:
        return say("tls_off", lang, "class:finding.warning")
    fragments = tls_fragments(info, lang)
    sni, alpn = _visible_text(info.server_hostname or "-"), _visible_text(alpn or "-")
    fragments += say("tls_sni", lang, "", sni=sni, alpn=alpn)
    for depth, cert in enumerate(info.chain):
        fragments += say(
            "tls_chain_entry",
            lang,
            "class:banner",
            depth=depth,
            subject=_visible_text(cert.subject),
        )
        fragments += _certificate_details(cert, lang)
    if not info.verified and info.verify_error:
        fragments += say("tls_advice", lang, "class:explain")
    return wrap.wrap_fragments(fragments, width)


def _certificate_details(cert: CertificateInfo, lang: str) -> Fragments:
    """Issuer, validity and names: the lines under a certificate's subject."""
    fragments = say("tls_issuer", lang, "", issuer=_visible_text(cert.issuer))
    fragments += say(
        "tls_valid",
        lang,
        "",
        start=f"{cert.not_before:%Y-%m-%d}",
        end=f"{cert.not_after:%Y-%m-%d}",
    )
    if cert.names:
        names = ", ".join(_visible_text(name) for name in cert.names)
        fragments += say("tls_names", lang, "", names=names)
    return fragments
