"""The `smtp-tutor` command end to end: the real program in subprocesses.

Each test runs `python -m smtp_tutor` or the installed `smtp-tutor` script with XDG_* pointed
into tmp_path, so the real home directory is never touched. Network traffic goes to
127.0.0.1 only. A user must never see a traceback, and every error is one line on stderr.
"""

from __future__ import annotations

import io
import os
import queue
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from smtp_tutor import __version__
from smtp_tutor.cli import main
from smtp_tutor.core.knowledge import explain
from smtp_tutor.sandbox import client_tls_context

ROOT = Path(__file__).resolve().parents[1]
TRIGGERS_TOML = ROOT / "smtp_tutor" / "data" / "sandbox_triggers.toml"
SCRIPT = Path(sys.executable).with_name("smtp-tutor")
MODULE = [sys.executable, "-m", "smtp_tutor"]
TIMEOUT = 30  # a safety net against hangs, never a performance assertion
XDG = ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME")
# RFC 5321 section 4.2.3: every reply code the standard lists.
RFC5321_CODES = (
    *("211", "214", "220", "221", "250", "251", "252", "354"),
    *("421", "450", "451", "452", "455"),
    *("500", "501", "502", "503", "504", "550", "551", "552", "553", "554", "555"),
)
CJK = re.compile(r"[\u3400-\u9fff]")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user with a private home, an English UTF-8 locale and no colour."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("XDG_", "LC_", "LANG", "PYTHON"))
    }
    for name in XDG:
        environment[name] = str(tmp_path / name.lower())
    environment.update(LC_ALL="C.UTF-8", NO_COLOR="1")
    return environment


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same private home for in-process calls of main()."""
    for name in XDG:
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)


def script() -> list[str]:
    if not SCRIPT.exists():
        pytest.skip(f"the smtp-tutor script is not installed next to {sys.executable}")
    return [str(SCRIPT)]


def run(
    env: dict[str, str], *args: str, command: list[str] | None = None, **options: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(command or MODULE), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="backslashreplace",
        timeout=TIMEOUT,
        **options,  # type: ignore[arg-type]
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """Assert the exit code and a single stderr line without a traceback; return that line."""
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plain(text: str) -> str:
    return ANSI.sub("", text)


# -- version and help -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["script", "module"])
def test_version(env: dict[str, str], how: str) -> None:
    result = run(env, "--version", command=script() if how == "script" else MODULE)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"smtp-tutor {__version__}\n",
        "",
    )


@pytest.mark.parametrize("sub", [[], ["connect"], ["serve"], ["explain"]], ids=str)
def test_help(env: dict[str, str], sub: list[str]) -> None:
    result = run(env, *sub, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"usage: smtp-tutor {' '.join(sub)}".rstrip())


def test_main_help_lists_the_subcommands(env: dict[str, str]) -> None:
    result = run(env, "--help")
    for sub in ("connect", "serve", "explain"):
        assert re.search(rf"^\s+{sub}\s", result.stdout, re.MULTILINE), sub


def test_serve_help_lists_every_trigger(env: dict[str, str]) -> None:
    triggers = tomllib.loads(TRIGGERS_TOML.read_text("utf-8"))["trigger"]
    assert triggers
    result = run(env, "serve", "--help")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    for trigger in triggers:
        shown = [row for row in rows if f"<{trigger['local_part']}@...>" in row]
        assert shown, f"{trigger['local_part']} missing from serve --help"
        if trigger["reply"]:
            code = " ".join(trigger["reply"].split()[:2])  # "550 5.1.1"
            assert all(code in row for row in shown), (code, shown)


# -- usage errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["frobnicate"],
        ["connect"],
        ["connect", "127.0.0.1", "http"],
        ["connect", "127.0.0.1", "0"],
        ["connect", "127.0.0.1", "25", "--timeout", "nan"],
        ["connect", "127.0.0.1", "25", "--timeout", "-1"],
        ["serve", "--port", "65536"],
        ["serve", "--port", "-5"],
        ["serve", "--max-size", "0"],
        ["serve", "--idle-timeout", "inf"],
        ["serve", "--hostname", "two words"],
        ["serve", "--user", "bad"],
        ["serve", "--user", "bad:"],
        ["explain"],
        ["explain", "hello"],
        ["explain", "999"],
        ["--lang", "xx", "explain", "250"],
    ],
    ids=" ".join,
)
def test_bad_usage_is_one_line_and_exit_2(env: dict[str, str], args: list[str]) -> None:
    line = one_line_error(run(env, *args), 2)
    assert line.startswith("smtp-tutor")


def test_serve_user_without_colon_says_what_is_wrong(env: dict[str, str]) -> None:
    assert "NAME:PASSWORD" in one_line_error(run(env, "serve", "--user", "bad"), 2)


# -- explain --------------------------------------------------------------------------------


def test_explain_reply_code(env: dict[str, str]) -> None:
    result = run(env, "explain", "535")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Reply code 535")
    assert "RFC 4954" in result.stdout
    assert not CJK.search(result.stdout)


def test_explain_enhanced_code(env: dict[str, str]) -> None:
    result = run(env, "explain", "5.7.8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Enhanced status code 5.7.8")


def test_explain_whole_reply_line(env: dict[str, str]) -> None:
    result = run(env, "explain", "550 5.1.1 User unknown")
    assert result.returncode == 0, result.stderr
    assert "Reply code 550" in result.stdout
    assert "Enhanced status code 5.1.1" in result.stdout
    assert "User unknown" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["explain", "--lang", "zh", "535"],
        ["--lang", "zh", "explain", "535"],  # before the subcommand: must not be overwritten
        ["explain", "--lang", "zh_CN.UTF-8", "535"],
    ],
    ids=" ".join,
)
def test_explain_in_chinese(env: dict[str, str], args: list[str]) -> None:
    result = run(env, *args)
    assert result.returncode == 0, result.stderr
    assert "535" in result.stdout.splitlines()[0]
    assert CJK.search(result.stdout)


def test_explain_language_from_the_environment(env: dict[str, str]) -> None:
    del env["LC_ALL"]
    env["LANG"] = "zh_CN.UTF-8"
    result = run(env, "explain", "250")
    assert result.returncode == 0, result.stderr
    assert CJK.search(result.stdout)


def test_explain_unknown_query_in_chinese_is_one_chinese_line(env: dict[str, str]) -> None:
    assert CJK.search(one_line_error(run(env, "explain", "--lang", "zh", "hello"), 2))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_explain_every_rfc5321_code(
    xdg: None, capsys: pytest.CaptureFixture[str], lang: str
) -> None:
    for code in RFC5321_CODES:
        assert main(["explain", "--lang", lang, code]) == 0, code
        out, err = capsys.readouterr()
        assert err == ""
        assert code in out.splitlines()[0]
        assert bool(CJK.search(out)) == (lang == "zh"), (code, out)
        reply = explain(code, lang).reply
        assert reply is not None and reply.standard, f"{code} has no entry of its own"


def test_explain_into_a_closed_pipe_has_no_traceback(env: dict[str, str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [*MODULE, "explain", "550"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 1
    assert result.stderr == ""


def test_explain_chinese_on_an_ascii_stdout_has_no_traceback(env: dict[str, str]) -> None:
    env["PYTHONIOENCODING"] = "ascii"
    result = run(env, "explain", "--lang", "zh", "550")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("\\u")  # escaped, not lost
    assert "Traceback" not in result.stderr


# -- connect --------------------------------------------------------------------------------


def test_connect_refused_is_one_line_and_exit_3(env: dict[str, str]) -> None:
    result = run(env, "connect", "127.0.0.1", str(free_port()), command=script())
    assert result.returncode == 3
    both = result.stdout + result.stderr
    assert "Traceback" not in both
    assert len([line for line in both.splitlines() if "refused" in line]) == 1


def test_connect_unresolvable_host_is_exit_3(env: dict[str, str]) -> None:
    result = run(env, "connect", "nonexistent.invalid", "25")
    assert result.returncode == 3
    both = result.stdout + result.stderr
    assert "Traceback" not in both
    assert len([line for line in both.splitlines() if "nonexistent.invalid" in line]) == 2
    assert "resolve" in both


@pytest.mark.parametrize(
    ("host", "word"), [("127.0.0.1", "refused"), ("nonexistent.invalid", "resolve")]
)
def test_connect_failure_is_one_line_on_stderr(env: dict[str, str], host: str, word: str) -> None:
    port = str(free_port()) if host == "127.0.0.1" else "25"
    assert word in one_line_error(run(env, "connect", host, port), 3)


def test_connect_to_a_silent_server_reports_the_silence_and_ends_on_eof(
    env: dict[str, str],
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; nobody ever speaks
        port = silent.getsockname()[1]
        result = run(env, "connect", "127.0.0.1", str(port), "--timeout", "0.5")
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "no reply after 0.5 s" in plain(result.stdout)


# -- serve ----------------------------------------------------------------------------------


@dataclass
class Served:
    """A running `smtp-tutor serve` and what it announced."""

    process: subprocess.Popen[str]
    host: str
    port: int
    cert: Path
    seen: list[str]
    unread: queue.Queue[str | None]  # stdout lines still coming; None at the end

    def stop(self, signum: int) -> tuple[int, str, str]:
        """Send `signum`; return the exit code and all of stdout and stderr."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=5)
        while (line := self.unread.get(timeout=5)) is not None:
            self.seen.append(line)
        assert self.process.stderr is not None
        return code, "".join(self.seen), self.process.stderr.read()


@contextmanager
def serving(env: dict[str, str], *args: str) -> Iterator[Served]:
    process = subprocess.Popen(
        [*MODULE, "serve", "--port", "0", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        while not seen or "Press Ctrl+C" not in seen[-1]:
            line = lines.get(timeout=TIMEOUT)
            if line is None:
                pytest.fail(f"serve ended before announcing: {''.join(seen)}")
            seen.append(line)
        text = "".join(seen)
        where = re.search(r"listening on (\S+):(\d+)", text)
        cert = re.search(r"certificate: (.+)$", text, re.MULTILINE)
        assert where and cert, text
        yield Served(process, where[1], int(where[2]), Path(cert[1]), seen, lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on `port`, from /proc/net (hex, as the kernel shows)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


MESSAGE = (
    (
        "From: Student <student@example.org>\n"
        "To: Friend <friend@example.net>\n"
        "Subject: =?utf-8?b?5Lit5paH?= dots\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "你好，世界！这是一封测试邮件。\n"
        ".one dot at the start\n"
        "..two dots at the start\n"
        ".\n"
        "...\n"
        "end\n"
    )
    .replace("\n", "\r\n")
    .encode()
)  # smtplib sends bytes as they are: give it CRLF, as for str


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_serve_stores_a_message_byte_exact_and_stops_on_signal(
    env: dict[str, str], tmp_path: Path, signum: int
) -> None:
    mailbox = tmp_path / "Maildir"
    with serving(env, "--mailbox", str(mailbox)) as served:
        assert served.host == "127.0.0.1"
        if Path("/proc/net/tcp").exists():
            assert listening_addresses(served.port) == {"0100007F"}  # 127.0.0.1 only
        assert served.cert.is_relative_to(tmp_path)  # the real home is untouched

        with smtplib.SMTP(served.host, served.port, timeout=10) as smtp:
            smtp.ehlo("client.example")
            assert smtp.has_extn("starttls")
            smtp.starttls(context=client_tls_context(served.cert))
            smtp.ehlo("client.example")
            smtp.user, smtp.password = "student", "secret"
            code, _ = smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)
            assert code == 235
            options = [
                option
                for option, keyword in (("BODY=8BITMIME", "8bitmime"), ("SMTPUTF8", "smtputf8"))
                if smtp.has_extn(keyword)
            ]
            refused = smtp.sendmail(
                "student@example.org", ["friend@example.net"], MESSAGE, mail_options=options
            )
            assert refused == {}

        stored = [*(mailbox / "new").iterdir(), *(mailbox / "cur").iterdir()]
        assert len(stored) == 1
        # smtplib dot-stuffed it on the wire; the server un-stuffs: the very same bytes.
        assert stored[0].read_bytes() == MESSAGE

        code, stdout, stderr = served.stop(signum)
    assert code == 0, stderr
    assert "Traceback" not in stdout + stderr
    assert "Stopping" in stdout


def test_serve_on_a_busy_port_is_exit_3(env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        line = one_line_error(run(env, "serve", "--port", str(busy.getsockname()[1])), 3)
    assert "cannot listen" in line
    assert "in use" in line.lower()


def test_serve_with_an_unusable_mailbox_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    line = one_line_error(run(env, "serve", "--port", "0", "--mailbox", str(not_a_dir / "M")), 1)
    assert str(not_a_dir) in line


def test_swaks_delivers_through_tls_and_auth(env: dict[str, str], tmp_path: Path) -> None:
    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.skip("swaks not installed: .ci/install-postfix.sh installs it")
    mailbox = tmp_path / "Maildir"
    token = f"cli-test-{uuid.uuid4()}"
    with serving(env, "--mailbox", str(mailbox)) as served:
        result = subprocess.run(
            [
                swaks,
                "--server",
                served.host,
                "--port",
                str(served.port),
                "--from",
                "student@example.org",
                "--to",
                "friend@example.net",
                "--tls",
                "--auth",
                "LOGIN",
                "--auth-user",
                "student",
                "--auth-password",
                "secret",
                "--header",
                f"Subject: {token}",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        stored = list((mailbox / "new").iterdir())
        assert len(stored) == 1
        assert f"Subject: {token}".encode() in stored[0].read_bytes()
        code, _, stderr = served.stop(signal.SIGTERM)
    assert code == 0, stderr


# -- the sandbox console in a terminal ------------------------------------------------------


def read_until(child: pexpect.spawn, log: io.StringIO, pattern: str) -> str:
    """Read the terminal until its text (escapes removed) matches `pattern`; return the text."""
    regex = re.compile(pattern, re.MULTILINE | re.DOTALL)
    deadline = time.monotonic() + TIMEOUT
    while not regex.search(text := plain(log.getvalue())):
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {pattern!r} in:\n{text}")
        try:
            child.read_nonblocking(65536, timeout=0.5)
        except pexpect.TIMEOUT:
            continue
        except pexpect.EOF:
            raise AssertionError(f"ended before {pattern!r}:\n{plain(log.getvalue())}") from None
    return text


def test_sandbox_console_in_a_terminal(env: dict[str, str]) -> None:
    env.update(PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
    command = script()
    log = io.StringIO()
    child = pexpect.spawn(
        command[0], [], env=env, dimensions=(40, 120), encoding="utf-8", timeout=TIMEOUT
    )
    child.logfile_read = log
    try:
        banner = read_until(child, log, r"^220 .*smtp>")
        assert "student / secret" in banner
        child.sendline("EHLO me.example")
        ehlo = read_until(child, log, r"^250 .*smtp>").split("EHLO me.example", 1)[1]
        keywords = re.findall(r"^250-(\S+)", ehlo, re.MULTILINE)
        assert "STARTTLS" in keywords and "AUTH" in keywords, ehlo
        child.sendline(":quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert "Traceback" not in plain(log.getvalue())
    assert child.exitstatus == 0, plain(log.getvalue())
