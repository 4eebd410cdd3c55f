"""SMTP AUTH (RFC 4954) encodings: base64, the server's challenges, the client's responses.

The console does the base64 for the student: they type a user name and a password in plain
text, and this module builds the lines to send and decodes what the server says. It stands
apart from the exchange (`auth_exchange`) and from redaction (`secrets`) because transcripts,
diagrams and the console's base64 commands need the encodings alone.

Base64 here is strict RFC 4648 (standard alphabet, padding required unless asked otherwise),
because a server like aiosmtpd decodes with ``validate=True`` and answers
``501 5.5.2 Can't decode base64`` to anything sloppier; catching it here lets the console
explain the mistake before it is sent. Only surrounding whitespace is forgiven.
"""

from __future__ import annotations

import base64
import binascii

from smtp_tutor.core.patterns import LazyPattern
from smtp_tutor.core.records import record

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    from typing import Literal

    PromptKind = Literal["username", "password", "unknown"]

__all__ = [
    "AuthError",
    "DecodedChallenge",
    "apop_digest",
    "b64decode_bytes",
    "b64decode_text",
    "b64encode_bytes",
    "b64encode_text",
    "classify_login_prompt",
    "cram_md5_answer",
    "cram_md5_response",
    "credential_bytes",
    "decode_challenge",
    "decode_xoauth2_error",
    "display_text",
    "login_answer",
    "login_responses",
    "parse_challenge",
    "plain_response",
    "xoauth2_string",
]


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

_334 = LazyPattern(r"^334(?:[ -]|$)")


def _challenge_payload(reply_text: str) -> str:
    """The base64 part of a challenge, given either the whole ``334 ...`` line or its text."""
    text = reply_text.strip()
    if _334.match(text):
        text = text[3:]
    return text.strip()


@record(frozen=True)
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


def credential_bytes(value: str, what: str, *, forbid: str = "\0") -> bytes:
    """A user name, password or token as UTF-8; AuthError if empty or holding a separator."""
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
            credential_bytes(user, "user name"),
            credential_bytes(password, "password"),
        )
    )
    return b64encode_bytes(blob)


def login_answer(value: str, what: str) -> str:
    """One LOGIN answer (RFC 4954 examples): the value in base64, checked first."""
    return b64encode_bytes(credential_bytes(value, what, forbid=""))


def login_responses(user: str, password: str) -> tuple[str, str]:
    """The two LOGIN answers: base64 of the user name, then of the password."""
    return login_answer(user, "user name"), login_answer(password, "password")


def cram_md5_answer(user: str, password: str, challenge: bytes) -> str:
    """RFC 2195 on the decoded challenge: base64 of ``user SP hex(HMAC-MD5(password))``."""
    import hashlib  # here: OpenSSL's digests load only for CRAM-MD5 and APOP
    import hmac

    key = credential_bytes(password, "password", forbid="")
    digest = hmac.new(key, challenge, hashlib.md5).hexdigest()
    return b64encode_bytes(credential_bytes(user, "user name", forbid="") + b" " + digest.encode())


def apop_digest(timestamp: str, secret: str) -> str:
    """RFC 1939 §7: MD5 of a POP3 greeting's ``<timestamp>`` followed by the secret, lower hex."""
    import hashlib

    data = timestamp.encode("utf-8") + credential_bytes(secret, "secret", forbid="")
    return hashlib.md5(data).hexdigest()


def cram_md5_response(user: str, password: str, challenge_b64: str) -> str:
    """RFC 2195: base64 of ``user SP hex(HMAC-MD5(password, challenge))``.

    Accepts the challenge with or without its ``334 `` prefix.
    """
    payload = _challenge_payload(challenge_b64)
    try:
        challenge = b64decode_bytes(payload)
    except AuthError as exc:
        raise AuthError(f"the CRAM-MD5 challenge is not base64 ({exc})") from None
    return cram_md5_answer(user, password, challenge)


def xoauth2_string(user: str, token: str) -> str:
    """Google/Microsoft XOAUTH2: base64 of ``user=U ^A auth=Bearer T ^A ^A``."""
    u = credential_bytes(user, "user name", forbid="\x01")
    t = credential_bytes(token, "token", forbid="\x01")
    return b64encode_bytes(b"user=" + u + b"\x01auth=Bearer " + t + b"\x01\x01")


def user_in_answer(mechanism: str | None, decoded: str) -> str | None:
    """The user name inside a decoded PLAIN, CRAM-MD5 or XOAUTH2 answer; None if not one.

    The one reader of a user name in an AUTH answer, for the toolbar, transcripts and
    diagrams alike: it never returns, or looks past, the secret part.
    """
    mechanism = (mechanism or "").upper()
    if mechanism == "PLAIN":
        parts = decoded.split("\0")
        return parts[1] if len(parts) == 3 else None
    if mechanism == "CRAM-MD5":
        return decoded.rpartition(" ")[0] or None
    if mechanism == "XOAUTH2" and decoded.startswith("user="):
        return decoded[5:].split("\x01", 1)[0]
    return None


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
    import json

    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {"raw": display_text(raw)}
    if isinstance(value, dict):
        return value
    return {"raw": display_text(raw)}
