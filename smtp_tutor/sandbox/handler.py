"""What the sandbox decides: accounts, address triggers, limits, and storing the message.

aiosmtpd calls these hooks once a command has passed its syntax checks; each returns the
reply line. One handler serves every connection of a Sandbox, so it also holds what the
connections share: the greylist memory and the set of open connections. It never opens a
connection anywhere - accepted mail goes into the Maildir and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session, TLSSetupException

from smtp_tutor.sandbox import activity
from smtp_tutor.sandbox.accounts import AccountMailboxes
from smtp_tutor.sandbox.config import SandboxConfig
from smtp_tutor.sandbox.triggers import Greylist, Trigger, find_trigger
from smtp_tutor.sandbox.writer import MailboxWriter

if TYPE_CHECKING:
    from smtp_tutor.sandbox.protocol import SandboxSMTP

log = logging.getLogger(__name__)

NULL_SENDER = "<>"  # how aiosmtpd hands over MAIL FROM:<>


class AuthIdentity:
    """Who authenticated and how; kept in `session.auth_data`."""

    def __init__(self, user: str, mechanism: str) -> None:
        self.user = user
        self.mechanism = mechanism

    def __repr__(self) -> str:
        return f"AuthIdentity({self.user!r}, {self.mechanism!r})"


class SandboxHandler:
    def __init__(
        self,
        config: SandboxConfig,
        accounts: AccountMailboxes,
        report: activity.Report | None = None,
    ) -> None:
        self.config = config
        self.accounts = accounts
        self.mailbox = accounts.shared
        self.writer = MailboxWriter(accounts.shared, file=accounts.file)
        self.greylist = Greylist(config.greylist_delay)
        self.connections: set[SandboxSMTP] = set()
        #: Private EHLO keywords to advertise (the web view's address), set by the Sandbox.
        self.ehlo_keywords: list[str] = []
        self._report = report

    # Activity ---------------------------------------------------------------------------

    @property
    def reporting(self) -> bool:
        return self._report is not None

    def report(self, event: str, **fields: str) -> None:
        """Tell the caller (`serve` prints it) about a client; fields must be safe already."""
        if self._report is not None:
            self._report(event, fields)

    # Accounts ---------------------------------------------------------------------------

    def password_of(self, user: str) -> str | None:
        return self.config.users.get(user)

    def authenticate(
        self,
        server: SandboxSMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """aiosmtpd's authenticator for PLAIN and LOGIN.

        A failure must say handled=False, or aiosmtpd sends no reply and the client hangs.
        """
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode("utf-8", "replace")
            expected = self.password_of(user)
            given = auth_data.password
            if expected is not None and hmac.compare_digest(expected.encode("utf-8"), given):
                return AuthResult(success=True, auth_data=AuthIdentity(user, mechanism))
        return AuthResult(success=False, handled=False)

    # Transaction ------------------------------------------------------------------------

    async def handle_MAIL(
        self,
        server: SandboxSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if address != NULL_SENDER:
            trigger = find_trigger("MAIL", address)
            if trigger is not None and trigger.action == "reply":
                return trigger.reply_for(address)
        # A hook that returns a reply must record the sender itself (aiosmtpd only does
        # so when no hook answers).
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        shown = "" if address == NULL_SENDER else address
        return f"250 2.1.0 Sender <{shown}> OK"

    async def handle_RCPT(
        self,
        server: SandboxSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.config.max_recipients:
            return f"452 4.5.3 Too many recipients (at most {self.config.max_recipients})"
        trigger = find_trigger("RCPT", address)
        if trigger is not None:
            refusal = await self._apply(trigger, server, session, envelope, address)
            if refusal is not None:
                return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return f"250 2.1.5 Recipient <{address}> OK (stored locally, never relayed)"

    async def _apply(
        self,
        trigger: Trigger,
        server: SandboxSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
    ) -> str | None:
        """Carry out a RCPT trigger; None means go on and accept the recipient."""
        if trigger.action == "reply":
            return trigger.reply_for(address)
        if trigger.action == "greylist":
            client = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
            wait = self.greylist.wait_left(client, envelope.mail_from or "", address)
            return trigger.reply_for(address, wait) if wait > 0 else None
        if trigger.action == "delay":
            await server.pause(self.config.slow_delay)
            return None
        if trigger.action == "drop":
            await server.drop_connection()
        return None  # "at_data" is handled after the message

    async def handle_DATA(self, server: SandboxSMTP, session: Session, envelope: Envelope) -> str:
        for command, address in [
            ("MAIL", envelope.mail_from or ""),
            *(("RCPT", rcpt) for rcpt in envelope.rcpt_tos),
        ]:
            trigger = find_trigger(command, address)
            if trigger is not None and trigger.action == "at_data":
                return trigger.reply_for(address)
        raw = envelope.original_content or b""
        record = self._envelope_record(server, session, envelope, len(raw))
        if server.recording is not None:  # the web view links the message to its dialogue
            record["session"] = server.recording.id
        key = await self.writer.add(raw, record)  # the files are in place when it returns
        if server.recording is not None:
            server.recording.stored(key, record, raw)
        log.info("stored message %s from %r for %r", key, record["mail_from"], envelope.rcpt_tos)
        if self.reporting:
            self.report(
                "stored",
                peer=activity.peer_label(session.peer),
                key=key,
                sender=activity.addresses([record["mail_from"]]),
                recipients=activity.addresses(envelope.rcpt_tos),
                subject=activity.subject_of(raw),
                size=str(len(raw)),
                user=activity.printable(record["auth_user"] or "-"),
            )
        return f"250 2.0.0 Ok: stored as {key}; nothing is relayed"

    def _envelope_record(
        self, server: SandboxSMTP, session: Session, envelope: Envelope, size: int
    ) -> dict[str, Any]:
        peer = session.peer if isinstance(session.peer, tuple) else (str(session.peer), None)
        identity = session.auth_data if isinstance(session.auth_data, AuthIdentity) else None
        mail_from = envelope.mail_from or ""
        record: dict[str, Any] = {
            "received_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "client": {"address": peer[0], "port": peer[1]},
            "helo": session.host_name,
            "esmtp": session.extended_smtp,
            "mail_from": "" if mail_from == NULL_SENDER else mail_from,
            "mail_options": list(envelope.mail_options),
            "rcpt_tos": list(envelope.rcpt_tos),
            "rcpt_options": list(envelope.rcpt_options),
            "smtputf8": envelope.smtp_utf8,
            "auth_user": identity.user if identity else None,
            "auth_mechanism": identity.mechanism if identity else None,
            "tls": server.tls_info(),
            "size": size,
            "server": {"hostname": self.config.hostname, "relayed": False},
        }
        record["accounts"] = self.accounts.filed_to(record)
        return record

    def close(self, timeout: float = 5.0) -> None:
        """Stop the Maildir writer threads once what is queued is written."""
        self.writer.close(timeout)

    # Other commands ---------------------------------------------------------------------

    async def handle_RSET(self, server: SandboxSMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 OK: transaction reset"

    async def handle_NOOP(
        self, server: SandboxSMTP, session: Session, envelope: Envelope, arg: str | None
    ) -> str:
        return "250 2.0.0 OK"

    async def handle_VRFY(
        self, server: SandboxSMTP, session: Session, envelope: Envelope, address: str
    ) -> str:
        return f"252 2.0.0 <{address}>: cannot VRFY, but mail to it would be accepted and stored"

    async def handle_QUIT(self, server: SandboxSMTP, session: Session, envelope: Envelope) -> str:
        return f"221 2.0.0 {self.config.hostname} closing connection"

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):  # the client's doing; the protocol reported it
            return "454 4.7.0 TLS not available due to temporary reason"  # not sent: it hangs up
        log.exception("sandbox error", exc_info=error)
        return "451 4.3.0 Local error in the sandbox; try again"
