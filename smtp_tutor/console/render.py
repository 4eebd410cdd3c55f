"""Pure functions from protocol objects to styled text fragments.

Nothing here prints; the console decides where the fragments go. Keeping rendering pure
means every colour and every explanation can be tested from a `Reply` alone.
"""

from __future__ import annotations

from prompt_toolkit.formatted_text import FormattedText

from smtp_tutor.core.auth import AuthError, decode_challenge
from smtp_tutor.core.checker import Finding
from smtp_tutor.core.knowledge import load_knowledge
from smtp_tutor.core.messages import message
from smtp_tutor.core.replies import Reply
from smtp_tutor.tls import TLSInfo

#: Style classes; the console's Style maps them to colours (and NO_COLOR to nothing).
CLASS_STYLE = {
    2: "class:reply.ok",
    3: "class:reply.more",
    4: "class:reply.transient",
    5: "class:reply.permanent",
}
STYLE_RULES = {
    "reply.ok": "ansigreen bold",
    "reply.more": "ansicyan bold",
    "reply.transient": "ansiyellow bold",
    "reply.permanent": "ansired bold",
    "reply.malformed": "ansimagenta bold",
    "reply.enhanced": "ansiblue",
    "reply.text": "",
    "latency": "ansibrightblack",
    "sent": "ansibrightblack",
    "decoded": "ansicyan italic",
    "explain": "ansibrightblack italic",
    "finding.error": "ansired",
    "finding.warning": "ansiyellow",
    "finding.info": "ansicyan",
    "notice": "ansicyan",
    "tls.ok": "ansigreen",
    "tls.warn": "ansiyellow",
    "banner": "bold",
}

Fragments = list[tuple[str, str]]


def reply_fragments(reply: Reply, latency: float | None = None) -> Fragments:
    """A reply as one block: code coloured by class, enhanced code, text, latency dimmed."""
    style = CLASS_STYLE.get(reply.code_class or 0, "class:reply.malformed")
    if reply.malformed:
        style = "class:reply.malformed"
    fragments: Fragments = []
    count = len(reply.lines)
    for index, line in enumerate(reply.lines):
        separator = " " if index == count - 1 else "-"
        code = f"{reply.code:03d}" if reply.code is not None else "???"
        if reply.code is None:
            fragments.append((style, line))
        else:
            fragments.append((style, code + separator))
            fragments += _text_fragments(line)
        if index == count - 1 and latency is not None:
            fragments.append(("class:latency", f"  ({latency * 1000:.0f} ms)"))
        fragments.append(("", "\n"))
    if reply.code == 334 and not reply.malformed:
        fragments += _challenge_fragments(reply)
    for problem in reply.problems:
        fragments.append(("class:reply.malformed", f"  ! malformed reply: {problem}\n"))
    return fragments


def _text_fragments(line: str) -> Fragments:
    words = line.split(" ", 1)
    head = words[0]
    if len(head) >= 5 and head[0] in "245" and head.count(".") == 2 and head[1] == ".":
        rest = " " + words[1] if len(words) > 1 else ""
        return [("class:reply.enhanced", head), ("class:reply.text", rest)]
    return [("class:reply.text", line)]


def _challenge_fragments(reply: Reply) -> Fragments:
    try:
        decoded = decode_challenge(reply.text)
    except AuthError:
        return [("class:explain", "  (the challenge is not valid base64)\n")]
    return [("class:decoded", f"  ↳ decoded challenge: {decoded!r}\n")]


def explanation_fragments(reply: Reply, lang: str = "en", command: str | None = None) -> Fragments:
    """After a 4xx/5xx: what the code means and what to do next, from the knowledge base."""
    if reply.code is None or not reply.is_error:
        return []
    kb = load_knowledge()
    info = kb.reply(reply.code, lang)
    fragments: Fragments = []
    if info is not None:
        fragments.append(("class:explain", f"  ↳ {reply.code} {info.title}: {info.next_step}\n"))
    if reply.enhanced:
        detail = kb.enhanced(reply.enhanced, lang)
        if detail is not None:
            fragments.append(("class:explain", f"  ↳ {reply.enhanced} {detail.title}\n"))
    return fragments


def finding_fragments(findings: list[Finding], lang: str = "en") -> Fragments:
    marks = {"error": "✗", "warning": "!", "info": "i"}
    fragments: Fragments = []
    for finding in findings:
        text = message("checker", finding.id, lang, **finding.params)
        fragments.append(
            (f"class:finding.{finding.severity}", f"  {marks[finding.severity]} {text}\n")
        )
    return fragments


def tls_fragments(info: TLSInfo) -> Fragments:
    """The handshake's result in the words an administrator wants."""
    bits = f", {info.bits} bits" if info.bits else ""
    fragments: Fragments = [
        ("class:tls.ok", f"  TLS active: {info.version}, {info.cipher}{bits}\n")
    ]
    cert = info.certificate
    if cert is not None:
        fragments.append(("", f"  certificate subject: {cert.subject}\n"))
        fragments.append(("", f"  issuer: {cert.issuer}\n"))
        valid = f"{cert.not_before:%Y-%m-%d} to {cert.not_after:%Y-%m-%d}"
        fragments.append(("", f"  valid: {valid}\n"))
        if cert.names:
            fragments.append(("", f"  names: {', '.join(cert.names)}\n"))
    if info.verified:
        fragments.append(
            ("class:tls.ok", "  ✓ verified against the system's trusted authorities\n")
        )
    else:
        reason = info.verify_error or "unknown reason"
        fragments.append(("class:tls.warn", f"  ! not verified: {reason} — the session goes on\n"))
    return fragments


def as_text(fragments: Fragments) -> FormattedText:
    return FormattedText(fragments)


def plain(fragments: Fragments) -> str:
    """The fragments without styling, for tests and non-terminal output."""
    return "".join(text for _style, text in fragments)
