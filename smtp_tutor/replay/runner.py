"""`smtp-tutor replay`: send a transcript's ``C:`` lines again and check every ``S:`` reply.

How it works:

* `_plan` walks the script once and turns it into steps: the bytes of every line that has no
  placeholder are encoded up front, each line knows the verb it sends, and each expectation
  knows which command it answers (for the STARTTLS upgrade, the EHLO capabilities and the
  explanation of a wrong reply). What a reply answers is the `Dialogue`'s verdict: the plan
  drives one through the script (`core.transcript_dialogue`) and works out no SMTP state of
  its own.
* The steps run in *groups*: the lines written in one go before the replies are read. Without
  pipelining a group is one command — or a whole message, its content lines and the final
  ``.``, since the server answers nothing in between. With ``--pipeline`` and PIPELINING
  advertised, a group runs up to a command whose answer changes what comes next (RFC 2920
  §3.1: EHLO, DATA, AUTH, QUIT …); message content may start a group (RFC 2920 §3.1), so
  a message, its ``.`` and the next MAIL, RCPT and DATA go in one write: one round trip
  per message. Replies are read and checked in script order either way.
* Replay needs no concurrency, so it talks over a plain blocking socket in a worker
  thread (`replay_link.Link`, which says why); the event loop stays free for an embedded
  sandbox or a test server in the same process. With no event loop to keep free (`replay
  --server` without --step) `replay_blocking` runs it in the caller's thread, and asyncio
  is never imported.
* The first mismatch stops the replay: `Stop` carries the exit status and the report, so the
  whole run has one place where it ends. Nothing the server sends becomes a traceback.

Exit statuses: 0 every reply matched, 1 a mismatch, 2 a script error, 3 connection or TLS.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from smtp_tutor.client.connection import (
    Closed,
    ConnectionFailed,
    TimedOut,
    WireObserver,
)
from smtp_tutor.core.dialogue import AUTH_RESPONSE, END_OF_DATA, Capabilities, ends_group
from smtp_tutor.core.dialogue import GREETING as DIALOGUE_GREETING
from smtp_tutor.core.placeholders import ResolveError
from smtp_tutor.core.records import field, record
from smtp_tutor.core.replies import Reply
from smtp_tutor.core.safe_text import visible as _visible
from smtp_tutor.core.transcript import Directive, Expect, Script, Send, resolve, wire_bytes
from smtp_tutor.core.transcript_dialogue import TranscriptDialogue, dialogue_line
from smtp_tutor.replay.link import CUT_SHORT, Link

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    import ssl
    import threading
    from pathlib import Path
    from typing import NoReturn, TextIO


class _Flag:
    """A replay's "aborted" flag when nothing waits on it: set by `abort` from another
    thread, read by the replay's own (a plain attribute; no `threading` import)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_SCRIPT = 2
EXIT_CONNECTION = 3

#: Message lines shown before the rest of a long message is summarised in one line.
SHOWN_CONTENT_LINES = 10
GREETING = "GREETING"


#: --step: prompts and waits for Enter; False once the input has ended.
StepInput = Callable[[], Awaitable[bool]]


@record
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


@record
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


# --------------------------------------------------------------------------- the plan


@record(slots=True)
class _Out:
    send: Send
    wire: bytes | None  # None: placeholders are computed when the line is sent
    verb: str  # upper-case first word; "." for the end of data; "" for message content
    ends: bool  # ends a pipelined group
    content: bool  # a message line: the server answers nothing until the final "."


@record(slots=True)
class _In:
    expect: Expect
    answers: str  # the command this reply answers: a verb, ".", AUTH or GREETING


_Step = _Out | _In | Directive


#: What a reply answers, as the checks and the explanations name it (the dialogue's
#: pseudo-verbs for the greeting, the end of a message and an AUTH answer).
_ANSWERS = {DIALOGUE_GREETING: GREETING, END_OF_DATA: ".", AUTH_RESPONSE: "AUTH"}


def _plan(script: Script) -> list[_Step]:
    """The steps of `script`; what each reply answers comes from a `Dialogue` that follows it."""
    steps: list[_Step] = []
    add = steps.append
    follower = TranscriptDialogue()
    send, receive = follower.send, follower.receive
    # A long script repeats its lines (MAIL FROM, DATA, ".", the same header): work each
    # distinct line out once. Commands and message lines are told apart: "." differs.
    known: tuple[dict[str, tuple[str, bool, str, bool, bool]], ...] = ({}, {})
    answers = GREETING
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
                # The parser merges literal text, so several parts means a placeholder.
                static = len(parts) < 2 and all(isinstance(p, str) for p in parts)
                # The final "." ends a group only without pipelining; with it, the next
                # command may follow in the same write (see _group).
                ends = verb == "." or ends_group(verb)
                found = (dialogue_line(item), static, verb, ends, data and not verb)
                known[data][item.text] = found
            line, static, verb, ends, content = found
            sent = send(item, line)
            assert sent is not None
            # The dialogue's bytes; None: placeholders are computed when the line is sent.
            add(_Out(item, sent.wire if static else None, verb, ends, content))
        elif isinstance(item, Expect):
            answered = receive(item).answered
            if answered is not None:  # else a reply to no command: explained as the last one
                answers = _ANSWERS.get(answered.verb, answered.verb)
            add(_In(item, answers))
        else:
            follower.directive(item)
            if item.name in ("connect", "closed"):
                add(item)  # @tls and @time only inform
    return steps


# --------------------------------------------------------------------------- the replayer


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
        self.link: Link | None = None
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
        self._aborted: _Flag | threading.Event = _Flag()
        if options.delay > 0:  # only --delay waits on it: a replay without one loads no threading
            import threading

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
        if reply.problems and any(getattr(p, "id", "") in CUT_SHORT for p in reply.problems):
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
            from smtp_tutor.client.tls import client_context

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
            self.link = Link.open(
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
    import asyncio
    import concurrent.futures

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


def replay_blocking(
    script: Script,
    host: str,
    port: int,
    options: ReplayOptions,
    *,
    out: TextIO,
    err: TextIO,
    observer: WireObserver | None = None,
) -> ReplayResult:
    """`replay` in the calling thread, for a caller with no event loop (and no --step).

    The same run, output and result; Ctrl-C (KeyboardInterrupt) ends it where it is.
    """
    return Replayer(script, host, port, options, out=out, err=err, observer=observer).run()
