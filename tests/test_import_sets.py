"""What each entry point imports: nothing before it is needed (issue 12).

Start-up time is a benchmark's business (bench/startup.py); these tests hold the line on
the cause instead, with module sets, never timings. Each runs the real command in a fresh
interpreter — the console in a pseudo-terminal, against a real server on 127.0.0.1 — and
reads `sys.modules` as the process exits, so what a session imported on its way to the
first prompt and out again is all there:

* the console on the embedded sandbox loads neither `aiosmtpd` nor `cryptography` (its
  sandbox runs in a process of its own) nor any POP3 module before `:pop3`;
* `connect` to a server loads neither `cryptography` (only a TLS chain needs it) nor
  `aiosmtpd` (only a sandbox runs it);
* `explain` and `--version` load no prompt_toolkit, asyncio, cryptography or aiosmtpd.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

#: Runs smtp-tutor's CLI and writes the names of the loaded modules to argv[1] at exit.
PROBE = """
import atexit, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv[0] = "smtp-tutor"
from smtp_tutor.cli import main
raise SystemExit(main())
"""


def environment(home: Path) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "PYTHON"))}
    return dict(
        kept,
        PROMPT_TOOLKIT_NO_CPR="1",
        TERM="xterm",
        NO_COLOR="1",
        LANG="C.UTF-8",
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
    )


def loaded_by_command(home: Path, *args: str) -> set[str]:
    """The modules loaded by `smtp-tutor ARGS` run to its end (no terminal)."""
    out = home / "modules.txt"
    subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        env=environment(home),
        cwd=home,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return set(out.read_text().split())


def loaded_at_start(home: Path) -> set[str]:
    """The modules this interpreter loads before any code of ours (site, .pth files)."""
    found = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        env=environment(home),
        cwd=home,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return set(found.stdout.split())


def loaded_by_console(home: Path, *args: str, typed: tuple[str, ...] = ()) -> set[str]:
    """The modules loaded by a console in a pty: to its first prompt, `typed`, then :quit."""
    out = home / "modules.txt"
    child = pexpect.spawn(
        sys.executable,
        ["-c", PROBE, str(out), *args],
        env=environment(home),
        cwd=str(home),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 120),
    )
    try:
        child.expect_exact("smtp>")
        for line in typed:
            child.sendline(line)
            child.expect_exact("smtp>")
        child.sendline(":quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    return set(out.read_text().split())


def packages(modules: set[str], *names: str) -> set[str]:
    """Which of the top-level `names` have any module in `modules`."""
    return {name for name in names if any(m == name or m.startswith(name + ".") for m in modules)}


@pytest.fixture
def tiny_server() -> Iterator[int]:
    """A minimal SMTP server on 127.0.0.1 in a thread: 220, 250 to anything, 221 to QUIT."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection, connection.makefile("rwb", buffering=0) as stream:
                stream.write(b"220 tiny.example ESMTP\r\n")
                for line in stream:
                    if line.upper().startswith(b"QUIT"):
                        stream.write(b"221 2.0.0 bye\r\n")
                        break
                    stream.write(b"250 tiny.example\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def test_the_sandbox_console_leaves_the_sandbox_and_pop3_to_others(
    tmp_path: Path,
) -> None:
    first = loaded_by_console(tmp_path)  # its sandbox process makes the certificate
    assert (tmp_path / "data" / "smtp-tutor" / "sandbox" / "cert.pem").exists()
    # ... and keeps the data file it parsed for the next start (the console never reads it)
    assert list((tmp_path / "cache" / "smtp-tutor" / "data").glob("sandbox_triggers.*"))
    # The sandbox runs in a process of its own (sandbox/process.py): the console's process
    # loads neither aiosmtpd nor cryptography, and no POP3 module before `:pop3`.
    assert "prompt_toolkit" in packages(first, "prompt_toolkit")
    assert packages(first, "cryptography", "aiosmtpd", "attr") == set()
    # wcwidth as prompt_toolkit calls it, wcwidth(): its width tables, not the text wrapping
    # and grapheme tables 0.3 and later load with it (~30 ms a start; pyproject holds <0.3).
    assert "wcwidth" in first
    assert packages(first, "wcwidth.textwrap", "wcwidth.grapheme", "wcwidth._clip") == set()
    again = loaded_by_console(tmp_path, typed=("EHLO me.example",))
    assert "smtp_tutor.console.app" in again
    assert packages(again, "cryptography", "aiosmtpd", "smtp_tutor.sandbox.server") == set()
    pop3 = (
        "smtp_tutor.client.pop3_session",
        "smtp_tutor.core.pop3",
        "smtp_tutor.console.pop3_console",
    )
    assert packages(again, *pop3) == set()
    # What the first prompt and a 250 need not pay for: the knowledge base (explains an
    # error), the AUTH exchange, the TLS report, difflib (a mistyped verb's suggestion).
    later = ("smtp_tutor.core.knowledge", "smtp_tutor.core.auth_exchange", "difflib")
    assert packages(again, *later, "smtp_tutor.client.tls") == set()
    # Its value classes are core.records: no dataclasses (~1 ms, and ~0.5 ms a class).
    assert "dataclasses" not in again
    error = loaded_by_console(tmp_path, typed=("EHLO me.example", "RCPT TO:<a@b.example>"))
    assert "smtp_tutor.core.knowledge" in error  # a 503, explained


def test_connect_loads_no_cryptography_and_no_sandbox(tmp_path: Path, tiny_server: int) -> None:
    modules = loaded_by_console(
        tmp_path, "connect", "127.0.0.1", str(tiny_server), typed=("EHLO me.example",)
    )
    assert "smtp_tutor.console.app" in modules  # the probe saw a real console
    assert packages(modules, "cryptography", "aiosmtpd", "attr") == set()
    sandbox = {m for m in modules if m.startswith("smtp_tutor.sandbox.")}
    assert sandbox <= {"smtp_tutor.sandbox.config"}  # `serve`'s defaults, for the parser
    again = loaded_by_console(
        tmp_path, "connect", "127.0.0.1", str(tiny_server), typed=("EHLO me.example",)
    )
    # The knowledge from the cache the first run left, no config file, no message typed:
    # no TOML parser and no email package (the message lint loads it).
    assert packages(again, "tomllib", "email", "cryptography", "aiosmtpd") == set()


def test_explain_imports_what_it_prints(tmp_path: Path) -> None:
    modules = loaded_by_command(tmp_path, "explain", "550")
    assert "smtp_tutor.core.knowledge" in modules
    heavy = ("prompt_toolkit", "asyncio", "cryptography", "aiosmtpd", "pygments", "wcwidth")
    assert packages(modules, *heavy) == set()  # wcwidth: only for text beyond Latin-1
    chinese = loaded_by_command(tmp_path, "--lang", "zh", "explain", "550")
    assert packages(chinese, "wcwidth", "prompt_toolkit") == {"wcwidth"}


def test_a_second_start_reads_the_knowledge_from_the_cache(tmp_path: Path) -> None:
    first = loaded_by_command(tmp_path, "explain", "550")
    assert "tomllib" in first  # parsed, and the parse kept on the way out
    assert list((tmp_path / "cache" / "smtp-tutor" / "data").glob("replies.*"))
    assert "tomllib" not in loaded_by_command(tmp_path, "explain", "550")


def test_replay_against_a_server_runs_without_an_event_loop(
    tmp_path: Path, tiny_server: int
) -> None:
    script = tmp_path / "hello.smtp"
    script.write_text("S: 220\nC: EHLO me.example\nS: 250\nC: QUIT\nS: 221\n", "utf-8")
    server = f"127.0.0.1:{tiny_server}"
    modules = loaded_by_command(tmp_path, "replay", str(script), "--server", server, "-q")
    assert "smtp_tutor.replay.runner" in modules
    heavy = ("asyncio", "prompt_toolkit", "cryptography", "aiosmtpd", "pygments", "wcwidth")
    assert packages(modules, *heavy) == set()
    # Clear text all the way: no TLS module, no POP3 module, no other subcommand's options.
    assert packages(modules, "ssl", "_ssl", "smtp_tutor.core.pop3", "smtp_tutor.sandbox") == set()
    # A text script with no AUTH: no JSON, no OpenSSL digests (CRAM-MD5 and APOP load them).
    assert packages(modules, "json", "hashlib", "hmac", "smtp_tutor.core.knowledge") == set()
    # Its value classes are core.records, not dataclasses: no dataclasses, so no inspect
    # (and its ast, dis, tokenize) either.
    assert "smtp_tutor.core.records" in modules
    assert packages(modules, "dataclasses", "inspect") == set()
    # It races a one-shot smtplib script, which loads neither typing nor pathlib (~3 ms
    # each): the replay's modules keep their annotations for type checkers only, and open
    # the script with open(). The text recorder is the console's, not a replay's. (The
    # first run parsed the knowledge, and tomllib imports typing; this one reads the cache.)
    again = loaded_by_command(tmp_path, "replay", str(script), "--server", server, "-q")
    started = loaded_at_start(tmp_path)  # an editable install's finder may load pathlib
    assert packages(again - started, "typing", "pathlib", "smtp_tutor.core.recorder") == set()
    # argparse builds the parser in our words, so gettext never looks for a translation
    # (a stat per word, and the locale module).
    assert "locale" not in again - started
    # Nothing waits on the abort flag without --delay: no threading module.
    assert "threading" not in modules
    delayed = loaded_by_command(
        tmp_path, "replay", str(script), "--server", server, "-q", "--delay", "10"
    )
    assert "threading" in delayed  # --delay waits on an Event that abort() can cut short


def test_the_blocking_replay_stops_on_ctrl_c_with_130_and_no_traceback(tmp_path: Path) -> None:
    """Without an event loop Ctrl-C lands in the blocking read: one clean exit all the same."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def greet_then_hang() -> None:
        connection, _ = listener.accept()
        accepted.append(connection)
        connection.sendall(b"220 slow.example ESMTP\r\n")  # and never answers EHLO

    threading.Thread(target=greet_then_hang, daemon=True).start()
    script = tmp_path / "hello.smtp"
    script.write_text("S: 220\nC: EHLO me.example\nS: 250\n", "utf-8")
    server = f"127.0.0.1:{listener.getsockname()[1]}"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "smtp_tutor", "replay", str(script), "--server", server],
        env=environment(tmp_path),
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=30,
    )
    try:
        child.expect_exact("EHLO me.example")
        child.sendintr()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
        listener.close()
        for connection in accepted:
            connection.close()
    assert child.exitstatus == 130, child.before
    assert "Traceback" not in (child.before or "")


def test_version_builds_no_subcommand_and_loads_no_knowledge(tmp_path: Path) -> None:
    modules = loaded_by_command(tmp_path, "--version")
    assert "smtp_tutor.cli.main" in modules
    ours = {m for m in modules if m.startswith("smtp_tutor.")}
    # The language is all it needs of the core: no knowledge base, and no subcommand's
    # options were built (connect's live in cli.connect, serve's defaults in the sandbox).
    assert "smtp_tutor.core.language" in ours
    assert ours.isdisjoint({"smtp_tutor.core.knowledge", "smtp_tutor.cli.connect"})
    assert packages(modules, "smtp_tutor.sandbox", "asyncio", "prompt_toolkit") == set()
