"""The sandbox's mailbox: a Maildir of received messages, each with its envelope beside it.

What is stored: the message bytes exactly as the client sent them after DATA, with the
SMTP dot-stuffing removed (RFC 5321 section 4.5.2) and the final `.` line dropped - line
ends as received (CRLF normally; a stray bare LF stays a bare LF), and nothing added: no
Received or Return-Path header. The envelope (MAIL FROM, RCPT TO, parameters, AUTH user,
TLS, client address, time, HELO name) is kept beside it in `envelopes/<key>.json`, so a
lesson can compare what the client said in SMTP with what it wrote in the headers.

Any Maildir reader (mutt -f, a mail client) can open the directory; the `envelopes`
folder is ignored by them. Byte-exactness holds on POSIX, where the stdlib `mailbox`
module writes bytes unchanged.
"""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.errors import MessageDefect, NonASCIILocalPartDefect, UndecodableBytesDefect
from email.message import EmailMessage
from functools import cached_property
from pathlib import Path
from typing import Any, cast

ENVELOPE_DIR = "envelopes"
_KEY_TIME = re.compile(r"^(\d+)(?:\.M(\d+))?")
_UTF8_HEADER_DEFECTS = (UndecodableBytesDefect, NonASCIILocalPartDefect)


@dataclass
class StoredMessage:
    """One received message: its Maildir key, its bytes and its envelope."""

    key: str
    raw: bytes
    envelope: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, email.message_from_bytes(self.raw, policy=email.policy.default))

    @cached_property
    def defects(self) -> list[MessageDefect]:
        """Every defect the email parser found: of the structure, the parts and the headers.

        Python's parser predates RFC 6532 and flags UTF-8 in address headers; when the
        client announced SMTPUTF8 and the header section is valid UTF-8, that is legal and
        those flags are left out, so a correct SMTPUTF8 message shows no defects.
        """
        utf8_allowed = bool(self.envelope.get("smtputf8")) and _utf8_header_section(self.raw)
        found: list[MessageDefect] = []
        for part in self.message.walk():
            found.extend(part.defects)
            try:
                for _name, value in part.items():
                    found.extend(
                        defect
                        for defect in getattr(value, "defects", ())
                        if not (utf8_allowed and isinstance(defect, _UTF8_HEADER_DEFECTS))
                    )
            except Exception:  # a hostile header must not break the listing
                continue
        return found


class Mailbox:
    """Read (and, for the server, write) the sandbox Maildir at `path`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def envelope_dir(self) -> Path:
        return self.path / ENVELOPE_DIR

    def create(self) -> None:
        """Make the Maildir (tmp/new/cur) and the envelope folder if they are missing."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(self.path, create=True)
        self.envelope_dir.mkdir(mode=0o700, exist_ok=True)

    def add(self, raw: bytes, envelope: Mapping[str, Any]) -> str:
        """Store one message and its envelope; return the Maildir key."""
        self.create()
        key = mailbox.Maildir(self.path, create=False).add(raw)
        record = {"key": key, **envelope}
        try:
            text = json.dumps(record, ensure_ascii=False, indent=2).encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes in an address: keep them escaped
            text = json.dumps(record, ensure_ascii=True, indent=2).encode("ascii")
        target = self.envelope_dir / f"{key}.json"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(text + b"\n")
        os.replace(tmp, target)
        return key

    def keys(self) -> list[str]:
        """Keys from oldest to newest (by the delivery time encoded in the key)."""
        if not (self.path / "new").is_dir():
            return []
        return sorted(mailbox.Maildir(self.path, create=False).keys(), key=_key_order)

    def get(self, key: str) -> StoredMessage:
        """The message stored under `key`; KeyError if there is none."""
        box = mailbox.Maildir(self.path, create=False)
        with box.get_file(key) as file:  # get_file gives the bytes untouched
            raw = file.read()
        return StoredMessage(key=key, raw=raw, envelope=self._envelope(key))

    def messages(self) -> list[StoredMessage]:
        found = []
        for key in self.keys():
            try:
                found.append(self.get(key))
            except (KeyError, FileNotFoundError):  # removed while we were reading
                continue
        return found

    def latest(self) -> StoredMessage | None:
        for key in reversed(self.keys()):
            try:
                return self.get(key)
            except (KeyError, FileNotFoundError):
                continue
        return None

    def __len__(self) -> int:
        return len(self.keys())

    def _envelope(self, key: str) -> dict[str, Any]:
        try:
            data = json.loads((self.envelope_dir / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def _utf8_header_section(raw: bytes) -> bool:
    end = raw.find(b"\r\n\r\n")
    try:
        raw[: end if end >= 0 else len(raw)].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _key_order(key: str) -> tuple[float, str]:
    match = _KEY_TIME.match(key)
    if match is None:
        return (0.0, key)
    seconds = int(match[1]) + int(match[2] or 0) / 1_000_000
    return (seconds, key)
