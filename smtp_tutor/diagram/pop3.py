"""Sequence diagrams of POP3 transcripts: the SMTP diagram's rows and bands, POP3's words.

`Pop3Builder` walks a parsed `Pop3Script` and makes the same rows (arrows, notes) and bands
(TLS, logged in) that `sequence._Builder` makes for SMTP, so the one SVG renderer draws
both. Where the session stands comes from the POP3 core's `Dialogue`, fed the script as the
transcript parser feeds it: the RFC 1939 states are drawn as notes (AUTHORIZATION after the
greeting, TRANSACTION once a login succeeds — the band that follows — and UPDATE after
QUIT), +OK green and -ERR red. A multiline body is one arrow line per body line up to the
SMTP diagram's limit; a RETR'd message is summarised by its Subject. Secrets never show:
placeholders are drawn as written, a PASS, APOP digest or AUTH answer in clear as ``****``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from smtp_tutor.core.pop3.dialogue import Dialogue, State
from smtp_tutor.core.pop3.responses import Status, make_response
from smtp_tutor.core.pop3.transcript import Pop3Expect, Pop3Script
from smtp_tutor.core.transcript import Directive, Send

if TYPE_CHECKING:  # the renderer hands itself in (`build`): no import circle with it
    from types import ModuleType

    from smtp_tutor.diagram import sequence

_STATUS_COLOURS = {"+OK": "2xx", "-ERR": "5xx", "+": "3xx", "*": "any"}
_SECRET = re.compile(r"^(\s*(?:PASS|APOP\s+\S+|AUTH\s+\S+)\s+)(\S.*)$", re.IGNORECASE)


class Pop3Builder:
    """Rows and bands for a POP3 script, kept in the SMTP builder `sequence` renders."""

    def __init__(self, kit: ModuleType) -> None:
        self.kit = kit  # smtp_tutor.diagram.sequence
        self.drawn: sequence._Builder = kit._Builder()
        self.pop3 = Dialogue()

    def build_pop3(self, script: Pop3Script) -> sequence._Builder:
        drawn = self.drawn
        for item in script.items:
            if isinstance(item, Send):
                self.pop3_command(item)
            elif isinstance(item, Pop3Expect):
                self.pop3_reply(item)
            else:
                self.pop3_directive(item)
        drawn.close_band("auth")
        drawn.close_band("tls")
        return drawn

    def pop3_directive(self, item: Directive) -> None:
        if item.name == "connect":
            self.pop3 = Dialogue()
            if len(item.args) == 3:
                self.pop3.tls_at_connect()
        elif item.name == "tls":
            self.pop3.tls_established()
        self.drawn.directive(item)

    def pop3_command(self, send: Send) -> None:
        seq: Any = self.kit
        text = seq._send_text(send)
        answering = self.pop3.awaiting_auth_response
        sent = self.pop3.send(text.replace("\r", " ").replace("\n", " "))
        segments = seq._send_segments(send)
        if not send.placeholders and sent.secret:
            match = _SECRET.match(text)
            shown = match.group(1) + seq._MASK if match and not answering else seq._MASK
            segments = [(seq._visible(shown), "text"), ("  (secret in clear, not shown)", "dim")]
        plain = seq._plain(segments)
        self.drawn.rows.append(
            seq._Arrow(
                "command",
                [segments],
                f"line {send.line_no}: C: {plain}",
                seq._COMMAND,
                send.line_no,
                css="command",
            )
        )

    def pop3_reply(self, expect: Pop3Expect) -> None:
        seq: Any = self.kit
        drawn = self.drawn
        before = self.pop3.state
        greeting = not self.pop3.greeted
        verb = self.pop3.in_flight[0].verb if self.pop3.in_flight else ""
        name = _STATUS_COLOURS.get(expect.status, "any")
        colour = seq.COLOURS[name]
        status = expect.status
        head = f"{status} {seq._visible(expect.text)}".rstrip()
        lines: list[list[seq.Segment]] = [[(status, "code"), (head[len(status) :], "text")]]
        body = list(expect.body or ())
        if body and verb in ("RETR", "TOP"):
            content = [seq._unstuff(line) for line in body]
            label = seq._content_label(f"message: {len(content)} lines", content)
            lines.append([(label, "dim")])
        elif body:
            shown = body[: seq._MAX_REPLY_LINES - 1]
            lines += [[(seq._visible(line), "text")] for line in shown]
            if len(body) > len(shown):
                lines.append([(f"(+{len(body) - len(shown)} lines)", "dim")])
        tooltip = f"line {expect.line_no}: S: " + "\nS: ".join(
            [head, *(seq._visible(line) for line in body[: seq._TOOLTIP_MESSAGE_LINES])]
        )
        drawn.rows.append(
            seq._Arrow(
                "reply",
                lines,
                tooltip,
                colour,
                expect.line_no,
                css=f"reply r{name}",
                code=status,
                latency=drawn.pending_time,
            )
        )
        drawn.pending_time = None
        self._feed(expect)
        if greeting and self.pop3.greeted and not self.pop3.service_refused:
            note = seq._Note("state", "AUTHORIZATION: who are you?", expect.line_no)
            drawn.rows.append(note)
        self._state_notes(before, expect.line_no)

    def _feed(self, expect: Pop3Expect) -> None:
        seq: Any = self.kit
        kind = {"+OK": Status.OK, "-ERR": Status.ERR, "+": Status.CONTINUE}
        status = kind.get(expect.status, Status.OK)
        multiline = expect.multiline and status is Status.OK
        body = b"".join(
            seq._unstuff(line).encode("utf-8", "surrogateescape") + b"\r\n"
            for line in expect.body or ()
        )
        self.pop3.receive(make_response(status, expect.text, body if multiline else None).raw)

    def _state_notes(self, before: State, line_no: int) -> None:
        seq: Any = self.kit
        drawn = self.drawn
        after = self.pop3.state
        if before is after:
            return
        if after is State.TRANSACTION:
            drawn.close_band("auth")
            user = self.pop3.authenticated_user
            who = f"TRANSACTION: logged in as {seq._visible(user)}" if user else "TRANSACTION"
            drawn.open_band("auth", who, line_no)
        elif after is State.UPDATE:
            drawn.close_band("auth")
            drawn.rows.append(
                seq._Note("state", "UPDATE: the server removes what DELE marked", line_no)
            )


def build(script: Pop3Script, kit: ModuleType) -> sequence._Builder:
    """`kit` is `smtp_tutor.diagram.sequence` (it calls this with itself)."""
    return Pop3Builder(kit).build_pop3(script)


__all__ = ["Pop3Builder", "build"]
