"""Text that fits the terminal: lines wrapped by display width, Latin and CJK alike.

Pure functions, no terminal: give them the width. The rules, in the order they apply:

* **Width is display columns**, as prompt_toolkit counts them (wcwidth, control characters
  zero): a Chinese character or a full-width mark is two columns, `é` is one.
* **A line that fits is left exactly as it is**, spaces and all. Newlines already in the
  text stay where they are; wrapping only ever adds line breaks.
* **A Latin word is never split.** Lines break at spaces (ASCII space or the ideographic
  space U+3000), and the spaces where a line breaks are dropped, so no line ends in a space.
  A word wider than the room on a line stands alone on its line, over-long, and the terminal
  folds it: cutting it ourselves would put a newline into an address, a base64 string or a
  URL the student may want to copy whole.
* **CJK text breaks between characters**: wherever one of two neighbouring characters is
  wide, a line may break without a space (`AUTH命令` may break before `命`) — except before
  closing punctuation (`，。、）」…` and friends: `CLOSING`) and after opening punctuation
  (`（「“`: `OPENING`), the simple form of the Japanese *kinsoku* rule that Chinese uses too.
  Nothing breaks before a zero-width character (a combining accent stays on its letter).
  An address or a URL (a run with `@` or `://` in it, up to spaces and CJK punctuation) is
  one word even with CJK characters in it: `用户@例子.中国` is never split.
* **Hanging indent**: continuation lines start under the text, after the line's leading
  spaces and its marker — `"  ↳ "`, `"  ! "`, `"    - "`, `"  ✗ "`, `"  1. "`, the info mark
  `"  i "`. A caller with a table passes `hang` (the column its text starts in) instead.
  When the indent would leave fewer than `min(20, width // 2)` columns for text, the
  continuation falls back to the leading spaces only, then to column 0.
* **Data is not prose**: a line with a fragment whose style has a class in
  `VERBATIM_CLASSES` (a server reply, bytes on the wire, a stored message's lines) is never
  wrapped by `wrap_fragments`. Such text is shown as it was sent; a wrapped reply line would
  look like a line the server sent without a code. The terminal folds it if it must.

Wrapping its own output changes nothing: every line it makes fits, or is one word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

from smtp_tutor.core.patterns import LazyPattern

__all__ = [
    "CLOSING",
    "OPENING",
    "VERBATIM_CLASSES",
    "display_width",
    "wrap_fragments",
    "wrap_line",
    "wrap_text",
]

Fragments = list[tuple[str, str]]

#: No line starts with these: they belong to the character before them.
CLOSING = frozenset(
    "，。、．：；！？）］｝」』】》〉〕〗〙〛”’›»…‥—·・ー々〃ゝゞヽヾ"
    "ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ"
    ",.:;!?)]}%"
)
#: No line ends with these: they belong to the character after them.
OPENING = frozenset("（［｛「『【《〈〔〖〘〚“‘‹«([{")

#: Style classes of text shown as it came (see the module's docstring): never wrapped.
#: A class matches itself and its sub-classes (`raw.sent` matches `raw`).
VERBATIM_CLASSES = frozenset({"reply", "verbatim", "raw"})

_SPACES = " \u3000"
_TOKEN = LazyPattern(r"[ \u3000]+|[^ \u3000]+")
# Leading spaces, then maybe a marker: up to three symbols, a list number or the info "i",
# with at least one space after it and text after that.
_HEAD = LazyPattern(r"(?P<indent> *)(?P<marker>(?:[^\w\s]{1,3}|\d{1,3}[.)]|i) +(?=\S))?")
_ZERO_WIDTH_JOINER = "\u200d"
# An address or a URL inside a run of text: no break inside it.
_RUN = r"[^\s，。、；：！？（）「」『』【】《》〈〉“”‘’…—]*"
_ADDRESS = LazyPattern(_RUN + "(?:@|://)" + _RUN)


@lru_cache(maxsize=8192)
def _char_width(ch: str) -> int:
    if " " <= ch <= "~" or "\xa0" <= ch <= "\xff":  # one column, as wcwidth says (tested):
        return 1  # importing wcwidth costs 20 ms, which `explain` in English need not pay
    from wcwidth import wcwidth

    return max(0, wcwidth(ch))


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal (prompt_toolkit's rule: controls count zero)."""
    if text.isascii() and text.isprintable():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def wrap_text(text: str, width: int | None, *, hang: int | None = None, min_hang: int = 0) -> str:
    """`text` with every line wrapped to `width` columns (None: unchanged)."""
    if width is None:
        return text
    return "\n".join(
        "\n".join(wrap_line(line, width, hang=hang, min_hang=min_hang)) for line in text.split("\n")
    )


def wrap_line(line: str, width: int, *, hang: int | None = None, min_hang: int = 0) -> list[str]:
    """One line (no newline in it) as the lines it wraps to.

    `hang` is the column continuation lines start in (default: under the text after the
    line's marker); `min_hang` a column they start in at least.
    """
    if display_width(line) <= width:
        return [line]
    spans, indent = _spans(line, width, hang, min_hang)
    pad = " " * indent
    return [line[a:b] if k == 0 else pad + line[a:b] for k, (a, b) in enumerate(spans)]


def wrap_fragments(
    fragments: Sequence[tuple[str, str]],
    width: int | None,
    *,
    hang: int | None = None,
    min_hang: int = 0,
) -> Fragments:
    """prompt_toolkit fragments wrapped line by line, each piece keeping its style.

    Safe for everything the console shows: lines that fit, lines of data (a class in
    `VERBATIM_CLASSES`) and lines with a `[ZeroWidthEscape]` fragment come back unchanged.
    A continuation line's indent is unstyled spaces. `width` None: unchanged.
    """
    if width is None:
        return list(fragments)
    lines = [
        (line, newline, "".join(piece for _style, piece in line))
        for line, newline in _split_lines(fragments)
    ]
    if all(display_width(text) <= width or _verbatim(line) for line, _, text in lines):
        return list(fragments)  # the common case: every line fits, all as it was
    wrapped: Fragments = []
    for line, newline, text in lines:
        if display_width(text) <= width or _verbatim(line):
            wrapped += line
        else:
            spans, indent = _spans(text, width, hang, min_hang)
            for k, (a, b) in enumerate(spans):
                if k:
                    wrapped.append(("", "\n"))
                    if indent:
                        wrapped.append(("", " " * indent))
                wrapped += _slice(line, a, b)
        if newline is not None:
            wrapped.append(newline)
    return wrapped


# -- how one line breaks ---------------------------------------------------------------


def _spans(
    line: str, width: int, hang: int | None, min_hang: int
) -> tuple[list[tuple[int, int]], int]:
    """Where `line` breaks: the (start, end) of each output line, and the continuation indent.

    Greedy: each piece goes on the current line if it fits there, else starts the next one.
    The first piece always goes on the first line, after the line's head (indent and marker).
    """
    head = _HEAD.match(line)
    assert head is not None  # every part of the pattern is optional
    indent = _hanging_indent(line, head, width, hang, min_hang)
    spans: list[tuple[int, int]] = []
    start, end = 0, head.end()
    column = display_width(line[:end])
    first = True
    for piece_start, piece_end in _pieces(line, head.end()):
        piece_width = display_width(line[piece_start:piece_end])
        gap_width = display_width(line[end:piece_start])
        if first or column + gap_width + piece_width <= width:
            column += gap_width + piece_width
        else:
            spans.append((start, end))
            start, column = piece_start, indent + piece_width
        end, first = piece_end, False
    spans.append((start, end))
    return spans, indent


def _hanging_indent(
    line: str, head: re.Match[str], width: int, hang: int | None, min_hang: int
) -> int:
    """The column continuation lines start in, leaving room for text."""
    room = min(20, width // 2)
    wanted = max(display_width(head.group()) if hang is None else hang, min_hang)
    for indent in (wanted, len(head.group("indent"))):
        if width - indent >= room:
            return indent
    return 0


def _pieces(line: str, start: int) -> Iterator[tuple[int, int]]:
    """The unbreakable pieces of `line` from `start`: words, and CJK characters with the
    punctuation that clings to them. The spaces between pieces are in no piece."""
    for token in _TOKEN.finditer(line, start):
        if token.group()[0] in _SPACES:
            continue
        text, offset = token.group(), token.start()
        has_address = "@" in text or "://" in text
        kept = [m.span() for m in _ADDRESS.finditer(text)] if has_address else []
        begin = 0
        for i in range(1, len(text)):
            if _may_break(text[i - 1], text[i]) and not any(a < i < b for a, b in kept):
                yield offset + begin, offset + i
                begin = i
        yield offset + begin, offset + len(text)


def _may_break(before: str, after: str) -> bool:
    """Whether a line may break between two characters with no space between them."""
    if after in CLOSING or before in OPENING or before == _ZERO_WIDTH_JOINER:
        return False
    after_width = _char_width(after)
    return after_width != 0 and (after_width == 2 or _char_width(before) == 2)


# -- fragments -------------------------------------------------------------------------


def _split_lines(
    fragments: Sequence[tuple[str, str]],
) -> Iterator[tuple[Fragments, tuple[str, str] | None]]:
    """Each line's fragments (no newline in them) and the newline fragment that ends it."""
    line: Fragments = []
    for style, text in fragments:
        *complete, rest = text.split("\n")
        for part in complete:
            if part:
                line.append((style, part))
            yield line, (style, "\n")
            line = []
        if rest or (not text and not complete):
            line.append((style, rest))  # an empty fragment may be a marker: keep it
    if line:
        yield line, None


def _verbatim(line: Fragments) -> bool:
    for style, _text in line:
        if "[ZeroWidthEscape]" in style:
            return True
        for part in style.split():
            if part.startswith("class:"):
                for name in part[len("class:") :].split(","):
                    if name.split(".", 1)[0] in VERBATIM_CLASSES:
                        return True
    return False


def _slice(line: Fragments, start: int, end: int) -> Fragments:
    """The fragments of `line` between two character offsets, styles kept."""
    pieces: Fragments = []
    offset = 0
    for style, text in line:
        a, b = max(start, offset), min(end, offset + len(text))
        if a < b:
            pieces.append((style, text[a - offset : b - offset]))
        offset += len(text)
    return pieces
