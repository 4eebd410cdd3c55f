"""The view prints what prompt_toolkit's own print_formatted_text prints, byte for byte.

The view prints with the console's style alone, where print_formatted_text merges
prompt_toolkit's UI style under it on every call (console/view.py); that must not change
one escape sequence of what reaches the terminal, in colour or without, for any style
the console prints with, under any pygments style a user may choose.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import get_args

import pytest
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.shortcuts import print_formatted_text
from prompt_toolkit.styles import default_ui_style, merge_styles
from prompt_toolkit.styles.pygments import pygments_token_to_classname
from pygments.styles import get_all_styles
from pygments.token import STANDARD_TYPES

import smtp_tutor
from smtp_tutor.console import render
from smtp_tutor.console.view import View
from smtp_tutor.core.checker import Severity

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


def _printed_styles() -> set[str]:
    """Every style the console prints with: its class literals, findings and lexer tokens."""
    package = Path(smtp_tutor.__file__).parent
    found: set[str] = set()
    for path in [*package.rglob("*.py"), *package.rglob("*.toml")]:
        found.update(re.findall(r"class:[\w.,:-]+(?: class:[\w.,-]+)*", path.read_text("utf-8")))
    found.update(f"class:finding.{severity}" for severity in get_args(Severity))
    found.update(f"class:{pygments_token_to_classname(token)}" for token in STANDARD_TYPES)
    return found


def test_every_printed_style_looks_as_with_prompt_toolkits_ui_style() -> None:
    styles = _printed_styles()
    assert {"class:banner", "class:finding.error", "class:pygments.keyword"} <= styles
    for name in get_all_styles():
        ours = View(None, name, True, lambda: "en").style
        theirs = merge_styles([default_ui_style(), ours])
        for style in styles:
            assert ours.get_attrs_for_style_str(style) == theirs.get_attrs_for_style_str(style), (
                name,
                style,
            )
