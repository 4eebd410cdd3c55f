"""`smtp-tutor replay`: real sockets on 127.0.0.1, sessions recorded by the real console."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtp_tutor.cli import main
from smtp_tutor.cli.replay import env_name, gather_variables, parse_server
from smtp_tutor.client.connection import WireEvent
from smtp_tutor.client.session import Target
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.console.scripted import run_console
from smtp_tutor.core.knowledge import load_knowledge
from smtp_tutor.core.replies import ReplyParser
from smtp_tutor.core.transcript import parse_transcript
from smtp_tutor.replay.link import Link, simple_reply
from smtp_tutor.replay.runner import ReplayOptions, ReplayResult, replay
from smtp_tutor.sandbox import Mailbox, SandboxConfig, ThreadedSandbox
from tests.postfix import PostfixInstance
from tests.servers import certificates, unused_port

PASSWORD = "Pa55-w0rd!"  # not the demo password: it must not turn up by accident
SENSITIVE = (PASSWORD, base64.b64encode(PASSWORD.encode()).decode())


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    for name in list(os.environ):
        if name.startswith("SMTP_TUTOR_"):
            monkeypatch.delenv(name)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[ThreadedSandbox]:
    """A sandbox in its own thread, with a student account whose password is `PASSWORD`."""
    config = SandboxConfig(port=0, mailbox=tmp_path / "Maildir", users={"student": PASSWORD})
    with ThreadedSandbox(config) as server:
        yield server


def record(host: str, port: int, lines: list[str]) -> str:
    """Type `lines` into the real console on HOST:PORT; the transcript it recorded."""

    async def session() -> str:
        options = ConsoleOptions(color=False, toolbar=False)
        code, _out, console = await run_console(Target(host, port), lines, options)
        assert code == 0
        return console.recorder.text()

    return asyncio.run(session())


def full_session(user: str, password: str, sender: str, recipient: str) -> list[str]:
    return [
        "EHLO client.example",
        "STARTTLS",
        "EHLO client.example",
        "AUTH LOGIN",
        user,
        password,
        f"MAIL FROM:<{sender}>",
        f"RCPT TO:<{recipient}>",
        "DATA",
        f"From: <{sender}>",
        f"To: <{recipient}>",
        "Subject: replayed",
        "",
        ".this line starts with a dot",
        "{braces} stay as they are",
        ".",
        "QUIT",
    ]


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main(["replay", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, text: str, name: str = "session.smtp") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def bodies(maildir: Path) -> list[bytes]:
    return [stored.raw for stored in Mailbox(maildir).messages()]


# -- the round trip (the "Done when") -------------------------------------------


def test_console_session_replays_green_against_the_same_server(
    tmp_path: Path, sandbox: ThreadedSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    text = record(
        sandbox.host,
        sandbox.port,
        full_session("student", PASSWORD, "student@example.org", "teacher@example.org"),
    )
    assert "C: {base64 password}" in text and "C: ..this line starts with a dot" in text
    path = write(tmp_path, text)
    server = f"{sandbox.host}:{sandbox.port}"

    code, out, err = cli(capsys, path, "--server", server, "--var", f"password={PASSWORD}")

    assert code == 0, out + err
    assert "@tls TLSv1." in out  # the STARTTLS 220 upgraded the connection in place
    assert "C: {base64 password}" in out  # the secret line is shown as its placeholder
    assert "S: 235 2.7.0 Authentication successful  ✓" in out
    assert "✗" not in out
    assert out.rstrip().endswith("ms") and " replies matched in " in out
    for needle in SENSITIVE:
        assert needle not in out + err
    replayed = bodies(sandbox.mailbox_path)
    assert len(replayed) == 2  # recorded, then replayed
    assert b".this line starts with a dot" in replayed[1]  # sent dot-stuffed, stored unstuffed
    assert b"..this line" not in replayed[1]


def test_console_session_replays_green_against_the_embedded_sandbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The embedded sandbox has the demo account only: record against one like it.
    with ThreadedSandbox(SandboxConfig(port=0, mailbox=tmp_path / "recorded")) as server:
        text = record(
            server.host,
            server.port,
            full_session("student", "secret", "student@example.org", "teacher@example.org"),
        )
    path = write(tmp_path, text)
    maildir = tmp_path / "replayed"

    code, out, err = cli(capsys, path, "--var", "password=secret", "--mailbox", maildir)

    assert code == 0, out + err
    assert out.startswith("# embedded sandbox on 127.0.0.1:")
    assert "@tls TLSv1." in out and "S: 221" in out
    [message] = bodies(maildir)
    assert b"Subject: replayed" in message and b"{braces} stay as they are" in message


def test_recorded_session_replays_from_the_environment_with_pipelining(
    tmp_path: Path,
    sandbox: ThreadedSandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = record(
        sandbox.host,
        sandbox.port,
        full_session("student", PASSWORD, "student@example.org", "teacher@example.org"),
    )
    path = write(tmp_path, text)
    monkeypatch.setenv("SMTP_TUTOR_PASSWORD", PASSWORD)

    code, out, err = cli(capsys, path, "--server", f"{sandbox.host}:{sandbox.port}", "--pipeline")

    assert code == 0, out + err
    for needle in SENSITIVE:
        assert needle not in out + err
    assert len(bodies(sandbox.mailbox_path)) == 2


@pytest.mark.parametrize("mechanism", ["PLAIN", "CRAM-MD5"])
def test_other_auth_mechanisms_are_computed_again_at_replay(
    tmp_path: Path,
    sandbox: ThreadedSandbox,
    capsys: pytest.CaptureFixture[str],
    mechanism: str,
) -> None:
    lines = ["EHLO me", f"AUTH {mechanism}", "student", PASSWORD, "QUIT"]
    text = record(sandbox.host, sandbox.port, lines)
    assert "S: 235" in text
    path = write(tmp_path, text)

    code, out, err = cli(
        capsys, path, "--server", f"{sandbox.host}:{sandbox.port}", "--var", f"password={PASSWORD}"
    )

    assert code == 0, out + err
    assert "S: 235 2.7.0 Authentication successful  ✓" in out
    for needle in SENSITIVE:
        assert needle not in out + err


@pytest.mark.postfix
def test_console_session_against_postfix_replays_green(
    tmp_path: Path, postfix: PostfixInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    address = postfix.address
    lines = full_session(postfix.user, postfix.password, address, address)
    lines[-5] = "Subject: replayed against Postfix"
    text = record(postfix.host, postfix.port, lines)
    assert "@tls TLSv1." in text and "S: 235" in text and "C: {base64 password}" in text
    path = write(tmp_path, text)
    server = f"{postfix.host}:{postfix.port}"

    for extra in ([], ["--pipeline"]):
        code, out, err = cli(capsys, path, "--server", server, "--var", "password=secret", *extra)
        assert code == 0, out + err
        assert "S: 221" in out
        postfix.wait_for_message(containing=b"Subject: replayed against Postfix")
    postfix.wait_for_message(containing=b"Subject: replayed against Postfix")


def test_a_bdat_session_with_the_sandbox_replays_into_the_same_mailbox(
    tmp_path: Path, sandbox: ThreadedSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    body = ["Subject: chunked", "", ".a dot", "你好 cut in the middle", "{braces}"]
    envelope = ["EHLO me", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>"]
    text = record(sandbox.host, sandbox.port, [*envelope, ":bdat 7", *body, ".", "QUIT"])
    message = "".join(f"{line}\r\n" for line in body).encode()
    path = write(tmp_path, text)
    server = f"{sandbox.host}:{sandbox.port}"
    for extra in ([], ["--pipeline"]):
        code, out, err = cli(capsys, path, "--server", server, *extra)
        assert code == 0, out + err
    assert bodies(sandbox.mailbox_path) == [message] * 3  # recorded once, replayed twice


@pytest.mark.postfix
def test_a_console_bdat_session_replays_its_chunks_byte_for_byte(
    tmp_path: Path, postfix: PostfixInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    address = postfix.address
    body = [
        "Subject: chunks replayed",
        "Message-ID: <bdat-replay@me.example>",
        "",
        ".a dot that BDAT does not stuff",
        "你好，世界: a line the 20-byte chunks cut inside a character",
        "{braces} and the end",
    ]
    lines = ["EHLO me", f"MAIL FROM:<{address}>", f"RCPT TO:<{address}>", ":bdat 20"]
    text = record(postfix.host, postfix.port, [*lines, *body, ".", "QUIT"])
    message = "".join(f"{line}\r\n" for line in body).encode()
    chunk_count = -(-len(message) // 20)
    assert text.count("C: BDAT 20\n") == chunk_count - 1 and " LAST\n" in text
    assert "bytes of message data" not in text  # no longer a comment in place of the data
    delivered = postfix.wait_for_message(containing=b"bdat-replay@me.example")
    # Postfix adds Date and From to the header section; the body must arrive untouched.
    headers, _, expected = message.replace(b"\r\n", b"\n").partition(b"\n\n")
    assert headers in delivered and delivered.endswith(b"\n\n" + expected)

    path = write(tmp_path, text)
    server = f"{postfix.host}:{postfix.port}"
    for extra in ([], ["--pipeline"]):
        code, out, err = cli(capsys, path, "--server", server, *extra)
        assert code == 0, out + err
        assert out.count("S: 250") >= chunk_count + 3
        again = postfix.wait_for_message(containing=b"bdat-replay@me.example")
        assert headers in again and again.endswith(b"\n\n" + expected)  # the same bytes

    result, writes, out, err = replay_observed(postfix, text, quiet=True)
    assert result.status == 0, out + err
    pieces = [message[i : i + 20] for i in range(0, len(message), 20)]
    last = len(pieces) - 1
    stream = b"".join(
        f"BDAT {len(piece)}{' LAST' if i == last else ''}\r\n".encode() + piece
        for i, piece in enumerate(pieces)
    )
    assert stream in b"".join(writes)  # on the wire exactly as the console sent it
    postfix.wait_for_message(containing=b"bdat-replay@me.example")


# -- a reply that does not match ------------------------------------------------------------

MISMATCH = """\
@connect 127.0.0.1 2525
S: 220
C: EHLO me
S: 250
C: MAIL FROM:<student@example.org>
S: 250
C: RCPT TO:<nobody@example.org>
S: 250
C: QUIT
S: 221
"""


def test_a_wrong_expectation_stops_with_the_line_what_came_back_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MISMATCH)

    code, out, err = cli(capsys, path)

    assert code == 1
    report = f"{path}:8: expected 250, got 550 5.1.1 <nobody@example.org>: Recipient address"
    assert report in out
    assert "S: 550 5.1.1 <nobody@example.org>" in out and "✗" in out
    kb = load_knowledge()
    assert f"↳ 550 {kb.reply(550, 'en', command='RCPT').title}" in out  # type: ignore[union-attr]
    assert f"↳ 5.1.1 {kb.enhanced('5.1.1', 'en').title}" in out  # type: ignore[union-attr]
    assert "C: QUIT" not in out  # it stopped at the mismatch
    assert out.rstrip().splitlines()[-1].startswith("stopped: 3 commands, 3 replies matched")
    assert "Traceback" not in err


def test_the_explanation_follows_lang_and_quiet_prints_only_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MISMATCH)

    code, out, _err = cli(capsys, path, "--lang", "zh", "--quiet")

    assert code == 1
    title = load_knowledge().reply(550, "zh", command="RCPT").title  # type: ignore[union-attr]
    assert f"↳ 550 {title}" in out
    assert "C: " not in out and "S: " not in out and "# embedded" not in out
    assert len(out.strip().splitlines()) == 4  # report, two explanations, summary


def test_a_regex_expectation_is_checked_against_the_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = "S: 220 /smtp-tutor/\nC: EHLO me\nS: 2xx /(?m)^PIPELINING$/\nC: QUIT\nS: *\n"
    code, out, err = cli(capsys, write(tmp_path, ok), "-q")
    assert code == 0, out + err
    assert out == "2 commands, 3 replies matched in " + out.split(" in ")[1]

    bad = "S: 220\nC: EHLO me\nS: 250 /BINARYMIME/\n"
    code, out, _err = cli(capsys, write(tmp_path, bad, "bad.smtp"), "-q")
    assert code == 1
    assert f"{tmp_path / 'bad.smtp'}:3: expected the text to match /BINARYMIME/, got" in out


def test_a_script_without_a_greeting_line_still_reads_the_greeting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, write(tmp_path, "C: NOOP\nS: 250\nC: QUIT\nS: 221\n"))
    assert code == 0, out + err
    assert "(greeting, not in the script)" in out


# -- usage and script errors: exit 2, one line ------------------------------------------------


def test_missing_variable_without_a_terminal_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal, even under -s
    script = (
        "S: 220\nC: EHLO me\nS: 250\nC: AUTH PLAIN {plain user=login password=password}\nS: 235\n"
    )
    path = write(tmp_path, script)

    code, out, err = cli(capsys, path, "--var", "login=student")

    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "password" in err and "--var password=VALUE" in err and "SMTP_TUTOR_PASSWORD" in err
    assert "login" not in err.split(":", 1)[1].split("give")[0]  # only the missing one


def test_variables_come_from_var_then_the_environment_then_the_prompt() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    values = gather_variables(
        ["a", "b-c", "d"], {"a": "given"}, {"SMTP_TUTOR_B_C": "env", "SMTP_TUTOR_A": "x"}, prompt
    )
    assert values == {"a": "given", "b-c": "env", "d": "typed"}
    assert asked == ["d: "]
    assert env_name("user.name") == "SMTP_TUTOR_USER_NAME"


def test_script_syntax_error_is_reported_as_file_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "S: 220\nC: EHLO me\n@foo bar\n")
    code, out, err = cli(capsys, path)
    assert code == 2
    assert out == ""
    assert err.startswith(f"{path}:3: unknown directive '@foo'")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--server", "127.0.0.1:99999"], "is not a port"),
        (["--var", "no-equals-sign"], "write NAME=VALUE"),
        (["--delay", "-5"], "--delay"),
        (["--server", "127.0.0.1:25", "--mailbox", "x"], "--mailbox"),
        (["--cafile", "/nonexistent/ca.pem"], "no such file"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = cli(capsys, write(tmp_path, "S: 220\n"), *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1 and out == ""


def test_tls_and_starttls_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["replay", "x.smtp", "--tls", "--starttls"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "not allowed with argument --tls" in err and err.count("\n") == 1


def test_unreadable_or_non_utf8_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(capsys, tmp_path / "missing.smtp")
    assert code == 2 and "cannot read" in err and err.count("\n") == 1
    path = tmp_path / "latin1.smtp"
    path.write_bytes(b"S: 220\nC: EHLO caf\xe9\n")
    code, _out, err = cli(capsys, path)
    assert code == 2 and f"{path}:2: not UTF-8 text" in err


def test_server_address_forms() -> None:
    assert parse_server("mx.example.org") == ("mx.example.org", 25)
    assert parse_server("127.0.0.1:2525") == ("127.0.0.1", 2525)
    assert parse_server("[::1]:587") == ("::1", 587)
    assert parse_server("::1") == ("::1", 25)


# -- connection and TLS failures: exit 3, one line ----------------------------------------


def test_connection_refused_is_one_line_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "S: 220\nC: QUIT\nS: 221\n")
    code, out, err = cli(capsys, path, "--server", f"127.0.0.1:{unused_port()}")
    assert code == 3
    assert "refused" in err and err.count("\n") == 1 and "Traceback" not in err
    assert "replies matched" not in out


SENDER = "S: 220\nC: EHLO me\nS: 250\nC: MAIL FROM:<a@example.org>\nS: 250\n"


def test_a_server_that_hangs_up_names_the_waiting_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = f"{SENDER}C: RCPT TO:<drop@example.org>\nS: 250\n"
    path = write(tmp_path, script)
    code, _out, err = cli(capsys, path)
    assert code == 3
    assert err.startswith(f"{path}:7: the server closed the connection while waiting for 250")
    assert err.count("\n") == 1


def test_an_expected_close_is_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = f"{SENDER}C: RCPT TO:<drop@example.org>\n@closed dropped\n"
    code, out, err = cli(capsys, write(tmp_path, script))
    assert code == 0, out + err
    assert "@closed  ✓" in out


def test_silence_times_out_with_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = f"{SENDER}C: RCPT TO:<slow@example.org>\nS: 250\n"
    path = write(tmp_path, script)
    code, _out, err = cli(capsys, path, "--timeout", "0.3")
    assert code == 3
    assert err.startswith(f"{path}:7: no reply within 0.3 s (waiting for 250)")


def test_verify_trusts_the_embedded_sandbox_but_not_another_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = (
        "S: 220\nC: EHLO me\nS: 250\nC: STARTTLS\nS: 220\nC: EHLO me\nS: 250\nC: QUIT\nS: 221\n"
    )
    path = write(tmp_path, script)

    code, out, err = cli(capsys, path, "--verify")
    assert code == 0, out + err

    other_ca = certificates().ca.cert_path
    code, out, err = cli(capsys, path, "--cafile", other_ca)
    assert code == 3
    assert err.startswith(f"{path}:5: TLS handshake with 127.0.0.1:") and "failed" in err
    assert err.count("\n") == 1


def test_implicit_tls_and_starttls_before_the_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "S: 220\nC: EHLO me\nS: 250 /AUTH/\nC: QUIT\nS: 221\n")

    code, out, err = cli(capsys, path, "--tls")
    assert code == 0, out + err
    assert "@connect 127.0.0.1" in out and " tls\n@tls TLSv1." in out

    code, out, err = cli(capsys, path, "--starttls")
    assert code == 0, out + err
    head = out.split("@tls")[0]
    assert "C: EHLO me  (--starttls)" in head and "C: STARTTLS  (--starttls)" in head
    assert out.count("C: EHLO me") == 2  # the script's own EHLO follows, inside TLS


def test_a_second_connect_reconnects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = "@connect 127.0.0.1 25\nS: 220\nC: EHLO one\nS: 250\nC: QUIT\nS: 221\n@closed\n"
    two = one.replace("one", "two")
    code, out, err = cli(capsys, write(tmp_path, one + two))
    assert code == 0, out + err
    assert out.count("@connect 127.0.0.1") == 2
    assert out.count("S: 221") == 2


# -- pipelining -----------------------------------------------------------------------------------


def messages_script(count: int, greeting: str = "EHLO") -> str:
    lines = ["S: 220", f"C: {greeting} me", "S: 250"]
    for index in range(count):
        lines += ["C: MAIL FROM:<a@example.org>", "S: 250", "C: RCPT TO:<b@example.org>"]
        lines += ["S: 250", "C: DATA", "S: 354", f"C: Subject: {index}", "C:", "C: body"]
        lines += ["C: .", "S: 250"]
    lines += ["C: QUIT", "S: 221"]
    return "\n".join(lines) + "\n"


def replay_observed(
    server: ThreadedSandbox | PostfixInstance, text: str, **options: object
) -> tuple[ReplayResult, list[bytes], str, str]:
    """Replay in-process; every write the client made, as it went to the socket."""
    writes: list[bytes] = []

    def observe(event: WireEvent) -> None:
        if event.direction == "sent":
            writes.append(event.data)

    out, err = io.StringIO(), io.StringIO()
    script = parse_transcript(text, "pipelined.smtp")

    async def run() -> ReplayResult:
        return await replay(
            script,
            server.host,
            server.port,
            ReplayOptions(**options),  # type: ignore[arg-type]
            out=out,
            err=err,
            observer=observe,
        )

    return asyncio.run(run()), writes, out.getvalue(), err.getvalue()


def test_pipeline_sends_each_group_in_one_write_and_still_matches(
    sandbox: ThreadedSandbox,
) -> None:
    result, writes, out, err = replay_observed(sandbox, messages_script(3), pipeline=True)

    assert result.status == 0, out + err
    assert result.matched == 2 + 3 * 4 + 1
    group = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
    # A message starts a group (RFC 2920 §3.1): its "." and the next transaction, or QUIT,
    # follow in the same write; DATA still waits for its 354.
    assert writes == [
        b"EHLO me\r\n",
        group,
        b"Subject: 0\r\n\r\nbody\r\n.\r\n" + group,
        b"Subject: 1\r\n\r\nbody\r\n.\r\n" + group,
        b"Subject: 2\r\n\r\nbody\r\n.\r\nQUIT\r\n",
    ]
    stored = bodies(sandbox.mailbox_path)
    assert len(stored) == 3
    assert all(any(b"Subject: %d\r\n" % i in raw for raw in stored) for i in range(3))
    assert "S: 250" in out and out.index("C: QUIT") < out.rindex("S: 250")


def test_without_pipeline_each_command_is_its_own_write(sandbox: ThreadedSandbox) -> None:
    result, writes, out, err = replay_observed(sandbox, messages_script(2))
    assert result.status == 0, out + err
    assert b"MAIL FROM:<a@example.org>\r\n" in writes and b"DATA\r\n" in writes
    assert all(write.count(b"\r\n") == 1 for write in writes if not write.startswith(b"Subject"))
    assert len(writes) == 1 + 2 * 4 + 1


def test_pipeline_falls_back_to_lockstep_without_pipelining_advertised(
    sandbox: ThreadedSandbox,
) -> None:
    result, writes, out, err = replay_observed(sandbox, messages_script(2, "HELO"), pipeline=True)
    assert result.status == 0, out + err
    assert "does not advertise PIPELINING" in err
    assert all(not write.startswith(b"MAIL") or write.count(b"\r\n") == 1 for write in writes)


def test_pipelined_mismatch_still_names_the_line(sandbox: ThreadedSandbox) -> None:
    text = messages_script(1).replace("C: RCPT TO:<b@", "C: RCPT TO:<nobody@")
    result, _writes, out, _err = replay_observed(sandbox, text, pipeline=True, quiet=True)
    assert result.status == 1
    assert out.startswith("pipelined.smtp:7: expected 250, got 550 5.1.1")


def test_a_message_refused_at_its_dot_is_told_apart_from_the_next_envelope(
    sandbox: ThreadedSandbox,
) -> None:
    # The first message is refused after its final dot (the sandbox's toobig trigger), while
    # the second message's MAIL, RCPT and DATA already went out in the same write.
    text = messages_script(2).replace("C: RCPT TO:<b@", "C: RCPT TO:<toobig@", 1)

    result, writes, out, _err = replay_observed(sandbox, text, pipeline=True, quiet=True)

    assert result.status == 1
    assert out.startswith("pipelined.smtp:14: expected 250, got 552 5.3.4 Message too big")
    assert b"Subject: 0\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@example.org>\r\n" in writes[2]

    expected = text.replace("C: .\nS: 250", "C: .\nS: 552", 1)
    result, _writes, out, err = replay_observed(sandbox, expected, pipeline=True, quiet=True)

    assert result.status == 0, out + err
    assert result.matched == 2 + 2 * 4 + 1
    assert [b"Subject: 1\r\n" in raw for raw in bodies(sandbox.mailbox_path)] == [True]


# -- the wire: replies as the core parser makes them, cancelling ---------------------------

REPLY_LINES = st.one_of(
    st.builds(
        lambda code, separator, text, end: b"%d%s%s%s" % (code, separator, text, end),
        st.integers(0, 999),
        st.sampled_from([b" ", b"-", b"", b"\t"]),
        st.binary(max_size=40).map(lambda raw: raw.replace(b"\n", b"")),
        st.sampled_from([b"\r\n", b"\n", b"\r\r\n"]),
    ),
    st.binary(max_size=20).map(lambda raw: raw.replace(b"\n", b"") + b"\n"),
    st.builds(lambda n: b"250 " + b"x" * n + b"\r\n", st.integers(500, 520)),
)


@given(REPLY_LINES)
def test_the_fast_path_makes_the_parsers_reply_or_leaves_the_line_to_it(line: bytes) -> None:
    fast = simple_reply(line)
    if fast is not None:
        assert [fast] == ReplyParser().feed(line)


def test_the_fast_path_takes_the_usual_replies() -> None:
    for line in (b"250 2.1.0 Ok\r\n", b"354 End data with <CR><LF>.<CR><LF>\r\n", b"221\r\n"):
        assert simple_reply(line) is not None


@given(st.lists(REPLY_LINES, max_size=12), st.lists(st.integers(1, 60), max_size=8))
def test_received_bytes_make_the_same_replies_however_they_are_cut(
    lines: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(lines)
    chunks, position = [], 0
    for size in cuts:
        chunks.append(stream[position : position + size])
        position += size
    chunks.append(stream[position:])
    sock, other = socket.socketpair()
    with sock, other:
        link = Link(sock, "127.0.0.1", 25, 1.0, None)
        for chunk in chunks:
            if chunk:
                link._take(chunk)
        replies = list(link._ready) + link._parser.feed_eof()
    parser = ReplyParser()
    expected = [reply for chunk in chunks for reply in parser.feed(chunk)] + parser.feed_eof()
    assert replies == expected


def test_an_over_long_line_is_cut_as_the_parser_cuts_it() -> None:
    # Cut at 70_004, the tail of the dropped line would pass for a reply of its own.
    stream = b"250 " + b"A" * 70_000 + b"250 tail\r\n250 after\r\n221 bye\r\n"
    for cut in (10, 65_540, 70_004, 70_013, 70_014, 70_020):
        parser = ReplyParser()
        expected = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        sock, other = socket.socketpair()
        with sock, other:
            link = Link(sock, "127.0.0.1", 25, 1.0, None)
            link._take(stream[:cut])
            link._take(stream[cut:])
            assert list(link._ready) == expected
            assert [reply.lines for reply in expected][1:] == [("after",), ("bye",)], cut


@pytest.mark.parametrize("kernel_timeouts", [True, False], ids=["kernel", "python"])
def test_replies_and_silence_with_either_kind_of_socket_timeout(
    sandbox: ThreadedSandbox, monkeypatch: pytest.MonkeyPatch, kernel_timeouts: bool
) -> None:
    """Linux times reads out in the kernel; elsewhere Python's socket timeouts do."""
    monkeypatch.setattr("smtp_tutor.replay.link._KERNEL_TIMEOUTS", kernel_timeouts)
    result, _writes, out, err = replay_observed(sandbox, messages_script(2), pipeline=True)
    assert result.status == 0, out + err

    text = f"{SENDER}C: RCPT TO:<slow@example.org>\nS: 250\nC: QUIT\nS: 221\n"
    result, _writes, out, err = replay_observed(sandbox, text, timeout=0.3)
    assert result.status == 3
    assert err == "pipelined.smtp:7: no reply within 0.3 s (waiting for 250)\n"


def test_cancelling_a_replay_ends_it_at_once_and_quietly() -> None:
    """The replay waits in a worker thread; a cancelled caller must not wait for the timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    out, err = io.StringIO(), io.StringIO()
    script = parse_transcript("S: 220\nC: QUIT\nS: 221\n", "silent.smtp")

    async def cancelled() -> None:
        task = asyncio.create_task(
            replay(
                script,
                "127.0.0.1",
                listener.getsockname()[1],
                ReplayOptions(timeout=600),
                out=out,
                err=err,
            )
        )
        accepted.append(await asyncio.to_thread(lambda: listener.accept()[0]))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    finished = threading.Event()

    def run() -> None:
        asyncio.run(cancelled())  # returns once the worker thread has ended
        finished.set()

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        # Generous: the replay's own timeout is ten minutes.
        assert finished.wait(30), "the replay went on waiting after it was cancelled"
    finally:
        listener.close()
        for sock in accepted:
            sock.close()
    assert err.getvalue() == ""
    assert "replies matched" not in out.getvalue()


# -- classroom pacing: --step and --delay (the real command, stdin a pipe) ----------------


def run_command(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "smtp_tutor", "replay", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_step_waits_for_enter_before_each_command(tmp_path: Path) -> None:
    path = write(tmp_path, "S: 220\nC: EHLO me\nS: 250\nC: NOOP\nS: 250\nC: QUIT\nS: 221\n")

    done = run_command(str(path), "--step", stdin="\n\n\n")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("[Enter]") == 3
    # Each command is shown before the wait, its reply after.
    noop = done.stdout.index("C: NOOP")
    assert noop < done.stdout.index("[Enter]", noop) < done.stdout.index("S: 250", noop)


def test_step_runs_on_when_input_ends_and_delay_works(tmp_path: Path) -> None:
    path = write(tmp_path, "S: 220\nC: EHLO me\nS: 250\nC: NOOP\nS: 250\nC: QUIT\nS: 221\n")

    stepped = run_command(str(path), "--step", stdin="\n")
    assert stepped.returncode == 0, stepped.stdout + stepped.stderr
    assert stepped.stdout.count("[Enter]") == 2  # the second wait found the end of input

    delayed = run_command(str(path), "--delay", "1", "-q")
    assert delayed.returncode == 0, delayed.stdout + delayed.stderr
    assert delayed.stdout.startswith("3 commands, 4 replies matched in ")


def test_help_documents_starttls_and_the_exit_codes() -> None:
    done = run_command("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "--starttls" in text and "EHLO" in text and "STARTTLS" in text
    assert "3 a connection or TLS failure" in text
