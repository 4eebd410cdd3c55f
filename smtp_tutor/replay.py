"""`smtp-tutor replay`: send a transcript's ``C:`` lines again and check every ``S:`` reply.

How it works:

* `_plan` walks the script once and turns it into steps: the bytes of every line that has no
  placeholder are encoded up front, each line knows the verb it sends, and each expectation
  knows which command it answers (for the STARTTLS upgrade, the EHLO capabilities and the
  explanation of a wrong reply).
* The steps run in *groups*: the lines written in one go before the replies are read. Without
  pipelining a group is one command — or a whole message, its content lines and the final
  ``.``, since the server answers nothing in between. With ``--pipeline`` and PIPELINING
  advertised, a group runs up to a command whose answer changes what comes next (RFC 2920
  §3.1: EHLO, DATA, AUTH, QUIT …); message content may start a group (RFC 2920 §3.1), so
  a message, its ``.`` and the next MAIL, RCPT and DATA go in one write: one round trip
  per message. Replies are read and checked in script order either way.
* Replay needs no concurrency, so it talks over a plain blocking socket (`_Link`) in a
  worker thread: asyncio streams, a timeout per read and the general reply parser made
  the client cost several times the CPU of smtplib's loop, and in lockstep every
  microsecond of it is waited for (bench/replay.py). The event loop stays free for an
  embedded sandbox or a test server in the same process. `_Link` keeps `Connection`'s
  contract: the same bytes, the same reply objects, the same one-line failures. On Linux
  the kernel times its reads out (SO_RCVTIMEO): no poll() before every read.
* The first mismatch stops the replay: `Stop` carries the exit status and the report, so the
  whole run has one place where it ends. Nothing the server sends becomes a traceback.

Exit statuses: 0 every reply matched, 1 a mismatch, 2 a script error, 3 connection or TLS.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import socket
import ssl
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn, TextIO

from smtp_tutor.connection import (
    Closed,
    ConnectionFailed,
    TimedOut,
    WireEvent,
    WireObserver,
    _ssl_reason,
    connect_failure,
)
from smtp_tutor.core.dialogue import Capabilities
from smtp_tutor.core.placeholders import ResolveError
from smtp_tutor.core.replies import REPLY_LINE_LIMIT, Reply, ReplyParser, parse_enhanced
from smtp_tutor.core.transcript import Directive, Expect, Script, Send, resolve, wire_bytes

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_SCRIPT = 2
EXIT_CONNECTION = 3

#: Commands that end a pipelined group: what follows depends on their answer (RFC 2920 §3.1).
#: The final "." ends one only without pipelining; with it, the next command may follow.
GROUP_ENDING = frozenset(
    {"EHLO", "HELO", "DATA", "STARTTLS", "AUTH", "QUIT", "NOOP", "VRFY", "EXPN", "BDAT", "."}
)
#: Message lines shown before the rest of a long message is summarised in one line.
SHOWN_CONTENT_LINES = 10
GREETING = "GREETING"
#: Bytes asked of the socket per read: a pipelined group's replies arrive in one.
RECV_SIZE = 65536

#: Linux times out a blocking socket's reads and writes itself (SO_RCVTIMEO, SO_SNDTIMEO
#: with a struct timeval of two longs); elsewhere Python's socket timeouts do it.
_KERNEL_TIMEOUTS = sys.platform.startswith("linux")

#: --step: prompts and waits for Enter; False once the input has ended.
StepInput = Callable[[], Awaitable[bool]]


@dataclass
class ReplayOptions:
    """How to replay; the server itself is given to `replay` (the CLI may start a sandbox)."""

    variables: Mapping[str, str] = field(default_factory=dict)
    implicit_tls: bool = False
    starttls: bool = False  # EHLO + STARTTLS before the script, unless it has its own
    verify: bool = False
    cafile: Path | None = None
    pipeline: bool = False
    step: bool = False
    delay: float = 0.0  # seconds between groups of commands
    timeout: float = 30.0
    quiet: bool = False
    lang: str = "en"


@dataclass
class ReplayResult:
    status: int
    commands: int  # command lines sent (message content lines are not commands)
    matched: int  # script expectations met
    elapsed: float  # seconds from connecting to the end

    def summary(self) -> str:
        ms = self.elapsed * 1000
        return f"{self.commands} commands, {self.matched} replies matched in {ms:.0f} ms"


class Stop(Exception):
    """Ends the replay: the exit status and what to tell the user (one line, or a report)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Aborted(Exception):
    """The caller was cancelled (Ctrl-C, a test's timeout): end at once, say nothing."""


# --------------------------------------------------------------------------- replies, fast


@functools.lru_cache(maxsize=256)
def simple_reply(line: bytes) -> Reply | None:
    """The reply a fresh `ReplyParser` makes of `line`, if it is a plain one-line reply.

    `line` ends with its only LF. Most replies are one well-formed line ("250 2.1.0 Ok");
    they skip the parser's general machinery, and the `Reply` is equal to the parser's.
    Anything else (a continuation line, a flaw to report) is None: the parser's job.
    Cached: a replay meets the same few lines again and again, and a `Reply` is immutable.
    """
    size = len(line)
    if size > REPLY_LINE_LIMIT or size < 5 or line[-2] != 13:  # 13: CR before the LF
        return None
    if size > 5 and line[3] != 32:  # 32: the space of a last line; "250\r\n" has none
        return None
    head = line[:3]
    if not head.isdigit():  # bytes.isdigit: ASCII digits only, like the parser's \d
        return None
    code = int(head)
    if code < 200 or code >= 600 or code % 100 >= 60:
        return None
    try:
        text = line[4:-2].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return Reply(code, (text,), line, (), parse_enhanced(text))


# --------------------------------------------------------------------------- the wire


def _timeval(seconds: float) -> bytes:
    """A struct timeval for SO_RCVTIMEO/SO_SNDTIMEO: at least 1 ms (0 means never)."""
    seconds = min(max(seconds, 0.001), 10**8)
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1_000_000))


#: Parser problems that mean the reply was cut off by the connection breaking.
_CUT_SHORT = frozenset({"closed_mid_reply", "closed_mid_line"})


class _Link:
    """One blocking connection: `Connection`'s contract, without asyncio's cost per read.

    Bytes go out exactly as given; what arrives becomes `Reply` objects equal to the core
    parser's (plain one-line replies by `simple_reply`, everything else by the parser
    itself); a server that hangs up or stays silent is a `Closed` or `TimedOut`, never an
    exception. Only opening and the TLS handshake raise, `ConnectionFailed` with one line.

    TLS runs through an `ssl.SSLObject` over the plain socket, as in asyncio: an SSLSocket
    reports a reset as a mere EOF, and a broken connection must not read as a closed one.
    """

    def __init__(
        self,
        sock: socket.socket,
        host: str,
        port: int,
        timeout: float,
        observer: WireObserver | None,
    ) -> None:
        self.sock = sock
        self.host, self.port = host, port
        self.timeout = timeout
        self.observer = observer
        self.tls: tuple[str, str] | None = None  # TLS version and cipher, once up
        self.injected = False  # clear text followed the 220 to STARTTLS (thrown away)
        self._tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._parser = ReplyParser()
        self._clean = True  # the parser holds nothing: the next line may take the fast path
        self._ready: deque[Reply] = deque()
        self._eof = False
        self._closed_reason: str | None = None
        self._send_failed: str | None = None
        self._wait: float | None = None  # how long one read may block, as set on the socket
        if _KERNEL_TIMEOUTS:
            # A blocking socket whose reads and writes the kernel times out: one system call
            # per read, where a Python timeout adds a poll() (and settimeout an ioctl()).
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(timeout))

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        *,
        timeout: float,
        tls: ssl.SSLContext | None,
        observer: WireObserver | None,
    ) -> _Link:
        """Connect (and with `tls`, handshake at once); failures worded as `Connection`'s."""
        address = host.strip("[]")  # "[192.0.2.1]" is how SMTP writes an address literal
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
        except (OSError, UnicodeError, ValueError) as error:
            raise connect_failure(error, host, port, timeout) from None
        with contextlib.suppress(OSError):
            # Every group is one write: nothing to gain from Nagle's algorithm, only delay.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = cls(sock, host, port, timeout, observer)
        if tls is not None:
            try:
                link._handshake(tls, timeout, implicit=True)
            except ConnectionFailed:
                link.close()
                raise
        return link

    # -- sending -----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write `data` in full; a failure is remembered and told when a reply is missing."""
        if self._eof or self._send_failed is not None:
            return
        if self.observer is not None:
            self._notify("sent", data)
        try:
            if self._tls is not None:
                self._tls_write(data)
            else:
                self._sendall(data)
        except (BlockingIOError, TimeoutError):
            self._send_failed = (
                f"the connection broke while sending: the server took nothing for "
                f"{self.timeout:g} s"
            )
        except OSError as error:
            # Replies the server sent before it went away can still be read.
            self._send_failed = f"the connection broke while sending: {error}"

    def _sendall(self, data: bytes) -> None:
        if not _KERNEL_TIMEOUTS and self._wait != self.timeout:
            self.sock.settimeout(self.timeout)
            self._wait = self.timeout
        self.sock.sendall(data)

    def _tls_write(self, data: bytes) -> None:
        assert self._tls is not None
        view = memoryview(data)
        offset = 0
        while offset < len(view):
            offset += self._tls.write(view[offset:])
        self._flush()

    def _flush(self) -> None:
        """Send what TLS has to say (records, handshake messages)."""
        pending = self._outgoing.read()
        if pending:
            self._sendall(pending)

    # -- receiving ---------------------------------------------------------------------

    def read_reply(self, timeout: float | None = None) -> Reply | Closed | TimedOut:
        """The next complete reply, or why there is none, within `timeout` for the whole."""
        ready = self._ready
        if ready:
            return ready.popleft()
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not ready:
            if self._eof:
                return Closed(self._closed_reason or "the server closed the connection")
            try:
                data = self._recv(deadline)
            except TimeoutError:
                return TimedOut(limit)
            except OSError as error:  # ssl.SSLError included
                data = b""
                self._mark_closed(self._send_failed or f"the connection broke: {error}")
            if data:
                if self.observer is not None:
                    self._notify("received", data)
                self._take(data)
            else:
                ready.extend(self._parser.feed_eof())
                self._clean = True
                self._mark_closed(self._send_failed or "the server closed the connection")
        return ready.popleft()

    def _recv(self, deadline: float) -> bytes:
        """Some bytes from the server (decrypted under TLS); b"" at its end."""
        if self._tls is None:
            return self._recv_raw(deadline)
        while True:
            try:
                return self._tls.read(RECV_SIZE)
            except ssl.SSLWantReadError:
                self._flush()  # a key update wants an answer
                raw = self._recv_raw(deadline)
                if raw:
                    self._incoming.write(raw)
                else:
                    self._incoming.write_eof()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""  # with or without close_notify: the server is done

    def _recv_raw(self, deadline: float) -> bytes:
        """Bytes as they arrive, b"" at the end; TimeoutError once `deadline` has passed.

        The socket's own wait is changed only when it would overshoot the deadline or is
        far too short: the first read for each reply then costs no extra system call. A
        wait that ends early only means one more turn of the loop.
        """
        sock = self.sock
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self._set_wait(remaining)
            try:
                return sock.recv(RECV_SIZE)
            except (BlockingIOError, TimeoutError):  # the socket's wait ended: is it time?
                continue

    def _set_wait(self, seconds: float) -> None:
        wait = self._wait
        if wait is None or wait > seconds + 0.01 or wait < seconds / 2:
            if _KERNEL_TIMEOUTS:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))
            else:
                self.sock.settimeout(seconds)
            self._wait = seconds

    def _take(self, data: bytes) -> None:
        """Turn received bytes into replies: whole plain lines fast, the rest by the parser."""
        rest = data
        if self._clean:
            start = 0
            find = data.find
            append = self._ready.append
            while True:
                end = find(b"\n", start) + 1
                if not end:
                    break
                reply = simple_reply(data[start:end])
                if reply is None:
                    break
                append(reply)
                start = end
            if start == len(data):
                return
            rest = data[start:] if start else data
        parser = self._parser
        self._ready.extend(parser.feed(rest))
        # Only after a whole line is the parser back where a fresh one starts (an over-long
        # line's tail is being dropped until its LF, and that state is not visible).
        self._clean = rest.endswith(b"\n") and not parser.has_partial

    # -- TLS ---------------------------------------------------------------------------

    @property
    def unsolicited(self) -> Reply | None:
        """A reply already received that nothing asked for yet (read before sending)."""
        return self._ready[0] if self._ready else None

    def starttls(self, context: ssl.SSLContext, timeout: float) -> None:
        """TLS in place after the 220 to STARTTLS; clear text that followed it is dropped.

        Bytes after the 220 came in clear text and could have been injected by anyone on the
        path (CVE-2011-0411): they are never taken as replies.
        """
        if self._eof or self._send_failed is not None:
            raise ConnectionFailed("cannot start TLS: the connection is closed")
        self.injected = bool(self._ready) or self._parser.has_partial
        self._ready.clear()
        self._parser = ReplyParser()
        self._clean = True
        self._handshake(context, timeout)

    def _handshake(self, context: ssl.SSLContext, timeout: float, implicit: bool = False) -> None:
        where = f"{self.host}:{self.port}"
        deadline = time.monotonic() + timeout
        try:
            tls = context.wrap_bio(
                self._incoming, self._outgoing, server_hostname=self.host.strip("[]")
            )
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._flush()
                    raw = self._recv_raw(deadline)
                    if not raw:
                        raise ConnectionResetError from None
                    self._incoming.write(raw)  # handshake bytes: not SMTP, not observed
            self._flush()  # the client's Finished
        except TimeoutError:
            self._mark_closed("the TLS handshake timed out")
            raise ConnectionFailed(
                f"TLS handshake with {where} got no answer within {timeout:g} s"
            ) from None
        except (OSError, ValueError) as error:  # ssl.SSLError, a reset, an EOF in the middle
            self._mark_closed("the TLS handshake failed")
            reason = _ssl_reason(error)
            if implicit and "wrong version number" in reason:
                reason += " — the server does not speak TLS here; does it expect STARTTLS?"
            raise ConnectionFailed(f"TLS handshake with {where} failed: {reason}") from None
        self._tls = tls
        cipher = tls.cipher()
        self.tls = (tls.version() or "unknown", cipher[0] if cipher else "unknown")

    # -- closing -----------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._eof

    def close(self) -> None:
        self._mark_closed("closed by the client")
        with contextlib.suppress(OSError):
            self.sock.close()

    def abort(self) -> None:
        """From another thread: wake a blocked read or write, which then sees the end."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def _mark_closed(self, reason: str) -> None:
        if self._closed_reason is None:
            self._closed_reason = reason
        self._eof = True

    def _notify(self, direction: Literal["sent", "received"], data: bytes) -> None:
        assert self.observer is not None
        self.observer(WireEvent(direction, data, time.monotonic(), self.tls is not None))


# --------------------------------------------------------------------------- the plan


@dataclass(slots=True)
class _Out:
    send: Send
    wire: bytes | None  # None: placeholders are computed when the line is sent
    verb: str  # upper-case first word; "." for the end of data; "" for message content
    ends: bool  # ends a pipelined group
    content: bool  # a message line: the server answers nothing until the final "."


@dataclass(slots=True)
class _In:
    expect: Expect
    answers: str  # the command this reply answers: a verb, ".", AUTH or GREETING


_Step = _Out | _In | Directive


def _plan(script: Script) -> list[_Step]:
    steps: list[_Step] = []
    add = steps.append
    answers = GREETING
    challenged = False  # the last expectation was a 334: the next line answers it
    # A long script repeats its lines (MAIL FROM, DATA, ".", the same header): work each
    # distinct line out once. Commands and message lines are told apart: "." differs.
    known: tuple[dict[str, tuple[bytes | None, str, bool, bool]], ...] = ({}, {})
    for item in script.items:
        if isinstance(item, Send) and item.chunk is not None:  # BDAT chunk data: exact bytes
            add(_Out(item, item.chunk_bytes(), "", False, True))
        elif isinstance(item, Send):
            data = item.data
            found = known[data].get(item.text)
            if found is None:
                if data:
                    verb = "." if item.end_of_data else ""
                else:
                    words = item.text.split(None, 1)
                    verb = words[0].upper() if words else ""
                parts = item.parts
                if not parts:
                    wire: bytes | None = b"\r\n"
                elif len(parts) == 1 and isinstance(parts[0], str):
                    wire = wire_bytes(parts[0])
                else:  # the parser merges literal text, so several parts means a placeholder
                    wire = None
                found = (wire, verb, verb in GROUP_ENDING, data and not verb)
                known[data][item.text] = found
            wire, verb, ends, content = found
            add(_Out(item, wire, verb, ends, content))
            if not content:
                answers = "AUTH" if challenged else verb
            challenged = False
        elif isinstance(item, Expect):
            add(_In(item, answers))
            challenged = item.code == 334
        elif isinstance(item, Directive) and item.name in ("connect", "closed"):
            add(item)  # @tls and @time only inform
            answers, challenged = GREETING, False
    return steps


# --------------------------------------------------------------------------- the replayer


def _visible(text: str) -> str:
    """Server text for a terminal: control characters shown as escapes, never obeyed."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _got(reply: Reply) -> str:
    first = _visible(reply.lines[0]) if reply.lines else ""
    more = " …" if len(reply.lines) > 1 else ""
    if reply.code is None:
        return f"a reply without a code: {first!r}{more}"
    return f"{reply.code} {first}".rstrip() + more


class Replayer:
    """One replay of one script against one server address; blocking, in one thread.

    `step` (for --step) is called before each group is sent and returns False once the
    input has ended. `abort()` may be called from another thread.
    """

    def __init__(
        self,
        script: Script,
        host: str,
        port: int,
        options: ReplayOptions,
        *,
        out: TextIO,
        err: TextIO,
        observer: WireObserver | None = None,
        step: Callable[[], bool] | None = None,
    ) -> None:
        self.script = script
        self.host, self.port = host, port
        self.options = options
        self.out, self.err = out, err
        self.observer = observer
        self.step = step
        self.steps = _plan(script)
        self._tls_context: ssl.SSLContext | None = None
        self.link: _Link | None = None
        self.capabilities: Capabilities | None = None
        self.replies = 0  # replies read on the current connection
        self.last_reply: Reply | None = None
        self.commands = 0
        self.matched = 0
        self.groups = 0
        self.noted_no_pipelining = False
        self.script_has_starttls = any(
            isinstance(s, _Out) and s.verb == "STARTTLS" for s in self.steps
        )
        self.show = not options.quiet
        self.pacing = self.show or options.step or options.delay > 0
        self.shown_content = 0
        self._aborted = threading.Event()

    # -- running -------------------------------------------------------------------------

    def run(self) -> ReplayResult:
        start = time.perf_counter()
        status = EXIT_OK
        message = ""
        try:
            self._run_steps()
        except Stop as stop:
            status, message = stop.status, stop.message
        except _Aborted:
            status = EXIT_CONNECTION
        finally:
            if self.link is not None:
                self.link.close()
                self.link = None
        result = ReplayResult(status, self.commands, self.matched, time.perf_counter() - start)
        if self._aborted.is_set():
            return result  # nobody is listening any more
        if message:
            stream = self.out if status == EXIT_MISMATCH else self.err
            stream.write(message + "\n")
        if status == EXIT_OK:
            self.out.write(result.summary() + "\n")
        elif status == EXIT_MISMATCH:
            self.out.write("stopped: " + result.summary() + "\n")
        return result

    def abort(self) -> None:
        """Stop a replay running in another thread: wake whatever it waits for."""
        self._aborted.set()
        link = self.link
        if link is not None:
            link.abort()

    def _run_steps(self) -> None:
        steps = self.steps
        count = len(steps)
        i = 0
        while i < count:
            step = steps[i]
            if isinstance(step, _In):
                if self.link is None:
                    self._connect()
                self._check(step)
                i += 1
            elif isinstance(step, _Out):
                i = self._send_group(i)
            else:
                self._directive(step)
                i += 1

    def _send_group(self, first: int) -> int:
        """Write the group starting at `first` in one go, then check its replies in order."""
        steps = self.steps
        head = steps[first]
        assert isinstance(head, _Out)
        if self.link is None:
            self._connect()
        link = self.link
        assert link is not None
        if self.replies == 0:
            self._implicit_greeting(head.send)
        if self.options.starttls and not self.script_has_starttls and link.tls is None:
            self._inject_starttls(head.send)
        pipelining = self.options.pipeline and self._pipelining_offered()
        # An answer to a 334 challenge must wait for the challenge, and ends its group.
        challenged = self.last_reply is not None and self.last_reply.code == 334
        end, sends, commands, data = self._group(first, pipelining, challenged)
        if data is None:  # placeholders: computed now, from the reply just before
            data = b"".join([s.wire if s.wire is not None else self._resolve(s) for s in sends])
        if self.pacing:
            self._pace(sends)
        if link.unsolicited is not None:  # every reply expected so far was read already
            reply = link.unsolicited
            if self.show:
                self._print_reply(reply, False)
            raise Stop(
                EXIT_MISMATCH,
                f"{self.script.source}:{head.send.line_no}: the server sent "
                f"{_got(reply)} before this line was sent: a reply to no command",
            )
        self.commands += commands
        link.send(data)
        if pipelining:
            for index in range(first, end):
                step = steps[index]
                if isinstance(step, _In):
                    self._check(step)
        return end

    def _group(
        self, first: int, pipelining: bool, challenged: bool
    ) -> tuple[int, list[_Out], int, bytes | None]:
        """The group from `first`: where it ends, its lines, commands and bytes (None: to
        be computed when sent, for placeholders)."""
        steps = self.steps
        end = first
        count = len(steps)
        sends: list[_Out] = []
        commands = 0
        static = True
        last: _Out | None = None
        ends = False  # the last line sent ends the group
        while end < count:
            step = steps[end]
            if isinstance(step, _Out):
                chunk = step.send.chunk is not None  # goes with its BDAT, in the same write
                if (
                    last
                    and not last.content
                    and not chunk
                    and (ends or not pipelining or challenged)
                ):
                    break
                last = step
                # Pipelined, a message's "." does not end its group: the next transaction
                # may follow in the same write (RFC 2920 §3.1: content may start a group).
                ends = step.ends and not (pipelining and step.verb == ".")
                sends.append(step)
                commands += not step.content
                static = static and step.wire is not None
            elif last is None or not isinstance(step, _In) or not pipelining or ends:
                break
            end += 1
        data = b"".join([s.wire for s in sends if s.wire is not None]) if static else None
        return end, sends, commands, data

    def _resolve(self, out: _Out) -> bytes:
        try:
            line = resolve(out.send, self.options.variables, self.last_reply)
        except ResolveError as error:
            raise Stop(EXIT_SCRIPT, f"{self.script.source}:{out.send.line_no}: {error}") from None
        return wire_bytes(line)

    def _pace(self, sends: list[_Out]) -> None:
        """Show the lines; --delay between groups and --step before each: classroom speeds."""
        if self.options.delay > 0 and self.groups and self._aborted.wait(self.options.delay):
            raise _Aborted
        self.groups += 1
        stepping = self.options.step and self.step is not None
        if self.show or stepping:
            self._print_sends(sends)
        if stepping:
            assert self.step is not None
            self.out.flush()
            if not self.step():
                self.step = None  # input ended: run the rest without stopping

    def _print_sends(self, sends: list[_Out]) -> None:
        write = self.out.write
        for s in sends:
            if s.content:  # a message line, or BDAT chunk data: the first few are shown
                self.shown_content += 1
                hidden = self.shown_content - SHOWN_CONTENT_LINES
                if s.send.chunk_ends:
                    self.shown_content = 0
                if hidden > 0:
                    if s.send.chunk_ends:
                        write(f"C: … ({hidden} more lines of the chunk)\n")
                    continue
            elif s.verb == ".":
                hidden = self.shown_content - SHOWN_CONTENT_LINES
                if hidden > 0:
                    write(f"C: … ({hidden} more message lines)\n")
                self.shown_content = 0
            # The line as the script writes it: a secret stays its placeholder.
            write(f"C: {s.send.text}".rstrip(" ") + "\n")
        if self.options.step:
            self.out.flush()

    # -- replies -------------------------------------------------------------------------

    def _read(self, line_no: int, waiting_for: str) -> Reply:
        assert self.link is not None
        result = self.link.read_reply()
        if not isinstance(result, Reply):
            self._lost(result, line_no, waiting_for)
        self.replies += 1
        return result

    def _lost(self, result: Closed | TimedOut, line_no: int, waiting_for: str) -> NoReturn:
        if self._aborted.is_set():
            raise _Aborted
        where = f"{self.script.source}:{line_no}"
        if isinstance(result, Closed):
            raise Stop(EXIT_CONNECTION, f"{where}: {result.reason} while waiting for {waiting_for}")
        raise Stop(
            EXIT_CONNECTION,
            f"{where}: no reply within {result.seconds:g} s (waiting for {waiting_for})",
        )

    def _check(self, step: _In) -> None:
        """Read the next reply and hold it against `step`: the hot path of every replay."""
        expect = step.expect
        assert self.link is not None
        reply = self.link.read_reply()
        if not isinstance(reply, Reply):
            self._lost(reply, expect.line_no, expect.describe())
        self.replies += 1
        self.last_reply = reply
        if reply.problems and any(getattr(p, "id", "") in _CUT_SHORT for p in reply.problems):
            if self.show:
                self._print_reply(reply, False)
            raise Stop(
                EXIT_CONNECTION,
                f"{self.script.source}:{expect.line_no}: the connection broke in the middle of "
                f"a reply (waiting for {expect.describe()})",
            )
        if expect.code is not None and reply.code == expect.code and not expect.patterns:
            problem = None  # the usual case, without building the reason string
        else:
            problem = expect.mismatch(reply)
        if self.show:
            self._print_reply(reply, problem is None)
        if problem is not None:
            raise Stop(EXIT_MISMATCH, self._report(expect, reply, problem, step.answers))
        self.matched += 1
        verb = step.answers
        if verb == "EHLO" or verb == "HELO":
            self._learn(reply, verb)
        elif verb == "STARTTLS" and reply.code == 220:
            self._starttls(expect.line_no)

    def _print_reply(self, reply: Reply, ok: bool, mark: str | None = None) -> None:
        code = f"{reply.code:03d}" if reply.code is not None else ""
        lines = reply.lines or ("",)
        last = len(lines) - 1
        tail = mark if mark is not None else ("✓" if ok else "✗")
        chunks = []
        for index, text in enumerate(lines):
            separator = "-" if index < last else " "
            line = f"S: {code}{separator}{_visible(text)}" if code else f"S: {_visible(text)}"
            chunks.append(line + ("  " + tail if index == last else "") + "\n")
        self.out.write("".join(chunks))

    def _report(self, expect: Expect, reply: Reply, problem: str, answers: str) -> str:
        where = f"{self.script.source}:{expect.line_no}"
        if problem.startswith("expected the text"):
            head = f"{where}: {problem}"
        else:
            head = f"{where}: {problem.split(', got ')[0]}, got {_got(reply)}"
        return "\n".join([head, *self._explain(reply, answers)])

    def _explain(self, reply: Reply, answers: str) -> list[str]:
        """One or two lines from the knowledge base: what the code means, what to do next."""
        if reply.code is None:
            return []
        from smtp_tutor.core.knowledge import load_knowledge

        kb = load_knowledge()
        lang = self.options.lang
        lines = []
        info = kb.reply(reply.code, lang, command=answers)
        if info is not None:
            lines.append(f"  ↳ {reply.code} {info.title}: {info.next_step}")
        if reply.enhanced:
            detail = kb.enhanced(reply.enhanced, lang)
            if detail is not None:
                lines.append(f"  ↳ {reply.enhanced} {detail.title}")
        return lines

    def _learn(self, reply: Reply, verb: str) -> None:
        if reply.code != 250:
            return
        self.capabilities = Capabilities.from_ehlo(reply) if verb == "EHLO" else Capabilities()
        if (
            self.options.pipeline
            and not self.noted_no_pipelining
            and not self._pipelining_offered()
        ):
            self.noted_no_pipelining = True
            self.err.write(
                "note: the server does not advertise PIPELINING; sending one command at a time\n"
            )

    def _pipelining_offered(self) -> bool:
        return self.capabilities is not None and "PIPELINING" in self.capabilities.keywords

    # -- connections and TLS -------------------------------------------------------------

    def _tls(self) -> ssl.SSLContext:
        """Made on first use: loading the trust store costs a tenth of a second."""
        if self._tls_context is None:
            from smtp_tutor.tls import client_context

            verify = self.options.verify or self.options.cafile is not None
            try:
                self._tls_context = client_context(verify=verify, cafile=self.options.cafile)
            except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
                reason = getattr(error, "strerror", None) or str(error)
                raise Stop(
                    EXIT_CONNECTION, f"cannot use the CA file {self.options.cafile}: {reason}"
                ) from None
        return self._tls_context

    def _connect(self) -> None:
        context = self._tls() if self.options.implicit_tls else None
        try:
            self.link = _Link.open(
                self.host,
                self.port,
                timeout=self.options.timeout,
                tls=context,
                observer=self.observer,
            )
        except ConnectionFailed as error:
            raise Stop(EXIT_CONNECTION, str(error)) from None
        if self._aborted.is_set():  # the abort came while connecting
            raise _Aborted
        self.capabilities = None
        self.replies = 0
        self.last_reply = None
        if self.show:
            tls = " tls" if self.link.tls is not None else ""
            self.out.write(f"@connect {self.host} {self.port}{tls}\n")
            self._print_tls()

    def _print_tls(self) -> None:
        tls = self.link.tls if self.link is not None else None
        if self.show and tls is not None:
            self.out.write(f"@tls {tls[0]} {tls[1]}\n")

    def _starttls(self, line_no: int) -> None:
        assert self.link is not None
        try:
            self.link.starttls(self._tls(), timeout=self.options.timeout)
        except ConnectionFailed as error:
            if self._aborted.is_set():
                raise _Aborted from None
            raise Stop(EXIT_CONNECTION, f"{self.script.source}:{line_no}: {error}") from None
        self.capabilities = None
        self._print_tls()
        if self.link.injected:
            raise Stop(
                EXIT_MISMATCH,
                f"{self.script.source}:{line_no}: the server sent clear text after its 220 to "
                "STARTTLS; it was thrown away (possible STARTTLS injection, CVE-2011-0411)",
            )

    def _implicit_greeting(self, send: Send) -> None:
        """A script that starts with a C: line still gets the server's greeting read first."""
        reply = self._read(send.line_no, "the greeting")
        self.last_reply = reply
        ok = reply.code == 220
        if self.show:
            self._print_reply(reply, ok, ("✓" if ok else "✗") + " (greeting, not in the script)")
        if not ok:
            report = self._report(
                Expect(send.line_no, 220, None, (), (), send.line_no),
                reply,
                "expected a 220 greeting before this line",
                GREETING,
            )
            raise Stop(EXIT_MISMATCH, report)

    def _inject_starttls(self, send: Send) -> None:
        """--starttls: EHLO, STARTTLS and the handshake before the script's first line."""
        assert self.link is not None
        where = f"{self.script.source}:{send.line_no}"
        name = self._ehlo_name()
        for line, verb, code in ((f"EHLO {name}", "EHLO", 250), ("STARTTLS", "STARTTLS", 220)):
            if self.show:
                self.out.write(f"C: {line}  (--starttls)\n")
            self.link.send(wire_bytes(line))
            reply = self._read(send.line_no, f"the answer to {verb} (--starttls)")
            ok = reply.code == code
            if self.show:
                self._print_reply(reply, ok)
            if not ok:
                raise Stop(EXIT_CONNECTION, f"{where}: --starttls: {verb} got {_got(reply)}")
            if verb == "EHLO" and "STARTTLS" not in Capabilities.from_ehlo(reply).keywords:
                raise Stop(
                    EXIT_CONNECTION, f"{where}: --starttls: the server does not offer STARTTLS"
                )
        self._starttls(send.line_no)
        self.last_reply = None

    def _ehlo_name(self) -> str:
        for step in self.steps:
            if isinstance(step, _Out) and step.verb in ("EHLO", "HELO") and step.wire is not None:
                words = step.send.text.split()
                if len(words) > 1 and "{" not in words[1]:
                    return words[1]
        return "localhost"

    # -- directives ----------------------------------------------------------------------

    def _directive(self, directive: Directive) -> None:
        link = self.link
        if directive.name == "connect":
            # The address comes from the command line; a second @connect is a reconnect.
            if link is not None:
                link.close()
                self.link = None
            elif len(directive.args) == 3 and not self.options.implicit_tls:
                self.err.write(
                    f"note: {self.script.source}:{directive.line_no}: recorded with TLS from "
                    "the first byte; add --tls to replay it that way\n"
                )
            return
        # @closed: the session ends here. After 221 or 421 the server is done; otherwise it
        # must close the connection itself.
        if link is None:
            return
        ended = self.last_reply is not None and self.last_reply.code in (221, 421)
        if not ended and not link.is_closed:
            result = link.read_reply()
            if isinstance(result, Reply):
                self.last_reply = result
                if self.show:
                    self._print_reply(result, False)
                where = f"{self.script.source}:{directive.line_no}"
                report = f"{where}: expected the server to close the connection, got {_got(result)}"
                raise Stop(EXIT_MISMATCH, report)
            if self._aborted.is_set():
                raise _Aborted
            if not isinstance(result, Closed):
                raise Stop(
                    EXIT_MISMATCH,
                    f"{self.script.source}:{directive.line_no}: expected the server to close "
                    f"the connection; it was still open after {result.seconds:g} s",
                )
        if self.show:
            self.out.write("@closed  ✓\n")
        link.close()
        self.link = None


async def replay(
    script: Script,
    host: str,
    port: int,
    options: ReplayOptions,
    *,
    out: TextIO,
    err: TextIO,
    observer: WireObserver | None = None,
    step_input: StepInput | None = None,
) -> ReplayResult:
    """Replay `script` against HOST:PORT; the outcome is in the result, never an exception.

    The replay itself runs in a worker thread, so `observer` is called from that thread and
    `out`/`err` are written from it; `step_input` still runs on this event loop. Cancelling
    this coroutine ends the replay at once, without output.
    """
    loop = asyncio.get_running_loop()
    replayer: Replayer

    def step() -> bool:
        assert step_input is not None

        async def ask() -> bool:
            return await step_input()

        future = asyncio.run_coroutine_threadsafe(ask(), loop)
        while True:
            try:
                return future.result(timeout=0.1)
            except concurrent.futures.TimeoutError:
                if replayer._aborted.is_set():
                    future.cancel()
                    raise _Aborted from None
            except concurrent.futures.CancelledError:
                raise _Aborted from None

    replayer = Replayer(
        script,
        host,
        port,
        options,
        out=out,
        err=err,
        observer=observer,
        step=step if step_input is not None else None,
    )
    try:
        return await asyncio.to_thread(replayer.run)
    except asyncio.CancelledError:
        replayer.abort()
        raise
