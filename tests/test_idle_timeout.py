"""The idle timeout: an hour in a student's own sandbox, a server's five minutes under serve.

A student reading a lesson or an explanation must not lose the session, so the sandbox
that `smtp-tutor` and `smtp-tutor lesson` start for one student waits an hour; `serve`, for
a whole class, keeps the five minutes real servers use and `--idle-timeout` changes it.
Real sockets on 127.0.0.1; `serve` as a subprocess.
"""

from __future__ import annotations

import re
import signal
import socket
import time
from pathlib import Path

import pytest

from smtp_tutor.cli import build_parser
from smtp_tutor.core.lessons import load_lessons
from smtp_tutor.sandbox import (
    POP3_MIN_IDLE_TIMEOUT,
    SERVER_IDLE_TIMEOUT,
    STUDENT_IDLE_TIMEOUT,
    SandboxConfig,
    ThreadedSandbox,
)
from tests import test_cli
from tests.test_cli import run, serving

env = test_cli.env  # the fixture: a private home, an English locale, no colour


def test_a_students_sandbox_waits_an_hour_on_a_real_connection(tmp_path: Path) -> None:
    """The defaults are what `smtp-tutor` and `smtp-tutor lesson` start: SandboxConfig(port=0)."""
    assert STUDENT_IDLE_TIMEOUT >= 3600
    config = SandboxConfig(port=0, mailbox=tmp_path / "Maildir")
    with ThreadedSandbox(config) as box, socket.create_connection((box.host, box.port)) as client:
        assert client.recv(100).startswith(b"220 ")
        (connection,) = box.sandbox._handler.connections  # type: ignore[union-attr]
        assert connection._timeout_duration == STUDENT_IDLE_TIMEOUT  # aiosmtpd's timer length


def test_no_built_in_lesson_shortens_it() -> None:
    lessons, errors = load_lessons([])
    assert lessons and not errors
    for lesson in lessons:
        config = SandboxConfig(port=0, **lesson.scenario)  # type: ignore[arg-type]
        assert config.idle_timeout == STUDENT_IDLE_TIMEOUT, lesson.id


def test_serve_keeps_a_servers_default() -> None:
    assert SERVER_IDLE_TIMEOUT == 300
    assert build_parser().parse_args(["serve"]).idle_timeout == SERVER_IDLE_TIMEOUT


def test_serve_help_shows_the_default(env: dict[str, str]) -> None:
    result = run(env, "serve", "--help")
    assert result.returncode == 0, result.stderr
    assert re.search(r"--idle-timeout S\s+close an idle connection [^-]* \(300\)", result.stdout)


def test_serve_idle_timeout_closes_a_silent_client_with_421(
    env: dict[str, str], tmp_path: Path
) -> None:
    with serving(env, "--idle-timeout", "1", "--mailbox", str(tmp_path / "Maildir")) as served:
        with socket.create_connection((served.host, served.port), timeout=10) as client:
            reader = client.makefile("rb")
            assert reader.readline().startswith(b"220 ")
            began = time.monotonic()
            assert reader.readline().startswith(b"421 4.4.2 ")
            waited = time.monotonic() - began
            assert reader.read() == b""
        assert 0.5 < waited < 10
        code, _stdout, stderr = served.stop(signal.SIGTERM)
    assert code == 0, stderr


# POP3: RFC 1939 section 3 wants an autologout timer of at least 10 minutes ------------------


def test_pop3_waits_at_least_ten_minutes_unless_told_otherwise() -> None:
    assert POP3_MIN_IDLE_TIMEOUT == 600
    assert SandboxConfig(idle_timeout=SERVER_IDLE_TIMEOUT).pop3_idle() == 600  # serve's
    assert SandboxConfig().pop3_idle() == STUDENT_IDLE_TIMEOUT  # longer already: kept
    assert SandboxConfig(idle_timeout=1).pop3_idle() == 600
    assert SandboxConfig(idle_timeout=1, pop3_idle_timeout=2.5).pop3_idle() == 2.5
    with pytest.raises(ValueError, match="idle timeout"):
        SandboxConfig(pop3_idle_timeout=0).validate()
    assert build_parser().parse_args(["serve"]).pop3_idle_timeout is None


def _pop3_port(served: test_cli.Served) -> int:
    where = re.search(r"POP3 listening on 127\.0\.0\.1:(\d+)", "".join(served.seen))
    assert where, served.seen
    return int(where[1])


def test_serve_idle_timeout_alone_leaves_pop3_its_ten_minutes(
    env: dict[str, str], tmp_path: Path
) -> None:
    """--idle-timeout 1 closes a silent SMTP client; a silent POP3 client still has its session."""
    args = ("--idle-timeout", "1", "--pop3", "0", "--mailbox", str(tmp_path / "Maildir"))
    with (
        serving(env, *args) as served,
        socket.create_connection((served.host, served.port), timeout=10) as smtp,
        socket.create_connection(("127.0.0.1", _pop3_port(served)), timeout=10) as pop3,
    ):
        smtp_reader, pop3_reader = smtp.makefile("rb"), pop3.makefile("rb")
        assert smtp_reader.readline().startswith(b"220 ")
        assert pop3_reader.readline().startswith(b"+OK")
        assert smtp_reader.readline().startswith(b"421 4.4.2 ")  # after about 1 s
        time.sleep(1.0)  # POP3 has been silent as long as SMTP was, and longer
        pop3.sendall(b"USER student\r\n")  # valid in AUTHORIZATION: the session is alive
        assert pop3_reader.readline().startswith(b"+OK")


def test_serve_pop3_idle_timeout_closes_a_silent_pop3_session(
    env: dict[str, str], tmp_path: Path
) -> None:
    args = ("--pop3", "0", "--pop3-idle-timeout", "1", "--mailbox", str(tmp_path / "Maildir"))
    with (
        serving(env, *args) as served,
        socket.create_connection(("127.0.0.1", _pop3_port(served)), timeout=10) as pop3,
    ):
        reader = pop3.makefile("rb")
        assert reader.readline().startswith(b"+OK")
        began = time.monotonic()
        line = reader.readline()
        waited = time.monotonic() - began
        assert line.startswith(b"-ERR [SYS/TEMP] Idle for more than 1 seconds"), line
        assert reader.read() == b""
    assert 0.8 < waited < 5


def test_serve_refuses_a_pop3_idle_timeout_that_is_not_a_positive_number(
    env: dict[str, str],
) -> None:
    result = run(env, "serve", "--pop3", "0", "--pop3-idle-timeout", "0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2
