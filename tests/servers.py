"""Servers and certificates for client tests: everything on 127.0.0.1, port 0, in-process.

* `ScriptServer` plays a misbehaving SMTP server: each connection runs a script of actions
  (send bytes, send them one at a time, expect a line, read raw bytes, wait for the test,
  switch to TLS, close, reset, hang) so a test can produce exactly the byte sequence a bug
  needs — injection after 220, a close in the middle of a multiline reply, silence.
* `SMTPServer` is a bare aiosmtpd server with STARTTLS and AUTH that keeps every envelope.
* `certificates()` makes (once per test run) a self-signed certificate, an expired one, one
  for another host, and a small CA with a leaf and an intermediate, using `cryptography`.
* `run()` runs a coroutine with a hard timeout: pytest-asyncio is not installed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime as dt
import functools
import ipaddress
import shutil
import socket
import ssl
import struct
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as ServerSession
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

T = TypeVar("T")
HOST = "127.0.0.1"


def run(coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
    """Run one test's coroutine in a fresh event loop; a hang fails instead of blocking."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def unused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# -- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """A certificate with its key, on disk for ssl contexts."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path
    chain_path: Path  # leaf then any intermediates: what a server sends

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.chain_path), str(self.key_path))
        return context


@dataclass(frozen=True)
class Certificates:
    self_signed: Issued  # localhost, 127.0.0.1; no authority key id, like the sandbox's
    expired: Issued  # signed by `ca`, expired yesterday
    wrong_host: Issued  # signed by `ca`, for mail.example.org only
    ca: Issued  # a root
    ca_leaf: Issued  # signed by `ca`, for localhost and 127.0.0.1
    intermediate: Issued  # signed by `ca`, may sign
    chained_leaf: Issued  # signed by `intermediate`; its chain file holds both
    hostile_subject: Issued  # signed by `ca`; its CN holds backspaces, a bell, an escape


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    directory: Path,
    label: str,
    common_name: str,
    *,
    names: Sequence[str] = (),
    issuer: Issued | None = None,
    is_ca: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    sign_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(days=1))
        .not_valid_after(not_after or now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if names:
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    if is_ca:
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        builder = builder.add_extension(usage, critical=True)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        builder = builder.add_extension(aki, critical=False)
    cert = builder.sign(sign_key, hashes.SHA256())

    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = directory / f"{label}.pem", directory / f"{label}.key"
    chain_path = directory / f"{label}.chain.pem"
    cert_path.write_bytes(cert_pem)
    chain_extra = b""
    if issuer is not None and issuer.cert.subject != issuer.cert.issuer:
        chain_extra = issuer.cert.public_bytes(serialization.Encoding.PEM)
    chain_path.write_bytes(cert_pem + chain_extra)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Issued(cert, key, cert_path, key_path, chain_path)


@functools.cache
def certificates() -> Certificates:
    """All test certificates, made once per run in a directory removed at exit."""
    directory = Path(tempfile.mkdtemp(prefix="smtp-tutor-certs-"))
    atexit.register(shutil.rmtree, directory, True)
    now = dt.datetime.now(dt.UTC)
    loopback = ("localhost", "127.0.0.1")
    ca = _issue(directory, "ca", "smtp-tutor test CA", is_ca=True)
    intermediate = _issue(directory, "intermediate", "test intermediate", issuer=ca, is_ca=True)
    return Certificates(
        self_signed=_issue(directory, "self-signed", "localhost", names=loopback),
        expired=_issue(
            directory,
            "expired",
            "localhost",
            names=loopback,
            issuer=ca,
            not_before=now - dt.timedelta(days=60),
            not_after=now - dt.timedelta(days=1),
        ),
        wrong_host=_issue(
            directory, "wrong-host", "mail.example.org", names=("mail.example.org",), issuer=ca
        ),
        ca=ca,
        ca_leaf=_issue(directory, "ca-leaf", "localhost", names=loopback, issuer=ca),
        intermediate=intermediate,
        chained_leaf=_issue(
            directory, "chained-leaf", "localhost", names=loopback, issuer=intermediate
        ),
        hostile_subject=_issue(
            directory, "hostile", "real\b\b\b\bfake\a\x1b[2J", names=loopback, issuer=ca
        ),
    )


# -- the scripted server ------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    data: bytes


@dataclass(frozen=True)
class SendSlowly:
    """Send `data` one byte at a time, `per_byte_delay` seconds apart: a trickling server."""

    data: bytes
    per_byte_delay: float


@dataclass(frozen=True)
class SendForever:
    """Send `chunk` again and again until the client goes away: a server that never stops."""

    chunk: bytes


@dataclass(frozen=True)
class Expect:
    """Read one line; it must start with `prefix` (mismatches are kept in `errors`)."""

    prefix: bytes


@dataclass(frozen=True)
class ExpectUntil:
    """Read lines until one is exactly `line` (say b".\\r\\n" after DATA); all are recorded."""

    line: bytes


@dataclass(frozen=True)
class ReadBytes:
    """Read whatever arrives next as raw bytes (a ClientHello, say), without waiting for a line."""


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class WaitFor:
    """Block until the test sets this event: orders the server after a client step."""

    event: asyncio.Event


@dataclass(frozen=True)
class StartTLS:
    """Switch to TLS, after `delay` seconds during which the ClientHello stays unread.

    Reading is paused first (the previous action's write did not yield, so the client cannot
    have answered yet): bytes read into the StreamReader would never reach the TLS layer.
    """

    context: ssl.SSLContext
    delay: float = 0.0


@dataclass(frozen=True)
class Close:
    pass


@dataclass(frozen=True)
class Reset:
    """Drop the connection with a TCP RST (SO_LINGER 0) instead of an orderly close."""


@dataclass(frozen=True)
class Hang:
    """Say nothing more; read (and record) until the client hangs up."""


Action = (
    Send
    | SendSlowly
    | SendForever
    | Expect
    | ExpectUntil
    | ReadBytes
    | Wait
    | WaitFor
    | StartTLS
    | Close
    | Reset
    | Hang
)


@dataclass
class Received:
    line: bytes
    tls: bool


@dataclass
class ScriptServer:
    """An asyncio server whose every connection runs `script`; `ssl` makes it implicit TLS."""

    script: Sequence[Action]
    ssl: ssl.SSLContext | None = None
    received: list[Received] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connections: int = 0
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def lines(self) -> list[bytes]:
        return [item.line for item in self.received]

    async def __aenter__(self) -> ScriptServer:
        self._server = await asyncio.start_server(self._handle, HOST, 0, ssl=self.ssl)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
        # A handler still in a Wait or a TLS delay must not outlive the test's event loop.
        running = [task for task in self._tasks if not task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # Cancelled by __aexit__: end normally, or asyncio's stream callback logs an error.
            self.errors.append("cancelled")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        tls = self.ssl is not None
        try:
            for action in self.script:
                if isinstance(action, Send):
                    writer.write(action.data)
                    await writer.drain()
                elif isinstance(action, SendSlowly):
                    for index in range(len(action.data)):
                        writer.write(action.data[index : index + 1])
                        await writer.drain()
                        await asyncio.sleep(action.per_byte_delay)
                elif isinstance(action, SendForever):
                    while not writer.is_closing():
                        writer.write(action.chunk)
                        await writer.drain()
                elif isinstance(action, Expect):
                    line = await reader.readline()
                    self.received.append(Received(line, tls))
                    if not line.startswith(action.prefix):
                        self.errors.append(f"expected {action.prefix!r}, got {line!r}")
                elif isinstance(action, ExpectUntil):
                    while line := await reader.readline():
                        self.received.append(Received(line, tls))
                        if line == action.line:
                            break
                    else:
                        self.errors.append(f"expected {action.line!r}, got end of stream")
                elif isinstance(action, ReadBytes):
                    self.received.append(Received(await reader.read(65536), tls))
                elif isinstance(action, Wait):
                    await asyncio.sleep(action.seconds)
                elif isinstance(action, WaitFor):
                    await action.event.wait()
                elif isinstance(action, StartTLS):
                    if action.delay:
                        writer.transport.pause_reading()
                        await asyncio.sleep(action.delay)
                    await writer.start_tls(action.context)
                    tls = True
                elif isinstance(action, Close):
                    break
                elif isinstance(action, Reset):
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    break
                elif isinstance(action, Hang):
                    while line := await reader.readline():
                        self.received.append(Received(line, tls))
        except (OSError, asyncio.IncompleteReadError) as error:
            self.errors.append(f"{type(error).__name__}: {error}")
        finally:
            self.finished.set()
            writer.close()
            # Bounded: a TLS stream whose client left without close_notify waits 30 s.
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(0.5):
                    await writer.wait_closed()


# -- a real SMTP server -------------------------------------------------------------------


class RecordingHandler:
    """aiosmtpd handler that keeps every accepted message."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(  # aiosmtpd's hook name
        self, server: SMTP, session: ServerSession, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        return "250 2.0.0 OK: queued as TEST"


def password_authenticator(
    users: dict[str, str],
) -> Callable[[SMTP, ServerSession, Envelope, str, Any], AuthResult]:
    def authenticate(
        server: SMTP, session: ServerSession, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if users.get(user) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return authenticate


class SMTPServer:
    """A bare aiosmtpd server with STARTTLS and AUTH (PLAIN, LOGIN) on 127.0.0.1:0.

    `Controller(port=0)` is broken in aiosmtpd 1.4.6, hence `create_server` directly.
    """

    def __init__(self, tls: Issued | None = None, users: dict[str, str] | None = None) -> None:
        self.handler = RecordingHandler()
        self._tls = tls or certificates().self_signed
        self._users = users if users is not None else {"student": "secret"}
        self._server: asyncio.Server | None = None
        self._protocols: list[SMTP] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def _protocol(self) -> SMTP:
        protocol = SMTP(
            self.handler,
            hostname="localhost",
            tls_context=self._tls.server_context(),
            require_starttls=False,
            auth_require_tls=False,
            authenticator=password_authenticator(self._users),
            timeout=10,
        )
        self._protocols.append(protocol)
        return protocol

    async def __aenter__(self) -> SMTPServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, HOST, 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for protocol in self._protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        await self._server.wait_closed()
