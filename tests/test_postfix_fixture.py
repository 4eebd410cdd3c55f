"""The real-Postfix fixture behaves like the MTA the integration tests rely on.

Checked with the standard library's smtplib, so a fault here is in the fixture, not in
smtp-tutor's own client code.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import uuid
from collections.abc import Iterator

import pytest

from tests.postfix import PostfixInstance

pytestmark = pytest.mark.postfix


def _tls_context(instance: PostfixInstance) -> ssl.SSLContext:
    """Verifying context: the fixture's certificate must really validate for 127.0.0.1."""
    return ssl.create_default_context(cafile=str(instance.cert_path))


def _connect(instance: PostfixInstance) -> Iterator[smtplib.SMTP]:
    client = smtplib.SMTP(instance.host, instance.port, local_hostname="client.test", timeout=10)
    try:
        yield client
    finally:
        try:
            client.quit()
        except smtplib.SMTPException:
            client.close()


@pytest.fixture
def client(postfix: PostfixInstance) -> Iterator[smtplib.SMTP]:
    yield from _connect(postfix)


@pytest.fixture
def tls_only_client(postfix_tls_only: PostfixInstance) -> Iterator[smtplib.SMTP]:
    yield from _connect(postfix_tls_only)


def _auth_mechanisms(client: smtplib.SMTP) -> set[str]:
    return set(client.esmtp_features.get("auth", "").upper().split())


def test_ehlo_offers_starttls_and_auth(client: smtplib.SMTP) -> None:
    code, _ = client.ehlo()
    assert code == 250
    assert client.has_extn("starttls")
    assert {"PLAIN", "LOGIN", "CRAM-MD5"} <= _auth_mechanisms(client)


def test_starttls_verifies_and_ehlo_again_shows_auth(
    client: smtplib.SMTP, postfix: PostfixInstance
) -> None:
    client.ehlo()
    code, _ = client.starttls(context=_tls_context(postfix))
    assert code == 220
    assert isinstance(client.sock, ssl.SSLSocket)
    client.ehlo()
    assert not client.has_extn("starttls")
    assert {"PLAIN", "LOGIN"} <= _auth_mechanisms(client)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_auth_succeeds_after_starttls(
    client: smtplib.SMTP, postfix: PostfixInstance, mechanism: str
) -> None:
    client.ehlo()
    client.starttls(context=_tls_context(postfix))
    client.ehlo()
    client.user, client.password = postfix.user, postfix.password
    authobject = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
    code, _ = client.auth(mechanism, authobject)
    assert code == 235


def test_full_address_is_also_a_valid_login(client: smtplib.SMTP, postfix: PostfixInstance) -> None:
    client.ehlo()
    code, _ = client.login(postfix.address, postfix.password)
    assert code == 235


def test_wrong_password_is_535(client: smtplib.SMTP, postfix: PostfixInstance) -> None:
    client.ehlo()
    client.user, client.password = postfix.user, "not-the-password"
    with pytest.raises(smtplib.SMTPAuthenticationError) as excinfo:
        client.auth("PLAIN", client.auth_plain)
    assert excinfo.value.smtp_code == 535


def test_message_with_dot_lines_is_delivered_intact(
    client: smtplib.SMTP, postfix: PostfixInstance
) -> None:
    token = uuid.uuid4().hex
    headers = [
        f"From: Sender <sender@{postfix.domain}>",
        f"To: Student <{postfix.address}>",
        f"Subject: dot test {token}",
        f"Message-ID: <{token}@client.test>",
        "Date: Thu, 01 Jan 2026 00:00:00 +0000",
    ]
    body = [
        "First line.",
        ".leading dot",
        "..two leading dots",
        ".",
        " . space then dot",
        "last line",
    ]
    message = "\r\n".join([*headers, "", *body]) + "\r\n"
    refused = client.sendmail(f"sender@{postfix.domain}", [postfix.address], message)
    assert refused == {}

    delivered = postfix.wait_for_message(containing=token.encode())
    assert b"\r\n" not in delivered  # Postfix stores LF line ends
    head, _, delivered_body = delivered.partition(b"\n\n")
    assert delivered_body == ("\n".join(body) + "\n").encode()
    head_lines = head.split(b"\n")
    for header in headers:
        assert header.encode() in head_lines
    assert any(line.startswith(b"Received: from client.test") for line in head_lines)


def test_postmaster_is_delivered_to_student(client: smtplib.SMTP, postfix: PostfixInstance) -> None:
    token = uuid.uuid4().hex
    message = f"Subject: {token}\r\n\r\nhello postmaster\r\n"
    client.sendmail("sender@client.test", [f"postmaster@{postfix.domain}"], message)
    delivered = postfix.wait_for_message(containing=token.encode())
    assert delivered.endswith(b"\n\nhello postmaster\n")


def test_relay_to_external_domain_is_refused(client: smtplib.SMTP) -> None:
    client.ehlo()
    code, _ = client.mail("sender@client.test")
    assert code == 250
    code, reply = client.rcpt("someone@example.com")
    assert code in (454, 550, 554)
    assert b"Relay access denied" in reply


def test_unknown_local_user_is_refused(client: smtplib.SMTP, postfix: PostfixInstance) -> None:
    client.ehlo()
    client.mail("sender@client.test")
    code, _ = client.rcpt(f"nobody@{postfix.domain}")
    assert code == 550


def test_tls_only_hides_auth_until_starttls(
    tls_only_client: smtplib.SMTP, postfix_tls_only: PostfixInstance
) -> None:
    tls_only_client.ehlo()
    assert tls_only_client.has_extn("starttls")
    assert not tls_only_client.has_extn("auth")
    tls_only_client.starttls(context=_tls_context(postfix_tls_only))
    tls_only_client.ehlo()
    assert {"PLAIN", "LOGIN"} <= _auth_mechanisms(tls_only_client)
    code, _ = tls_only_client.login(postfix_tls_only.user, postfix_tls_only.password)
    assert code == 235


def test_two_instances_run_at_once(
    postfix: PostfixInstance, postfix_tls_only: PostfixInstance
) -> None:
    assert postfix.port != postfix_tls_only.port
    assert postfix.maildir != postfix_tls_only.maildir
    for instance in (postfix, postfix_tls_only):
        with socket.create_connection((instance.host, instance.port), timeout=10) as sock:
            banner = sock.makefile("rb").readline()
            sock.sendall(b"QUIT\r\n")
        assert banner.startswith(b"220 mx.test.local ESMTP")
