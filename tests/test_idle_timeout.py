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

from smtp_tutor.cli import build_parser
from smtp_tutor.core.lessons import load_lessons
from smtp_tutor.sandbox import (
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
