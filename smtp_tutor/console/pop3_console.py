"""The POP3 console: read a line, send it raw, show the response and what it means.

It shares the SMTP console's machinery and adds only what POP3 needs: the same `Reader`
(prompts, plain lines from a pipe), `View` (style, `:raw`/`:hex`), `SecretTracker`,
transcript recorder, debug log and private files, the same `Connection` (STLS upgrades it
in place, as STARTTLS does). The protocol-specific parts sit behind `Pop3Protocol`: the
session (`client.pop3_session`, driving the core's POP3 `Dialogue`), the checker, the
completer, the hints, the history rules and the renderer of responses.

What the user types is what the server gets: the checker's warnings are shown above the
line, which then goes out as typed — or, with ``confirm_on_warning``, is held until
`:send` (`:drop` forgets it), exactly as the SMTP console does. PASS, APOP digests and
AUTH answers are masked on screen while typed, never reach the history, and become
placeholders in transcripts. A RETR'd or TOP'd message is checked by the same lint as a
message typed after DATA.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.patch_stdout import patch_stdout

from smtp_tutor.client.connection import ConnectionFailed, WireEvent
from smtp_tutor.client.pop3_session import (
    ClosedEvent,
    Pop3Session,
    ResponseEvent,
    SilenceEvent,
    TLSEvent,
    TLSFailed,
)
from smtp_tutor.client.session import SessionEvent, Target
from smtp_tutor.console import pop3_render, render
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.console.colon_commands import (
    _back,
    _lesson_or_say,
    _lessons,
    _skip,
    request_switch,
    save_both,
)
from smtp_tutor.console.debuglog import format_failure, write_failure
from smtp_tutor.console.files import open_private, write_private
from smtp_tutor.console.history import LineKind
from smtp_tutor.console.plain import LineOutput, PlainReader, wants_plain
from smtp_tutor.console.pop3_completion import Pop3Completer
from smtp_tutor.console.pop3_history import MaskPop3Secrets, Pop3History, masked_echo
from smtp_tutor.console.reader import Reader
from smtp_tutor.console.view import View
from smtp_tutor.console.wrap import wrap_text
from smtp_tutor.core.catalogue import localize, message
from smtp_tutor.core.message_lint import lint_message, render_finding
from smtp_tutor.core.placeholders import Placeholder
from smtp_tutor.core.pop3 import knowledge
from smtp_tutor.core.pop3.checker import Finding
from smtp_tutor.core.pop3.command_line import LineError, parse_command
from smtp_tutor.core.pop3.dialogue import (
    AUTH_RESPONSE,
    Capabilities,
    Dialogue,
    Outcome,
    Sent,
    State,
    ends_group,
)
from smtp_tutor.core.pop3.redaction import track
from smtp_tutor.core.pop3.transcript import Pop3Recorder
from smtp_tutor.core.redaction import SecretTracker
from smtp_tutor.core.safe_text import visible
from smtp_tutor.paths import state_dir

if TYPE_CHECKING:
    from smtp_tutor.console.lesson import LessonRunner
    from smtp_tutor.console.switch import Switchboard

CATALOGUE = "pop3_console"


def default_pop3_history_path() -> Path:
    """POP3 lines have their own file: `STAT` or `PASS x` mean nothing (or too much) to SMTP."""
    return state_dir() / "pop3-history"


@dataclass
class Pop3Protocol:
    """The POP3-specific parts the console is given: one place to read what differs."""

    name: str = "POP3"

    def session(
        self, target: Target, listener: Callable[[SessionEvent], None], wire: object
    ) -> Pop3Session:
        return Pop3Session(target, listener, wire)  # type: ignore[arg-type]

    def completer(self, dialogue: Callable[[], Dialogue | None], lang: str) -> Pop3Completer:
        commands = [
            (f":{name}", message(CATALOGUE, f"commands.{name}.text", lang)) for name in COMMANDS
        ]
        return Pop3Completer(dialogue, commands, lang)

    def prompt(self, dialogue: Dialogue | None) -> str:
        return pop3_render.prompt_label(dialogue)


@dataclass
class Pop3Console:
    """One interactive POP3 console bound to one server; I/O is injected for tests."""

    target: Target
    options: ConsoleOptions = field(default_factory=ConsoleOptions)
    input: Input | None = None
    output: Output | None = None
    errors: TextIO | None = None
    protocol: Pop3Protocol = field(default_factory=Pop3Protocol)

    def __post_init__(self) -> None:
        plain: PlainReader | None = None
        if self.input is None and wants_plain(sys.stdin, sys.stdout, os.environ.get("TERM")):
            plain = PlainReader(sys.stdin, sys.stdout)
            plain.mask = masked_echo
            if self.output is None:
                self.output = LineOutput(sys.stdout)
            self.options.toolbar = False
        self.view = View(self.output, self.options.style, self.options.color, lambda: self.lang)
        self.reader = Reader(self.input, self.output, plain, self.view)
        self.tracker = SecretTracker()
        self.session: Pop3Session | None = None
        self.caps_history: list[tuple[str, Capabilities]] = []
        self.held: list[str] = []
        self.last: Outcome | None = None  # the last response, for :explain
        self.quit_requested = False
        self.ended = False
        self.switch: tuple[str, int | None] | None = None  # see app.Console
        self.switch_rest: list[str] = []
        self.switchboard: Switchboard | None = None
        self.recorder = Pop3Recorder(timing=True)
        self._transcript_file: TextIO | None = None
        self.lesson: LessonRunner | None = None  # set by `smtp-tutor lesson` (lessons 14-16)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def lang(self) -> str:
        return self.options.lang

    @property
    def waiting_for_input(self) -> asyncio.Event:
        return self.reader.waiting

    def dialogue(self) -> Dialogue | None:
        return self.session.dialogue if self.session is not None else None

    # -- output ------------------------------------------------------------------------

    def show(self, fragments: render.Fragments) -> None:
        self.view.show(fragments)

    def note(self, key: str, style: str = "class:notice", /, **params: object) -> None:
        """Say a line from `data/pop3_console.toml` in the console's language."""
        self.view.show(pop3_render.note(key, self.lang, style, **params))

    def say(self, key: str, style: str = "class:notice", /, **params: object) -> None:
        """Say a line the SMTP console says too (`data/console.toml`)."""
        self.view.say(key, style, **params)

    def print_text(self, text: str, style: str = "") -> None:
        self.view.print_text(text, style)

    # -- running -----------------------------------------------------------------------

    async def run(self) -> int:
        """Connect, then loop until :quit or Ctrl-D; 0 on a normal exit, 3 if never connected."""
        code = await self.start()
        if code is not None:
            return code
        await self.loop()
        await self.finish()
        return 0

    async def start(self) -> int | None:
        """Banner, transcript, connection, prompts; an exit code if the console cannot start."""
        if self.options.banner:
            self.print_text(self.options.banner, "class:banner")
        for notice in self.options.notices:
            self.print_text(notice, "class:finding.warning")
        if self.lesson is not None:
            self.lesson.attach(self)
        try:
            self._open_transcript()
        except OSError as error:
            path = self.options.transcript
            print(
                f"smtp-tutor: cannot write {path}: {error.strerror or error}",
                file=self.errors or sys.stderr,
                flush=True,
            )
            return 1
        try:
            await self.connect(self.target)
        except ConnectionFailed as error:
            self._close_transcript()
            print(f"smtp-tutor: {error}", file=self.errors or sys.stderr, flush=True)
            return 3
        self._open_reader()
        if self.lesson is not None:
            self.lesson.begin()
        return None

    async def loop(self) -> None:
        """Read and handle lines until :quit, Ctrl-D (`ended`) or a `:smtp`/`:pop3` switch."""
        with patch_stdout(raw=True) if self.reader.plain is None else contextlib.nullcontext():
            while not self.quit_requested and self.switch is None:
                try:
                    text = await self._read()
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    self.ended = True
                    break
                try:
                    await self._handle_input(text)
                except Exception as error:  # a bug must not cost the student the session
                    self.report_failure(error, "handling a typed line")

    async def finish(self) -> None:
        """Close the session and the transcript file."""
        if self.session is not None:
            await self.session.close()
        self._close_transcript()

    def report_failure(self, error: BaseException, context: str) -> None:
        redact = self.tracker.redact
        where = write_failure(error, context, redact, self.options.debug_log)
        summary = redact(f"{type(error).__name__}: {error}")
        self.say("internal_error", "class:finding.error", error=summary, path=where or "-")
        if self.options.debug:
            self.print_text(format_failure(error, redact), "class:finding.error")

    def _open_transcript(self) -> None:
        path = self.options.transcript
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._transcript_file = open_private(path)
        self.recorder.attach(self._transcript_file, format=self.options.transcript_format)  # type: ignore[arg-type]

    def _close_transcript(self) -> None:
        if self._transcript_file is not None:
            self.recorder.detach(self._transcript_file)
            self._transcript_file.close()
            self._transcript_file = None

    def save_transcript(self, path: Path) -> None:
        write_private(path, self.recorder.render("jsonl" if path.suffix == ".jsonl" else "text"))

    async def connect(self, target: Target) -> None:
        """Open a new session (closing any old one); raises ConnectionFailed."""
        if self.session is not None:
            await self.session.close()
        self.held.clear()
        self.say("connecting", target=target.label)
        self.session = self.protocol.session(target, self._on_event, self._on_wire)
        self.target = self.session.target
        self._record(
            self.recorder.connected, target.host, target.port, bool(self.target.implicit_tls)
        )
        try:
            await self.session.connect()
        except ConnectionFailed as error:
            self._record(self.recorder.closed, str(error))
            raise
        await self.session.wait_idle(target.reply_timeout + 1)

    def _open_reader(self) -> None:
        if self.reader.plain is not None:
            return
        history = None
        if self.options.history_path is not None:
            history = Pop3History(
                self.options.history_path, tracker=self.tracker, dialogue=self.dialogue
            )
            if history.error is not None:
                self.say("history_problem", "class:finding.warning", error=history.error)
        self.reader.open(
            completer=self.protocol.completer(self.dialogue, self.lang),
            toolbar=self._toolbar if self.options.toolbar else None,
            editing_mode=self.options.editing_mode,
            history=history,
            processors=[MaskPop3Secrets()],
        )

    def _toolbar(self) -> render.FormattedText:
        state = pop3_render.Pop3ToolbarState(
            server=self.target.label,
            dialogue=self.dialogue(),
            lang=self.lang,
            raw=self.view.raw,
            lesson=self.lesson.toolbar_text() if self.lesson is not None else None,
        )
        return render.as_text(pop3_render.toolbar_fragments(state))

    async def _read(self) -> str:
        dialogue = self.dialogue()
        label = self.protocol.prompt(dialogue)
        if dialogue is not None and dialogue.awaiting_auth_response:
            return await self.reader.read(label, secret=True, kind=None)
        return await self.reader.read(label, secret=False, kind=LineKind.COMMAND)

    # -- input -------------------------------------------------------------------------

    async def _handle_input(self, text: str) -> None:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()
        if len(lines) == 1:
            await self._line(lines[0])
            return
        # A paste: a pipelined group where CAPA said PIPELINING, else one by one.
        dialogue = self.dialogue()
        caps = dialogue.capabilities if dialogue is not None else None
        pipelining = caps is not None and caps.has("PIPELINING")
        key = "pipelining_group" if pipelining else "pipelining_one_by_one"
        self.say(key, count=len(lines))
        for index, line in enumerate(lines):
            if self.switch is not None:  # typed for the other protocol: not sent here
                self.switch_rest = lines[index:]
                break
            wait = not pipelining or ends_group(parse_command(line).keyword)
            await self._line(line, wait=wait or line.startswith(":"))
        if self.session is not None:
            await self.session.wait_idle(self.target.reply_timeout + 1)

    async def _line(self, line: str, wait: bool = True) -> None:
        if line.startswith(":") and not line.startswith("::"):
            await run_command(self, line[1:])
            return
        if line.startswith("::"):
            line = line[1:]
        await self.send(line, wait=wait)

    async def send(self, line: str, wait: bool = True, *, confirmed: bool = False) -> None:
        """Check, then send one line as typed — or hold it back, never change it."""
        session = self.session
        if session is None or not session.is_open:
            self.say("not_connected", "class:finding.error")
            return
        if self.held and not confirmed:
            self.held.append(line)
            self.say("held_behind", "class:explain", line=self._masked(line))
            return
        dialogue = session.dialogue
        findings = session.check(line)
        self._show_findings(findings)
        serious = [f for f in findings if f.severity in ("error", "warning")]
        if serious and self.options.confirm_on_warning and not confirmed:
            self.held.append(line)
            self.say("held_confirm", "class:explain")
            return
        answer = dialogue.awaiting_auth_response
        user = dialogue.projected_user
        mechanism = dialogue.auth_mechanism
        if self.lesson is not None:
            self.lesson.on_send(line, False, answer)
        try:
            sent = await session.send(line)
        except LineError as error:
            self.print_text(f"  ✗ {localize(str(error), self.lang)}", "class:finding.error")
            return
        if sent is not None:
            track(self.tracker, sent, user)
            if answer:
                self.note("auth_answer_sent", "class:sent")
            self._record(self.recorder.sent, line, self._placeholder(sent, line, mechanism))
        if wait:
            await session.wait_idle(self.target.reply_timeout + 1)

    def _placeholder(self, sent: Sent, line: str, mechanism: str | None) -> Placeholder | None:
        """What a transcript writes for a line with a secret (None: the line as sent)."""
        if not sent.secret:
            return None
        if sent.verb == "PASS":
            return Placeholder.variable("password")
        if sent.verb == "APOP":
            return Placeholder.apop()
        answer = line.strip() if sent.verb == AUTH_RESPONSE else line.split()[-1]
        if mechanism == "PLAIN" or (sent.verb == "AUTH" and mechanism == "PLAIN"):
            user = _plain_user(answer)
            return Placeholder.plain(user) if user is not None else Placeholder.variable("answer")
        if mechanism == "LOGIN":
            return Placeholder.login_password()
        return Placeholder.variable("answer")

    def _masked(self, line: str) -> str:
        return self.tracker.redact(masked_echo(line))

    def _show_findings(self, findings: list[Finding]) -> None:
        for finding in findings:
            style = f"class:finding.{finding.severity}"
            text = f"  ! {finding.text(self.lang)}"
            self.print_text(wrap_text(text, render.terminal_columns(self.output)), style)

    async def release_held(self) -> None:
        """`:send`: what was held back goes out exactly as typed, in order."""
        if not self.held:
            self.say("nothing_held", "class:explain")
            return
        lines, self.held = self.held, []
        await self.send(lines[0], confirmed=True)
        for line in lines[1:]:
            await self._line(line)

    async def drop_held(self) -> None:
        if not self.held:
            self.say("nothing_held", "class:explain")
            return
        dropped, self.held = self.held, []
        for line in dropped:
            self.say("dropped", "class:explain", line=self._masked(line))

    # -- what comes back ---------------------------------------------------------------

    def _on_event(self, event: SessionEvent | ResponseEvent) -> None:
        lang = self.lang
        if isinstance(event, ResponseEvent):
            outcome = event.outcome
            response = outcome.response
            self.last = outcome
            self.show(pop3_render.response_fragments(response, event.latency, lang))
            if outcome.unsolicited:
                self.say("unsolicited", "class:finding.warning")
            self.show(pop3_render.explanation_fragments(outcome, lang))
            self._record(self.recorder.received, response, event.latency)
            self._after(outcome)
        elif isinstance(event, TLSEvent):
            self.show(render.tls_fragments(event.info, lang))
            self._record(self.recorder.tls_started, event.info.version, event.info.cipher)
            dialogue = self.dialogue()
            if dialogue is not None and dialogue.state is State.AUTHORIZATION and dialogue.greeted:
                self.note("tls_reminder")
        elif isinstance(event, TLSFailed):
            self.say("tls_failed", "class:finding.error", reason=visible(event.reason))
        elif isinstance(event, SilenceEvent):
            self.say("silence", "class:finding.warning", seconds=f"{event.seconds:g}")
        elif isinstance(event, ClosedEvent):
            if self.held:
                self.note("held_lost", "class:finding.warning", count=len(self.held))
                self.held.clear()
            self._record(self.recorder.closed, localize(event.reason, "en"))
            self.say("closed", reason=localize(event.reason, lang))
        if self.lesson is not None:
            self.lesson.on_event(event)

    def _after(self, outcome: Outcome) -> None:
        """What a response teaches beyond itself: a message to lint, capabilities, TLS."""
        answered = outcome.answered
        verb = answered.verb if answered is not None else ""
        response = outcome.response
        if verb in ("RETR", "TOP") and response.ok and response.multiline:
            self._lint(list(response.lines), top=verb == "TOP")
        elif verb == "CAPA" and response.ok:
            dialogue = self.dialogue()
            if dialogue is not None and dialogue.capabilities is not None:
                if dialogue.state is State.TRANSACTION:
                    context = "caps_context_login"
                elif dialogue.tls_active:
                    context = "caps_context_tls"
                else:
                    context = "caps_context_plain"
                self.caps_history.append(
                    (message(CATALOGUE, context, self.lang), dialogue.capabilities)
                )
        elif outcome.start_tls and outcome.discarded:
            self.say("tls_discarded", "class:finding.error", count=len(outcome.discarded))

    def _lint(self, lines: list[str], *, top: bool) -> None:
        """The message as fetched, checked by the same lint as one typed after DATA."""
        findings = lint_message(
            lines, envelope_from=None, recipients=[], eight_bit_mime=True, smtputf8=True
        )
        if top:  # TOP n m sends part of the body: what the body says is not the whole story
            findings = [f for f in findings if f.line is None or f.line <= _header_end(lines)]
        if not findings:
            self.note("lint_clean", "class:tls.ok", count=len(lines))
            return
        self.note("lint_title", "class:finding.warning", count=len(lines))
        for finding in findings:
            style = f"class:finding.{finding.severity}"
            self.print_text("    - " + render_finding(finding, self.lang), style)

    def _on_wire(self, event: WireEvent) -> None:
        self.view.wire(event, self.tracker.redact)

    def _record(self, event: Callable[..., None], *args: object) -> None:
        try:
            event(*args)
        except (OSError, ValueError) as error:
            self.say(
                "save_failed",
                "class:finding.error",
                path=self.options.transcript,
                error=getattr(error, "strerror", None) or error,
            )
            self._transcript_file = None


def _header_end(lines: list[str]) -> int:
    """The number of the blank line that ends the header block (or the last line)."""
    for number, line in enumerate(lines, 1):
        if line == "":
            return number
    return len(lines)


def _plain_user(answer: str) -> str | None:
    try:
        decoded = base64.b64decode(answer, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    parts = decoded.split("\0")
    return parts[1] if len(parts) == 3 else None


# -- colon commands --------------------------------------------------------------------

Handler = Callable[[Pop3Console, list[str]], Awaitable[None]]


async def run_command(console: Pop3Console, text: str) -> None:
    """Run `:name args…` (the text after the colon)."""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    if not words:
        await _help(console, [])
        return
    name, args = words[0].lower(), words[1:]
    handler = COMMANDS.get(name)
    if handler is None:
        console.say("unknown_command", "class:finding.error", name=name)
        return
    await handler(console, args)


async def _help(console: Console_, args: list[str]) -> None:
    lang = console.lang
    columns = render.terminal_columns(console.output)
    if args and args[0].lstrip(":").lower() in COMMANDS:
        names = [args[0].lstrip(":").lower()]
    else:
        names = list(COMMANDS)
    lines = [wrap_text(message(CATALOGUE, "help_index", lang), columns)]
    for name in names:
        usage = message(CATALOGUE, f"commands.{name}.usage", lang)
        text = message(CATALOGUE, f"commands.{name}.text", lang)
        lines.append(wrap_text(f"  {usage:<18} {text}", columns))
    dialogue = console.dialogue()
    if dialogue is not None and not args:
        valid = " ".join(dialogue.valid_commands())
        lines.append(wrap_text(message(CATALOGUE, "help_valid", lang, commands=valid), columns))
    console.print_text("\n".join(lines))


async def _explain(console: Console_, args: list[str]) -> None:
    """`:explain` the last response (with the command it answered), or any POP3 text."""
    lang = console.lang
    command = None
    if args:
        query = " ".join(args)
    elif console.last is not None:
        query = console.last.response.status_line
        answered = console.last.answered
        if answered is not None and answered.command is not None:
            command = answered.verb
    else:
        console.note("explain_nothing", "class:explain")
        return
    try:
        exp = knowledge.explain_pop3(query, lang, command)
    except ValueError as error:
        console.print_text(f"  {error}", "class:finding.error")
        return
    console.print_text(visible_block(knowledge.format_pop3_explanation(exp, lang)))


def visible_block(text: str) -> str:
    return "\n".join(visible(line) for line in text.splitlines())


async def _caps(console: Console_, args: list[str]) -> None:
    console.show(
        pop3_render.caps_fragments(console.caps_history, console.target.label, console.lang)
    )


async def _send(console: Console_, args: list[str]) -> None:
    await console.release_held()


async def _drop(console: Console_, args: list[str]) -> None:
    await console.drop_held()


async def _raw(console: Console_, args: list[str]) -> None:
    console.view.raw = not console.view.raw if not args else args[0].lower() == "on"
    console.say("raw_on" if console.view.raw else "raw_off")


async def _hex(console: Console_, args: list[str]) -> None:
    console.view.hex = not console.view.hex if not args else args[0].lower() == "on"
    console.say("hex_on" if console.view.hex else "hex_off")


async def _save(console: Console_, args: list[str]) -> None:
    if len(args) != 1:
        console.say(
            "usage",
            "class:finding.error",
            usage=message(CATALOGUE, "commands.save.usage", console.lang),
        )
        return
    save_both(console, Path(args[0]).expanduser())


async def _reconnect(console: Console_, args: list[str]) -> None:
    try:
        await console.connect(console.target)
    except ConnectionFailed as error:
        console.say("connect_failed", "class:finding.error", error=str(error))


async def _hint(console: Console_, args: list[str]) -> None:
    """In a lesson the step's next hint; else what to do next in this state."""
    if console.lesson is not None:
        console.lesson.hint()
        return
    console.print_text("  " + pop3_render.hint(console.dialogue(), console.lang), "class:notice")


async def _restart(console: Console_, args: list[str]) -> None:
    """The lesson from its first step, on a new connection (its setup mail filed again)."""
    lesson = _lesson_or_say(console)  # type: ignore[arg-type]
    if lesson is None:
        return
    if lesson.on_restart is not None:
        lesson.on_restart()  # before reconnecting: the new session starts from scratch
    await _reconnect(console, args)
    lesson.restart()


async def _smtp(console: Console_, args: list[str]) -> None:
    request_switch(console, "smtp", args)


async def _pop3(console: Console_, args: list[str]) -> None:
    console.say("switch_already", "class:explain", protocol="POP3")


async def _quit(console: Console_, args: list[str]) -> None:
    console.quit_requested = True


Console_ = Pop3Console

COMMANDS: dict[str, Handler] = {
    "help": _help,
    "explain": _explain,
    "caps": _caps,
    "send": _send,
    "drop": _drop,
    "raw": _raw,
    "hex": _hex,
    "save": _save,
    "reconnect": _reconnect,
    "smtp": _smtp,
    "pop3": _pop3,
    "hint": _hint,
    "skip": _skip,  # type: ignore[dict-item]
    "back": _back,  # type: ignore[dict-item]
    "restart": _restart,
    "lessons": _lessons,  # type: ignore[dict-item]
    "quit": _quit,
}
