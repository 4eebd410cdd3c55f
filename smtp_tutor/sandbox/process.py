"""The console's sandbox in a process of its own, started before the console is built.

`smtp-tutor` (no subcommand) needs a running sandbox and a console; each costs about as
much to import and start as the other, and they need nothing of each other but the
sandbox's addresses. So the CLI starts the child before it imports the console, builds the
console meanwhile on the other core, and connects once the child has said where it listens.

On Linux, with no other thread running, the child is a fork of the console taken just
after asyncio is imported (both need it): no second interpreter to start, no second asyncio
import, about 40 ms less before the child listens. Elsewhere it is a fresh interpreter
(`python -m smtp_tutor.sandbox.process FD PPID`). Either way the child runs `main`.

The parent's side, `SandboxProcess`, imports none of the sandbox: only the standard
library (and asyncio before a fork). The two talk over one socket pair, one line from the
child:

    ready TAB host TAB port TAB pop3_host TAB pop3_port TAB mailbox
    error TAB errno TAB reason TAB filename

The child never outlives the console: it stops when its end of the pair reads EOF (the
console closed it, or the console's process is gone and the kernel closed it), and on
Linux the kernel also kills it when the parent dies (PR_SET_PDEATHSIG). It runs in a
session of its own, so Ctrl-C and Ctrl-Z at the terminal are the console's alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

#: How long the console waits for the sandbox to report, and for it to exit when stopped.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 6.0  # the sandbox's own stop waits up to 5 s for its clients


class SandboxStartError(OSError):
    """The child could not start the sandbox (errno, reason and filename as it said them)."""


class SandboxProcess:
    """A started sandbox in a child process: what a console needs of a `Sandbox`."""

    def __init__(self, fork: bool | None = None) -> None:
        """Start the child: forked where `_may_fork` allows (or `fork` says), else exec'd."""
        ours, theirs = socket.socketpair()
        self._socket = ours
        ours.set_inheritable(False)
        try:
            self._process: subprocess.Popen[bytes] | _Forked = (
                _fork(ours, theirs) if (_may_fork() if fork is None else fork) else _spawn(theirs)
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.host = "127.0.0.1"
        self.port = 0
        self.pop3_host: str | None = None
        self.pop3_port: int | None = None
        self.mailbox_path = Path()
        self._ready = False

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Block until the child listens; `SandboxStartError` if it cannot (and it is gone)."""
        if self._ready:
            return
        self._socket.settimeout(timeout)
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = self._socket.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            self.kill()
            raise SandboxStartError(0, f"no answer within {timeout:.0f} s") from None
        fields = data.decode("utf-8", "surrogateescape").rstrip("\n").split("\t")
        if fields[0] == "ready" and len(fields) == 6:
            self.host, port, pop3_host, pop3_port, mailbox = fields[1:]
            self.port = int(port)
            self.pop3_host = pop3_host or None
            self.pop3_port = int(pop3_port) if pop3_port else None
            self.mailbox_path = Path(mailbox)
            self._ready = True
            return
        self.kill()
        if fields[0] == "error" and len(fields) == 4:
            number, reason, filename = fields[1:]
            raise SandboxStartError(int(number), reason, filename or None)
        status = self._process.returncode
        raise SandboxStartError(0, f"its process ended (status {status})")

    async def stop(self) -> None:
        """Tell the child to stop (EOF on its socket) and wait until it has."""
        self._socket.close()
        try:
            self._process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self._socket.close()
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()


def _may_fork() -> bool:
    """Fork rather than start a second interpreter: Linux, and no thread but ours.

    A fork saves the child Python's start and the asyncio import (about 40 ms of the
    console's first prompt), but it copies every lock as it is at that moment, so it is
    safe only while no other thread could hold one (a test process, an embedding program
    with threads: there, a fresh interpreter as elsewhere).
    """
    if not sys.platform.startswith("linux"):
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def _spawn(theirs: socket.socket) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "smtp_tutor.sandbox.process",
        str(theirs.fileno()),
        str(os.getpid()),
    ]
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        pass_fds=(theirs.fileno(),),
        start_new_session=True,
    )


def _fork(ours: socket.socket, theirs: socket.socket) -> _Forked:
    """The child as a fork of this process, which then runs `main` and never returns."""
    import asyncio  # noqa: F401 - both sides need it: imported once, before the fork

    parent = os.getpid()
    pid = os.fork()
    if pid:
        return _Forked(pid)
    status = 1
    try:  # the child: the console's stack above this frame must never run here
        ours.close()
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        status = main([str(theirs.fileno()), str(parent)])
    finally:
        os._exit(status)


class _Forked:
    """A forked child with what `SandboxProcess` uses of `subprocess.Popen`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: gone, status unknown
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"sandbox {self.pid}", timeout or 0.0)
            time.sleep(0.005)
        return code

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


# -- the child ---------------------------------------------------------------------------


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL when the console's process ends, even if our loop is stuck.

    Also the name `ps` and `top` show, which a fork would otherwise share with the console.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        libc.prctl(15, b"smtp-tutor-sbox", 0, 0, 0)  # PR_SET_NAME (15 bytes at most)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it ended before prctl took effect
        os._exit(0)


def _report(link: socket.socket, *fields: object) -> None:
    line = "\t".join(str(field).replace("\t", " ").replace("\n", " ") for field in fields)
    link.sendall(line.encode("utf-8", "surrogateescape") + b"\n")


async def _serve(link: socket.socket) -> None:
    import asyncio

    from smtp_tutor.sandbox.config import SandboxConfig
    from smtp_tutor.sandbox.server import Sandbox

    try:
        sandbox = Sandbox(SandboxConfig(port=0, pop3_port=0))
        await sandbox.start()
    except OSError as error:
        address = getattr(error, "address", None)
        filename = "" if address is not None else (error.filename or "")
        _report(link, "error", error.errno or 0, error.strerror or error, filename)
        return
    pop3_host = sandbox.pop3_host or ""
    pop3_port = sandbox.pop3_port or ""
    _report(link, "ready", sandbox.host, sandbox.port, pop3_host, pop3_port, sandbox.mailbox_path)
    # What this process parsed (its triggers file) is kept for the next start, as the
    # command line keeps the console's on its way out: a child never gets that far.
    from smtp_tutor.data import save_cache

    save_cache()
    loop = asyncio.get_running_loop()
    closed = loop.create_future()

    def readable() -> None:
        try:
            data = link.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data and not closed.done():
            closed.set_result(None)

    link.setblocking(False)
    loop.add_reader(link.fileno(), readable)
    try:
        await closed
    finally:
        loop.remove_reader(link.fileno())
        await sandbox.stop()


def main(argv: list[str]) -> int:
    fd, parent = int(argv[0]), int(argv[1])
    _die_with_parent(parent)
    link = socket.socket(fileno=fd)
    try:
        import asyncio

        asyncio.run(_serve(link))
    except Exception as error:  # a bug: one line to the console, which says it
        with contextlib.suppress(OSError):
            _report(link, "error", 0, f"{type(error).__name__}: {error}", "")
        return 1
    finally:
        link.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
