"""What a lesson is: the frozen `Lesson`, its steps and texts, and the error a file gives.

A lesson is read in one place (`file_check`) and judged in another (`judge`); both need
this model and the step kinds (`kinds`), so it imports none of them — which is what keeps
them out of a circle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from smtp_tutor.core import knowledge
from smtp_tutor.core.knowledge import normalise_language

if TYPE_CHECKING:
    from smtp_tutor.core.lessons.kinds import StepKind

LANGUAGES = knowledge.LANGUAGES  # a lesson speaks the console's languages, one list for both
#: The protocols a lesson or a step may speak: `protocol = "pop3"`; SMTP when not said.
PROTOCOLS = ("smtp", "pop3")
#: Languages to try, in order, for a reader of each language ``normalise_language`` gives:
#: zh-TW, zh-HK and zh-Hant readers get the Simplified text, then English; anyone else English.
LANG_FALLBACK: Mapping[str, tuple[str, ...]] = {"en": ("en",), "zh": ("zh", "en")}
FORMAT = 1
UI = "lessons_ui"  # the message catalogue smtp_tutor/data/lessons_ui.toml
# An expect entry: a reply code ("250") or a reply class ("2xx").
REPLY_CODE = re.compile(r"[2-5][0-9][0-9]")
REPLY_CLASS = re.compile(r"[2-5]xx", re.IGNORECASE)


# --- The lesson, as the runner sees it ------------------------------------------------------


def language_chain(lang: str | None) -> tuple[str, ...]:
    """The languages to try for a reader of `lang`, best first."""
    return LANG_FALLBACK[normalise_language(lang)]


@dataclass(frozen=True)
class Text:
    """One text in every language it was written in."""

    values: Mapping[str, str]

    def get(self, lang: str | None) -> tuple[str, bool]:
        """(text, translated): False when the reader's language was missing and we fell back."""
        for position, language in enumerate(language_chain(lang)):
            value = self.values.get(language)
            if value:
                return value, position == 0
        return "", False


@dataclass(frozen=True)
class StepState:
    """Checks on the session after the reply; None means "not checked"."""

    tls: bool | None = None
    authenticated: bool | None = None
    delivered: bool | None = None
    headers: tuple[str, ...] = ()
    no_defects: bool | None = None


@dataclass(frozen=True)
class Step:
    id: str
    kind: str  # the name of its kind; what the kind does is `kinds.kind_of(step)`
    explain: Text
    goal: Text
    verbs: tuple[str, ...]  # upper case; empty: any verb
    pattern: re.Pattern[str] | None  # macros expanded, case-insensitive, whole line
    expect: tuple[str, ...]  # "250", "2xx", ...
    state: StepState
    hints: Mapping[str, tuple[str, ...]]
    success: Text
    solution: tuple[str, ...]
    manual: bool
    line_no: int  # the line of its [[steps]] header
    solution_line: int = 0  # the line of its `solution` key (0: not from a file)
    # The kind it was loaded with (None: built in code, looked up by name in STEP_KINDS).
    kind_spec: StepKind | None = field(default=None, compare=False, repr=False)
    extra: Mapping[str, object] = field(default_factory=dict)  # the kind's own keys
    protocol: str = "smtp"  # which server the step's lines go to: "smtp" or "pop3"


@dataclass(frozen=True)
class SetupMail:
    """A message the practice server holds in an account's mailbox when the lesson starts."""

    account: str  # "student": whose POP3 mailbox it is filed to
    text: str  # the message as typed after DATA: headers, an empty line, the body
    line_no: int = 0


@dataclass(frozen=True)
class Playback:
    transcript: str
    note: Text | None


@dataclass(frozen=True)
class Lesson:
    id: str
    number: int
    title: Text
    intro: Text
    outro: Text | None
    scenario: Mapping[str, object]  # keyword arguments for SandboxConfig
    playback: Playback | None
    steps: tuple[Step, ...]
    missing: tuple[str, ...]
    path: Path
    builtin: bool
    id_line: int = 1
    protocol: str = "smtp"  # the server the console connects to first
    setup_mail: tuple[SetupMail, ...] = ()


def show(value: object) -> str:
    """A value quoted for a one-line message, cut if long."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class LessonError(ValueError):
    """One problem in a lesson file, printed as `path:line: message` like a compiler's."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = " ".join(str(message).split())  # always one line
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"
