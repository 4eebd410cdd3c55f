"""What to do next, from where the dialogue stands: the key of a hint in `data/hints.toml`.

The choice is pure logic over the `Dialogue`; the words (a one-line hint for the toolbar and
a longer one for `:hint`) are data a teacher can edit and translate, and which EHLO keyword
offers STARTTLS or AUTH is the verb table's (`data/verbs.toml`).
"""

from __future__ import annotations

from smtp_tutor.core.dialogue import Capabilities, Dialogue, Phase
from smtp_tutor.core.verbs import verbs


def next_step(dialogue: Dialogue, manual: bool = False) -> str:
    """The hint key for the current state."""
    phase = dialogue.phase
    if phase is Phase.CLOSED:
        return "closed"
    if dialogue.tls_pending:
        return "tls_pending"
    if dialogue.awaiting_auth_response:
        return "auth_manual" if manual else "auth_answer"
    if dialogue.in_flight and phase is not Phase.DATA:
        return "waiting"
    if phase is Phase.AWAITING_GREETING:
        return "awaiting_greeting"
    if dialogue.service_refused:
        return "service_refused"
    if phase is Phase.GREETED:
        return "ehlo_again" if dialogue.tls_active else "ehlo"
    if phase is Phase.READY:
        return _ready_hint(dialogue)
    if phase is Phase.MAIL:
        return "rcpt"
    if phase is Phase.RCPT:
        return "rcpt_or_data"
    if phase is Phase.DATA:
        return "data_end_reply" if not dialogue.sending_data else "data"
    return "ehlo"  # pragma: no cover - every phase is handled above


def _ready_hint(dialogue: Dialogue) -> str:
    caps = dialogue.capabilities
    if dialogue.said_hello == "HELO":
        return "mail_after_helo"
    if _offered(caps, "STARTTLS") and not dialogue.tls_active:
        return "starttls"
    if _offered(caps, "AUTH") and not dialogue.authenticated:
        return "auth"
    return "mail"


def _offered(caps: Capabilities | None, verb: str) -> bool:
    """Whether the server advertised the extension that `verb` needs."""
    return caps is not None and caps.has(verbs()[verb].extension)
