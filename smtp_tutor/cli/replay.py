"""`smtp-tutor replay FILE`: the command-line glue around `smtp_tutor.replay.runner`.

Reads and parses the file (text or JSON Lines, told apart by content; ``-`` is standard
input), gathers the variables (--var, then SMTP_TUTOR_<NAME>, then a
masked prompt on a terminal), picks the server (--server, or an embedded sandbox started
here on a free loopback port) and runs the replay. Every problem is one line on stderr with
the exit status of smtp_tutor.cli: 2 usage or script, 3 connection or TLS.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Mapping

from smtp_tutor.core.transcript import Script, TranscriptError, variables_needed
from smtp_tutor.core.transcript_jsonl import parse_script
from smtp_tutor.replay.runner import (
    EXIT_CONNECTION,
    EXIT_SCRIPT,
    ReplayOptions,
    StepInput,
    replay,
    replay_blocking,
)

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    from pathlib import Path
    from typing import TextIO

PROG = "smtp-tutor replay"
ENV_PREFIX = "SMTP_TUTOR_"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class UsageError(Exception):
    """A bad option or file: one line for stderr, exit 2 (or `status`)."""

    def __init__(self, message: str, status: int = EXIT_SCRIPT) -> None:
        super().__init__(message)
        self.status = status


def env_name(variable: str) -> str:
    """``password`` → ``SMTP_TUTOR_PASSWORD``; '.' and '-' become '_' (shells allow no more)."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", variable).upper()


def parse_server(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (port 25 by default); IPv6 in brackets: ``[::1]:2525``."""
    text = text.strip()
    port_text = ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise UsageError(f"--server {text!r}: write an IPv6 address as [ADDRESS]:PORT")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text  # a name, or an IPv6 address without a port
    if not host:
        raise UsageError(f"--server {text!r}: no host name")
    if not port_text:
        return host, 25
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UsageError(f"--server {text!r}: {port_text!r} is not a port (1-65535)")
    return host, int(port_text)


def parse_variables(specs: list[str]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for spec in specs:
        name, equals, value = spec.partition("=")
        if not equals or not _NAME.fullmatch(name):
            raise UsageError(
                f"--var {name or spec!r}: write NAME=VALUE (NAME: letters, digits, _ . -)"
            )
        variables[name] = value
    return variables


def parse_delay(text: str | None) -> float:
    """--delay in milliseconds → seconds."""
    if text is None:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--delay {text!r}: not a number of milliseconds") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"--delay {text!r}: must be 0 or more milliseconds")
    return value / 1000


def gather_variables(
    needed: list[str],
    given: Mapping[str, str],
    environ: Mapping[str, str],
    prompt: Callable[[str], str] | None,
) -> dict[str, str]:
    """Values for `needed`: --var first, then the environment, then `prompt` (a terminal)."""
    values = {name: given[name] for name in needed if name in given}
    for name in needed:
        if name not in values and env_name(name) in environ:
            values[name] = environ[env_name(name)]
    missing = [name for name in needed if name not in values]
    if missing and prompt is None:
        noun = "variable" if len(missing) == 1 else "variables"
        hints = " ".join(f"--var {name}=VALUE" for name in missing)
        envs = ", ".join(env_name(name) for name in missing)
        raise UsageError(
            f"the script needs the {noun} {', '.join(missing)}: give {hints} or set {envs}"
        )
    for name in missing:
        assert prompt is not None
        try:
            values[name] = prompt(f"{name}: ")
        except EOFError:
            raise UsageError(f"no value for the variable {name}") from None
    return {**given, **values}


#: FILE that means: read the script from standard input.
STDIN = "-"


def _read_script(path_text: str) -> tuple[str, str]:
    if path_text == STDIN:
        path_text = "<stdin>"
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise UsageError("cannot read the script from standard input: there is none")
        try:
            data = stream.read()
        except OSError as error:
            raise UsageError(f"cannot read {path_text}: {error.strerror or error}") from None
    else:
        try:
            with open(path_text, "rb") as file:
                data = file.read()
        except OSError as error:
            raise UsageError(f"cannot read {path_text}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8"), path_text
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UsageError(f"{path_text}:{line}: not UTF-8 text") from None


class StdinLines:
    """--step: wait for Enter on stdin without blocking the event loop (a pipe or a terminal)."""

    def __init__(self, out: TextIO, stdin: TextIO) -> None:
        self.out = out
        self.stdin = stdin
        self.buffer = bytearray()
        self.ended = False
        self.echoes = stdin.isatty()  # a terminal echoes the Enter itself

    async def __call__(self) -> bool:
        self.out.write("  [Enter] ")
        self.out.flush()
        while b"\n" not in self.buffer and not self.ended:
            chunk = await self._read()
            self.ended = not chunk
            self.buffer += chunk
        if not self.echoes:
            self.out.write("\n")
        newline = self.buffer.find(b"\n")
        if newline < 0:
            return False
        del self.buffer[: newline + 1]
        return True

    async def _read(self) -> bytes:
        import asyncio

        loop = asyncio.get_running_loop()
        try:
            fd = self.stdin.fileno()
        except (OSError, ValueError):
            return b""
        ready = loop.create_future()
        try:
            loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        except (NotImplementedError, OSError, ValueError):
            # A regular file (or Windows): a read does not wait long, so a thread will do.
            return await loop.run_in_executor(None, os.read, fd, 4096)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        try:
            return os.read(fd, 4096)
        except OSError:
            return b""


def run_replay(args: argparse.Namespace, lang: str) -> int:
    """Called by smtp_tutor.cli for `smtp-tutor replay`; returns the exit status."""
    try:
        if args.file == STDIN and args.step:
            raise UsageError(
                "--step waits for Enter on standard input, so the script cannot come from it: "
                "give a FILE"
            )
        text, source = _read_script(args.file)
        if _speaks_pop3(text):
            return _run_pop3_replay(args, text, source, lang)
        script = parse_script(text, source)
        server = parse_server(args.server) if args.server else None
        if server is not None and args.mailbox is not None:
            raise UsageError("--mailbox is for the embedded sandbox; it cannot go with --server")
        if args.cafile is not None and not args.cafile.is_file():
            raise UsageError(f"--cafile {args.cafile}: no such file")
        given = parse_variables(args.var)
        delay = parse_delay(args.delay)
        needed = variables_needed(script)
        prompt = None
        if sys.stdin is not None and sys.stdin.isatty():
            import getpass

            prompt = getpass.getpass
        variables = gather_variables(needed, given, os.environ, prompt)
    except TranscriptError as error:
        print(str(error), file=sys.stderr)
        return EXIT_SCRIPT
    except UsageError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return error.status
    options = ReplayOptions(
        variables=variables,
        implicit_tls=args.tls,
        starttls=args.starttls,
        verify=args.verify,
        cafile=args.cafile,
        pipeline=args.pipeline,
        step=args.step,
        delay=delay,
        timeout=args.timeout,
        quiet=args.quiet,
        lang=lang,
    )
    step_input = StdinLines(sys.stdout, sys.stdin) if args.step and sys.stdin else None
    if server is not None:
        host, port = server
        options.implicit_tls = args.tls or (port == 465 and not args.starttls)
        if step_input is None:  # nothing to wait for but the server: no event loop needed
            result = replay_blocking(script, host, port, options, out=sys.stdout, err=sys.stderr)
            return result.status
    import asyncio  # for the sandbox and --step

    if server is not None:
        return asyncio.run(_replay(script, server[0], server[1], options, step_input))
    return asyncio.run(_replay_on_sandbox(script, options, args.mailbox, step_input))


def _speaks_pop3(text: str) -> bool:
    lines = text.removeprefix("\ufeff").splitlines()
    first = next((line for line in lines if line.strip()), "")
    if "protocol" not in first.lower():  # no `# protocol:` line or record: SMTP, and the
        return False  # POP3 modules stay unloaded (a one-message replay is mostly start-up)
    from smtp_tutor.core.pop3.transcript import script_protocol

    return script_protocol(text) == "pop3"


def _run_pop3_replay(args: argparse.Namespace, text: str, source: str, lang: str) -> int:
    """A `# protocol: pop3` script: replayed against --server (port 110; 995 means TLS)."""
    from smtp_tutor.core.pop3.transcript import parse_pop3_script
    from smtp_tutor.replay.pop3 import replay_pop3

    script = parse_pop3_script(text, source)
    if not args.server:
        raise UsageError("a POP3 script needs --server HOST[:PORT] (port 110 by default)")
    if args.cafile is not None and not args.cafile.is_file():
        raise UsageError(f"--cafile {args.cafile}: no such file")
    host, port = parse_server(args.server)
    if port == 25 and not re.search(r":25$", args.server.strip()):
        port = 110
    given = parse_variables(args.var)
    prompt = None
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        prompt = getpass.getpass
    variables = gather_variables(variables_needed(script), given, os.environ, prompt)  # type: ignore[arg-type]
    options = ReplayOptions(
        variables=variables,
        implicit_tls=args.tls,
        verify=args.verify,
        cafile=args.cafile,
        timeout=args.timeout,
        quiet=args.quiet,
        lang=lang,
    )
    import asyncio

    result = asyncio.run(replay_pop3(script, host, port, options, out=sys.stdout, err=sys.stderr))
    return result.status


async def _replay(
    script: Script, host: str, port: int, options: ReplayOptions, step_input: StepInput | None
) -> int:
    result = await replay(
        script, host, port, options, out=sys.stdout, err=sys.stderr, step_input=step_input
    )
    return result.status


async def _replay_on_sandbox(
    script: Script, options: ReplayOptions, mailbox: Path | None, step_input: StepInput | None
) -> int:
    """The default server: a sandbox in this process on a free loopback port."""
    import tempfile
    from pathlib import Path

    from smtp_tutor.sandbox import Sandbox, SandboxConfig

    with tempfile.TemporaryDirectory(prefix="smtp-tutor-replay-") as work:
        config = SandboxConfig(
            port=0,
            mailbox=mailbox if mailbox is not None else Path(work) / "Maildir",
            implicit_tls=options.implicit_tls,
        )
        sandbox = Sandbox(config)
        try:
            await sandbox.start()
        except OSError as error:
            what = f"cannot use {error.filename}" if error.filename else "cannot start"
            reason = error.strerror or str(error)
            print(f"{PROG}: the sandbox {what}: {reason}", file=sys.stderr)
            return EXIT_CONNECTION
        try:
            if options.verify and options.cafile is None:
                options.cafile = sandbox.cert_path  # its own self-signed certificate
            if not options.quiet:
                print(
                    f"# embedded sandbox on {sandbox.host}:{sandbox.port}, Maildir {config.mailbox}"
                )
            return await _replay(script, sandbox.host, sandbox.port, options, step_input)
        finally:
            await sandbox.stop()
