"""A tiny authoritative DNS server on 127.0.0.1 for MX tests: real UDP, real dnspython."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

Zone = dict[
    tuple[str, str], list[str]
]  # (name, type) -> rdata texts, e.g. ("a.test", "MX"): ["10 mx.a.test."]


@contextmanager
def dns_server(zone: Zone) -> Iterator[str]:
    """Serve `zone` on a free UDP port of 127.0.0.1; yields "127.0.0.1:PORT"."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()
    names = {name.rstrip(".").lower() for name, _ in zone}

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            records = zone.get((name, rdtype))
            if records:
                response.answer.append(
                    dns.rrset.from_text_list(question.name, 300, "IN", rdtype, records)
                )
            elif name not in names:
                response.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        sock.close()
