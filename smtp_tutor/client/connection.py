"""The client's connection: bytes in and out over asyncio, with TLS switched on in place.

A thin layer over the sans-I/O core. It owns the socket and nothing else: it sends lines
exactly as given plus CRLF, feeds what arrives to the reply parser, and reports every byte
both ways to an observer (transcripts, the raw view). A server that hangs up or stays silent
is an *event* returned to the caller, never an exception; only opening the connection or the
TLS handshake can fail, and then with `ConnectionFailed` carrying one plain line.
"""

from __future__ import annotations

import errno
import socket
import sys
import time
from collections import deque
from collections.abc import Callable

from smtp_tutor.core.command_line import wire_bytes
from smtp_tutor.core.patterns import LazyPattern
from smtp_tutor.core.records import record
from smtp_tutor.core.replies import Reply, ReplyParser

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    import asyncio
    import ssl
    from pathlib import Path
    from typing import Literal

    from smtp_tutor.client.tls import TLSInfo


IMPLICIT_TLS_PORT = 465
READ_SIZE = 65536

_ERRNO = LazyPattern(r"\[Errno (\d+)\]")


class ConnectionFailed(Exception):
    """Opening the connection or the TLS handshake failed; str() is one line for the user."""

    def __init__(self, message: str) -> None:
        # Messages quote OS and OpenSSL text; whatever they contain, the user gets one line.
        super().__init__(" ".join(message.split()))


@record(frozen=True)
class WireEvent:
    """Bytes that crossed the wire, for transcripts and the raw view."""

    direction: Literal["sent", "received"]
    data: bytes
    time: float  # time.monotonic()
    tls: bool


@record(frozen=True)
class Closed:
    """The server closed the connection (or it broke); no more replies will come."""

    reason: str


@record(frozen=True)
class TimedOut:
    """No complete reply within the timeout; the connection is still open."""

    seconds: float


WireObserver = Callable[[WireEvent], None]


def wants_implicit_tls(port: int, implicit_tls: bool | None) -> bool:
    """Port 465 speaks TLS from the first byte (RFC 8314); an explicit choice wins."""
    return port == IMPLICIT_TLS_PORT if implicit_tls is None else implicit_tls


class Connection:
    """One TCP connection to an SMTP server, optionally upgraded to TLS."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port: int,
        reply_timeout: float,
        observer: WireObserver | None = None,
        cafile: str | Path | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.reply_timeout = reply_timeout
        self.cafile = cafile
        self.tls: TLSInfo | None = None
        self.closed_reason: str | None = None
        #: Clear-text bytes received after the 220 to STARTTLS and thrown away.
        self.discarded: bytes = b""
        self._reader, self._writer = reader, writer
        self._observer = observer
        self._parser = ReplyParser()
        self._ready: deque[Reply] = deque()
        self._eof = False
        self._handshake_failed = False
        self._closing: asyncio.Future[None] | None = None

    # -- opening -----------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        implicit_tls: bool | None = None,
        connect_timeout: float = 10.0,
        reply_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        observer: WireObserver | None = None,
        cafile: str | Path | None = None,
        family: int = socket.AF_UNSPEC,
        source_address: str | None = None,
    ) -> Connection:
        """Connect; port 465 implies TLS from the first byte unless told otherwise.

        TCP and TLS are set up one after the other so that a failure names the step that
        failed; `connect_timeout` bounds each. `cafile` only feeds the verification report.
        `family` (AF_INET/AF_INET6) picks IPv4 or IPv6; `source_address` the local address.
        """
        import asyncio  # here, not on import: replay's blocking link uses this module

        address = host.strip("[]")  # "[192.0.2.1]" is how SMTP writes an address literal
        local = (source_address.strip("[]"), 0) if source_address else None
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_connection(
                    address, port, limit=READ_SIZE, family=family, local_addr=local
                )
        except (OSError, UnicodeError, ValueError) as error:
            raise connect_failure(error, host, port, connect_timeout) from None
        connection = cls(reader, writer, host, port, reply_timeout, observer, cafile)
        if wants_implicit_tls(port, implicit_tls):
            try:
                await connection._handshake(
                    ssl_context, server_hostname, connect_timeout, implicit=True
                )
            except ConnectionFailed:
                await connection.close()
                raise
        return connection

    # -- sending -----------------------------------------------------------------------

    async def send_line(self, line: str) -> None:
        """Send `line` exactly as given, plus CRLF."""
        await self.send_bytes(wire_bytes(line))

    async def send_bytes(self, data: bytes) -> None:
        """Send bytes as they are; on a closed connection this does nothing."""
        if self.closed_reason is not None:
            return
        self._notify("sent", data)
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as error:
            self._mark_closed(f"the connection broke while sending: {error}")

    # -- receiving ---------------------------------------------------------------------

    async def read_reply(self, timeout: float | None = None) -> Reply | Closed | TimedOut:
        """The next complete reply, or why there is none (`timeout` defaults to the reply one)."""
        import asyncio

        limit = self.reply_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not self._ready:
            if self._eof:
                return Closed(self.closed_reason or "the server closed the connection")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return TimedOut(limit)
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
                # cancellation that races with arriving data, and a server that never stops
                # sending would then keep the reader (and Session.close) alive for ever.
                async with asyncio.timeout(remaining):
                    data = await self._reader.read(READ_SIZE)
            except TimeoutError:
                return TimedOut(limit)
            except OSError as error:  # ssl.SSLError included
                data = b""
                self._mark_closed(f"the connection broke: {error}")
            if data:
                self._notify("received", data)
                self._ready.extend(self._parser.feed(data))
            else:
                self._ready.extend(self._parser.feed_eof())
                self._mark_closed("the server closed the connection")
        return self._ready.popleft()

    async def read_data(self, timeout: float | None = None) -> bytes | Closed | TimedOut:
        """The next bytes as they arrive, unparsed: for POP3, whose dialogue knows where a
        response ends (the SMTP reply parser is not used, so `starttls` finds nothing in it)."""
        if self._eof:
            return Closed(self.closed_reason or "the server closed the connection")
        import asyncio

        limit = self.reply_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                data = await self._reader.read(READ_SIZE)
        except TimeoutError:
            return TimedOut(limit)
        except OSError as error:  # ssl.SSLError included
            self._mark_closed(f"the connection broke: {error}")
            return Closed(self.closed_reason or "the connection broke")
        if not data:
            self._mark_closed("the server closed the connection")
            return Closed(self.closed_reason or "the server closed the connection")
        self._notify("received", data)
        return data

    @property
    def pending_input(self) -> bool:
        """Bytes already received (a reply or part of one) that no `read_reply` returned yet."""
        return bool(self._ready) or self._parser.has_partial or bool(_buffered(self._reader))

    # -- TLS ---------------------------------------------------------------------------

    async def starttls(
        self,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float = 30.0,
    ) -> TLSInfo:
        """Switch this connection to TLS in place, after the server's 220 to STARTTLS.

        Bytes that arrived after the 220 but before the handshake are thrown away (kept in
        `discarded` and counted in the TLSInfo): they came in clear text and could have been
        injected by anyone on the path (CVE-2011-0411).
        """
        if self._eof:
            raise ConnectionFailed("cannot start TLS: the connection is closed")
        if self.tls is not None:
            raise ConnectionFailed("cannot start TLS: TLS is already active on this connection")
        return await self._handshake(ssl_context, server_hostname, timeout)

    # -- closing -----------------------------------------------------------------------

    async def close(self) -> None:
        """Close without waiting on a server that may never answer."""
        import asyncio

        self._mark_closed("closed by the client")
        try:
            self._writer.close()
            if self._handshake_failed:
                return  # after a failed handshake the stream never learns the socket closed
            if self._closing is None:
                self._closing = asyncio.ensure_future(self._writer.wait_closed())
                self._closing.add_done_callback(_retrieve)
            # Shielded: a cancelled caller (Session.close cancels a reader that may be in
            # here) must not cancel the stream's one close waiter, or every later close
            # would raise CancelledError.
            async with asyncio.timeout(2):
                await asyncio.shield(self._closing)
        except (TimeoutError, OSError):
            pass

    @property
    def local_port(self) -> int | None:
        """The port this end of the connection has (the server sees the client by it)."""
        name = self._writer.get_extra_info("sockname")
        return int(name[1]) if isinstance(name, tuple) and len(name) >= 2 else None

    @property
    def is_closed(self) -> bool:
        return self._eof

    # -- internals ---------------------------------------------------------------------

    async def _handshake(
        self,
        context: ssl.SSLContext | None,
        server_hostname: str | None,
        timeout: float,
        *,
        implicit: bool = False,
    ) -> TLSInfo:
        import asyncio

        sni = server_hostname or self.host.strip("[]")
        where = f"{self.host}:{self.port}"
        try:
            # asyncio.timeout, not wait_for: no new task, so there is no await between taking
            # the clear-text leftovers and start_tls switching the transport over to TLS.
            async with asyncio.timeout(timeout):
                self.discarded = self._take_cleartext()
                if implicit and self.discarded:
                    # A TLS server waits for the ClientHello; this one spoke first.
                    self._mark_closed("the server does not speak TLS on this port")
                    raise ConnectionFailed(
                        f"TLS handshake with {where} failed: the server sent plain text "
                        f"({_preview(self.discarded)}) — does it expect STARTTLS instead?"
                    )
                if context is None:
                    from smtp_tutor.client.tls import client_context

                    context = client_context()
                await self._writer.start_tls(context, server_hostname=sni)
        except TimeoutError:
            self._handshake_failed = True
            self._mark_closed("the TLS handshake timed out")
            raise ConnectionFailed(
                f"TLS handshake with {where} got no answer within {timeout:g} s"
            ) from None
        except OSError as error:  # ssl.SSLError, a reset, an EOF in the middle
            self._handshake_failed = True
            self._mark_closed("the TLS handshake failed")
            reason = _ssl_reason(error)
            if implicit and "wrong version number" in reason:
                reason += " — the server does not speak TLS here; does it expect STARTTLS?"
            raise ConnectionFailed(f"TLS handshake with {where} failed: {reason}") from None
        info = self._describe_tls(sni)
        if self.discarded:
            from smtp_tutor.core.records import replace  # the TLS report is a record (tls.py)

            info = replace(info, discarded_cleartext=len(self.discarded))
        self.tls = info
        return info

    def _take_cleartext(self) -> bytes:
        """Everything received but not yet returned, removed; the observer sees all of it."""
        leftovers = [*self._ready, *self._parser.feed_eof()]
        self._ready.clear()
        self._parser = ReplyParser()
        buffered = _buffered(self._reader)
        if buffered:
            self._notify("received", bytes(buffered))
        data = b"".join(reply.raw for reply in leftovers) + bytes(buffered)
        buffered.clear()
        return data

    def _mark_closed(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._eof = True

    def _notify(self, direction: Literal["sent", "received"], data: bytes) -> None:
        if self._observer is not None:
            self._observer(WireEvent(direction, data, time.monotonic(), self.tls is not None))

    def _describe_tls(self, sni: str | None) -> TLSInfo:
        ssl_object = self._writer.get_extra_info("ssl_object")
        if ssl_object is None:  # pragma: no cover - only after a successful handshake
            raise ConnectionFailed("TLS is not active on this connection")
        from smtp_tutor.client.tls import describe

        return describe(ssl_object, sni or self.host, self.cafile)


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a close error as seen: nobody may be left waiting for it (no log noise)."""
    if not future.cancelled():
        future.exception()


def _buffered(reader: asyncio.StreamReader) -> bytearray:
    """The bytes a StreamReader holds that nobody has read yet.

    asyncio has no public way to look at (or drop) them without waiting, and the STARTTLS
    upgrade must drop them; `_buffer` has been StreamReader's buffer since Python 3.4.
    """
    buffer = getattr(reader, "_buffer", None)
    if not isinstance(buffer, bytearray):  # pragma: no cover - a future asyncio
        raise RuntimeError("asyncio.StreamReader no longer exposes its buffer")
    return buffer


def _preview(data: bytes) -> str:
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    text = first[:60].decode("utf-8", errors="replace")
    return repr(text + ("…" if len(first) > 60 else ""))


def connect_failure(error: BaseException, host: str, port: int, timeout: float) -> ConnectionFailed:
    """Why a TCP connection could not be opened, in one line (shared with replay)."""
    where = f"{host}:{port}"
    if isinstance(error, TimeoutError):
        return ConnectionFailed(f"no answer from {where} within {timeout:g} s")
    if isinstance(error, socket.gaierror):
        return ConnectionFailed(f"cannot resolve host {host!r}: {error.strerror}")
    if isinstance(error, UnicodeError | ValueError):
        return ConnectionFailed(f"{host!r} is not a valid host name")
    if isinstance(error, OSError) and _refused(error):
        return ConnectionFailed(f"connection to {where} refused — is a server listening?")
    reason = getattr(error, "strerror", None) or error
    return ConnectionFailed(f"cannot connect to {where}: {reason}")


def _refused(error: OSError) -> bool:
    """Refused on every address tried (asyncio folds several failures into one message)."""
    if isinstance(error, ConnectionRefusedError):
        return True
    codes = _ERRNO.findall(str(error))
    return bool(codes) and all(int(code) == errno.ECONNREFUSED for code in codes)


def _ssl_reason(error: BaseException) -> str:
    ssl = sys.modules.get("ssl")  # a certificate error comes from it, if it is loaded
    if ssl is not None and isinstance(error, ssl.SSLCertVerificationError):
        return error.verify_message or str(error)
    reason = getattr(error, "reason", None)
    if reason:
        return str(reason).replace("_", " ").lower()
    if isinstance(error, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "the server closed the connection"
    return str(error) or type(error).__name__
