"""`smtp-tutor lesson N --server HOST:PORT --user NAME`: a lesson on a class sandbox.

No local sandbox starts. Before the console opens we ask the class sandbox (EHLO, as
`:mailbox` does) where its web view is, and check the student's name and password there
(`GET /api/whoami`), so a wrong password is one line and an exit code, not a console that
reports nothing. Then the ordinary console connects to HOST:PORT, and the lesson runner's
every judged step is sent to `POST /api/lessons/progress` on one worker thread, in order,
never blocking the console; a report that fails is one line on screen.

The password comes from --password-file, SMTP_TUTOR_PASSWORD, or a masked prompt; it goes
only to the web view (basic auth), never to the SMTP session, the history or a transcript.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from smtp_tutor.cli.text import EXIT_CONNECTION, EXIT_USAGE, say_in
from smtp_tutor.core.catalogue import message

if TYPE_CHECKING:
    from smtp_tutor.console.app import ConsoleOptions
    from smtp_tutor.core.lessons import Lesson
    from smtp_tutor.core.lessons.progress import Progress

EXIT_REFUSED = 1  # the class sandbox refused the name and password
PROG = "smtp-tutor lesson"
WAIT_FOR_REPORTS = 10.0  # seconds, at the end, for the last step's report to arrive


def wants_remote(args: argparse.Namespace) -> bool:
    """Whether any of --server, --user, --password-file was given."""
    names = ("server", "user", "password_file")
    return any(getattr(args, name, None) is not None for name in names)


def run_remote_lesson(
    args: argparse.Namespace, lesson: Lesson, progress: Progress, options: ConsoleOptions
) -> int:
    from smtp_tutor.client.sandbox_api import SandboxApiError, discover_web, whoami

    lang = options.lang
    if args.server is None:
        return _usage("lesson_user_needs_server", lang)
    if not args.user:
        return _usage("lesson_server_needs_user", lang)
    host, port = args.server
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        base = discover_web(host, port)
    except SandboxApiError as error:
        return _fail(say_in("lesson_unreachable", lang, reason=error), EXIT_CONNECTION)
    if base is None:
        return _fail(say_in("lesson_no_web", lang, address=address), EXIT_CONNECTION)
    password = _password(args, address, lang)
    if password is None:
        return EXIT_USAGE
    try:
        whoami(base, args.user, password)
    except SandboxApiError as error:
        if error.status in (401, 403):
            what = say_in("lesson_wrong_password", lang, url=base, user=args.user)
            return _fail(what, EXIT_REFUSED)
        return _fail(say_in("lesson_web_failed", lang, reason=error), EXIT_CONNECTION)
    changed = _scenario_changes(lesson)
    if changed:
        print(message("lessons_ui", "remote_scenario", lang, settings=changed), flush=True)
    return asyncio.run(_session(lesson, progress, options, (host, port), base, args.user, password))


async def _session(
    lesson: Lesson,
    progress: Progress,
    options: ConsoleOptions,
    server: tuple[str, int],
    base: str,
    user: str,
    password: str,
) -> int:
    from smtp_tutor import __version__
    from smtp_tutor.client.sandbox_api import SandboxApiError, post_progress
    from smtp_tutor.client.session import Target
    from smtp_tutor.console.app import Console
    from smtp_tutor.console.lesson import LessonRunner

    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp-tutor-progress")
    pending: set[asyncio.Future[None]] = set()
    host, port = server
    console = Console(Target(host, port), options)
    console.tracker.add_secret(password, user)  # masked, should it ever show up anyway
    runner = LessonRunner(lesson, progress, options.lang)
    runner.remote_web = base
    title, _translated = lesson.title.get(options.lang)
    total = len(lesson.steps)

    def report(number: int, passed: bool) -> None:
        body: dict[str, Any] = {
            "lesson": lesson.id,
            "title": f"{lesson.number}. {title}",
            "steps": total,
            "step": min(number, total + 1),
            "passed": passed,
        }
        future = loop.run_in_executor(worker, post_progress, base, user, password, body)
        pending.add(future)
        future.add_done_callback(lambda done: _reported(done, number))

    def _reported(done: asyncio.Future[None] | Future[None], number: int) -> None:
        pending.discard(done)  # type: ignore[arg-type]
        if done.cancelled():
            return
        error = done.exception()
        if isinstance(error, SandboxApiError):
            text = message(
                "lessons_ui", "remote_report_failed", options.lang, number=number, reason=error
            )
            console.print_text(text, "class:finding.error")
        elif error is not None:
            console.report_failure(error, "reporting a lesson step to the class sandbox")

    runner.on_result = report
    console.lesson = runner
    head = message(
        "lessons_ui",
        "remote_banner",
        options.lang,
        version=__version__,
        address=f"{host}:{port}",
        user=user,
        url=base,
    ).rstrip("\n")
    options.banner = runner.banner(head + "\n-")  # its last line becomes the step to start
    report(runner.index + 1, False)  # the dashboard shows the student on this lesson now
    try:
        code = await console.run()
        if pending:
            await asyncio.wait(set(pending), timeout=WAIT_FOR_REPORTS)
    finally:
        worker.shutdown(wait=False, cancel_futures=True)
    return code


def _password(args: argparse.Namespace, address: str, lang: str) -> str | None:
    """From --password-file, else SMTP_TUTOR_PASSWORD, else a masked prompt; None: said why."""
    if args.password_file is not None:
        try:
            text = args.password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as error:
            reason = getattr(error, "strerror", None) or error
            what = say_in("lesson_password_file", lang, path=args.password_file, reason=reason)
            _fail(what, EXIT_USAGE)
            return None
        lines = text.splitlines()
        return lines[0] if lines else ""
    from_env = os.environ.get("SMTP_TUTOR_PASSWORD")
    if from_env is not None:
        return from_env
    if sys.stdin.isatty() and sys.stdout.isatty():
        from prompt_toolkit import prompt

        question = say_in("lesson_password_prompt", lang, user=args.user, address=address)
        try:
            # Masked, and no history: the password is nowhere but in this process.
            return prompt(question, is_password=True)
        except EOFError:
            return None
    _fail(say_in("lesson_no_password", lang, user=args.user), EXIT_USAGE)
    return None


def _scenario_changes(lesson: Lesson) -> str:
    """The lesson's sandbox settings that differ from the default sandbox's, as `k=v, …`."""
    from smtp_tutor.sandbox import SandboxConfig

    defaults = {
        item.name: item.default
        for item in dataclasses.fields(SandboxConfig)
        if item.default is not dataclasses.MISSING
    }
    changed = {
        key: value
        for key, value in lesson.scenario.items()
        if key not in defaults or defaults[key] != value
    }
    return ", ".join(f"{key}={_show(value)}" for key, value in sorted(changed.items()))


def _show(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _usage(key: str, lang: str) -> int:
    what = say_in(key, lang)
    print(say_in("usage_error", lang, prog=PROG, message=what), file=sys.stderr)
    return EXIT_USAGE


def _fail(text: str, code: int) -> int:
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)
    return code
