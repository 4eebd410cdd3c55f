"""The message lint: what a receiver will make of the lines typed in DATA mode."""

from __future__ import annotations

import email.parser
import email.policy
import re
import tomllib
from datetime import datetime, timedelta, timezone
from email.header import decode_header, make_header
from importlib import resources
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtp_tutor.core import message_lint
from smtp_tutor.core.message_lint import (
    LINT_IDS,
    LintFinding,
    encode_header_line,
    header_template,
    lint_message,
    render_finding,
)

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`

# The headers of the classic PHP tutorial (see shared/seed/classic-smtp-tutorial.txt), as its
# sendMail() builds them: no space after the colons, a raw Chinese subject, the charset on a
# line of its own, no Date, Message-ID or MIME-Version.
CLASSIC = [
    "From:xxxxx@163.com",
    "To:xxxx@qq.com",
    "Subject:我是标题",
    "Content-Type: Text/html;",
    "charset=gb2312",
    "",
    "hello world",
]
CLASSIC_ENVELOPE: dict[str, Any] = {
    "envelope_from": "xxxxx@163.com",
    "recipients": ["xxxx@qq.com"],
    "eight_bit_mime": False,
    "smtputf8": False,
}

GOOD = [
    "From: Alice <alice@example.org>",
    "To: bob@example.net",
    "Subject: Lunch",
    "Date: Mon, 20 Nov 1995 19:12:08 -0500",
    "Message-ID: <1234@example.org>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=UTF-8",
    "Content-Transfer-Encoding: 7bit",
    "",
    "Shall we meet at noon?",
    ".a line that the console will dot-stuff",
]
ENVELOPE: dict[str, Any] = {
    "envelope_from": "alice@example.org",
    "recipients": ["bob@example.net"],
    "eight_bit_mime": False,
    "smtputf8": False,
}


def lint(lines: list[str], **overrides: Any) -> list[LintFinding]:
    return lint_message(lines, **{**ENVELOPE, **overrides})


def ids(lines: list[str], **overrides: Any) -> list[str]:
    return [f.id for f in lint(lines, **overrides)]


def by_id(findings: list[LintFinding], finding_id: str) -> LintFinding:
    matches = [f for f in findings if f.id == finding_id]
    assert len(matches) == 1, findings
    return matches[0]


def replace(lines: list[str], header: str, *new: str) -> list[str]:
    """GOOD with the header `header` replaced by `new` lines (or removed)."""
    out: list[str] = []
    for line in lines:
        if line.lower().startswith(header.lower() + ":"):
            out.extend(new)
        else:
            out.append(line)
    return out


def parse(lines: list[str]) -> email.message.EmailMessage:
    data = "\r\n".join(lines).encode("utf-8") + b"\r\n"
    return email.parser.BytesParser(policy=email.policy.default).parsebytes(data)  # type: ignore[return-value]


# --- the classic tutorial and a good message ----------------------------------------


def test_classic_tutorial_headers_draw_exactly_its_mistakes() -> None:
    findings = lint_message(CLASSIC, **CLASSIC_ENVELOPE)
    assert sorted(f.id for f in findings) == sorted(
        [
            "missing_date",
            "missing_message_id",
            "missing_mime_version",
            "non_ascii_header",
            "not_a_continuation",
        ]
    )
    subject = by_id(findings, "non_ascii_header")
    assert subject.line == 3 and subject.params == {"header": "Subject"}
    assert subject.fix == "Subject: =?utf-8?b?5oiR5piv5qCH6aKY?="
    charset = by_id(findings, "not_a_continuation")
    assert charset.line == 5 and charset.severity == "error"
    assert charset.params == {"text": "charset=gb2312", "header": "Content-Type"}
    assert charset.fix == " charset=gb2312"


def test_classic_charset_is_lost_and_the_fix_brings_it_back() -> None:
    broken = parse(CLASSIC)
    assert broken.get_content_charset() is None
    assert broken.get_payload().startswith("charset=gb2312")
    fixed = list(CLASSIC)
    for finding in lint_message(CLASSIC, **CLASSIC_ENVELOPE):
        if finding.fix is not None and finding.line is not None:
            fixed[finding.line - 1] = finding.fix
    message = parse(fixed)
    assert message.get_content_charset() == "gb2312"
    assert message.get_payload() == "hello world\r\n"
    assert message.defects == []
    assert str(message["Subject"]) == "我是标题"
    assert sorted(ids(fixed, **CLASSIC_ENVELOPE)) == [
        "missing_date",
        "missing_message_id",
        "missing_mime_version",
    ]


def test_good_message_draws_nothing() -> None:
    assert lint(GOOD) == []


def test_good_utf8_message_with_8bitmime_and_smtputf8_draws_nothing() -> None:
    lines = [
        "From: 张三 <alice@example.org>",
        "To: bob@example.net",
        "Subject: 午饭",
        "Date: Mon, 20 Nov 1995 19:12:08 +0800",
        "Message-ID: <1234@example.org>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=UTF-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        "中午一起吃饭吗？",
    ]
    assert lint(lines, eight_bit_mime=True, smtputf8=True) == []
    # Without SMTPUTF8 the raw headers are wrong; without 8BITMIME the body is.
    assert ids(lines, eight_bit_mime=True) == ["non_ascii_header", "non_ascii_header"]
    assert ids(lines, smtputf8=True) == ["body_8bit_without_8bitmime"]


# --- each rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "finding_id", "severity"),
    [
        ("Date", "missing_date", "error"),
        ("From", "missing_from", "error"),
        ("Message-ID", "missing_message_id", "warning"),
    ],
)
def test_missing_required_headers(header: str, finding_id: str, severity: str) -> None:
    findings = lint(replace(GOOD, header))
    assert [(f.id, f.severity, f.line) for f in findings] == [(finding_id, severity, None)]


def test_missing_mime_version_only_when_mime_is_used() -> None:
    no_version = replace(GOOD, "MIME-Version")
    assert ids(no_version) == ["missing_mime_version"]
    plain = replace(no_version, "Content-Type")
    plain = replace(plain, "Content-Transfer-Encoding")
    assert ids(plain) == []
    body_8bit = [*plain, "Grüße"]
    assert "missing_mime_version" in ids(body_8bit, eight_bit_mime=True)


def test_colon_less_line_after_a_finished_header_is_a_missing_blank_line() -> None:
    lines = ["From: a@example.org", "Date: Mon, 20 Nov 1995 19:12:08 -0500", "Hello Bob,"]
    findings = lint(lines, envelope_from="a@example.org")
    found = by_id(findings, "missing_blank_line")
    assert (found.line, found.params, found.fix) == (3, {"text": "Hello Bob,"}, None)
    assert "not_a_continuation" not in [f.id for f in findings]


def test_parameter_line_is_taken_for_a_continuation() -> None:
    lines = [*GOOD[:6], "Content-Type: text/plain", "charset=UTF-8", *GOOD[7:]]
    found = by_id(lint(lines), "not_a_continuation")
    assert found.line == 8 and found.fix == " charset=UTF-8"


def test_no_header_block() -> None:
    findings = lint(["hello", "world"])
    assert by_id(findings, "no_header_block").line == 1
    assert {"missing_date", "missing_from"} <= {f.id for f in findings}


def test_space_before_colon_ends_the_headers() -> None:
    lines = ["Subject : hi" if line.startswith("Subject") else line for line in GOOD]
    found = by_id(lint(lines), "space_before_colon")
    assert (found.line, found.fix, found.params["header"]) == (3, "Subject: hi", "Subject")
    # Everything after it is body, so Date and Message-ID are missing too.
    assert {"missing_date", "missing_message_id"} <= set(ids(lines))


def test_whitespace_only_line_is_not_a_separator() -> None:
    lines = [" " if line == "" else line for line in GOOD]
    findings = lint(lines)
    found = by_id(findings, "blank_line_not_empty")
    assert (found.line, found.fix, found.params) == (9, "", {"header": "Content-Transfer-Encoding"})


def test_first_line_continuation_and_mbox_from_and_empty_name() -> None:
    first = lint(["  Subject: x", *GOOD])
    assert by_id(first, "continuation_first").fix == "Subject: x"
    mbox = lint(["From alice@example.org", *GOOD[1:]])
    found = by_id(mbox, "mbox_from_line")
    assert (found.line, found.fix) == (1, "From: alice@example.org")
    assert "missing_from" in [f.id for f in mbox]  # the parser dropped it
    assert by_id(lint([":oops", *GOOD]), "missing_header_name").line == 1


def test_non_ascii_header_fix_and_smtputf8() -> None:
    lines = ["Subject: Grüße aus Köln" if line.startswith("Subject") else line for line in GOOD]
    found = by_id(lint(lines), "non_ascii_header")
    assert found.line == 3 and found.fix is not None and found.fix.isascii()
    assert str(make_header(decode_header(found.fix.split(":", 1)[1]))) == "Grüße aus Köln"
    assert lint(lines, smtputf8=True) == []


def test_non_ascii_display_name_is_encoded_not_the_address() -> None:
    lines = replace(GOOD, "From", "From: 爱丽丝 <alice@example.org>")
    found = by_id(lint(lines), "non_ascii_header")
    assert found.fix is not None and found.fix.endswith(" <alice@example.org>")
    assert parse(replace(GOOD, "From", found.fix))["From"].addresses[0].display_name == "爱丽丝"


def test_non_ascii_local_part_needs_smtputf8() -> None:
    lines = replace(GOOD, "To", "To: 鲍勃 <鲍勃@example.net>")
    found = by_id(lint(lines, recipients=["鲍勃@example.net"]), "non_ascii_address")
    assert found.fix is None and found.params == {"header": "To"}
    assert lint(lines, recipients=["鲍勃@example.net"], smtputf8=True) == []


def test_folded_non_ascii_header_has_no_single_line_fix() -> None:
    lines = replace(GOOD, "Subject", "Subject: Grüße", " aus Köln")
    found = by_id(lint(lines), "non_ascii_header")
    assert found.line == 3 and found.fix is None


def test_8bit_body_without_8bitmime() -> None:
    lines = [*GOOD, "Grüße"]
    found = by_id(lint(lines), "body_8bit_without_8bitmime")
    assert found.line == len(lines) and found.severity == "error"
    # With BODY=8BITMIME it only has to be declared honestly.
    declared = by_id(lint(lines, eight_bit_mime=True), "body_8bit_not_declared")
    assert declared.params == {"cte": "7bit"}
    honest = replace(lines, "Content-Transfer-Encoding", "Content-Transfer-Encoding: 8bit")
    assert lint(honest, eight_bit_mime=True) == []


def test_8bit_body_declared_as_base64_or_qp() -> None:
    lines = replace(
        [*GOOD, "Grüße"], "Content-Transfer-Encoding", "Content-Transfer-Encoding: base64"
    )
    findings = lint(lines)
    assert by_id(findings, "body_not_encoded").params == {"cte": "base64"}
    assert "body_8bit_without_8bitmime" not in [f.id for f in findings]


def test_8bit_body_without_charset() -> None:
    lines = [
        "From: alice@example.org",
        "To: bob@example.net",
        "Date: Mon, 20 Nov 1995 19:12:08 -0500",
        "Message-ID: <1@example.org>",
        "",
        "Grüße",
    ]
    assert ids(lines, eight_bit_mime=True) == [
        "missing_mime_version",
        "body_8bit_not_declared",
        "body_8bit_no_charset",
    ]


def test_unknown_transfer_encoding() -> None:
    lines = replace(GOOD, "Content-Transfer-Encoding", "Content-Transfer-Encoding: base65")
    assert by_id(lint(lines), "unknown_transfer_encoding").params == {"cte": "base65"}


def test_bad_base64_body() -> None:
    lines = replace(GOOD, "Content-Transfer-Encoding", "Content-Transfer-Encoding: base64")
    assert ids([*lines[:-2], "SGVsbG8=", ""]) == []
    assert "bad_base64_body" in ids([*lines[:-2], "SGVsbG8"])


def test_line_lengths() -> None:
    long_body = lint([*GOOD, "x" * 999])
    assert by_id(long_body, "line_too_long").params == {"length": "999", "limit": "998"}
    assert lint([*GOOD, "x" * 998]) == []
    assert "line_too_long" not in ids([*GOOD, "é" * 499])  # 998 octets: just fits
    assert ids([*GOOD, "é" * 500]) == ["line_too_long", "body_8bit_without_8bitmime"]
    header = replace(GOOD, "Subject", "Subject: " + "y" * 70)
    found = by_id(lint(header), "header_line_long")
    assert (found.severity, found.line, found.params["length"]) == ("info", 3, "79")
    assert lint(replace(GOOD, "Subject", "Subject: " + "y" * 69)) == []
    assert lint([*GOOD, "z" * 200]) == []  # the 78 rule is for headers only


def test_envelope_and_header_addresses() -> None:
    other_from = by_id(lint(GOOD, envelope_from="bounces@example.org"), "header_from_differs")
    assert other_from.severity == "info" and other_from.line == 1
    assert other_from.params == {
        "header_from": "alice@example.org",
        "envelope_from": "<bounces@example.org>",
    }
    assert lint(GOOD, envelope_from="<ALICE@example.org>") == []
    assert lint(GOOD, envelope_from=None) == []
    bcc = by_id(lint(GOOD, recipients=["bob@example.net", "eve@example.com"]), "header_to_differs")
    assert bcc.params == {
        "header_to": "To: bob@example.net",
        "envelope_to": "<bob@example.net>, <eve@example.com>",
    }
    assert ids(replace(GOOD, "To")) == ["no_recipient_headers"]


def test_dates() -> None:
    bad = by_id(lint(replace(GOOD, "Date", "Date: yesterday")), "bad_date")
    assert bad.params == {"value": "yesterday"} and bad.line == 4
    no_zone = lint(replace(GOOD, "Date", "Date: Mon, 20 Nov 1995 19:12:08"))
    assert [f.id for f in no_zone] == ["date_without_zone"]


def test_duplicate_singleton_headers() -> None:
    lines = [*GOOD[:3], "Subject: again", "Subject: and again", *GOOD[3:]]
    found = by_id(lint(lines), "duplicate_header")
    assert found.params == {"header": "Subject", "count": "3"} and found.line == 4
    assert lint([*GOOD[:1], "Received: a", "Received: b", *GOOD[1:]]) == []  # not singletons


def test_parser_defects_are_mapped() -> None:
    invalid = by_id(lint([*GOOD[:2], "Cc: <carol@example.net", *GOOD[2:]]), "invalid_header")
    assert invalid.params["header"] == "Cc" and "angle-addr" in invalid.params["detail"]
    multipart = replace(GOOD, "Content-Type", "Content-Type: multipart/mixed")
    defects = [f for f in lint(multipart) if f.id == "parser_defect"]
    assert any("NoBoundaryInMultipartDefect" in f.params["detail"] for f in defects)


def test_findings_are_ordered_message_wide_first() -> None:
    findings = lint_message(CLASSIC, **CLASSIC_ENVELOPE)
    lines = [0 if f.line is None else f.line for f in findings]
    assert lines == sorted(lines)


# --- RFC 2047 -----------------------------------------------------------------------


def decoded(line: str) -> str:
    return str(make_header(decode_header(line.split(":", 1)[1])))


@settings(max_examples=200)
@given(
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=120
    ).filter(lambda s: not s.isascii() and s == s.strip(" \t"))
)
def test_encoded_header_decodes_back(value: str) -> None:
    encoded = encode_header_line(f"Subject: {value}")
    assert encoded.startswith("Subject: =?utf-8?")
    assert encoded.isascii() and "\n" not in encoded
    words = encoded.split(":", 1)[1].split()
    assert all(len(word) <= 76 for word in words)
    assert decoded(encoded) == value
    assert encode_header_line(encoded) == encoded


def test_encode_header_line_leaves_ascii_and_non_headers_alone() -> None:
    for line in ["Subject: plain", "Subject:=?utf-8?q?x?=", "charset=gb2312", "", "正文"]:
        assert encode_header_line(line) == line
    # Header picks B or Q, whichever is shorter; the separator becomes one space.
    assert encode_header_line("X-Note:\tnaïve") == "X-Note: =?utf-8?b?bmHDr3Zl?="
    assert encode_header_line("Subject: Re: the café") == "Subject: =?utf-8?q?Re=3A_the_caf=C3=A9?="


def test_encode_address_header_uses_idna_and_keeps_addresses() -> None:
    line = encode_header_line("To: 张三 <zhang@例子.com>, bob@example.net")
    assert line.startswith("To: =?utf-8?b?5byg5LiJ?= <zhang@xn--fsqu00a.com>, bob@example.net")
    assert encode_header_line("To: 张三 <张@example.com>") == "To: 张三 <张@example.com>"
    assert encode_header_line("To: 朋友: a@b.c;") == "To: 朋友: a@b.c;"  # group: left to a human


# --- the :headers template ----------------------------------------------------------

NOW = datetime(2024, 5, 17, 9, 30, 0, tzinfo=timezone(timedelta(hours=8)))


def test_template_parses_cleanly_with_every_required_header() -> None:
    lines = header_template(
        envelope_from="alice@example.org",
        recipients=["bob@example.net", "carol@example.net"],
        subject="Lunch",
        now=NOW,
    )
    assert lines[-1] == ""
    message = parse([*lines, "Shall we meet?"])
    assert message.defects == []
    for name in message:
        assert message[name].defects == (), name
    for name in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"):
        assert name in message, name
    assert str(message["From"]) == "alice@example.org"
    assert [a.addr_spec for a in message["To"].addresses] == [
        "bob@example.net",
        "carol@example.net",
    ]
    assert message["Date"].datetime == NOW
    assert str(message["Message-ID"]).endswith("@example.org>")
    assert message["Content-Transfer-Encoding"] == "7bit"
    envelope = {
        "envelope_from": "alice@example.org",
        "recipients": ["bob@example.net", "carol@example.net"],
    }
    assert lint_message([*lines, "Hi"], **envelope, eight_bit_mime=False, smtputf8=False) == []


def test_template_with_8bitmime_and_a_chinese_subject() -> None:
    lines = header_template(
        envelope_from="alice@example.org",
        recipients=["bob@example.net"],
        subject="我是标题，" * 12,
        eight_bit=True,
        domain="mail.example.org",
        now=NOW,
    )
    assert all(line.isascii() and len(line) <= 78 for line in lines)
    message = parse([*lines, "你好"])
    assert message.defects == []
    assert str(message["Subject"]) == "我是标题，" * 12
    assert message["Content-Transfer-Encoding"] == "8bit"
    assert str(message["Message-ID"]).endswith("@mail.example.org>")
    envelope = {"envelope_from": "alice@example.org", "recipients": ["bob@example.net"]}
    assert lint_message([*lines, "你好"], **envelope, eight_bit_mime=True, smtputf8=False) == []


def test_template_placeholders() -> None:
    lines = header_template(envelope_from=None, recipients=[], now=NOW)
    assert "From: you@example.com" in lines
    assert "To: undisclosed-recipients:;" in lines
    assert "Subject:" in lines
    assert any(line.endswith("@smtp-tutor.invalid>") for line in lines)
    message = parse([*lines, "x"])
    assert message.defects == []
    assert all(message[name].defects == () for name in message)


def test_template_folds_a_long_recipient_list_and_handles_naive_now() -> None:
    recipients = [f"person{i}@example.net" for i in range(10)]
    lines = header_template(
        envelope_from="<alice@例子.com>", recipients=recipients, now=datetime(2024, 1, 1)
    )
    assert "From: alice@xn--fsqu00a.com" in lines
    assert all(len(line) <= 78 for line in lines)
    message = parse([*lines, "x"])
    assert [a.addr_spec for a in message["To"].addresses] == recipients
    assert message["Date"].datetime.tzinfo is not None


# --- words ----------------------------------------------------------------------------


def catalogue() -> dict[str, dict[str, str]]:
    text = resources.files("smtp_tutor.data").joinpath("lint.toml").read_text("utf-8")
    return tomllib.loads(text)


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", text))


def test_every_lint_id_has_words_in_both_languages() -> None:
    entries = catalogue()
    assert set(entries) == set(LINT_IDS)
    for key, entry in entries.items():
        assert entry.get("en") and entry.get("zh"), key
        assert re.search(r"[\u4e00-\u9fff]", entry["zh"]), key
        assert placeholders(entry["en"]) == placeholders(entry["zh"]), key


def test_the_module_uses_only_catalogued_ids() -> None:
    source = resources.files("smtp_tutor.core").joinpath("message_lint.py").read_text("utf-8")
    used = set(re.findall(r'LintFinding\(\s*"([a-z_0-9]+)"', source))
    assert used == set(LINT_IDS)


SAMPLES: list[list[str]] = [
    CLASSIC,
    [*GOOD, "Grüße"],
    replace(GOOD, "Date", "Date: yesterday"),
    [*GOOD[:2], "Cc: <carol@example.net", *GOOD[2:]],
    [*GOOD[:3], "Subject : x", *GOOD[3:]],
    [" ", "From x", ":y", "z"],
]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rendered_findings_fill_every_placeholder(lang: str) -> None:
    seen: set[str] = set()
    for lines in SAMPLES:
        for finding in lint(lines, envelope_from="other@example.org", recipients=["x@y.z"]):
            seen.add(finding.id)
            text = render_finding(finding, lang)
            assert "{" not in text and text != finding.id, (finding, text)
            if finding.line is not None and "{line}" in catalogue()[finding.id][lang]:
                assert str(finding.line) in text
    assert len(seen) >= 15


def test_render_finding_language_and_line() -> None:
    finding = by_id(lint_message(CLASSIC, **CLASSIC_ENVELOPE), "not_a_continuation")
    assert render_finding(finding, "en").startswith('Line 5, "charset=gb2312"')
    assert render_finding(finding, "zh-CN").startswith("第 5 行“charset=gb2312”")
    assert render_finding(finding, "fr") == render_finding(finding, "en")


# --- never raises -------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "From:",
        "From ",
        "To: ",
        "Date: ",
        "Subject:",
        "Content-Type: multipart/mixed; boundary=x",
        "--x",
        "Content-Transfer-Encoding: base64",
        "MIME-Version: 1.0",
        " ",
        "\t",
        ":",
        ";",
        ",",
        "=?utf-8?b?",
        "?=",
        "<",
        ">",
        "@",
        '"',
        "(",
        "é",
        "长",
        "\r",
        "\n",
        "\udcff",
        "\ud800",
    ]
)
ONE_LINE_FRAGMENTS = FRAGMENTS.filter(lambda f: "\r" not in f and "\n" not in f)
LINES = st.lists(st.one_of(st.text(), st.lists(FRAGMENTS, max_size=6).map("".join)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    LINES,
    st.one_of(st.none(), st.text(max_size=20)),
    st.lists(st.text(max_size=20), max_size=3),
    st.booleans(),
    st.booleans(),
)
def test_lint_never_raises(
    lines: list[str],
    envelope_from: str | None,
    recipients: list[str],
    eight_bit_mime: bool,
    smtputf8: bool,
) -> None:
    findings = lint_message(
        lines,
        envelope_from=envelope_from,
        recipients=recipients,
        eight_bit_mime=eight_bit_mime,
        smtputf8=smtputf8,
    )
    for finding in findings:
        assert finding.id in LINT_IDS
        assert finding.severity in ("error", "warning", "info")
        assert finding.line is None or 1 <= finding.line <= len(lines)
        assert all(isinstance(v, str) for v in finding.params.values())
        render_finding(finding, "zh")
    for line in lines:
        assert isinstance(encode_header_line(line), str)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(ONE_LINE_FRAGMENTS, max_size=5).map("".join), max_size=10))
def test_scan_agrees_with_the_email_parser(lines: list[str]) -> None:
    """Our header block is the parser's: same headers, same body start.

    Lines holding a bare CR/LF are left out: the console never sends them (the command
    checker flags them), and the parser's handling of ``\\r\\r\\n`` is its own.
    """
    scan = message_lint._scan(lines)
    parsed = message_lint._parse(lines)
    assert parsed is not None
    assert [h.name for h in scan.headers] == parsed.keys()
    if all(line.isascii() for line in lines):
        body = "\r\n".join(text for _n, text in scan.body) + "\r\n" if scan.body else ""
        split = re.compile(r"\r\n|\r|\n").split
        assert parsed.is_multipart() or split(parsed.get_payload()) == split(body)
