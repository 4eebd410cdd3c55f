"""`smtp-tutor lessons --reset` and `--check`, the real program in subprocesses."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pexpect
import pytest

from smtp_tutor.core.catalogue import message
from smtp_tutor.core.lessons import find_lesson, load_lessons
from tests import test_cli
from tests.test_cli import read_until, run

env = test_cli.env  # the fixture: a private home, an English locale, no colour


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_reset_all_says_so_in_words(env: dict[str, str], lang: str) -> None:
    result = run(env, "lessons", "--reset", "--lang", lang)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first == message("lessons_ui", "reset_done", lang)
    assert "reset_done" not in result.stdout


def test_reset_one_lesson_names_it(env: dict[str, str]) -> None:
    result = run(env, "lessons", "--reset", "greeting")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "Progress of lesson 1 (The greeting: reading a reply code) forgotten: "
        "it starts again at step 1."
    )
    zh = run(env, "lessons", "--reset", "1", "--lang", "zh").stdout.splitlines()[0]
    assert zh.startswith("第 1 课（问候：读懂回复码）的进度已清除"), zh


def _step(step_id: str, verb: str, code: str, solution: str) -> str:
    return f"""
[[steps]]
id = "{step_id}"
explain.en = "Send {verb}."
goal.en = "Send {verb}."
send.verb = ["{verb}"]
expect.code = ["{code}"]
success.en = "{code}."
solution = ["{solution}"]
"""


# Its third step expects 250, but its solution names the sandbox's unknown user (550).
BROKEN = (
    'format = 1\nid = "broken-rcpt"\nnumber = 90\nmissing = ["zh"]\n'
    'title.en = "A lesson whose solution fails"\nintro.en = "Four steps."\n'
    + _step("ehlo", "EHLO", "250", "EHLO laptop.example")
    + _step("mail", "MAIL", "250", "MAIL FROM:<student@example.com>")
    + _step("rcpt", "RCPT", "250", "RCPT TO:<nobody@example.com>")
    + _step("quit", "QUIT", "221", "QUIT")
)


def test_a_failing_solution_names_its_line_and_both_reply_codes(
    env: dict[str, str], tmp_path: Path
) -> None:
    lesson = tmp_path / "90-broken.toml"
    lesson.write_text(BROKEN, "utf-8")
    rcpt_solution = BROKEN.splitlines().index('solution = ["RCPT TO:<nobody@example.com>"]') + 1
    result = run(env, "lessons", "--check", str(lesson))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"{lesson}:{rcpt_solution}: solution replay: step 3 ('rcpt'): "
        "solution line 'RCPT TO:<nobody@example.com>': expected reply 250, got 550"
    ), lines
    # The runner is still on step 3 when QUIT comes: judged as the wrong command, with codes.
    assert lines[1] == (
        f"{lesson}:{rcpt_solution}: solution replay: step 3 ('rcpt'): solution line 'QUIT': "
        "that is not what this step asks for (expected reply 250, got 221)"
    ), lines
    assert "wrong_code" not in result.stdout


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_banner_of_a_lesson_starts_with_its_first_step_not_ehlo(
    env: dict[str, str], lang: str
) -> None:
    """Lesson 1 starts with NOOP: the banner must not tell the student to start with EHLO."""
    lessons, _errors = load_lessons([])
    lesson = find_lesson(lessons, "1")
    assert lesson is not None and lesson.steps[0].verbs == ("NOOP",)
    goal, _translated = lesson.steps[0].goal.get(lang)
    env.update(PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
    log = io.StringIO()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "smtp_tutor", "lesson", "1", "--lang", lang],
        env=env,
        dimensions=(50, 160),
        encoding="utf-8",
        timeout=60,
    )
    child.logfile_read = log
    try:
        screen = read_until(child, log, r"^220 .*smtp>")
        child.sendline(":quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    banner = screen.split("━━", 1)[0]  # before the lesson's title
    assert "student / secret" in banner
    assert "EHLO me.example" not in screen
    start = message(
        "lessons_ui", "banner_start", lang, number=1, total=len(lesson.steps), goal=goal
    )
    assert start.splitlines()[0] in banner, banner
    assert child.exitstatus == 0


def test_a_resumed_lesson_banner_names_the_step_it_resumes_at(tmp_path: Path) -> None:
    from smtp_tutor.console.lesson import LessonRunner
    from smtp_tutor.console.progress import Progress

    lessons, _errors = load_lessons([])
    lesson = find_lesson(lessons, "2")
    assert lesson is not None and len(lesson.steps) > 1
    progress = Progress.load(tmp_path / "progress.json")
    progress.mark_step(lesson.id, 1, lesson.steps[0].id)
    sandbox_banner = "line one\nline two\nStart with:  EHLO me.example"
    banner = LessonRunner(lesson, progress, "en").banner(sandbox_banner).splitlines()
    goal, _translated = lesson.steps[1].goal.get("en")
    assert banner[:2] == ["line one", "line two"]
    assert banner[2] == f"Start with:  step 2 of {len(lesson.steps)} below — {goal}"
    progress.mark_step(lesson.id, len(lesson.steps), lesson.steps[-1].id)
    done = LessonRunner(lesson, progress, "zh").banner(sandbox_banner).splitlines()
    assert done[2] == message("lessons_ui", "banner_done", "zh")
