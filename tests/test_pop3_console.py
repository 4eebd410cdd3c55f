"""The POP3 console's parts: completion, toolbar and prompt, hints, history, masking, and the
console itself driven through prompt_toolkit pipe input against scripted servers on 127.0.0.1
(holding a warned line until :send, :drop, :caps, :explain, :help, Chinese)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from smtp_tutor.client.pop3_session import pop3_target
from smtp_tutor.client.session import Target
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.console.history import LineKind
from smtp_tutor.console.pop3_completion import Pop3Completer
from smtp_tutor.console.pop3_console import COMMANDS, Pop3Console
from smtp_tutor.console.pop3_history import Pop3History, masked_echo, masked_line, pop3_refusal
from smtp_tutor.console.pop3_render import (
    Pop3ToolbarState,
    caps_fragments,
    next_step,
    prompt_label,
    response_fragments,
    toolbar_fragments,
)
from smtp_tutor.core.pop3.dialogue import Capabilities, Dialogue
from smtp_tutor.core.pop3.responses import Status, make_response
from smtp_tutor.core.redaction import SecretTracker
from tests.consoles import run_console, screen_text
from tests.servers import HOST, Expect, Hang, ScriptServer, Send, run

CAPA = b"+OK\r\nUSER\r\nSASL PLAIN LOGIN\r\nPIPELINING\r\nTOP\r\nUIDL\r\nSTLS\r\n.\r\n"


def dialogue_after(*steps: tuple[str, bytes]) -> Dialogue:
    """A dialogue greeted, then each (line sent, bytes answered)."""
    dialogue = Dialogue()
    dialogue.receive(b"+OK ready\r\n")
    for line, answer in steps:
        dialogue.send(line)
        dialogue.receive(answer)
    return dialogue


def completions(completer: Pop3Completer, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]


# -- pure parts -------------------------------------------------------------------------------


@pytest.mark.pure
def test_completion_offers_the_commands_valid_now_the_likely_one_first() -> None:
    state: list[Dialogue] = [dialogue_after()]
    completer = Pop3Completer(lambda: state[0], [(":help", "help")], "en")
    assert completions(completer, "")[:2] == ["USER", "CAPA"]
    assert "STAT" not in completions(completer, "")  # not before login
    assert completions(completer, "us") == ["user"]  # typed in lower case, completed so
    state[0] = dialogue_after(("CAPA", CAPA), ("USER s", b"+OK\r\n"))
    assert completions(completer, "")[0] == "PASS"
    assert completions(completer, "AUTH ") == ["PLAIN", "LOGIN"]  # from CAPA's SASL line
    state[0] = dialogue_after(
        ("USER s", b"+OK\r\n"),
        ("PASS p", b"+OK\r\n"),
        ("STAT", b"+OK 3 300\r\n"),
        ("DELE 2", b"+OK\r\n"),
    )
    assert completions(completer, "")[0] == "STAT"
    assert completions(completer, "RETR ") == ["1", "3"]  # message 2 is marked
    assert completions(completer, ":h") == [":help"]


@pytest.mark.pure
def test_completion_hints_speak_the_console_language() -> None:
    dialogue = dialogue_after()
    english = Pop3Completer(lambda: dialogue, [], "en").get_completions(
        Document("US"), CompleteEvent()
    )
    chinese = Pop3Completer(lambda: dialogue, [], "zh").get_completions(
        Document("US"), CompleteEvent()
    )
    [en], [zh] = list(english), list(chinese)
    assert en.display_meta_text.startswith("Names the mailbox")
    assert zh.display_meta_text != en.display_meta_text and any(
        "\u4e00" <= ch <= "\u9fff" for ch in zh.display_meta_text
    )


@pytest.mark.pure
def test_hints_follow_the_dialogue() -> None:
    assert next_step(Dialogue()) == "greeting"
    assert next_step(dialogue_after()) == "capa"
    assert next_step(dialogue_after(("CAPA", CAPA))) == "stls"
    assert next_step(dialogue_after(("CAPA", CAPA), ("USER s", b"+OK\r\n"))) == "pass"
    logged_in = dialogue_after(("USER s", b"+OK\r\n"), ("PASS p", b"+OK\r\n"))
    assert next_step(logged_in) == "stat"
    logged_in.send("STAT")
    logged_in.receive(b"+OK 2 10\r\n")
    assert next_step(logged_in) == "retr"
    refused = Dialogue()
    refused.receive(b"-ERR go away\r\n")
    assert next_step(refused) == "refused"


@pytest.mark.pure
def test_toolbar_and_prompt_show_the_state() -> None:
    dialogue = dialogue_after(("USER student", b"+OK\r\n"))
    bar = "".join(text for _style, text in toolbar_fragments(Pop3ToolbarState("h:110", dialogue)))
    assert "POP3 h:110" in bar and "AUTHORIZATION (USER student)" in bar
    assert "next: PASS password" in bar and "not logged in" in bar
    assert prompt_label(dialogue) == "pop3> "
    dialogue.send("PASS x")
    dialogue.receive(b"+OK\r\n")
    bar = "".join(text for _s, text in toolbar_fragments(Pop3ToolbarState("h:110", dialogue, "zh")))
    assert "TRANSACTION" in bar and "student" in bar
    assert prompt_label(dialogue) == "pop3 trans> "
    dialogue.send("QUIT")
    dialogue.receive(b"+OK bye\r\n")
    # QUIT's +OK: UPDATE, until the server closes the connection.
    assert " UPDATE " in "".join(t for _s, t in toolbar_fragments(Pop3ToolbarState("h", dialogue)))


@pytest.mark.pure
def test_a_multiline_response_is_one_block_and_control_characters_never_reach_the_screen() -> None:
    body = b"".join(b"line %d\r\n" % n for n in range(100)) + b"\x1b[2Jbad\r\n"
    fragments = response_fragments(
        make_response(Status.OK, "100 octets", body), 0.004, "en", body_lines=5
    )
    text = "".join(t for _s, t in fragments)
    assert text.startswith("+OK 100 octets  (4 ms)\n")
    assert "line 4\n" in text and "line 5\n" not in text
    assert "97 more lines not shown"  # 101 body lines and the dot in text
    assert "\x1b" not in text
    classes = {s for s, _t in fragments}
    assert "class:pygments.generic.inserted.replyok" in classes


@pytest.mark.pure
def test_caps_explains_each_capability_and_the_change() -> None:
    before = Capabilities.from_response(make_response(Status.OK, "", b"USER\r\nSTLS\r\n"))
    after = Capabilities.from_response(make_response(Status.OK, "", b"USER\r\nSASL PLAIN\r\n"))
    text = "".join(
        t for _s, t in caps_fragments([("in clear text", before), ("under TLS", after)], "h", "en")
    )
    assert "SASL PLAIN" in text and "PLAIN:" in text
    assert "+ SASL" in text and "- STLS" in text


@pytest.mark.pure
def test_secrets_are_masked_on_screen_and_never_stored(tmp_path: Path) -> None:
    assert masked_line("PASS my secret") == "PASS *********"
    assert masked_line("APOP bob c4c9334bac560ecc979e58001b3e22fb") == "APOP bob " + "*" * 32
    assert masked_line("AUTH PLAIN AGJvYgBzZWNyZXQ=") == "AUTH PLAIN " + "*" * 16
    assert masked_line("USER bob") == "USER bob"
    assert masked_echo("PASS x") == "PASS ********"
    for line in ("PASS secret", "APOP bob abc", "AUTH PLAIN AGJvYgBzZWNyZXQ=", "hunter2", ":b64 x"):
        assert pop3_refusal(line) is not None, line
    for line in ("USER bob", "STAT", "RETR 1", "AUTH PLAIN", ":caps"):
        assert pop3_refusal(line) is None, line
    tracker = SecretTracker()
    tracker.add_secret("s3cr3t-word")
    dialogue = dialogue_after()
    history = Pop3History(tmp_path / "h", tracker=tracker, dialogue=lambda: dialogue)
    history.expect(LineKind.COMMAND)
    for line in ("USER bob", "PASS s3cr3t-word", "LIST s3cr3t-word", "STAT"):
        history.store_string(line)
    stored = (tmp_path / "h").read_text()
    assert "+USER bob" in stored and "+STAT" in stored
    assert "s3cr3t" not in stored and "PASS" not in stored
    assert (tmp_path / "h").stat().st_mode & 0o777 == 0o600


@pytest.mark.pure
def test_port_995_means_tls_from_the_first_byte() -> None:
    assert pop3_target(Target("h", 995)).implicit_tls is True
    assert pop3_target(Target("h", 110)).implicit_tls is False
    assert pop3_target(Target("h", 110, implicit_tls=True)).implicit_tls is True
    assert pop3_target(Target("h", 465)).implicit_tls is False  # SMTP's port means nothing here


# -- the console, driven ----------------------------------------------------------------------


def _drive(script: list[object], lines: list[str], options: ConsoleOptions) -> tuple[int, str]:
    async def body() -> tuple[int, str]:
        async with ScriptServer(script) as server:  # type: ignore[arg-type]
            target = Target(HOST, server.port, reply_timeout=2.0)
            code, out, _ = await run_console(
                target, lines, options, timeout=10, console_class=Pop3Console
            )
        return code, screen_text(out)

    return run(body(), timeout=30)


def test_a_warned_line_is_held_until_send_and_goes_out_as_typed(tmp_path: Path) -> None:
    script = [
        Send(b"+OK ready\r\n"),
        Expect(b"STAT"),  # the held line, exactly as typed, only after :send
        Send(b"-ERR not logged in\r\n"),
        Expect(b"QUIT"),
        Send(b"+OK bye\r\n"),
    ]
    options = ConsoleOptions(color=False, toolbar=False, confirm_on_warning=True)
    lines = ["STAT", "NOOP", ":drop", "STAT", ":send", "QUIT"]
    code, screen = _drive(script, lines, options)
    assert code == 0
    assert screen.count("held back, not sent") == 2
    assert "held back behind a line waiting for :send or :drop: NOOP" in screen
    assert "dropped, never sent: STAT" in screen and "dropped, never sent: NOOP" in screen
    assert "-ERR not logged in" in screen and "+OK bye" in screen


def test_a_warned_line_goes_out_with_a_note_by_default(tmp_path: Path) -> None:
    script = [
        Send(b"+OK ready\r\n"),
        Expect(b"PASS"),
        Send(b"-ERR [AUTH] USER first\r\n"),
        Hang(),
    ]
    options = ConsoleOptions(color=False, toolbar=False, transcript=tmp_path / "t.pop3")
    code, screen = _drive(script, ["PASS  two  spaces ", ":explain"], options)
    assert code == 0
    # The warning came first, then the line went out as typed and the server answered.
    assert screen.index("PASS before USER") < screen.index("-ERR [AUTH] USER first")
    assert "Code [AUTH]" in screen  # :explain of the last response, with its code
    text = (tmp_path / "t.pop3").read_text()
    assert "C: PASS {password}\n" in text and "two" not in text


def test_caps_help_and_chinese(tmp_path: Path) -> None:
    script = [Send(b"+OK ready\r\n"), Expect(b"CAPA"), Send(CAPA), Hang()]
    options = ConsoleOptions(color=False, toolbar=False, lang="zh")
    code, screen = _drive(script, ["CAPA", ":caps", ":help", ":nosuch"], options)
    assert code == 0
    assert "SASL PLAIN LOGIN" in screen and "明文" in screen  # :caps, in Chinese
    assert "POP3 控制台" in screen  # :help in Chinese
    for name in COMMANDS:
        assert f":{name}" in screen
    assert "USER CAPA STLS AUTH QUIT" in screen.split("现在可用：")[1]
