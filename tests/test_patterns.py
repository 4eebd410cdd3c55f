"""core.patterns.LazyPattern answers as the compiled pattern would, compiling on first use."""

from __future__ import annotations

import re

import pytest

from smtp_tutor.core.patterns import LazyPattern

pytestmark = pytest.mark.pure

TEXTS = ["", "MAIL FROM:<a@b.example> SIZE=10", "  rcpt   to:<x@y>", "no match here", "ÄÖ 中文 a@b"]


def _seen(match: re.Match[str] | None) -> object:
    return match and (match.span(), match.groups())


@pytest.mark.parametrize(
    ("source", "flags"),
    [(r"(\S+)\s+(.*)", re.DOTALL), (r"^mail\b", re.IGNORECASE), (r"[ \u3000]+|[^ \u3000]+", 0)],
)
def test_every_method_answers_as_re_compile(source: str, flags: int) -> None:
    lazy, compiled = LazyPattern(source, flags), re.compile(source, flags)
    for text in TEXTS:
        for method in ("match", "fullmatch", "search"):
            for where in ((), (2,), (2, 9)):
                ours = getattr(lazy, method)(text, *where)
                theirs = getattr(compiled, method)(text, *where)
                assert _seen(ours) == _seen(theirs)
        assert [m.span() for m in lazy.finditer(text)] == [
            m.span() for m in compiled.finditer(text)
        ]
        assert lazy.findall(text) == compiled.findall(text)
        assert lazy.split(text, 1) == compiled.split(text, 1)
        assert lazy.sub("-", text, 2) == compiled.sub("-", text, 2)
        assert lazy.sub(lambda m: m.group().upper(), text) == compiled.sub(
            lambda m: m.group().upper(), text
        )
    assert lazy.pattern == source and lazy.compiled.flags == compiled.flags


def test_it_compiles_once_and_only_when_first_used() -> None:
    broken = LazyPattern("(unclosed")  # made without complaint: nothing is compiled yet
    with pytest.raises(re.error):
        broken.match("x")
    lazy = LazyPattern(r"\d+")
    assert lazy._compiled is None
    assert lazy.search("ab12").group() == "12"  # type: ignore[union-attr]
    first = lazy.compiled
    lazy.findall("1 2 3")
    assert lazy.compiled is first
    assert repr(lazy) == r"LazyPattern('\\d+', 0)"
