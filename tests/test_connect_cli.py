"""`smtp-tutor connect` for administrators: MX lookup, TLS options and scripted probes.

Everything runs against real servers on loopback: the sandbox, a DNS server of our own
answering over real UDP, and (marked) Postfix.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtp_tutor.client.mx import MXLookupError, lookup_mx, make_resolver
from smtp_tutor.sandbox import SandboxConfig, ThreadedSandbox
from tests.dns_server import dns_server


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return dict(
        os.environ,
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        NO_COLOR="1",
        LANG="C.UTF-8",
    )


@pytest.fixture
def sandbox(home: dict[str, str], tmp_path: Path) -> Iterator[ThreadedSandbox]:
    """A sandbox in a thread of its own, so subprocess clients can reach it."""
    os.environ["XDG_DATA_HOME"] = home["XDG_DATA_HOME"]
    with ThreadedSandbox(SandboxConfig(port=0, mailbox=tmp_path / "Maildir")) as box:
        yield box


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smtp_tutor", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


ZONE = {
    ("example.test", "MX"): ["20 backup.example.test.", "10 primary.example.test."],
    ("primary.example.test", "A"): ["127.0.0.2"],  # nothing listens there: refused
    ("backup.example.test", "A"): ["127.0.0.1"],
    ("nomx.test", "A"): ["127.0.0.1"],
    ("null.test", "MX"): ["0 ."],
}


def test_lookup_orders_by_preference_with_addresses() -> None:
    with dns_server(ZONE) as server:
        resolver = make_resolver(server)
        found = lookup_mx("example.test", resolver)
        assert [(mx.preference, mx.name, mx.addresses) for mx in found] == [
            (10, "primary.example.test", ("127.0.0.2",)),
            (20, "backup.example.test", ("127.0.0.1",)),
        ]
        [implicit] = lookup_mx("nomx.test", resolver)
        assert implicit.implicit and implicit.addresses == ("127.0.0.1",)
        with pytest.raises(MXLookupError, match="null MX"):
            lookup_mx("null.test", resolver)
        with pytest.raises(MXLookupError, match="no such domain"):
            lookup_mx("missing.test", resolver)


def test_connect_mx_falls_back_to_the_next_server(
    home: dict[str, str], sandbox: ThreadedSandbox
) -> None:
    with dns_server(ZONE) as server:
        result = run(
            home,
            "connect",
            "--mx",
            "example.test",
            "--nameserver",
            server,
            "--port",
            str(sandbox.port),
            "--quit-after",
            "tls",
            "--timeout",
            "5",
        )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "MX records for example.test" in out
    assert out.index("primary.example.test") < out.index("backup.example.test")
    assert "220 localhost" in out and "TLS active: TLSv1." in out
    assert "certificate subject:" in out and "221" in out


def test_quit_after_each_stage(home: dict[str, str], sandbox: ThreadedSandbox) -> None:
    base = ["connect", "127.0.0.1", str(sandbox.port), "--timeout", "5"]
    connect = run(home, *base, "--quit-after", "connect")
    assert connect.returncode == 0 and "220 " in connect.stdout and "EHLO" not in connect.stdout
    env = dict(home, SMTP_TUTOR_PASSWORD="secret")
    rcpt = run(
        env,
        *base,
        "--quit-after",
        "rcpt",
        "--auth-user",
        "student",
        "--from",
        "student@example.com",
        "--to",
        "friend@example.com",
    )
    assert rcpt.returncode == 0, rcpt.stderr
    assert "235 2.7.0" in rcpt.stdout and "250 2.1.5" in rcpt.stdout
    assert "secret" not in rcpt.stdout and "c2VjcmV0" not in rcpt.stdout
    refused = run(env, *base, "--quit-after", "rcpt", "--to", "nobody@example.com")
    assert refused.returncode == 1 and "RCPT" in refused.stderr
    wrong = run(
        dict(home, SMTP_TUTOR_PASSWORD="wrong"),
        *base,
        "--quit-after",
        "auth",
        "--auth-user",
        "student",
    )
    assert wrong.returncode == 1 and "AUTH" in wrong.stderr
    assert "Traceback" not in rcpt.stderr + refused.stderr + wrong.stderr


def test_verify_refuses_the_self_signed_sandbox_and_cafile_trusts_it(
    home: dict[str, str], sandbox: ThreadedSandbox
) -> None:
    base = ["connect", "127.0.0.1", str(sandbox.port), "--quit-after", "tls", "--timeout", "5"]
    refused = run(home, *base, "--verify")
    assert refused.returncode == 3
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    trusted = run(home, *base, "--verify", "--cafile", str(sandbox.cert_path), "--sni", "localhost")
    assert trusted.returncode == 0, trusted.stderr
    assert "✓ verified" in trusted.stdout
    modern = run(home, *base, "--tls-min-version", "1.3")
    assert modern.returncode == 0 and "TLSv1.3" in modern.stdout


def test_bad_connect_options_are_one_line(home: dict[str, str]) -> None:
    for args in (
        ["connect"],
        ["connect", "h", "--mx", "d.test"],
        ["connect", "h", "--client-key", "k"],
        ["connect", "h", "--client-cert", "/nonexistent.pem"],
    ):
        result = run(home, *args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.postfix
def test_probe_against_postfix_shows_auth_appearing_after_tls(
    home: dict[str, str], postfix_tls_only: object
) -> None:
    from tests.postfix import PostfixInstance

    assert isinstance(postfix_tls_only, PostfixInstance)
    env = dict(home, SMTP_TUTOR_PASSWORD=postfix_tls_only.password)
    result = run(
        env,
        "connect",
        postfix_tls_only.host,
        str(postfix_tls_only.port),
        "--quit-after",
        "auth",
        "--auth-user",
        postfix_tls_only.user,
        "--timeout",
        "10",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    before, after = result.stdout.split("TLS active", 1)
    assert "AUTH" not in before.split("C: EHLO", 1)[1]  # hidden until TLS
    assert "AUTH PLAIN" in after and "235" in after


def test_source_address_and_address_family(home: dict[str, str]) -> None:
    peers: list[str] = []

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[0])
        writer.write(b"220 test ESMTP\r\n")
        await reader.readline()  # QUIT
        writer.write(b"221 bye\r\n")
        await writer.drain()
        writer.close()

    async def main() -> list[subprocess.CompletedProcess[str]]:
        server = await asyncio.start_server(greet, "127.0.0.1", 0)
        port = str(server.sockets[0].getsockname()[1])
        base = ["connect", "127.0.0.1", port, "--quit-after", "connect", "--timeout", "5"]
        try:
            return [
                await asyncio.to_thread(run, home, *base, "--source-address", "127.0.0.2"),
                await asyncio.to_thread(run, home, *base, "-4"),
                await asyncio.to_thread(run, home, *base, "-6"),
            ]
        finally:
            server.close()

    sourced, ipv4, ipv6 = asyncio.run(main())
    assert sourced.returncode == 0 and ipv4.returncode == 0, sourced.stderr + ipv4.stderr
    assert peers == ["127.0.0.2", "127.0.0.1"]  # the first came from the asked address
    assert ipv6.returncode == 3 and len(ipv6.stderr.strip().splitlines()) == 1
