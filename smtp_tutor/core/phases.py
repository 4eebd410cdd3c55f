"""The phases of an SMTP session seen from the client: the words the verb table is written in.

`core.dialogue` moves a session through them; `data/verbs.toml` says, per verb, in which of
them it may be sent and which one its success leads to. They live here, below both, so the
table's loader can check its phase names without importing the state machine.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    AWAITING_GREETING = "awaiting-greeting"
    GREETED = "greeted"
    READY = "ready"  # EHLO or HELO accepted
    MAIL = "mail"  # MAIL FROM accepted: inside a transaction
    RCPT = "rcpt"  # at least one recipient accepted
    DATA = "data"  # 354 received: lines are message text until "."
    CLOSED = "closed"
