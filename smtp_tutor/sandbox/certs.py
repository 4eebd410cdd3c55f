"""The sandbox's self-signed TLS certificate: made once, cached, renewed when unusable.

Generating on every start would change the certificate each time, so a student who told a
client to trust it would have to do so again; it is therefore kept in the user's data
directory (key file mode 0600) and replaced only when it is unreadable, does not match its
key, or is about to expire. The certificate names `localhost`, 127.0.0.1 and ::1, so a
client that checks host names can trust it for a connection to the loopback address.

Checking the kept certificate needs only the ssl module; `cryptography` is imported only to
make a new one, so a sandbox that starts with its certificate in place never loads it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from smtp_tutor.paths import ensure_private_dir

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
VALIDITY = dt.timedelta(days=825)  # the longest some platforms accept for a server cert
RENEW_BEFORE = dt.timedelta(days=7)


def ensure_certificate(directory: Path, *, now: dt.datetime | None = None) -> tuple[Path, Path]:
    """Return (cert_path, key_path) in `directory`, generating them only when needed."""
    ensure_private_dir(directory)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if _usable(cert_path, key_path, now or _utcnow()):
        if key_path.stat().st_mode & 0o077:
            key_path.chmod(0o600)
    else:
        write_self_signed(cert_path, key_path, now=now)
    return cert_path, key_path


def write_self_signed(
    cert_path: Path,
    key_path: Path,
    *,
    now: dt.datetime | None = None,
    validity: dt.timedelta = VALIDITY,
) -> None:
    """Write a new key (mode 0600) and a self-signed certificate for the loopback names."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or _utcnow()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smtp-tutor sandbox"),
        ]
    )
    alt_names = x509.SubjectAlternativeName(
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + validity)
        .add_extension(alt_names, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomically(key_path, key_pem, 0o600)
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def server_tls_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_path), str(key_path))
    return context


def client_tls_context(cert_path: Path | str) -> ssl.SSLContext:
    """A client context that trusts the sandbox certificate (and checks the host name)."""
    return ssl.create_default_context(cafile=str(cert_path))


def _usable(cert_path: Path, key_path: Path, now: dt.datetime) -> bool:
    """Readable, the key matches the certificate, and not about to expire."""
    try:
        # load_cert_chain refuses a key that does not match the certificate.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert_path), str(key_path))
        not_before, not_after = _validity(cert_path)
    except (OSError, ValueError, TypeError):  # ssl.SSLError is an OSError
        return False
    return not_before <= now and now + RENEW_BEFORE < not_after


def _validity(cert_path: Path) -> tuple[dt.datetime, dt.datetime]:
    """The validity window as aware datetimes, read by the ssl module where it can."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is not None:
        fields = decode(str(cert_path))
        return _ssl_time(fields["notBefore"]), _ssl_time(fields["notAfter"])
    from cryptography import x509  # pragma: no cover - an ssl module without the decoder

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())  # pragma: no cover
    return cert.not_valid_before_utc, cert.not_valid_after_utc  # pragma: no cover


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _ssl_time(text: str) -> dt.datetime:
    """`Mar  8 17:58:45 2029 GMT`, as the ssl module writes a certificate's dates.

    What `ssl.cert_time_to_seconds` reads, without its `time.strptime`: the first call of
    that imports _strptime (calendar, locale, its regular expressions), some 3 ms of every
    sandbox start. ValueError for anything else, as there.
    """
    words = text.split()
    clock = words[2].split(":") if len(words) == 5 else []
    numbers = words[1:2] + words[3:4] + clock
    if (
        len(clock) != 3
        or words[4] != "GMT"
        or words[0] not in _MONTHS
        or not all(part.isdigit() for part in numbers)
    ):
        raise ValueError(f"time data {text!r} is not a certificate time")
    hour, minute, second = (int(part) for part in clock)
    month = _MONTHS.index(words[0]) + 1
    return dt.datetime(int(words[3]), month, int(words[1]), hour, minute, second, tzinfo=dt.UTC)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file so a crash never leaves half a key behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.chmod(tmp, mode)  # os.open's mode is filtered by the umask
    os.replace(tmp, path)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
