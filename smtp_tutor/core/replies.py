"""Incremental parser for SMTP server replies (RFC 5321 §4.2).

Feed it whatever bytes arrive, in chunks of any size; it hands back each complete reply.
It never raises on server input: anything that breaks the grammar — a line without a code,
mixed codes inside one multiline reply, bytes that are not UTF-8, a line longer than the
RFC allows — still becomes a `Reply`, flagged `malformed` with the reason and the raw bytes
kept, so a console can show exactly what the server did wrong.
"""

from __future__ import annotations

import re

from smtp_tutor.core.catalogue import Said
from smtp_tutor.core.records import field, record

#: RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including the CRLF.
REPLY_LINE_LIMIT = 512
#: Bytes of one line kept before the rest is discarded; bounds memory against a hostile server.
HARD_LINE_LIMIT = 64 * 1024
#: Lines of one reply kept (text and raw bytes); a server sending more gets the rest counted.
MAX_REPLY_LINES = 1000

_LINE = re.compile(rb"^(\d{3})([ -]?)(.*)$", re.DOTALL)
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


class Problem(Said):
    """What is wrong with a reply: reads as English text, carries an id for other languages.

    The words live in `data/problems.toml`; `Problem("bare_lf")` is the English sentence, and
    `problem.key` / `problem.params` let a console say it in the user's language.
    """

    def __new__(cls, problem_id: str, /, **params: object) -> Problem:
        return super().__new__(cls, "problems", problem_id, **params)  # type: ignore[return-value]

    @property
    def id(self) -> str:
        return self.key

    def __reduce__(self) -> tuple[object, ...]:
        return (_problem, (self.key, self.params))


def _problem(key: str, params: dict[str, object]) -> Problem:
    return Problem(key, **params)


@record(frozen=True)
class Reply:
    """One complete server reply: one line, or several that share a code."""

    code: int | None
    lines: tuple[str, ...]
    raw: bytes
    problems: tuple[str, ...] = ()
    enhanced: str | None = field(default=None)

    @property
    def malformed(self) -> bool:
        return bool(self.problems)

    @property
    def text(self) -> str:
        """The text of every line after the code, joined with newlines."""
        return "\n".join(self.lines)

    @property
    def message_lines(self) -> tuple[str, ...]:
        """The lines without a leading enhanced status code, for explanations and display."""
        return tuple(_ENHANCED.sub("", line, count=1).lstrip() for line in self.lines)

    @property
    def code_class(self) -> int | None:
        """The first digit: 2 done, 3 go on, 4 try later, 5 do not repeat unchanged."""
        if self.code is None:
            return None
        return self.code // 100

    @property
    def is_multiline(self) -> bool:
        return len(self.lines) > 1

    @property
    def is_positive(self) -> bool:
        return self.code_class in (2, 3)

    @property
    def is_error(self) -> bool:
        return self.code_class in (4, 5)


def parse_enhanced(text: str) -> str | None:
    """The RFC 3463 `class.subject.detail` at the start of a reply text, if there is one."""
    match = _ENHANCED.match(text)
    return match.group(0) if match else None


def make_reply(code: int, *lines: str) -> Reply:
    """Build a well-formed reply from its parts (for tests, replay and the sandbox's docs)."""
    texts = lines or ("",)
    raw = b"".join(
        f"{code}{'-' if i < len(texts) - 1 else ' '}{text}\r\n".encode()
        for i, text in enumerate(texts)
    )
    return Reply(code=code, lines=tuple(texts), raw=raw, enhanced=parse_enhanced(texts[0]))


@record
class _Pending:
    """The lines of a multiline reply collected so far."""

    code: int | None = None
    lines: list[str] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    problems: list[Problem] = field(default_factory=list)
    dropped_lines: int = 0
    last_size: int = 0  # raw bytes of the last line kept

    def add_problem(self, problem: Problem) -> None:
        if problem not in self.problems:
            self.problems.append(problem)


class ReplyParser:
    """Turns a stream of bytes from the server into `Reply` objects."""

    def __init__(
        self,
        line_limit: int = REPLY_LINE_LIMIT,
        hard_line_limit: int = HARD_LINE_LIMIT,
        max_lines: int = MAX_REPLY_LINES,
    ) -> None:
        self._line_limit = line_limit
        self._hard_limit = hard_line_limit
        self._max_lines = max_lines
        self._buffer = bytearray()
        self._discarding = False  # inside an over-long line whose head was already reported
        self._pending: _Pending | None = None

    @property
    def has_partial(self) -> bool:
        """True while part of a reply has arrived but not its last line."""
        return bool(self._buffer) or self._pending is not None

    def feed(self, data: bytes) -> list[Reply]:
        """Add bytes from the server; return every reply they complete."""
        replies: list[Reply] = []
        self._buffer.extend(data)
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > self._hard_limit and not self._discarding:
                    head = bytes(self._buffer[: self._hard_limit])
                    del self._buffer[:]
                    self._discarding = True
                    replies.extend(self._flush_pending(Problem("cut_by_overlong")))
                    replies.append(self._overlong(head))
                elif self._discarding:
                    del self._buffer[:]
                break
            line = bytes(self._buffer[: newline + 1])
            del self._buffer[: newline + 1]
            if self._discarding:
                self._discarding = False
                continue
            reply = self._take_line(line)
            if reply is not None:
                replies.append(reply)
        return replies

    def feed_eof(self) -> list[Reply]:
        """The server closed the connection: whatever is half-received becomes a malformed reply."""
        replies: list[Reply] = []
        if self._buffer and not self._discarding:
            line = bytes(self._buffer)
            del self._buffer[:]
            reply = self._take_line(line, complete=False)
            if reply is not None:
                replies.append(reply)
        self._discarding = False
        self._buffer.clear()
        replies.extend(self._flush_pending(Problem("closed_mid_reply")))
        return replies

    # -- internals ---------------------------------------------------------------------

    def _overlong(self, head: bytes) -> Reply:
        match = _LINE.match(head)
        code = int(match.group(1)) if match else None
        # Like any reply's lines, the text starts after the code and its separator.
        body = head[3 + len(match.group(2)) :] if match else head
        text = body.decode("utf-8", errors="replace")
        problem = Problem("overlong_unterminated", limit=self._hard_limit)
        return Reply(code=code, lines=(text[:200] + "…",), raw=head, problems=(problem,))

    def _flush_pending(self, problem: Problem) -> list[Reply]:
        if self._pending is None:
            return []
        pending = self._pending
        pending.add_problem(problem)
        self._pending = None
        return [self._finish(pending)]

    def _finish(self, pending: _Pending) -> Reply:
        if pending.dropped_lines:
            pending.add_problem(
                Problem("too_many_lines", limit=self._max_lines, dropped=pending.dropped_lines)
            )
        lines = tuple(pending.lines)
        return Reply(
            code=pending.code,
            lines=lines,
            raw=bytes(pending.raw),
            problems=tuple(pending.problems),
            enhanced=parse_enhanced(lines[0]) if lines else None,
        )

    def _take_line(self, line: bytes, complete: bool = True) -> Reply | None:
        body = line
        problems: list[Problem] = []
        if body.endswith(b"\r\n"):
            body = body[:-2]
        elif body.endswith(b"\n"):
            body = body[:-1]
            problems.append(Problem("bare_lf"))
        elif not complete:
            problems.append(Problem("closed_mid_line"))
        if len(line) > self._line_limit:
            problems.append(Problem("line_too_long", limit=self._line_limit))
        try:
            decoded = body.decode("utf-8")
        except UnicodeDecodeError:
            decoded = body.decode("utf-8", errors="replace")
            problems.append(Problem("not_utf8"))

        match = _LINE.match(body)
        if match is None:
            problems.insert(0, Problem("no_code"))
            replies = self._flush_pending(Problem("interrupted"))
            # A line without a code cannot say whether more follows: it stands alone.
            lone = Reply(code=None, lines=(decoded,), raw=line, problems=tuple(problems))
            if replies:
                # Keep the interrupted reply's raw bytes visible beside the stray line.
                return self._merge(replies[0], lone)
            return lone

        code = int(match.group(1))
        separator = match.group(2)
        text = decoded[4:] if separator else decoded[3:]
        if separator == b"" and len(body) > 3:
            problems.append(Problem("no_separator"))
        if not (2 <= code // 100 <= 5):
            problems.append(Problem("code_out_of_range", code=code))
        elif (code // 10) % 10 > 5:
            problems.append(Problem("second_digit", code=code))

        pending = self._pending or _Pending(code=code)
        if self._pending is None:
            self._pending = pending
        elif pending.code != code:
            pending.add_problem(Problem("mixed_codes", first=pending.code, second=code))
        for problem in problems:
            pending.add_problem(problem)
        last = not (separator == b"-" and complete)
        kept = line[:HARD_LINE_LIMIT]
        if last and len(pending.lines) >= self._max_lines:
            # The last line shows how the reply ended: it takes the place of the last kept.
            pending.lines.pop()
            del pending.raw[len(pending.raw) - pending.last_size :]
            pending.dropped_lines += 1
        if len(pending.lines) < self._max_lines:
            pending.lines.append(text)
            pending.raw.extend(kept)
            pending.last_size = len(kept)
        else:  # neither text nor raw bytes: a reply that never ends must not fill memory
            pending.dropped_lines += 1
        if not last:
            return None
        self._pending = None
        return self._finish(pending)

    @staticmethod
    def _merge(interrupted: Reply, lone: Reply) -> Reply:
        return Reply(
            code=interrupted.code,
            lines=(*interrupted.lines, *lone.lines),
            raw=interrupted.raw + lone.raw,
            problems=tuple(dict.fromkeys(interrupted.problems + lone.problems)),
            enhanced=interrupted.enhanced,
        )
