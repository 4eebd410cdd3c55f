"""Drive the real console loop with prompt_toolkit's pipe input and read what it printed."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterable

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.plain_text import PlainTextOutput

from smtp_tutor.console.app import Console, ConsoleOptions
from smtp_tutor.session import Target

PROMPT_NOISE = re.compile(r"^\s*(smtp|data|auth|username|password|token)>.*$", re.MULTILINE)


async def run_console(
    target: Target, lines: Iterable[str], options: ConsoleOptions | None = None,
    timeout: float = 20.0, errors: io.StringIO | None = None,
) -> tuple[int, str, Console]:  # fmt: skip
    """Type `lines` one at a time, each when the console waits at a prompt; then Ctrl-D."""
    buffer = io.StringIO()
    with create_pipe_input() as pipe:
        console = Console(
            target, options or ConsoleOptions(color=False), input=pipe,
            output=PlainTextOutput(buffer), errors=errors,
        )  # fmt: skip
        task = asyncio.create_task(console.run())
        for line in lines:
            await _wait_for_prompt(console, task, timeout)
            pipe.send_text(line + "\r")
            await asyncio.sleep(0)
        if await _wait_for_prompt(console, task, timeout, may_end=True):
            pipe.send_text("\x04")  # Ctrl-D
        code = await asyncio.wait_for(task, timeout)
    return code, buffer.getvalue(), console


async def _wait_for_prompt(
    console: Console, task: asyncio.Task[int], timeout: float, may_end: bool = False
) -> bool:
    """True once the console waits at a prompt; False if it ended (allowed with `may_end`)."""
    waiter = asyncio.create_task(console.waiting_for_input.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=timeout, return_when="FIRST_COMPLETED")
    waiter.cancel()
    if task in done and waiter not in done:
        if may_end:
            return False
        raise AssertionError(f"the console ended early with {task.result()}")
    if not done:
        raise AssertionError("the console never came back to a prompt")
    console.waiting_for_input.clear()
    return True


def screen_text(output: str) -> str:
    """The output without prompt redraw lines: what a user would read as the session."""
    return "\n".join(line for line in PROMPT_NOISE.sub("", output).splitlines() if line.strip())
