"""Lessons 14-16 run for real: the POP3 console on the sandbox's POP3 port, the lesson's
`[[setup.mail]]` in the student's mailbox, each step judged from the server's real answers
(127.0.0.1, prompt_toolkit pipe input, as a person types), progress saved; `smtp-tutor
lesson 14` in a terminal; `lessons --check` replays the POP3 solutions too."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from smtp_tutor.client.session import Target
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.console.lesson import LessonRunner, file_setup_mail
from smtp_tutor.console.lesson_replay import replay_lesson
from smtp_tutor.console.pop3_console import Pop3Console
from smtp_tutor.console.progress import Progress
from smtp_tutor.console.scripted import run_console, screen_text
from smtp_tutor.core.catalogue import message
from smtp_tutor.core.lessons import Lesson, find_lesson, load_lessons

LESSONS, ERRORS = load_lessons()
POP3 = [lesson for lesson in LESSONS if lesson.protocol == "pop3"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


def lesson_of(key: str) -> Lesson:
    lesson = find_lesson(LESSONS, key)
    assert lesson is not None
    return lesson


def solution(lesson: Lesson, steps: slice = slice(None)) -> list[str]:
    return [line for step in lesson.steps[steps] for line in step.solution]


async def drive(
    lesson: Lesson, lines: list[str], workdir: Path, lang: str = "en"
) -> tuple[LessonRunner, str]:
    """Type `lines` into the POP3 console of a lesson on a fresh sandbox, as `lesson` does."""
    from smtp_tutor.cli.lesson import _on_restart
    from smtp_tutor.sandbox import Sandbox, SandboxConfig

    sandbox = Sandbox(SandboxConfig(port=0, pop3_port=0, mailbox=workdir / "Maildir"))
    await sandbox.start()
    try:
        file_setup_mail(sandbox.accounts, lesson)
        runner = LessonRunner(lesson, Progress.load(), lang, mailbox=sandbox.mailbox_path)
        runner.on_restart = _on_restart(sandbox, lesson)

        def attach(console: Pop3Console) -> None:
            console.lesson = runner

        assert sandbox.pop3_host is not None and sandbox.pop3_port is not None
        options = ConsoleOptions(color=False, toolbar=False, lang=lang)
        _code, out, _console = await run_console(
            Target(sandbox.pop3_host, sandbox.pop3_port),
            lines,
            options,
            prepare=attach,
            console_class=Pop3Console,
        )
    finally:
        await sandbox.stop()
    return runner, screen_text(out)


@pytest.mark.parametrize("lesson", POP3, ids=[f"{x.number}-{x.id}" for x in POP3])
def test_reference_solution_passes_every_step_on_the_pop3_server(lesson: Lesson) -> None:
    report = asyncio.run(replay_lesson(lesson, "en"))
    assert report.ok, "\n".join(report.problems()) + "\n--- output ---\n" + report.output[-3000:]
    assert [r.step_id for r in report.results] == [step.id for step in lesson.steps]


def test_chinese_replay_of_lesson_15_reads_the_setup_mail() -> None:
    report = asyncio.run(replay_lesson(lesson_of("pop3-mailbox"), "zh"))
    assert report.ok, "\n".join(report.problems())
    assert "第 1 步" in report.output
    assert "<20250304093000.lesson9@example.com>" in report.output  # RETR 1: the setup mail


def test_lesson_14_through_the_console_a_wrong_command_first(tmp_path: Path) -> None:
    lesson = lesson_of("14")
    lines = ["STAT", ":hint", *solution(lesson)]  # step 1 asks for CAPA
    runner, screen = asyncio.run(drive(lesson, lines, tmp_path))
    assert runner.finished, screen[-3000:]
    first = runner.results[0]
    assert (first.step_id, first.ok, first.reason) == ("capa", False, "wrong_command")
    assert (first.line, first.code) == ("STAT", "-ERR")
    assert [r.step_id for r in runner.results[1:]] == [step.id for step in lesson.steps]
    assert all(r.ok for r in runner.results[1:])
    hints = lesson.steps[0].hints["en"]
    assert screen.index("✗ that is not what this step asks for") < screen.index(hints[0])
    assert screen.index(hints[0]) < screen.index(hints[1])  # :hint: the next one
    assert "TLS active" in screen and "Logged in as student" in screen
    title = lesson.title.get("en")[0]
    done = message("lessons_ui", "lesson_done", "en", title=title)
    assert done.split(".")[0] in screen  # (wrapped to the screen's 80 columns)
    # Progress is saved in the (private) state directory: the lesson is done.
    progress = Progress.load()
    assert progress.completed("pop3-login") and not progress.problem
    assert list((tmp_path / "xdg_state_home").rglob("*.json")), "no progress file written"


def test_a_wrong_password_gets_the_steps_failure_then_the_right_one_passes(
    tmp_path: Path,
) -> None:
    lesson = lesson_of("pop3-login")
    ids = [step.id for step in lesson.steps]
    upto_pass = solution(lesson, slice(0, ids.index("pass")))
    lines = [*upto_pass, "PASS wrong", "USER student", "PASS secret"]
    runner, screen = asyncio.run(drive(lesson, lines, tmp_path))
    failed = [r for r in runner.results if not r.ok]
    assert (failed[0].step_id, failed[0].reason, failed[0].code) == (
        "pass",
        "wrong_code",
        "-ERR [AUTH]",
    ), screen[-2000:]
    assert "✗ the server answered -ERR [AUTH]; this step expects +OK" in screen
    assert runner.step is not None and runner.step.id == "quit"
    assert "PASS wrong" not in screen  # the password, masked as typed


@pytest.mark.parametrize("key", ["pop3-login", "pop3-mailbox"])
def test_user_again_after_a_wrong_password_restarts_the_login_unjudged(
    tmp_path: Path, key: str
) -> None:
    """After -ERR to PASS the student starts the login again with USER, as RFC 1939 wants:
    the PASS step lets that USER through (its +OK shown), only the PASS lines are judged."""
    lesson = lesson_of(key)
    ids = [step.id for step in lesson.steps]
    upto_pass = solution(lesson, slice(0, ids.index("pass")))
    lines = [*upto_pass, "PASS wrong", "USER student", "PASS secret"]
    runner, screen = asyncio.run(drive(lesson, lines, tmp_path))
    judged = [(r.step_id, r.ok, r.reason) for r in runner.results if r.step_id == "pass"]
    assert judged == [("pass", False, "wrong_code"), ("pass", True, "")], screen[-2000:]
    after_user = screen.split("USER student")[-1]
    assert "✗" not in after_user.split("PASS")[0]  # the USER line drew no failure
    assert runner.step is not None and runner.step.id == ids[ids.index("pass") + 1]


def test_restart_files_the_mail_lesson_16_deleted_again(tmp_path: Path) -> None:
    lesson = lesson_of("pop3-leaving")
    ids = [step.id for step in lesson.steps]
    first_half = solution(lesson, slice(0, ids.index("quit") + 1))  # DELE 1 then QUIT
    runner, screen = asyncio.run(
        drive(lesson, [*first_half, ":restart", *solution(lesson)], tmp_path)
    )
    assert runner.finished, screen[-3000:]
    assert all(r.ok for r in runner.results), [r for r in runner.results if not r.ok]
    assert [r.step_id for r in runner.results] == ids  # :restart started the list afresh
    # The first half's QUIT removed one message, :restart filed it again, and the whole
    # lesson removed one of the two: one is left (none had the first one stayed deleted).
    from smtp_tutor.sandbox.accounts import AccountMailboxes

    assert len(AccountMailboxes(tmp_path / "Maildir", ["student"]).of("student")) == 1


# -- the real program -------------------------------------------------------------------------


def environment(home: Path) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "LC_", "LANG"))}
    return dict(
        kept,
        PROMPT_TOOLKIT_NO_CPR="1",
        TERM="xterm",
        NO_COLOR="1",
        LC_ALL="C.UTF-8",
        XDG_DATA_HOME=str(home / "d"),
        XDG_STATE_HOME=str(home / "s"),
        XDG_CONFIG_HOME=str(home / "c"),
        XDG_CACHE_HOME=str(home / "k"),
    )


def test_smtp_tutor_lesson_14_in_a_terminal(tmp_path: Path) -> None:
    env = environment(tmp_path)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "smtp_tutor", "lesson", "14"],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 160),
    )
    child.logfile_read = log = io.StringIO()
    try:
        child.expect("Step 1 of 11")
        child.expect("pop3>")
        child.send("CAPA\r")
        child.expect("✓ Ask for the server's capabilities")
        child.expect("Step 2 of 11")
        child.send(":quit\r")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", log.getvalue())
    assert "cannot run POP3 lessons" not in screen and "Traceback" not in screen
    assert re.search(r"POP3 on 127\.0\.0\.1:\d+", screen)
    assert "+OK smtp-tutor sandbox POP3 ready" in screen
    assert child.exitstatus == 0, screen[-2000:]
    listing = subprocess.run(
        [sys.executable, "-m", "smtp_tutor", "lessons"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    [line] = [x for x in listing.stdout.splitlines() if "POP3: the other half" in x]
    assert "▸" in line, listing.stdout  # where the student stopped: lesson 14, step 2


def check(home: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smtp_tutor", "lessons", "--check", *map(str, paths)],
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_lessons_check_replays_lessons_14_to_16(tmp_path: Path) -> None:
    files = sorted((ROOT / "lessons").glob("1[4-6]-pop3-*.toml"))
    assert len(files) == 3
    result = check(tmp_path, *files)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout.splitlines() == [f"{file}: OK" for file in files]


def test_a_broken_pop3_solution_fails_with_its_file_and_line(tmp_path: Path) -> None:
    text = (ROOT / "lessons" / "15-pop3-mailbox.toml").read_text("utf-8")
    assert text.count('solution = ["RETR 1"]') == 1
    broken = tmp_path / "95-broken.toml"  # RETR of a message the mailbox does not hold
    broken.write_text(
        text.replace('id = "pop3-mailbox"', 'id = "pop3-broken"', 1)
        .replace("number = 15", "number = 95", 1)
        .replace('solution = ["RETR 1"]', 'solution = ["RETR 7"]'),
        "utf-8",
    )
    line = broken.read_text("utf-8").splitlines().index('solution = ["RETR 7"]') + 1
    result = check(tmp_path, broken)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{broken}:{line}: solution replay: step 9 ('retr'): "), first
    assert "solution line 'RETR 7'" in first and "got -ERR" in first, first


def test_a_lesson_keeps_its_protocol_smtp_is_refused_in_one_line(tmp_path: Path) -> None:
    lesson = lesson_of("pop3-login")
    runner, screen = asyncio.run(drive(lesson, [":smtp", *solution(lesson)], tmp_path))
    assert "a lesson speaks one protocol" in screen
    assert runner.finished, screen[-2000:]
