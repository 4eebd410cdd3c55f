"""Pop3Server: binds the sandbox's POP3 port and owns what its sessions share.

The `Sandbox` (sandbox/server.py) starts one beside the SMTP server when the config asks
for it (`SandboxConfig.pop3_port`), in the same event loop, with the same certificate,
account table, idle timeout and connection limit; `mailbox_of(name)` says where an
account's mail is.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable

from smtp_tutor.core.records import record
from smtp_tutor.sandbox.activity import Report
from smtp_tutor.sandbox.config import SandboxConfig
from smtp_tutor.sandbox.pop3.session import Pop3Session
from smtp_tutor.sandbox.storage import Mailbox

STOP_TIMEOUT = 5.0
LISTEN_BACKLOG = 100


class Pop3BindError(OSError):
    """The POP3 address could not be bound; says which, since the SMTP one was."""

    def __init__(self, error: OSError, host: str, port: int) -> None:
        super().__init__(error.errno, error.strerror)
        self.host, self.port = host, port


@record(frozen=True)
class Pop3Limits:
    """Limits of one POP3 session that are not in `SandboxConfig` (tests may lower them)."""

    command_line: int = 255  # octets with CRLF (RFC 2449 §4): longer gets -ERR, session goes on
    sasl_line: int = 8192  # an AUTH answer may be longer than a command (RFC 5034 §4)
    hard_line: int = 64 * 1024  # this much without a line end closes the connection
    read_buffer: int = 256 * 1024  # pipelined input held before reading pauses
    bad_login_delay: float = 0.5  # seconds before a failed login's -ERR (Dovecot: ~0.5 s)
    bad_login_limit: int = 3  # the third failure closes the connection
    tls_handshake: float = 30.0


class Pop3Server:
    """The POP3 listener; `start` binds (port 0 = a free one), `stop` closes every session."""

    def __init__(
        self,
        config: SandboxConfig,
        mailbox_of: Callable[[str], Mailbox],
        tls_context: ssl.SSLContext,
        *,
        host: str,
        port: int,
        implicit_tls: bool = False,
        report: Report | None = None,
        limits: Pop3Limits | None = None,
    ) -> None:
        self.config = config
        self.mailbox_of = mailbox_of
        self.tls_context = tls_context
        self.host = host
        self.port = port
        self.implicit_tls = implicit_tls
        self.limits = limits or Pop3Limits()
        self.connections: set[Pop3Session] = set()
        self._report = report
        self._server: asyncio.Server | None = None

    def report(self, event: str, **fields: str) -> None:
        """Tell `serve` about a client (events in data/serve.toml); fields must be safe."""
        if self._report is not None:
            self._report(event, fields)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: Pop3Session(self),
                host=self.host,
                port=self.port,
                ssl=self.tls_context if self.implicit_tls else None,
                backlog=self.config.max_connections + LISTEN_BACKLOG,
            )
        except OSError as error:
            raise Pop3BindError(error, self.host, self.port) from error
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        sessions = list(self.connections)
        for session in sessions:
            session.shutdown()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(s.wait_closed() for s in sessions), server.wait_closed()),
                STOP_TIMEOUT,
            )
