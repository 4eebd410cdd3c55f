"""`:pop3` and `:smtp`: one console, the sandbox's two servers, no history lost.

A `Switchboard` runs an SMTP `Console` and a `Pop3Console` side by side on the same terminal
(the same input, output and, from a pipe, the same line reader). Only one reads lines at a
time; the other stays connected, its state, transcript, prompt history, completion and
toolbar untouched, until the user switches back. `:pop3 [PORT]` opens the POP3 session the
first time (to the same host: the sandbox's POP3 port, else the port given, else 110) and
resumes it after; `:smtp [PORT]` does the same the other way (the sandbox's SMTP port, else
25).

What the user types is what the server gets, and the server it was typed for: a line
typed after `:pop3` — in the same paste, or while the POP3 session was being opened — is
read by the POP3 console, never by the SMTP one. If the other session cannot be opened, or
the server has closed it meanwhile, that is said in one line and its console is the one
reading anyway, so the next line goes nowhere but to `:reconnect` or `:smtp`.

Each protocol keeps its own transcript (a transcript speaks one protocol): with
`--transcript FILE` the first one writes FILE and the other a sibling named after its
protocol (`session.smtp` → `session.pop3`, `log.jsonl` → `log.pop3.jsonl`); each transcript
gets a `#` comment at every switch, naming the other file. `:save FILE` saves the active
protocol's part in FILE and the other's part in the sibling.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smtp_tutor.client.connection import ConnectionFailed
from smtp_tutor.client.session import Target
from smtp_tutor.console.app import Console, ConsoleOptions
from smtp_tutor.core.records import replace

# The POP3 console (and the message lint under it, with the email package) loads with the
# first `:pop3`: an SMTP console that never switches starts as fast as before.

if TYPE_CHECKING:
    from smtp_tutor.sandbox import Sandbox
    from smtp_tutor.sandbox.process import SandboxProcess

SMTP_PORT = 25
POP3_PORT = 110  # client.pop3_session's, without loading the POP3 client at start
PROTOCOLS = ("smtp", "pop3")
DEFAULT_PORTS = {"smtp": SMTP_PORT, "pop3": POP3_PORT}
NAMES = {"smtp": "SMTP", "pop3": "POP3"}


def protocol_of(console: Any) -> str:
    return "smtp" if isinstance(console, Console) else "pop3"


def sibling_path(path: Path, protocol: str) -> Path:
    """Where the other protocol's transcript goes: `session.smtp` → `session.pop3`,
    `log.jsonl` → `log.pop3.jsonl`, `notes` → `notes.pop3`."""
    if path.suffix.lower() in (".smtp", ".pop3"):
        return path.with_suffix(f".{protocol}")
    if path.suffix:
        return path.with_name(f"{path.stem}.{protocol}{path.suffix}")
    return path.with_name(f"{path.name}.{protocol}")


class Switchboard:
    """The consoles of one terminal, one per protocol; the active one reads the lines."""

    def __init__(self, first: Any, ports: dict[str, int] | None = None) -> None:
        self.first = first
        self.active: Any = first
        self.consoles: dict[str, Any] = {protocol_of(first): first}
        # The other protocol's port when the server is known to have it (the sandbox).
        self.ports = dict(ports or {})
        first.switchboard = self

    @property
    def waiting_for_input(self) -> Any:
        """The consoles share one event: tests and scripts type when either waits."""
        return self.first.waiting_for_input

    async def run(self) -> int:
        """Run the first console, switching as asked; 0 on a normal exit, 3 if never connected."""
        code = await self.first.start()
        if code is not None:
            return code
        try:
            while True:
                console = self.active
                await console.loop()
                if console.quit_requested or console.ended or console.switch is None:
                    break
                request, console.switch = console.switch, None
                rest, console.switch_rest = console.switch_rest, []
                await self._switch(console, *request, rest)
        finally:
            for console in self.consoles.values():
                await console.finish()
        return 0

    async def _switch(self, old: Any, protocol: str, port: int | None, rest: list[str]) -> None:
        """Make `protocol`'s console the active one, opening or resuming its session."""
        new = self.consoles.get(protocol)
        if new is None:
            new = self._make(old, protocol, port)
            self.consoles[protocol] = new
            self._activate(old, new)
            await self._open(new, new.target, first=True)
        else:
            self._activate(old, new)
            if port is not None and port != new.target.port:
                await self._open(new, replace(new.target, port=port, implicit_tls=None))
            elif new.session is None or not new.session.is_open:
                new.say("switch_closed", "class:finding.warning", protocol=NAMES[protocol])
            else:
                new.say("switch_resumed", "class:notice", protocol=NAMES[protocol])
        if rest and not new.quit_requested:
            await new._handle_input("\n".join(rest))

    def _activate(self, old: Any, new: Any) -> None:
        """Mark both transcripts, hand the shared pipe reader its masking, and switch."""
        old_name, new_name = NAMES[protocol_of(old)], NAMES[protocol_of(new)]
        for console, text in (
            (old, f"switched to {new_name} (:{protocol_of(new)})"),
            (new, f"switched here from {old_name} (:{protocol_of(new)})"),
        ):
            other = self.consoles.get(protocol_of(old if console is new else new))
            path = other.options.transcript if other is not None else None
            suffix = f"; its transcript: {path}" if path is not None else ""
            console._record(console.recorder.comment, text + suffix)
        if new.reader.plain is not None:
            from smtp_tutor.console.pop3_history import masked_echo

            new.reader.plain.mask = masked_echo if protocol_of(new) == "pop3" else None
        self.active = new

    def _make(self, old: Any, protocol: str, port: int | None) -> Any:
        """The other protocol's console, on the same host and terminal as `old`."""
        known = self.ports.get(protocol) or _advertised_pop3_port(old, protocol)
        target = replace(
            old.target, port=port or known or DEFAULT_PORTS[protocol], implicit_tls=None
        )
        options: ConsoleOptions = replace(
            old.options,
            banner=None,
            notices=[],
            history_path=_history_path(protocol, old.options.history_path),
            transcript=(
                sibling_path(old.options.transcript, protocol)
                if old.options.transcript is not None
                else None
            ),
            lesson_dirs=list(old.options.lesson_dirs),
        )
        maker: Callable[..., Any] = Console
        if protocol == "pop3":
            from smtp_tutor.console.pop3_console import Pop3Console

            maker = Pop3Console
        new = maker(target, options, input=old.input, output=old.output, errors=old.errors)
        # One terminal: the same pipe reader (lines read ahead stay in order), one "waiting".
        new.reader.plain = old.reader.plain
        new.reader.waiting = old.reader.waiting
        new.switchboard = self
        return new

    async def _open(self, console: Any, target: Target, *, first: bool = False) -> None:
        """Connect `console` (its transcript and prompts on first use); a failure is one line."""
        if first:
            try:
                console._open_transcript()
            except OSError as error:
                console.say(
                    "save_failed",
                    "class:finding.error",
                    path=console.options.transcript,
                    error=error.strerror or error,
                )
            if console.options.transcript is not None and console._transcript_file is not None:
                console.say("switch_transcript", path=console.options.transcript)
        try:
            await console.connect(target)
        except ConnectionFailed as error:
            console.say("switch_failed", "class:finding.error", error=str(error))
        if first:
            console._open_reader()

    def save(self, console: Any, path: Path) -> list[Path]:
        """`:save FILE`: the active protocol's part in FILE, the other's in its sibling."""
        console.save_transcript(path)
        saved = [path]
        for protocol, other in self.consoles.items():
            if other is not console:
                other_path = sibling_path(path, protocol)
                other.save_transcript(other_path)
                saved.append(other_path)
        return saved


def _advertised_pop3_port(console: Any, protocol: str) -> int | None:
    """The POP3 port a `serve` sandbox names in EHLO (`XSMTPTUTOR-POP3 PORT`), if any."""
    if protocol != "pop3" or console.session is None:
        return None
    caps = getattr(console.session.dialogue, "capabilities", None)
    params = caps.params("XSMTPTUTOR-POP3") if caps is not None else ()
    if params and params[0].isdigit() and 0 < int(params[0]) < 65536:
        return int(params[0])
    return None


def _history_path(protocol: str, current: Path | None) -> Path | None:
    """Each protocol its own prompt history; none at all when the first console has none."""
    if current is None:
        return None
    if protocol == "pop3":
        from smtp_tutor.console.pop3_console import default_pop3_history_path

        return default_pop3_history_path()
    from smtp_tutor.console.history import default_history_path

    return default_history_path()


async def run_switching(console: Any, ports: dict[str, int] | None = None) -> int:
    """Run `console` (SMTP or POP3) with `:pop3`/`:smtp` available."""
    return await Switchboard(console, ports).run()


async def run_on_sandbox(
    sandbox: Sandbox | SandboxProcess,
    options: ConsoleOptions,
    prepare: Callable[[Any], None] | None = None,
    console_class: Callable[..., Any] | None = None,
) -> int:
    """`app.run_on_sandbox` with `:pop3`/`:smtp` between the sandbox's two servers."""
    from smtp_tutor.console.app import run_on_sandbox as run_one

    ports = {"smtp": sandbox.port}
    if sandbox.pop3_port is not None:
        ports["pop3"] = sandbox.pop3_port

    def runner(console: Any) -> Any:
        return run_switching(console, ports)

    return await run_one(sandbox, options, prepare, console_class, runner=runner)
