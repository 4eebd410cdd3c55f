"""Replay a lesson's reference solution through the real console against a fresh sandbox.

Learn Git Branching replays every level's solution in CI; so do we. A lesson whose solution
does not pass every step is broken, whoever wrote it: the tests run this for the built-in
lessons and `smtp-tutor lessons --check` runs it for a teacher's. A POP3 lesson (14-16) is
typed into the POP3 console on the sandbox's POP3 port, its `[[setup.mail]]` filed first.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from smtp_tutor.client.session import Target
from smtp_tutor.console.app import Console, ConsoleOptions
from smtp_tutor.console.lesson import LessonRunner, StepResult, file_setup_mail
from smtp_tutor.console.pop3_console import Pop3Console
from smtp_tutor.console.progress import Progress
from smtp_tutor.console.scripted import ScriptError, run_console, screen_text
from smtp_tutor.core.lessons import Lesson, Step
from smtp_tutor.core.lessons.judge import Verdict, render_reason
from smtp_tutor.core.lessons.kinds import kind_of


@dataclass
class LessonReplay:
    lesson: Lesson
    results: list[StepResult] = field(default_factory=list)
    finished: bool = False
    output: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.finished and self.error is None and all(r.ok for r in self.results)

    def problems(self) -> list[str]:
        """One line per thing that went wrong, like a compiler's: `path:line: solution
        replay: …`, naming the step, the solution line judged, and the reply code it
        expected and got (the line is the step's `solution` key)."""
        path = self.lesson.path
        steps = {step.id: (number, step) for number, step in enumerate(self.lesson.steps, 1)}
        found = [_failure(path, *steps[r.step_id], r) for r in self.results if not r.ok]
        if self.error:
            found.append(f"{path}: solution replay: {self.error}")
        if not self.finished and not found:
            done = len([r for r in self.results if r.ok])
            total = len(self.lesson.steps)
            found.append(
                f"{path}: solution replay: the solution stopped after {done} of {total} steps"
            )
        return found


def _failure(path: Path, number: int, step: Step, result: StepResult) -> str:
    """`lessons/x.toml:12: solution replay: step 2 ("ehlo"): solution line "HELO x": expected
    reply 250, got 502` — and the judge's reason when it was not the code."""
    where = f"{path}:{step.solution_line or step.line_no}"
    sent = f"solution line {result.line!r}" if result.line else "the solution's message"
    codes = (
        f"expected reply {', '.join(step.expect) or 'any'}, "
        f"got {'no reply' if result.code is None else result.code}"
    )
    if result.reason != "wrong_code":
        reason = render_reason(Verdict(False, result.reason, result.params), "en")
        codes = f"{reason} ({codes})"
    return f"{where}: solution replay: step {number} ({step.id!r}): {sent}: {codes}"


async def replay_lesson(lesson: Lesson, lang: str = "en", timeout: float = 30.0) -> LessonReplay:
    """Type every step's solution into a console on a sandbox set up as the lesson asks."""
    from smtp_tutor.sandbox import Sandbox, SandboxConfig

    report = LessonReplay(lesson)
    with tempfile.TemporaryDirectory(prefix="smtp-tutor-lesson-") as work:
        workdir = Path(work)
        pop3 = lesson.protocol == "pop3"  # lessons 14-16: the POP3 console, POP3 port
        extra = {"pop3_port": 0} if pop3 else {}
        config = SandboxConfig(port=0, mailbox=workdir / "Maildir", **extra, **lesson.scenario)  # type: ignore[arg-type]
        sandbox = Sandbox(config)
        await sandbox.start()
        try:
            file_setup_mail(sandbox.accounts, lesson)
            target = Target(sandbox.host, sandbox.port)
            console_class: type[Console | Pop3Console] = Console
            if pop3:
                assert sandbox.pop3_host is not None and sandbox.pop3_port is not None
                target = Target(sandbox.pop3_host, sandbox.pop3_port)
                console_class = Pop3Console
            progress = Progress.load(workdir / "progress.json")
            runner = LessonRunner(lesson, progress, lang, mailbox=sandbox.mailbox_path)
            options = ConsoleOptions(
                color=False, toolbar=False, lang=lang, mailbox=sandbox.mailbox_path
            )
            lines = [line for step in lesson.steps for line in kind_of(step).typed_lines(step)]

            def attach(console: object) -> None:
                console.lesson = runner  # type: ignore[attr-defined]

            try:
                _code, out, _console = await run_console(
                    target, lines, options, timeout, prepare=attach, console_class=console_class
                )
                report.output = screen_text(out)
            except ScriptError as error:
                report.error = str(error)
            report.results = list(runner.results)
            report.finished = runner.finished
        finally:
            await sandbox.stop()
    return report
