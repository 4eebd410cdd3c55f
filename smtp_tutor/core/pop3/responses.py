"""Incremental parser for POP3 server responses (RFC 1939 §3, RFC 2449 §3 and §8, RFC 5034 §4).

Feed it whatever bytes arrive, in chunks of any size; it hands back each complete response.
Unlike SMTP, the bytes alone cannot say where a POP3 response ends: ``+OK`` to LIST opens
lines ended by a ``.`` line, ``+OK`` to USER is the whole answer. So for every line sent the
parser is told which kind of answer to expect (`ResponseParser.expect`, in sending order);
the dialogue does that from its table. Without an expectation (the greeting) a response is
one line.

It never raises on server input. Anything that breaks the grammar — no ``+OK``/``-ERR``, a
continuation nobody asked for, bytes that are not UTF-8, a status line over RFC 2449's 512
octets, a body line that begins with an unstuffed dot — still becomes a `Response`, flagged
with the reasons and the raw bytes kept, so a console can show what the server did wrong.
Memory is bounded: a line longer than ``hard_line_limit`` is cut (its head kept, the rest
dropped) and a multiline body over ``max_body`` stops growing (the rest is counted).

A multiline body is kept twice: ``raw`` as it came (byte-stuffed, terminator included) and
``body`` with the stuffing undone and every line ending kept, so a RETR'd message can be
compared byte for byte with the one that was sent.
"""

from __future__ import annotations

import collections
import re
from enum import StrEnum

from smtp_tutor.core import replies
from smtp_tutor.core.catalogue import Said
from smtp_tutor.core.records import field, record

#: RFC 2449 §4: the first line of a response, greeting included, is at most 512 octets with CRLF.
STATUS_LINE_LIMIT = 512
#: Bytes of one line kept before the rest of it is dropped; bounds memory against a hostile server.
HARD_LINE_LIMIT = 64 * 1024
#: Octets of one multiline body kept (unstuffed); what comes after is counted, not stored.
MAX_BODY = 32 * 1024 * 1024

_STATUS = re.compile(rb"^(\+OK|-ERR)(?=[ \t]|$)[ \t]?(.*)$", re.DOTALL | re.IGNORECASE)
_CONTINUATION = re.compile(rb"^\+(?: (.*))?$", re.DOTALL)
# RFC 2449 §8: resp-code = "[" resp-level *("/" resp-level) "]", rchar = VCHAR but "/" and "]".
_CODE = re.compile(r"^\[([\x21-\x2e\x30-\x5c\x5e-\x7e]+(?:/[\x21-\x2e\x30-\x5c\x5e-\x7e]+)*)\]")


class Status(StrEnum):
    """The status indicator a response starts with."""

    OK = "+OK"
    ERR = "-ERR"
    CONTINUE = "+"  # a SASL challenge (RFC 5034 §4): the client answers with a line


class Expect(StrEnum):
    """What the answer to one command looks like, as the dialogue tells the parser."""

    SINGLE = "single"  # one status line
    MULTILINE = "multiline"  # +OK opens lines ended by "."; -ERR stands alone
    SASL = "sasl"  # "+ challenge" or a final +OK/-ERR (AUTH and the answers to it)


class Problem(replies.Problem):
    """What is wrong with a response; words in `data/pop3_problems.toml`, English by default."""

    def __new__(cls, problem_id: str, /, **params: object) -> Problem:
        return Said.__new__(cls, "pop3_problems", problem_id, **params)  # type: ignore[return-value]

    def __reduce__(self) -> tuple[object, ...]:
        return (_problem, (self.key, self.params))


def _problem(key: str, params: dict[str, object]) -> Problem:
    return Problem(key, **params)


@record(frozen=True)
class Response:
    """One complete server response: a status line, and for multiline ones their body."""

    status: Status | None  # None: the line began with neither +OK, -ERR nor "+ "
    text: str  # the status line after the indicator and its space, extended code included
    raw: bytes  # the bytes as received (cut lines and dropped body parts excepted)
    code: str | None = None  # RFC 2449 extended code without brackets: "SYS/TEMP"
    body: bytes | None = None  # multiline only: unstuffed lines with their endings, no "."
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def is_error(self) -> bool:
        return self.status is Status.ERR

    @property
    def is_continuation(self) -> bool:
        return self.status is Status.CONTINUE

    @property
    def malformed(self) -> bool:
        return bool(self.problems)

    @property
    def multiline(self) -> bool:
        return self.body is not None

    @property
    def message(self) -> str:
        """The text without its extended code: what the server says in words."""
        if self.code is None:
            return self.text
        return self.text[len(self.code) + 2 :].lstrip()

    @property
    def code_levels(self) -> tuple[str, ...]:
        """The code's hierarchy, most general first: ``SYS/TEMP`` → ("SYS", "TEMP")."""
        return tuple(self.code.split("/")) if self.code else ()

    @property
    def status_line(self) -> str:
        """The first line as it reads on the wire, without CRLF (decoded)."""
        indicator = self.status.value if self.status else ""
        if self.status is None:
            return self.text
        return f"{indicator} {self.text}" if self.text or self.is_continuation else indicator

    @property
    def lines(self) -> tuple[str, ...]:
        """The body's lines, decoded (undecodable bytes replaced), without their endings."""
        return tuple(line.decode("utf-8", errors="replace") for line in body_lines(self.body))


def body_lines(body: bytes | None) -> list[bytes]:
    """A body split into lines without their CRLF (or bare LF); a lone CR stays inside."""
    if not body:
        return []
    lines = body.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def byte_stuff(body: bytes) -> bytes:
    """The wire form of a multiline body: a dot before each line starting with one, then ".".

    A body that does not end with a line ending gets CRLF first, as every server sends it.
    """
    if body and not body.endswith(b"\n"):
        body += b"\r\n"
    lines = body.splitlines(keepends=True) if body else []
    stuffed = b"".join(b"." + line if line.startswith(b".") else line for line in lines)
    return stuffed + b".\r\n"


def make_response(status: Status, text: str = "", body: bytes | None = None) -> Response:
    """A well-formed response from its parts (for tests, replay and the sandbox)."""
    head = status.value + (" " + text if text or status is Status.CONTINUE else "")
    raw = head.encode("utf-8") + b"\r\n"
    if body is not None:
        raw += byte_stuff(body)
        if body and not body.endswith(b"\n"):
            body += b"\r\n"
    match = _CODE.match(text)
    return Response(status, text, raw, match.group(1) if match else None, body)


@record
class _Pending:
    """A multiline response whose terminating "." has not arrived yet."""

    head: Response
    raw: bytearray
    body: bytearray = field(default_factory=bytearray)
    problems: list[Problem] = field(default_factory=list)
    dropped: int = 0  # body octets not kept (over max_body)

    def add_problem(self, problem: Problem) -> None:
        if problem not in self.problems:
            self.problems.append(problem)


class ResponseParser:
    """Turns a stream of bytes from a POP3 server into `Response` objects."""

    def __init__(
        self,
        line_limit: int = STATUS_LINE_LIMIT,
        hard_line_limit: int = HARD_LINE_LIMIT,
        max_body: int = MAX_BODY,
    ) -> None:
        self._line_limit = line_limit
        self._hard_limit = hard_line_limit
        self._max_body = max_body
        self._buffer = bytearray()
        self._expected: collections.deque[Expect] = collections.deque()
        self._pending: _Pending | None = None
        self._discarding = False  # inside a cut line: bytes up to its LF are dropped
        self._cut_in_body = False  # the cut line belongs to a multiline body

    def expect(self, kind: Expect) -> None:
        """Say what the answer to the next line sent looks like (call once per line, in order)."""
        self._expected.append(kind)

    @property
    def expected(self) -> tuple[Expect, ...]:
        """Expectations not yet matched by a status line, oldest first."""
        return tuple(self._expected)

    @property
    def has_partial(self) -> bool:
        """True while part of a response has arrived but not its end."""
        return bool(self._buffer) or self._pending is not None or self._discarding

    def feed(self, data: bytes) -> list[Response]:
        """Add bytes from the server; return every response they complete."""
        responses: list[Response] = []
        self._buffer.extend(data)
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if not self._discarding and len(self._buffer) > self._hard_limit:
                    head = bytes(self._buffer[: self._hard_limit])
                    self._start_cut(head, responses)
                if self._discarding:
                    # Keep the last byte: a CR there may begin the CRLF that ends the cut line.
                    del self._buffer[:-1]
                break
            line = bytes(self._buffer[: newline + 1])
            del self._buffer[: newline + 1]
            if self._discarding:
                self._end_cut(line)
            elif newline > self._hard_limit:  # more than the limit before the LF
                self._start_cut(line[: self._hard_limit], responses)
                self._end_cut(line)
            else:
                body, ending = _split_ending(line)
                self._take(body, ending, responses)
        return responses

    def feed_eof(self) -> list[Response]:
        """The server closed the connection: what is half-received becomes a flagged response."""
        responses: list[Response] = []
        if self._buffer and not self._discarding:
            self._take(bytes(self._buffer), b"", responses)
        self._buffer.clear()
        self._discarding = False
        if self._pending is not None:
            self._pending.add_problem(Problem("closed_mid_response"))
            responses.append(self._finish())
        return responses

    def reset(self) -> bytes:
        """Forget everything (after STLS's +OK); return the bytes that were still unread."""
        leftover = bytes(self._pending.raw) if self._pending else b""
        leftover += bytes(self._buffer)
        self._buffer.clear()
        self._expected.clear()
        self._pending = None
        self._discarding = self._cut_in_body = False
        return leftover

    # -- internals ---------------------------------------------------------------------

    def _start_cut(self, head: bytes, responses: list[Response]) -> None:
        """A line over the hard limit: take its head now, drop the rest up to its LF."""
        self._discarding = True
        self._cut_in_body = self._pending is not None
        self._take(head, b"", responses, cut=True)

    def _end_cut(self, tail: bytes) -> None:
        """The LF of a cut line arrived: a body line gets its ending back, so lines stay apart."""
        self._discarding = False
        if self._cut_in_body and self._pending is not None:
            ending = b"\r\n" if tail.endswith(b"\r\n") else b"\n"
            self._add_body(self._pending, ending, ending)
        self._cut_in_body = False

    def _take(self, line: bytes, ending: bytes, out: list[Response], cut: bool = False) -> None:
        if self._pending is not None:
            self._take_body_line(self._pending, line, ending, cut, out)
            return
        expected = self._expected.popleft() if self._expected else Expect.SINGLE
        response = self._status_line(line, ending, expected, cut)
        if response.ok and expected is Expect.MULTILINE:
            self._pending = _Pending(head=response, raw=bytearray(response.raw))
        else:
            out.append(response)

    def _status_line(self, line: bytes, ending: bytes, expected: Expect, cut: bool) -> Response:
        problems = self._line_problems(line, ending, cut)
        if cut or len(line) + len(ending) > self._line_limit:
            problems.append(Problem("line_too_long", limit=self._line_limit))
        decoded = line.decode("utf-8", errors="replace")
        status: Status | None = None
        text = decoded
        match = _STATUS.match(line)
        continuation = _CONTINUATION.match(line) if match is None else None
        if match is not None:
            status = Status(match.group(1).upper().decode("ascii"))
            if match.group(1) != status.value.encode("ascii"):
                problems.insert(0, Problem("status_case", status=status.value))
            text = match.group(2).decode("utf-8", errors="replace")
        elif continuation is not None:
            status = Status.CONTINUE
            text = (continuation.group(1) or b"").decode("utf-8", errors="replace")
            if expected is not Expect.SASL:
                problems.insert(0, Problem("unexpected_continuation"))
        else:
            problems.insert(0, Problem("no_status"))
        code = None
        if status in (Status.OK, Status.ERR):
            code_match = _CODE.match(text)
            code = code_match.group(1) if code_match else None
        raw = line + ending
        return Response(status, text, raw, code, None, tuple(dict.fromkeys(problems)))

    def _ending_problems(self, ending: bytes, cut: bool) -> list[Problem]:
        """What the end of a line says: cut short, a bare LF, or the connection closed."""
        if cut:
            return [Problem("line_cut", limit=self._hard_limit)]
        if ending == b"\n":
            return [Problem("bare_lf")]
        return [Problem("closed_mid_line")] if ending == b"" else []

    def _line_problems(self, line: bytes, ending: bytes, cut: bool) -> list[Problem]:
        problems = self._ending_problems(ending, cut)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            if not cut:  # a cut may split a character: only whole lines are judged
                problems.append(Problem("not_utf8"))
        return problems

    def _take_body_line(
        self, pending: _Pending, line: bytes, ending: bytes, cut: bool, out: list[Response]
    ) -> None:
        for problem in self._ending_problems(ending, cut):
            pending.add_problem(problem)
        if line == b"." and not cut:
            pending.raw.extend(line + ending)
            out.append(self._finish())
            return
        content = line
        if line.startswith(b"."):
            content = line[1:]  # RFC 1939 §3: the first octet goes, whatever follows it
            if not line.startswith(b".."):
                pending.add_problem(Problem("dot_not_stuffed"))
        self._add_body(pending, content + ending, line + ending)

    def _add_body(self, pending: _Pending, content: bytes, raw: bytes) -> None:
        if pending.dropped or len(pending.body) + len(content) > self._max_body:
            pending.dropped += len(content)
            return
        pending.body.extend(content)
        pending.raw.extend(raw)

    def _finish(self) -> Response:
        pending = self._pending
        assert pending is not None
        self._pending = None
        problems = list(pending.head.problems)
        for problem in pending.problems:
            if problem not in problems:
                problems.append(problem)
        if pending.dropped:
            problems.append(Problem("too_big", limit=self._max_body, dropped=pending.dropped))
        head = pending.head
        raw, body = bytes(pending.raw), bytes(pending.body)
        return Response(head.status, head.text, raw, head.code, body, tuple(problems))


def _split_ending(line: bytes) -> tuple[bytes, bytes]:
    if line.endswith(b"\r\n"):
        return line[:-2], b"\r\n"
    return line[:-1], b"\n"
