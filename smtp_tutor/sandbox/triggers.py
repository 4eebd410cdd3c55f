"""Address triggers: deterministic failures chosen by the local part of an address.

The list itself is data (`smtp_tutor/data/sandbox_triggers.toml`); this module loads and
checks it, finds the trigger for an address, keeps the greylist memory, and renders the
human-readable list that `smtp-tutor serve --help` and the README show. Lessons rely on
these replies, so a malformed data file fails loudly at import, not during a lesson.
"""

from __future__ import annotations

import math
import re
import time
from functools import cache

from smtp_tutor.core.records import record
from smtp_tutor.data import load_toml

ACTIONS = frozenset({"reply", "greylist", "delay", "drop", "at_data"})
COMMANDS = frozenset({"MAIL", "RCPT"})
_REPLY = re.compile(r"^[245]\d\d [245]\.\d{1,3}\.\d{1,3} \S")
_NEEDS_REPLY = frozenset({"reply", "greylist", "at_data"})


@record(frozen=True)
class Trigger:
    local_part: str
    commands: tuple[str, ...]
    action: str
    reply: str
    explain: str

    def reply_for(self, address: str, seconds: float = 0) -> str:
        # str.replace, not str.format: an address may hold braces.
        return self.reply.replace("{address}", address).replace(
            "{seconds}", str(math.ceil(seconds))
        )


def _parse(data: dict[str, object]) -> tuple[Trigger, ...]:
    entries = data.get("trigger")
    if not isinstance(entries, list) or not entries:
        raise ValueError("sandbox_triggers.toml has no [[trigger]] entries")
    triggers = []
    for entry in entries:
        trigger = Trigger(
            local_part=str(entry["local_part"]).lower(),
            commands=tuple(entry["commands"]),
            action=str(entry["action"]),
            reply=str(entry.get("reply", "")),
            explain=str(entry["explain"]),
        )
        if trigger.action not in ACTIONS or not set(trigger.commands) <= COMMANDS:
            raise ValueError(f"sandbox trigger {trigger.local_part!r}: bad action or commands")
        if trigger.action in _NEEDS_REPLY and not _REPLY.match(trigger.reply):
            raise ValueError(f"sandbox trigger {trigger.local_part!r}: bad reply line")
        triggers.append(trigger)
    return tuple(triggers)


@cache
def load_triggers() -> tuple[Trigger, ...]:
    return _parse(load_toml("sandbox_triggers"))


@cache
def _trigger_index() -> dict[tuple[str, str], Trigger]:
    """(command, local part) -> trigger; asked several times for every message."""
    index: dict[tuple[str, str], Trigger] = {}
    for trigger in load_triggers():
        for command in trigger.commands:
            index.setdefault((command, trigger.local_part), trigger)  # the first one wins
    return index


def find_trigger(command: str, address: str) -> Trigger | None:
    """The trigger `address` fires in `command` ("MAIL" or "RCPT"), if any."""
    local_part = address.rpartition("@")[0] if "@" in address else address
    return _trigger_index().get((command, local_part.lower()))


def triggers_help(greylist_delay: float = 5, slow_delay: float = 5) -> str:
    """The trigger list as plain ASCII text, for --help, the README and lessons."""
    rows = []
    for trigger in load_triggers():
        code = " ".join(trigger.reply.split()[:2]) if trigger.reply else "-"
        if trigger.action == "delay":
            code = "250 2.1.5"
        explain = trigger.explain.replace("{greylist_delay}", f"{greylist_delay:g}").replace(
            "{slow_delay}", f"{slow_delay:g}"
        )
        for command in trigger.commands:
            verb = "MAIL FROM" if command == "MAIL" else "RCPT TO"
            rows.append((f"{verb}:<{trigger.local_part}@...>", code, explain))
    width = max(len(shown) for shown, _, _ in rows)
    lines = [
        "Address triggers (the part before @ picks the reply; any domain works):",
        *(f"  {shown:<{width}}  {code:<9}  {explain}" for shown, code, explain in rows),
        "Every other address is accepted and stored in the sandbox Maildir; nothing is relayed.",
    ]
    return "\n".join(lines)


TRIGGERS_HELP: str = triggers_help()


class Greylist:
    """Remembers (client IP, sender, recipient) triples, as a greylisting server does.

    The first attempt is refused; a retry once `delay` seconds have passed is accepted,
    from any connection, and the triple stays accepted afterwards.
    """

    MAX_ENTRIES = 10_000  # a sandbox does not need more; forgets the oldest beyond it

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._first_seen: dict[tuple[str, str, str], float] = {}

    def forget(self) -> None:
        """Start afresh (a lesson restarted): every triple is refused once again."""
        self._first_seen.clear()

    def wait_left(self, client: str, sender: str, recipient: str) -> float:
        """Seconds the client must still wait; 0 means accept now."""
        triple = (client, sender.lower(), recipient.lower())
        now = time.monotonic()
        first = self._first_seen.get(triple)
        if first is None:
            if len(self._first_seen) >= self.MAX_ENTRIES:
                del self._first_seen[next(iter(self._first_seen))]
            self._first_seen[triple] = now
            return max(self.delay, 1e-9)  # the first attempt is always refused
        return max(0.0, first + self.delay - now)
