"""A live POP3 session: a `Connection` driven by the POP3 core's `Dialogue`.

The SMTP `Session`'s twin, kept small: the same connection (TLS switched on in place after
STLS's +OK), the same events for TLS, silence and the end of the connection, the same
silence watchdog. What differs is who parses: POP3's bytes cannot say where a response ends
(+OK to LIST opens lines up to a ".", +OK to USER is all), so the raw bytes go to the
dialogue, which knows what each line sent expects. It knows nothing about terminals.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from smtp_tutor.client.connection import (
    Closed,
    Connection,
    ConnectionFailed,
    TimedOut,
    WireObserver,
)
from smtp_tutor.client.session import (
    ClosedEvent,
    Listener,
    SilenceEvent,
    Target,
    TLSEvent,
    TLSFailed,
)
from smtp_tutor.core.pop3.checker import Finding, check
from smtp_tutor.core.pop3.dialogue import Dialogue, Outcome, Sent, State

__all__ = [
    "POP3S_PORT",
    "POP3_PORT",
    "ClosedEvent",
    "Pop3Session",
    "ResponseEvent",
    "SilenceEvent",
    "TLSEvent",
    "TLSFailed",
    "pop3_target",
]

POP3_PORT = 110
POP3S_PORT = 995  # RFC 8314: POP3 over TLS from the first byte

_IDLE_READ = 3600.0


@dataclass(frozen=True)
class ResponseEvent:
    """A POP3 response arrived; `latency` is seconds since the line it answers was sent."""

    outcome: Outcome
    latency: float | None


def pop3_target(target: Target) -> Target:
    """Port 995 means TLS from the first byte unless the caller chose (465 is SMTP's)."""
    from smtp_tutor.core.records import replace

    if target.implicit_tls is None:
        return replace(target, implicit_tls=target.port == POP3S_PORT)
    return target


class Pop3Session:
    """One connection's worth of POP3, with a background reader feeding the dialogue."""

    def __init__(
        self, target: Target, listener: Listener, observer: WireObserver | None = None
    ) -> None:
        self.target = pop3_target(target)
        self.dialogue = Dialogue()
        self.connection: Connection | None = None
        self._listener = listener
        self._observer = observer
        self._reader_task: asyncio.Task[None] | None = None
        self._sent_at: list[float] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._not_upgrading = asyncio.Event()
        self._not_upgrading.set()
        self._watchdog: asyncio.TimerHandle | None = None

    async def connect(self) -> None:
        """Open the connection and start listening; raises ConnectionFailed with one line."""
        target = self.target
        self.connection = await Connection.open(
            target.host,
            target.port,
            implicit_tls=target.implicit_tls,
            connect_timeout=target.connect_timeout,
            reply_timeout=target.reply_timeout,
            ssl_context=target.ssl_context,
            server_hostname=target.server_hostname,
            observer=self._observer,
            cafile=target.cafile,
            family=target.family,
            source_address=target.source_address,
        )
        if self.connection.tls is not None:
            info = self.connection.tls
            self.dialogue.tls_at_connect(info.version, info.cipher)
            self._listener(TLSEvent(info))
        self._sent_at.append(time.monotonic())  # the greeting answers the connection
        self._idle.clear()
        self._arm_watchdog()
        self._reader_task = asyncio.create_task(self._read_loop())

    @property
    def is_open(self) -> bool:
        return (
            self.connection is not None
            and not self.connection.is_closed
            and self.dialogue.state is not State.CLOSED
        )

    def check(self, line: str) -> list[Finding]:
        """The POP3 checker's warnings for `line` now (nothing is sent)."""
        return check(line, self.dialogue)

    async def send(self, line: str) -> Sent | None:
        """Send one line as typed (plus CRLF); None if closed. Waits for an STLS handshake."""
        await self._not_upgrading.wait()
        if not self.is_open:
            return None
        assert self.connection is not None
        sent = self.dialogue.send(line)  # LineError for CR/LF: the console checks first
        self._sent_at.append(time.monotonic())
        self._idle.clear()
        if self._watchdog is None:
            self._arm_watchdog()
        await self.connection.send_bytes(sent.wire)
        return sent

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every line sent has its response (or the session closed)."""
        if self._idle.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Hang up from the client side; no ClosedEvent is emitted for it."""
        self._disarm_watchdog()
        if self._reader_task is not None:
            task, self._reader_task = self._reader_task, None
            task.cancel()
            await asyncio.wait({task})
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
        if self.connection is not None:
            await self.connection.close()
        self.dialogue.connection_lost()
        self._sent_at.clear()
        self._idle.set()
        self._not_upgrading.set()

    # -- the background reader ---------------------------------------------------------

    async def _read_loop(self) -> None:
        assert self.connection is not None
        connection = self.connection
        try:
            while True:
                data = await connection.read_data(_IDLE_READ)
                if isinstance(data, TimedOut):
                    continue
                if isinstance(data, Closed):
                    for outcome in self.dialogue.receive_eof():
                        self._deliver(outcome)
                    self.dialogue.connection_lost()
                    await self._closed(connection, self.dialogue.close_reason or data.reason)
                    return
                for outcome in self.dialogue.receive(data):
                    self._deliver(outcome)
                    if outcome.start_tls:
                        self._sent_at.clear()  # the dialogue forgot what was in flight
                        await self._start_tls(connection)
                if self.dialogue.state is State.CLOSED:
                    await self._closed(connection, self.dialogue.close_reason or "session closed")
                    return
                if not self._sent_at:
                    self._idle.set()
        finally:
            self._disarm_watchdog()
            self._not_upgrading.set()
            self._idle.set()

    def _deliver(self, outcome: Outcome) -> None:
        started = None
        if outcome.answered is not None and self._sent_at:
            started = self._sent_at.pop(0)
        latency = max(0.0, time.monotonic() - started) if started is not None else None
        if outcome.start_tls:
            self._not_upgrading.clear()
        self._arm_watchdog()
        self._listener(ResponseEvent(outcome, latency))

    async def _closed(self, connection: Connection, reason: str) -> None:
        self._sent_at.clear()
        self._disarm_watchdog()
        self._not_upgrading.set()
        self._idle.set()
        self._listener(ClosedEvent(reason))
        await connection.close()

    async def _start_tls(self, connection: Connection) -> None:
        try:
            info = await connection.starttls(
                self.target.ssl_context,
                self.target.server_hostname,
                timeout=self.target.connect_timeout,
            )
        except ConnectionFailed as error:
            self.dialogue.connection_lost()
            self._listener(TLSFailed(str(error)))
        else:
            self.dialogue.tls_established(info.version, info.cipher)
            self._listener(TLSEvent(info))
        finally:
            self._not_upgrading.set()

    # -- silence -----------------------------------------------------------------------

    def _arm_watchdog(self) -> None:
        self._disarm_watchdog()
        if self._sent_at:
            loop = asyncio.get_running_loop()
            self._watchdog = loop.call_later(self.target.reply_timeout, self._silence)

    def _disarm_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _silence(self) -> None:
        self._watchdog = None
        if self._sent_at and self.is_open:
            self._listener(SilenceEvent(self.target.reply_timeout))
