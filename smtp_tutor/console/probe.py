"""`smtp-tutor connect HOST --quit-after STAGE`: a scripted probe of a real server.

Walks the dialogue an administrator checks first — greeting, EHLO, STARTTLS, AUTH, MAIL,
RCPT — shows every reply the way the console does, stops after the asked stage with QUIT,
and tells by its exit code how far the server let it go (like swaks' --quit-after).

With a recorder it also writes the transcript the console would (`--transcript FILE`,
`--format jsonl`): every line sent, every reply, the TLS handshake; AUTH secrets become
placeholders, as in the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

from smtp_tutor.client.connection import ConnectionFailed, wants_implicit_tls
from smtp_tutor.client.session import (
    ClosedEvent,
    ReplyEvent,
    Session,
    SessionEvent,
    SilenceEvent,
    Target,
    TLSEvent,
    TLSFailed,
)
from smtp_tutor.console import render
from smtp_tutor.core.auth_exchange import AuthExchange
from smtp_tutor.core.placeholders import Placeholder
from smtp_tutor.core.recorder import TranscriptRecorder
from smtp_tutor.core.replies import Reply

STAGES = ("connect", "ehlo", "tls", "auth", "mail", "rcpt")
EXIT_REFUSED = 1
EXIT_CONNECTION = 3


@dataclass
class ProbePlan:
    quit_after: str
    ehlo: str = "smtp-tutor.invalid"
    user: str | None = None
    password: str | None = None
    mail_from: str = ""
    rcpt_to: str | None = None
    lang: str = "en"


class ProbeFailed(Exception):
    """A step did not get the reply it needs; str() says which.

    A failure of the connection itself (silence, a hang-up, TLS) has code EXIT_CONNECTION:
    then no QUIT is sent, since nobody would answer it but after another whole timeout.
    """

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


class Probe:
    def __init__(
        self,
        targets: list[Target],
        plan: ProbePlan,
        show: Callable[[render.Fragments], None],
        recorder: TranscriptRecorder | None = None,
    ) -> None:
        self.targets, self.plan, self.show = targets, plan, show
        self.recorder = recorder
        self.target = targets[0]
        self.events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self.session = Session(self.target, self._on_event)

    def _on_event(self, event: SessionEvent) -> None:
        """Every event is recorded as it comes, whichever step is waiting for it."""
        recorder = self.recorder
        if recorder is not None:
            if isinstance(event, ReplyEvent):
                self._record(recorder.received, event.outcome.reply, event.latency)
            elif isinstance(event, TLSEvent):
                self._record(recorder.tls_started, event.info.version, event.info.cipher)
            elif isinstance(event, ClosedEvent):
                self._record(recorder.closed, event.reason)
            elif isinstance(event, SilenceEvent):
                self._record(recorder.comment, f"no reply after {event.seconds:g} s")
        self.events.put_nowait(event)

    def _record(self, event: Callable[..., None], *args: object) -> None:
        """A transcript that cannot be written is said once; the probe goes on without it."""
        try:
            event(*args)
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or error
            print(f"smtp-tutor: the transcript stopped: {reason}", file=sys.stderr)
            self.recorder = None

    async def _connect(self) -> None:
        """The first target that answers (the MX hosts in order); ConnectionFailed if none."""
        for index, target in enumerate(self.targets):
            self.target = target
            self.session = Session(target, self._on_event)
            if self.recorder is not None:  # first: with implicit TLS, @tls follows @connect
                implicit = wants_implicit_tls(target.port, target.implicit_tls)
                self._record(self.recorder.connected, target.host, target.port, implicit)
            try:
                await self.session.connect()
                return
            except ConnectionFailed as error:
                if self.recorder is not None:
                    self._record(self.recorder.closed, str(error))
                if index == len(self.targets) - 1:
                    raise
                self.show([("class:finding.error", f"  ✗ {error}\n")])

    async def _send(self, line: str, secret: Placeholder | None = None) -> None:
        if await self.session.send(line) is not None and self.recorder is not None:
            self._record(self.recorder.sent, line, secret)

    async def run(self) -> int:
        try:
            await self._connect()
            await self._steps()
        except ConnectionFailed as error:
            print(f"smtp-tutor: {error}", file=sys.stderr)
            return EXIT_CONNECTION
        except ProbeFailed as error:
            print(f"smtp-tutor: {error}", file=sys.stderr)
            if error.code != EXIT_CONNECTION:
                await self._quit()
            return error.code
        finally:
            await self.session.close()
        return 0

    async def _steps(self) -> None:
        plan = self.plan
        await self._expect("greeting", (220,))
        if plan.quit_after == "connect":
            return await self._quit()
        await self._command(f"EHLO {plan.ehlo}", "EHLO", (250,))
        if plan.quit_after == "ehlo":
            return await self._quit()
        if plan.quit_after == "tls" or self._has("STARTTLS"):
            if not self._has("STARTTLS"):
                raise ProbeFailed("the server does not advertise STARTTLS")
            await self._command("STARTTLS", "STARTTLS", (220,))
            await self._await_tls()
            await self._command(f"EHLO {plan.ehlo}", "EHLO", (250,))
        if plan.quit_after == "tls":
            return await self._quit()
        if plan.user:
            await self._auth()
        elif plan.quit_after == "auth":
            raise ProbeFailed("--quit-after auth needs --auth-user", code=2)
        if plan.quit_after == "auth":
            return await self._quit()
        await self._command(f"MAIL FROM:<{plan.mail_from}>", "MAIL", (250,))
        if plan.quit_after == "mail":
            return await self._quit()
        if not plan.rcpt_to:
            raise ProbeFailed("--quit-after rcpt needs --to ADDRESS", code=2)
        await self._command(f"RCPT TO:<{plan.rcpt_to}>", "RCPT", (250, 251))
        return await self._quit()

    def _has(self, keyword: str) -> bool:
        caps = self.session.dialogue.capabilities
        return caps is not None and caps.has(keyword)

    async def _auth(self) -> None:
        plan = self.plan
        caps = self.session.dialogue.capabilities
        offered = caps.auth_mechanisms if caps is not None else ()
        mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
        if mechanism is None:
            raise ProbeFailed(f"no PLAIN or LOGIN among the AUTH mechanisms ({' '.join(offered)})")
        exchange = AuthExchange(mechanism, user=plan.user, password=plan.password or "")
        step = exchange.start()
        while not step.done:
            if step.line is None:
                raise ProbeFailed("AUTH needs a password (SMTP_TUTOR_PASSWORD or a prompt)", 2)
            shown = "AUTH " + mechanism if step.line.startswith("AUTH") else "********"
            self.show([("class:sent", f"C: {shown}\n")])
            await self._send(step.line, _placeholder(mechanism, plan.user) if step.secret else None)
            reply = await self._reply()
            step = exchange.feed_reply(reply)
        if not step.success:
            raise ProbeFailed(f"AUTH {mechanism} was refused")

    async def _command(self, line: str, stage: str, ok: tuple[int, ...]) -> Reply:
        self.show([("class:sent", f"C: {line}\n")])
        await self._send(line)
        return await self._expect(stage, ok)

    async def _expect(self, stage: str, ok: tuple[int, ...]) -> Reply:
        reply = await self._reply()
        if reply.code not in ok:
            raise ProbeFailed(f"{stage}: the server answered {reply.code or 'nonsense'}")
        return reply

    async def _reply(self) -> Reply:
        while True:
            event = await self.events.get()
            if isinstance(event, ReplyEvent):
                self.show(
                    render.reply_fragments(event.outcome.reply, event.latency, self.plan.lang)
                )
                self.show(render.explanation_fragments(event.outcome.reply, self.plan.lang))
                return event.outcome.reply
            if isinstance(event, TLSEvent):
                self.show(render.tls_fragments(event.info, self.plan.lang))
            elif isinstance(event, TLSFailed):
                raise ProbeFailed(event.reason, EXIT_CONNECTION)
            elif isinstance(event, ClosedEvent):
                raise ProbeFailed(f"connection closed: {event.reason}", EXIT_CONNECTION)
            elif isinstance(event, SilenceEvent):
                raise ProbeFailed(f"no reply after {event.seconds:g} s", EXIT_CONNECTION)

    async def _await_tls(self) -> None:
        while not self.session.dialogue.tls_active:
            event = await self.events.get()
            if isinstance(event, TLSEvent):
                self.show(render.tls_fragments(event.info, self.plan.lang))
            elif isinstance(event, TLSFailed | ClosedEvent):
                reason = event.reason
                raise ProbeFailed(f"TLS handshake failed: {reason}", EXIT_CONNECTION)

    async def _quit(self) -> None:
        if not self.session.is_open:
            return
        self.show([("class:sent", "C: QUIT\n")])
        await self._send("QUIT")
        with contextlib.suppress(ProbeFailed, TimeoutError):
            await asyncio.wait_for(self._reply(), self.target.reply_timeout)


def _placeholder(mechanism: str, user: str | None) -> Placeholder:
    """What the transcript keeps of a secret AUTH line: how replay rebuilds it, not the secret."""
    return Placeholder.plain(user) if mechanism == "PLAIN" else Placeholder.login_password()
