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

__all__ = [
    "NewestMessage",
    "SandboxApiError",
    "discover_web",
    "newest_message",
    "post_progress",
    "web_address",
    "whoami",
]

TIMEOUT = 5.0
MAX_RAW = 16 * 1024 * 1024  # bytes of a message fetched at most
MAX_JSON = 1024 * 1024


class SandboxApiError(Exception):
    """Why the web view could not be asked, in one line (`status`: the HTTP status, if any)."""

    def __init__(self, text: str, status: int | None = None) -> None:
        super().__init__(text)
        self.status = status


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


def _get(
    url: str,
    user: str,
    password: str,
    limit: int,
    timeout: float,
    body: bytes | None = None,
) -> bytes:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    headers = {"Authorization": f"Basic {token}"}
    if body is not None:  # the API takes JSON only (415 otherwise)
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(request, timeout=timeout) as response:
            data = response.read(limit + 1)
    except urllib.error.HTTPError as error:
        if error.code == 401:
            raise SandboxApiError(
                "the web view did not accept your AUTH name and password", 401
            ) from None
        raise SandboxApiError(f"the web view answered HTTP {error.code}", error.code) from None
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


def discover_web(host: str, port: int, timeout: float = TIMEOUT) -> str | None:
    """Ask the SMTP server at host:port for its web view (EHLO's `XSMTPTUTOR-WEB`), then QUIT.

    None when it advertises none (or one on another host); `SandboxApiError` when the SMTP
    server cannot be reached or does not answer as SMTP.
    """
    import smtplib

    try:
        with smtplib.SMTP(host, port, local_hostname="smtp-tutor", timeout=timeout) as client:
            code, _text = client.ehlo()
            params = client.esmtp_features.get("xsmtptutor-web", "")
    except (smtplib.SMTPException, OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise SandboxApiError(f"cannot reach {host}:{port}: {reason}") from None
    if code != 250 or not params:
        return None
    return web_address(tuple(params.split()), host)


def whoami(base: str, user: str, password: str, timeout: float = TIMEOUT) -> str:
    """The student name the web view knows these credentials as; `SandboxApiError` if none."""
    answer = _get(urllib.parse.urljoin(base, "api/whoami"), user, password, MAX_JSON, timeout)
    try:
        body = json.loads(answer)
    except ValueError:
        raise SandboxApiError("the web view's answer is not what smtp-tutor expects") from None
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or body.get("teacher"):
        raise SandboxApiError("the web view does not know these credentials as a student")
    return name


def post_progress(
    base: str,
    user: str,
    password: str,
    report: dict[str, Any],
    timeout: float = TIMEOUT,
) -> None:
    """POST one lesson step's result (`{lesson, title, steps, step, passed}`); blocking."""
    body = json.dumps(report).encode("utf-8")
    url = urllib.parse.urljoin(base, "api/lessons/progress")
    _get(url, user, password, MAX_JSON, timeout, body=body)
