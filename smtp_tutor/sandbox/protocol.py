"""The sandbox's SMTP dialogue: aiosmtpd's state machine, made consistent for teaching.

aiosmtpd provides the RFC 5321 state machine, DATA un-stuffing, AUTH PLAIN/LOGIN and
STARTTLS. This subclass adds what a teaching server must get right and aiosmtpd does not:
an enhanced status code on every reply (replies.py), an EHLO list that names exactly what
is implemented, a useful HELP, CRAM-MD5, CHUNKING (BDAT, RFC 3030), a 421 before hanging
up on an idle or surplus connection, the `require_tls` / `require_auth` policies, and
patience with students who mistype commands. What to answer to an address, and storing
mail, is the handler's job (handler.py).

It overrides a few of aiosmtpd's underscore methods (`_handle_client`, `_timeout_cb`);
they are stable across 1.4.x, and the tests exercise each of them.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import logging
import re
import secrets
import ssl
import time
from typing import Any, AnyStr, NoReturn

import aiosmtpd.smtp as aiosmtpd_smtp
from aiosmtpd.smtp import (
    MISSING,
    SMTP,
    AuthResult,
    Envelope,
    TLSSetupException,
    auth_mechanism,
    syntax,
)

from smtp_tutor.core.records import field, record
from smtp_tutor.sandbox import activity
from smtp_tutor.sandbox.config import DEMO_PASSWORD, DEMO_USER
from smtp_tutor.sandbox.handler import AuthIdentity, SandboxHandler
from smtp_tutor.sandbox.replies import sandbox_reply
from smtp_tutor.sandbox.sessions import SessionLog, SessionRecorder, client_of

# aiosmtpd hangs up after BOGUS_LIMIT unrecognised commands (5). It reads this module
# global for every new connection and has no per-server setting; students typing by hand
# deserve more patience. Only the sandbox runs aiosmtpd inside smtp-tutor.
UNRECOGNISED_COMMAND_LIMIT = 50
aiosmtpd_smtp.BOGUS_LIMIT = UNRECOGNISED_COMMAND_LIMIT

# aiosmtpd logs through "mail.log", with warnings (such as its own deprecation notice on
# every successful AUTH) that would land in the user's terminal via logging's last-resort
# handler. A NullHandler keeps them out unless the application configures logging.
logging.getLogger("mail.log").addHandler(logging.NullHandler())

# A path in its everyday shape - <dot-atom@host.name>, then nothing, or parameters after
# one space - for which the email package's RFC 5322 parser gives exactly this address and
# this rest (tests/test_sandbox.py checks it against aiosmtpd on generated paths).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(
    rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(?: (?=[^\s(])|(?=[^\s(])|\Z)"
)

_BDAT_ARGS = re.compile(r"([0-9]{1,15})(?:[ \t]+(LAST))?", re.IGNORECASE)
CHUNK_READ = 64 * 1024  # a chunk is read in pieces of at most this much

IDENT = "smtp-tutor sandbox ESMTP ready"
AUTH_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")
ESMTP_COMMAND_LIMIT = 1000  # MAIL/RCPT with parameters, AUTH with an initial response

COMMAND_HELP = {
    "HELO": "HELO <your-client-name>  (old greeting; prefer EHLO)",
    "EHLO": "EHLO <your-client-name>  (greeting; lists the extensions)",
    "STARTTLS": "STARTTLS  (then the TLS handshake; send EHLO again afterwards)",
    "AUTH": "AUTH PLAIN|LOGIN|CRAM-MD5 [initial-response]  (base64, after EHLO)",
    "MAIL": "MAIL FROM:<address> [SIZE=<bytes>] [BODY=7BIT|8BITMIME] [SMTPUTF8]",
    "RCPT": "RCPT TO:<address>  (once per recipient)",
    "DATA": "DATA  (then the message; end it with a line holding only '.')",
    "BDAT": "BDAT <size> [LAST]  (then exactly <size> bytes of the message; no dot-stuffing)",
    "RSET": "RSET  (abandon the current mail transaction)",
    "NOOP": "NOOP  (does nothing; the server answers 250)",
    "VRFY": "VRFY <address>  (always 252 here)",
    "HELP": "HELP [command]",
    "QUIT": "QUIT  (end the session)",
}


class SandboxSMTP(SMTP):
    """One client connection of the sandbox."""

    AuthLoginUsernameChallenge = "Username:"  # the usual LOGIN prompts (aiosmtpd: "User Name")
    AuthLoginPasswordChallenge = "Password:"

    def __init__(
        self,
        handler: SandboxHandler,
        *,
        tls_context: ssl.SSLContext | None,
        implicit_tls: bool,
        loop: asyncio.AbstractEventLoop,
        sessions: SessionLog | None = None,
    ) -> None:
        config = handler.config
        self.sandbox = handler
        self._sessions = sessions
        #: This connection's dialogue, when the sandbox records sessions (the web view).
        self.recording: SessionRecorder | None = None
        self._implicit_tls = implicit_tls
        self._over_limit = False
        self._registered = False
        self._last_received = 0.0  # loop time of the last bytes from the client
        self._chunks: _Chunks | None = None  # the message arriving in BDAT chunks, if any
        super().__init__(
            handler,
            data_size_limit=config.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=config.hostname,
            ident=IDENT,
            tls_context=None if implicit_tls else tls_context,
            timeout=config.idle_timeout,
            auth_require_tls=False,  # checked below, with the sandbox's own policy
            authenticator=handler.authenticate,
            loop=loop,
        )
        # Per instance: aiosmtpd keeps (and clears, and grows on each EHLO) a class-wide dict.
        self.command_size_limits = collections.defaultdict(
            lambda: SMTP.command_size_limit,
            {"MAIL": ESMTP_COMMAND_LIMIT, "RCPT": ESMTP_COMMAND_LIMIT, "AUTH": ESMTP_COMMAND_LIMIT},
        )
        self._greeting = f"220 {self.hostname} {IDENT}"

    # Facts about the connection -----------------------------------------------------------

    def tls_active(self) -> bool:
        return self._implicit_tls or self._tls_protocol is not None

    def tls_info(self) -> dict[str, Any] | None:
        """TLS mode, version and cipher for the envelope record; None in plain text."""
        if not self.tls_active() or self.transport is None:
            return None
        ssl_object = self.transport.get_extra_info("ssl_object")
        cipher = ssl_object.cipher() if ssl_object is not None else None
        return {
            "mode": "implicit" if self._implicit_tls else "starttls",
            "version": ssl_object.version() if ssl_object is not None else None,
            "cipher": cipher[0] if cipher else None,
        }

    # Connection life: limit, idle timeout, shutdown ----------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # STARTTLS calls this a second time
        super().connection_made(transport)
        if first:
            connections = self.sandbox.connections
            self._over_limit = len(connections) >= self.sandbox.config.max_connections
            if not self._over_limit:
                connections.add(self)
                self._registered = True
                if self._sessions is not None:
                    assert self.session is not None
                    self.recording = SessionRecorder(
                        self._sessions, client_of(self.session.peer), self._implicit_tls
                    )
                    if self._implicit_tls:
                        self.recording.tls_started(self.tls_info())
            if self.sandbox.reporting:
                assert self.session is not None
                peer = activity.peer_label(self.session.peer)
                if self._over_limit:
                    limit = str(self.sandbox.config.max_connections)
                    self.sandbox.report("refused_busy", peer=peer, limit=limit)
                else:
                    self.sandbox.report("connected", peer=peer)

    def connection_lost(self, error: Exception | None) -> None:
        if self._registered:
            self.sandbox.connections.discard(self)
            self._registered = False
        super().connection_lost(error)
        self._forget_closing_error()
        if self.recording is not None:
            self.recording.closed()

    def _forget_closing_error(self) -> None:
        """A client that hangs up hard (a reset) is no error to report.

        asyncio keeps the reset in a future nobody awaits; aiosmtpd marks it seen only
        when the connection object is garbage-collected, which may come after the future
        itself - then "Future exception was never retrieved" and a traceback reach the
        terminal of `smtp-tutor serve`.
        """
        closed = getattr(self, "_closed", None)
        if isinstance(closed, asyncio.Future) and closed.done() and not closed.cancelled():
            closed.exception()

    def data_received(self, data: bytes) -> None:
        # Idle means the client sent nothing: a student typing a long DATA by hand is busy.
        # Only noted here (a new timer per packet costs too much under load); the timer
        # aiosmtpd sets at each command looks at it when it fires.
        self._last_received = self.loop.time()
        recording = self.recording
        if recording is not None:
            if recording.record.tls is None and self._tls_protocol is not None:
                recording.tls_started(self.tls_info())
            recording.received(data)
        super().data_received(data)

    async def _handle_client(self) -> None:
        if self._over_limit:
            await self.push(f"421 4.7.0 {self.hostname} Too many connections, try again later")
            self._close()
            return
        await super()._handle_client()

    def _timeout_cb(self) -> None:
        quiet_until = self._last_received + self._timeout_duration
        if quiet_until > self.loop.time():  # the client sent something since the timer began
            self._timeout_handle = self.loop.call_at(quiet_until, self._timeout_cb)
            return
        # aiosmtpd closes silently; RFC 5321 section 4.2.1 lets a server say 421 first.
        self._say_and_close(f"421 4.4.2 {self.hostname} Idle timeout, closing connection")

    def shutdown(self) -> None:
        """Tell the client the sandbox is stopping, then close."""
        self._say_and_close(f"421 4.3.2 {self.hostname} Sandbox shutting down")

    def _say_and_close(self, line: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(line.encode("utf-8") + b"\r\n")  # type: ignore[attr-defined]
        if self.recording is not None:
            self.recording.sent(line.encode("utf-8"))
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def pause(self, seconds: float) -> None:
        """Think for a while (the `slow` trigger); the idle clock stops: the client waits on us."""
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        try:
            await asyncio.sleep(seconds)  # never time.sleep: it would stall every connection
        finally:
            if self.transport is not None:
                self._reset_timeout()

    async def drop_connection(self) -> NoReturn:
        """Hang up without a reply (the `drop` trigger); never returns."""
        self._close()
        # connection_lost cancels the task running this command.
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")  # pragma: no cover

    # Replies ----------------------------------------------------------------------------

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            if status != self._greeting:  # RFC 2034: the greeting carries no enhanced code
                status = "\r\n".join(sandbox_reply(line) for line in status.split("\r\n"))
            # surrogateescape gives back undecodable bytes a client put in an address.
            data = status.encode("utf-8", "surrogateescape")
        else:
            data = status
        if self.recording is not None:
            self.recording.sent(data)
        await super().push(data)

    async def _push_exempt(self, lines: list[str]) -> None:
        """Lines sent as they are: HELO/EHLO answers carry no enhanced code (RFC 2034).

        One write for the whole reply: a system call per line was a tenth of the cost of
        a connection under load.
        """
        reply = "\r\n".join(lines).encode("utf-8", "surrogateescape")
        if self.recording is not None:
            self.recording.sent(reply)
        await super().push(reply)

    # Commands ---------------------------------------------------------------------------

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's path parsing, with a shortcut for the everyday `<user@host> PARAMS`.

        aiosmtpd hands every path to the email package's RFC 5322 parser (and defines a
        class on each call): under load that was a third of a bare aiosmtpd server's CPU.
        Anything unusual - quoted local parts, comments, address literals, UTF-8, a limit
        on the local part - still goes to aiosmtpd, so the replies are the same.
        """
        plain = plain_path(arg) if not self.local_part_limit else None
        return plain if plain is not None else super()._getaddr(arg)

    async def smtp_EHLO(self, hostname: str | None) -> None:
        if not hostname:
            await self.push("501 5.5.4 Syntax: EHLO <your-client-name>")
            return
        self._greet(hostname, extended=True)
        config = self.sandbox.config
        keywords = ["PIPELINING", f"SIZE {config.max_message_size}", "8BITMIME", "SMTPUTF8"]
        keywords += ["ENHANCEDSTATUSCODES", "CHUNKING"]
        if self.tls_context is not None and not self.tls_active():
            keywords.append("STARTTLS")
        if self.tls_active() or not config.require_tls:
            keywords.append("AUTH " + " ".join(AUTH_MECHANISMS))
        if self.sandbox.ehlo_keywords:
            keywords += [
                k.replace("{local}", self._local_host()) for k in self.sandbox.ehlo_keywords
            ]
        keywords.append("HELP")
        first = f"{self.hostname} Hello {hostname}"
        lines = [first, *keywords]
        await self._push_exempt(
            [f"250{' ' if i == len(lines) - 1 else '-'}{line}" for i, line in enumerate(lines)]
        )

    async def smtp_HELO(self, hostname: str | None) -> None:
        if not hostname:
            await self.push("501 5.5.4 Syntax: HELO <your-client-name>")
            return
        self._greet(hostname, extended=False)
        await self._push_exempt([f"250 {self.hostname} Hello {hostname}"])

    def _greet(self, hostname: str, *, extended: bool) -> None:
        assert self.session is not None
        self._set_rset_state()
        self.session.extended_smtp = extended
        self.session.host_name = hostname
        if self.recording is not None:
            self.recording.greeted(hostname)

    async def smtp_HELP(self, arg: str | None) -> None:
        if arg:
            text = COMMAND_HELP.get(arg.strip().upper())
            if text is None:
                await self.push(f"504 5.5.4 No help for {arg.strip()!r}; try HELP")
            else:
                await self.push(f"214 2.0.0 Syntax: {text}")
            return
        commands = [c for c in COMMAND_HELP if c != "STARTTLS" or self._starttls_offered()]
        lines = [
            "smtp-tutor sandbox: a local sink; accepted mail is stored in a Maildir, never relayed",
            "Commands: " + " ".join(commands),
            *self._help_accounts(),
            "Error triggers by address: MAIL FROM:<spam@...>; RCPT TO:<nobody@...>, <full@...>,",
            "  <greylist@...>, <slow@...>, <drop@...>, <tempfail@...>, <toobig@...>, <relay@...>",
            "HELP <command> shows its syntax",
        ]
        await self.push(
            "\r\n".join(
                f"214{' ' if i == len(lines) - 1 else '-'}2.0.0 {line}"
                for i, line in enumerate(lines)
            )
        )

    def _local_host(self) -> str:
        """The address this client reached us on, for a keyword naming a wildcard-bound service."""
        sockname = self.transport.get_extra_info("sockname") if self.transport else None
        host = str(sockname[0]) if isinstance(sockname, tuple) and sockname else "127.0.0.1"
        return f"[{host}]" if ":" in host else host

    def _starttls_offered(self) -> bool:
        return self.tls_context is not None and not self.tls_active()

    def _help_accounts(self) -> list[str]:
        if self.sandbox.config.has_demo_account():
            return [f"Demo account: {DEMO_USER} / {DEMO_PASSWORD} (AUTH PLAIN, LOGIN or CRAM-MD5)"]
        return []

    async def smtp_STARTTLS(self, arg: str | None) -> None:
        if self.tls_active():
            await self.push("503 5.5.1 TLS is already active")
            return
        try:
            await super().smtp_STARTTLS(arg)
        except TLSSetupException as error:
            # A client that sends garbage or hangs up mid-handshake is the client's doing:
            # one line for the teacher, no traceback; aiosmtpd closes the connection.
            assert self.session is not None
            peer = activity.peer_label(self.session.peer)
            reason = activity.tls_failure(error.__cause__)
            if reason is None:
                self.sandbox.report("tls_hangup", peer=peer)
            else:
                self.sandbox.report("tls_failed", peer=peer, reason=reason)
            raise

    async def check_helo_needed(self, helo: str = "HELO") -> bool:
        assert self.session is not None
        if self.session.host_name:
            return False
        needed = "EHLO" if helo == "EHLO" else "EHLO (or HELO)"
        await self.push(f"503 5.5.1 Error: send {needed} first")
        return True

    async def smtp_AUTH(self, arg: str | None) -> None:
        assert self.session is not None and self.envelope is not None
        if self.session.host_name and not self.session.extended_smtp:
            await self.push("503 5.5.1 Error: send EHLO first; HELO sessions have no AUTH")
            return
        if self.session.host_name:
            if self.sandbox.config.require_tls and not self.tls_active():
                await self.push("538 5.7.11 Encryption required: issue STARTTLS first")
                return
            if self.envelope.mail_from:
                await self.push("503 5.5.1 AUTH is not allowed during a mail transaction")
                return
            if not arg and not self.session.authenticated:
                await self.push("501 5.5.4 Syntax: AUTH <mechanism> [initial-response]")
                return
        await super().smtp_AUTH(arg)
        identity = self.session.auth_data
        recording = self.recording
        if (
            recording is not None
            and isinstance(identity, AuthIdentity)
            and self.session.authenticated
            and recording.record.auth_user != identity.user
        ):
            recording.authenticated(identity.user)

    async def smtp_MAIL(self, arg: str | None) -> None:
        assert self.session is not None
        if self.session.host_name:  # before HELO/EHLO aiosmtpd's 503 comes first
            config = self.sandbox.config
            if config.require_tls and not self.tls_active():
                await self.push("530 5.7.0 Must issue a STARTTLS command first")
                return
            if config.require_auth and not self.session.authenticated:
                await self.push("530 5.7.0 Authentication required")
                return
        await super().smtp_MAIL(arg)

    # CHUNKING (RFC 3030) ----------------------------------------------------------------

    @syntax("BDAT <size> [LAST]")
    async def smtp_BDAT(self, arg: str | None) -> None:
        """A chunk of the message: exactly <size> octets after the command line, no end mark.

        The chunk is read whatever the answer (in pieces, and dropped when refused): the
        client sends it without waiting, so what follows it is the next command, not the
        middle of a message. The last chunk stores the message, as the final dot does.
        """
        match = _BDAT_ARGS.fullmatch((arg or "").strip())
        if match is None:
            await self.push("501 5.5.4 Syntax: BDAT <size> [LAST]")
            return
        size, last = int(match[1]), match[2] is not None
        chunks = self._chunk_state()
        refusal = self._bdat_refusal(chunks, size)
        data = await self._read_chunk(size, keep=refusal is None)
        if data is None:  # the client hung up inside the chunk
            return
        if refusal is not None:
            chunks.failed = chunks.failed or refusal.startswith("552")
            await self.push(refusal)
            return
        chunks.parts.append(data)
        chunks.size += size
        if not last:
            await self.push(f"250 2.0.0 {size} octets received, {chunks.size} so far")
            return
        assert self.envelope is not None
        self.envelope.original_content = self.envelope.content = b"".join(chunks.parts)
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    def _chunk_state(self) -> _Chunks:
        """The chunks of the current transaction (a new envelope means a new transaction)."""
        if self._chunks is None or self._chunks.envelope is not self.envelope:
            assert self.envelope is not None
            self._chunks = _Chunks(self.envelope)
        return self._chunks

    def _bdat_refusal(self, chunks: _Chunks, size: int) -> str | None:
        assert self.session is not None and self.envelope is not None
        if not self.session.host_name:
            return "503 5.5.1 Error: send EHLO first"
        if not self.session.extended_smtp:
            return "503 5.5.1 Error: BDAT is an extension: send EHLO, not HELO"
        if not self.envelope.mail_from:
            return "503 5.5.1 Error: need MAIL command"
        if not self.envelope.rcpt_tos:
            return "503 5.5.1 Error: need RCPT command"
        if chunks.failed:
            return "503 5.5.1 Error: an earlier chunk was refused; RSET and start again"
        limit = self.sandbox.config.max_message_size
        if chunks.size + size > limit:
            return f"552 5.3.4 Message too big (at most {limit} bytes); RSET and start again"
        return None

    async def _read_chunk(self, size: int, *, keep: bool) -> bytes | None:
        parts: list[bytes] = []
        left = size
        while left:
            piece = await self._reader.read(min(left, CHUNK_READ))
            if not piece:
                return None
            left -= len(piece)
            if keep:
                parts.append(piece)
        return b"".join(parts)

    async def smtp_DATA(self, arg: str | None) -> None:
        chunks = self._chunks
        if chunks is not None and chunks.envelope is self.envelope and chunks.started:
            await self.push(
                "503 5.5.1 Error: this message is coming in BDAT chunks; end it with "
                "BDAT <size> LAST, or RSET"
            )
            return
        await super().smtp_DATA(arg)  # type: ignore[arg-type]

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM_MD5(self, _server: SMTP, args: list[str]) -> AuthResult:
        """RFC 2195: the client proves it knows the password without sending it."""
        if len(args) > 1:
            await self.push("501 5.5.4 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = f"<{secrets.randbelow(10**10)}.{int(time.time())}@{self.hostname}>"
        response = await self.challenge_auth(challenge)
        if response is MISSING:  # cancelled with "*" or bad base64: already answered
            return AuthResult(success=False, handled=True)
        assert isinstance(response, bytes)
        user, _, digest = response.decode("utf-8", "replace").rpartition(" ")
        password = self.sandbox.password_of(user)
        if password is not None:
            expected = hmac.new(password.encode(), challenge.encode(), "md5").hexdigest()
            if hmac.compare_digest(expected.encode(), digest.lower().encode()):
                return AuthResult(success=True, auth_data=AuthIdentity(user, "CRAM-MD5"))
        return AuthResult(success=False, handled=False)


def plain_path(arg: str) -> tuple[str, str] | None:
    """(address, rest) of an everyday MAIL/RCPT path, or None to leave it to aiosmtpd."""
    match = _PLAIN_PATH.match(arg)
    return (match[1], arg[match.end() :]) if match else None


@record
class _Chunks:
    """A message arriving in BDAT chunks, for the transaction of one envelope."""

    envelope: Envelope
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    failed: bool = False  # a chunk was refused for its size: the message is lost

    @property
    def started(self) -> bool:
        """Chunks were accepted (or lost): this transaction's message is sent with BDAT."""
        return bool(self.parts) or self.failed
