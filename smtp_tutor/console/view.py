"""What the console prints, in one place: its style, its colour depth, the wire views.

The console's other objects (reader, composer, AUTH helper) never print; they return what
happened and the app asks the view to say it. `:raw` and `:hex` are the view's own state:
they change what is shown, never what is sent.
"""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.application import get_app_or_none, run_in_terminal
from prompt_toolkit.application.current import get_app_session
from prompt_toolkit.output import ColorDepth, Output
from prompt_toolkit.renderer import print_formatted_text

from smtp_tutor.client.connection import WireEvent
from smtp_tutor.console import render, wrap


class View:
    """Prints fragments with the console's style; `say` speaks a catalogue key."""

    def __init__(
        self, output: Output | None, style: str, color: bool, lang: Callable[[], str]
    ) -> None:
        self.output = output
        # Printed with as it is. prompt_toolkit's print_formatted_text would merge its UI
        # style under it on every call (a parse of ~450 rules, ~2 ms); none of the classes
        # the console prints is styled there (tests/test_view_printing.py), so the merge
        # changes no byte of the output and is left to the prompt, which draws those classes.
        self.style = render.console_style(style)
        self.depth = ColorDepth.MONOCHROME if not color else None
        self._lang = lang
        self.raw = False  # :raw on: every byte, CR and LF visible
        self.hex = False  # :hex on: a hex dump of every byte

    def show(self, fragments: render.Fragments) -> None:
        """Print, wrapped to the terminal's width (replies and raw bytes are left as sent)."""
        fragments = wrap.wrap_fragments(fragments, render.terminal_columns(self.output))
        if not fragments:
            return
        output = self.output or get_app_session().output
        depth = self.depth or output.get_default_color_depth()

        def draw() -> None:
            print_formatted_text(output, render.as_text(fragments), self.style, color_depth=depth)

        # As prompt_toolkit's own print_formatted_text: above a running prompt, if any.
        app = get_app_or_none()
        if app is not None and app.loop is not None:
            app.loop.call_soon_threadsafe(lambda: run_in_terminal(draw))
        else:
            draw()

    def say(self, key: str, style: str = "class:notice", /, **params: object) -> None:
        self.show(render.say(key, self._lang(), style, **params))

    def print_text(self, text: str, style: str = "") -> None:
        self.show([(style, text if text.endswith("\n") else text + "\n")])

    def wire(self, event: WireEvent, redact: Callable[[str], str]) -> None:
        """`:raw`/`:hex`: the bytes of one read or write, a sent secret masked."""
        if not (self.raw or self.hex):
            return
        data = event.data
        if event.direction == "sent":
            data = redact(data.decode("utf-8", errors="replace")).encode("utf-8")
        if self.raw:
            self.show(render.raw_fragments(event.direction, data))
        if self.hex:
            self.show(render.hex_fragments(event.direction, data))
