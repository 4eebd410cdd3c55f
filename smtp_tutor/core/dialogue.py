"""The SMTP dialogue as a state machine, seen from the client (RFC 5321 §4.1.4, RFC 3207, RFC 4954).

Everything that decides where a session stands lives here, and this module does not know
whether the lines came from a keyboard, a script or a test. Theory of operation:

* The client tells the machine every line it puts on the wire (`send`) and every reply that
  comes back (`receive`). Replies answer commands in order, so several commands may be in
  flight at once (PIPELINING): the oldest unanswered one owns the next reply.
* The rules are two tables below, read from the verb table (`data/verbs.toml`, one row a
  verb): in which phases a verb may be sent (`ALLOWED_PHASES`, the checker's sequence rules
  come from it) and where a positive reply takes the session (`SUCCESS_TRANSITIONS`). What
  is logic rather than a fact stays here: RSET, STARTTLS, QUIT, BDAT LAST and AUTH's
  challenges. A negative reply never moves the phase, except that a final reply to the
  message ends the transaction whatever its code, and 421 ends the session anywhere.
* Orthogonal facts are flags, not phases: TLS active, authenticated (and as whom), an AUTH
  exchange waiting for the client's answer, a STARTTLS waiting for the handshake.
* Forgetting is deliberate: STARTTLS makes the client forget the capabilities and return to
  the greeted state (RFC 3207 §4.2); a new EHLO or RSET ends the transaction (§4.1.1.1, .5).
"""

from __future__ import annotations

import base64
import binascii
import collections

from smtp_tutor.core.auth import user_in_answer
from smtp_tutor.core.catalogue import Said
from smtp_tutor.core.command_line import Command, parse_command, parse_path_argument, wire_bytes
from smtp_tutor.core.phases import Phase
from smtp_tutor.core.records import field, record
from smtp_tutor.core.replies import Reply
from smtp_tutor.core.verbs import verbs

__all__ = [
    "ALLOWED_PHASES",
    "AUTH_RESPONSE",
    "DATA_LINE",
    "END_OF_DATA",
    "EXPECTED_CODES",
    "GREETING",
    "GROUP_ENDERS",
    "SUCCESS_TRANSITIONS",
    "Capabilities",
    "Dialogue",
    "Outcome",
    "Phase",
    "Sent",
    "ends_group",
]


#: A pseudo-verb for the "." that ends a message; its reply is the one that matters most.
END_OF_DATA = "<end of data>"
#: A pseudo-verb for a line answering a 334 challenge.
AUTH_RESPONSE = "<auth response>"
#: A pseudo-verb for the server's greeting, answered before anything is sent.
GREETING = "<greeting>"
#: A pseudo-verb for a line of message text: no reply answers it.
DATA_LINE = "<data line>"

#: Where each verb may be sent (§4.1.4), from data/verbs.toml; a verb sent elsewhere draws
#: 503 from a strict server. In the table's order: `valid_verbs` lists them so.
ALLOWED_PHASES: dict[str, frozenset[Phase]] = {
    name: row.phases for name, row in verbs().items() if row.phases
}

#: Where a positive reply takes the session. RSET's target depends on whether EHLO was done.
SUCCESS_TRANSITIONS: dict[str, Phase] = {
    GREETING: Phase.GREETED,
    **{name: row.success for name, row in verbs().items() if row.success is not None},
    END_OF_DATA: Phase.READY,
}

#: The codes that mean "it worked" for each verb (§4.3.2); an answer to a 334 challenge
#: expects what AUTH expects.
EXPECTED_CODES: dict[str, tuple[int, ...]] = {
    GREETING: (220,),
    **{name: row.codes for name, row in verbs().items() if row.codes},
    AUTH_RESPONSE: verbs()["AUTH"].codes,
    END_OF_DATA: (250,),
}

#: Commands that must end a pipelined group: what follows depends on their answer
#: (RFC 2920 §3.1: EHLO, DATA, VRFY, EXPN, TURN, QUIT, NOOP; STARTTLS per RFC 3207 §4.2,
#: AUTH because the next line answers its 334, BDAT because a refused chunk changes what
#: the next one means, ETRN by RFC 1985's reply semantics). `ends_group` in data/verbs.toml.
GROUP_ENDERS = frozenset(name for name, row in verbs().items() if row.ends_group)


def ends_group(verb: str) -> bool:
    """Whether a command must be the last of a pipelined group (wait for its reply)."""
    return verb.upper() in GROUP_ENDERS


@record(frozen=True)
class Capabilities:
    """What one EHLO reply advertised: keywords with their parameters."""

    server_name: str = ""
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_ehlo(cls, reply: Reply) -> Capabilities:
        if not reply.lines:
            return cls()
        keywords: dict[str, tuple[str, ...]] = {}
        for line in reply.lines[1:]:
            words = line.split()
            if not words:
                continue
            keyword, params = words[0].upper(), tuple(words[1:])
            if keyword.startswith("AUTH="):  # the pre-RFC form some servers still send
                keyword, params = "AUTH", (keyword[5:], *params)
            keywords[keyword] = tuple(dict.fromkeys(keywords.get(keyword, ()) + params))
        server_name = reply.lines[0].split()[0] if reply.lines[0].split() else ""
        return cls(server_name=server_name, keywords=keywords)

    def has(self, keyword: str) -> bool:
        return keyword.upper() in self.keywords

    def params(self, keyword: str) -> tuple[str, ...]:
        return self.keywords.get(keyword.upper(), ())

    @property
    def size_limit(self) -> int | None:
        """The SIZE limit in octets (RFC 1870); None if not advertised or 0 (no fixed limit)."""
        params = self.params("SIZE")
        if params and params[0].isdigit() and int(params[0]) > 0:
            return int(params[0])
        return None

    @property
    def auth_mechanisms(self) -> tuple[str, ...]:
        return tuple(p.upper() for p in self.params("AUTH"))


@record(frozen=True, slots=True)
class Sent:
    """A line on the wire still waiting for its reply."""

    verb: str  # a real verb, or one of the pseudo-verbs above
    command: Command | None
    wire: bytes = b""  # exactly what goes on the wire for this line, CRLF included


@record(frozen=True, slots=True)
class Outcome:
    """What one reply did to the session; the console and replayer render it."""

    reply: Reply
    answered: Sent | None  # None: nothing was waiting (an unsolicited reply)
    phase_before: Phase
    phase_after: Phase
    success: bool
    start_tls: bool = False  # the connection must do the TLS handshake now
    auth_challenge: bool = False  # a 334: the next line is an answer to the challenge
    authenticated: bool = False
    closed: bool = False

    @property
    def unsolicited(self) -> bool:
        return self.answered is None and self.reply.code != 421


class Dialogue:
    """Client-side view of one SMTP session, driven by lines sent and replies received."""

    def __init__(self) -> None:
        self.phase = Phase.AWAITING_GREETING
        self.greeting: Reply | None = None
        self.capabilities: Capabilities | None = None  # None until EHLO succeeds
        self.said_hello: str | None = None  # "EHLO" or "HELO" once one succeeded
        self.tls_active = False
        self.tls_pending = False
        self.tls_version: str | None = None
        self.tls_cipher: str | None = None
        self.auth_mechanism: str | None = None  # set while an AUTH exchange is in progress
        self.awaiting_auth_response = False
        self.authenticated_user: str | None = None
        self.authenticated = False
        # The open transaction's MAIL and RCPT commands, their paths parsed when asked
        # (`mail_from`, `mail_parameters`, `recipients`): replay's planner never asks.
        self._mail_command: Command | None = None
        self._rcpt_commands: list[Command] = []
        self._recipients: list[str] = []  # the paths of the first RCPT commands, parsed
        self.data_lines = 0
        self.close_reason: str | None = None
        self._in_flight: collections.deque[Sent] = collections.deque()
        self._dots_in_flight = 0  # END_OF_DATA lines in _in_flight: sending_data asks per line
        self._auth_user_guess: str | None = None

    # -- what the client sends ---------------------------------------------------------

    @property
    def mail_from(self) -> str | None:
        """The reverse-path of the open transaction (None: no MAIL accepted yet)."""
        command = self._mail_command
        if command is None:
            return None
        path = parse_path_argument(command)
        return path.path if path else command.argument

    @property
    def mail_parameters(self) -> dict[str, str | None]:
        """The ESMTP parameters of the transaction's MAIL: SIZE=, BODY=, SMTPUTF8 …"""
        command = self._mail_command
        path = parse_path_argument(command) if command is not None else None
        return dict(path.parameters) if path else {}

    @property
    def recipients(self) -> list[str]:
        """The forward-paths accepted in the open transaction, in order."""
        parsed = self._recipients
        for command in self._rcpt_commands[len(parsed) :]:
            path = parse_path_argument(command)
            parsed.append(path.path if path else command.argument)
        return parsed

    @property
    def in_flight(self) -> tuple[Sent, ...]:
        """Lines sent whose replies have not arrived yet, oldest first."""
        return tuple(self._in_flight)

    @property
    def sending_data(self) -> bool:
        """True while typed lines are message text rather than commands."""
        return self.phase is Phase.DATA and not self._dots_in_flight

    def send(self, line: str) -> Sent:
        """Record a line (without CRLF) as it goes on the wire; `Sent.wire` is its bytes."""
        wire = wire_bytes(line)
        if self.phase is Phase.DATA and not self._dots_in_flight:  # sending_data
            if line == ".":
                sent = Sent(END_OF_DATA, None, wire)
                self._in_flight.append(sent)
                self._dots_in_flight += 1
                return sent
            self.data_lines += 1
            return Sent(DATA_LINE, None, wire)
        if self.awaiting_auth_response:
            self.awaiting_auth_response = False
            self._guess_auth_user(line, initial=False)
            sent = Sent(AUTH_RESPONSE, None, wire)
            self._in_flight.append(sent)
            return sent
        command = parse_command(line)
        sent = Sent(command.verb, command, wire)
        self._in_flight.append(sent)
        if command.verb == "AUTH":
            words = command.argument.split()
            self.auth_mechanism = words[0].upper() if words else None
            self._auth_user_guess = None
            if len(words) > 1:
                self._guess_auth_user(words[1], initial=True)
        return sent

    # -- what the server replies -------------------------------------------------------

    def receive(self, reply: Reply) -> Outcome:
        """Match a reply to the oldest line waiting for one and move the session on."""
        before = self.phase
        if self.phase is Phase.AWAITING_GREETING and not self._greeting_answered():
            answered: Sent | None = Sent(GREETING, None)
        elif self._in_flight:
            answered = self._in_flight.popleft()
            if answered.verb == END_OF_DATA:
                self._dots_in_flight -= 1
        else:
            answered = None
        code = reply.code
        verb = answered.verb if answered else None
        success = verb is not None and code in EXPECTED_CODES.get(verb, ())
        flags: dict[str, bool] = {}

        if code == 421:
            self._close(Said("problems", "closed_421"))
        elif verb == GREETING:
            self.greeting = reply
            if success or code == 554:  # 554 "no service here": the client may only QUIT
                self.phase = Phase.GREETED
        elif verb is not None:
            flags = self._apply(verb, answered, reply, success)

        return Outcome(
            reply=reply,
            answered=answered,
            phase_before=before,
            phase_after=self.phase,
            success=success,
            closed=self.phase is Phase.CLOSED and before is not Phase.CLOSED,
            **flags,
        )

    def tls_established(self, version: str | None = None, cipher: str | None = None) -> None:
        """The handshake after STARTTLS succeeded: forget everything learned in clear text."""
        self.tls_pending = False
        self.tls_active = True
        self.tls_version, self.tls_cipher = version, cipher
        self.capabilities = None
        self.said_hello = None
        self.authenticated = False
        self.authenticated_user = None
        self._reset_transaction()
        if self.phase is not Phase.CLOSED:
            self.phase = Phase.GREETED

    def tls_at_connect(self, version: str | None = None, cipher: str | None = None) -> None:
        """Implicit TLS (port 465): the session starts encrypted."""
        self.tls_active = True
        self.tls_version, self.tls_cipher = version, cipher

    def connection_lost(self, reason: str = "the connection was closed") -> None:
        self._close(reason)

    # -- questions the console asks ----------------------------------------------------

    @property
    def projected_phase(self) -> Phase:
        """The phase once every command in flight succeeds: what a pipelined line follows."""
        phase = self.phase
        for sent in self._in_flight:
            if sent.verb == "RSET":
                phase = Phase.READY if self.said_hello or phase is not Phase.GREETED else phase
            elif sent.verb in SUCCESS_TRANSITIONS:
                phase = SUCCESS_TRANSITIONS[sent.verb]
        return phase

    def allowed(self, verb: str) -> bool:
        """Whether sending `verb` now follows the RFC 5321 sequence (pipelining included)."""
        return self.projected_phase in ALLOWED_PHASES.get(verb.upper(), frozenset())

    def valid_verbs(self) -> list[str]:
        """Verbs that make sense now, the likely next step first."""
        order = {
            Phase.GREETED: ["EHLO", "HELO"],
            Phase.READY: ["MAIL", "STARTTLS", "AUTH", "EHLO"],
            Phase.MAIL: ["RCPT"],
            Phase.RCPT: ["RCPT", "DATA"],
        }.get(self.phase, [])
        if self.phase is Phase.READY:
            caps = self.capabilities or Capabilities()
            if self.tls_active or not caps.has("STARTTLS"):
                order.remove("STARTTLS")
            if self.authenticated or not caps.has("AUTH"):
                order.remove("AUTH")
        rest = [verb for verb, phases in ALLOWED_PHASES.items() if self.phase in phases]
        return list(dict.fromkeys(order + [v for v in rest if v not in ("STARTTLS", "AUTH")]))

    @property
    def phase_label(self) -> str:
        """Short label for a toolbar: greeted / EHLO / MAIL / RCPT×2 / DATA."""
        if self.phase is Phase.READY:
            return self.said_hello or "ready"
        if self.phase is Phase.RCPT:
            return f"RCPT×{len(self._rcpt_commands)}"
        if self.phase in (Phase.MAIL, Phase.DATA):
            return self.phase.value.upper()
        return self.phase.value

    # -- internals ---------------------------------------------------------------------

    def _greeting_answered(self) -> bool:
        return self.greeting is not None

    @property
    def service_refused(self) -> bool:
        """The greeting was 554: this server will not talk SMTP with us (§3.1)."""
        return self.greeting is not None and self.greeting.code == 554

    def _apply(self, verb: str, sent: Sent | None, reply: Reply, success: bool) -> dict[str, bool]:
        flags: dict[str, bool] = {}
        command = sent.command if sent else None
        if verb in ("AUTH", AUTH_RESPONSE):
            return self._apply_auth(reply)
        if verb == END_OF_DATA:
            # Whatever the code, the transaction is over (§4.1.1.4, §3.3).
            self._reset_transaction()
            self.phase = Phase.READY
            return flags
        if not success:
            return flags
        if verb == "EHLO":
            self.capabilities = Capabilities.from_ehlo(reply)
            self.said_hello = "EHLO"
            self._reset_transaction()
        elif verb == "HELO":
            self.capabilities = Capabilities()
            self.said_hello = "HELO"
            self._reset_transaction()
        elif verb == "MAIL" and command is not None:
            self._mail_command = command
        elif verb == "RCPT" and command is not None:
            self._rcpt_commands.append(command)
        elif verb == "DATA":
            self.data_lines = 0
        elif verb == "BDAT" and command is not None:
            # RFC 3030: each chunk gets its 250; the one marked LAST ends the transaction.
            if "LAST" in command.argument.upper().split()[1:]:
                self._reset_transaction()
                self.phase = Phase.READY
            return flags
        elif verb == "RSET":
            self._reset_transaction()
            self.phase = Phase.READY if self.said_hello else Phase.GREETED
            return flags
        elif verb == "STARTTLS":
            self.tls_pending = True
            flags["start_tls"] = True
            return flags
        elif verb == "QUIT":
            self._close(Said("problems", "closed_quit"))
            return flags
        target = SUCCESS_TRANSITIONS.get(verb)
        if target is not None:
            self.phase = target
        return flags

    def _apply_auth(self, reply: Reply) -> dict[str, bool]:
        if reply.code == 334:
            self.awaiting_auth_response = True
            return {"auth_challenge": True}
        self.awaiting_auth_response = False
        self.auth_mechanism = None
        if reply.code == 235:
            self.authenticated = True
            self.authenticated_user = self._auth_user_guess
            return {"authenticated": True}
        return {}

    def _guess_auth_user(self, answer: str, initial: bool) -> None:
        """Learn the user name (never the password) from the first answer, for the toolbar."""
        if self._auth_user_guess is not None or answer in ("*", "="):
            return
        try:
            decoded = base64.b64decode(answer, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return
        mechanism = self.auth_mechanism or ""
        if mechanism == "LOGIN":  # the first LOGIN answer is the user name itself
            self._auth_user_guess = None if decoded.startswith("\0") else decoded
        elif not (mechanism == "CRAM-MD5" and initial):
            self._auth_user_guess = user_in_answer(mechanism, decoded)

    def _reset_transaction(self) -> None:
        self._mail_command = None
        self._rcpt_commands = []
        self._recipients = []
        self.data_lines = 0
        if self.phase in (Phase.MAIL, Phase.RCPT, Phase.DATA):
            self.phase = Phase.READY

    def _close(self, reason: str) -> None:
        if self.phase is not Phase.CLOSED:
            self.close_reason = reason
        self.phase = Phase.CLOSED
        self._in_flight.clear()
        self._dots_in_flight = 0
        self.awaiting_auth_response = False
        self.tls_pending = False
