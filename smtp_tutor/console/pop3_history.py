"""POP3 lines that never reach the history file or the screen: PASS, APOP, AUTH answers.

The SMTP history's layers (`console/history.py`) with POP3's rules: the console says what
kind of line the prompt reads; nothing typed while the server waits for an AUTH answer is
kept; a line holding a secret used in this session is refused; and, whatever the state,
`PASS …` (its whole argument is the password), `APOP user digest` (the digest replays the
login), `AUTH <mechanism> <initial response>`, `:b64`/`:unb64` and a lone word that is no
POP3 command (a password typed at the wrong prompt) are never stored. On screen, the same
secrets are masked character for character while typed (`MaskPop3Secrets`): the line still
goes to the server exactly as typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prompt_toolkit.history import FileHistory
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput

from smtp_tutor.console.history import SafeFileHistory
from smtp_tutor.core.pop3.command_line import parse_command

_SECRET_CONSOLE_COMMANDS = frozenset({":b64", ":unb64"})
# What is secret in a line, as (head kept, secret masked).
_SECRETS = (
    re.compile(r"^(\s*PASS )(.+)$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^(\s*APOP\s+\S+\s+)(\S.*)$", re.IGNORECASE),
    re.compile(r"^(\s*AUTH\s+\S+\s+)(\S.*)$", re.IGNORECASE),
)


def pop3_refusal(line: str) -> str | None:
    """Why one POP3 console line must never be stored whatever the state, or None."""
    stripped = line.strip()
    if not stripped:
        return "empty"
    words = stripped.split()
    first = words[0].lower()
    if first.startswith(":") and not first.startswith("::"):
        return "b64 argument" if first in _SECRET_CONSOLE_COMMANDS else None
    command = parse_command(stripped)
    if command.keyword in ("PASS", "APOP"):
        return f"{command.keyword} carries a secret"
    if command.keyword == "AUTH" and len(words) > 2:
        return "AUTH initial response"
    if not command.known:
        return "not a POP3 command"
    return None


class Pop3History(SafeFileHistory):
    """`SafeFileHistory` with the POP3 rules above (its own file: a line's meaning differs)."""

    def refusal(self, line: str) -> str | None:
        if self.kind.value not in ("command", "console"):
            return f"kind {self.kind.value}"
        try:
            dialogue = self.dialogue() if self.dialogue is not None else None
        except Exception:  # the state is unknown: assume the worst
            return "dialogue unavailable"
        if dialogue is not None and dialogue.awaiting_auth_response:
            return "typed while the server waits for an AUTH answer"
        reason = pop3_refusal(line)
        if reason is not None:
            return reason
        if self._carries_secret(line):
            return "contains a secret used in this session"
        return None

    def load_history_strings(self) -> Iterable[str]:
        try:
            strings = list(FileHistory.load_history_strings(self))
        except OSError as error:
            self.error = error
            return []
        return [s for s in strings if all(pop3_refusal(x) is None for x in s.split("\n"))]


def masked_line(text: str) -> str:
    """`text` as shown while typed: a password, APOP digest or initial response as asterisks."""
    for pattern in _SECRETS:
        match = pattern.match(text)
        if match is not None:
            return match.group(1) + "*" * len(match.group(2))
    return text


def masked_echo(text: str) -> str:
    """A line as a log may show it: the secret part as a fixed mask (its length hidden too)."""
    for pattern in _SECRETS:
        match = pattern.match(text)
        if match is not None:
            return match.group(1) + "********"
    return text


class MaskPop3Secrets(Processor):
    """Shows PASS's argument, an APOP digest and an AUTH initial response as asterisks."""

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        text = "".join(fragment[1] for fragment in ti.fragments)
        masked = masked_line(text)
        if masked == text:
            return Transformation(ti.fragments)
        style = ti.fragments[0][0] if ti.fragments else ""
        return Transformation([(style, masked)])
