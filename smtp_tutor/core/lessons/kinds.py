"""The kinds of lesson step, one object each, in one registry: `STEP_KINDS`.

A step's `kind` names an entry here, and everything that depends on it is asked of that
entry: which keys the step's table takes in the lesson file and how its solution must look
(the file checker), which line a verdict is about and which reply codes pass (the judge),
which reply decides the step and what the full answer shows (the console's runner), and
what the replay types (`lessons --check`). No other module tests a kind by its name.

Each kind speaks one protocol (`StepKind.protocol`): the SMTP kinds judge reply codes
("250", "5xx"), the POP3 ones a response's status and extended code ("+OK", "-ERR [IN-USE]").
`answer_of` turns either protocol's `Outcome` into the one `Answer` every kind reads, and a
kind may rehearse its solution on a paper session (`rehearse`) so the file checker catches a
command the protocol's state table refuses before a student meets it.

Adding a kind is one subclass of `StepKind` registered below, plus the texts it names in
``smtp_tutor/data/lessons_ui.toml``. A registry is a plain mapping of names to kinds;
``STEP_KINDS.copy()`` gives one to register a kind in without touching the real one
(``load_lesson(path, kinds=...)`` reads a file with it; the steps it builds carry their kind).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smtp_tutor.core import dialogue as smtp_dialogue
from smtp_tutor.core.dialogue import AUTH_RESPONSE, END_OF_DATA, GREETING
from smtp_tutor.core.lessons.model import REPLY_CLASS, REPLY_CODE, show
from smtp_tutor.core.pop3 import dialogue as pop3_dialogue
from smtp_tutor.core.pop3.responses import Status

if TYPE_CHECKING:
    from smtp_tutor.core.lessons.model import Step
    from smtp_tutor.core.lessons.rehearsal import Rehearsal

_EXPLORING = frozenset({"NOOP", "HELP", "RSET"})
_BDAT_COMMAND = re.compile(r":bdat(?: +[1-9][0-9]*)?")  # a chunks step's first line

#: Reports a problem with one of a step's own keys: (key, message without the key's name).
Problem = Callable[[str, str], None]


# --- Lines and codes, as every kind with a `send` matches them ------------------------------


def _verb(line: str) -> str:
    words = line.split(None, 1)
    return words[0].upper() if words else ""


def line_matches(verbs: Sequence[str], pattern: re.Pattern[str] | None, line: str) -> bool:
    if verbs and _verb(line) not in verbs:
        return False
    return pattern is None or pattern.fullmatch(line.strip()) is not None


def matches_send(step: Step, line: str) -> bool:
    """The verb is one of the step's (if given) and the pattern matches the line (if given)."""
    return line_matches(step.verbs, step.pattern, line)


def is_for_step(step: Step, line: str) -> bool:
    """False for a line the runner should let through unjudged: blank, or NOOP/HELP/RSET
    when the step does not ask for them (students explore)."""
    verb = _verb(line)
    if not verb:
        return False
    if verb not in _EXPLORING or verb in step.verbs:
        return True
    return not step.verbs and step.pattern is not None and matches_send(step, line)


def code_matches(expect: Sequence[str], code: int | str | None) -> bool:
    """Whether `code` is one of the codes ("250") or classes ("2xx") in `expect`."""
    if not isinstance(code, int) or isinstance(code, bool):
        return False
    if not expect:
        return True
    for item in expect:
        text = str(item).strip().lower()
        if REPLY_CLASS.fullmatch(text) and code // 100 == int(text[0]):
            return True
        if REPLY_CODE.fullmatch(text) and int(text) == code:
            return True
    return False


# A POP3 expect entry: a status, optionally with an RFC 2449 extended code: "-ERR [IN-USE]".
POP3_STATUS = re.compile(r"(\+OK|-ERR)(?: +\[([A-Z0-9-]+(?:/[A-Z0-9-]+)*)\])?", re.IGNORECASE)


def pop3_code(status: str, extended: str | None = None) -> str:
    """A POP3 response as a lesson reads it: "+OK", "-ERR [IN-USE]"."""
    return f"{status} [{extended.upper()}]" if extended else status


def parse_pop3_expect(item: object) -> str | None:
    """A POP3 `expect.code` entry, normalised ("-err [in-use]" → "-ERR [IN-USE]"); None if
    it is not one."""
    found = POP3_STATUS.fullmatch(item.strip()) if isinstance(item, str) else None
    return pop3_code(found.group(1).upper(), found.group(2)) if found else None


def pop3_code_matches(expect: Sequence[str], code: int | str | None) -> bool:
    """Whether a POP3 `code` ("-ERR [SYS/TEMP]") is one of `expect`: "-ERR" takes any
    -ERR, "-ERR [SYS]" any code under SYS (RFC 2449 §8: codes are hierarchical)."""
    if not isinstance(code, str):
        return False
    got = POP3_STATUS.fullmatch(code.strip())
    if got is None:
        return False
    got_levels = got.group(2).upper().split("/") if got.group(2) else []
    for item in expect:
        want = POP3_STATUS.fullmatch(item.strip())
        if want is None or want.group(1).upper() != got.group(1).upper():
            continue
        levels = want.group(2).upper().split("/") if want.group(2) else []
        if got_levels[: len(levels)] == levels:
            return True
    return False


# --- A kind ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A reply as a lesson sees it, whatever the protocol: the line it answers and its code.

    `verb` is the answered line's verb, or a pseudo-verb of the dialogue (the greeting, the
    final dot of DATA, an answer to an AUTH challenge); `line` is the command line as sent,
    "" when the answered line was no command. `code` is an SMTP reply code (250) or a POP3
    status with its extended code ("-ERR [IN-USE]"); `multiline` says whether a POP3
    response carried lines ended by "." (None for SMTP).
    """

    verb: str
    line: str
    code: int | str | None
    protocol: str = "smtp"
    multiline: bool | None = None
    start_tls: bool = False  # the answer starts a TLS handshake (STARTTLS's 220, STLS's +OK)


def answer_of(outcome: smtp_dialogue.Outcome | pop3_dialogue.Outcome) -> Answer | None:
    """The `Answer` a lesson reads from either protocol's `Outcome`; None when the reply
    answered nothing (an unsolicited one)."""
    answered = outcome.answered
    if answered is None:
        return None
    line = answered.command.line if answered.command is not None else ""
    if isinstance(outcome, pop3_dialogue.Outcome):
        response = outcome.response
        status = response.status.value if response.status is not None else None
        code = pop3_code(status, response.code) if status in (Status.OK, Status.ERR) else status
        return Answer(
            answered.verb, line, code, "pop3", response.multiline, start_tls=outcome.start_tls
        )
    return Answer(answered.verb, line, outcome.reply.code, start_tls=outcome.start_tls)


class StepKind:
    """One kind of step; what the base class does is what a `command` step does.

    Subclasses set `name` and change the other class attributes (what the lesson file may
    say) and override the methods (how a reply, a solution and the full answer are handled).
    """

    #: The value of `kind = "..."` in the lesson file.
    name: str = ""
    #: The protocol its lines speak and its codes come from: "smtp" or "pop3".
    protocol: str = "smtp"
    #: The step has a `send` (verb and/or pattern) saying which line is the step's.
    takes_send: bool = True
    #: The verbs when `send` is left out; () means `send` is required.
    default_verbs: tuple[str, ...] = ()
    #: `manual = true` is allowed: it switches the console's AUTH helper off for the step.
    takes_manual: bool = False
    #: Keys of a [[steps]] table that only this kind takes, read by `read_keys`.
    own_keys: tuple[str, ...] = ()
    #: The keys of data/lessons_ui.toml this kind shows (each in every language).
    texts: tuple[str, ...] = ()
    #: What an `expect.code` entry must be, for the file checker's message.
    expect_help: str = 'a reply code ("250") or a class ("2xx")'

    def __repr__(self) -> str:
        return f"<step kind {self.name!r}>"

    # -- the lesson file --------------------------------------------------------------------

    def read_keys(self, table: Mapping[str, Any], problem: Problem) -> dict[str, object]:
        """This kind's own keys (`own_keys`) from a step's table, checked; kept in `Step.extra`."""
        return {}

    def parse_expect(self, item: object) -> str | None:
        """One `expect.code` entry as the judge keeps it; None when it is not valid."""
        if isinstance(item, str) and (REPLY_CODE.fullmatch(item) or REPLY_CLASS.fullmatch(item)):
            return item.lower()
        return None

    def solution_problems(
        self, lines: Sequence[str], verbs: Sequence[str], pattern: re.Pattern[str] | None
    ) -> list[str]:
        """What is wrong with a solution (a non-empty list of one-line strings)."""
        if not lines[0].strip():
            return ["the first line is empty"]
        if not line_matches(verbs, pattern, lines[0]):
            return [f"{show(lines[0])} does not match this step's send"]
        return []

    # -- a running lesson -------------------------------------------------------------------

    def keeps(self, step: Step, line: str) -> bool:
        """Whether the runner keeps this command line, sent during the step, as the step's."""
        return False

    def decisive(self, step: Step, answer: Answer, kept: str | None) -> str | None:
        """The line to judge when `answer` decides the step; None when it does not.

        `kept` is the last line `keeps` accepted during the step. A command step is decided
        by the reply to any command it does not let through (`is_for_step`).
        """
        return answer.line if is_for_step(step, answer.line) else None

    def judges(self, step: Step, line: str) -> bool:
        """Whether the judged line is what the step asks for (else "wrong_command")."""
        return matches_send(step, line)

    def code_matches(self, expect: Sequence[str], code: int | str | None) -> bool:
        """Whether the deciding reply's code passes the step's `expect`."""
        return code_matches(expect, code)

    def answer_notes(self, step: Step) -> Mapping[int, str]:
        """Notes in the full answer (the last :hint): lessons_ui key by solution line index."""
        return {}

    def reason(self, reason: str) -> str:
        """The lessons_ui `reason.*` id this kind shows for one of the judge's reasons."""
        return reason

    def extra_reason(self, step: Step, multiline: bool | None) -> str | None:
        """A reason of this kind's own the step fails for, after the code passed; None: none."""
        return None

    def rehearse(self, step: Step, rehearsal: Rehearsal) -> list[str]:
        """Problems found by playing the solution on a paper session of the step's protocol
        (`rehearsal`: the lesson so far), each "solution line ...: what is wrong"."""
        return []

    # -- replaying the solution -------------------------------------------------------------

    def typed_lines(self, step: Step) -> tuple[str, ...]:
        """What the replay types at the console for this step."""
        return step.solution


class CommandKind(StepKind):
    """One command line, decided by its reply."""

    name = "command"


class AuthKind(StepKind):
    """A whole AUTH exchange, decided by its final reply (235 or an error, never a 334)."""

    name = "auth"
    default_verbs = ("AUTH",)
    takes_manual = True
    texts = ("answer_auth_prompts",)

    def keeps(self, step: Step, line: str) -> bool:
        return _verb(line) == "AUTH"  # the AUTH line is judged, not the answers after it

    def decisive(self, step: Step, answer: Answer, kept: str | None) -> str | None:
        if answer.verb not in ("AUTH", AUTH_RESPONSE) or answer.code == 334:
            return None  # not AUTH, or the exchange goes on
        return kept or answer.line

    def answer_notes(self, step: Step) -> Mapping[int, str]:
        # The helper asks for the user and the password after the AUTH line.
        return {} if step.manual else {1: "answer_auth_prompts"}


class MessageKind(StepKind):
    """The message typed after DATA's 354, decided by the reply to the final dot."""

    name = "message"
    takes_send = False

    def solution_problems(
        self, lines: Sequence[str], verbs: Sequence[str], pattern: re.Pattern[str] | None
    ) -> list[str]:
        return [] if lines[-1] == "." else ['a message ends with the line "."']

    def decisive(self, step: Step, answer: Answer, kept: str | None) -> str | None:
        return "" if answer.verb == END_OF_DATA else None

    def judges(self, step: Step, line: str) -> bool:
        return not line.strip()  # a message step judges no command line


class ChunksKind(MessageKind):
    """A message sent with :bdat, decided by the reply to the chunk marked LAST."""

    name = "chunks"

    def solution_problems(
        self, lines: Sequence[str], verbs: Sequence[str], pattern: re.Pattern[str] | None
    ) -> list[str]:
        problems = super().solution_problems(lines, verbs, pattern)
        if not _BDAT_COMMAND.fullmatch(lines[0]):
            problems.append('a chunks step starts with ":bdat" or ":bdat SIZE"')
        return problems

    def decisive(self, step: Step, answer: Answer, kept: str | None) -> str | None:
        last = answer.verb == "BDAT" and answer.line.upper().endswith(" LAST")
        return "" if last else None  # a message sent with DATA does not count


# --- POP3 -----------------------------------------------------------------------------------


class Pop3CommandKind(StepKind):
    """One POP3 command line, decided by its response: +OK or -ERR, and an extended code."""

    name = "pop3-command"
    protocol = "pop3"
    own_keys = ("multiline",)
    texts = ("answer_pop3_multiline",)
    expect_help = 'a status ("+OK" or "-ERR"), optionally with a code: "-ERR [IN-USE]"'
    _reasons: Mapping[str, str] = {
        "not_tls": "pop3_not_tls",
        "not_authenticated": "pop3_not_logged_in",
        "authenticated_unexpected": "pop3_logged_in_unexpected",
    }

    def read_keys(self, table: Mapping[str, Any], problem: Problem) -> dict[str, object]:
        value = table.get("multiline")
        if value is None:
            return {}
        if not isinstance(value, bool):
            problem("multiline", "must be true or false")
            return {}
        return {"multiline": value}

    def parse_expect(self, item: object) -> str | None:
        return parse_pop3_expect(item)

    def code_matches(self, expect: Sequence[str], code: int | str | None) -> bool:
        return pop3_code_matches(expect, code)

    def reason(self, reason: str) -> str:
        return self._reasons.get(reason, reason)

    def decisive(self, step: Step, answer: Answer, kept: str | None) -> str | None:
        """As for a command step, except that a step asking for PASS lets USER through:
        after -ERR to PASS the login starts again with USER (RFC 1939), which is the way
        to the step, not a wrong answer to it."""
        if _verb(answer.line) == "USER" and "PASS" in step.verbs and "USER" not in step.verbs:
            return None
        return super().decisive(step, answer, kept)

    def extra_reason(self, step: Step, multiline: bool | None) -> str | None:
        wanted = step.extra.get("multiline")
        if wanted is None or multiline is None or wanted == multiline:
            return None
        return "pop3_multiline_expected" if wanted else "pop3_single_line_expected"

    def answer_notes(self, step: Step) -> Mapping[int, str]:
        return {0: "answer_pop3_multiline"} if step.extra.get("multiline") else {}

    def rehearse(self, step: Step, rehearsal: Rehearsal) -> list[str]:
        problems: list[str] = []
        last = len(step.solution) - 1
        for index, line in enumerate(step.solution):
            status = expected_status(step.expect) if index == last else Status.OK
            problems += rehearsal.send(line, status, more=index < last)
        return problems


class Pop3ReconnectKind(StepKind):
    """Hang up without QUIT and connect again (`:reconnect`), decided by the new greeting.

    What a dropped connection leaves behind is the point: outside UPDATE the server removes
    nothing (RFC 1939 §6), and the mailbox is unlocked for the next session.
    """

    name = "pop3-reconnect"
    protocol = "pop3"
    takes_send = False
    expect_help = 'the greeting\'s status, "+OK" (or "-ERR" for a server that refuses)'

    def parse_expect(self, item: object) -> str | None:
        return parse_pop3_expect(item)

    def code_matches(self, expect: Sequence[str], code: int | str | None) -> bool:
        return pop3_code_matches(expect, code)

    def solution_problems(
        self, lines: Sequence[str], verbs: Sequence[str], pattern: re.Pattern[str] | None
    ) -> list[str]:
        return [] if list(lines) == [":reconnect"] else ['a reconnect step is [":reconnect"]']

    def decisive(self, step: Step, answer: Answer, kept: str | None) -> str | None:
        return "" if answer.verb == GREETING else None

    def judges(self, step: Step, line: str) -> bool:
        return not line.strip()

    def rehearse(self, step: Step, rehearsal: Rehearsal) -> list[str]:
        rehearsal.reconnect()
        return []


def expected_status(expect: Sequence[str]) -> Status:
    """The status a POP3 step's solution is meant to get: +OK unless it expects only -ERR."""
    wants_ok = any(item.upper().startswith("+OK") for item in expect)
    return Status.OK if wants_ok or not expect else Status.ERR


# --- The registry ---------------------------------------------------------------------------


class StepKinds(Mapping[str, StepKind]):
    """Step kinds by name, in the order they were registered; the first is the default."""

    def __init__(self, kinds: Iterable[StepKind] = ()) -> None:
        self._kinds: dict[str, StepKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: StepKind) -> StepKind:
        if not kind.name or kind.name in self._kinds:
            raise ValueError(f"step kind {kind.name!r}: no name, or registered already")
        self._kinds[kind.name] = kind
        return kind

    def copy(self) -> StepKinds:
        return StepKinds(self.values())

    @property
    def default(self) -> StepKind:
        """The kind of a step that does not say `kind`."""
        return next(iter(self._kinds.values()))

    def default_for(self, protocol: str) -> StepKind:
        """The kind of a step that does not say `kind`, in a lesson speaking `protocol`."""
        for kind in self._kinds.values():
            if kind.protocol == protocol:
                return kind
        return self.default

    def protocols(self) -> tuple[str, ...]:
        """The protocols some kind speaks, in registration order."""
        return tuple(dict.fromkeys(kind.protocol for kind in self._kinds.values()))

    def own_keys(self) -> tuple[str, ...]:
        """Every key some kind adds to a [[steps]] table, in registration order."""
        return tuple(dict.fromkeys(key for kind in self.values() for key in kind.own_keys))

    def __getitem__(self, name: str) -> StepKind:
        return self._kinds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)


STEP_KINDS = StepKinds(
    [
        CommandKind(),
        AuthKind(),
        MessageKind(),
        ChunksKind(),
        Pop3CommandKind(),
        Pop3ReconnectKind(),
    ]
)


def kind_of(step: Step) -> StepKind:
    """The kind a step was loaded with; a step built in code by name, from `STEP_KINDS`."""
    return step.kind_spec if step.kind_spec is not None else STEP_KINDS[step.kind]
