"""APOP transcripts, text and JSON Lines, replayed by the real `smtp-tutor replay` on the
sandbox's POP3 port: the digest is computed again from that session's greeting."""

from __future__ import annotations

import io
import smtplib
import subprocess
from pathlib import Path

import pytest

from smtp_tutor.core.placeholders import Placeholder
from smtp_tutor.sandbox import SandboxConfig, ThreadedSandbox
from tests.test_pop3_console_dovecot import _env
from tests.test_pop3_replay import Pop3Recorder, Status, make_response
from tests.test_terminal import smtp_tutor

# ------------------------------------------------- replayed for real, on the sandbox's POP3


APOP_SCRIPT = """\
# protocol: pop3
S: +OK /.*<[^>]+>.*/
C: APOP student {apop password=password}
S: +OK /Logged in/
C: STAT
S: +OK /1 \\d+/
C: RETR 1
S: +OK
C: QUIT
S: +OK
"""


def _apop_jsonl() -> str:
    """The same dialogue as the recorder writes it in JSON Lines (a greeting of another day)."""
    rec = Pop3Recorder(clock=lambda: 0.0)
    jsonl = io.StringIO()
    rec.attach(jsonl, "jsonl")
    rec.received(make_response(Status.OK, "ready <old.1@localhost>"))
    rec.sent("APOP student 0123456789abcdef0123456789abcdef", Placeholder.apop())
    rec.received(make_response(Status.OK, "Logged in"))
    rec.sent("QUIT")
    rec.received(make_response(Status.OK, "bye"))
    rec.closed("done")
    return jsonl.getvalue()


@pytest.mark.parametrize("form", ["text", "jsonl"])
def test_apop_transcripts_replay_on_the_sandbox_with_a_new_greeting(
    tmp_path: Path, form: str
) -> None:
    config = SandboxConfig(mailbox=tmp_path / "Maildir", pop3_port=0, users={"student": "secret"})
    sandbox = ThreadedSandbox(config)
    sandbox.start()
    try:
        with smtplib.SMTP(sandbox.host, sandbox.port, timeout=10) as smtp:
            smtp.login("student", "secret")
            smtp.sendmail(
                "student@example.com", ["student@example.com"], b"Subject: x\r\n\r\nhi\r\n"
            )
        script = tmp_path / ("apop.pop3" if form == "text" else "apop.jsonl")
        script.write_text(APOP_SCRIPT if form == "text" else _apop_jsonl(), "utf-8")
        server = f"{sandbox.pop3_host}:{sandbox.pop3_port}"

        def replay(password: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    *smtp_tutor(),
                    "replay",
                    str(script),
                    "--server",
                    server,
                    "--var",
                    f"password={password}",
                ],
                capture_output=True,
                text=True,
                env=_env(tmp_path),
                timeout=60,
            )

        good = replay("secret")
        assert good.returncode == 0, good.stdout + good.stderr
        assert "responses matched" in good.stdout.splitlines()[-1]
        assert "secret" not in good.stdout + good.stderr
        wrong = replay("not-it")
        assert wrong.returncode == 1, wrong.stdout + wrong.stderr
        assert "expected +OK, got -ERR" in wrong.stdout
    finally:
        sandbox.stop()
