"""Each account's own mailbox, beside the shared Maildir that keeps every message.

The shared Maildir (the sandbox's `--mailbox`) holds every message the sandbox accepted, as
it always has: lessons and the console's `:mailbox` read it. A message is also *filed* to
the accounts it concerns - the account that submitted it after AUTH (what a student wants to
see), and every recipient whose address names an account (so students can mail each other
and fetch it with POP3). Each account's mailbox is a Maildir of its own under
`<shared>/accounts/<name>/`, with its own envelope log, so POP3's DELE or a teacher clearing
one student's mail touches nobody else's.

Filing is a hard link of the stored file (one system call, no second copy; a copy where the
file system refuses links) and one appended envelope line per account. Mail filed to no
account is "the shared mailbox" of the classroom: its envelope says `"accounts": []`.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from smtp_tutor.sandbox.storage import Mailbox, envelope_line

ACCOUNTS_DIR = "accounts"


class AccountMailboxes:
    """The shared Maildir at `root` and one Maildir per account name in `names`."""

    def __init__(self, root: Path | str, names: Iterable[str]) -> None:
        self.root = Path(root)
        self.shared = Mailbox(self.root)
        self.names: tuple[str, ...] = tuple(names)
        self._by_folded = {name.casefold(): name for name in self.names}
        self._boxes: dict[str, Mailbox] = {}
        self._lock = threading.Lock()  # writer threads may file at the same time

    def of(self, name: str) -> Mailbox:
        """The account's own Maildir, made on first use; KeyError if `name` is no account."""
        if name not in self.names:
            raise KeyError(name)
        with self._lock:
            box = self._boxes.get(name)
            if box is None:
                box = Mailbox(self.root / ACCOUNTS_DIR / name)
                box.create()
                self._boxes[name] = box
        return box

    def account_named(self, address: str) -> str | None:
        """The account an address names: its whole self or its local part, any case."""
        address = address.strip().strip("<>")
        for candidate in (address, address.rpartition("@")[0]):
            if candidate:
                found = self._by_folded.get(candidate.casefold())
                if found is not None:
                    return found
        return None

    def filed_to(self, envelope: Mapping[str, Any]) -> list[str]:
        """The accounts a message belongs to: the AUTH user, then each recipient's account."""
        found: list[str] = []
        user = envelope.get("auth_user")
        if isinstance(user, str) and user in self.names:
            found.append(user)
        for rcpt in envelope.get("rcpt_tos") or ():
            name = self.account_named(rcpt) if isinstance(rcpt, str) else None
            if name is not None and name not in found:
                found.append(name)
        return found

    def file(self, key: str, envelope: Mapping[str, Any]) -> None:
        """Put the stored message `key` into the mailbox of each account in its envelope.

        Blocking file I/O (two system calls per account), run where the shared store ran:
        in the event loop for a small message, in a writer thread otherwise.
        """
        names = envelope.get("accounts") or ()
        if not names:
            return
        source = os.path.join(self.shared.path, "new", key)
        line = envelope_line(key, envelope)
        for name in names:
            box = self.of(name)
            target = os.path.join(box.path, "new", key)
            try:
                os.link(source, target)
            except FileExistsError:
                pass
            except OSError:  # no hard links here (or across devices): a copy will do
                shutil.copyfile(source, target)
                os.chmod(target, 0o600)
            box.append_envelope_line(line)
