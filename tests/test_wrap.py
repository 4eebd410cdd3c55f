"""console/wrap.py: lines wrapped by display width, Latin words whole, CJK with kinsoku."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtp_tutor.console.wrap import (
    CLOSING,
    OPENING,
    display_width,
    wrap_fragments,
    wrap_line,
    wrap_text,
)

# --- display width ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("", 0),
        ("abc", 3),
        ("你好", 4),
        ("，。", 4),
        ("é", 1),
        ("e\u0301", 1),  # a combining accent takes no column
        ("😀", 2),
        ("\x1b", 0),  # a control character counts zero, as prompt_toolkit counts it
        ("ａ", 2),  # a full-width letter
        ("“”—…", 4),  # narrow punctuation in Chinese text
    ],
)
def test_display_width(text: str, columns: int) -> None:
    assert display_width(text) == columns


# --- Latin text -------------------------------------------------------------------------


def test_a_line_that_fits_is_left_exactly_as_it_is() -> None:
    for line in ("", "short", "  two  spaces  inside  ", "x" * 24, "  ↳ 535 bad"):
        assert wrap_line(line, 24) == [line]


def test_no_width_means_no_wrapping() -> None:
    text = "a " * 200
    assert wrap_text(text, None) == text
    assert wrap_fragments([("", text)], None) == [("", text)]


def test_lines_break_at_spaces_and_the_spaces_there_go() -> None:
    assert wrap_line("the quick brown fox jumps over it", 10) == [
        "the quick",
        "brown fox",
        "jumps over",
        "it",
    ]


def test_spacing_inside_a_line_is_kept_and_no_line_ends_in_a_space() -> None:
    lines = wrap_line("a  b   c    d    e", 8)
    assert lines == ["a  b   c", "d    e"]
    lines = wrap_line("one two three four    ", 12)
    assert lines == ["one two", "three four"]  # the input's trailing spaces go with the break


def test_a_word_is_never_split() -> None:
    lines = wrap_line("see https://example.com/a/very/long/path/to/read now", 16)
    assert lines == ["see", "https://example.com/a/very/long/path/to/read", "now"]


def test_an_over_long_first_word_stays_on_the_first_line() -> None:
    assert wrap_line("  ! dGhpcyBpcyBhIGxvbmcgYmFzZTY0IHN0cmluZw== is base64", 20) == [
        "  ! dGhpcyBpcyBhIGxvbmcgYmFzZTY0IHN0cmluZw==",
        "    is base64",
    ]


@pytest.mark.parametrize(
    ("marker", "hang"),
    [
        ("  ↳ ", 4),
        ("  ! ", 4),
        ("    - ", 6),
        ("  ✗ ", 4),
        ("  ✓ ", 4),
        ("  i ", 4),  # the checker's info mark
        ("  1. ", 5),
        ("  12) ", 6),
        ("    + ", 6),
        ("  ", 2),  # no marker: under the indent
        ("", 0),
    ],
)
def test_continuation_lines_hang_under_the_text_after_the_marker(marker: str, hang: int) -> None:
    lines = wrap_line(marker + "alpha beta gamma delta epsilon zeta eta theta", 24)
    assert len(lines) > 1
    assert lines[0].startswith(marker)
    for line in lines[1:]:
        assert line.startswith(" " * hang) and line[hang] != " "
        assert display_width(line) <= 24


def test_a_word_after_the_indent_is_not_a_marker() -> None:
    assert wrap_line("  Meaning: one two three four five", 16) == [
        "  Meaning: one",
        "  two three four",
        "  five",
    ]


def test_an_explicit_hang_and_a_minimum_hang() -> None:
    line = "    STARTTLS   You can upgrade this plain connection to TLS"
    assert wrap_line(line, 40, hang=15) == [
        "    STARTTLS   You can upgrade this",
        "               plain connection to TLS",
    ]
    assert wrap_line("  Meaning: one two three four five", 16, min_hang=4) == [
        "  Meaning: one",
        "    two three",
        "    four five",
    ]


def test_a_hang_that_leaves_no_room_falls_back_to_the_indent_then_to_nothing() -> None:
    line = "  " + "k" * 30 + " text " * 6
    assert all(not rest.startswith("   ") for rest in wrap_line(line, 40, hang=32)[1:])
    assert wrap_line(line, 40, hang=32)[1].startswith("  t")
    deep = " " * 30 + "one two three four five six"
    assert wrap_line(deep, 40) == [" " * 30 + "one two", "three four five six"]


def test_newlines_stay_and_empty_lines_too() -> None:
    text = "first line that is long\n\n  second one that is long too\n"
    assert (
        wrap_text(text, 12) == "first line\nthat is long\n\n  second one\n  that is\n  long too\n"
    )


def test_tables_in_help_style_wrap_under_their_own_column() -> None:
    line = "  :mailbox [all]     the sandbox's latest stored message as stored, its defects"
    lines = wrap_line(line, 60, hang=21)
    assert lines[0] == "  :mailbox [all]     the sandbox's latest stored message as"
    assert lines[1] == " " * 21 + "stored, its defects"


# --- CJK --------------------------------------------------------------------------------


def test_chinese_breaks_between_characters_counting_two_columns_each() -> None:
    text = "沙盒是运行在本机上的真实服务器把收下的每封邮件存进本地目录绝不转发"
    lines = wrap_line(text, 20)
    assert all(display_width(line) == 20 for line in lines[:-1])
    assert "".join(lines) == text


def test_kinsoku_closing_punctuation_never_starts_a_line() -> None:
    text = "一二三四五六七八九，十一二三四五六七八九。一二三四五六七八九）"
    for width in range(4, 40):
        lines = wrap_line(text, width)
        assert "".join(lines) == text
        assert not any(line[0] in CLOSING for line in lines), (width, lines)


def test_kinsoku_opening_punctuation_never_ends_a_line() -> None:
    text = "一二三四五六七八（九十）一二三四五六七「八九」一二三四五六“七八”"
    for width in range(4, 40):
        lines = wrap_line(text, width)
        assert "".join(lines) == text
        assert not any(line[-1] in OPENING for line in lines[:-1]), (width, lines)


def test_a_latin_word_inside_chinese_stays_whole() -> None:
    text = "用本工具解码你发的base64看看到底发了什么；PLAIN的格式是NUL用户名NUL密码"
    for width in range(8, 60):
        lines = wrap_line(text, width)
        assert "".join(lines) == text
        for word in ("base64", "PLAIN", "NUL"):
            assert sum(line.count(word) for line in lines) == text.count(word), (width, lines)


def test_chinese_with_spaces_drops_the_space_at_the_break() -> None:
    assert wrap_line("含义：AUTH 认证失败", 12) == ["含义：AUTH", "认证失败"]
    assert wrap_line("一二三\u3000四五六", 8) == ["一二三", "四五六"]


def test_chinese_hangs_under_the_marker_too() -> None:
    lines = wrap_line("  ✗ 无法写入文件：磁盘已满，请先删掉一些文件再保存会话记录", 24)
    assert lines[0].startswith("  ✗ 无法")
    assert all(line.startswith("    ") and line[4] != " " for line in lines[1:])
    assert all(display_width(line) <= 24 for line in lines)


def test_an_address_or_url_with_chinese_in_it_is_one_word() -> None:
    text = "地址和邮件头里就可以使用 UTF-8（比如 用户@例子.中国）。再看 https://例子.中国/说明 就好"
    for width in range(10, 50):
        lines = wrap_line(text, width)
        assert any("用户@例子.中国" in line for line in lines), (width, lines)
        assert any("https://例子.中国/说明" in line for line in lines), (width, lines)


def test_a_combining_mark_stays_on_its_letter() -> None:
    text = "字" * 5 + "\u0301" + "字" * 5
    for width in range(2, 12):
        assert not any(line.startswith("\u0301") for line in wrap_line(text, width))


# --- fragments --------------------------------------------------------------------------


def test_fragments_keep_their_styles_across_a_break() -> None:
    fragments = [("class:a", "  ! hello world this "), ("class:b", "is long text\n")]
    assert wrap_fragments(fragments, 16) == [
        ("class:a", "  ! hello world"),
        ("", "\n"),
        ("", "    "),
        ("class:a", "this "),
        ("class:b", "is long"),
        ("", "\n"),
        ("", "    "),
        ("class:b", "text"),
        ("class:b", "\n"),
    ]


def test_fragments_that_fit_come_back_unchanged() -> None:
    fragments = [("class:a", "one\n"), ("class:b", ""), ("class:c", "two "), ("", "three\n")]
    assert wrap_fragments(fragments, 40) == fragments


@pytest.mark.parametrize(
    "style",
    [
        "class:reply",
        "class:raw.sent",
        "class:raw.received",
        "class:verbatim",
        "bold class:verbatim",
        "class:x,reply",
        "[ZeroWidthEscape]",
    ],
)
def test_lines_of_data_are_never_wrapped(style: str) -> None:
    long_line = "250-" + "x " * 60
    fragments = [(style, ""), ("class:pygments.text", long_line), ("", "\n"), ("", "a b " * 30)]
    wrapped = wrap_fragments(fragments, 20)
    text = "".join(text for _, text in wrapped)
    assert text.split("\n")[0] == long_line  # the marked line stays as it came
    assert all(display_width(line) <= 20 for line in text.split("\n")[1:])  # the next wraps


def test_a_reply_class_lookalike_is_not_data() -> None:
    fragments = [("class:pygments.smtp.reply.ok", "x " * 30)]
    assert "\n" in "".join(text for _, text in wrap_fragments(fragments, 20))


# --- properties -------------------------------------------------------------------------

# A word starts with a capital, so no first word looks like a marker ("i", "1.", "-").
LATIN_WORD = st.builds(
    str.__add__,
    st.sampled_from("ABCXYZ"),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-@:/<>=", max_size=29),
)
MARKERS = ["", "  ", "    ", "  ↳ ", "  ! ", "    - ", "  ✗ ", "  i ", "  1. "]


@st.composite
def latin_lines(draw: st.DrawFn) -> str:
    words = draw(st.lists(LATIN_WORD, min_size=1, max_size=25))
    gaps = draw(st.lists(st.sampled_from([" ", " ", "  ", "   "]), min_size=len(words)))
    body = "".join(gap + word for gap, word in zip(gaps, words, strict=False)).lstrip(" ")
    return draw(st.sampled_from(MARKERS)) + body


def _content(line: str, first: bool, head: str) -> str:
    return line[len(head) :] if first else line.lstrip(" ")


@settings(max_examples=300, deadline=None)
@given(latin_lines(), st.integers(min_value=1, max_value=100))
def test_property_latin_lines_fit_keep_their_words_and_are_stable(line: str, width: int) -> None:
    lines = wrap_line(line, width)
    assert " ".join(" ".join(lines).split()) == " ".join(line.split())  # the words, in order
    head = next((m for m in sorted(MARKERS, key=len, reverse=True) if line.startswith(m)), "")
    for k, out in enumerate(lines):
        if display_width(out) > width:  # only one word may stick out, alone on its line
            assert " " not in _content(out, k == 0, head).strip(), (out, lines)
        if len(lines) > 1:
            assert not out.endswith(" ")
    assert wrap_text(wrap_text(line, width), width) == wrap_text(line, width)  # idempotent


WIDE = "汉字测试邮件服务器回复认证失败正文"
CJK_TOKENS = st.one_of(
    st.text(alphabet=WIDE, min_size=1, max_size=12),
    st.sampled_from(["，", "。", "、", "）", "」", "：", "！", "？", "”", "…", "——"]),
    st.sampled_from(["（", "「", "“"]),
    st.text(alphabet="abcXYZ0123456789-", min_size=1, max_size=12),
    st.sampled_from([" ", "\u3000"]),
)


def _independent_may_break(before: str, after: str) -> bool:
    """The rule again, from the module's docstring, to check the module by."""
    if after in CLOSING or before in OPENING:
        return False
    return display_width(after) == 2 or (display_width(before) == 2 and display_width(after) > 0)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(MARKERS),
    st.lists(CJK_TOKENS, min_size=1, max_size=30),
    st.integers(min_value=2, max_value=60),
)
def test_property_cjk_breaks_only_where_allowed(marker: str, tokens: list[str], width: int) -> None:
    line = marker + "汉" + "".join(tokens)  # a character first: no marker but `marker`
    lines = wrap_line(line, width)
    assert wrap_text(wrap_text(line, width), width) == wrap_text(line, width)  # idempotent
    # Walk the input along the output: nothing lost, added or reordered, and each break is
    # at spaces or where the rule allows one.
    position = 0
    for k, out in enumerate(lines):
        piece = out if k == 0 else out.lstrip(" ")
        if k:
            skipped = 0
            while line[position] in " \u3000":
                position, skipped = position + 1, skipped + 1
            assert skipped or _independent_may_break(line[position - 1], line[position]), lines
            assert piece[:1] not in CLOSING or skipped, lines
        assert line.startswith(piece, position), (line, lines)
        position += len(piece)
        if display_width(out) > width:  # over-long: nothing in it could have broken
            content = piece[len(marker) :] if k == 0 else piece
            assert not any(
                _independent_may_break(a, b) for a, b in itertools.pairwise(content)
            ) and not re.search("[ \u3000]", content.strip(" ")), (out, lines)
    assert line[position:].strip(" \u3000") == ""


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "class:a", "class:b"]),
            st.text(alphabet="ab 汉字，\n", max_size=20),
        ),
        max_size=12,
    ),
    st.integers(min_value=2, max_value=30),
)
def test_property_fragments_wrap_like_text_and_keep_each_characters_style(
    fragments: list[tuple[str, str]], width: int
) -> None:
    text = "".join(piece for _, piece in fragments)
    wrapped = wrap_fragments(fragments, width)
    assert "".join(piece for _, piece in wrapped) == wrap_text(text, width)
    # Each character that was in the input has the style it had; what wrapping adds (line
    # breaks, indents) has none.
    styles_in = [style for style, piece in fragments for ch in piece if ch.strip()]
    styles_out = [style for style, piece in wrapped for ch in piece if ch.strip()]
    assert styles_in == styles_out
    assert wrap_fragments(wrapped, width) == wrapped  # idempotent, styles and all


# --- smtp-tutor explain -----------------------------------------------------------------


def _explain(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHON"))}
    env.update(COLUMNS="80", LC_ALL="C.UTF-8", NO_COLOR="1")
    done = subprocess.run(
        [sys.executable, "-m", "smtp_tutor", "explain", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("code", ["535", "550 5.1.1 User unknown"])
def test_explain_at_80_columns_fits_and_splits_no_word(lang: str, code: str) -> None:
    from smtp_tutor.core.knowledge import explain, format_explanation

    unwrapped = format_explanation(explain(code, lang), lang)
    out = _explain(code, "--lang", lang)
    assert all(display_width(line) <= 80 for line in out.splitlines()), out
    # The same characters in the same order; the same Latin words, none cut in two.
    assert re.sub(r"\s", "", out) == re.sub(r"\s", "", unwrapped)
    assert re.findall(r"[!-~]+", out) == re.findall(r"[!-~]+", unwrapped)
    if lang == "en":
        assert out.split() == unwrapped.split()
    assert any(display_width(line) > 80 for line in unwrapped.splitlines())  # it had to wrap


@pytest.mark.pure
def test_the_widths_it_knows_without_wcwidth_are_wcwidths() -> None:
    """ASCII and Latin-1 are counted without importing wcwidth: the same widths it gives."""
    from wcwidth import wcwidth

    from smtp_tutor.console import wrap

    for code in [*range(0x20, 0x7F), *range(0xA0, 0x100)]:
        assert wrap._char_width(chr(code)) == max(0, wcwidth(chr(code))), hex(code)
    for text in ("§ 4.2.2", "ünïcödé", "\x1b[0m", "中文", "e\u0301"):
        assert display_width(text) == sum(max(0, wcwidth(ch)) for ch in text), text
