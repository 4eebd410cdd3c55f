"""`:pop3` and `:smtp` (issue 11): one console, the sandbox's two servers, driven for real
through prompt_toolkit pipe input on 127.0.0.1 — a message sent over SMTP is RETR'd over
POP3 after `:pop3`, the SMTP session still answers in its phase after `:smtp`, POP3 resumes
logged in; each protocol its own history file and transcript; lines pasted after a switch
go to the new protocol; a session the server closed is said on switching back; a POP3 port
that does not answer is one line, and the lines typed for POP3 never reach the SMTP server."""

from __future__ import annotations

import asyncio
import base64
import signal
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from smtp_tutor.client.session import Target
from smtp_tutor.console.app import Console, ConsoleOptions
from smtp_tutor.console.pop3_console import Pop3Console
from smtp_tutor.console.switch import sibling_path
from smtp_tutor.core.pop3.transcript import script_protocol
from smtp_tutor.sandbox import Sandbox, SandboxConfig
from tests import test_cli
from tests.consoles import run_console, screen_text

env = test_cli.env  # the fixture: a private home, an English locale, no colour

PASSWORD = "s3cret-pw"
PLAIN = base64.b64encode(f"\0student\0{PASSWORD}".encode()).decode()
SEND = [
    "EHLO me.example",
    f"AUTH PLAIN {PLAIN}",
    "MAIL FROM:<student@example.com>",
    "RCPT TO:<student@example.com>",
    "DATA",
    "Subject: switched over",
    "",
    "hello across protocols",
    ".",
]


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    yield


async def on_sandbox(
    tmp_path: Path,
    lines: list[str],
    *,
    first: str = "smtp",
    options: ConsoleOptions | None = None,
    pop3_port: int | None = None,
) -> tuple[str, object, Sandbox]:
    config = SandboxConfig(
        port=0, pop3_port=0, mailbox=tmp_path / "Maildir", users={"student": PASSWORD}
    )
    sandbox = Sandbox(config)
    await sandbox.start()
    try:
        assert sandbox.pop3_port is not None and sandbox.pop3_host is not None
        ports = {"smtp": sandbox.port, "pop3": pop3_port or sandbox.pop3_port}
        if first == "smtp":
            target, cls = Target(sandbox.host, sandbox.port), Console
        else:
            target, cls = Target(sandbox.pop3_host, sandbox.pop3_port), Pop3Console
        code, out, console = await run_console(
            target,
            lines,
            options or ConsoleOptions(color=False, toolbar=False),
            console_class=cls,
            ports=ports,
        )
        assert code == 0, out
    finally:
        await sandbox.stop()
    return out, console, sandbox


def test_smtp_then_pop3_then_back_keeps_both_sessions(tmp_path: Path) -> None:
    lines = [
        *SEND,
        ":pop3",
        "USER student",
        f"PASS {PASSWORD}",
        "RETR 1",
        ":smtp",
        "NOOP",
        "MAIL FROM:<student@example.com>",  # still authenticated: the sandbox takes it
        ":pop3",
        "STAT",  # still logged in: a TRANSACTION command answers +OK
        ":smtp",
        "RSET",
    ]
    out, console, _ = asyncio.run(on_sandbox(tmp_path, lines))
    assert "250" in screen_text(out).split(":pop3")[0].splitlines()[-1]  # the message queued
    # Prompt redraws repeat typed lines, so the notes the console prints mark the parts.
    smtp_back = out.index("back to the SMTP session")
    pop3_back = out.index("back to the POP3 session")
    pop3_part, smtp_part, resumed = out[:smtp_back], out[smtp_back:pop3_back], out[pop3_back:]
    retr = pop3_part[pop3_part.index("RETR 1") :]
    assert "+OK" in retr and "hello across protocols" in retr
    assert "250" in smtp_part.split("NOOP", 1)[1]
    assert "Sender <student@example.com> OK" in smtp_part  # MAIL taken: still authenticated
    assert "+OK 1 " in resumed  # STAT: still logged in, the message there
    assert "250" in out.split("RSET", 1)[1]
    assert PASSWORD not in out and PLAIN not in out
    smtp = console  # the first console is the SMTP one
    assert isinstance(smtp, Console) and smtp.session is not None
    assert smtp.session.dialogue.authenticated  # one AUTH, kept across both switches
    pop3 = smtp.switchboard.consoles["pop3"]  # type: ignore[union-attr]
    assert isinstance(pop3, Pop3Console)
    sent_smtp = [line for line in smtp.recorder.render("text").splitlines() if line[:2] == "C:"]
    sent_pop3 = [line for line in pop3.recorder.render("text").splitlines() if line[:2] == "C:"]
    assert "C: NOOP" in sent_smtp and "C: RSET" in sent_smtp
    assert not any("USER" in line or "STAT" in line or "RETR" in line for line in sent_smtp)
    assert sent_pop3 == ["C: USER student", "C: PASS {password}", "C: RETR 1", "C: STAT"]


def test_each_protocol_keeps_its_own_history_file_and_transcript(tmp_path: Path) -> None:
    state = tmp_path / "xdg_state_home" / "smtp-tutor"
    transcript = tmp_path / "session.smtp"
    options = ConsoleOptions(
        color=False, toolbar=False, history_path=state / "history", transcript=transcript
    )
    lines = [
        "EHLO me.example",
        ":pop3",
        "USER student",
        f"PASS {PASSWORD}",
        "STAT",
        ":smtp",
        "NOOP",
        f":save {tmp_path / 'saved.smtp'}",
    ]
    out, _console, _ = asyncio.run(on_sandbox(tmp_path, lines, options=options))
    smtp_history = (state / "history").read_text("utf-8")
    pop3_history = (state / "pop3-history").read_text("utf-8")
    assert "EHLO me.example" in smtp_history and "NOOP" in smtp_history
    assert "STAT" not in smtp_history and "USER" not in smtp_history
    assert "USER student" in pop3_history and "STAT" in pop3_history
    assert "EHLO" not in pop3_history and "NOOP" not in pop3_history
    assert PASSWORD not in smtp_history + pop3_history
    # --transcript: SMTP in FILE, POP3 in its sibling, each marking the switch.
    smtp_text = transcript.read_text("utf-8")
    pop3_file = tmp_path / "session.pop3"
    pop3_text = pop3_file.read_text("utf-8")
    assert script_protocol(smtp_text) == "smtp" and script_protocol(pop3_text) == "pop3"
    assert "C: NOOP" in smtp_text and "USER" not in smtp_text
    assert "# switched to POP3 (:pop3); its transcript: " + str(pop3_file) in smtp_text
    assert "C: USER student" in pop3_text and "C: PASS {password}" in pop3_text
    assert PASSWORD not in smtp_text + pop3_text
    assert f"this protocol's transcript: {pop3_file}" in " ".join(out.split())
    # :save FILE in the SMTP console: SMTP in FILE, POP3 beside it.
    saved_smtp = (tmp_path / "saved.smtp").read_text("utf-8")
    saved_pop3 = (tmp_path / "saved.pop3").read_text("utf-8")
    assert "C: NOOP" in saved_smtp and script_protocol(saved_pop3) == "pop3"
    assert "C: STAT" in saved_pop3 and PASSWORD not in saved_pop3


def test_lines_pasted_after_a_switch_go_to_the_new_protocol(tmp_path: Path) -> None:
    paste = f"NOOP\n:pop3\nUSER student\nPASS {PASSWORD}\nSTAT\n:smtp\nNOOP"
    out, console, _ = asyncio.run(on_sandbox(tmp_path, ["EHLO me.example", paste]))
    assert isinstance(console, Console)
    smtp_sent = [
        line for line in console.recorder.render("text").splitlines() if line.startswith("C:")
    ]
    assert smtp_sent == ["C: EHLO me.example", "C: NOOP", "C: NOOP"]
    pop3 = console.switchboard.consoles["pop3"]  # type: ignore[union-attr]
    pop3_sent = [line for line in pop3.recorder.render("text").splitlines() if line[:2] == "C:"]
    assert pop3_sent == ["C: USER student", "C: PASS {password}", "C: STAT"]
    assert PASSWORD not in out


def test_from_pop3_smtp_opens_on_the_same_host(tmp_path: Path) -> None:
    lines = ["USER student", ":smtp", "EHLO me.example", ":pop3", f"PASS {PASSWORD}", "STAT"]
    out, console, _ = asyncio.run(on_sandbox(tmp_path, lines, first="pop3"))
    assert isinstance(console, Pop3Console)
    assert "ESMTP" in out.split(":smtp", 1)[1]  # the sandbox's SMTP greeting
    assert "+OK 0 0" in out.split("STAT", 1)[1]  # USER kept across the switch: PASS took
    smtp = console.switchboard.consoles["smtp"]  # type: ignore[union-attr]
    assert smtp.session.dialogue.capabilities is not None


def test_a_session_the_server_closed_is_said_on_switching_back(tmp_path: Path) -> None:
    lines = ["USER student", "QUIT", ":smtp", "NOOP", ":pop3", "STAT"]
    out, _console, _ = asyncio.run(on_sandbox(tmp_path, lines, first="pop3"))
    back = out.split(":pop3", 1)[1]
    assert "the server has closed it — type :reconnect" in back
    assert "not connected" in back.split("STAT", 1)[1]


def test_a_pop3_port_that_does_not_answer_keeps_typed_lines_off_smtp(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    lines = ["EHLO me.example", ":pop3", "NOOP", ":smtp", "NOOP"]
    out, console, _ = asyncio.run(on_sandbox(tmp_path, lines, pop3_port=dead))
    failed = out.split(":pop3", 1)[1].split(":smtp", 1)[0]
    assert "✗" in failed and ":reconnect" in failed
    assert "not connected" in failed  # the NOOP typed for POP3 went nowhere
    assert isinstance(console, Console)
    sent = [line for line in console.recorder.render("text").splitlines() if line[:2] == "C:"]
    assert sent == ["C: EHLO me.example", "C: NOOP"]  # only the NOOP typed after :smtp


def test_help_and_completion_list_the_switch_commands(tmp_path: Path) -> None:
    out, _console, _ = asyncio.run(on_sandbox(tmp_path, [":help", ":pop3", ":help", ":smtp x"]))
    pop3_opened = out.index("connecting to", 1)  # the second connection: POP3
    smtp_help, pop3_help = out[:pop3_opened], out[pop3_opened:]
    assert ":pop3 [PORT]" in smtp_help and "switch to a POP3 session" in smtp_help
    assert ":smtp [PORT]" in pop3_help and "switch to an SMTP session" in pop3_help
    assert ":smtp [PORT]" in pop3_help.split(":smtp x", 1)[1]  # the usage of a bad port
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from smtp_tutor.console.pop3_console import Pop3Protocol

    completer = Pop3Protocol().completer(lambda: None, "zh")
    texts = [c.text for c in completer.get_completions(Document(":sm"), CompleteEvent())]
    assert texts == [":smtp"]


def test_sibling_paths() -> None:
    assert sibling_path(Path("a/session.smtp"), "pop3") == Path("a/session.pop3")
    assert sibling_path(Path("log.jsonl"), "pop3") == Path("log.pop3.jsonl")
    assert sibling_path(Path("notes"), "smtp") == Path("notes.smtp")


test_sibling_paths = pytest.mark.pure(test_sibling_paths)


def test_a_serve_sandbox_names_its_pop3_port_in_ehlo_and_pop3_finds_it(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """`serve --pop3 0`: EHLO says `XSMTPTUTOR-POP3 PORT`; `:pop3` alone opens POP3 there."""
    import re

    from tests.test_cli import serving

    with serving(env, "--pop3", "0", "--mailbox", str(tmp_path / "Maildir")) as served:
        where = re.search(r"POP3 listening on 127\.0\.0\.1:(\d+)", "".join(served.seen))
        assert where, served.seen
        target = Target(served.host, served.port)
        options = ConsoleOptions(color=False, toolbar=False)
        lines = ["EHLO me.example", ":pop3", "CAPA"]
        code, out, console = asyncio.run(run_console(target, lines, options))
        served.stop(signal.SIGTERM)
    assert code == 0, out
    assert f"XSMTPTUTOR-POP3 {where[1]}" in out
    assert f"connecting to 127.0.0.1:{where[1]}" in out
    pop3 = console.switchboard.consoles["pop3"]
    assert pop3.session.dialogue.capabilities is not None  # CAPA answered over POP3


def test_in_a_terminal_the_embedded_sandbox_switches_both_ways(tmp_path: Path) -> None:
    """`smtp-tutor` in a pty, as a student starts it: mail sent, `:pop3`, RETR, `:smtp`."""
    from tests.test_terminal import Terminal

    plain = base64.b64encode(b"\0student\0secret").decode()
    term = Terminal([], tmp_path)
    term.expect(r"student / secret")
    term.expect(r"220 ")
    term.type("EHLO me.example", r"250 [^\n]*\n")
    term.type(f"AUTH PLAIN {plain}", r"235 ")
    term.type("MAIL FROM:<student@example.com>", r"250 ")
    term.type("RCPT TO:<student@example.com>", r"250 ")
    term.type("DATA", r"354 ")
    term.type("Subject: over the switch", r"data>")
    term.type("", r"data>")
    term.type("typed in one terminal", r"data>")
    term.type(".", r"250 ")
    term.type(":pop3", r"POP3 ready")
    term.type("USER student", r"send PASS")
    term.type("PASS secret", r"Logged in")
    term.type("RETR 1", r"typed in one terminal")
    term.type(":smtp", r"back to the SMTP session")
    term.type("NOOP", r"250 ")
    term.type(":pop3", r"back to the POP3 session")
    term.type("STAT", r"pop3 trans>")
    term.type(":quit", pexpect.EOF)
    assert term.close() == 0
    screen = term.screen
    assert "PASS secret" not in screen and plain not in screen  # masked as typed
    assert "+OK 1 " in screen.split("back to the POP3 session")[-1]  # STAT, still logged in
    assert "250" in screen.split("back to the SMTP session")[-1].split("NOOP")[-1]
    state = tmp_path / "state" / "smtp-tutor"
    smtp_history = (state / "history").read_text("utf-8")
    pop3_history = (state / "pop3-history").read_text("utf-8")
    assert "NOOP" in smtp_history and "RETR" not in smtp_history
    assert "RETR 1" in pop3_history and "NOOP" not in pop3_history
    assert "secret" not in smtp_history + pop3_history and plain not in smtp_history


def test_a_line_typed_ahead_of_the_pop3_prompt_goes_to_pop3(tmp_path: Path) -> None:
    """`:pop3` and the next line typed at once (Enter, then more keys before the POP3
    prompt exists): the keys wait for the POP3 prompt, none reach the SMTP server."""
    lines = ["EHLO me.example", ":pop3\rUSER student", f"PASS {PASSWORD}", ":smtp", "NOOP"]
    out, console, _ = asyncio.run(on_sandbox(tmp_path, lines))
    assert isinstance(console, Console)
    smtp_sent = [line for line in console.recorder.render("text").splitlines() if line[:2] == "C:"]
    assert smtp_sent == ["C: EHLO me.example", "C: NOOP"]
    pop3 = console.switchboard.consoles["pop3"]  # type: ignore[union-attr]
    pop3_sent = [line for line in pop3.recorder.render("text").splitlines() if line[:2] == "C:"]
    assert pop3_sent == ["C: USER student", "C: PASS {password}"]
    assert "Logged in" in out and PASSWORD not in out
