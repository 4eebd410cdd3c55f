"""A private, throw-away Postfix instance on 127.0.0.1 for integration tests.

The teaching console must behave against a real MTA, not only against our own aiosmtpd
sandbox (Postfix is lenient where aiosmtpd is strict, and vice versa), so the tests start
a real Postfix from a config dir in a temp dir: no relay, no outbound mail, virtual Maildir
delivery, STARTTLS with a self-signed certificate and Cyrus SASL from a private sasldb.

Needs root (the master starts as root and drops to the ``postfix`` user) and the Debian
packages installed by ``.ci/install-postfix.sh``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import tempfile
import time
from pathlib import Path

from tests import real_servers
from tests.real_servers import PrivateServer, free_port, kill_leftovers, tool, write_self_signed

DOMAIN = "test.local"
HOSTNAME = f"mx.{DOMAIN}"
PASSWORD = "secret"
LOCAL_USERS = ("student", "other")
POSTFIX_USER = "postfix"
POSTFIX_DAEMON_PREFIX = "/usr/lib/postfix/"

SKIP_REASON = "Postfix not installed: run .ci/install-postfix.sh as root (CI does)"


def missing_requirements() -> str | None:
    """Say why a private Postfix cannot run here, or None when it can."""
    missing = [name for name in ("postfix", "saslpasswd2") if not tool(name)]
    if missing:
        return f"{SKIP_REASON} — missing: {', '.join(missing)}"
    if os.geteuid() != 0:
        return f"{SKIP_REASON} — the Postfix master must be started as root"
    try:
        pwd.getpwnam(POSTFIX_USER)
    except KeyError:
        return f"{SKIP_REASON} — no '{POSTFIX_USER}' user"
    return None


_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{port} inet n      -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixInstance(PrivateServer):
    """One private Postfix listening on 127.0.0.1:``port`` only.

    Several instances can run at the same time: each has its own temp dir (config, queue,
    data dir, mailboxes, log) and its own port; verified by
    ``tests/test_postfix_fixture.py::test_two_instances_run_at_once``.

    Mail for ``student@test.local`` (``other@test.local``; ``postmaster@`` is an alias of
    student) is delivered to Maildirs under the temp dir; everything else is refused
    (relay) or bounced into the void (``error:`` transports), so nothing leaves the host.
    SASL login is ``user``/``password`` (``student@test.local`` works too).
    ``tls_auth_only=True`` hides AUTH until STARTTLS, like production servers.
    """

    name = "Postfix"
    greeting_prefix = b"220"
    host = "127.0.0.1"
    domain = DOMAIN
    hostname = HOSTNAME
    password = PASSWORD
    # smtpd_sasl_local_domain supplies the realm, so the bare name matches the sasldb
    # entry "student@test.local"; the full address is accepted as well.
    user = "student"
    address = f"student@{DOMAIN}"

    def __init__(
        self,
        *,
        tls_auth_only: bool = False,
        extra_main_cf: dict[str, str] | None = None,
        keep_dir: bool = False,
    ) -> None:
        self.tls_auth_only = tls_auth_only
        self.extra_main_cf = dict(extra_main_cf or {})
        self.keep_dir = keep_dir
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="smtp-tutor-postfix-"))
        # The smtpd/virtual processes run as the postfix user and must traverse the tree.
        self.root.chmod(0o755)
        self.config_dir = self.root / "etc"
        self.queue_dir = self.root / "queue"
        self.data_dir = self.root / "data"
        self.mail_base = self.root / "mail"
        self.log_path = self.root / "maillog"
        self.cert_path = self.config_dir / "cert.pem"
        self.key_path = self.config_dir / "key.pem"
        # Debian's smtpd reads smtpd.conf from $config_directory/sasl whatever
        # cyrus_sasl_config_path says; the db lives outside config_dir because
        # postfix check warns about files there not owned by root.
        self.sasl_dir = self.config_dir / "sasl"
        self.sasldb_path = self.root / "sasldb" / "sasldb2"
        self._seen: set[Path] = set()
        self._running = False

    # -- paths -------------------------------------------------------------------------

    @property
    def maildir(self) -> Path:
        """Student's Maildir (``cur/``, ``new/``, ``tmp/`` appear on first delivery)."""
        return self.maildir_for("student")

    def maildir_for(self, local_part: str) -> Path:
        return self.mail_base / local_part

    # -- lifecycle (start, stop, log_text, context manager: PrivateServer) --------------

    def missing_requirements(self) -> str | None:
        return missing_requirements()

    def _launch(self) -> None:
        self.port = free_port()
        self._write_config()
        self._running = True
        # "postfix start" runs the integrity checks and creates the queue tree.
        self._postfix("start")

    # -- mail and logs -----------------------------------------------------------------

    def wait_for_message(
        self,
        timeout: float = 10.0,
        *,
        local_part: str = "student",
        containing: bytes | None = None,
    ) -> bytes:
        """Return the oldest delivered message not returned before (LF line ends).

        Delivery happens a few ms after the 250 reply, hence the polling. With
        ``containing``, only a message including those bytes counts, so tests sharing a
        session-scoped instance do not steal each other's mail.
        """
        new_dir = self.maildir_for(local_part) / "new"
        deadline = time.monotonic() + timeout
        while True:
            if new_dir.is_dir():
                files = sorted(
                    (p for p in new_dir.iterdir() if p not in self._seen),
                    key=lambda p: (p.stat().st_mtime_ns, p.name),
                )
                for path in files:
                    data = path.read_bytes()
                    if containing is None or containing in data:
                        self._seen.add(path)
                        return data
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"no message for {local_part}@{self.domain} within {timeout} s\n"
                    f"{self.log_text()[-2000:]}"
                )
            time.sleep(0.05)

    # -- internals ---------------------------------------------------------------------

    def _prepare(self) -> None:
        pw = pwd.getpwnam(POSTFIX_USER)
        self.config_dir.mkdir(mode=0o755, exist_ok=True)
        self.queue_dir.mkdir(mode=0o755, exist_ok=True)
        self.mail_base.mkdir(mode=0o755, exist_ok=True)
        os.chown(self.mail_base, pw.pw_uid, pw.pw_gid)
        self.log_path.touch()
        write_self_signed(self.cert_path, self.key_path, hostname=HOSTNAME)

        self.sasl_dir.mkdir(mode=0o755, exist_ok=True)
        self.sasldb_path.parent.mkdir(mode=0o755, exist_ok=True)
        (self.sasl_dir / "smtpd.conf").write_text(
            "pwcheck_method: auxprop\n"
            "auxprop_plugin: sasldb\n"
            f"sasldb_path: {self.sasldb_path}\n"
            "mech_list: PLAIN LOGIN CRAM-MD5\n"
        )
        for local in LOCAL_USERS:
            subprocess.run(
                [
                    tool("saslpasswd2") or "saslpasswd2",
                    "-p",
                    "-c",
                    "-f",
                    str(self.sasldb_path),
                    "-u",
                    DOMAIN,
                    local,
                ],
                input=PASSWORD.encode(),
                check=True,
                capture_output=True,
            )
        os.chown(self.sasldb_path, pw.pw_uid, pw.pw_gid)
        self.sasldb_path.chmod(0o600)

        (self.config_dir / "vmailbox").write_text(
            "".join(f"{local}@{DOMAIN} {local}/\n" for local in LOCAL_USERS)
        )
        (self.config_dir / "virtual").write_text(f"postmaster@{DOMAIN} student@{DOMAIN}\n")

    def _main_cf(self) -> dict[str, str]:
        pw = pwd.getpwnam(POSTFIX_USER)
        conf = {
            "compatibility_level": "3.6",
            "myhostname": HOSTNAME,
            "mydomain": DOMAIN,
            "myorigin": "$myhostname",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "mail_owner": POSTFIX_USER,
            "setgid_group": "postdrop",
            "maillog_file": str(self.log_path),
            "maillog_file_prefixes": str(self.root),
            "syslog_name": f"postfix-test-{self.port}",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtputf8_enable": "yes",
            # No relay and no outbound mail of any kind.
            "relayhost": "",
            "relay_domains": "",
            "default_transport": "error:outbound mail disabled in the test instance",
            "relay_transport": "error:relaying disabled in the test instance",
            "local_transport": "error:local delivery disabled in the test instance",
            "smtpd_relay_restrictions": "reject_unauth_destination",
            "smtpd_recipient_restrictions": (
                "reject_unlisted_recipient, reject_unauth_destination"
            ),
            # Virtual Maildir delivery.
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": str(self.mail_base),
            "virtual_mailbox_maps": f"texthash:{self.config_dir / 'vmailbox'}",
            "virtual_alias_maps": f"texthash:{self.config_dir / 'virtual'}",
            "virtual_uid_maps": f"static:{pw.pw_uid}",
            "virtual_gid_maps": f"static:{pw.pw_gid}",
            "virtual_minimum_uid": str(min(pw.pw_uid, 100)),
            # STARTTLS.
            "smtpd_tls_cert_file": str(self.cert_path),
            "smtpd_tls_key_file": str(self.key_path),
            "smtpd_tls_security_level": "may",
            "smtpd_tls_auth_only": "yes" if self.tls_auth_only else "no",
            "smtpd_tls_session_cache_database": "",
            "smtp_tls_security_level": "none",
            # Cyrus SASL with a private sasldb.
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "cyrus",
            "smtpd_sasl_path": "smtpd",
            "cyrus_sasl_config_path": str(self.sasl_dir),
            "smtpd_sasl_local_domain": DOMAIN,
            "smtpd_sasl_security_options": "noanonymous",
            "smtpd_sasl_tls_security_options": "noanonymous",
        }
        conf.update(self.extra_main_cf)
        return conf

    def _write_config(self) -> None:
        main_cf = self.config_dir / "main.cf"
        master_cf = self.config_dir / "master.cf"
        main_cf.write_text("".join(f"{k} = {v}\n" for k, v in self._main_cf().items()))
        master_cf.write_text(_MASTER_CF.format(port=self.port))
        # Postfix naps in 0.3 s steps while main.cf or a lookup table (texthash) looks
        # freshly written; an mtime 10 s in the past avoids 1-2 s of start-up delay.
        past = time.time() - 10
        for path in self.config_dir.rglob("*"):
            if path.is_file():
                os.utime(path, (past, past))

    def _postfix(self, command: str) -> None:
        result = subprocess.run(
            [tool("postfix") or "postfix", "-c", str(self.config_dir), command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"postfix {command} failed ({result.returncode}): "
                f"{result.stdout}{result.stderr}\n{self.log_text()[-2000:]}"
            )

    def _master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _halt(self) -> None:
        if not self._running:
            return
        self._running = False
        master = self._master_pid()
        children = real_servers.children(master) if master else []
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._postfix("stop")
        kill_leftovers(([master] if master else []) + children, _is_postfix_daemon, grace=5)


def _is_postfix_daemon(pid: int) -> bool:
    """Guard against pid reuse: only ever kill Postfix's own daemon binaries."""
    return real_servers.executable(pid).startswith(POSTFIX_DAEMON_PREFIX)
