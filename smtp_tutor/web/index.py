"""The messages the web view knows: the shared Maildir's, in memory, newest first on request.

Listing 1,000 messages must take milliseconds, so the envelopes are read from the log once at
start and each new message is added as the sandbox stores it (the session log tells the web
view, with the bytes). The subject and the parser's defects are worked out once per message,
lazily for those found at start. Who may see a message is its envelope's `accounts` (the
accounts it was filed to, sandbox/accounts.py); the teacher sees all.
"""

from __future__ import annotations

import collections
import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smtp_tutor.sandbox.activity import subject_of
from smtp_tutor.sandbox.storage import Mailbox, StoredMessage
from smtp_tutor.web.access import Viewer

__all__ = ["Entry", "MessageIndex"]

DEFECT_LIMIT = 20  # defect names listed per message


@dataclass
class Entry:
    key: str
    envelope: dict[str, Any]
    accounts: list[str]
    _subject: str | None = None
    _defects: list[str] | None = None
    _raw: bytes | None = field(default=None, repr=False)
    _summary: dict[str, Any] | None = field(default=None, repr=False)
    _json: str | None = field(default=None, repr=False)
    _event: bytes | None = field(default=None, repr=False)

    def visible_to(self, viewer: Viewer) -> bool:
        return viewer.teacher or (viewer.name is not None and viewer.name in self.accounts)

    def _work_out(self, mailbox: Mailbox) -> None:
        raw = self._raw
        if raw is None:
            try:
                raw = mailbox.get(self.key).raw
            except (KeyError, OSError):
                raw = b""
        self._subject = subject_of(raw)
        try:
            defects = StoredMessage(self.key, raw, self.envelope).defects
            self._defects = [type(d).__name__ for d in defects][:DEFECT_LIMIT]
        except Exception:  # a message the parser chokes on still gets listed
            self._defects = ["ParseError"]
        self._raw = None

    def summary(self, mailbox: Mailbox) -> dict[str, Any]:
        """What `GET /api/messages` lists for it (docs/api.md); made once, not to be changed."""
        if self._summary is None:
            self._summary = self._make_summary(mailbox)
        return self._summary

    def json(self, mailbox: Mailbox) -> str:
        """The summary as JSON (the list joins these: no encoding per request)."""
        if self._json is None:
            self._json = json.dumps(self.summary(mailbox), ensure_ascii=False)
        return self._json

    def event(self, mailbox: Mailbox) -> bytes:
        """The `message` event of the live stream: serialised once for every subscriber."""
        if self._event is None:
            data = json.dumps(self.summary(mailbox), ensure_ascii=True, separators=(",", ":"))
            self._event = f"event: message\ndata: {data}\n\n".encode("ascii")
        return self._event

    def changed(self) -> None:
        self._summary = self._json = self._event = None

    def _make_summary(self, mailbox: Mailbox) -> dict[str, Any]:
        if self._subject is None or self._defects is None:
            self._work_out(mailbox)
        envelope = self.envelope
        return {
            "id": self.key,
            "time": envelope.get("received_at"),
            "envelope": {
                "mail_from": envelope.get("mail_from"),
                "rcpt_tos": envelope.get("rcpt_tos", []),
                "auth_user": envelope.get("auth_user"),
                "tls": envelope.get("tls"),
                "client": envelope.get("client"),
                "helo": envelope.get("helo"),
            },
            "accounts": list(self.accounts),
            "subject": self._subject,
            "size": envelope.get("size"),
            "defects": list(self._defects or ()),
            "session": envelope.get("session"),
        }


class MessageIndex:
    """Every message of the shared Maildir, by key, in the order they arrived."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self._entries: collections.OrderedDict[str, Entry] = collections.OrderedDict()

    def load(self) -> None:
        """What the Maildir holds already (a sandbox restarted on the same Maildir)."""
        envelopes = self.mailbox.envelopes()
        for key in self.mailbox.keys():  # noqa: SIM118 (a Maildir)
            self._add(key, envelopes.get(key) or {}, None)

    def add(self, key: str, envelope: Mapping[str, Any], raw: bytes | None) -> Entry:
        entry = self._add(key, dict(envelope), raw)
        entry.summary(self.mailbox)  # now, while the bytes are at hand
        return entry

    def _add(self, key: str, envelope: dict[str, Any], raw: bytes | None) -> Entry:
        accounts = [a for a in envelope.get("accounts") or () if isinstance(a, str)]
        entry = Entry(key, envelope, accounts, _raw=raw)
        self._entries[key] = entry
        return entry

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, viewer: Viewer) -> Entry | None:
        """The entry if `viewer` may see it; None alike for missing and for someone else's."""
        entry = self._entries.get(key)
        return entry if entry is not None and entry.visible_to(viewer) else None

    def visible(self, viewer: Viewer, limit: int | None = None) -> list[Entry]:
        """Newest first."""
        found: list[Entry] = []
        for entry in reversed(self._entries.values()):
            if entry.visible_to(viewer):
                found.append(entry)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def of_account(self, name: str) -> Iterable[Entry]:
        return (e for e in self._entries.values() if name in e.accounts)

    def count_for(self, name: str) -> int:
        return sum(1 for e in self._entries.values() if name in e.accounts)

    def forget(self, key: str, account: str | None = None) -> None:
        """After a teacher cleared: gone for `account`, or for everyone."""
        entry = self._entries.get(key)
        if entry is None:
            return
        if account is None:
            del self._entries[key]
        else:
            with contextlib.suppress(ValueError):
                entry.accounts.remove(account)
            entry.changed()
