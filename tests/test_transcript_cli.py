"""`replay` and `diagram` read JSON Lines transcripts and follow the `-` convention.

The real command in a subprocess, against a sandbox on 127.0.0.1: `replay -` reads the
script from standard input, `diagram - -o -` draws from standard input to standard output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtp_tutor.core.placeholders import Placeholder
from smtp_tutor.core.recorder import TranscriptRecorder
from smtp_tutor.core.replies import make_reply
from smtp_tutor.sandbox import Mailbox, SandboxConfig, ThreadedSandbox

PASSWORD = "Jsonl-pa55"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTP_TUTOR_")}
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        env[name] = str(tmp_path / name.lower())
    return dict(env, NO_COLOR="1")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[ThreadedSandbox]:
    config = SandboxConfig(port=0, mailbox=tmp_path / "Maildir", users={"student": PASSWORD})
    with ThreadedSandbox(config) as server:
        yield server


def recorded(host: str, port: int) -> TranscriptRecorder:
    """A session as the console records it, with the replies the sandbox gives."""
    rec = TranscriptRecorder(timing=True)
    rec.connected(host, port)
    rec.received(make_reply(220, "localhost ESMTP"), 0.001)
    rec.sent("EHLO client.example")
    rec.received(make_reply(250, "localhost", "PIPELINING", "AUTH PLAIN LOGIN"), 0.001)
    rec.sent("AUTH PLAIN x", secret=Placeholder.plain("student"))
    rec.received(make_reply(235, "2.7.0 Authentication successful"), 0.001)
    rec.sent("MAIL FROM:<student@example.org>")
    rec.received(make_reply(250, "2.1.0 ok"), 0.001)
    rec.sent("RCPT TO:<nobody@example.org>")
    rec.received(make_reply(550, "5.1.1 user unknown"), 0.001)
    rec.sent("RCPT TO:<teacher@example.org>")
    rec.received(make_reply(250, "2.1.5 ok"), 0.001)
    rec.sent("DATA")
    rec.received(make_reply(354, "go ahead"), 0.001)
    rec.sent_data(b"Subject: from JSON Lines\r\n\r\n..a dot line\r\n.\r\n")
    rec.received(make_reply(250, "2.0.0 queued"), 0.001)
    rec.sent("QUIT")
    rec.received(make_reply(221, "2.0.0 bye"), 0.001)
    rec.closed("the session ended with QUIT (221)")
    return rec


def smtp_tutor(
    env: dict[str, str], *argv: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smtp_tutor", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def replay_args(sandbox: ThreadedSandbox) -> list[str]:
    return ["--server", f"{sandbox.host}:{sandbox.port}", "--var", f"password={PASSWORD}"]


def test_replay_reads_text_or_jsonl_from_stdin(
    home: dict[str, str], sandbox: ThreadedSandbox
) -> None:
    rec = recorded(sandbox.host, sandbox.port)
    for script in (rec.text(), rec.jsonl()):
        done = smtp_tutor(home, "replay", "-", *replay_args(sandbox), stdin=script)
        assert done.returncode == 0, done.stdout + done.stderr
        assert " replies matched in " in done.stdout and done.stderr == ""
        assert "S: 550 5.1.1" in done.stdout and "✗" not in done.stdout
    stored = [m.raw for m in Mailbox(sandbox.mailbox_path).messages()]
    assert len(stored) == 2 and all(b"\r\n.a dot line\r\n" in raw for raw in stored)


def test_replay_detects_jsonl_by_content_whatever_the_name(
    tmp_path: Path, home: dict[str, str], sandbox: ThreadedSandbox
) -> None:
    path = tmp_path / "session.smtp"  # JSON Lines under a transcript's name
    path.write_text(recorded(sandbox.host, sandbox.port).jsonl(), encoding="utf-8")
    done = smtp_tutor(home, "replay", str(path), *replay_args(sandbox), "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("8 commands, ")


def test_a_jsonl_mismatch_names_the_record_line(
    home: dict[str, str], sandbox: ThreadedSandbox
) -> None:
    records = recorded(sandbox.host, sandbox.port).jsonl().splitlines()
    # Pretend the unknown recipient had been accepted: the replay must stop at that record.
    line_no = next(n for n, r in enumerate(records, 1) if json.loads(r).get("code") == 550)
    changed = json.loads(records[line_no - 1]) | {"code": 250}
    records[line_no - 1] = json.dumps(changed)
    done = smtp_tutor(home, "replay", "-", *replay_args(sandbox), stdin="\n".join(records))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"<stdin>:{line_no}:" in done.stdout + done.stderr
    assert "expected 250, got 550" in done.stdout + done.stderr


def test_bad_jsonl_is_one_line_and_exit_2_for_replay_and_diagram(
    tmp_path: Path, home: dict[str, str]
) -> None:
    bad = '{"dir":"C","line":"EHLO x"}\n{"dir":"S","code":250,"lines":"ok"}\n'
    path = tmp_path / "bad.jsonl"
    path.write_text(bad, encoding="utf-8")
    for argv, stdin in (
        (["replay", "-"], bad),
        (["replay", str(path)], ""),
        (["diagram", "-", "-o", "-"], bad),
        (["diagram", str(path), "-o", str(tmp_path / "x.svg")], ""),
    ):
        done = smtp_tutor(home, *argv, stdin=stdin)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert ":2: an S record: 'lines' must be a list" in done.stderr
        assert done.stdout == ""
    assert not (tmp_path / "x.svg").exists()


def test_replay_step_cannot_read_the_script_from_stdin(home: dict[str, str]) -> None:
    done = smtp_tutor(home, "replay", "-", "--step", stdin="S: 220\n")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--step" in done.stderr


def test_diagram_reads_stdin_and_writes_svg_or_html_to_stdout(
    tmp_path: Path, home: dict[str, str]
) -> None:
    rec = recorded("127.0.0.1", 2525)
    svgs = []
    for script in (rec.text(), rec.jsonl()):
        done = smtp_tutor(home, "diagram", "-", "-o", "-", stdin=script)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        root = ET.fromstring(done.stdout)  # the whole of stdout is the SVG, nothing else
        assert root.tag.endswith("svg")
        svgs.append(done.stdout)
        assert "password=password}" in done.stdout  # the placeholder, never a secret
        assert "550" in done.stdout and "from JSON Lines" in done.stdout
    # The same drawing; only the line numbers differ (each names a line of its own file).
    unnumbered = [re.sub(r'data-line="\d+"|lines? [0-9-]+:', "", svg) for svg in svgs]
    assert unnumbered[0] == unnumbered[1]

    page = smtp_tutor(home, "diagram", "-", "-o", "-", "--format", "html", stdin=rec.jsonl())
    assert page.returncode == 0, page.stderr
    assert page.stdout.startswith("<!DOCTYPE html>") and "<svg" in page.stdout

    # A JSONL file drawn to a file, and --format over the suffix.
    source = tmp_path / "session.jsonl"
    source.write_text(rec.jsonl(), encoding="utf-8")
    out = tmp_path / "diagram.out"
    done = smtp_tutor(home, "diagram", str(source), "-o", str(out), "--format", "html")
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
