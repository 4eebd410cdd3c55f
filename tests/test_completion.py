"""Tab completion from live dialogue state, exercised with Documents (no application)."""

from __future__ import annotations

import email.utils
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prompt_toolkit.completion import CompleteEvent, Completion
from prompt_toolkit.document import Document

from smtp_tutor.console.completion import (
    HEADERS,
    MAX_COMPLETIONS,
    AddressBook,
    HeaderBlock,
    SMTPCompleter,
    console_commands,
)
from smtp_tutor.core.command_line import KNOWN_VERBS
from smtp_tutor.core.dialogue import Dialogue
from smtp_tutor.core.replies import Reply, make_reply

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`

EHLO_FULL = make_reply(
    250, "mx.example.com", "PIPELINING", "SIZE 10240000", "8BITMIME", "SMTPUTF8", "DSN",
    "AUTH PLAIN LOGIN CRAM-MD5", "STARTTLS", "ENHANCEDSTATUSCODES",
)  # fmt: skip
EHLO_BARE = make_reply(250, "mx.example.com", "PIPELINING", "ENHANCEDSTATUSCODES")


def greeted() -> Dialogue:
    d = Dialogue()
    d.receive(make_reply(220, "mx.example.com ESMTP"))
    return d


def ready(ehlo: Reply = EHLO_FULL) -> Dialogue:
    d = greeted()
    d.send("EHLO client.example")
    d.receive(ehlo)
    return d


def in_transaction(recipients: int = 0) -> Dialogue:
    d = ready()
    d.send("MAIL FROM:<alice@example.com>")
    d.receive(make_reply(250, "2.1.0 Ok"))
    for i in range(recipients):
        d.send(f"RCPT TO:<r{i}@example.org>")
        d.receive(make_reply(250, "2.1.5 Ok"))
    return d


def sending_data() -> Dialogue:
    d = in_transaction(recipients=1)
    d.send("DATA")
    d.receive(make_reply(354, "End data with <CR><LF>.<CR><LF>"))
    assert d.sending_data
    return d


def completer(dialogue: Dialogue | None, **kwargs: object) -> SMTPCompleter:
    kwargs.setdefault("hostname", "client.example")
    return SMTPCompleter(lambda: dialogue, **kwargs)  # type: ignore[arg-type]


def complete(c: SMTPCompleter, text: str) -> list[Completion]:
    return list(c.get_completions(Document(text, len(text)), CompleteEvent()))


def texts(c: SMTPCompleter, text: str) -> list[str]:
    return [x.text for x in complete(c, text)]


def apply(text: str, completion: Completion) -> str:
    return text[: len(text) + completion.start_position] + completion.text


# ------------------------------------------------------------------ verbs


def test_greeted_offers_ehlo_and_helo_first_then_every_other_known_verb() -> None:
    found = texts(completer(greeted()), "")
    assert found[:2] == ["EHLO", "HELO"]
    assert sorted(found) == sorted(KNOWN_VERBS)
    assert len(found) == len(set(found))


@pytest.mark.parametrize(
    ("dialogue", "first"),
    [
        (ready(), ["MAIL", "STARTTLS", "AUTH", "EHLO"]),
        (ready(EHLO_BARE), ["MAIL", "EHLO"]),
        (in_transaction(), ["RCPT"]),
        (in_transaction(recipients=1), ["RCPT", "DATA"]),
    ],
)
def test_verbs_valid_now_come_first(dialogue: Dialogue, first: list[str]) -> None:
    found = complete(completer(dialogue), "")
    assert [c.text for c in found[: len(first)]] == first
    valid = dialogue.valid_verbs()
    assert [c.text for c in found[: len(valid)]] == valid
    for c in found[len(valid) :]:
        assert c.display_meta_text.startswith("not now")
    for c in found[: len(valid)]:
        assert c.display_meta_text and not c.display_meta_text.startswith("not now")


def test_after_ehlo_without_auth_the_auth_verb_is_listed_as_not_valid_now() -> None:
    found = complete(completer(ready(EHLO_BARE)), "A")
    assert [c.text for c in found] == ["AUTH", "ATRN"]
    assert found[0].display_meta_text.startswith("not now")


def test_prefix_filters_and_keeps_the_case_the_student_started_with() -> None:
    c = completer(ready())
    assert texts(c, "r") == ["rset", "rcpt"]  # RSET is valid now, RCPT is not
    assert texts(c, "R") == ["RSET", "RCPT"]
    assert texts(c, "Eh") == ["EHLO"]
    assert texts(c, "eh") == ["ehlo"]
    assert complete(c, "eh")[0].display_text == "EHLO"  # the list shows the canonical form
    assert texts(c, "xyz") == []


def test_without_a_session_every_known_verb_is_offered_in_order() -> None:
    assert texts(completer(None), "") == list(KNOWN_VERBS)


# ------------------------------------------------------------------ EHLO, AUTH


def test_ehlo_suggests_an_address_literal_and_the_host_name() -> None:
    c = completer(greeted())
    assert texts(c, "EHLO ") == ["[127.0.0.1]", "client.example"]
    assert texts(c, "helo cl") == ["client.example"]
    assert texts(c, "EHLO client.example ") == []
    c6 = completer(greeted(), local_address=lambda: "::1")
    assert texts(c6, "EHLO [") == ["[IPv6:::1]"]


def test_host_name_is_read_once_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "built.example")
    c = SMTPCompleter(lambda: greeted())

    def no_network() -> str:
        raise AssertionError("completion must not look anything up")

    monkeypatch.setattr(socket, "gethostname", no_network)
    monkeypatch.setattr(socket, "getfqdn", no_network)
    assert "built.example" in texts(c, "EHLO ")


def test_auth_offers_only_the_advertised_mechanisms() -> None:
    c = completer(ready())
    assert texts(c, "AUTH ") == ["PLAIN", "LOGIN", "CRAM-MD5"]
    assert texts(c, "auth c") == ["cram-md5"]
    assert texts(c, "AUTH PLAIN ") == []  # never anything where a credential goes
    assert texts(completer(ready(EHLO_BARE)), "AUTH ") == []
    assert texts(completer(greeted()), "AUTH ") == []
    old_style = make_reply(250, "mx", "AUTH=LOGIN")
    assert texts(completer(ready(old_style)), "AUTH ") == ["LOGIN"]


def test_describe_hook_supplies_keyword_meta_and_its_errors_are_ignored() -> None:
    c = completer(ready(), describe={"PLAIN": "user and password in one blob"}.get)
    metas = {x.text: x.display_meta_text for x in complete(c, "AUTH ")}
    assert metas["PLAIN"] == "user and password in one blob"
    assert metas["LOGIN"]  # the built-in fallback

    def broken(keyword: str) -> str | None:
        raise KeyError(keyword)

    c = completer(ready(), describe=broken)
    assert texts(c, "AUTH ") == ["PLAIN", "LOGIN", "CRAM-MD5"]
    assert all(x.display_meta_text for x in complete(c, "MAIL FROM:<a@b.c> "))


# ------------------------------------------------------------------ MAIL / RCPT


def test_path_keywords() -> None:
    c = completer(ready())
    assert texts(c, "MAIL ") == ["FROM:<"]
    assert texts(c, "mail f") == ["from:<"]
    assert texts(c, "MAIL FROM:") == ["FROM:<"]
    assert texts(c, "MAIL TO") == []
    assert texts(completer(in_transaction()), "RCPT ") == ["TO:<"]


def test_mail_parameters_only_when_their_keyword_was_advertised() -> None:
    full = completer(ready())
    assert texts(full, "MAIL FROM:<a@example.com> ") == [
        "SIZE=", "BODY=8BITMIME", "SMTPUTF8", "RET=", "ENVID=", "AUTH=<>",
    ]  # fmt: skip
    assert texts(full, "MAIL FROM:<a@example.com> S") == ["SIZE=", "SMTPUTF8"]
    assert texts(full, "mail from:<a@example.com> ")[:2] == ["size=", "body=8bitmime"]
    assert texts(full, "MAIL FROM:<a@example.com>") == []  # no space after > yet
    size = complete(full, "MAIL FROM:<a@example.com> SI")[0]
    assert "10240000" in size.display_meta_text
    # Only what was advertised: SIZE alone gives SIZE= alone.
    only_size = completer(ready(make_reply(250, "mx", "SIZE 1000")))
    assert texts(only_size, "MAIL FROM:<a@example.com> ") == ["SIZE="]
    assert texts(completer(ready(EHLO_BARE)), "MAIL FROM:<a@example.com> ") == []
    helo = greeted()
    helo.send("HELO client.example")
    helo.receive(make_reply(250, "mx"))
    assert texts(completer(helo), "MAIL FROM:<a@example.com> ") == []


def test_parameters_already_on_the_line_are_not_offered_again() -> None:
    found = texts(completer(ready()), "MAIL FROM:<a@example.com> SIZE=100 BODY=8BITMIME ")
    assert "SIZE=" not in found and "BODY=8BITMIME" not in found
    assert "SMTPUTF8" in found


def test_parameter_values() -> None:
    c = completer(ready())
    assert texts(c, "MAIL FROM:<a@example.com> RET=") == ["FULL", "HDRS"]
    assert texts(c, "MAIL FROM:<a@example.com> ret=h") == ["hdrs"]
    rcpt = completer(in_transaction())
    assert "SUCCESS,FAILURE" in texts(rcpt, "RCPT TO:<b@example.org> NOTIFY=")
    assert texts(completer(ready(EHLO_BARE)), "MAIL FROM:<a@example.com> RET=") == []


def test_rcpt_parameters_need_dsn() -> None:
    assert texts(completer(in_transaction()), "RCPT TO:<b@example.org> ") == [
        "NOTIFY=",
        "ORCPT=rfc822;",
    ]
    no_dsn = ready(make_reply(250, "mx", "SIZE 1000", "8BITMIME"))
    no_dsn.send("MAIL FROM:<a@example.com>")
    no_dsn.receive(make_reply(250, "ok"))
    assert texts(completer(no_dsn), "RCPT TO:<b@example.org> ") == []


# ------------------------------------------------------------------ addresses


def book_with(*lines: str, capacity: int = 50) -> AddressBook:
    book = AddressBook(capacity=capacity)
    for line in lines:
        book.learn(line)
    return book


def test_address_book_learns_from_mail_and_rcpt_lines_most_recent_first() -> None:
    book = book_with(
        "MAIL FROM:<alice@example.com>",
        "EHLO not.an.address",
        "RCPT TO:<bob@example.org>",
        "rcpt to:<carol@example.org> NOTIFY=NEVER",
        "MAIL FROM:<>",
        "RCPT TO:<Alice@Example.com>",  # the same address again: moves to the front
    )
    assert list(book) == ["Alice@Example.com", "carol@example.org", "bob@example.org"]
    c = completer(in_transaction(), addresses=book)
    found = complete(c, "RCPT TO:<")
    assert [x.text for x in found] == [
        "Alice@Example.com>",
        "carol@example.org>",
        "bob@example.org>",
    ]
    assert apply("RCPT TO:<b", complete(c, "RCPT TO:<b")[0]) == "RCPT TO:<bob@example.org>"
    assert texts(c, "RCPT TO:<zed") == []


def test_mail_from_offers_the_null_path_and_addresses() -> None:
    c = completer(ready(), addresses=book_with("RCPT TO:<bob@example.org>"))
    found = complete(c, "MAIL FROM:<")
    assert [x.text for x in found] == [">", "bob@example.org>"]
    assert found[0].display_text == "<>"
    assert texts(c, "MAIL FROM:<b") == ["bob@example.org>"]


def test_vrfy_completes_addresses() -> None:
    c = completer(ready(), addresses=book_with("RCPT TO:<bob@example.org>"))
    assert texts(c, "VRFY b") == ["bob@example.org"]


def test_default_address_book_keeps_the_50_most_recent() -> None:
    book = AddressBook()
    for i in range(500):
        book.add(f"user{i}@example.com")
    assert len(book) == 50
    assert next(iter(book)) == "user499@example.com"
    assert "user449@example.com" not in list(book)


def test_completion_of_a_500_address_book_stays_capped() -> None:
    book = AddressBook(capacity=1000)
    for i in range(500):
        book.learn(f"RCPT TO:<user{i}@example.com>")
    assert len(book) == 500
    c = completer(in_transaction(), addresses=book)
    found = texts(c, "RCPT TO:<")
    assert len(found) == MAX_COMPLETIONS
    assert found[0] == "user499@example.com>"
    assert len(texts(c, "RCPT TO:<user1")) == MAX_COMPLETIONS
    assert len(texts(completer(in_transaction(), addresses=book, limit=5), "VRFY u")) == 5
    # Every kind of list obeys the cap.
    assert len(texts(completer(greeted(), limit=3), "")) == 3
    assert len(texts(completer(greeted(), limit=3), ":")) == 3


# ------------------------------------------------------------------ console commands


def test_console_commands_with_descriptions() -> None:
    c = completer(ready())
    found = complete(c, ":")
    names = [name for name, _ in console_commands()]  # the one list, from data/help.toml
    assert [x.text for x in found] == names[:MAX_COMPLETIONS]
    assert all(x.display_meta_text for x in found)
    assert {":help", ":hint", ":b64", ":unb64", ":raw", ":fix"} <= {x.text for x in found}
    assert texts(c, ":qu") == [":quit"]
    assert texts(c, ":he") == [":help", ":headers", ":hex"]
    assert texts(c, ":RE") == [":reconnect", ":restart"]
    assert texts(c, "::") == []  # a raw line that starts with a colon


def test_console_commands_can_be_passed_in() -> None:
    c = completer(ready(), commands=[(":hello", "say hi"), (":help", "help")])
    assert texts(c, ":h") == [":hello", ":help"]
    assert complete(c, ":hel")[0].display_meta_text == "say hi"


def test_console_command_arguments() -> None:
    c = completer(ready())
    assert texts(c, ":explain 53") == ["530", "535", "538"]
    assert "5.7.8" in texts(c, ":explain 5.")
    assert texts(c, ":manual ") == ["on", "off"]
    assert texts(c, ":raw of") == ["off"]
    assert texts(c, ":quit ") == []
    assert texts(c, ":manual on ") == []


def test_console_commands_work_without_a_session() -> None:
    assert texts(completer(None), ":qu") == [":quit"]


# ------------------------------------------------------------------ DATA


def test_data_mode_offers_headers_at_the_start_of_a_line() -> None:
    c = completer(sending_data())
    assert texts(c, "") == [text for text, _ in HEADERS]
    found = complete(c, "su")
    assert [x.text for x in found] == ["Subject: "]
    assert apply("su", found[0]) == "Subject: "
    assert texts(c, "MIME") == ["MIME-Version: 1.0"]
    assert texts(c, "Content-T") == [
        "Content-Type: text/plain; charset=UTF-8",
        "Content-Transfer-Encoding: ",
    ]
    assert texts(c, " folded") == []
    assert texts(c, "MAIL") == []  # no SMTP verbs inside the message
    assert texts(c, ":he") == []  # a DATA line may start with a colon


def test_header_block_ends_at_the_empty_line_and_reopens_for_the_next_message() -> None:
    block = HeaderBlock()
    c = completer(sending_data(), header_block=block)
    block.feed("Subject: hello")
    block.feed("from: a@example.com")
    assert "Subject: " not in texts(c, "") and "From: " not in texts(c, "")
    assert "To: " in texts(c, "")
    block.feed("")
    assert not block.open
    assert texts(c, "") == []
    assert texts(c, "Su") == []
    block.feed("Subject: this is body text")
    assert texts(c, "") == []
    block.feed(".")
    assert block.open and texts(c, "") == [text for text, _ in HEADERS]
    block.feed("To: x@example.org")
    block.reset()
    assert "To: " in texts(c, "")


def test_header_values() -> None:
    c = completer(sending_data(), addresses=book_with("MAIL FROM:<alice@example.com>"))
    found = complete(c, "From: a")
    assert [x.text for x in found] == ["<alice@example.com>"]
    assert apply("From: a", found[0]) == "From: <alice@example.com>"
    assert apply("To:", complete(c, "To:")[0]) == "To: <alice@example.com>"
    date = complete(c, "Date: ")[0].text
    assert email.utils.parsedate_to_datetime(date) is not None
    assert complete(c, "Message-ID: ")[0].text.startswith("<")
    assert texts(c, "Subject: ") == []


# ------------------------------------------------------------------ AUTH answers


@pytest.mark.parametrize("text", ["", "d", "A", "AUTH ", ":", ":he", "MAIL FROM:<"])
def test_nothing_at_all_while_the_server_waits_for_an_auth_answer(text: str) -> None:
    d = ready()
    d.send("AUTH LOGIN")
    d.receive(make_reply(334, "VXNlcm5hbWU6"))
    assert d.awaiting_auth_response
    book = book_with("RCPT TO:<dXNlcg@example.org>")
    assert complete(completer(d, addresses=book), text) == []


def test_completion_returns_after_the_auth_exchange() -> None:
    d = ready()
    d.send("AUTH LOGIN")
    d.receive(make_reply(334, "VXNlcm5hbWU6"))
    d.send("dXNlcg==")
    d.receive(make_reply(535, "5.7.8 nope"))
    assert texts(completer(d), "MA") == ["MAIL"]


# ------------------------------------------------------------------ robustness


class _Broken:
    def __getattr__(self, name: str) -> object:
        raise RuntimeError("boom")


def test_a_failing_state_never_breaks_typing() -> None:
    c = SMTPCompleter(lambda: _Broken())  # type: ignore[arg-type,return-value]
    assert complete(c, "MA") == []


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("MAILFROMRCPTO:<>@ =\t.aeSIZE-\\é"), max_size=40),
    state=st.sampled_from(["none", "greeted", "ready", "rcpt", "data"]),
)
def test_any_line_in_any_state_completes_without_error(text: str, state: str) -> None:
    dialogue = {
        "none": None,
        "greeted": greeted(),
        "ready": ready(),
        "rcpt": in_transaction(recipients=1),
        "data": sending_data(),
    }[state]
    c = completer(dialogue, addresses=book_with("RCPT TO:<bob@example.org>"))
    found = c.completions_for(text)  # the unguarded path: a bug here fails the test
    assert len(found) <= MAX_COMPLETIONS
    for completion in found:
        assert -len(text) <= completion.start_position <= 0


# ------------------------------------------------------------------ the console's language


def metas(c: SMTPCompleter, text: str) -> dict[str, str]:
    return {x.text: x.display_meta_text for x in complete(c, text)}


def test_in_chinese_verbs_and_their_hints_come_from_the_verb_table() -> None:
    zh = metas(completer(ready(), lang="zh"), "")
    assert zh["MAIL"] == "开始一封邮件：信封发件人"
    assert zh["DATA"] == "此时不可用：发送邮件正文，以单独一行 . 结束"
    assert (
        metas(completer(ready()), "")["DATA"] == "not now: send the message text, end with a lone ."
    )
    assert metas(completer(ready(), lang="zh"), "MAIL ") == {"FROM:<": "信封发件人"}
    assert metas(completer(in_transaction(), lang="zh"), "RCPT ") == {"TO:<": "一个信封收件人"}


def test_in_chinese_parameters_values_and_the_builtin_words() -> None:
    c = completer(ready(), lang="zh")
    found = metas(c, "MAIL FROM:<a@example.com> ")
    assert found["SIZE="] == "事先声明邮件大小（字节数）（这里的上限：10240000）"
    assert metas(c, "MAIL FROM:<a@example.com> RET=") == {
        "FULL": "退回整封邮件",
        "HDRS": "只退回邮件头",
    }
    assert metas(c, "MAIL FROM:<")[">"] == "空发件人（仅用于退信）"
    assert metas(c, "AUTH ")["PLAIN"] == "这台服务器声明支持"
    assert metas(c, ":manual ") == {"on": "打开", "off": "关闭"}
    assert metas(c, ":explain 53")["530"] == "需要认证"
    assert metas(c, "EHLO ")["client.example"] == "这台计算机的名字"


def test_in_chinese_header_fields() -> None:
    zh = metas(completer(sending_data(), lang="zh"), "")
    assert list(zh) == [text for text, _ in HEADERS]
    assert zh["From: "] == "作者（RFC 5322 要求必须有）"
    assert (
        metas(completer(sending_data(), lang="zh"), "Date: ").popitem()[1]
        == "当前时间，RFC 5322 格式"
    )


def test_every_entry_of_the_completion_catalogue_has_every_language() -> None:
    from smtp_tutor.core.catalogue import load_catalogue
    from smtp_tutor.core.knowledge import LANGUAGES

    table = load_catalogue("completion")
    entries = [(k, v) for k, v in table.items() if k not in ("headers", "codes")]
    entries += [(f"headers.{k}", v) for k, v in table["headers"].items()]
    entries += [(f"codes.{k}", v) for k, v in table["codes"].items()]
    assert len(entries) > 40
    for key, entry in entries:
        for lang in LANGUAGES:
            assert isinstance(entry.get(lang), str) and entry[lang].strip(), (key, lang)
