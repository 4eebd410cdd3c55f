"""The registry of lesson step kinds: a new kind is one entry (and its texts), nothing more.

The kinds below are made up for the tests and registered in copies of the registry, never
in `STEP_KINDS` itself: `status` is a POP3-like command step answered by +OK/-ERR, with a key
of its own and a text of its own; `until` is an SMTP command step that is retried until the
reply passes, run through the real console runner and the solution replay.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from smtp_tutor.core import catalogue as catalogue_module
from smtp_tutor.core.catalogue import load_catalogue
from smtp_tutor.core.knowledge import LANGUAGES
from smtp_tutor.core.lessons import (
    STEP_KINDS,
    LessonError,
    Step,
    StepKind,
    StepKinds,
    check_lesson_file,
    kind_of,
    load_lesson,
)
from smtp_tutor.core.lessons.judge import Observation, hint_text, verdict
from smtp_tutor.core.lessons.kinds import Answer, Problem

PACKAGE = Path(__file__).resolve().parents[1] / "smtp_tutor"


class StatusKind(StepKind):
    """One POP3-like command line, decided by its reply's status, +OK or -ERR."""

    name = "status"
    own_keys = ("multiline",)
    texts = ("answer_status_multiline",)
    expect_help = 'a status ("+OK" or "-ERR")'

    def read_keys(self, table: Mapping[str, Any], problem: Problem) -> dict[str, object]:
        value = table.get("multiline", False)
        if not isinstance(value, bool):
            problem("multiline", "must be true or false")
            return {}
        return {"multiline": value}

    def parse_expect(self, item: object) -> str | None:
        ok = isinstance(item, str) and item.upper() in ("+OK", "-ERR")
        return item.upper() if ok else None  # type: ignore[union-attr]

    def code_matches(self, expect: Sequence[str], code: int | str | None) -> bool:
        return code in expect

    def answer_notes(self, step: Step) -> Mapping[int, str]:
        return {0: "answer_status_multiline"} if step.extra.get("multiline") else {}


STATUS_LESSON = """\
format = 1
id = "pop3-retr"
number = 50
missing = ["zh"]
title.en = "Fetch a message"
intro.en = "A made-up POP3 step."

[[steps]]
id = "ehlo"
explain.en = "An ordinary command step beside the new kind."
goal.en = "Greet."
send.verb = ["EHLO"]
expect.code = ["2xx"]
success.en = "Greeted."
solution = ["EHLO laptop.example"]

[[steps]]
id = "retr"
kind = "status"
explain.en = "RETR fetches a message."
goal.en = "Fetch message 1."
send.verb = ["RETR"]
send.pattern = "^RETR [0-9]+$"
expect.code = ["+ok"]
multiline = true
success.en = "+OK, and the message follows."
solution = ["RETR 1"]
"""


@pytest.fixture
def registry() -> StepKinds:
    kinds = STEP_KINDS.copy()
    kinds.register(StatusKind())
    return kinds


def write(tmp_path: Path, text: str, name: str = "50-pop3-retr.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.pure
def test_the_registry_holds_the_kinds_of_the_format() -> None:
    assert list(STEP_KINDS) == [
        "command", "auth", "message", "chunks", "pop3-command", "pop3-reconnect"
    ]  # fmt: skip
    assert STEP_KINDS.default is STEP_KINDS["command"]
    assert STEP_KINDS.default_for("smtp") is STEP_KINDS["command"]
    assert STEP_KINDS.default_for("pop3") is STEP_KINDS["pop3-command"]
    assert STEP_KINDS.protocols() == ("smtp", "pop3")
    assert [k.name for k in STEP_KINDS.values() if k.takes_manual] == ["auth"]
    assert [k.name for k in STEP_KINDS.values() if not k.takes_send] == [
        "message", "chunks", "pop3-reconnect"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="registered already"):
        STEP_KINDS.copy().register(StepKind())  # the base class has no name


@pytest.mark.pure
def test_a_copy_takes_a_new_kind_and_the_real_registry_does_not_change(
    registry: StepKinds,
) -> None:
    assert list(registry) == [*STEP_KINDS, "status"]
    assert "status" not in STEP_KINDS and len(STEP_KINDS) == 6
    with pytest.raises(ValueError):
        registry.register(StatusKind())
    # The made-up kind shares its key with the real POP3 command kind: one key, two takers.
    assert registry.own_keys() == ("multiline",) and STEP_KINDS.own_keys() == ("multiline",)


@pytest.mark.pure
def test_without_the_entry_the_kind_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, STATUS_LESSON)
    found = [e.message for e in check_lesson_file(path)]
    known = "command, auth, message, chunks, pop3-command, pop3-reconnect"
    assert f"step 2 (\"retr\"): kind: 'status' is not one of {known}" in found
    assert any("multiline: only pop3-command steps take it" in m for m in found), found


@pytest.mark.pure
def test_a_lesson_with_the_new_kind_loads_and_is_judged(
    registry: StepKinds, tmp_path: Path
) -> None:
    lesson = load_lesson(write(tmp_path, STATUS_LESSON), kinds=registry)
    ehlo, retr = lesson.steps
    assert (ehlo.kind, retr.kind) == ("command", "status")
    assert kind_of(retr) is registry["status"] and kind_of(ehlo) is STEP_KINDS["command"]
    assert retr.expect == ("+OK",) and retr.extra == {"multiline": True}

    # The judge asks the step's kind: the line must match send, the status must be expected.
    assert verdict(retr, Observation("RETR 1", "+OK")).ok
    wrong = verdict(retr, Observation("RETR 1", "-ERR"))
    assert (wrong.reason, dict(wrong.params)) == ("wrong_code", {"got": "-ERR", "want": "+OK"})
    assert verdict(retr, Observation("LIST", "+OK")).reason == "wrong_command"
    assert verdict(ehlo, Observation("EHLO x", 250)).ok  # the old kinds are untouched

    # Which reply decides it, and what the replay types: the base class's, inherited.
    kind = kind_of(retr)
    assert kind.decisive(retr, Answer("RETR", "RETR 1", "-ERR"), None) == "RETR 1"
    assert kind.decisive(retr, Answer("NOOP", "NOOP", "+OK"), None) is None  # exploring
    assert kind.typed_lines(retr) == ("RETR 1",)


@pytest.mark.pure
@pytest.mark.parametrize(
    ("old", "new", "at", "words"),
    [
        ("multiline = true", 'multiline = "yes"', "multiline", "multiline: must be true or false"),
        ('expect.code = ["+ok"]', 'expect.code = ["250"]', '["250"]', 'not a status ("+OK"'),
        (
            'expect.code = ["2xx"]',
            'expect.code = ["2xx"]\nmultiline = false',
            "multiline = false",
            'step 1 ("ehlo"): multiline: only pop3-command, status steps take it',
        ),
    ],
)
def test_the_file_check_reads_the_new_kind_from_the_registry(
    registry: StepKinds, tmp_path: Path, old: str, new: str, at: str, words: str
) -> None:
    text = STATUS_LESSON.replace(old, new, 1)
    path = write(tmp_path, text)
    errors = check_lesson_file(path, kinds=registry)
    matching = [e for e in errors if words in e.message]
    assert matching, [str(e) for e in errors]
    assert matching[0].line == line_of(text, at)
    with pytest.raises(LessonError):
        load_lesson(path, kinds=registry)


@pytest.mark.pure
def test_the_full_answer_shows_the_new_kinds_text(
    registry: StepKinds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kind's text is one more table in data/lessons_ui.toml (added here for the test)."""
    real = load_catalogue("lessons_ui")
    note = {"en": "(the answer runs to a lone dot)", "zh": "（答复一直到单独一个点为止）"}

    def catalogue(name: str) -> dict[str, dict[str, Any]]:
        return {**real, "answer_status_multiline": note} if name == "lessons_ui" else {}

    monkeypatch.setattr(catalogue_module, "load_catalogue", catalogue)
    retr = load_lesson(write(tmp_path, STATUS_LESSON), kinds=registry).steps[1]
    for lang in LANGUAGES:
        answer = hint_text(retr, 9, lang)[0].splitlines()
        assert answer[1:] == ["  " + note[lang], "    RETR 1"]


@pytest.mark.pure
def test_every_kind_names_texts_that_exist_in_every_language() -> None:
    for kind in STEP_KINDS.values():
        for key in kind.texts:
            entry = load_catalogue("lessons_ui").get(key)
            assert isinstance(entry, dict), f"{kind.name}: no [{key}] in lessons_ui.toml"
            assert all(entry.get(lang) for lang in LANGUAGES), (kind.name, key)


# The modules that used to test kinds by name, and now ask the registry.
DISPATCHERS = [
    "core/lessons/file_check.py",
    "core/lessons/judge.py",
    "console/lesson.py",
    "console/lesson_replay.py",
]


@pytest.mark.pure
@pytest.mark.parametrize("module", DISPATCHERS)
def test_no_kind_is_named_outside_the_registry(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text("utf-8"))
    names = set(STEP_KINDS)
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Attribute) and node.attr == "kind"), (
            f"{module}:{node.lineno}: reads step.kind; ask kind_of(step)"  # type: ignore[attr-defined]
        )
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert node.value not in names, f"{module}:{node.lineno}: names the kind {node.value!r}"


# --- A made-up kind through the real console runner and the solution replay ------------------


class UntilKind(StepKind):
    """A command retried until it passes: a reply that does not pass is no wrong try."""

    name = "until"

    def decisive(self, step: Step, answer: Answer, kept: str | None) -> str | None:
        line = super().decisive(step, answer, kept)
        passes = line is not None and self.judges(step, line)
        return line if passes and self.code_matches(step.expect, answer.code) else None


GREYLISTED = """\
format = 1
id = "until-accepted"
number = 51
missing = ["zh"]
title.en = "Come back later"
intro.en = "A made-up kind: retry until the server says yes."

[scenario]
greylist_delay = 0

[[steps]]
id = "ehlo"
explain.en = "Greet."
goal.en = "Greet."
send.verb = ["EHLO"]
expect.code = ["250"]
success.en = "Greeted."
solution = ["EHLO laptop.example"]

[[steps]]
id = "mail"
explain.en = "The sender."
goal.en = "Give the sender."
send.verb = ["MAIL"]
expect.code = ["250"]
success.en = "Sender accepted."
solution = ["MAIL FROM:<student@example.com>"]

[[steps]]
id = "rcpt"
kind = "KIND"
explain.en = "The greylist says 450 once; say it again."
goal.en = "Get greylist@example.com accepted."
send.verb = ["RCPT"]
expect.code = ["250"]
success.en = "Accepted on the retry."
solution = ["RCPT TO:<greylist@example.com>", "RCPT TO:<greylist@example.com>"]
"""


def test_a_new_kind_changes_which_reply_decides_in_the_real_runner(tmp_path: Path) -> None:
    from smtp_tutor.console.lesson_replay import replay_lesson

    kinds = STEP_KINDS.copy()
    kinds.register(UntilKind())
    until = load_lesson(write(tmp_path, GREYLISTED.replace("KIND", "until")), kinds=kinds)
    command = load_lesson(write(tmp_path, GREYLISTED.replace("KIND", "command"), "c.toml"))

    report = asyncio.run(replay_lesson(until, "en"))
    assert report.ok, "\n".join(report.problems()) + report.output[-2000:]
    assert [(r.step_id, r.ok) for r in report.results] == [
        ("ehlo", True),
        ("mail", True),
        ("rcpt", True),
    ]
    assert re.search(r"\b450\b", report.output)  # the greylist did answer 450 first

    # The same lesson as a command step: the 450 decides, as a wrong try.
    report = asyncio.run(replay_lesson(command, "en"))
    assert [(r.step_id, r.ok, r.code) for r in report.results][2:] == [
        ("rcpt", False, 450),
        ("rcpt", True, None),
    ]
    assert not report.ok
