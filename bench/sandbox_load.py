"""The sandbox under load, side by side with a bare aiosmtpd `Sink` server.

Many concurrent SMTP clients (default 500), each sending a few messages (default 4) in
lockstep, run against two servers in the same run: (a) `smtp-tutor serve` (our sandbox:
enhanced codes, triggers, limits, a Maildir write per message) and (b) aiosmtpd's `Sink`
handler, bound the same way (`loop.create_server` on 127.0.0.1:0 with aiosmtpd's SMTP
protocol and the listen backlog our sandbox uses). Each server runs in its own process,
so the load generator's event loop does not share a CPU with the server it measures.
Loopback only; bounded in count and time. Rounds alternate the order (ours, Sink / Sink,
ours, ...), because a shared machine is noisy. Two parts:

  * Saturation: every client sends its next command as soon as the last reply came. This
    measures throughput - messages acknowledged with 250 per second of wall time - and
    reports ours / Sink (target >= 0.8) from the better round of each (medians beside),
    with the server CPU per message. Latency here only measures the queue: with every
    client always waiting, Little's law sets the mean reply time to clients / replies
    per second, whatever the server does; it is printed but not the latency figure.
  * Paced: the same clients, each sending one message every `clients / rate` seconds
    (starts spread evenly), offering `--rate` messages a second in all - by default half
    of what Sink managed at saturation in this run, the same load for both servers. This
    measures the reply latency a client sees under a steady heavy load: p50/p95/p99 of
    every command (from writing it, or the message and its final dot, to reading its
    whole reply; target p99 < 100 ms), the final dot's alone, the greeting's, and how
    many messages could not begin on time.

At the end every message our sandbox acknowledged is looked up in its Maildir; the exit
status is 1 if one is missing, one is there unacknowledged, or a client failed.

    python bench/sandbox_load.py [--clients 500] [--messages 4] [--rounds 3] [--rate N] [--dir DIR]
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
    late: list[float] = field(default_factory=list)  # paced: how late a message was begun
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
    number: int,
    port: int,
    messages: int,
    prefix: str,
    result: RoundResult,
    schedule: tuple[float, float] | None = None,
) -> None:
    """One SMTP client: connect, EHLO, `messages` messages, QUIT - each command in lockstep.

    With `schedule` (start, interval in perf_counter seconds) the client connects at
    `start` and begins message k at `start + (k + 1/2) * interval` (or at once, if late:
    that is counted): a paced client. Without it, it sends as fast as the replies come
    (closed loop).
    """
    latencies = result.latencies
    step = "connect"
    if schedule is not None:
        await asyncio.sleep(max(0.0, schedule[0] - time.perf_counter()))
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
            if schedule is not None:
                due = schedule[0] + (index + 0.5) * schedule[1]
                now = time.perf_counter()
                if now < due:
                    await asyncio.sleep(due - now)
                else:
                    result.late.append(now - due)
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


async def run_round(
    server: Server, clients: int, messages: int, prefix: str, rate: float | None = None
) -> RoundResult:
    """All clients at once: closed loop, or paced to `rate` messages a second in total.

    Paced, each client sends one message every `clients / rate` seconds, and the clients'
    starts are spread evenly over one such interval, so the offered load is steady.
    """
    result = RoundResult(server.name, clients)
    server_cpu, client_cpu = process_cpu(server.process.pid), own_cpu()
    started = time.perf_counter()
    interval = clients / rate if rate else 0.0

    def schedule(number: int) -> tuple[float, float] | None:
        return (started + interval * number / clients, interval) if rate else None

    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(
                one_client(n, server.port, messages, prefix, result, schedule(n))
                for n in range(clients)
            ),
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


def file_creation_cost(directory: Path, count: int = 300) -> float:
    """CPU seconds to create one small file here: a Maildir write's biggest part.

    On a shared virtual disk this swings from ~0.03 to ~1 ms within minutes, and every
    Maildir server with it (Sink writes nothing), so the run reports it beside the ratio.
    """
    probe = directory / "probe"
    probe.mkdir()
    started = time.process_time()
    for number in range(count):
        os.close(os.open(probe / str(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    cost = (time.process_time() - started) / count
    shutil.rmtree(probe)
    return cost


def smtp_tutor_command() -> list[str]:
    script = shutil.which("smtp-tutor", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "smtp_tutor"]


def stored_tokens(maildir: Path) -> list[str]:
    tokens = []
    for path in (maildir / "new").iterdir():
        match = re.search(rb"Message-ID: <([^@>]+)@bench\.test>", path.read_bytes())
        tokens.append(match[1].decode() if match else f"?{path.name}")
    return tokens


def pooled(rounds: list[RoundResult]) -> RoundResult:
    """All rounds of one server as one: latencies over every reply of every round."""
    total = RoundResult(rounds[0].server, rounds[0].clients)
    for result in rounds:
        total.sent += result.sent
        total.acked += result.acked
        total.failures += result.failures
        total.latencies += result.latencies
        total.stored += result.stored
        total.greetings += result.greetings
        total.late += result.late
        total.seconds += result.seconds
        total.server_cpu += result.server_cpu
        total.client_cpu += result.client_cpu
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500, help="concurrent clients (500)")
    parser.add_argument("--messages", type=int, default=4, help="messages per client (4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server and part (3)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="paced part: messages per second offered in all (default: half of what Sink "
        "managed in the saturation part of this run)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where the sandbox's Maildir goes (default: the system's temporary folder); "
        "/dev/shm takes the disk out of the comparison",
    )
    args = parser.parse_args()
    if args.dir is not None and not args.dir.is_dir():
        parser.error(f"--dir: {args.dir} is not a folder")
    if not (1 <= args.clients <= 2000 and 1 <= args.messages <= 50 and 1 <= args.rounds <= 10):
        parser.error("keep it bounded: clients 1-2000, messages 1-50, rounds 1-10")
    if args.rate and not args.clients / 60 <= args.rate <= 100_000:
        parser.error("--rate: between clients/60 and 100000 messages a second")
    raise_open_file_limit()

    with tempfile.TemporaryDirectory(prefix="smtp-tutor-bench-", dir=args.dir) as tmp:
        home = Path(tmp)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        for variable in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
            env[variable] = str(home / variable.lower())  # the certificate goes here
        maildir = home / "Maildir"
        creation = [file_creation_cost(home)]
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
        saturated: dict[str, list[RoundResult]] = {"ours": [], "sink": []}
        paced: dict[str, list[RoundResult]] = {"ours": [], "sink": []}

        def run(part: str, number: int, rate: float | None) -> None:
            order = (ours, sink) if number % 2 == 0 else (sink, ours)
            for server in order:
                prefix = f"{part}{number}-{server.name}"
                result = asyncio.run(run_round(server, args.clients, args.messages, prefix, rate))
                (paced if rate else saturated)[server.name].append(result)
                if server is ours:
                    acked_by_ours.extend(result.acked)
                print(f"{part} round {number + 1}: {describe(result)}", flush=True)

        try:
            for server in (ours, sink):  # warm-up, not counted: imports, caches, first files
                warm = asyncio.run(run_round(server, 20, 1, f"warm-{server.name}"))
                if server is ours:
                    acked_by_ours.extend(warm.acked)
            for number in range(args.rounds):
                run("saturation", number, None)
            medians = {
                name: statistics.median(r.throughput for r in rounds)
                for name, rounds in saturated.items()
            }
            rate = args.rate or round(medians["sink"] / 2)
            for number in range(args.rounds):
                run("paced", number, rate)
        finally:
            stop_server(ours)
            stop_server(sink)
        creation.append(file_creation_cost(home))
        stored = stored_tokens(maildir)
        missing = set(acked_by_ours) - set(stored)
        extra = set(stored) - set(acked_by_ours)

    best = {name: max(rounds, key=lambda r: r.throughput) for name, rounds in saturated.items()}
    ratio = best["ours"].throughput / best["sink"].throughput
    cpu = {name: r.server_cpu / max(1, len(r.acked)) for name, r in best.items()}
    print()
    print(
        f"Saturation: {args.clients} clients x {args.messages} messages, each command sent "
        f"as soon as the last reply came; better of {args.rounds} rounds (by throughput):"
    )
    print(f"  {describe(best['ours'])}")
    print(f"  {describe(best['sink'])}")
    print(
        f"  ours / Sink = {ratio:.2f}x (target >= 0.8x); medians over the rounds "
        f"{medians['ours']:.0f} / {medians['sink']:.0f} msg/s = "
        f"{medians['ours'] / medians['sink']:.2f}x; server CPU per message "
        f"{cpu['sink'] / cpu['ours']:.2f}x as cheap as Sink's"
    )
    print(
        f"  creating a file in the bench's folder cost {creation[0] * 1e6:.0f} us of CPU before "
        f"the run and {creation[1] * 1e6:.0f} us after (a Maildir write creates one per message)"
    )
    # Closed loop, no think time: each client always waits on one reply, so the mean reply
    # time is clients / (commands per second), whatever the server does per command.
    floor = {n: r.clients * r.seconds / max(1, len(r.latencies)) for n, r in best.items()}
    print(
        f"  (with every client always waiting, Little's law makes the mean reply time "
        f"{floor['ours'] * 1000:.0f} ms (ours) and {floor['sink'] * 1000:.0f} ms (Sink): "
        "saturation latency measures the queue, not the server - see the paced part)"
    )
    interval = args.clients / rate
    print()
    print(
        f"Paced: {args.clients} clients offering {rate:.0f} msg/s in all (each one message "
        f"every {interval:.2f} s; {rate / medians['sink']:.0%} of Sink's saturation "
        f"throughput), all {args.rounds} rounds pooled:"
    )
    together = {name: pooled(rounds) for name, rounds in paced.items()}
    for name in ("ours", "sink"):
        result = together[name]
        late = result.late
        print(
            f"  {name:<4} {len(result.acked)}/{result.sent} msgs | {len(result.latencies)} "
            f"replies: p50 {ms(result.latencies, 0.5)} ms, p95 {ms(result.latencies, 0.95)} ms,"
            f" p99 {ms(result.latencies, 0.99)} ms, max {ms(result.latencies, 1.0)} ms (final "
            f"dot: p50 {ms(result.stored, 0.5)}, p99 {ms(result.stored, 0.99)}) | greeting p99 "
            f"{ms(result.greetings, 0.99)} ms | {len(late)} messages begun late"
            + (f" (p99 {ms(late, 0.99)} ms)" if late else "")
        )
    p99 = percentile(together["ours"].latencies, 0.99)
    print(f"  ours p99 = {p99 * 1000:.1f} ms (target < 100 ms)")
    print()
    print(
        f"Maildir: {len(stored)} stored, {len(acked_by_ours)} acknowledged with 250, "
        f"{len(missing)} acknowledged but missing, {len(extra)} stored but not acknowledged"
    )
    failures = [
        f
        for part in (saturated, paced)
        for rounds in part.values()
        for r in rounds
        for f in r.failures
    ]
    if failures:
        print(f"  failures: {len(failures)}, e.g. {sorted(set(failures))[:5]}")
    return 1 if missing or extra or failures else 0


if __name__ == "__main__":
    sys.exit(main())
