"""Text that came from a server (or a certificate, or DNS), made safe to put on a screen.

A server chooses every byte of its replies, its EHLO keywords and its certificate names. Shown
as they are, some characters act instead of being read: ESC starts a terminal command (``ESC ]
0 ;`` retitles the window, ``ESC [ 2 J`` clears it), BEL rings, CR and backspace overwrite
what is already shown, C1 controls are ESC sequences in one byte on some terminals, and the
bidirectional overrides (U+202E …) show text in another order than it is sent. Invisible
characters (U+200B, U+FEFF) make two different words look the same.

`visible` is the one rule: a character stays as it is when Python calls it printable
(`str.isprintable`: not Unicode category Cc, Cf, Cs, Co, Cn, Zl or Zp, and no space separator
but the ASCII space); every other character becomes the escape Python itself would write
for it (``\\x1b``, ``\\t``, ``\\x9b``, ``\\u202e``, ``\\U000e0001``). A byte that was not
UTF-8 and was decoded with ``surrogateescape`` shows as that byte, ``\\xff``.

Deliberately strict: zero-width joiners, soft hyphens, no-break and ideographic spaces are
escaped too. Server text in a teaching console is read to be checked, and a character that
cannot be seen cannot be checked.
"""

from __future__ import annotations

__all__ = ["is_visible", "visible"]

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def is_visible(text: str) -> bool:
    """Whether `visible` would leave `text` as it is: nothing in it acts or hides."""
    return text.isprintable()


def visible(text: str) -> str:
    """`text` with every character that is not printable written as its escape."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
