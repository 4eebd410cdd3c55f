"""The sandbox's POP3 server (smtp_tutor/sandbox/pop3/), driven over real sockets on 127.0.0.1.

Python's poplib plays the real client the seed's tutorial uses; smtplib sends the mail it
fetches, through the sandbox's own SMTP port. A raw socket (`Pop3Raw`) plays a student
typing, where poplib would hide the exact lines (AUTH, which poplib lacks, byte-stuffing,
the limits). XDG_* point into tmp_path, so the real home directory is never touched.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import poplib
import re
import signal
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtp_tutor.core.pop3.responses import Expect, ResponseParser
from smtp_tutor.sandbox import Mailbox, SandboxConfig, ThreadedSandbox, client_tls_context
from smtp_tutor.sandbox.pop3 import Pop3Limits
from smtp_tutor.sandbox.pop3.maildrop import byte_stuffed, top_of, uid_of, wire_form
from tests import test_cli
from tests.test_cli import serving

env = test_cli.env  # the fixture: a private home, an English locale, no colour

TIMEOUT = 5
FAST = Pop3Limits(bad_login_delay=0.0)
MESSAGE = (
    b"From: Student <student@example.com>\r\n"
    b"To: Student <student@example.com>\r\n"
    b"Subject: fetched by hand\r\n"
    b"Message-ID: <pop3-test@example.com>\r\n"
    b"\r\n"
    b"Hello.\r\n"
    b".a line that starts with a dot\r\n"
    b"..and one with two\r\n"
    b"last line\r\n"
)


class Pop3Raw:
    """A hand-typed POP3 session: every line exactly as the server sent it."""

    def __init__(self, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock: socket.socket = tls.wrap_socket(sock, server_hostname=host) if tls else sock
        self.buffer = b""
        self.greeting = self.line()

    def line(self) -> bytes:
        """One line with its CRLF; b'' once the server has closed."""
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def multiline(self) -> list[bytes]:
        """The lines after a +OK up to the '.', as on the wire (still byte-stuffed)."""
        lines = []
        while (line := self.line()) != b".\r\n":
            assert line, f"closed inside a multiline response after {lines!r}"
            lines.append(line)
        return lines

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> bytes:
        self.send(line.encode() + b"\r\n")
        return self.line()

    def login(self, user: str = "student", password: str = "secret") -> bytes:
        assert self.command(f"USER {user}").startswith(b"+OK")
        return self.command(f"PASS {password}")

    def closed_by_server(self) -> bool:
        if self.buffer:
            return False
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    return tmp_path


@pytest.fixture
def start_sandbox(tmp_path: Path) -> Iterator[Callable[..., ThreadedSandbox]]:
    running: list[ThreadedSandbox] = []

    def start(limits: Pop3Limits = FAST, **options: object) -> ThreadedSandbox:
        options.setdefault("mailbox", tmp_path / "Maildir")
        options.setdefault("pop3_port", 0)
        options.setdefault("users", {"student": "secret", "alice": "a-pass", "bob": "b-pass"})
        sandbox = ThreadedSandbox(SandboxConfig(**options))  # type: ignore[arg-type]
        sandbox.start()
        running.append(sandbox)
        pop3 = sandbox.sandbox.pop3
        assert pop3 is not None
        pop3.limits = limits
        return sandbox

    yield start
    for sandbox in running:
        sandbox.stop()


@pytest.fixture
def sandbox(start_sandbox: Callable[..., ThreadedSandbox]) -> ThreadedSandbox:
    return start_sandbox()


def pop(sandbox: ThreadedSandbox) -> poplib.POP3:
    assert sandbox.pop3_host is not None and sandbox.pop3_port is not None
    return poplib.POP3(sandbox.pop3_host, sandbox.pop3_port, timeout=TIMEOUT)


def raw(sandbox: ThreadedSandbox, *, tls: ssl.SSLContext | None = None) -> Pop3Raw:
    assert sandbox.pop3_host is not None and sandbox.pop3_port is not None
    return Pop3Raw(sandbox.pop3_host, sandbox.pop3_port, tls=tls)


def send_mail(
    sandbox: ThreadedSandbox, message: bytes = MESSAGE, to: str = "student@example.com"
) -> None:
    with smtplib.SMTP(sandbox.host, sandbox.port, timeout=TIMEOUT) as smtp:
        smtp.ehlo("client.test")
        assert smtp.sendmail("teacher@example.org", [to], message) == {}


def account_box(sandbox: ThreadedSandbox, name: str) -> Mailbox:
    return sandbox.sandbox.accounts.of(name)


def fetched(response: tuple[bytes, list[bytes], int]) -> bytes:
    """poplib's lines back into the message bytes (it strips the CRLFs and the stuffing)."""
    return b"".join(line + b"\r\n" for line in response[1])


# The done-when: smtplib in, poplib out, byte for byte --------------------------------------


def test_mail_sent_with_smtplib_is_listed_and_fetched_byte_for_byte_with_poplib(
    sandbox: ThreadedSandbox,
) -> None:
    send_mail(sandbox)
    stored = sandbox.mailbox().messages()[0]
    assert stored.raw == MESSAGE
    client = pop(sandbox)
    assert client.getwelcome().startswith(b"+OK smtp-tutor sandbox POP3 ready <")
    assert client.user("student").startswith(b"+OK")
    assert (
        client.pass_("secret")
        == f"+OK Logged in as student: 1 message ({len(MESSAGE)} octets).".encode()
    )
    assert client.stat() == (1, len(MESSAGE))
    assert client.list()[1] == [f"1 {len(MESSAGE)}".encode()]
    assert client.list(1) == f"+OK 1 {len(MESSAGE)}".encode()
    assert client.uidl()[1] == [f"1 {stored.key}".encode()]
    response = client.retr(1)
    assert response[0] == f"+OK {len(MESSAGE)} octets".encode()
    assert fetched(response) == MESSAGE
    head = fetched(client.top(1, 0))
    assert head == MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert fetched(client.top(1, 2)) == head + b"Hello.\r\n.a line that starts with a dot\r\n"
    assert fetched(client.top(1, 99)) == MESSAGE
    assert client.dele(1).startswith(b"+OK")
    with pytest.raises(poplib.error_proto, match="deleted"):
        client.retr(1)
    assert client.stat() == (0, 0)
    assert len(account_box(sandbox, "student")) == 1  # only marked until QUIT
    assert client.quit() == b"+OK Logging out: 1 message deleted."
    assert len(account_box(sandbox, "student")) == 0
    assert len(sandbox.mailbox()) == 1  # the shared Maildir keeps every message
    again = pop(sandbox)
    again.user("student")
    again.pass_("secret")
    assert again.stat() == (0, 0)
    again.quit()


def test_a_dropped_connection_after_dele_removes_nothing(sandbox: ThreadedSandbox) -> None:
    send_mail(sandbox)
    session = raw(sandbox)
    assert session.login().startswith(b"+OK")
    assert session.command("DELE 1").startswith(b"+OK")
    session.close()  # no QUIT: no UPDATE state
    time.sleep(0.2)
    assert len(account_box(sandbox, "student")) == 1
    client = pop(sandbox)  # and the lock was given back
    client.user("student")
    client.pass_("secret")
    assert client.stat() == (1, len(MESSAGE))
    client.quit()


def test_rset_takes_back_every_mark_and_numbers_stay_fixed(sandbox: ThreadedSandbox) -> None:
    send_mail(sandbox, MESSAGE.replace(b"first", b"one"))
    send_mail(sandbox, MESSAGE.replace(b"fetched", b"second"))
    client = pop(sandbox)
    client.user("student")
    client.pass_("secret")
    client.dele(1)
    assert client.list()[1] == [f"2 {len(MESSAGE) - 1}".encode()]  # number 2 stays 2
    send_mail(sandbox)  # arrives during the session: not in this snapshot
    assert client.stat()[0] == 1
    assert client.rset().startswith(b"+OK Maildrop has 2 messages")
    assert client.stat()[0] == 2
    client.quit()
    assert len(account_box(sandbox, "student")) == 3


def test_a_second_session_on_a_locked_mailbox_gets_in_use_at_once(
    sandbox: ThreadedSandbox,
) -> None:
    first = pop(sandbox)
    first.user("student")
    first.pass_("secret")
    second = raw(sandbox)
    started = time.monotonic()
    assert second.login() == b"-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"
    assert time.monotonic() - started < 1  # Dovecot waits up to 10 s for the lock
    assert second.command("STAT").startswith(b"-ERR")  # still AUTHORIZATION, still connected
    other = raw(sandbox)  # another account is not locked
    assert other.login("alice", "a-pass").startswith(b"+OK")
    first.quit()
    assert second.login().startswith(b"+OK Logged in")
    second.close()
    other.close()


def test_uidl_is_stable_across_sessions_and_valid(sandbox: ThreadedSandbox) -> None:
    send_mail(sandbox)
    send_mail(sandbox)

    def uids() -> dict[bytes, bytes]:
        client = pop(sandbox)
        client.user("student")
        client.pass_("secret")
        listing = dict(line.split() for line in client.uidl()[1])
        client.quit()
        return listing

    first = uids()
    assert len(set(first.values())) == 2
    for uid in first.values():
        assert re.fullmatch(rb"[\x21-\x7e]{1,70}", uid)
    assert uids() == first
    client = pop(sandbox)
    client.user("student")
    client.pass_("secret")
    client.dele(1)
    client.quit()
    assert list(uids().values()) == [first[b"2"]]  # message 2 is number 1 now, same UIDL


def test_capa_advertises_what_is_implemented_before_and_after_login(
    sandbox: ThreadedSandbox,
) -> None:
    client = pop(sandbox)
    before = client.capa()
    assert list(before) == [
        "TOP",
        "UIDL",
        "RESP-CODES",
        "PIPELINING",
        "AUTH-RESP-CODE",
        "STLS",
        "USER",
        "SASL",
        "IMPLEMENTATION",
    ]
    assert before["SASL"] == ["PLAIN", "LOGIN"]
    client.user("student")
    client.pass_("secret")
    after = client.capa()
    assert list(after) == [
        "TOP",
        "UIDL",
        "RESP-CODES",
        "PIPELINING",
        "AUTH-RESP-CODE",
        "IMPLEMENTATION",
    ]
    client.quit()


# TLS: STLS in place and POP3S ----------------------------------------------------------------


def test_stls_with_poplib_then_login(sandbox: ThreadedSandbox) -> None:
    send_mail(sandbox)
    client = pop(sandbox)
    assert client.stls(context=client_tls_context(sandbox.cert_path)).startswith(b"+OK")
    assert "STLS" not in client.capa()
    assert client.sock.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]
    client.user("student")
    client.pass_("secret")
    assert fetched(client.retr(1)) == MESSAGE
    client.quit()


def test_stls_is_refused_when_tls_is_active_and_after_login(sandbox: ThreadedSandbox) -> None:
    session = raw(sandbox)
    assert session.command("STLS") == b"+OK Begin TLS negotiation now.\r\n"
    context = client_tls_context(sandbox.cert_path)
    session.sock = context.wrap_socket(session.sock, server_hostname="127.0.0.1")
    assert session.command("STLS") == b"-ERR TLS is already active.\r\n"
    session.close()
    plain = raw(sandbox)
    plain.login()
    assert plain.command("STLS").startswith(b"-ERR STLS is only allowed before login")
    plain.close()


def test_plain_text_sent_after_stls_before_the_handshake_is_never_a_command(
    sandbox: ThreadedSandbox,
) -> None:
    """RFC 2595 §4 / the STARTTLS injection: bytes behind STLS are dropped, not obeyed."""
    session = raw(sandbox)
    session.send(b"STLS\r\nUSER student\r\nPASS secret\r\n")
    assert session.line() == b"+OK Begin TLS negotiation now.\r\n"
    context = client_tls_context(sandbox.cert_path)
    session.sock = context.wrap_socket(session.sock, server_hostname="127.0.0.1")
    assert session.command("STAT").startswith(b"-ERR STAT needs a login first")
    session.close()


def test_pop3s_with_poplib_pop3_ssl(start_sandbox: Callable[..., ThreadedSandbox]) -> None:
    sandbox = start_sandbox(pop3_implicit_tls=True)
    send_mail(sandbox)
    assert sandbox.pop3_host is not None and sandbox.pop3_port is not None
    client = poplib.POP3_SSL(
        sandbox.pop3_host,
        sandbox.pop3_port,
        context=client_tls_context(sandbox.cert_path),
        timeout=TIMEOUT,
    )
    assert "STLS" not in client.capa()
    client.user("student")
    client.pass_("secret")
    assert fetched(client.retr(1)) == MESSAGE
    client.quit()
    assert "implicit TLS (port-995 style)" in "\n".join(sandbox.sandbox.summary())


# Logging in: AUTH PLAIN / LOGIN, APOP, accounts ------------------------------------------------


def b64(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


@pytest.mark.parametrize("initial", [True, False])
def test_auth_plain(sandbox: ThreadedSandbox, initial: bool) -> None:
    session = raw(sandbox)
    answer = b64("\0student\0secret")
    if initial:
        reply = session.command(f"AUTH PLAIN {answer}")
    else:
        assert session.command("AUTH PLAIN") == b"+ \r\n"
        reply = session.command(answer)
    assert reply.startswith(b"+OK Logged in as student")
    assert session.command("STAT").startswith(b"+OK 0 0")
    session.close()


@pytest.mark.parametrize("initial", [True, False])
def test_auth_login(sandbox: ThreadedSandbox, initial: bool) -> None:
    session = raw(sandbox)
    if initial:
        assert session.command(f"AUTH LOGIN {b64('alice')}") == b"+ UGFzc3dvcmQ6\r\n"
    else:
        assert session.command("AUTH LOGIN") == b"+ VXNlcm5hbWU6\r\n"  # Username:
        assert session.command(b64("alice")) == b"+ UGFzc3dvcmQ6\r\n"  # Password:
    assert session.command(b64("a-pass")).startswith(b"+OK Logged in as alice")
    session.close()


def test_auth_failures_cancel_and_listing(sandbox: ThreadedSandbox) -> None:
    session = raw(sandbox)
    assert session.command("AUTH") == b"+OK\r\n"
    assert session.multiline() == [b"PLAIN\r\n", b"LOGIN\r\n"]
    assert session.command(f"AUTH PLAIN {b64(chr(0) + 'student' + chr(0) + 'nope')}") == (
        b"-ERR [AUTH] Authentication failed.\r\n"
    )
    assert session.command("AUTH PLAIN") == b"+ \r\n"
    assert session.command("*") == b"-ERR Authentication aborted by client.\r\n"
    assert session.command("AUTH PLAIN") == b"+ \r\n"
    assert session.command("not base64!") == b"-ERR Invalid base64 data in the answer.\r\n"
    assert session.command("AUTH CRAM-MD5").startswith(b"-ERR Unsupported authentication")
    assert session.command(f"AUTH PLAIN {b64('x' + chr(0) + 'student' + chr(0) + 'secret')}") == (
        b"-ERR [AUTH] Authentication failed.\r\n"  # another authzid than the user: refused
    )
    session.close()


def test_apop_with_the_greeting_timestamp(sandbox: ThreadedSandbox) -> None:
    client = pop(sandbox)
    stamp = re.search(rb"<[^>]+@localhost>", client.getwelcome())
    assert stamp is not None
    assert client.apop("student", "secret").startswith(b"+OK Logged in as student")
    client.quit()
    session = raw(sandbox)
    wrong = hashlib.md5(b"<other@localhost>secret").hexdigest()
    assert session.command(f"APOP student {wrong}") == b"-ERR [AUTH] Authentication failed.\r\n"
    session.close()


def test_accounts_are_isolated(sandbox: ThreadedSandbox) -> None:
    send_mail(sandbox, MESSAGE.replace(b"fetched by hand", b"for bob"), to="bob@example.com")
    alice = pop(sandbox)
    alice.user("alice")
    alice.pass_("a-pass")
    assert alice.stat() == (0, 0)
    alice.quit()
    bob = pop(sandbox)
    bob.user("bob")
    bob.pass_("b-pass")
    assert bob.stat()[0] == 1
    assert b"Subject: for bob" in fetched(bob.retr(1))
    bob.dele(1)
    bob.quit()
    assert len(sandbox.mailbox()) == 1  # bob's DELE removed bob's copy only
    session = raw(sandbox)
    assert session.login("alice", "b-pass") == b"-ERR [AUTH] Authentication failed.\r\n"
    assert session.login("nobody", "b-pass") == b"-ERR [AUTH] Authentication failed.\r\n"
    session.close()


# The wire: byte-stuffing, line ends, pipelining, states ---------------------------------------


def test_byte_stuffing_on_the_wire(sandbox: ThreadedSandbox) -> None:
    send_mail(sandbox)
    session = raw(sandbox)
    session.login()
    assert session.command("RETR 1") == f"+OK {len(MESSAGE)} octets\r\n".encode()
    body = session.multiline()
    assert b"..a line that starts with a dot\r\n" in body
    assert b"...and one with two\r\n" in body
    assert b"".join(body) == MESSAGE.replace(b"\r\n.", b"\r\n..")
    session.close()


def test_a_stored_bare_lf_goes_out_as_crlf_and_is_counted_so(sandbox: ThreadedSandbox) -> None:
    account_box(sandbox, "student").add(b"Subject: lf\n\nbody\nno end", {})
    client = pop(sandbox)
    client.user("student")
    client.pass_("secret")
    wire = b"Subject: lf\r\n\r\nbody\r\nno end\r\n"
    assert client.stat() == (1, len(wire))
    assert fetched(client.retr(1)) == wire
    client.quit()


def test_pipelined_commands_are_answered_in_order(sandbox: ThreadedSandbox) -> None:
    send_mail(sandbox)
    session = raw(sandbox)
    session.send(b"USER student\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL 1\r\nNOOP\r\nQUIT\r\n")
    assert session.line().startswith(b"+OK")
    assert session.line().startswith(b"+OK Logged in")
    assert session.line() == f"+OK 1 {len(MESSAGE)}\r\n".encode()
    assert session.line().startswith(b"+OK 1 message")
    assert session.multiline() == [f"1 {len(MESSAGE)}\r\n".encode()]
    assert session.line().startswith(b"+OK 1 ")
    assert session.line() == b"+OK\r\n"
    assert session.line() == b"+OK Logging out: nothing deleted.\r\n"
    assert session.closed_by_server()


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("STAT", b"-ERR STAT needs a login first (AUTHORIZATION state)"),
        ("RETR 1", b"-ERR RETR needs a login first"),
        ("PASS secret", b"-ERR No username given: send USER first."),
        ("XYZZY", b"-ERR Unknown command: XYZZY"),
        ("", b"-ERR Empty command"),
        ("UTF8", b"-ERR UTF8 is not implemented by the sandbox."),
        ("CAPA now", b"-ERR CAPA takes no argument."),
    ],
)
def test_commands_out_of_state_or_malformed_before_login(
    sandbox: ThreadedSandbox, line: str, answer: bytes
) -> None:
    session = raw(sandbox)
    assert session.command(line).startswith(answer)
    assert session.command("NOOP").startswith(b"-ERR NOOP needs a login first")
    assert session.login().startswith(b"+OK Logged in")  # the session goes on
    session.close()


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("USER student", b"-ERR USER is only for the AUTHORIZATION state"),
        ("RETR 0", b"-ERR There's no message 0."),
        ("RETR 2", b"-ERR There's no message 2."),
        ("RETR x", b"-ERR Invalid message number: x"),
        ("RETR", b"-ERR RETR takes one message number"),
        ("TOP 1", b"-ERR TOP takes a message number and a line count"),
        ("TOP 1 -1", b"-ERR Invalid number of lines: -1"),
        ("LIST 1 2", b"-ERR LIST takes at most one message number."),
        ("DELE \x01\x1b[2J", b"-ERR Invalid message number: ??[2J\r\n"),
    ],
)
def test_commands_refused_after_login(sandbox: ThreadedSandbox, line: str, answer: bytes) -> None:
    send_mail(sandbox)
    session = raw(sandbox)
    session.login()
    assert session.command(line).startswith(answer)
    assert session.command("STAT").startswith(b"+OK 1 ")
    session.close()


# Limits --------------------------------------------------------------------------------------


def test_a_line_over_255_octets_is_refused_and_the_session_goes_on(
    sandbox: ThreadedSandbox,
) -> None:
    session = raw(sandbox)
    assert session.command("USER " + "x" * 300) == (
        b"-ERR A command line is at most 255 octets with its CRLF (RFC 2449).\r\n"
    )
    assert session.command("USER " + "x" * 248) == b"+OK Now send PASS with the password.\r\n"
    assert session.login().startswith(b"+OK Logged in")
    session.close()


def test_an_idle_session_gets_sys_temp_and_is_closed_with_nothing_deleted(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox(pop3_idle_timeout=0.5)
    send_mail(sandbox)
    session = raw(sandbox)
    session.login()
    assert session.command("DELE 1").startswith(b"+OK")
    started = time.monotonic()
    assert session.line() == (
        b"-ERR [SYS/TEMP] Idle for more than 0.5 seconds; closing. Nothing was deleted.\r\n"
    )
    assert 0.4 < time.monotonic() - started < 3
    assert session.closed_by_server()
    assert len(account_box(sandbox, "student")) == 1


def test_connections_over_the_limit_are_refused_with_sys_temp(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox(max_connections=2)
    first, second = raw(sandbox), raw(sandbox)
    third = raw(sandbox)
    assert (
        third.greeting == b"-ERR [SYS/TEMP] All 2 POP3 connections are in use; try again later.\r\n"
    )
    assert third.closed_by_server()
    assert first.greeting.startswith(b"+OK") and second.greeting.startswith(b"+OK")
    first.close()
    time.sleep(0.2)
    fourth = raw(sandbox)
    assert fourth.greeting.startswith(b"+OK")
    for session in (second, third, fourth):
        session.close()


def test_three_bad_passwords_close_the_connection_after_a_pause(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox(limits=Pop3Limits(bad_login_delay=0.2))
    session = raw(sandbox)
    started = time.monotonic()
    assert session.login(password="one") == b"-ERR [AUTH] Authentication failed.\r\n"
    assert time.monotonic() - started >= 0.2
    assert session.login(password="two") == b"-ERR [AUTH] Authentication failed.\r\n"
    assert session.login(password="three") == (
        b"-ERR [AUTH] Authentication failed 3 times; closing the connection.\r\n"
    )
    assert session.closed_by_server()
    fresh = raw(sandbox)  # counted per connection
    assert fresh.login().startswith(b"+OK Logged in")
    fresh.close()


# Hostile clients ------------------------------------------------------------------------------


def test_hostile_clients_leave_the_server_up_and_other_sessions_untouched(
    sandbox: ThreadedSandbox,
) -> None:
    send_mail(sandbox)
    send_mail(sandbox)
    bystander = raw(sandbox)  # another account, in the middle of its session
    assert bystander.login("alice", "a-pass").startswith(b"+OK")

    garbage = raw(sandbox)
    garbage.send(bytes(range(256)) + b"\r\n\xff\xfe\x00\r\n\x1b[2J\r\n")
    for _ in range(3):
        assert garbage.line().startswith(b"-ERR")
    garbage.close()

    huge = raw(sandbox)  # 1 MB and no line end: cut off after 64 KiB
    try:
        huge.send(b"x" * (1024 * 1024))
        answer = huge.line()
    except (BrokenPipeError, ConnectionResetError):  # closed while we were still sending
        answer = b"reset"
    assert answer.startswith(b"-ERR Line too long") or answer == b"reset", answer
    huge.close()

    huge_read = raw(sandbox)
    huge_read.send(b"USER " + b"y" * 70000)
    assert huge_read.line().startswith(b"-ERR Line too long (over 65536 octets")
    assert huge_read.closed_by_server()

    dropper = raw(sandbox)  # DELE everything, then vanish in the middle of a RETR
    dropper.login()
    dropper.send(b"DELE 1\r\nDELE 2\r\nRETR 1\r\nLIST\r\nRETR 2\r\n")
    dropper.sock.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
    )
    dropper.close()
    time.sleep(0.3)

    assert len(account_box(sandbox, "student")) == 2  # nothing deleted wrongly
    assert bystander.command("STAT") == b"+OK 0 0\r\n"
    client = pop(sandbox)
    client.user("student")
    client.pass_("secret")
    assert client.stat()[0] == 2
    assert fetched(client.retr(2)) == MESSAGE
    client.quit()
    bystander.close()


def test_failed_tls_handshakes_cost_only_their_connection(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    plain = start_sandbox()
    session = raw(plain)
    assert session.command("STLS").startswith(b"+OK")
    session.send(b"this is not a ClientHello\r\n" * 10)
    assert session.closed_by_server()
    hangup = raw(plain)
    assert hangup.command("STLS").startswith(b"+OK")
    hangup.close()  # gone in the middle of the handshake
    client = pop(plain)
    client.stls(context=client_tls_context(plain.cert_path))
    client.user("student")
    assert client.pass_("secret").startswith(b"+OK")
    client.quit()
    implicit = start_sandbox(pop3_implicit_tls=True, mailbox=plain.mailbox_path.parent / "M2")
    assert implicit.pop3_port is not None
    with socket.create_connection(("127.0.0.1", implicit.pop3_port), timeout=TIMEOUT) as sock:
        sock.sendall(b"USER student\r\n")  # plain text to a POP3S port
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(100):  # a TLS alert at most, then the server closes
                pass
    secure = poplib.POP3_SSL(
        "127.0.0.1", implicit.pop3_port, context=client_tls_context(implicit.cert_path)
    )
    secure.user("student")
    assert secure.pass_("secret").startswith(b"+OK")
    secure.quit()


def test_a_client_that_half_closes_still_gets_every_answer(sandbox: ThreadedSandbox) -> None:
    """`printf 'USER …' | nc -N`: the client's EOF comes right after its last command."""
    send_mail(sandbox)
    session = raw(sandbox)
    session.send(b"USER student\r\nPASS secret\r\nDELE 1\r\nQUIT\r\n")
    session.sock.shutdown(socket.SHUT_WR)
    answers = [session.line() for _ in range(4)]
    assert answers[-1] == b"+OK Logging out: 1 message deleted.\r\n", answers
    assert session.closed_by_server()
    assert len(account_box(sandbox, "student")) == 0


def test_a_client_that_never_reads_is_cut_off_after_the_idle_timeout(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox(pop3_idle_timeout=1.0)
    big = MESSAGE + b"x" * 998 + b"\r\n"
    account_box(sandbox, "student").add(big * 4000, {})  # 4 MB
    stuck = raw(sandbox)
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.login()
    stuck.send(b"RETR 1\r\n" * 20)  # ~80 MB of answers that nobody reads
    deadline = time.monotonic() + 6
    while True:  # the lock is given back once the session is gone
        other = raw(sandbox)
        answer = other.login()
        other.close()
        if answer.startswith(b"+OK"):
            break
        assert answer.startswith(b"-ERR [IN-USE]")
        assert time.monotonic() < deadline, "the stuck session was never cut off"
        time.sleep(0.3)
    stuck.close()


def test_stopping_the_sandbox_says_so_to_a_logged_in_session(
    start_sandbox: Callable[..., ThreadedSandbox],
) -> None:
    sandbox = start_sandbox()
    send_mail(sandbox)
    session = raw(sandbox)
    session.login()
    session.command("DELE 1")
    sandbox.stop()
    assert session.line().startswith(b"-ERR [SYS/TEMP] The sandbox is shutting down")
    assert session.closed_by_server()
    assert len(Mailbox(sandbox.mailbox_path / "accounts" / "student")) == 1


# serve --pop3 --------------------------------------------------------------------------------


def test_serve_pop3_announces_the_port_and_reports_logins_and_quits(
    env: dict[str, str], tmp_path: Path
) -> None:
    with serving(env, "--pop3", "0", "--mailbox", str(tmp_path / "Maildir")) as served:
        text = "".join(served.seen)
        where = re.search(r"POP3 listening on 127\.0\.0\.1:(\d+) \(STLS offered\)", text)
        assert where, text
        with smtplib.SMTP(served.host, served.port, timeout=TIMEOUT) as smtp:
            smtp.sendmail("a@example.org", ["student@example.com"], MESSAGE)
        client = poplib.POP3("127.0.0.1", int(where[1]), timeout=TIMEOUT)
        client.user("student")
        client.pass_("secret")
        assert fetched(client.retr(1)) == MESSAGE
        client.dele(1)
        client.quit()
        bad = poplib.POP3("127.0.0.1", int(where[1]), timeout=TIMEOUT)
        bad.user("student")
        with pytest.raises(poplib.error_proto):
            bad.pass_("wrong")
        bad.quit()
        hostile = Pop3Raw("127.0.0.1", int(where[1]))
        assert hostile.command("STLS").startswith(b"+OK")
        hostile.send(b"\x16\x03\x01\x00\x05hello" + b"garbage" * 10)
        assert hostile.closed_by_server()
        time.sleep(0.3)
        code, stdout, stderr = served.stop(signal.SIGINT)
    assert code == 0, stderr
    assert stderr == ""
    failed = [line for line in stdout.splitlines() if "TLS handshake failed after STLS" in line]
    assert len(failed) == 1, stdout
    lines = stdout.splitlines()
    login = [line for line in lines if "POP3 login" in line]
    quits = [line for line in lines if "POP3 QUIT" in line]
    assert len(login) == 1 and re.search(
        r"^\d\d:\d\d:\d\d 127\.0\.0\.1:\d+ POP3 login as student \(USER/PASS\): 1 messages, "
        rf"{len(MESSAGE)} octets$",
        login[0],
    ), lines
    assert len(quits) == 1 and quits[0].endswith("POP3 QUIT by student: 1 messages deleted")
    activity = stdout.split("Press Ctrl+C to stop.\n", 1)[1]
    assert "secret" not in activity and "wrong" not in activity


def test_serve_pop3s_and_host_port(env: dict[str, str], tmp_path: Path) -> None:
    args = ("--pop3", "127.0.0.1:0", "--pop3-implicit-tls", "--mailbox", str(tmp_path / "M"))
    args += ("--lang", "zh")
    with serving(env, *args) as served:
        text = "".join(served.seen)
        where = re.search(r"POP3 listening on 127\.0\.0\.1:(\d+) \(implicit TLS", text)
        assert where, text
        client = poplib.POP3_SSL(
            "127.0.0.1", int(where[1]), context=client_tls_context(served.cert), timeout=TIMEOUT
        )
        client.user("student")
        assert client.pass_("secret").startswith(b"+OK")
        client.quit()
        time.sleep(0.3)
        code, stdout, stderr = served.stop(signal.SIGTERM)
    assert code == 0, stderr
    assert re.search(r"POP3 登录为 student（USER/PASS）：0 封邮件，0 字节$", stdout, re.M), stdout
    assert re.search(r"POP3 用户 student 发出 QUIT：删除了 0 封邮件$", stdout, re.M), stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--pop3", "x"], "argument --pop3: not a port number: 'x'"),
        (["--pop3", "70000"], "argument --pop3: port must be between 0 and 65535"),
        (["--pop3", ":110"], "not a POP3 address: ':110'"),
        (["--pop3-implicit-tls"], "--pop3-implicit-tls needs --pop3 [HOST:]PORT"),
    ],
)
def test_bad_pop3_options_are_one_line_and_exit_2(
    env: dict[str, str], args: list[str], said: str
) -> None:
    result = test_cli.run(env, "serve", "--port", "0", *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_pop3_port_in_use_is_named(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = test_cli.run(env, "serve", "--port", "0", "--pop3", str(port), "--mailbox",
                              str(tmp_path / "M"))  # fmt: skip
    assert result.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port} (POP3):" in result.stderr
    assert result.stderr.count("\n") == 1


# The plain `smtp-tutor` command ------------------------------------------------------------


def test_the_console_sandbox_opens_a_pop3_port_and_says_so(env: dict[str, str]) -> None:
    """In a terminal: the banner names the POP3 port; mail sent in the console is fetched there."""
    pexpect = pytest.importorskip("pexpect")
    env.update(PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
    command = test_cli.script()
    log = io.StringIO()
    child = pexpect.spawn(command[0], [], env=env, dimensions=(40, 160), encoding="utf-8")
    child.logfile_read = log
    try:
        banner = test_cli.read_until(child, log, r"^220 .*smtp>")
        where = re.search(r"POP3 on 127\.0\.0\.1:(\d+) too", banner)
        assert where, banner
        lines = banner.splitlines()
        pop3_line = next(i for i, line in enumerate(lines) if "POP3 on" in line)
        assert lines[pop3_line + 1].startswith("Start with:")
        for line in ("EHLO me.example", "MAIL FROM:<me@example.com>",
                     "RCPT TO:<student@example.com>", "DATA"):  # fmt: skip
            child.sendline(line)
            test_cli.read_until(child, log, re.escape(line) + r".*^(250|354) .*(smtp|data)>")
        child.sendline("Subject: typed by hand")
        child.sendline("")
        child.sendline("hello")
        child.sendline(".")
        test_cli.read_until(child, log, r"stored as")
        client = poplib.POP3("127.0.0.1", int(where[1]), timeout=TIMEOUT)
        client.user("student")
        client.pass_("secret")
        assert b"Subject: typed by hand" in fetched(client.retr(1))
        client.quit()
        child.sendline(":quit")
        child.expect(pexpect.EOF, timeout=TIMEOUT)
    finally:
        child.close(force=True)


# The maildrop's pure parts ------------------------------------------------------------------


@pytest.mark.pure
@given(st.binary(max_size=300))
def test_what_the_server_stuffs_the_core_parser_unstuffs(raw_message: bytes) -> None:
    data = wire_form(raw_message)
    parser = ResponseParser()
    parser.expect(Expect.MULTILINE)
    (response,) = parser.feed(b"+OK\r\n" + byte_stuffed(data))
    assert response.body == data
    assert not [p for p in response.problems if p.key == "dot_not_stuffed"]


@pytest.mark.pure
def test_wire_form_top_and_uid() -> None:
    assert wire_form(b"a\nb\r\nc") == b"a\r\nb\r\nc\r\n"
    assert wire_form(b"") == b""
    assert wire_form(b"lone\rcr\n") == b"lone\rcr\r\n"
    message = b"H: 1\r\nH: 2\r\n\r\nl1\r\nl2\r\nl3\r\n"
    assert top_of(message, 0) == b"H: 1\r\nH: 2\r\n\r\n"
    assert top_of(message, 2) == b"H: 1\r\nH: 2\r\n\r\nl1\r\nl2\r\n"
    assert top_of(message, 9) == message
    assert top_of(b"H: only\r\n", 3) == b"H: only\r\n"
    assert top_of(b"\r\nbody\r\n", 0) == b"\r\n"
    assert uid_of("1733.M1P2Q3.host") == "1733.M1P2Q3.host"
    for bad in ("x" * 71, "with space", "ünï"):
        uid = uid_of(bad)
        assert re.fullmatch(r"[\x21-\x7e]{1,70}", uid) and uid == uid_of(bad)
