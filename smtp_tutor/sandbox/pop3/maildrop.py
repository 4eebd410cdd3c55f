"""One POP3 session's view of an account's Maildir (RFC 1939 §§5-7).

At login the session takes a snapshot: the messages then in `new/` and `cur/`, oldest
first, numbered from 1. The numbers stay fixed for the session — mail that arrives later
waits for the next login, and a message marked with DELE keeps its number (referring to it
is an error) — and nothing is removed until QUIT enters the UPDATE state (`commit`). A
dropped connection never reaches `commit`, so it removes nothing.

What goes on the wire is the stored message with every bare LF sent as CRLF (POP3 lines
end in CRLF; the sandbox stores what the SMTP client sent, and SMTP mail has CRLF already,
so normally nothing changes) and a final CRLF added if the message lacks one. LIST, STAT
and RETR's `+OK n octets` count exactly those bytes, before byte-stuffing.

UIDL is the Maildir key (the file name before `:2,…`), which never changes while the file
exists, so it is stable across sessions; a key RFC 1939 would not allow (over 70
characters, or a character outside 0x21-0x7E) is replaced by a hash of itself.

The lock (`MaildropLock`) is an exclusive `flock` on `pop3.lock` in the Maildir, so two
sandboxes on one Maildir (`serve` and a console's own) exclude each other too; where
`fcntl` is missing, an in-process set does it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from pathlib import Path
from typing import ClassVar

from smtp_tutor.core.records import field, record
from smtp_tutor.sandbox.storage import Mailbox

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "pop3.lock"
UID_LIMIT = 70  # RFC 1939 §7: 1 to 70 characters in the range 0x21 to 0x7E
_UID_CHARS = re.compile(r"[\x21-\x7e]{1,70}")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_LINE_START_DOT = re.compile(rb"(?m)^\.")  # a '.' after LF or at the start (CR alone: no)


def wire_form(raw: bytes) -> bytes:
    """The message as POP3 sends it, before byte-stuffing: CRLF line ends, one at the end."""
    data = _BARE_LF.sub(b"\r\n", raw)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def byte_stuffed(data: bytes) -> bytes:
    """A multiline body on the wire (RFC 1939 §3): an extra '.' before each line that starts
    with one, then the terminating '.' line. Lines are split at LF only, so a lone CR stays
    inside its line, as a client's parser sees it."""
    return _LINE_START_DOT.sub(b"..", data) + b".\r\n"


def top_of(data: bytes, lines: int) -> bytes:
    """RFC 1939 §7 TOP: the header section, the empty line, then `lines` lines of the body
    (of a message in `wire_form`)."""
    if data.startswith(b"\r\n"):
        start = 2  # no header fields at all: the empty line comes first
    else:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return data  # no body at all: the whole message is its header section
        start = end + 4
    pos = start
    for _ in range(lines):
        newline = data.find(b"\n", pos)
        if newline < 0:
            return data
        pos = newline + 1
    return data[:pos]


def uid_of(key: str) -> str:
    """The UIDL value of a message: its Maildir key, or a hash of it if RFC 1939 forbids it."""
    if _UID_CHARS.fullmatch(key):
        return key
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


@record
class Entry:
    """One message of the snapshot."""

    key: str
    path: Path
    size: int  # octets of `wire_form`, CRLF counted, before byte-stuffing
    uid: str
    deleted: bool = False


@record
class Maildrop:
    """The numbered messages of one session; index 0 is message 1."""

    mailbox: Mailbox
    entries: list[Entry] = field(default_factory=list)

    @classmethod
    def open(cls, mailbox: Mailbox) -> Maildrop:
        """Snapshot the Maildir (blocking: file reads; the session runs it in a thread)."""
        mailbox.create()
        found: dict[str, Path] = {}
        for sub in ("new", "cur"):
            with contextlib.suppress(FileNotFoundError), os.scandir(mailbox.path / sub) as it:
                for item in it:
                    if not item.name.startswith(".") and item.is_file():
                        found[item.name.split(":", 1)[0]] = Path(item.path)
        entries = []
        for key in mailbox.keys():  # noqa: SIM118 - oldest first, as stored
            path = found.get(key)
            if path is None:
                continue
            try:
                size = len(wire_form(path.read_bytes()))
            except OSError:  # removed meanwhile
                continue
            entries.append(Entry(key, path, size, uid_of(key)))
        return cls(mailbox, entries)

    def number_of(self, entry: Entry) -> int:
        return self.entries.index(entry) + 1

    def live(self) -> list[tuple[int, Entry]]:
        """(number, entry) for every message not marked with DELE."""
        return [(n, e) for n, e in enumerate(self.entries, 1) if not e.deleted]

    @property
    def count(self) -> int:
        return sum(1 for e in self.entries if not e.deleted)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries if not e.deleted)

    @property
    def marked(self) -> int:
        return sum(1 for e in self.entries if e.deleted)

    def reset(self) -> None:
        """RSET: every DELE mark is taken back."""
        for entry in self.entries:
            entry.deleted = False

    @staticmethod
    def read(entry: Entry) -> bytes:
        """The message's wire form (blocking); OSError if the file is gone."""
        return wire_form(entry.path.read_bytes())

    def commit(self) -> tuple[int, list[str]]:
        """UPDATE: remove every marked message; (how many removed, keys that could not be)."""
        removed, failed = 0, []
        for entry in self.entries:
            if not entry.deleted:
                continue
            try:
                self.mailbox.remove(entry.key)
            except KeyError:
                removed += 1  # already gone: the goal is met
            except OSError:
                failed.append(entry.key)
            else:
                removed += 1
        return removed, failed


class MaildropLock:
    """Exclusive use of one Maildir by one POP3 session (RFC 1939 §8's "exclusive-access lock")."""

    _held: ClassVar[set[str]] = set()  # paths locked in this process (the fallback without fcntl)
    _guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock at once, or say False if another session holds it (never waits)."""
        name = os.fspath(self.path.resolve())
        with self._guard:
            if name in self._held:
                return False
            if fcntl is not None:
                fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    return False
                self._fd = fd
            self._held.add(name)
            self._name = name
            return True

    def release(self) -> None:
        with self._guard:
            if self._fd is not None:
                os.close(self._fd)  # closing drops the flock
                self._fd = None
            self._held.discard(getattr(self, "_name", ""))
