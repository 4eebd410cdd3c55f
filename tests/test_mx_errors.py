"""An MX lookup that fails names the name server it asked: with nothing listening on the
`--nameserver` port (a closed UDP port on 127.0.0.1), the one-line error says which one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from smtp_tutor.client.mx import MXLookupError, lookup_mx, make_resolver


def closed_udp_port() -> int:
    """A UDP port of 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_error_names_an_unreachable_nameserver() -> None:
    port = closed_udp_port()
    with pytest.raises(MXLookupError) as caught:
        lookup_mx("example.test", make_resolver(f"127.0.0.1:{port}", timeout=1))
    assert str(caught.value) == (
        f"example.test: the DNS lookup timed out: no answer from name server 127.0.0.1:{port}"
    )


def test_connect_mx_with_an_unreachable_nameserver_is_one_line_naming_it(tmp_path: Path) -> None:
    port = closed_udp_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "LC_", "LANG"))}
    env.update(XDG_STATE_HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path), LC_ALL="C.UTF-8")
    command = [sys.executable, "-m", "smtp_tutor", "connect", "--mx", "example.test"]
    command += ["--nameserver", f"127.0.0.1:{port}", "--timeout", "1", "--quit-after", "connect"]
    result = subprocess.run(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "smtp-tutor connect: example.test: the DNS lookup timed out: "
        f"no answer from name server 127.0.0.1:{port}"
    ]
