"""A live SMTP session for the console and lessons: a `Connection` driven by the `Dialogue`.

It sends lines, reads replies in the background (a server may speak unasked: a 421 on idle,
replies to pipelined commands), feeds each reply to the dialogue, does the TLS handshake the
moment the server says 220 to STARTTLS, and hands every `Outcome` to whoever listens. It
knows nothing about terminals. (Replay has its own blocking link, `replay_link`: it needs no
concurrency, and drives the same core.)

Silence is watched separately from reading: a timer runs whenever a line waits for its reply
and restarts on every reply, so a command typed while the reader was idle is watched too.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from smtp_tutor.client.connection import (
    Closed,
    Connection,
    ConnectionFailed,
    TimedOut,
    WireObserver,
)
from smtp_tutor.core.checker import Finding, check
from smtp_tutor.core.dialogue import DATA_LINE, END_OF_DATA, Dialogue, Outcome, Phase, Sent
from smtp_tutor.core.message_data import stuff_line
from smtp_tutor.core.records import record

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    from smtp_tutor.client.tls import TLSInfo

#: How long one background read waits; silence is the watchdog's business, not the reader's.
_IDLE_READ = 3600.0


@record(frozen=True)
class ReplyEvent:
    """A reply arrived; `latency` is seconds since the command it answers was sent."""

    outcome: Outcome
    latency: float | None


@record(frozen=True)
class TLSEvent:
    info: TLSInfo


@record(frozen=True)
class TLSFailed:
    reason: str


@record(frozen=True)
class ClosedEvent:
    reason: str


@record(frozen=True)
class SilenceEvent:
    """Nothing came back for a command within the reply timeout; the session goes on."""

    seconds: float


SessionEvent = ReplyEvent | TLSEvent | TLSFailed | ClosedEvent | SilenceEvent
Listener = Callable[[SessionEvent], None]


@record(frozen=True)
class Target:
    """Where to connect and how; `cafile` is trusted when the certificate is verified."""

    host: str
    port: int
    implicit_tls: bool | None = None
    connect_timeout: float = 10.0
    reply_timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    cafile: str | Path | None = None
    family: int = socket.AF_UNSPEC  # AF_INET for --ipv4, AF_INET6 for --ipv6
    source_address: str | None = None  # the local address to connect from

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"


class Session:
    """One connection's worth of SMTP, with a background reader feeding the dialogue."""

    def __init__(
        self, target: Target, listener: Listener, observer: WireObserver | None = None
    ) -> None:
        self.target = target
        self.dialogue = Dialogue()
        self.connection: Connection | None = None
        self._listener = listener
        self._observer = observer
        self._reader_task: asyncio.Task[None] | None = None
        self._sent_at: list[float] = []  # send times of lines awaiting replies, oldest first
        self._idle = asyncio.Event()
        self._idle.set()
        self._not_upgrading = asyncio.Event()  # clear while the STARTTLS handshake runs
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
        self._sent_at.append(time.monotonic())  # the greeting is "answer" to connecting
        self._idle.clear()
        self._arm_watchdog()
        self._reader_task = asyncio.create_task(self._read_loop())

    @property
    def is_open(self) -> bool:
        return (
            self.connection is not None
            and not self.connection.is_closed
            and self.dialogue.phase is not Phase.CLOSED
        )

    def check(self, line: str) -> list[Finding]:
        """The checker's warnings for `line` in the current state (nothing is sent)."""
        return check(line, self.dialogue)

    async def send(self, line: str) -> Sent | None:
        """Send one line as typed; in DATA mode it is dot-stuffed first. None if closed.

        A line typed while the STARTTLS handshake runs waits for it: written then, it would
        go out in clear text in the middle of the handshake.
        """
        await self._not_upgrading.wait()
        if not self.is_open:
            return None
        assert self.connection is not None
        wire_line = line
        if self.dialogue.sending_data and line != ".":
            wire_line = stuff_line(line)
        sent = self.dialogue.send(wire_line)
        if sent.verb != DATA_LINE:
            self._sent_at.append(time.monotonic())
            self._idle.clear()
            if self._watchdog is None:
                self._arm_watchdog()
        await self.connection.send_bytes(sent.wire)
        return sent

    async def send_chunk(self, chunk: bytes, last: bool) -> Sent | None:
        """CHUNKING (RFC 3030): `BDAT <size> [LAST]` and the chunk's bytes, as they are.

        BDAT has no dot-stuffing and no end marker: the size says where the chunk ends.
        """
        await self._not_upgrading.wait()
        if not self.is_open:
            return None
        assert self.connection is not None
        line = f"BDAT {len(chunk)}" + (" LAST" if last else "")
        sent = self.dialogue.send(line)
        self._sent_at.append(time.monotonic())
        self._idle.clear()
        if self._watchdog is None:
            self._arm_watchdog()
        await self.connection.send_bytes(line.encode("ascii") + b"\r\n" + chunk)
        return sent

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every line sent has its reply (or the session closed)."""
        if self._idle.is_set():  # wait_for(…, 0) would time out even on a set event
            return True
        try:
            async with asyncio.timeout(timeout):  # unlike wait_for, never eats a cancellation
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
            # asyncio.wait, not `await task` under suppress(CancelledError): that would also
            # swallow a cancellation of the caller, and a close that must not hang could.
            await asyncio.wait({task})
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
        if self.connection is not None:
            await self.connection.close()
        self.dialogue.connection_lost("closed by the client")
        self._sent_at.clear()
        self._idle.set()
        self._not_upgrading.set()

    # -- the background reader ---------------------------------------------------------

    async def _read_loop(self) -> None:
        assert self.connection is not None
        connection = self.connection
        try:
            while True:
                result = await connection.read_reply(_IDLE_READ)
                if isinstance(result, TimedOut):
                    continue
                if isinstance(result, Closed):
                    self.dialogue.connection_lost(_lost_reason(self.dialogue, result.reason))
                    await self._closed(connection, self.dialogue.close_reason or result.reason)
                    return
                outcome = self.dialogue.receive(result)
                started = None
                if outcome.answered is not None and self._sent_at:
                    started = self._sent_at.pop(0)
                latency = max(0.0, time.monotonic() - started) if started is not None else None
                if outcome.start_tls:
                    self._not_upgrading.clear()
                self._arm_watchdog()
                self._listener(ReplyEvent(outcome, latency))
                if outcome.start_tls:
                    await self._start_tls(connection)
                if self.dialogue.phase is Phase.CLOSED:
                    await self._closed(connection, self.dialogue.close_reason or "session closed")
                    return
                if not self._sent_at:
                    self._idle.set()
        finally:
            self._disarm_watchdog()
            self._not_upgrading.set()
            self._idle.set()

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
            self.dialogue.connection_lost(str(error))
            self._listener(TLSFailed(str(error)))
        else:
            self.dialogue.tls_established(info.version, info.cipher)
            self._listener(TLSEvent(info))
        finally:
            self._not_upgrading.set()

    # -- silence -----------------------------------------------------------------------

    def _arm_watchdog(self) -> None:
        """(Re)start the silence timer if a line waits for its reply; stop it otherwise."""
        self._disarm_watchdog()
        if self._sent_at:
            loop = asyncio.get_running_loop()
            self._watchdog = loop.call_later(self.target.reply_timeout, self._silence)

    def _disarm_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _silence(self) -> None:
        self._watchdog = None  # the next reply or command starts a new watch
        if self._sent_at and self.is_open:
            self._listener(SilenceEvent(self.target.reply_timeout))


def _lost_reason(dialogue: Dialogue, reason: str) -> str:
    """Why the connection ended, plus what it means for a message whose dot got no reply.

    Without the reply to the final dot nobody knows whether the server took the message:
    sending it again may deliver it twice (RFC 5321 §4.1.1.4, RFC 1047).
    """
    if any(sent.verb == END_OF_DATA for sent in dialogue.in_flight):
        return (
            f"{reason}; the final dot got no reply: the message may or may not have been accepted"
        )
    return reason
