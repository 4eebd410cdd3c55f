"""Finding a domain's mail servers: MX records by preference, then their addresses.

RFC 5321 §5.1: sort the MX records by preference (lowest first); with no MX record at all
the domain itself is the mail server (the "implicit MX"); a single MX of "." is a null MX
(RFC 7505) — the domain accepts no mail. The resolver is passed in, so tests and
administrators can point it at any name server (`--nameserver`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class MXLookupError(Exception):
    """The lookup failed; str() is one line for the user."""


@dataclass(frozen=True)
class MXHost:
    preference: int
    name: str
    addresses: tuple[str, ...]
    implicit: bool = False  # no MX record: the domain's own address (RFC 5321 §5.1)


def make_resolver(nameserver: str | None = None, timeout: float = 5.0) -> Any:
    """A dnspython resolver; with `nameserver` ("HOST" or "HOST:PORT") it asks only that one."""
    import dns.resolver

    if nameserver is None:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        host, port = _split_server(nameserver)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.lifetime = timeout
    return resolver


def _split_server(text: str) -> tuple[str, int]:
    if text.startswith("["):  # [::1]:53
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or 53)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, 53


def lookup_mx(domain: str, resolver: Any, families: Iterable[int] = (4, 6)) -> list[MXHost]:
    """The domain's mail servers in the order to try them, each with its addresses."""
    import dns.exception
    import dns.resolver

    domain = domain.strip().rstrip(".")
    if not domain:
        raise MXLookupError("no domain given")
    try:
        answer = resolver.resolve(domain, "MX")
        records = [(int(r.preference), r.exchange.to_text().rstrip(".")) for r in answer]
    except dns.resolver.NXDOMAIN:
        raise MXLookupError(f"{domain}: no such domain") from None
    except dns.resolver.NoAnswer:
        records = []
    except dns.exception.Timeout:
        raise MXLookupError(
            f"{domain}: the DNS lookup timed out: no answer from {_asked(resolver)}"
        ) from None
    except dns.exception.DNSException as error:
        raise MXLookupError(f"{domain}: DNS lookup failed ({_asked(resolver)}): {error}") from None
    if len(records) == 1 and records[0][1] in ("", "."):
        raise MXLookupError(f"{domain} publishes a null MX (RFC 7505): it accepts no mail")
    if not records:
        addresses = _addresses(domain, resolver, families)
        if not addresses:
            raise MXLookupError(f"{domain}: no MX record and no address")
        return [MXHost(0, domain, addresses, implicit=True)]
    # Equal preferences are tried in random order (RFC 5321 §5.1), lower ones first.
    random.shuffle(records)
    records.sort(key=lambda record: record[0])
    return [MXHost(pref, name, _addresses(name, resolver, families)) for pref, name in records]


def _asked(resolver: Any) -> str:
    """The name servers a lookup went to, as `--nameserver` takes them: 'name server
    127.0.0.1:5353'. A lookup that fails must say where it asked: the wrong server, or
    one that is down, is the usual cause."""
    port = getattr(resolver, "port", 53)
    servers = [str(server) for server in getattr(resolver, "nameservers", ())]
    if not servers:
        return "no name server (none configured)"
    shown = [f"[{s}]:{port}" if ":" in s else f"{s}:{port}" for s in servers]
    return ("name server " if len(shown) == 1 else "name servers ") + ", ".join(shown)


def _addresses(name: str, resolver: Any, families: Iterable[int]) -> tuple[str, ...]:
    import dns.exception

    found: list[str] = []
    for family in families:
        rdtype = "A" if family == 4 else "AAAA"
        try:
            found += [record.to_text() for record in resolver.resolve(name, rdtype)]
        except dns.exception.DNSException:
            continue
    return tuple(found)


def family_numbers(ipv4: bool, ipv6: bool) -> tuple[int, ...]:
    """--ipv4 / --ipv6 → which address families to look up and use."""
    if ipv4 and not ipv6:
        return (4,)
    if ipv6 and not ipv4:
        return (6,)
    return (4, 6)
