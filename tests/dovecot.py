"""A private, throw-away Dovecot POP3 server on loopback for integration tests.

smtp-tutor's POP3 side must behave against a real POP3 server, not only against its own
sandbox, so the tests start a real Dovecot from a config file in a temp dir: POP3 with STLS
on one port, POP3S (implicit TLS, like 995) on another, passwd-file accounts with PLAIN and
LOGIN, one Maildir per account that tests write messages into. Nothing under /etc, /run or
/var is read or written; the system Dovecot stays stopped.

Two set-ups, because Dovecot counts a connection as secure when the client's address
equals the server's (RFC 2595 plaintext rules do not apply to 127.0.0.1 → 127.0.0.1):

* ``DovecotInstance()`` — the teaching set-up on 127.0.0.1: USER/PASS and AUTH work before
  STLS (loopback is "secured").
* ``DovecotInstance(plaintext_before_tls=False)`` — like a production server: it listens on
  127.0.0.2, so a client (whose source address is 127.0.0.1) is remote to it, and Debian's
  stock ``disable_plaintext_auth = yes`` really hides USER and AUTH PLAIN/LOGIN until STLS.

Run as root (CI), the master starts as root, login processes run as ``dovenull`` chrooted
into the private base_dir, internal processes as ``dovecot`` and mail processes as the
mail user (``nobody``). Run as any other user, the whole server runs as that user
(Dovecot's rootless mode: no chroot, no user switch). Needs the Debian packages installed
by ``.ci/install-dovecot.sh``. Measured behaviour is recorded in
``tests/test_dovecot_fixture.py``.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import grp
import itertools
import os
import pwd
import re
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import real_servers
from tests.real_servers import (
    PrivateServer,
    free_port,
    kill_leftovers,
    skip_or_fail,
    tool,
    write_self_signed,
)

PASSWORD = "secret"
USERS = ("student", "other")
HOSTNAME = "pop.test.local"
# Owner of the Maildirs when the master runs as root. Any uid works; nobody exists
# everywhere and is above Dovecot's default first_valid_uid (500).
ROOT_MAIL_USER = "nobody"
ROOT_SYSTEM_USERS = ("dovenull", "dovecot")  # default_login_user, default_internal_user
POP3_BINARY = "/usr/lib/dovecot/pop3"
DAEMON_PREFIXES = ("/usr/sbin/dovecot", "/usr/lib/dovecot/")

SKIP_REASON = "Dovecot POP3 not installed: run .ci/install-dovecot.sh as root (CI does)"

_counter = itertools.count(1)


def missing_requirements() -> str | None:
    """Say why a private Dovecot cannot run here, or None when it can."""
    missing = [] if tool("dovecot") else ["dovecot"]
    if not os.access(POP3_BINARY, os.X_OK):
        missing.append(POP3_BINARY)
    if missing:
        return f"{SKIP_REASON} — missing: {', '.join(missing)}"
    if os.geteuid() == 0:
        for user in (*ROOT_SYSTEM_USERS, ROOT_MAIL_USER):
            try:
                pwd.getpwnam(user)
            except KeyError:
                return f"{SKIP_REASON} — no '{user}' user"
    return None


@dataclass(frozen=True)
class Account:
    """A POP3 login and where its mail lives."""

    name: str
    password: str
    maildir: Path

    def auth_plain(self) -> str:
        """The base64 SASL PLAIN response (RFC 4616): empty authzid, user, password."""
        return base64.b64encode(f"\0{self.name}\0{self.password}".encode()).decode()


class DovecotInstance(PrivateServer):
    """One private Dovecot POP3 server on loopback.

    ``port`` speaks POP3 with STLS, ``pop3s_port`` implicit TLS. Accounts ``student`` and
    ``other`` (password ``secret``) exist from the start; ``add_account()`` makes a fresh
    one with an empty Maildir, usable at once (one passwd-file per account), so tests
    sharing a session-scoped server need not see each other's mail. ``deliver()`` drops a
    message into an account's ``new/`` as an MDA would.
    """

    name = "Dovecot"
    greeting_prefix = b"+OK"
    password = PASSWORD
    user = "student"
    hostname = HOSTNAME

    def __init__(
        self,
        *,
        plaintext_before_tls: bool = True,
        auth_failure_delay: str = "0",
        auth_penalty: bool = False,
        extra_conf: dict[str, str] | None = None,
        keep_dir: bool = False,
    ) -> None:
        self.plaintext_before_tls = plaintext_before_tls
        self.host = "127.0.0.1" if plaintext_before_tls else "127.0.0.2"
        self.auth_failure_delay = auth_failure_delay
        self.auth_penalty = auth_penalty
        self.extra_conf = dict(extra_conf or {})
        self.keep_dir = keep_dir
        self.port = 0
        self.pop3s_port = 0
        self.rootless = os.geteuid() != 0
        self.root = Path(tempfile.mkdtemp(prefix="smtp-tutor-dovecot-"))
        # Login (dovenull) and mail (nobody) processes must traverse the tree.
        self.root.chmod(0o755)
        self.base_dir = self.root / "run"
        self.mail_base = self.root / "mail"
        self.config_path = self.root / "dovecot.conf"
        self.passwd_dir = self.root / "passwd.d"
        self.log_path = self.root / "dovecot.log"
        self.stderr_path = self.root / "master.stderr"
        self.cert_path = self.root / "tls" / "cert.pem"
        self.key_path = self.root / "tls" / "key.pem"
        self._process: subprocess.Popen[bytes] | None = None
        self._accounts: dict[str, Account] = {}

    # -- accounts and mail ---------------------------------------------------------------

    @property
    def account(self) -> Account:
        return self._accounts[self.user]

    @property
    def maildir(self) -> Path:
        """Student's Maildir (``cur/``, ``new/``, ``tmp/`` exist from the start)."""
        return self.maildir_for(self.user)

    def maildir_for(self, user: str) -> Path:
        return self.mail_base / user / "Maildir"

    def add_account(
        self, name: str | None = None, *, password: str = PASSWORD, lock_session: bool = False
    ) -> Account:
        """A new account with an empty Maildir; usable at once, even while running.

        ``lock_session=True`` sets Dovecot's ``pop3_lock_session = yes`` for this account
        only (a userdb override): a second session's PASS then waits for the lock and, if
        the first session does not QUIT within Dovecot's fixed 10 s, gets ``-ERR [IN-USE]``
        as RFC 2449 describes. Dovecot's default lets two sessions share a mailbox.
        """
        name = name or f"u{next(_counter)}{uuid.uuid4().hex[:8]}"
        # Lower case: Dovecot lower-cases the login (auth_username_format = %Lu) before it
        # looks for the account's passwd-file.
        if name in self._accounts or not re.fullmatch(r"[a-z0-9_][a-z0-9._-]*", name):
            raise ValueError(f"bad or duplicate account name {name!r}")
        self._make_dirs()
        uid, gid = self._mail_ids()
        home = self.mail_base / name
        maildir = self.maildir_for(name)
        for path in (home, maildir, *(maildir / sub for sub in ("cur", "new", "tmp"))):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chown(path, uid, gid)
        extra = "userdb_pop3_lock_session=yes" if lock_session else ""
        # One passwd-file per account: Dovecot stats a passwd-file at most once a second,
        # so a line appended to a shared file right after a login stays unseen for up to
        # a second; a file it has never opened is read at once.
        entry = self.passwd_dir / name
        entry.write_text(f"{name}:{{PLAIN}}{password}:{uid}:{gid}::{home}::{extra}\n")
        self._protect(entry)
        account = Account(name, password, maildir)
        self._accounts[name] = account
        return account

    def deliver(self, message: bytes, user: str | None = None) -> Path:
        """Write ``message`` as it is (no line-end conversion) into the account's new/.

        Written to tmp/ and renamed, like a Maildir MDA, so Dovecot never sees half a file.
        Returns the path in new/; Dovecot moves the file to cur/ when a session opens the
        mailbox (see ``messages()``).
        """
        maildir = self.maildir_for(user or self.user)
        uid, gid = self._mail_ids()
        unique = f"{time.time_ns() // 1000}.P{os.getpid()}Q{next(_counter)}.smtp-tutor"
        tmp = maildir / "tmp" / unique
        tmp.write_bytes(message)
        os.chown(tmp, uid, gid)
        tmp.chmod(0o600)
        target = maildir / "new" / unique
        tmp.rename(target)
        return target

    def messages(self, user: str | None = None) -> list[Path]:
        """The message files in new/ and cur/ (Dovecot appends ``:2,FLAGS`` in cur/)."""
        maildir = self.maildir_for(user or self.user)
        return sorted(p for sub in ("new", "cur") for p in (maildir / sub).iterdir())

    # -- lifecycle (start, stop, log_text, context manager: PrivateServer) --------------

    def missing_requirements(self) -> str | None:
        return missing_requirements()

    # -- internals -----------------------------------------------------------------------

    def _mail_ids(self) -> tuple[int, int]:
        if self.rootless:
            return os.getuid(), os.getgid()
        pw = pwd.getpwnam(ROOT_MAIL_USER)
        return pw.pw_uid, pw.pw_gid

    def _protect(self, path: Path) -> None:
        """The auth process runs as the internal user: root:dovecot, no access for others."""
        path.chmod(0o750 if path.is_dir() else 0o640)
        if not self.rootless:
            os.chown(path, 0, pwd.getpwnam(ROOT_SYSTEM_USERS[1]).pw_gid)

    def _make_dirs(self) -> None:
        if self.passwd_dir.is_dir():
            return
        self.base_dir.mkdir(mode=0o755, exist_ok=True)
        self.mail_base.mkdir(mode=0o755, exist_ok=True)
        self.cert_path.parent.mkdir(mode=0o700, exist_ok=True)
        self.passwd_dir.mkdir(mode=0o750)
        self._protect(self.passwd_dir)

    def _prepare(self) -> None:
        self._make_dirs()
        write_self_signed(
            self.cert_path, self.key_path, hostname=HOSTNAME, ip_addresses=(self.host,)
        )
        self.log_path.touch(mode=0o600)
        for name in USERS:
            if name not in self._accounts:
                self.add_account(name)

    def _config(self) -> str:
        if self.rootless:
            login_user = internal_user = getpass.getuser()
            internal_group = grp.getgrgid(os.getgid()).gr_name
        else:
            login_user, internal_user = ROOT_SYSTEM_USERS
            internal_group = internal_user
        settings = {
            "protocols": "pop3",
            "listen": self.host,
            "base_dir": str(self.base_dir),
            "state_dir": str(self.base_dir),
            "instance_name": "smtp-tutor-" + self.root.name.removeprefix("smtp-tutor-dovecot-"),
            "log_path": str(self.log_path),
            "ssl": "yes",
            "ssl_cert": f"<{self.cert_path}",
            "ssl_key": f"<{self.key_path}",
            # Debian's default. On 127.0.0.1 → 127.0.0.1 it has no effect: Dovecot counts a
            # client whose address equals its own as secured.
            "disable_plaintext_auth": "yes",
            "auth_mechanisms": "plain login",
            "auth_failure_delay": self.auth_failure_delay,
            "mail_location": "maildir:~/Maildir",
            "default_login_user": login_user,
            "default_internal_user": internal_user,
            "default_internal_group": internal_group,
            "first_valid_uid": str(min(self._mail_ids()[0], 500)),
            "first_valid_gid": str(min(self._mail_ids()[1], 1)),
        }
        settings.update(self.extra_conf)
        chroot = "  chroot =\n" if self.rootless else ""
        # Every failed login from an IP delays that IP's next logins (2, 4, 8 … 15 s) via
        # anvil; with one client address for all tests that would add seconds per test.
        # Without its socket the auth process silently runs without a penalty.
        # (login_trusted_networks would skip it too, but it also marks the client secured
        # and changes the greeting to "+OK [XCLIENT] Dovecot (Debian) ready.")
        penalty = (
            "" if self.auth_penalty else "  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n"
        )
        return (
            "".join(f"{key} = {value}\n" for key, value in settings.items())
            + f"""\
passdb {{
  driver = passwd-file
  args = {self.passwd_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = {self.passwd_dir}/%u
}}
service anvil {{
{chroot}{penalty}}}
service pop3-login {{
{chroot}  inet_listener pop3 {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener pop3s {{
    address = {self.host}
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
"""
        )

    def _launch(self) -> None:
        self.port = free_port(self.host)
        self.pop3s_port = free_port(self.host)
        if self.port == self.pop3s_port:
            raise RuntimeError("the same free port twice")
        self.config_path.write_text(self._config())
        # -F keeps the master in the foreground as our child: its pid is known, it is
        # reaped (a zombie master makes the next start on this base_dir say "already
        # running"), and its own session makes its process group ours to clean up.
        with self.stderr_path.open("wb") as stderr:
            self._process = subprocess.Popen(
                [tool("dovecot") or "dovecot", "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )

    def _check_running(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(
                f"dovecot exited with {self._process.returncode}: "
                f"{self.stderr_path.read_text(errors='replace').strip()}"
            )

    def _halt(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        group = process.pid
        if process.poll() is None:
            # SIGTERM to the whole process group (ours: the master leads its own session),
            # not only to the master: the master leaves running POP3 sessions alone and
            # its log process lingers a second, so the master alone takes 1-3 s to stop.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        # Anything left in the master's process group (a child that outlived it).
        kill_leftovers(real_servers.processes_where(2, group), _is_dovecot_daemon, grace=2)


def _is_dovecot_daemon(pid: int) -> bool:
    """Guard against pid reuse: only ever kill Dovecot's own binaries."""
    return real_servers.executable(pid).startswith(DAEMON_PREFIXES)


def _running_dovecot(**options: object) -> Iterator[DovecotInstance]:
    skip_or_fail(missing_requirements())
    if options.get("plaintext_before_tls") is False:
        try:
            free_port("127.0.0.2")
        except OSError as exc:
            skip_or_fail(f"cannot listen on 127.0.0.2 for the production-like Dovecot: {exc}")
    instance = DovecotInstance(**options)  # type: ignore[arg-type]
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


# Fixtures carry their name in the decorator so that a test module can import them
# (``from tests.dovecot import dovecot_fixture``) and still take ``dovecot`` as a parameter
# without ruff's F811. tests/conftest.py is not theirs: each importing module gets its own
# session-scoped server.


@pytest.fixture(scope="session", name="dovecot")
def dovecot_fixture() -> Iterator[DovecotInstance]:
    """Real Dovecot POP3 on 127.0.0.1: USER/PASS and AUTH work before STLS (teaching)."""
    yield from _running_dovecot()


@pytest.fixture(scope="session", name="dovecot_tls_required")
def dovecot_tls_required_fixture() -> Iterator[DovecotInstance]:
    """Real Dovecot POP3 on 127.0.0.2 that, like production, refuses plaintext before STLS."""
    yield from _running_dovecot(plaintext_before_tls=False)


@pytest.fixture(name="dovecot_account")
def dovecot_account_fixture(dovecot: DovecotInstance) -> Account:
    """A fresh account with an empty Maildir on the session's teaching server."""
    return dovecot.add_account()
