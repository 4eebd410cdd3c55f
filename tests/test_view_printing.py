"""The view prints what prompt_toolkit's own print_formatted_text prints, byte for byte.

The view merges its style once instead of on every print (console/view.py); that must not
change one escape sequence of what reaches the terminal, in colour or without.
"""

from __future__ import annotations

import io

import pytest
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.shortcuts import print_formatted_text

from smtp_tutor.console import render
from smtp_tutor.console.view import View

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`

FRAGMENTS: render.Fragments = [
    ("class:banner", "smtp-tutor\n"),
    ("class:notice", "connecting to 127.0.0.1:2525\n"),
    ("class:finding.error", "550 no such user\n"),
    ("class:finding.warning", "a warning "),
    ("", "plain text\n"),
]


def _terminal() -> tuple[Vt100_Output, io.StringIO]:
    screen = io.StringIO()
    return Vt100_Output(screen, lambda: _size(), term="xterm"), screen


def _size():  # type: ignore[no-untyped-def]
    from prompt_toolkit.data_structures import Size

    return Size(rows=40, columns=120)


@pytest.mark.parametrize("color", [True, False])
@pytest.mark.parametrize("style", ["default", "monokai"])
def test_the_view_prints_as_print_formatted_text_would(color: bool, style: str) -> None:
    ours, our_screen = _terminal()
    theirs, their_screen = _terminal()
    view = View(ours, style, color, lambda: "en")
    for _ in range(2):  # the second print uses the merged style made by the first
        view.show(FRAGMENTS)
        print_formatted_text(
            render.as_text(FRAGMENTS),
            end="",
            style=view.style,
            output=theirs,
            color_depth=ColorDepth.MONOCHROME if not color else None,
            include_default_pygments_style=False,
        )
    assert our_screen.getvalue() == their_screen.getvalue()
    assert "550 no such user" in our_screen.getvalue()


def test_the_colours_reach_the_terminal() -> None:
    """The check above is no tautology: the styles do colour what is printed."""
    screens = []
    for color in (True, False):
        output, screen = _terminal()
        View(output, "default", color, lambda: "en").show(FRAGMENTS)
        screens.append(screen.getvalue())
    assert screens[0] != screens[1]
