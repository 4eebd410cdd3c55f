"""A lesson's POP3 solution played on paper: the real state table, answers the lesson expects.

The file checker cannot reach a server, but it can ask the POP3 core what a server would
make of each solution line. A `Rehearsal` drives a real `core.pop3.Dialogue` through the
lesson's steps, feeding it the answer each step expects (+OK unless the step expects -ERR),
and runs the POP3 checker before every line. An error the checker predicts for a line
meant to succeed (STAT before the login, PASS before USER, STLS after it, RETR of a message
marked with DELE, a command after QUIT) is a mistake in the lesson, reported at its step.
A line the step expects to fail may break a rule: that is what such a step teaches.
"""

from __future__ import annotations

from smtp_tutor.core.pop3.checker import check
from smtp_tutor.core.pop3.dialogue import Dialogue, State
from smtp_tutor.core.pop3.responses import Expect, Status, make_response

#: What a rehearsed server answers; none of it is shown, only the status matters.
_GREETING = b"+OK rehearsal ready\r\n"


class Rehearsal:
    """One lesson's POP3 session on paper, from the greeting on."""

    def __init__(self) -> None:
        self.dialogue = self._connect()

    @staticmethod
    def _connect() -> Dialogue:
        dialogue = Dialogue()
        dialogue.receive(_GREETING)
        return dialogue

    def reconnect(self) -> None:
        """A new connection: a fresh session in AUTHORIZATION, as `:reconnect` opens."""
        self.dialogue = self._connect()

    def send(self, line: str, status: Status, more: bool = False) -> list[str]:
        """Play one line answered with `status`; the problems a meant-to-pass line has.

        `more`: other lines of the same step follow, so an AUTH without an initial
        response is answered with a challenge ("+ ") that the next line answers.
        """
        if line.startswith(":"):
            return []  # a console command (":reconnect" has its own step kind)
        dialogue = self.dialogue
        problems: list[str] = []
        if status is Status.OK:
            errors = [f for f in check(line, dialogue) if f.severity == "error"]
            problems += [f"solution line {line!r}: {f.text('en')}" for f in errors[:1]]
        if dialogue.state in (State.CLOSED, State.UPDATE):
            return problems  # nothing more happens on this connection
        try:
            sent = dialogue.send(line)
        except ValueError:  # CR or LF: the file checker has said so already
            return problems
        if sent.expect is Expect.SASL and more:
            dialogue.receive(make_response(Status.CONTINUE).raw)
            return problems
        body = b"" if sent.expect is Expect.MULTILINE and status is Status.OK else None
        outcomes = dialogue.receive(make_response(status, "", body).raw)
        if any(outcome.start_tls for outcome in outcomes):
            dialogue.tls_established()
        return problems
