"""The AUTH helper: user and password asked in plain text, the base64 made for the student.

It owns the exchange's state (which mechanism, what it asks next, whether the last 334
wanted a password) and decides; it never prints and never sends. The app asks it what to
do — `start` when an AUTH line goes out, `answer` when the student typed what it asked,
`on_reply` when the server answered — and sends the line it gets back. It also knows how
a transcript writes each AUTH line without its secret (`placeholder`, `typed_secret`).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from smtp_tutor.core.auth import (
    AuthError,
    classify_login_prompt,
    decode_challenge,
    user_in_answer,
)
from smtp_tutor.core.dialogue import AUTH_RESPONSE, Outcome
from smtp_tutor.core.placeholders import Placeholder
from smtp_tutor.core.records import record
from smtp_tutor.core.redaction import SecretTracker
from smtp_tutor.core.replies import Reply

if TYPE_CHECKING:
    from smtp_tutor.core.auth_exchange import AuthExchange, AuthStep


@record(frozen=True)
class AuthLine:
    """A line the helper wants sent now, and how the transcript records it."""

    step: AuthStep
    placeholder: Placeholder | None  # None: no secret in it, recorded as sent


class AuthHelper:
    """State of one AUTH exchange the console helps with (none when `exchange` is None)."""

    def __init__(self, tracker: SecretTracker) -> None:
        self.tracker = tracker
        self.exchange: AuthExchange | None = None
        self.step: AuthStep | None = None
        self.password_challenge = False  # the last 334 asked for a password: mask the answer
        # The name and password of the last AUTH this helper made succeed: in memory only,
        # for `:mailbox` to ask a class sandbox's web view (never written anywhere).
        self.credentials: tuple[str, str] | None = None

    @property
    def asking(self) -> str | None:
        """What the helper waits for the student to type ("username", "password" …), or None."""
        if self.exchange is not None and self.step is not None and self.step.need:
            return self.step.need
        return None

    @property
    def echo(self) -> bool:
        return self.step is None or self.step.echo

    def reset(self) -> None:
        self.exchange, self.step = None, None

    def start(self, line: str, manual: bool) -> None:
        """An AUTH line is going out: help with it, unless by hand or not a mechanism we know."""
        words = line.split()
        if manual or len(words) < 2 or words[0].upper() != "AUTH":
            return
        try:
            from smtp_tutor.core.auth_exchange import AuthExchange  # an AUTH line, not a start

            self.exchange = AuthExchange.from_command(line)
        except AuthError:
            self.exchange = None  # an unsupported mechanism goes out raw, no helper
        else:
            if len(words) > 2:
                self.tracker.add_line(line)  # an initial response typed by hand
        self.step = None

    def answer(self, value: str) -> AuthLine | None:
        """The student typed what was asked; the line to send (raises AuthError if unusable)."""
        assert self.exchange is not None
        self.step = self.exchange.provide(value)
        self.tracker.track(self.exchange)
        return self.take_line()

    def cancel(self) -> AuthLine | None:
        """Ctrl-C at a helper prompt: the `*` that cancels the exchange (RFC 4954 §4)."""
        assert self.exchange is not None
        self.step = self.exchange.cancel()
        return self.take_line()

    def take_line(self) -> AuthLine | None:
        step = self.step
        if step is None or step.line is None:
            return None
        self.step = None
        return AuthLine(step, self.placeholder() if step.secret else None)

    def on_reply(self, outcome: Outcome) -> AuthLine | None:
        """A reply came: remember a password challenge; the next line to send, if any."""
        self.password_challenge = _asks_for_password(outcome.reply)
        verb = outcome.answered.verb if outcome.answered else None
        if self.exchange is None or verb not in ("AUTH", AUTH_RESPONSE):
            return None
        try:
            step = self.exchange.feed_reply(outcome.reply)
        except AuthError:
            self.reset()
            return None
        if step.done:
            secrets = self.exchange.secret_values()
            if outcome.reply.code == 235 and self.exchange.user and secrets:
                self.credentials = (self.exchange.user, secrets[0])
            self.reset()
            return None
        self.step = step
        return None if step.need else self.take_line()

    def placeholder(self) -> Placeholder:
        """How replay rebuilds a secret line the helper sent: never the secret itself."""
        exchange = self.exchange
        mechanism = exchange.mechanism if exchange is not None else ""
        return secret_placeholder(mechanism, exchange.user if exchange is not None else None)

    def typed_secret(
        self, answer: str, mechanism: str | None, initial: bool = False
    ) -> Placeholder | None:
        """How replay rebuilds an AUTH answer typed by hand: read what it holds, keep no secret.

        The base64 is decoded only to learn its shape and the user name; None means the line
        holds no secret (a LOGIN user name) and is recorded as typed.
        """
        try:
            decoded = base64.b64decode(answer, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return Placeholder.variable("auth_response")
        if mechanism == "LOGIN":
            asked_user = initial or not self.password_challenge
            return None if asked_user else Placeholder.login_password()
        user = user_in_answer(mechanism, decoded)
        if user is None:
            return Placeholder.variable("auth_response")
        return secret_placeholder(mechanism or "", user)


def secret_placeholder(mechanism: str, user: str | None) -> Placeholder:
    """The placeholder replay computes a secret AUTH line from, per mechanism."""
    if mechanism == "PLAIN":
        return Placeholder.plain(user)
    if mechanism == "CRAM-MD5":
        return Placeholder.cram_md5(user)
    if mechanism == "XOAUTH2":
        return Placeholder.xoauth2(user)
    return Placeholder.login_password()


def is_auth_with_response(line: str) -> bool:
    """`AUTH MECH <initial response>`: the response may carry a credential."""
    words = line.split()
    return len(words) > 2 and words[0].upper() == "AUTH"


def _asks_for_password(reply: Reply) -> bool:
    """A 334 whose challenge is not plainly a user-name prompt: mask the answer to be safe."""
    if reply.code != 334:
        return False
    try:
        return classify_login_prompt(decode_challenge(reply.text)) != "username"
    except AuthError:
        return True
