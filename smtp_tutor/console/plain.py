"""Lines from a pipe or a dumb terminal, as `telnet` and `openssl s_client` read them.

When standard input is not a terminal (``printf 'EHLO x\\nQUIT\\n' | smtp-tutor connect …``),
standard output is not one (``… | tee log``), or ``TERM=dumb``, the console reads plain
lines instead of running prompt_toolkit: no toolbar, no cursor movement, no escape
sequences, and no "Input is not a terminal" warning. On a pipe each line read is echoed
after its prompt label, so the log shows what was sent; a secret is echoed masked.

The reading happens in a daemon thread, so a process that ends while a read is pending
(Ctrl-C, the server hanging up) is never held open by it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TextIO

from prompt_toolkit.output.plain_text import PlainTextOutput

MASK = "********"


class LineOutput(PlainTextOutput):
    """prompt_toolkit's plain output, with Unix line ends: no carriage return in a log."""

    def write(self, data: str) -> None:
        super().write(data.replace("\r\n", "\n"))


class PlainReader:
    """Reads one line at a time from `source`; EOFError at its end."""

    def __init__(self, source: TextIO | None, echo: TextIO) -> None:
        self.source = source
        self.echo = echo
        self.interactive = _isatty(source)
        #: How a piped line is echoed (None: as read); the POP3 console masks PASS with it.
        self.mask: Callable[[str], str] | None = None

    async def read(self, label: str, *, secret: bool = False) -> str:
        if self.source is None:
            raise EOFError
        if self.interactive:
            if secret:
                import getpass

                return await _in_thread(lambda: getpass.getpass(label))
            self.echo.write(label)
            self.echo.flush()
        text = await _in_thread(self.source.readline)
        if text == "":
            raise EOFError
        line = text.removesuffix("\n").removesuffix("\r")
        if not self.interactive:
            shown = line if self.mask is None else self.mask(line)
            self.echo.write(f"{label}{MASK if secret and line else shown}\n")
            self.echo.flush()
        return line


def wants_plain(stdin: TextIO | None, stdout: TextIO | None, term: str | None) -> bool:
    """Plain lines unless both ends are terminals and the terminal is not dumb."""
    return not (_isatty(stdin) and _isatty(stdout)) or term == "dumb"


def _isatty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):
        return False


async def _in_thread(call: object) -> str:
    """Run a blocking read in a daemon thread and await its line."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def work() -> None:
        try:
            result = call()  # type: ignore[operator]
        except BaseException as error:  # EOF, a closed stream, Ctrl-C in getpass
            loop.call_soon_threadsafe(_settle, future, None, error)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    threading.Thread(target=work, name="smtp-tutor-stdin", daemon=True).start()
    return await future


def _settle(future: asyncio.Future[str], result: str | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        if isinstance(error, (EOFError, OSError, ValueError)):
            future.set_exception(EOFError())
        elif isinstance(error, KeyboardInterrupt):
            future.set_exception(KeyboardInterrupt())
        else:
            future.set_exception(error)
    else:
        future.set_result(result or "")
