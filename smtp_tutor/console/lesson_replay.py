"""Replay a lesson's reference solution through the real console against a fresh sandbox.

Learn Git Branching replays every level's solution in CI; so do we. A lesson whose solution
does not pass every step is broken, whoever wrote it: the tests run this for the built-in
lessons and `smtp-tutor lessons --check` runs it for a teacher's.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.console.lesson import LessonRunner, StepResult
from smtp_tutor.console.scripted import ScriptError, run_console, screen_text
from smtp_tutor.core.lessons import Lesson
from smtp_tutor.core.progress import Progress
from smtp_tutor.session import Target


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
        """One line per thing that went wrong, naming the step."""
        found = [f"step {r.step_id!r} failed: {r.reason}" for r in self.results if not r.ok]
        if self.error:
            found.append(self.error)
        if not self.finished and not found:
            done = len([r for r in self.results if r.ok])
            found.append(f"the solution stopped after {done} of {len(self.lesson.steps)} steps")
        return found


async def replay_lesson(lesson: Lesson, lang: str = "en", timeout: float = 30.0) -> LessonReplay:
    """Type every step's solution into a console on a sandbox set up as the lesson asks."""
    from smtp_tutor.sandbox import Sandbox, SandboxConfig

    report = LessonReplay(lesson)
    with tempfile.TemporaryDirectory(prefix="smtp-tutor-lesson-") as work:
        workdir = Path(work)
        config = SandboxConfig(port=0, mailbox=workdir / "Maildir", **lesson.scenario)  # type: ignore[arg-type]
        sandbox = Sandbox(config)
        await sandbox.start()
        try:
            progress = Progress.load(workdir / "progress.json")
            runner = LessonRunner(lesson, progress, lang, mailbox=sandbox.mailbox_path)
            options = ConsoleOptions(
                color=False, toolbar=False, lang=lang, mailbox=sandbox.mailbox_path
            )
            lines = [line for step in lesson.steps for line in step.solution]

            def attach(console: object) -> None:
                console.lesson = runner  # type: ignore[attr-defined]

            try:
                _code, out, _console = await run_console(
                    Target(sandbox.host, sandbox.port), lines, options, timeout, prepare=attach
                )
                report.output = screen_text(out)
            except ScriptError as error:
                report.error = str(error)
            report.results = list(runner.results)
            report.finished = runner.finished
        finally:
            await sandbox.stop()
    return report
