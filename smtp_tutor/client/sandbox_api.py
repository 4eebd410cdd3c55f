"""A small client of a class sandbox's web view (`smtp-tutor serve --web`), for `:mailbox`.

The sandbox advertises its web view in EHLO (`XSMTPTUTOR-WEB http://HOST:PORT/`); the
console asks it for the student's newest message with the name and password the student
gave to AUTH. Credentials go only to the host the console is connected to (a server cannot
send them elsewhere by advertising another address), over HTTP basic auth, and are kept
nowhere. Every request is time-bounded; every failure is one `SandboxApiError` line.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

__all__ = ["NewestMessage", "SandboxApiError", "newest_message", "web_address"]

TIMEOUT = 5.0
MAX_RAW = 16 * 1024 * 1024  # bytes of a message fetched at most
MAX_JSON = 1024 * 1024


class SandboxApiError(Exception):
    """Why the web view could not be asked, in one line."""


@dataclass(frozen=True)
class NewestMessage:
    key: str
    raw: bytes
    envelope: dict[str, Any]
    count: int


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def web_address(params: tuple[str, ...], connected_host: str) -> str | None:
    """The advertised base URL if it is http(s) on the host we are connected to, else None."""
    if len(params) != 1:
        return None
    url = urllib.parse.urlsplit(params[0])
    if url.scheme not in ("http", "https") or not url.hostname or url.username:
        return None
    host = url.hostname
    same = host.lower() == connected_host.strip("[]").lower()
    if not same and not (_loopback(host) and _loopback(connected_host)):
        return None
    return params[0] if params[0].endswith("/") else params[0] + "/"


def _get(url: str, user: str, password: str, limit: int, timeout: float) -> bytes:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(request, timeout=timeout) as response:
            data = response.read(limit + 1)
    except urllib.error.HTTPError as error:
        if error.code == 401:
            raise SandboxApiError(
                "the web view did not accept your AUTH name and password"
            ) from None
        raise SandboxApiError(f"the web view answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise SandboxApiError(f"cannot reach the web view: {reason}") from None
    if len(data) > limit:
        raise SandboxApiError("the web view sent more than expected")
    return data


def newest_message(
    base: str, user: str, password: str, timeout: float = TIMEOUT
) -> NewestMessage | None:
    """The student's newest message (None when there is none), blocking at most ~2 × timeout."""
    listing = _get(
        urllib.parse.urljoin(base, "api/messages?limit=1"), user, password, MAX_JSON, timeout
    )
    try:
        body = json.loads(listing)
        messages = body["messages"]
        first = messages[0] if messages else None
        count = int(body.get("total", len(messages)))
    except (ValueError, KeyError, TypeError, IndexError):
        raise SandboxApiError("the web view's answer is not what smtp-tutor expects") from None
    if first is None:
        return None
    key = first.get("id") if isinstance(first, dict) else None
    if not isinstance(key, str):
        raise SandboxApiError("the web view's answer is not what smtp-tutor expects")
    path = f"api/messages/{urllib.parse.quote(key, safe='')}/raw"
    raw = _get(urllib.parse.urljoin(base, path), user, password, MAX_RAW, timeout)
    summary = first.get("envelope") or {}
    envelope = {
        "received_at": first.get("time"),
        "mail_from": summary.get("mail_from", ""),
        "rcpt_tos": list(summary.get("rcpt_tos") or []),
        "auth_user": summary.get("auth_user"),
        "tls": summary.get("tls"),
        "client": summary.get("client"),
        "helo": summary.get("helo"),
        "size": first.get("size"),
    }
    return NewestMessage(key, raw, envelope, count)
