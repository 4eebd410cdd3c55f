"""Type into the real console from a script: for lesson solutions, `lessons --check` and tests.

The console runs exactly as for a person — same prompts, same helpers, same checks — but
reads from a prompt_toolkit pipe and writes plain text to a buffer. Each line is typed only
when the console waits at a prompt, so the script follows the dialogue like a patient student.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.plain_text import PlainTextOutput

from smtp_tutor.client.session import Target
from smtp_tutor.console.app import Console, ConsoleOptions

PROMPT_NOISE = re.compile(
    r"^\s*(smtp|data|auth|username|password|token|pop3|pop3 trans)>.*$", re.MULTILINE
)


class ScriptError(RuntimeError):
    """The console stopped early, or never came back to a prompt."""


async def run_console(
    target: Target,
    lines: Iterable[str],
    options: ConsoleOptions | None = None,
    timeout: float = 20.0,
    errors: TextIO | None = None,
    prepare: Callable[[Console], None] | None = None,
    console_class: Callable[..., Any] = Console,
    ports: dict[str, int] | None = None,
) -> tuple[int, str, Any]:
    """Type `lines` one at a time, each when the console waits at a prompt; then Ctrl-D.

    `console_class` makes the console (the POP3 console's class drives the same way); it
    runs under a switchboard, `ports` its other protocol's port (`:pop3`/`:smtp`)."""
    buffer = io.StringIO()
    with create_pipe_input() as pipe:
        console = console_class(
            target,
            options or ConsoleOptions(color=False),
            input=pipe,
            output=PlainTextOutput(buffer),
            errors=errors,
        )
        if prepare is not None:
            prepare(console)
        from smtp_tutor.console.switch import run_switching

        task = asyncio.create_task(run_switching(console, ports))
        for line in lines:
            await _wait_for_prompt(console, task, timeout)
            pipe.send_text(line + "\r")
            await asyncio.sleep(0)
        if await _wait_for_prompt(console, task, timeout, may_end=True):
            pipe.send_text("\x04")  # Ctrl-D
        code = await asyncio.wait_for(task, timeout)
    return code, buffer.getvalue(), console


async def _wait_for_prompt(
    console: Any, task: asyncio.Task[int], timeout: float, may_end: bool = False
) -> bool:
    """True once the console waits at a prompt; False if it ended (allowed with `may_end`)."""
    waiter = asyncio.create_task(console.waiting_for_input.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=timeout, return_when="FIRST_COMPLETED")
    waiter.cancel()
    if task in done and waiter not in done:
        if may_end:
            return False
        raise ScriptError(f"the console ended early (exit {task.result()})")
    if not done:
        task.cancel()
        raise ScriptError(f"the console did not come back to a prompt within {timeout:g} s")
    console.waiting_for_input.clear()
    return True


def screen_text(output: str) -> str:
    """The output without prompt redraw lines: what a user would read as the session."""
    return "\n".join(line for line in PROMPT_NOISE.sub("", output).splitlines() if line.strip())
