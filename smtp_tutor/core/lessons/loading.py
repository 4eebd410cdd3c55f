"""Where the lessons come from: the built-in ones first, then a teacher's folders.

* ``load_lesson(path)`` turns one TOML file into a frozen ``Lesson``, or raises the first
  ``LessonError``; ``check_lesson_file(path)`` lists *every* problem, each with the line it is
  on, because a teacher fixing a file wants the whole list at once.
* A broken teacher's file is reported and skipped; it never stops the built-in lessons.

Reading the files is the only I/O here, as for the knowledge base's data files.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from smtp_tutor.core.lessons.file_check import LessonChecker
from smtp_tutor.core.lessons.kinds import STEP_KINDS, StepKinds
from smtp_tutor.core.lessons.model import Lesson, LessonError


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


def _check(
    source: Path | Traversable, builtin: bool, kinds: StepKinds = STEP_KINDS
) -> tuple[Lesson | None, list[LessonError]]:
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
    checker = LessonChecker(path, text, builtin, kinds)
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


def check_lesson_file(
    path: Path, *, builtin: bool | None = None, kinds: StepKinds = STEP_KINDS
) -> list[LessonError]:
    """Every problem in one lesson file, ordered by line; [] when it is fine. Never raises.

    `builtin` adds the built-in rules (no `missing`); None decides by the file's folder.
    `kinds` is the registry of step kinds the file may use.
    """
    path = Path(path)
    if builtin is None:
        builtin = _is_builtin_path(path)
    return _check(path, builtin, kinds)[1]


def load_lesson(path: Path, *, builtin: bool = False, kinds: StepKinds = STEP_KINDS) -> Lesson:
    """The lesson in `path`; raises the first LessonError (by line) when it has problems.

    Its steps carry their kind from `kinds`, so judging them needs no registry.
    """
    lesson, errors = _check(Path(path), builtin, kinds)
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
        checkout = Path(__file__).resolve().parents[3] / "lessons"
        if not checkout.is_dir():
            raise
        return checkout


def _lesson_files(folder: Path | Traversable) -> list[Path | Traversable]:
    return sorted(
        (f for f in folder.iterdir() if f.name.endswith(".toml") and f.is_file()),
        key=lambda f: f.name,
    )


def load_lessons(
    extra_dirs: Sequence[Path] = (), *, kinds: StepKinds = STEP_KINDS
) -> tuple[list[Lesson], list[LessonError]]:
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
        lesson, problems = _check(source, builtin, kinds)
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
