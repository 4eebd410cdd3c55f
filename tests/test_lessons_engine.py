"""The lesson engine: loading and checking lesson files, judging steps, hints, progress."""

from __future__ import annotations

import json
import re
import stat
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtp_tutor.console.progress import Progress
from smtp_tutor.core.catalogue import localize, message
from smtp_tutor.core.lessons import (
    LANG_FALLBACK,
    Lesson,
    LessonError,
    Step,
    Text,
    builtin_lesson_dir,
    check_lesson_file,
    find_lesson,
    load_lesson,
    load_lessons,
)
from smtp_tutor.core.lessons.file_check import SCENARIO_KEYS, expand_macros
from smtp_tutor.core.lessons.judge import Observation, Verdict, hint_text, render_reason, verdict
from smtp_tutor.core.lessons.kinds import code_matches, is_for_step, matches_send

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`

GOOD = '''\
format = 1
id = "tiny"
number = 41
missing = []

title.en = "A tiny lesson"
title.zh = "一节小课"

intro.en = """
Two steps and a message.
"""
intro.zh = """
两步再加一封信。
"""

outro.en = "Done."
outro.zh = "完成。"

[scenario]
require_tls = false
greylist_delay = 0
slow_delay = 1.5

[playback]
transcript = """
S: 220 example ESMTP
C: HELO x
"""
note.en = "Look at the greeting."
note.zh = "看看问候语。"

[[steps]]
id = "ehlo"
kind = "command"
explain.en = "Greet the server."
explain.zh = "向服务器问好。"
goal.en = "Send EHLO with a name."
goal.zh = "发送 EHLO 加主机名。"
send.verb = ["EHLO"]
send.pattern = "^EHLO {name}$"
expect.code = ["250"]
hints.en = ["first hint", "second hint"]
hints.zh = ["第一条提示", "第二条提示"]
success.en = "Greeted."
success.zh = "打过招呼了。"
solution = ["EHLO laptop.example"]

[[steps]]
id = "mail"
explain.en = "The sender."
explain.zh = "发件人。"
goal.en = "Give the sender."
goal.zh = "给出发件人。"
send.verb = ["MAIL"]
send.pattern = "^MAIL FROM:{address}$"
expect.code = ["2xx"]
success.en = "Sender accepted."
success.zh = "发件人已接受。"
solution = ["MAIL FROM:<student@example.com>"]

[[steps]]
id = "login"
kind = "auth"
explain.en = "Log in."
explain.zh = "登录。"
goal.en = "Log in as student."
goal.zh = "以 student 身份登录。"
expect.code = ["235"]
state.authenticated = true
success.en = "Logged in."
success.zh = "登录成功。"
solution = ["AUTH LOGIN", "student", "secret"]

[[steps]]
id = "message"
kind = "message"
explain.en = "Type the message."
explain.zh = "输入邮件内容。"
goal.en = "Send a message with Date and From."
goal.zh = "发送一封带 Date 和 From 的邮件。"
expect.code = ["250"]
state.delivered = true
state.headers = ["Date", "From"]
state.no_defects = true
success.en = "Stored."
success.zh = "已存下。"
solution = ["Date: Tue, 4 Mar 2025 09:30:00 +0800", "From: <a@b.example>", "", "Hi", "."]
'''

# The same lesson written by a teacher who has no Chinese yet.
ENGLISH_ONLY = """\
format = 1
id = "english-only"
number = 42
missing = ["zh"]
title.en = "English only"
intro.en = "No Chinese here."

[[steps]]
id = "noop"
explain.en = "Send NOOP."
goal.en = "Send NOOP."
send.verb = ["NOOP"]
expect.code = ["250"]
hints.en = ["It has four letters."]
success.en = "250."
solution = ["NOOP"]
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding `needle` (its n-th occurrence)."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return found[occurrence - 1]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def good(tmp_path: Path) -> Lesson:
    return load_lesson(write(tmp_path, "41-tiny.toml", GOOD))


def step_named(lesson: Lesson, step_id: str) -> Step:
    return next(step for step in lesson.steps if step.id == step_id)


# --- Loading -------------------------------------------------------------------------------


def test_good_lesson_loads_with_both_languages(good: Lesson, tmp_path: Path) -> None:
    assert (good.id, good.number, good.builtin, good.missing) == ("tiny", 41, False, ())
    assert good.path == tmp_path / "41-tiny.toml"
    assert good.title.get("en") == ("A tiny lesson", True)
    assert good.title.get("zh") == ("一节小课", True)
    assert good.intro.get("zh") == ("两步再加一封信。", True)  # triple-quoted, trimmed
    assert good.outro is not None and good.outro.get("en") == ("Done.", True)
    assert good.scenario == {"require_tls": False, "greylist_delay": 0, "slow_delay": 1.5}
    assert good.playback is not None
    assert good.playback.transcript == "S: 220 example ESMTP\nC: HELO x"
    assert good.playback.note is not None and good.playback.note.get("zh")[0] == "看看问候语。"
    assert [s.id for s in good.steps] == ["ehlo", "mail", "login", "message"]
    assert [s.kind for s in good.steps] == ["command", "command", "auth", "message"]
    assert [s.line_no for s in good.steps] == [line_of(GOOD, "[[steps]]", n) for n in range(1, 5)]


def test_step_fields(good: Lesson) -> None:
    ehlo, mail, login, msg = good.steps
    assert ehlo.verbs == ("EHLO",)
    assert ehlo.pattern is not None and ehlo.pattern.flags & re.IGNORECASE
    assert ehlo.expect == ("250",) and mail.expect == ("2xx",)
    assert dict(ehlo.hints) == {
        "en": ("first hint", "second hint"),
        "zh": ("第一条提示", "第二条提示"),
    }
    assert ehlo.solution == ("EHLO laptop.example",) and not ehlo.manual
    assert login.verbs == ("AUTH",)  # an auth step without send takes any AUTH line
    assert login.state.authenticated is True and login.state.tls is None
    assert msg.verbs == () and msg.pattern is None
    assert msg.state.delivered is True and msg.state.no_defects is True
    assert msg.state.headers == ("Date", "From")
    assert msg.solution[-1] == "."


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", ("en", True)),
        ("zh", ("zh", True)),
        ("zh-CN", ("zh", True)),
        ("zh-TW", ("zh", True)),
        ("zh_HK.UTF-8", ("zh", True)),
        ("zh-Hant", ("zh", True)),
        ("fr", ("en", True)),
        ("", ("en", True)),
    ],
)
def test_language_fallback(lang: str, expected: tuple[str, bool]) -> None:
    text = Text({"en": "en", "zh": "zh"})
    assert text.get(lang) == expected


def test_fallback_chain_constant() -> None:
    assert LANG_FALLBACK == {"en": ("en",), "zh": ("zh", "en")}
    assert Text({"zh": "只有中文"}).get("en") == ("", False)


def test_lesson_with_missing_zh_falls_back_to_english(tmp_path: Path) -> None:
    lesson = load_lesson(write(tmp_path, "42.toml", ENGLISH_ONLY))
    assert lesson.missing == ("zh",)
    assert lesson.title.get("zh") == ("English only", False)
    assert lesson.title.get("zh-TW") == ("English only", False)
    assert lesson.title.get("en") == ("English only", True)
    step = lesson.steps[0]
    text, _ = hint_text(step, 0, "zh")
    assert text == f"{message('lessons_ui', 'not_translated', 'zh')}\nIt has four letters."
    assert hint_text(step, 0, "en")[0] == "It has four letters."


def test_load_lesson_raises_the_first_problem(tmp_path: Path) -> None:
    broken = GOOD.replace("number = 41", 'number = "41"').replace('title.zh = "一节小课"\n', "")
    path = write(tmp_path, "bad.toml", broken)
    with pytest.raises(LessonError) as caught:
        load_lesson(path)
    error = caught.value
    assert error.line == line_of(broken, "number =")
    assert str(error) == f"{path}:{error.line}: {error.message}"
    assert "\n" not in str(error) and "number" in error.message
    assert isinstance(error, ValueError)


# --- Checking: each kind of problem at its line ----------------------------------------------

# (what to replace in GOOD, its replacement, the line the problem is on, words in the message)
BROKEN = [
    pytest.param("number = 41", "number = = 41", "number = = 41", "TOML syntax", id="toml"),
    pytest.param(
        'goal.zh = "给出发件人。"',
        'goal.zh = "给出发件人。\n',
        'goal.zh = "给出发件人。',
        "TOML syntax",
        id="toml-unterminated",
    ),
    pytest.param(
        'success.en = "Stored."',
        'sucess.en = "Stored."',
        "sucess.en",
        "did you mean 'success'",
        id="unknown-key",
    ),
    pytest.param(
        "slow_delay = 1.5",
        "slow_dleay = 1.5",
        "slow_dleay",
        "unknown key",
        id="unknown-scenario-key",
    ),
    pytest.param(
        'goal.zh = "给出发件人。"\n', "", 'goal.en = "Give the sender."', "goal.zh", id="missing-zh"
    ),
    pytest.param(
        'title.en = "A tiny lesson"\n',
        "",
        "title.zh",
        "English is always required",
        id="missing-en",
    ),
    pytest.param(
        'send.pattern = "^EHLO {name}$"',
        'send.pattern = "^EHLO ({name}$"',
        "send.pattern",
        "not a valid regular expression",
        id="bad-regex",
    ),
    pytest.param(
        'send.pattern = "^EHLO {name}$"',
        'send.pattern = "^EHLO {host}$"',
        "send.pattern",
        "unknown macro {host}",
        id="unknown-macro",
    ),
    pytest.param(
        'expect.code = ["2xx"]',
        'expect.code = ["2x5"]',
        'expect.code = ["2x5"]',
        "not a reply code",
        id="bad-expect-code",
    ),
    pytest.param(
        'expect.code = ["2xx"]',
        "expect.code = [250]",
        "expect.code = [250]",
        "not a reply code",
        id="expect-code-not-string",
    ),
    pytest.param(
        'id = "mail"',
        'id = "ehlo"  # again',
        "# again",
        "already used by step 1",
        id="duplicate-step-id",
    ),
    pytest.param(
        'solution = ["MAIL FROM:<student@example.com>"]',
        "solution = []",
        "solution = []",
        "non-empty list",
        id="empty-solution",
    ),
    pytest.param(
        'solution = ["MAIL FROM:<student@example.com>"]',
        'solution = ["MAIL FROM: <a@b>"]',
        'solution = ["MAIL FROM: <a@b>"]',
        "does not match",
        id="solution-fails-send",
    ),
    pytest.param('"Hi", "."]', '"Hi"]', '"Hi"]', 'ends with the line "."', id="message-no-dot"),
    pytest.param(
        'kind = "command"', 'kind = "comand"', 'kind = "comand"', "is not one of", id="bad-kind"
    ),
    pytest.param('id = "tiny"', 'id = "Tiny Lesson"', 'id = "Tiny Lesson"', "slug", id="bad-id"),
    pytest.param("number = 41", "number = 4.1", "number = 4.1", "whole number", id="bad-number"),
    pytest.param(
        "greylist_delay = 0",
        'greylist_delay = "0"',
        "greylist_delay",
        "number of seconds",
        id="scenario-type",
    ),
    pytest.param(
        "require_tls = false", "require_tls = 1", "require_tls", "true or false", id="scenario-bool"
    ),
    pytest.param(
        "slow_delay = 1.5", "slow_delay = -1", "slow_delay", "0 or more", id="scenario-range"
    ),
    pytest.param(
        "missing = []",
        'missing = ["fr"]',
        'missing = ["fr"]',
        "unknown language",
        id="missing-unknown",
    ),
    pytest.param("format = 1", "format = 2", "format = 2", "format", id="format"),
    pytest.param(
        'goal.en = "Give the sender."',
        'goal.en = """Give\nthe sender."""',
        'goal.en = """Give',
        "single line",
        id="goal-one-line",
    ),
    pytest.param(
        'hints.zh = ["第一条提示", "第二条提示"]',
        'hints.zh = ["第一条提示"]',
        "hints.zh",
        "2 English hints but 1 Chinese",
        id="hint-count",
    ),
    pytest.param(
        'success.zh = "已存下。"',
        'success.zh = "Stored."',
        'success.zh = "Stored."',
        "no Chinese characters",
        id="zh-not-chinese",
    ),
    pytest.param(
        "state.no_defects = true",
        'state.no_defects = "yes"',
        "state.no_defects",
        "true or false",
        id="state-type",
    ),
    pytest.param(
        'state.headers = ["Date", "From"]',
        'state.headers = ["Date:"]',
        "state.headers",
        "header names",
        id="state-headers",
    ),
    pytest.param(
        'kind = "message"\n',
        'kind = "message"\nsend.verb = ["DATA"]\n',
        'send.verb = ["DATA"]',
        "message steps have no send",
        id="message-send",
    ),
    pytest.param(
        'kind = "message"\n',
        'kind = "chunks"\nsend.verb = ["BDAT"]\n',
        'send.verb = ["BDAT"]',
        "chunks steps have no send",
        id="chunks-send",
    ),
    pytest.param(
        'kind = "message"\n',
        'kind = "chunks"\n',
        'solution = ["Date: Tue',
        'a chunks step starts with ":bdat"',
        id="chunks-solution-without-bdat",
    ),
]


@pytest.mark.parametrize(("old", "new", "at", "words"), BROKEN)
def test_check_reports_problem_at_its_line(
    tmp_path: Path, old: str, new: str, at: str, words: str
) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    path = write(tmp_path, "41-tiny.toml", text)
    errors = check_lesson_file(path)
    assert errors, "the problem was not found"
    matching = [e for e in errors if words in e.message]
    assert matching, [str(e) for e in errors]
    assert matching[0].line == line_of(text, at), [str(e) for e in errors]
    assert all(e.path == path and "\n" not in str(e) for e in errors)
    with pytest.raises(LessonError):
        load_lesson(path)


def test_a_chunks_step_is_a_message_sent_with_bdat(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "message"\n', 'kind = "chunks"\n').replace(
        'solution = ["Date: Tue', 'solution = [":bdat 16", "Date: Tue'
    )
    lesson = load_lesson(write(tmp_path, "41-tiny.toml", text))
    step = step_named(lesson, "message")
    assert step.kind == "chunks" and step.solution[0] == ":bdat 16"
    done = Observation(line="", code=250, delivered=True, headers=frozenset({"date", "from"}))
    assert verdict(step, done).ok
    assert not verdict(step, Observation(line="", code=554)).ok


def test_missing_required_field_points_at_its_step(tmp_path: Path) -> None:
    text = GOOD.replace('explain.en = "The sender."\nexplain.zh = "发件人。"\n', "")
    errors = check_lesson_file(write(tmp_path, "x.toml", text))
    assert [(e.line, e.message) for e in errors] == [
        (
            line_of(text, "[[steps]]", 2),
            'step 2 ("mail"): explain: missing; write explain.en = ... and explain.zh = ...',
        )
    ]


def test_missing_top_level_fields_are_at_line_1(tmp_path: Path) -> None:
    errors = check_lesson_file(write(tmp_path, "x.toml", 'title.en = "t"\n'))
    messages = " | ".join(e.message for e in errors)
    for words in ("format: missing", "id: missing", "number: missing", "intro: missing", "steps"):
        assert words in messages
    assert {e.line for e in errors} == {1}


def test_check_lists_all_problems_in_line_order(tmp_path: Path) -> None:
    text = (
        GOOD.replace("slow_delay = 1.5", "slow_dleay = 1.5")
        .replace('expect.code = ["2xx"]', 'expect.code = ["2x5"]')
        .replace('solution = ["MAIL FROM:<student@example.com>"]', "solution = []")
    )
    errors = check_lesson_file(write(tmp_path, "x.toml", text))
    assert len(errors) == 3
    assert [e.line for e in errors] == sorted(e.line for e in errors)


def test_builtin_lessons_may_not_declare_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "42.toml", ENGLISH_ONLY)
    assert check_lesson_file(path) == []
    errors = check_lesson_file(path, builtin=True)
    assert any("built-in lessons must be fully translated" in e.message for e in errors)
    assert errors[0].line == line_of(ENGLISH_ONLY, "missing =")


def test_zh_missing_without_declaration_suggests_it(tmp_path: Path) -> None:
    text = ENGLISH_ONLY.replace('missing = ["zh"]\n', "")
    errors = check_lesson_file(write(tmp_path, "x.toml", text))
    assert errors and all("missing = [" in e.message for e in errors)
    assert errors[0].line == line_of(text, "title.en")


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    [error] = check_lesson_file(missing)
    assert error.line == 1 and "cannot read" in error.message
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'format = 1\nid = "x"\ntitle.en = "caf\xe9"\n')
    [error] = check_lesson_file(bad)
    assert error.line == 3 and "UTF-8" in error.message


def test_bom_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "41.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    assert check_lesson_file(path) == []
    assert load_lesson(path).steps[1].line_no == line_of(GOOD, "[[steps]]", 2)


def test_inline_tables_and_quoted_keys_are_located(tmp_path: Path) -> None:
    text = GOOD.replace(
        'explain.en = "The sender."\nexplain.zh = "发件人。"',
        'explain = { en = "The sender.", zh = "发件人。" }',
    ).replace('expect.code = ["2xx"]', '"expect".\'code\' = ["2x5"]')
    errors = check_lesson_file(write(tmp_path, "x.toml", text))
    assert [e.line for e in errors] == [line_of(text, '"expect"')]


# --- Finding lessons -------------------------------------------------------------------------


def test_load_lessons_with_an_extra_folder(tmp_path: Path) -> None:
    builtins, builtin_errors = load_lessons()
    assert builtin_errors == []
    assert all(lesson.builtin for lesson in builtins)
    extra = tmp_path / "extra"
    extra.mkdir()
    write(extra, "41-tiny.toml", GOOD)
    broken = write(extra, "50-broken.toml", GOOD.replace('id = "tiny"', 'id = "broken"\nfoo = 1'))
    write(extra, "notes.txt", "not a lesson")
    lessons, errors = load_lessons([extra])
    assert [lesson.id for lesson in lessons if not lesson.builtin] == ["tiny"]
    assert len(lessons) == len(builtins) + 1
    assert [(e.path, e.line) for e in errors] == [(broken, 3)]  # the line of `foo`
    assert lessons == sorted(lessons, key=lambda x: (x.number, x.id))


def test_duplicate_ids_the_later_one_loses(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write(first, "41-tiny.toml", GOOD)
    copy = write(second, "43-tiny-again.toml", GOOD.replace("number = 41", "number = 43"))
    lessons, errors = load_lessons([first, second])
    tiny = [lesson for lesson in lessons if lesson.id == "tiny"]
    assert [lesson.number for lesson in tiny] == [41]
    assert len(errors) == 1
    assert errors[0].path == copy and errors[0].line == line_of(GOOD, 'id = "tiny"')
    assert "already used" in errors[0].message


def test_extra_single_file_and_missing_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "41-tiny.toml", GOOD)
    lessons, errors = load_lessons([path, tmp_path / "nowhere"])
    assert any(lesson.id == "tiny" for lesson in lessons)
    assert [e.path for e in errors] == [tmp_path / "nowhere"]


def test_builtin_folder_given_again_is_not_loaded_twice() -> None:
    root = builtin_lesson_dir()
    assert any(root.joinpath(name).is_file() for name in ("01-greeting.toml",))
    if not isinstance(root, Path):  # pragma: no cover - only in a zipped install
        pytest.skip("built-in lessons are not in a folder")
    assert load_lessons([root]) == load_lessons()


def test_find_lesson(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    write(extra, "41-tiny.toml", GOOD)
    write(extra, "42-english.toml", ENGLISH_ONLY)
    lessons, _ = load_lessons([extra])
    assert find_lesson(lessons, "tiny") is not None
    assert find_lesson(lessons, "TINY") == find_lesson(lessons, "tiny")
    assert find_lesson(lessons, "41") == find_lesson(lessons, "tiny")
    assert find_lesson(lessons, "041") == find_lesson(lessons, "tiny")
    assert find_lesson(lessons, " 42-english ") == find_lesson(lessons, "english-only")
    assert find_lesson(lessons, "nothing") is None
    assert find_lesson(lessons, "9999") is None


# --- Matching and judging --------------------------------------------------------------------


def test_expand_macros() -> None:
    assert expand_macros("^NOOP$") == "^NOOP$"
    expanded = expand_macros("{address} {address_or_null} {name} {base64}")
    assert not re.search(r"\{(address|address_or_null|name|base64)\}", expanded)
    assert re.compile(expanded)
    assert expand_macros("a{2,3}") == "a{2,3}"  # regex quantifiers are left alone


@pytest.mark.parametrize(
    ("pattern", "line", "matches"),
    [
        ("^MAIL FROM:{address}$", "MAIL FROM:<a@b.c>", True),
        ("^MAIL FROM:{address}$", "mail from:<a@b.c>", True),
        ("^MAIL FROM:{address}$", "MAIL FROM: <a@b.c>", False),
        ("^MAIL FROM:{address}$", "MAIL FROM:a@b.c", False),
        ("^MAIL FROM:{address}$", "MAIL FROM:<>", False),
        ("^MAIL FROM:{address_or_null}$", "MAIL FROM:<>", True),
        ("^MAIL FROM:{address}$", "MAIL FROM:<a@b.c> SIZE=10", False),
        ("^MAIL FROM:{address}( SIZE=\\d+)?$", "MAIL FROM:<a@b.c> SIZE=10", True),
        ("^EHLO {name}$", "EHLO laptop.example", True),
        ("^EHLO {name}$", "ehlo [127.0.0.1]", True),
        ("^EHLO {name}$", "EHLO two words", False),
        ("^AUTH PLAIN {base64}$", "AUTH PLAIN AHN0dWRlbnQAc2VjcmV0", True),
        ("^AUTH PLAIN {base64}$", "AUTH PLAIN not*base64", False),
        ("NOOP", "NOOP extra", False),  # the whole line must match
    ],
)
def test_matches_send_with_macros(tmp_path: Path, pattern: str, line: str, matches: bool) -> None:
    step = make_step(verbs=(), pattern=pattern)
    assert matches_send(step, line) is matches


def make_step(
    verbs: tuple[str, ...] = ("MAIL",),
    pattern: str | None = None,
    expect: tuple[str, ...] = ("250",),
    kind: str = "command",
    **state: object,
) -> Step:
    """A step built in code, the same way the loader builds one."""
    from smtp_tutor.core.lessons import StepState
    from smtp_tutor.core.lessons.file_check import compile_pattern

    return Step(
        id="s",
        kind=kind,  # type: ignore[arg-type]
        explain=Text({"en": "explain", "zh": "说明"}),
        goal=Text({"en": "Do the thing.", "zh": "做这件事。"}),
        verbs=verbs,
        pattern=compile_pattern(pattern) if pattern else None,
        expect=expect,
        state=StepState(**state),  # type: ignore[arg-type]
        hints={"en": ("h1", "h2"), "zh": ("提示一", "提示二")},
        success=Text({"en": "ok", "zh": "好"}),
        solution=("MAIL FROM:<a@b.example>",),
        manual=False,
        line_no=1,
    )


def test_verbs_are_case_insensitive() -> None:
    step = make_step(verbs=("MAIL",), pattern="^MAIL FROM:{address}$")
    assert matches_send(step, "mail FROM:<a@b.c>")
    assert matches_send(step, "MAIL FROM:<a@b.c>  ")  # trailing spaces are invisible
    assert not matches_send(step, "RCPT TO:<a@b.c>")
    assert matches_send(make_step(verbs=("RCPT",)), "rcpt to:<whatever>")


def test_is_for_step_lets_exploring_commands_through() -> None:
    mail = make_step(verbs=("MAIL",))
    assert is_for_step(mail, "MAIL FROM:<a@b.c>")
    assert is_for_step(mail, "RCPT TO:<a@b.c>")  # a wrong try, judged
    assert is_for_step(mail, "EHLO x")
    for line in ("NOOP", "help", "RSET", "HELP MAIL", ""):
        assert not is_for_step(mail, line)
    noop = make_step(verbs=("NOOP",))
    assert is_for_step(noop, "NOOP") and is_for_step(noop, "noop extra")
    assert not is_for_step(noop, "RSET")
    by_pattern = make_step(verbs=(), pattern="^RSET$")
    assert is_for_step(by_pattern, "rset") and not is_for_step(by_pattern, "NOOP")
    message_step = make_step(verbs=(), kind="message")
    assert not is_for_step(message_step, "NOOP") and is_for_step(message_step, "MAIL FROM:<a@b>")


@pytest.mark.parametrize(
    ("expect", "code", "result"),
    [
        (("250",), 250, True),
        (("250",), 251, False),
        (("2xx",), 251, True),
        (("2XX",), 299, True),
        (("2xx",), 354, False),
        (("5xx", "452"), 452, True),
        (("5xx", "452"), 550, True),
        (("5xx", "452"), 451, False),
        (("250",), None, False),
    ],
)
def test_code_matches(expect: tuple[str, ...], code: int | None, result: bool) -> None:
    assert code_matches(expect, code) is result


def observe(
    line: str = "MAIL FROM:<a@b.example>", code: int | None = 250, **kw: object
) -> Observation:
    return Observation(line=line, code=code, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("step", "obs", "reason", "params"),
    [
        (make_step(), observe(), "", {}),
        (make_step(), observe("RCPT TO:<a@b.example>"), "wrong_command", {}),
        (
            make_step(pattern="^MAIL FROM:{address}$"),
            observe("MAIL FROM: <a@b.c>"),
            "wrong_command",
            {},
        ),
        (make_step(), observe(code=503), "wrong_code", {"got": "503", "want": "250"}),
        (
            make_step(expect=("2xx", "354")),
            observe(code=None),
            "wrong_code",
            {"got": "—", "want": "2xx, 354"},
        ),
        (make_step(tls=True), observe(), "not_tls", {}),
        (make_step(tls=True), observe(tls=True), "", {}),
        (make_step(tls=False), observe(tls=True), "tls_unexpected", {}),
        (make_step(authenticated=True), observe(tls=True), "not_authenticated", {}),
        (
            make_step(authenticated=False),
            observe(authenticated=True),
            "authenticated_unexpected",
            {},
        ),
        (make_step(delivered=True), observe(), "not_delivered", {}),
        (make_step(delivered=False), observe(delivered=True), "delivered_unexpected", {}),
        (make_step(headers=("Date",)), observe(), "not_delivered", {}),
        (
            make_step(headers=("Date", "Message-ID")),
            observe(delivered=True, headers=frozenset({"date", "from"})),
            "missing_header",
            {"header": "Message-ID"},
        ),
        (
            make_step(headers=("Date",), no_defects=True),
            observe(delivered=True, headers=frozenset({"date"}), defects=2),
            "defects",
            {"count": "2"},
        ),
        (make_step(no_defects=False), observe(delivered=True), "defects_expected", {}),
        (make_step(no_defects=True), observe(delivered=True, defects=0), "", {}),
    ],
)
def test_verdict(step: Step, obs: Observation, reason: str, params: dict[str, str]) -> None:
    result = verdict(step, obs)
    assert result == Verdict(reason == "", reason, params)
    rendered = {lang: render_reason(result, lang) for lang in ("en", "zh")}
    if reason:
        assert all(text and "{" not in text for text in rendered.values())
        assert rendered["en"] != rendered["zh"]
        for value in params.values():
            assert all(value in text for text in rendered.values())
    else:
        assert rendered == {"en": "", "zh": ""}


def test_verdict_for_message_and_auth_steps(good: Lesson) -> None:
    login, msg = step_named(good, "login"), step_named(good, "message")
    assert verdict(login, observe("AUTH LOGIN", 235, authenticated=True)).ok
    assert verdict(login, observe("AUTH LOGIN", 535)).reason == "wrong_code"
    assert verdict(login, observe("EHLO x", 250, authenticated=True)).reason == "wrong_command"
    stored = observe("", 250, delivered=True, headers=frozenset({"date", "from"}))
    assert verdict(msg, stored).ok
    assert verdict(msg, observe("", 552)).reason == "wrong_code"
    assert verdict(msg, observe("RSET", 250, delivered=True)).reason == "wrong_command"


# --- Hints -----------------------------------------------------------------------------------


def test_hint_escalation_order_and_the_last_level_sticks(good: Lesson) -> None:
    step = step_named(good, "ehlo")
    seen, level = [], 0
    for _ in range(6):
        text, level = hint_text(step, level, "en")
        seen.append(text)
    answer = f"{message('lessons_ui', 'answer_intro', 'en')}\n    EHLO laptop.example"
    assert seen == ["first hint", "second hint", "Send EHLO with a name.", answer, answer, answer]
    assert hint_text(step, 3, "en")[1] == 3
    assert hint_text(step, 99, "en") == (answer, 3)
    assert hint_text(step, -5, "zh") == ("第一条提示", 1)
    assert hint_text(step, 2, "zh")[0] == "发送 EHLO 加主机名。"


def test_hint_without_hints_starts_with_the_goal(good: Lesson) -> None:
    step = step_named(good, "mail")
    assert hint_text(step, 0, "en") == ("Give the sender.", 1)
    assert hint_text(step, 1, "zh")[0].endswith("    MAIL FROM:<student@example.com>")


def test_full_answer_layout_for_auth_and_message(good: Lesson) -> None:
    auth = hint_text(step_named(good, "login"), 9, "en")[0].splitlines()
    assert auth[1:] == [
        "    AUTH LOGIN",
        "  " + message("lessons_ui", "answer_auth_prompts", "en"),
        "    student",
        "    secret",
    ]
    msg = hint_text(step_named(good, "message"), 9, "zh")[0].splitlines()
    assert msg[3] == "    " + message("lessons_ui", "answer_empty_line", "zh")
    assert msg[-1] == "    ."


# --- The words -------------------------------------------------------------------------------


def _leaves(table: dict[str, object], prefix: str = "") -> Iterator[tuple[str, dict[str, object]]]:
    for key, value in table.items():
        if isinstance(value, dict) and "en" in value:
            yield prefix + key, value
        elif isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            raise AssertionError(f"{prefix}{key} is not a table of languages")


def test_every_ui_text_has_en_and_zh_with_the_same_placeholders() -> None:
    text = resources.files("smtp_tutor.data").joinpath("lessons_ui.toml").read_text("utf-8")
    leaves = dict(_leaves(tomllib.loads(text)))
    assert leaves
    for key, entry in leaves.items():
        assert set(entry) == {"en", "zh"}, key
        en, zh = entry["en"], entry["zh"]
        assert isinstance(en, str) and isinstance(zh, str) and en.strip() and zh.strip(), key
        assert re.search(r"[\u4e00-\u9fff]", zh), key
        assert set(re.findall(r"\{(\w+)\}", en)) == set(re.findall(r"\{(\w+)\}", zh)), key
    reasons = {
        "wrong_command", "wrong_code", "not_tls", "tls_unexpected", "not_authenticated",
        "authenticated_unexpected", "not_delivered", "delivered_unexpected", "missing_header",
        "defects", "defects_expected",
        # a POP3 kind's words for the same (kinds.Pop3CommandKind.reason) and its own two
        "pop3_not_tls", "pop3_not_logged_in", "pop3_logged_in_unexpected",
        "pop3_multiline_expected", "pop3_single_line_expected",
    }  # fmt: skip
    assert {k.removeprefix("reason.") for k in leaves if k.startswith("reason.")} == reasons


def test_readme_example_is_a_valid_lesson(tmp_path: Path) -> None:
    readme = Path(__file__).resolve().parent.parent / "lessons" / "README.md"
    blocks = re.findall(r"```toml\n(.*?)```", readme.read_text("utf-8"), re.DOTALL)
    example = next(block for block in blocks if "[[steps]]" in block)
    path = write(tmp_path, "14-first-mail.toml", example)
    assert check_lesson_file(path) == []
    lesson = load_lesson(path)
    assert lesson.missing == ("zh",) and len(lesson.steps) == 5
    for key in SCENARIO_KEYS:
        assert f"`{key}`" in readme.read_text("utf-8")


# --- Never raising on junk -------------------------------------------------------------------

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _assert_errors_are_sane(errors: list[LessonError], path: Path, text: str) -> None:
    lines = text.count("\n") + 2
    for error in errors:
        assert isinstance(error, LessonError) and error.path == path
        assert 1 <= error.line <= lines
        assert "\n" not in str(error) and error.message
        assert not error.message.startswith("could not check")  # the guard was never needed


@SETTINGS
@given(st.text(max_size=400))
def test_check_never_raises_on_arbitrary_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "junk.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    errors = check_lesson_file(path)
    assert errors  # nothing random is a lesson
    _assert_errors_are_sane(errors, path, text)


@SETTINGS
@given(st.data())
def test_check_never_raises_on_a_damaged_lesson(tmp_path: Path, data: st.DataObject) -> None:
    text = GOOD
    for _ in range(data.draw(st.integers(1, 3))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 40)))
        insert = data.draw(st.sampled_from(["", "=", '"', "[", "]", "\n", "x", "1", "true", "{"]))
        text = text[:start] + insert + text[end:]
    path = tmp_path / "damaged.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    errors = check_lesson_file(path)
    _assert_errors_are_sane(errors, path, text)
    if not errors:
        assert isinstance(load_lesson(path), Lesson)


# --- Progress --------------------------------------------------------------------------------


def test_progress_round_trip_and_private_mode(tmp_path: Path) -> None:
    path = tmp_path / "state" / "lessons.json"
    progress = Progress.load(path)
    assert progress.problem is None and progress.current() is None
    assert progress.step("greeting") == 0 and not progress.completed("greeting")
    progress.mark_step("greeting", 1, "ehlo")
    progress.mark_step("greeting", 2, "noop")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = Progress.load(path)
    assert again.problem is None
    assert again.step("greeting") == 2
    assert again.done_steps("greeting") == {"ehlo", "noop"}
    assert again.current() == "greeting"
    again.set_position("greeting", 0)  # :restart
    assert Progress.load(path).step("greeting") == 0
    assert Progress.load(path).done_steps("greeting") == {"ehlo", "noop"}
    again.mark_completed("greeting")
    done = Progress.load(path)
    assert done.completed("greeting") and done.current() is None and done.step("greeting") == 0
    assert [p.name for p in path.parent.iterdir()] == ["lessons.json"]  # no temporary left


def test_progress_current_and_reset(tmp_path: Path) -> None:
    path = tmp_path / "lessons.json"
    progress = Progress.load(path)
    progress.mark_step("a", 1, "one")
    progress.mark_step("b", 3, "three")
    assert progress.current() == "b"
    progress.reset("b")
    assert progress.current() is None and progress.step("b") == 0 and progress.step("a") == 1
    progress.reset()
    assert Progress.load(path).step("a") == 0
    assert json.loads(path.read_text()) == {"version": 1, "current": None, "lessons": {}}


def test_progress_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    Progress.load().mark_step("x", 1, "s")
    assert (tmp_path / "smtp-tutor" / "lessons.json").is_file()


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"version": 1, "lessons": {"a": {"step": -1}}}',
        b'{"version": 1, "lessons": {"a": {"step": true}}}',
        b'{"version": 1, "lessons": {"a": {"done": "x"}}}',
        b'{"version": 1, "lessons": [], "current": null}',
        b'{"version": 99, "lessons": {}}',
        b"[" * 100000,
    ],
)
def test_corrupt_progress_is_reset_and_kept_aside(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "lessons.json"
    path.write_bytes(content)
    progress = Progress.load(path)
    assert progress.problem is not None and "\n" not in progress.problem
    assert str(path) in progress.problem
    assert (tmp_path / "lessons.json.corrupt").read_bytes() == content
    assert not path.exists()
    assert progress.step("a") == 0
    zh = progress.problem_text("zh")
    assert zh is not None and zh != progress.problem
    assert localize(progress.problem, "zh") == zh  # the CLI can translate it as it prints
    progress.mark_step("a", 1, "s")  # and it saves fine afterwards
    assert Progress.load(path).problem is None


def test_progress_save_failure_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    progress = Progress.load(blocker / "lessons.json")
    progress.mark_step("a", 1, "s")
    assert progress.problem is not None and "could not be saved" in progress.problem
    assert progress.step("a") == 1  # still remembered for this session
    assert Progress(None).save() is True


def test_progress_directory_in_the_way(tmp_path: Path) -> None:
    path = tmp_path / "lessons.json"
    path.mkdir()
    progress = Progress.load(path)
    assert progress.problem is not None
    progress.mark_step("a", 1, "s")
    assert Progress.load(path).step("a") == 1


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_progress_load_never_raises(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "lessons.json"
    backup = tmp_path / "lessons.json.corrupt"
    backup.unlink(missing_ok=True)
    path.write_bytes(content)
    progress = Progress.load(path)
    assert isinstance(progress.step("x"), int)
    if progress.problem is not None:
        assert backup.read_bytes() == content and not path.exists()
    else:
        assert path.read_bytes() == content
