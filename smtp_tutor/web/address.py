"""`--web [HOST:]PORT` read, and whether an address is this machine only (no aiohttp here:
the command line checks its options before anything heavy is imported)."""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback", "parse_address"]


def parse_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[V6]:PORT` → (host, port); ValueError with a sentence."""
    text = text.strip()
    host, port_text = default_host, text
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"not HOST:PORT: {text!r}")
        host, port_text = inside, rest[1:]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535 or not host:
        raise ValueError(f"not [HOST:]PORT with a port from 0 to 65535: {text!r}")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
