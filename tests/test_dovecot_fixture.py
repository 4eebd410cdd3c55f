"""The real-Dovecot fixture behaves like the POP3 server the integration tests rely on.

Checked with the standard library's poplib (and raw socket lines where poplib hides the
wire), so a fault here is in the fixture, not in smtp-tutor's own client code. The
expected values are what Dovecot 2.3.19.1 (Debian 12) answered on this set-up; they are
the reference the sandbox's POP3 server is compared with.

Measured, and asserted below:

* greeting ``+OK Dovecot (Debian) ready.``; CAPA before login ``CAPA TOP UIDL RESP-CODES
  PIPELINING AUTH-RESP-CODE STLS USER SASL PLAIN LOGIN`` (STLS gone after STLS and on
  POP3S; after login only ``CAPA TOP UIDL RESP-CODES PIPELINING AUTH-RESP-CODE``).
* 127.0.0.1 → 127.0.0.1 counts as secured: plaintext logins work before STLS whatever
  ``disable_plaintext_auth`` or ``ssl = required`` say. On the production-like server
  (127.0.0.2) CAPA shows no USER and a bare ``SASL`` line, USER says ``-ERR [AUTH]
  Plaintext authentication disallowed on non-secure (SSL/TLS) connections.``
* a wrong password (or an unknown user) is ``-ERR [AUTH] Authentication failed.`` after
  ~0.5 s even with ``auth_failure_delay = 0`` (Dovecot's default is 2 s; anvil's per-IP
  penalty, off here, would add 2-15 s to each later login from the same address).
* the message is served with CRLF line ends, dot-stuffed; LIST/STAT sizes count CRLF;
  a message without a final newline gets one on the wire (not counted in its size);
  UIDL ``%08Xu%08Xv`` (UID then UIDVALIDITY), stable across sessions; messages move from
  new/ to cur/ when a session opens the mailbox.
* two sessions on one mailbox: both log in (Dovecot's default ``pop3_lock_session = no``,
  no ``[IN-USE]``); a message deleted by one is ``-ERR Message 1 expunged.`` to the other.
  With ``pop3_lock_session = yes`` the second PASS waits for the lock — it logs in as
  soon as the first session QUITs, or after Dovecot's fixed 10 s dotlock timeout (~11.5 s
  measured) gets ``-ERR [IN-USE] Mailbox is locked by another POP3 session.`` and is
  disconnected. That last case costs ~11.5 s, so it runs only with
  SMTP_TUTOR_SLOW_TESTS=1; the waiting itself is checked every time.
"""

from __future__ import annotations

import base64
import os
import poplib
import select
import socket
import ssl
import time
from collections.abc import Iterator

import pytest

from tests.dovecot import (  # noqa: F401 (fixtures)
    Account,
    DovecotInstance,
    dovecot_account_fixture,
    dovecot_fixture,
    dovecot_tls_required_fixture,
    missing_requirements,
)
from tests.real_servers import alive, skip_or_fail

pytestmark = pytest.mark.dovecot

GREETING = b"+OK Dovecot (Debian) ready."
CAPA_BEFORE_LOGIN = [
    b"CAPA",
    b"TOP",
    b"UIDL",
    b"RESP-CODES",
    b"PIPELINING",
    b"AUTH-RESP-CODE",
    b"STLS",
    b"USER",
    b"SASL PLAIN LOGIN",
]
CAPA_AFTER_LOGIN = [b"CAPA", b"TOP", b"UIDL", b"RESP-CODES", b"PIPELINING", b"AUTH-RESP-CODE"]
AUTH_FAILED = b"-ERR [AUTH] Authentication failed."
IN_USE = b"-ERR [IN-USE] Mailbox is locked by another POP3 session."
SLOW_TESTS = "SMTP_TUTOR_SLOW_TESTS"

# A message as an MDA stores it (LF line ends), with lines that need dot-stuffing.
MESSAGE = (
    b"From: Sender <sender@client.test>\n"
    b"To: Student <student@pop.test.local>\n"
    b"Subject: dot test\n"
    b"Message-ID: <dot-test@client.test>\n"
    b"\n"
    b"First line.\n"
    b".leading dot\n"
    b"..two leading dots\n"
    b".\n"
    b" . space then dot\n"
    b"last line\n"
)


def _wire(message: bytes) -> bytes:
    """The message with CRLF line ends, as POP3 serves it."""
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _tls_context(instance: DovecotInstance) -> ssl.SSLContext:
    """Verifying context: the fixture's certificate must really validate for its address."""
    return ssl.create_default_context(cafile=str(instance.cert_path))


class Lines:
    """A raw POP3 connection: send a line, read reply lines exactly as they arrive."""

    def __init__(self, host: str, port: int, *, timeout: float = 10) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.readline()

    def readline(self) -> bytes:
        line = self.file.readline()
        assert line.endswith(b"\r\n"), line
        return line[:-2]

    def send(self, line: bytes | str) -> None:
        self.sock.sendall((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def cmd(self, line: bytes | str) -> bytes:
        self.send(line)
        return self.readline()

    def multi(self, line: bytes | str) -> tuple[bytes, list[bytes]]:
        """A multiline command: the status line and the lines before ``.``, as sent."""
        status = self.cmd(line)
        body: list[bytes] = []
        if status.startswith(b"+OK"):
            while (body_line := self.readline()) != b".":
                body.append(body_line)
        return status, body

    def login(self, account: Account) -> bytes:
        assert self.cmd(f"USER {account.name}") == b"+OK"
        return self.cmd(f"PASS {account.password}")

    def pending(self, wait: float) -> bool:
        """Whether a reply arrives within ``wait`` seconds (nothing may be buffered yet)."""
        return bool(select.select([self.sock], [], [], wait)[0])

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def lines(dovecot: DovecotInstance) -> Iterator[Lines]:
    conn = Lines(dovecot.host, dovecot.port)
    try:
        yield conn
    finally:
        conn.close()


def _pop3(instance: DovecotInstance) -> poplib.POP3:
    return poplib.POP3(instance.host, instance.port, timeout=10)


def _login(instance: DovecotInstance, account: Account) -> poplib.POP3:
    client = _pop3(instance)
    client.user(account.name)
    client.pass_(account.password)
    return client


def test_greeting(dovecot: DovecotInstance) -> None:
    client = _pop3(dovecot)
    assert client.getwelcome() == GREETING
    client.quit()


# -- capabilities and TLS --------------------------------------------------------------


def test_capa_before_login(lines: Lines) -> None:
    assert lines.greeting == GREETING
    assert lines.multi("CAPA") == (b"+OK", CAPA_BEFORE_LOGIN)


def test_capa_as_poplib_parses_it(dovecot: DovecotInstance) -> None:
    client = _pop3(dovecot)
    assert client.capa() == {
        "CAPA": [],
        "TOP": [],
        "UIDL": [],
        "RESP-CODES": [],
        "PIPELINING": [],
        "AUTH-RESP-CODE": [],
        "STLS": [],
        "USER": [],
        "SASL": ["PLAIN", "LOGIN"],
    }
    client.quit()


def test_stls_verifies_then_login(dovecot: DovecotInstance, dovecot_account: Account) -> None:
    client = _pop3(dovecot)
    assert client.stls(context=_tls_context(dovecot)) == b"+OK Begin TLS negotiation now."
    assert isinstance(client.sock, ssl.SSLSocket)
    assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
    capa = client.capa()
    assert "STLS" not in capa
    assert capa["SASL"] == ["PLAIN", "LOGIN"]
    assert "USER" in capa
    client.user(dovecot_account.name)
    assert client.pass_(dovecot_account.password) == b"+OK Logged in."
    assert client.stat() == (0, 0)
    assert client.quit() == b"+OK Logging out."


def test_pop3s_login(dovecot: DovecotInstance, dovecot_account: Account) -> None:
    dovecot.deliver(MESSAGE, dovecot_account.name)
    client = poplib.POP3_SSL(
        dovecot.host, dovecot.pop3s_port, context=_tls_context(dovecot), timeout=10
    )
    assert client.getwelcome() == GREETING
    capa = client.capa()
    assert "STLS" not in capa
    assert capa["SASL"] == ["PLAIN", "LOGIN"]
    client.user(dovecot_account.name)
    assert client.pass_(dovecot_account.password) == b"+OK Logged in."
    assert client.stat() == (1, len(_wire(MESSAGE)))
    client.quit()


def test_capa_after_login(lines: Lines, dovecot_account: Account) -> None:
    assert lines.login(dovecot_account) == b"+OK Logged in."
    assert lines.multi("CAPA") == (b"+OK", CAPA_AFTER_LOGIN)
    assert lines.cmd("QUIT") == b"+OK Logging out."


def test_commands_outside_their_state(lines: Lines, dovecot_account: Account) -> None:
    assert lines.cmd("STAT") == b"-ERR Unknown command."
    assert lines.cmd("PASS secret") == b"-ERR No username given."
    assert lines.login(dovecot_account) == b"+OK Logged in."
    assert lines.cmd("STLS") == b"-ERR Unknown command: STLS"
    assert lines.cmd("USER student") == b"-ERR Unknown command: USER"
    assert lines.cmd("RETR 9") == b"-ERR There's no message 9."
    assert lines.cmd("RETR") == b"-ERR Invalid message number: "
    assert lines.cmd("XYZZY") == b"-ERR Unknown command: XYZZY"
    assert lines.cmd("QUIT") == b"+OK Logging out."


# -- the maildrop ----------------------------------------------------------------------


def test_stat_list_uidl_top_retr(dovecot: DovecotInstance, dovecot_account: Account) -> None:
    crlf_message = b"Subject: second\r\n\r\nCRLF on disk\r\n"
    first = dovecot.deliver(MESSAGE, dovecot_account.name)
    dovecot.deliver(crlf_message, dovecot_account.name)
    assert first.parent.name == "new"

    client = _login(dovecot, dovecot_account)
    sizes = [len(_wire(MESSAGE)), len(crlf_message)]
    assert client.stat() == (2, sum(sizes))
    status, listing, _ = client.list()
    assert status == b"+OK 2 messages:"
    assert listing == [b"1 %d" % sizes[0], b"2 %d" % sizes[1]]
    assert client.list(2) == b"+OK 2 %d" % sizes[1]

    _, uidls, _ = client.uidl()
    numbers, uids = zip(*(line.split() for line in uidls), strict=True)
    assert numbers == (b"1", b"2")
    assert all(len(uid) == 16 and int(uid, 16) for uid in uids)
    assert uids[0][:8] == b"00000001" and uids[1][:8] == b"00000002"  # %08Xu%08Xv
    assert uids[0][8:] == uids[1][8:]  # one UIDVALIDITY

    status, top, _ = client.top(1, 2)
    assert status == b"+OK"
    head, _, body = _wire(MESSAGE).partition(b"\r\n\r\n")
    assert top == [*head.split(b"\r\n"), b"", *body.split(b"\r\n")[:2]]

    status, retr_lines, _ = client.retr(1)
    assert status == b"+OK %d octets" % sizes[0]
    # poplib un-stuffs the dots; joined with CRLF it is the stored message, byte for byte.
    assert b"\r\n".join(retr_lines) + b"\r\n" == _wire(MESSAGE)
    assert client.retr(2)[1] == [b"Subject: second", b"", b"CRLF on disk"]
    assert client.quit() == b"+OK Logging out."
    # Opening the mailbox moved the files to cur/; RETR set \Seen, committed at QUIT.
    files = dovecot.messages(dovecot_account.name)
    assert [path.parent.name for path in files] == ["cur", "cur"]
    assert all(path.name.endswith(":2,S") for path in files)


def test_retr_is_dot_stuffed_on_the_wire(
    lines: Lines, dovecot: DovecotInstance, dovecot_account: Account
) -> None:
    stored = b"Subject: a\n\n.x\n..y\n.\nno final newline"
    dovecot.deliver(stored, dovecot_account.name)
    assert lines.login(dovecot_account) == b"+OK Logged in."
    assert lines.multi("RETR 1") == (
        # The CRLF Dovecot adds before the final dot is not counted.
        b"+OK %d octets" % len(_wire(stored)),
        [b"Subject: a", b"", b"..x", b"...y", b"..", b"no final newline"],
    )
    assert lines.multi("TOP 1 0") == (b"+OK", [b"Subject: a", b""])
    assert lines.cmd("QUIT") == b"+OK Logging out."


def test_dele_then_quit_removes_the_file(
    dovecot: DovecotInstance, dovecot_account: Account
) -> None:
    dovecot.deliver(b"Subject: one\n\nbye\n", dovecot_account.name)
    dovecot.deliver(b"Subject: two\n\nstay\n", dovecot_account.name)
    size_two = len(b"Subject: two\r\n\r\nstay\r\n")
    client = _login(dovecot, dovecot_account)
    uidl_two = client.uidl(2)
    assert client.dele(1) == b"+OK Marked to be deleted."
    with pytest.raises(poplib.error_proto, match=r"Message is deleted\."):
        client.retr(1)
    with pytest.raises(poplib.error_proto, match=r"Message is deleted\."):
        client.dele(1)
    assert client.stat() == (1, size_two)
    assert client.list()[1] == [b"2 %d" % size_two]  # numbers are not reused
    assert client.quit() == b"+OK Logging out, messages deleted."

    files = dovecot.messages(dovecot_account.name)
    assert len(files) == 1
    assert files[0].read_bytes() == b"Subject: two\n\nstay\n"
    # The survivor is message 1 now, with the same UIDL (RFC 1939 §7).
    client = _login(dovecot, dovecot_account)
    assert client.uidl(1).split()[2] == uidl_two.split()[2]
    client.quit()


def test_rset_and_a_dropped_connection_delete_nothing(
    lines: Lines, dovecot: DovecotInstance, dovecot_account: Account
) -> None:
    dovecot.deliver(b"Subject: keep\n\nme\n", dovecot_account.name)
    assert lines.login(dovecot_account) == b"+OK Logged in."
    assert lines.cmd("DELE 1") == b"+OK Marked to be deleted."
    assert lines.cmd("RSET") == b"+OK"
    assert lines.cmd("STAT") == b"+OK 1 %d" % len(b"Subject: keep\r\n\r\nme\r\n")
    assert lines.cmd("DELE 1") == b"+OK Marked to be deleted."
    lines.close()  # no QUIT: no UPDATE state

    client = _login(dovecot, dovecot_account)
    assert client.stat()[0] == 1
    client.quit()
    assert len(dovecot.messages(dovecot_account.name)) == 1


# -- authentication --------------------------------------------------------------------


def test_wrong_password_and_unknown_user_are_auth_errors(
    dovecot: DovecotInstance, dovecot_account: Account
) -> None:
    for user in (dovecot_account.name, "nobody-here"):
        client = _pop3(dovecot)
        assert client.user(user) == b"+OK"  # USER never tells whether the user exists
        started = time.monotonic()
        with pytest.raises(poplib.error_proto) as excinfo:
            client.pass_("not-the-password")
        assert excinfo.value.args[0] == AUTH_FAILED
        # ~0.5 s (Dovecot's failure flush timer); more would mean a penalty crept in.
        assert time.monotonic() - started < 2.5
        client.quit()


def test_auth_plain_by_raw_lines(lines: Lines, dovecot_account: Account) -> None:
    assert lines.cmd("AUTH PLAIN") == b"+ "
    assert lines.cmd("*") == b"-ERR Authentication aborted by client."
    assert lines.cmd("AUTH PLAIN !!!") == b"-ERR [AUTH] Invalid base64 data in initial response"
    assert lines.cmd("AUTH CRAM-MD5") == b"-ERR [AUTH] Unsupported authentication mechanism."
    assert lines.cmd("AUTH PLAIN") == b"+ "
    assert lines.cmd(dovecot_account.auth_plain()) == b"+OK Logged in."
    assert lines.cmd("STAT") == b"+OK 0 0"
    assert lines.cmd("QUIT") == b"+OK Logging out."


def test_auth_plain_initial_response(dovecot: DovecotInstance, dovecot_account: Account) -> None:
    conn = Lines(dovecot.host, dovecot.port)
    try:
        assert conn.cmd(f"AUTH PLAIN {dovecot_account.auth_plain()}") == b"+OK Logged in."
    finally:
        conn.close()


def test_auth_login_by_raw_lines(lines: Lines, dovecot_account: Account) -> None:
    assert lines.cmd("AUTH LOGIN") == b"+ " + base64.b64encode(b"Username:")
    assert lines.cmd(base64.b64encode(dovecot_account.name.encode())) == (
        b"+ " + base64.b64encode(b"Password:")
    )
    assert lines.cmd(base64.b64encode(dovecot_account.password.encode())) == b"+OK Logged in."
    assert lines.cmd("QUIT") == b"+OK Logging out."


def test_bare_auth_lists_the_mechanisms(lines: Lines) -> None:
    # The pre-RFC 5034 draft form: AUTH without a mechanism is a multiline list.
    assert lines.multi("AUTH") == (b"+OK", [b"PLAIN", b"LOGIN"])


# -- concurrent sessions ---------------------------------------------------------------


def test_two_sessions_share_a_mailbox_by_default(
    dovecot: DovecotInstance, dovecot_account: Account
) -> None:
    dovecot.deliver(b"Subject: one\n\n1\n", dovecot_account.name)
    dovecot.deliver(b"Subject: two\n\n2\n", dovecot_account.name)
    first = Lines(dovecot.host, dovecot.port)
    second = Lines(dovecot.host, dovecot.port)
    try:
        assert first.login(dovecot_account) == b"+OK Logged in."
        assert second.login(dovecot_account) == b"+OK Logged in."  # no [IN-USE]
        # The STATs fix both sessions' views (Dovecot reads the maildrop right after
        # sending +OK Logged in., so a change in that instant could still show).
        stat = b"+OK 2 %d" % (2 * len(b"Subject: one\r\n\r\n1\r\n"))
        assert first.cmd("STAT") == second.cmd("STAT") == stat
        assert first.cmd("DELE 1") == b"+OK Marked to be deleted."
        assert first.cmd("QUIT") == b"+OK Logging out, messages deleted."
        assert second.cmd("STAT") == stat  # its view stays as it was
        assert second.cmd("RETR 1") == b"-ERR Message 1 expunged."
        assert second.multi("RETR 2")[1] == [b"Subject: two", b"", b"2"]
        assert second.cmd("QUIT") == b"+OK Logging out."
    finally:
        first.close()
        second.close()


def test_locked_mailbox_makes_the_second_login_wait(dovecot: DovecotInstance) -> None:
    account = dovecot.add_account(lock_session=True)
    first = Lines(dovecot.host, dovecot.port)
    second = Lines(dovecot.host, dovecot.port)
    try:
        assert first.login(account) == b"+OK Logged in."
        assert second.cmd(f"USER {account.name}") == b"+OK"
        second.send(f"PASS {account.password}")
        assert not second.pending(0.3), "the second PASS is answered only once the lock frees"
        assert first.cmd("QUIT") == b"+OK Logging out."
        assert second.pending(3)
        assert second.readline() == b"+OK Logged in."
        assert second.cmd("QUIT") == b"+OK Logging out."
    finally:
        first.close()
        second.close()


# -- the production-like server: no plaintext before STLS -------------------------------


def test_tls_required_hides_plaintext_until_stls(dovecot_tls_required: DovecotInstance) -> None:
    server = dovecot_tls_required
    assert server.host == "127.0.0.2"
    conn = Lines(server.host, server.port)
    try:
        assert conn.greeting == GREETING
        # No USER, and a SASL line that lists no mechanism at all.
        assert conn.multi("CAPA") == (b"+OK", [*CAPA_BEFORE_LOGIN[:-2], b"SASL"])
        assert conn.cmd("USER student") == (
            b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
        )
        assert conn.cmd("AUTH PLAIN") == b"-ERR [AUTH] Plaintext authentication disabled."
    finally:
        conn.close()

    client = poplib.POP3(server.host, server.port, timeout=10)
    client.stls(context=_tls_context(server))
    assert client.capa()["SASL"] == ["PLAIN", "LOGIN"]
    client.user(server.user)
    assert client.pass_(server.password) == b"+OK Logged in."
    client.quit()


def test_tls_required_pop3s_login(dovecot_tls_required: DovecotInstance) -> None:
    server = dovecot_tls_required
    client = poplib.POP3_SSL(
        server.host, server.pop3s_port, context=_tls_context(server), timeout=10
    )
    client.user(server.user)
    assert client.pass_(server.password) == b"+OK Logged in."
    client.quit()


# -- lifecycle -------------------------------------------------------------------------


def test_stop_leaves_no_process_and_no_files() -> None:
    skip_or_fail(missing_requirements())
    instance = DovecotInstance()
    instance.start()
    master = instance._process.pid if instance._process else 0
    assert alive(master)
    instance.stop()
    assert not alive(master)
    assert not instance.root.exists()
    with pytest.raises(OSError):
        socket.create_connection((instance.host, instance.port), timeout=1).close()


@pytest.mark.skipif(
    os.environ.get(SLOW_TESTS, "") in ("", "0"),
    reason=f"[IN-USE] comes after Dovecot's fixed 10 s lock wait: {SLOW_TESTS}=1 runs it",
)
def test_second_session_on_a_locked_mailbox_gets_in_use(dovecot: DovecotInstance) -> None:
    account = dovecot.add_account(lock_session=True)
    holder = Lines(dovecot.host, dovecot.port, timeout=30)
    second = Lines(dovecot.host, dovecot.port, timeout=30)
    try:
        assert holder.login(account) == b"+OK Logged in."
        started = time.monotonic()
        assert second.login(account) == IN_USE
        assert time.monotonic() - started > 9
        assert second.file.readline() == b"", "Dovecot hangs up after [IN-USE]"
        assert holder.cmd("QUIT") == b"+OK Logging out."
    finally:
        holder.close()
        second.close()
