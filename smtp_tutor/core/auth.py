"""SMTP AUTH (RFC 4954) encodings and a sans-I/O exchange a console can drive.

The console does the base64 for the student: they type a user name and a password in plain
text, and this module builds the lines to send and decodes what the server says. It also
knows every form a secret takes on the wire, so history and transcripts can be redacted.

Base64 here is strict RFC 4648 (standard alphabet, padding required unless asked otherwise),
because a server like aiosmtpd decodes with ``validate=True`` and answers
``501 5.5.2 Can't decode base64`` to anything sloppier; catching it here lets the console
explain the mistake before it is sent. Only surrounding whitespace is forgiven.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Literal, Protocol

from smtp_tutor.core.messages import Said

__all__ = [
    "MASK",
    "SUPPORTED_MECHANISMS",
    "AuthError",
    "AuthExchange",
    "AuthStep",
    "DecodedChallenge",
    "PromptKind",
    "SecretKind",
    "SecretTracker",
    "b64decode_bytes",
    "b64decode_text",
    "b64encode_bytes",
    "b64encode_text",
    "classify_login_prompt",
    "cram_md5_response",
    "decode_challenge",
    "decode_xoauth2_error",
    "display_text",
    "login_responses",
    "mask",
    "parse_challenge",
    "plain_response",
    "secret_forms",
    "xoauth2_string",
]

#: Mechanisms the console can drive itself. No order of strength is implied: all of them
#: belong under TLS (CRAM-MD5 hides the password but forces servers to store it in clear).
SUPPORTED_MECHANISMS: tuple[str, ...] = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2")

#: What a redacted secret looks like; fixed length so it does not reveal the secret's length.
MASK = "********"

PromptKind = Literal["username", "password", "unknown"]
SecretKind = Literal["username", "password", "token"]


class AuthError(ValueError):
    """Bad AUTH input (invalid base64, impossible credentials, misuse of an exchange).

    A ValueError so callers that already guard user input with ``except ValueError`` work;
    the message is written for a student and safe to show as is (it never contains a secret).
    """


# --------------------------------------------------------------------------- base64

_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise AuthError(f"the {what} contains characters that cannot be encoded as UTF-8") from None


def b64encode_bytes(data: bytes) -> str:
    """Standard, padded base64 as one line, the only form SMTP AUTH accepts."""
    return base64.b64encode(data).decode("ascii")


def b64encode_text(text: str) -> str:
    """UTF-8, then base64: what a student would otherwise do with an online encoder."""
    return b64encode_bytes(_utf8(text, "text"))


def b64decode_bytes(data: str, *, allow_missing_padding: bool = False) -> bytes:
    """Strict RFC 4648 decoding with a message that says what is wrong and where.

    Surrounding whitespace (a pasted line) is ignored; anything else that a strict server
    would refuse raises `AuthError`. With ``allow_missing_padding`` the ``=`` may be left off,
    as some tools print it that way; the console still shows the padded form it sends.
    """
    text = data.strip()
    for pos, ch in enumerate(text):
        if ch in _B64_ALPHABET or ch == "=":
            continue
        if ch in "-_":
            raise AuthError(
                f"invalid base64: {ch!r} at position {pos} belongs to the URL-safe alphabet; "
                "SMTP AUTH uses the standard one with '+' and '/'"
            )
        if ch.isspace():
            raise AuthError(
                f"invalid base64: whitespace at position {pos}; base64 in SMTP AUTH is one "
                "unbroken word"
            )
        raise AuthError(
            f"invalid base64: {ch!r} at position {pos} is not in the base64 alphabet "
            "(A-Z a-z 0-9 + / and '=' padding at the end)"
        )
    body = text.rstrip("=")
    pads = len(text) - len(body)
    if "=" in body:
        raise AuthError("invalid base64: '=' is padding and may only appear at the end")
    if pads > 2:
        raise AuthError(f"invalid base64: {pads} '=' at the end; padding is at most '=='")
    if len(body) % 4 == 1:
        raise AuthError(
            f"invalid base64: {len(body)} characters of data cannot be base64 "
            "(one character too many or too few; was something cut off?)"
        )
    needed = (-len(body)) % 4
    if pads == 0 and needed and allow_missing_padding:
        text = body + "=" * needed
    elif pads != needed:
        if pads == 0:
            raise AuthError(
                f"invalid base64: length {len(text)} is not a multiple of 4; "
                f"the padding {'=' * needed!r} is missing at the end"
            )
        raise AuthError(
            f"invalid base64: wrong padding, expected {needed} '=' at the end but found {pads}"
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - checks above are stricter
        raise AuthError(f"invalid base64: {exc}") from None


_CONTROL_NAMES = {"\0": "\\0", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def display_text(raw: bytes) -> str:
    """Decoded bytes made safe to print: UTF-8 with replacement, controls made visible.

    NUL shows as ``\\0`` (the separator in PLAIN), other control characters as escapes, so
    a server cannot move the cursor or recolour the student's terminal through a challenge.
    """
    out: list[str] = []
    for ch in raw.decode("utf-8", errors="replace"):
        code = ord(ch)
        if ch in _CONTROL_NAMES:
            out.append(_CONTROL_NAMES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0x80 <= code <= 0x9F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def b64decode_text(data: str, *, allow_missing_padding: bool = False) -> str:
    """Decode base64 to printable text (see `display_text`); `AuthError` if not base64."""
    return display_text(b64decode_bytes(data, allow_missing_padding=allow_missing_padding))


# --------------------------------------------------------------------------- challenges

_334 = re.compile(r"^334(?:[ -]|$)")


def _challenge_payload(reply_text: str) -> str:
    """The base64 part of a challenge, given either the whole ``334 ...`` line or its text."""
    text = reply_text.strip()
    if _334.match(text):
        text = text[3:]
    return text.strip()


@dataclass(frozen=True)
class DecodedChallenge:
    """A server's 334 challenge, decoded as far as possible."""

    payload: str  # the base64 text as received (after "334 ")
    raw: bytes  # decoded bytes; b"" when the payload was not valid base64
    text: str  # printable form; the payload itself when it was not base64
    valid: bool  # whether the payload was valid base64
    error: str = ""  # why not, for the console

    @property
    def kind(self) -> PromptKind:
        """What a LOGIN server seems to ask for; a hint for the prompt only."""
        return classify_login_prompt(self.text)


def parse_challenge(reply_text: str) -> DecodedChallenge:
    """Decode a 334 challenge without ever raising: server input must not crash the console.

    aiosmtpd's LOGIN challenges end in NUL (``User Name\\0``); trailing NULs are dropped so
    the student sees ``User Name``.
    """
    payload = _challenge_payload(reply_text)
    try:
        raw = b64decode_bytes(payload)
    except AuthError as exc:
        return DecodedChallenge(payload, b"", display_text(payload.encode()), False, str(exc))
    return DecodedChallenge(payload, raw, display_text(raw.rstrip(b"\0")), True)


def decode_challenge(reply_text: str) -> str:
    """The text of a 334 challenge (``VXNlcm5hbWU6`` → ``Username:``); `AuthError` if bad."""
    challenge = parse_challenge(reply_text)
    if not challenge.valid:
        raise AuthError(f"the server's challenge is not base64 ({challenge.error})")
    return challenge.text


_PASSWORD_WORDS = (
    "password",
    "passwort",
    "passwd",
    "pass word",
    "passphrase",
    "passcode",
    "contraseña",
    "contrasena",
    "mot de passe",
    "senha",
    "wachtwoord",
    "hasło",
    "haslo",
    "heslo",
    "lösenord",
    "losenord",
    "adgangskode",
    "passord",
    "salasana",
    "jelszó",
    "parola",
    "şifre",
    "sifre",
    "пароль",
    "κωδικός",
    "密码",
    "密碼",
    "口令",
    "パスワード",
    "비밀번호",
    "암호",
)
_USERNAME_WORDS = (
    "username",
    "user name",
    "user",
    "login",
    "account",
    "e-mail",
    "email",
    "benutzer",
    "utilisateur",
    "identifiant",
    "usuario",
    "usuário",
    "utente",
    "gebruiker",
    "användar",
    "brugernavn",
    "brukernavn",
    "käyttäjä",
    "kullanıcı",
    "użytkownik",
    "uživatel",
    "felhasználó",
    "логин",
    "пользовател",
    "用户",
    "用戶",
    "帐号",
    "账号",
    "帳號",
    "ユーザ",
    "사용자",
    "아이디",
)


def classify_login_prompt(decoded: str) -> PromptKind:
    """Guess whether a decoded LOGIN challenge asks for the user name or the password.

    Only picks the console's next prompt (and whether to echo it); the text is merely
    recommended (RFC 4954 leaves LOGIN unspecified), so never base security on it.
    Password words win, so ``Password for user:`` asks for a password.
    """
    text = decoded.replace("\\0", " ").replace("\0", " ").casefold()
    text = " ".join(text.split())
    if any(word in text for word in _PASSWORD_WORDS):
        return "password"
    if any(word in text for word in _USERNAME_WORDS):
        return "username"
    return "unknown"


# --------------------------------------------------------------------------- responses


def _check_credential(value: str, what: str, *, forbid: str = "\0") -> bytes:
    if not value:
        raise AuthError(f"the {what} is empty; the server would only reject it")
    for ch in forbid:
        if ch in value:
            name = {"\0": "NUL", "\x01": "\\x01 (Ctrl-A)"}.get(ch, repr(ch))
            raise AuthError(f"the {what} contains {name}, which this mechanism uses as separator")
    return _utf8(value, what)


def plain_response(user: str, password: str, authzid: str = "") -> str:
    """RFC 4616: base64 of ``authzid NUL user NUL password``; authzid is usually empty."""
    if "\0" in authzid:
        raise AuthError("the authorization identity contains NUL, the PLAIN separator")
    blob = b"\0".join(
        (
            _utf8(authzid, "authorization identity"),
            _check_credential(user, "user name"),
            _check_credential(password, "password"),
        )
    )
    return b64encode_bytes(blob)


def _login_answer(value: str, what: str) -> str:
    return b64encode_bytes(_check_credential(value, what, forbid=""))


def login_responses(user: str, password: str) -> tuple[str, str]:
    """The two LOGIN answers: base64 of the user name, then of the password."""
    return _login_answer(user, "user name"), _login_answer(password, "password")


def _cram_md5(user: str, password: str, challenge: bytes) -> str:
    key = _check_credential(password, "password", forbid="")
    digest = hmac.new(key, challenge, hashlib.md5).hexdigest()
    return b64encode_bytes(_check_credential(user, "user name", forbid="") + b" " + digest.encode())


def cram_md5_response(user: str, password: str, challenge_b64: str) -> str:
    """RFC 2195: base64 of ``user SP hex(HMAC-MD5(password, challenge))``.

    Accepts the challenge with or without its ``334 `` prefix.
    """
    payload = _challenge_payload(challenge_b64)
    try:
        challenge = b64decode_bytes(payload)
    except AuthError as exc:
        raise AuthError(f"the CRAM-MD5 challenge is not base64 ({exc})") from None
    return _cram_md5(user, password, challenge)


def xoauth2_string(user: str, token: str) -> str:
    """Google/Microsoft XOAUTH2: base64 of ``user=U ^A auth=Bearer T ^A ^A``."""
    u = _check_credential(user, "user name", forbid="\x01")
    t = _check_credential(token, "token", forbid="\x01")
    return b64encode_bytes(b"user=" + u + b"\x01auth=Bearer " + t + b"\x01\x01")


def decode_xoauth2_error(b64: str) -> dict[str, object]:
    """The JSON a server puts in its 334 after a rejected XOAUTH2 token; never raises.

    Gmail sends e.g. ``{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}``.
    Anything that is not a base64 JSON object comes back as ``{"raw": <printable text>}``.
    """
    payload = _challenge_payload(b64)
    try:
        raw = b64decode_bytes(payload, allow_missing_padding=True)
    except AuthError:
        return {"raw": display_text(payload.encode("utf-8", errors="replace"))}
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {"raw": display_text(raw)}
    if isinstance(value, dict):
        return value
    return {"raw": display_text(raw)}


# --------------------------------------------------------------------------- secrets


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


_AUTH_COMMAND = re.compile(r"^(\s*AUTH\s+\S+)(\s+)(\S.*)$", re.IGNORECASE | re.DOTALL)


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

    def track(self, exchange: AuthExchange) -> None:
        """Take the lines and secrets of an exchange (call again as it progresses)."""
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


# --------------------------------------------------------------------------- exchange


@dataclass(frozen=True)
class AuthStep:
    """What the console should do next in an AUTH exchange.

    Exactly one of: ``need`` is set (ask the student for that value, then call
    `AuthExchange.provide`), ``line`` is not None (send it, then feed the reply; it may be
    the empty line XOAUTH2 wants after an error), or ``done``.
    """

    need: SecretKind | None = None
    line: str | None = None
    challenge: str | None = None  # decoded server challenge, printable
    done: bool = False
    success: bool | None = None  # set when done: True after 235
    secret: bool = False  # the line carries a credential: never echo or log it as is
    note: str = ""  # a short explanation for the student

    @property
    def echo(self) -> bool:
        """Whether the console may echo what the student types for ``need``."""
        return self.need == "username"


class _HasReply(Protocol):
    @property
    def code(self) -> int | None: ...

    @property
    def text(self) -> str: ...


_Target = Literal["command", "plain", "login-user", "login-pass", "cram", "xoauth2"]

_NEEDS: dict[tuple[str, _Target], tuple[SecretKind, ...]] = {
    ("PLAIN", "plain"): ("username", "password"),
    ("LOGIN", "login-user"): ("username",),
    ("LOGIN", "login-pass"): ("password",),
    ("CRAM-MD5", "cram"): ("username", "password"),
    ("XOAUTH2", "xoauth2"): ("username", "token"),
}
_FIRST_RESPONSE: dict[str, _Target] = {
    "PLAIN": "plain",
    "LOGIN": "login-user",
    "XOAUTH2": "xoauth2",
}


class AuthExchange:
    """One AUTH conversation, without I/O: the console sends lines and feeds replies.

    Typical loop::

        ex = AuthExchange("LOGIN")
        step = ex.start()
        while not step.done:
            while step.need:                       # "username" / "password" / "token"
                step = ex.provide(ask(step.need, echo=step.echo))
            send(step.line)                        # may be "" (XOAUTH2): still send it
            step = ex.feed(*read_reply())          # 334 → next step; 235/4xx/5xx → done

    Credentials can also be given up front; the exchange then asks only for what is
    missing. `cancel` answers a pending challenge with ``*`` (the server replies 501).
    """

    def __init__(
        self,
        mechanism: str,
        *,
        initial_response: bool = False,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        authzid: str = "",
    ) -> None:
        mech = mechanism.strip().upper()
        if mech not in SUPPORTED_MECHANISMS:
            raise AuthError(
                f"mechanism {mechanism!r} is not supported here; "
                f"choose one of {', '.join(SUPPORTED_MECHANISMS)}"
            )
        if initial_response and mech == "CRAM-MD5":
            raise AuthError("CRAM-MD5 cannot send an initial response: the server speaks first")
        self.mechanism = mech
        self.initial_response = initial_response
        self.authzid = authzid
        if "\0" in authzid:
            raise AuthError("the authorization identity contains NUL, the PLAIN separator")
        self._values: dict[SecretKind, str] = {}
        if user is not None:
            self._values["username"] = self._checked("username", user)
        if password is not None:
            self._values["password"] = self._checked("password", password)
        if token is not None:
            self._values["token"] = self._checked("token", token)
        self._phase: Literal["new", "need", "wait", "done"] = "new"
        self._target: _Target = "command"
        self._challenge: DecodedChallenge | None = None
        self._responses = 0  # client responses sent, the initial response included
        self._cancelled = False
        self._secret_lines: list[str] = []
        self.success: bool | None = None

    @classmethod
    def from_command(cls, line: str) -> AuthExchange:
        """An exchange for an ``AUTH <mech> [initial-response]`` line the student typed.

        The console sends the typed line as is, then feeds the replies: the exchange starts
        out waiting for the server. A typed initial response counts as the first response.
        """
        parts = line.split()
        if len(parts) < 2 or parts[0].upper() != "AUTH":
            raise AuthError("expected 'AUTH <mechanism> [initial-response]'")
        if len(parts) > 3:
            raise AuthError("AUTH takes a mechanism and at most one initial response")
        ex = cls(parts[1], initial_response=len(parts) == 3)
        ex._phase = "wait"
        if len(parts) == 3:
            ex._responses = 1
            if parts[2] != "=" and ex.mechanism != "LOGIN":
                ex._secret_lines.append(line.strip())
        return ex

    # -- state

    @property
    def done(self) -> bool:
        return self._phase == "done"

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def user(self) -> str | None:
        return self._values.get("username")

    @property
    def secret_lines(self) -> tuple[str, ...]:
        """Every line this exchange produced that carries a password or token."""
        return tuple(self._secret_lines)

    def secret_values(self) -> tuple[str, ...]:
        """The passwords/tokens given so far, for a `SecretTracker`; never display them."""
        return tuple(v for k, v in self._values.items() if k != "username" and v)

    def __repr__(self) -> str:  # never show credentials
        return (
            f"AuthExchange(mechanism={self.mechanism!r}, phase={self._phase!r}, "
            f"responses={self._responses})"
        )

    # -- driving

    def start(self) -> AuthStep:
        """The first step: the ``AUTH`` command, or the secrets it needs first."""
        if self._phase != "new":
            raise AuthError("this AUTH exchange has already started")
        self._target = "command"
        return self._advance()

    def command(self) -> str:
        """The ``AUTH`` line, when every credential it needs was given up front."""
        step = self.start()
        if step.line is None:
            self._phase = "new"
            raise AuthError(f"AUTH {self.mechanism} with an initial response needs the {step.need}")
        return step.line

    def provide(self, value: str) -> AuthStep:
        """Give the value the last step asked for (typed in plain text by the student)."""
        if self._phase != "need":
            raise AuthError("nothing is being asked for right now")
        kind = self._missing()
        assert kind is not None
        self._values[kind] = self._checked(kind, value)
        return self._advance()

    def cancel(self) -> AuthStep:
        """Abort: answer the pending challenge with ``*`` (RFC 4954), or just stop.

        A value typed at a prompt is never taken as ``*``: a password may well be ``*``.
        """
        if self._phase == "done":
            return AuthStep(done=True, success=self.success, note="the exchange is already over")
        if self._phase == "new" or (self._phase == "need" and self._target == "command"):
            return self._finish(False, "cancelled before anything was sent")
        if self._phase == "wait":
            raise AuthError("the server has not answered yet; cancel at its next challenge")
        self._cancelled = True
        self._phase = "wait"
        return AuthStep(line="*", note=Said("auth", "cancel"))

    def feed_reply(self, reply: _HasReply) -> AuthStep:
        """`feed` for a parsed reply object with ``code`` and ``text``."""
        return self.feed(reply.code, reply.text)

    def feed(self, code: int | None, text: str = "") -> AuthStep:
        """The server's reply to what was just sent; returns the next step."""
        if self._phase != "wait":
            raise AuthError("no reply is expected now: send the pending line first")
        if code == 235:
            return self._finish(True, "235: authenticated")
        if code == 334:
            return self._on_challenge(text)
        if self._cancelled:
            ok = code == 501
            note = "cancelled (501 is the expected answer to '*')"
            if not ok:
                note = f"cancelled; the server answered {code}"
            return self._finish(False, note)
        if code is None:
            return self._finish(False, "the server's reply had no valid code")
        return self._finish(False, _failure_note(code))

    # -- internals

    def _checked(self, kind: SecretKind, value: str) -> str:
        """Refuse a value the mechanism cannot carry now, so building a line never fails."""
        what = {"username": "user name", "password": "password", "token": "token"}[kind]
        if not value:
            raise AuthError(f"the {what} is empty; type it, or cancel")
        forbid = {"PLAIN": "\0", "XOAUTH2": "\x01"}.get(self.mechanism, "")
        _check_credential(value, what, forbid=forbid)
        return value

    def _finish(self, success: bool, note: str) -> AuthStep:
        self._phase = "done"
        self.success = success
        return AuthStep(done=True, success=success, note=note)

    def _needs(self) -> tuple[SecretKind, ...]:
        if self._target == "command":
            if not self.initial_response:
                return ()
            return _NEEDS[(self.mechanism, _FIRST_RESPONSE[self.mechanism])]
        return _NEEDS[(self.mechanism, self._target)]

    def _missing(self) -> SecretKind | None:
        for kind in self._needs():
            if not self._values.get(kind):
                return kind
        return None

    def _advance(self) -> AuthStep:
        shown = self._challenge.text if self._challenge is not None else None
        kind = self._missing()
        if kind is not None:
            self._phase = "need"
            return AuthStep(need=kind, challenge=shown)
        line, secret = self._build()
        self._phase = "wait"
        if secret:
            self._secret_lines.append(line)
        return AuthStep(line=line, challenge=shown, secret=secret)

    def _response(self, target: _Target) -> tuple[str, bool]:
        v = self._values
        if target == "plain":
            return plain_response(v["username"], v["password"], self.authzid), True
        if target == "login-user":
            return _login_answer(v["username"], "user name"), False
        if target == "login-pass":
            return _login_answer(v["password"], "password"), True
        if target == "xoauth2":
            return xoauth2_string(v["username"], v["token"]), True
        assert target == "cram" and self._challenge is not None
        return _cram_md5(v["username"], v["password"], self._challenge.raw), True

    def _build(self) -> tuple[str, bool]:
        if self._target == "command":
            if not self.initial_response:
                return f"AUTH {self.mechanism}", False
            ir, secret = self._response(_FIRST_RESPONSE[self.mechanism])
            self._responses = 1
            return f"AUTH {self.mechanism} {ir}", secret
        line, secret = self._response(self._target)
        self._responses += 1
        return line, secret

    def _protocol_cancel(self, challenge: DecodedChallenge, note: str) -> AuthStep:
        self._cancelled = True
        self._phase = "wait"
        return AuthStep(line="*", challenge=challenge.text, note=note)

    def _on_challenge(self, text: str) -> AuthStep:
        challenge = parse_challenge(text)
        self._challenge = challenge
        if self._cancelled:
            return self._finish(False, "the server sent another challenge after '*'")
        mech = self.mechanism
        if mech == "XOAUTH2" and self._responses == 1:
            error = decode_xoauth2_error(challenge.payload)
            self._responses += 1
            self._phase = "wait"
            return AuthStep(
                line="",
                challenge=json.dumps(error, ensure_ascii=False),
                note=Said("auth", "xoauth2_rejected"),
            )
        if mech == "LOGIN":
            if self._responses >= 2:
                return self._protocol_cancel(challenge, Said("auth", "login_twice"))
            kind = classify_login_prompt(challenge.text)
            if kind == "unknown":
                kind = "username" if self._responses == 0 else "password"
            self._target = "login-user" if kind == "username" else "login-pass"
            return self._advance()
        if self._responses >= 1:
            return self._protocol_cancel(challenge, Said("auth", "one_response", mechanism=mech))
        if mech == "CRAM-MD5":
            if not challenge.valid:
                return self._protocol_cancel(
                    challenge,
                    Said("auth", "cram_not_base64", error=str(challenge.error)),
                )
            self._target = "cram"
            return self._advance()
        self._target = _FIRST_RESPONSE[mech]
        return self._advance()


_FAILURES = {
    432: "a password transition is needed",
    454: "temporary authentication failure; try again later",
    500: "the server does not know AUTH (did you send EHLO, not HELO?)",
    501: "the server could not read the response (bad base64, or cancelled)",
    502: "AUTH is not implemented here",
    503: "bad sequence: already authenticated, or inside a mail transaction",
    504: "the server does not offer this mechanism",
    530: "authentication required",
    534: "the server thinks this mechanism is too weak",
    535: "bad credentials",
    538: "encryption required first: use STARTTLS",
}


def _failure_note(code: int) -> str:
    known = _FAILURES.get(code)
    if known:
        return f"{code}: {known}"
    if 400 <= code < 500:
        return f"{code}: temporary failure"
    if 500 <= code < 600:
        return f"{code}: authentication failed"
    return f"{code}: unexpected reply to AUTH"
