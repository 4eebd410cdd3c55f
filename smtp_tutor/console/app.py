"""The console loop: read a line, send it raw, show what came back and what it means.

Every line that does not start with `:` goes to the server exactly as typed plus CRLF.
`::text` sends a line that really starts with a colon. The helpers that telnet lacks —
base64 for AUTH, dot-stuffing in DATA, the TLS handshake after STARTTLS, warnings before a
line goes out, explanations after an error, a lint of the message before its final dot —
sit around that raw core; `:manual on` turns the AUTH and header helpers off for students
who want to do it all by hand.

Which prompt reads the next line is decided in one place (`_read`): the main prompt with
history and completion for commands, a history-less one for message text and AUTH answers,
so a secret or a message line can never reach the history file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.patch_stdout import patch_stdout

from smtp_tutor.client.connection import ConnectionFailed, WireEvent, wants_implicit_tls
from smtp_tutor.client.session import (
    ClosedEvent,
    ReplyEvent,
    Session,
    SessionEvent,
    SilenceEvent,
    Target,
    TLSEvent,
    TLSFailed,
)
from smtp_tutor.console import render
from smtp_tutor.console.auth_helper import AuthHelper, AuthLine, is_auth_with_response
from smtp_tutor.console.completion import AddressBook, HeaderBlock, SMTPCompleter
from smtp_tutor.console.composer import Composer
from smtp_tutor.console.debuglog import format_failure, write_failure
from smtp_tutor.console.files import open_private, write_private
from smtp_tutor.console.history import LineKind, SafeFileHistory
from smtp_tutor.console.plain import LineOutput, PlainReader, wants_plain
from smtp_tutor.console.reader import Reader
from smtp_tutor.console.toolbar import ToolbarState, prompt_label, toolbar_fragments
from smtp_tutor.console.view import View
from smtp_tutor.core.auth import (
    AuthError,
)
from smtp_tutor.core.catalogue import localize, message
from smtp_tutor.core.command_line import parse_command
from smtp_tutor.core.dialogue import (
    AUTH_RESPONSE,
    END_OF_DATA,
    Capabilities,
    Dialogue,
    Outcome,
    Phase,
    ends_group,
)
from smtp_tutor.core.message_data import stuff_line
from smtp_tutor.core.recorder import TranscriptRecorder
from smtp_tutor.core.records import field, record
from smtp_tutor.core.redaction import SecretTracker
from smtp_tutor.core.safe_text import visible

if TYPE_CHECKING:
    from smtp_tutor.console.lesson import LessonRunner
    from smtp_tutor.console.switch import Switchboard
    from smtp_tutor.core.message_lint import LintFinding  # imported when a message is linted
    from smtp_tutor.sandbox import Sandbox
    from smtp_tutor.sandbox.process import SandboxProcess


@record
class ConsoleOptions:
    lang: str = "en"
    color: bool = True
    banner: str | None = None
    manual: bool = False
    style: str = "default"
    editing_mode: str = "emacs"
    confirm_on_warning: bool = False
    toolbar: bool = True
    history_path: Path | None = None  # None: no history file (tests); the CLI passes one
    mailbox: Path | None = None  # the sandbox's Maildir, for :mailbox
    transcript: Path | None = None  # --transcript FILE: every event written as it happens
    transcript_format: str = "text"  # or "jsonl"
    notices: list[str] = field(default_factory=list)  # shown once at start (config problems)
    lesson_dirs: list[Path] = field(default_factory=list)  # teachers' lesson folders
    debug: bool = False  # --debug: tracebacks on screen too, not only in the debug log
    debug_log: Path | None = None  # None: $XDG_STATE_HOME/smtp-tutor/debug.log


class Console:
    """One interactive console bound to one server target; I/O is injected for tests."""

    def __init__(
        self,
        target: Target,
        options: ConsoleOptions | None = None,
        input: Input | None = None,
        output: Output | None = None,
        errors: TextIO | None = None,  # where a failure to start goes (stderr by default)
    ) -> None:
        self.target = target
        self.options = options if options is not None else ConsoleOptions()
        self.input = input
        self.output = output
        self.errors = errors
        # A pipe or a dumb terminal gets plain lines both ways (see console/plain.py).
        plain: PlainReader | None = None
        if self.input is None and wants_plain(sys.stdin, sys.stdout, os.environ.get("TERM")):
            plain = PlainReader(sys.stdin, sys.stdout)
            if self.output is None:
                self.output = LineOutput(sys.stdout)
            self.options.toolbar = False
            if not plain.interactive:
                # Scripted input: every line goes out as written, no helper answers for it.
                self.options.manual = True
        # The objects that own their state; this class wires them (see docs/architecture.md).
        self.view = View(self.output, self.options.style, self.options.color, lambda: self.lang)
        self.reader = Reader(self.input, self.output, plain, self.view)
        self.tracker = SecretTracker()
        self.auth = AuthHelper(self.tracker)
        self.session: Session | None = None
        # Every successful EHLO, labelled (clear text / TLS / after AUTH), for :caps diffs.
        self.caps_history: list[tuple[str, Capabilities]] = []
        self.quit_requested = False
        self.ended = False  # Ctrl-D: the whole console ends, whichever protocol is active
        # `:pop3`/`:smtp` under a switchboard: (protocol, port or None) and the lines of the
        # same paste typed after it, which belong to the other protocol.
        self.switch: tuple[str, int | None] | None = None
        self.switch_rest: list[str] = []
        self.switchboard: Switchboard | None = None
        self.addresses = AddressBook()
        self.header_block = HeaderBlock()
        # The message typed after DATA, and lines held back by confirm_on_warning: what the
        # user typed is only ever held (never changed) until :fix, :send or :drop.
        self.composer = Composer()
        self.held_commands: list[str] = []
        self.template: deque[str] = deque()
        # :bdat collects a message here, then sends it in chunks of this size (0: one chunk).
        self.bdat_lines: list[str] | None = None
        self.bdat_chunk_size = 0
        # Everything is recorded from the start, so :save can write the whole session.
        self.recorder = TranscriptRecorder(timing=True)
        self._transcript_file: TextIO | None = None
        self._grouping = False
        self.lesson: LessonRunner | None = None  # set by `smtp-tutor lesson`
        self._tasks: set[asyncio.Task[None]] = set()  # background work, kept till it ends
        # Where else to try when the target does not answer (the other MX hosts).
        self.fallbacks: list[Target] = []

    @property
    def lang(self) -> str:
        return self.options.lang

    @property
    def waiting_for_input(self) -> asyncio.Event:
        """Set while the console waits at a prompt: tests and scripted drivers type then."""
        return self.reader.waiting

    @property
    def raw(self) -> bool:
        return self.view.raw

    @raw.setter
    def raw(self, on: bool) -> None:
        self.view.raw = on

    @property
    def hex(self) -> bool:
        return self.view.hex

    @hex.setter
    def hex(self, on: bool) -> None:
        self.view.hex = on

    # -- output: the view's -----------------------------------------------------------

    def show(self, fragments: render.Fragments) -> None:
        self.view.show(fragments)

    def say(self, key: str, style: str = "class:notice", /, **params: object) -> None:
        self.view.say(key, style, **params)

    def print_text(self, text: str, style: str = "") -> None:
        self.view.print_text(text, style)

    # -- running -----------------------------------------------------------------------

    async def run(self) -> int:
        """Connect, then loop until :quit or Ctrl-D; 0 on a normal exit, 3 if never connected.

        Alone, a console ignores `:pop3`; `console.switch.Switchboard` runs it beside a POP3
        console (the CLI does)."""
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
        candidates = [self.target, *self.fallbacks]
        for index, candidate in enumerate(candidates):
            try:
                await self.connect(candidate)
                break
            except ConnectionFailed as error:
                if index == len(candidates) - 1:
                    self._close_transcript()
                    print(f"smtp-tutor: {error}", file=self.errors or sys.stderr, flush=True)
                    return 3
                self.say("connect_failed", "class:finding.error", error=str(error))
        self._open_reader()
        if self.lesson is not None:
            self.lesson.begin()
        return None

    async def loop(self) -> None:
        """Read and handle lines until :quit, Ctrl-D (`ended`) or a `:pop3`/`:smtp` switch."""
        with patch_stdout(raw=True) if self.reader.plain is None else contextlib.nullcontext():
            while not self.quit_requested and self.switch is None:
                try:
                    text = await self._read()
                except KeyboardInterrupt:
                    await self._interrupted()
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
        """A bug: one line on screen, the traceback in the debug log (on screen with --debug)."""
        redact = self.tracker.redact
        where = write_failure(error, context, redact, self.options.debug_log)
        summary = redact(f"{type(error).__name__}: {error}")
        self.say("internal_error", "class:finding.error", error=summary, path=where or "-")
        if self.options.debug:
            self.print_text(format_failure(error, redact), "class:finding.error")

    def spawn(self, work: Coroutine[Any, Any, None], context: str) -> None:
        """Run `work` in the background, kept until it ends; its failure is reported."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                self.report_failure(finished.exception(), context)  # type: ignore[arg-type]

        task.add_done_callback(done)

    def _open_transcript(self) -> None:
        path = self.options.transcript
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 like :save: a transcript tells who logged in where, even with secrets masked.
        self._transcript_file = open_private(path)
        self.recorder.attach(self._transcript_file, format=self.options.transcript_format)

    def _close_transcript(self) -> None:
        if self._transcript_file is not None:
            self.recorder.detach(self._transcript_file)
            self._transcript_file.close()
            self._transcript_file = None

    def save_transcript(self, path: Path) -> None:
        """`:save FILE`: the whole session so far; `.jsonl` files get JSON Lines."""
        write_private(path, self.recorder.render("jsonl" if path.suffix == ".jsonl" else "text"))

    async def connect(self, target: Target) -> None:
        """Open a new session (closing any old one); raises ConnectionFailed."""
        if self.session is not None:
            await self.session.close()
        self.target = target
        self.auth.reset()
        self.auth.credentials = None  # a new connection: :mailbox asks nobody before AUTH
        self.header_block.reset()
        self.template.clear()
        self.say("connecting", target=target.label)
        self.session = Session(target, self._on_event, self._on_wire)
        # Recorded first: with implicit TLS the handshake's @tls must follow @connect.
        implicit = wants_implicit_tls(target.port, target.implicit_tls)
        self._record(self.recorder.connected, target.host, target.port, implicit)
        try:
            await self.session.connect()
        except ConnectionFailed as error:
            self._record(self.recorder.closed, str(error))
            raise
        await self.session.wait_idle(target.reply_timeout + 1)

    def _describe_keyword(self, keyword: str) -> str | None:
        """An EHLO keyword's meaning for the completion menu (the knowledge, when first asked)."""
        from smtp_tutor.core.knowledge import load_knowledge

        return _summary(load_knowledge().keyword(keyword, self.lang))

    def _open_reader(self) -> None:
        """The prompts touch the terminal, so they are made only once connected."""
        if self.reader.plain is not None:
            return
        history = None
        if self.options.history_path is not None:
            history = SafeFileHistory(
                self.options.history_path, tracker=self.tracker, dialogue=self._dialogue
            )
            if history.error is not None:
                self.say("history_problem", "class:finding.warning", error=history.error)
        from smtp_tutor.console.colon_commands import COMMANDS

        commands = [
            (f":{name}", message("help", f"commands.{name}.text", self.lang)) for name in COMMANDS
        ]
        completer = SMTPCompleter(
            self._dialogue,
            commands,
            addresses=self.addresses,
            header_block=self.header_block,
            describe=self._describe_keyword,
            lang=self.lang,
        )
        self.reader.open(
            completer=completer,
            toolbar=self._toolbar if self.options.toolbar else None,
            editing_mode=self.options.editing_mode,
            history=history,
        )

    def _dialogue(self) -> Dialogue | None:
        return self.session.dialogue if self.session is not None else None

    def _toolbar(self) -> render.FormattedText:
        state = ToolbarState(
            server=self.target.label,
            dialogue=self._dialogue(),
            lang=self.lang,
            manual=self.options.manual,
            raw=self.view.raw,
            lesson=self.lesson.toolbar_text() if self.lesson is not None else None,
        )
        return render.as_text(toolbar_fragments(state))

    async def _read(self) -> str:
        """The next line, read at the prompt the state asks for."""
        dialogue = self._dialogue()
        read = self.reader.read
        need = self.auth.asking
        if need is not None:
            if self.reader.typed_ahead(lines=True):
                # Lines typed before the question was on screen were not answers to it:
                # they go out as typed, and the helper steps aside for this exchange.
                what = render.plain(render.say(f"auth_what_{need}", self.lang)).strip()
                self.auth.reset()
                self.say("auth_typed_ahead", "class:explain", what=what)
            else:
                label = prompt_label(dialogue, need)
                return await read(label, secret=not self.auth.echo, kind=None)
        if self.bdat_lines is not None:
            return await read("bdat> ", secret=False, kind=None)
        if dialogue is not None and dialogue.sending_data:
            default = ""
            if self.template and self.reader.typed_ahead(lines=False):
                # A template line would be joined to the keys already typed: stop it.
                self.template.clear()
                self.say("template_stopped", "class:explain")
            elif self.template:
                default = self.template.popleft()
            return await read(prompt_label(dialogue), secret=False, kind=None, default=default)
        if dialogue is not None and dialogue.awaiting_auth_response:
            # Typed by hand (manual mode): after a password challenge the answer is masked.
            secret = self.auth.password_challenge
            return await read(prompt_label(dialogue), secret=secret, kind=None)
        return await read(prompt_label(dialogue), secret=False, kind=LineKind.COMMAND)

    async def _interrupted(self) -> None:
        """Ctrl-C: cancel the line; at an AUTH prompt cancel the exchange; stop a template."""
        self.template.clear()
        if self.auth.asking is not None:
            await self._send_auth_line(self.auth.cancel())

    # -- input -------------------------------------------------------------------------

    async def _handle_input(self, text: str) -> None:
        if self.auth.asking is not None:
            await self._provide_secret(text)
            return
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if self.bdat_lines is not None:
            await self._collect_bdat(lines)
            return
        if len(lines) > 1:
            if lines[-1] == "":
                lines.pop()
            await self._paste(lines)
            return
        await self._line(text)

    async def _line(self, line: str, wait: bool = True, pasted: bool = False) -> None:
        if line.startswith(":") and not line.startswith("::"):
            from smtp_tutor.console.colon_commands import run_command

            await run_command(self, line[1:])
            return
        if line.startswith("::"):
            line = line[1:]
        await self.send(line, wait=wait, pasted=pasted)

    async def _paste(self, lines: list[str]) -> None:
        """Several lines at once: a pipelined group where PIPELINING allows, else one by one.

        Message lines in a paste are checked once, as one block, when the paste ends (or at
        its final dot) — never line by line.
        """
        dialogue = self._dialogue()
        caps = dialogue.capabilities if dialogue is not None else None
        pipelining = caps is not None and caps.has("PIPELINING")
        if dialogue is not None and not dialogue.sending_data:
            key = "pipelining_group" if pipelining else "pipelining_one_by_one"
            self.say(key, count=len(lines))
        self._grouping = pipelining
        first_pasted: int | None = None
        try:
            for index, line in enumerate(lines):
                if self.switch is not None:  # typed for the other protocol: not sent here
                    self.switch_rest = lines[index:]
                    break
                dialogue = self._dialogue()
                in_data = dialogue is not None and dialogue.sending_data
                if in_data and first_pasted is None:
                    first_pasted = len(self.composer.lines) + 1
                if in_data and line == ".":
                    first_pasted = None  # the whole message is checked before its dot
                verb = parse_command(line).verb
                ender = line == "." if in_data else ends_group(verb)
                wait = not pipelining or ender or line.startswith(":")
                await self._line(line, wait=wait, pasted=in_data)
            dialogue = self._dialogue()
            if first_pasted is not None and dialogue is not None and dialogue.sending_data:
                await self._check_pasted(first_pasted)
            if self.session is not None:
                await self.session.wait_idle(self.target.reply_timeout + 1)
        finally:
            self._grouping = False

    async def _check_pasted(self, first: int) -> None:
        """A pasted part of a message: one check of the block, then it goes out (or waits)."""
        numbers = range(first, len(self.composer.lines) + 1)
        if not self.options.manual:
            findings = self.composer.check(smtputf8=_smtputf8(self._dialogue()), numbers=numbers)
            shown = [f for f in findings if f.severity != "info" or self.composer.can_fix(f)]
            if shown:
                self.say("paste_title", "class:finding.warning")
                self._note_findings(shown, "    - ")
        await self._flush_message(self.composer.ready())
        if self.composer.holding:
            self.say("held_lines", "class:explain", count=len(self.composer.held))

    async def send(
        self, line: str, wait: bool = True, *, pasted: bool = False, confirmed: bool = False
    ) -> None:
        """Check, then send one line raw — or hold it back, never change it.

        With confirm_on_warning a line the checker warns about waits for `:send` or `:drop`,
        and so does every line typed after it, in order.
        """
        session = self.session
        if session is None or not session.is_open:
            self.say("not_connected", "class:finding.error")
            return
        if self.held_commands and not confirmed:
            self.held_commands.append(line)
            self.say("held_behind", "class:explain", line=self.tracker.redact(line))
            return
        dialogue = session.dialogue
        if dialogue.sending_data:
            await self._message_line(line, pasted=pasted, confirmed=confirmed)
            return
        findings = session.check(line)
        self.show(render.finding_fragments(findings, self.lang))
        serious = [f for f in findings if f.severity in ("error", "warning")]
        if serious and self.options.confirm_on_warning and not confirmed:
            self.held_commands.append(line)
            self.say("held_confirm", "class:explain")
            return
        auth_answer = dialogue.awaiting_auth_response
        if self.lesson is not None:
            self.lesson.on_send(line, False, auth_answer)
        if not auth_answer:
            self.auth.start(line, self.options.manual)
            self.addresses.learn(line)
        else:  # typed by hand (manual mode): a secret from here on
            self.tracker.add_line(line)
        sent = await session.send(line)
        if sent is not None:
            secret = None
            if auth_answer:
                secret = self.auth.typed_secret(line.strip(), dialogue.auth_mechanism)
            elif is_auth_with_response(line):
                mechanism, response = line.split()[1].upper(), line.split()[2]
                secret = self.auth.typed_secret(response, mechanism, initial=True)
            self._record(self.recorder.sent, line, secret)
            if sent.verb == "DATA":
                self.composer.reset()
        if wait:
            await session.wait_idle(self.target.reply_timeout + 1)

    async def release_held(self) -> None:
        """`:send`: what was held back goes out exactly as typed, in order."""
        if self.held_commands:
            lines, self.held_commands = self.held_commands, []
            await self.send(lines[0], confirmed=True)
            for line in lines[1:]:
                await self._line(line)
            return
        dialogue = self._dialogue()
        if dialogue is not None and dialogue.sending_data and self.composer.held:
            self.say("sent_as_typed", "class:sent", count=len(self.composer.held))
            await self._flush_message(self.composer.release())
            return
        self.say("nothing_held", "class:explain")

    async def drop_held(self) -> None:
        """`:drop`: forget what was held back (the user's explicit act), saying what."""
        dialogue = self._dialogue()
        if self.held_commands:
            dropped, self.held_commands = self.held_commands, []
        elif dialogue is not None and dialogue.sending_data and self.composer.held:
            dropped = self.composer.drop()
        else:
            self.say("nothing_held", "class:explain")
            return
        for line in dropped:
            self.say("dropped", "class:explain", line=self.tracker.redact(line))

    async def fix_message(self) -> None:
        """`:fix`: show each rewrite on offer, apply them, and send the held lines."""
        dialogue = self._dialogue()
        if dialogue is None or not dialogue.sending_data or not self.composer.holding:
            self.say("fix_nothing", "class:explain")
            return
        for rewrite in self.composer.apply():
            self.say(
                "fix_applied", "class:sent", number=rewrite.number, old=rewrite.old, new=rewrite.new
            )
        await self._flush_message(self.composer.release())

    # -- DATA --------------------------------------------------------------------------

    async def _message_line(self, line: str, *, pasted: bool, confirmed: bool) -> None:
        """A line of the message: kept, noted, and sent as typed unless held back."""
        session = self.session
        assert session is not None
        if line == ".":
            if not confirmed:
                serious = self._lint_before_dot()
                if serious and self.options.confirm_on_warning:
                    self.held_commands.append(line)
                    self.say("held_dot", "class:explain")
                    return
            await self._flush_message(self.composer.release())
            await self._send_message_line(".")
            await session.wait_idle(self.target.reply_timeout + 1)
            return
        self.show(render.finding_fragments(session.check(line), self.lang))
        header = self.header_block.open and line != ""
        self.composer.add(line)
        self.header_block.feed(line)
        if pasted:
            return  # held until the paste ends: the block is checked once
        if header and not self.options.manual:
            findings = self.composer.check(smtputf8=_smtputf8(self._dialogue()))
            self._note_findings(
                [f for f in findings if f.severity != "info" or self.composer.can_fix(f)], "  ! "
            )
        await self._flush_message(self.composer.ready())
        if self.composer.holding:
            # Said in full when a line is newly held for a rewrite, briefly after that.
            fresh = len(self.composer.lines) in self.composer.rewrites
            key = "held_lines" if fresh else "held_more"
            self.say(key, "class:explain", count=len(self.composer.held))

    async def _flush_message(self, lines: list[str]) -> None:
        for held in lines:
            await self._send_message_line(held)

    async def _send_message_line(self, line: str) -> None:
        """One line of message text (or the final dot) onto the wire, dot-stuffed."""
        session = self.session
        if session is None or not session.is_open:
            return
        if self.lesson is not None:
            self.lesson.on_send(line, True, False)
        sent = await session.send(line)
        if sent is None:
            return
        wire = stuff_line(line) if line != "." else line
        self._record(self.recorder.sent, wire, None)
        if line != "." and line.startswith("."):
            self.say("dot_stuffed", "class:sent", line="." + line)

    def _note_findings(self, findings: list[LintFinding], marker: str) -> None:
        """Each finding as a note, with the rewrite `:fix` would make where there is one."""
        for finding in findings:
            self._show_findings([finding], marker)
            rewrite = self.composer.rewrites.get(finding.line or 0)
            if rewrite is not None and rewrite.finding == finding:
                fixed = rewrite.new
                key = "fix_offer_fold" if fixed[:1] in (" ", "\t") else "fix_offer"
                self.say(key, "class:explain", number=rewrite.number, fixed=fixed.strip())

    def _show_findings(self, findings: list[LintFinding], marker: str) -> None:
        from smtp_tutor.core.message_lint import render_finding

        for finding in findings:
            style = f"class:finding.{finding.severity}"
            self.print_text(marker + render_finding(finding, self.lang), style)

    def _lint_before_dot(self) -> bool:
        """Check the whole message before its final dot; True if something is serious."""
        dialogue = self._dialogue()
        if dialogue is None:
            return False
        from smtp_tutor.core.message_lint import lint_message

        mail_params = parse_mail_parameters(dialogue)
        findings = [
            f
            for f in lint_message(
                list(self.composer.lines),
                envelope_from=dialogue.mail_from,
                recipients=list(dialogue.recipients),
                eight_bit_mime=mail_params.get("BODY", "").upper() == "8BITMIME",
                smtputf8="SMTPUTF8" in mail_params,
            )
            if f.line is None or not f.fix or f.severity != "info"
        ]
        if not findings:
            return False
        self.say("lint_title", "class:finding.warning")
        self._show_findings(findings, "    - ")
        return any(f.severity in ("error", "warning") for f in findings)

    # -- CHUNKING ----------------------------------------------------------------------

    async def _collect_bdat(self, lines: list[str]) -> None:
        """Lines typed after :bdat form the message; a lone "." sends it in BDAT chunks."""
        assert self.bdat_lines is not None
        for line in lines:
            if line == ".":
                message = "".join(f"{text}\r\n" for text in self.bdat_lines).encode()
                self.bdat_lines = None
                await self.send_bdat(message)
                return
            self.bdat_lines.append(line[1:] if line.startswith("::") else line)

    async def send_bdat(self, message: bytes) -> None:
        """Send `message` as BDAT chunks of the chosen size, the last one marked LAST."""
        session = self.session
        if session is None or not session.is_open:
            self.say("not_connected", "class:finding.error")
            return
        size = self.bdat_chunk_size or max(len(message), 1)
        chunks = [message[i : i + size] for i in range(0, len(message), size)] or [b""]
        caps = session.dialogue.capabilities
        pipelined = caps is not None and caps.has("PIPELINING")
        for number, chunk in enumerate(chunks, 1):
            last = number == len(chunks)
            command = f"BDAT {len(chunk)}" + (" LAST" if last else "")
            self.say("bdat_chunk", "class:sent", command=command, number=number, total=len(chunks))
            sent = await session.send_chunk(chunk, last)
            if sent is None:
                return
            self._record(self.recorder.sent_chunk, command, chunk)
            if not pipelined or last:
                await session.wait_idle(self.target.reply_timeout + 1)
            dialogue = session.dialogue
            if dialogue.phase is Phase.CLOSED:
                return

    # -- AUTH helper: it decides, the console sends -----------------------------------

    async def _provide_secret(self, value: str) -> None:
        try:
            line = self.auth.answer(value)
        except AuthError as error:
            self.print_text(f"  {error}", "class:finding.warning")
            return
        await self._send_auth_line(line)

    async def _send_auth_line(self, line: AuthLine | None) -> None:
        if line is None or self.session is None:
            return
        step = line.step
        if step.secret:
            self.say("auth_sent_secret", "class:sent")
        elif step.line not in ("*", ""):
            self.say("auth_sent_clear", "class:sent", line=step.line)
        if step.note:
            self.say("auth_note", "class:explain", note=localize(step.note, self.lang))
        assert step.line is not None
        if await self.session.send(step.line) is not None:
            self._record(self.recorder.sent, step.line, line.placeholder)
        await self.session.wait_idle(self.target.reply_timeout + 1)

    # -- what comes back ---------------------------------------------------------------

    def _on_event(self, event: SessionEvent) -> None:
        lang = self.lang
        if isinstance(event, ReplyEvent):
            outcome = event.outcome
            answered = outcome.answered
            if self._grouping and answered is not None and answered.command is not None:
                self.say("answers", "class:explain", command=answered.command.line)
            self.show(render.reply_fragments(outcome.reply, event.latency, lang))
            if outcome.unsolicited:
                self.say("unsolicited", "class:finding.warning")
            command = _context(answered.verb) if answered is not None else None
            self.show(render.explanation_fragments(outcome.reply, lang, command))
            self._record(self.recorder.received, outcome.reply, event.latency)
            self._remember_caps(outcome)
            next_line = self.auth.on_reply(outcome)
            need = self.auth.asking
            if need is not None:
                what = render.plain(render.say(f"auth_what_{need}", self.lang)).strip()
                self.say("auth_type_plain", what=what)
            elif next_line is not None:
                self.spawn(self._send_auth_line(next_line), "sending the next AUTH line")
        elif isinstance(event, TLSEvent):
            self.show(render.tls_fragments(event.info, lang))
            self._record(self.recorder.tls_started, event.info.version, event.info.cipher)
            dialogue = self._dialogue()
            if dialogue is not None and dialogue.phase is Phase.GREETED:
                self.say("tls_reminder")
        elif isinstance(event, TLSFailed):
            self.say("tls_failed", "class:finding.error", reason=visible(event.reason))
        elif isinstance(event, SilenceEvent):
            self.say("silence", "class:finding.warning", seconds=f"{event.seconds:g}")
        elif isinstance(event, ClosedEvent):
            self.auth.reset()
            self.template.clear()
            if self.composer.held:
                self.say("held_lost", "class:finding.warning", count=len(self.composer.held))
                self.composer.release()
            self._record(self.recorder.closed, event.reason)
            self.say("closed", reason=localize(event.reason, self.lang))
        if self.lesson is not None:
            self.lesson.on_event(event)

    def _remember_caps(self, outcome: Outcome) -> None:
        dialogue = self._dialogue()
        answered = outcome.answered
        if dialogue is None or answered is None or answered.verb != "EHLO" or not outcome.success:
            return
        if dialogue.capabilities is None:
            return
        key = (
            "caps_context_auth"
            if dialogue.authenticated
            else ("caps_context_tls" if dialogue.tls_active else "caps_context_plain")
        )
        label = message("console", key, self.lang)
        self.caps_history.append((label, dialogue.capabilities))

    def _on_wire(self, event: WireEvent) -> None:
        self.view.wire(event, self.tracker.redact)

    # -- transcript ------------------------------------------------------------------

    def _record(self, event: Callable[..., None], *args: object) -> None:
        """Record one event; a transcript file that fails is reported once, the session goes on."""
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


def parse_mail_parameters(dialogue: Dialogue | None) -> dict[str, str]:
    """The ESMTP parameters of the MAIL command that opened the current transaction."""
    if dialogue is None:
        return {}
    return {key: value or "" for key, value in dialogue.mail_parameters.items()}


def _smtputf8(dialogue: Dialogue | None) -> bool:
    return "SMTPUTF8" in parse_mail_parameters(dialogue)


async def run_on_sandbox(
    sandbox: Sandbox | SandboxProcess,
    options: ConsoleOptions,
    prepare: Callable[[Any], None] | None = None,
    console_class: Callable[..., Any] | None = None,
    runner: Callable[[Any], Coroutine[Any, Any, int]] | None = None,
) -> int:
    """A console on a started sandbox, with its banner; the sandbox stops when it ends.

    `console_class`: the POP3 console's class (`console.pop3_console`) connects it to the
    sandbox's POP3 port instead of its SMTP one (a POP3 lesson). `runner` runs the console
    (`console.switch.run_on_sandbox` passes one with `:pop3`/`:smtp`); else `console.run()`."""
    from smtp_tutor import __version__

    options.mailbox = sandbox.mailbox_path
    options.banner = message(
        "console",
        "banner",
        options.lang,
        version=__version__,
        address=f"{sandbox.host}:{sandbox.port}",
        mailbox=sandbox.mailbox_path,
    )
    if sandbox.pop3_port is not None:  # before the last line, the "Start with" a lesson replaces
        lines = options.banner.splitlines()
        address = f"{sandbox.pop3_host}:{sandbox.pop3_port}"
        lines.insert(-1, message("console", "banner_pop3", options.lang, address=address))
        options.banner = "\n".join(lines)
    if console_class is None:
        console: Any = Console(Target(sandbox.host, sandbox.port), options)
    else:
        assert sandbox.pop3_port is not None and sandbox.pop3_host is not None
        console = console_class(Target(sandbox.pop3_host, sandbox.pop3_port), options)
    if prepare is not None:
        prepare(console)
    try:
        return await (runner(console) if runner is not None else console.run())
    finally:
        await sandbox.stop()


def _context(verb: str) -> str | None:
    """The knowledge base's name for the command a reply answers."""
    if verb == END_OF_DATA:
        return "DOT"
    if verb == AUTH_RESPONSE:
        return "AUTH"
    if verb.startswith("<"):
        return None
    return verb


def _summary(info: object) -> str | None:
    return getattr(info, "summary", None)
