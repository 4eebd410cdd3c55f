"""The command checker: each mistake a server would punish is predicted before sending."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtp_tutor.core import checker
from smtp_tutor.core.checker import check
from smtp_tutor.core.command_line import parse_command, parse_path_argument
from smtp_tutor.core.dialogue import Dialogue
from smtp_tutor.core.replies import make_reply

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`


def dialogue(*caps: str, greeting: str = "mail.example.com ESMTP") -> Dialogue:
    d = Dialogue()
    d.receive(make_reply(220, greeting))
    if caps:
        d.send("EHLO client.example")
        d.receive(make_reply(250, "mail.example.com", *caps))
    return d


def ids(line: str, d: Dialogue) -> list[str]:
    return [f.id for f in check(line, d)]


FULL = ("PIPELINING", "SIZE 1000", "8BITMIME", "SMTPUTF8", "STARTTLS", "AUTH PLAIN LOGIN", "DSN")


def test_good_session_draws_no_errors() -> None:
    d = dialogue(*FULL)
    assert ids("MAIL FROM:<a@example.com>", d) == []
    assert ids("MAIL FROM:<> BODY=8BITMIME SIZE=100", d) == []
    assert ids("mail from:<a@example.com>", d) == []  # verbs are case-insensitive


def test_control_characters() -> None:
    assert "control_characters" in ids("NOOP\r\nRSET", dialogue(*FULL))


def test_line_too_long() -> None:
    assert "command_too_long" in ids("NOOP " + "x" * 510, dialogue(*FULL))
    assert "command_too_long" not in ids("NOOP " + "x" * 505, dialogue(*FULL))


def test_unknown_verb_suggests_a_close_one() -> None:
    findings = check("EHOL me", dialogue())
    assert findings[0].id == "unknown_verb_suggest" and findings[0].params["hint"] == "EHLO"
    assert ids("FROB x", dialogue()) == ["unknown_verb"]


def test_empty_line() -> None:
    assert ids("", dialogue()) == ["empty_line"]


def test_before_greeting() -> None:
    assert "before_greeting" in ids("EHLO me", Dialogue())


def test_service_refused() -> None:
    d = Dialogue()
    d.receive(make_reply(554, "go away"))
    assert "service_refused" in ids("EHLO me", d)
    assert "service_refused" not in ids("QUIT", d)


def test_rcpt_before_mail() -> None:
    findings = check("RCPT TO:<b@example.com>", dialogue(*FULL))
    assert [f.id for f in findings] == ["rcpt_before_mail"]
    assert findings[0].severity == "error"


def test_mail_before_ehlo() -> None:
    assert ids("MAIL FROM:<a@example.com>", dialogue()) == ["needs_hello"]


def test_data_before_rcpt() -> None:
    d = dialogue(*FULL)
    assert ids("DATA", d) == ["data_before_mail"]
    d.send("MAIL FROM:<a@x.org>")
    d.receive(make_reply(250, "ok"))
    assert ids("DATA", d) == ["data_before_rcpt"]


def test_nested_mail() -> None:
    d = dialogue(*FULL)
    d.send("MAIL FROM:<a@x.org>")
    d.receive(make_reply(250, "ok"))
    assert ids("MAIL FROM:<a@x.org>", d) == ["nested_mail"]
    assert ids("AUTH PLAIN", d)[0] == "in_transaction"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("MAIL FROM: <a@b.org>", ["path_space"]),
        ("MAIL FROM :<a@b.org>", ["path_space"]),
        ("MAIL FROM:a@b.org", ["path_no_brackets"]),
        ("MAIL FROM <a@b.org>", ["path_colon_missing"]),
        ("MAIL <a@b.org>", ["path_keyword_missing"]),
        ("MAIL FROM:<a@b.org", ["path_unbalanced"]),
        ("MAIL FROM:<not-an-address>", ["path_invalid_address"]),
        ("MAIL FROM: a@b.org", ["path_space", "path_no_brackets"]),
    ],
)
def test_mail_from_syntax(line: str, expected: list[str]) -> None:
    assert ids(line, dialogue(*FULL)) == expected


def test_rcpt_null_path() -> None:
    d = dialogue(*FULL)
    d.send("MAIL FROM:<>")
    d.receive(make_reply(250, "ok"))
    assert ids("RCPT TO:<>", d) == ["rcpt_null_path"]


def test_parameters_need_their_extension() -> None:
    d = dialogue("PIPELINING")
    assert ids("MAIL FROM:<a@b.org> SIZE=10", d) == ["parameter_not_advertised"]
    assert ids("MAIL FROM:<a@b.org> BODY=8BITMIME", d) == ["parameter_not_advertised"]
    assert ids("MAIL FROM:<a@b.org> FROB=1", d) == ["unknown_parameter"]


def test_size_over_limit_and_bad_values() -> None:
    d = dialogue(*FULL)
    assert ids("MAIL FROM:<a@b.org> SIZE=5000", d) == ["size_over_limit"]
    assert ids("MAIL FROM:<a@b.org> SIZE=abc", d) == ["bad_size_value"]
    assert ids("MAIL FROM:<a@b.org> BODY=9BIT", d) == ["bad_body_value"]


def test_dsn_parameters_on_rcpt() -> None:
    d = dialogue("PIPELINING")
    d.send("MAIL FROM:<a@b.org>")
    d.receive(make_reply(250, "ok"))
    assert ids("RCPT TO:<c@d.org> NOTIFY=SUCCESS", d) == ["parameter_not_advertised"]


def test_non_ascii_address() -> None:
    assert ids("MAIL FROM:<张三@例子.中国>", dialogue(*FULL)) == ["smtputf8_parameter"]
    assert ids("MAIL FROM:<张三@例子.中国> SMTPUTF8", dialogue(*FULL)) == []
    assert ids("MAIL FROM:<张三@例子.中国>", dialogue("PIPELINING")) == ["smtputf8_unavailable"]


def test_hello_arguments() -> None:
    assert ids("EHLO", dialogue()) == ["hello_without_name"]
    assert ids("HELO mail.example.com", dialogue()) == ["hello_server_name"]
    assert ids("EHLO [127.0.0.1]", dialogue()) == []


def test_no_argument_verbs() -> None:
    assert ids("DATA now", dialogue(*FULL))[0] == "no_argument_expected"
    assert ids("QUIT please", dialogue(*FULL)) == ["no_argument_expected"]


def test_auth_rules() -> None:
    d = dialogue(*FULL)
    assert ids("AUTH LOGIN", d) == ["auth_in_clear"]
    assert ids("AUTH CRAM-MD5", d) == ["mechanism_not_advertised"]
    assert ids("AUTH", d) == ["auth_without_mechanism"]
    hidden = dialogue("PIPELINING", "STARTTLS")
    assert ids("AUTH PLAIN", hidden)[0] == "auth_hidden_before_tls"
    assert ids("AUTH PLAIN", dialogue("PIPELINING"))[0] == "not_advertised"
    d.authenticated = True
    assert ids("AUTH PLAIN", d) == ["auth_twice"]


def test_bdat_needs_chunking_advertised() -> None:
    for caps in (("PIPELINING",), ("PIPELINING", "CHUNKING")):
        d = dialogue(*caps)
        for line in ("MAIL FROM:<a@b.org>", "RCPT TO:<c@d.org>"):
            d.send(line)
            d.receive(make_reply(250, "ok"))
        found = ids("BDAT 10 LAST", d)
        assert found == ([] if "CHUNKING" in caps else ["not_advertised"])


def test_extensions_after_helo() -> None:
    d = dialogue()
    d.send("HELO me")
    d.receive(make_reply(250, "hi"))
    assert ids("STARTTLS", d) == ["extension_after_helo"]


def test_starttls_rules() -> None:
    assert ids("STARTTLS", dialogue("PIPELINING")) == ["not_advertised"]
    d = dialogue(*FULL)
    d.tls_active = True
    assert ids("STARTTLS", d) == ["starttls_twice"]


def test_pipelining_warning() -> None:
    d = dialogue("SIZE 100")
    d.send("NOOP")
    assert "not_pipelining" in ids("NOOP", d)
    d2 = dialogue(*FULL)
    d2.send("NOOP")
    assert "not_pipelining" not in ids("NOOP", d2)


def test_data_mode_checks_text_lines() -> None:
    d = dialogue(*FULL)
    for line, code in [("MAIL FROM:<a@b.org>", 250), ("RCPT TO:<c@d.org>", 250), ("DATA", 354)]:
        d.send(line)
        d.receive(make_reply(code, "ok"))
    assert ids("RCPT TO:<this is text now>", d) == []
    assert ids("x" * 999, d) == ["data_line_too_long"]


def test_auth_response_mode() -> None:
    d = dialogue(*FULL)
    d.send("AUTH LOGIN")
    d.receive(make_reply(334, "VXNlcm5hbWU6"))
    assert ids("c3R1ZGVudA==", d) == []
    assert ids("student", d) == ["auth_response_not_base64"]
    assert ids("*", d) == ["auth_cancel"]


def test_closed() -> None:
    d = dialogue(*FULL)
    d.connection_lost()
    assert ids("NOOP", d) == ["closed"]


def test_every_finding_has_words_in_both_languages() -> None:
    source = Path(checker.__file__).read_text("utf-8")
    used = set(re.findall(r'Finding\(\s*"([a-z_0-9]+)"', source))
    used |= set(re.findall(r'rule = "([a-z_0-9]+)" if', source))
    used |= set(re.findall(r'else "([a-z_0-9]+)"', source))
    text = resources.files("smtp_tutor.data").joinpath("checker.toml").read_text("utf-8")
    catalogue = tomllib.loads(text)
    assert used <= set(catalogue), used - set(catalogue)
    for key, entry in catalogue.items():
        assert entry.get("en") and entry.get("zh"), key
        assert re.search(r"[\u4e00-\u9fff]", entry["zh"]), key
        assert set(re.findall(r"{(\w+)}", entry["en"])) == set(re.findall(r"{(\w+)}", entry["zh"]))


def test_path_argument_parsing() -> None:
    path = parse_path_argument(parse_command("MAIL FROM:<a@b.org> SIZE=10 BODY=8BITMIME SMTPUTF8"))
    assert path is not None and path.path == "a@b.org" and path.bracketed
    assert path.parameters == {"SIZE": "10", "BODY": "8BITMIME", "SMTPUTF8": None}
    assert parse_path_argument(parse_command("NOOP")) is None


@given(st.text(max_size=600))
def test_checker_never_raises(line: str) -> None:
    for d in (Dialogue(), dialogue(), dialogue(*FULL)):
        for finding in check(line, d):
            assert finding.severity in ("error", "warning", "info")


def test_pipelined_commands_are_checked_as_if_those_in_flight_succeed() -> None:
    d = dialogue(*FULL)
    d.send("MAIL FROM:<a@b.org>")
    assert ids("RCPT TO:<c@d.org>", d) == []
    d.send("RCPT TO:<c@d.org>")
    assert ids("DATA", d) == []
    assert ids("MAIL FROM:<a@b.org>", d) == ["nested_mail"]


def test_utf8_recipient_is_fine_once_mail_asked_for_smtputf8() -> None:
    d = dialogue(*FULL)
    d.send("MAIL FROM:<张三@例子.中国> SMTPUTF8")
    assert ids("RCPT TO:<李四@例子.中国>", d) == []  # pipelined: MAIL still in flight
    d.receive(make_reply(250, "ok"))
    assert ids("RCPT TO:<李四@例子.中国>", d) == []
    plain = dialogue(*FULL)
    plain.send("MAIL FROM:<a@b.org>")
    plain.receive(make_reply(250, "ok"))
    assert ids("RCPT TO:<李四@例子.中国>", plain) == ["smtputf8_parameter"]
