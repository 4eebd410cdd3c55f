"""The console's own commands: every line that starts with a colon.

Each command is a small async function taking the console and its arguments; the table at
the bottom is the single list that :help, completion and dispatch share. Words come from
`data/help.toml` and `data/console.toml`, so every command speaks English and Chinese.
What a command prints is wrapped to the terminal's width (`_columns`, `console/wrap.py`).
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prompt_toolkit.utils import get_cwidth

from smtp_tutor.client.connection import ConnectionFailed
from smtp_tutor.console import render
from smtp_tutor.console.wrap import wrap_text
from smtp_tutor.core.auth import AuthError, b64decode_text, b64encode_text
from smtp_tutor.core.catalogue import message
from smtp_tutor.core.hints import next_step
from smtp_tutor.core.records import replace

if TYPE_CHECKING:
    from smtp_tutor.console.app import Console
    from smtp_tutor.console.lesson import LessonRunner

Handler = Callable[["Console", list[str]], Awaitable[None]]

HELP_TOPICS = ("auth", "data", "tls", "paste", "sandbox", "config")


def _columns(console: Console) -> int:
    """How wide the console's screen is, for the text a command prints."""
    return render.terminal_columns(console.output)


async def run_command(console: Console, text: str) -> None:
    """Run `:name args…` (the text after the colon)."""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    if not words:
        await _help(console, [])
        return
    name, args = words[0].lower(), words[1:]
    handler = COMMANDS.get(name) or ALIASES.get(name)
    if handler is None:
        console.say("unknown_command", "class:finding.error", name=name)
        return
    await handler(console, args)


async def _help(console: Console, args: list[str]) -> None:
    lang, columns = console.lang, _columns(console)
    if args:
        topic = args[0].lower().lstrip(":")
        if topic in COMMANDS:
            console.print_text(_command_line(topic, lang, 0, columns))
            return
        if topic not in HELP_TOPICS:
            text = message("help", "unknown_topic", lang, topic=topic)
            console.print_text(wrap_text(text, columns), "class:finding.error")
            return
        from smtp_tutor.console.config import config_path

        console.print_text(wrap_text(message("help", topic, lang, path=config_path()), columns))
        return
    width = max(get_cwidth(message("help", f"commands.{name}.usage", lang)) for name in COMMANDS)
    lines = [wrap_text(message("help", "index", lang), columns)]
    lines += [_command_line(name, lang, width, columns) for name in COMMANDS]
    lines.append(wrap_text(message("help", "index_footer", lang), columns))
    console.print_text("\n".join(lines))


def _command_line(name: str, lang: str, width: int, columns: int) -> str:
    """`  :usage   what it does`, aligned by display width (Chinese is two columns wide);
    what it does wraps under itself to `columns`."""
    usage = message("help", f"commands.{name}.usage", lang)
    padding = " " * max(2, width - get_cwidth(usage) + 2)
    line = f"  {usage}{padding}{message('help', f'commands.{name}.text', lang)}"
    return wrap_text(line, columns, hang=2 + get_cwidth(usage) + len(padding))


async def _hint(console: Console, args: list[str]) -> None:
    if console.lesson is not None:
        console.lesson.hint()
        return
    dialogue = console.session.dialogue if console.session is not None else None
    if dialogue is None:
        return
    key = next_step(dialogue, console.options.manual)
    text = "  " + message("hints", f"{key}.long", console.lang)
    console.print_text(wrap_text(text, _columns(console)), "class:notice")


async def _explain(console: Console, args: list[str]) -> None:
    from smtp_tutor.core.knowledge import explain, format_explanation  # not at start

    if not args:
        console.say("usage", "class:finding.error", usage=":explain CODE")
        return
    try:
        explanation = explain(" ".join(args), console.lang)
    except ValueError as error:
        console.print_text(f"  {error}", "class:finding.error")
        return
    text = format_explanation(explanation, console.lang)
    console.print_text(wrap_text(text, _columns(console), min_hang=4))


async def _connect(console: Console, args: list[str]) -> None:
    if not args or len(args) > 2 or (len(args) == 2 and not args[1].isdigit()):
        console.say("usage", "class:finding.error", usage=":connect HOST [PORT]")
        return
    port = int(args[1]) if len(args) == 2 else 25
    target = replace(console.target, host=args[0], port=port, implicit_tls=None)
    await _open(console, target)


async def _reconnect(console: Console, args: list[str]) -> None:
    await _open(console, console.target)


async def _open(console: Console, target: object) -> None:
    try:
        await console.connect(target)  # type: ignore[arg-type]
    except ConnectionFailed as error:
        console.say("connect_failed", "class:finding.error", error=str(error))


def request_switch(console: Any, protocol: str, args: list[str]) -> None:
    """`:pop3 [PORT]` / `:smtp [PORT]`: ask the switchboard for the other protocol's session.

    Only a request: the console's loop ends after this line, and lines pasted after it are
    kept for the other protocol (`switch_rest`), never sent here."""
    port = args[0] if len(args) == 1 else None
    if len(args) > 1 or (port is not None and not (port.isdigit() and 0 < int(port) < 65536)):
        console.say("usage", "class:finding.error", usage=f":{protocol} [PORT]")
        return
    if console.lesson is not None:
        console.say("switch_in_lesson", "class:finding.error")
        return
    if console.switchboard is None:
        console.say("switch_unavailable", "class:finding.error", protocol=protocol.upper())
        return
    console.switch = (protocol, int(port) if port is not None else None)


async def _pop3(console: Console, args: list[str]) -> None:
    request_switch(console, "pop3", args)


async def _smtp(console: Console, args: list[str]) -> None:
    console.say("switch_already", "class:explain", protocol="SMTP")


async def _headers(console: Console, args: list[str]) -> None:
    dialogue = console.session.dialogue if console.session is not None else None
    if dialogue is None or not dialogue.sending_data:
        console.say("headers_not_in_data", "class:finding.error")
        return
    if not console.header_block.open:
        console.say("headers_after_body", "class:finding.error")
        return
    from smtp_tutor.core.message_lint import header_template

    body = dialogue.mail_parameters.get("BODY") or ""
    lines = header_template(
        envelope_from=dialogue.mail_from,
        recipients=list(dialogue.recipients),
        subject=" ".join(args),
        eight_bit=body.upper() == "8BITMIME",
    )
    seen = {name.lower() for name in console.header_block.seen}
    console.template.extend(
        line for line in lines if not line or line.split(":", 1)[0].lower() not in seen
    )
    console.say("headers_intro")


async def _mailbox(console: Console, args: list[str]) -> None:
    """The newest message in the sandbox; `:mailbox all`: with all of its body."""
    if args not in ([], ["all"]):
        console.say("usage", "class:finding.error", usage=":mailbox [all]")
        return
    path = console.options.mailbox
    if path is None:
        await _mailbox_via_web(console, whole_body=args == ["all"])
        return
    from smtp_tutor.sandbox.storage import Mailbox

    mailbox = Mailbox(path)
    latest = mailbox.latest()  # the newest only: a sandbox kept across sessions can be big
    if latest is None:
        console.say("mailbox_empty")
        return
    fragments = render.mailbox_fragments(
        latest, len(mailbox), console.lang, _columns(console), whole_body=args == ["all"]
    )
    console.show(fragments)


async def _mailbox_via_web(console: Console, *, whole_body: bool) -> None:
    """A class sandbox (`serve --web`) advertised its web view: ask it, as the AUTH user."""
    import asyncio

    from smtp_tutor.client.sandbox_api import SandboxApiError, newest_message, web_address

    session = console.session
    caps = session.dialogue.capabilities if session is not None else None
    params = caps.params("XSMTPTUTOR-WEB") if caps is not None else ()
    base = web_address(params, console.target.host) if params else None
    if base is None:
        key = "mailbox_web_elsewhere" if params else "mailbox_only_sandbox"
        console.say(key, "class:finding.error")
        return
    credentials = console.auth.credentials
    if credentials is None:
        console.say("mailbox_web_auth_first", "class:finding.error", url=base)
        return
    try:
        found = await asyncio.to_thread(newest_message, base, *credentials)
    except SandboxApiError as error:
        console.say("mailbox_web_failed", "class:finding.error", reason=str(error))
        return
    if found is None:
        console.say("mailbox_web_empty", url=base)
        return
    from smtp_tutor.sandbox.storage import StoredMessage

    stored = StoredMessage(found.key, found.raw, found.envelope)
    console.show(
        render.mailbox_fragments(
            stored, found.count, console.lang, _columns(console), whole_body=whole_body
        )
    )


def _switch(console: Console, args: list[str], current: bool, name: str) -> bool | None:
    """`on`/`off` → the new value; no argument flips it; anything else → usage and None."""
    if not args:
        return not current
    word = args[0].lower()
    if word in ("on", "off"):
        return word == "on"
    console.say("usage", "class:finding.error", usage=f":{name} on|off")
    return None


async def _manual(console: Console, args: list[str]) -> None:
    value = _switch(console, args, console.options.manual, "manual")
    if value is not None:
        console.options.manual = value
        console.say("manual_on" if value else "manual_off")


async def _raw(console: Console, args: list[str]) -> None:
    value = _switch(console, args, console.raw, "raw")
    if value is not None:
        console.raw = value
        console.say("raw_on" if value else "raw_off")


async def _hex(console: Console, args: list[str]) -> None:
    value = _switch(console, args, console.hex, "hex")
    if value is not None:
        console.hex = value
        console.say("hex_on" if value else "hex_off")


async def _caps(console: Console, args: list[str]) -> None:
    console.show(render.caps_fragments(console.caps_history, console.lang, _columns(console)))


async def _tls(console: Console, args: list[str]) -> None:
    connection = console.session.connection if console.session is not None else None
    info = connection.tls if connection is not None else None
    alpn = getattr(info, "alpn", None)
    console.show(render.tls_detail_fragments(info, alpn, console.lang, _columns(console)))


async def _b64(console: Console, args: list[str]) -> None:
    console.print_text("  " + b64encode_text(" ".join(args)))


async def _unb64(console: Console, args: list[str]) -> None:
    try:
        console.print_text("  " + b64decode_text(" ".join(args)))  # NUL shown as \0
    except AuthError as error:
        console.print_text(f"  {error}", "class:finding.error")


async def _save(console: Console, args: list[str]) -> None:
    if len(args) != 1:
        console.say("usage", "class:finding.error", usage=":save FILE")
        return
    save_both(console, Path(args[0]).expanduser())


def save_both(console: Any, path: Path) -> None:
    """`:save FILE`, and under a switchboard the other protocol's part in FILE's sibling."""
    board = console.switchboard
    try:
        saved = board.save(console, path) if board is not None else [console.save_transcript(path)]
    except OSError as error:
        name = getattr(error, "filename", None) or path
        console.say("save_failed", "class:finding.error", path=name, error=error.strerror or error)
        return
    for done in saved if board is not None else [path]:
        console.say("saved", path=done)


async def _diagram(console: Console, args: list[str]) -> None:
    """Draw this session so far as a sequence diagram (.svg or .html)."""
    if len(args) != 1:
        console.say("usage", "class:finding.error", usage=":diagram FILE.svg|FILE.html")
        return
    from smtp_tutor.core.transcript import parse_transcript
    from smtp_tutor.diagram.sequence import render_html, render_svg

    path = Path(args[0]).expanduser()
    if path.suffix.lower() not in (".svg", ".html", ".htm"):
        console.say("usage", "class:finding.error", usage=":diagram FILE.svg|FILE.html")
        return
    script = parse_transcript(console.recorder.text(), "<this session>")
    render = render_svg if path.suffix.lower() == ".svg" else render_html
    try:
        path.write_text(render(script, title="smtp-tutor session"), encoding="utf-8")
    except OSError as error:
        console.say("save_failed", "class:finding.error", path=path, error=error.strerror or error)
        return
    console.say("diagram_saved", path=path)


async def _bdat(console: Console, args: list[str]) -> None:
    """CHUNKING: type the message, end it with a lone "."; it goes out as BDAT chunks."""
    if args and not (args[0].isdigit() and int(args[0]) > 0):
        console.say("usage", "class:finding.error", usage=":bdat [CHUNK-SIZE]")
        return
    session = console.session
    if session is None or not session.is_open:
        console.say("not_connected", "class:finding.error")
        return
    findings = session.check("BDAT 1 LAST")  # sequence and CHUNKING advertised?
    console.show(render.finding_fragments(findings, console.lang, _columns(console)))
    console.bdat_chunk_size = int(args[0]) if args else 0
    console.bdat_lines = []
    console.say("bdat_intro")


async def _fix(console: Console, args: list[str]) -> None:
    await console.fix_message()


async def _send(console: Console, args: list[str]) -> None:
    await console.release_held()


async def _drop(console: Console, args: list[str]) -> None:
    await console.drop_held()


async def _clear(console: Console, args: list[str]) -> None:
    from prompt_toolkit.shortcuts import clear

    clear()


def _lesson_or_say(console: Console) -> LessonRunner | None:
    if console.lesson is None:
        console.say("not_in_lesson", "class:finding.error")
    return console.lesson


async def _skip(console: Console, args: list[str]) -> None:
    lesson = _lesson_or_say(console)
    if lesson is not None:
        lesson.skip()


async def _back(console: Console, args: list[str]) -> None:
    lesson = _lesson_or_say(console)
    if lesson is not None:
        lesson.back()


async def _restart(console: Console, args: list[str]) -> None:
    lesson = _lesson_or_say(console)
    if lesson is not None:
        if lesson.on_restart is not None:
            lesson.on_restart()  # before reconnecting: the new session starts from scratch
        await _open(console, console.target)
        lesson.restart()


async def _lessons(console: Console, args: list[str]) -> None:
    from smtp_tutor.console.lesson_list import lesson_list_text
    from smtp_tutor.console.progress import Progress
    from smtp_tutor.core.lessons import load_lessons

    lessons, _errors = load_lessons(console.options.lesson_dirs)
    console.print_text(lesson_list_text(lessons, Progress.load(), console.lang))


async def _quit(console: Console, args: list[str]) -> None:
    console.quit_requested = True


COMMANDS: dict[str, Handler] = {
    "help": _help,
    "hint": _hint,
    "explain": _explain,
    "connect": _connect,
    "reconnect": _reconnect,
    "pop3": _pop3,
    "smtp": _smtp,
    "headers": _headers,
    "mailbox": _mailbox,
    "manual": _manual,
    "raw": _raw,
    "hex": _hex,
    "caps": _caps,
    "tls": _tls,
    "b64": _b64,
    "unb64": _unb64,
    "save": _save,
    "diagram": _diagram,
    "bdat": _bdat,
    "fix": _fix,
    "send": _send,
    "drop": _drop,
    "clear": _clear,
    "skip": _skip,
    "back": _back,
    "restart": _restart,
    "lessons": _lessons,
    "quit": _quit,
}
ALIASES: dict[str, Handler] = {"exit": _quit, "q": _quit, "h": _help, "?": _help}
