"""`smtp-tutor lesson [ID]` and `smtp-tutor lessons [--reset] [--check]`: thin glue.

Loading, checking and progress live in the pure engine; the runner lives in `lesson.py`.
Here we only pick the lesson, start the sandbox it asks for, and print one line per problem.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from smtp_tutor.console.app import Console, ConsoleOptions, run_on_sandbox
from smtp_tutor.console.lesson import LessonRunner, file_setup_mail
from smtp_tutor.console.lesson_list import lesson_list_text
from smtp_tutor.console.progress import Progress
from smtp_tutor.core.catalogue import localize, message
from smtp_tutor.core.lessons import (
    Lesson,
    LessonError,
    check_lesson_file,
    find_lesson,
    load_lesson,
    load_lessons,
)

if TYPE_CHECKING:
    from smtp_tutor.console.pop3_console import Pop3Console
    from smtp_tutor.sandbox import Sandbox

EXIT_USAGE = 2


def _load(args: argparse.Namespace, lang: str) -> tuple[list[Lesson], Progress]:
    lessons, errors = load_lessons(args.dir)
    for error in errors:  # a broken teacher's lesson never stops the built-in ones
        print(f"smtp-tutor: {error}", file=sys.stderr)
    progress = Progress.load()
    if progress.problem:
        print(f"smtp-tutor: {localize(progress.problem, lang)}", file=sys.stderr)
    return lessons, progress


def run_lesson(args: argparse.Namespace, options: ConsoleOptions) -> int:
    lessons, progress = _load(args, options.lang)
    if not lessons:
        print("smtp-tutor lesson: no lessons found", file=sys.stderr)
        return 1
    if args.id:
        lesson = find_lesson(lessons, args.id)
        if lesson is None:
            names = ", ".join(f"{item.number} {item.id}" for item in lessons)
            what = message("cli", "no_such_lesson", options.lang, id=repr(args.id), names=names)
            print(f"smtp-tutor lesson: {what}", file=sys.stderr)
            return EXIT_USAGE
    else:
        lesson = _next_lesson(lessons, progress)
    options.lesson_dirs = list(args.dir)
    if _remote(args):  # `--server HOST:PORT --user NAME`: on a class sandbox
        from smtp_tutor.cli.remote_lesson import run_remote_lesson

        return run_remote_lesson(args, lesson, progress, options)
    return asyncio.run(_run(lesson, progress, options))


def _remote(args: argparse.Namespace) -> bool:
    from smtp_tutor.cli.remote_lesson import wants_remote

    return wants_remote(args)


def _next_lesson(lessons: list[Lesson], progress: Progress) -> Lesson:
    current = progress.current()
    if current:
        found = find_lesson(lessons, current)
        if found is not None:
            return found
    for lesson in lessons:
        if not progress.completed(lesson.id):
            return lesson
    return lessons[0]


async def _run(lesson: Lesson, progress: Progress, options: ConsoleOptions) -> int:
    from smtp_tutor.sandbox import Sandbox, SandboxConfig

    pop3 = lesson.protocol == "pop3"  # lessons 14-16: the POP3 console on the POP3 port
    extra = {"pop3_port": 0} if pop3 else {}
    sandbox = Sandbox(SandboxConfig(port=0, **extra, **lesson.scenario))  # type: ignore[arg-type]
    try:
        await sandbox.start()
        file_setup_mail(sandbox.accounts, lesson)
    except OSError as error:
        await sandbox.stop()
        print(f"smtp-tutor: cannot start the sandbox: {error.strerror or error}", file=sys.stderr)
        return 3

    def attach_lesson(console: Console | Pop3Console) -> None:
        runner = LessonRunner(lesson, progress, options.lang, mailbox=sandbox.mailbox_path)
        runner.on_restart = _on_restart(sandbox, lesson)
        console.lesson = runner
        console.options.banner = runner.banner(console.options.banner or "")

    if not pop3:
        return await run_on_sandbox(sandbox, options, attach_lesson)
    from smtp_tutor.console.pop3_console import Pop3Console, default_pop3_history_path

    if options.history_path is not None:
        options.history_path = default_pop3_history_path()
    return await run_on_sandbox(sandbox, options, attach_lesson, Pop3Console)


def _on_restart(sandbox: Sandbox, lesson: Lesson) -> Callable[[], None]:
    """What `:restart` resets in the sandbox: the greylist, and the lesson's setup mail
    (lesson 16 deletes some) filed again."""

    def restart() -> None:
        sandbox.forget_greylist()
        file_setup_mail(sandbox.accounts, lesson)

    return restart


def run_lessons(args: argparse.Namespace, lang: str) -> int:
    if args.check:
        return _check(args.check, lang)
    lessons, progress = _load(args, lang)
    if args.reset is not None:
        if args.reset == "*":
            progress.reset()
            print(message("lessons_ui", "reset_done", lang))
        else:
            lesson = find_lesson(lessons, args.reset)
            if lesson is None:
                names = ", ".join(f"{item.number} {item.id}" for item in lessons)
                what = message("cli", "no_such_lesson", lang, id=repr(args.reset), names=names)
                print(f"smtp-tutor lessons: {what}", file=sys.stderr)
                return EXIT_USAGE
            progress.reset(lesson.id)
            title, _translated = lesson.title.get(lang)
            print(message("lessons_ui", "reset_one_done", lang, number=lesson.number, title=title))
    print(lesson_list_text(lessons, progress, lang))
    return 0


def _check(paths: list[Path], lang: str) -> int:
    """Validate lesson files and replay each valid one's solution; one line per problem."""
    from smtp_tutor.console.lesson_replay import replay_lesson

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(path.glob("*.toml"))
        elif path.exists():
            files.append(path)
        else:
            print(f"{path}: no such file or folder", file=sys.stderr)
            return EXIT_USAGE
    if not files:
        print("smtp-tutor lessons --check: no lesson files (*.toml) found", file=sys.stderr)
        return EXIT_USAGE
    failed = 0
    for file in files:
        problems: list[str] = [str(error) for error in check_lesson_file(file)]
        if not problems:
            try:
                lesson = load_lesson(file)
            except LessonError as error:
                problems.append(str(error))
            else:
                report = asyncio.run(replay_lesson(lesson, lang))
                problems += report.problems()  # each names the file, line and step
        if problems:
            failed += 1
            for problem in problems:
                print(problem)
        else:
            print(f"{file}: OK")
    return 1 if failed else 0
