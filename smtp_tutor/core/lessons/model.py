"""Guided lessons: what a lesson is, and where the lessons come from.

The lesson format is documented for teachers in ``lessons/README.md``. A lesson is read in
one place and judged in another, so what both need, the frozen ``Lesson`` and its parts,
lives here, with the loading that picks the files: the built-in lessons first, then a
teacher's. Reading a file is ``lesson_file``'s job; judging a step is ``lesson_judge``'s. All
three are pure: no sockets, no asyncio, no prompt_toolkit.

* ``load_lesson(path)`` turns one TOML file into a frozen ``Lesson``, or raises the first
  ``LessonError``; ``check_lesson_file(path)`` lists *every* problem, each with the line it is
  on, because a teacher fixing a file wants the whole list at once.
* A broken teacher's file is reported and skipped; it never stops the built-in lessons.

``lesson_file`` builds this module's model, so ``_check`` imports the checker when it runs.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from smtp_tutor.core.knowledge import normalise_language

LANGUAGES = ("en", "zh")
#: Languages to try, in order, for a reader of each language ``normalise_language`` gives:
#: zh-TW, zh-HK and zh-Hant readers get the Simplified text, then English; anyone else English.
LANG_FALLBACK: Mapping[str, tuple[str, ...]] = {"en": ("en",), "zh": ("zh", "en")}
KINDS = ("command", "auth", "message", "chunks")
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
    kind: Literal["command", "auth", "message", "chunks"]
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


class LessonError(ValueError):
    """One problem in a lesson file, printed as `path:line: message` like a compiler's."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = " ".join(str(message).split())  # always one line
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


# --- Loading --------------------------------------------------------------------------------


def _parse_error(path: Path, text: str, exc: Exception) -> LessonError:
    """A TOML syntax error at its line, in the teacher's terms."""
    detail = str(exc)
    line = 1
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", detail)
    if found:
        line = int(found.group(1))
        detail = f"{detail[: found.start()]} (column {found.group(2)})"
    elif detail.endswith("(at end of document)"):
        line = text.count("\n") + (0 if text.endswith("\n") else 1) or 1
        detail = detail.removesuffix("(at end of document)").strip() + " at the end of the file"
    return LessonError(path, line, f"TOML syntax: {detail}")


def _check(source: Path | Traversable, builtin: bool) -> tuple[Lesson | None, list[LessonError]]:
    path = Path(str(source))
    try:
        raw = source.read_bytes()
    except OSError as exc:
        return None, [LessonError(path, 1, f"cannot read the file: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8-sig")  # a BOM from Windows Notepad is fine
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [LessonError(path, line, "not UTF-8 text; save the file as UTF-8")]
    try:
        data = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError
        return None, [_parse_error(path, text, exc)]
    from smtp_tutor.core.lesson_file import LessonChecker  # it imports the model from here

    checker = LessonChecker(path, text, builtin)
    try:
        lesson = checker.lesson(data)
    except Exception as exc:  # a bug here must not stop the other lessons loading
        error = LessonError(path, 1, f"could not check this file ({type(exc).__name__}: {exc})")
        return None, [error]
    errors = sorted(checker.errors, key=lambda e: e.line)  # stable: same line keeps order
    return (lesson if not errors else None), errors


def _is_builtin_path(path: Path) -> bool:
    root = builtin_lesson_dir()
    try:
        return isinstance(root, Path) and path.resolve().parent == root.resolve()
    except OSError:
        return False


def check_lesson_file(path: Path, *, builtin: bool | None = None) -> list[LessonError]:
    """Every problem in one lesson file, ordered by line; [] when it is fine. Never raises.

    `builtin` adds the built-in rules (no `missing`); None decides by the file's folder.
    """
    path = Path(path)
    if builtin is None:
        builtin = _is_builtin_path(path)
    return _check(path, builtin)[1]


def load_lesson(path: Path, *, builtin: bool = False) -> Lesson:
    """The lesson in `path`; raises the first LessonError (by line) when it has problems."""
    lesson, errors = _check(Path(path), builtin)
    if errors:
        raise errors[0]
    assert lesson is not None
    return lesson


def builtin_lesson_dir() -> Traversable:
    """The folder of the lessons that ship with smtp-tutor (a real Path in a normal install).

    An installed package maps the top-level `lessons/` folder to `smtp_tutor.lessons`; code
    imported straight from a source checkout (tests run from the repository root) has no such
    package, so the checkout's own `lessons/` folder is used.
    """
    try:
        return resources.files("smtp_tutor.lessons")
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[2] / "lessons"
        if not checkout.is_dir():
            raise
        return checkout


def _lesson_files(folder: Path | Traversable) -> list[Path | Traversable]:
    return sorted(
        (f for f in folder.iterdir() if f.name.endswith(".toml") and f.is_file()),
        key=lambda f: f.name,
    )


def load_lessons(extra_dirs: Sequence[Path] = ()) -> tuple[list[Lesson], list[LessonError]]:
    """The built-in lessons plus a teacher's (folders or single files), and every problem.

    A broken file is reported and skipped; it never stops the others. An extra lesson whose
    id is already taken loses to the one loaded first (built-ins are loaded first).
    """
    errors: list[LessonError] = []
    sources: list[tuple[Path | Traversable, bool]] = []
    root = builtin_lesson_dir()
    try:
        sources += [(f, True) for f in _lesson_files(root)]
    except OSError as exc:
        errors.append(LessonError(Path(str(root)), 1, f"cannot list the lessons: {exc}"))
    root_path = Path(str(root)).resolve() if isinstance(root, Path) else None
    for extra in extra_dirs:
        where = Path(extra).expanduser()
        try:
            if where.is_dir():
                if where.resolve() != root_path:  # the built-in folder given again
                    sources += [(f, False) for f in _lesson_files(where)]
            elif where.is_file():
                sources.append((where, False))
            else:
                errors.append(LessonError(where, 1, "no such lesson file or folder"))
        except OSError as exc:
            errors.append(LessonError(where, 1, f"cannot read: {exc.strerror or exc}"))
    lessons: dict[str, Lesson] = {}
    for source, builtin in sources:
        lesson, problems = _check(source, builtin)
        errors += problems
        if lesson is None:
            continue
        if lesson.id in lessons:
            first = lessons[lesson.id].path
            text = f"lesson id {lesson.id!r} is already used by {first}; this file was not loaded"
            errors.append(LessonError(lesson.path, lesson.id_line, text))
            continue
        lessons[lesson.id] = lesson
    return sorted(lessons.values(), key=lambda x: (x.number, x.id)), errors


def find_lesson(lessons: Sequence[Lesson], key: str) -> Lesson | None:
    """By id ("greeting"), by number ("1", "01") or by file stem ("01-greeting")."""
    wanted = key.strip().lower()
    for lesson in lessons:
        if lesson.id == wanted:
            return lesson
    if wanted.isascii() and wanted.isdigit():
        numbered = [lesson for lesson in lessons if lesson.number == int(wanted)]
        if numbered:
            return sorted(numbered, key=lambda x: not x.builtin)[0]
    for lesson in lessons:
        if lesson.path.stem.lower() == wanted:
            return lesson
    return None
