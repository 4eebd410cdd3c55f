"""Running the sandbox: bind, serve, stop - in the caller's loop, a thread, or foreground.

`Sandbox` binds with `loop.create_server` and aiosmtpd's protocol class directly rather
than aiosmtpd's Controller, whose `port=0` (any free port) does not work; the real port is
read from the bound socket. `ThreadedSandbox` runs one in a private thread and loop, for
tests and for the console's built-in server; `serve_forever` is `smtp-tutor serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from smtp_tutor.sandbox.accounts import AccountMailboxes
from smtp_tutor.sandbox.activity import Report
from smtp_tutor.sandbox.certs import ensure_certificate, server_tls_context
from smtp_tutor.sandbox.config import DEMO_PASSWORD, DEMO_USER, SandboxConfig, sandbox_dir
from smtp_tutor.sandbox.handler import SandboxHandler
from smtp_tutor.sandbox.protocol import AUTH_MECHANISMS, SandboxSMTP
from smtp_tutor.sandbox.sessions import SessionLog
from smtp_tutor.sandbox.storage import Mailbox

if TYPE_CHECKING:
    from smtp_tutor.sandbox.pop3 import Pop3Server

STOP_TIMEOUT = 5.0
LISTEN_BACKLOG = 100  # asyncio's default


class Companion(Protocol):
    """A service started after the sandbox binds and stopped before it closes (the web view)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def summary(self) -> list[str]: ...


class Sandbox:
    """The sandbox SMTP server in the running event loop.

    `report`, if given, is told of every connection, failed TLS handshake and stored message
    (sandbox/activity.py); `smtp-tutor serve` prints them. With `record_sessions`, every
    session's dialogue is kept in `.sessions` (sandbox/sessions.py) for the web view.
    """

    def __init__(
        self, config: SandboxConfig, report: Report | None = None, *, record_sessions: bool = False
    ) -> None:
        config.validate()
        self.config = config
        self.report = report
        self.sessions: SessionLog | None = (
            SessionLog(passwords=lambda: config.users) if record_sessions else None
        )
        self.host: str = config.host
        self.port: int = config.port
        self.mailbox_path: Path = config.mailbox_dir()
        self.cert_path: Path = sandbox_dir() / "cert.pem"
        self._server: asyncio.Server | None = None
        self._handler: SandboxHandler | None = None
        self._pop3: Pop3Server | None = None
        #: Started once the sandbox listens, in its loop; stopped before it closes.
        self.companions: list[Companion] = []
        #: Private EHLO keywords (RFC 5321: X… for local use), e.g. the web view's address.
        self.ehlo_keywords: list[str] = []
        self.accounts = AccountMailboxes(self.mailbox_path, config.users)

    async def start(self) -> None:
        """Bind and start serving; afterwards `.host` and `.port` are the bound ones."""
        if self._server is not None:
            return
        self.cert_path, key_path = ensure_certificate(self.cert_path.parent)
        tls_context = server_tls_context(self.cert_path, key_path)
        accounts = self.accounts
        accounts.shared.create()
        handler = SandboxHandler(self.config, accounts, self.report)
        handler.ehlo_keywords = self.ehlo_keywords  # the same list: companions add to it
        loop = asyncio.get_running_loop()
        implicit = self.config.implicit_tls
        sessions = self.sessions

        def factory() -> SandboxSMTP:
            return SandboxSMTP(
                handler,
                tls_context=tls_context,
                implicit_tls=implicit,
                loop=loop,
                sessions=sessions,
            )

        self._server = await loop.create_server(
            factory,
            host=self.config.host,
            port=self.config.port,
            ssl=tls_context if implicit else None,
            # asyncio's default backlog of 100 drops the handshakes of a burst of more
            # clients, which then wait seconds for the kernel's retry: let every
            # connection the limit allows (and a few more to refuse with 421) queue.
            backlog=self.config.max_connections + LISTEN_BACKLOG,
        )
        self._handler = handler
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        if self.sessions is not None:
            self.sessions.server = (self.host, self.port)
        try:
            if self.config.pop3_port is not None:
                await self._start_pop3(tls_context)
            for companion in self.companions:
                await companion.start()
        except BaseException:
            await self.stop()
            raise

    async def _start_pop3(self, tls_context: ssl.SSLContext) -> None:
        from smtp_tutor.sandbox.pop3 import Pop3Server

        config = self.config
        assert config.pop3_port is not None
        pop3 = Pop3Server(
            config,
            self.accounts.of,
            tls_context,
            host=config.pop3_host or config.host,
            port=config.pop3_port,
            implicit_tls=config.pop3_implicit_tls,
            report=self.report,
        )
        await pop3.start()
        self._pop3 = pop3

    @property
    def pop3_port(self) -> int | None:
        """The bound POP3 port, or None when the sandbox serves no POP3."""
        return self._pop3.port if self._pop3 is not None else None

    @property
    def pop3_host(self) -> str | None:
        return self._pop3.host if self._pop3 is not None else None

    @property
    def pop3(self) -> Pop3Server | None:
        return self._pop3

    async def stop(self) -> None:
        """Stop listening, say 421 to connected clients, and wait until they are closed."""
        pop3, self._pop3 = self._pop3, None
        if pop3 is not None:
            await pop3.stop()
        server, handler = self._server, self._handler
        self._server = self._handler = None
        if server is None or handler is None:
            return
        for companion in reversed(self.companions):
            with contextlib.suppress(Exception):
                await companion.stop()
        server.close()
        for connection in list(handler.connections):
            connection.shutdown()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), STOP_TIMEOUT)
        handler.close(STOP_TIMEOUT)

    @property
    def running(self) -> bool:
        return self._server is not None

    def forget_greylist(self) -> None:
        """Forget every greylisted triple, so a restarted lesson sees the first refusal again."""
        if self._handler is not None:
            self._handler.greylist.forget()

    def mailbox(self) -> Mailbox:
        return Mailbox(self.mailbox_path)

    def summary(self) -> list[str]:
        """Where it listens and what a student needs to know, one line each."""
        tls = "implicit TLS (port-465 style)" if self.config.implicit_tls else "STARTTLS offered"
        lines = [
            f"smtp-tutor sandbox listening on {self.host}:{self.port} ({tls})",
            f"Mailbox (Maildir): {self.mailbox_path}",
            f"Self-signed certificate: {self.cert_path}",
        ]
        if self._pop3 is not None:
            pop3_tls = (
                "implicit TLS (port-995 style)" if self.config.pop3_implicit_tls else "STLS offered"
            )
            lines.insert(
                1,
                f"POP3 listening on {self._pop3.host}:{self._pop3.port} ({pop3_tls}); "
                f"each account reads its own mailbox",
            )
        if self.config.has_demo_account():
            mechanisms = ", ".join(AUTH_MECHANISMS)
            lines.append(f"Demo account: {DEMO_USER} / {DEMO_PASSWORD} (AUTH {mechanisms})")
        lines.append("Nothing is relayed: accepted mail is only stored in the Maildir.")
        for companion in self.companions:
            lines += companion.summary()
        return lines


class ThreadedSandbox:
    """A Sandbox in its own thread and event loop, driven from synchronous code."""

    def __init__(self, config: SandboxConfig, *, record_sessions: bool = False) -> None:
        self._sandbox = Sandbox(config, record_sessions=record_sessions)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._sandbox.host

    @property
    def port(self) -> int:
        return self._sandbox.port

    @property
    def mailbox_path(self) -> Path:
        return self._sandbox.mailbox_path

    @property
    def pop3_port(self) -> int | None:
        return self._sandbox.pop3_port

    @property
    def pop3_host(self) -> str | None:
        return self._sandbox.pop3_host

    @property
    def cert_path(self) -> Path:
        return self._sandbox.cert_path

    @property
    def sandbox(self) -> Sandbox:
        return self._sandbox

    def mailbox(self) -> Mailbox:
        return self._sandbox.mailbox()

    def start(self) -> None:
        """Start the thread; returns once bound, or raises what binding raised."""
        if self._thread is not None:
            return
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._sandbox.start())
            except BaseException as error:  # handed to the starting thread
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                _close_loop(loop, self._sandbox)

        thread = threading.Thread(target=run, name="smtp-tutor-sandbox", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise failure[0]
        self._loop, self._thread = loop, thread

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._sandbox.stop(), loop)
        with contextlib.suppress(Exception):
            future.result(STOP_TIMEOUT * 2)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT * 2)

    def __enter__(self) -> ThreadedSandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _close_loop(loop: asyncio.AbstractEventLoop, sandbox: Sandbox) -> None:
    """Finish what is left in a private loop (stop() normally did it already) and close it."""
    try:
        loop.run_until_complete(sandbox.stop())
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


async def serve_forever(
    config: SandboxConfig,
    announce: Callable[[str], None],
    report: Report | None = None,
    *,
    record_sessions: bool = False,
    setup: Callable[[Sandbox], None] | None = None,
) -> None:
    """`smtp-tutor serve`: run in the foreground until SIGINT or SIGTERM.

    `setup` sees the sandbox before it starts (to add companions such as the web view).
    """
    sandbox = Sandbox(config, report, record_sessions=record_sessions)
    if setup is not None:
        setup(sandbox)
    await sandbox.start()
    if sandbox.pop3_port is not None and not config.pop3_host:
        # The console's :pop3 finds the POP3 port here (on the host it speaks SMTP to).
        sandbox.ehlo_keywords.append(f"XSMTPTUTOR-POP3 {sandbox.pop3_port}")
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stopping.set)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not main thread
            continue
        installed.append(signum)
    try:
        for line in sandbox.summary():
            announce(line)
        announce("Press Ctrl+C to stop.")
        await stopping.wait()
        announce("Stopping the sandbox...")
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await sandbox.stop()
