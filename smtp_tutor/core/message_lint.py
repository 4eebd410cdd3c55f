"""A teacher reading the message over the student's shoulder before the final dot.

DATA mode collects the lines the student types; before they go out, `lint_message` says
what a receiving system will make of them: missing Date/From (RFC 5322 §3.6), a header line
that is neither a header nor a continuation (the classic tutorial's lone ``charset=gb2312``),
raw non-ASCII headers without RFC 2047 or SMTPUTF8, an 8-bit body without BODY=8BITMIME
(RFC 6152), over-long lines, envelope vs header addresses, and whatever Python's own
``email`` parser reports as defects. It never blocks anything and never raises: like the
command checker it only predicts, and the words live in ``data/lint.toml``.

Sans-I/O: only the stdlib ``email`` package. The header block is scanned here with the same
rules as ``email.feedparser`` (so line numbers can be given and both agree on where the
headers end); the parser itself is used for structured-header and MIME defects.
"""

from __future__ import annotations

import contextlib
import email.errors
import email.parser
import email.policy
import email.utils
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.message import Message
from typing import Literal

from smtp_tutor.core.catalogue import message

__all__ = [
    "ADDRESS_HEADERS",
    "HEADER_LINE_LIMIT",
    "HEADER_LINE_SHOULD",
    "LINT_IDS",
    "PLACEHOLDER_FROM",
    "SINGLETON_HEADERS",
    "LintFinding",
    "Severity",
    "encode_header_line",
    "header_template",
    "lint_message",
    "render_finding",
]

Severity = Literal["error", "warning", "info"]

#: RFC 5322 §2.1.1: a line MUST be at most 998 characters and SHOULD be at most 78.
HEADER_LINE_LIMIT = 998
HEADER_LINE_SHOULD = 78
#: Headers that RFC 5322 §3.6 (and MIME) allow at most once.
SINGLETON_HEADERS = frozenset(
    {
        "date",
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "message-id",
        "in-reply-to",
        "references",
        "subject",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)
#: Headers whose value is an address list: RFC 2047 may encode display names, never addresses.
ADDRESS_HEADERS = frozenset(
    {"from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-to", "resent-cc"}
)
#: What the template puts in From: when no MAIL FROM was given yet.
PLACEHOLDER_FROM = "you@example.com"
#: Domain for Message-ID when nothing better is known (``.invalid`` is reserved, RFC 2606).
_FALLBACK_DOMAIN = "smtp-tutor.invalid"

#: Every finding id `lint_message` can produce; each has a table in ``data/lint.toml``.
LINT_IDS = frozenset(
    {
        "missing_date",
        "missing_from",
        "missing_message_id",
        "missing_mime_version",
        "no_header_block",
        "not_a_continuation",
        "missing_blank_line",
        "space_before_colon",
        "continuation_first",
        "blank_line_not_empty",
        "mbox_from_line",
        "missing_header_name",
        "non_ascii_header",
        "non_ascii_address",
        "body_8bit_without_8bitmime",
        "body_8bit_not_declared",
        "body_not_encoded",
        "body_8bit_no_charset",
        "unknown_transfer_encoding",
        "line_too_long",
        "header_line_long",
        "header_from_differs",
        "header_to_differs",
        "no_recipient_headers",
        "bad_date",
        "date_without_zone",
        "duplicate_header",
        "header_missing_value",
        "invalid_header",
        "obsolete_header_syntax",
        "bad_base64_body",
        "parser_defect",
    }
)


@dataclass(frozen=True)
class LintFinding:
    """One remark about the message: an id from ``lint.toml``, where, and maybe a fix.

    ``fix`` is a replacement for line ``line`` (e.g. the RFC 2047-encoded header, or the
    line indented so it becomes a continuation) that the console can offer to apply.
    """

    id: str
    severity: Severity
    line: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    fix: str | None = None


def render_finding(finding: LintFinding, lang: str | None = "en") -> str:
    """The finding in the student's language; ``{line}`` is available to every text."""
    params: dict[str, object] = {"line": "" if finding.line is None else finding.line}
    params.update(finding.params)
    return message("lint", finding.id, lang, **params)


# --- scanning the header block the way email.feedparser does --------------------------

_EOL = re.compile(r"\r\n|\r|\n")
#: email.feedparser.headerRE: what may appear in a header block at all.
_HEADER_BLOCK_LINE = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")
_FIELD = re.compile(r"([\041-\071\073-\176]*):")
_NAME_SPACE_COLON = re.compile(r"([\041-\071\073-\176]+)[ \t]+:(.*)\Z", re.DOTALL)
_PARAMETER_LIKE = re.compile(r"[\w.-]+\s*=")
_KNOWN_CTE = frozenset({"7bit", "8bit", "binary", "base64", "quoted-printable"})


@dataclass
class _Header:
    name: str
    line: int  # 1-based number of the student's line where it starts
    lines: list[str]  # the physical lines: first + continuations
    numbers: list[int]  # the student's line number of each physical line

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def value(self) -> str:
        """Unfolded value (RFC 5322 §2.2.3 removes only the line breaks), stripped."""
        return "".join(self.lines)[len(self.name) + 1 :].strip(" \t")


@dataclass
class _Scan:
    headers: list[_Header]
    body: list[tuple[int, str]]  # (line number, text)
    findings: list[LintFinding]


def _physical_lines(lines: Iterable[str]) -> list[tuple[int, str]]:
    """One entry per line the parser sees; a typed line holding CR/LF counts as several."""
    return [(n, part) for n, typed in enumerate(lines, start=1) for part in _EOL.split(typed)]


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _looks_like_continuation(previous: _Header, text: str) -> bool:
    """Whether a colon-less line was meant to continue the header before it.

    A header ending in ``;`` or ``,`` promises more (parameters, addresses), and a
    ``name=value`` line is a MIME parameter. Otherwise the student more likely forgot the
    blank line before the body.
    """
    return previous.lines[-1].rstrip().endswith((";", ",")) or bool(_PARAMETER_LIKE.match(text))


def _scan(lines: list[str]) -> _Scan:
    phys = _physical_lines(lines)
    findings: list[LintFinding] = []
    end = 0  # index of the first line that is not part of the header block
    while end < len(phys) and phys[end][1] and _HEADER_BLOCK_LINE.match(phys[end][1]):
        end += 1
    body_start = end + 1 if end < len(phys) and phys[end][1] == "" else end
    pushed_back: list[tuple[int, str]] = []  # a "From " line the parser returns to the body
    ended_without_blank_line = end < len(phys) and phys[end][1] != ""

    headers: list[_Header] = []
    current: _Header | None = None
    for index in range(end):
        number, text = phys[index]
        if text[0] in " \t":
            if current is None:
                findings.append(
                    LintFinding(
                        "continuation_first",
                        "error",
                        number,
                        {"text": _shorten(text.strip())},
                        text.lstrip(" \t") or None,
                    )
                )
            else:
                if not text.strip(" \t"):
                    findings.append(
                        LintFinding(
                            "blank_line_not_empty", "error", number, {"header": current.name}, ""
                        )
                    )
                current.lines.append(text)
                current.numbers.append(number)
            continue
        current = None
        if text.startswith("From "):
            if index == end - 1 and index > 0:
                # feedparser: a "From " line closing the header block is the body's first line
                # (the separator, if any, is already consumed).
                pushed_back = [phys[index]]
            findings.append(
                LintFinding(
                    "mbox_from_line",
                    "error",
                    number,
                    {"text": _shorten(text)},
                    "From: " + text[5:].lstrip(" \t"),
                )
            )
            if index == end - 1 and index > 0:
                break
            continue
        name = _FIELD.match(text)
        if name is None or not name.group(1):
            findings.append(
                LintFinding("missing_header_name", "error", number, {"text": _shorten(text)})
            )
            continue
        current = _Header(name.group(1), number, [text], [number])
        headers.append(current)

    if ended_without_blank_line:
        findings.append(_end_of_headers_finding(phys[end], headers))
    body = pushed_back + phys[body_start:]
    return _Scan(headers, body, findings)


def _end_of_headers_finding(where: tuple[int, str], headers: list[_Header]) -> LintFinding:
    number, text = where
    shown = _shorten(text)
    spaced = _NAME_SPACE_COLON.match(text)
    if spaced:
        fixed = f"{spaced.group(1)}:{spaced.group(2)}"
        return LintFinding(
            "space_before_colon", "error", number, {"header": spaced.group(1), "text": shown}, fixed
        )
    if not headers:
        return LintFinding("no_header_block", "error", number, {"text": shown})
    if _looks_like_continuation(headers[-1], text):
        return LintFinding(
            "not_a_continuation",
            "error",
            number,
            {"text": shown, "header": headers[-1].name},
            " " + text,
        )
    return LintFinding("missing_blank_line", "error", number, {"text": shown})


# --- RFC 2047 ------------------------------------------------------------------------


def _encode_words(value: str, name: str = "") -> str | None:
    """RFC 2047 encoded words (UTF-8, B or Q, whichever is shorter), all on one line.

    ``linesep=""`` keeps Header's splitting into words of at most ~75 characters but
    joins them with a space instead of folding; whitespace between encoded words is
    ignored when decoding (RFC 2047 §6.2).
    """
    try:
        return Header(value, "utf-8", header_name=name or None).encode(linesep="")
    except Exception:  # surrogates, embedded header lines: leave the line alone
        return None


def _idna(domain: str) -> str | None:
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except Exception:
        return None


def _addresses(value: str) -> list[tuple[str, str]]:
    try:
        return [(n, a) for n, a in email.utils.getaddresses([value]) if n or a]
    except Exception:
        return []


def _encode_addresses(value: str) -> str | None:
    """Encode display names only; IDNA for domains. None when the address itself is 8-bit.

    Group syntax (``name: a@b;``) is left to a human: getaddresses would drop the name.
    """
    if ":" in value or ";" in value:
        return None
    pairs = _addresses(value)
    if not pairs:
        return None
    parts: list[str] = []
    for name, addr in pairs:
        local, at, domain = addr.rpartition("@")
        if not at:
            local, domain = addr, ""
        ascii_domain = _idna(domain)
        if not local.isascii() or not local or ascii_domain is None:
            return None
        ascii_addr = f"{local}@{ascii_domain}" if at else local
        if not name:
            parts.append(ascii_addr)
        elif name.isascii():
            parts.append(email.utils.formataddr((name, ascii_addr)))
        else:
            words = _encode_words(name)
            if words is None:
                return None
            parts.append(f"{words} <{ascii_addr}>")
    return ", ".join(parts)


def encode_header_line(line: str) -> str:
    """``Subject: 你好`` → ``Subject: =?utf-8?b?5L2g5aW9?=``; the name is kept.

    ASCII lines, lines that are not ``Name: value``, and values that cannot be encoded
    (an 8-bit local part in an address) come back unchanged — so it is idempotent. In
    address headers only display names are encoded (RFC 2047 §5 forbids encoded words in
    an address) and domains become IDNA. The result is one line; a long value becomes
    several encoded words separated by spaces, which may exceed 78 characters.
    """
    if line.isascii():
        return line
    found = _FIELD.match(line)
    if found is None or not found.group(1):
        return line
    name = found.group(1)
    value = line[found.end() :].strip(" \t")
    if name.lower() in ADDRESS_HEADERS:
        encoded = _encode_addresses(value)
    else:
        encoded = _encode_words(value, name)
    if encoded is None or not encoded.isascii():
        return line
    return f"{name}: {encoded}"


# --- the lint ------------------------------------------------------------------------


def _to_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _parse(lines: list[str]) -> Message | None:
    data = b"\r\n".join(_to_bytes(line) for line in lines) + b"\r\n"
    try:
        return email.parser.BytesParser(policy=email.policy.default).parsebytes(data)
    except Exception:
        return None


def _first(headers: list[_Header], key: str) -> _Header | None:
    return next((h for h in headers if h.key == key), None)


def _address_set(values: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        for _name, addr in _addresses(value):
            if addr:
                seen.setdefault(addr.lower(), addr)
    return list(seen.values())


def _check_required(headers: list[_Header], non_ascii_body: bool) -> list[LintFinding]:
    keys = {h.key for h in headers}
    findings: list[LintFinding] = []
    if "date" not in keys:
        findings.append(LintFinding("missing_date", "error"))
    if "from" not in keys:
        findings.append(LintFinding("missing_from", "error"))
    if "message-id" not in keys:
        findings.append(LintFinding("missing_message_id", "warning"))
    uses_mime = "content-type" in keys or "content-transfer-encoding" in keys
    if "mime-version" not in keys and (uses_mime or non_ascii_body):
        findings.append(LintFinding("missing_mime_version", "warning"))
    return findings


def _check_headers(headers: list[_Header], smtputf8: bool) -> list[LintFinding]:
    findings: list[LintFinding] = []
    counts: dict[str, int] = {}
    for header in headers:
        counts[header.key] = counts.get(header.key, 0) + 1
        if header.key in SINGLETON_HEADERS and counts[header.key] == 2:
            total = sum(1 for h in headers if h.key == header.key)
            findings.append(
                LintFinding(
                    "duplicate_header",
                    "error",
                    header.line,
                    {"header": header.name, "count": str(total)},
                )
            )
        if not smtputf8 and not all(text.isascii() for text in header.lines):
            findings.append(_non_ascii_header(header))
    date = _first(headers, "date")
    if date is not None and date.value:
        findings += _check_date(date)
    return findings


def _non_ascii_header(header: _Header) -> LintFinding:
    params = {"header": header.name}
    if header.key in ADDRESS_HEADERS:
        bad = [a for _n, a in _addresses(header.value) if not a.rpartition("@")[0].isascii()]
        if bad or any("@" not in a and not a.isascii() for _n, a in _addresses(header.value)):
            return LintFinding("non_ascii_address", "error", header.line, params)
    fix = None
    if len(header.lines) == 1:
        encoded = encode_header_line(header.lines[0])
        fix = encoded if encoded != header.lines[0] else None
    return LintFinding("non_ascii_header", "error", header.line, params, fix)


def _check_date(date: _Header) -> list[LintFinding]:
    params = {"value": _shorten(date.value)}
    try:
        parsed = email.utils.parsedate_to_datetime(date.value)
    except Exception:
        return [LintFinding("bad_date", "error", date.line, params)]
    if parsed.tzinfo is None:
        return [LintFinding("date_without_zone", "warning", date.line, params)]
    return []


def _check_lengths(scan: _Scan, lines: list[str]) -> list[LintFinding]:
    findings: list[LintFinding] = []
    header_lines = {n for h in scan.headers for n in h.numbers}
    for number, text in _physical_lines(lines):
        octets = len(_to_bytes(text))
        if octets > HEADER_LINE_LIMIT:
            findings.append(
                LintFinding(
                    "line_too_long",
                    "error",
                    number,
                    {"length": str(octets), "limit": str(HEADER_LINE_LIMIT)},
                )
            )
        elif number in header_lines and len(text) > HEADER_LINE_SHOULD:
            findings.append(
                LintFinding(
                    "header_line_long",
                    "info",
                    number,
                    {"length": str(len(text)), "limit": str(HEADER_LINE_SHOULD)},
                )
            )
    return findings


def _check_body(scan: _Scan, parsed: Message | None, *, eight_bit_mime: bool) -> list[LintFinding]:
    first_8bit = next((n for n, text in scan.body if not text.isascii()), None)
    if first_8bit is None:
        return []
    findings: list[LintFinding] = []
    cte_header = _first(scan.headers, "content-transfer-encoding")
    cte = cte_header.value.lower() if cte_header else ""
    if cte in ("base64", "quoted-printable"):
        findings.append(LintFinding("body_not_encoded", "error", first_8bit, {"cte": cte}))
    elif not eight_bit_mime:
        findings.append(LintFinding("body_8bit_without_8bitmime", "error", first_8bit))
    elif cte not in ("8bit", "binary"):
        findings.append(
            LintFinding("body_8bit_not_declared", "warning", first_8bit, {"cte": cte or "7bit"})
        )
    maintype, charset = "text", None
    if parsed is not None:
        try:
            maintype = parsed.get_content_maintype()
            charset = parsed.get_content_charset()
        except Exception:
            pass
    if maintype == "text" and not charset:
        findings.append(LintFinding("body_8bit_no_charset", "warning", first_8bit))
    return findings


def _check_envelope(
    headers: list[_Header], envelope_from: str | None, recipients: list[str]
) -> list[LintFinding]:
    findings: list[LintFinding] = []
    from_headers = [h for h in headers if h.key == "from"]
    if envelope_from is not None and from_headers:
        envelope = envelope_from.strip().removeprefix("<").removesuffix(">")
        header_from = _address_set(h.value for h in from_headers)
        if envelope.lower() not in {a.lower() for a in header_from}:
            params = {
                "header_from": ", ".join(header_from) or from_headers[0].value,
                "envelope_from": f"<{envelope}>",
            }
            findings.append(
                LintFinding("header_from_differs", "info", from_headers[0].line, params)
            )
    destination = [h for h in headers if h.key in ("to", "cc", "bcc")]
    if not destination:
        findings.append(LintFinding("no_recipient_headers", "info"))
    elif recipients:
        header_to = _address_set(h.value for h in destination)
        wanted = [r.strip().removeprefix("<").removesuffix(">") for r in recipients]
        if {a.lower() for a in header_to} != {r.lower() for r in wanted}:
            params = {
                "header_to": "; ".join(f"{h.name}: {h.value}" for h in destination),
                "envelope_to": ", ".join(f"<{r}>" for r in wanted),
            }
            findings.append(LintFinding("header_to_differs", "info", destination[0].line, params))
    return findings


# Defects already covered by this module's own, more precise findings.
_COVERED_DEFECTS: tuple[type[email.errors.MessageDefect], ...] = (
    email.errors.MissingHeaderBodySeparatorDefect,
    email.errors.FirstHeaderLineIsContinuationDefect,
    email.errors.MisplacedEnvelopeHeaderDefect,
    email.errors.UndecodableBytesDefect,
    email.errors.NonASCIILocalPartDefect,
    email.errors.InvalidDateDefect,
)
_BASE64_DEFECTS: tuple[type[email.errors.MessageDefect], ...] = (
    email.errors.InvalidBase64PaddingDefect,
    email.errors.InvalidBase64CharactersDefect,
    email.errors.InvalidBase64LengthDefect,
)


def _detail(defect: object) -> str:
    text = str(defect).strip()
    name = type(defect).__name__
    return _shorten(f"{name}: {text}" if text else name, 120)


def _header_defect(defect: object, name: str, line: int | None) -> LintFinding | None:
    if isinstance(defect, _COVERED_DEFECTS):
        return None
    params = {"header": name}
    if isinstance(defect, email.errors.HeaderMissingRequiredValue):
        return LintFinding("header_missing_value", "warning", line, params)
    params["detail"] = _detail(defect)
    if isinstance(defect, email.errors.ObsoleteHeaderDefect):
        return LintFinding("obsolete_header_syntax", "info", line, params)
    return LintFinding("invalid_header", "warning", line, params)


def _check_defects(parsed: Message, scan: _Scan) -> list[LintFinding]:
    """Map what ``email`` noticed into findings, skipping what the scan said better."""
    findings: list[LintFinding] = []
    lines_by_name: dict[str, int] = {}
    for header in reversed(scan.headers):
        lines_by_name[header.key] = header.line
    for part in parsed.walk():
        top = part is parsed
        for name, value in part.items():
            if top and name.lower() == "date":
                continue  # bad_date / date_without_zone say it in our words
            line = lines_by_name.get(name.lower()) if top else None
            for defect in getattr(value, "defects", ()):
                found = _header_defect(defect, name, line)
                if found is not None:
                    findings.append(found)
        if (
            not part.is_multipart()
            and str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64"
        ):
            part.get_payload(decode=True)  # records InvalidBase64* defects on the part
        for defect in part.defects:
            if isinstance(defect, _COVERED_DEFECTS):
                continue  # the scan mirrors the parser, so it already said where and why
            if isinstance(defect, _BASE64_DEFECTS):
                findings.append(LintFinding("bad_base64_body", "warning", None))
            elif isinstance(defect, email.errors.InvalidHeaderDefect) and "header name" in str(
                defect
            ):
                continue  # ":value" lines: missing_header_name from the scan
            else:
                findings.append(
                    LintFinding("parser_defect", "warning", None, {"detail": _detail(defect)})
                )
    return findings


def _dedupe(findings: list[LintFinding]) -> list[LintFinding]:
    seen: set[tuple[str, int | None, tuple[tuple[str, str], ...]]] = set()
    unique: list[LintFinding] = []
    for finding in findings:
        key = (finding.id, finding.line, tuple(sorted(finding.params.items())))
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


def lint_message(
    lines: list[str],
    *,
    envelope_from: str | None,
    recipients: list[str],
    eight_bit_mime: bool,
    smtputf8: bool,
) -> list[LintFinding]:
    """Everything worth saying about a message before its final dot; never raises.

    ``lines`` are the lines as typed, before dot-stuffing. Message-wide findings (missing
    headers) come first with ``line`` None, then the rest in line order.
    """
    scan = _scan(lines)
    findings = list(scan.findings)
    findings += _check_required(scan.headers, any(not t.isascii() for _n, t in scan.body))
    findings += _check_headers(scan.headers, smtputf8)
    findings += _check_lengths(scan, lines)
    cte = _first(scan.headers, "content-transfer-encoding")
    if cte is not None and cte.value.lower() not in _KNOWN_CTE:
        findings.append(
            LintFinding(
                "unknown_transfer_encoding", "warning", cte.line, {"cte": _shorten(cte.value)}
            )
        )
    findings += _check_envelope(scan.headers, envelope_from, recipients)
    parsed = _parse(lines)
    findings += _check_body(scan, parsed, eight_bit_mime=eight_bit_mime)
    if parsed is not None:
        # The parser's header classes on hostile input: say nothing more rather than fail.
        with contextlib.suppress(Exception):
            findings += _check_defects(parsed, scan)
    findings = _dedupe(findings)
    return sorted(findings, key=lambda f: 0 if f.line is None else f.line)


# --- the :headers template -------------------------------------------------------------


def _fold_list(name: str, items: list[str]) -> list[str]:
    """``Name: a, b, c`` folded after commas so each line stays within 78 characters."""
    lines = [f"{name}: {items[0]}"]
    for item in items[1:]:
        if len(lines[-1]) + 2 + len(item) + 1 > HEADER_LINE_SHOULD:
            lines[-1] += ","
            lines.append(f" {item}")
        else:
            lines[-1] += f", {item}"
    return lines


def _subject_lines(subject: str) -> list[str]:
    if not subject:
        return ["Subject:"]
    if subject.isascii():
        return [f"Subject: {subject}"]
    try:
        folded = Header(subject, "utf-8", header_name="Subject").encode(linesep="\n")
    except Exception:
        return [f"Subject: {subject}"]
    first, *rest = folded.split("\n")
    return [f"Subject: {first}", *rest]


def _ascii_domain(address: str) -> str:
    """IDNA for the domain (``a@例子.com`` → ``a@xn--fsqu00a.com``); the rest as it is."""
    local, at, domain = address.rpartition("@")
    return f"{local}@{_idna(domain) or domain}" if at else address


def header_template(
    *,
    envelope_from: str | None,
    recipients: list[str],
    subject: str = "",
    domain: str | None = None,
    charset: str = "UTF-8",
    eight_bit: bool = False,
    now: datetime | None = None,
) -> list[str]:
    """The lines ``:headers`` inserts: everything a well-formed message needs, then a blank.

    The body does not exist yet, so Content-Transfer-Encoding cannot be chosen from it:
    ``8bit`` when the session gave BODY=8BITMIME (``eight_bit``), else ``7bit`` — and the
    lint will say so if the student then types non-ASCII text. Message-ID's domain is
    ``domain``, else the envelope sender's, else ``smtp-tutor.invalid`` (never a DNS lookup,
    which is what ``make_msgid`` would do by default).
    """
    sender = (envelope_from or "").strip().removeprefix("<").removesuffix(">")
    sender = sender or PLACEHOLDER_FROM
    wanted = [_ascii_domain(r.strip().removeprefix("<").removesuffix(">")) for r in recipients]
    wanted = [r for r in wanted if r]
    moment = (now or datetime.now()).astimezone()
    msgid_domain = domain or (sender.rpartition("@")[2] if sender != PLACEHOLDER_FROM else "")
    msgid_domain = (_idna(msgid_domain) or msgid_domain) if msgid_domain else _FALLBACK_DOMAIN
    lines = [f"From: {_ascii_domain(sender)}"]
    lines += _fold_list("To", wanted) if wanted else ["To: undisclosed-recipients:;"]
    lines += _subject_lines(subject)
    lines += [
        f"Date: {email.utils.format_datetime(moment)}",
        f"Message-ID: {email.utils.make_msgid(domain=msgid_domain)}",
        "MIME-Version: 1.0",
        f"Content-Type: text/plain; charset={charset}",
        f"Content-Transfer-Encoding: {'8bit' if eight_bit else '7bit'}",
        "",
    ]
    return lines
