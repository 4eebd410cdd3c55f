"""Certificate verification in plain words, on chains made with `cryptography` and on real
handshakes over 127.0.0.1. Verification must be able to *succeed*, not only fail."""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

import pytest
from servers import HOST, Hang, Issued, ScriptServer, Send, certificates, run

from smtp_tutor.client import tls
from smtp_tutor.client.connection import Connection, ConnectionFailed
from smtp_tutor.client.tls import TLSInfo, client_context, verify_chain


def test_self_signed_is_not_verified() -> None:
    ok, reason = verify_chain([certificates().self_signed.cert], "localhost")
    assert ok is False
    assert reason is not None and "self-signed" in reason


def test_self_signed_for_another_host_says_both() -> None:
    ok, reason = verify_chain([certificates().self_signed.cert], "mail.example.org")
    assert ok is False
    assert reason is not None
    assert "self-signed" in reason and "another host name" in reason


def test_explicitly_trusted_self_signed_certificate_verifies() -> None:
    """Like the sandbox's certificate: no authority key id, trusted by `cafile`."""
    issued = certificates().self_signed
    assert verify_chain([issued.cert], "localhost", cafile=issued.cert_path) == (True, None)
    assert verify_chain([issued.cert], "127.0.0.1", cafile=issued.cert_path) == (True, None)


def test_expired() -> None:
    certs = certificates()
    ok, reason = verify_chain([certs.expired.cert], "localhost", cafile=certs.ca.cert_path)
    assert ok is False
    assert reason is not None and "expired" in reason


def test_wrong_host() -> None:
    certs = certificates()
    ok, reason = verify_chain([certs.wrong_host.cert], "localhost", cafile=certs.ca.cert_path)
    assert ok is False
    assert reason is not None
    assert "another host name" in reason
    assert "mail.example.org" in reason  # what the certificate does name
    assert "self-signed" not in reason


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[127.0.0.1]"])
def test_certificate_from_a_trusted_ca_verifies(host: str) -> None:
    certs = certificates()
    assert verify_chain([certs.ca_leaf.cert], host, cafile=certs.ca.cert_path) == (True, None)


def test_ip_address_not_in_the_certificate_is_another_host() -> None:
    certs = certificates()
    ok, reason = verify_chain([certs.ca_leaf.cert], "127.0.0.2", cafile=certs.ca.cert_path)
    assert ok is False
    assert reason is not None and "another host name" in reason


def test_unknown_authority_against_the_system_store() -> None:
    tls._load_bundle_cached.cache_clear()  # load the system bundle inside the check
    with warnings.catch_warnings():
        # Real bundles hold roots cryptography warns about (e.g. a negative serial number);
        # loading them must not print warnings into the user's console.
        warnings.simplefilter("error")
        ok, reason = verify_chain([certificates().ca_leaf.cert], "localhost")
    assert ok is False
    assert reason is not None and "authority" in reason and "not trust" in reason


def test_intermediate_missing_from_the_chain() -> None:
    certs = certificates()
    leaf = certs.chained_leaf.cert
    ok, reason = verify_chain([leaf], "localhost", cafile=certs.ca.cert_path)
    assert ok is False and reason is not None and "authority" in reason
    with_intermediate = [leaf, certs.intermediate.cert]
    assert verify_chain(with_intermediate, "localhost", cafile=certs.ca.cert_path) == (True, None)


def test_nothing_to_verify() -> None:
    assert verify_chain([], "localhost") == (False, "the server sent no certificate")
    ok, reason = verify_chain([certificates().ca_leaf.cert], None)
    assert ok is False and reason is not None and "no server name" in reason


def test_cafile_that_holds_no_certificate(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    ok, reason = verify_chain([certificates().ca_leaf.cert], "localhost", cafile=empty)
    assert ok is False and reason is not None and "no trusted certificate authorities" in reason


# -- over a real handshake ----------------------------------------------------------------


async def handshake(
    issued: Issued,
    host: str = HOST,
    *,
    cafile: Path | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> TLSInfo:
    """Connect with implicit TLS to a server presenting `issued`; the handshake's report."""
    async with ScriptServer([Send(b"220 tls\r\n"), Hang()], ssl=issued.server_context()) as srv:
        conn = await Connection.open(
            host,
            srv.port,
            implicit_tls=True,
            connect_timeout=3,
            cafile=cafile,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
        )
        await conn.close()
        assert conn.tls is not None
        return conn.tls


def test_describe_a_ca_signed_server_with_cafile() -> None:
    certs = certificates()
    info = run(handshake(certs.ca_leaf, cafile=certs.ca.cert_path))
    assert info.verified is True and info.verify_error is None
    assert info.version in ("TLSv1.2", "TLSv1.3")
    assert info.cipher and isinstance(info.bits, int) and info.bits > 0
    assert info.server_hostname == HOST
    assert info.certificate is not None
    assert info.certificate.subject == "CN=localhost"
    assert info.certificate.issuer == "CN=smtp-tutor test CA"
    assert info.certificate.names == ("localhost", "127.0.0.1")
    assert not info.certificate.self_signed


def test_describe_reads_the_whole_chain_the_server_sent() -> None:
    """Verification needs the intermediate, which only the handshake's chain carries."""
    certs = certificates()
    info = run(handshake(certs.chained_leaf, "localhost", cafile=certs.ca.cert_path))
    assert [c.subject for c in info.chain] == ["CN=localhost", "CN=test intermediate"]
    assert info.verified is True


@pytest.mark.parametrize(
    ("name", "words"),
    [("self_signed", "self-signed"), ("expired", "expired"), ("wrong_host", "another host")],
)
def test_describe_reports_why_without_stopping(name: str, words: str) -> None:
    certs = certificates()
    info = run(handshake(getattr(certs, name), cafile=certs.ca.cert_path))
    assert info.verified is False
    assert info.verify_error is not None and words in info.verify_error


def test_server_hostname_overrides_the_connected_address() -> None:
    certs = certificates()
    info = run(
        handshake(certs.wrong_host, server_hostname="mail.example.org", cafile=certs.ca.cert_path)
    )
    assert info.server_hostname == "mail.example.org"
    assert info.verified is True


def test_verifying_context_fails_the_handshake_with_one_line() -> None:
    async def main() -> None:
        context = client_context(verify=True)  # the system store does not know the test CA
        with pytest.raises(ConnectionFailed) as caught:
            await handshake(certificates().ca_leaf, ssl_context=context)
        message = str(caught.value)
        assert "\n" not in message and "certificate" in message

    run(main())


def test_verifying_context_with_the_right_ca_succeeds() -> None:
    certs = certificates()
    context = client_context(verify=True, cafile=certs.ca.cert_path)
    info = run(handshake(certs.ca_leaf, "localhost", ssl_context=context))
    assert info.version.startswith("TLS")


def test_client_context_defaults() -> None:
    relaxed = client_context()
    assert relaxed.verify_mode == ssl.CERT_NONE and relaxed.check_hostname is False
    strict = client_context(verify=True, minimum_version=ssl.TLSVersion.TLSv1_3)
    assert strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname is True
    assert strict.minimum_version == ssl.TLSVersion.TLSv1_3


def test_a_context_that_verifies_nothing_does_not_load_the_system_store() -> None:
    """The system's authorities cost ~45 ms on `connect`'s way to its first prompt."""
    assert client_context().cert_store_stats()["x509_ca"] == 0
    system = ssl.create_default_context().cert_store_stats()
    assert client_context(verify=True).cert_store_stats() == system


def test_a_cafile_is_read_at_once_verifying_or_not(tmp_path: Path) -> None:
    certs = certificates()
    for verify in (False, True):
        assert client_context(verify, cafile=certs.ca.cert_path).cert_store_stats()["x509_ca"] == 1
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate\n")
    with pytest.raises(ssl.SSLError):
        client_context(cafile=broken)


def test_sslkeylogfile_is_honoured_as_by_create_default_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    assert client_context().keylog_filename == str(keylog)
    assert client_context(verify=True).keylog_filename == str(keylog)


def test_the_tls_report_carries_the_alpn_the_handshake_agreed() -> None:
    """:tls used to read a field TLSInfo lacked and always said "ALPN: -"."""
    certs = certificates()
    server_context = certs.ca_leaf.server_context()
    server_context.set_alpn_protocols(["smtp"])
    client = client_context(cafile=certs.ca.cert_path)
    client.set_alpn_protocols(["smtp"])

    async def main() -> tuple[TLSInfo, TLSInfo]:
        async with ScriptServer([Send(b"220 tls\r\n"), Hang()], ssl=server_context) as srv:
            agreed = await Connection.open(
                HOST, srv.port, implicit_tls=True, connect_timeout=3, ssl_context=client
            )
            await agreed.close()
            plain = await Connection.open(
                HOST, srv.port, implicit_tls=True, connect_timeout=3, cafile=certs.ca.cert_path
            )
            await plain.close()
        assert agreed.tls is not None and plain.tls is not None
        return agreed.tls, plain.tls

    agreed, plain = run(main())
    assert agreed.alpn == "smtp"
    assert plain.alpn is None  # the console offers no ALPN by default: nothing agreed
