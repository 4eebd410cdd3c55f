"""The blocking connection replay talks over: `Connection`'s contract at smtplib's speed.

Replay needs no concurrency, so it uses a plain blocking socket in a worker thread:
asyncio streams, a timeout per read and the general reply parser made a replaying client
cost several times the CPU of smtplib's loop, and in lockstep every microsecond of it is
waited for (bench/replay.py). `Link` keeps `Connection`'s contract: the same bytes, the
same reply objects, the same one-line failures. On Linux the kernel times its reads out
(SO_RCVTIMEO): no poll() before every read.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import struct
import sys
import time
from collections import deque

from smtp_tutor.client.connection import (
    Closed,
    ConnectionFailed,
    TimedOut,
    WireEvent,
    WireObserver,
    _ssl_reason,
    connect_failure,
)
from smtp_tutor.core.replies import REPLY_LINE_LIMIT, Reply, ReplyParser, parse_enhanced

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    import ssl
    from typing import Literal

#: Bytes asked of the socket per read: a pipelined group's replies arrive in one.
RECV_SIZE = 65536
#: Linux times out a blocking socket's reads and writes itself (SO_RCVTIMEO, SO_SNDTIMEO
#: with a struct timeval of two longs); elsewhere Python's socket timeouts do it.
_KERNEL_TIMEOUTS = sys.platform.startswith("linux")


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
CUT_SHORT = frozenset({"closed_mid_reply", "closed_mid_line"})


class Link:
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
        # TLS's memory buffers, made with the ssl module when a handshake starts: a clear
        # text replay (most of them) never loads it.
        self._incoming: ssl.MemoryBIO | None = None
        self._outgoing: ssl.MemoryBIO | None = None
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
    ) -> Link:
        """Connect (and with `tls`, handshake at once); failures worded as `Connection`'s."""
        address: str | bytes = host.strip("[]")  # "[192.0.2.1]": SMTP's address literal
        if address.isascii():  # getaddrinfo runs a str through the idna codec, whose import
            address = address.encode()  # (stringprep, unicodedata) costs a replay 1-2 ms
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
        assert self._outgoing is not None
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
        import ssl

        assert self._incoming is not None
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
        import ssl

        where = f"{self.host}:{self.port}"
        deadline = time.monotonic() + timeout
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
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
