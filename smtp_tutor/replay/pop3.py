"""Replay of a POP3 transcript (``# protocol: pop3``) against a POP3 server, in lockstep.

Each ``C:`` line is sent (placeholders computed from the variables, as for SMTP: ``PASS
{password}``), each ``S:`` expectation is held against the next whole response — a
multiline one only once its lone "." has arrived, its body unstuffed. The POP3 core's
`Dialogue` decides where a response ends (it knows what each line sent expects), and the
client's `Connection` carries the bytes, switching to TLS in place after STLS's +OK.
Outcomes are the SMTP replay's: 0 all matched, 1 a mismatch (a report on stdout), 2 a
script problem, 3 a connection or TLS failure (one line on stderr); never a traceback.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import NoReturn, TextIO

from smtp_tutor.client.connection import Closed, Connection, ConnectionFailed, TimedOut
from smtp_tutor.client.tls import client_context
from smtp_tutor.core.placeholders import ResolveError
from smtp_tutor.core.pop3.command_line import LineError
from smtp_tutor.core.pop3.dialogue import Dialogue, Outcome
from smtp_tutor.core.pop3.transcript import Pop3Expect, Pop3Script
from smtp_tutor.core.safe_text import visible
from smtp_tutor.core.transcript import Directive, Send, resolve
from smtp_tutor.replay.runner import (
    EXIT_CONNECTION,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_SCRIPT,
    ReplayOptions,
    Stop,
)

POP3S_PORT = 995
#: Body lines printed under a multiline response; the rest is counted.
SHOWN_BODY_LINES = 3


@dataclass
@dataclass
class Pop3ReplayResult:
    status: int
    commands: int
    matched: int
    elapsed: float

    def summary(self) -> str:
        ms = self.elapsed * 1000
        return f"{self.commands} commands, {self.matched} responses matched in {ms:.0f} ms"


class Pop3Replayer:
    def __init__(
        self,
        script: Pop3Script,
        host: str,
        port: int,
        options: ReplayOptions,
        *,
        out: TextIO,
        err: TextIO,
    ) -> None:
        self.script = script
        self.host, self.port = host, port
        self.options = options
        self.out, self.err = out, err
        self.show = not options.quiet
        self.connection: Connection | None = None
        self.dialogue = Dialogue()
        self.outcomes: collections.deque[Outcome] = collections.deque()
        self.commands = 0
        self.matched = 0
        self.connects = 0
        self.context = client_context(verify=options.verify, cafile=options.cafile)

    async def run(self) -> Pop3ReplayResult:
        start = time.perf_counter()
        status, message = EXIT_OK, ""
        try:
            for item in self.script.items:
                if isinstance(item, Directive):
                    await self._directive(item)
                elif isinstance(item, Send):
                    await self._send(item)
                else:
                    await self._check(item)
        except Stop as stop:
            status, message = stop.status, stop.message
        finally:
            if self.connection is not None:
                await self.connection.close()
        result = Pop3ReplayResult(status, self.commands, self.matched, time.perf_counter() - start)
        if message:
            stream = self.out if status == EXIT_MISMATCH else self.err
            stream.write(message + "\n")
        if status == EXIT_OK:
            self.out.write(result.summary() + "\n")
        elif status == EXIT_MISMATCH:
            self.out.write("stopped: " + result.summary() + "\n")
        return result

    # -- steps ---------------------------------------------------------------------------

    async def _directive(self, directive: Directive) -> None:
        if directive.name == "connect":
            if self.connection is not None:  # a second @connect: reconnect, a new session
                await self.connection.close()
                self.connection = None
            await self._connect(len(directive.args) == 3)
        elif directive.name == "closed" and self.show:
            self.out.write(f"@closed {visible(directive.rest)}".rstrip() + "\n")

    async def _connect(self, tls_in_script: bool = False) -> None:
        implicit = self.options.implicit_tls or tls_in_script or self.port == POP3S_PORT
        try:
            self.connection = await Connection.open(
                self.host,
                self.port,
                implicit_tls=implicit,
                connect_timeout=self.options.timeout,
                reply_timeout=self.options.timeout,
                ssl_context=self.context,
                cafile=self.options.cafile,
            )
        except ConnectionFailed as error:
            raise Stop(EXIT_CONNECTION, str(error)) from None
        self.connects += 1
        self.dialogue = Dialogue()
        self.outcomes.clear()
        if self.connection.tls is not None:
            tls = self.connection.tls
            self.dialogue.tls_at_connect(tls.version, tls.cipher)
        if self.show:
            mode = " tls" if implicit else ""
            self.out.write(f"@connect {self.host} {self.port}{mode}\n")

    async def _send(self, send: Send) -> None:
        if self.connection is None:
            await self._connect()
        assert self.connection is not None
        where = f"{self.script.source}:{send.line_no}"
        try:
            line = resolve(send, self.options.variables, challenge=self.dialogue.apop_timestamp)
            sent = self.dialogue.send(line)
        except (ResolveError, LineError) as error:
            raise Stop(EXIT_SCRIPT, f"{where}: {error}") from None
        if self.show:
            self.out.write(f"C: {send.text}".rstrip(" ") + "\n")  # a secret stays a placeholder
        await self.connection.send_bytes(sent.wire)
        self.commands += 1

    async def _check(self, expect: Pop3Expect) -> None:
        if self.connection is None:
            await self._connect()
        outcome = await self._next(expect)
        response = outcome.response
        where = f"{self.script.source}:{expect.line_no}"
        if any(getattr(p, "key", "") == "closed_mid_response" for p in response.problems):
            self._print(outcome, "✗")
            raise Stop(
                EXIT_CONNECTION,
                f"{where}: the connection broke in the middle of a response "
                f"(waiting for {expect.describe()})",
            )
        problem = expect.mismatch(response)
        self._print(outcome, "✓" if problem is None else "✗")
        if problem is not None:
            answered = outcome.answered.verb if outcome.answered is not None else "nothing"
            raise Stop(EXIT_MISMATCH, f"{where}: {problem} (answering {answered.lower()})")
        self.matched += 1
        if outcome.start_tls:
            await self._start_tls(expect.line_no)

    async def _next(self, expect: Pop3Expect) -> Outcome:
        """The next whole response, within the timeout (bytes that keep coming do not extend it)."""
        connection = self.connection
        assert connection is not None
        deadline = time.monotonic() + self.options.timeout
        while not self.outcomes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._lost(TimedOut(self.options.timeout), expect)
            data = await connection.read_data(remaining)
            if isinstance(data, TimedOut):
                self._lost(TimedOut(self.options.timeout), expect)
            if isinstance(data, Closed):
                self.outcomes.extend(self.dialogue.receive_eof())
                if not self.outcomes:
                    self._lost(data, expect)
                break
            self.outcomes.extend(self.dialogue.receive(data))
        return self.outcomes.popleft()

    def _lost(self, result: Closed | TimedOut, expect: Pop3Expect) -> NoReturn:
        where = f"{self.script.source}:{expect.line_no}"
        waiting = expect.describe()
        if isinstance(result, Closed):
            raise Stop(EXIT_CONNECTION, f"{where}: {result.reason} while waiting for {waiting}")
        raise Stop(
            EXIT_CONNECTION,
            f"{where}: no complete response within {result.seconds:g} s (waiting for {waiting})",
        )

    async def _start_tls(self, line_no: int) -> None:
        assert self.connection is not None
        try:
            info = await self.connection.starttls(self.context, None, self.options.timeout)
        except ConnectionFailed as error:
            raise Stop(EXIT_CONNECTION, f"{self.script.source}:{line_no}: {error}") from None
        self.dialogue.tls_established(info.version, info.cipher)
        if self.show:
            self.out.write(f"@tls {info.version} {info.cipher}  ✓\n")

    def _print(self, outcome: Outcome, mark: str) -> None:
        if not self.show:
            return
        response = outcome.response
        self.out.write(f"S: {visible(response.status_line)}  {mark}\n")
        if response.multiline:
            lines = response.lines
            for line in lines[:SHOWN_BODY_LINES]:
                self.out.write(f"S: {visible(line)}\n")
            if len(lines) > SHOWN_BODY_LINES:
                self.out.write(f"S: … ({len(lines) - SHOWN_BODY_LINES} more lines)\n")
            self.out.write("S: .\n")


async def replay_pop3(
    script: Pop3Script,
    host: str,
    port: int,
    options: ReplayOptions,
    *,
    out: TextIO,
    err: TextIO,
) -> Pop3ReplayResult:
    """Replay `script` against HOST:PORT; the outcome is in the result, never an exception."""
    try:
        replayer = Pop3Replayer(script, host, port, options, out=out, err=err)
    except (OSError, ValueError) as error:  # a CA file that cannot be read
        reason = getattr(error, "strerror", None) or error
        err.write(f"cannot use the CA file {options.cafile}: {reason}\n")
        return Pop3ReplayResult(EXIT_CONNECTION, 0, 0, 0.0)
    return await replayer.run()
