"""One stored message taken apart for the page and the API: headers, parts, MIME tree, lint.

Everything here is data (strings, lists, dicts); pages.py escapes it for HTML. A hostile
message (broken MIME, undecodable headers, a bogus charset) must still show: every step
that the email package may choke on falls back to something plain.
"""

from __future__ import annotations

import email.message
from typing import Any

from smtp_tutor.core.message_lint import lint_message, render_finding
from smtp_tutor.sandbox.storage import StoredMessage

__all__ = ["headers", "html_part", "lint", "mime_tree", "text_part"]

TREE_DEPTH = 20  # nesting shown; deeper parts are summarised
PART_LIMIT = 200  # parts shown in the tree


def headers(stored: StoredMessage) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    try:
        items = stored.message.items()
    except Exception:
        items = stored.message.raw_items()  # type: ignore[assignment]
    for name, value in items:
        try:
            found.append((str(name), str(value)))
        except Exception:
            found.append((str(name), "(undecodable)"))
    return found


def _content(part: email.message.Message) -> str | None:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except Exception:
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return None
        content = payload.decode("utf-8", "replace")
    return content if isinstance(content, str) else None


def _body(stored: StoredMessage, kind: str) -> str | None:
    try:
        part = stored.message.get_body(preferencelist=(kind,))
    except Exception:
        return None
    if part is None or part.get_content_type() != f"text/{kind}":
        return None
    return _content(part)


def text_part(stored: StoredMessage) -> str | None:
    return _body(stored, "plain")


def html_part(stored: StoredMessage) -> str | None:
    return _body(stored, "html")


def mime_tree(stored: StoredMessage) -> dict[str, Any]:
    """{type, charset, filename, size, parts: […]}, as deep as the message goes (bounded)."""
    count = [0]

    def node(part: email.message.Message, depth: int) -> dict[str, Any]:
        count[0] += 1
        info: dict[str, Any] = {
            "type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "filename": _safe(part.get_filename),
            "encoding": part.get("Content-Transfer-Encoding"),
            "parts": [],
        }
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                for child in children:
                    if depth >= TREE_DEPTH or count[0] >= PART_LIMIT:
                        info["truncated"] = True
                        break
                    info["parts"].append(node(child, depth + 1))
        else:
            payload = part.get_payload()
            info["size"] = len(payload) if isinstance(payload, str | bytes) else None
        return info

    try:
        return node(stored.message, 0)
    except Exception:
        return {"type": "text/plain", "parts": [], "broken": True}


def _safe(getter: Any) -> str | None:
    try:
        value = getter()
    except Exception:
        return None
    return str(value) if value is not None else None


def lint(stored: StoredMessage, lang: str) -> list[dict[str, Any]]:
    """The console's findings before the final dot, for the stored bytes."""
    envelope = stored.envelope
    lines = stored.raw.decode("utf-8", "surrogateescape").split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if lines and lines[-1] == "":
        lines.pop()
    options = [str(o).upper() for o in envelope.get("mail_options") or ()]
    try:
        findings = lint_message(
            lines,
            envelope_from=envelope.get("mail_from"),
            recipients=list(envelope.get("rcpt_tos") or ()),
            eight_bit_mime="BODY=8BITMIME" in options,
            smtputf8=bool(envelope.get("smtputf8")),
        )
    except Exception:
        return []
    return [
        {
            "id": f.id,
            "severity": f.severity,
            "line": f.line,
            "text": render_finding(f, lang),
        }
        for f in findings
    ]
