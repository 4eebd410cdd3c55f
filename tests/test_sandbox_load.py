"""The sandbox under load: hundreds of concurrent clients on 127.0.0.1, then an audit.

Clients are asyncio streams speaking SMTP by hand in the test's own loop; the sandbox runs
in its thread (ThreadedSandbox). After each run the sandbox is stopped and everything it
left behind is compared with what the clients saw: a message is in the Maildir exactly
when its final dot was answered 250, byte for byte; nothing else was written; no
connection went anywhere but the sandbox. Every wait is bounded. The Maildir writer's
choice between the event loop and its threads is checked on its own, with a fake disk.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from smtp_tutor.sandbox import Mailbox, SandboxConfig, StoredMessage, ThreadedSandbox
from smtp_tutor.sandbox.writer import INLINE_LIMIT, MailboxWriter, SpareFiles
from tests.conftest import Outbound

REPLY_TIMEOUT = 10.0  # one reply; a stuck client fails the test instead of hanging it
RUN_TIMEOUT = 25.0  # one whole run of clients
SIZE_LIMIT = 4 * INLINE_LIMIT
TOKEN = re.compile(rb"^X-Load-Token: (\S+)\r$", re.MULTILINE)
STORED_AS = re.compile(r"^250 2\.0\.0 Ok: stored as (\S+); nothing is relayed$")
TOO_MANY = "421 4.7.0 localhost Too many connections, try again later"


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / "xdg" / variable.lower()))
    return tmp_path


@pytest.fixture(autouse=True, scope="module")
def open_file_limit() -> Iterator[None]:
    """Two descriptors per client (ours and the server's): more than some defaults allow."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Client:
    """One SMTP client typing by hand: every reply line as the server sent it."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, maildir: Path
    ) -> None:
        self.reader, self.writer = reader, writer
        self.maildir = maildir

    @classmethod
    async def connect(cls, sandbox: ThreadedSandbox) -> tuple[Client, list[str]]:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", sandbox.port), REPLY_TIMEOUT
        )
        client = cls(reader, writer, sandbox.mailbox_path)
        return client, await client.reply()

    async def reply(self) -> list[str]:
        lines = [await self._line()]
        while lines[-1][3:4] == "-":
            lines.append(await self._line())
        return lines

    async def _line(self) -> str:
        line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), REPLY_TIMEOUT)
        return line[:-2].decode("utf-8")

    async def command(self, text: str) -> list[str]:
        self.writer.write(text.encode() + b"\r\n")
        return await self.reply()

    async def message(self, raw: bytes) -> list[str]:
        """Send a message after 354: dot-stuffed, then the final dot."""
        self.writer.write(stuff(raw) + b".\r\n")
        return await self.reply()

    async def closed_by_server(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), REPLY_TIMEOUT) == b""

    def close(self) -> None:
        self.writer.close()


def stuff(raw: bytes) -> bytes:
    """RFC 5321 section 4.5.2: a line starting with '.' gets one more."""
    return re.sub(rb"(?m)^\.", b"..", raw)


def make_message(token: str, padding: int = 0) -> bytes:
    """A message that says its token, with a dotted line that must come back unstuffed."""
    lines = [
        "From: <load@example.org>",
        "To: <someone@gmail.com>",
        f"Subject: load test {token}",
        f"X-Load-Token: {token}",
        "",
        f"Body of {token}.",
        ".a line that starts with a dot",
        "..and one with two",
        *(["x" * 78] * (padding // 80)),
        "end",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class Expected:
    raw: bytes
    sender: str
    recipients: list[str]


@dataclass
class Outcome:
    acknowledged: dict[str, Expected] = field(default_factory=dict)  # token -> what was sent
    not_acknowledged: dict[str, str] = field(default_factory=dict)  # token -> why
    unexpected: list[str] = field(default_factory=list)  # replies no client should get


async def transaction(client: Client, sender: str, recipients: list[str]) -> list[str]:
    """MAIL, RCPT..., DATA; the reply that stopped it, or the 354 that invites the message."""
    reply = await client.command(f"MAIL FROM:<{sender}>")
    if not reply[0].startswith("250 "):
        return reply
    for recipient in recipients:
        reply = await client.command(f"RCPT TO:<{recipient}>")
        if not reply[0].startswith("250 "):
            return reply
    return await client.command("DATA")


async def send(client: Client, token: str, outcome: Outcome, *, padding: int = 0) -> str:
    """One whole message; records whether its final dot was answered 250."""
    sender = f"{token}@example.org"
    recipients = [f"to-{token}@gmail.com", f"cc-{token}@qq.com"][: 1 + len(token) % 2]
    raw = make_message(token, padding)
    reply = await transaction(client, sender, recipients)
    if reply[0].startswith("354 "):
        reply = await client.message(raw)
    if reply[0].startswith("250 "):
        outcome.acknowledged[token] = Expected(raw, sender, recipients)
        # 250 means stored: the files must be there the moment the client reads it.
        stored = STORED_AS.search(reply[0])
        key = stored[1] if stored else "?"
        if key not in Mailbox(client.maildir).envelopes(only=key):
            outcome.unexpected.append(f"{token}: no envelope for {key} at the 250")
        elif (client.maildir / "new" / key).read_bytes() != raw:
            outcome.unexpected.append(f"{token}: {key} is not what was sent")
    else:
        outcome.not_acknowledged[token] = reply[0]
    return reply[0]


async def busy_client(
    number: int, sandbox: ThreadedSandbox, everyone: asyncio.Barrier, outcome: Outcome
) -> None:
    """Two ordinary messages; every 10th also an oversized one, a large one (which is
    written in a worker thread), or hangs up inside DATA."""
    client, greeting = await Client.connect(sandbox)
    try:
        if greeting != ["220 localhost smtp-tutor sandbox ESMTP ready"]:
            outcome.unexpected.append(f"client {number} greeted with {greeting}")
            return
        await asyncio.wait_for(everyone.wait(), RUN_TIMEOUT)  # all connected at the same time
        assert (await client.command("EHLO load.test"))[-1] == "250 HELP"
        for index in range(2):
            reply = await send(client, f"c{number}m{index}", outcome)
            if not reply.startswith("250 2.0.0 "):
                outcome.unexpected.append(f"c{number}m{index}: {reply}")
            if number % 10 == 0 and index == 0:
                declared = await client.command(
                    f"MAIL FROM:<big@example.org> SIZE={SIZE_LIMIT + 1}"
                )
                if not declared[0].startswith("552 5.3.4 "):
                    outcome.unexpected.append(f"SIZE over the limit: {declared[0]}")
                reply = await send(client, f"c{number}big", outcome, padding=SIZE_LIMIT + 1024)
                if not reply.startswith("552 5.3.4 "):
                    outcome.unexpected.append(f"oversized message: {reply}")
            if number % 10 == 3 and index == 0:
                reply = await send(client, f"c{number}large", outcome, padding=2 * INLINE_LIMIT)
                if not reply.startswith("250 2.0.0 "):
                    outcome.unexpected.append(f"large message: {reply}")
        if number % 10 == 5:  # hang up halfway through a message: it must not be stored
            token = f"c{number}cut"
            if (await transaction(client, "cut@example.org", ["a@gmail.com"]))[0][:4] == "354 ":
                client.writer.write(stuff(make_message(token))[:60])
                await client.writer.drain()
            outcome.not_acknowledged[token] = "hung up inside DATA"
            return
        if not (await client.command("QUIT"))[0].startswith("221 2.0.0 "):
            outcome.unexpected.append(f"client {number}: QUIT not answered 221")
    finally:
        client.close()


def stored_by_token(mailbox: Path) -> dict[str, list[StoredMessage]]:
    found: dict[str, list[StoredMessage]] = {}
    for message in Mailbox(mailbox).messages():
        match = TOKEN.search(message.raw)
        found.setdefault(match[1].decode() if match else f"no token: {message.key}", []).append(
            message
        )
    return found


def files_under(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def test_200_concurrent_clients_store_exactly_what_was_acknowledged(
    tmp_path: Path, outbound: Outbound
) -> None:
    mailbox = tmp_path / "Maildir"
    clients = 200
    config = SandboxConfig(mailbox=mailbox, max_connections=250, max_message_size=SIZE_LIMIT)
    outcome = Outcome()

    async def run(sandbox: ThreadedSandbox) -> list[object]:
        everyone = asyncio.Barrier(clients)
        return await asyncio.wait_for(
            asyncio.gather(
                *(busy_client(n, sandbox, everyone, outcome) for n in range(clients)),
                return_exceptions=True,
            ),
            RUN_TIMEOUT,
        )

    with ThreadedSandbox(config) as sandbox:
        port = sandbox.port
        errors = [repr(e) for e in asyncio.run(run(sandbox)) if isinstance(e, BaseException)]
        cert_files = {
            str(sandbox.cert_path.relative_to(tmp_path)),
            str(sandbox.cert_path.with_name("key.pem").relative_to(tmp_path)),
        }
    # Stopped: whatever the server was still doing is finished.

    assert errors == []
    assert outcome.unexpected == []
    # Under load, every message within the limit got its 250.
    assert len(outcome.acknowledged) == clients * 2 + clients // 10
    refused = {t: why for t, why in outcome.not_acknowledged.items() if "big" in t}
    assert len(refused) == clients // 10
    assert all(why.startswith("552 5.3.4 ") for why in refused.values())
    assert len(outcome.not_acknowledged) == clients // 10 * 2  # oversized, and hung up

    stored = stored_by_token(mailbox)
    assert sorted(stored) == sorted(outcome.acknowledged)  # nothing more, nothing less
    assert not set(stored) & set(outcome.not_acknowledged)
    for token, messages in stored.items():
        assert len(messages) == 1, token
        message, expected = messages[0], outcome.acknowledged[token]
        assert message.raw == expected.raw, token  # byte for byte, dot-stuffing undone
        envelope = message.envelope
        assert envelope["key"] == message.key
        assert envelope["mail_from"] == expected.sender
        assert envelope["rcpt_tos"] == expected.recipients
        assert envelope["size"] == len(expected.raw)
        assert envelope["server"]["relayed"] is False

    keys = [m.key for messages in stored.values() for m in messages]
    assert files_under(tmp_path) == cert_files | {
        *(f"Maildir/new/{key}" for key in keys),
        "Maildir/envelopes.jsonl",
    }  # nothing half-written in tmp/, nothing anywhere else
    log_lines = (tmp_path / "Maildir" / "envelopes.jsonl").read_bytes().splitlines()
    assert len(log_lines) == len(keys)  # one whole line per message, none torn or mixed
    assert set(Mailbox(tmp_path / "Maildir").envelopes()) == set(keys)
    assert set(outbound.connects) == {("127.0.0.1", port)}  # type: ignore[misc]
    assert set(outbound.lookups) <= {"127.0.0.1"}


def test_connection_limit_holds_under_a_burst(tmp_path: Path) -> None:
    mailbox = tmp_path / "Maildir"
    config = SandboxConfig(mailbox=mailbox, max_connections=10)
    clients = 20
    greetings: list[str] = []
    delivered: list[str] = []
    served = {"now": 0, "most": 0}

    async def burst_client(
        number: int, sandbox: ThreadedSandbox, everyone: asyncio.Barrier
    ) -> None:
        """All 20 connect at once and hold on: 10 are served, 10 told to come back later."""
        client, greeting = await Client.connect(sandbox)
        try:
            greetings.append(greeting[0])
            await asyncio.wait_for(everyone.wait(), RUN_TIMEOUT)
            if greeting[0] == TOO_MANY:
                assert await client.closed_by_server()
                return
            assert (await client.command("EHLO load.test"))[-1] == "250 HELP"
            outcome = Outcome()
            if (await send(client, f"burst{number}", outcome)).startswith("250 "):
                delivered.append(f"burst{number}")
            await client.command("QUIT")
        finally:
            client.close()

    async def retrying_client(number: int, sandbox: ThreadedSandbox) -> None:
        """Comes back after a 421 until served; counts how many are being served at once."""
        for _attempt in range(500):
            client, greeting = await Client.connect(sandbox)
            try:
                if greeting[0] == TOO_MANY:
                    continue
                served["now"] += 1  # after the server took us on (it counts us first)
                served["most"] = max(served["most"], served["now"])
                await client.command("EHLO load.test")
                if (await send(client, f"retry{number}", Outcome())).startswith("250 "):
                    delivered.append(f"retry{number}")
                await client.command("QUIT")  # the server forgets us after this reply
                served["now"] -= 1
                return
            finally:
                client.close()
                await asyncio.sleep(0.005)
        raise AssertionError(f"client {number} was never served")

    async def run(sandbox: ThreadedSandbox) -> None:
        everyone = asyncio.Barrier(clients)
        await asyncio.wait_for(
            asyncio.gather(*(burst_client(n, sandbox, everyone) for n in range(clients))),
            RUN_TIMEOUT,
        )
        await asyncio.wait_for(
            asyncio.gather(*(retrying_client(n, sandbox) for n in range(clients))), RUN_TIMEOUT
        )

    with ThreadedSandbox(config) as sandbox:
        asyncio.run(run(sandbox))

    assert greetings.count(TOO_MANY) == clients - 10
    assert greetings.count("220 localhost smtp-tutor sandbox ESMTP ready") == 10
    assert 1 <= served["most"] <= 10
    assert len(delivered) == 10 + clients
    assert sorted(stored_by_token(mailbox)) == sorted(delivered)


def test_idle_timer_counts_bytes_inside_data(tmp_path: Path) -> None:
    """Typing a message slowly is not idling; falling silent afterwards is."""
    config = SandboxConfig(mailbox=tmp_path / "Maildir", idle_timeout=1.0)

    async def run(sandbox: ThreadedSandbox) -> tuple[list[str], list[str]]:
        client, _ = await Client.connect(sandbox)
        try:
            await client.command("EHLO load.test")
            assert (await transaction(client, "slow@example.org", ["a@gmail.com"]))[0][:4] == "354 "
            for number in range(10):  # 2.5 s of typing, never 1 s quiet
                client.writer.write(f"line {number}\r\n".encode())
                await asyncio.sleep(0.25)
            stored = await client.message(b"")
            return stored, await client.reply()
        finally:
            client.close()

    with ThreadedSandbox(config) as sandbox:
        stored, after = asyncio.run(run(sandbox))
    assert stored[0].startswith("250 2.0.0 ")
    assert after == ["421 4.4.2 localhost Idle timeout, closing connection"]
    assert Mailbox(tmp_path / "Maildir").latest().raw == b"".join(  # type: ignore[union-attr]
        f"line {n}\r\n".encode() for n in range(10)
    )


class SlowMailbox(Mailbox):
    """Takes as long as told to store a message (nothing is written), and notes the thread."""

    def __init__(self, path: Path, delays: list[float]) -> None:
        super().__init__(path)
        self.delays = delays
        self.threads: list[str] = []

    def add(self, raw: bytes, envelope: Mapping[str, Any], spare: object = None) -> str:
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delays[len(self.threads) - 1])
        return f"key{len(self.threads)}"


def test_writes_leave_the_event_loop_when_the_disk_is_slow(tmp_path: Path) -> None:
    """Small messages are written in the loop; a slow disk sends them to threads instead."""
    hiccup = [0.0] * 5 + [0.01] + [0.0] * 5
    slow = [0.01] * 12

    async def store(mailbox: SlowMailbox, count: int, size: int = 10) -> tuple[list[str], bool]:
        writer = MailboxWriter(mailbox)
        try:
            keys = [await writer.add(b"x" * size, {}) for _ in range(count)]
            return keys, writer.offloading
        finally:
            writer.close()

    steady = SlowMailbox(tmp_path, hiccup)
    keys, offloading = asyncio.run(store(steady, len(hiccup)))
    assert keys == [f"key{n}" for n in range(1, len(hiccup) + 1)]  # each waited for its write
    assert not offloading  # one slow write is a hiccup, not a slow disk
    assert set(steady.threads) == {"MainThread"}

    busy = SlowMailbox(tmp_path, slow)
    keys, offloading = asyncio.run(store(busy, len(slow)))
    assert len(keys) == len(slow)
    assert offloading
    first_in_thread = busy.threads.index("smtp-tutor-maildir")
    assert set(busy.threads[:first_in_thread]) == {"MainThread"}
    assert set(busy.threads[first_in_thread:]) == {"smtp-tutor-maildir"}

    large = SlowMailbox(tmp_path, [0.0])
    asyncio.run(store(large, 1, size=INLINE_LIMIT + 1))
    assert large.threads == ["smtp-tutor-maildir"]  # big messages never block the loop


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_spare_files_are_made_ahead_used_once_and_removed_at_close(tmp_path: Path) -> None:
    mailbox = Mailbox(tmp_path / "Maildir")
    mailbox.create()
    tmp = mailbox.path / "tmp"
    spares = SpareFiles(mailbox, count=4)
    spares.start()
    wait_until(lambda: len(list(tmp.iterdir())) == 4)
    spare = spares.take()
    assert spare is not None and spare[0].endswith(".spare")
    key = mailbox.add(b"Subject: spare\r\n\r\nx\r\n", {"helo": "me"}, spare)
    assert not key.endswith(".spare") and key != spare[0].removesuffix(".spare")
    assert mailbox.get(key).raw == b"Subject: spare\r\n\r\nx\r\n"
    assert mailbox.get(key).envelope == {"key": key, "helo": "me"}
    extra = [spares.take(), spares.take()]  # one left: fewer than half, so more are made
    wait_until(lambda: len(list(tmp.iterdir())) == 4 + 2)  # four ready again, two taken
    left = [*extra, *(spares.take() for _ in range(4))]
    spares.close()
    taken = sorted(spare[0] for spare in left if spare is not None)
    assert len(taken) == 6 and sorted(p.name for p in tmp.iterdir()) == taken
    for name, fd in filter(None, left):  # taken but not used: the taker's to close
        os.close(fd)
        (tmp / name).unlink()

    open_files = len(os.listdir("/proc/self/fd"))
    unused = SpareFiles(mailbox, count=3)
    unused.start()
    wait_until(lambda: len(list(tmp.iterdir())) == 3)
    unused.close()
    assert list(tmp.iterdir()) == []  # unused spares are removed
    assert len(os.listdir("/proc/self/fd")) == open_files  # and their descriptors closed


def test_spares_left_by_a_killed_sandbox_are_removed_but_no_live_ones(tmp_path: Path) -> None:
    mailbox = Mailbox(tmp_path / "Maildir")
    mailbox.create()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead, alive = int(gone.stdout), os.getppid()
    tmp = mailbox.path / "tmp"
    orphan = tmp / f"1700000000.M1P{dead}Q1.host.spare"
    other = tmp / f"1700000000.M1P{alive}Q1.host.spare"
    unrelated = tmp / "1700000000.M1P1Q1.host"
    for path in (orphan, other, unrelated):
        path.write_bytes(b"")
    spares = SpareFiles(mailbox, count=1)
    spares.start()
    wait_until(lambda: not orphan.exists())
    spares.close()
    assert other.exists() and unrelated.exists()


def test_messages_in_quick_succession_start_spares_and_leave_tmp_empty(tmp_path: Path) -> None:
    mailbox = Mailbox(tmp_path / "Maildir")
    mailbox.create()

    async def store() -> tuple[list[str], bool]:
        writer = MailboxWriter(mailbox)
        try:
            first = await writer.add(b"Subject: 0\r\n\r\nx\r\n", {})
            alone = writer.spares is None  # one message is no traffic
            keys = [first] + [
                await writer.add(b"Subject: %d\r\n\r\nx\r\n" % n, {}) for n in range(1, 40)
            ]
            await asyncio.sleep(0.2)
            keys.append(await writer.add(b"Subject: 40\r\n\r\nx\r\n", {}))
            return keys, alone and writer.spares is not None
        finally:
            writer.close()

    keys, started = asyncio.run(store())
    assert started
    assert [m.key for m in mailbox.messages()] == keys  # in order, each under its own key
    assert [m.message["subject"] for m in mailbox.messages()] == [str(n) for n in range(41)]
    assert list((mailbox.path / "tmp").iterdir()) == []


def test_clients_that_reset_leave_no_error_behind(tmp_path: Path) -> None:
    """A hard reset is no error: nothing may wait to print "exception never retrieved"."""
    config = SandboxConfig(mailbox=tmp_path / "Maildir", max_connections=1)

    def connect_when_free(sandbox: ThreadedSandbox) -> socket.socket:
        """One slot: a 220 means the sandbox is done with the connection before."""
        for _attempt in range(500):
            sock = socket.create_connection((sandbox.host, sandbox.port), timeout=REPLY_TIMEOUT)
            if sock.recv(1024).startswith(b"220 "):
                return sock
            sock.close()
            time.sleep(0.005)
        raise AssertionError("the sandbox never forgot a reset connection")

    with ThreadedSandbox(config) as sandbox:
        for _ in range(10):
            sock = connect_when_free(sandbox)
            sock.sendall(b"EHLO reset.test\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # RST, whatever the server was about to say
        connect_when_free(sandbox).close()
        unretrieved = [
            repr(future.exception())
            for future in gc.get_objects()
            if isinstance(future, asyncio.Future)
            and future.done()
            and not future.cancelled()
            and getattr(future, "_log_traceback", False)
        ]
    assert unretrieved == []
