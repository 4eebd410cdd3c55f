"""Pure functions from protocol objects to styled text fragments.

Nothing here prints; the console decides where the fragments go. Keeping rendering pure
means every colour and every explanation can be tested from a `Reply` alone. Words come from
`data/console.toml` through `say`, so every line exists in English and Chinese.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.styles import BaseStyle, Style, merge_styles
from prompt_toolkit.styles.pygments import style_from_pygments_cls

from smtp_tutor.core.auth import AuthError, decode_challenge
from smtp_tutor.core.checker import Finding
from smtp_tutor.core.dialogue import Capabilities
from smtp_tutor.core.knowledge import load_knowledge
from smtp_tutor.core.messages import localize, message
from smtp_tutor.core.replies import Reply
from smtp_tutor.core.safe_text import visible
from smtp_tutor.lexer import SMTPStyle, highlight_reply_fragments
from smtp_tutor.client.tls import CertificateInfo, TLSInfo

if TYPE_CHECKING:
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


def console_style(pygments_style: str = "default") -> BaseStyle:
    """The user's pygments style for everything, SMTP reply colours and ours on top."""
    from pygments.styles import get_style_by_name
    from pygments.util import ClassNotFound

    try:
        base = style_from_pygments_cls(get_style_by_name(pygments_style))
    except ClassNotFound:
        base = style_from_pygments_cls(get_style_by_name("default"))
    return merge_styles([base, style_from_pygments_cls(SMTPStyle), Style.from_dict(STYLE_RULES)])


def say(key: str, lang: str, style: str = "class:notice", /, **params: object) -> Fragments:
    """One console message from the catalogue, as a line."""
    return [(style, message("console", key, lang, **params) + "\n")]


def reply_fragments(reply: Reply, latency: float | None = None, lang: str = "en") -> Fragments:
    """A reply as one block, highlighted by the SMTP lexer, latency dimmed after it."""
    text = reply.raw.decode("utf-8", errors="replace")
    # A server must not be able to move the cursor, ring the bell or rewrite what is shown:
    # every control character but the line ends is shown as \xNN.
    text = "\n".join(_visible_text(line) for line in text.replace("\r\n", "\n").split("\n"))
    if not text.endswith("\n"):
        text += "\n"
    fragments = highlight_reply_fragments(text)
    if latency is not None:
        # Put the latency before the final newline, on the reply's last line.
        style, last = fragments[-1]
        fragments[-1] = (style, last[:-1])
        fragments += [("class:latency", f"  ({latency * 1000:.0f} ms)"), ("", "\n")]
    if reply.code == 334 and not reply.malformed:
        fragments += _challenge_fragments(reply, lang)
    for problem in reply.problems:
        fragments += say("malformed", lang, "class:malformed", problem=_problem_text(problem, lang))
    return fragments


def _problem_text(problem: str, lang: str) -> str:
    return localize(problem, lang)


def _challenge_fragments(reply: Reply, lang: str) -> Fragments:
    try:
        decoded = decode_challenge(reply.text)
    except AuthError:
        return say("challenge_not_base64", lang, "class:explain")
    return say("decoded_challenge", lang, "class:decoded", text=repr(decoded))


def explanation_fragments(reply: Reply, lang: str = "en", command: str | None = None) -> Fragments:
    """After a 4xx/5xx: what the code means and what to do next, from the knowledge base."""
    if reply.code is None or not reply.is_error:
        return []
    kb = load_knowledge()
    info = kb.reply(reply.code, lang, command=command)
    fragments: Fragments = []
    if info is not None:
        fragments.append(("class:explain", f"  ↳ {reply.code} {info.title}: {info.next_step}\n"))
    if reply.enhanced:
        detail = kb.enhanced(reply.enhanced, lang)
        if detail is not None:
            fragments.append(("class:explain", f"  ↳ {reply.enhanced} {detail.title}\n"))
    return fragments


def phase_name(label: str, lang: str) -> str:
    """A dialogue phase for a reader: SMTP's verbs (EHLO, RCPT×2, DATA) as they are, our words
    (greeted, ready, closed …) in the reader's language."""
    if label in _PHASE_WORDS:
        return message("console", f"toolbar_phase_{label.replace('-', '_')}", lang)
    return label


_PHASE_WORDS = frozenset({"awaiting-greeting", "greeted", "ready", "closed"})


def finding_fragments(findings: Sequence[Finding], lang: str = "en") -> Fragments:
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
    return fragments


def tls_fragments(info: TLSInfo, lang: str = "en") -> Fragments:
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
    return fragments


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


def mailbox_fragments(stored: StoredMessage, count: int, lang: str = "en") -> Fragments:
    """What the sandbox got: envelope, headers as parsed, body size and the parser's defects."""
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
    fragments += say("mailbox_headers", lang, "class:notice")
    message_obj = stored.message
    for name, value in message_obj.items():
        fragments.append(("class:pygments.name.tag", f"    {name}"))
        fragments.append(("", f": {_visible(str(value).encode())}\n"))
    body = stored.raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in stored.raw else b""
    fragments += say("mailbox_body", lang, "class:notice", size=len(body))
    for line in body.decode("utf-8", errors="replace").splitlines()[:20]:
        fragments.append(("", f"    {_visible(line.encode())}\n"))
    defects = stored.defects
    if defects:
        fragments += say("mailbox_defects", lang, "class:finding.warning")
        for defect in defects:
            fragments.append(
                ("class:finding.warning", f"    - {type(defect).__name__}: {defect}\n")
            )
    else:
        fragments += say("mailbox_no_defects", lang, "class:tls.ok")
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


def caps_fragments(history: Sequence[tuple[str, Capabilities]], lang: str = "en") -> Fragments:
    """The latest EHLO's keywords, each explained, and what changed since the one before."""
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
        fragments.append(("class:pygments.name.attribute", f"    {shown:<28}"))
        fragments.append(("class:explain", f" {summary}\n"))
    if len(history) > 1:
        before_label, before = history[-2]
        fragments += _caps_diff(before_label, before, label, caps, lang)
    return fragments


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


def tls_detail_fragments(info: TLSInfo | None, alpn: str | None, lang: str = "en") -> Fragments:
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
    return fragments


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
