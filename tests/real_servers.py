"""Helpers shared by the private real-server fixtures (tests/postfix.py, tests/dovecot.py).

Finding admin tools outside PATH, a free loopback port, a self-signed certificate that
verifies for 127.0.0.1, walking /proc for a daemon's children, the start/stop life cycle of
a server in a temp dir (``PrivateServer``), and the rule that a missing server skips the
test locally but fails it when CI is set.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Self

import pytest


def tool(name: str) -> str | None:
    """Find an admin tool even when sbin directories are missing from PATH."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ci_is_set() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(problem: str | None) -> None:
    """Skip without the server locally; fail under CI, so CI can never skip silently."""
    if problem is None:
        return
    if ci_is_set():
        pytest.fail(f"{problem} (CI is set: failing instead of skipping)", pytrace=False)
    pytest.skip(problem)


def write_self_signed(
    cert_path: Path,
    key_path: Path,
    *,
    hostname: str,
    ip_addresses: Iterable[str] = ("127.0.0.1",),
) -> None:
    """Self-signed cert valid for ``hostname``, localhost and the given IP addresses.

    The IP SANs let clients verify the certificate against ``cert_path`` when they
    connect to 127.0.0.1 (smtplib and poplib pass the connect host as server_hostname).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost")]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cert_path.chmod(0o644)


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the parenthesised command name (which may hold spaces)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[-1].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def processes_where(field_index: int, value: int) -> list[int]:
    """Pids whose /proc stat field (0 = state, 1 = ppid, 2 = pgrp) equals ``value``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if len(fields) > field_index and fields[field_index] == str(value):
                pids.append(int(entry.name))
    return pids


def children(parent: int) -> list[int]:
    return processes_where(1, parent)


def executable(pid: int) -> str:
    """The process's binary, or "" when it is gone (guards kills against pid reuse)."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def kill_leftovers(pids: Iterable[int], is_ours: Callable[[int], bool], grace: float) -> None:
    """Give the processes ``grace`` seconds to exit, then SIGKILL those still ours."""
    deadline = time.monotonic() + grace
    for pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if alive(pid) and is_ours(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class PrivateServer:
    """The life cycle of a private server living in the temp dir ``root``.

    Subclasses set ``name``, ``greeting_prefix``, ``host``, ``port``, ``root``,
    ``log_path`` and ``keep_dir``, and implement ``missing_requirements``, ``_prepare``
    (files written once), ``_launch`` (pick ports, write the config, start; called again
    when a port was lost to a race) and ``_halt`` (stop every process, idempotent).
    """

    name = "server"
    greeting_prefix = b""
    host = "127.0.0.1"
    port = 0
    root: Path
    log_path: Path
    keep_dir = False

    def missing_requirements(self) -> str | None:
        raise NotImplementedError

    def _prepare(self) -> None:
        raise NotImplementedError

    def _launch(self) -> None:
        raise NotImplementedError

    def _halt(self) -> None:
        raise NotImplementedError

    def _check_running(self) -> None:
        """Raise RuntimeError when the server is known to have died (while waiting)."""

    def start(self, timeout: float = 15.0) -> Self:
        """Write the config and start; retry when a port was lost to a race."""
        problem = self.missing_requirements()
        if problem:
            raise RuntimeError(problem)
        atexit.register(self.stop)
        self._prepare()
        last_error = ""
        for _attempt in range(3):
            try:
                self._launch()
                self._wait_for_greeting(timeout)
                return self
            except (TimeoutError, RuntimeError) as exc:
                last_error = str(exc)
                self._halt()
        log = self.log_text()[-4000:]
        self.stop()
        raise RuntimeError(f"{self.name} did not start: {last_error}\n{log}")

    def stop(self) -> None:
        """Stop every process, then remove the temp dir (unless keep_dir)."""
        self._halt()
        if not self.keep_dir and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait_for_greeting(self, timeout: float) -> None:
        """Connect until the server greets with ``greeting_prefix``; say QUIT politely."""
        deadline = time.monotonic() + timeout
        last = "no connection"
        while time.monotonic() < deadline:
            self._check_running()
            try:
                with socket.create_connection((self.host, self.port), timeout=5) as sock:
                    greeting = sock.makefile("rb").readline()
                    with contextlib.suppress(OSError):
                        sock.sendall(b"QUIT\r\n")
                if greeting.startswith(self.greeting_prefix):
                    return
                last = greeting.decode(errors="replace").strip() or "empty greeting"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.02)
        prefix = self.greeting_prefix.decode()
        raise TimeoutError(f"no {prefix} on {self.host}:{self.port} within {timeout} s ({last})")
