"""The console's sandbox in its own process (sandbox/process.py): real sockets, real processes.

It says where it listens, serves there, stops when told, never outlives the console, and a
sandbox that cannot start is one line and an exit code.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pexpect
import pytest

from smtp_tutor.sandbox.process import SandboxProcess, SandboxStartError
from tests.test_import_sets import environment


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in environment(tmp_path).items():
        if key.startswith("XDG_"):
            monkeypatch.setenv(key, value)
    return tmp_path


def _how(fork: bool) -> None:
    if fork and threading.active_count() > 1:  # as SandboxProcess itself would decide
        pytest.skip("a fork beside other threads is what _may_fork refuses")


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "exec"])
def test_it_serves_smtp_and_pop3_where_it_says_and_stops_when_told(home: Path, fork: bool) -> None:
    _how(fork)
    child = SandboxProcess(fork=fork)
    child.wait_ready()
    assert child.host == "127.0.0.1" and child.port > 0 and child.pop3_port
    assert child.mailbox_path == home / "data" / "smtp-tutor" / "sandbox" / "Maildir"
    with socket.create_connection((child.host, child.port), timeout=10) as smtp:
        assert smtp.recv(100).startswith(b"220 ")
        smtp.sendall(b"QUIT\r\n")
        assert smtp.recv(100).startswith(b"221 ")
    with socket.create_connection((child.pop3_host, child.pop3_port), timeout=10) as pop3:
        assert pop3.recv(100).startswith(b"+OK")
    pid = child._process.pid
    asyncio.run(child.stop())
    assert child._process.returncode == 0
    assert not _alive(pid)
    with pytest.raises(OSError):
        socket.create_connection((child.host, child.port), timeout=5).close()


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "exec"])
def test_a_sandbox_that_cannot_start_says_why(
    home: Path, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    _how(fork)
    (home / "file").write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "file"))
    child = SandboxProcess(fork=fork)
    with pytest.raises(SandboxStartError) as raised:
        child.wait_ready()
    assert raised.value.filename == str(home / "file" / "smtp-tutor" / "sandbox")
    assert child._process.returncode is not None
    env = dict(environment(home), XDG_DATA_HOME=str(home / "file"))
    done = subprocess.run(
        [sys.executable, "-m", "smtp_tutor"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"smtp-tutor: cannot use {home / 'file' / 'smtp-tutor' / 'sandbox'}: Not a directory\n"
    )


def _sandbox_child(console: int) -> int:
    """The console's one child: a fork of it (same command line) named for `ps`."""
    found = Path(f"/proc/{console}/task/{console}/children").read_text().split()
    assert len(found) == 1, found
    assert Path(f"/proc/{found[0]}/comm").read_text() == "smtp-tutor-sbox\n"
    command = Path(f"/proc/{found[0]}/cmdline").read_bytes()
    assert command == Path(f"/proc/{console}/cmdline").read_bytes()  # forked, not exec'd
    return int(found[0])


@pytest.mark.parametrize("how", ["quit", "killed"])
def test_the_sandbox_never_outlives_its_console(home: Path, how: str) -> None:
    console = pexpect.spawn(
        sys.executable,
        ["-m", "smtp_tutor"],
        env=environment(home),
        cwd=str(home),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 120),
    )
    try:
        console.expect_exact("smtp>")
        sandbox = _sandbox_child(console.pid)
        console.sendintr()  # Ctrl-C is the console's: the sandbox is in its own session
        time.sleep(0.3)
        assert _alive(sandbox)
        if how == "quit":
            console.sendline(":quit")
            console.expect(pexpect.EOF)
        else:
            os.kill(console.pid, signal.SIGKILL)
        assert _gone_within(sandbox, 10)
    finally:
        console.close(force=True)
