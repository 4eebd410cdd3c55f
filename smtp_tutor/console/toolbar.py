"""The bottom toolbar: server, TLS, who is logged in, the phase, and the next step in one line.

A pure function of the session's state, so it is tested without a terminal and can never
block typing: prompt_toolkit calls it on every redraw. Not all its words are ours (the host
may come from an MX record, the user name from an AUTH answer, the goal from a lesson file),
so every piece is shown through `core.safe_text.visible`: nothing in it steers the terminal.
"""

from __future__ import annotations

from smtp_tutor.console.render import Fragments, phase_name
from smtp_tutor.core.catalogue import message
from smtp_tutor.core.dialogue import Dialogue
from smtp_tutor.core.hints import next_step
from smtp_tutor.core.records import record
from smtp_tutor.core.safe_text import visible


@record(frozen=True)
class ToolbarState:
    server: str  # host:port
    dialogue: Dialogue | None
    lang: str = "en"
    manual: bool = False
    raw: bool = False
    lesson: str | None = None  # in a lesson: "step 2/5: <goal>" replaces the hint


def toolbar_fragments(state: ToolbarState) -> Fragments:
    return [(style, visible(text)) for style, text in _fragments(state)]


def _fragments(state: ToolbarState) -> Fragments:
    lang = state.lang
    dialogue = state.dialogue
    fragments: Fragments = [("class:bottom-toolbar", f" {state.server} ")]
    if dialogue is None:
        return fragments
    if dialogue.tls_active:
        fragments.append(("class:toolbar.tls", f" {dialogue.tls_version or 'TLS'} "))
    else:
        fragments.append(("class:toolbar.plain", f" {message('console', 'toolbar_plain', lang)} "))
    if dialogue.authenticated:
        user = message("console", "toolbar_user", lang, user=dialogue.authenticated_user or "?")
    else:
        user = message("console", "toolbar_no_auth", lang)
    fragments.append(("class:bottom-toolbar", f" {user} "))
    fragments.append(("class:toolbar.phase", f" {phase_name(dialogue.phase_label, lang)} "))
    for flag, key in ((state.manual, "toolbar_manual"), (state.raw, "toolbar_raw")):
        if flag:
            fragments.append(("class:bottom-toolbar", f"[{message('console', key, lang)}] "))
    hint = state.lesson or message("hints", f"{next_step(dialogue, state.manual)}.short", lang)
    fragments.append(("class:toolbar.hint", f" {hint} "))
    return fragments


def prompt_label(dialogue: Dialogue | None, asking: str | None = None) -> str:
    """The prompt shows the phase: smtp>, data>, auth>, or what an AUTH prompt asks for."""
    if asking:
        return f"{asking}> "
    if dialogue is not None and dialogue.sending_data:
        return "data> "
    if dialogue is not None and dialogue.awaiting_auth_response:
        return "auth> "
    return "smtp> "
