"""The POP3 console and replay against hostile POP3 servers (tests/test_hostile.py's twin).

Each scenario is one `ScriptServer` script on 127.0.0.1, the lines a student types and what
the console must say. Every console run must also: show no traceback and no internal
error, stay usable afterwards (`PROBE`, a console command that needs no server, still
answers and Ctrl-D exits 0) or exit with the documented code (3: never connected) and one
line on stderr, leave nothing in asyncio's error log, and leave a transcript file that
holds what happened. `smtp-tutor replay` then meets the same servers with the same lines as
a `# protocol: pop3` transcript: its exit status (0, 1 mismatch, 3 connection/TLS) and the
start of its one-line report are in the `replay` column.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from smtp_tutor.client.session import Target
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.console.pop3_console import Pop3Console
from smtp_tutor.core.pop3.responses import Expect as Kind
from smtp_tutor.core.pop3.responses import ResponseParser
from smtp_tutor.core.pop3.transcript import parse_pop3_transcript
from smtp_tutor.replay.pop3 import replay_pop3
from smtp_tutor.replay.runner import ReplayOptions
from tests.consoles import run_console, screen_text
from tests.servers import (
    HOST,
    Action,
    Close,
    Expect,
    Hang,
    ScriptServer,
    Send,
    SendForever,
    certificates,
    run,
    unused_port,
)

PROBE = ":explain -ERR [IN-USE] locked"
PROBE_ANSWER = "The mailbox is locked"
GREETING = Send(b"+OK hostile.example POP3 ready\r\n")
CLOSED = "connection closed: the connection was closed"
MID_RESPONSE = 'connection closed before the "." that ends a multiline response'
SILENCE = "no reply after 0.5 s (the session is still open)"


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("COLUMNS", "1000")  # explanations matched as whole lines


def answer(prefix: bytes, response: bytes) -> list[Action]:
    return [Expect(prefix), Send(response)]


def logged_in() -> list[Action]:
    return [
        GREETING,
        *answer(b"USER", b"+OK\r\n"),
        *answer(b"PASS", b"+OK logged in\r\n"),
    ]


LOGIN = ("USER student", "PASS secret")


@dataclass(frozen=True)
class Scenario:
    name: str
    script: Sequence[Action] | None
    lines: Sequence[str]
    expect: Sequence[str]
    transcript: Sequence[str] = ()
    absent: Sequence[str] = ()
    exit_code: int = 0
    stderr: str | None = None
    reply_timeout: float = 0.5
    implicit_tls: bool | None = None
    server_tls: str | None = None
    replay: tuple[int, str] | None = None


SCENARIOS: list[Scenario] = [
    Scenario(
        "nothing listening",
        script=None,
        lines=(),
        expect=(),
        exit_code=3,
        stderr="connection to 127.0.0.1:{port} refused — is a server listening?",
        replay=(3, "connection to 127.0.0.1:{port} refused"),
    ),
    Scenario(
        "accept then close at once",
        script=[Close()],
        lines=("USER student",),
        expect=(CLOSED, "not connected — use :reconnect"),
        transcript=("@connect 127.0.0.1 {port}", "@closed the connection was closed"),
        replay=(3, "hostile.pop3:2: the server closed the connection while waiting for +OK"),
    ),
    Scenario(
        "no greeting",
        script=[Hang()],
        lines=(),
        expect=(SILENCE,),
        transcript=("@connect 127.0.0.1 {port}",),
        replay=(3, "hostile.pop3:2: no complete response within 0.5 s (waiting for +OK)"),
    ),
    Scenario(
        "greeting then silence",
        script=[GREETING, Expect(b"USER"), Hang()],
        lines=("USER student",),
        expect=("+OK hostile.example POP3 ready", SILENCE),
        transcript=("S: +OK hostile.example POP3 ready", "C: USER student"),
        replay=(3, "hostile.pop3:4: no complete response within 0.5 s (waiting for +OK)"),
    ),
    Scenario(
        "-ERR greeting",
        script=[Send(b"-ERR [SYS/TEMP] try later\r\n"), *answer(b"QUIT", b"+OK bye\r\n")],
        lines=("QUIT",),
        expect=(
            "-ERR [SYS/TEMP] try later",
            "↳ [SYS/TEMP]",
            "connection closed: the session ended with QUIT before login",
        ),
        transcript=("S: -ERR [SYS/TEMP] try later", "C: QUIT", "S: +OK bye", "@closed"),
        replay=(1, "hostile.pop3:2: expected +OK, got -ERR '[SYS/TEMP] try later'"),
    ),
    Scenario(
        "garbage and binary",
        script=[GREETING, *answer(b"USER", b"\x00\xff\xfegarbage \x1b[31mred\r\n"), Hang()],
        lines=("USER student",),
        expect=("garbage \\x1b[31mred", "malformed response: line does not start with +OK or -ERR"),
        absent=("\x1b", "\x00"),
        transcript=("S: * ", "garbage \\x1b[31mred"),
        replay=(1, "hostile.pop3:4: expected +OK, got no +OK/-ERR"),
    ),
    Scenario(
        "a multiline response that never ends (silence)",
        script=[*logged_in(), *answer(b"LIST", b"+OK 2 messages\r\n1 120\r\n"), Hang()],
        lines=(*LOGIN, "LIST"),
        expect=("+OK logged in", SILENCE),
        transcript=("C: LIST",),
        replay=(3, "hostile.pop3:8: no complete response within 0.5 s (waiting for +OK)"),
    ),
    Scenario(
        "a multiline response that never ends (a flood)",
        script=[*logged_in(), *answer(b"LIST", b"+OK\r\n"), SendForever(b"1 120\r\n" * 2000)],
        lines=(*LOGIN, "LIST"),
        expect=("+OK logged in", SILENCE),
        transcript=("C: LIST",),
        replay=(3, "hostile.pop3:8: no complete response within 0.5 s (waiting for +OK)"),
    ),
    Scenario(
        "a 1 MB line",
        script=[GREETING, *answer(b"USER", b"+OK " + b"x" * 1_000_000 + b"\r\n"), Hang()],
        lines=("USER student",),
        expect=(
            "malformed response: a line longer than 65536 bytes; the rest of it was dropped",
            "malformed response: status line longer than 512 bytes",
        ),
        transcript=("# malformed response: ", "S: +OK xxxx"),
        replay=(0, "1 commands, 2 responses matched"),
    ),
    Scenario(
        "a drop inside RETR",
        script=[
            *logged_in(),
            *answer(b"RETR", b"+OK 90 octets\r\nSubject: cut\r\n\r\nhal"),
            Close(),
        ],
        lines=(*LOGIN, "RETR 1"),
        expect=("+OK 90 octets", "Subject: cut", MID_RESPONSE, "connection closed:"),
        transcript=("C: RETR 1", "S: +OK 90 octets", "S: Subject: cut", "S: .", "@closed"),
        replay=(3, "hostile.pop3:8: the connection broke in the middle of a response"),
    ),
    Scenario(
        "control characters in a response",
        script=[GREETING, *answer(b"USER", b"+OK \x1b[2J\x07\x08hi\r\n"), Hang()],
        lines=("USER student",),
        expect=("+OK \\x1b[2J\\x07\\x08hi",),
        absent=("\x1b", "\x07", "\x08"),
        # The text starts with a backslash (the escaped ESC): written with one more.
        transcript=("S: +OK \\\\x1b[2J\\x07\\x08hi",),
        replay=(0, "1 commands, 2 responses matched"),
    ),
    Scenario(
        "a TLS handshake that fails after STLS",
        script=[
            GREETING,
            *answer(b"STLS", b"+OK begin TLS\r\n"),
            Send(b"not TLS at all\r\n"),
            Close(),
        ],
        lines=("STLS",),
        expect=("+OK begin TLS", "TLS handshake with 127.0.0.1:{port} failed", "connection closed"),
        transcript=("C: STLS", "S: +OK begin TLS", "@closed"),
        replay=(3, "hostile.pop3:4: TLS handshake with 127.0.0.1:{port} failed"),
    ),
    Scenario(
        "POP3S with a self-signed certificate",
        script=[GREETING, *answer(b"QUIT", b"+OK bye\r\n")],
        lines=("QUIT",),
        expect=("TLS active: TLSv1.", "not verified", "+OK hostile.example POP3 ready"),
        transcript=("@connect 127.0.0.1 {port} tls\n@tls ", "S: +OK bye"),
        implicit_tls=True,
        server_tls="self_signed",
        replay=(0, "1 commands, 2 responses matched"),
    ),
]


@dataclass
class Run:
    code: int
    screen: str
    output: str
    errors: str
    transcript: str
    port: int


async def drive(scenario: Scenario, transcript: Path) -> Run:
    options = ConsoleOptions(color=False, toolbar=False, transcript=transcript)
    lines = [*scenario.lines, PROBE] if scenario.exit_code == 0 else list(scenario.lines)
    errors = io.StringIO()

    async def console(port: int) -> tuple[int, str]:
        target = Target(
            HOST,
            port,
            implicit_tls=scenario.implicit_tls,
            connect_timeout=2.0,
            reply_timeout=scenario.reply_timeout,
        )
        code, out, _ = await run_console(
            target, lines, options, timeout=10, errors=errors, console_class=Pop3Console
        )
        return code, out

    if scenario.script is None:
        port = unused_port()
        code, out = await console(port)
    else:
        tls = scenario.server_tls
        context = getattr(certificates(), tls).server_context() if tls else None
        async with ScriptServer(scenario.script, ssl=context) as server:
            port = server.port
            code, out = await console(port)
    text = transcript.read_text(encoding="utf-8") if transcript.exists() else ""
    return Run(code, screen_text(out), out, errors.getvalue(), text, port)


def assert_in_order(text: str, expected: Sequence[str]) -> None:
    position = 0
    for item in expected:
        found = text.find(item, position)
        assert found >= 0, f"{item!r} not found (in order) in:\n{text[-3000:]}"
        position = found + len(item)


def _ids(scenarios: Sequence[Scenario]) -> list[object]:
    return [pytest.param(s, id=s.name.replace(" ", "-")) for s in scenarios]


@pytest.mark.parametrize("scenario", _ids(SCENARIOS))
def test_console_survives(
    scenario: Scenario, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncio")
    transcript = tmp_path / "session.pop3"
    result = run(drive(scenario, transcript), timeout=30)

    fill = {"port": result.port}
    everything = result.output + result.errors
    assert "Traceback" not in everything
    assert "smtp-tutor: internal error" not in everything
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text
    assert result.code == scenario.exit_code, result.screen + result.errors
    assert_in_order(result.screen, [text.format(**fill) for text in scenario.expect])
    for text in scenario.absent:
        assert text not in result.output
    if scenario.exit_code == 0:
        assert_in_order(result.screen, [*[t.format(**fill) for t in scenario.expect], PROBE_ANSWER])
        assert result.errors == ""
    else:
        assert scenario.stderr is not None
        assert result.errors.startswith(f"smtp-tutor: {scenario.stderr.format(**fill)}")
        assert result.errors.count("\n") == 1
    assert transcript.exists()
    assert result.transcript.startswith("# protocol: pop3\n")
    assert_in_order(result.transcript, [text.format(**fill) for text in scenario.transcript])
    assert "secret" not in result.transcript  # PASS is a placeholder


# -- the same servers for `smtp-tutor replay` ---------------------------------------------


def replay_text(lines: Sequence[str]) -> str:
    """The scenario's lines as a well-behaved server would have answered them (+OK each)."""
    out = ["# protocol: pop3", "S: +OK"]
    for line in lines:
        out += [f"C: {line}", "S: +OK"]
    return "\n".join(out).replace("C: PASS secret", "C: PASS {password}") + "\n"


async def drive_replay(scenario: Scenario) -> tuple[int, str, str, int]:
    script = parse_pop3_transcript(replay_text(scenario.lines), source="hostile.pop3")
    options = ReplayOptions(
        variables={"password": "secret"},
        implicit_tls=bool(scenario.implicit_tls),
        timeout=scenario.reply_timeout,
    )
    out, err = io.StringIO(), io.StringIO()
    if scenario.script is None:
        port = unused_port()
        result = await replay_pop3(script, HOST, port, options, out=out, err=err)
    else:
        tls = scenario.server_tls
        context = getattr(certificates(), tls).server_context() if tls else None
        async with ScriptServer(scenario.script, ssl=context) as server:
            port = server.port
            result = await replay_pop3(script, HOST, port, options, out=out, err=err)
    return result.status, out.getvalue(), err.getvalue(), port


@pytest.mark.parametrize("scenario", _ids([s for s in SCENARIOS if s.replay is not None]))
def test_replay_survives(scenario: Scenario, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="asyncio")
    assert scenario.replay is not None
    status, out, err, port = run(drive_replay(scenario), timeout=30)
    expected_status, report = scenario.replay
    report = report.format(port=port)
    assert "Traceback" not in out + err
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text
    assert status == expected_status, out + err
    for text in scenario.absent:
        assert text not in out
    if status == 3:
        assert err.startswith(report) and err.count("\n") == 1, err
    elif status == 1:
        assert err == ""
        assert_in_order(out, [f"\n{report}", "\nstopped: "])
    else:
        assert err == ""
        assert out.splitlines()[-1].startswith(report)


def test_a_multiline_response_that_never_ends_does_not_fill_memory() -> None:
    """Body octets past the limit are counted, not kept; the response still ends at its dot."""
    parser = ResponseParser(max_body=100_000)
    parser.expect(Kind.MULTILINE)
    assert parser.feed(b"+OK\r\n") == []
    for _ in range(100):
        assert parser.feed(b"1 120\r\n" * 1000) == []
    [response] = parser.feed(b".\r\n")
    assert response.body is not None and len(response.body) <= 100_000
    assert len(response.raw) <= 100_000 + 100
    assert any("dropped" in str(problem) or "too" in problem.key for problem in response.problems)
