""":mailbox shows what the sandbox stored: every header line as stored, the body (and how
much of it is left out), each defect explained; the console driven for real on the sandbox."""

from __future__ import annotations

import email.errors
import inspect
import io
import re
from pathlib import Path

import pytest
from prompt_toolkit.data_structures import Size
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.output.plain_text import PlainTextOutput
from prompt_toolkit.output.vt100 import Vt100_Output

from smtp_tutor.client.session import Target
from smtp_tutor.console import render
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.console.wrap import display_width
from smtp_tutor.core.catalogue import load_catalogue
from smtp_tutor.sandbox import Sandbox
from smtp_tutor.sandbox.storage import StoredMessage
from tests.consoles import run_console, screen_text
from tests.test_console import with_sandbox

ENVELOPE = ["EHLO me", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "DATA"]


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.delenv("COLUMNS", raising=False)


def typed(tmp_path: Path, message: list[str], after: list[str], lang: str = "en") -> str:
    """Send `message` in the sandbox console, then type `after`; what the screen showed."""

    async def body(sandbox: Sandbox) -> str:
        options = ConsoleOptions(
            color=False, toolbar=False, mailbox=sandbox.mailbox_path, lang=lang
        )
        lines = [*ENVELOPE, *message, ".", *after, "QUIT"]
        code, out, _ = await run_console(Target(sandbox.host, sandbox.port), lines, options)
        assert code == 0
        return screen_text(out)

    return with_sandbox(tmp_path, body)


def after(text: str, marker: str) -> str:
    """The screen from the last `marker` on: the last :mailbox's listing."""
    return text[text.rindex(marker) :]


# --- the body ---------------------------------------------------------------------------


def test_a_long_body_says_how_much_is_left_out_and_all_shows_it(tmp_path: Path) -> None:
    body = [f"body line number {n:02d}" for n in range(1, 31)]
    text = typed(tmp_path, ["Subject: long", "", *body], [":mailbox", ":mailbox all"])
    first = text[text.index("latest message") : text.rindex("latest message")]
    assert "body (" in first and "30 line(s)" in first
    assert "body line number 20" in first and "body line number 21" not in first
    assert "… 10 more lines not shown — :mailbox all shows the whole body" in first
    whole = after(text, "latest message")
    assert all(line in whole for line in body)
    assert "more lines not shown" not in whole


def test_a_short_body_is_shown_whole_without_a_note(tmp_path: Path) -> None:
    text = typed(tmp_path, ["Subject: short", "", "one", "", "three"], [":mailbox"])
    listing = after(text, "latest message")
    assert "body (" in listing and "3 line(s)" in listing
    assert "    one" in listing and "    three" in listing
    assert "not shown" not in listing


def test_mailbox_takes_only_all(tmp_path: Path) -> None:
    text = typed(tmp_path, ["Subject: x", "", "y"], [":mailbox 3"])
    assert "usage: :mailbox [all]" in text.lower() or ":mailbox [all]" in text
    assert "latest message" not in text


# --- the header block -------------------------------------------------------------------

SEED = [
    "From: a@example.com",
    "To: b@example.com",
    "Subject:我是标题",
    "Content-Type: Text/html;",
    "charset=gb2312",
    "",
    "hello world",
]


def test_a_header_line_without_a_colon_is_shown_and_marked(tmp_path: Path) -> None:
    text = typed(tmp_path, SEED, [":mailbox"])
    listing = after(text, "latest message")
    headers = listing[listing.index("header block as stored") : listing.index("body (")]
    for line in SEED[:5]:  # every line before the empty one, as typed
        assert f"    {line}" in headers
    marked = headers[headers.index("charset=gb2312") :]
    assert "not a header line: it has no colon" in marked.splitlines()[1]
    assert "MissingHeaderBodySeparatorDefect" in listing
    assert "The parser took it as the start of the body" in listing


def test_the_marks_and_defects_speak_chinese(tmp_path: Path) -> None:
    text = typed(tmp_path, SEED, [":mailbox"], lang="zh")
    listing = after(text, "沙盒中最新的一封邮件")
    assert "原样保存的信头区" in listing
    assert "这不是信头行：它没有冒号" in listing
    assert "MissingHeaderBodySeparatorDefect" in listing
    assert "解析器把它当作正文的开头" in listing


def test_encoded_words_are_shown_as_stored_and_decoded(tmp_path: Path) -> None:
    message = ["Subject: =?utf-8?b?5oiR5piv5qCH6aKY?=", "From: a@example.com", "", "x"]
    text = typed(tmp_path, message, [":mailbox"])
    listing = after(text, "latest message")
    assert "    Subject: =?utf-8?b?5oiR5piv5qCH6aKY?=" in listing
    assert "= Subject: 我是标题   (RFC 2047 encoded words, decoded)" in listing
    assert "no defects" in listing


def test_prose_wraps_to_the_terminal_but_stored_lines_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    long_line = "word " * 20 + "end"
    text = typed(tmp_path, [*SEED, long_line], [":mailbox"])
    listing = after(text, "latest message").split("\n221 ")[0]  # up to QUIT's reply
    assert f"    {long_line}" in listing.splitlines()  # the stored line, whole
    for line in listing.splitlines():
        if long_line not in line:
            assert display_width(line) <= 60, line
    assert "MissingHeaderBodySeparatorDefect" in listing  # a word too long stands alone


# --- the pure view ----------------------------------------------------------------------


def stored(raw: bytes) -> StoredMessage:
    return StoredMessage(key="k", raw=raw, envelope={"mail_from": "a@example.com"})


def view(raw: bytes, **options: object) -> str:
    return render.plain(render.mailbox_fragments(stored(raw), 1, "en", **options))  # type: ignore[arg-type]


def test_view_folded_headers_a_bad_name_and_bare_lf() -> None:
    raw = b"Subject: one\n\ttwo\nFoo Bar: baz\nX: y\n\nbody\n"
    text = view(raw)
    assert "    Subject: one\n    \\ttwo\n" in text  # the tab shown, not acted on
    assert "    Foo Bar: baz\n" in text
    assert "the name before the colon may hold only printable ASCII" in text
    assert "    X: y\n" in text  # shown as stored, though the parser reads it as body
    assert "body (5 bytes, 1 line(s))" in text


def test_view_of_a_message_that_starts_with_an_empty_line() -> None:
    text = view(b"\r\nSubject: not a header\r\n")
    assert "(none: the message starts with an empty line" in text
    assert "body (23 bytes, 1 line(s))" in text and "    Subject: not a header" in text


def test_view_splits_the_body_at_line_ends_only() -> None:
    text = view(b"S: x\r\n\r\na\x0cb\rc\r\n\r\nd")
    assert "    a\\x0cb\\rc\n\nd" not in text  # an empty body line gets no trailing spaces
    assert "    a\\x0cb\\rc\n\n    d\n" in text
    assert "3 line(s)" in text


def test_view_cuts_at_twenty_unless_whole() -> None:
    raw = b"S: x\r\n\r\n" + b"".join(b"l%d\r\n" % n for n in range(25))
    assert "… 5 more lines not shown" in view(raw)
    assert "not shown" not in view(raw, whole_body=True) and "    l24" in view(raw, whole_body=True)


def test_view_explains_an_unknown_defect_by_saying_so() -> None:
    message = stored(b"S: x\r\n\r\nb")
    message.__dict__["defects"] = [type("BrandNewDefect", (email.errors.MessageDefect,), {})()]
    text = render.plain(render.mailbox_fragments(message, 1, "en"))
    assert "- BrandNewDefect" in text and "no explanation of this one on file" in text


# --- the defect catalogue ---------------------------------------------------------------


def defect_classes() -> set[str]:
    return {
        cls.__name__
        for _, cls in inspect.getmembers(email.errors, inspect.isclass)
        if issubclass(cls, email.errors.MessageDefect)
    }


def test_every_defect_of_the_email_package_is_explained_in_both_languages() -> None:
    table = load_catalogue("console")["mailbox_defect"]
    assert defect_classes() <= set(table)
    for name, entry in table.items():
        assert name in defect_classes(), name  # no entry for a class that does not exist
        assert entry["en"] and re.search(r"[\u4e00-\u9fff]", entry["zh"]), name
        assert "{" not in entry["en"] + entry["zh"], name


# --- how wide the screen is -------------------------------------------------------------


def test_terminal_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert render.terminal_columns(PlainTextOutput(io.StringIO())) == 80  # no size: 80
    assert render.terminal_columns(DummyOutput()) == 80
    monkeypatch.setenv("COLUMNS", "132")
    assert render.terminal_columns(PlainTextOutput(io.StringIO())) == 132
    assert render.terminal_columns(None) == 132  # shutil reads COLUMNS too
    monkeypatch.setenv("COLUMNS", "wide")
    assert render.terminal_columns(DummyOutput()) == 80
    # A real terminal's output answers for itself, whatever COLUMNS says.
    terminal = Vt100_Output(io.StringIO(), lambda: Size(rows=24, columns=57), term="xterm")
    assert render.terminal_columns(terminal) == 57
