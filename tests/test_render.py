"""Pure rendering: replies, findings, TLS, the raw view, the toolbar — no terminal needed."""

from __future__ import annotations

import datetime as dt

import pytest

from smtp_tutor.client.tls import CertificateInfo, TLSInfo
from smtp_tutor.console import render
from smtp_tutor.console.toolbar import ToolbarState, prompt_label, toolbar_fragments
from smtp_tutor.core.checker import Finding, check
from smtp_tutor.core.dialogue import Dialogue
from smtp_tutor.core.replies import ReplyParser, make_reply

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`


def styles(fragments: render.Fragments) -> list[str]:
    return [style for style, _ in fragments]


def test_reply_coloured_by_class_with_latency() -> None:
    reply = make_reply(550, "5.1.1 <nobody@example.com>: User unknown")
    fragments = render.reply_fragments(reply, 0.012)
    assert render.plain(fragments) == "550 5.1.1 <nobody@example.com>: User unknown  (12 ms)\n"
    assert "class:pygments.generic.deleted.replypermanent" in styles(fragments)
    assert "class:pygments.literal.number.enhanced" in styles(fragments)
    assert "class:latency" in styles(fragments)
    for code, name in (
        (250, "generic.inserted.replyok"),
        (354, "generic.subheading.replyintermediate"),
        (450, "literal.string.escape.replytransient"),
    ):
        assert f"class:pygments.{name}" in styles(render.reply_fragments(make_reply(code, "x")))


def test_multiline_reply_is_one_block() -> None:
    fragments = render.reply_fragments(make_reply(250, "a", "PIPELINING", "SIZE 10"), 0.001)
    assert render.plain(fragments) == "250-a\n250-PIPELINING\n250 SIZE 10  (1 ms)\n"


def test_334_challenge_is_decoded_beside_the_base64() -> None:
    text = render.plain(render.reply_fragments(make_reply(334, "VXNlcm5hbWU6")))
    assert "334 VXNlcm5hbWU6" in text and "'Username:'" in text
    zh = render.plain(render.reply_fragments(make_reply(334, "UGFzc3dvcmQ6"), lang="zh"))
    assert "质询解码后" in zh


def test_malformed_reply_is_flagged() -> None:
    [reply] = ReplyParser().feed(b"600 what\r\n")
    text = render.plain(render.reply_fragments(reply))
    assert "malformed reply" in text and "600" in text


def test_explanations_only_after_errors() -> None:
    assert render.explanation_fragments(make_reply(250, "ok")) == []
    text = render.plain(render.explanation_fragments(make_reply(535, "5.7.8 bad credentials")))
    assert "↳ 535" in text and "↳ 5.7.8" in text
    zh = render.plain(render.explanation_fragments(make_reply(550, "5.1.1 no"), "zh"))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)


def test_findings_in_both_languages() -> None:
    finding = Finding("rcpt_before_mail", "error")
    assert "RCPT before MAIL" in render.plain(render.finding_fragments([finding]))
    assert "MAIL FROM" in render.plain(render.finding_fragments([finding], "zh"))
    assert styles(render.finding_fragments([finding]))[0] == "class:finding.error"


def tls_info(verified: bool, discarded: int = 0) -> TLSInfo:
    cert = CertificateInfo(
        subject="CN=localhost",
        issuer="CN=localhost",
        not_before=dt.datetime(2026, 1, 1),
        not_after=dt.datetime(2028, 1, 1),
        names=("localhost", "127.0.0.1"),
    )
    info = TLSInfo(
        "TLSv1.3",
        "TLS_AES_256_GCM_SHA384",
        256,
        "localhost",
        (cert,),
        verified,
        None if verified else "the certificate is self-signed",
    )
    if discarded:
        object.__setattr__(info, "discarded_cleartext", discarded)
    return info


def test_tls_report() -> None:
    text = render.plain(render.tls_fragments(tls_info(False)))
    for expected in (
        "TLSv1.3",
        "TLS_AES_256_GCM_SHA384",
        "256 bits",
        "CN=localhost",
        "2026-01-01 to 2028-01-01",
        "self-signed",
        "session goes on",
    ):
        assert expected in text
    assert "✓" in render.plain(render.tls_fragments(tls_info(True)))
    assert "injection" in render.plain(render.tls_fragments(tls_info(True, discarded=12)))


def test_raw_view_shows_cr_lf_and_hides_nothing() -> None:
    text = render.plain(render.raw_fragments("sent", b"EHLO me\r\n"))
    assert text == "  C> EHLO me\\r\\n\n"
    text = render.plain(render.raw_fragments("received", b"250 ok\n\x1b[31mred\x00\r\n"))
    assert "S< 250 ok\\n" in text and "\\x1b[31mred\\x00\\r\\n" in text


def test_toolbar_shows_server_tls_user_phase_and_hint() -> None:
    d = Dialogue()
    d.receive(make_reply(220, "hi"))
    d.send("EHLO me")
    d.receive(make_reply(250, "x", "STARTTLS", "AUTH PLAIN"))
    text = render.plain(toolbar_fragments(ToolbarState("127.0.0.1:2525", d)))
    assert "127.0.0.1:2525" in text and "plain" in text and "no AUTH" in text
    assert "EHLO" in text and "STARTTLS" in text  # phase label and the hint
    d.tls_established("TLSv1.3", "x")
    d.send("EHLO me")
    d.receive(make_reply(250, "x", "AUTH PLAIN"))
    d.send("AUTH PLAIN AHN0dWRlbnQAc2VjcmV0")
    d.receive(make_reply(235, "2.7.0 ok"))
    text = render.plain(toolbar_fragments(ToolbarState("h:1", d, lang="zh", raw=True)))
    assert "TLSv1.3" in text and "用户 student" in text and "[原始]" in text


def test_toolbar_says_the_phase_in_the_readers_language_but_smtp_verbs_as_they_are() -> None:
    d = Dialogue()
    phases = []
    for lang in ("en", "zh"):
        phases.append(render.plain(toolbar_fragments(ToolbarState("h:1", d, lang=lang))))
    d.receive(make_reply(220, "hi"))
    phases += [
        render.plain(toolbar_fragments(ToolbarState("h:1", d, lang=lang))) for lang in ("en", "zh")
    ]
    d.send("HELO me")
    d.receive(make_reply(250, "x"))
    zh_helo = render.plain(toolbar_fragments(ToolbarState("h:1", d, lang="zh")))
    d.connection_lost("bye")
    zh_closed = render.plain(toolbar_fragments(ToolbarState("h:1", d, lang="zh")))
    assert " waiting for the greeting " in phases[0] and " 等待问候 " in phases[1]
    assert " greeted " in phases[2] and " 已收到问候 " in phases[3] and "greeted" not in phases[3]
    assert " HELO " in zh_helo
    assert " 已关闭 " in zh_closed and "closed" not in zh_closed


def test_an_out_of_sequence_finding_names_the_phase_in_the_readers_language() -> None:
    d = Dialogue()
    d.receive(make_reply(220, "hi"))
    findings = check("ATRN", d)  # ODMR's ATRN: after AUTH, never right after the greeting
    assert [f.id for f in findings] == ["out_of_sequence"]
    assert "(greeted)" in render.plain(render.finding_fragments(findings, "en"))
    zh = render.plain(render.finding_fragments(findings, "zh"))
    assert "（已收到问候）" in zh and "greeted" not in zh


def test_prompt_labels() -> None:
    d = Dialogue()
    assert prompt_label(d) == "smtp> "
    assert prompt_label(d, "password") == "password> "
    d.receive(make_reply(220, "hi"))
    for line, code in (
        ("EHLO x", 250),
        ("MAIL FROM:<a@b.c>", 250),
        ("RCPT TO:<d@e.f>", 250),
        ("DATA", 354),
    ):
        d.send(line)
        d.receive(make_reply(code, "ok"))
    assert prompt_label(d) == "data> "


def test_malformed_reply_problems_in_chinese() -> None:
    [reply] = ReplyParser().feed(b"250-a\r\n251 b\r\n")
    assert "different codes (250 and 251)" in reply.problems[0]  # still reads as English
    text = render.plain(render.reply_fragments(reply, lang="zh"))
    assert "回复格式有误" in text and "不同的回复码（250 和 251）" in text


def test_tls_verification_reason_in_chinese() -> None:
    from smtp_tutor.core.catalogue import Said

    info = tls_info(False)
    object.__setattr__(info, "verify_error", Said("tls", "self_signed"))
    assert "self-signed" in render.plain(render.tls_fragments(info))
    zh = render.plain(render.tls_fragments(info, "zh"))
    assert "证书是自签名的" in zh and "self-signed" not in zh


@pytest.mark.parametrize("name", ["default", "monokai", "no-such-style"])
def test_the_console_style_colours_as_the_three_merged_pygments_made_styles(name: str) -> None:
    """console_style builds one list of rules and parses it on use, not three Style objects
    parsed at once and again when merged: what each class looks like must not change."""
    from prompt_toolkit.styles import Style, default_ui_style, merge_styles
    from prompt_toolkit.styles.pygments import style_from_pygments_cls
    from pygments.styles import get_style_by_name
    from pygments.util import ClassNotFound

    from smtp_tutor.lexer import SMTPStyle

    try:
        base = get_style_by_name(name)
    except ClassNotFound:
        base = get_style_by_name("default")
    made = [style_from_pygments_cls(base), style_from_pygments_cls(SMTPStyle)]
    reference = merge_styles([*made, Style.from_dict(render.STYLE_RULES)])
    ours = render.console_style(name)
    assert ours.style_rules == reference.style_rules
    classes = [f"class:{rule}" for rule, _ in reference.style_rules if rule]
    classes += ["class:pygments.generic.deleted.replypermanent", "class:notice", ""]
    for style in (lambda s: s, lambda s: merge_styles([default_ui_style(), s])):
        for text in classes:
            wanted = style(reference).get_attrs_for_style_str(text)
            assert style(ours).get_attrs_for_style_str(text) == wanted, text
    assert ours.invalidation_hash() == ours.invalidation_hash()
