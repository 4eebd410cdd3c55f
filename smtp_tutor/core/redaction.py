"""Every form an AUTH secret takes on the wire, and masking, so that nothing written leaks it.

History, the raw view and diagrams must hide secrets in lines no exchange built (a student
may type ``AUTH PLAIN <blob>`` by hand, a diagram reads a transcript), so this works from
the secrets and the lines alone.
"""

from __future__ import annotations

import base64
import re
from typing import Protocol

from smtp_tutor.core.auth import b64encode_bytes
from smtp_tutor.core.patterns import LazyPattern

__all__ = ["MASK", "SecretTracker", "mask", "secret_forms"]

#: What a redacted secret looks like; fixed length so it does not reveal the secret's length.
MASK = "********"


def _aligned_cores(secret: bytes, min_chars: int) -> set[str]:
    """Base64 fragments of ``secret`` that appear whatever bytes surround it.

    Base64 works in 3-byte groups, so the secret's encoding inside a bigger blob (PLAIN's
    ``authzid\\0user\\0password``) depends on its offset mod 3. For each offset, the
    characters of groups made only of secret bytes are fixed; any blob carrying the secret
    contains one of these three fragments, which lets an audit find it without the user name.
    """
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret).decode("ascii")
        first_group = 1 if offset else 0
        last_group = (offset + len(secret)) // 3  # groups before this one are complete
        if last_group <= first_group:
            continue
        core = encoded[first_group * 4 : last_group * 4]
        if len(core) >= min_chars:
            cores.add(core)
    return cores


#: Fragments shorter than this would match innocent base64 too often.
_MIN_CORE_CHARS = 8


def secret_forms(secret: str, user: str | None = None) -> set[str]:
    """Every string that reveals ``secret`` (a password or a token) in a transcript.

    The secret itself, its base64 (padded and not), the offset-independent base64 fragments
    that occur inside any PLAIN or XOAUTH2 blob (for secrets long enough to make them
    distinctive), and, when the user name is known, the exact PLAIN and XOAUTH2 blobs.
    CRAM-MD5 responses never reveal the password, so they are not listed; user names are
    not secrets and are not listed on their own.
    """
    if not secret:
        return set()
    forms = {secret}
    try:
        raw = secret.encode("utf-8")
    except UnicodeEncodeError:
        return forms
    encoded = b64encode_bytes(raw)
    forms |= {encoded, encoded.rstrip("=")}
    forms |= _aligned_cores(raw, _MIN_CORE_CHARS)
    if user and "\0" not in user and "\0" not in secret:
        u = user.encode("utf-8", errors="surrogatepass")
        forms.add(b64encode_bytes(b"\0" + u + b"\0" + raw))
        forms.add(b64encode_bytes(u + b"\0" + u + b"\0" + raw))
    if user and "\x01" not in user and "\x01" not in secret:
        u = user.encode("utf-8", errors="surrogatepass")
        forms.add(b64encode_bytes(b"user=" + u + b"\x01auth=Bearer " + raw + b"\x01\x01"))
    forms.discard("")
    return forms


_AUTH_COMMAND = LazyPattern(r"^(\s*AUTH\s+\S+)(\s+)(\S.*)$", re.IGNORECASE | re.DOTALL)


def mask(line: str) -> str:
    """Hide the secret part of an AUTH command or response line, keeping its shape.

    ``AUTH PLAIN <blob>`` → ``AUTH PLAIN ********``; ``AUTH LOGIN`` stays; a response
    line becomes ``********``; the cancel ``*`` and empty lines stay, they hide nothing.
    The line ending, if any, is kept.
    """
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    stripped = body.strip()
    if stripped in ("", "*", "="):
        return line
    match = _AUTH_COMMAND.match(body)
    if match:
        if match.group(3).strip() == "=":  # RFC 4954 empty initial response
            return line
        return f"{match.group(1)}{match.group(2)}{MASK}{ending}"
    if re.fullmatch(r"\s*AUTH(\s+\S+)?\s*", body, re.IGNORECASE):
        return line
    return MASK + ending


class _HasSecrets(Protocol):
    @property
    def secret_lines(self) -> tuple[str, ...]: ...

    @property
    def user(self) -> str | None: ...

    def secret_values(self) -> tuple[str, ...]: ...


class SecretTracker:
    """Remembers which lines and strings carried secrets, so history can be redacted.

    Exact lines (as sent) are matched whole; secret forms match a whole whitespace-separated
    word, and forms of 8+ characters also match inside a word (a base64 blob). Short forms
    only match whole words, because ``1234`` inside ordinary text is not a leak.
    """

    def __init__(self) -> None:
        self._lines: set[str] = set()
        self._forms: set[str] = set()

    @property
    def lines(self) -> frozenset[str]:
        return frozenset(self._lines)

    @property
    def forms(self) -> frozenset[str]:
        return frozenset(self._forms)

    def add_secret(self, secret: str, user: str | None = None) -> None:
        self._forms |= secret_forms(secret, user)

    def add_line(self, line: str) -> None:
        """Remember a line that was sent with a secret in it (a response or AUTH + IR).

        Its secret word (the response, or the initial response) is remembered too, so the
        line is still found with a prefix such as ``C: `` or a timestamp in front.
        """
        body = line.strip()
        if body in ("", "*", "="):
            return
        self._lines.add(body)
        match = _AUTH_COMMAND.match(body)
        if match:
            secret = match.group(3).strip()
            if secret != "=":
                self._forms.add(secret)
        elif not re.fullmatch(r"AUTH(\s+\S+)?", body, re.IGNORECASE):
            self._forms.add(body)

    def track(self, exchange: _HasSecrets) -> None:
        """Take the lines and secrets of an `AuthExchange` (call again as it progresses)."""
        for line in exchange.secret_lines:
            self.add_line(line)
        user = exchange.user
        for secret in exchange.secret_values():
            self.add_secret(secret, user)

    def _word_is_secret(self, word: str) -> bool:
        if word in self._forms:
            return True
        return any(len(form) >= _MIN_CORE_CHARS and form in word for form in self._forms)

    def _redact_line(self, body: str) -> str:
        if body.strip() in self._lines:
            return mask(body)
        # Secrets containing spaces cannot be found word by word.
        for form in sorted(self._forms, key=len, reverse=True):
            if len(form.split()) > 1 and form in body:
                body = body.replace(form, MASK)
        parts = re.split(r"(\s+)", body)
        return "".join(
            MASK if p and not p.isspace() and self._word_is_secret(p) else p for p in parts
        )

    def is_secret(self, line: str) -> bool:
        """Whether the line carries any known secret (exactly what `redact` would hide)."""
        body = line.rstrip("\r\n")
        return body.strip() in self._lines or self._redact_line(body) != body

    def redact(self, text: str) -> str:
        """The text with every secret masked, line by line; line endings are kept."""
        out: list[str] = []
        for line in text.splitlines(keepends=True):
            body = line.rstrip("\r\n")
            out.append(self._redact_line(body) + line[len(body) :])
        return "".join(out)
