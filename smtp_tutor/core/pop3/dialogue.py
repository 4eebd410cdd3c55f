"""The POP3 dialogue as a state machine, seen from the client (RFC 1939, 2449, 2595, 5034).

Everything that decides where a POP3 session stands lives here, and this module does not
know whether the lines came from a keyboard, a script or a test. Theory of operation:

* RFC 1939 has three states: AUTHORIZATION until a login succeeds, TRANSACTION while mail is
  read and marked, UPDATE once QUIT is sent from TRANSACTION (the server removes what DELE
  marked, then closes). CLOSED is ours: nothing more can be said.
* The rules are tables below. `VALID_IN`: which commands each state accepts (the checker and
  completion read it). `TRANSITIONS`: (state, command, status) → the next state; a response
  not in it moves nothing. `EXPECT`: which answers are multiline, so the parser knows where
  a response ends — POP3's bytes alone cannot say.
* The client tells the machine every line it sends (`send` returns the bytes to write) and
  every byte that comes back (`receive` returns an `Outcome` per response, pairing it with
  the line it answers). Responses come in order, so with PIPELINING (RFC 2449 §6.6) several
  lines may be in flight: the oldest unanswered one owns the next response.
* Orthogonal facts are fields, not states: the USER given, an AUTH exchange waiting for the
  client's answer, TLS active or pending, what CAPA listed, which messages DELE marked.
* Forgetting is deliberate: after STLS's +OK whatever arrived before the handshake is
  dropped (plain text an attacker could have injected) and the capabilities are forgotten
  (RFC 2595 §4); RSET unmarks; a connection lost outside UPDATE commits nothing (§6).
"""

from __future__ import annotations

import collections
import re
from enum import StrEnum

from smtp_tutor.core.auth import AuthError, b64decode_bytes
from smtp_tutor.core.catalogue import Said
from smtp_tutor.core.dialogue import AUTH_RESPONSE, GREETING
from smtp_tutor.core.pop3.command_line import Pop3Command, encode_line, parse_command, parse_number
from smtp_tutor.core.pop3.responses import Expect, Response, ResponseParser, Status
from smtp_tutor.core.records import field, record, replace

__all__ = [
    "AUTH_RESPONSE",
    "EXPECT",
    "GREETING",
    "GROUP_ENDERS",
    "TRANSITIONS",
    "VALID_IN",
    "Capabilities",
    "Dialogue",
    "Outcome",
    "Sent",
    "State",
    "apop_timestamp",
    "ends_group",
]


class State(StrEnum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"
    CLOSED = "CLOSED"


_AUTHORIZATION = frozenset({State.AUTHORIZATION})
_TRANSACTION = frozenset({State.TRANSACTION})
_EITHER = _AUTHORIZATION | _TRANSACTION

#: Where each command may be sent (RFC 1939 §4–§7, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4,
#: RFC 6856 §2–§3). Elsewhere a server answers -ERR.
VALID_IN: dict[str, frozenset[State]] = {
    "USER": _AUTHORIZATION,
    "PASS": _AUTHORIZATION,
    "APOP": _AUTHORIZATION,
    "AUTH": _AUTHORIZATION,
    "STLS": _AUTHORIZATION,
    "UTF8": _AUTHORIZATION,
    "CAPA": _EITHER,
    "LANG": _EITHER,
    "QUIT": _EITHER,
    "STAT": _TRANSACTION,
    "LIST": _TRANSACTION,
    "UIDL": _TRANSACTION,
    "TOP": _TRANSACTION,
    "RETR": _TRANSACTION,
    "DELE": _TRANSACTION,
    "RSET": _TRANSACTION,
    "NOOP": _TRANSACTION,
}

_OK, _ERR = Status.OK, Status.ERR

#: Where a response takes the session: (state, command, status) → next state. QUIT from
#: TRANSACTION enters UPDATE whatever the answer: -ERR there means some removals failed.
TRANSITIONS: dict[tuple[State, str, Status], State] = {
    (State.AUTHORIZATION, "PASS", _OK): State.TRANSACTION,
    (State.AUTHORIZATION, "APOP", _OK): State.TRANSACTION,
    (State.AUTHORIZATION, "AUTH", _OK): State.TRANSACTION,  # with an initial response
    (State.AUTHORIZATION, AUTH_RESPONSE, _OK): State.TRANSACTION,
    (State.AUTHORIZATION, "QUIT", _OK): State.CLOSED,
    (State.AUTHORIZATION, "QUIT", _ERR): State.CLOSED,
    (State.TRANSACTION, "QUIT", _OK): State.UPDATE,
    (State.TRANSACTION, "QUIT", _ERR): State.UPDATE,
}

#: What the answer looks like: (command, has an argument) → kind; anything else is one line.
#: A bare AUTH lists the mechanisms (an old habit most servers keep); AUTH with a mechanism
#: starts a SASL exchange, whose "+ " challenges are answered by lines of their own.
EXPECT: dict[tuple[str, bool], Expect] = {
    ("LIST", False): Expect.MULTILINE,
    ("UIDL", False): Expect.MULTILINE,
    ("LANG", False): Expect.MULTILINE,
    ("AUTH", False): Expect.MULTILINE,
    ("AUTH", True): Expect.SASL,
    (AUTH_RESPONSE, False): Expect.SASL,
    (AUTH_RESPONSE, True): Expect.SASL,
    **{(verb, has): Expect.MULTILINE for verb in ("CAPA", "RETR", "TOP") for has in (False, True)},
}

#: Commands that must end a pipelined group: what follows depends on their answer (STLS
#: changes the connection, AUTH's next line answers a challenge, QUIT ends the session).
GROUP_ENDERS = frozenset({"STLS", "AUTH", "QUIT"})

_TIMESTAMP = re.compile(r"<[^<>\s]*@[^<>\s]*>")


def ends_group(verb: str) -> bool:
    """Whether a command must be the last of a pipelined group (wait for its answer)."""
    return verb.upper() in GROUP_ENDERS


def apop_timestamp(greeting_text: str) -> str | None:
    """The ``<process-ID.clock@hostname>`` a greeting offers for APOP (RFC 1939 §7), if any."""
    match = _TIMESTAMP.search(greeting_text)
    return match.group(0) if match else None


@record(frozen=True)
class Capabilities:
    """What one CAPA response listed (RFC 2449 §5): capability names and their arguments."""

    entries: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_response(cls, response: Response) -> Capabilities:
        entries: dict[str, tuple[str, ...]] = {}
        for line in response.lines:
            words = line.split()
            if words:
                entries[words[0].upper()] = tuple(words[1:])
        return cls(entries)

    def has(self, name: str) -> bool:
        return name.upper() in self.entries

    def params(self, name: str) -> tuple[str, ...]:
        return self.entries.get(name.upper(), ())

    @property
    def sasl_mechanisms(self) -> tuple[str, ...]:
        return tuple(p.upper() for p in self.params("SASL"))

    @property
    def login_delay(self) -> int | None:
        """Seconds the server wants between logins (RFC 2449 §6.5), if it said."""
        params = self.params("LOGIN-DELAY")
        return parse_number(params[0]) if params else None


@record(frozen=True)
class Sent:
    """A line on the wire, waiting for its answer."""

    verb: str  # the keyword, upper-cased, or AUTH_RESPONSE / GREETING
    command: Pop3Command | None  # None for an answer to a challenge and for the greeting
    wire: bytes = b""  # exactly the bytes written, CRLF included
    expect: Expect = Expect.SINGLE
    secret: bool = False  # carries a password, an APOP digest or a SASL answer: mask it


@record(frozen=True)
class Outcome:
    """What one response did to the session; a console or a replayer renders it."""

    response: Response
    answered: Sent | None  # None: nothing was waiting (an unsolicited response)
    state_before: State
    state_after: State
    success: bool  # +OK
    start_tls: bool = False  # STLS accepted: the connection must do the handshake now
    auth_challenge: bool = False  # "+ ": the next line answers the challenge
    authenticated: bool = False
    discarded: bytes = b""  # bytes after STLS's +OK, before the handshake: never trusted

    @property
    def closed(self) -> bool:
        return self.state_after is State.CLOSED and self.state_before is not State.CLOSED

    @property
    def unsolicited(self) -> bool:
        return self.answered is None


class Dialogue:
    """Client-side view of one POP3 session, driven by lines sent and bytes received."""

    def __init__(self, parser: ResponseParser | None = None) -> None:
        self.state = State.AUTHORIZATION
        self.greeting: Response | None = None
        self.apop_timestamp: str | None = None
        self.capabilities: Capabilities | None = None  # None until CAPA succeeds
        self.capabilities_state: State | None = None  # the state CAPA was asked in
        self.user: str | None = None  # USER accepted, PASS not answered yet
        self.authenticated_user: str | None = None
        self.auth_mechanism: str | None = None  # set while an AUTH exchange runs
        self.awaiting_auth_response = False
        self.tls_active = False
        self.tls_pending = False
        self.tls_version: str | None = None
        self.tls_cipher: str | None = None
        self.message_count: int | None = None  # from STAT: messages not marked with DELE
        self.last_number: int | None = None  # the highest message number, from STAT
        self.maildrop_size: int | None = None
        self.sizes: dict[int, int] = {}  # from LIST
        self.uids: dict[int, str] = {}  # from UIDL
        self.deleted: set[int] = set()  # marked by DELE in this session
        self.removed: frozenset[int] | None = None  # what UPDATE removed (QUIT's +OK)
        self.close_reason: str | None = None
        self._in_flight: collections.deque[Sent] = collections.deque()
        self._parser = parser or ResponseParser()
        self._parser.expect(Expect.SINGLE)  # the greeting
        self._auth_answers = 0
        self._auth_user_guess: str | None = None

    # -- what the client sends ---------------------------------------------------------

    @property
    def in_flight(self) -> tuple[Sent, ...]:
        """Lines sent whose answers have not arrived yet, oldest first."""
        return tuple(self._in_flight)

    def send(self, line: str) -> Sent:
        """Record a line (without CRLF) as it goes out; `Sent.wire` holds its bytes.

        Raises `LineError` (nothing is recorded) when the line holds CR or LF.
        """
        wire = encode_line(line)
        if self.awaiting_auth_response:
            self.awaiting_auth_response = False
            self._guess_auth_user(line)
            sent = Sent(AUTH_RESPONSE, None, wire, Expect.SASL, secret=line.strip() != "*")
        else:
            command = parse_command(line)
            verb, args = command.keyword, command.args
            expect = EXPECT.get((verb, bool(args)), Expect.SINGLE)
            secret = verb in ("PASS", "APOP") or (verb == "AUTH" and args[1:] not in ((), ("=",)))
            sent = Sent(verb, command, wire, expect, secret)
            if verb == "AUTH" and args:
                self.auth_mechanism = args[0].upper()
                self._auth_answers, self._auth_user_guess = 0, None
                if len(args) > 1:
                    self._guess_auth_user(args[1])
        self._in_flight.append(sent)
        self._parser.expect(sent.expect)
        return sent

    # -- what the server answers -------------------------------------------------------

    def receive(self, data: bytes) -> list[Outcome]:
        """Bytes from the server; an `Outcome` for every response they complete."""
        return self._apply_all(self._parser.feed(data))

    def receive_eof(self) -> list[Outcome]:
        """The server closed the connection: half-received responses, then the session ends."""
        outcomes = self._apply_all(self._parser.feed_eof())
        self.connection_lost()
        return outcomes

    def tls_established(self, version: str | None = None, cipher: str | None = None) -> None:
        """The handshake after STLS succeeded: what CAPA said in clear text is forgotten."""
        self.tls_pending = False
        self.tls_active = True
        self.tls_version, self.tls_cipher = version, cipher
        self.capabilities = None
        self.capabilities_state = None

    def tls_at_connect(self, version: str | None = None, cipher: str | None = None) -> None:
        """Implicit TLS (port 995): the session starts encrypted."""
        self.tls_active = True
        self.tls_version, self.tls_cipher = version, cipher

    def connection_lost(self) -> None:
        """The connection ended; outside UPDATE nothing marked is removed (RFC 1939 §6)."""
        if self.state is State.CLOSED:
            return
        if self.state is State.TRANSACTION and self.deleted:
            count = len(self.deleted)
            self.close_reason = Said("pop3_problems", "closed_dropped_marked", count=count)
        elif self.state is not State.UPDATE:  # UPDATE already said why
            self.close_reason = Said("pop3_problems", "closed_dropped")
        self._close()

    # -- questions the console and the checker ask -------------------------------------

    @property
    def greeted(self) -> bool:
        return self.greeting is not None

    @property
    def service_refused(self) -> bool:
        """The greeting was not +OK: this server will not serve the connection."""
        return self.greeting is not None and not self.greeting.ok

    @property
    def projected_state(self) -> State:
        """The state once every line in flight succeeds: what a pipelined line follows."""
        state = self.state
        for sent in self._in_flight:
            state = self._target(state, sent, Status.OK) or state
        return state

    @property
    def projected_user(self) -> str | None:
        """The USER name a PASS sent now would go with, counting a USER still in flight."""
        user = self.user
        for sent in self._in_flight:
            if sent.verb == "USER" and sent.command is not None:
                user = sent.command.argument.strip()
            elif sent.verb in ("PASS", "APOP", "AUTH", "QUIT"):
                user = None
        return user

    def allowed(self, verb: str) -> bool:
        """Whether `verb` is valid in the state it would arrive in (pipelining included)."""
        return self.projected_state in VALID_IN.get(verb.upper(), frozenset())

    def valid_commands(self) -> list[str]:
        """Commands that make sense now, the likely next step first (for completion)."""
        caps = self.capabilities
        if self.state is State.AUTHORIZATION:
            order = ["PASS", "USER"] if self.user else ["USER", "CAPA"]
            if not self.tls_active and (caps is None or caps.has("STLS")):
                order.append("STLS")
            if caps is None or caps.has("SASL"):
                order.append("AUTH")
            if self.apop_timestamp:
                order.append("APOP")
        elif self.state is State.TRANSACTION:
            order = ["STAT", "LIST", "UIDL", "TOP", "RETR", "DELE", "RSET", "NOOP", "CAPA"]
            for optional in ("UIDL", "TOP"):
                if caps is not None and not caps.has(optional):
                    order.remove(optional)
        else:
            return []
        return [*order, "QUIT"]

    @property
    def state_label(self) -> str:
        """A short label for a toolbar: AUTHORIZATION (USER x) / TRANSACTION (DELE×2)."""
        if self.state is State.AUTHORIZATION and self.user:
            return f"{self.state.value} (USER {self.user})"
        if self.state is State.TRANSACTION and self.deleted:
            return f"{self.state.value} (DELE×{len(self.deleted)})"
        return self.state.value

    # -- internals ---------------------------------------------------------------------

    @staticmethod
    def _target(state: State, sent: Sent, status: Status | None) -> State | None:
        if sent.verb == "AUTH" and sent.expect is Expect.MULTILINE:
            return None  # a bare AUTH only lists mechanisms: nobody logs in
        return TRANSITIONS.get((state, sent.verb, status)) if status else None

    def _apply_all(self, responses: list[Response]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for index, response in enumerate(responses):
            outcome = self._receive(response)
            if outcome.start_tls:
                # Nothing read before the handshake may be trusted, nor answer a later line.
                leftover = b"".join(r.raw for r in responses[index + 1 :]) + self._parser.reset()
                self._in_flight.clear()
                outcomes.append(replace(outcome, discarded=leftover))
                break
            outcomes.append(outcome)
        return outcomes

    def _receive(self, response: Response) -> Outcome:
        before = self.state
        answered: Sent | None
        if self.greeting is None:
            answered = Sent(GREETING, None)
        elif self._in_flight:
            answered = self._in_flight.popleft()
        else:
            answered = None
        flags: dict[str, bool] = {}
        if answered is not None and answered.verb == GREETING:
            self.greeting = response
            self.apop_timestamp = apop_timestamp(response.text) if response.ok else None
        elif answered is not None and before is not State.CLOSED:
            flags = self._apply(answered, response)
            target = self._target(before, answered, response.status)
            if target is State.CLOSED:
                self._close()
            elif target is not None:
                self.state = target
        return Outcome(response, answered, before, self.state, response.ok, **flags)

    def _apply(self, sent: Sent, response: Response) -> dict[str, bool]:
        """What a response teaches about the session, before the state moves."""
        verb, args = sent.verb, sent.command.args if sent.command else ()
        if sent.expect is Expect.SASL:
            return self._apply_auth(response)
        if verb == "QUIT":
            self._quit(response)
            return {}
        if not response.ok:
            if verb in ("USER", "PASS"):
                self.user = None  # after a refused USER or PASS the server wants USER again
            return {}
        if verb == "USER" and sent.command is not None:
            self.user = sent.command.argument.strip()
        elif verb == "PASS":
            self.authenticated_user, self.user = self.user, None
            return {"authenticated": True}
        elif verb == "APOP":
            self.authenticated_user = args[0] if args else None
            return {"authenticated": True}
        elif verb == "STLS":
            self.tls_pending = True
            self.capabilities = None
            self.capabilities_state = None
            return {"start_tls": True}
        elif verb == "CAPA":
            self.capabilities = Capabilities.from_response(response)
            self.capabilities_state = self.state
        elif verb == "STAT":
            numbers = _numbers(response.text, 2)
            if numbers:
                self.message_count, self.maildrop_size = numbers
                # Marked messages keep their numbers but STAT no longer counts them.
                self.last_number = numbers[0] + len(self.deleted)
        elif verb in ("LIST", "UIDL"):
            if not args:  # a whole listing replaces what was known
                (self.sizes if verb == "LIST" else self.uids).clear()
            for number, value in _scan(response, args):
                if verb == "UIDL":
                    self.uids[number] = value
                elif (size := parse_number(value)) is not None:
                    self.sizes[number] = size
        elif verb == "DELE" and args and (number := parse_number(args[0])):
            self.deleted.add(number)
        elif verb == "RSET":
            self.deleted.clear()
        return {}

    def _apply_auth(self, response: Response) -> dict[str, bool]:
        if response.is_continuation:
            self.awaiting_auth_response = True
            return {"auth_challenge": True}
        self.awaiting_auth_response = False
        self.auth_mechanism = None
        if response.ok:
            self.authenticated_user = self._auth_user_guess
            return {"authenticated": True}
        return {}

    def _guess_auth_user(self, answer: str) -> None:
        """The user name (never the password) from the first PLAIN or LOGIN answer."""
        self._auth_answers += 1
        if self._auth_answers > 1 or self.auth_mechanism not in ("PLAIN", "LOGIN"):
            return
        try:
            decoded = b64decode_bytes(answer).decode("utf-8")
        except (AuthError, UnicodeDecodeError):
            return
        if self.auth_mechanism == "LOGIN":
            self._auth_user_guess = decoded or None
        else:
            parts = decoded.split("\0")
            self._auth_user_guess = parts[1] if len(parts) == 3 and parts[1] else None

    def _quit(self, response: Response) -> None:
        if self.state is not State.TRANSACTION:
            self.close_reason = Said("pop3_problems", "closed_quit")
        elif response.ok:
            self.removed = frozenset(self.deleted)
            count = len(self.deleted)
            key = "closed_update" if count else "closed_update_nothing"
            self.close_reason = Said("pop3_problems", key, count=count)
        else:
            self.close_reason = Said("pop3_problems", "closed_update_failed")

    def _close(self) -> None:
        self.state = State.CLOSED
        self._in_flight.clear()
        self.awaiting_auth_response = False
        self.tls_pending = False


def _scan(response: Response, args: tuple[str, ...]) -> list[tuple[int, str]]:
    """A LIST or UIDL answer as (number, value) pairs: its one line, or every line listed."""
    pairs: list[tuple[int, str]] = []
    for line in [response.text] if args else response.lines:
        words = line.split()
        number = parse_number(words[0]) if words else None
        if number is not None and len(words) > 1:
            pairs.append((number, words[1]))
    return pairs


def _numbers(text: str, count: int) -> tuple[int, ...] | None:
    """The first `count` words of a status text as numbers ("2 320" → (2, 320)), or None."""
    words = text.split()[:count]
    numbers = tuple(n for n in (parse_number(w) for w in words) if n is not None)
    return numbers if len(numbers) == count else None
