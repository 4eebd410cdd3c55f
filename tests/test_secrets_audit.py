"""Secrets audit: no password, token or base64 form of one is written anywhere or shown.

Sessions with every AUTH mechanism (LOGIN, PLAIN with and without an initial response,
CRAM-MD5, LOGIN by hand in manual mode, XOAUTH2) are run in the real console with a history
file, a live transcript (text and JSON Lines), `:save`, a lesson's saved progress and the
sandbox's Maildir; then the saved transcripts are replayed. Every byte of every file under
the test's home, and everything printed, is searched for every form of the secret.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, AuthResult

from smtp_tutor.client.session import Target
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.console.scripted import run_console
from smtp_tutor.core.redaction import secret_forms
from smtp_tutor.sandbox import Sandbox, SandboxConfig

PASSWORD = "Zebra-Quartz-91!"  # distinctive: it can only show up if it leaked
TOKEN = "ya29.Audit-Token-7f3e"
USER = "student"


def forbidden() -> set[bytes]:
    forms = secret_forms(PASSWORD, USER) | secret_forms(TOKEN, USER)
    forms |= {PASSWORD, TOKEN, base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()}
    return {form.encode() for form in forms if len(form) >= 6}


def leaks_in(data: bytes) -> list[bytes]:
    return [form for form in forbidden() if form in data]


class XOAuth2SMTP(SMTP):
    """aiosmtpd with XOAUTH2 (RFC-less, Google's): `user=U^Aauth=Bearer T^A^A` in base64."""

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            blob = base64.b64decode(args[1])
        else:
            response = await self.challenge_auth("")
            if not isinstance(response, bytes):
                return AuthResult(success=False, handled=True)
            blob = response
        expected = f"user={USER}\x01auth=Bearer {TOKEN}\x01\x01".encode()
        return AuthResult(success=blob == expected, handled=False)


async def xoauth2_server(body: Callable[[int], Awaitable[str]]) -> str:
    from aiosmtpd.handlers import Sink

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: XOAuth2SMTP(
            Sink(),
            hostname="localhost",
            auth_require_tls=False,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
        ),
        "127.0.0.1",
        0,
    )
    try:
        return await body(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


SCRIPTS = {
    "login": ["AUTH LOGIN", USER, PASSWORD],
    "plain": ["AUTH PLAIN", USER, PASSWORD],
    "plain-initial-response": [
        "AUTH PLAIN " + base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    ],
    "cram-md5": ["AUTH CRAM-MD5", USER, PASSWORD],
    "manual-login": [
        ":manual on",
        "AUTH LOGIN",
        base64.b64encode(USER.encode()).decode(),
        base64.b64encode(PASSWORD.encode()).decode(),
    ],
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    return tmp_path


def console_run(home: Path, port: int, auth: list[str], tag: str) -> str:
    async def main() -> str:
        out = []
        for fmt in ("text", "jsonl"):
            options = ConsoleOptions(
                color=False,
                toolbar=False,
                history_path=home / "xdg_state_home" / "history",
                transcript=home / f"{tag}-live.{fmt}",
                transcript_format=fmt,
            )
            lines = [
                "EHLO me",
                ":raw on",
                ":hex on",
                *auth,
                ":raw off",
                ":hex off",
                "MAIL FROM:<a@example.com>",
                "RCPT TO:<b@example.com>",
                "DATA",
                "Subject: audit",
                "",
                "body",
                ".",
                f":save {home / f'{tag}-saved.smtp'}",
                f":save {home / f'{tag}-saved.jsonl'}",
                "QUIT",
            ]
            _code, screen, _ = await run_console(Target("127.0.0.1", port), lines, options)
            out.append(screen)
        return "\n".join(out)

    return asyncio.run(main())


def sandbox_session(
    home: Path, auth: list[str], tag: str, variable: str
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """The console session, then `smtp-tutor replay` of its saved transcript, same server."""

    def replay(port: int) -> subprocess.CompletedProcess[str]:
        saved = home / f"{tag}-saved.smtp"
        command = [
            sys.executable,
            "-m",
            "smtp_tutor",
            "replay",
            str(saved),
            "--server",
            f"127.0.0.1:{port}",
            "--var",
            variable,
        ]
        return subprocess.run(
            command, env=dict(os.environ, NO_COLOR="1"), capture_output=True, text=True, timeout=60
        )

    async def main() -> tuple[str, subprocess.CompletedProcess[str]]:
        sandbox = Sandbox(SandboxConfig(port=0, users={USER: PASSWORD}))
        await sandbox.start()
        try:
            screen = await asyncio.to_thread(console_run, home, sandbox.port, auth, tag)
            return screen, await asyncio.to_thread(replay, sandbox.port)
        finally:
            await sandbox.stop()

    return asyncio.run(main())


def all_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.mark.parametrize("mechanism", list(SCRIPTS))
def test_console_and_replay_leak_nothing(home: Path, mechanism: str) -> None:
    variable = f"password={PASSWORD}"  # even answers typed by hand become placeholders
    screen, replay = sandbox_session(home, SCRIPTS[mechanism], mechanism, variable)
    assert "235 2.7.0" in screen, screen[-2000:]
    saved = home / f"{mechanism}-saved.smtp"
    assert any("{" in line for line in saved.read_text().splitlines() if line.startswith("C:"))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert not leaks_in(screen.encode()), "the console showed a secret"
    assert not leaks_in((replay.stdout + replay.stderr).encode()), "replay printed a secret"
    files = all_files(home)
    assert any(f.name == "history" for f in files)
    assert any(f.suffix == ".jsonl" for f in files) and any("Maildir" in str(f) for f in files)
    for path in files:
        assert not leaks_in(path.read_bytes()), f"{path} holds a secret"
    for jsonl in home.glob("*.jsonl"):
        for line in jsonl.read_text().splitlines():
            json.loads(line)  # valid JSON Lines, and (above) no secret inside


def test_xoauth2_leaks_nothing(home: Path) -> None:
    async def body(port: int) -> str:
        return await asyncio.to_thread(
            console_run, home, port, ["AUTH XOAUTH2", USER, TOKEN], "xoauth2"
        )

    screen = asyncio.run(xoauth2_server(body))
    assert "235" in screen, screen[-2000:]
    assert not leaks_in(screen.encode())
    for path in all_files(home):
        assert not leaks_in(path.read_bytes()), f"{path} holds the token"


def test_lesson_progress_holds_no_secret(home: Path) -> None:
    from smtp_tutor.console.lesson_replay import replay_lesson
    from smtp_tutor.core.lessons import find_lesson, load_lessons

    lessons, _ = load_lessons()
    lesson = find_lesson(lessons, "auth-plain")
    assert lesson is not None
    report = asyncio.run(replay_lesson(lesson))
    assert report.ok
    for path in all_files(home):
        data = path.read_bytes()
        assert b"c2VjcmV0" not in data and base64.b64encode(b"\0student\0secret") not in data
