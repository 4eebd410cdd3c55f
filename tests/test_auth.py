"""SMTP AUTH encodings, the sans-I/O exchange, and secret redaction."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import socket
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtp_tutor.core.auth import (
    AuthError,
    b64decode_bytes,
    b64decode_text,
    b64encode_bytes,
    b64encode_text,
    classify_login_prompt,
    cram_md5_response,
    decode_challenge,
    decode_xoauth2_error,
    display_text,
    login_responses,
    parse_challenge,
    plain_response,
    xoauth2_string,
)
from smtp_tutor.core.auth_exchange import SUPPORTED_MECHANISMS, AuthExchange, AuthStep
from smtp_tutor.core.redaction import MASK, SecretTracker, mask, secret_forms

RFC2195_CHALLENGE = "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
RFC2195_RESPONSE = "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"

# aiosmtpd's LOGIN challenges are base64 of "User Name\0" and "Password\0".
AIOSMTPD_USER = base64.b64encode(b"User Name\0").decode()
AIOSMTPD_PASS = base64.b64encode(b"Password\0").decode()

# ------------------------------------------------------------------ base64


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("", ""),
        ("Username:", "VXNlcm5hbWU6"),
        ("Password:", "UGFzc3dvcmQ6"),
        ("a", "YQ=="),
        ("ab", "YWI="),
        ("abc", "YWJj"),
        ("密码", "5a+G56CB"),
        ("pässwörd", "cMOkc3N3w7ZyZA=="),
    ],
)
def test_b64_text_vectors(text: str, encoded: str) -> None:
    assert b64encode_text(text) == encoded
    assert b64decode_text(encoded) == text


def test_b64_uses_standard_alphabet() -> None:
    assert b64encode_bytes(b"\xfb\xff") == "+/8="


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("abc", "padding '=' is missing"),
        ("YQ", "padding '==' is missing"),
        ("YQ=", "expected 2 '='"),
        ("YWJj=", "expected 0 '='"),
        ("YQ===", "padding is at most"),
        ("Y=Q=", "may only appear at the end"),
        ("YQ==YQ==", "may only appear at the end"),
        ("Y", "cannot be base64"),
        ("YWJjZ", "cannot be base64"),
        ("YW Jj", "whitespace at position 2"),
        ("YW\nJj", "whitespace"),
        ("-_8=", "URL-safe"),
        ("YW*j", "'*' at position 2"),
        ("YWJé", "'é' at position 3"),
        ("334 VXNlcm5hbWU6", "whitespace"),
    ],
)
def test_b64_strict_errors(bad: str, fragment: str) -> None:
    with pytest.raises(AuthError, match="invalid base64") as info:
        b64decode_bytes(bad)
    assert fragment in str(info.value)
    with pytest.raises(AuthError):
        b64decode_text(bad)


def test_auth_error_is_value_error() -> None:
    assert issubclass(AuthError, ValueError)


def test_b64_trims_surrounding_whitespace_only() -> None:
    assert b64decode_text("  VXNlcm5hbWU6\r\n") == "Username:"
    assert b64decode_bytes("\tYQ== ") == b"a"


def test_b64_missing_padding_is_opt_in() -> None:
    assert b64decode_bytes("YQ", allow_missing_padding=True) == b"a"
    assert b64decode_bytes("YWI", allow_missing_padding=True) == b"ab"
    assert b64decode_bytes("YWJj", allow_missing_padding=True) == b"abc"
    with pytest.raises(AuthError):  # one char over a group is never valid
        b64decode_bytes("YWJjZ", allow_missing_padding=True)
    with pytest.raises(AuthError):  # wrong padding is still wrong
        b64decode_bytes("YQ=", allow_missing_padding=True)


def test_b64_decode_text_shows_nul_and_controls() -> None:
    assert b64decode_text("dGVzdAB0ZXN0ADEyMzQ=") == "test\\0test\\01234"
    assert display_text(b"a\x1b[31mred\x07\x7f") == "a\\x1b[31mred\\x07\\x7f"
    assert display_text(b"a\tb\r\nc") == "a\\tb\\r\\nc"
    assert display_text("\u009b".encode()) == "\\u009b"  # C1 CSI
    assert display_text(b"\xff\xfe ok") == "\ufffd\ufffd ok"  # replacement, not an error


def test_b64encode_text_rejects_unencodable() -> None:
    with pytest.raises(AuthError, match="UTF-8"):
        b64encode_text("\ud800")


@given(st.binary())
def test_b64_bytes_round_trip(data: bytes) -> None:
    assert b64decode_bytes(b64encode_bytes(data)) == data


printable = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")).filter(lambda c: not 0x80 <= ord(c) <= 0x9F)
)


@given(printable)
def test_b64_text_round_trip(text: str) -> None:
    assert b64decode_text(b64encode_text(text)) == text


@given(st.text())
def test_b64_decode_arbitrary_text_raises_only_auth_error(text: str) -> None:
    # Any other exception escaping fails the test.
    for decode in (b64decode_bytes, b64decode_text, decode_challenge):
        with contextlib.suppress(AuthError):
            decode(text)


@given(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=16
    )
)
def test_b64_agrees_with_strict_stdlib(text: str) -> None:
    """Never looser than ``b64decode(validate=True)`` (what aiosmtpd uses), never stricter
    on canonical input."""
    try:
        expected: bytes | None = base64.b64decode(text, validate=True)
    except binascii.Error:
        expected = None
    try:
        got: bytes | None = b64decode_bytes(text)
    except AuthError:
        got = None
    if got is not None:
        assert got == expected
    if expected is not None and b64encode_bytes(expected) == text:
        assert got == expected


def test_b64_stricter_than_stdlib_on_surplus_padding() -> None:
    with pytest.raises(AuthError, match="expected 0 '='"):
        b64decode_bytes("YWJj=")
    # Up to Python 3.12 the stdlib lets this through even with validate=True; 3.13 refuses
    # it too ("Excess padding not allowed"). Ours refuses it on every version.
    if sys.version_info < (3, 13):
        assert base64.b64decode("YWJj=", validate=True) == b"abc"
    else:
        with pytest.raises(binascii.Error):
            base64.b64decode("YWJj=", validate=True)
    # Non-zero pad bits are allowed by RFC 4648 §3.5 ("MAY reject"); like servers, accept.
    assert b64decode_bytes("QR==") == b"A"


# ------------------------------------------------------------------ challenges


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        ("334 VXNlcm5hbWU6", "Username:"),  # Postfix / most servers
        ("334 UGFzc3dvcmQ6", "Password:"),
        (f"334 {AIOSMTPD_USER}", "User Name"),  # aiosmtpd ends its prompts in NUL
        (f"334 {AIOSMTPD_PASS}", "Password"),
        ("VXNlcm5hbWU6", "Username:"),  # text only, without the code
        ("334 ", ""),
        ("334", ""),
        ("", ""),
        ("334 VXNlcm5hbWU6\r\n", "Username:"),
        (f"334 {RFC2195_CHALLENGE}", "<1896.697170952@postoffice.reston.mci.net>"),
    ],
)
def test_decode_challenge(reply: str, text: str) -> None:
    assert decode_challenge(reply) == text


def test_decode_challenge_rejects_non_base64() -> None:
    with pytest.raises(AuthError, match="not base64"):
        decode_challenge("334 Go ahead")


def test_parse_challenge_is_tolerant() -> None:
    bad = parse_challenge("334 Go ahead\x1b")
    assert not bad.valid and bad.raw == b"" and bad.text == "Go ahead\\x1b"
    assert "invalid base64" in bad.error
    good = parse_challenge(f"334 {AIOSMTPD_USER}")
    assert good.valid and good.raw == b"User Name\0" and good.kind == "username"


@given(st.text())
def test_parse_challenge_never_raises(text: str) -> None:
    challenge = parse_challenge(text)
    assert isinstance(challenge.text, str)
    assert challenge.valid == (challenge.error == "")


@pytest.mark.parametrize(
    ("prompt", "kind"),
    [
        ("Username:", "username"),
        ("User Name", "username"),
        ("User Name\\0", "username"),
        ("user", "username"),
        ("Login:", "username"),
        ("Benutzername:", "username"),
        ("用户名", "username"),
        ("Password:", "password"),
        ("Password", "password"),
        ("PASSWORD:", "password"),
        ("Passwort:", "password"),
        ("Mot de passe :", "password"),
        ("Contraseña:", "password"),
        ("密码", "password"),
        ("Пароль:", "password"),
        ("Password for user:", "password"),  # password words win
        ("", "unknown"),
        ("Go ahead", "unknown"),
        ("<1896.697170952@postoffice.reston.mci.net>", "unknown"),
    ],
)
def test_classify_login_prompt(prompt: str, kind: str) -> None:
    assert classify_login_prompt(prompt) == kind


# ------------------------------------------------------------------ responses


def test_plain_rfc4954_example() -> None:
    # RFC 4954 §4: "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=" is test/test/1234.
    assert plain_response("test", "1234", authzid="test") == "dGVzdAB0ZXN0ADEyMzQ="
    assert b64decode_bytes("dGVzdAB0ZXN0ADEyMzQ=") == b"test\0test\x001234"


def test_plain_rfc4616_examples() -> None:
    assert plain_response("tim", "tanstaaftanstaaf") == "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
    assert b64decode_bytes(plain_response("Kurt", "xipj3plmq", "Ursel")) == (
        b"Ursel\0Kurt\0xipj3plmq"
    )
    assert plain_response("test", "1234") == b64encode_bytes(b"\0test\x001234")


def test_plain_unicode() -> None:
    encoded = plain_response("用户@例子.中国", "pässwörd")
    assert b64decode_bytes(encoded) == "\0用户@例子.中国\0pässwörd".encode()


@pytest.mark.parametrize(
    ("user", "password", "authzid", "fragment"),
    [
        ("", "pw", "", "user name is empty"),
        ("u", "", "", "password is empty"),
        ("a\0b", "pw", "", "NUL"),
        ("u", "p\0w", "", "NUL"),
        ("u", "pw", "a\0", "NUL"),
        ("u", "\udcff", "", "UTF-8"),
    ],
)
def test_plain_rejects_impossible_credentials(
    user: str, password: str, authzid: str, fragment: str
) -> None:
    with pytest.raises(AuthError, match=fragment) as info:
        plain_response(user, password, authzid)
    assert password not in str(info.value) or not password


def test_login_responses() -> None:
    assert login_responses("test", "1234") == ("dGVzdA==", "MTIzNA==")
    assert login_responses("ü", "密") == (b64encode_text("ü"), b64encode_text("密"))
    with pytest.raises(AuthError):
        login_responses("", "x")
    with pytest.raises(AuthError):
        login_responses("x", "")


def test_cram_md5_rfc2195_example() -> None:
    response = cram_md5_response("tim", "tanstaaftanstaaf", RFC2195_CHALLENGE)
    assert response == RFC2195_RESPONSE
    assert b64decode_text(response) == "tim b913a602c7eda7a495b4e6e7334d3890"
    # The reply line as received works too.
    assert cram_md5_response("tim", "tanstaaftanstaaf", f"334 {RFC2195_CHALLENGE}") == response


def test_cram_md5_matches_hmac_for_unicode() -> None:
    challenge = "<12345.67890@例子.test>".encode()
    expected = hmac.new("pässwörd".encode(), challenge, hashlib.md5).hexdigest()
    got = cram_md5_response("ünï", "pässwörd", b64encode_bytes(challenge))
    assert b64decode_bytes(got) == "ünï ".encode() + expected.encode()


def test_cram_md5_bad_challenge() -> None:
    with pytest.raises(AuthError, match="CRAM-MD5 challenge is not base64"):
        cram_md5_response("tim", "pw", "not base64!")


def test_xoauth2_string() -> None:
    got = xoauth2_string("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    # Google's documented example.
    assert got == (
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
        "YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )
    assert b64decode_bytes(got) == (
        b"user=someuser@example.com\x01auth=Bearer "
        b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
    )
    with pytest.raises(AuthError, match="Ctrl-A"):
        xoauth2_string("a\x01b", "t")
    with pytest.raises(AuthError, match="token is empty"):
        xoauth2_string("a", "")


def test_decode_xoauth2_error() -> None:
    error = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
    encoded = b64encode_text(json.dumps(error))
    assert decode_xoauth2_error(encoded) == error
    assert decode_xoauth2_error(f"334 {encoded}") == error
    assert decode_xoauth2_error(encoded.rstrip("=")) == error  # missing padding forgiven
    assert decode_xoauth2_error("334 not base64!") == {"raw": "not base64!"}
    assert decode_xoauth2_error(b64encode_text("[1, 2]")) == {"raw": "[1, 2]"}
    assert decode_xoauth2_error(b64encode_text("{bad json")) == {"raw": "{bad json"}
    assert decode_xoauth2_error(b64encode_bytes(b"\xff\x00")) == {"raw": "\ufffd\\0"}
    assert decode_xoauth2_error("") == {"raw": ""}


@given(st.text())
def test_decode_xoauth2_error_never_raises(text: str) -> None:
    assert isinstance(decode_xoauth2_error(text), dict)


@given(st.binary())
def test_decode_xoauth2_error_never_raises_on_any_payload(raw: bytes) -> None:
    assert isinstance(decode_xoauth2_error(b64encode_bytes(raw)), dict)


def test_deeply_nested_json_does_not_crash() -> None:
    assert "raw" in decode_xoauth2_error(b64encode_text("[" * 100_000))


# ------------------------------------------------------------------ secrets


def test_secret_forms_without_user() -> None:
    forms = secret_forms("1234")
    assert {"1234", "MTIzNA==", "MTIzNA"} <= forms
    assert secret_forms("") == set()


def test_secret_forms_with_user_include_exact_blobs() -> None:
    forms = secret_forms("1234", user="test")
    assert plain_response("test", "1234") in forms
    assert plain_response("test", "1234", authzid="test") in forms  # RFC 4954 example
    assert xoauth2_string("test", "1234") in forms
    assert "test" not in forms  # a user name is not a secret


def test_secret_forms_find_plain_blob_with_unknown_user() -> None:
    password = "correct horse battery staple"
    forms = secret_forms(password)
    for user in ("a", "ab", "abc", "bob@example.com"):
        for authzid in ("", "x", "admin"):
            blob = plain_response(user, password, authzid)
            assert any(form in blob for form in forms), (user, authzid)


@settings(max_examples=100)
@given(
    st.text(min_size=1, max_size=20).filter(lambda s: "\0" not in s and "\x01" not in s),
    st.text(min_size=12, max_size=40).filter(lambda s: "\0" not in s and "\x01" not in s),
)
def test_tracker_redacts_plain_and_xoauth2_without_knowing_user(user: str, secret: str) -> None:
    tracker = SecretTracker()
    tracker.add_secret(secret)
    for line in (f"AUTH PLAIN {plain_response(user, secret)}", xoauth2_string(user, secret)):
        assert tracker.is_secret(line)
        redacted = tracker.redact(line)
        assert MASK in redacted
        assert line.split()[-1] not in redacted


def test_mask() -> None:
    assert mask("AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=") == f"AUTH PLAIN {MASK}"
    assert mask("auth plain dGVzdAB0ZXN0ADEyMzQ=\r\n") == f"auth plain {MASK}\r\n"
    assert mask("AUTH LOGIN") == "AUTH LOGIN"
    assert mask("AUTH PLAIN =") == "AUTH PLAIN ="
    assert mask("MTIzNA==") == MASK
    assert mask("MTIzNA==\r\n") == MASK + "\r\n"
    assert mask("*") == "*"
    assert mask("") == ""


def test_tracker_redacts_lines_and_words() -> None:
    tracker = SecretTracker()
    tracker.add_line("AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=\r\n")
    tracker.add_secret("1234")
    tracker.add_line("*")  # the cancel hides nothing
    transcript = (
        "C: EHLO me\r\n"
        "C: AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=\r\n"
        "C: MTIzNA==\r\n"
        "typed: 1234\n"
        "port 12345 is fine\n"
        "*\n"
    )
    assert tracker.redact(transcript) == (
        "C: EHLO me\r\n"
        f"C: AUTH PLAIN {MASK}\r\n"
        f"C: {MASK}\r\n"
        f"typed: {MASK}\n"
        "port 12345 is fine\n"  # a short secret only matches whole words
        "*\n"
    )
    assert tracker.redact("AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=") == f"AUTH PLAIN {MASK}"
    assert not tracker.is_secret("port 12345")
    assert tracker.is_secret("MTIzNA")
    assert "*" not in tracker.lines


def test_tracker_redacts_secret_with_spaces() -> None:
    tracker = SecretTracker()
    tracker.add_secret("my secret pw")
    assert tracker.redact("password was my secret pw, ok") == f"password was {MASK}, ok"


# ------------------------------------------------------------------ AuthExchange


def drive(ex: AuthExchange, replies: list[tuple[int, str]], values: dict[str, str]) -> list[str]:
    """Run an exchange against scripted replies; return the lines it sent."""
    sent: list[str] = []
    step = ex.start()
    replies = list(replies)
    while not step.done:
        while step.need:
            step = ex.provide(values[step.need])
        assert step.line is not None
        sent.append(step.line)
        step = ex.feed(*replies.pop(0))
    assert replies == []
    return sent


def test_supported_mechanisms() -> None:
    assert set(SUPPORTED_MECHANISMS) == {"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"}


def test_login_exchange_step_by_step() -> None:
    ex = AuthExchange("login")
    assert ex.mechanism == "LOGIN"
    assert ex.start() == AuthStep(line="AUTH LOGIN")
    step = ex.feed(334, "VXNlcm5hbWU6")
    assert step.need == "username" and step.echo and step.challenge == "Username:"
    step = ex.provide("test")
    assert step.line == "dGVzdA==" and not step.secret
    step = ex.feed(334, "UGFzc3dvcmQ6")
    assert step.need == "password" and not step.echo and step.challenge == "Password:"
    step = ex.provide("1234")
    assert step.line == "MTIzNA==" and step.secret
    step = ex.feed(235, "2.7.0 Authentication successful")
    assert step.done and step.success and ex.done and ex.success
    assert ex.secret_lines == ("MTIzNA==",)
    assert ex.secret_values() == ("1234",)
    assert "1234" not in repr(ex) and "test" not in repr(ex)


def test_login_uses_the_prompt_text_with_position_as_fallback() -> None:
    values = {"username": "u", "password": "p"}
    # aiosmtpd's NUL-terminated prompts.
    sent = drive(
        AuthExchange("LOGIN"),
        [(334, AIOSMTPD_USER), (334, AIOSMTPD_PASS), (235, "ok")],
        values,
    )
    assert sent == ["AUTH LOGIN", "dQ==", "cA=="]
    # Prompts that say nothing useful: first is the user, second the password.
    sent = drive(
        AuthExchange("LOGIN"),
        [(334, b64encode_text("?")), (334, ""), (235, "ok")],
        values,
    )
    assert sent == ["AUTH LOGIN", "dQ==", "cA=="]
    # Even garbage that is not base64 does not stop the exchange.
    sent = drive(AuthExchange("LOGIN"), [(334, "Go on"), (334, "!"), (535, "no")], values)
    assert sent == ["AUTH LOGIN", "dQ==", "cA=="]


def test_login_with_initial_response() -> None:
    ex = AuthExchange("LOGIN", initial_response=True)
    step = ex.start()
    assert step.need == "username"
    step = ex.provide("test")
    assert step.line == "AUTH LOGIN dGVzdA==" and not step.secret
    assert ex.feed(334, "UGFzc3dvcmQ6").need == "password"
    assert ex.provide("1234").line == "MTIzNA=="


def test_login_third_challenge_is_cancelled() -> None:
    ex = AuthExchange("LOGIN", user="u", password="p")
    sent = drive(ex, [(334, ""), (334, ""), (334, ""), (501, "5.7.0 Auth aborted")], {})
    assert sent == ["AUTH LOGIN", "dQ==", "cA==", "*"]
    assert ex.done and ex.success is False and ex.cancelled


def test_plain_with_initial_response_given_up_front() -> None:
    ex = AuthExchange("PLAIN", initial_response=True, user="test", password="1234")
    assert ex.command() == "AUTH PLAIN AHRlc3QAMTIzNA=="
    assert ex.feed(235, "2.7.0 ok").success is True
    assert ex.secret_lines == ("AUTH PLAIN AHRlc3QAMTIzNA==",)


def test_plain_with_authzid_matches_rfc4954() -> None:
    ex = AuthExchange("PLAIN", initial_response=True, user="test", password="1234", authzid="test")
    assert ex.command() == "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ="


def test_command_needs_credentials_for_initial_response() -> None:
    ex = AuthExchange("PLAIN", initial_response=True, user="test")
    with pytest.raises(AuthError, match="needs the password"):
        ex.command()
    # The exchange is still usable: start() asks for what is missing.
    step = ex.start()
    assert step.need == "password"
    assert ex.provide("1234").line == "AUTH PLAIN AHRlc3QAMTIzNA=="


def test_plain_without_initial_response_waits_for_empty_challenge() -> None:
    sent = drive(
        AuthExchange("PLAIN"),
        [(334, ""), (235, "2.7.0 ok")],
        {"username": "test", "password": "1234"},
    )
    assert sent == ["AUTH PLAIN", "AHRlc3QAMTIzNA=="]


def test_plain_unexpected_second_challenge_cancels() -> None:
    ex = AuthExchange("PLAIN", initial_response=True, user="u", password="p")
    ex.command()
    step = ex.feed(334, "")
    assert step.line == "*" and "cancelling" in step.note
    step = ex.feed(501, "5.7.0 Auth aborted")
    assert step.done and not step.success and "501" in step.note


def test_cram_md5_exchange_with_rfc_example() -> None:
    ex = AuthExchange("CRAM-MD5")
    sent = drive(
        ex,
        [(334, RFC2195_CHALLENGE), (235, "2.7.0 ok")],
        {"username": "tim", "password": "tanstaaftanstaaf"},
    )
    assert sent == ["AUTH CRAM-MD5", RFC2195_RESPONSE]
    assert ex.secret_lines == (RFC2195_RESPONSE,)


def test_cram_md5_shows_challenge_and_cancels_bad_one() -> None:
    ex = AuthExchange("CRAM-MD5", user="tim", password="x")
    ex.command()
    step = ex.feed(334, "<not base64>")
    assert step.line == "*" and "not base64" in step.note
    assert ex.feed(501, "aborted").done


def test_cram_md5_cannot_have_initial_response() -> None:
    with pytest.raises(AuthError, match="server speaks first"):
        AuthExchange("CRAM-MD5", initial_response=True)


def test_xoauth2_success_and_error_challenge() -> None:
    ex = AuthExchange("XOAUTH2", initial_response=True, user="me@example.com")
    step = ex.start()
    assert step.need == "token" and not step.echo
    step = ex.provide("tok")
    assert step.line == f"AUTH XOAUTH2 {xoauth2_string('me@example.com', 'tok')}" and step.secret
    error = {"status": "401", "schemes": "bearer"}
    step = ex.feed(334, b64encode_text(json.dumps(error)))
    assert step.line == "" and json.loads(step.challenge or "") == error
    step = ex.feed(535, "5.7.8 Username and Password not accepted")
    assert step.done and step.success is False and "bad credentials" in step.note


def test_xoauth2_repeated_error_challenge_is_cancelled() -> None:
    ex = AuthExchange("XOAUTH2", initial_response=True, user="u", token="t")
    ex.command()
    assert ex.feed(334, b64encode_text("{}")).line == ""
    step = ex.feed(334, b64encode_text("{}"))
    assert step.line == "*"
    assert ex.feed(501, "aborted").done


def test_xoauth2_without_initial_response() -> None:
    sent = drive(
        AuthExchange("XOAUTH2"),
        [(334, ""), (235, "ok")],
        {"username": "u", "token": "t"},
    )
    assert sent == ["AUTH XOAUTH2", xoauth2_string("u", "t")]


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        (535, "bad credentials"),
        (538, "STARTTLS"),
        (454, "temporary"),
        (503, "already authenticated"),
        (504, "does not offer"),
        (500, "EHLO"),
        (451, "temporary failure"),
        (550, "authentication failed"),
        (250, "unexpected"),
        (None, "no valid code"),
    ],
)
def test_failures_finish_the_exchange(code: int | None, fragment: str) -> None:
    ex = AuthExchange("LOGIN")
    ex.command()
    step = ex.feed(code, "whatever")
    assert step.done and step.success is False and fragment in step.note
    with pytest.raises(AuthError, match="no reply is expected"):
        ex.feed(235, "late")


def test_cancel_at_a_prompt_sends_star() -> None:
    ex = AuthExchange("LOGIN")
    ex.command()
    assert ex.feed(334, "VXNlcm5hbWU6").need == "username"
    step = ex.cancel()
    assert step == AuthStep(line="*", note=step.note) and ex.cancelled
    step = ex.feed(501, "5.7.0 Auth aborted")
    assert step.done and step.success is False and "cancelled" in step.note
    assert ex.cancel().done


def test_cancel_before_sending_anything_sends_nothing() -> None:
    ex = AuthExchange("PLAIN", initial_response=True)
    assert ex.start().need == "username"
    step = ex.cancel()
    assert step.done and step.line is None and not ex.cancelled


def test_server_challenging_after_cancel_ends_exchange() -> None:
    ex = AuthExchange("LOGIN")
    ex.command()
    ex.feed(334, "")
    ex.cancel()
    step = ex.feed(334, "")
    assert step.done and step.success is False


def test_misuse_raises_auth_error() -> None:
    with pytest.raises(AuthError, match="not supported"):
        AuthExchange("GSSAPI")
    ex = AuthExchange("LOGIN")
    with pytest.raises(AuthError, match="send the pending line"):
        ex.feed(334, "")
    with pytest.raises(AuthError, match="nothing is being asked"):
        ex.provide("x")
    ex.start()
    with pytest.raises(AuthError, match="already started"):
        ex.start()
    ex.feed(334, "")
    with pytest.raises(AuthError, match="user name is empty"):
        ex.provide("")
    assert ex.provide("u").line == "dQ=="
    with pytest.raises(AuthError, match="not answered yet"):
        ex.cancel()


def test_invalid_value_is_refused_and_asked_again() -> None:
    ex = AuthExchange("PLAIN")
    ex.command()
    assert ex.feed(334, "").need == "username"
    with pytest.raises(AuthError, match="NUL") as info:
        ex.provide("a\0b")
    assert "a\0b" not in str(info.value)
    step = ex.provide("ab")
    assert step.need == "password"
    with pytest.raises(AuthError, match="UTF-8"):
        ex.provide("\udcff")
    assert ex.provide("pw").line == plain_response("ab", "pw")


@pytest.mark.parametrize(
    ("mech", "kwargs"),
    [
        ("PLAIN", {"user": "a\0b"}),
        ("PLAIN", {"authzid": "x\0"}),
        ("XOAUTH2", {"token": "t\x01"}),
        ("LOGIN", {"password": ""}),
    ],
)
def test_invalid_values_up_front(mech: str, kwargs: dict[str, str]) -> None:
    with pytest.raises(AuthError):
        AuthExchange(mech, **kwargs)  # type: ignore[arg-type]


def test_nul_is_fine_where_the_mechanism_allows_it() -> None:
    ex = AuthExchange("LOGIN", user="u", password="p\0w", initial_response=True)
    assert ex.command() == "AUTH LOGIN dQ=="
    assert ex.feed(334, "UGFzc3dvcmQ6").line == b64encode_bytes(b"p\0w")


def test_from_command_typed_by_student() -> None:
    ex = AuthExchange.from_command("auth login")
    assert ex.mechanism == "LOGIN"
    assert ex.feed(334, "VXNlcm5hbWU6").need == "username"

    ex = AuthExchange.from_command("AUTH LOGIN dGVzdA==")  # user already sent
    assert ex.feed(334, "UGFzc3dvcmQ6").need == "password"
    assert ex.secret_lines == ()

    ex = AuthExchange.from_command("AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=\r\n")
    assert ex.secret_lines == ("AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=",)
    assert ex.feed(235, "ok").success

    for bad in ("AUTH", "EHLO x", "AUTH PLAIN a b", "AUTH NTLM"):
        with pytest.raises(AuthError):
            AuthExchange.from_command(bad)


def test_tracker_follows_an_exchange() -> None:
    tracker = SecretTracker()
    ex = AuthExchange("LOGIN", user="test")
    sent = drive(
        ex, [(334, "VXNlcm5hbWU6"), (334, "UGFzc3dvcmQ6"), (235, "ok")], {"password": "1234"}
    )
    tracker.track(ex)
    transcript = "\n".join(f"C: {line}" for line in sent)
    assert tracker.redact(transcript) == f"C: AUTH LOGIN\nC: dGVzdA==\nC: {MASK}"
    # The PLAIN form with this user would be caught as well.
    assert tracker.is_secret(plain_response("test", "1234"))


replies = st.lists(
    st.tuples(
        st.sampled_from([None, 235, 334, 334, 334, 421, 454, 501, 535, 250, 999]),
        st.one_of(st.text(max_size=30), st.binary(max_size=30).map(b64encode_bytes)),
    ),
    max_size=6,
)


@settings(max_examples=300)
@given(st.sampled_from(SUPPORTED_MECHANISMS), st.booleans(), replies, st.booleans())
def test_exchange_survives_any_server_replies(
    mech: str, ir: bool, script: list[tuple[int | None, str]], cancel_first: bool
) -> None:
    if mech == "CRAM-MD5":
        ir = False
    ex = AuthExchange(mech, initial_response=ir)
    step = ex.start()
    last_code: int | None = None
    for code, text in script:
        while step.need:
            step = ex.provide("v")
        assert (step.line is not None) != step.done
        if step.done:
            break
        last_code = code
        step = ex.feed(code, text)
        assert not (step.need and step.line is not None)
        if cancel_first and step.need:
            step = ex.cancel()
            assert step.line == "*"
    assert step.done == ex.done
    if ex.done:
        assert step.success is ex.success is (last_code == 235)
    else:
        assert ex.success is None


# ------------------------------------------------------------------ against a real server


class _Authenticator:
    def __call__(self, server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login == "tëst".encode() and auth_data.password == "pä ss".encode()
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends 535


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def aiosmtpd_port() -> Iterator[int]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    controller = Controller(
        Sink(),
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=_Authenticator(),
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


class _Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def reply(self) -> tuple[int, str]:
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            if line[3:4] != "-":
                return int(line[:3]), line[4:]

    def send(self, line: str) -> tuple[int, str]:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.mark.parametrize(
    ("mech", "ir", "password", "success"),
    [
        ("PLAIN", True, "pä ss", True),
        ("PLAIN", False, "pä ss", True),
        ("LOGIN", False, "pä ss", True),
        ("LOGIN", True, "pä ss", True),
        ("LOGIN", False, "wrong", False),
        ("PLAIN", True, "wrong", False),
    ],
)
def test_exchange_against_aiosmtpd(
    aiosmtpd_port: int, mech: str, ir: bool, password: str, success: bool
) -> None:
    client = _Client(aiosmtpd_port)
    try:
        assert client.reply()[0] == 220
        assert client.send("EHLO client.example")[0] == 250
        ex = AuthExchange(mech, initial_response=ir)
        step = ex.start()
        values = {"username": "tëst", "password": password}
        while not step.done:
            while step.need:
                step = ex.provide(values[step.need])
            assert step.line is not None
            step = ex.feed(*client.send(step.line))
        assert step.success is success
        assert ex.success is success
    finally:
        client.close()


def test_cancel_against_aiosmtpd(aiosmtpd_port: int) -> None:
    client = _Client(aiosmtpd_port)
    try:
        client.reply()
        client.send("EHLO client.example")
        ex = AuthExchange("LOGIN")
        step = ex.feed(*client.send(ex.command()))
        assert step.need == "username" and step.challenge == "User Name"
        step = ex.cancel()
        assert step.line == "*"
        step = ex.feed(*client.send(step.line))
        assert step.done and step.success is False and ex.cancelled
        assert "501 is the expected answer" in step.note
    finally:
        client.close()
