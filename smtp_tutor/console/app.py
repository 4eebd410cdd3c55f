"""The console loop: read a line, send it raw, show what came back and what it means.

Every line that does not start with `:` goes to the server exactly as typed plus CRLF.
`::text` sends a line that really starts with a colon. The helpers that telnet lacks —
base64 for AUTH, dot-stuffing in DATA, the TLS handshake after STARTTLS, warnings before a
line goes out, explanations after an error — sit around that raw core and `:manual on`
turns the AUTH helper off for students who want to do it by hand.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.history import DummyHistory, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import ColorDepth, Output
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.shortcuts import print_formatted_text
from prompt_toolkit.styles import Style

from smtp_tutor.connection import ConnectionFailed
from smtp_tutor.console import render
from smtp_tutor.core.auth import AuthError, AuthExchange, AuthStep, b64decode_text, b64encode_text
from smtp_tutor.core.dialogue import AUTH_RESPONSE, Outcome, Phase
from smtp_tutor.core.knowledge import explain, format_explanation
from smtp_tutor.session import (
    ClosedEvent,
    ReplyEvent,
    Session,
    SessionEvent,
    SilenceEvent,
    Target,
    TLSEvent,
    TLSFailed,
)

HELP = """\
Type SMTP commands exactly as you would in telnet; each line is sent with CRLF.
Console commands start with a colon:
  :help              this text
  :explain CODE      what a reply code means (535, 5.7.8, "550 5.1.1 ...")
  :manual on|off     turn the AUTH base64 helper off/on (do it by hand)
  :b64 TEXT          base64-encode TEXT       :unb64 TEXT   decode it
  :reconnect         open a new session to the same server
  :quit              leave (Ctrl-D works too)
  ::TEXT             send a line that starts with a colon (e.g. inside DATA)
In DATA mode every line is dot-stuffed for you; a line with only "." ends the message.
"""


@dataclass
class ConsoleOptions:
    lang: str = "en"
    color: bool = True
    banner: str | None = None
    manual: bool = False


@dataclass
class Console:
    """One interactive console bound to one server target; I/O is injected for tests."""

    target: Target
    options: ConsoleOptions = field(default_factory=ConsoleOptions)
    input: Input | None = None
    output: Output | None = None
    session: Session | None = None
    _auth: AuthExchange | None = None
    _auth_step: AuthStep | None = None
    _quit: bool = False

    errors: TextIO | None = None  # where a failure to start goes (stderr by default)

    def __post_init__(self) -> None:
        # Set while the console waits at a prompt: tests and scripted drivers type then.
        self.waiting_for_input = asyncio.Event()
        self._style = Style.from_dict(render.STYLE_RULES)
        self._depth = ColorDepth.MONOCHROME if not self.options.color else None

    def _make_prompts(self) -> None:
        """Prompt sessions touch the terminal, so they are made only once connected."""
        self._prompt = PromptSession[str](
            history=InMemoryHistory(), input=self.input, output=self.output
        )
        # Secrets and message lines never go into any history.
        self._quiet_prompt = PromptSession[str](
            history=DummyHistory(), input=self.input, output=self.output
        )

    # -- output ------------------------------------------------------------------------

    def show(self, fragments: render.Fragments) -> None:
        if fragments:
            print_formatted_text(
                render.as_text(fragments),
                end="",
                style=self._style,
                output=self.output,
                color_depth=self._depth,
            )

    def say(self, text: str, style: str = "class:notice") -> None:
        self.show([(style, text + "\n")])

    # -- running -----------------------------------------------------------------------

    async def run(self) -> int:
        """Connect, then loop until :quit or Ctrl-D; 0 on a normal exit."""
        if self.options.banner:
            self.say(self.options.banner, "class:banner")
        try:
            await self._connect()
        except ConnectionFailed as error:
            print(f"smtp-tutor: {error}", file=self.errors or sys.stderr, flush=True)
            return 3
        self._make_prompts()
        with patch_stdout(raw=True):
            while not self._quit:
                self.waiting_for_input.set()
                try:
                    line = await self._read_line()
                except KeyboardInterrupt:
                    if self._auth is not None and self._auth_step and self._auth_step.need:
                        self._auth_step = self._auth.cancel()
                        await self._send_auth_line()
                    continue
                except EOFError:
                    break
                finally:
                    self.waiting_for_input.clear()
                await self._handle(line)
        if self.session is not None:
            await self.session.close()
        return 0

    async def _connect(self) -> None:
        if self.session is not None:
            await self.session.close()
        self._auth, self._auth_step = None, None
        self.say(f"connecting to {self.target.label} …")
        self.session = Session(self.target, self._on_event)
        await self.session.connect()
        await self.session.wait_idle(self.target.reply_timeout + 1)

    async def _read_line(self) -> str:
        step = self._auth_step
        if self._auth is not None and step is not None and step.need:
            label = {"username": "username", "password": "password", "token": "token"}[step.need]
            return await self._quiet_prompt.prompt_async(f"{label}> ", is_password=not step.echo)
        if self.session is not None and self.session.dialogue.sending_data:
            return await self._quiet_prompt.prompt_async("data> ", is_password=False)
        if self.session is not None and self.session.dialogue.awaiting_auth_response:
            return await self._quiet_prompt.prompt_async("auth> ", is_password=False)
        return await self._prompt.prompt_async("smtp> ")

    async def _handle(self, line: str) -> None:
        if self._auth is not None and self._auth_step is not None and self._auth_step.need:
            await self._provide_secret(line)
            return
        if line.startswith(":") and not line.startswith("::"):
            await self._command(line[1:])
            return
        if line.startswith("::"):
            line = line[1:]
        await self._send(line)

    # -- sending -----------------------------------------------------------------------

    async def _send(self, line: str) -> None:
        session = self.session
        if session is None or not session.is_open:
            self.say("not connected — use :reconnect (or :quit)", "class:finding.error")
            return
        dialogue = session.dialogue
        self.show(render.finding_fragments(session.check(line), self.options.lang))
        in_data = dialogue.sending_data
        if dialogue.phase is not Phase.DATA and not self.options.manual:
            self._start_auth_helper(line)
        sent = await session.send(line)
        if in_data and sent is not None and line != "." and line.startswith("."):
            self.say(f"  (dot-stuffed: sent as .{line})", "class:sent")
        if not in_data or line == ".":
            await session.wait_idle(self.target.reply_timeout + 1)

    def _start_auth_helper(self, line: str) -> None:
        words = line.split()
        if not words or words[0].upper() != "AUTH" or len(words) < 2:
            return
        try:
            self._auth = AuthExchange.from_command(line)
        except AuthError:
            self._auth = None  # an unsupported mechanism goes out raw, no helper
        self._auth_step = None

    async def _provide_secret(self, value: str) -> None:
        assert self._auth is not None
        try:
            self._auth_step = self._auth.provide(value)
        except AuthError as error:
            self.say(f"  {error}", "class:finding.warning")
            return
        await self._send_auth_line()

    async def _send_auth_line(self) -> None:
        step = self._auth_step
        if step is None or step.line is None or self.session is None:
            return
        shown = "********" if step.secret else step.line
        what = "(base64 of your answer, hidden)" if step.secret else "(base64)"
        self.say(f"  → {shown} {what}", "class:sent")
        self._auth_step = None
        await self.session.send(step.line)
        await self.session.wait_idle(self.target.reply_timeout + 1)

    # -- what comes back ---------------------------------------------------------------

    def _on_event(self, event: SessionEvent) -> None:
        lang = self.options.lang
        if isinstance(event, ReplyEvent):
            outcome = event.outcome
            self.show(render.reply_fragments(outcome.reply, event.latency))
            if outcome.unsolicited:
                self.say("  ! this reply answers no command that was sent", "class:finding.warning")
            self.show(render.explanation_fragments(outcome.reply, lang))
            self._auth_progress(outcome.answered.verb if outcome.answered else None, outcome)
        elif isinstance(event, TLSEvent):
            self.show(render.tls_fragments(event.info))
            dialogue = self.session.dialogue if self.session else None
            if dialogue is not None and dialogue.phase is Phase.GREETED:
                self.say("  TLS is on: the old capability list is forgotten — say EHLO again.")
        elif isinstance(event, TLSFailed):
            self.say(f"  ✗ {event.reason}", "class:finding.error")
        elif isinstance(event, SilenceEvent):
            self.say(f"  … no reply after {event.seconds:g} s", "class:finding.warning")
        elif isinstance(event, ClosedEvent):
            self.say(f"  connection closed: {event.reason}. Type :reconnect or :quit.")

    def _auth_progress(self, verb: str | None, outcome: Outcome) -> None:
        if self._auth is None or verb not in ("AUTH", AUTH_RESPONSE):
            return
        try:
            step = self._auth.feed_reply(outcome.reply)
        except AuthError:
            self._auth, self._auth_step = None, None
            return
        if step.done:
            self._auth, self._auth_step = None, None
            return
        self._auth_step = step
        if step.need:
            self.say(
                f"  type the {step.need} in plain text; the console encodes it", "class:notice"
            )
        elif step.line is not None:
            asyncio.get_running_loop().create_task(self._send_auth_line())

    # -- console commands --------------------------------------------------------------

    async def _command(self, text: str) -> None:
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
        if not words:
            self.say(HELP, "")
            return
        name, args = words[0].lower(), words[1:]
        handler: Callable[[list[str]], object] | None = {
            "help": lambda a: self.say(HELP, ""),
            "quit": lambda a: setattr(self, "_quit", True),
            "exit": lambda a: setattr(self, "_quit", True),
            "explain": self._explain,
            "manual": self._manual,
            "b64": lambda a: self.say("  " + b64encode_text(" ".join(a)), ""),
            "unb64": self._unb64,
        }.get(name)
        if name == "reconnect":
            try:
                await self._connect()
            except ConnectionFailed as error:
                self.say(f"  ✗ {error}", "class:finding.error")
            return
        if handler is None:
            self.say(f"  unknown console command :{name} — :help lists them", "class:finding.error")
            return
        handler(args)

    def _explain(self, args: list[str]) -> None:
        try:
            self.say(
                format_explanation(explain(" ".join(args), self.options.lang), self.options.lang),
                "",
            )
        except ValueError as error:
            self.say(f"  {error}", "class:finding.error")

    def _manual(self, args: list[str]) -> None:
        if args and args[0].lower() in ("on", "off"):
            self.options.manual = args[0].lower() == "on"
        state = "on: AUTH answers go out exactly as you type them (base64 is up to you)"
        if not self.options.manual:
            state = "off: the console asks for user and password and encodes them"
        self.say(f"  manual mode {state}")

    def _unb64(self, args: list[str]) -> None:
        try:
            self.say("  " + repr(b64decode_text(" ".join(args)))[1:-1], "")
        except AuthError as error:
            self.say(f"  {error}", "class:finding.error")
