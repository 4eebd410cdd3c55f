"""Text from a server never carries a control character to the terminal or into the typed line.

* `core.safe_text.visible`, exhaustively over every code point and as hypothesis properties.
* `SMTPCompleter` with hostile EHLO keywords and AUTH mechanisms: such a candidate is never
  offered (not even escaped); descriptions are shown escaped.
* The toolbar, `:caps` and the TLS reports (`tls_fragments`, `:tls`) as pure functions.
* End to end: the real console, typed into through prompt_toolkit pipe input (Tab included),
  against scripted hostile servers on 127.0.0.1: what reaches the server and what reaches
  the screen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit.completion import Completion
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.plain_text import PlainTextOutput

from smtp_tutor.client.session import Target
from smtp_tutor.client.tls import CertificateInfo, TLSInfo
from smtp_tutor.console import render
from smtp_tutor.console.app import Console, ConsoleOptions
from smtp_tutor.console.scripted import _wait_for_prompt
from smtp_tutor.console.toolbar import ToolbarState, toolbar_fragments
from smtp_tutor.core.dialogue import Capabilities, Dialogue
from smtp_tutor.core.replies import Reply, ReplyParser, make_reply
from smtp_tutor.core.safe_text import is_visible, visible
from tests.servers import (
    HOST,
    Action,
    Expect,
    Hang,
    ScriptServer,
    Send,
    StartTLS,
    _issue,
    run,
)
from tests.test_completion import complete, completer

#: Characters that act on a terminal or hide: C0, DEL, C1, bidi controls, invisible ones.
HOSTILE = (
    [chr(code) for code in range(0x20)]
    + ["\x7f"]
    + [chr(code) for code in range(0x80, 0xA0)]
    + list("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    + list("\u200b\u200c\u200d\u2060\ufeff\u00ad\u2028\u2029\u00a0\u3000\ue000")
    + ["\U000e0001", "\U000e0041", "\udcff", "\U0010ffff"]
)
#: Not one of them may reach the screen: printable means none of these categories.
UNPRINTABLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
ESCAPE = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[tnr])")


def shows_nothing_hidden(text: str, allowed: str = "") -> bool:
    """No character that acts or hides (a space separator other than ' ' counts)."""
    for ch in text:
        category = unicodedata.category(ch)
        if ch in allowed:
            continue
        if category in UNPRINTABLE_CATEGORIES or (category == "Zs" and ch != " "):
            return False
    return True


# -- visible -------------------------------------------------------------------------------


def test_every_code_point_is_kept_exactly_when_printable_and_escaped_otherwise() -> None:
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        shown = visible(ch)
        if ch.isprintable():
            assert shown == ch, hex(code)
        else:
            assert ESCAPE.fullmatch(shown), (hex(code), shown)
            assert shows_nothing_hidden(shown)


@pytest.mark.parametrize("ch", HOSTILE, ids=lambda ch: f"U+{ord(ch):04X}")
def test_controls_bidi_and_invisible_characters_never_pass(ch: str) -> None:
    shown = visible(f"a{ch}b")
    assert shown != f"a{ch}b" and shown.startswith("a\\") and shown.endswith("b")
    assert not is_visible(ch) and is_visible(shown)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("X\x1b]0;pwned\x07", "X\\x1b]0;pwned\\x07"),
        ("real\b\b\b\bfake", "real\\x08\\x08\\x08\\x08fake"),
        ("a\tb\r\nc\x00", "a\\tb\\r\\nc\\x00"),
        ("DEL\x7f C1\x9b[2J NEL\x85", "DEL\\x7f C1\\x9b[2J NEL\\x85"),
        ("\u202eNIALP", "\\u202eNIALP"),
        ("\u2066x\u2069 zero\u200bwidth \ufeffbom", "\\u2066x\\u2069 zero\\u200bwidth \\ufeffbom"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("byte \udcff", "byte \\xff"),  # surrogateescape: the byte that was not UTF-8
        ("no\u00a0break", "no\\xa0break"),
    ],
)
def test_escapes_are_the_ones_python_writes(text: str, shown: str) -> None:
    assert visible(text) == shown


@pytest.mark.parametrize(
    "text",
    ["", "250 mx.example.com ESMTP", "你好，世界", "café e\u0301", "a\\x1b b", "~!@#$%^&*()"],
)
def test_printable_text_is_left_alone(text: str) -> None:
    assert visible(text) == text and is_visible(text)


#: Any text, with surrogates, and often the characters that matter.
ANY_TEXT = st.text(
    st.one_of(st.characters(exclude_categories=()), st.sampled_from(HOSTILE)), max_size=60
)


@given(ANY_TEXT)
def test_output_is_always_printable_and_hides_nothing(text: str) -> None:
    shown = visible(text)
    assert shown.isprintable() and is_visible(shown)
    assert shows_nothing_hidden(shown)


@given(ANY_TEXT)
def test_visible_is_idempotent(text: str) -> None:
    assert visible(visible(text)) == visible(text)


@given(st.text(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))))
def test_printable_text_is_unchanged(text: str) -> None:
    text = "".join(ch for ch in text if ch.isprintable())  # spaces other than ' ' are not
    assert visible(text) == text


@given(ANY_TEXT.filter(lambda t: "\\" not in t and not re.search("[\ud800-\udfff]", t)))
def test_nothing_is_lost_the_escapes_read_back_to_the_text(text: str) -> None:
    shown = visible(text)
    assert shown.encode("latin-1", "backslashreplace").decode("unicode_escape") == text


# -- completion ------------------------------------------------------------------------------

EVIL_TITLE = "X\x1b]0;pwned\x07"
#: An EHLO reply as the bytes a hostile server sends, parsed as the console parses them.
HOSTILE_EHLO = (
    "250-mx\x1b[2J.example Hello\r\n"
    f"250-{EVIL_TITLE}\r\n"
    "250-SIZE 1000\x1b[31m\r\n"
    "250-8BITMIME\r\n"
    "250-\u202eEMITIB8\r\n"
    f"250-AUTH {EVIL_TITLE} \u202eNIALP LOG\x7fIN CRAM\x9bMD5 \u200bPLAIN X\x08\x08OK PLAIN\r\n"
    "250 DSN\r\n"
).encode()


def parsed(data: bytes) -> Reply:
    (reply,) = ReplyParser().feed(data)
    return reply


def hostile_dialogue() -> Dialogue:
    d = Dialogue()
    d.receive(make_reply(220, "mx.example ESMTP"))
    d.send("EHLO client.example")
    d.receive(parsed(HOSTILE_EHLO))
    assert d.capabilities is not None and d.capabilities.has(EVIL_TITLE)
    return d


def all_printable(completions: Sequence[Completion]) -> bool:
    return all(
        is_visible(c.text) and is_visible(c.display_text) and is_visible(c.display_meta_text)
        for c in completions
    )


def test_the_hostile_ehlo_really_advertises_the_hostile_mechanisms() -> None:
    caps = hostile_dialogue().capabilities
    assert caps is not None
    assert caps.auth_mechanisms == (
        EVIL_TITLE.upper(),
        "\u202eNIALP",
        "LOG\x7fIN",
        "CRAM\x9bMD5",
        "\u200bPLAIN",
        "X\x08\x08OK",
        "PLAIN",
    )


def test_auth_offers_only_the_mechanisms_that_are_printable() -> None:
    found = complete(completer(hostile_dialogue()), "AUTH ")
    assert [c.text for c in found] == ["PLAIN"]
    assert [c.display_text for c in found] == ["PLAIN"]


@pytest.mark.parametrize("typed", ["AUTH X", "AUTH L", "AUTH C", "auth x", "AUTH \u202e"])
def test_a_prefix_of_a_hostile_mechanism_completes_to_nothing(typed: str) -> None:
    assert complete(completer(hostile_dialogue()), typed) == []


def test_a_hostile_description_is_shown_escaped_and_still_offered() -> None:
    c = completer(hostile_dialogue(), describe=lambda keyword: f"about {keyword}\x1b[2J\u202e")
    (plain,) = complete(c, "AUTH P")
    assert plain.text == "PLAIN"
    assert plain.display_meta_text == "about PLAIN\\x1b[2J\\u202e"
    params = complete(c, "MAIL FROM:<a@example.com> ")
    assert [p.text for p in params] == ["SIZE=", "BODY=8BITMIME", "RET=", "ENVID=", "AUTH=<>"]
    assert params[1].display_meta_text == "about 8BITMIME\\x1b[2J\\u202e"
    assert all_printable(params)


def test_mail_parameters_never_carry_what_the_server_sent() -> None:
    c = completer(hostile_dialogue())
    for typed in (
        "MAIL FROM:<a@example.com> ",
        "MAIL FROM:<a@example.com> BODY=",
        "RCPT TO:<b@x> ",
    ):
        found = complete(c, typed)
        assert all_printable(found), typed
    size = complete(c, "MAIL FROM:<a@example.com> S")
    assert [s.text for s in size] == ["SIZE="]
    assert "1000" not in size[0].display_meta_text  # not a number: no limit claimed


def test_addresses_with_controls_are_not_offered() -> None:
    c = completer(hostile_dialogue())
    c.addresses.add("ok@example.com")
    c.addresses.add("evil\x1b]0;x\x07@example.com")
    assert [x.text for x in complete(c, "VRFY ")] == ["ok@example.com"]


def test_the_limit_counts_only_what_is_offered() -> None:
    mechanisms = " ".join([*(f"M{i}\x07" for i in range(40)), *(f"OK{i}" for i in range(10))])
    d = Dialogue()
    d.receive(make_reply(220, "mx"))
    d.send("EHLO c")
    d.receive(parsed(f"250-mx\r\n250 AUTH {mechanisms}\r\n".encode()))
    found = complete(completer(d, limit=5), "AUTH ")
    assert [c.text for c in found] == ["OK0", "OK1", "OK2", "OK3", "OK4"]


TYPED = st.tuples(
    st.sampled_from(["", "AUTH ", "auth ", "MAIL FROM:<a@b.example> ", "RCPT TO:<a@b> ", "VRFY "]),
    st.text(st.sampled_from([*"AUTHXLCPSIZEB=8<>: ", "\x1b", "\u202e", "\x07"]), max_size=12),
).map("".join)


@given(TYPED)
def test_whatever_is_typed_every_candidate_is_printable(typed: str) -> None:
    assert all_printable(complete(completer(hostile_dialogue()), typed))


# -- toolbar, :caps, TLS reports ---------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_toolbar_shows_server_user_and_lesson_goal_escaped(lang: str) -> None:
    d = hostile_dialogue()
    d.authenticated, d.authenticated_user = True, "stu\x1b[8mdent"
    state = ToolbarState(
        server="mx\x1b]0;x\x07.example:25", dialogue=d, lang=lang, lesson="step 1: \u202egoal"
    )
    fragments = toolbar_fragments(state)
    text = render.plain(fragments)
    assert all(is_visible(piece) for _style, piece in fragments)
    assert "mx\\x1b]0;x\\x07.example:25" in text
    assert "stu\\x1b[8mdent" in text and "\\u202egoal" in text


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_caps_shows_every_keyword_and_the_diff_escaped(lang: str) -> None:
    caps = Capabilities.from_ehlo(parsed(HOSTILE_EHLO))
    before = Capabilities.from_ehlo(
        parsed(b"250-mx\r\n250-8BITMIME\r\n250-SIZE 9\x07\r\n250 GONE\x1b[A\r\n")
    )
    text = render.plain(render.caps_fragments([("plain", before), ("TLS", caps)], lang))
    assert shows_nothing_hidden(text, allowed="\n")
    assert "mx\\x1b[2J.example" in text
    assert "X\\x1b]0;PWNED\\x07" in text  # keywords are upper-cased by the capability list
    assert "\\u202eNIALP" in text and "LOG\\x7fIN" in text and "CRAM\\x9bMD5" in text
    assert "GONE\\x1b[A" in text  # removed
    assert "9\\x07 → 1000\\x1b[31m" in text  # changed


def hostile_certificate(number: int = 0) -> CertificateInfo:
    return CertificateInfo(
        subject=f"CN=real\b\b\b\bfake{number}\x1b[2J\u202e",
        issuer="CN=issuer\x9b[31m",
        not_before=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        names=("mail\x1b[2J.example", "\u202eevil.example", "127.0.0.1"),
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_tls_report_and_tls_command_show_certificate_text_escaped(lang: str) -> None:
    info = TLSInfo(
        version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384",
        bits=256,
        server_hostname="mx\x07.example",
        chain=(hostile_certificate(0), hostile_certificate(1)),
        verified=False,
        verify_error="the certificate is for mail\x1b[2J.example, \u202eevil.example",
    )
    for text in (
        render.plain(render.tls_fragments(info, lang)),
        render.plain(render.tls_detail_fragments(info, "h2\x1b]0;x\x07", lang)),
    ):
        assert shows_nothing_hidden(text, allowed="\n")
        assert "real\\x08\\x08\\x08\\x08fake0\\x1b[2J\\u202e" in text
        assert "issuer\\x9b[31m" in text
        assert "mail\\x1b[2J.example, \\u202eevil.example, 127.0.0.1" in text
    assert "mx\\x07.example" in text and "h2\\x1b]0;x\\x07" in text  # SNI and ALPN
    assert "fake1\\x1b[2J" in text  # every certificate of the chain


# -- end to end: the real console against hostile servers ---------------------------------


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


#: Long enough for a Tab's completion to land before the next key (the tests check it did).
TAB_PAUSE = 0.3


async def type_keys(
    port: int, lines: Sequence[str], options: ConsoleOptions
) -> tuple[int, str, Console]:
    """Type each line at a prompt, as `run_console` does, but as keys: after each Tab the
    rest waits until the completion is in, as it would for a person. Then Ctrl-D."""
    buffer = io.StringIO()
    with create_pipe_input() as pipe:
        console = Console(Target(HOST, port), options, input=pipe, output=PlainTextOutput(buffer))
        task = asyncio.create_task(console.run())
        for line in lines:
            await _wait_for_prompt(console, task, 20.0)
            *before_tabs, last = line.split("\t")
            for keys in before_tabs:
                pipe.send_text(keys + "\t")
                await asyncio.sleep(TAB_PAUSE)
            pipe.send_text(last + "\r")
        if await _wait_for_prompt(console, task, 20.0, may_end=True):
            pipe.send_text("\x04")
        code = await asyncio.wait_for(task, 20.0)
    return code, buffer.getvalue(), console


def screen_controls(out: str) -> set[str]:
    """Every character on the plain-text screen that is not printable, line ends aside."""
    return {ch for ch in out if ch not in "\r\n" and not shows_nothing_hidden(ch)}


def wire_controls(lines: Sequence[bytes]) -> list[bytes]:
    """Lines that reached the server with anything but printable text before CRLF."""
    return [
        line
        for line in lines
        if not line.endswith(b"\r\n") or not is_visible(line[:-2].decode("utf-8", "replace"))
    ]


def test_tab_never_completes_a_hostile_keyword_onto_the_wire_or_the_screen() -> None:
    script: list[Action] = [
        Send(b"220 hostile.example ESMTP\r\n"),
        Expect(b"EHLO"),
        # The one printable mechanism is one the console has no helper for: it goes out as is.
        Send(HOSTILE_EHLO.replace(b" PLAIN\r\n", b" XSAFE\r\n")),
        Expect(b"AUTH"),
        Send(b"504 5.5.4 no such mechanism\r\n"),
        Expect(b"AUTH"),
        Send(b"504 5.5.4 no such mechanism\r\n"),
        Expect(b"MAIL"),
        Send(b"250 2.1.0 ok\r\n"),
        Hang(),
    ]
    lines = (
        "EHLO x",
        "AUTH \t\t",  # a menu, then its first entry: a hostile one if any were offered
        "AUTH C\t",  # CRAM\x9bMD5 is the only mechanism that starts so
        ":caps",
        "MAIL FROM:<a@example.com> B\t",
    )

    async def main() -> tuple[int, str, list[bytes]]:
        async with ScriptServer(script) as server:
            code, out, _ = await type_keys(server.port, lines, ConsoleOptions(color=False))
        return code, out, server.lines

    code, out, wire = run(main(), timeout=30)
    assert code == 0
    # The Tab had time to act: the printable mechanisms and parameter were completed.
    assert wire[:4] == [
        b"EHLO x\r\n",
        b"AUTH XSAFE\r\n",
        b"AUTH C\r\n",
        b"MAIL FROM:<a@example.com> BODY=8BITMIME\r\n",
    ]
    assert wire_controls(wire) == []
    assert screen_controls(out) == set()
    assert "\x1b" not in out
    assert "250-X\\x1b]0;pwned\\x07" in out  # the reply, escaped
    assert "X\\x1b]0;PWNED\\x07" in out  # :caps, escaped
    assert "\\u202eNIALP" in out and "CRAM\\x9bMD5" in out


def test_certificate_names_from_the_handshake_and_tls_are_escaped_on_screen(
    tmp_path: Path,
) -> None:
    issued = _issue(
        tmp_path,
        "hostile-names",
        "real\b\b\bfake\x1b]0;cn\x07\u202e",
        names=("mail\x1b[2J.example", "x\x07.example"),
    )
    script: list[Action] = [
        Send(b"220 hostile.example ESMTP\r\n"),
        Expect(b"EHLO"),
        Send(b"250-hostile.example\r\n250 STARTTLS\r\n"),
        Expect(b"STARTTLS"),
        Send(b"220 2.0.0 go ahead\r\n"),
        StartTLS(issued.server_context()),
        Hang(),
    ]

    async def main() -> tuple[int, str]:
        async with ScriptServer(script) as server:
            code, out, _ = await type_keys(
                server.port, ("EHLO x", "STARTTLS", ":tls"), ConsoleOptions(color=False)
            )
        return code, out

    code, out = run(main(), timeout=30)
    assert code == 0
    assert "TLS active" in out
    assert screen_controls(out) == set()
    subject = "real\\x08\\x08\\x08fake\\x1b]0\\;cn\\x07\\u202e"  # RFC 4514 escapes the ;
    assert out.count(subject) >= 3  # subject and issuer after the handshake, the chain in :tls
    names = "mail\\x1b[2J.example, x\\x07.example"
    assert out.count(names) >= 3  # the names, the reason the names do not match, :tls
