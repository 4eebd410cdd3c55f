"""Text from a server never carries a control character to the terminal or into the typed line.

* `core.safe_text.visible`, exhaustively over every code point and as hypothesis properties.
"""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtp_tutor.core.safe_text import is_visible, visible

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
