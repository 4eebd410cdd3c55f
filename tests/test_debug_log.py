"""A bug in the console costs one line on screen, never the session; the traceback is kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smtp_tutor.client.session import Target
from smtp_tutor.console import colon_commands
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.sandbox import Sandbox, SandboxConfig
from tests.consoles import run_console, screen_text


async def _boom(console: object, args: list[str]) -> None:
    raise RuntimeError("boom while the password secret was known")


def run(tmp_path: Path, lines: list[str], debug: bool) -> str:
    async def main() -> str:
        sandbox = Sandbox(SandboxConfig(port=0, mailbox=tmp_path / "Maildir"))
        await sandbox.start()
        try:
            options = ConsoleOptions(
                color=False, toolbar=False, debug=debug, debug_log=tmp_path / "log" / "debug.log"
            )
            code, out, _ = await run_console(Target(sandbox.host, sandbox.port), lines, options)
            assert code == 0
            return screen_text(out)
        finally:
            await sandbox.stop()

    return asyncio.run(main())


@pytest.mark.parametrize("debug", [False, True])
def test_a_failing_command_is_one_line_and_the_traceback_is_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debug: bool
) -> None:
    monkeypatch.setitem(colon_commands.COMMANDS, "clear", _boom)
    monkeypatch.setenv("COLUMNS", "300")  # the one line checked below, unwrapped
    lines = ["EHLO me", "AUTH PLAIN", "student", "secret", ":clear", "NOOP", "QUIT"]
    text = run(tmp_path, lines, debug)
    log = tmp_path / "log" / "debug.log"
    assert "internal error (RuntimeError: boom while the password ******** was known)" in text
    assert str(log) in text
    assert "250 2.0.0" in text.split("internal error", 1)[1]  # NOOP answered: the session went on
    assert ("Traceback (most recent call last)" in text) is debug
    written = log.read_text()
    assert "Traceback (most recent call last)" in written and "_boom" in written
    assert "secret" not in written  # redacted like transcripts
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_background_task_that_fails_is_reported_not_lost(tmp_path: Path) -> None:
    import io

    from prompt_toolkit.output.plain_text import PlainTextOutput

    from smtp_tutor.console.app import Console

    async def failing() -> None:
        raise ValueError("lost in the background")

    async def main() -> str:
        buffer = io.StringIO()
        options = ConsoleOptions(color=False, debug_log=tmp_path / "debug.log")
        console = Console(Target("127.0.0.1", 9), options, output=PlainTextOutput(buffer))
        console.spawn(failing(), "a test")
        for _ in range(5):
            await asyncio.sleep(0)
        assert not console._tasks  # kept until it ended, then let go
        return buffer.getvalue()

    out = asyncio.run(main())
    assert "internal error (ValueError: lost in the background)" in out
    assert "a test" in (tmp_path / "debug.log").read_text()


@pytest.mark.parametrize(
    ("argv", "debug"),
    [(["connect", "mx.example"], False), (["--debug", "connect", "mx.example"], True),
     (["connect", "--debug", "mx.example"], True), (["--debug"], True)],
)  # fmt: skip
def test_debug_on_the_command_line_reaches_the_console(argv: list[str], debug: bool) -> None:
    from smtp_tutor.cli.main import _console_options, build_parser

    assert _console_options(build_parser("en").parse_args(argv)).debug is debug
