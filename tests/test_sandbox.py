"""The sandbox SMTP server, driven over real sockets on 127.0.0.1.

smtplib plays a real client; a raw socket (`Raw`) plays a student typing commands, where
smtplib would hide the exact reply lines. XDG_* point into tmp_path, so the real home
directory is never touched.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import datetime as dt
import hmac
import json
import os
import re
import select
import signal
import smtplib
import socket
import ssl
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiosmtpd.smtp import SMTP
from cryptography import x509
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smtp_tutor.sandbox import (
    TRIGGERS_HELP,
    Mailbox,
    Sandbox,
    SandboxConfig,
    ThreadedSandbox,
    client_tls_context,
    parse_accounts,
    serve_forever,
    triggers_help,
)
from smtp_tutor.sandbox.certs import ensure_certificate, write_self_signed
from smtp_tutor.sandbox.protocol import plain_path
from smtp_tutor.sandbox.triggers import load_triggers
from tests.conftest import Outbound

TIMEOUT = 5
ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}")
GREETING = "220 localhost smtp-tutor sandbox ESMTP ready"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


GOOD_PLAIN = b64("\0student\0secret")
BAD_PLAIN = b64("\0student\0wrong")


class Raw:
    """A hand-typed SMTP session: every reply line exactly as the server sent it."""

    def __init__(self, sandbox: ThreadedSandbox, *, tls: ssl.SSLContext | None = None) -> None:
        self.host = sandbox.host
        sock = socket.create_connection((sandbox.host, sandbox.port), timeout=TIMEOUT)
        self.sock = tls.wrap_socket(sock, server_hostname=self.host) if tls else sock
        self.buffer = b""
        self.greeting = self.reply()

    def line(self) -> str:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; unread: {self.buffer!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode("utf-8")

    def reply(self) -> list[str]:
        lines = [self.line()]
        while lines[-1][3:4] == "-":
            lines.append(self.line())
        return lines

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, text: str) -> list[str]:
        self.send(text.encode() + b"\r\n")
        return self.reply()

    def starttls(self, context: ssl.SSLContext) -> None:
        assert self.command("STARTTLS") == ["220 2.0.0 Ready to start TLS"]
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)

    def closed_by_server(self) -> bool:
        """True when the server closed without sending anything more."""
        return not self.buffer and self.sock.recv(65536) == b""

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    return tmp_path


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., ThreadedSandbox]]:
    running: list[ThreadedSandbox] = []

    def start(**options: object) -> ThreadedSandbox:
        sandbox = ThreadedSandbox(SandboxConfig(**options))  # type: ignore[arg-type]
        sandbox.start()
        running.append(sandbox)
        return sandbox

    yield start
    for sandbox in running:
        sandbox.stop()


@pytest.fixture
def sandbox(start_sandbox: Callable[..., ThreadedSandbox]) -> ThreadedSandbox:
    return start_sandbox()


def client(sandbox: ThreadedSandbox) -> smtplib.SMTP:
    return smtplib.SMTP(sandbox.host, sandbox.port, local_hostname="client.test", timeout=TIMEOUT)


def open_transaction(raw: Raw, recipient: str = "someone@example.com") -> None:
    assert raw.command("EHLO client.test")[-1] == "250 HELP"
    assert raw.command("MAIL FROM:<teacher@example.org>")[0].startswith("250 2.1.0")
    assert raw.command(f"RCPT TO:<{recipient}>")[0].startswith("250 2.1.5")


# Binding, greeting, EHLO ------------------------------------------------------------------


def test_binds_loopback_on_a_free_port_by_default(sandbox: ThreadedSandbox) -> None:
    assert SandboxConfig().host == "127.0.0.1"
    assert sandbox.host == "127.0.0.1"
    assert sandbox.port > 0
    raw = Raw(sandbox)
    assert raw.greeting == [GREETING]
    raw.close()


def test_ehlo_lists_exactly_what_is_implemented(sandbox: ThreadedSandbox) -> None:
    with client(sandbox) as smtp:
        code, _ = smtp.ehlo()
        features = smtp.esmtp_features
    assert code == 250
    assert set(features) == {
        "pipelining",
        "size",
        "8bitmime",
        "smtputf8",
        "enhancedstatuscodes",
        "chunking",
        "starttls",
        "auth",
        "help",
    }  # in particular no DSN and no BINARYMIME
    assert features["size"] == str(10 * 1024 * 1024)
    assert features["auth"].split() == ["PLAIN", "LOGIN", "CRAM-MD5"]


def test_starttls_then_ehlo_drops_starttls_and_keeps_auth(sandbox: ThreadedSandbox) -> None:
    with client(sandbox) as smtp:
        smtp.ehlo()
        code, _ = smtp.starttls(context=client_tls_context(sandbox.cert_path))
        assert code == 220
        assert smtp.sock.version() in {"TLSv1.2", "TLSv1.3"}  # type: ignore[union-attr]
        smtp.ehlo()
        assert "starttls" not in smtp.esmtp_features
        assert smtp.esmtp_features["auth"].split() == ["PLAIN", "LOGIN", "CRAM-MD5"]
        assert smtp.docmd("STARTTLS") == (503, b"5.5.1 TLS is already active")


# Enhanced status codes on every reply ------------------------------------------------------

# (command, expected reply code); EHLO/HELO answers are exempt (RFC 2034), 3xx carry none.
BATTERY: list[tuple[str, int]] = [
    ("NOOP", 250),
    ("HELP", 214),
    ("MAIL FROM:<a@example.com>", 503),  # no EHLO yet
    ("RCPT TO:<b@example.com>", 503),
    ("DATA", 503),
    ("AUTH PLAIN", 503),
    ("FROB", 500),
    ("", 500),
    ("EHLO", 501),
    ("HELO", 501),
    ("HELO client.test", 250),
    ("AUTH PLAIN " + GOOD_PLAIN, 503),  # AUTH is an ESMTP extension
    ("EHLO client.test", 250),
    ("HELP mail", 214),
    ("HELP nonsense", 504),
    ("VRFY <someone@example.com>", 252),
    ("VRFY", 501),
    ("EXPN staff", 502),
    ("MAIL FROM a@example.com", 501),
    ("MAIL FROM:<@@>", 553),
    ("MAIL FROM:<a@example.com> SIZE=99999999999", 552),
    ("MAIL FROM:<a@example.com> FOO=BAR", 555),
    ("MAIL FROM:<a@example.com> BODY=9BIT", 501),
    ("RCPT TO:<b@example.com>", 503),
    ("DATA", 503),
    ("MAIL FROM:<spam@example.com>", 550),
    ("MAIL FROM:<a@example.com>", 250),
    ("MAIL FROM:<a@example.com>", 503),
    ("AUTH PLAIN " + GOOD_PLAIN, 503),  # not inside a transaction
    ("RCPT TO:<nobody@example.com>", 550),
    ("RCPT TO:<full@example.com>", 452),
    ("RCPT TO:<tempfail@example.com>", 451),
    ("RCPT TO:<relay@example.com>", 554),
    ("RCPT TO:<greylist@example.com>", 450),
    ("RCPT TO:<b@example.com> NOTIFY=NEVER", 555),
    ("RCPT TO:<b@example.com>", 250),
    ("DATA now", 501),
    ("DATA", 354),
    ("Subject: battery\r\n\r\nhello\r\n.", 250),
    ("RSET now", 501),
    ("MAIL FROM:<>", 250),
    ("RSET", 250),
    ("AUTH", 501),
    ("AUTH FOO", 504),
    ("AUTH PLAIN !!!", 501),
    ("AUTH PLAIN " + BAD_PLAIN, 535),
    ("AUTH LOGIN", 334),
    ("*", 501),
    ("AUTH PLAIN " + GOOD_PLAIN, 235),
    ("AUTH PLAIN " + GOOD_PLAIN, 503),
    ("STARTTLS now", 501),
    ("QUIT now", 501),
    ("QUIT", 221),
]


def test_every_reply_carries_an_enhanced_status_code(sandbox: ThreadedSandbox) -> None:
    raw = Raw(sandbox)
    assert raw.greeting == [GREETING]  # the greeting is exempt (RFC 2034)
    wrong: list[str] = []
    for command, expected in BATTERY:
        reply = raw.command(command)
        assert int(reply[-1][:3]) == expected, (command, reply)
        if command.startswith(("EHLO ", "HELO ")) and expected == 250:
            continue
        wrong += [
            f"{command!r} -> {line!r}"
            for line in reply
            if line[0] in "245" and not ENHANCED.match(line)
        ]
    assert wrong == []
    assert raw.closed_by_server()

    # The same after STARTTLS, including the 220 that starts TLS.
    raw = Raw(sandbox)
    raw.command("EHLO client.test")
    raw.starttls(client_tls_context(sandbox.cert_path))
    assert "250-STARTTLS" not in raw.command("EHLO client.test")
    for command, expected in [("STARTTLS", 503), ("NOOP", 250), ("QUIT", 221)]:
        reply = raw.command(command)
        assert int(reply[0][:3]) == expected
        assert ENHANCED.match(reply[0]), reply


def test_help_explains_the_sandbox(sandbox: ThreadedSandbox) -> None:
    raw = Raw(sandbox)
    reply = raw.command("HELP")
    assert all(line.startswith(("214-2.0.0 ", "214 2.0.0 ")) for line in reply)
    text = "\n".join(reply)
    assert "never relayed" in text
    assert "student / secret" in text
    assert "nobody@" in text
    assert raw.command("HELP rcpt") == ["214 2.0.0 Syntax: RCPT TO:<address>  (once per recipient)"]
    raw.command("EHLO client.test")
    # aiosmtpd's own hint shows a space after the colon, which RFC 5321 forbids.
    assert raw.command("MAIL FROM a@example.com") == [
        "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]"
    ]
    raw.close()


def test_unrecognised_commands_are_tolerated_up_to_fifty(sandbox: ThreadedSandbox) -> None:
    raw = Raw(sandbox)
    for number in range(49):
        assert raw.command(f"FROB{number}")[0].startswith("500 5.5.2 ")
    assert raw.command("NOOP") == ["250 2.0.0 OK"]
    assert raw.command("FROB") == ["502 5.5.1 Too many unrecognized commands, goodbye."]
    assert raw.closed_by_server()


# AUTH -------------------------------------------------------------------------------------

AUTH_OBJECTS = {"PLAIN": "auth_plain", "LOGIN": "auth_login", "CRAM-MD5": "auth_cram_md5"}


@pytest.mark.parametrize("initial_response", [True, False])
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_auth_mechanisms_accept_right_and_refuse_wrong_passwords(
    start_sandbox: Callable[..., ThreadedSandbox], mechanism: str, initial_response: bool
) -> None:
    sandbox = start_sandbox(users={"student": "secret", "alice": "wonder:land"})
    for user, password in [("student", "secret"), ("alice", "wonder:land")]:
        with client(sandbox) as smtp:
            smtp.ehlo()
            smtp.user, smtp.password = user, password
            authobject = getattr(smtp, AUTH_OBJECTS[mechanism])
            code, text = smtp.auth(mechanism, authobject, initial_response_ok=initial_response)
            assert (code, text) == (235, b"2.7.0 Authentication successful")
    for user, password in [("student", "wrong"), ("mallory", "secret")]:
        with client(sandbox) as smtp:
            smtp.ehlo()
            smtp.user, smtp.password = user, password
            authobject = getattr(smtp, AUTH_OBJECTS[mechanism])
            with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
                smtp.auth(mechanism, authobject, initial_response_ok=initial_response)
            assert failure.value.smtp_code == 535
            assert failure.value.smtp_error.startswith(b"5.7.8 ")
            assert smtp.noop()[0] == 250  # answered, not hung: the session goes on


def test_cram_md5_by_hand_follows_rfc_2195(sandbox: ThreadedSandbox) -> None:
    raw = Raw(sandbox)
    raw.command("EHLO client.test")
    [line] = raw.command("AUTH CRAM-MD5")
    assert line.startswith("334 ")
    challenge = base64.b64decode(line[4:])
    assert re.fullmatch(rb"<\d+\.\d+@localhost>", challenge)
    digest = hmac.new(b"secret", challenge, "md5").hexdigest()
    assert raw.command(b64(f"student {digest}")) == ["235 2.7.0 Authentication successful"]
    raw.close()

    raw = Raw(sandbox)
    raw.command("EHLO client.test")
    raw.command("AUTH CRAM-MD5")
    assert raw.command("*") == ["501 5.7.0 Auth aborted"]
    assert raw.command("AUTH CRAM-MD5 " + b64("student x"))[0].startswith("501 5.5.4 ")
    raw.close()


def test_demo_account_can_be_left_out(start_sandbox: Callable[..., ThreadedSandbox]) -> None:
    sandbox = start_sandbox(users={"alice": "pw"})
    raw = Raw(sandbox)
    raw.command("EHLO client.test")
    assert raw.command("AUTH PLAIN " + GOOD_PLAIN)[0].startswith("535 5.7.8 ")
    assert raw.command("AUTH PLAIN " + b64("\0alice\0pw"))[0].startswith("235 2.7.0 ")
    assert "student" not in "\n".join(raw.command("HELP"))
    raw.close()


def test_require_tls_forbids_auth_and_mail_before_starttls(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox(require_tls=True)
    raw = Raw(sandbox)
    ehlo = raw.command("EHLO client.test")
    assert "250-STARTTLS" in ehlo
    assert not any("AUTH" in line for line in ehlo)
    assert raw.command("AUTH PLAIN " + GOOD_PLAIN)[0].startswith("538 5.7.11 ")
    assert raw.command("MAIL FROM:<a@example.com>") == [
        "530 5.7.0 Must issue a STARTTLS command first"
    ]
    assert raw.command("NOOP") == ["250 2.0.0 OK"]
    raw.starttls(client_tls_context(sandbox.cert_path))
    assert "250-AUTH PLAIN LOGIN CRAM-MD5" in raw.command("EHLO client.test")
    assert raw.command("AUTH PLAIN " + GOOD_PLAIN) == ["235 2.7.0 Authentication successful"]
    assert raw.command("MAIL FROM:<a@example.com>")[0].startswith("250 2.1.0 ")
    raw.close()


def test_require_auth_refuses_mail_until_authenticated(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox(require_auth=True)
    raw = Raw(sandbox)
    raw.command("EHLO client.test")
    assert raw.command("MAIL FROM:<a@example.com>") == ["530 5.7.0 Authentication required"]
    raw.command("AUTH PLAIN " + GOOD_PLAIN)
    assert raw.command("MAIL FROM:<a@example.com>")[0].startswith("250 2.1.0 ")
    raw.close()


def test_mail_is_accepted_without_auth_by_default(sandbox: ThreadedSandbox) -> None:
    with client(sandbox) as smtp:
        assert smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: x\r\n\r\nx\r\n") == {}
    assert sandbox.mailbox().latest().envelope["auth_user"] is None  # type: ignore[union-attr]


# Storage ----------------------------------------------------------------------------------

MESSAGE = (
    "From: Teacher <teacher@example.org>\r\n"
    "To: 学生 <学生@example.com>\r\n"
    "Subject: 你好\r\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    "Message-ID: <1@example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    ".\r\n"
    "..\r\n"
    ".leading dot\r\n"
    "这是一封测试邮件。\r\n"
).encode()


def test_message_over_starttls_and_auth_login_is_stored_byte_exact(
    sandbox: ThreadedSandbox,
) -> None:
    with client(sandbox) as smtp:
        smtp.ehlo()
        smtp.starttls(context=client_tls_context(sandbox.cert_path))
        smtp.ehlo()
        smtp.user, smtp.password = "student", "secret"
        assert smtp.auth("LOGIN", smtp.auth_login)[0] == 235
        refused = smtp.sendmail(
            "teacher@example.org",
            ["学生@example.com", "parent@example.net"],
            MESSAGE,
            mail_options=["BODY=8BITMIME", "SMTPUTF8"],
        )
    assert refused == {}
    [stored] = sandbox.mailbox().messages()
    assert stored.raw == MESSAGE  # dot-stuffing removed, CRLF kept, UTF-8 untouched
    assert stored.message["subject"] == "你好"
    body = stored.message.get_content().replace("\r\n", "\n")
    assert body == ".\n..\n.leading dot\n这是一封测试邮件。\n"
    assert stored.defects == []
    envelope = stored.envelope
    assert envelope["key"] == stored.key
    assert envelope["mail_from"] == "teacher@example.org"
    assert envelope["rcpt_tos"] == ["学生@example.com", "parent@example.net"]
    assert {"BODY=8BITMIME", "SMTPUTF8", f"SIZE={len(MESSAGE)}"} <= set(envelope["mail_options"])
    assert envelope["smtputf8"] is True
    assert (envelope["auth_user"], envelope["auth_mechanism"]) == ("student", "LOGIN")
    assert envelope["tls"]["mode"] == "starttls"
    assert envelope["tls"]["version"] in {"TLSv1.2", "TLSv1.3"}
    assert envelope["tls"]["cipher"]
    assert envelope["client"]["address"] == "127.0.0.1"
    assert envelope["helo"] == "client.test"
    assert envelope["esmtp"] is True
    assert envelope["size"] == len(MESSAGE)
    received = dt.datetime.fromisoformat(envelope["received_at"])
    assert abs(received - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_raw_data_is_unstuffed_and_otherwise_kept_as_received(sandbox: ThreadedSandbox) -> None:
    raw = Raw(sandbox)
    raw.command("EHLO client.test")
    # PIPELINING: three commands in one write, three replies in order.
    raw.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
    assert [raw.reply()[0][:3] for _ in range(3)] == ["250", "250", "354"]
    raw.send(b"Subject: dots\r\n\r\n..\r\n...\r\n..x\r\nbare\nLF\r\nend\r\n.\r\n")
    assert raw.reply()[0].startswith("250 2.0.0 ")
    raw.close()
    assert sandbox.mailbox().latest().raw == (  # type: ignore[union-attr]
        b"Subject: dots\r\n\r\n.\r\n..\r\n.x\r\nbare\nLF\r\nend\r\n"
    )


def test_mailbox_reader(tmp_path: Path) -> None:
    box = Mailbox(tmp_path / "none")
    assert box.messages() == [] and box.latest() is None
    assert not (tmp_path / "none").exists()  # reading never creates

    box = Mailbox(tmp_path / "Maildir")
    for number in range(3):
        box.add(f"Subject: {number}\r\n\r\nbody\r\n".encode(), {"mail_from": f"{number}@x"})
    assert [m.message["subject"] for m in box.messages()] == ["0", "1", "2"]
    assert box.latest().envelope["mail_from"] == "2@x"  # type: ignore[union-attr]
    assert len(box) == 3

    # Raw UTF-8 in an address header is a defect unless the client used SMTPUTF8.
    utf8_to = "To: 学生 <学生@example.com>\r\n\r\nhi\r\n".encode()
    assert box.get(box.add(utf8_to, {"smtputf8": False})).defects
    assert box.get(box.add(utf8_to, {"smtputf8": True})).defects == []

    # The classic tutorial's header: a parameter on its own, unindented line.
    key = box.add(b"Content-Type: Text/html;\r\ncharset=gb2312\r\n\r\nhi\r\n", {})
    assert box.get(key).defects, "a broken header must show up as a defect"


def test_envelope_log_is_one_json_line_per_message_key_first(tmp_path: Path) -> None:
    box = Mailbox(tmp_path / "Maildir")
    first = box.add(b"Subject: a\r\n\r\na\r\n", {"mail_from": "学生@example.com"})
    second = box.add(b"Subject: b\r\n\r\nb\r\n", {"mail_from": "b\udcff@example.com"})
    lines = box.envelope_log.read_bytes().splitlines()
    assert [json.loads(line)["key"] for line in lines] == [first, second]
    assert lines[0].startswith(b'{"key": ') and "学生".encode() in lines[0]  # readable UTF-8
    assert lines[1].isascii()  # an undecodable byte from the wire stays escaped
    assert box.get(second).envelope["mail_from"] == "b\udcff@example.com"
    assert stat.S_IMODE(box.envelope_log.stat().st_mode) == 0o600


def test_envelope_log_survives_a_torn_line_and_garbage(tmp_path: Path) -> None:
    box = Mailbox(tmp_path / "Maildir")
    before = box.add(b"Subject: before\r\n\r\nx\r\n", {"mail_from": "before@x"})
    with box.envelope_log.open("ab") as log:  # a crash in the middle of a line, then noise
        log.write(b'{"key": "1.M1P1Q1.host", "mail_fr')
    after = box.add(b"Subject: after\r\n\r\nx\r\n", {"mail_from": "after@x"})
    with box.envelope_log.open("ab") as log:
        log.write(b"\n[1, 2]\nnot json\n\xff\xfe\n{}\n")
    assert set(box.envelopes()) == {before, after}
    assert box.get(after).envelope["mail_from"] == "after@x"
    assert [m.envelope["mail_from"] for m in box.messages()] == ["before@x", "after@x"]


def test_envelope_of_a_message_stored_by_an_older_version(tmp_path: Path) -> None:
    box = Mailbox(tmp_path / "Maildir")
    box.create()
    key = "1700000000.M1P1Q1.oldhost"
    (box.path / "new" / key).write_bytes(b"Subject: old\r\n\r\nx\r\n")
    (box.path / "envelopes").mkdir()
    old_envelope = json.dumps({"key": key, "helo": "old"}, indent=2)
    (box.path / "envelopes" / f"{key}.json").write_text(old_envelope)
    assert box.get(key).envelope["helo"] == "old"
    new = box.add(b"Subject: new\r\n\r\nx\r\n", {"helo": "new"})
    assert [m.envelope["helo"] for m in box.messages()] == ["old", "new"]
    assert box.get(new).envelope["helo"] == "new"


def test_envelope_log_lines_stay_whole_when_threads_append_at_once(tmp_path: Path) -> None:
    box = Mailbox(tmp_path / "Maildir")
    box.create()
    recipients = [f"r{n}@example.com" for n in range(100)]  # a long line: ~2 KB

    def store(number: int) -> list[str]:
        envelope = {"mail_from": f"{number}@x", "rcpt_tos": recipients}
        return [box.add(b"Subject: t\r\n\r\nx\r\n", envelope) for _ in range(50)]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        keys = [key for batch in pool.map(store, range(8)) for key in batch]
    lines = box.envelope_log.read_bytes().splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == sorted(keys)
    assert all(e["rcpt_tos"] == recipients for e in box.envelopes().values())


# Pieces that make paths ordinary and odd: what the email package's parser treats specially.
_PATH_PIECES = st.sampled_from(
    [
        "a",
        "Zed",
        "0",
        "x+tag",
        "o'neil",
        "=?",
        "{}",
        "~",
        ".",
        "..",
        "@",
        "-",
        "_",
        "é",
        "学",
        '"',
        "\\",
        " ",
        "  ",
        "\t",
        "(c)",
        "(",
        ")",
        "[1.2.3.4]",
        "[",
        "]",
        ",",
        ";",
        ":",
        "<",
        ">",
        "\r\n",
        "\n",
        "\x00",
        "SIZE=10",
        " BODY=8BITMIME",
        "example.com",
        "mail.example",
    ]
)


_ATOMS = st.sampled_from(["a", "Zed", "0", "x+tag", "o'neil", "{}", "~", "-", "_", "=?", ""])
_LABELS = st.sampled_from(["example", "com", "mail-1", "x", "", "é", "1.2"])


@settings(max_examples=400)
@given(
    st.one_of(
        st.builds(  # mostly everyday shapes, with an odd piece here and there
            lambda local, domain, rest: f"<{local}@{domain}>{rest}",
            st.lists(_ATOMS, min_size=1, max_size=3).map(".".join),
            st.lists(_LABELS, min_size=1, max_size=3).map(".".join),
            st.lists(_PATH_PIECES, max_size=3).map("".join),
        ),
        st.builds(
            lambda local, domain, rest: f"<{local}@{domain}>{rest}",
            st.lists(_PATH_PIECES, min_size=1, max_size=5).map("".join),
            st.lists(_PATH_PIECES, min_size=1, max_size=4).map("".join),
            st.lists(_PATH_PIECES, max_size=4).map("".join),
        ),
        st.lists(_PATH_PIECES, max_size=10).map("".join),
        st.text(max_size=40),
    )
)
@example("<a.b+c@mail.example.com> SIZE=10 BODY=8BITMIME")
@example("<a@b>  SIZE=1")
@example("<a@b> (comment) SIZE=1")
@example("<a@b>\n")
def test_plain_path_shortcut_agrees_with_aiosmtpd(arg: str) -> None:
    """The sandbox's fast path gives exactly aiosmtpd's (address, rest), or steps aside."""
    shortcut = plain_path(arg)
    if shortcut is not None:
        assert shortcut == SMTP._getaddr(SimpleNamespace(local_part_limit=0), arg)  # type: ignore[arg-type]


def test_plain_path_shortcut_takes_the_everyday_paths() -> None:
    assert plain_path("<a.b+c@mail.example.com> SIZE=10") == ("a.b+c@mail.example.com", "SIZE=10")
    assert plain_path("<student@example.org>") == ("student@example.org", "")
    for unusual in ['<"a b"@x.org>', "<a@[127.0.0.1]>", "<学生@x.org>", "<a@b> (c)", "<>", "a@b"]:
        assert plain_path(unusual) is None


# CHUNKING ---------------------------------------------------------------------------------


def test_bdat_chunks_are_stored_exactly_with_no_dot_stuffing(sandbox: ThreadedSandbox) -> None:
    message = b"Subject: chunks\r\n\r\n.a dot stays\r\n..two stay\r\nbare\nLF\r\nend\r\n"
    raw = Raw(sandbox)
    open_transaction(raw)
    raw.send(b"BDAT 20\r\n" + message[:20])  # the chunk ends inside a line
    assert raw.reply() == ["250 2.0.0 20 octets received, 20 so far"]
    rest = message[20:]
    # Pipelined: a chunk, then the last (empty) one, in one write.
    raw.send(b"BDAT %d\r\n" % len(rest) + rest + b"BDAT 0 LAST\r\n")
    assert raw.reply()[0].startswith("250 2.0.0 ")
    stored = raw.reply()[0]
    assert stored.startswith("250 2.0.0 Ok: stored as ")
    assert raw.command("NOOP") == ["250 2.0.0 OK"]  # in step: nothing of the chunks left over
    raw.close()
    latest = sandbox.mailbox().latest()
    assert latest is not None and latest.raw == message  # dots and the bare LF untouched
    assert latest.envelope["size"] == len(message)
    assert latest.envelope["rcpt_tos"] == ["someone@example.com"]


@pytest.mark.parametrize(
    ("before", "reply"),
    [
        ([], "503 5.5.1 Error: send EHLO first"),
        (["HELO client.test"], "503 5.5.1 Error: BDAT is an extension: send EHLO, not HELO"),
        (["EHLO client.test"], "503 5.5.1 Error: need MAIL command"),
        (["EHLO client.test", "MAIL FROM:<a@example.org>"], "503 5.5.1 Error: need RCPT command"),
    ],
)
def test_a_refused_chunk_is_still_read_so_the_next_command_is_a_command(
    sandbox: ThreadedSandbox, before: list[str], reply: str
) -> None:
    raw = Raw(sandbox)
    for line in before:
        assert raw.command(line)[-1].startswith("250")
    raw.send(b"BDAT 12 LAST\r\nNOOP\r\nNOOP\r\n")  # twelve octets that look like commands
    assert raw.reply() == [reply]
    assert raw.command("QUIT")[0].startswith("221 ")  # the NOOPs were data, not commands
    raw.close()
    assert sandbox.mailbox().latest() is None


def test_a_message_over_the_size_limit_is_refused_and_the_transaction_is_lost(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox(max_message_size=100)
    raw = Raw(sandbox)
    open_transaction(raw)
    raw.send(b"BDAT 60\r\n" + b"x" * 60)
    assert raw.reply()[0].startswith("250 ")
    raw.send(b"BDAT 60\r\n" + b"y" * 60)
    assert raw.reply() == ["552 5.3.4 Message too big (at most 100 bytes); RSET and start again"]
    raw.send(b"BDAT 1 LAST\r\nz")
    assert raw.reply() == ["503 5.5.1 Error: an earlier chunk was refused; RSET and start again"]
    assert raw.command("DATA")[0].startswith("503 5.5.1 Error: this message is coming in BDAT")
    assert raw.command("RSET") == ["250 2.0.0 OK: transaction reset"]
    assert raw.command("MAIL FROM:<a@example.org>")[0].startswith("250 ")
    assert raw.command("RCPT TO:<b@example.org>")[0].startswith("250 ")
    raw.send(b"BDAT 5 LAST\r\nsmall")
    assert raw.reply()[0].startswith("250 2.0.0 Ok: stored as ")
    raw.send(b"BDAT 1 LAST\r\nq")  # a new transaction needs its own MAIL
    assert raw.reply() == ["503 5.5.1 Error: need MAIL command"]
    raw.close()
    assert [m.raw for m in sandbox.mailbox().messages()] == [b"small"]


def test_bdat_syntax_errors_and_help(sandbox: ThreadedSandbox) -> None:
    raw = Raw(sandbox)
    open_transaction(raw)
    assert raw.command("BDAT") == ["501 5.5.4 Syntax: BDAT <size> [LAST]"]
    assert raw.command("BDAT ten LAST") == ["501 5.5.4 Syntax: BDAT <size> [LAST]"]
    assert raw.command("BDAT 3 FIRST") == ["501 5.5.4 Syntax: BDAT <size> [LAST]"]
    assert raw.command("HELP BDAT")[0].startswith("214 2.0.0 Syntax: BDAT <size> [LAST]")
    assert "BDAT" in " ".join(raw.command("HELP"))
    raw.send(b"BDAT 4 last\r\nabcd")  # LAST in any case
    assert raw.reply()[0].startswith("250 2.0.0 Ok: stored as ")
    raw.close()


def test_a_client_that_hangs_up_inside_a_chunk_stores_nothing(sandbox: ThreadedSandbox) -> None:
    raw = Raw(sandbox)
    open_transaction(raw)
    raw.send(b"BDAT 100 LAST\r\nonly part of it")
    raw.close()
    time.sleep(0.2)
    assert sandbox.mailbox().latest() is None
    again = Raw(sandbox)
    assert again.command("NOOP") == ["250 2.0.0 OK"]  # the server is fine
    again.close()


# Triggers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("MAIL FROM:<spam@example.com>", "550 5.7.1 "),
        ("RCPT TO:<nobody@example.com>", "550 5.1.1 "),
        ("RCPT TO:<NoBody@Any.Domain.Example>", "550 5.1.1 "),
        ("RCPT TO:<full@example.com>", "452 4.2.2 "),
        ("RCPT TO:<tempfail@example.com>", "451 4.3.0 "),
        ("RCPT TO:<relay@example.com>", "554 5.7.1 "),
        ("RCPT TO:<greylist@example.com>", "450 4.2.0 "),
    ],
)
def test_reply_triggers(sandbox: ThreadedSandbox, command: str, expected: str) -> None:
    raw = Raw(sandbox)
    raw.command("EHLO client.test")
    if command.startswith("RCPT"):
        raw.command("MAIL FROM:<a@example.com>")
    assert raw.command(command)[0].startswith(expected)
    assert raw.command("NOOP") == ["250 2.0.0 OK"]  # the session goes on
    raw.close()


def test_greylist_refuses_a_quick_retry_from_any_connection(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox(greylist_delay=60)
    for _ in range(2):
        raw = Raw(sandbox)
        raw.command("EHLO client.test")
        raw.command("MAIL FROM:<a@example.com>")
        for _ in range(2):
            reply = raw.command("RCPT TO:<greylist@example.com>")[0]
            assert reply.startswith("450 4.2.0 ")
        raw.close()


def test_greylist_accepts_a_retry_after_the_delay(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox(greylist_delay=0.2)
    raw = Raw(sandbox)
    raw.command("EHLO client.test")
    raw.command("MAIL FROM:<a@example.com>")
    assert raw.command("RCPT TO:<greylist@example.com>")[0].startswith("450 4.2.0 ")
    # A different sender is a different triple: greylisted on its own.
    raw.command("RSET")
    raw.command("MAIL FROM:<b@example.com>")
    assert raw.command("RCPT TO:<greylist@example.com>")[0].startswith("450 4.2.0 ")
    time.sleep(0.25)
    raw.command("RSET")
    raw.command("MAIL FROM:<a@example.com>")
    assert raw.command("RCPT TO:<greylist@example.com>")[0].startswith("250 2.1.5 ")
    raw.close()
    raw = Raw(sandbox)  # still accepted in a new connection
    raw.command("EHLO client.test")
    raw.command("MAIL FROM:<a@example.com>")
    assert raw.command("RCPT TO:<greylist@example.com>")[0].startswith("250 2.1.5 ")
    raw.close()


def test_slow_delays_its_reply_without_blocking_others(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox(slow_delay=1.5, idle_timeout=1)  # thinking is not idling
    slow = Raw(sandbox)
    slow.command("EHLO client.test")
    slow.command("MAIL FROM:<a@example.com>")
    started = time.monotonic()
    slow.send(b"RCPT TO:<slow@example.com>\r\n")
    other = Raw(sandbox)  # served while the slow reply is pending
    assert other.greeting == [GREETING]
    assert other.command("NOOP") == ["250 2.0.0 OK"]
    assert select.select([slow.sock], [], [], 0)[0] == [], "the slow reply came too early"
    assert slow.reply()[0].startswith("250 2.1.5 ")
    assert time.monotonic() - started >= 1.5
    slow.close()
    other.close()


def test_drop_closes_the_connection_without_a_reply(sandbox: ThreadedSandbox) -> None:
    raw = Raw(sandbox)
    raw.command("EHLO client.test")
    raw.command("MAIL FROM:<a@example.com>")
    raw.send(b"RCPT TO:<drop@example.com>\r\n")
    assert raw.closed_by_server()


@pytest.mark.parametrize("sender", ["a@example.com", "toobig@example.com"])
@pytest.mark.parametrize("recipient", ["b@example.com", "toobig@example.com"])
def test_toobig_is_refused_at_the_final_dot(
    sandbox: ThreadedSandbox, sender: str, recipient: str
) -> None:
    raw = Raw(sandbox)
    raw.command("EHLO client.test")
    assert raw.command(f"MAIL FROM:<{sender}>")[0].startswith("250 ")
    assert raw.command(f"RCPT TO:<{recipient}>")[0].startswith("250 ")
    assert raw.command("DATA")[0].startswith("354 ")
    reply = raw.command("Subject: big\r\n\r\nbody\r\n.")[0]
    raw.close()
    if "toobig" in sender + recipient:
        assert reply.startswith("552 5.3.4 ")
        assert sandbox.mailbox().messages() == []
    else:
        assert reply.startswith("250 2.0.0 ")


def test_triggers_help_lists_every_trigger() -> None:
    for trigger in load_triggers():
        assert f"<{trigger.local_part}@...>" in TRIGGERS_HELP
        if trigger.reply:
            assert " ".join(trigger.reply.split()[:2]) in TRIGGERS_HELP
    assert "after 5 s" in TRIGGERS_HELP
    assert "after 2 s" in triggers_help(greylist_delay=2)
    assert TRIGGERS_HELP.isascii()


# Limits -----------------------------------------------------------------------------------


def test_message_size_limit(start_sandbox: Callable[..., ThreadedSandbox]) -> None:
    sandbox = start_sandbox(max_message_size=1000)
    raw = Raw(sandbox)
    assert "250-SIZE 1000" in raw.command("EHLO client.test")
    assert raw.command("MAIL FROM:<a@example.com> SIZE=1001")[0].startswith("552 5.3.4 ")
    assert raw.command("MAIL FROM:<a@example.com> SIZE=1000")[0].startswith("250 ")
    raw.command("RCPT TO:<b@example.com>")
    raw.command("DATA")
    assert raw.command("Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 20 + ".")[0].startswith(
        "552 5.3.4 "
    )
    assert raw.command("NOOP") == ["250 2.0.0 OK"]
    assert sandbox.mailbox().messages() == []
    raw.command("MAIL FROM:<a@example.com>")
    raw.command("RCPT TO:<b@example.com>")
    raw.command("DATA")
    assert raw.command("Subject: small\r\n\r\nsmall\r\n.")[0].startswith("250 ")
    assert len(sandbox.mailbox().messages()) == 1
    raw.close()


def test_recipient_limit(start_sandbox: Callable[..., ThreadedSandbox]) -> None:
    sandbox = start_sandbox(max_recipients=3)
    with client(sandbox) as smtp:
        smtp.ehlo()
        smtp.mail("a@example.com")
        for number in range(3):
            assert smtp.rcpt(f"r{number}@example.com")[0] == 250
        code, text = smtp.rcpt("r3@example.com")
        assert (code, text[:6]) == (452, b"4.5.3 ")
        assert smtp.data(b"Subject: many\r\n\r\nhi\r\n")[0] == 250
    [stored] = sandbox.mailbox().messages()
    assert len(stored.envelope["rcpt_tos"]) == 3


def test_connection_limit(start_sandbox: Callable[..., ThreadedSandbox]) -> None:
    sandbox = start_sandbox(max_connections=2)
    first, second = Raw(sandbox), Raw(sandbox)
    third = Raw(sandbox)
    assert third.greeting == ["421 4.7.0 localhost Too many connections, try again later"]
    assert third.closed_by_server()
    assert first.command("QUIT")[0].startswith("221 2.0.0 ")
    assert first.closed_by_server()  # closed after the server forgot the connection
    fourth = Raw(sandbox)
    assert fourth.greeting == [GREETING]
    for raw in (second, fourth):
        raw.close()


def test_idle_timeout_says_421_before_closing(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox(idle_timeout=0.5)
    raw = Raw(sandbox)
    raw.command("EHLO client.test")
    assert raw.reply() == ["421 4.4.2 localhost Idle timeout, closing connection"]
    assert raw.closed_by_server()


def test_stop_says_421_to_connected_clients(sandbox: ThreadedSandbox) -> None:
    raw = Raw(sandbox)
    sandbox.stop()
    assert raw.reply() == ["421 4.3.2 localhost Sandbox shutting down"]
    assert raw.closed_by_server()
    with pytest.raises(OSError):
        socket.create_connection((sandbox.host, sandbox.port), timeout=TIMEOUT)


# Nothing leaves the box -------------------------------------------------------------------


def test_mail_to_external_domains_only_lands_in_the_maildir(
    outbound: Outbound, private_home: Path
) -> None:
    with ThreadedSandbox(SandboxConfig()) as sandbox:
        with client(sandbox) as smtp:
            smtp.sendmail(
                "me@example.org", ["you@gmail.com", "them@qq.com"], b"Subject: x\r\n\r\nx\r\n"
            )
        key = sandbox.mailbox().latest().key  # type: ignore[union-attr]
    assert {address[0] for address in outbound.connects} == {"127.0.0.1"}  # type: ignore[index]
    assert set(outbound.lookups) <= {"127.0.0.1"}
    files = sorted(str(p.relative_to(private_home)) for p in private_home.rglob("*") if p.is_file())
    sandbox_dir = "xdg_data_home/smtp-tutor/sandbox"
    assert files == [
        f"{sandbox_dir}/Maildir/envelopes.jsonl",
        f"{sandbox_dir}/Maildir/new/{key}",
        f"{sandbox_dir}/cert.pem",
        f"{sandbox_dir}/key.pem",
    ]


# TLS certificate and implicit TLS ---------------------------------------------------------


def test_certificate_is_made_once_and_reused(
    start_sandbox: Callable[..., ThreadedSandbox], private_home: Path
) -> None:
    first = start_sandbox()
    cert_path = first.cert_path
    key_path = cert_path.with_name("key.pem")
    assert cert_path.parent == private_home / "xdg_data_home" / "smtp-tutor" / "sandbox"
    assert key_path.stat().st_mode & 0o777 == 0o600
    cert_bytes, cert_mtime = cert_path.read_bytes(), cert_path.stat().st_mtime_ns
    first.stop()

    second = start_sandbox()
    assert second.cert_path == cert_path
    assert cert_path.read_bytes() == cert_bytes
    assert cert_path.stat().st_mtime_ns == cert_mtime
    cert = x509.load_pem_x509_certificate(cert_bytes)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}


def test_certificate_is_regenerated_when_unusable(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path / "certs")
    original = cert_path.read_bytes()

    key_path.chmod(0o644)  # a loose key mode is tightened on reuse
    assert ensure_certificate(tmp_path / "certs") == (cert_path, key_path)
    assert cert_path.read_bytes() == original
    assert key_path.stat().st_mode & 0o777 == 0o600

    cert_path.write_bytes(b"not a certificate")
    ensure_certificate(tmp_path / "certs")
    assert cert_path.read_bytes() not in (original, b"not a certificate")

    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=1000)
    write_self_signed(cert_path, key_path, now=long_ago, validity=dt.timedelta(days=10))
    expired = cert_path.read_bytes()
    ensure_certificate(tmp_path / "certs")
    renewed = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert_path.read_bytes() != expired
    assert renewed.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=30)


def test_kept_certificate_is_checked_without_cryptography_as_cryptography_would(
    tmp_path: Path,
) -> None:
    """The ssl module reads the kept certificate: same dates; a key of another pair fails."""
    from smtp_tutor.sandbox import certs

    cert_path, key_path = ensure_certificate(tmp_path / "a")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert certs._validity(cert_path) == (cert.not_valid_before_utc, cert.not_valid_after_utc)
    now = dt.datetime.now(dt.UTC)
    assert certs._usable(cert_path, key_path, now)
    assert not certs._usable(cert_path, key_path, cert.not_valid_before_utc - dt.timedelta(1))

    _other_cert, other_key = ensure_certificate(tmp_path / "b")
    key_path.write_bytes(other_key.read_bytes())  # a key that does not match the certificate
    assert not certs._usable(cert_path, key_path, now)
    ensure_certificate(tmp_path / "a")
    renewed = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert renewed.serial_number != cert.serial_number
    assert certs._usable(cert_path, key_path, now)


def test_implicit_tls(start_sandbox: Callable[..., ThreadedSandbox]) -> None:
    sandbox = start_sandbox(implicit_tls=True)
    context = client_tls_context(sandbox.cert_path)
    with smtplib.SMTP_SSL(
        sandbox.host, sandbox.port, local_hostname="client.test", timeout=TIMEOUT, context=context
    ) as smtp:
        smtp.ehlo()
        assert "starttls" not in smtp.esmtp_features
        assert "auth" in smtp.esmtp_features
        assert smtp.docmd("STARTTLS")[0] == 503
        smtp.login("student", "secret")
        smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: tls\r\n\r\nx\r\n")
    envelope = sandbox.mailbox().latest().envelope  # type: ignore[union-attr]
    assert envelope["tls"]["mode"] == "implicit"
    assert envelope["auth_user"] == "student"


# Configuration, start-up and the foreground server ---------------------------------------


def test_bad_configuration_is_refused_before_binding() -> None:
    for options in [{"port": 70000}, {"max_message_size": 0}, {"hostname": "two words"}]:
        with pytest.raises(ValueError):
            Sandbox(SandboxConfig(**options))  # type: ignore[arg-type]
    assert parse_accounts(["alice:pa:ss", "bob:x"]) == {"alice": "pa:ss", "bob": "x"}
    for spec in ["alice", "alice:", ":pw", "a b:pw"]:
        with pytest.raises(ValueError):
            parse_accounts([spec])


def test_busy_port_raises_in_the_caller() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError):
            ThreadedSandbox(SandboxConfig(port=port)).start()


def test_serve_forever_announces_and_stops_on_sigterm(private_home: Path) -> None:
    announced: list[str] = []

    async def main() -> None:
        serving = asyncio.create_task(serve_forever(SandboxConfig(), announced.append))
        deadline = time.monotonic() + TIMEOUT
        while not any("Ctrl+C" in line for line in announced):
            assert time.monotonic() < deadline and not serving.done()
            await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(serving, TIMEOUT)

    asyncio.run(main())
    text = "\n".join(announced)
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
    assert match, text
    assert str(private_home / "xdg_data_home" / "smtp-tutor" / "sandbox" / "Maildir") in text
    assert "Nothing is relayed" in text
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(match[1])), timeout=TIMEOUT)


@given(
    when=st.datetimes(
        min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)
    )
)
def test_a_certificate_time_reads_as_ssl_reads_it(when: dt.datetime) -> None:
    """certs._ssl_time is ssl.cert_time_to_seconds without time.strptime (~3 ms a start)."""
    from smtp_tutor.sandbox import certs

    when = when.replace(microsecond=0)
    text = f"{certs._MONTHS[when.month - 1]} {when.day:2d} {when:%H:%M:%S} {when.year} GMT"
    assert certs._ssl_time(text) == dt.datetime.fromtimestamp(
        ssl.cert_time_to_seconds(text), dt.UTC
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Mar  8 17:58:45 2029",
        "Mar  8 17:58:45 2029 UTC",
        "Foo  8 17:58:45 2029 GMT",
        "Mar 32 17:58:45 2029 GMT",
        "Mar  8 17:58 2029 GMT",
        "Mar  8 25:00:00 2029 GMT",
        "Mar  x 17:58:45 2029 GMT",
    ],
)
def test_a_malformed_certificate_time_is_a_value_error_as_in_ssl(text: str) -> None:
    from smtp_tutor.sandbox import certs

    with pytest.raises(ValueError):
        ssl.cert_time_to_seconds(text)
    with pytest.raises(ValueError):
        certs._ssl_time(text)
