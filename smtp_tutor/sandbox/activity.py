"""What the sandbox tells about its clients while it runs: one event per connection and message.

`smtp-tutor serve` prints each event as one line, as Mailpit and `python -m aiosmtpd` do, so a
teacher sees the class at work. The sandbox only names the event and hands over its fields;
the words (English or Chinese) come from `smtp_tutor/data/serve.toml`, chosen by the caller.

Every field a client chose (addresses, the subject, the AUTH user, even an error text that
quotes it) is made safe for a terminal first: control characters are stripped, so a subject
holding ``ESC ] 0 ;`` cannot retitle the teacher's window, and a CR cannot overwrite a line.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: Called with the event's name (a key of serve.toml) and its fields, already safe to print.
Report = Callable[[str, Mapping[str, str]], None]

SUBJECT_LIMIT = 80  # characters of a subject shown; a longer one ends in "…"
HEADER_LIMIT = 64 * 1024  # bytes of a message searched for its Subject


def printable(text: object, limit: int | None = None) -> str:
    """`text` with every character that is not printable removed, on one line."""
    shown = "".join(ch for ch in str(text) if ch.isprintable())
    if limit is not None and len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown


def peer_label(peer: Any) -> str:
    """'127.0.0.1:54321', '[::1]:54321'; what the kernel says about the client."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = str(peer[0]), peer[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return printable(peer) or "?"


def addresses(items: Iterable[str]) -> str:
    """Envelope addresses as a client gave them, in angle brackets: '<a@b>, <c@d>'."""
    return ", ".join(f"<{printable(item)}>" for item in items)


#: A header section read without the email parser: printable ASCII (and tabs) in lines split
#: by CRLF only, the first a field "Name:value", each other a field or a continuation.
_SIMPLE_HEAD = re.compile(rb"[!-9;-~]+:[\t -~]*(?:\r\n(?:[!-9;-~]+:|[\t ])[\t -~]*)*\Z")
_SUBJECT_FIELD = re.compile(rb"(?:\A|\r\n)subject:([\t -~]*(?:\r\n[\t ][\t -~]*)*)", re.I)


def _plain_subject(head: bytes) -> str | None:
    """The Subject of a plain header section, as the parser would give it; None for any other
    (non-ASCII, an encoded word, a bare CR or LF, a line that is no field) or none found."""
    if not _SIMPLE_HEAD.match(head):
        return None
    found = _SUBJECT_FIELD.search(head)
    if found is None or b"=?" in found[1]:
        return None
    return found[1].decode("ascii").lstrip(" \t").replace("\r\n", "")


def subject_of(message: bytes) -> str:
    """The message's Subject as a reader sees it (RFC 2047 decoded), safe and short."""
    head = message[:HEADER_LIMIT].split(b"\r\n\r\n", 1)[0]
    plain = _plain_subject(head)  # a class's usual mail: no parser (~30 us a message)
    if plain is not None:
        return printable(plain, SUBJECT_LIMIT)
    try:
        parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head)
        subject = parsed.get("subject")
    except Exception:  # a header the parser cannot take: the line still gets written
        return ""
    return printable(subject, SUBJECT_LIMIT) if subject is not None else ""


def tls_failure(error: BaseException | None) -> str | None:
    """Why a TLS handshake failed, in OpenSSL's words ('wrong version number'); None when the
    client simply hung up in the middle of it."""
    if isinstance(error, ssl.SSLError) and error.reason:
        return printable(error.reason.replace("_", " ").lower())
    if error is None or isinstance(error, ConnectionError | EOFError):
        return None
    return printable(str(error) or type(error).__name__)
