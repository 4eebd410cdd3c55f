"""What the sandbox can be told, with the teaching set-up as the defaults.

The defaults are chosen for a student on one machine: loopback only, a free port, plain
AUTH allowed before STARTTLS (so the base64 can be seen), mail accepted without AUTH, and
the documented demo account `student` / `secret`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from smtp_tutor.core.catalogue import Said
from smtp_tutor.core.records import field, record
from smtp_tutor.paths import data_dir

DEMO_USER = "student"
DEMO_PASSWORD = "secret"

# How long a connection may stay silent before the sandbox says 421 4.4.2 and hangs up.
# A student's own sandbox (`smtp-tutor`, `smtp-tutor lesson`) has one client, the student's
# console, on loopback: nothing competes for connections, and reading a lesson or an
# explanation easily takes more than five minutes. An hour outlasts any lesson, yet a
# console left open overnight still meets a real 421 (and `:reconnect`) instead of holding
# its connection forever. `smtp-tutor serve` serves a whole class, so it keeps what real
# servers use (RFC 5321 section 4.5.3.2.7: at least 5 minutes), changeable with --idle-timeout.
STUDENT_IDLE_TIMEOUT = 3600.0
SERVER_IDLE_TIMEOUT = 300.0
# RFC 1939 section 3: a POP3 autologout timer "MUST be of at least 10 minutes' duration".
# So the POP3 side waits at least this long unless told otherwise (`--pop3-idle-timeout`).
POP3_MIN_IDLE_TIMEOUT = 600.0


def _demo_users() -> dict[str, str]:
    return {DEMO_USER: DEMO_PASSWORD}


def sandbox_dir() -> Path:
    """Where the certificate and the default Maildir live (inside the user's data dir)."""
    return data_dir() / "sandbox"


def default_mailbox_dir() -> Path:
    return sandbox_dir() / "Maildir"


@record
class SandboxConfig:
    """Options of the sandbox server.

    `users` is the whole account table: the default holds only the demo account; to add
    accounts keep it (`{**SandboxConfig().users, **parse_accounts(specs)}`), to disable the
    demo account leave it out.
    """

    host: str = "127.0.0.1"
    port: int = 0
    mailbox: Path | None = None
    users: dict[str, str] = field(default_factory=_demo_users)
    require_tls: bool = False
    require_auth: bool = False
    implicit_tls: bool = False
    max_message_size: int = 10 * 1024 * 1024
    idle_timeout: float = STUDENT_IDLE_TIMEOUT
    max_connections: int = 100
    max_recipients: int = 100
    greylist_delay: float = 5
    slow_delay: float = 5
    hostname: str = "localhost"
    # POP3 over the same mailboxes (sandbox/pop3/): None = off, 0 = a free port.
    pop3_port: int | None = None
    pop3_host: str | None = None  # None: the SMTP side's host
    pop3_implicit_tls: bool = False  # POP3S, like port 995
    # None: the SMTP side's idle timeout, but never under RFC 1939's 10 minutes.
    pop3_idle_timeout: float | None = None

    def mailbox_dir(self) -> Path:
        return Path(self.mailbox) if self.mailbox is not None else default_mailbox_dir()

    def pop3_idle(self) -> float:
        """Seconds a POP3 session may stay silent: as set, else the SMTP side's, at least 600."""
        if self.pop3_idle_timeout is not None:
            return self.pop3_idle_timeout
        return max(self.idle_timeout, POP3_MIN_IDLE_TIMEOUT)

    def has_demo_account(self) -> bool:
        return self.users.get(DEMO_USER) == DEMO_PASSWORD

    def validate(self) -> None:
        """Raise ValueError with a sentence a user can act on; called before binding.

        What `serve`'s options can get wrong is said as a `Said` (serve.toml), so `serve`
        says it in the reader's language; the rest argparse has refused already.
        """
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        if self.pop3_port is not None and not 0 <= self.pop3_port <= 65535:
            raise ValueError(f"the POP3 port must be between 0 and 65535, not {self.pop3_port}")
        if self.max_message_size < 1:
            raise ValueError("the message size limit must be at least 1 byte")
        if self.idle_timeout <= 0 or (
            self.pop3_idle_timeout is not None and self.pop3_idle_timeout <= 0
        ):
            raise ValueError("the idle timeout must be more than 0 seconds")
        if self.max_connections < 1 or self.max_recipients < 1:
            raise ValueError("the connection and recipient limits must be at least 1")
        if self.greylist_delay < 0 or self.slow_delay < 0:
            raise ValueError("the greylist and slow delays cannot be negative")
        if not self.hostname or any(c.isspace() for c in self.hostname):
            raise ValueError(Said("serve", "config_hostname", hostname=repr(self.hostname)))
        for name in self.users:
            _check_user_name(name)
        if self.require_auth and not self.users:
            raise ValueError("require_auth needs at least one account")


def _check_user_name(name: str) -> None:
    if not name or ":" in name or "\x00" in name or any(c.isspace() for c in name):
        raise ValueError(Said("serve", "config_account_name", name=repr(name)))


def parse_accounts(specs: Iterable[str]) -> dict[str, str]:
    """Turn `NAME:PASSWORD` options into an account table (the password may hold ':')."""
    accounts: dict[str, str] = {}
    for spec in specs:
        name, colon, password = spec.partition(":")
        if not colon or not password:
            raise ValueError(Said("serve", "config_account", spec=repr(spec)))
        _check_user_name(name)
        if "\x00" in password:
            raise ValueError(Said("serve", "config_password_nul", name=repr(name)))
        accounts[name] = password
    return accounts
