"""Completion for the POP3 console, from the live dialogue and the knowledge in TOML.

The commands valid in the state a line would arrive in come first, in the dialogue's own
order (`Dialogue.valid_commands`: the likely next step first), then what CAPA advertised
(UTF8, LANG); each with its one-line summary from `data/pop3.toml` in the console's
language. After `AUTH ` the SASL mechanisms CAPA listed; after RETR, TOP, DELE, LIST and
UIDL the message numbers STAT and LIST made known, minus those marked with DELE. Console
commands complete after `:`. Completion only offers; it never changes a typed line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from smtp_tutor.core.catalogue import message
from smtp_tutor.core.pop3 import knowledge
from smtp_tutor.core.pop3.dialogue import VALID_IN, Dialogue

MAX_COMPLETIONS = 50
_NUMBERED = frozenset({"RETR", "TOP", "DELE", "LIST", "UIDL"})
_CAPABILITY_COMMANDS = ("UTF8", "LANG", "STLS")


class Pop3Completer(Completer):
    """Commands valid now, CAPA's extensions, SASL mechanisms, message numbers, :commands."""

    def __init__(
        self,
        dialogue: Callable[[], Dialogue | None],
        commands: Sequence[tuple[str, str]],
        lang: str = "en",
    ) -> None:
        self.dialogue = dialogue
        self.commands = tuple(commands)
        self.lang = lang

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        if "\n" in text:
            return
        words = text.split()
        if text.startswith(":"):
            if " " not in text:
                yield from self._console(text)
            return
        dialogue = self.dialogue()
        if not words or (len(words) == 1 and not text.endswith(" ")):
            yield from self._commands(words[0] if words else "", dialogue)
            return
        verb = words[0].upper()
        current = "" if text.endswith(" ") else words[-1]
        position = len(words) if text.endswith(" ") else len(words) - 1
        if dialogue is None or position != 1:
            return
        if verb == "AUTH":
            yield from self._mechanisms(current, dialogue)
        elif verb in _NUMBERED:
            yield from self._numbers(current, dialogue)

    def _console(self, typed: str) -> Iterable[Completion]:
        for name, meta in self.commands:
            if name.startswith(typed.lower()):
                yield Completion(name, -len(typed), display_meta=meta)

    def _commands(self, typed: str, dialogue: Dialogue | None) -> Iterable[Completion]:
        names: list[str] = list(dialogue.valid_commands()) if dialogue is not None else []
        caps = dialogue.capabilities if dialogue is not None else None
        if dialogue is not None and caps is not None:
            for name in _CAPABILITY_COMMANDS:
                if caps.has(name) and dialogue.allowed(name) and name not in names:
                    names.append(name)
        if dialogue is None:
            names = list(VALID_IN)
        upper = typed.upper()
        for name in names[:MAX_COMPLETIONS]:
            if name.startswith(upper):
                info = knowledge.command_info(name, self.lang)
                meta = info.summary if info is not None else ""
                shown = name if typed.isupper() or not typed else name.lower()
                yield Completion(shown, -len(typed), display=name, display_meta=meta)

    def _mechanisms(self, typed: str, dialogue: Dialogue) -> Iterable[Completion]:
        caps = dialogue.capabilities
        mechanisms = caps.sasl_mechanisms if caps is not None else ("PLAIN", "LOGIN")
        for mechanism in mechanisms[:MAX_COMPLETIONS]:
            if mechanism.startswith(typed.upper()):
                yield Completion(mechanism, -len(typed))

    def _numbers(self, typed: str, dialogue: Dialogue) -> Iterable[Completion]:
        known = set(dialogue.sizes)
        if dialogue.last_number:
            known.update(range(1, dialogue.last_number + 1))
        for number in sorted(known - dialogue.deleted)[:MAX_COMPLETIONS]:
            if str(number).startswith(typed):
                size = dialogue.sizes.get(number)
                meta = message("pop3_console", "octets", self.lang, size=size) if size else ""
                yield Completion(str(number), -len(typed), display_meta=meta)
