"""The sandbox's mailbox: a Maildir of received messages, and a log of their envelopes.

What is stored: the message bytes exactly as the client sent them after DATA, with the
SMTP dot-stuffing removed (RFC 5321 section 4.5.2) and the final `.` line dropped - line
ends as received (CRLF normally; a stray bare LF stays a bare LF), and nothing added: no
Received or Return-Path header. The envelope (MAIL FROM, RCPT TO, parameters, AUTH user,
TLS, client address, time, HELO name) goes to `envelopes.jsonl` in the Maildir, one JSON
object per line starting with the message's key, so a lesson can compare what the client
said in SMTP with what it wrote in the headers (`jq` reads it too).

Any Maildir reader (mutt -f, a mail client) can open the directory; it ignores the log.
Messages are written the Maildir way - a uniquely named file in `tmp/`, renamed into
`new/` - so a reader never sees half a message; the envelope is appended before the
message appears. One append instead of a file per envelope, and no fsync per message:
creating a file costs ~0.1 ms on a virtual disk and an fsync ~5 ms, and either capped
the sandbox under load (bench/sandbox_load.py). A sandbox that never delivers loses
nothing that matters if the machine crashes before the disk catches up; a line cut
short by a crash costs only that line (see `_envelope_records`).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import functools
import itertools
import json
import logging
import mailbox
import os
import re
import socket
import threading
import time
from collections.abc import Mapping
from email.errors import MessageDefect, NonASCIILocalPartDefect, UndecodableBytesDefect
from email.headerregistry import AddressHeader, UnstructuredHeader
from email.message import EmailMessage
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from smtp_tutor.core.records import field, record

Spare = tuple[str, int]  # an empty file made ahead in tmp/: its name and an open descriptor

log = logging.getLogger(__name__)

ENVELOPE_LOG = "envelopes.jsonl"
LEGACY_ENVELOPE_DIR = "envelopes"  # before the log: one envelopes/<key>.json per message
_RECORD_START = b'{"key": '  # json.dumps writes "key" first: a record can be found by it
FILE_MODE = 0o600  # inside the 0700 Maildir; mail is nobody else's business
SPARE_SUFFIX = ".spare"
_KEY_TIME = re.compile(r"^(\d+)(?:\.M(\d+))?")
_SPARE_NAME = re.compile(r"\d+\.M\d+P(\d+)Q\d+\..*\.spare")
_UTF8_HEADER_DEFECTS = (UndecodableBytesDefect, NonASCIILocalPartDefect)
_CACHED_HEADER = 2000  # characters of a header value whose parse is remembered


@record
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
        plain = plain_message_defects(self.raw)
        if plain is not None:  # what the parser would say, without building the message
            return plain
        utf8_allowed = bool(self.envelope.get("smtputf8")) and _utf8_header_section(self.raw)
        found: list[MessageDefect] = []
        for part in self.message.walk():
            found.extend(part.defects)
            try:
                mine: list[MessageDefect] = []
                for name, value in part.raw_items():
                    mine.extend(
                        defect
                        for defect in header_defects(part.policy, name, value)
                        if not (utf8_allowed and isinstance(defect, _UTF8_HEADER_DEFECTS))
                    )
            except Exception:  # a hostile header must not break the listing
                continue
            found.extend(mine)
        return found


def header_defects(policy: Any, name: str, value: str) -> tuple[MessageDefect, ...]:
    """The defects of one header as `policy` parses it (what `Message.items()` gives), cheaply.

    A class sends the same From and To again and again, so a parse is remembered (the
    email package's address parser costs ~50 us a header, a tenth of a stored message's
    whole cost); an unstructured header in plain printable ASCII without an encoded word
    has none, and is not parsed at all.
    """
    registry = getattr(getattr(policy, "header_factory", None), "registry", None)
    if registry is None:  # not an EmailPolicy: compat32 headers are strings, no defects
        return tuple(getattr(policy.header_fetch_parse(name, value), "defects", ()))
    kind = registry.get(name.lower(), policy.header_factory.default_class)
    if (
        issubclass(kind, UnstructuredHeader)
        and value.isascii()
        and value.isprintable()
        and "=?" not in value
    ):
        return ()
    if len(value) > _CACHED_HEADER or policy is not email.policy.default:
        return tuple(getattr(policy.header_fetch_parse(name, value), "defects", ()))
    if name.lower() == "message-id" and _PLAIN_MSG_ID.fullmatch(value):
        return ()  # new in every message, so never cached: ~30 us saved a message
    if issubclass(kind, AddressHeader) and _PLAIN_ADDRESS.fullmatch(value):
        return ()  # a class has as many senders as students: the first of each costs ~0.1 ms
    return _default_header_defects(name, value)


#: One field of a plain header section: a name, a colon, printable ASCII or tabs - no fold.
_PLAIN_FIELD = re.compile(rb"([!-9;-~]+):[ \t]*([\t -~]*)")
_PLAIN_HEAD_LIMIT = 8192  # a longer header section goes to the parser


def plain_message_defects(raw: bytes) -> list[MessageDefect] | None:
    """The defects the email parser finds in a plain message, or None if it is not one.

    Plain: a header section of at most 8 KiB in printable ASCII, CRLF line ends, one field
    a line (no folding), then an empty line; and one part - no Content-Type, or a `text/`
    one. The parser finds nothing wrong in such a structure, so its defects are those of
    the headers alone, which `header_defects` gives from its cache. Parsing a stored
    message cost ~0.18 ms, most of what the web view added per message
    (bench/classroom.py); tests/test_message_defects_fast_path.py holds the two to the
    same answer.
    """
    end = raw.find(b"\r\n\r\n", 0, _PLAIN_HEAD_LIMIT)
    if end <= 0:
        return None
    fields = []
    for line in raw[:end].split(b"\r\n"):
        field = _PLAIN_FIELD.fullmatch(line)
        if field is None:
            return None
        name, value = field[1].decode("ascii"), field[2].decode("ascii")
        if name.lower() == "content-type" and not value.lower().startswith("text/"):
            return None  # multipart, message/rfc822, or a broken type: the parser decides
        fields.append((name, value))
    found: list[MessageDefect] = []
    try:
        for name, value in fields:
            found.extend(header_defects(email.policy.default, name, value))
    except Exception:  # as `StoredMessage.defects` does: a header the parser chokes on
        return []
    return found


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
#: A Message-ID the parser finds no defect in: <dot-atom@dot-atom>, spaces or tabs around it.
_PLAIN_MSG_ID = re.compile(rf"[ \t]*<{_DOT_ATOM}@{_DOT_ATOM}>[ \t]*")
#: One address the parser finds no defect in: dot-atom@dot-atom, bare or in angle brackets.
_PLAIN_ADDRESS = re.compile(rf"[ \t]*(?:<{_DOT_ATOM}@{_DOT_ATOM}>|{_DOT_ATOM}@{_DOT_ATOM})[ \t]*")


@functools.lru_cache(maxsize=4096)
def _default_header_defects(name: str, value: str) -> tuple[MessageDefect, ...]:
    parsed = email.policy.default.header_fetch_parse(name, value)
    return tuple(getattr(parsed, "defects", ()))


class Mailbox:
    """Read (and, for the server, write) the sandbox Maildir at `path`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        base = os.fspath(self.path)  # strings for the hot path: a Path costs per message
        self._tmp, self._new = os.path.join(base, "tmp"), os.path.join(base, "new")
        self._log = os.path.join(base, ENVELOPE_LOG)
        self._append_lock = threading.Lock()  # writer threads append whole lines, one at a time

    @property
    def envelope_log(self) -> Path:
        return self.path / ENVELOPE_LOG

    def create(self) -> None:
        """Make the Maildir (tmp/new/cur) if it is missing; the log comes with the first mail."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(self.path, create=True)

    def add(self, raw: bytes, envelope: Mapping[str, Any], spare: Spare | None = None) -> str:
        """Store one message and its envelope; return the Maildir key.

        Blocking file I/O, kept to eight quick system calls (the server may call it from
        worker threads): the message goes to tmp/, its envelope is appended to the log,
        then the message is renamed into new/ - so a reader that sees the message finds
        its whole envelope too. `spare`, an empty file made ahead in tmp/ (`make_spare`),
        saves creating one: the costly part.
        """
        try:
            return self._add(raw, envelope, spare)
        except FileNotFoundError:  # the Maildir was removed while the server ran
            self.create()
            return self._add(raw, envelope, None)

    def _add(self, raw: bytes, envelope: Mapping[str, Any], spare: Spare | None) -> str:
        if spare is None:
            key, fd = _create_exclusive(self._tmp)
            name = key
        else:  # named when it was made: the key says when the message came
            name, fd = spare
            key = _new_key()
        tmp = os.path.join(self._tmp, name)
        try:
            try:
                _write_all(fd, raw)
            finally:
                os.close(fd)
            self.append_envelope_line(envelope_line(key, envelope))
            os.rename(tmp, os.path.join(self._new, key))  # a unique key: nothing replaced
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return key

    def make_spare(self) -> Spare:
        """An empty file in tmp/ for a later `add`, named `*.spare` until then."""
        return _create_exclusive(self._tmp, SPARE_SUFFIX)

    def append_envelope_line(self, line: bytes) -> None:
        """One write with O_APPEND: whole lines, even from two sandboxes on one Maildir."""
        with self._append_lock:
            fd = os.open(self._log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
            try:
                _write_all(fd, line)
            finally:
                os.close(fd)

    def remove(self, key: str) -> None:
        """Delete the message `key` (from new/ or cur/); KeyError if there is none.

        Its envelope line stays in the log: readers only look up keys that exist.
        """
        try:
            mailbox.Maildir(self.path, create=False).remove(key)
        except FileNotFoundError as error:  # gone between the listing and the unlink
            raise KeyError(key) from error

    def keys(self) -> list[str]:
        """Keys from oldest to newest (by the delivery time encoded in the key)."""
        if not (self.path / "new").is_dir():
            return []
        return sorted(mailbox.Maildir(self.path, create=False).keys(), key=_key_order)

    def get(self, key: str) -> StoredMessage:
        """The message stored under `key`; KeyError if there is none."""
        box = mailbox.Maildir(self.path, create=False)
        return self._read(box, key, self.envelopes(only=key))

    def messages(self) -> list[StoredMessage]:
        if not (self.path / "new").is_dir():
            return []
        box = mailbox.Maildir(self.path, create=False)  # one listing for all, not one each
        envelopes = self.envelopes()  # and one reading of the log
        found = []
        for key in sorted(box.keys(), key=_key_order):
            try:
                found.append(self._read(box, key, envelopes))
            except (KeyError, FileNotFoundError):  # removed while we were reading
                continue
        return found

    def envelopes(self, only: str | None = None) -> dict[str, dict[str, Any]]:
        """The envelopes in the log by key (just `only`'s, if given); {} if there is no log."""
        try:
            data = self.envelope_log.read_bytes()
        except OSError:
            return {}
        if only is not None:  # the key's own line, found without parsing the others
            start = data.rfind(_RECORD_START + json.dumps(only, ensure_ascii=False).encode())
            if start >= 0:
                end = data.find(b"\n", start)
                found = _envelope_records(data[start : end if end >= 0 else len(data)])
                if found:
                    return {only: found[0]}
        return {record["key"]: record for record in _envelope_records(data)}

    def _read(
        self, box: mailbox.Maildir, key: str, envelopes: Mapping[str, dict[str, Any]]
    ) -> StoredMessage:
        with box.get_file(key) as file:  # get_file gives the bytes untouched
            raw = file.read()
        envelope = envelopes.get(key)
        if envelope is None:
            envelope = self._legacy_envelope(key)
        return StoredMessage(key=key, raw=raw, envelope=envelope)

    def latest(self) -> StoredMessage | None:
        for key in reversed(self.keys()):
            try:
                return self.get(key)
            except (KeyError, FileNotFoundError):
                continue
        return None

    def __len__(self) -> int:
        return len(self.keys())

    def _legacy_envelope(self, key: str) -> dict[str, Any]:
        """The envelope of a message stored by an older smtp-tutor, or {} if there is none."""
        try:
            data = json.loads((self.path / LEGACY_ENVELOPE_DIR / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


# The stdlib Maildir's key format, so mail readers and `_key_order` see what they expect.
_HOST = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
_COUNTER = itertools.count()  # next() is atomic: worker threads may store at the same time


def _new_key() -> str:
    now = time.time()
    return f"{int(now)}.M{int(1e6 * (now % 1))}P{os.getpid()}Q{next(_COUNTER)}.{_HOST}"


def _create_exclusive(directory: str, suffix: str = "") -> Spare:
    """A fresh Maildir key (plus `suffix`) and its new file in `directory`, opened exclusively."""
    while True:
        name = _new_key() + suffix
        try:
            return name, os.open(
                os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE
            )
        except FileExistsError:  # only if the clock went back: take the next number
            continue


def spare_owner(name: str) -> int | None:
    """The process id in a spare file's name, or None if it is not one of ours."""
    match = _SPARE_NAME.fullmatch(name)
    return int(match[1]) if match else None


def envelope_line(key: str, envelope: Mapping[str, Any]) -> bytes:
    """One line of the log, the key first. Compact JSON: the C encoder, no indentation."""
    record = {"key": key, **envelope}
    try:
        text = json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in an address: keep them escaped
        text = json.dumps(record, ensure_ascii=True).encode("ascii")
    return text + b"\n"


def _envelope_records(data: bytes) -> list[dict[str, Any]]:
    """The records in log text, skipping what cannot be read.

    A line cut short (a crash, a full disk) has the next record appended to it; that
    record is still found after the last record start in the line.
    """
    records = []
    for line in data.splitlines():
        for start in (0, line.rfind(_RECORD_START)):
            try:
                record = json.loads(line[start:])
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                records.append(record)
            break
    return records


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
