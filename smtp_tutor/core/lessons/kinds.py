"""The kinds of lesson step, one object each, in one registry: `STEP_KINDS`.

A step's `kind` names an entry here, and everything that depends on it is asked of that
entry: which keys the step's table takes in the lesson file and how its solution must look
(the file checker), which line a verdict is about and which reply codes pass (the judge),
which reply decides the step and what the full answer shows (the console's runner), and
what the replay types (`lessons --check`). No other module tests a kind by its name.

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

from smtp_tutor.core.dialogue import AUTH_RESPONSE, END_OF_DATA
from smtp_tutor.core.lessons.model import REPLY_CLASS, REPLY_CODE, show

if TYPE_CHECKING:
    from smtp_tutor.core.lessons.model import Step

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


# --- A kind ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A reply as a lesson sees it, whatever the protocol: the line it answers and its code.

    `verb` is the answered line's verb, or a pseudo-verb of the dialogue (the final dot of
    DATA, an answer to an AUTH challenge); `line` is the command line as sent, "" when the
    answered line was no command.
    """

    verb: str
    line: str
    code: int | str | None


class StepKind:
    """One kind of step; what the base class does is what a `command` step does.

    Subclasses set `name` and change the other class attributes (what the lesson file may
    say) and override the methods (how a reply, a solution and the full answer are handled).
    """

    #: The value of `kind = "..."` in the lesson file.
    name: str = ""
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

    def own_keys(self) -> tuple[str, ...]:
        """Every key some kind adds to a [[steps]] table, in registration order."""
        return tuple(dict.fromkeys(key for kind in self.values() for key in kind.own_keys))

    def __getitem__(self, name: str) -> StepKind:
        return self._kinds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)


STEP_KINDS = StepKinds([CommandKind(), AuthKind(), MessageKind(), ChunksKind()])


def kind_of(step: Step) -> StepKind:
    """The kind a step was loaded with; a step built in code by name, from `STEP_KINDS`."""
    return step.kind_spec if step.kind_spec is not None else STEP_KINDS[step.kind]
