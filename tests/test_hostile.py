"""The console and replay against hostile servers: every way a server can misbehave.

Each scenario in `SCENARIOS` is one `ScriptServer` script (on 127.0.0.1), the lines a student
types, and the one-line explanations the console must print. Every console run must also:
never show a traceback or an internal error, stay usable afterwards (`:b64 probe` still
answers, Ctrl-D exits 0) or exit with the documented code and one line on stderr, leave no
unhandled error in asyncio's log, and leave a transcript file that holds what happened (one
test reads it while the console still runs).

`smtp-tutor replay` then meets the same servers with the same lines as a transcript: its
exit status (0, 1 mismatch, 3 connection/TLS) and the start of its one-line report are in
the table's `replay` column. Known bugs are strict xfails: a fix turns them into failures
that ask for the mark to go.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from smtp_tutor.client.session import Target
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.core.recorder import TranscriptRecorder
from smtp_tutor.core.replies import MAX_REPLY_LINES, ReplyParser
from smtp_tutor.core.transcript import parse_transcript
from smtp_tutor.replay.runner import ReplayOptions, replay
from tests.consoles import run_console, screen_text
from tests.servers import (
    HOST,
    Action,
    Close,
    Expect,
    ExpectUntil,
    Hang,
    ReadBytes,
    Reset,
    ScriptServer,
    Send,
    SendForever,
    SendSlowly,
    StartTLS,
    Wait,
    WaitFor,
    certificates,
    run,
    unused_port,
)

#: Typed after every scenario that keeps the console open: a command that needs no server.
PROBE = ":b64 probe"
PROBE_ANSWER = "cHJvYmU="


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


# -- building blocks for scripts ------------------------------------------------------------

GREETING = Send(b"220 hostile.example ESMTP\r\n")


def answer(prefix: bytes, reply: bytes) -> list[Action]:
    """Read the client's next line (it must start with `prefix`), then send `reply`."""
    return [Expect(prefix), Send(reply)]


def ehlo(*keywords: str) -> list[Action]:
    lines = ["hostile.example", *keywords]
    text = "".join(
        f"250{'-' if i < len(lines) - 1 else ' '}{line}\r\n" for i, line in enumerate(lines)
    )
    return answer(b"EHLO", text.encode())


def up_to_data() -> list[Action]:
    """Greeting, EHLO, MAIL, RCPT and DATA all accepted: the client is writing the message."""
    return [
        GREETING,
        *ehlo("PIPELINING"),
        *answer(b"MAIL FROM:", b"250 2.1.0 ok\r\n"),
        *answer(b"RCPT TO:", b"250 2.1.5 ok\r\n"),
        *answer(b"DATA", b"354 go ahead\r\n"),
    ]


def up_to_bdat() -> list[Action]:
    """Greeting, EHLO with CHUNKING, MAIL and RCPT accepted: the client may send BDAT."""
    return [
        GREETING,
        *ehlo("PIPELINING", "CHUNKING"),
        *answer(b"MAIL FROM:", b"250 2.1.0 ok\r\n"),
        *answer(b"RCPT TO:", b"250 2.1.5 ok\r\n"),
    ]


def starttls(context_name: str, *, after: bytes = b"", delay: float = 0.0) -> list[Action]:
    """Greeting, EHLO with STARTTLS, 220 (plus `after` in the same write), then the handshake."""
    issued = getattr(certificates(), context_name)
    return [
        GREETING,
        *ehlo("STARTTLS"),
        *answer(b"STARTTLS", b"220 2.0.0 ready to start TLS\r\n" + after),
        StartTLS(issued.server_context(), delay=delay),
    ]


def until_starttls() -> list[Action]:
    return [GREETING, *ehlo("STARTTLS"), *answer(b"STARTTLS", b"220 2.0.0 go ahead\r\n")]


ENVELOPE = ("EHLO me.example", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>")
MESSAGE = ("DATA", "Subject: hostile", "", "hello")
BDAT_MESSAGE = (":bdat", *MESSAGE[1:], ".")  # one chunk: BDAT 27 LAST
CLOSED = "connection closed: the server closed the connection"
CLOSED_421 = "connection closed: the server closed the session (421)"
TLS_FAILED = "TLS handshake with 127.0.0.1:{port} failed"  # {port}: filled in per run


@pytest.fixture(autouse=True)
def _unwrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The explanations are matched as whole lines: no wrapping at 80 columns here."""
    monkeypatch.setenv("COLUMNS", "1000")


@dataclass(frozen=True)
class Scenario:
    """One hostile server: its script, what the student types, what the console must say.

    `expect` must appear on screen in this order; `transcript` in the transcript file.
    `{port}` in either is the server's port. `script=None` means nothing listens at all.
    """

    name: str
    script: Sequence[Action] | None
    lines: Sequence[str]
    expect: Sequence[str]
    transcript: Sequence[str] = ()
    absent: Sequence[str] = ()
    exit_code: int = 0
    reply_timeout: float = 0.5
    connect_timeout: float = 2.0
    implicit_tls: bool | None = None
    server_tls: str | None = None  # implicit TLS on the server, with this certificate
    trust_ca: bool = False  # verify against the test CA (so only the named flaw is reported)
    stderr: str | None = None  # the one line on stderr when the console cannot start
    xfail: str | None = None  # a known console bug: strict, so the fix flips it to XPASS
    #: `smtp-tutor replay` of the same lines against the same server: exit status, and the
    #: start of its one-line report (stderr for 3, stdout for 1, the summary for 0).
    replay: tuple[int, str] | None = None
    replay_xfail: str | None = None  # a known replay bug


SCENARIOS: list[Scenario] = [
    # -- before and at the greeting
    Scenario(
        "nothing listening",
        script=None,
        lines=(),
        expect=(),
        exit_code=3,
        stderr="connection to 127.0.0.1:{port} refused — is a server listening?",
        replay=(3, "connection to 127.0.0.1:{port} refused"),
    ),
    Scenario(
        "accept then close at once",
        script=[Close()],
        lines=("EHLO me.example",),
        expect=(CLOSED, "not connected — use :reconnect"),
        transcript=("@connect 127.0.0.1 {port}", "@closed the server closed the connection"),
        replay=(3, "hostile.txt:1: the server closed the connection while waiting for 220"),
    ),
    Scenario(
        "no greeting",
        script=[Hang()],
        lines=(),
        expect=("no reply after 0.5 s (the session is still open)",),
        transcript=("@connect 127.0.0.1 {port}",),
        replay=(3, "hostile.txt:1: no reply within 0.5 s (waiting for 220)"),
    ),
    Scenario(
        "greeting then silence",
        script=[GREETING, Expect(b"EHLO"), Hang()],
        lines=("EHLO me.example",),
        expect=("220 hostile.example", "no reply after 0.5 s (the session is still open)"),
        transcript=("S: 220 hostile.example ESMTP", "C: EHLO me.example"),
        replay=(3, "hostile.txt:3: no reply within 0.5 s (waiting for 250)"),
    ),
    Scenario(
        "554 greeting",
        script=[Send(b"554 5.7.1 no SMTP service here\r\n"), *answer(b"QUIT", b"221 bye\r\n")],
        lines=("QUIT",),
        expect=("554 5.7.1 no SMTP service here", "↳ 554", "221 bye", "connection closed"),
        transcript=("S: 554 5.7.1 no SMTP service here", "C: QUIT", "S: 221 bye"),
        replay=(1, "hostile.txt:1: expected 220, got 554 5.7.1 no SMTP service here"),
    ),
    Scenario(
        "421 greeting",
        script=[Send(b"421 4.3.2 too busy, try later\r\n"), Close()],
        lines=(),
        expect=("421 4.3.2 too busy", "↳ 421", CLOSED_421),
        transcript=("S: 421 4.3.2 too busy, try later", "@closed the server closed the session"),
        replay=(1, "hostile.txt:1: expected 220, got 421 4.3.2 too busy, try later"),
    ),
    Scenario(
        "binary garbage",
        script=[Send(b"\x00\x01\xff\xfe\x80garbage\x7f\r\n"), Hang()],
        lines=(),
        expect=(
            "malformed reply: line does not start with a three-digit reply code",
            "malformed reply: text is not valid UTF-8",
        ),
        transcript=("# malformed reply: line does not start with a three-digit reply code",),
        replay=(1, "hostile.txt:1: expected 220, got a reply without a code"),
    ),
    Scenario(
        "non-UTF-8 text",
        script=[Send(b"220 caf\xe9 ESMTP\r\n"), *ehlo(), Hang()],
        lines=("EHLO me.example",),
        expect=("220 caf\ufffd ESMTP", "malformed reply: text is not valid UTF-8", "250"),
        transcript=("# malformed reply: text is not valid UTF-8", "S: 250 hostile.example"),
        replay=(0, "1 commands, 2 replies matched"),
    ),
    Scenario(
        "1 MB line with no newline",
        script=[Send(b"220 " + b"A" * 1_000_000), Hang()],
        lines=(),
        expect=("malformed reply: line longer than 65536 bytes with no end; the rest was dropped",),
        transcript=("# malformed reply: line longer than 65536 bytes", "S: 220 AAAA"),
        replay=(0, "0 commands, 1 replies matched"),
    ),
    Scenario(
        "a line that never ends",
        script=[Send(b"220 "), SendForever(b"A" * 65536)],
        lines=("EHLO me.example",),
        expect=("malformed reply: line longer than 65536 bytes with no end; the rest was dropped",),
        transcript=("# malformed reply: line longer than 65536 bytes",),
        replay=(3, "hostile.txt:3: no reply within 0.5 s (waiting for 250)"),
    ),
    Scenario(
        "one byte every 100 ms",
        script=[SendSlowly(b"220 slow.example\r\n", 0.1), *ehlo(), Hang()],
        lines=("EHLO me.example",),
        expect=("220 slow.example", "250 hostile.example"),
        absent=("malformed", "no reply after"),
        reply_timeout=4.0,
        transcript=("S: 220 slow.example",),
        replay=(0, "1 commands, 2 replies matched"),
    ),
    Scenario(
        "bare LF line ends",
        script=[Send(b"220 lf.example ESMTP\n"), Hang()],
        lines=(),
        expect=("220 lf.example", "malformed reply: line ends in a bare LF instead of CRLF"),
        transcript=("# malformed reply: line ends in a bare LF",),
        replay=(0, "0 commands, 1 replies matched"),
    ),
    Scenario(
        "control characters in a reply",
        script=[Send(b"220 real\x08\x08\x08\x08fake \x07\xc2\x9b2J \x00 ready\r\n"), Hang()],
        lines=(),
        expect=("fake", "ready"),
        absent=("\x08", "\x07", "\x9b", "\x00"),
        replay=(0, "0 commands, 1 replies matched"),
    ),
    Scenario(
        "unsolicited 250 after the greeting",
        script=[Send(b"220 hostile.example ESMTP\r\n250 surprise\r\n"), *ehlo(), Hang()],
        lines=("EHLO me.example",),
        expect=("250 surprise", "this reply answers no command that was sent", "250 hostile"),
        transcript=("S: 250 surprise", "S: 250 hostile.example"),
        replay=(1, ""),
    ),
    # -- malformed replies to EHLO
    Scenario(
        "multiline reply with mismatched codes",
        script=[GREETING, *answer(b"EHLO", b"250-first\r\n251-second\r\n250 third\r\n"), Hang()],
        lines=("EHLO me.example",),
        expect=("malformed reply: lines of one reply carry different codes (250 and 251)",),
        transcript=("# malformed reply: lines of one reply carry different codes",),
        replay=(0, "1 commands, 2 replies matched"),
    ),
    Scenario(
        "code without a space",
        script=[GREETING, *answer(b"EHLO", b"250OK\r\n"), Hang()],
        lines=("EHLO me.example",),
        expect=("250OK", "malformed reply: no space or hyphen after the reply code"),
        transcript=("# malformed reply: no space or hyphen after the reply code",),
        replay=(0, "1 commands, 2 replies matched"),
    ),
    Scenario(
        "6xx code",
        script=[GREETING, *answer(b"EHLO", b"650 what is this\r\n"), Hang()],
        lines=("EHLO me.example",),
        expect=("650 what is this", "malformed reply: 650 is outside the reply codes 2xx–5xx"),
        transcript=("S: 650 what is this",),
        replay=(1, "hostile.txt:3: expected 250, got 650 what is this"),
    ),
    Scenario(
        "ten thousand continuation lines",
        script=[GREETING, *answer(b"EHLO", b"250-x\r\n" * 10_000 + b"250 end\r\n"), Hang()],
        lines=("EHLO me.example",),
        expect=("250 end", "malformed reply: more than 1000 lines; 9001 were dropped"),
        transcript=("# malformed reply: more than 1000 lines; 9001 were dropped", "S: 250 end"),
        replay=(0, "1 commands, 2 replies matched"),
    ),
    Scenario(
        "a multiline reply that never ends",
        script=[GREETING, Expect(b"EHLO"), SendForever((b"250-" + b"x" * 500 + b"\r\n") * 128)],
        lines=("EHLO me.example",),
        expect=("no reply after 0.5 s (the session is still open)",),
        transcript=("C: EHLO me.example",),
        replay=(3, "hostile.txt:3: no reply within 0.5 s (waiting for 250)"),
    ),
    Scenario(
        "line over 512 bytes",
        script=[GREETING, *answer(b"EHLO", b"250 " + b"y" * 600 + b"\r\n"), Hang()],
        lines=("EHLO me.example",),
        expect=("malformed reply: line longer than 512 bytes (RFC 5321 §4.5.3.1.5)",),
        replay=(0, "1 commands, 2 replies matched"),
    ),
    Scenario(
        "late reply after the silence warning",
        script=[GREETING, Expect(b"EHLO"), Wait(0.8), Send(b"250 hostile.example\r\n"), Hang()],
        lines=("EHLO me.example",),
        expect=("no reply after 0.5 s (the session is still open)", "250 hostile.example"),
        absent=("answers no command",),
        transcript=("C: EHLO me.example", "S: 250 hostile.example"),
        replay=(3, "hostile.txt:3: no reply within 0.5 s (waiting for 250)"),
    ),
    Scenario(
        "disconnect in the middle of a multiline reply",
        script=[GREETING, *answer(b"EHLO", b"250-hostile.example\r\n250-PIPELINING\r\n"), Close()],
        lines=("EHLO me.example", "NOOP"),
        expect=(
            "250-PIPELINING",
            "malformed reply: connection closed in the middle of a reply",
            CLOSED,
            "not connected — use :reconnect",
        ),
        transcript=("# malformed reply: connection closed in the middle of a reply", "@closed"),
        replay=(3, "hostile.txt:3: the connection broke in the middle of a reply"),
    ),
    Scenario(
        "connection reset in the middle of a line",
        script=[GREETING, *answer(b"EHLO", b"250-hostile.example\r\n250-PIPE"), Reset()],
        lines=("EHLO me.example",),
        expect=("connection closed: ",),
        transcript=("@closed",),
        replay=(3, "hostile.txt:3: the connection broke"),
    ),
    # -- 421 at every phase
    Scenario(
        "421 after EHLO",
        script=[GREETING, *answer(b"EHLO", b"421 4.7.0 go away\r\n"), Close()],
        lines=("EHLO me.example",),
        expect=("421 4.7.0 go away", "↳ 421", CLOSED_421),
        transcript=("S: 421 4.7.0 go away", "@closed"),
        replay=(1, "hostile.txt:3: expected 250, got 421 4.7.0 go away"),
    ),
    Scenario(
        "421 after MAIL",
        script=[GREETING, *ehlo(), *answer(b"MAIL", b"421 4.3.0 shutting down\r\n"), Close()],
        lines=ENVELOPE[:2],
        expect=("421 4.3.0 shutting down", CLOSED_421),
        transcript=("S: 421 4.3.0 shutting down", "@closed"),
        replay=(1, "hostile.txt:5: expected 250, got 421 4.3.0 shutting down"),
    ),
    Scenario(
        "421 after RCPT",
        script=[
            GREETING,
            *ehlo(),
            *answer(b"MAIL", b"250 ok\r\n"),
            *answer(b"RCPT", b"421 4.4.5 too many connections\r\n"),
            Hang(),
        ],
        lines=ENVELOPE,
        expect=("421 4.4.5 too many connections", CLOSED_421),
        transcript=("S: 421 4.4.5 too many connections", "@closed"),
        replay=(1, "hostile.txt:7: expected 250, got 421 4.4.5 too many connections"),
    ),
    Scenario(
        "421 after the 354, while the message is typed",
        script=[*up_to_data(), Expect(b"Subject:"), Send(b"421 4.4.2 timeout\r\n"), Close()],
        lines=(*ENVELOPE, *MESSAGE[:2]),
        expect=("354 go ahead", "421 4.4.2 timeout", CLOSED_421),
        transcript=("C: Subject: hostile", "S: 421 4.4.2 timeout", "@closed"),
        replay=(1, "hostile.txt:12: expected 250, got 421 4.4.2 timeout"),
    ),
    Scenario(
        "421 after the final dot",
        script=[*up_to_data(), ExpectUntil(b".\r\n"), Send(b"421 4.3.2 lost it\r\n"), Close()],
        lines=(*ENVELOPE, *MESSAGE, "."),
        expect=("421 4.3.2 lost it", CLOSED_421),
        transcript=("C: .", "S: 421 4.3.2 lost it", "@closed"),
        replay=(1, "hostile.txt:14: expected 250, got 421 4.3.2 lost it"),
    ),
    Scenario(
        "disconnect after the final dot, before the reply",
        script=[*up_to_data(), ExpectUntil(b".\r\n"), Close()],
        lines=(*ENVELOPE, *MESSAGE, "."),
        expect=(
            "354 go ahead",
            f"{CLOSED}; the final dot got no reply: the message may or may not have been accepted",
        ),
        transcript=("C: .", "@closed the server closed the connection; the final dot got no"),
        replay=(3, "hostile.txt:14: the server closed the connection while waiting for 250"),
    ),
    Scenario(
        "disconnect inside a BDAT chunk",
        script=[*up_to_bdat(), Expect(b"BDAT 27 LAST"), Close()],
        lines=(*ENVELOPE, *BDAT_MESSAGE),
        expect=("250 2.1.5 ok", "→ BDAT 27 LAST", "connection closed"),
        transcript=("C: BDAT 27 LAST", "C: Subject: hostile", "C: hello", "@closed"),
        replay=(3, "hostile.txt:12: the server closed the connection while waiting for 250"),
    ),
    Scenario(
        "503 to BDAT, then the chunk taken for commands",
        script=[
            *up_to_bdat(),
            *answer(b"BDAT 27 LAST", b"503 5.5.1 no BDAT here\r\n"),
            *answer(b"Subject:", b"500 5.5.2 what is Subject:?\r\n"),
            *answer(b"", b"500 5.5.2 empty line\r\n"),
            *answer(b"hello", b"500 5.5.2 what is hello?\r\n"),
            Hang(),
        ],
        lines=(*ENVELOPE, *BDAT_MESSAGE),
        expect=(
            "→ BDAT 27 LAST",
            "503 5.5.1 no BDAT here",
            "500 5.5.2 what is Subject:?",
            "this reply answers no command that was sent",
            "500 5.5.2 what is hello?",
        ),
        transcript=("C: BDAT 27 LAST", "S: 503 5.5.1 no BDAT here", "S: 500 5.5.2 empty line"),
        replay=(1, "hostile.txt:12: expected 250, got 503 5.5.1 no BDAT here"),
    ),
    # -- TLS
    Scenario(
        "garbage instead of a TLS handshake",
        script=[*until_starttls(), ReadBytes(), Send(b"this is not TLS at all\r\n"), Close()],
        lines=("EHLO me.example", "STARTTLS"),
        expect=("✗ TLS handshake with 127.0.0.1:{port} failed", "connection closed"),
        transcript=("C: STARTTLS", "@closed"),
        replay=(
            3,
            f"hostile.txt:5: {TLS_FAILED}: wrong version number",
        ),
    ),
    Scenario(
        "close instead of a TLS handshake",
        script=[*until_starttls(), Close()],
        lines=("EHLO me.example", "STARTTLS"),
        expect=("✗ TLS handshake with 127.0.0.1:{port} failed", "connection closed"),
        transcript=("C: STARTTLS", "@closed"),
        replay=(3, "hostile.txt:5: TLS handshake with 127.0.0.1:{port} failed: the server closed"),
    ),
    Scenario(
        "plain text injected after the 220 to STARTTLS",
        script=[*starttls("ca_leaf", after=b"250 injected\r\n"), *ehlo(), Hang()],
        lines=("EHLO me.example", "STARTTLS", "EHLO me.example"),
        expect=(
            "TLS active",
            "the server sent 14 bytes in clear text after its 220; they were thrown away",
            "250 hostile.example",
        ),
        absent=("250 injected",),
        trust_ca=True,
        transcript=("@tls",),
        replay=(1, ""),
    ),
    Scenario(
        "expired certificate",
        script=[*starttls("expired"), *ehlo(), Hang()],
        lines=("EHLO me.example", "STARTTLS", "EHLO me.example"),
        expect=(
            "TLS active",
            "! not verified: the certificate expired on",
            "— the session goes on",
            "250 hostile.example",
        ),
        trust_ca=True,
        transcript=("@tls", "S: 250 hostile.example"),
        replay=(
            3,
            f"hostile.txt:5: {TLS_FAILED}: certificate has expired",
        ),
    ),
    Scenario(
        "certificate for another host",
        script=[*starttls("wrong_host"), *ehlo(), Hang()],
        lines=("EHLO me.example", "STARTTLS", "EHLO me.example"),
        expect=(
            "TLS active",
            "! not verified: the certificate was issued for another host name "
            "(it names mail.example.org) — the session goes on",
            "250 hostile.example",
        ),
        trust_ca=True,
        transcript=("@tls", "S: 250 hostile.example"),
        replay=(
            3,
            f"hostile.txt:5: {TLS_FAILED}: IP address mismatch",
        ),
    ),
    Scenario(
        "connection reset once TLS is up",
        script=[*starttls("ca_leaf"), Expect(b"EHLO"), Reset()],
        lines=("EHLO me.example", "STARTTLS", "EHLO me.example", "NOOP"),
        expect=(
            "TLS active",
            "connection closed: the connection broke: ",
            "not connected — use :reconnect",
        ),
        trust_ca=True,
        transcript=("@tls", "C: EHLO me.example", "@closed the connection broke"),
        replay=(3, "hostile.txt:7: the connection broke: "),
    ),
    Scenario(
        "implicit TLS with an expired certificate",
        script=[GREETING, *ehlo(), Hang()],
        lines=("EHLO me.example",),
        expect=(
            "TLS active",
            "! not verified: the certificate expired on",
            "220 hostile.example",
            "250 hostile.example",
        ),
        implicit_tls=True,
        server_tls="expired",
        trust_ca=True,
        transcript=("@connect 127.0.0.1 {port} tls", "S: 220 hostile.example"),
        replay=(3, "TLS handshake with 127.0.0.1:{port} failed: certificate has expired"),
    ),
    Scenario(
        "certificate subject with control characters",
        script=[*starttls("hostile_subject"), *ehlo(), Hang()],
        lines=("EHLO me.example", "STARTTLS", "EHLO me.example"),
        expect=("TLS active", "certificate subject: CN=real", "fake", "250 hostile.example"),
        absent=("\b", "\a"),
        trust_ca=True,
        transcript=("@tls",),
        replay=(0, "3 commands, 4 replies matched"),
    ),
    Scenario(
        "TLS handshake slower than the timeout",
        script=[*starttls("ca_leaf", delay=3.0), Hang()],
        lines=("EHLO me.example", "STARTTLS"),
        expect=("✗ TLS handshake with 127.0.0.1:{port} got no answer within 0.5 s",),
        connect_timeout=0.5,
        transcript=("C: STARTTLS", "@closed"),
        replay=(3, "hostile.txt:5: TLS handshake with 127.0.0.1:{port} got no answer within 0.5 s"),
    ),
    Scenario(
        "implicit TLS to a plain-text server",
        script=[GREETING, Hang()],
        lines=(),
        expect=(),
        implicit_tls=True,
        exit_code=3,
        stderr="TLS handshake with 127.0.0.1:{port} failed",
        replay=(3, "TLS handshake with 127.0.0.1:{port} failed"),
    ),
    Scenario(
        "implicit TLS handshake that never answers",
        script=[Hang()],
        lines=(),
        expect=(),
        implicit_tls=True,
        connect_timeout=0.5,
        exit_code=3,
        stderr="TLS handshake with 127.0.0.1:{port} got no answer within 0.5 s",
        replay=(3, "TLS handshake with 127.0.0.1:{port} got no answer within 0.5 s"),
    ),
    # -- AUTH
    Scenario(
        "334 challenge that is not base64",
        script=[
            GREETING,
            *ehlo("AUTH LOGIN"),
            *answer(b"AUTH LOGIN", b"334 !!not*base64!!\r\n"),
            *answer(b"c3R1ZGVudA==", b"535 5.7.8 no\r\n"),
            Hang(),
        ],
        lines=("EHLO me.example", "AUTH LOGIN", "student"),
        expect=("334 !!not*base64!!", "the challenge is not valid base64", "535 5.7.8 no"),
        transcript=("S: 334 !!not*base64!!",),
        replay=(1, "hostile.txt:7: expected 2xx, got 535 5.7.8 no"),
    ),
]


@dataclass
class Run:
    code: int
    screen: str
    output: str
    errors: str
    transcript: str
    port: int
    server_errors: list[str]


async def drive(scenario: Scenario, transcript: Path) -> Run:
    """Run the console against the scenario's server (or a dead port) and collect everything."""
    options = ConsoleOptions(color=False, toolbar=False, transcript=transcript)
    lines = [*scenario.lines, PROBE] if scenario.exit_code == 0 else list(scenario.lines)
    errors = io.StringIO()

    async def console(port: int) -> tuple[int, str]:
        target = Target(
            HOST,
            port,
            implicit_tls=scenario.implicit_tls,
            connect_timeout=scenario.connect_timeout,
            reply_timeout=scenario.reply_timeout,
            cafile=certificates().ca.cert_path if scenario.trust_ca else None,
        )
        code, out, _ = await run_console(target, lines, options, timeout=10, errors=errors)
        return code, out

    if scenario.script is None:
        port = unused_port()
        code, out = await console(port)
        server_errors: list[str] = []
    else:
        tls = scenario.server_tls
        context = getattr(certificates(), tls).server_context() if tls else None
        async with ScriptServer(scenario.script, ssl=context) as server:
            port = server.port
            code, out = await console(port)
        server_errors = [e for e in server.errors if e.startswith("expected")]
    return Run(
        code,
        screen_text(out),
        out,
        errors.getvalue(),
        transcript.read_text(encoding="utf-8") if transcript.exists() else "",
        port,
        server_errors,
    )


def assert_in_order(text: str, expected: Sequence[str]) -> None:
    position = 0
    for item in expected:
        found = text.find(item, position)
        assert found >= 0, f"{item!r} not found (in order) in:\n{text[-3000:]}"
        position = found + len(item)


def _params() -> list[object]:
    params = []
    for scenario in SCENARIOS:
        marks = [pytest.mark.xfail(strict=True, reason=scenario.xfail)] if scenario.xfail else []
        params.append(pytest.param(scenario, id=scenario.name.replace(" ", "-"), marks=marks))
    return params


@pytest.mark.parametrize("scenario", _params())
def test_console_survives(
    scenario: Scenario, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncio")
    transcript = tmp_path / "session.txt"
    result = run(drive(scenario, transcript), timeout=30)

    fill = {"port": result.port}
    everything = result.output + result.errors
    assert "Traceback" not in everything
    assert "internal error" not in everything
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text
    assert result.server_errors == []
    assert result.code == scenario.exit_code, result.screen + result.errors
    assert_in_order(result.screen, [text.format(**fill) for text in scenario.expect])
    for text in scenario.absent:
        assert text not in result.screen
    if scenario.exit_code == 0:
        # Still usable after the event: the probe answered, after everything else.
        assert_in_order(result.screen, [*[t.format(**fill) for t in scenario.expect], PROBE_ANSWER])
        assert result.errors == ""
    else:
        assert scenario.stderr is not None
        stderr = scenario.stderr.format(**fill)
        assert result.errors.startswith(f"smtp-tutor: {stderr}")
        assert result.errors.count("\n") == 1  # one line
    # The transcript file holds what happened (it is written as events happen).
    assert transcript.exists()
    assert_in_order(result.transcript, [text.format(**fill) for text in scenario.transcript])


async def _file_containing(path: Path, text: str, timeout: float = 5.0) -> str:
    """The file's content once it holds `text` (the console writes it from the same loop)."""
    async with asyncio.timeout(timeout):
        while True:
            content = path.read_text(encoding="utf-8") if path.exists() else ""
            if text in content:
                return content
            await asyncio.sleep(0.01)


def test_transcript_is_written_while_the_console_runs(tmp_path: Path) -> None:
    """Half a reply, then the server stalls: the file already holds everything before it."""
    transcript = tmp_path / "live.txt"

    async def body() -> tuple[str, str, str, int]:
        release = asyncio.Event()
        script = [
            GREETING,
            *answer(b"EHLO", b"250-hostile.example\r\n250-PIPELINING\r\n"),
            WaitFor(release),
            Close(),
        ]
        async with ScriptServer(script) as server:
            target = Target(HOST, server.port, reply_timeout=5.0)
            options = ConsoleOptions(color=False, toolbar=False, transcript=transcript)
            console = asyncio.create_task(
                run_console(target, ["EHLO me.example", PROBE], options, timeout=10)
            )
            during = await _file_containing(transcript, "C: EHLO me.example")
            # The console is still waiting for the rest of the EHLO reply.
            assert not console.done()
            release.set()
            code, out, _ = await console
        return during, transcript.read_text(encoding="utf-8"), screen_text(out), code

    during, after, screen, code = run(body(), timeout=20)
    assert during.startswith("@connect 127.0.0.1 ")
    assert_in_order(during, ["S: 220 hostile.example ESMTP", "C: EHLO me.example"])
    assert "@closed" not in during
    assert code == 0
    assert_in_order(screen, ["connection closed in the middle of a reply", CLOSED, PROBE_ANSWER])
    assert after.startswith(during)
    assert_in_order(
        after[len(during) :],
        [
            "# malformed reply: connection closed in the middle of a reply",
            "S: 250-hostile",
            "@closed",
        ],
    )


def test_implicit_tls_transcript_starts_with_the_connection(tmp_path: Path) -> None:
    [scenario] = [s for s in SCENARIOS if s.name == "implicit TLS with an expired certificate"]
    result = run(drive(scenario, tmp_path / "session.txt"), timeout=30)
    assert result.code == 0
    assert result.transcript.startswith(f"@connect 127.0.0.1 {result.port} tls\n@tls ")


# -- the same servers for `smtp-tutor replay` ---------------------------------------------

#: The code a well-behaved server answers each command with; anything else is "2xx".
REPLAY_CODES = {
    "EHLO": "250",
    "HELO": "250",
    "MAIL": "250",
    "RCPT": "250",
    "DATA": "354",
    "STARTTLS": "220",
    "AUTH": "334",
    "NOOP": "250",
    "QUIT": "221",
}


def replay_text(lines: Sequence[str]) -> str:
    """A transcript of the scenario's lines as a well-behaved server would answer them.

    A message left open is ended with its dot, so the replay reads what follows it.
    """
    out = ["S: 220"]
    in_data = False
    chunk: list[str] | None = None  # the lines typed after :bdat, sent as one BDAT chunk
    for line in lines:
        if chunk is not None:
            if line != ".":
                chunk.append(line)
                continue
            data = "".join(f"{text}\r\n" for text in chunk).encode()
            recorder = TranscriptRecorder()
            recorder.sent_chunk(f"BDAT {len(data)} LAST", data)
            out += [*recorder.text().splitlines(), "S: 250"]
            chunk = None
            continue
        if line.startswith(":bdat"):
            chunk = []
            continue
        out.append(f"C: {line}".rstrip())
        if in_data:
            if line == ".":
                out.append("S: 250")
                in_data = False
            continue
        words = line.split()
        code = REPLAY_CODES.get(words[0].upper() if words else "", "2xx")
        out.append(f"S: {code}")
        in_data = code == "354"
    if in_data:
        out += ["C: .", "S: 250"]
    return "\n".join(out) + "\n"


async def drive_replay(scenario: Scenario) -> tuple[int, str, str, int]:
    script = parse_transcript(replay_text(scenario.lines), source="hostile.txt")
    options = ReplayOptions(
        implicit_tls=bool(scenario.implicit_tls),
        cafile=certificates().ca.cert_path if scenario.trust_ca else None,
        timeout=scenario.reply_timeout,
    )
    out, err = io.StringIO(), io.StringIO()
    if scenario.script is None:
        port = unused_port()
        result = await replay(script, HOST, port, options, out=out, err=err)
    else:
        tls = scenario.server_tls
        context = getattr(certificates(), tls).server_context() if tls else None
        async with ScriptServer(scenario.script, ssl=context) as server:
            port = server.port
            result = await replay(script, HOST, port, options, out=out, err=err)
    return result.status, out.getvalue(), err.getvalue(), port


def _replay_params() -> list[object]:
    params = []
    for scenario in SCENARIOS:
        if scenario.replay is None:
            continue
        reason = scenario.replay_xfail
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(scenario, id=scenario.name.replace(" ", "-"), marks=marks))
    return params


@pytest.mark.parametrize("scenario", _replay_params())
def test_replay_survives(scenario: Scenario, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="asyncio")
    assert scenario.replay is not None
    status, out, err, port = run(drive_replay(scenario), timeout=30)

    expected_status, report = scenario.replay
    report = report.format(port=port)
    assert "Traceback" not in out + err
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text
    assert status == expected_status, out + err
    for text in scenario.absent:
        assert text not in out
    if status == 3:  # connection or TLS: one line on stderr
        assert err.startswith(report) and err.count("\n") == 1, err
    elif status == 1:  # a mismatch: the report on stdout, then how far it got
        assert err == ""
        assert_in_order(out, [f"\n{report}", "\nstopped: "])
    else:
        assert err == ""
        assert out.splitlines()[-1].startswith(report)


def test_a_reply_that_never_ends_does_not_fill_memory() -> None:
    """Lines past the limit are counted, not kept — raw bytes included; the last one stays."""
    parser = ReplyParser()
    line = b"250-" + b"x" * 100 + b"\r\n"
    for _ in range(50):
        assert parser.feed(line * 1000) == []
    [reply] = parser.feed(b"250 end\r\n")
    assert len(reply.lines) == MAX_REPLY_LINES and reply.lines[-1] == "end"
    assert len(reply.raw) < MAX_REPLY_LINES * len(line)
    assert reply.raw.endswith(b"x\r\n250 end\r\n")
    assert any("dropped" in problem for problem in reply.problems)
