"""One SMTP AUTH conversation as a sans-I/O state machine.

The caller sends the lines it returns and feeds back the replies, so the console, the
scripted probe and the tests drive the same steps without a socket.
"""

from __future__ import annotations

from typing import Literal, Protocol

from smtp_tutor.core.auth import (
    AuthError,
    DecodedChallenge,
    classify_login_prompt,
    cram_md5_answer,
    credential_bytes,
    decode_xoauth2_error,
    login_answer,
    parse_challenge,
    plain_response,
    xoauth2_string,
)
from smtp_tutor.core.catalogue import Said
from smtp_tutor.core.records import record

__all__ = ["SUPPORTED_MECHANISMS", "AuthExchange", "AuthStep", "SecretKind"]

#: Mechanisms the console can drive itself. No order of strength is implied: all of them
#: belong under TLS (CRAM-MD5 hides the password but forces servers to store it in clear).
SUPPORTED_MECHANISMS: tuple[str, ...] = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2")

SecretKind = Literal["username", "password", "token"]


@record(frozen=True)
class AuthStep:
    """What the console should do next in an AUTH exchange.

    Exactly one of: ``need`` is set (ask the student for that value, then call
    `AuthExchange.provide`), ``line`` is not None (send it, then feed the reply; it may be
    the empty line XOAUTH2 wants after an error), or ``done``.
    """

    need: SecretKind | None = None
    line: str | None = None
    challenge: str | None = None  # decoded server challenge, printable
    done: bool = False
    success: bool | None = None  # set when done: True after 235
    secret: bool = False  # the line carries a credential: never echo or log it as is
    note: str = ""  # a short explanation for the student

    @property
    def echo(self) -> bool:
        """Whether the console may echo what the student types for ``need``."""
        return self.need == "username"


class _HasReply(Protocol):
    @property
    def code(self) -> int | None: ...

    @property
    def text(self) -> str: ...


_Target = Literal["command", "plain", "login-user", "login-pass", "cram", "xoauth2"]

_NEEDS: dict[tuple[str, _Target], tuple[SecretKind, ...]] = {
    ("PLAIN", "plain"): ("username", "password"),
    ("LOGIN", "login-user"): ("username",),
    ("LOGIN", "login-pass"): ("password",),
    ("CRAM-MD5", "cram"): ("username", "password"),
    ("XOAUTH2", "xoauth2"): ("username", "token"),
}
_FIRST_RESPONSE: dict[str, _Target] = {
    "PLAIN": "plain",
    "LOGIN": "login-user",
    "XOAUTH2": "xoauth2",
}


class AuthExchange:
    """One AUTH conversation, without I/O: the console sends lines and feeds replies.

    Typical loop::

        ex = AuthExchange("LOGIN")
        step = ex.start()
        while not step.done:
            while step.need:                       # "username" / "password" / "token"
                step = ex.provide(ask(step.need, echo=step.echo))
            send(step.line)                        # may be "" (XOAUTH2): still send it
            step = ex.feed(*read_reply())          # 334 → next step; 235/4xx/5xx → done

    Credentials can also be given up front; the exchange then asks only for what is
    missing. `cancel` answers a pending challenge with ``*`` (the server replies 501).
    """

    def __init__(
        self,
        mechanism: str,
        *,
        initial_response: bool = False,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        authzid: str = "",
    ) -> None:
        mech = mechanism.strip().upper()
        if mech not in SUPPORTED_MECHANISMS:
            raise AuthError(
                f"mechanism {mechanism!r} is not supported here; "
                f"choose one of {', '.join(SUPPORTED_MECHANISMS)}"
            )
        if initial_response and mech == "CRAM-MD5":
            raise AuthError("CRAM-MD5 cannot send an initial response: the server speaks first")
        self.mechanism = mech
        self.initial_response = initial_response
        self.authzid = authzid
        if "\0" in authzid:
            raise AuthError("the authorization identity contains NUL, the PLAIN separator")
        self._values: dict[SecretKind, str] = {}
        if user is not None:
            self._values["username"] = self._checked("username", user)
        if password is not None:
            self._values["password"] = self._checked("password", password)
        if token is not None:
            self._values["token"] = self._checked("token", token)
        self._phase: Literal["new", "need", "wait", "done"] = "new"
        self._target: _Target = "command"
        self._challenge: DecodedChallenge | None = None
        self._responses = 0  # client responses sent, the initial response included
        self._cancelled = False
        self._secret_lines: list[str] = []
        self.success: bool | None = None

    @classmethod
    def from_command(cls, line: str) -> AuthExchange:
        """An exchange for an ``AUTH <mech> [initial-response]`` line the student typed.

        The console sends the typed line as is, then feeds the replies: the exchange starts
        out waiting for the server. A typed initial response counts as the first response.
        """
        parts = line.split()
        if len(parts) < 2 or parts[0].upper() != "AUTH":
            raise AuthError("expected 'AUTH <mechanism> [initial-response]'")
        if len(parts) > 3:
            raise AuthError("AUTH takes a mechanism and at most one initial response")
        ex = cls(parts[1], initial_response=len(parts) == 3)
        ex._phase = "wait"
        if len(parts) == 3:
            ex._responses = 1
            if parts[2] != "=" and ex.mechanism != "LOGIN":
                ex._secret_lines.append(line.strip())
        return ex

    # -- state

    @property
    def done(self) -> bool:
        return self._phase == "done"

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def user(self) -> str | None:
        return self._values.get("username")

    @property
    def secret_lines(self) -> tuple[str, ...]:
        """Every line this exchange produced that carries a password or token."""
        return tuple(self._secret_lines)

    def secret_values(self) -> tuple[str, ...]:
        """The passwords/tokens given so far, for a `SecretTracker`; never display them."""
        return tuple(v for k, v in self._values.items() if k != "username" and v)

    def __repr__(self) -> str:  # never show credentials
        return (
            f"AuthExchange(mechanism={self.mechanism!r}, phase={self._phase!r}, "
            f"responses={self._responses})"
        )

    # -- driving

    def start(self) -> AuthStep:
        """The first step: the ``AUTH`` command, or the secrets it needs first."""
        if self._phase != "new":
            raise AuthError("this AUTH exchange has already started")
        self._target = "command"
        return self._advance()

    def command(self) -> str:
        """The ``AUTH`` line, when every credential it needs was given up front."""
        step = self.start()
        if step.line is None:
            self._phase = "new"
            raise AuthError(f"AUTH {self.mechanism} with an initial response needs the {step.need}")
        return step.line

    def provide(self, value: str) -> AuthStep:
        """Give the value the last step asked for (typed in plain text by the student)."""
        if self._phase != "need":
            raise AuthError("nothing is being asked for right now")
        kind = self._missing()
        assert kind is not None
        self._values[kind] = self._checked(kind, value)
        return self._advance()

    def cancel(self) -> AuthStep:
        """Abort: answer the pending challenge with ``*`` (RFC 4954), or just stop.

        A value typed at a prompt is never taken as ``*``: a password may well be ``*``.
        """
        if self._phase == "done":
            return AuthStep(done=True, success=self.success, note="the exchange is already over")
        if self._phase == "new" or (self._phase == "need" and self._target == "command"):
            return self._finish(False, "cancelled before anything was sent")
        if self._phase == "wait":
            raise AuthError("the server has not answered yet; cancel at its next challenge")
        self._cancelled = True
        self._phase = "wait"
        return AuthStep(line="*", note=Said("auth", "cancel"))

    def feed_reply(self, reply: _HasReply) -> AuthStep:
        """`feed` for a parsed reply object with ``code`` and ``text``."""
        return self.feed(reply.code, reply.text)

    def feed(self, code: int | None, text: str = "") -> AuthStep:
        """The server's reply to what was just sent; returns the next step."""
        if self._phase != "wait":
            raise AuthError("no reply is expected now: send the pending line first")
        if code == 235:
            return self._finish(True, "235: authenticated")
        if code == 334:
            return self._on_challenge(text)
        if self._cancelled:
            ok = code == 501
            note = "cancelled (501 is the expected answer to '*')"
            if not ok:
                note = f"cancelled; the server answered {code}"
            return self._finish(False, note)
        if code is None:
            return self._finish(False, "the server's reply had no valid code")
        return self._finish(False, _failure_note(code))

    # -- internals

    def _checked(self, kind: SecretKind, value: str) -> str:
        """Refuse a value the mechanism cannot carry now, so building a line never fails."""
        what = {"username": "user name", "password": "password", "token": "token"}[kind]
        if not value:
            raise AuthError(f"the {what} is empty; type it, or cancel")
        forbid = {"PLAIN": "\0", "XOAUTH2": "\x01"}.get(self.mechanism, "")
        credential_bytes(value, what, forbid=forbid)
        return value

    def _finish(self, success: bool, note: str) -> AuthStep:
        self._phase = "done"
        self.success = success
        return AuthStep(done=True, success=success, note=note)

    def _needs(self) -> tuple[SecretKind, ...]:
        if self._target == "command":
            if not self.initial_response:
                return ()
            return _NEEDS[(self.mechanism, _FIRST_RESPONSE[self.mechanism])]
        return _NEEDS[(self.mechanism, self._target)]

    def _missing(self) -> SecretKind | None:
        for kind in self._needs():
            if not self._values.get(kind):
                return kind
        return None

    def _advance(self) -> AuthStep:
        shown = self._challenge.text if self._challenge is not None else None
        kind = self._missing()
        if kind is not None:
            self._phase = "need"
            return AuthStep(need=kind, challenge=shown)
        line, secret = self._build()
        self._phase = "wait"
        if secret:
            self._secret_lines.append(line)
        return AuthStep(line=line, challenge=shown, secret=secret)

    def _response(self, target: _Target) -> tuple[str, bool]:
        v = self._values
        if target == "plain":
            return plain_response(v["username"], v["password"], self.authzid), True
        if target == "login-user":
            return login_answer(v["username"], "user name"), False
        if target == "login-pass":
            return login_answer(v["password"], "password"), True
        if target == "xoauth2":
            return xoauth2_string(v["username"], v["token"]), True
        assert target == "cram" and self._challenge is not None
        return cram_md5_answer(v["username"], v["password"], self._challenge.raw), True

    def _build(self) -> tuple[str, bool]:
        if self._target == "command":
            if not self.initial_response:
                return f"AUTH {self.mechanism}", False
            ir, secret = self._response(_FIRST_RESPONSE[self.mechanism])
            self._responses = 1
            return f"AUTH {self.mechanism} {ir}", secret
        line, secret = self._response(self._target)
        self._responses += 1
        return line, secret

    def _protocol_cancel(self, challenge: DecodedChallenge, note: str) -> AuthStep:
        self._cancelled = True
        self._phase = "wait"
        return AuthStep(line="*", challenge=challenge.text, note=note)

    def _on_challenge(self, text: str) -> AuthStep:
        challenge = parse_challenge(text)
        self._challenge = challenge
        if self._cancelled:
            return self._finish(False, "the server sent another challenge after '*'")
        mech = self.mechanism
        if mech == "XOAUTH2" and self._responses == 1:
            import json  # only for a refused XOAUTH2: not on every console's start

            error = decode_xoauth2_error(challenge.payload)
            self._responses += 1
            self._phase = "wait"
            return AuthStep(
                line="",
                challenge=json.dumps(error, ensure_ascii=False),
                note=Said("auth", "xoauth2_rejected"),
            )
        if mech == "LOGIN":
            if self._responses >= 2:
                return self._protocol_cancel(challenge, Said("auth", "login_twice"))
            kind = classify_login_prompt(challenge.text)
            if kind == "unknown":
                kind = "username" if self._responses == 0 else "password"
            self._target = "login-user" if kind == "username" else "login-pass"
            return self._advance()
        if self._responses >= 1:
            return self._protocol_cancel(challenge, Said("auth", "one_response", mechanism=mech))
        if mech == "CRAM-MD5":
            if not challenge.valid:
                return self._protocol_cancel(
                    challenge,
                    Said("auth", "cram_not_base64", error=str(challenge.error)),
                )
            self._target = "cram"
            return self._advance()
        self._target = _FIRST_RESPONSE[mech]
        return self._advance()


_FAILURES = {
    432: "a password transition is needed",
    454: "temporary authentication failure; try again later",
    500: "the server does not know AUTH (did you send EHLO, not HELO?)",
    501: "the server could not read the response (bad base64, or cancelled)",
    502: "AUTH is not implemented here",
    503: "bad sequence: already authenticated, or inside a mail transaction",
    504: "the server does not offer this mechanism",
    530: "authentication required",
    534: "the server thinks this mechanism is too weak",
    535: "bad credentials",
    538: "encryption required first: use STARTTLS",
}


def _failure_note(code: int) -> str:
    known = _FAILURES.get(code)
    if known:
        return f"{code}: {known}"
    if 400 <= code < 500:
        return f"{code}: temporary failure"
    if 500 <= code < 600:
        return f"{code}: authentication failed"
    return f"{code}: unexpected reply to AUTH"
