"""POP3 logins beyond USER and PASS: APOP (RFC 1939 §7) and SASL AUTH (RFC 5034).

SASL in POP3 is SMTP AUTH's exchange with other words around it: "+ " where SMTP says 334,
+OK for 235, -ERR for every failure. So `Pop3AuthExchange` drives the SMTP `AuthExchange`
— the same mechanisms, encoders, checks and secret bookkeeping — and only translates the
server's responses and the notes shown to the student.
"""

from __future__ import annotations

from smtp_tutor.core.auth import AuthError, apop_digest
from smtp_tutor.core.auth_exchange import SUPPORTED_MECHANISMS, AuthExchange, AuthStep
from smtp_tutor.core.catalogue import Said
from smtp_tutor.core.pop3.dialogue import apop_timestamp
from smtp_tutor.core.pop3.responses import Response
from smtp_tutor.core.records import replace

__all__ = [
    "SUPPORTED_MECHANISMS",
    "Pop3AuthExchange",
    "apop_command",
    "apop_digest",
]

# What the SMTP exchange feeds itself for each POP3 outcome.
_SUCCESS, _FAILURE, _CANCELLED = 235, 535, 501


def apop_command(user: str, secret: str, greeting: str) -> str:
    """The ``APOP name digest`` line for a greeting's text; AuthError if APOP cannot work."""
    timestamp = apop_timestamp(greeting)
    if timestamp is None:
        raise AuthError("the greeting has no <timestamp>: this server does not offer APOP")
    if not user or any(c.isspace() for c in user):
        raise AuthError("an APOP user name is one word, without spaces")
    return f"APOP {user} {apop_digest(timestamp, secret)}"


class Pop3AuthExchange:
    """One POP3 AUTH conversation, without I/O: send the lines it returns, feed the responses.

    The same loop as `AuthExchange`, with `feed_response` taking a POP3 `Response`::

        ex = Pop3AuthExchange("PLAIN", user="student", password="secret")
        step = ex.start()
        while not step.done:
            while step.need:
                step = ex.provide(ask(step.need, echo=step.echo))
            send(step.line)
            step = ex.feed_response(next_response())
    """

    def __init__(self, mechanism: str, **credentials: str | bool) -> None:
        self._inner = AuthExchange(mechanism, **credentials)  # type: ignore[arg-type]

    @classmethod
    def from_command(cls, line: str) -> Pop3AuthExchange:
        """An exchange for an ``AUTH <mech> [initial-response]`` line typed by the student."""
        ex = cls.__new__(cls)
        ex._inner = AuthExchange.from_command(line)
        return ex

    # -- state, as AuthExchange has it (a SecretTracker can `track` this object too)

    @property
    def mechanism(self) -> str:
        return self._inner.mechanism

    @property
    def done(self) -> bool:
        return self._inner.done

    @property
    def success(self) -> bool | None:
        return self._inner.success

    @property
    def cancelled(self) -> bool:
        return self._inner.cancelled

    @property
    def user(self) -> str | None:
        return self._inner.user

    @property
    def secret_lines(self) -> tuple[str, ...]:
        return self._inner.secret_lines

    def secret_values(self) -> tuple[str, ...]:
        return self._inner.secret_values()

    def __repr__(self) -> str:  # never show credentials
        return f"Pop3AuthExchange({self._inner!r})"

    # -- driving

    def start(self) -> AuthStep:
        return self._inner.start()

    def command(self) -> str:
        return self._inner.command()

    def provide(self, value: str) -> AuthStep:
        return self._inner.provide(value)

    def cancel(self) -> AuthStep:
        step = self._inner.cancel()
        return replace(step, note=Said("pop3", "auth.cancel")) if step.line == "*" else step

    def feed_response(self, response: Response) -> AuthStep:
        """The server's response to what was just sent; returns the next step."""
        if response.is_continuation:
            return self._inner.feed(334, response.text)
        if response.ok:
            return replace(self._inner.feed(_SUCCESS), note=Said("pop3", "auth.success"))
        if response.is_error:
            cancelled = self._inner.cancelled
            step = self._inner.feed(_CANCELLED if cancelled else _FAILURE, response.text)
            note = "auth.cancelled" if cancelled else "auth.failed"
            return replace(step, note=Said("pop3", note))
        return replace(self._inner.feed(None), note=Said("pop3", "auth.malformed"))
