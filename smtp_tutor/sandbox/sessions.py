"""Every SMTP session the sandbox serves, recorded on the server side: what was said, by whom.

A teacher (and the web view, smtp_tutor/web/) wants the *dialogue* that delivered a message,
not only the message. `SessionRecorder` is told the bytes each connection received and sent
(`SandboxSMTP.data_received` and its pushes) and keeps them as cheap tuples; the transcript
is rendered only when someone asks (`transcript`), through the core's `TranscriptRecorder`,
so a session downloads as a file `smtp-tutor replay` and `smtp-tutor diagram` read.

Secrets never enter the record. Which client lines carry one is decided from the dialogue
itself, as it happens: an answer to a 334 challenge, or the initial response of `AUTH PLAIN`.
They are kept as the placeholder a transcript writes (`{plain user="alice"
password=password}`, `{base64 password}`, `{cram-md5 …}`), never as bytes; a LOGIN user
name stays in clear, as the console's transcripts have it. When the transcript is rendered,
every form of every account password (core/redaction) is masked once more, so a password
pasted where no secret was expected is hidden too.

`SessionLog` keeps the sessions in memory, bounded by count and by bytes (oldest finished
first), and tells its listeners (the web view) when a session opens, stores a message or
closes. Nothing is written to disk: the messages themselves are in the Maildir.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime as dt
import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from smtp_tutor.core.placeholders import Placeholder
from smtp_tutor.core.recorder import TranscriptRecorder
from smtp_tutor.core.records import field, record
from smtp_tutor.core.redaction import SecretTracker, mask
from smtp_tutor.core.replies import ReplyParser

__all__ = ["SessionLog", "SessionRecord", "SessionRecorder"]

MAX_SESSIONS = 2000  # sessions kept (finished ones are dropped oldest first)
MAX_BYTES = 64 * 1024 * 1024  # bytes of dialogue kept for all sessions together
SESSION_BYTES = 1024 * 1024  # bytes of one session's dialogue kept; the rest is counted

#: Called with the event ("opened", "stored", "closed") and the session; must not block.
Listener = Callable[[str, "SessionRecord", Mapping[str, Any]], None]

_AUTH = re.compile(rb"[ \t]*AUTH[ \t]+([A-Za-z0-9_-]+)(?:[ \t]+(\S+))?[ \t]*\Z", re.IGNORECASE)
_BDAT = re.compile(rb"[ \t]*BDAT[ \t]+([0-9]{1,15})(?:[ \t]+LAST)?[ \t]*\Z", re.IGNORECASE)
_VERB = re.compile(rb"[ \t]*([A-Za-z]+)")
_PASSWORD_PROMPT = "password:"
_PREFIX = f"{int(time.time()):x}"  # ids stay distinct across restarts on one Maildir
_NUMBERS = itertools.count(1)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@record
class SessionRecord:
    """One connection: who, when, what it stored, and its dialogue as raw events."""

    id: str
    client: tuple[str, int | None]
    started: str
    implicit_tls: bool = False
    ended: str | None = None
    helo: str | None = None
    auth_user: str | None = None
    tls: dict[str, Any] | None = None
    message_keys: list[str] = field(default_factory=list)
    last_command: str | None = None  # as the dashboard shows it: secrets masked
    last_error: str | None = None  # the last 4xx/5xx reply, its first line
    commands: int = 0
    events: list[tuple[float, str, Any]] = field(default_factory=list)
    size: int = 0  # bytes of dialogue kept
    elided: int = 0  # bytes of message content not kept (over SESSION_BYTES)

    @property
    def open(self) -> bool:
        return self.ended is None

    def summary(self) -> dict[str, Any]:
        """What the API lists: everything but the dialogue itself."""
        return {
            "id": self.id,
            "client": {"address": self.client[0], "port": self.client[1]},
            "started": self.started,
            "ended": self.ended,
            "open": self.open,
            "helo": self.helo,
            "auth_user": self.auth_user,
            "tls": self.tls,
            "messages": list(self.message_keys),
            "commands": self.commands,
            "last_command": self.last_command,
            "last_error": self.last_error,
        }


class SessionRecorder:
    """Told every byte of one connection; keeps its dialogue with the secrets left out.

    The protocol calls `received` with what the client sent (before aiosmtpd reads it) and
    `sent` with each reply; both are on the hot path of every connection, so they only
    split lines and append tuples.
    """

    def __init__(
        self, log: SessionLog, client: tuple[str, int | None], implicit_tls: bool = False
    ) -> None:
        self.log = log
        self.record = SessionRecord(
            id=f"{_PREFIX}-{next(_NUMBERS)}",
            client=client,
            started=_now(),
            implicit_tls=implicit_tls,
        )
        self._start = time.monotonic()
        self._partial = b""
        self._in_data = False  # after a 354 until the client's "."
        self._chunk_left = 0  # bytes of a BDAT chunk still to come
        self._chunk: list[bytes] = []
        self._chunk_command = ""
        self._challenge: str | None = None  # the text of a 334 the client must answer
        self._mechanism = ""
        self._parser: ReplyParser | None = None
        log.opened(self)

    @property
    def id(self) -> str:
        return self.record.id

    def _add(self, kind: str, payload: Any, size: int) -> None:
        record = self.record
        if record.size + size > SESSION_BYTES and kind in ("C", "chunk"):
            record.elided += size
            return
        record.events.append((time.monotonic() - self._start, kind, payload))
        record.size += size
        self.log.grew(size)

    # From the client ----------------------------------------------------------------------

    def received(self, data: bytes) -> None:
        if self._partial:
            data = self._partial + data
            self._partial = b""
        start = 0
        end = len(data)
        while start < end:
            if self._chunk_left:
                piece = data[start : start + self._chunk_left]
                self._chunk.append(piece)
                self._chunk_left -= len(piece)
                start += len(piece)
                if not self._chunk_left:
                    self._chunk_done()
                continue
            newline = data.find(b"\n", start)
            if newline < 0:
                self._partial = data[start:]
                if len(self._partial) > 64 * 1024:  # a line nobody will accept: keep its head
                    self._partial = self._partial[: 64 * 1024]
                return
            line = data[start:newline]
            if line.endswith(b"\r"):
                line = line[:-1]
            self._line(line)
            start = newline + 1

    def _line(self, line: bytes) -> None:
        text = line.decode("utf-8", "surrogateescape")
        if self._in_data:
            if line == b".":
                self._in_data = False
            self._add("C", text, len(line) + 2)
            return
        if self._challenge is not None:  # the answer to a 334: a secret unless harmless
            challenge, self._challenge = self._challenge, None
            if line.strip() in (b"*", b""):
                self._add("C", text, len(line) + 2)
            else:
                self._answer(line, challenge)
            return
        record = self.record
        record.commands += 1
        auth = _AUTH.match(line)
        if auth is not None:
            self._mechanism = auth[1].decode("ascii").upper()
            if auth[2] is not None and auth[2] != b"=" and self._mechanism != "LOGIN":
                placeholder = self._placeholder(self._mechanism, auth[2])
                self._add("Cs", (text, placeholder), len(line) + 2)
                record.last_command = mask(text)
                return
        record.last_command = text if len(text) <= 200 else text[:199] + "…"
        bdat = _BDAT.match(line)
        if bdat is not None:
            self._chunk_left = int(bdat[1])
            self._chunk_command = text
            self._chunk = []
            if not self._chunk_left:
                self._chunk_done()
            return
        self._add("C", text, len(line) + 2)

    def _chunk_done(self) -> None:
        chunk = b"".join(self._chunk)
        self._chunk = []
        self._add("chunk", (self._chunk_command, chunk), len(chunk) + len(self._chunk_command))

    def _answer(self, line: bytes, challenge: str) -> None:
        mechanism = self._mechanism
        if mechanism == "LOGIN":
            if _decoded(challenge).lower() != _PASSWORD_PROMPT:
                self._add("C", line.decode("utf-8", "surrogateescape"), len(line) + 2)  # user
                return
            self._add("Cs", (None, Placeholder.login_password()), len(line) + 2)
            return
        self._add("Cs", (None, self._placeholder(mechanism, line)), len(line) + 2)

    @staticmethod
    def _placeholder(mechanism: str, blob: bytes) -> Placeholder:
        """The placeholder a transcript writes for this answer; the user name kept if seen."""
        try:
            decoded = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            return Placeholder.variable("secret")
        if mechanism == "PLAIN":
            parts = decoded.split(b"\0")
            if len(parts) == 3:
                user = parts[1].decode("utf-8", "replace")
                authzid = parts[0].decode("utf-8", "replace")
                return Placeholder.plain(user, authzid=authzid)
        elif mechanism == "CRAM-MD5":
            user, space, _digest = decoded.decode("utf-8", "replace").rpartition(" ")
            if space:
                return Placeholder.cram_md5(user)
        return Placeholder.variable("secret")

    # From the server ----------------------------------------------------------------------

    def sent(self, reply: bytes) -> None:
        """One whole reply (one push), CRLF included or not."""
        if not reply.endswith(b"\n"):
            reply += b"\r\n"
        self._add("S", reply, len(reply))
        code = reply[:3]
        self._challenge = None
        if code == b"334":
            last = reply.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
            self._challenge = last[4:].decode("utf-8", "replace").strip()
        elif code == b"354":
            self._in_data = True
        elif code[:1] in (b"4", b"5"):
            first = reply.split(b"\r\n", 1)[0].decode("utf-8", "replace")
            self.record.last_error = first[:300]
            self.log.touched(self, "error")

    # Facts ------------------------------------------------------------------------------

    def tls_started(self, info: Mapping[str, Any] | None) -> None:
        self.record.tls = dict(info) if info else {"mode": "starttls"}
        self._add("tls", (self.record.tls.get("version"), self.record.tls.get("cipher")), 0)

    def greeted(self, name: str | None) -> None:
        self.record.helo = name

    def authenticated(self, user: str) -> None:
        self.record.auth_user = user
        self.log.touched(self, "auth")

    def stored(self, key: str, envelope: Mapping[str, Any], raw: bytes | None = None) -> None:
        self.record.message_keys.append(key)
        self.log.stored(self, key, envelope, raw)

    def closed(self) -> None:
        if self.record.ended is None:
            self.record.ended = _now()
            self._add("closed", None, 0)
            self.log.closed(self)


def _decoded(challenge: str) -> str:
    try:
        return base64.b64decode(challenge, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return challenge


class SessionLog:
    """The sandbox's recorded sessions, newest last, bounded by count and total bytes."""

    def __init__(
        self,
        max_sessions: int = MAX_SESSIONS,
        max_bytes: int = MAX_BYTES,
        passwords: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self._passwords = passwords or dict
        self._sessions: collections.OrderedDict[str, SessionRecord] = collections.OrderedDict()
        self._bytes = 0
        self.listeners: list[Listener] = []
        self._tracker: tuple[frozenset[tuple[str, str]], SecretTracker] | None = None
        self.server: tuple[str, int] = ("127.0.0.1", 0)  # where the sandbox listens (@connect)

    # Told by recorders --------------------------------------------------------------------

    def opened(self, recorder: SessionRecorder) -> None:
        self._sessions[recorder.id] = recorder.record
        self._trim()
        self._tell("opened", recorder.record, {})

    def grew(self, size: int) -> None:
        self._bytes += size
        if self._bytes > self.max_bytes:
            self._trim()

    def touched(self, recorder: SessionRecorder, what: str) -> None:
        self._tell(what, recorder.record, {})

    def stored(
        self,
        recorder: SessionRecorder,
        key: str,
        envelope: Mapping[str, Any],
        raw: bytes | None = None,
    ) -> None:
        self._tell("stored", recorder.record, {"key": key, "envelope": envelope, "raw": raw})

    def closed(self, recorder: SessionRecorder) -> None:
        self._tell("closed", recorder.record, {})
        if len(self._sessions) > self.max_sessions:
            self._trim()

    def _tell(self, event: str, record: SessionRecord, fields: Mapping[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(event, record, fields)

    def _trim(self) -> None:
        """Drop the oldest finished sessions until within both bounds."""
        while len(self._sessions) > self.max_sessions or self._bytes > self.max_bytes:
            victim = next((r for r in self._sessions.values() if not r.open), None)
            if victim is None:
                return
            del self._sessions[victim.id]
            self._bytes -= victim.size

    # Read by the web view -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> SessionRecord | None:
        return self._sessions.get(session_id)

    def sessions(self) -> list[SessionRecord]:
        return list(self._sessions.values())

    def of_user(self, user: str) -> Iterable[SessionRecord]:
        return (r for r in self._sessions.values() if r.auth_user == user)

    def transcript(self, record: SessionRecord) -> str:
        """The session as a replayable transcript (docs/transcript.md), secrets masked."""
        moment = [0.0]
        recorder = TranscriptRecorder(clock=lambda: moment[0])
        host, port = record.client
        recorder.comment(
            f"smtp-tutor sandbox session {record.id}: client {host}:{port}, "
            f"started {record.started}"
            + (f", authenticated as {record.auth_user}" if record.auth_user else "")
        )
        recorder.connected(*self.server, implicit_tls=record.implicit_tls)
        parser = ReplyParser()
        for at, kind, payload in record.events:
            moment[0] = at
            if kind == "C":
                recorder.sent(payload)
            elif kind == "Cs":
                line, placeholder = payload
                recorder.sent(line or "", secret=placeholder)
            elif kind == "chunk":
                command, chunk = payload
                recorder.sent_chunk(command, chunk)
            elif kind == "S":
                for reply in parser.feed(payload):
                    recorder.received(reply)
            elif kind == "tls":
                recorder.tls_started(*payload)
            elif kind == "closed":
                recorder.closed()
        if record.elided:
            recorder.comment(f"{record.elided} bytes of message content not kept")
        return self._secrets().redact(recorder.text())

    def _secrets(self) -> SecretTracker:
        """Every form of every account password, to mask what slipped through (cached)."""
        accounts = frozenset(self._passwords().items())
        if self._tracker is None or self._tracker[0] != accounts:
            tracker = SecretTracker()
            for user, password in accounts:
                tracker.add_secret(password, user)
            self._tracker = (accounts, tracker)
        return self._tracker[1]


def client_of(peer: Any) -> tuple[str, int | None]:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return (str(peer[0]), int(peer[1]))
    return (str(peer), None)
