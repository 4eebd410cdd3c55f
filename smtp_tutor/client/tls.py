"""TLS for the client side: contexts, and a plain-words report of what the handshake gave.

By default smtp-tutor warns and goes on when a certificate does not verify (a student's
sandbox is self-signed; an administrator wants to see *why* a server's chain is broken). So
the handshake itself does not verify; afterwards the chain the server sent is checked with
`cryptography`'s verifier against the system trust store (or a given CA file) and the result
is reported in plain words.

`cryptography` is imported only when a chain is read or verified (after a handshake), so a
console that never starts TLS never loads it (tests/test_import_sets.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
import re
import ssl
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from smtp_tutor.core.catalogue import Said
from smtp_tutor.core.records import field, record

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder

_T = TypeVar("_T")
_PEM_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


@record(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    names: tuple[str, ...]  # subjectAltName DNS names and IP addresses

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer


@record(frozen=True)
class TLSInfo:
    """What a finished handshake established, for the console's TLS report."""

    version: str
    cipher: str
    bits: int | None
    server_hostname: str | None
    chain: tuple[CertificateInfo, ...] = ()
    verified: bool = False
    verify_error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    alpn: str | None = None  # the protocol ALPN agreed on, if the client offered any
    #: Clear-text bytes that followed the 220 to STARTTLS and were thrown away (injection?).
    discarded_cleartext: int = 0

    @property
    def certificate(self) -> CertificateInfo | None:
        return self.chain[0] if self.chain else None


def client_context(
    verify: bool = False,
    cafile: str | Path | None = None,
    minimum_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A client context; with `verify` False the handshake accepts any certificate.

    It is `ssl.create_default_context()`'s, but set to CERT_NONE before the trust store is
    chosen, as that function itself does for CERT_NONE: a handshake that verifies nothing
    does not load the system's authorities (about 45 ms, on `connect`'s way to its first
    prompt). A `cafile` is still read at once, so a bad one is reported before connecting.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cafile:
        context.load_verify_locations(cafile=str(cafile))
    elif verify:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog  # as create_default_context: for Wireshark
    if minimum_version is not None:
        context.minimum_version = minimum_version
    return context


def describe(
    ssl_object: ssl.SSLObject | ssl.SSLSocket,
    server_hostname: str | None,
    cafile: str | Path | None = None,
) -> TLSInfo:
    """Read version, cipher and chain off a finished handshake and verify the chain.

    Never raises on what the server sent: a certificate `cryptography` cannot parse becomes
    the reason it is not verified.
    """
    from cryptography import x509

    cipher = ssl_object.cipher() or ("unknown", "", None)
    certs: list[x509.Certificate] = []
    parse_error: str | None = None
    for der in _peer_chain(ssl_object):
        try:
            certs.append(_quietly(x509.load_der_x509_certificate, der))
        except ValueError as error:
            parse_error = f"a certificate the server sent cannot be read: {error}"
            break
    if parse_error is not None:
        verified, error = False, parse_error
    else:
        verified, error = verify_chain(certs, server_hostname, cafile)
    chain: list[CertificateInfo] = []
    for cert in certs:
        try:
            chain.append(_certificate_info(cert))
        except ValueError:  # a malformed extension: show what can be shown
            break
    return TLSInfo(
        version=ssl_object.version() or "unknown",
        cipher=cipher[0],
        bits=cipher[2],
        server_hostname=server_hostname,
        chain=tuple(chain),
        verified=verified,
        verify_error=error,
        alpn=ssl_object.selected_alpn_protocol(),
    )


def verify_chain(
    certs: list[x509.Certificate], server_hostname: str | None, cafile: str | Path | None = None
) -> tuple[bool, str | None]:
    """Verify a server chain (leaf first) for `server_hostname`; (True, None) or (False, why).

    With `cafile` only the certificates in that file are trusted, otherwise the system's.
    """
    from cryptography.x509.verification import VerificationError

    if not certs:
        return False, Said("tls", "no_certificate")
    leaf = certs[0]
    now = dt.datetime.now(dt.UTC)
    if leaf.not_valid_after_utc < now:
        return False, Said("tls", "expired", date=f"{leaf.not_valid_after_utc:%Y-%m-%d}")
    if leaf.not_valid_before_utc > now:
        return False, Said("tls", "not_yet_valid", date=f"{leaf.not_valid_before_utc:%Y-%m-%d}")
    if not server_hostname:
        return False, Said("tls", "no_server_name")
    try:
        subject = _subject(server_hostname)
    except ValueError:
        return False, Said("tls", "bad_server_name", name=repr(server_hostname))
    roots = _trust_store(cafile)
    if not roots:
        if cafile:
            return False, Said("tls", "no_authorities_in", path=str(cafile))
        return False, Said("tls", "no_authorities")
    try:
        _policy(roots, now).build_server_verifier(subject).verify(leaf, certs[1:])
    except (VerificationError, ValueError) as error:
        return False, _plain_reason(str(error), leaf, roots)
    return True, None


def _policy(roots: list[x509.Certificate], now: dt.datetime) -> PolicyBuilder:
    """The CA/Browser Forum profile, except that a leaf may lack an authority key id.

    Self-signed and private-CA certificates usually lack it and OpenSSL does not ask for
    it; demanding it would make a certificate the user explicitly trusts fail to verify.
    """
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store

    builder = PolicyBuilder().store(Store(roots)).time(now)
    try:  # cryptography 45 and later can relax one rule
        from cryptography.x509.verification import Criticality, ExtensionPolicy
    except ImportError:  # pragma: no cover - older cryptography: the strict profile
        return builder
    leaf_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.AuthorityKeyIdentifier, Criticality.NON_CRITICAL, None
    )
    return builder.extension_policies(
        ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=leaf_policy
    )


def _subject(hostname: str) -> DNSName | IPAddress:
    from cryptography.x509.verification import DNSName, IPAddress

    try:
        return IPAddress(ipaddress.ip_address(hostname.strip("[]")))
    except ValueError:
        return DNSName(hostname)


def _self_signed(cert: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature

    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _plain_reason(message: str, leaf: x509.Certificate, roots: list[x509.Certificate]) -> str:
    """The verifier's message in the words of someone reading a TLS report."""
    lowered = message.lower()
    untrusted_self_signed = _self_signed(leaf) and leaf not in roots
    if "subjectaltname" in lowered or ("match" in lowered and "name" in lowered):
        try:
            names = ", ".join(_certificate_info(leaf).names) or "no names"
        except ValueError:
            names = "names that cannot be read"
        if untrusted_self_signed:
            return Said("tls", "self_signed_wrong_host", names=names)
        return Said("tls", "wrong_host", names=names)
    if untrusted_self_signed:
        return Said("tls", "self_signed")
    if "not valid at validation time" in lowered:
        return Said("tls", "chain_expired")
    if "candidates exhausted" in lowered or "issuer" in lowered:
        return Said("tls", "unknown_authority")
    detail = re.sub(r"\s*\(encountered processing .*\)$", "", message, flags=re.DOTALL)
    detail = detail.removeprefix("validation failed: ")
    return Said("tls", "rule_broken", detail=detail)


def _trust_store(cafile: str | Path | None) -> list[x509.Certificate]:
    if cafile:
        return _load_bundle(Path(cafile))
    paths = ssl.get_default_verify_paths()
    for name in (paths.cafile, paths.openssl_cafile):
        if name:
            roots = _load_bundle(Path(name))
            if roots:
                return roots
    return []


def _load_bundle(path: Path) -> list[x509.Certificate]:
    """The certificates in a PEM file; unreadable ones are skipped, not fatal."""
    try:
        stat = path.stat()
    except OSError:
        return []
    return list(_load_bundle_cached(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _load_bundle_cached(path: Path, _mtime: int, _size: int) -> tuple[x509.Certificate, ...]:
    """Parsed once per file version: the system bundle holds well over a hundred roots."""
    try:
        data = path.read_bytes()
    except OSError:
        return ()
    from cryptography import x509

    certs: list[x509.Certificate] = []
    for block in _PEM_BLOCK.findall(data):
        try:
            certs.append(_quietly(x509.load_pem_x509_certificate, block))
        except ValueError:
            continue
    return tuple(certs)


def _quietly(load: Callable[[bytes], _T], data: bytes) -> _T:
    """Load without cryptography's deprecation warnings reaching the user's terminal.

    Some roots in real bundles have e.g. a negative serial number, which cryptography warns
    about on every load.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(data)


def _peer_chain(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> list[bytes]:
    """The chain as sent; Python 3.13 made this public, 3.11 has it on the inner object."""
    getter = getattr(ssl_object, "get_unverified_chain", None)
    inner = getattr(ssl_object, "_sslobj", None)
    if getter is None and inner is not None:
        getter = getattr(inner, "get_unverified_chain", None)
    if getter is not None:
        try:
            chain = getter() or []
            return [
                c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                for c in chain
            ]
        except (ssl.SSLError, AttributeError, ValueError):
            pass
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _certificate_info(cert: x509.Certificate) -> CertificateInfo:
    from cryptography import x509

    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        names=tuple(names),
    )


def certificate_pem(der: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()
