"""Which POP3 lines carry secrets, and how they look masked: PASS, APOP and SASL answers.

Built on `core.redaction`: the same mask and the same `SecretTracker`, so history,
transcripts and the raw view hide a POP3 password exactly as they hide an SMTP one. A PASS
line's whole argument is the password (RFC 1939 §7: spaces included); an APOP digest is not
the password but lets anyone replay the login against the same greeting, so it is hidden too.
"""

from __future__ import annotations

import re

from smtp_tutor.core import redaction
from smtp_tutor.core.pop3.dialogue import AUTH_RESPONSE, Sent

_PASS = re.compile(r"^(\s*PASS )(.+)$", re.IGNORECASE | re.DOTALL)
_APOP = re.compile(r"^(\s*APOP\s+\S+\s+)(\S+)(\s*)$", re.IGNORECASE)


def mask_line(line: str, *, auth_response: bool = False) -> str:
    """The line as it may be shown or stored: ``PASS ********``, ``APOP user ********``.

    ``auth_response`` says the line answers a "+ " challenge: all of it is hidden (but a
    cancelling ``*``). AUTH lines are masked as SMTP's are; other lines come back unchanged.
    """
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    if auth_response:
        return redaction.mask(line)
    if match := _PASS.match(body):
        return f"{match.group(1)}{redaction.MASK}{ending}"
    if match := _APOP.match(body):
        return f"{match.group(1)}{redaction.MASK}{match.group(3)}{ending}"
    if re.match(r"\s*AUTH\b", body, re.IGNORECASE):
        return redaction.mask(line)
    return line


def sent_line(sent: Sent) -> str:
    """The text of a sent line (its wire bytes without CRLF), bytes the terminal had kept."""
    return sent.wire.removesuffix(b"\r\n").decode("utf-8", errors="surrogateescape")


def masked(sent: Sent) -> str:
    """What a console or transcript may show for a sent line."""
    return mask_line(sent_line(sent), auth_response=sent.verb == AUTH_RESPONSE)


def track(tracker: redaction.SecretTracker, sent: Sent, user: str | None = None) -> None:
    """Teach `tracker` the secret a sent line carried, so `redact` hides it everywhere.

    ``user`` is the USER name PASS belongs to (the dialogue's ``projected_user``): with it
    the tracker also knows the PLAIN blobs that would carry the same password.
    """
    if not sent.secret:
        return
    line = sent_line(sent)
    if match := _PASS.match(line):
        tracker.add_secret(match.group(2), user)
    elif match := _APOP.match(line):
        tracker.add_secret(match.group(2))
    else:  # AUTH with an initial response, or an answer to a challenge
        tracker.add_line(line)
