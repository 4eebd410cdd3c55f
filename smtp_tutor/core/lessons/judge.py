"""Judging a step: whether what the student just did is what the step asks for.

This is the part of the engine a running lesson calls after every reply, kept apart from
reading files. The console runner owns the session and hands ``verdict`` an ``Observation``
of what happened; the step's kind (``kinds``) says whether the line judged is the step's and
whether the code passes. Checks are by reply code or class only, never by reply text. The engine's
own words (verdict reasons, answer labels) live in ``smtp_tutor/data/lessons_ui.toml``;
lesson texts live in the lesson file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from smtp_tutor.core.catalogue import message
from smtp_tutor.core.lessons.kinds import kind_of
from smtp_tutor.core.lessons.model import UI, Step, language_chain


@dataclass(frozen=True)
class Observation:
    """What happened when the student did something during a step; built by the runner."""

    line: str  # the command line sent (auth: the AUTH line; message: "")
    code: int | str | None  # the reply code that decides the step (a kind may use words)
    tls: bool = False
    authenticated: bool = False
    delivered: bool = False  # a new message was stored in the sandbox during this step
    headers: frozenset[str] = frozenset()  # lower-case header names of that message
    defects: int = 0  # defects Python's email parser found in it
    multiline: bool | None = None  # POP3: the response carried lines ended by "." (None: SMTP)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""  # an id under [reason] in lessons_ui.toml; "" when ok
    params: Mapping[str, str] = field(default_factory=dict)


def verdict(step: Step, obs: Observation) -> Verdict:
    """Whether the step is done; if not, the first reason why (the runner adds the goal)."""
    kind = kind_of(step)
    if not kind.judges(step, obs.line):
        return Verdict(False, "wrong_command")
    if not kind.code_matches(step.expect, obs.code):
        got = "—" if obs.code is None else str(obs.code)
        return Verdict(False, "wrong_code", {"got": got, "want": ", ".join(step.expect)})
    own = kind.extra_reason(step, obs.multiline)
    if own is not None:
        return Verdict(False, own)
    state = step.state
    for wanted, actual, missing, unwanted in (
        (state.tls, obs.tls, "not_tls", "tls_unexpected"),
        (state.authenticated, obs.authenticated, "not_authenticated", "authenticated_unexpected"),
        (state.delivered, obs.delivered, "not_delivered", "delivered_unexpected"),
    ):
        if wanted is not None and wanted != actual:
            return Verdict(False, kind.reason(missing if wanted else unwanted))
    if state.headers or state.no_defects is not None:
        if not obs.delivered:
            return Verdict(False, "not_delivered")
        present = {h.lower() for h in obs.headers}
        for header in state.headers:
            if header.lower() not in present:
                return Verdict(False, "missing_header", {"header": header})
        if state.no_defects and obs.defects:
            return Verdict(False, "defects", {"count": str(obs.defects)})
        if state.no_defects is False and not obs.defects:
            return Verdict(False, "defects_expected")
    return Verdict(True)


def render_reason(result: Verdict, lang: str) -> str:
    """The reason in words; "" for a passed step."""
    if result.ok:
        return ""
    return message(UI, f"reason.{result.reason}", lang, **result.params)


def _hints(step: Step, lang: str) -> tuple[tuple[str, ...], bool]:
    for position, language in enumerate(language_chain(lang)):
        if step.hints.get(language):
            return step.hints[language], position == 0
    return (), True


def format_solution(step: Step, lang: str) -> str:
    """The step's answer, laid out as what to type at the console's prompts."""
    lines = [message(UI, "answer_intro", lang)]
    notes = kind_of(step).answer_notes(step)
    for number, line in enumerate(step.solution):
        if number in notes:
            lines.append("  " + message(UI, notes[number], lang))
        lines.append("    " + (line if line else message(UI, "answer_empty_line", lang)))
    return "\n".join(lines)


def hint_text(step: Step, level: int, lang: str) -> tuple[str, int]:
    """(text, next level): the step's hints in order, then its goal, then the full answer.

    The last level repeats. A text that fell back to English carries the "not translated"
    note already, as the runner's other texts do.
    """
    hints, hints_translated = _hints(step, lang)
    goal, goal_translated = step.goal.get(lang)
    levels = [(hint, hints_translated) for hint in hints]
    levels += [(goal, goal_translated), (format_solution(step, lang), True)]
    last = len(levels) - 1
    level = min(max(level, 0), last)
    text, translated = levels[level]
    if not translated:
        text = f"{message(UI, 'not_translated', lang)}\n{text}"
    return text, min(level + 1, last)
