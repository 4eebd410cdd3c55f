"""The message typed after DATA: what was typed, what went out, and what `:fix` would change.

Every line typed after the 354 is kept here in order, exactly as typed. A line goes out
at once, as typed — unless the console found something it could rewrite in that line or
an earlier one still unsent (a raw non-ASCII header, a header line without a colon, a
space before the colon). Then the line and those after it are held back, never lost,
until the user acts: `:fix` applies the rewrites it shows, `:send` sends the held lines as
typed, and the final dot sends them as typed too. Nothing the user typed is changed
without `:fix`, and no question ever reads a line of the message.

Pure bookkeeping: the console does the sending and the talking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smtp_tutor.core.records import field, record

if TYPE_CHECKING:  # the lint (and the email package under it) loads with the first message
    from smtp_tutor.core.message_lint import LintFinding


@record(frozen=True)
class Rewrite:
    """What `:fix` would do to one held line of the message."""

    number: int  # the line's number in the message, from 1
    old: str
    new: str
    finding: LintFinding


@record
class Composer:
    """The lines of the message being typed and how many of them have gone out."""

    lines: list[str] = field(default_factory=list)
    sent: int = 0
    rewrites: dict[int, Rewrite] = field(default_factory=dict)

    def reset(self) -> None:
        self.lines.clear()
        self.sent = 0
        self.rewrites.clear()

    @property
    def held(self) -> list[str]:
        """The lines typed but not sent yet, in order."""
        return self.lines[self.sent :]

    @property
    def holding(self) -> bool:
        """True while a rewrite is on offer: new lines wait behind it."""
        return bool(self.rewrites)

    def add(self, line: str) -> int:
        """Keep one typed line; returns its number in the message."""
        self.lines.append(line)
        return len(self.lines)

    def check(self, *, smtputf8: bool, numbers: range | None = None) -> list[LintFinding]:
        """Lint the message so far; findings on the lines in `numbers` (default: the last).

        A finding with a fix for a line not sent yet becomes a rewrite on offer.
        """
        if not self.lines:
            return []
        from smtp_tutor.core.message_lint import lint_message

        wanted = numbers if numbers is not None else range(len(self.lines), len(self.lines) + 1)
        findings = lint_message(
            list(self.lines),
            envelope_from=None,
            recipients=[],
            eight_bit_mime=True,
            smtputf8=smtputf8,
        )
        found = [f for f in findings if f.line is not None and f.line in wanted]
        for finding in found:
            if finding.fix is not None and finding.line is not None and finding.line > self.sent:
                old = self.lines[finding.line - 1]
                if finding.fix != old:
                    self.rewrites[finding.line] = Rewrite(finding.line, old, finding.fix, finding)
        return found

    def can_fix(self, finding: LintFinding) -> bool:
        return finding.line is not None and finding.line in self.rewrites

    def ready(self) -> list[str]:
        """The lines that may go out now (none while a rewrite is on offer); marks them sent."""
        if self.rewrites:
            return []
        return self.release()

    def release(self) -> list[str]:
        """Every held line, as typed, for sending now; offers are withdrawn."""
        lines = self.lines[self.sent :]
        self.sent = len(self.lines)
        self.rewrites.clear()
        return lines

    def apply(self) -> list[Rewrite]:
        """`:fix`: rewrite the held lines on offer; returns what changed (then `release`)."""
        applied = [self.rewrites[number] for number in sorted(self.rewrites)]
        for rewrite in applied:
            self.lines[rewrite.number - 1] = rewrite.new
        self.rewrites.clear()
        return applied

    def drop(self) -> list[str]:
        """`:drop`: forget the held lines (the user's explicit act); returns them."""
        dropped = self.lines[self.sent :]
        del self.lines[self.sent :]
        self.rewrites.clear()
        return dropped
