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
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from smtp_tutor.cli.text import EXIT_CONNECTION, EXIT_USAGE, say_in
from smtp_tutor.core.catalogue import message

if TYPE_CHECKING:
    from smtp_tutor.console.app import Console, ConsoleOptions
    from smtp_tutor.console.progress import Progress
    from smtp_tutor.core.lessons import Lesson

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
    from smtp_tutor.client.session import Target
    from smtp_tutor.console.app import Console

    host, port = server
    console = Console(Target(host, port), options)
    reporter = RemoteLesson(lesson, progress, base, user, password)
    reporter.prepare(console)
    try:
        code = await console.run()
        await reporter.drain()
    finally:
        reporter.close()
    return code


class RemoteLesson:
    """Wires a lesson runner into a console on a class sandbox, and reports its steps.

    Reports go out one at a time on one worker thread, so they arrive in the order the
    steps were judged; the console's event loop never waits for the network.
    """

    def __init__(
        self, lesson: Lesson, progress: Progress, base: str, user: str, password: str
    ) -> None:
        self.lesson = lesson
        self.progress = progress
        self.base = base
        self.user = user
        self._password = password
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp-tutor-progress")
        self._pending: set[asyncio.Future[None]] = set()
        self.console: Console | None = None
        self.title = ""

    def prepare(self, console: Console) -> None:
        """Before `console.run()`: the lesson runner, the banner, the first report."""
        from smtp_tutor import __version__
        from smtp_tutor.console.lesson import LessonRunner

        lang = console.options.lang
        self.console = console
        console.tracker.add_secret(self._password, self.user)  # masked, should it ever show
        runner = LessonRunner(self.lesson, self.progress, lang)
        runner.remote_web = self.base
        runner.on_result = self.report
        console.lesson = runner
        title, _translated = self.lesson.title.get(lang)
        self.title = f"{self.lesson.number}. {title}"
        head = message(
            "lessons_ui",
            "remote_banner",
            lang,
            version=__version__,
            address=f"{console.target.host}:{console.target.port}",
            user=self.user,
            url=self.base,
        ).rstrip("\n")
        console.options.banner = runner.banner(head + "\n-")  # its last line: the first step
        self.report(runner.index + 1, False)  # the dashboard shows the student on it now

    def report(self, number: int, passed: bool) -> None:
        """One judged step (number from 1): sent in the background, in order."""
        from smtp_tutor.client.sandbox_api import post_progress

        total = len(self.lesson.steps)
        body: dict[str, Any] = {
            "lesson": self.lesson.id,
            "title": self.title,
            "steps": total,
            "step": min(number, total + 1),
            "passed": passed,
        }
        port = self._client_port()
        if port is not None:  # the class sandbox links its session to this student
            body["client_port"] = port
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._worker, post_progress, self.base, self.user, self._password, body
        )
        self._pending.add(future)
        future.add_done_callback(lambda done: self._reported(done, number))

    def _client_port(self) -> int | None:
        session = self.console.session if self.console is not None else None
        connection = session.connection if session is not None else None
        return connection.local_port if connection is not None else None

    def _reported(self, done: asyncio.Future[None], number: int) -> None:
        from smtp_tutor.client.sandbox_api import SandboxApiError

        self._pending.discard(done)
        if done.cancelled() or self.console is None:
            return
        error = done.exception()
        lang = self.console.options.lang
        if isinstance(error, SandboxApiError):
            text = message("lessons_ui", "remote_report_failed", lang, number=number, reason=error)
            self.console.print_text(text, "class:finding.error")
        elif error is not None:
            self.console.report_failure(error, "reporting a lesson step to the class sandbox")

    async def drain(self, timeout: float = WAIT_FOR_REPORTS) -> None:
        """Wait (a bounded while) for the reports still on their way."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)


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
    from smtp_tutor.core.records import fields
    from smtp_tutor.sandbox import SandboxConfig

    # A record keeps its plain defaults on the class (a factory's are made per instance).
    defaults = {
        name: getattr(SandboxConfig, name)
        for name in fields(SandboxConfig)
        if hasattr(SandboxConfig, name)
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
