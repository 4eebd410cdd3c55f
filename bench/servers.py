"""Servers the benchmarks talk to, each in its own process, so none shares the GIL with a client.

    python bench/servers.py sink                   # aiosmtpd's bare Sink: accepts, stores nothing
    python bench/servers.py fake --ehlo-lines 100000 --help-lines 10000

Each prints ``listening on 127.0.0.1:PORT`` once it listens (port 0: a free one) and runs
until SIGTERM. `fake` is not an SMTP server worth the name: it greets, answers EHLO with
--ehlo-lines lines (real keywords first, then filler), HELP with --help-lines lines, takes a
message after DATA, and says 250 to anything else. It exists to put a huge reply on a
console's screen. `ehlo_reply` / `help_reply` give the same bytes to in-process measures.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

#: What a real submission server advertises; the fake server's EHLO reply starts with these.
REAL_KEYWORDS = (
    "PIPELINING",
    "SIZE 10485760",
    "8BITMIME",
    "SMTPUTF8",
    "ENHANCEDSTATUSCODES",
    "DSN",
    "CHUNKING",
    "AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2",
)


def multiline(code: int, lines: list[str]) -> bytes:
    last = len(lines) - 1
    return "".join(
        f"{code}{' ' if i == last else '-'}{text}\r\n" for i, text in enumerate(lines)
    ).encode()


def ehlo_reply(count: int) -> bytes:
    """A `count`-line EHLO reply: the greeting line, real keywords, then X-FILLER lines."""
    lines = ["fake.example greets you", *REAL_KEYWORDS]
    lines += [f"X-FILLER-{i} a keyword nobody asked for, line {i}" for i in range(count)]
    return multiline(250, lines[: max(count, 1)])


def help_reply(count: int) -> bytes:
    lines = [f"help line {i}: the fake server has a lot to say" for i in range(count - 1)]
    return multiline(214, [*lines, "end of help"])


async def serve_fake(ehlo_lines: int, help_lines: int) -> None:
    ehlo = ehlo_reply(ehlo_lines)
    help_text = help_reply(help_lines)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"220 fake.example ESMTP bench server\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(ehlo)
                elif verb == b"HELP":
                    writer.write(help_text)
                elif verb == b"QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    await writer.drain()
                    break
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    while await reader.readline() not in (b".\r\n", b".\n", b""):
                        pass
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == b"STAR":
                    writer.write(b"454 4.7.0 no TLS here\r\n")
                else:
                    writer.write(b"250 2.0.0 OK\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0, limit=1 << 20)
    await _run(server)


async def serve_sink() -> None:
    from aiosmtpd.handlers import Sink
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Sink(), hostname="localhost", loop=loop), host="127.0.0.1", port=0
    )
    await _run(server)


async def _run(server: asyncio.Server) -> None:
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("sink", "fake"))
    parser.add_argument("--ehlo-lines", type=int, default=100_000)
    parser.add_argument("--help-lines", type=int, default=10_000)
    args = parser.parse_args()
    if args.kind == "sink":
        asyncio.run(serve_sink())
    else:
        asyncio.run(serve_fake(args.ehlo_lines, args.help_lines))


if __name__ == "__main__":
    main()
