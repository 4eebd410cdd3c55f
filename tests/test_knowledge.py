"""The knowledge base: data completeness in both languages, look-ups, fallbacks, explain()."""

from __future__ import annotations

import copy
import fnmatch
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtp_tutor.core import knowledge
from smtp_tutor.core.knowledge import (
    CodeInfo,
    explain,
    format_explanation,
    format_keyword,
    language_from_env,
    load_knowledge,
    normalise_command,
    normalise_language,
    validate,
    validate_data,
)

ROOT = Path(__file__).resolve().parents[1]
CJK = re.compile(r"[\u3400-\u9fff]")


def looks_english(text: str) -> bool:
    """Mostly Latin: catches zh in the en slot, yet allows an example such as 用户@例子.中国."""
    return len(re.findall(r"[A-Za-z]", text)) > 3 * len(CJK.findall(text))


_RFC5321 = """
    211 214 220 221 250 251 252 354 421 450 451 452 455
    500 501 502 503 504 550 551 552 553 554 555
"""
RFC5321_CODES = _RFC5321.split()
_EXTENSIONS = "235 334 432 454 530 534 535 538 521 556 253 458 459"
EXTENSION_CODES = _EXTENSIONS.split()
REQUIRED_DETAILS = [
    f"X.{subject}.{detail}"
    for subject, last in ((0, 0), (1, 10), (2, 4), (3, 5), (4, 7), (5, 6), (6, 10), (7, 30))
    for detail in range(last + 1)
]
_KEYWORDS = """
    PIPELINING SIZE 8BITMIME SMTPUTF8 STARTTLS AUTH ENHANCEDSTATUSCODES CHUNKING
    BINARYMIME DSN HELP VRFY EXPN ETRN DELIVERBY REQUIRETLS MT-PRIORITY FUTURERELEASE
    NO-SOLICITING LIMITS XCLIENT XFORWARD X-EXPS
"""
REQUIRED_KEYWORDS = _KEYWORDS.split()


@pytest.fixture(scope="module")
def kb() -> knowledge.KnowledgeBase:
    return load_knowledge()


def assert_bilingual(en: CodeInfo, zh: CodeInfo) -> None:
    for field in ("title", "meaning", "next_step"):
        en_text, zh_text = getattr(en, field), getattr(zh, field)
        assert en_text.strip() and zh_text.strip(), field
        assert CJK.search(zh_text), f"{zh.code}.{field} zh has no Chinese: {zh_text!r}"
        assert looks_english(en_text), f"{en.code}.{field} en looks Chinese: {en_text!r}"
    assert en.rfc and en.rfc == zh.rfc


# --- Data completeness -------------------------------------------------------------------


def test_shipped_data_validates() -> None:
    assert validate() == []


@pytest.mark.parametrize("code", RFC5321_CODES + EXTENSION_CODES)
def test_every_reply_code_is_explained_in_both_languages(kb, code: str) -> None:
    en, zh = kb.reply(code, "en"), kb.reply(int(code), "zh")
    assert en is not None and zh is not None
    assert en.standard and zh.standard
    assert en.code == zh.code == code
    assert_bilingual(en, zh)


def test_reply_codes_lists_the_rfc5321_set(kb) -> None:
    assert set(RFC5321_CODES + EXTENSION_CODES) <= set(kb.reply_codes())


@pytest.mark.parametrize("detail", REQUIRED_DETAILS)
def test_every_registered_detail_is_explained_in_both_languages(kb, detail: str) -> None:
    assert detail in kb.enhanced_codes()
    concrete = "5" + detail[1:]
    en, zh = kb.enhanced(concrete, "en"), kb.enhanced(concrete, "zh")
    assert en is not None and zh is not None and en.standard
    assert en.code == concrete
    assert_bilingual(en, zh)


def test_enhanced_codes_are_in_numeric_order(kb) -> None:
    codes = kb.enhanced_codes()
    assert codes.index("X.1.9") < codes.index("X.1.10") < codes.index("X.2.0")


@pytest.mark.parametrize("name", REQUIRED_KEYWORDS)
def test_required_keywords_are_explained(kb, name: str) -> None:
    assert name in kb.keywords()
    en, zh = kb.keyword(name, "en"), kb.keyword(name.lower(), "zh")
    assert en is not None and zh is not None
    assert en.name == zh.name == name
    assert en.rfc and looks_english(en.summary)
    assert CJK.search(zh.summary)


def test_seen_with_cross_references_resolve(kb) -> None:
    for code in kb.reply_codes():
        for related in kb.reply(code).related:
            info = kb.enhanced(related)
            assert info is not None and info.standard, (code, related)
    for detail in kb.enhanced_codes():
        for related in kb.enhanced(detail).related:
            assert related in kb.reply_codes(), (detail, related)


# --- Reply look-ups ----------------------------------------------------------------------


def test_reply_context_changes_the_explanation(kb) -> None:
    greeting = kb.reply(220, "en", command="GREETING")
    starttls = kb.reply(220, "en", command="starttls")
    generic = kb.reply(220, "en")
    assert greeting.context == "GREETING" and starttls.context == "STARTTLS"
    assert generic.context is None
    assert starttls.title != greeting.title
    assert "TLS" in starttls.meaning and "EHLO" in starttls.next_step
    assert starttls.rfc.startswith("RFC 3207")
    # the generic meaning covers both uses
    assert "greeting" in generic.meaning and "STARTTLS" in generic.meaning


def test_454_differs_for_auth_and_starttls(kb) -> None:
    auth = kb.reply("454", "zh", command="AUTH PLAIN")
    tls = kb.reply("454", "zh", command="STARTTLS")
    assert auth.context == "AUTH" and tls.context == "STARTTLS"
    assert auth.meaning != tls.meaning
    assert CJK.search(auth.title) and CJK.search(tls.title)


def test_context_uses_the_command_verb_and_falls_back(kb) -> None:
    rcpt = kb.reply(550, "en", command="rcpt to:<nobody@example.org>")
    assert rcpt.context == "RCPT"
    helo = kb.reply(501, "en", command="HELO")  # no HELO wording: EHLO's applies
    assert helo.context == "EHLO"
    other = kb.reply(550, "en", command="NOOP")  # no NOOP wording: generic, no context
    assert other.context is None and other == kb.reply(550, "en")
    dot = kb.reply(250, "en", command=".")
    assert dot.context == "DOT" and "responsibility" in dot.meaning


def test_unknown_reply_falls_back_to_its_digits(kb) -> None:
    en, zh = kb.reply(599, "en"), kb.reply("599", "zh-CN")
    assert not en.standard and not zh.standard
    assert "not a standard" in en.title.lower()
    assert "不是标准" in zh.title
    assert en.parts == ("5xx = Permanent negative completion",)
    assert en.next_step == kb.reply(599).next_step and "Change something" in en.next_step
    assert "permanent" in en.title.lower()
    other = kb.reply(219, "en")
    assert not other.standard and "information" in other.meaning


@pytest.mark.parametrize("code", [199, "600", "55", "5500", "abc", "", True, 550.0, None])
def test_impossible_replies_return_none(kb, code) -> None:
    assert kb.reply(code) is None  # type: ignore[arg-type]


def test_reply_parts_read_the_digits(kb) -> None:
    info = kb.reply(421)
    assert info.parts == ("4xx = Transient negative completion", "x2x = connection")


# --- Enhanced look-ups -------------------------------------------------------------------


def test_success_class_wording_for_failure_subjects(kb) -> None:
    assert "Accepted" in kb.enhanced("2.6.0").title
    assert "media" in kb.enhanced("5.6.0").title.lower()


def test_related_replies_follow_the_class(kb) -> None:
    assert kb.enhanced("2.6.0").related == ("250",)
    assert kb.enhanced("5.6.0").related == ("554", "550")
    assert kb.enhanced("4.2.2").related == ("452",)
    assert kb.enhanced("X.2.2").related == ("452", "552")


def test_class_changes_meaning_of_x70(kb) -> None:
    ok, temp, perm = kb.enhanced("2.7.0"), kb.enhanced("4.7.0"), kb.enhanced("5.7.0")
    assert "succeeded" in ok.title.lower()
    assert "temporary" in temp.title.lower()
    assert len({ok.title, temp.title, perm.title}) == 3
    assert ok.parts[0].startswith("2.x.x = Success")
    assert perm.parts[1] == "x.7.x = Security or policy status"


def test_enhanced_fallback_to_class_and_subject(kb) -> None:
    info = kb.enhanced("5.1.99", "en")
    assert info is not None and not info.standard
    assert info.code == "5.1.99"
    assert "not registered" in info.title
    assert info.parts == ("5.x.x = Permanent failure", "x.1.x = Addressing status")
    assert "address" in info.meaning
    zh = kb.enhanced("4.1.99", "zh")
    assert "未登记" in zh.title and "暂时" in zh.meaning


def test_enhanced_unknown_subject_keeps_only_the_class(kb) -> None:
    info = kb.enhanced("4.9.1")
    assert info is not None and not info.standard
    assert info.parts == ("4.x.x = Persistent transient failure",)
    assert "retry" in info.next_step.lower()


def test_enhanced_class_free_registry_form(kb) -> None:
    info = kb.enhanced("x.1.1")
    assert info is not None and info.code == "X.1.1" and info.standard
    assert kb.enhanced("X.9.9") is None


@pytest.mark.parametrize("code", ["5.x", "6.1.1", "5.1", "5.1.1.1", "5.1000.1", "", "550"])
def test_impossible_enhanced_codes_return_none(kb, code: str) -> None:
    assert kb.enhanced(code) is None


def test_enhanced_code_is_normalised(kb) -> None:
    assert kb.enhanced(" 5.01.001 ").code == "5.1.1"


# --- Keywords ----------------------------------------------------------------------------


def test_keyword_is_case_insensitive_and_unknown_is_none(kb) -> None:
    assert kb.keyword("starttls") == kb.keyword("STARTTLS ")
    assert kb.keyword("X-NOT-A-THING") is None
    assert kb.keyword("") is None


def test_size_line_explains_the_limit(kb) -> None:
    info = kb.ehlo_line("250-SIZE 10240000", "en")
    assert info.name == "SIZE" and info.args == ("10240000",)
    assert "10240000 octets (9.8 MiB)" in info.detail
    zero = kb.ehlo_line("SIZE 0", "zh")
    assert "没有声明固定的大小上限" in zero.detail
    bare = kb.ehlo_line("250 SIZE", "en")
    assert "no limit" in bare.detail
    odd = kb.ehlo_line("SIZE lots", "en")
    assert odd.detail == "Parameters advertised: lots."


def test_auth_line_explains_each_mechanism(kb) -> None:
    info = kb.ehlo_line("250-AUTH PLAIN LOGIN XOAUTH2 MADE-UP", "en")
    assert info.args == ("PLAIN", "LOGIN", "XOAUTH2", "MADE-UP")
    assert "Mechanisms on offer: PLAIN LOGIN XOAUTH2 MADE-UP." in info.detail
    assert "PLAIN: base64" in info.detail
    assert "MADE-UP: a mechanism not in the tutor's list" in info.detail
    legacy = kb.ehlo_line("250-AUTH=LOGIN PLAIN", "en")
    assert legacy.name == "AUTH" and legacy.args == ("LOGIN", "PLAIN")
    assert "non-standard" in legacy.detail


def test_unknown_keyword_line_still_answers(kb) -> None:
    info = kb.ehlo_line("250-XSECRET 42", "zh")
    assert info is not None and not info.known
    assert info.name == "XSECRET" and CJK.search(info.summary)
    assert "42" in info.detail
    assert kb.ehlo_line("250-") is None and kb.ehlo_line("   ") is None


def test_every_mechanism_is_bilingual(kb) -> None:
    assert {"PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256", "XOAUTH2"} <= set(kb.mechanisms())
    for name in kb.mechanisms():
        assert CJK.search(kb.mechanism(name, "zh").summary)


# --- explain() parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "reply", "enhanced", "text"),
    [
        ("535", "535", None, ""),
        ("5.7.8", None, "5.7.8", ""),
        ("550 5.1.1 User unknown", "550", "5.1.1", "User unknown"),
        (
            "550-5.1.1 The email account that you tried",
            "550",
            "5.1.1",
            "The email account that you tried",
        ),
        ("  250 OK", "250", None, "OK"),
        ("250", "250", None, ""),
        ("221 2.0.0 Bye\r\n", "221", "2.0.0", "Bye"),
        ("S: 354 End data with <CR><LF>.<CR><LF>", "354", None, "End data with <CR><LF>.<CR><LF>"),
        ("Diagnostic-Code: smtp; 550 5.7.1 Relay denied", "550", "5.7.1", "Relay denied"),
        ("Status: 5.2.2", None, "5.2.2", ""),
        ("The server said 4.4.1 (no answer).", None, "4.4.1", "(no answer)."),
        ("599 Something odd", "599", None, "Something odd"),
        ("５５０ ５．１．１ 用户不存在", "550", "5.1.1", "用户不存在"),
        ("550 5.1.1.1 text", "550", None, "5.1.1.1 text"),
    ],
)
def test_explain_finds_the_codes(query, reply, enhanced, text) -> None:
    exp = explain(query)
    assert exp.query == query
    assert (exp.reply.code if exp.reply else None) == reply
    assert (exp.enhanced.code if exp.enhanced else None) == enhanced
    assert exp.text == text


def test_explain_joins_a_multiline_reply() -> None:
    query = (
        "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
        "550-5.1.1 Please try double-checking the recipient's email address.\r\n"
        "550 5.1.1 https://support.google.com/mail/?p=NoSuchUser\r\n"
    )
    exp = explain(query)
    assert exp.reply.code == "550" and exp.enhanced.code == "5.1.1"
    assert exp.text.startswith("The email account that you tried to reach does not exist. Please")
    assert exp.text.endswith("NoSuchUser")


def test_explain_ehlo_line_and_bare_keyword() -> None:
    line = explain("250-SIZE 52428800")
    assert line.reply.context == "EHLO" and line.keyword.name == "SIZE"
    assert "50 MiB" in line.keyword.detail
    bare = explain("starttls", "zh")
    assert bare.reply is None and bare.enhanced is None and bare.keyword.name == "STARTTLS"
    assert "STARTTLS" in format_explanation(bare, "zh")


def test_explain_uses_the_command_context() -> None:
    exp = explain("550 5.1.1 nope", command="RCPT TO:<x@example.org>")
    assert exp.reply.context == "RCPT"


@pytest.mark.parametrize(
    "query", ["hello", "", "   ", "\r\n\r\n", "99", "5.x", "1234", "hello 300 times"]
)
def test_explain_rejects_text_without_a_code(query: str) -> None:
    with pytest.raises(ValueError) as info:
        explain(query)
    message = str(info.value)
    assert message and "\n" not in message


@pytest.mark.parametrize("query", ["199 Info", "600", "099 x"])
def test_explain_rejects_impossible_first_digit(query: str) -> None:
    with pytest.raises(ValueError, match="first digit must be 2, 3, 4 or 5"):
        explain(query)


def test_explain_error_messages_follow_the_language() -> None:
    with pytest.raises(ValueError) as info:
        explain("hello\nworld", "zh-TW")
    assert CJK.search(str(info.value)) and "\n" not in str(info.value)
    assert '"hello world"' in str(info.value)


def test_explain_notes_class_mismatch_and_3xx() -> None:
    assert explain("550 5.1.1 x").notes == ()
    mismatch = explain("554 4.7.1 Relay access denied")
    assert len(mismatch.notes) == 1 and "554" in mismatch.notes[0]
    assert "RFC 2034" in mismatch.notes[0]
    three = explain("354 2.0.0 go ahead")
    assert len(three.notes) == 1 and "3xx" in three.notes[0]


# --- Rendering ---------------------------------------------------------------------------


def test_format_explanation_english() -> None:
    text = format_explanation(explain("550 5.1.1 User unknown"), "en")
    assert text.startswith("Reply code 550: Mailbox unavailable or rejected")
    assert "Enhanced status code 5.1.1: Bad destination mailbox address" in text
    assert "What to do:" in text and "Source: RFC 3463 §3.2" in text
    assert text.rstrip().endswith("Server text: User unknown")
    # One line per field: the console and `explain` wrap it to the terminal (console.wrap).
    assert "\n    " not in text


def test_format_explanation_chinese() -> None:
    text = format_explanation(explain("535 5.7.8 Error: authentication failed", "zh"), "zh")
    assert text.startswith("回复码 535：认证凭据无效")
    assert "含义：" in text and "怎么办：" in text and "增强状态码 5.7.8" in text
    assert "服务器文本：Error: authentication failed" in text


def test_format_explanation_marks_context_and_notes() -> None:
    text = format_explanation(explain("554 4.7.1 denied", command="RCPT"), "en")
    assert "Reply code 554 (after RCPT):" in text
    assert "Note: " in text
    greeting = format_explanation(explain("554 no", "zh", command="GREETING"), "zh")
    assert "回复码 554（作为欢迎语）：这里没有 SMTP 服务" in greeting


def test_format_keyword() -> None:
    info = load_knowledge().ehlo_line("AUTH PLAIN", "en")
    text = format_keyword(info, "en")
    assert text.startswith("EHLO keyword AUTH (RFC 4954): ")
    assert "This line: Mechanisms on offer: PLAIN." in text
    assert "    PLAIN: base64" in text


# --- Language ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en", "en"),
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("zh_CN.UTF-8", "zh"),
        ("zh-TW", "zh"),
        ("zh_TW.Big5@euro", "zh"),
        ("ZH-hans", "zh"),
        ("en_GB.UTF-8", "en"),
        ("fr_FR", "en"),
        ("C", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_normalise_language(tag, expected) -> None:
    assert normalise_language(tag) == expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": "en_US.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_TW.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8", "LANGUAGE": "fr:zh_CN:en"}, "zh"),
        ({"LANG": "zh_CN.UTF-8", "LANGUAGE": "en"}, "en"),
        ({"LC_ALL": "C", "LANGUAGE": "zh_CN"}, "en"),
        ({"LANG": "C.UTF-8", "LANGUAGE": "zh"}, "en"),
        ({"LANGUAGE": "zh"}, "zh"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
    ],
)
def test_language_from_env(environ, expected) -> None:
    assert language_from_env(environ) == expected


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("MAIL FROM:<a@example.org>", "MAIL"),
        ("rcpt to:<b@example.org>", "RCPT"),
        ("  ehlo client.example ", "EHLO"),
        (".", "DOT"),
        ("connect", "GREETING"),
        ("", None),
        (None, None),
    ],
)
def test_normalise_command(command, expected) -> None:
    assert normalise_command(command) == expected


# --- Validation catches teacher mistakes -------------------------------------------------


@pytest.fixture()
def raw_data() -> dict:
    return copy.deepcopy(knowledge._read_data())


def test_validate_reports_missing_chinese(raw_data) -> None:
    del raw_data["replies"]["codes"]["550"]["meaning"]["zh"]
    assert validate_data(raw_data) == ["replies.codes.550.meaning.zh: missing or empty"]


def test_validate_reports_english_in_the_chinese_slot(raw_data) -> None:
    raw_data["enhanced"]["detail"]["X.1.1"]["title"]["zh"] = "Bad mailbox"
    assert validate_data(raw_data) == [
        "enhanced.detail.X.1.1.title.zh: contains no Chinese characters"
    ]


def test_validate_reports_typos_and_bad_keys(raw_data) -> None:
    raw_data["replies"]["codes"]["250"]["meanng"] = {"en": "x", "zh": "错"}
    raw_data["replies"]["codes"]["250"]["after"]["RCTP"] = {"meaning": {"en": "x", "zh": "错"}}
    raw_data["replies"]["codes"]["650"] = copy.deepcopy(raw_data["replies"]["codes"]["550"])
    del raw_data["keywords"]["keywords"]["SIZE"]["rfc"]
    problems = validate_data(raw_data)
    assert "replies.codes.250.meanng: unknown field" in problems
    assert any(p.startswith("replies.codes.250.after.RCTP: unknown command") for p in problems)
    assert "replies.codes.650: not a reply code (three digits, first 2-5)" in problems
    assert "keywords.keywords.SIZE.rfc: missing" in problems


def test_validate_reports_placeholder_mismatch(raw_data) -> None:
    raw_data["keywords"]["keywords"]["SIZE"]["with_args"]["zh"] = "上限是 {frist}。"
    raw_data["explain"]["messages"]["no_code"]["en"] = "Nothing found."
    problems = validate_data(raw_data)
    assert "keywords.keywords.SIZE.with_args: placeholders differ between en and zh" in problems
    assert "explain.messages.no_code: placeholders differ between en and zh" in problems


def test_validate_survives_nonsense(raw_data) -> None:
    raw_data["replies"]["codes"]["550"] = "oops"
    raw_data["enhanced"]["detail"] = []
    raw_data["keywords"] = {"keywords": {"SIZE": 3}}
    problems = validate_data(raw_data)
    assert "replies.codes.550: must be a table" in problems
    assert "keywords.keywords.SIZE: must be a table" in problems
    assert validate_data({})  # everything missing is reported, not raised


def test_lookups_fall_back_to_english_when_chinese_is_missing(raw_data) -> None:
    del raw_data["replies"]["codes"]["550"]["title"]["zh"]
    info = knowledge.KnowledgeBase(raw_data).reply(550, "zh")
    assert info.title == "Mailbox unavailable or rejected"
    assert CJK.search(info.meaning)


# --- Packaging: the data is read as package resources ------------------------------------


def test_data_files_are_package_resources() -> None:
    root = resources.files("smtp_tutor.data")
    for name in knowledge.DATA_FILES:
        assert root.joinpath(name).is_file(), name
        assert fnmatch.fnmatch(name, "*.toml")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["smtp_tutor.data"]
    assert all(any(fnmatch.fnmatch(n, p) for p in patterns) for n in knowledge.DATA_FILES)


def test_load_knowledge_is_cached() -> None:
    assert load_knowledge() is load_knowledge()


def test_works_from_a_zip_without_asyncio_or_prompt_toolkit(tmp_path: Path) -> None:
    """A zipped package has no files on disk: only importlib.resources can read the data."""
    archive = tmp_path / "smtp_tutor.zip"
    package = ROOT / "smtp_tutor"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(package / "__init__.py", "smtp_tutor/__init__.py")
        zf.writestr("smtp_tutor/core/__init__.py", "")
        # verbs: CONTEXTS; records: its value classes
        for module in ("knowledge.py", "language.py", "verbs.py", "phases.py", "records.py"):
            zf.write(package / "core" / module, f"smtp_tutor/core/{module}")
        zf.write(package / "data" / "__init__.py", "smtp_tutor/data/__init__.py")
        for name in (*knowledge.DATA_FILES, "verbs.toml"):
            zf.write(package / "data" / name, f"smtp_tutor/data/{name}")
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(archive)!r})\n"
        "from smtp_tutor.core import knowledge as k\n"
        f"assert k.__file__.startswith({str(archive)!r}), k.__file__\n"
        "assert k.validate() == [], k.validate()\n"
        "print(k.explain('535 5.7.8 no', 'zh').reply.title)\n"
        "heavy = ('asyncio', 'prompt_toolkit')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    # -S: no site-packages, so neither the editable install nor any dependency is visible.
    result = subprocess.run(
        [sys.executable, "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["认证凭据无效", "[]"]


# --- Property: explain() never fails in any other way ------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "550",
        "5.1.1",
        "250",
        "-",
        " ",
        "\r\n",
        "\n",
        ".",
        "X",
        "5.",
        "smtp;",
        ":",
        "SIZE",
        "AUTH=",
        "599",
        "199",
        "５",
        "．",
        "\x00",
        "{",
        "}",
        "2.7.0",
        "354",
        "99999999",
    ]
)


@given(st.one_of(st.text(), st.lists(FRAGMENTS | st.text(max_size=4), max_size=12).map("".join)))
def test_explain_returns_or_raises_value_error_only(query: str) -> None:
    for lang in ("en", "zh"):
        try:
            exp = explain(query, lang)
        except ValueError as error:
            assert str(error) and "\n" not in str(error)
            continue
        assert exp.reply or exp.enhanced or exp.keyword
        assert isinstance(format_explanation(exp, lang), str)


@given(st.text(max_size=40))
def test_lookups_never_raise(text: str) -> None:
    kb = load_knowledge()
    kb.reply(text, "zh", command=text)
    kb.enhanced(text)
    kb.keyword(text)
    info = kb.ehlo_line(text, "zh")
    if info is not None:
        format_keyword(info, "zh")
