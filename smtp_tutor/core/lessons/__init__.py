"""Guided lessons, pure: the model, loading and checking a lesson file, judging a step.

What lives here: `model` (the frozen Lesson), `kinds` (the registry of step kinds: per kind,
its protocol, its keys, its solution, the reply that decides it), `rehearsal` (a POP3
solution played on paper against the core's state table), `file_check` (a teacher's TOML file,
every problem with its line), `loading` (built-in and teachers' folders), `judge` (a step's
verdict from a reply). A student's saved progress is a file, so it lives a layer up
(`console.progress`). What it may import: the rest of
`smtp_tutor.core` and `smtp_tutor.paths`; never a socket, asyncio or the console. The
lesson format is documented for teachers in ``lessons/README.md``.
"""

from smtp_tutor.core.lessons.kinds import STEP_KINDS, StepKind, StepKinds, kind_of
from smtp_tutor.core.lessons.loading import (
    builtin_lesson_dir,
    check_lesson_file,
    find_lesson,
    load_lesson,
    load_lessons,
)
from smtp_tutor.core.lessons.model import (
    FORMAT,
    LANG_FALLBACK,
    LANGUAGES,
    PROTOCOLS,
    REPLY_CLASS,
    REPLY_CODE,
    UI,
    Lesson,
    LessonError,
    Playback,
    SetupMail,
    Step,
    StepState,
    Text,
    language_chain,
)

__all__ = [
    "FORMAT",
    "LANGUAGES",
    "LANG_FALLBACK",
    "PROTOCOLS",
    "REPLY_CLASS",
    "REPLY_CODE",
    "STEP_KINDS",
    "UI",
    "Lesson",
    "LessonError",
    "Playback",
    "SetupMail",
    "Step",
    "StepKind",
    "StepKinds",
    "StepState",
    "Text",
    "builtin_lesson_dir",
    "check_lesson_file",
    "find_lesson",
    "kind_of",
    "language_chain",
    "load_lesson",
    "load_lessons",
]
