"""POP3 knowledge: complete in English and Chinese, look-ups, explain_pop3() and its rendering."""

from __future__ import annotations

import copy
import re
import tomllib
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtp_tutor.core.pop3.command_line import KNOWN_COMMANDS
from smtp_tutor.core.pop3.dialogue import State
from smtp_tutor.core.pop3.knowledge import (
    REQUIRED_CAPABILITIES,
    REQUIRED_CODES,
    capability_info,
    code_info,
    command_info,
    explain_pop3,
    format_pop3_explanation,
    state_info,
    status_info,
    validate_pop3,
    validate_pop3_data,
)
from smtp_tutor.core.pop3.responses import Status

CJK = re.compile(r"[\u3400-\u9fff]")
POPLIB = {
    "USER": "user", "PASS": "pass_", "STAT": "stat", "LIST": "list", "RETR": "retr",
    "DELE": "dele", "RSET": "rset", "NOOP": "noop", "QUIT": "quit", "TOP": "top",
    "UIDL": "uidl", "CAPA": "capa", "STLS": "stls", "APOP": "apop", "UTF8": "utf8",
}  # fmt: skip


def data(name: str) -> dict:
    text = resources.files("smtp_tutor.data").joinpath(f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_the_shipped_data_has_no_gaps() -> None:
    assert validate_pop3() == []


def test_validation_finds_what_a_teacher_could_break() -> None:
    broken = copy.deepcopy(data("pop3"))
    del broken["commands"]["RETR"]["summary"]["zh"]
    broken["commands"]["DELE"]["err"]["zh"] = "only English here"
    del broken["codes"]["IN-USE"]
    broken["capabilities"]["TOP"]["summry"] = {"en": "typo", "zh": "错字"}
    broken["capabilities"]["SASL"]["with_args"]["zh"] = "机制：{mechanisms}"
    broken["states"]["LIMBO"] = broken["states"]["UPDATE"]
    broken["messages"]["nothing_found"]["zh"] = "找不到"
    problems = validate_pop3_data(broken)
    for expected in (
        "pop3.commands.RETR.summary.zh: missing or empty",
        "pop3.commands.DELE.err.zh: contains no Chinese characters",
        "pop3.codes.IN-USE: missing",
        "pop3.capabilities.TOP.summry: unknown field",
        "pop3.capabilities.SASL.with_args: placeholders differ between en and zh",
        "pop3.states.LIMBO: unknown",
        "pop3.messages.nothing_found: placeholders differ between en and zh",
    ):
        assert expected in problems, (expected, problems)


def test_every_key_is_in_both_languages() -> None:
    def walk(value: object, where: str) -> None:
        if isinstance(value, dict) and {"en", "zh"} & set(value):
            assert set(value) == {"en", "zh"}, where
            assert value["en"].strip() and not CJK.search(value["en"]), where
            assert CJK.search(value["zh"]), where
        elif isinstance(value, dict):
            for key, child in value.items():
                walk(child, f"{where}.{key}")

    for name in ("pop3", "pop3_checker", "pop3_problems"):
        walk(data(name), name)


def test_every_problem_the_parser_and_dialogue_name_has_words() -> None:
    from pathlib import Path

    import smtp_tutor.core.pop3 as package

    source = "".join(p.read_text("utf-8") for p in Path(package.__file__).parent.glob("*.py"))
    used = set(re.findall(r'Problem\(\s*"([a-z_0-9]+)"', source))
    used |= set(re.findall(r'Said\("pop3_problems", "([a-z_0-9]+)"', source))
    used |= set(re.findall(r'"(closed_update(?:_nothing)?)"', source))
    catalogue = set(data("pop3_problems"))
    assert used and used <= catalogue, used - catalogue
    assert catalogue <= used, catalogue - used


def test_the_data_covers_every_command_state_code_and_capability() -> None:
    pop3 = data("pop3")
    assert set(pop3["commands"]) == set(KNOWN_COMMANDS)
    assert set(pop3["states"]) == {s.value for s in State}
    assert set(REQUIRED_CODES) <= set(pop3["codes"])
    assert set(REQUIRED_CAPABILITIES) <= set(pop3["capabilities"])


@pytest.mark.parametrize(("command", "call"), sorted(POPLIB.items()))
def test_each_command_names_its_poplib_call(command: str, call: str) -> None:
    import poplib

    info = command_info(command)
    assert info is not None and info.poplib.split("(")[0] == call
    assert hasattr(poplib.POP3, call)


def test_commands_without_a_poplib_call() -> None:
    import poplib

    for command in ("AUTH", "LANG"):
        info = command_info(command)
        assert info is not None and info.poplib == ""
    assert not hasattr(poplib.POP3, "auth")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_look_ups(lang: str) -> None:
    retr = command_info("retr", lang)
    assert retr is not None and retr.states == ("TRANSACTION",) and retr.syntax == "RETR msg"
    quit_ = command_info("QUIT", lang)
    assert quit_ is not None and quit_.states == ("AUTHORIZATION", "TRANSACTION")
    assert command_info("EHLO", lang) is None
    state = state_info("authorization", lang)
    assert state is not None and "USER" in state.commands and "RETR" not in state.commands
    assert state_info("UPDATE", lang).commands == ()  # type: ignore[union-attr]
    for status in Status:
        info = status_info(status, lang)
        assert info.title and info.meaning and info.next_step


def test_code_info_known_child_and_unknown() -> None:
    temp = code_info("[SYS/TEMP]")
    assert (
        temp is not None
        and temp.standard
        and temp.parts == ("[SYS] = A problem on the server's side",)
    )
    other = code_info("SYS/OTHER")
    assert (
        other is not None and not other.standard and "more precise form of [SYS]" in other.meaning
    )
    strange = code_info("X-FOO")
    assert strange is not None and not strange.standard and strange.rfc == "RFC 2449 §3"
    assert code_info("has space") is None and code_info("") is None


def test_capability_lines() -> None:
    sasl = capability_info("SASL PLAIN LOGIN", "en")
    assert sasl is not None and sasl.args == ("PLAIN", "LOGIN") and sasl.known
    assert "PLAIN:" in sasl.detail and "LOGIN:" in sasl.detail
    delay = capability_info("LOGIN-DELAY 900", "zh")
    assert delay is not None and "900" in delay.detail and CJK.search(delay.detail)
    unknown = capability_info("X-DOVECOT-THING 1", "en")
    assert unknown is not None and not unknown.known and "1" in unknown.detail
    assert capability_info("   ") is None


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>", {"status"}),
        ("-ERR [IN-USE] Do you have another POP session running?", {"status", "code"}),
        ("S: -ERR [SYS/TEMP] Internal error occurred.", {"status", "code"}),
        ("+ VXNlcm5hbWU6", {"status"}),
        ("C: RETR 1", {"command"}),
        ("poplib.POP3.pass_('x')", {"command"}),
        ("TOP", {"command", "capability"}),
        ("[AUTH]", {"code"}),
        ("AUTH", {"command", "code"}),
        ("IN-USE", {"code"}),
        ("SASL PLAIN", {"capability"}),
        ("LOGIN-DELAY 900", {"capability", "code"}),
        ("transaction", {"state"}),
    ],
)
def test_explain_finds_what_was_pasted(query: str, found: set[str]) -> None:
    exp = explain_pop3(query)
    present = {f for f in ("status", "code", "command", "capability", "state") if getattr(exp, f)}
    assert present == found
    for lang in ("en", "zh"):
        assert format_pop3_explanation(explain_pop3(query, lang), lang)


def test_explain_a_response_with_the_command_it_answered() -> None:
    exp = explain_pop3("-ERR [IN-USE] locked", "en", command="PASS")
    assert exp.command is not None and exp.command.name == "PASS" and exp.text == "locked"
    text = format_pop3_explanation(exp)
    assert "Code [IN-USE]: The mailbox is locked" in text and "If -ERR:" in text
    assert text.index("Response -ERR") < text.index("Code [IN-USE]") < text.index("Command PASS")


def test_explain_notes() -> None:
    assert explain_pop3("+ VXNlcm5hbWU6").notes == ("decoded: 'Username:'",)
    assert "empty" in explain_pop3("+ ").notes[0]
    assert "not base64" in explain_pop3("+ @@@").notes[0]
    greeting = explain_pop3("+OK ready <1.2@host>")
    assert greeting.notes == ("The greeting carries <1.2@host>: this server offers APOP.",)
    assert "status indicator is not in upper case" in explain_pop3("+ok fine").notes[0]


def test_explain_in_chinese() -> None:
    text = format_pop3_explanation(explain_pop3("-ERR [AUTH] no", "zh"), "zh")
    assert "代码 [AUTH]：凭据被拒绝" in text and "响应 -ERR：命令失败" in text
    text = format_pop3_explanation(explain_pop3("pass_", "zh"), "zh")
    assert "Python 的 poplib：poplib.POP3.pass_(password)" in text


@pytest.mark.parametrize(
    ("query", "words"),
    [("", "nothing to explain"), ("  \n ", "nothing to explain"), ("hello there", "not a POP3"),
     ("550 5.1.1 no", "SMTP reply code")],
)  # fmt: skip
def test_nothing_to_explain_is_a_one_line_value_error(query: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        explain_pop3(query)
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError) as caught:
        explain_pop3(query, "zh")
    assert CJK.search(str(caught.value))


@given(st.text(max_size=200))
def test_explain_never_raises_anything_but_value_error(query: str) -> None:
    try:
        exp = explain_pop3(query, "zh")
    except ValueError:
        return
    assert format_pop3_explanation(exp, "zh")
