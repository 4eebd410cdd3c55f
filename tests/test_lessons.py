"""Every built-in lesson's reference solution is replayed through the real console against
the sandbox, and every step must pass — as Learn Git Branching replays each level in CI.
A lesson whose solution fails breaks the build."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import sys
from pathlib import Path

import pexpect
import pytest

from smtp_tutor.console.lesson_replay import replay_lesson
from smtp_tutor.core.lessons import Lesson, load_lessons

ALL_LESSONS, ERRORS = load_lessons()
# The SMTP lessons (1-13); the POP3 ones (14-16) are replayed in test_lessons_pop3_console.py.
LESSONS = [lesson for lesson in ALL_LESSONS if lesson.protocol == "smtp"]


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


def test_the_curriculum_is_complete() -> None:
    assert not ERRORS
    assert [lesson.number for lesson in ALL_LESSONS] == list(range(1, 17))
    assert [lesson.number for lesson in LESSONS] == list(range(1, 14))
    assert all(lesson.builtin and not lesson.missing for lesson in ALL_LESSONS)


@pytest.mark.parametrize("lesson", LESSONS, ids=[f"{x.number:02d}-{x.id}" for x in LESSONS])
def test_reference_solution_passes_every_step(lesson: Lesson) -> None:
    report = asyncio.run(replay_lesson(lesson, "en"))
    assert report.ok, "\n".join(report.problems()) + "\n--- output ---\n" + report.output[-3000:]
    assert [r.step_id for r in report.results] == [step.id for step in lesson.steps]


@pytest.mark.parametrize("lesson", LESSONS[:1] + LESSONS[-1:], ids=lambda x: x.id)
def test_chinese_replay_passes_too(lesson: Lesson) -> None:
    report = asyncio.run(replay_lesson(lesson, "zh"))
    assert report.ok, "\n".join(report.problems())
    assert "第 1 步" in report.output


def smtp_tutor(*args: str) -> list[str]:
    script = shutil.which("smtp-tutor", path=str(Path(sys.executable).parent))
    return [script, *args] if script else [sys.executable, "-m", "smtp_tutor", *args]


def test_lesson_one_in_chinese_in_a_terminal_with_a_fail_then_pass(tmp_path: Path) -> None:
    env = dict(os.environ, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", NO_COLOR="1")
    command = smtp_tutor("lesson", "1", "--lang", "zh")
    child = pexpect.spawn(command[0], command[1:], env=env, encoding="utf-8", timeout=20,
                          dimensions=(50, 160))  # fmt: skip
    child.logfile_read = log = io.StringIO()
    child.expect("第 1 步")
    child.send("EHLO me.example\r")  # not what step 1 asks
    child.expect("提示")
    child.send(":hint\r")
    child.expect("提示")
    child.send("NOOP\r")
    child.expect("✓")
    child.send(":quit\r")
    child.expect(pexpect.EOF)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", log.getvalue())
    assert "✗" in screen
    child.close()
    assert child.exitstatus == 0
    # The progress was saved after the step: the list shows where the student stopped.
    listing = pexpect.run(
        " ".join(smtp_tutor("lessons", "--lang", "zh")), env=env, encoding="utf-8"
    )
    assert "▸" in listing and "第 2" in listing


def test_restart_starts_the_greylist_lesson_afresh(tmp_path: Path) -> None:
    from smtp_tutor.client.session import Target
    from smtp_tutor.console.app import ConsoleOptions
    from smtp_tutor.console.lesson import LessonRunner
    from smtp_tutor.console.progress import Progress
    from smtp_tutor.console.scripted import run_console
    from smtp_tutor.core.lessons import find_lesson
    from smtp_tutor.sandbox import Sandbox, SandboxConfig

    lesson = find_lesson(LESSONS, "rset-quit")
    assert lesson is not None
    solution = [line for step in lesson.steps for line in step.solution]

    async def main() -> LessonRunner:
        config = SandboxConfig(port=0, mailbox=tmp_path / "Maildir", **lesson.scenario)  # type: ignore[arg-type]
        sandbox = Sandbox(config)
        await sandbox.start()
        runner = LessonRunner(lesson, Progress(), "en", mailbox=sandbox.mailbox_path)
        runner.on_restart = sandbox.forget_greylist

        def attach(console: object) -> None:
            console.lesson = runner  # type: ignore[attr-defined]

        try:
            options = ConsoleOptions(color=False, toolbar=False, mailbox=sandbox.mailbox_path)
            lines = [*solution[:4], ":restart", *solution]  # halfway, then from the top
            await run_console(Target(sandbox.host, sandbox.port), lines, options, prepare=attach)
        finally:
            await sandbox.stop()
        return runner

    runner = asyncio.run(main())
    assert runner.finished and all(result.ok for result in runner.results)


def test_the_chunks_step_is_passed_by_bdat_and_not_by_data(tmp_path: Path) -> None:
    from smtp_tutor.client.session import Target
    from smtp_tutor.console.app import ConsoleOptions
    from smtp_tutor.console.lesson import LessonRunner
    from smtp_tutor.console.progress import Progress
    from smtp_tutor.console.scripted import run_console
    from smtp_tutor.core.lessons import find_lesson
    from smtp_tutor.sandbox import Sandbox, SandboxConfig

    lesson = find_lesson(LESSONS, "transparency")
    assert lesson is not None
    ids = [step.id for step in lesson.steps]
    chunks = lesson.steps[ids.index("chunks")]
    before = [line for step in lesson.steps[: ids.index("chunks")] for line in step.solution]
    message = list(chunks.solution[1:])  # the same lines, sent the DATA way first

    async def main() -> tuple[LessonRunner, str]:
        config = SandboxConfig(port=0, mailbox=tmp_path / "Maildir")
        sandbox = Sandbox(config)
        await sandbox.start()
        runner = LessonRunner(lesson, Progress(), "en", mailbox=sandbox.mailbox_path)

        def attach(console: object) -> None:
            console.lesson = runner  # type: ignore[attr-defined]

        try:
            options = ConsoleOptions(color=False, toolbar=False, mailbox=sandbox.mailbox_path)
            lines = [*before, "DATA", *message, *before[-2:], *chunks.solution]
            _code, out, _console = await run_console(
                Target(sandbox.host, sandbox.port), lines, options, prepare=attach
            )
        finally:
            await sandbox.stop()
        return runner, out

    runner, out = asyncio.run(main())
    assert runner.finished, out[-2000:]
    chunk_results = [r for r in runner.results if r.step_id == "chunks"]
    assert [r.ok for r in chunk_results] == [True]  # DATA's message was not judged as it
    goal = chunks.goal.get("en")[0]
    # Passed by the chunks, not by the DATA message sent before them.
    assert out.index(f"✓ {goal}") > out.index("→ BDAT 20  (chunk 1 of") > out.index("354")
