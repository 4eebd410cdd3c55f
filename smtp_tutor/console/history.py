"""A command history file that never holds a credential or a message line.

Why a prefix filter is not enough for SMTP: AUTH LOGIN sends the base64 user name and
password as bare continuation lines, and PLAIN, CRAM-MD5 and XOAUTH2 responses are bare
base64 lines too; nothing in such a line says it is secret. Only the state of the dialogue
does. So the file is guarded in layers, any one of which refuses a line:

1. The console says what kind of line the prompt is reading (`expect`); only typed SMTP
   commands and console commands are ever stored. The console also reads credentials and
   DATA lines through a separate prompt session with no history at all.
2. The dialogue: nothing typed while the server waits for an AUTH answer or while the
   message text is being sent is stored.
3. The secret tracker: a line that contains any form of a password or token used in this
   session (the password, its base64, PLAIN/XOAUTH2 blobs, a whole response line) is refused,
   which catches a password typed at the wrong prompt after it was used.
4. Rules that need no state, applied again when the file is loaded:
   * ``AUTH <mechanism> <initial-response>`` is not stored at all, not even with the
     response cut off: nothing derived from a line that carried a credential reaches the
     disk, and a mistyped line cannot fool a parser into keeping the secret part.
     ``AUTH PLAIN`` alone is stored.
   * ``:b64`` and ``:unb64`` are not stored: their argument is usually a credential.
   * A line that is a single word and not a known verb is not stored: that is what a
     password typed at the wrong prompt looks like. With a dialogue, any line whose verb is
     neither a known verb nor an advertised EHLO keyword (XCLIENT …) is refused too.
5. A pasted block of several lines is cut after its first AUTH, DATA or BDAT line — a verb
   the verb table says is `followed_by` something that is not a command: what follows is
   an AUTH answer or message text.

A refused line is kept neither on disk nor in memory (so Up never shows it). The file is
prompt_toolkit's own format, created 0600 in a 0700 directory; a file with a looser mode is
tightened. Errors writing the file are recorded in `error`, never raised: losing history
must not stop a session.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from prompt_toolkit.history import FileHistory

from smtp_tutor.core.command_line import KNOWN_VERBS, parse_command
from smtp_tutor.core.dialogue import Capabilities
from smtp_tutor.core.redaction import SecretTracker
from smtp_tutor.core.verbs import verbs
from smtp_tutor.paths import ensure_private_dir, state_dir

__all__ = [
    "STORABLE_KINDS",
    "HistoryDialogue",
    "LineKind",
    "SafeFileHistory",
    "default_history_path",
    "stateless_refusal",
]

_FILE_MODE = 0o600
_SECRET_CONSOLE_COMMANDS = frozenset({":b64", ":unb64"})
#: Verbs after which the next lines of a pasted block are AUTH answers or message text.
_BLOCK_ENDERS = frozenset(name for name, row in verbs().items() if row.followed_by)


class LineKind(StrEnum):
    """What the prompt is reading; the console knows, the history cannot guess."""

    COMMAND = "command"  # an SMTP command at the smtp> prompt
    CONSOLE = "console"  # a :command
    AUTH_RESPONSE = "auth-response"  # an answer to a 334 challenge, typed by hand
    CREDENTIAL = "credential"  # a user name, password or token for the AUTH helper
    DATA = "data"  # message text between DATA and "."


STORABLE_KINDS = frozenset({LineKind.COMMAND, LineKind.CONSOLE})


class HistoryDialogue(Protocol):
    """What the history reads from the session; `core.dialogue.Dialogue` provides it."""

    @property
    def awaiting_auth_response(self) -> bool: ...

    @property
    def sending_data(self) -> bool: ...

    @property
    def capabilities(self) -> Capabilities | None: ...


def default_history_path() -> Path:
    return state_dir() / "history"


def stateless_refusal(line: str) -> str | None:
    """Why one line must never be stored whatever the state, or None if it may be."""
    stripped = line.strip()
    if not stripped:
        return "empty"
    words = stripped.split()
    first = words[0].lower()
    if first.startswith(":") and not first.startswith("::"):
        return "b64 argument" if first in _SECRET_CONSOLE_COMMANDS else None
    verb = parse_command(stripped).verb
    if verb == "AUTH" and len(words) > 2:
        return "AUTH initial response"
    if len(words) == 1 and verb not in KNOWN_VERBS:
        return "single unknown word"
    return None


class SafeFileHistory(FileHistory):
    """prompt_toolkit's `FileHistory`, minus every line that could carry a secret.

    `tracker` is the console's live `SecretTracker`; `dialogue` returns the current
    session's dialogue (None when not connected), so a reconnect needs no new history.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        tracker: SecretTracker | None = None,
        dialogue: Callable[[], HistoryDialogue | None] | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else default_history_path()
        super().__init__(str(self.path))
        self.tracker = tracker
        self.dialogue = dialogue
        self.kind = LineKind.COMMAND
        self.error: OSError | None = None
        self._prepare()

    # -- the gate ----------------------------------------------------------------------

    def expect(self, kind: LineKind) -> None:
        """Tell the history what the lines typed from now on are (until told otherwise)."""
        self.kind = kind

    def refusal(self, line: str) -> str | None:
        """Why this (single) line must not be stored now, or None if it may be."""
        if self.kind not in STORABLE_KINDS:
            return f"kind {self.kind.value}"
        try:
            dialogue = self.dialogue() if self.dialogue is not None else None
        except Exception:  # the state is unknown: assume the worst
            return "dialogue unavailable"
        if dialogue is not None:
            if dialogue.awaiting_auth_response:
                return "typed while the server waits for an AUTH answer"
            if dialogue.sending_data:
                return "message text"
        reason = stateless_refusal(line)
        if reason is not None:
            return reason
        if self._carries_secret(line):
            return "contains a secret used in this session"
        if dialogue is not None and not line.lstrip().startswith(":"):
            verb = parse_command(line).verb
            caps = dialogue.capabilities
            if verb not in KNOWN_VERBS and not (caps is not None and caps.has(verb)):
                return "unknown verb"
        return None

    def admit(self, string: str) -> str | None:
        """The part of a typed entry that may be stored, or None for nothing.

        One line is stored whole or not at all; a pasted block keeps its lines up to the
        first refused one, and ends after an AUTH, DATA or BDAT line.
        """
        kept: list[str] = []
        for line in string.split("\n"):
            if self.refusal(line) is not None:
                break
            kept.append(line)
            if parse_command(line).verb in _BLOCK_ENDERS:
                break
        return "\n".join(kept) if kept else None

    def append_string(self, string: str) -> None:
        admitted = self.admit(string)
        if admitted is not None:
            super().append_string(admitted)

    # -- the file ----------------------------------------------------------------------

    def load_history_strings(self) -> Iterable[str]:
        try:
            strings = list(super().load_history_strings())
        except OSError as error:
            self.error = error
            return []
        # A file written by an older version, or edited by hand, may hold what we refuse.
        return [s for s in strings if all(stateless_refusal(x) is None for x in s.split("\n"))]

    def store_string(self, string: str) -> None:
        # Filtered here too: a wrapper such as ThreadedHistory calls this, not append_string.
        admitted = self.admit(string)
        if admitted is None:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _FILE_MODE)
            with os.fdopen(fd, "ab") as f:
                self._tighten()
                text = f"\n# {datetime.datetime.now()}\n"
                text += "".join(f"+{line}\n" for line in admitted.split("\n"))
                f.write(text.encode("utf-8", errors="replace"))
        except OSError as error:
            self.error = error

    # -- internals ---------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create the directory 0700 and the file 0600 now, before anything is typed."""
        try:
            ensure_private_dir(self.path.parent)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _FILE_MODE)
            os.close(fd)
            self._tighten()
        except OSError as error:
            self.error = error

    def _tighten(self) -> None:
        if os.name == "nt":  # pragma: no cover - no POSIX modes there
            return
        mode = self.path.stat().st_mode & 0o777
        if mode & ~_FILE_MODE:
            os.chmod(self.path, _FILE_MODE)

    def _carries_secret(self, line: str) -> bool:
        tracker = self.tracker
        if tracker is None:
            return False
        if tracker.is_secret(line):
            return True
        return any(form in line for form in tracker.forms)
