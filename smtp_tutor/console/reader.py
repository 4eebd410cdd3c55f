"""Where the typed lines come from: the prompts on a terminal, or plain lines from a pipe.

Reading is kept apart from evaluating and printing (ptpython's lesson): the reader owns
the two prompt sessions, the history file and the pipe reader; the app tells it what the
next line is (its label, whether it is a secret, whether history may keep it) and gets
the line back. Two prompt sessions, so that a secret or a message line can never reach
the history: the main one with history and completion, a quiet one with neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import prompt_toolkit.application.application as pt_application
from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import Completer
from prompt_toolkit.enums import EditingMode
from prompt_toolkit.filters import buffer_has_focus
from prompt_toolkit.history import DummyHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.input.typeahead import get_typeahead, store_typeahead
from prompt_toolkit.key_binding import KeyBindingsBase, KeyPress
from prompt_toolkit.key_binding.bindings.basic import load_basic_bindings
from prompt_toolkit.key_binding.bindings.cpr import load_cpr_bindings
from prompt_toolkit.key_binding.bindings.emacs import (
    load_emacs_bindings,
    load_emacs_search_bindings,
    load_emacs_shift_selection_bindings,
)
from prompt_toolkit.key_binding.bindings.mouse import load_mouse_bindings
from prompt_toolkit.key_binding.key_bindings import (
    ConditionalKeyBindings,
    DynamicKeyBindings,
    merge_key_bindings,
)
from prompt_toolkit.keys import Keys
from prompt_toolkit.layout.processors import Processor
from prompt_toolkit.output import Output

from smtp_tutor.console.history import LineKind, SafeFileHistory
from smtp_tutor.console.masking import MaskInitialResponse
from smtp_tutor.console.plain import PlainReader
from smtp_tutor.console.view import View


class Reader:
    """One line at a time from the user, at the prompt the app asks for."""

    def __init__(
        self, input: Input | None, output: Output | None, plain: PlainReader | None, view: View
    ) -> None:
        self.input = input
        self.output = output
        self.plain = plain
        self.view = view
        # Set while a prompt waits for the user: tests and scripted drivers type then.
        self.waiting = asyncio.Event()
        self.history: History = InMemoryHistory()
        self._prompt: PromptSession[str] | None = None
        self._settings: dict[str, Any] = {}
        #: The prompts' default key bindings, made once the first prompt is on screen.
        self.deferred: list[DeferredKeyBindings] = []

    def open(
        self,
        *,
        completer: Completer,
        toolbar: Callable[[], Any] | None,
        editing_mode: str,
        history: History | None,
        processors: list[Processor] | None = None,
    ) -> None:
        """Make the prompts; they touch the terminal, so only once connected.

        `processors` mask secrets while they are typed (SMTP's AUTH initial response by
        default; the POP3 console passes its own)."""
        if self.plain is not None:
            return
        if history is not None:
            self.history = history
        self._settings = {
            "input": self.input,
            "output": self.output,
            "completer": completer,
            "complete_while_typing": False,
            "style": self.view.style,
            "include_default_pygments_style": False,
            "color_depth": self.view.depth,
            "editing_mode": EditingMode.VI if editing_mode == "vi" else EditingMode.EMACS,
            "bottom_toolbar": toolbar,
        }
        with default_key_bindings(vi=editing_mode == "vi") as made:
            self._prompt = PromptSession[str](
                history=self.history,
                auto_suggest=AutoSuggestFromHistory(),
                input_processors=processors if processors is not None else [MaskInitialResponse()],
                **self._settings,
            )
        self._defer(self._prompt, made)

    @functools.cached_property
    def _quiet(self) -> PromptSession[str]:
        """No history at all, not even in memory; made on first use (it costs start-up time)."""
        with default_key_bindings(vi=self._settings["editing_mode"] == EditingMode.VI) as made:
            quiet = PromptSession[str](history=DummyHistory(), **self._settings)
        self._defer(quiet, made)
        return quiet

    def _defer(self, session: PromptSession[str], made: list[DeferredKeyBindings]) -> None:
        """Keep `made` (a prompt's deferred bindings) and have them made once it is drawn."""
        self.deferred += made
        _build_when_idle(session, made)

    async def read(
        self, label: str, *, secret: bool, kind: LineKind | None, default: str = ""
    ) -> str:
        """One line: `kind` None means a line no history may keep (message text, answers)."""
        self.waiting.set()
        try:
            if self.plain is not None:
                return await self.plain.read(label, secret=secret)
            assert self._prompt is not None, "Reader.open() first"
            if kind is None:
                return await self._quiet.prompt_async(label, is_password=secret, default=default)
            if isinstance(self.history, SafeFileHistory):
                self.history.expect(kind)
            return await self._prompt.prompt_async(label)
        finally:
            self.waiting.clear()

    def typed_ahead(self, lines: bool) -> bool:
        """Were keys (with `lines`: a whole line, Enter included) typed before this prompt?

        The keys are read without being consumed: they are stored back as prompt_toolkit's
        type-ahead, so the next prompt receives every one of them, in order.
        """
        if self._prompt is None:
            return False
        source = self._prompt.input
        keys: list[KeyPress] = list(get_typeahead(source))
        try:
            for _ in range(256):
                more = source.read_keys()
                if not more:
                    break
                keys.extend(more)
        except (OSError, ValueError, NotImplementedError):
            pass
        store_typeahead(source, keys)
        if not lines:
            return bool(keys)
        return any(_ends_line(key) for key in keys)


def _ends_line(key: KeyPress) -> bool:
    """A key that ends a typed line: Enter, or a paste holding a line break."""
    if key.key in (Keys.ControlM, Keys.ControlJ):
        return True
    return key.key == Keys.BracketedPaste and ("\n" in key.data or "\r" in key.data)


def emacs_key_bindings() -> KeyBindingsBase:
    """prompt_toolkit's default key bindings (`load_key_bindings`) without the vi ones."""
    editing = merge_key_bindings(
        [
            load_basic_bindings(),
            load_emacs_bindings(),
            load_emacs_search_bindings(),
            load_emacs_shift_selection_bindings(),
        ]
    )
    return merge_key_bindings(
        [
            ConditionalKeyBindings(editing, buffer_has_focus),
            load_mouse_bindings(),
            load_cpr_bindings(),
        ]
    )


class DeferredKeyBindings(DynamicKeyBindings):
    """Key bindings made when first asked for: a key pressed, or `build()`.

    Making prompt_toolkit's default bindings (some 280 of them, more in vi mode) is a few
    milliseconds that the first prompt does not need; nothing asks for them until a key
    is handled, so they are made after the prompt is on screen (`_build_when_idle`), or
    at once for keys typed before it.
    """

    def __init__(self, make: Callable[[], KeyBindingsBase]) -> None:
        self._make: Callable[[], KeyBindingsBase] | None = make
        self._made: KeyBindingsBase | None = None
        super().__init__(self.build)

    @property
    def built(self) -> bool:
        return self._made is not None

    def build(self) -> KeyBindingsBase:
        if self._made is None:
            assert self._make is not None
            self._made, self._make = self._make(), None
        return self._made


def _build_when_idle(session: PromptSession[str], made: list[DeferredKeyBindings]) -> None:
    """Make the deferred bindings just after the prompt is first drawn."""

    def drawn(app: object) -> None:
        loop = asyncio.get_running_loop()
        # Not removed here: the event is iterating over its handlers.
        loop.call_soon(session.app.after_render.remove_handler, drawn)
        for bindings in made:
            loop.call_soon(bindings.build)

    if made:
        session.app.after_render.add_handler(drawn)


@contextlib.contextmanager
def default_key_bindings(*, vi: bool) -> Iterator[list[DeferredKeyBindings]]:
    """While a prompt is made: its Application's default bindings, deferred, vi's only when `vi`.

    An Application always loads prompt_toolkit's vi bindings, active in vi mode only, and
    they were 7 % of the console's work to its first prompt (valgrind: 52 M of 727 M
    instructions). No option leaves them out, so for the few lines that make a
    PromptSession, the loader its Application calls gives `DeferredKeyBindings` of the
    same bindings, less vi's in emacs mode (tests/test_reader_bindings.py holds the two
    to the same emacs bindings). Yields the list of those made, for `_build_when_idle`.
    """
    loader = pt_application.load_key_bindings
    make = loader if vi else emacs_key_bindings
    made: list[DeferredKeyBindings] = []

    def deferred() -> DeferredKeyBindings:
        made.append(DeferredKeyBindings(make))
        return made[-1]

    pt_application.load_key_bindings = deferred
    try:
        yield made
    finally:
        pt_application.load_key_bindings = loader
