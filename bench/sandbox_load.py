"""The sandbox under load, side by side with a bare aiosmtpd `Sink` server.

Many concurrent SMTP clients (default 500), each sending a few messages (default 4), run
against two servers in the same run: (a) `smtp-tutor serve` (our sandbox: enhanced codes,
triggers, limits, a Maildir write per message) and (b) aiosmtpd's `Sink` handler, bound
the same way (`loop.create_server` on 127.0.0.1:0 with aiosmtpd's SMTP protocol and the
listen backlog our sandbox uses). Each server runs in its own process, so the load
generator's event loop does not share a CPU with the server it measures. Loopback only;
bounded in count and time.

Rounds alternate the order (ours, Sink / Sink, ours, ...); the better round of each server
(by throughput) is reported, with its latencies, and the medians over all rounds beside
it (a shared machine is noisy). Reported:
  * throughput: messages acknowledged with 250 per second of wall time (all clients),
  * ours / Sink (target >= 0.8), and the server CPU per message of each,
  * p50/p95/p99 reply latency: from writing a command (or the message and its final dot)
    to reading its whole reply, over every command of the round (target p99 < 100 ms);
    the final dot's own p50/p99, and the connect-to-greeting time, separately,
  * the mean latency that Little's law forces at that rate with every client waiting.
At the end every message our sandbox acknowledged is looked up in its Maildir; the exit
status is 1 if one is missing, one is there unacknowledged, or a client failed.

    python bench/sandbox_load.py [--clients 500] [--messages 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
LISTEN_BACKLOG = 100  # as smtp_tutor.sandbox.server: the limit plus this many
REPLY_TIMEOUT = 30.0  # per reply; a stuck client fails its run instead of hanging it
ROUND_TIMEOUT = 120.0
START_TIMEOUT = 30.0

SINK_SERVER = r"""
import asyncio, resource, signal, sys
from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Sink(), hostname="localhost", loop=loop),
        host="127.0.0.1",
        port=0,
        backlog=int(sys.argv[1]),
    )
    print("listening on 127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()

asyncio.run(main())
"""


def raise_open_file_limit() -> None:
    """Each client is a socket here and one more in the server: 500 needs more than 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    port: int


def start_server(name: str, command: list[str], env: dict[str, str]) -> Server:
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=raise_open_file_limit,  # the server holds one socket per client too
    )
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            return Server(name, process, int(match[1]))
    process.kill()
    raise SystemExit(f"{name} did not start:\n{''.join(seen)}")


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@dataclass
class RoundResult:
    server: str
    clients: int
    sent: int = 0
    acked: list[str] = field(default_factory=list)  # tokens of the messages answered 250
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # every command
    stored: list[float] = field(default_factory=list)  # final dot to its reply only
    greetings: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = 0.0  # CPU seconds the server process used during the round
    client_cpu: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.acked) / self.seconds if self.seconds else 0.0


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    """The reply code of a (possibly multi-line) reply."""
    line = await asyncio.wait_for(reader.readuntil(b"\r\n"), REPLY_TIMEOUT)
    while line[3:4] == b"-":
        line = await asyncio.wait_for(reader.readuntil(b"\r\n"), REPLY_TIMEOUT)
    return line[:3]


def message_bytes(token: str) -> bytes:
    return (
        f"From: <bench@example.org>\r\nTo: <sink@example.com>\r\n"
        f"Subject: load {token}\r\nMessage-ID: <{token}@bench.test>\r\n\r\n"
        f"Token {token}.\r\n" + "A line of an ordinary message body, nothing more.\r\n" * 8
    ).encode()


async def one_client(
    number: int, port: int, messages: int, prefix: str, result: RoundResult
) -> None:
    latencies = result.latencies
    step = "connect"
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), REPLY_TIMEOUT)
    except (OSError, TimeoutError) as error:
        result.failures.append(f"{step}: {error!r}")
        return
    try:
        step = "greeting"
        if await read_reply(reader) != b"220":
            result.failures.append("no 220 greeting")
            return
        result.greetings.append(time.perf_counter() - started)

        async def command(data: bytes, kept: list[float] | None = None) -> bytes:
            nonlocal step
            step = data[:4].decode()
            sent = time.perf_counter()
            writer.write(data)
            code = await read_reply(reader)
            latency = time.perf_counter() - sent
            latencies.append(latency)
            if kept is not None:
                kept.append(latency)
            return code

        if await command(b"EHLO bench.test\r\n") != b"250":
            result.failures.append("EHLO refused")
            return
        for index in range(messages):
            token = f"{prefix}-{number}-{index}"
            result.sent += 1
            if await command(b"MAIL FROM:<bench@example.org>\r\n") != b"250":
                result.failures.append("MAIL refused")
                continue
            if await command(b"RCPT TO:<sink@example.com>\r\n") != b"250":
                result.failures.append("RCPT refused")
                continue
            if await command(b"DATA\r\n") != b"354":
                result.failures.append("DATA refused")
                continue
            code = await command(message_bytes(token) + b".\r\n", result.stored)
            if code == b"250":
                result.acked.append(token)
            else:
                result.failures.append(f"message answered {code.decode()}")
        await command(b"QUIT\r\n")
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
        result.failures.append(f"{step}: {error!r}")
    finally:
        writer.close()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_round(server: Server, clients: int, messages: int, prefix: str) -> RoundResult:
    result = RoundResult(server.name, clients)
    server_cpu, client_cpu = process_cpu(server.process.pid), own_cpu()
    started = time.perf_counter()
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(one_client(n, server.port, messages, prefix, result) for n in range(clients)),
            return_exceptions=True,
        ),
        ROUND_TIMEOUT,
    )
    result.seconds = time.perf_counter() - started
    result.server_cpu = process_cpu(server.process.pid) - server_cpu
    result.client_cpu = own_cpu() - client_cpu
    result.failures.extend(repr(o) for o in outcomes if isinstance(o, BaseException))
    return result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def ms(values: list[float], fraction: float) -> str:
    return f"{percentile(values, fraction) * 1000:.0f}"


def describe(result: RoundResult) -> str:
    lat, dots, greetings = result.latencies, result.stored, result.greetings
    per_message = result.server_cpu / max(1, len(result.acked)) * 1000
    return (
        f"{result.server:<4} {len(result.acked)}/{result.sent} msgs in {result.seconds:.2f} s"
        f" = {result.throughput:.0f} msg/s | {len(lat)} commands: p50 {ms(lat, 0.5)} ms,"
        f" p95 {ms(lat, 0.95)} ms, p99 {ms(lat, 0.99)} ms (final dot: p50 {ms(dots, 0.5)},"
        f" p99 {ms(dots, 0.99)}) | greeting p50 {ms(greetings, 0.5)} ms, max"
        f" {ms(greetings, 1.0)} ms | CPU: server {result.server_cpu:.2f} s"
        f" ({per_message:.2f} ms/msg), clients {result.client_cpu:.2f} s"
        + (f" | {len(result.failures)} failures" if result.failures else "")
    )


def smtp_tutor_command() -> list[str]:
    script = shutil.which("smtp-tutor", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "smtp_tutor"]


def stored_tokens(maildir: Path) -> list[str]:
    tokens = []
    for path in (maildir / "new").iterdir():
        match = re.search(rb"Message-ID: <([^@>]+)@bench\.test>", path.read_bytes())
        tokens.append(match[1].decode() if match else f"?{path.name}")
    return tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500, help="concurrent clients (500)")
    parser.add_argument("--messages", type=int, default=4, help="messages per client (4)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per server (2)")
    args = parser.parse_args()
    if not (1 <= args.clients <= 2000 and 1 <= args.messages <= 50 and 1 <= args.rounds <= 10):
        parser.error("keep it bounded: clients 1-2000, messages 1-50, rounds 1-10")
    raise_open_file_limit()

    with tempfile.TemporaryDirectory(prefix="smtp-tutor-bench-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        for variable in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
            env[variable] = str(home / variable.lower())  # the certificate goes here
        maildir = home / "Maildir"
        max_connections = max(500, args.clients * 2)
        ours = start_server(
            "ours",
            [
                *smtp_tutor_command(),
                "serve",
                "--port",
                "0",
                "--mailbox",
                str(maildir),
                "--max-connections",
                str(max_connections),
            ],
            env,
        )
        # The listen backlog our sandbox uses for that limit (server.py), for a fair start.
        backlog = str(max_connections + LISTEN_BACKLOG)
        sink = start_server("sink", [sys.executable, "-c", SINK_SERVER, backlog], env)
        acked_by_ours: list[str] = []
        results: dict[str, list[RoundResult]] = {"ours": [], "sink": []}
        try:
            for server in (ours, sink):  # warm-up, not counted: imports, caches, first files
                warm = asyncio.run(run_round(server, 20, 1, f"warm-{server.name}"))
                if server is ours:
                    acked_by_ours.extend(warm.acked)
            for number in range(args.rounds):
                order = (ours, sink) if number % 2 == 0 else (sink, ours)
                for server in order:
                    result = asyncio.run(
                        run_round(server, args.clients, args.messages, f"r{number}-{server.name}")
                    )
                    results[server.name].append(result)
                    if server is ours:
                        acked_by_ours.extend(result.acked)
                    print(f"round {number + 1}: {describe(result)}", flush=True)
        finally:
            stop_server(ours)
            stop_server(sink)

        best = {name: max(rounds, key=lambda r: r.throughput) for name, rounds in results.items()}
        ratio = best["ours"].throughput / best["sink"].throughput
        stored = stored_tokens(maildir)
        missing = set(acked_by_ours) - set(stored)
        extra = set(stored) - set(acked_by_ours)

    p99 = percentile(best["ours"].latencies, 0.99)
    medians = {
        name: statistics.median(r.throughput for r in rounds) for name, rounds in results.items()
    }
    cpu = {name: r.server_cpu / max(1, len(r.acked)) for name, r in best.items()}
    print()
    print(
        f"{args.clients} concurrent clients x {args.messages} messages, "
        f"better of {args.rounds} rounds each (by throughput):"
    )
    print(f"  {describe(best['ours'])}")
    print(f"  {describe(best['sink'])}")
    print(
        f"  ours / Sink = {ratio:.2f}x (target >= 0.8x); medians over the rounds "
        f"{medians['ours']:.0f} / {medians['sink']:.0f} msg/s = "
        f"{medians['ours'] / medians['sink']:.2f}x; server CPU per message "
        f"{cpu['sink'] / cpu['ours']:.2f}x as cheap as Sink's"
    )
    # Closed loop, no think time: each client always waits on one reply, so the mean reply
    # time is clients / (commands per second), whatever the server does per command.
    floor = {n: r.clients * r.seconds / max(1, len(r.latencies)) for n, r in best.items()}
    print(
        f"  ours p99 = {p99 * 1000:.1f} ms (target < 100 ms); at these rates {args.clients} "
        f"waiting clients mean {floor['ours'] * 1000:.0f} ms (ours) and "
        f"{floor['sink'] * 1000:.0f} ms (Sink) per reply on average (Little's law)"
    )
    print(
        f"  Maildir: {len(stored)} stored, {len(acked_by_ours)} acknowledged with 250, "
        f"{len(missing)} acknowledged but missing, {len(extra)} stored but not acknowledged"
    )
    failures = [f for rounds in results.values() for r in rounds for f in r.failures]
    if failures:
        print(f"  failures: {len(failures)}, e.g. {sorted(set(failures))[:5]}")
    return 1 if missing or extra or failures else 0


if __name__ == "__main__":
    sys.exit(main())
