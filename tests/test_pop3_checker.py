"""The POP3 checker: what it predicts before a line goes out, and its words in both languages."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtp_tutor.core import checker as smtp_checker
from smtp_tutor.core.pop3 import checker
from smtp_tutor.core.pop3.checker import Finding, check
from smtp_tutor.core.pop3.dialogue import Dialogue

GREETING = b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"
CAPA = b"+OK\r\nTOP\r\nUSER\r\nSASL PLAIN LOGIN\r\nSTLS\r\nPIPELINING\r\n.\r\n"


def dialogue(*steps: tuple[str, bytes], greeting: bytes = GREETING) -> Dialogue:
    d = Dialogue()
    d.receive(greeting)
    for line, answer in steps:
        d.send(line)
        d.receive(answer)
    return d


def logged_in(*more: tuple[str, bytes]) -> Dialogue:
    return dialogue(("USER mrose", b"+OK\r\n"), ("PASS secret", b"+OK\r\n"), *more)


def ids(line: str, d: Dialogue) -> list[str]:
    return [f.id for f in check(line, d)]


def test_a_good_session_draws_no_errors() -> None:
    d = dialogue(("CAPA", CAPA))
    d.tls_at_connect()
    for line, answer in [
        ("USER mrose", b"+OK\r\n"),
        ("PASS secret", b"+OK\r\n"),
        ("STAT", b"+OK 2 320\r\n"),
        ("LIST", b"+OK\r\n1 120\r\n2 200\r\n.\r\n"),
        ("TOP 1 0", b"+OK\r\nSubject: x\r\n\r\n.\r\n"),
        ("RETR 1", b"+OK\r\nSubject: x\r\n\r\nhi\r\n.\r\n"),
        ("DELE 1", b"+OK\r\n"),
        ("NOOP", b"+OK\r\n"),
        ("RSET", b"+OK\r\n"),
        ("QUIT", b"+OK\r\n"),
    ]:
        assert ids(line, d) == [], line
        d.send(line)
        d.receive(answer)


def test_findings_are_smtp_findings_with_their_own_words() -> None:
    [finding] = check("PASS secret", dialogue())
    assert isinstance(finding, smtp_checker.Finding) and finding.catalogue == "pop3_checker"
    assert "USER" in finding.text("en") and "USER" in finding.text("zh")
    assert re.search(r"[\u4e00-\u9fff]", finding.text("zh"))


def test_control_characters_closed_and_update() -> None:
    assert ids("USER a\r\nDELE 1", dialogue()) == ["control_characters"]
    d = dialogue(("QUIT", b"+OK\r\n"))
    assert ids("NOOP", d) == ["closed"]
    d = logged_in(("QUIT", b"+OK\r\n"))
    assert ids("NOOP", d) == ["in_update"]


def test_length_empty_and_before_greeting() -> None:
    d = dialogue()
    line = "USER " + "x" * 249  # 256 octets with CRLF
    assert ids(line, d) == ["command_too_long"]
    assert check(line, d)[0].params == {"length": "256", "limit": "255"}
    assert ids("USER " + "x" * 248, d) == []
    assert ids("", d) == ["empty_line"] and ids("   ", d) == ["empty_line"]
    assert ids("USER a", Dialogue()) == ["before_greeting"]


def test_refused_greeting() -> None:
    d = dialogue(greeting=b"-ERR [SYS/TEMP] not now\r\n")
    assert ids("USER a", d) == ["service_refused"] and ids("QUIT", d) == []


def test_unknown_commands() -> None:
    d = logged_in()
    assert check("RETT 1", d) == [
        Finding("unknown_command_suggest", "error", {"verb": "RETT", "hint": "RETR"})
    ]
    assert ids("XYZZY", d) == ["unknown_command"]
    assert ids("EHLO me.example", d) == ["smtp_command"]
    assert ids("MAIL FROM:<a@b>", d) == ["smtp_command"]


def test_pass_before_user_and_user_again() -> None:
    assert ids("PASS secret", dialogue()) == ["pass_before_user"]
    d = dialogue(("USER mrose", b"+OK\r\n"))
    assert ids("PASS secret", d) == ["password_in_clear"]
    assert check("USER other", d) == [Finding("user_again", "info", {"user": "mrose"})]
    d = dialogue(("USER mrose", b"+OK\r\n"), ("PASS wrong", b"-ERR [AUTH] no\r\n"))
    assert ids("PASS secret", d) == ["pass_before_user"]


@pytest.mark.parametrize("line", ["STAT", "LIST", "RETR 1", "DELE 1", "TOP 1 0", "UIDL", "NOOP"])
def test_transaction_commands_before_login(line: str) -> None:
    assert ids(line, dialogue()) == ["needs_login"]


@pytest.mark.parametrize("line", ["USER a", "PASS b", "APOP a c4c9334bac560ecc979e58001b3e22fb"])
def test_authorization_commands_after_login(line: str) -> None:
    assert ids(line, logged_in()) == ["already_logged_in"]


def test_stls_rules() -> None:
    assert ids("STLS", logged_in()) == ["stls_after_login"]
    d = dialogue()
    d.tls_at_connect()
    assert ids("STLS", d) == ["stls_twice"]
    d = dialogue(("CAPA", b"+OK\r\nUSER\r\n.\r\n"))
    assert check("STLS", d) == [
        Finding("not_advertised", "warning", {"verb": "STLS", "capability": "STLS"})
    ]
    assert ids("STLS", dialogue(("CAPA", CAPA))) == []
    assert ids("STLS now", dialogue()) == ["no_argument_expected"]


def test_auth_rules() -> None:
    d = dialogue(("CAPA", CAPA))
    assert ids("AUTH PLAIN", d) == ["password_in_clear"]
    assert ids("AUTH CRAM-MD5", d) == ["mechanism_not_advertised"]
    assert check("AUTH CRAM-MD5", d)[0].params == {
        "mechanism": "CRAM-MD5",
        "advertised": "PLAIN LOGIN",
    }
    assert ids("AUTH", d) == ["auth_lists"]
    assert ids("AUTH PLAIN a b", d) == ["too_many_arguments", "password_in_clear"]
    d = dialogue(("CAPA", b"+OK\r\nUSER\r\n.\r\n"))
    assert ids("AUTH PLAIN", d) == ["password_in_clear", "not_advertised"]
    assert ids("AUTH XOAUTH2", dialogue()) == []  # CAPA unknown: nothing to compare with


def test_apop_rules() -> None:
    d = dialogue()
    assert ids("APOP mrose c4c9334bac560ecc979e58001b3e22fb", d) == []
    assert ids("APOP mrose", d) == ["apop_arguments"]
    assert ids("APOP mrose tanstaaf", d) == ["apop_digest_format"]
    assert ids("APOP mrose C4C9334BAC560ECC979E58001B3E22FB", d) == ["apop_digest_format"]
    d = dialogue(greeting=b"+OK ready\r\n")
    assert ids("APOP mrose c4c9334bac560ecc979e58001b3e22fb", d) == ["apop_not_offered"]


def test_arguments() -> None:
    d = logged_in()
    assert ids("USER", dialogue()) == ["argument_required"]
    assert ids("RETR", d) == ["message_number_required"]
    assert ids("DELE", d) == ["message_number_required"]
    assert ids("RETR 1 2", d) == ["too_many_arguments"]
    assert ids("LIST 1 2", d) == ["too_many_arguments"]
    assert ids("RETR x", d) == ["bad_message_number"]
    assert ids("RETR -1", d) == ["bad_message_number"]
    assert ids("RETR 0", d) == ["message_number_zero"]
    assert ids("STAT 1", d) == ["no_argument_expected"]
    assert ids("QUIT now", d) == ["no_argument_expected"]
    assert ids("LIST", d) == [] and ids("UIDL 3", d) == []


def test_top_needs_both_numbers() -> None:
    d = logged_in()
    assert ids("TOP", d) == ["top_arguments"] and ids("TOP 1", d) == ["top_arguments"]
    assert ids("TOP 1 x", d) == ["bad_line_count"]
    assert ids("TOP x 1", d) == ["bad_message_number"]
    assert ids("TOP 1 0", d) == [] and ids("TOP 1 2 3", d) == ["too_many_arguments"]
    d = logged_in(("CAPA", b"+OK\r\nUSER\r\n.\r\n"))
    assert ids("TOP 1 0", d) == ["not_advertised"]
    assert ids("UIDL", d) == ["not_advertised"]


def test_deleted_and_missing_messages() -> None:
    d = logged_in(("STAT", b"+OK 2 320\r\n"), ("DELE 1", b"+OK\r\n"))
    assert check("RETR 1", d) == [
        Finding("deleted_message", "error", {"verb": "RETR", "value": "1", "number": "1"})
    ]
    assert ids("LIST 1", d) == ["deleted_message"] and ids("TOP 1 0", d) == ["deleted_message"]
    assert ids("DELE 1", d) == ["already_marked"]
    assert ids("RETR 2", d) == []
    assert ids("RETR 3", d) == ["no_such_message"]
    assert check("RETR 3", d)[0].params["count"] == "2"
    d.send("RSET")
    assert ids("RETR 1", d) == ["not_pipelining"]  # RSET in flight unmarks it already


def test_marked_messages_keep_their_numbers_after_stat() -> None:
    d = logged_in(("DELE 1", b"+OK\r\n"), ("STAT", b"+OK 1 93\r\n"))
    assert d.message_count == 1 and d.last_number == 2
    assert ids("RETR 2", d) == [] and ids("RETR 3", d) == ["no_such_message"]


def test_a_pipelined_dele_counts() -> None:
    d = logged_in(("CAPA", CAPA))
    d.send("DELE 2")
    assert ids("RETR 2", d) == ["deleted_message"]


def test_pipelining() -> None:
    d = dialogue()
    d.send("USER mrose")
    assert ids("PASS secret", d) == ["not_pipelining", "password_in_clear"]
    d = dialogue(("CAPA", CAPA))
    d.send("USER mrose")
    assert ids("PASS secret", d) == ["password_in_clear"]  # checked as if USER succeeded
    d.send("PASS secret")
    assert ids("STAT", d) == []
    d.send("QUIT")
    assert check("NOOP", d)[0] == Finding("wait_for_answer", "warning", {"verb": "QUIT"})
    d = dialogue(("CAPA", CAPA))
    d.send("STLS")
    assert ids("CAPA", d) == ["wait_for_answer"]


def test_auth_answers() -> None:
    d = dialogue(("AUTH PLAIN", b"+ \r\n"))
    assert ids("AHN0dWRlbnQAczNjcmV0", d) == []
    assert ids("*", d) == ["auth_cancel"]
    assert ids("not base64!", d) == ["auth_response_not_base64"]
    assert ids("x" * 400 + "==", d) in ([], ["auth_response_not_base64"])  # no 255 limit here
    assert "command_too_long" not in ids("QUJD" * 100, d)


def test_every_finding_has_words_in_both_languages() -> None:
    source = Path(checker.__file__).read_text("utf-8")
    used = set(re.findall(r'Finding\(\s*"([a-z_0-9]+)"', source))
    used |= set(re.findall(r'"([a-z_0-9]+)" if verb', source))
    used |= set(re.findall(r'else "([a-z_0-9]+)"', source))
    text = resources.files("smtp_tutor.data").joinpath("pop3_checker.toml").read_text("utf-8")
    catalogue = tomllib.loads(text)
    assert used and used <= set(catalogue), used - set(catalogue)
    assert set(catalogue) - used == set(), "entries no code uses"
    for key, entry in catalogue.items():
        assert set(entry) == {"en", "zh"}, key
        assert re.search(r"[\u4e00-\u9fff]", entry["zh"]), key
        assert set(re.findall(r"{(\w+)}", entry["en"])) == set(re.findall(r"{(\w+)}", entry["zh"]))


_ANY_LINE = st.text(max_size=300) | st.sampled_from(
    ["RETR", "TOP 1", "TOP x y z", "APOP", "AUTH", "PASS", "DELE 00", "LIST ٣", "USER \udce9"]
)


@given(_ANY_LINE)
def test_checker_never_raises(line: str) -> None:
    for d in (Dialogue(), dialogue(), dialogue(("CAPA", CAPA)), logged_in(("DELE 1", b"+OK\r\n"))):
        for finding in check(line, d):
            assert finding.severity in ("error", "warning", "info")
            assert finding.text("zh") and finding.text("en")
