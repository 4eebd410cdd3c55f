"""`connect … --quit-after STAGE` against scripted servers on 127.0.0.1, the program a subprocess.

The probe writes the transcript the console writes (`--transcript FILE`, `--format jsonl`),
private to its owner and without the AUTH secret; and a server that accepts but never greets
costs one timeout, not two (no QUIT is sent into the silence).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from smtp_tutor.core.transcript import parse_transcript
from tests.servers import (
    Close,
    Expect,
    Hang,
    ScriptServer,
    Send,
    StartTLS,
    certificates,
    run,
)

PASSWORD = "s3cret-for-the-probe"


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "LC_", "LANG"))}
    env.update(
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        LC_ALL="C.UTF-8",
        NO_COLOR="1",
        SMTP_TUTOR_PASSWORD=PASSWORD,
    )
    return env


async def _probe(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smtp_tutor",
        "connect",
        *args,
        env=_environment(tmp_path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask: files would be 0644
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _tls_auth_script() -> list[object]:
    issued = certificates().self_signed
    return [
        Send(b"220 probe.example ESMTP\r\n"),
        Expect(b"EHLO probe-client"),
        Send(b"250-probe.example\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n"),
        Expect(b"STARTTLS"),
        Send(b"220 2.0.0 go ahead\r\n"),
        StartTLS(issued.server_context()),
        Expect(b"EHLO probe-client"),
        Send(b"250-probe.example\r\n250 AUTH PLAIN LOGIN\r\n"),
        Expect(b"AUTH PLAIN"),
        Send(b"334 \r\n"),
        Expect(b""),  # the credentials, in base64
        Send(b"235 2.7.0 ok\r\n"),
        Expect(b"QUIT"),
        Send(b"221 2.0.0 bye\r\n"),
        Close(),
    ]


@pytest.mark.parametrize("form", ["text", "jsonl"])
def test_quit_after_writes_the_transcript_privately_and_without_the_secret(
    tmp_path: Path, form: str
) -> None:
    transcript = tmp_path / "logs" / f"probe.{form}"

    async def scenario() -> tuple[int, str, str, ScriptServer, int]:
        async with ScriptServer(_tls_auth_script()) as server:  # type: ignore[arg-type]
            port = server.port
            result = await _probe(
                tmp_path,
                *("127.0.0.1", str(server.port), "--quit-after", "auth"),
                *("--auth-user", "student", "--ehlo", "probe-client", "--timeout", "10"),
                *("--transcript", str(transcript), "--format", form),
            )
            return (*result, server, port)

    code, out, err, server, port = run(scenario(), timeout=60)
    assert (code, err) == (0, ""), out
    assert server.errors == [], server.errors
    assert stat.S_IMODE(transcript.stat().st_mode) == 0o600
    written = transcript.read_text("utf-8")
    secret = base64.b64encode(f"\0student\0{PASSWORD}".encode()).decode()
    assert PASSWORD not in written and secret not in written
    if form == "text":
        assert "\n@time " in written  # reply latencies, as the console records them
        lines = [line for line in written.splitlines() if not line.startswith("@time ")]
        assert lines[0] == f"@connect 127.0.0.1 {port}"
        assert "S: 220 probe.example ESMTP" in lines
        assert "C: EHLO probe-client" in lines and "C: STARTTLS" in lines
        assert any(line.startswith("@tls TLSv1.") for line in lines), lines
        at = lines.index("C: AUTH PLAIN")
        assert lines[at + 1] == "S: 334"
        assert lines[at + 2].startswith("C: {plain") and 'user="student"' in lines[at + 2]
        assert lines[-3:] == [
            "C: QUIT",
            "S: 221 2.0.0 bye",
            "@closed the session ended with QUIT (221)",
        ]
        script = parse_transcript(written)  # replayable, as the console's is
        assert len(script.sends) == 6 and len(script.expects) == 7
    else:
        records = [json.loads(line) for line in written.splitlines()]
        assert records[0]["event"] == "connect" and records[0]["port"] == port
        sent = [r["text"] or r["line"] for r in records if r["dir"] == "C"]
        assert sent[:2] == ["EHLO probe-client", "STARTTLS"] and sent[-1] == "QUIT"
        codes = [r["code"] for r in records if r["dir"] == "S"]
        assert codes == [220, 250, 220, 250, 334, 235, 221]
        assert any(r["event"] == "tls" for r in records)
        assert any(r["secret"] for r in records if r["dir"] == "C")


def test_an_existing_transcript_file_becomes_private(tmp_path: Path) -> None:
    transcript = tmp_path / "probe.txt"
    transcript.write_text("old\n")
    transcript.chmod(0o644)

    async def scenario() -> tuple[int, str, str]:
        script = [Send(b"220 hi\r\n"), Expect(b"QUIT"), Send(b"221 bye\r\n"), Close()]
        async with ScriptServer(script) as server:  # type: ignore[arg-type]
            return await _probe(
                tmp_path,
                *("127.0.0.1", str(server.port), "--quit-after", "connect"),
                *("--transcript", str(transcript)),
            )

    code, _out, err = run(scenario(), timeout=60)
    assert (code, err) == (0, "")
    assert stat.S_IMODE(transcript.stat().st_mode) == 0o600
    lines = [line for line in transcript.read_text().splitlines() if not line.startswith("@time")]
    assert lines[1:4] == ["S: 220 hi", "C: QUIT", "S: 221 bye"]  # the old text is gone


def test_a_silent_server_costs_one_timeout_not_two(tmp_path: Path) -> None:
    timeout = 2.0
    transcript = tmp_path / "silent.txt"

    async def scenario() -> tuple[int, str, str, ScriptServer, float]:
        async with ScriptServer([Hang()]) as server:
            probe = asyncio.ensure_future(
                _probe(
                    tmp_path,
                    *("127.0.0.1", str(server.port), "--quit-after", "connect"),
                    *("--timeout", f"{timeout:g}", "--transcript", str(transcript)),
                )
            )
            while not server.connections:  # the clock starts once the client is connected
                assert not probe.done(), await probe
                await asyncio.sleep(0.01)
            began = time.monotonic()
            await server.finished.wait()  # the client hung up
            held = time.monotonic() - began
            return (*await probe, server, held)

    code, _out, err, server, held = run(scenario(), timeout=60)
    assert code == 3
    assert err.splitlines() == [f"smtp-tutor: no reply after {timeout:g} s"]
    assert server.lines == []  # no QUIT was sent into the silence
    assert timeout * 0.9 < held < timeout * 1.5, held
    assert transcript.read_text().splitlines()[1:] == [f"# no reply after {timeout:g} s"]
