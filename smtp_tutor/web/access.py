"""Who is asking: a student (their SMTP AUTH name and password), the teacher (a token), or nobody.

A student signs in with HTTP basic auth (the API, `curl -u`, the console's `:mailbox`) or the
login form, which gives a cookie; the teacher opens the URL `serve` printed once, whose token
becomes a cookie at once so it leaves the address bar, or sends `Authorization: Bearer`.
Cookies are random, HttpOnly and SameSite=Strict, and map to a viewer kept here only;
every password and token is compared with `hmac.compare_digest` and never logged or shown.
A form that changes something carries the cookie's CSRF token (`csrf_ok`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["COOKIE", "Access", "Viewer"]

COOKIE = "smtp_tutor_web"
COOKIE_LIFETIME = 12 * 3600  # seconds: a school day
MAX_COOKIES = 10_000  # signed-in browsers remembered; the oldest are forgotten


@dataclass(frozen=True)
class Viewer:
    """The person behind a request: `name` None for the teacher."""

    teacher: bool
    name: str | None = None
    csrf: str = ""  # for cookie sign-ins: what a form must send back

    def label(self) -> str:
        return "teacher" if self.teacher else (self.name or "?")


class Access:
    """Checks credentials against the sandbox's account table and the teacher's token."""

    def __init__(self, accounts: Callable[[], Mapping[str, str]], teacher_token: str) -> None:
        self._accounts = accounts
        self.teacher_token = teacher_token
        self._cookies: dict[str, tuple[Viewer, float]] = {}

    # Credentials --------------------------------------------------------------------------

    def student(self, name: str, password: str) -> Viewer | None:
        expected = self._accounts().get(name)
        # Compare even for an unknown name, so timing does not tell which names exist.
        reference = (expected if expected is not None else secrets.token_hex(16)).encode()
        ok = hmac.compare_digest(reference, password.encode("utf-8", "surrogatepass"))
        return Viewer(teacher=False, name=name) if ok and expected is not None else None

    def teacher(self, token: str) -> Viewer | None:
        ok = hmac.compare_digest(self.teacher_token.encode(), token.encode("utf-8", "replace"))
        return Viewer(teacher=True) if ok else None

    def from_header(self, header: str | None) -> Viewer | None:
        """`Authorization: Basic …` (a student) or `Bearer <token>` (the teacher)."""
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            return self.teacher(value.strip())
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        name, colon, password = decoded.partition(":")
        return self.student(name, password) if colon else None

    # Cookies ------------------------------------------------------------------------------

    def sign_in(self, viewer: Viewer) -> str:
        """A new cookie value for `viewer` (with its own CSRF token)."""
        self._forget_old()
        value = secrets.token_urlsafe(32)
        signed = Viewer(viewer.teacher, viewer.name, secrets.token_urlsafe(24))
        self._cookies[value] = (signed, time.monotonic() + COOKIE_LIFETIME)
        return value

    def sign_out(self, value: str | None) -> None:
        if value:
            self._cookies.pop(value, None)

    def from_cookie(self, value: str | None) -> Viewer | None:
        if not value:
            return None
        found = self._cookies.get(value)
        if found is None or found[1] < time.monotonic():
            return None
        viewer = found[0]
        # An account removed or renamed since: its cookie no longer opens anything.
        if not viewer.teacher and viewer.name not in self._accounts():
            return None
        return viewer

    def _forget_old(self) -> None:
        now = time.monotonic()
        for value in [v for v, (_viewer, until) in self._cookies.items() if until < now]:
            del self._cookies[value]
        while len(self._cookies) >= MAX_COOKIES:
            del self._cookies[next(iter(self._cookies))]

    @staticmethod
    def csrf_ok(viewer: Viewer, sent: str | None) -> bool:
        return bool(viewer.csrf) and hmac.compare_digest(
            viewer.csrf.encode(), (sent or "").encode()
        )
