"""The client connection over real sockets on 127.0.0.1, against scripted servers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import pytest
from servers import (
    HOST,
    Action,
    Close,
    Expect,
    Hang,
    ScriptServer,
    Send,
    StartTLS,
    WaitFor,
    certificates,
    run,
    unused_port,
)

from smtp_tutor.client.connection import (
    Closed,
    Connection,
    ConnectionFailed,
    TimedOut,
    WireEvent,
    wants_implicit_tls,
)
from smtp_tutor.core.replies import Reply


def reply(result: Reply | Closed | TimedOut) -> Reply:
    assert isinstance(result, Reply), result
    return result


def assert_one_line(error: ConnectionFailed) -> str:
    message = str(error)
    assert message
    assert "\n" not in message and "\r" not in message
    assert "Traceback" not in message
    return message


def test_reads_the_greeting() -> None:
    async def main() -> None:
        async with ScriptServer([Send(b"220 mx.test ESMTP ready\r\n"), Hang()]) as server:
            conn = await Connection.open(HOST, server.port, reply_timeout=3)
            greeting = reply(await conn.read_reply())
            assert greeting.code == 220
            assert greeting.lines == ("mx.test ESMTP ready",)
            assert not greeting.malformed
            assert conn.tls is None
            await conn.close()
            assert conn.is_closed

    run(main())


def test_multiline_reply_split_over_packets_is_one_reply() -> None:
    async def main() -> None:
        go_on = asyncio.Event()
        script = [
            Send(b"220 mx.test\r\n"),
            Expect(b"EHLO"),
            Send(b"250-mx.test hello\r\n250-PIPE"),
            WaitFor(go_on),
            Send(b"LINING\r\n250 SIZE 1000\r\n"),
            Hang(),
        ]
        async with ScriptServer(script) as server:
            conn = await Connection.open(HOST, server.port, reply_timeout=3)
            reply(await conn.read_reply())
            await conn.send_line("EHLO client.test")
            assert isinstance(await conn.read_reply(0.2), TimedOut)  # half a reply is no reply
            go_on.set()
            ehlo = reply(await conn.read_reply())
            assert ehlo.code == 250
            assert ehlo.lines == ("mx.test hello", "PIPELINING", "SIZE 1000")
            assert not ehlo.malformed
            await conn.close()

    run(main())


def test_observer_sees_exact_bytes_both_ways() -> None:
    async def main() -> None:
        events: list[WireEvent] = []
        sent_by_server = b"220 mx.test\r\n", b"250-a\r\n250 b\r\n"
        script = [Send(sent_by_server[0]), Expect(b"EHLO"), Send(sent_by_server[1]), Hang()]
        async with ScriptServer(script) as server:
            conn = await Connection.open(HOST, server.port, reply_timeout=3, observer=events.append)
            reply(await conn.read_reply())
            await conn.send_line("EHLO  spaced.example ")  # exactly as typed, plus CRLF
            reply(await conn.read_reply())
            await conn.close()
            await server.finished.wait()
            assert server.lines[0] == b"EHLO  spaced.example \r\n"
        sent = [e.data for e in events if e.direction == "sent"]
        received = b"".join(e.data for e in events if e.direction == "received")
        assert sent == [b"EHLO  spaced.example \r\n"]
        assert received == b"".join(sent_by_server)
        assert all(not e.tls for e in events)
        assert all(a.time <= b.time for a, b in itertools.pairwise(events))

    run(main())


def test_implicit_tls_connection() -> None:
    async def main() -> None:
        context = certificates().self_signed.server_context()
        async with ScriptServer([Send(b"220 tls.test\r\n"), Hang()], ssl=context) as server:
            events: list[WireEvent] = []
            conn = await Connection.open(
                HOST, server.port, implicit_tls=True, reply_timeout=3, observer=events.append
            )
            assert conn.tls is not None
            assert conn.tls.version.startswith("TLS")
            assert reply(await conn.read_reply()).code == 220
            assert events and all(e.tls for e in events)
            await conn.close()

    run(main())


@pytest.mark.parametrize(
    ("port", "choice", "expected"),
    [
        (465, None, True),
        (25, None, False),
        (587, None, False),
        (465, False, False),
        (2525, True, True),
    ],
)
def test_port_465_means_implicit_tls_unless_told_otherwise(
    port: int, choice: bool | None, expected: bool
) -> None:
    assert wants_implicit_tls(port, choice) is expected


def test_address_literal_in_brackets_connects() -> None:
    async def main() -> None:
        async with ScriptServer([Send(b"220 hi\r\n"), Hang()]) as server:
            conn = await Connection.open(f"[{HOST}]", server.port, reply_timeout=3)
            assert reply(await conn.read_reply()).code == 220
            await conn.close()

    run(main())


def starttls_script(after_220: bytes = b"", between: Sequence[Action] = ()) -> list[Action]:
    """EHLO, STARTTLS, 220 (+ `after_220` in the same packet), `between`, TLS, EHLO."""
    context = certificates().self_signed.server_context()
    return [
        Send(b"220 mx.test\r\n"),
        Expect(b"EHLO"),
        Send(b"250-mx.test\r\n250 STARTTLS\r\n"),
        Expect(b"STARTTLS"),
        Send(b"220 2.0.0 go ahead\r\n" + after_220),
        *between,
        StartTLS(context),
        Expect(b"EHLO"),
        Send(b"250-mx.test over TLS\r\n250 AUTH PLAIN\r\n"),
        Hang(),
    ]


async def up_to_starttls(conn: Connection) -> Reply:
    reply(await conn.read_reply())
    await conn.send_line("EHLO client.test")
    reply(await conn.read_reply())
    await conn.send_line("STARTTLS")
    return reply(await conn.read_reply())


def test_starttls_upgrades_in_place() -> None:
    async def main() -> None:
        events: list[WireEvent] = []
        async with ScriptServer(starttls_script()) as server:
            conn = await Connection.open(HOST, server.port, reply_timeout=3, observer=events.append)
            assert (await up_to_starttls(conn)).code == 220
            info = await conn.starttls()
            assert conn.tls is info
            assert info.version.startswith("TLS")
            assert info.cipher
            assert info.certificate is not None
            assert "CN=localhost" in info.certificate.subject
            assert info.discarded_cleartext == 0
            await conn.send_line("EHLO client.test")
            ehlo = reply(await conn.read_reply())
            assert ehlo.lines == ("mx.test over TLS", "AUTH PLAIN")
            await conn.close()
            await server.finished.wait()
        assert server.errors == []
        assert [(r.line, r.tls) for r in server.received[-2:]] == [
            (b"STARTTLS\r\n", False),
            (b"EHLO client.test\r\n", True),
        ]
        assert events[-1].tls and events[-2].tls  # the second EHLO and its reply
        assert events[0].tls is False

    run(main())


def test_cleartext_after_220_in_the_same_packet_is_discarded() -> None:
    async def main() -> None:
        events: list[WireEvent] = []
        script = starttls_script(after_220=b"250 injected\r\n")
        async with ScriptServer(script) as server:
            conn = await Connection.open(HOST, server.port, reply_timeout=3, observer=events.append)
            assert (await up_to_starttls(conn)).code == 220
            info = await conn.starttls()
            assert info.discarded_cleartext == len(b"250 injected\r\n")
            assert conn.discarded == b"250 injected\r\n"
            assert isinstance(await conn.read_reply(0.2), TimedOut)
            await conn.send_line("EHLO client.test")
            assert reply(await conn.read_reply()).lines[0] == "mx.test over TLS"
            await conn.close()
        assert server.errors == []
        # The raw view still shows what the server sent in clear text.
        cleartext = b"".join(e.data for e in events if e.direction == "received" and not e.tls)
        assert cleartext.endswith(b"220 2.0.0 go ahead\r\n250 injected\r\n")

    run(main())


def test_cleartext_arriving_after_the_220_was_read_is_discarded() -> None:
    async def main() -> None:
        injected, go_on = asyncio.Event(), asyncio.Event()
        # The injected bytes come as a separate packet once the client has read the 220.
        between = [
            WaitFor(injected),
            Send(b"250-injected\r\n250 also injected\r\n"),
            WaitFor(go_on),
        ]
        script = starttls_script(between=between)
        async with ScriptServer(script) as server:
            conn = await Connection.open(HOST, server.port, reply_timeout=3)
            assert (await up_to_starttls(conn)).code == 220
            assert not conn.pending_input
            injected.set()
            for _ in range(300):  # until the injected bytes sit unread in the client's buffer
                if conn.pending_input:
                    break
                await asyncio.sleep(0.01)
            assert conn.pending_input
            go_on.set()
            info = await conn.starttls()
            assert conn.discarded == b"250-injected\r\n250 also injected\r\n"
            assert info.discarded_cleartext == len(conn.discarded)
            await conn.send_line("EHLO client.test")
            assert reply(await conn.read_reply()).lines[0] == "mx.test over TLS"
            await conn.close()
        assert server.errors == []

    run(main())


def test_server_close_is_an_event_not_an_exception() -> None:
    async def main() -> None:
        async with ScriptServer([Send(b"220 bye soon\r\n"), Close()]) as server:
            conn = await Connection.open(HOST, server.port, reply_timeout=3)
            assert reply(await conn.read_reply()).code == 220
            closed = await conn.read_reply()
            assert isinstance(closed, Closed)
            assert "closed" in closed.reason
            assert conn.is_closed
            await conn.send_line("QUIT")  # nothing to send it to; no exception
            assert isinstance(await conn.read_reply(), Closed)
            await conn.close()

    run(main())


def test_close_in_the_middle_of_a_multiline_reply() -> None:
    async def main() -> None:
        script = [Send(b"220-first\r\n220-second\r\n220 thi"), Close()]
        async with ScriptServer(script) as server:
            conn = await Connection.open(HOST, server.port, reply_timeout=3)
            partial = reply(await conn.read_reply())
            assert partial.malformed
            assert partial.code == 220
            assert partial.lines[:2] == ("first", "second")
            assert partial.raw == b"220-first\r\n220-second\r\n220 thi"
            assert isinstance(await conn.read_reply(), Closed)

    run(main())


def test_silence_times_out_and_the_connection_stays_usable() -> None:
    async def main() -> None:
        script = [
            Send(b"220 slow.test\r\n"),
            Expect(b"NOOP"),
            Expect(b"RSET"),
            Send(b"250 noop done\r\n250 rset done\r\n"),
            Hang(),
        ]
        async with ScriptServer(script) as server:
            conn = await Connection.open(HOST, server.port, reply_timeout=3)
            reply(await conn.read_reply())
            await conn.send_line("NOOP")
            silent = await conn.read_reply(0.2)
            assert silent == TimedOut(0.2)
            assert not conn.is_closed
            await conn.send_line("RSET")
            assert reply(await conn.read_reply()).lines == ("noop done",)
            assert reply(await conn.read_reply()).lines == ("rset done",)
            await conn.close()

    run(main())


def test_connection_refused() -> None:
    async def main() -> None:
        port = unused_port()
        with pytest.raises(ConnectionFailed) as caught:
            await Connection.open(HOST, port, connect_timeout=3)
        assert "refused" in assert_one_line(caught.value)
        assert str(port) in str(caught.value)

    run(main())


@pytest.mark.parametrize(
    "host",
    [
        # glibc rejects a name with a space without asking DNS: no traffic leaves the host.
        "nonexistent host.invalid",
        "bad..name",  # Python's IDNA codec raises UnicodeError, not an OSError
    ],
)
def test_unknown_or_invalid_host(host: str) -> None:
    async def main() -> None:
        with pytest.raises(ConnectionFailed) as caught:
            await Connection.open(host, 25, connect_timeout=3)
        message = assert_one_line(caught.value)
        assert repr(host) in message

    run(main())


def test_tls_handshake_that_never_answers_times_out() -> None:
    async def main() -> None:
        async with ScriptServer([Hang()]) as server:  # accepts TCP, never speaks TLS
            with pytest.raises(ConnectionFailed) as caught:
                await Connection.open(HOST, server.port, implicit_tls=True, connect_timeout=0.3)
            message = assert_one_line(caught.value)
            assert "TLS handshake" in message and "0.3 s" in message

    run(main())


def test_tls_handshake_with_a_plain_text_server_fails() -> None:
    async def main() -> None:
        async with ScriptServer([Send(b"220 plain text here\r\n"), Hang()]) as server:
            with pytest.raises(ConnectionFailed) as caught:
                await Connection.open(HOST, server.port, implicit_tls=True, connect_timeout=3)
            message = assert_one_line(caught.value)
            assert message.startswith(f"TLS handshake with {HOST}:{server.port} failed")
            assert "STARTTLS" in message  # the likely fix, in the message

    run(main())


def test_starttls_handshake_failure_closes_the_connection() -> None:
    async def main() -> None:
        script = [
            Send(b"220 mx.test\r\n"),
            Expect(b"STARTTLS"),
            Send(b"220 go ahead\r\n"),
            Expect(b""),  # swallow part of the ClientHello
            Send(b"this is not TLS\r\n"),
            Close(),
        ]
        async with ScriptServer(script) as server:
            conn = await Connection.open(HOST, server.port, reply_timeout=3)
            reply(await conn.read_reply())
            await conn.send_line("STARTTLS")
            assert reply(await conn.read_reply()).code == 220
            with pytest.raises(ConnectionFailed) as caught:
                await conn.starttls(timeout=3)
            assert "TLS handshake" in assert_one_line(caught.value)
            assert conn.is_closed
            assert conn.tls is None
            assert isinstance(await conn.read_reply(), Closed)
            await conn.send_line("EHLO after failure")  # no exception
            await conn.close()

    run(main())


def test_starttls_twice_is_refused_locally() -> None:
    async def main() -> None:
        async with ScriptServer(starttls_script()) as server:
            conn = await Connection.open(HOST, server.port, reply_timeout=3)
            await up_to_starttls(conn)
            await conn.starttls()
            with pytest.raises(ConnectionFailed) as caught:
                await conn.starttls()
            assert "already" in assert_one_line(caught.value)
            await conn.close()

    run(main())
