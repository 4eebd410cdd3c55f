"""POP3 on screen: pure functions from a response or the dialogue's state to fragments.

The POP3 console's protocol-specific rendering, beside `render` (SMTP's) and built from its
parts: the same style, marks and wrapping, the same `safe_text` rule (a server's bytes never
steer the terminal). A multiline response is one block: its status line coloured by the
POP3 lexer, its lines as they came (byte-stuffing and the final "." included), cut after
`BODY_LINES` with a note. Hints, the toolbar and the prompt read the dialogue only.
"""

from __future__ import annotations

from dataclasses import dataclass

from smtp_tutor.console.render import (
    REPLY_MARK,
    VERBATIM_MARK,
    Fragments,
    _mark_lines,
    _visible_text,
)
from smtp_tutor.core.catalogue import localize, message
from smtp_tutor.core.pop3 import knowledge
from smtp_tutor.core.pop3.dialogue import AUTH_RESPONSE, Capabilities, Dialogue, Outcome, State
from smtp_tutor.core.pop3.responses import Response, Status
from smtp_tutor.core.safe_text import visible
from smtp_tutor.lexer import highlight_pop3_fragments

CATALOGUE = "pop3_console"

#: Lines of a multiline body shown; the rest is counted (`:raw` shows every byte).
BODY_LINES = 60


def note(key: str, lang: str, style: str = "class:notice", /, **params: object) -> Fragments:
    """One POP3 console message from `data/pop3_console.toml`, as a line."""
    return [(style, message(CATALOGUE, key, lang, **params) + "\n")]


def response_fragments(
    response: Response, latency: float | None, lang: str, body_lines: int = BODY_LINES
) -> Fragments:
    """A response as one block: the status line highlighted, its body lines as they came."""
    lines = response.raw.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    head = _visible_text(lines[0] if lines else "")
    fragments = _mark_lines(highlight_pop3_fragments(head + "\n"), REPLY_MARK)
    if latency is not None:
        style, last = fragments[-1]
        fragments[-1] = (style, last[:-1])
        fragments += [("class:latency", f"  ({latency * 1000:.0f} ms)"), ("", "\n")]
    body = lines[1:]
    shown = body if len(body) <= body_lines + 1 else body[:body_lines]
    for line in shown:
        text = _visible_text(line)
        fragments += [VERBATIM_MARK, ("class:pop3.body", text)] if text else []
        fragments.append(("", "\n"))
    if len(shown) < len(body):
        fragments += note("body_more", lang, "class:explain", more=len(body) - len(shown))
    if response.is_continuation:
        fragments += _challenge_fragments(response, lang)
    for problem in response.problems:
        fragments += note("malformed", lang, "class:malformed", problem=localize(problem, lang))
    return fragments


def _challenge_fragments(response: Response, lang: str) -> Fragments:
    exp = knowledge.explain_pop3(response.status_line, lang)
    return [("class:decoded", f"  ↳ {visible(text)}\n") for text in exp.notes]


def explanation_fragments(outcome: Outcome, lang: str) -> Fragments:
    """Under a -ERR: what it means, its [CODE], and what it usually means after this command."""
    response = outcome.response
    if response.status is not Status.ERR:
        return []
    info = knowledge.status_info(Status.ERR, lang)
    fragments: Fragments = [("class:explain", f"  ↳ -ERR {info.title}: {info.next_step}\n")]
    if response.code:
        code = knowledge.code_info(response.code, lang)
        if code is not None:
            fragments.append(("class:explain", f"  ↳ [{code.code}] {code.title}: {code.meaning}\n"))
    answered = outcome.answered
    verb = answered.verb if answered is not None else None
    if verb == AUTH_RESPONSE:
        verb = "AUTH"
    command = knowledge.command_info(verb, lang) if verb else None
    if command is not None and command.err:
        fragments.append(("class:explain", f"  ↳ {command.name}: {command.err}\n"))
    return fragments


def next_step(dialogue: Dialogue | None) -> str:
    """The key of the hint for the next sensible command (`[hints]` in pop3_console.toml)."""
    if dialogue is None or dialogue.state is State.CLOSED:
        return "closed"
    if not dialogue.greeted:
        return "greeting"
    if dialogue.service_refused:
        return "refused"
    if dialogue.state is State.UPDATE:
        return "update"
    if dialogue.awaiting_auth_response:
        return "auth_answer"
    caps = dialogue.capabilities
    if dialogue.state is State.AUTHORIZATION:
        if dialogue.user:
            return "pass"
        if caps is None:
            return "capa"
        if not dialogue.tls_active and caps.has("STLS"):
            return "stls"
        return "user"
    if dialogue.message_count is None:
        return "stat"
    if dialogue.message_count and not dialogue.deleted:
        return "retr"
    return "quit"


def hint(dialogue: Dialogue | None, lang: str) -> str:
    return message(CATALOGUE, f"hints.{next_step(dialogue)}", lang)


@dataclass(frozen=True)
class Pop3ToolbarState:
    server: str
    dialogue: Dialogue | None
    lang: str = "en"
    raw: bool = False
    lesson: str | None = None  # in a lesson: "step 2/5: <goal>" replaces the hint


def toolbar_fragments(state: Pop3ToolbarState) -> Fragments:
    """Server, TLS, who is logged in, the RFC 1939 state and the next step, in one line."""
    lang, dialogue = state.lang, state.dialogue
    fragments: Fragments = [("class:bottom-toolbar", f" POP3 {state.server} ")]
    if dialogue is not None:
        if dialogue.tls_active:
            fragments.append(("class:toolbar.tls", f" {dialogue.tls_version or 'TLS'} "))
        else:
            plain = message("console", "toolbar_plain", lang)
            fragments.append(("class:toolbar.plain", f" {plain} "))
        if dialogue.authenticated_user or dialogue.state is State.TRANSACTION:
            user = dialogue.authenticated_user or "?"
            who = message("console", "toolbar_user", lang, user=user)
        else:
            who = message(CATALOGUE, "toolbar_not_logged_in", lang)
        fragments.append(("class:bottom-toolbar", f" {who} "))
        fragments.append(("class:toolbar.phase", f" {dialogue.state_label} "))
    if state.raw:
        fragments.append(("class:bottom-toolbar", f"[{message('console', 'toolbar_raw', lang)}] "))
    fragments.append(("class:toolbar.hint", f" {state.lesson or hint(dialogue, lang)} "))
    return [(style, visible(text)) for style, text in fragments]


def prompt_label(dialogue: Dialogue | None) -> str:
    """The prompt names the state: pop3> before login, pop3 trans> after, auth> in AUTH."""
    if dialogue is not None and dialogue.awaiting_auth_response:
        return "auth> "
    if dialogue is not None and dialogue.state is State.TRANSACTION:
        return "pop3 trans> "
    return "pop3> "


def caps_fragments(history: list[tuple[str, Capabilities]], server: str, lang: str) -> Fragments:
    """`:caps`: the last CAPA answer, each capability explained; changes since the one before."""
    if not history:
        return note("caps_none", lang, "class:finding.warning")
    label, caps = history[-1]
    fragments = note("caps_title", lang, "class:banner", server=server, context=label)
    for name, args in caps.entries.items():
        line = " ".join((name, *args))
        info = knowledge.capability_info(line, lang)
        summary = info.summary if info is not None else ""
        fragments.append(("class:pygments.name.attribute", f"    {visible(line)}"))
        fragments.append(("class:explain", f"  {summary}\n"))
        if info is not None and info.detail:
            for detail in info.detail.splitlines():
                fragments.append(("class:explain", f"        {visible(detail.strip())}\n"))
    if len(history) > 1:
        before_label, before = history[-2]
        fragments += note("caps_diff", lang, "class:notice", before=before_label, after=label)
        added = [n for n in caps.entries if n not in before.entries]
        gone = [n for n in before.entries if n not in caps.entries]
        for name in added:
            fragments.append(("class:tls.ok", f"    + {visible(name)}\n"))
        for name in gone:
            fragments.append(("class:finding.error", f"    - {visible(name)}\n"))
        if not added and not gone:
            fragments += note("caps_same", lang, "class:explain")
    return fragments
