"""Helpers for the web view's tests: a sandbox with its web view, and a small HTTP client."""

from __future__ import annotations

import base64
import http.client
import json
import smtplib
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smtp_tutor.sandbox import SandboxConfig, ThreadedSandbox
from smtp_tutor.web.app import WebView

PASSWORDS = {"alice": "alice-Pw-4567", "bob": "bob-Pw-891011"}
TOKEN = "teacher-token-for-tests"
TIMEOUT = 10


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Classroom:
    sandbox: ThreadedSandbox
    web: WebView

    @property
    def base(self) -> str:
        return self.web.url.rstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        auth: str | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        connection = http.client.HTTPConnection(self.web.host, self.web.port, timeout=TIMEOUT)
        sent = dict(headers or {})
        if auth is not None:
            sent["Authorization"] = auth
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()

    def get(self, path: str, who: str | None = None, **kw: Any) -> Reply:
        return self.request("GET", path, auth=credentials(who) if who else None, **kw)

    def send(self, user: str | None, sender: str, to: list[str], message: bytes) -> None:
        with smtplib.SMTP(self.sandbox.host, self.sandbox.port, timeout=TIMEOUT) as client:
            client.ehlo("student.test")
            if user is not None:
                client.login(user, PASSWORDS[user])
            client.sendmail(sender, to, message)

    def wait_for(self, count: int, who: str = "teacher") -> list[dict[str, Any]]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            found = self.get("/api/messages", who).json()["messages"]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def credentials(who: str) -> str:
    if who == "teacher":
        return f"Bearer {TOKEN}"
    pair = f"{who}:{PASSWORDS[who]}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def subject_message(subject: str, body: str = "hello", html: str | None = None) -> bytes:
    if html is None:
        return f"Subject: {subject}\r\nFrom: <x@example.org>\r\n\r\n{body}\r\n".encode()
    return (
        f"Subject: {subject}\r\nFrom: <x@example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        f"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b--\r\n"
    ).encode()


@contextmanager
def classroom(tmp: Path, **web_options: Any) -> Iterator[Classroom]:
    config = SandboxConfig(mailbox=tmp / "Maildir", users=dict(PASSWORDS))
    sandbox = ThreadedSandbox(config, record_sessions=True)
    web = WebView(sandbox.sandbox, "127.0.0.1", 0, teacher_token=TOKEN, **web_options)
    sandbox.sandbox.companions.append(web)
    with sandbox:
        yield Classroom(sandbox, web)


def form(fields: Mapping[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()
