"""A whole session over real sockets: aiosmtpd for the happy path, scripted servers for the
ways a server can misbehave (hang up, 421, silence, a broken STARTTLS)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

from servers import (
    HOST,
    Close,
    Expect,
    Hang,
    ScriptServer,
    Send,
    SMTPServer,
    StartTLS,
    Wait,
    certificates,
    run,
)

from smtp_tutor.client.connection import WireEvent
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
from smtp_tutor.core.dialogue import Phase


class Recorder:
    """The session's listener: keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[SessionEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: SessionEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[SessionEvent], bool], timeout: float = 3.0
    ) -> SessionEvent:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    def of(self, kind: type) -> list[SessionEvent]:
        return [e for e in self.events if isinstance(e, kind)]

    def replies(self) -> list[ReplyEvent]:
        return [e for e in self.events if isinstance(e, ReplyEvent)]

    def codes(self) -> list[int | None]:
        return [e.outcome.reply.code for e in self.replies()]


def target(port: int, reply_timeout: float = 3.0) -> Target:
    return Target(HOST, port, connect_timeout=3.0, reply_timeout=reply_timeout)


async def say(session: Session, recorder: Recorder, line: str) -> int | None:
    """Send a line, wait for its reply, return the code of the last reply seen."""
    assert await session.send(line) is not None
    assert await session.wait_idle(3)
    return recorder.codes()[-1]


def test_full_session_with_starttls_auth_and_a_dot_stuffed_message() -> None:
    async def main() -> None:
        recorder, wire = Recorder(), list[WireEvent]()
        async with SMTPServer() as server:
            session = Session(target(server.port), recorder, wire.append)
            await session.connect()
            assert await session.wait_idle(3)
            assert recorder.codes() == [220]
            dialogue = session.dialogue

            assert await say(session, recorder, "EHLO client.example") == 250
            assert dialogue.capabilities is not None and dialogue.capabilities.has("STARTTLS")

            assert await say(session, recorder, "STARTTLS") == 220
            tls_events = recorder.of(TLSEvent)
            assert len(tls_events) == 1
            assert dialogue.tls_active and not dialogue.tls_pending
            assert dialogue.capabilities is None  # forgotten, RFC 3207 §4.2
            assert dialogue.phase is Phase.GREETED

            assert await say(session, recorder, "EHLO client.example") == 250
            assert dialogue.capabilities is not None
            assert not dialogue.capabilities.has("STARTTLS")
            assert "PLAIN" in dialogue.capabilities.auth_mechanisms

            token = base64.b64encode(b"\0student\0secret").decode()
            assert await say(session, recorder, f"AUTH PLAIN {token}") == 235
            assert dialogue.authenticated and dialogue.authenticated_user == "student"

            assert await say(session, recorder, "MAIL FROM:<teacher@example.org>") == 250
            assert await say(session, recorder, "RCPT TO:<student@example.org>") == 250
            assert await say(session, recorder, "DATA") == 354
            assert dialogue.sending_data
            body = ["Subject: dots", "", "first line", ".starts with a dot", "..", " . not the end"]
            for line in body:
                sent = await session.send(line)
                assert sent is not None and sent.verb == "<data line>"
            assert await say(session, recorder, ".") == 250
            assert dialogue.phase is Phase.READY

            assert await say(session, recorder, "QUIT") == 221
            closed = await recorder.wait_for(lambda e: isinstance(e, ClosedEvent))
            assert isinstance(closed, ClosedEvent) and "QUIT" in closed.reason
            assert dialogue.phase is Phase.CLOSED
            assert not session.is_open
            assert await session.send("NOOP") is None
            await session.close()

        assert len(server.handler.envelopes) == 1
        envelope = server.handler.envelopes[0]
        assert envelope.mail_from == "teacher@example.org"
        assert envelope.rcpt_tos == ["student@example.org"]
        assert envelope.content == b"".join(line.encode() + b"\r\n" for line in body)

        sent = [e for e in wire if e.direction == "sent"]
        assert any(e.data == b"..starts with a dot\r\n" and e.tls for e in sent)
        assert any(e.data == b"...\r\n" for e in sent)
        assert [e.data for e in sent if not e.tls] == [b"EHLO client.example\r\n", b"STARTTLS\r\n"]
        assert sum(isinstance(e, TLSEvent) for e in recorder.events) == 1
        latencies = [e.latency for e in recorder.replies()]
        assert len(latencies) == 10
        assert all(isinstance(x, float) and x >= 0 for x in latencies)

    run(main())


def test_server_hangs_up_mid_session() -> None:
    async def main() -> None:
        recorder = Recorder()
        script = [
            Send(b"220 mx.test\r\n"),
            Expect(b"EHLO"),
            Send(b"250-mx.test\r\n250-SI"),
            Close(),
        ]
        async with ScriptServer(script) as server:
            session = Session(target(server.port), recorder)
            await session.connect()
            await session.wait_idle(3)
            assert await session.send("EHLO client.test") is not None
            assert await session.wait_idle(3)
            closed = await recorder.wait_for(lambda e: isinstance(e, ClosedEvent))
            assert isinstance(closed, ClosedEvent)
            assert session.dialogue.phase is Phase.CLOSED
            assert not session.is_open
            # the half reply came through, flagged, before the close
            last = recorder.replies()[-1].outcome.reply
            assert last.malformed and last.lines[0] == "mx.test"
            assert await session.send("NOOP") is None
            assert await session.send("QUIT") is None
            await session.close()
        assert server.lines == [b"EHLO client.test\r\n"]

    run(main())


def test_421_closes_the_session() -> None:
    async def main() -> None:
        recorder = Recorder()
        script = [Send(b"220 mx.test\r\n"), Expect(b"EHLO"), Send(b"421 4.3.2 going down\r\n")]
        async with ScriptServer([*script, Hang()]) as server:
            session = Session(target(server.port), recorder)
            await session.connect()
            await session.wait_idle(3)
            await session.send("EHLO client.test")
            closed = await recorder.wait_for(lambda e: isinstance(e, ClosedEvent))
            assert isinstance(closed, ClosedEvent) and "421" in closed.reason
            assert session.dialogue.phase is Phase.CLOSED
            assert not session.is_open
            assert await session.wait_idle(1)
            assert await session.send("MAIL FROM:<a@b.example>") is None
            await session.close()

    run(main())


def test_silence_is_reported_even_when_the_reader_was_idle() -> None:
    """The reader waits long when nothing is expected; a command typed then is watched too."""

    async def main() -> None:
        recorder = Recorder()
        script = [
            Send(b"220 mx.test\r\n"),
            Expect(b"EHLO"),
            Expect(b"NOOP"),
            Send(b"250 hello at last\r\n250 ok\r\n"),
            Hang(),
        ]
        async with ScriptServer(script) as server:
            session = Session(target(server.port, reply_timeout=0.3), recorder)
            await session.connect()
            assert await session.wait_idle(3)
            await asyncio.sleep(0.5)  # longer than reply_timeout with nothing waiting
            assert recorder.of(SilenceEvent) == []
            await session.send("EHLO client.test")
            silence = await recorder.wait_for(lambda e: isinstance(e, SilenceEvent))
            assert silence == SilenceEvent(0.3)
            assert session.is_open and not await session.wait_idle(0)
            await session.send("NOOP")  # the session goes on
            assert await session.wait_idle(3)
            assert recorder.codes() == [220, 250, 250]
            assert session.dialogue.phase is Phase.READY
            await session.close()

    run(main())


def test_unsolicited_reply_has_no_latency() -> None:
    async def main() -> None:
        recorder = Recorder()
        script = [Send(b"220 mx.test\r\n"), Wait(0.05), Send(b"250 nobody asked\r\n"), Hang()]
        async with ScriptServer(script) as server:
            session = Session(target(server.port), recorder)
            await session.connect()
            await recorder.wait_for(lambda e: isinstance(e, ReplyEvent) and e.latency is None)
            greeting, extra = recorder.replies()
            assert greeting.latency is not None and greeting.latency >= 0
            assert extra.outcome.unsolicited
            await session.close()

    run(main())


def test_line_typed_during_the_tls_handshake_waits_for_it() -> None:
    """Written at once it would go out in clear text in the middle of the handshake."""

    async def main() -> None:
        recorder = Recorder()
        script = [
            Send(b"220 mx.test\r\n"),
            Expect(b"EHLO"),
            Send(b"250 STARTTLS\r\n"),
            Expect(b"STARTTLS"),
            Send(b"220 go ahead\r\n"),
            # the client's handshake is under way for 0.3 s
            StartTLS(certificates().self_signed.server_context(), delay=0.3),
            Expect(b"EHLO"),
            Send(b"250 over TLS\r\n"),
            Hang(),
        ]
        async with ScriptServer(script) as server:
            session = Session(target(server.port), recorder)
            await session.connect()
            await session.wait_idle(3)
            await session.send("EHLO client.test")
            await session.wait_idle(3)
            await session.send("STARTTLS")
            await recorder.wait_for(lambda e: isinstance(e, ReplyEvent) and e.outcome.start_tls)
            assert session.dialogue.tls_pending
            await session.send("EHLO client.test")  # returns once TLS is up
            assert await session.wait_idle(3)
            assert recorder.codes() == [220, 250, 220, 250], recorder.events
            assert session.dialogue.tls_active
            await session.close()
        assert server.errors == []
        assert [r.tls for r in server.received] == [False, False, True]

    run(main())


def test_failed_starttls_handshake() -> None:
    async def main() -> None:
        recorder = Recorder()
        script = [
            Send(b"220 mx.test\r\n"),
            Expect(b"STARTTLS"),
            Send(b"220 go ahead\r\n"),
            Expect(b""),
            Send(b"not TLS at all\r\n"),
            Close(),
        ]
        async with ScriptServer(script) as server:
            session = Session(target(server.port), recorder)
            await session.connect()
            await session.wait_idle(3)
            await session.send("STARTTLS")
            closed = await recorder.wait_for(lambda e: isinstance(e, ClosedEvent))
            failed = recorder.of(TLSFailed)
            assert len(failed) == 1 and isinstance(failed[0], TLSFailed)
            assert "TLS handshake" in failed[0].reason and "\n" not in failed[0].reason
            assert isinstance(closed, ClosedEvent) and closed.reason == failed[0].reason
            assert not session.dialogue.tls_active
            assert session.dialogue.phase is Phase.CLOSED
            assert await session.send("EHLO client.test") is None
            await session.close()

    run(main())


def test_implicit_tls_session_starts_encrypted() -> None:
    async def main() -> None:
        recorder = Recorder()
        context = certificates().self_signed.server_context()
        async with ScriptServer([Send(b"220 tls.test\r\n"), Hang()], ssl=context) as server:
            session = Session(
                Target(HOST, server.port, implicit_tls=True, connect_timeout=3), recorder
            )
            await session.connect()
            assert isinstance(recorder.events[0], TLSEvent)
            assert session.dialogue.tls_active
            assert await session.wait_idle(3)
            assert recorder.codes() == [220]
            await session.close()
            assert not session.is_open

    run(main())


def test_target_label() -> None:
    assert Target("mx.example.org", 25).label == "mx.example.org:25"
    assert Target("::1", 587).label == "[::1]:587"
    assert Target("[::1]", 587).label == "[::1]:587"
