"""A transcript read by the `Dialogue`: which command each ``S:`` reply answers, and when.

Replay's planner and the sequence diagram do not work SMTP state out on their own: they walk
a `Script` through a `TranscriptDialogue`, which drives one real `Dialogue` per connection
and hands back what it says — the `Sent` of every ``C:`` line (its verb, or whether it is an
AUTH answer or message text, and its wire bytes) and the `Outcome` of every ``S:`` reply
(what it answers, the phase before and after, an AUTH challenge, authentication).

How a script becomes dialogue events:

* ``C:`` lines go to `Dialogue.send` as written (a line with a placeholder as its template
  text: the verb is what matters, never the secret). BDAT chunk data is bytes, not lines:
  the dialogue sees the BDAT command and its reply, not the chunk.
* A script that starts with a ``C:`` line is replayed after the server's greeting, which it
  does not write down: the dialogue is given a 220 first, so the first reply in the script
  answers the first command, as it does on the wire.
* ``S:`` expectations become a `Reply` of their lines, with a code chosen as below.
* ``@connect`` starts a new `Dialogue`, with TLS from the first byte when it says ``tls``;
  ``@closed`` is `Dialogue.connection_lost`, and what follows it is a new connection;
  ``@tls`` is `Dialogue.tls_established` — or, before the greeting, the handshake of an
  implicit-TLS connection (`Dialogue.tls_at_connect`). ``@time`` says nothing to it.

The code of a stand-in reply (`stand_in_code`): an expectation may name a class or nothing.

* ``S: 250``: that code.
* ``S: 3xx``: the first code of that class the answered command expects (`EXPECTED_CODES`):
  354 for DATA, 334 for AUTH and its answers, 221 for QUIT's 2xx …; else ``N50`` (250, 350,
  450, 550), which no command expects and which therefore moves no phase.
* ``S: *`` (any reply): 334 after AUTH or an AUTH answer — a ``*`` there may be a challenge,
  and the line after a challenge is then taken for a credential, never for a command (the
  diagram masks it) — otherwise 250. The transcript's own reader never starts message
  content after ``S: *``; 250 keeps the dialogue out of DATA too.
"""

from __future__ import annotations

from collections.abc import Iterator

from smtp_tutor.core.dialogue import (
    AUTH_RESPONSE,
    EXPECTED_CODES,
    GREETING,
    Dialogue,
    Outcome,
    Phase,
    Sent,
)
from smtp_tutor.core.replies import Reply, make_reply
from smtp_tutor.core.transcript import Directive, Expect, Item, Script, Send

__all__ = ["TranscriptDialogue", "dialogue_line", "stand_in_code"]

#: The greeting a script that starts with a C: line does not write down.
_UNWRITTEN_GREETING = make_reply(220)
_AUTH_VERBS = frozenset({"AUTH", AUTH_RESPONSE})
_AWAITING_GREETING = Phase.AWAITING_GREETING  # read once: the hot path runs per line


def stand_in_code(expect: Expect, answering: str | None) -> int:
    """The code a `Dialogue` is given for `expect`, a reply to the verb `answering`."""
    if expect.code is not None:
        return expect.code
    if expect.code_class is None:  # "S: *"
        return 334 if answering in _AUTH_VERBS else 250
    digit = int(expect.code_class[0])
    for code in EXPECTED_CODES.get(answering or "", ()):
        if code // 100 == digit:
            return code
    return digit * 100 + 50


def dialogue_line(send: Send) -> str:
    """The text a `Dialogue` is told: the line itself, or its template if it has placeholders."""
    parts = send.parts
    if not parts:
        return ""
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    return send.text


class TranscriptDialogue:
    """A `Dialogue` driven by the items of a script, one connection after another."""

    def __init__(self) -> None:
        self.dialogue = Dialogue()
        self._disconnected = False  # after @closed: the next line is a new connection
        # A long script repeats its replies (250, 354 …): each stand-in is made once.
        self._replies: dict[tuple[int, tuple[str, ...]], Reply] = {}

    def walk(self, script: Script) -> Iterator[tuple[Item, Sent | Outcome | None]]:
        """Each item with what the dialogue made of it (None: BDAT chunk data, a directive)."""
        for item in script.items:
            if isinstance(item, Send):
                yield item, self.send(item)
            elif isinstance(item, Expect):
                yield item, self.receive(item)
            else:
                self.directive(item)
                yield item, None

    def send(self, send: Send, line: str | None = None) -> Sent | None:
        """Tell the dialogue a C: line is on the wire; None for BDAT chunk data.

        `line` is what the dialogue sees (`dialogue_line`), for a caller that has it already.
        """
        if send.chunk is not None:
            return None
        dialogue = self.dialogue
        if self._disconnected or dialogue.phase is _AWAITING_GREETING:
            dialogue = self._current()
            if dialogue.phase is _AWAITING_GREETING and dialogue.greeting is None:
                dialogue.receive(_UNWRITTEN_GREETING)
        return dialogue.send(dialogue_line(send) if line is None else line)

    def receive(self, expect: Expect) -> Outcome:
        """Hand the dialogue a stand-in for an S: reply; its outcome says what it answered."""
        code = expect.code
        if code is None:
            code = stand_in_code(expect, self.waiting_for())
        key = (code, expect.lines)
        reply = self._replies.get(key)
        if reply is None:
            reply = self._replies[key] = make_reply(code, *expect.lines)
        if self._disconnected:
            self._current()
        return self.dialogue.receive(reply)

    def waiting_for(self) -> str | None:
        """The verb the next reply answers (a pseudo-verb for the greeting …), None: nothing."""
        dialogue = self.dialogue
        if self._disconnected or (
            dialogue.phase is _AWAITING_GREETING and dialogue.greeting is None
        ):
            return GREETING
        in_flight = dialogue.in_flight
        return in_flight[0].verb if in_flight else None

    def directive(self, directive: Directive) -> None:
        name = directive.name
        if name == "connect":
            self.dialogue = Dialogue()
            self._disconnected = False
            if len(directive.args) == 3:  # "@connect HOST PORT tls"
                self.dialogue.tls_at_connect()
        elif name == "closed":
            self.dialogue.connection_lost()
            self._disconnected = True
        elif name == "tls":
            version, cipher = [None if a == "?" else a for a in (*directive.args, "?", "?")[:2]]
            dialogue = self._current()
            if dialogue.phase is _AWAITING_GREETING:
                dialogue.tls_at_connect(version, cipher)
            else:
                dialogue.tls_established(version, cipher)

    def _current(self) -> Dialogue:
        if self._disconnected:
            self.dialogue = Dialogue()
            self._disconnected = False
        return self.dialogue
