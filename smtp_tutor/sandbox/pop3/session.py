"""One POP3 connection of the sandbox: the three states, every command, STLS, AUTH, limits.

An asyncio `Protocol` that keeps its own input buffer (so that after STLS's +OK whatever
plain text the client sent before the handshake is thrown away, never read as a command —
RFC 2595 §4, the STARTTLS injection), and one task per connection that reads a line,
answers it, and reads the next: commands sent without waiting (PIPELINING, RFC 2449 §6.6)
are answered in order.

Which state accepts which command is the core's table (`core.pop3.dialogue.VALID_IN`); the
answers are this module's. States: AUTHORIZATION until USER/PASS, APOP or AUTH succeeds
and the maildrop lock is taken; TRANSACTION with the maildrop's snapshot (maildrop.py);
UPDATE when QUIT removes what DELE marked, then the connection closes.

Limits, as on the SMTP side: a command line over RFC 2449's 255 octets gets -ERR and the
session goes on; a line over `Pop3Limits.hard_line` octets without a newline ends it; a
session silent for `idle_timeout` gets `-ERR [SYS/TEMP]` and is closed (nothing deleted); a
wrong password waits `bad_login_delay` and the `bad_login_limit`-th failure closes; a
connection over `max_connections` is refused with `-ERR [SYS/TEMP]` in place of a greeting.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import os
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar

from smtp_tutor.core.pop3.auth import apop_digest
from smtp_tutor.core.pop3.command_line import NO_ARGUMENT, Pop3Command, parse_command, parse_number
from smtp_tutor.core.pop3.dialogue import VALID_IN, State
from smtp_tutor.sandbox import activity
from smtp_tutor.sandbox.pop3.maildrop import (
    Entry,
    Maildrop,
    MaildropLock,
    byte_stuffed,
    top_of,
)

if TYPE_CHECKING:
    from smtp_tutor.sandbox.pop3.server import Pop3Server

IMPLEMENTATION = "smtp-tutor-sandbox"
MECHANISMS = ("PLAIN", "LOGIN")
_LOGIN_USER, _LOGIN_PASSWORD = "VXNlcm5hbWU6", "UGFzc3dvcmQ6"  # base64 "Username:", "Password:"
_SHOWN = 40  # characters of a client's word echoed back in an -ERR


class _Overflow(Exception):
    """More than the hard line limit arrived without a newline."""


class _Hangup(Exception):
    """The session is over: the connection is closed (or closing)."""


class Pop3Session(asyncio.Protocol):
    """One client connection; the server makes one per accepted socket."""

    def __init__(self, server: Pop3Server) -> None:
        self.server = server
        self.limits = server.limits
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.tls = server.implicit_tls
        self.state = State.AUTHORIZATION
        self.user: str | None = None  # USER accepted, PASS not yet
        self.account: str | None = None  # logged in as
        self.maildrop: Maildrop | None = None
        self.greeting_stamp = ""
        self._lock: MaildropLock | None = None
        self._failures = 0
        self._buffer = bytearray()
        self._overflow = False
        self._eof = False
        self._lost = False
        self._reading_paused = False
        self._wake = asyncio.Event()
        self._writable: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = activity.peer_label(transport.get_extra_info("peername"))
        self._task = asyncio.get_running_loop().create_task(self._run())

    def data_received(self, data: bytes) -> None:
        if self._overflow:
            return
        self._buffer.extend(data)
        last = self._buffer.rfind(b"\n")
        if len(self._buffer) - last - 1 > self.limits.hard_line:
            self._overflow = True  # said and closed by the task; the bytes are not kept
            self._buffer.clear()
        elif len(self._buffer) > self.limits.read_buffer and self.transport is not None:
            self.transport.pause_reading()  # many pipelined lines: read on once answered
            self._reading_paused = True
        self._wake.set()

    def eof_received(self) -> bool:
        """The client finished sending: what it sent is still answered (`printf … | nc -N`).

        Keeping the transport open for the answers works only without TLS (asyncio).
        """
        self._eof = True
        self._wake.set()
        return not self.tls

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake.set()
        self._wake_writer()

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    def _wake_writer(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # -- the session ------------------------------------------------------------------

    def shutdown(self) -> None:
        """The sandbox is stopping: say so and close (nothing marked is removed)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                b"-ERR [SYS/TEMP] The sandbox is shutting down; nothing was deleted.\r\n"
            )
            self.transport.close()
        if self._task is not None:
            self._task.cancel()

    async def wait_closed(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        server = self.server
        server.connections.add(self)
        try:
            if len(server.connections) > server.config.max_connections:
                await self._say(
                    f"-ERR [SYS/TEMP] All {server.config.max_connections} POP3 connections "
                    "are in use; try again later."
                )
                server.report(
                    "pop3_refused_busy", peer=self.peer, limit=str(server.config.max_connections)
                )
                return
            stamp = f"{os.getpid()}.{secrets.token_hex(4)}.{int(time.time())}"
            self.greeting_stamp = f"<{stamp}@{server.config.hostname}>"
            await self._say(f"+OK smtp-tutor sandbox POP3 ready {self.greeting_stamp}")
            await self._serve()
        except (_Hangup, ConnectionError):
            pass
        finally:
            server.connections.discard(self)
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            if self.transport is not None:
                self.transport.close()

    async def _serve(self) -> None:
        while True:
            line = await self._next_line(self.limits.command_line, "command")
            if line is None:
                continue  # too long: said, and the session goes on
            keep_going = await self._command(parse_command(line))
            if not keep_going:
                return

    async def _next_line(self, limit: int, what: str) -> str | None:
        """The next line without its CRLF (a bare LF is taken too), or None if over `limit`.

        Raises _Hangup when the client left, went idle too long or sent an absurd line.
        """
        try:
            raw = await self._read_line()
        except TimeoutError:
            await self._say(
                f"-ERR [SYS/TEMP] Idle for more than {self.server.config.pop3_idle():g} seconds; "
                "closing. Nothing was deleted."
            )
            self.server.report("pop3_idle", peer=self.peer)
            raise _Hangup from None
        except _Overflow:
            await self._say(
                f"-ERR Line too long (over {self.limits.hard_line} octets without a line end); "
                "closing."
            )
            raise _Hangup from None
        if raw is None:
            raise _Hangup  # dropped: nothing marked is removed
        if len(raw) > limit:
            kind = "A command line" if what == "command" else "An AUTH answer"
            await self._say(f"-ERR {kind} is at most {limit} octets with its CRLF (RFC 2449).")
            return None
        return raw.rstrip(b"\n").removesuffix(b"\r").decode("utf-8", "surrogateescape")

    async def _read_line(self) -> bytes | None:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[: newline + 1])
                del self._buffer[: newline + 1]
                if self._reading_paused and len(self._buffer) < self.limits.read_buffer:
                    self._reading_paused = False
                    if self.transport is not None:
                        self.transport.resume_reading()
                return line
            if self._overflow:
                raise _Overflow
            if self._lost or self._eof:
                return None
            self._wake.clear()
            await asyncio.wait_for(self._wake.wait(), self.server.config.pop3_idle())

    async def _say(self, line: str) -> None:
        await self._write(line.encode("utf-8", "replace") + b"\r\n")

    async def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            raise _Hangup
        transport.write(data)
        if self._writable is not None and not self._writable.done():
            try:  # a client that never reads may not hold the session forever
                await asyncio.wait_for(
                    asyncio.shield(self._writable), self.server.config.pop3_idle()
                )
            except TimeoutError:
                transport.abort()
                raise _Hangup from None
        if self._lost:
            raise _Hangup

    async def _multiline(self, head: str, body: bytes) -> None:
        await self._write(head.encode("utf-8", "replace") + b"\r\n" + byte_stuffed(body))

    # -- dispatch ---------------------------------------------------------------------

    async def _command(self, command: Pop3Command) -> bool:
        """Answer one command; False when the session ends."""
        verb = command.keyword
        handler = self._HANDLERS.get(verb)
        if handler is None:
            if not verb:
                await self._say("-ERR Empty command: type a command such as CAPA, USER or QUIT.")
            elif verb in VALID_IN:
                await self._say(f"-ERR {verb} is not implemented by the sandbox.")
            else:
                await self._say(f"-ERR Unknown command: {_shown(verb)}")
            return True
        if self.state not in VALID_IN[verb]:
            await self._say(self._out_of_state(verb))
            return True
        if verb in NO_ARGUMENT and verb != "QUIT" and command.argument.strip():
            await self._say(f"-ERR {verb} takes no argument.")
            return True
        result = await handler(self, command)
        return result is not False

    def _out_of_state(self, verb: str) -> str:
        if self.state is State.AUTHORIZATION:
            return (
                f"-ERR {verb} needs a login first (AUTHORIZATION state): "
                "USER and PASS, APOP or AUTH."
            )
        if verb == "STLS":
            return "-ERR STLS is only allowed before login (RFC 2595); you are logged in."
        return f"-ERR {verb} is only for the AUTHORIZATION state; you are logged in already."

    # -- AUTHORIZATION ----------------------------------------------------------------

    async def _capa(self, command: Pop3Command) -> None:
        lines = ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
        if self.state is State.AUTHORIZATION:
            if not self.tls:
                lines.append("STLS")
            lines += ["USER", "SASL " + " ".join(MECHANISMS)]
        lines.append(f"IMPLEMENTATION {IMPLEMENTATION}")
        await self._multiline(
            "+OK Capability list follows", "".join(f"{x}\r\n" for x in lines).encode()
        )

    async def _user(self, command: Pop3Command) -> None:
        name = command.argument.strip()
        if not name:
            await self._say("-ERR USER needs a name: USER <name>")
            return
        self.user = name
        await self._say("+OK Now send PASS with the password.")

    async def _pass(self, command: Pop3Command) -> bool:
        if self.user is None:
            await self._say("-ERR No username given: send USER first.")
            return True
        name, self.user = self.user, None
        return await self._login(name, command.argument, "USER/PASS")

    async def _apop(self, command: Pop3Command) -> bool:
        args = command.args
        if len(args) != 2:
            await self._say("-ERR APOP needs a name and a digest: APOP <name> <md5-hex>")
            return True
        name, digest = args
        account = self._account(name)
        secret = self.server.config.users.get(account) if account else None
        expected = apop_digest(self.greeting_stamp, secret) if secret is not None else ""
        ok = bool(expected) and hmac.compare_digest(expected, digest.lower())
        return await self._logged_in(account, "APOP") if ok and account else await self._failed()

    async def _auth(self, command: Pop3Command) -> bool:
        args = command.args
        if not args:
            await self._multiline("+OK", "".join(f"{m}\r\n" for m in MECHANISMS).encode())
            return True
        mechanism = args[0].upper()
        if mechanism not in MECHANISMS or len(args) > 2:
            await self._say(
                "-ERR Unsupported authentication mechanism (the sandbox offers PLAIN and LOGIN)."
                if mechanism not in MECHANISMS
                else "-ERR AUTH takes a mechanism and at most one initial response."
            )
            return True
        initial = args[1] if len(args) > 1 else None
        try:
            if mechanism == "PLAIN":
                data = await self._sasl_answer("", initial)
                parts = data.split(b"\0")
                if len(parts) != 3 or (parts[0] and parts[0] != parts[1]):
                    return await self._failed()
                user, password = parts[1], parts[2]
            else:
                user = await self._sasl_answer(_LOGIN_USER, initial)
                password = await self._sasl_answer(_LOGIN_PASSWORD, None)
        except _Refused as refusal:
            await self._say(f"-ERR {refusal}")
            return True
        return await self._login(
            user.decode("utf-8", "surrogateescape"), password, "AUTH " + mechanism
        )

    async def _sasl_answer(self, challenge: str, initial: str | None) -> bytes:
        """The client's decoded answer: the initial response, or a line after '+ challenge'."""
        if initial is None:
            await self._say(f"+ {challenge}")
            answer = await self._next_line(self.limits.sasl_line, "sasl")
            if answer is None:
                raise _Refused("Authentication failed: the answer was too long.")
        else:
            answer = initial
        answer = answer.strip()
        if answer == "*":
            raise _Refused("Authentication aborted by client.")
        if initial is not None and answer == "=":
            return b""  # RFC 5034 §4: an empty initial response
        try:
            return base64.b64decode(answer.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise _Refused("Invalid base64 data in the answer.") from None

    async def _stls(self, command: Pop3Command) -> bool:
        if self.tls:
            await self._say("-ERR TLS is already active.")
            return True
        await self._say("+OK Begin TLS negotiation now.")
        transport = self.transport
        assert transport is not None
        self._buffer.clear()  # plain text sent before the handshake is never a command
        self._overflow = False
        loop = asyncio.get_running_loop()
        try:
            upgraded = await loop.start_tls(
                transport,
                self,
                self.server.tls_context,
                server_side=True,
                ssl_handshake_timeout=self.limits.tls_handshake,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as error:
            reason = activity.tls_failure(error)
            if reason:
                self.server.report("pop3_tls_failed", peer=self.peer, reason=reason)
            transport.abort()
            return False
        if upgraded is None:
            return False
        self.transport = upgraded  # type: ignore[assignment]
        self.tls = True
        self._buffer.clear()
        return True

    # -- logging in -------------------------------------------------------------------

    def _account(self, name: str) -> str | None:
        """The account a login name means: exact, or the one account equal ignoring case."""
        users = self.server.config.users
        if name in users:
            return name
        matches = [n for n in users if n.lower() == name.lower()]
        return matches[0] if len(matches) == 1 else None

    async def _login(self, name: str, password: str | bytes, mechanism: str) -> bool:
        account = self._account(name)
        expected = self.server.config.users.get(account) if account else None
        given = (
            password if isinstance(password, bytes) else password.encode("utf-8", "surrogateescape")
        )
        if (
            account is None
            or expected is None
            or not hmac.compare_digest(expected.encode("utf-8"), given)
        ):
            return await self._failed()
        return await self._logged_in(account, mechanism)

    async def _failed(self) -> bool:
        """A wrong login: a pause (guessing is slow), then -ERR [AUTH]; the last one closes."""
        self._failures += 1
        await asyncio.sleep(self.limits.bad_login_delay)
        if self._failures >= self.limits.bad_login_limit:
            await self._say(
                f"-ERR [AUTH] Authentication failed {self._failures} times; closing the connection."
            )
            self.server.report("pop3_bad_logins", peer=self.peer, count=str(self._failures))
            return False
        await self._say("-ERR [AUTH] Authentication failed.")
        return True

    async def _logged_in(self, account: str, mechanism: str) -> bool:
        try:
            mailbox = self.server.mailbox_of(account)
            mailbox.create()
            lock = MaildropLock(mailbox.path)
            locked = lock.acquire()
        except OSError:
            await self._say("-ERR [SYS/TEMP] The mailbox cannot be opened now; try again later.")
            return True
        if not locked:
            await self._say("-ERR [IN-USE] Mailbox is locked by another POP3 session.")
            return True
        try:
            maildrop = await asyncio.to_thread(Maildrop.open, mailbox)
        except OSError:
            lock.release()
            await self._say("-ERR [SYS/TEMP] The mailbox cannot be read now; try again later.")
            return True
        self._lock, self.maildrop, self.account = lock, maildrop, account
        self.state = State.TRANSACTION
        self.server.report(
            "pop3_login",
            peer=self.peer,
            user=activity.printable(account),
            how=mechanism,
            count=str(maildrop.count),
            size=str(maildrop.size),
        )
        await self._say(
            f"+OK Logged in as {account}: {_messages(maildrop.count)} ({maildrop.size} octets)."
        )
        return True

    # -- TRANSACTION ------------------------------------------------------------------

    def _drop(self) -> Maildrop:
        assert self.maildrop is not None
        return self.maildrop

    async def _message(self, word: str | None) -> Entry | None:
        """The message a number names, or None after saying why not."""
        if word is None:
            await self._say("-ERR A message number is needed.")
            return None
        number = parse_number(word)
        entries = self._drop().entries
        if number is None:
            await self._say(f"-ERR Invalid message number: {_shown(word)}")
            return None
        if not 1 <= number <= len(entries):
            await self._say(f"-ERR There's no message {number}.")
            return None
        entry = entries[number - 1]
        if entry.deleted:
            await self._say(f"-ERR Message {number} is deleted.")
            return None
        return entry

    async def _stat(self, command: Pop3Command) -> None:
        drop = self._drop()
        await self._say(f"+OK {drop.count} {drop.size}")

    async def _list_or_uidl(self, command: Pop3Command) -> None:
        drop = self._drop()
        uidl = command.keyword == "UIDL"
        args = command.args
        if len(args) > 1:
            await self._say(f"-ERR {command.keyword} takes at most one message number.")
            return
        if args:
            entry = await self._message(args[0])
            if entry is not None:
                value = entry.uid if uidl else str(entry.size)
                await self._say(f"+OK {drop.number_of(entry)} {value}")
            return
        body = "".join(f"{n} {e.uid if uidl else e.size}\r\n" for n, e in drop.live())
        head = (
            "+OK Unique-ID listing follows"
            if uidl
            else f"+OK {_messages(drop.count)} ({drop.size} octets)"
        )
        await self._multiline(head, body.encode("ascii"))

    async def _retr(self, command: Pop3Command) -> None:
        args = command.args
        if len(args) != 1:
            await self._say("-ERR RETR takes one message number: RETR <n>")
            return
        entry = await self._message(args[0])
        if entry is None:
            return
        data = await self._read(entry)
        if data is not None:
            await self._multiline(f"+OK {len(data)} octets", data)

    async def _top(self, command: Pop3Command) -> None:
        args = command.args
        if len(args) != 2:
            await self._say("-ERR TOP takes a message number and a line count: TOP <n> <lines>")
            return
        lines = parse_number(args[1])
        if lines is None:
            await self._say(f"-ERR Invalid number of lines: {_shown(args[1])}")
            return
        entry = await self._message(args[0])
        if entry is None:
            return
        data = await self._read(entry)
        if data is not None:
            await self._multiline("+OK Top of the message follows", top_of(data, lines))

    async def _read(self, entry: Entry) -> bytes | None:
        try:
            return await asyncio.to_thread(Maildrop.read, entry)
        except OSError:
            number = self._drop().number_of(entry)
            await self._say(f"-ERR [SYS/TEMP] Message {number} is gone from the Maildir.")
            return None

    async def _dele(self, command: Pop3Command) -> None:
        args = command.args
        if len(args) != 1:
            await self._say("-ERR DELE takes one message number: DELE <n>")
            return
        entry = await self._message(args[0])
        if entry is not None:
            entry.deleted = True
            number = self._drop().number_of(entry)
            await self._say(f"+OK Message {number} marked; it is removed at QUIT.")

    async def _rset(self, command: Pop3Command) -> None:
        drop = self._drop()
        drop.reset()
        await self._say(f"+OK Maildrop has {_messages(drop.count)} ({drop.size} octets).")

    async def _noop(self, command: Pop3Command) -> None:
        await self._say("+OK")

    async def _quit(self, command: Pop3Command) -> bool:
        if self.state is not State.TRANSACTION:
            await self._say("+OK Logging out.")
            return False
        self.state = State.UPDATE
        drop = self._drop()
        marked = drop.marked
        removed, failed = await asyncio.to_thread(drop.commit)
        self.server.report(
            "pop3_quit",
            peer=self.peer,
            user=activity.printable(self.account or "-"),
            deleted=str(removed),
        )
        if failed:
            await self._say(
                f"-ERR [SYS/TEMP] {len(failed)} of {marked} marked messages could not be removed."
            )
        elif marked:
            await self._say(f"+OK Logging out: {_messages(removed)} deleted.")
        else:
            await self._say("+OK Logging out: nothing deleted.")
        return False

    _HANDLERS: ClassVar[dict[str, Callable[[Pop3Session, Pop3Command], Awaitable[bool | None]]]] = {
        "CAPA": _capa,
        "USER": _user,
        "PASS": _pass,
        "APOP": _apop,
        "AUTH": _auth,
        "STLS": _stls,
        "STAT": _stat,
        "LIST": _list_or_uidl,
        "UIDL": _list_or_uidl,
        "RETR": _retr,
        "TOP": _top,
        "DELE": _dele,
        "RSET": _rset,
        "NOOP": _noop,
        "QUIT": _quit,
    }


class _Refused(Exception):
    """An AUTH exchange that ends with -ERR before any password was checked."""


def _shown(word: str) -> str:
    """A client's word, safe to echo: printable ASCII only, cut short."""
    safe = "".join(ch if "\x21" <= ch <= "\x7e" else "?" for ch in word)
    return safe if len(safe) <= _SHOWN else safe[: _SHOWN - 3] + "..."


def _messages(count: int) -> str:
    return f"{count} message" if count == 1 else f"{count} messages"
