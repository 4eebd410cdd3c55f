"""The lesson machinery for POP3, pure: the protocol keys, the POP3 step kinds, the answer
built from either protocol's outcome, and the file check's rehearsal of a POP3 solution on
the core's state table."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtp_tutor.core import dialogue as smtp_dialogue
from smtp_tutor.core.dialogue import GREETING
from smtp_tutor.core.lessons import STEP_KINDS, check_lesson_file, kind_of, load_lesson
from smtp_tutor.core.lessons.judge import Observation, hint_text, render_reason, verdict
from smtp_tutor.core.lessons.kinds import (
    Answer,
    answer_of,
    parse_pop3_expect,
    pop3_code_matches,
)
from smtp_tutor.core.pop3 import Dialogue
from smtp_tutor.core.replies import ReplyParser

pytestmark = pytest.mark.pure

LESSON = """\
format = 1
id = "pop3-mini"
number = 60
missing = ["zh"]
protocol = "pop3"
title.en = "A small POP3 lesson"
intro.en = "Log in, look, leave."

[[setup.mail]]
account = "student"
text = \"\"\"
From: student@example.com
Subject: hello

Hello.
\"\"\"

[[steps]]
id = "stat-early"
explain.en = "STAT before the login."
goal.en = "Send STAT before logging in."
send.verb = ["STAT"]
expect.code = ["-ERR"]
state.authenticated = false
success.en = "-ERR: not in this state."
solution = ["STAT"]

[[steps]]
id = "user"
explain.en = "Who you are."
goal.en = "USER student."
send.pattern = "^USER \\\\S+$"
expect.code = ["+OK"]
success.en = "+OK."
solution = ["USER student"]

[[steps]]
id = "pass"
explain.en = "The password."
goal.en = "PASS secret."
send.verb = ["PASS"]
expect.code = ["+ok"]
state.authenticated = true
success.en = "+OK: logged in."
solution = ["PASS secret"]

[[steps]]
id = "list"
explain.en = "The list."
goal.en = "LIST."
send.verb = ["LIST"]
expect.code = ["+OK"]
multiline = true
success.en = "The list."
solution = ["LIST"]

[[steps]]
id = "dele"
explain.en = "Mark one."
goal.en = "DELE 1."
send.pattern = "^DELE [0-9]+$"
expect.code = ["+OK"]
success.en = "Marked."
solution = ["DELE 1"]

[[steps]]
id = "drop"
kind = "pop3-reconnect"
explain.en = "Hang up without QUIT."
goal.en = "Reconnect."
expect.code = ["+OK"]
success.en = "A new greeting; nothing was removed."
solution = [":reconnect"]

[[steps]]
id = "locked"
explain.en = "Another server would say [IN-USE]."
goal.en = "Log in."
send.verb = ["AUTH"]
expect.code = ["+OK", "-ERR [IN-USE]"]
success.en = "In."
solution = ["AUTH PLAIN AHN0dWRlbnQAc2VjcmV0"]

[[steps]]
id = "quit"
explain.en = "Leave."
goal.en = "QUIT."
send.verb = ["QUIT"]
expect.code = ["+OK"]
success.en = "Gone."
solution = ["QUIT"]
"""


def write(tmp_path: Path, text: str = LESSON) -> Path:
    path = tmp_path / "60-pop3-mini.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    return [str(e) for e in check_lesson_file(write(tmp_path, text))]


def line_of(text: str, needle: str, after: str = "") -> int:
    start = text.index(after) if after else 0
    return text[: text.index(needle, start)].count("\n") + 1


# --- Codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "parsed"),
    [
        ("+OK", "+OK"),
        ("+ok", "+OK"),
        ("-ERR", "-ERR"),
        ("-err [in-use]", "-ERR [IN-USE]"),
        ("-ERR [SYS/TEMP]", "-ERR [SYS/TEMP]"),
        ("250", None),
        ("OK", None),
        ("-ERR IN-USE", None),
        ("-ERR []", None),
        (1, None),
    ],
)
def test_a_pop3_expect_entry_is_a_status_with_an_optional_code(
    item: object, parsed: str | None
) -> None:
    assert parse_pop3_expect(item) == parsed


@pytest.mark.parametrize(
    ("expect", "code", "passes"),
    [
        (["+OK"], "+OK", True),
        (["+OK"], "-ERR", False),
        (["-ERR"], "-ERR [IN-USE]", True),  # any -ERR
        (["-ERR [IN-USE]"], "-ERR", False),  # the code is wanted
        (["-ERR [IN-USE]"], "-ERR [IN-USE]", True),
        (["-ERR [SYS]"], "-ERR [SYS/TEMP]", True),  # hierarchical (RFC 2449 §8)
        (["-ERR [SYS/TEMP]"], "-ERR [SYS]", False),
        (["-ERR [SYS/TEMP]"], "-ERR [SYS/PERM]", False),
        (["+OK", "-ERR [IN-USE]"], "-ERR [IN-USE]", True),
        (["+OK"], 250, False),  # an SMTP code never passes a POP3 step
        (["+OK"], None, False),
    ],
)
def test_pop3_codes_match_by_status_then_by_code_levels(
    expect: list[str], code: object, passes: bool
) -> None:
    assert pop3_code_matches(expect, code) is passes  # type: ignore[arg-type]


# --- One Answer from either protocol --------------------------------------------------------


def test_the_answer_is_built_from_a_pop3_outcome() -> None:
    dialogue = Dialogue()
    [greeting] = dialogue.receive(b"+OK ready\r\n")
    assert answer_of(greeting) == Answer(GREETING, "", "+OK", "pop3", False)
    dialogue.send("USER student")
    [user] = dialogue.receive(b"-ERR [IN-USE] locked\r\n")
    assert answer_of(user) == Answer("USER", "USER student", "-ERR [IN-USE]", "pop3", False)
    dialogue.send("USER student")
    dialogue.receive(b"+OK\r\n")
    dialogue.send("PASS secret")
    dialogue.receive(b"+OK in\r\n")
    dialogue.send("LIST")
    [listing] = dialogue.receive(b"+OK 1 message\r\n1 120\r\n.\r\n")
    assert answer_of(listing) == Answer("LIST", "LIST", "+OK", "pop3", True)
    [unsolicited] = dialogue.receive(b"+OK nobody asked\r\n")
    assert answer_of(unsolicited) is None


def test_the_answer_of_stls_says_a_handshake_follows() -> None:
    dialogue = Dialogue()
    dialogue.receive(b"+OK ready\r\n")
    dialogue.send("STLS")
    [stls] = dialogue.receive(b"+OK begin TLS\r\n")
    answer = answer_of(stls)
    assert answer is not None and answer.start_tls and answer.code == "+OK"


def test_the_answer_is_built_from_an_smtp_outcome_as_before() -> None:
    dialogue = smtp_dialogue.Dialogue()
    parser = ReplyParser()
    [greeting] = [dialogue.receive(reply) for reply in parser.feed(b"220 ready\r\n")]
    assert answer_of(greeting) == Answer(GREETING, "", 220)
    dialogue.send("EHLO laptop.example")
    [ehlo] = [dialogue.receive(reply) for reply in parser.feed(b"250 hi\r\n")]
    assert answer_of(ehlo) == Answer("EHLO", "EHLO laptop.example", 250)


# --- Loading and judging -------------------------------------------------------------------


def test_a_pop3_lesson_loads_with_its_protocol_kinds_and_setup(tmp_path: Path) -> None:
    lesson = load_lesson(write(tmp_path))
    assert lesson.protocol == "pop3"
    assert [step.protocol for step in lesson.steps] == ["pop3"] * 8
    kinds = [kind_of(step).name for step in lesson.steps]
    assert kinds == ["pop3-command"] * 5 + ["pop3-reconnect", "pop3-command", "pop3-command"]
    [mail] = lesson.setup_mail
    assert mail.account == "student" and mail.text.startswith("From: student@example.com\n")
    assert lesson.steps[2].expect == ("+OK",) and lesson.steps[6].expect[1] == "-ERR [IN-USE]"


def test_a_pop3_step_is_judged_by_status_code_state_and_multiline(tmp_path: Path) -> None:
    steps = {step.id: step for step in load_lesson(write(tmp_path)).steps}
    early, password, listing = steps["stat-early"], steps["pass"], steps["list"]
    assert verdict(early, Observation("STAT", "-ERR")).ok
    assert verdict(early, Observation("STAT", "-ERR [AUTH]")).ok
    wrong = verdict(early, Observation("STAT", "+OK"))
    assert (wrong.reason, dict(wrong.params)) == ("wrong_code", {"got": "+OK", "want": "-ERR"})
    assert verdict(early, Observation("LIST", "-ERR")).reason == "wrong_command"
    # The state reasons in POP3's words.
    result = verdict(password, Observation("PASS secret", "+OK"))
    assert result.reason == "pop3_not_logged_in"
    assert "PASS, APOP or AUTH" in render_reason(result, "en")
    assert verdict(password, Observation("PASS secret", "+OK", authenticated=True)).ok
    # multiline = true: LIST with a number answers one line, which is not the whole list.
    assert verdict(listing, Observation("LIST", "+OK", multiline=True)).ok
    single = verdict(listing, Observation("LIST", "+OK", multiline=False))
    assert single.reason == "pop3_multiline_expected"
    assert "whole list" in render_reason(single, "en")
    assert "列表" in render_reason(single, "zh")


def test_the_pop3_kinds_decide_on_their_answers(tmp_path: Path) -> None:
    steps = {step.id: step for step in load_lesson(write(tmp_path)).steps}
    dele, drop = steps["dele"], steps["drop"]
    command, reconnect = kind_of(dele), kind_of(drop)
    assert command.decisive(dele, Answer("DELE", "DELE 1", "+OK", "pop3"), None) == "DELE 1"
    assert command.decisive(dele, Answer("NOOP", "NOOP", "+OK", "pop3"), None) is None
    # Only the new connection's greeting decides a reconnect step.
    assert reconnect.decisive(drop, Answer("DELE", "DELE 1", "+OK", "pop3"), None) is None
    assert reconnect.decisive(drop, Answer(GREETING, "", "+OK", "pop3"), None) == ""
    assert verdict(drop, Observation("", "+OK")).ok
    assert reconnect.typed_lines(drop) == (":reconnect",)


def test_the_full_answer_of_a_multiline_step_says_it_ends_with_a_dot(tmp_path: Path) -> None:
    listing = next(s for s in load_lesson(write(tmp_path)).steps if s.id == "list")
    assert hint_text(listing, 9, "en")[0].splitlines()[1:] == [
        "  the answer runs over several lines, up to a line holding only a dot:",
        "    LIST",
    ]


# --- The file check -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "at", "words"),
    [
        (
            'protocol = "pop3"',
            'protocol = "imap"',
            'protocol = "imap"',
            'protocol: \'imap\' is not a protocol ("smtp", "pop3")',
        ),
        (
            'id = "user"\n',
            'id = "user"\nkind = "command"\n',
            'kind = "command"',
            'step 2 ("user"): kind: command steps speak SMTP and this step speaks POP3'
            " (its kinds: pop3-command, pop3-reconnect)",
        ),
        (
            'expect.code = ["+ok"]',
            'expect.code = ["250"]',
            '["250"]',
            'expect.code: \'250\' is not a status ("+OK" or "-ERR")',
        ),
        (
            "multiline = true",
            'multiline = "yes"',
            'multiline = "yes"',
            'step 4 ("list"): multiline: must be true or false',
        ),
        (
            "state.authenticated = false",
            "state.delivered = false",
            "state.delivered",
            'step 1 ("stat-early"): state.delivered: only SMTP steps deliver mail to check',
        ),
        (
            'solution = [":reconnect"]',
            'solution = ["QUIT"]',
            'solution = ["QUIT"]',
            'a reconnect step is [":reconnect"]',
        ),
        (
            'account = "student"',
            'account = "stu dent"',
            'account = "stu dent"',
            'setup.mail 1: account must be a name, e.g. "student"',
        ),
    ],
)
def test_the_file_check_knows_the_protocol_keys(
    tmp_path: Path, old: str, new: str, at: str, words: str
) -> None:
    text = LESSON.replace(old, new, 1)
    found = [e for e in check_lesson_file(write(tmp_path, text)) if words in e.message]
    assert found, problems(tmp_path, text)
    assert found[0].line == line_of(text, at)


def test_an_smtp_lesson_still_defaults_to_smtp_steps(tmp_path: Path) -> None:
    text = LESSON.replace('protocol = "pop3"\n', "")
    found = problems(tmp_path, text)
    assert any("expect.code: '-ERR' is not a reply code" in p for p in found), found
    lesson_path = Path(__file__).resolve().parents[1] / "lessons" / "01-greeting.toml"
    lesson = load_lesson(lesson_path, builtin=True)
    assert lesson.protocol == "smtp" and {s.protocol for s in lesson.steps} == {"smtp"}
    assert {kind_of(s).protocol for s in lesson.steps} == {"smtp"}


@pytest.mark.parametrize(
    ("changes", "step", "words"),
    [
        # A line meant to pass that the state table refuses, in the core checker's words.
        ([('expect.code = ["-ERR"]', 'expect.code = ["+OK"]'),
          ("state.authenticated = false\n", "")], "stat-early", "only after login"),
        ([('send.verb = ["LIST"]', 'send.verb = ["STLS"]'),
          ('solution = ["LIST"]', 'solution = ["STLS"]'),
          ("multiline = true\n", "")], "list", "STLS is only allowed before login"),
        ([('send.pattern = "^DELE [0-9]+$"', 'send.verb = ["EHLO"]'),
          ('solution = ["DELE 1"]', 'solution = ["EHLO x"]')], "dele", "is an SMTP command"),
        ([('solution = ["QUIT"]', 'solution = ["QUIT", "STAT"]')], "quit", "UPDATE state"),
    ],
)  # fmt: skip
def test_the_rehearsal_catches_a_command_the_state_refuses(
    tmp_path: Path, changes: list[tuple[str, str]], step: str, words: str
) -> None:
    text = LESSON
    for old, new in changes:
        assert old in text
        text = text.replace(old, new, 1)
    errors = check_lesson_file(write(tmp_path, text))
    found = [e for e in errors if "solution line" in e.message]
    assert len(found) == 1 and len(errors) == 1, [str(e) for e in errors]
    assert f'("{step}"): solution: solution line ' in found[0].message
    assert words in found[0].message, found[0].message
    assert found[0].line == line_of(text, "solution = ", after=f'id = "{step}"')


def test_an_expected_error_may_break_the_state_rules(tmp_path: Path) -> None:
    """STAT before the login is refused, and that is what the first step teaches."""
    assert check_lesson_file(write(tmp_path)) == []


def test_the_rehearsal_follows_dele_and_rset_and_a_reconnect(tmp_path: Path) -> None:
    retr_deleted = LESSON.replace('solution = ["DELE 1"]', 'solution = ["DELE 1", "RETR 1"]', 1)
    [error] = check_lesson_file(write(tmp_path, retr_deleted))
    assert "solution line 'RETR 1'" in error.message and "DELE" in error.message
    # RSET unmarks: the RETR after it is fine.
    unmarked = LESSON.replace('solution = ["DELE 1"]', 'solution = ["DELE 1", "RSET", "RETR 1"]', 1)
    assert check_lesson_file(write(tmp_path, unmarked)) == []
    # The reconnect starts a fresh session: a USER after it is no "already logged in".
    again = LESSON.replace(
        'solution = ["AUTH PLAIN AHN0dWRlbnQAc2VjcmV0"]', 'solution = ["USER student"]'
    ).replace('send.verb = ["AUTH"]', 'send.verb = ["USER"]')
    assert check_lesson_file(write(tmp_path, again)) == []
    without = again.replace(
        'kind = "pop3-reconnect"', 'kind = "pop3-command"\nsend.verb = ["NOOP"]'
    )
    without = without.replace('solution = [":reconnect"]', 'solution = ["NOOP"]')
    found = [str(e) for e in check_lesson_file(write(tmp_path, without))]
    assert any("solution line 'USER student'" in p for p in found), found


def test_a_multiline_auth_exchange_is_rehearsed_over_its_lines(tmp_path: Path) -> None:
    text = LESSON.replace(
        'solution = ["AUTH PLAIN AHN0dWRlbnQAc2VjcmV0"]',
        'solution = ["AUTH PLAIN", "AHN0dWRlbnQAc2VjcmV0"]',
    )
    assert check_lesson_file(write(tmp_path, text)) == []


def test_every_builtin_pop3_kind_names_texts_in_every_language() -> None:
    from smtp_tutor.core.catalogue import load_catalogue

    catalogue = load_catalogue("lessons_ui")
    for kind in STEP_KINDS.values():
        if kind.protocol == "pop3":
            for key in kind.texts:
                assert set(catalogue[key]) == {"en", "zh"}, key
