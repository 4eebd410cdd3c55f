"""The classroom under load: N accounts each connect, AUTH PLAIN and send M messages to one
`smtp-tutor serve` sandbox, while N subscribers listen on the web view's live stream.

    python bench/classroom.py [--accounts 200] [--messages 5] [--rounds 1] [--teachers T]
                              [--json FILE]

Three kinds of process, so the bench client is not what is measured: the sandbox
(`smtp-tutor serve --class N [--web]`, its own process), one process of SMTP clients and
one of N stream subscribers: T with the teacher's token, who see every message (default
N / 2, a stress case: every teacher stream carries the whole class's mail), the rest signed
in as one student each, who see their own (`--teachers 1`: a class, its teacher and each
student's page). Each round runs web off and web on side by side (the order alternating),
on a fresh Maildir - on tmpfs where there is one, so the disk's mood is not measured.

Reports: SMTP throughput with the web view off and on (target: on >= 0.9 x off); the p99
time from the final dot's 250 to the `message` event reaching a subscriber (< 250 ms; the
clock is CLOCK_MONOTONIC, one for every process); the p99 of `GET /api/messages` with the
N x M stored messages (< 100 ms at 1,000); and that nothing acknowledged is missing: every
250-acknowledged message is in the API's list and reached every subscriber entitled to it,
either as its event or, after a `resync` event, in the list the subscriber fetched again.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from benchlib import bench_env, load_average, smtp_tutor_command  # noqa: E402

TOKEN = "bench-teacher-token"
now = time.monotonic  # CLOCK_MONOTONIC: comparable across the processes
# The Maildir on tmpfs where there is one: what is measured is the web view, not the disk
# (file creation on this machine's ext4 varies twentyfold from hour to hour).
MAILDIR_PARENT = "/dev/shm" if os.path.isdir("/dev/shm") else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_accounts(path: Path) -> dict[str, str]:
    with path.open(newline="") as f:
        return {row["name"]: row["password"] for row in csv.DictReader(f)}


# The SMTP clients (a process of their own) ------------------------------------------------


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line or line[3:4] != b"-":
            return line


async def student(port: int, name: str, password: str, count: int, acked: dict[str, float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    blob = base64.b64encode(f"\0{name}\0{password}".encode()).decode()
    for line in (f"EHLO {name}", f"AUTH PLAIN {blob}"):
        writer.write(line.encode() + b"\r\n")
        reply = await _reply(reader)
    if not reply.startswith(b"235"):
        raise SystemExit(f"AUTH failed for {name}: {reply!r}")
    for n in range(count):
        subject = f"{name}-{n}"
        writer.write(
            f"MAIL FROM:<{name}@example.org>\r\nRCPT TO:<t@example.org>\r\nDATA\r\n".encode()
        )
        for _ in range(3):
            await _reply(reader)
        writer.write(
            f"From: <{name}@example.org>\r\nTo: <t@example.org>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@bench>\r\n\r\nbody of {subject}\r\n.\r\n".encode()
        )
        if (await _reply(reader)).startswith(b"250"):
            acked[subject] = now()
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


async def send_all(port: int, accounts: dict[str, str], messages: int) -> dict:
    acked: dict[str, float] = {}
    start = now()
    await asyncio.gather(*(student(port, u, p, messages, acked) for u, p in accounts.items()))
    return {"start": start, "end": now(), "acked": acked, "cpu": time.process_time()}


# The subscribers (a process of their own) -------------------------------------------------


_SUBJECT = re.compile(rb'"subject":"([^"]*)"')


async def subscriber(
    session, url: str, auth: str, seen: dict[str, float], counts: dict[str, int], ready: list
) -> None:
    """A page's EventSource, as cheap as can be: the subject found in the bytes, no JSON."""
    headers = {"Authorization": auth}
    async with session.get(url + "api/stream", headers=headers) as response:
        ready.append(1)
        rest = b""
        async for chunk in response.content.iter_any():
            at = now()
            events = (rest + chunk).split(b"\n\n")
            rest = events.pop()
            for event in events:
                if event.startswith(b"event: message\n"):
                    found = _SUBJECT.search(event)
                    if found:
                        seen.setdefault(found[1].decode(), at)
                elif event.startswith(b"event: resync\n"):
                    # What the page does: fetch the list again.
                    counts["resyncs"] += 1
                    async with session.get(url + "api/messages", headers=headers) as listing:
                        body = await listing.json()
                    got = now()
                    for item in body["messages"]:
                        seen.setdefault(item["subject"], got)


async def subscribe_all(url: str, auths: list[str]) -> None:
    import aiohttp

    seen_by: list[dict[str, float]] = [{} for _ in auths]
    counts = {"resyncs": 0, "ended": 0}
    ready: list = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:

        async def one(n: int) -> None:
            try:
                await subscriber(session, url, auths[n], seen_by[n], counts, ready)
            finally:
                counts["ended"] += 1

        tasks = [asyncio.create_task(one(n)) for n in range(len(auths))]
        while len(ready) < len(tasks):
            await asyncio.sleep(0.01)
            for task in tasks:
                if task.done() and task.exception():
                    raise task.exception()  # type: ignore[misc]
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        ended = counts["ended"]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    cpu = time.process_time()
    json.dump(
        {"seen": seen_by, "resyncs": counts["resyncs"], "ended": ended, "cpu": cpu}, sys.stdout
    )
    sys.stdout.flush()


# The orchestra ---------------------------------------------------------------------------


def is_teacher(n: int, teachers: int, subscribers: int) -> bool:
    """Subscriber n signs in with the teacher's token: `teachers` of them, spread evenly."""
    if teachers <= 0:
        return False
    step = max(1, subscribers // teachers)
    return n % step == 0 and n // step < teachers


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def helper(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


async def list_latencies(url: str, rounds: int) -> tuple[list[float], dict]:
    import aiohttp

    latencies = []
    body: dict = {}
    async with aiohttp.ClientSession() as client:
        for _ in range(rounds):
            t0 = time.perf_counter()
            async with client.get(
                url + "api/messages", headers={"Authorization": f"Bearer {TOKEN}"}
            ) as response:
                body = await response.json()
            latencies.append(time.perf_counter() - t0)
    return latencies, body


def run(accounts: int, messages: int, web: bool, teachers: int) -> dict:
    with tempfile.TemporaryDirectory(dir=MAILDIR_PARENT) as tmp:
        smtp_port, web_port = free_port(), free_port()
        accounts_file = Path(tmp) / "accounts.csv"
        command = _serve_args(smtp_port, tmp, accounts, accounts_file, web_port if web else None)
        # CLASSROOM_PROFILE=F: a cProfile of the web-on sandbox in F.on (with
        # CLASSROOM_PROFILE_OFF=1, of the web-off one too, in F.off)
        profile = os.environ.get("CLASSROOM_PROFILE")
        if profile and (web or os.environ.get("CLASSROOM_PROFILE_OFF")):
            command = [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                f"{profile}.{'on' if web else 'off'}",
                "-m",
                "smtp_tutor",
                *command,
            ]
        else:
            command = [*smtp_tutor_command(), *command]
        env = bench_env(tmp)
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
        subscribers = None
        try:
            wait_port(smtp_port)
            if web:
                wait_port(web_port)
            users = read_accounts(accounts_file)
            names = list(users)
            url = f"http://127.0.0.1:{web_port}/"
            if web:
                auths = [
                    f"Bearer {TOKEN}"
                    if is_teacher(n, teachers, len(names))
                    else "Basic " + base64.b64encode(f"{name}:{users[name]}".encode()).decode()
                    for n, name in enumerate(names)
                ]
                subscribers = helper("_subscribe", url, json.dumps(auths))
                assert subscribers.stdout is not None
                if subscribers.stdout.readline().strip() != "ready":
                    raise SystemExit("the subscribers did not start")
            server_cpu = cpu_seconds(server.pid)
            subscribers_cpu = cpu_seconds(subscribers.pid) if subscribers is not None else 0.0
            sender = helper("_send", str(smtp_port), str(accounts_file), str(messages))
            out, _ = sender.communicate()
            # CPU spent while the clients sent (startup left out): what web on costs.
            server_window = cpu_seconds(server.pid) - server_cpu
            subscribers_window = (
                cpu_seconds(subscribers.pid) - subscribers_cpu if subscribers is not None else None
            )
            sent = json.loads(out)
            acked: dict[str, float] = sent["acked"]
            elapsed = sent["end"] - sent["start"]
            result: dict = {
                "server_cpu_s": cpu_seconds(server.pid),
                "server_cpu_sending_s": server_window,
                "smtp_clients_cpu_s": sent["cpu"],
                "throughput": len(acked) / elapsed,
                "elapsed_s": elapsed,
                "acked": len(acked),
                "attempted": accounts * messages,
            }
            if web:
                assert subscribers is not None
                time.sleep(1.0)
                out, _ = subscribers.communicate("stop\n")
                got = json.loads(out)
                result["subscribers_cpu_s"] = got["cpu"]
                result["subscribers_cpu_sending_s"] = subscribers_window
                delays: list[float] = []
                missing = 0
                for n, seen in enumerate(got["seen"]):
                    name = names[n]
                    wanted = (
                        acked
                        if is_teacher(n, teachers, len(names))
                        else {s: t for s, t in acked.items() if s.startswith(name + "-")}
                    )
                    for subject, at in wanted.items():
                        if subject in seen:
                            delays.append(seen[subject] - at)
                        else:
                            missing += 1
                delays.sort()
                latencies, body = asyncio.run(list_latencies(url, 200))
                latencies.sort()
                listed = {m["subject"] for m in body["messages"]}
                result.update(
                    {
                        "events_expected": len(delays) + missing,
                        "events_missing": missing,
                        "resyncs": got["resyncs"],
                        "streams_ended_early": got["ended"],
                        "p50_event_ms": 1000 * delays[len(delays) // 2] if delays else None,
                        "p99_event_ms": 1000 * delays[int(0.99 * (len(delays) - 1))]
                        if delays
                        else None,
                        "max_event_ms": 1000 * delays[-1] if delays else None,
                        "listed": len(body["messages"]),
                        "acked_not_listed": len(set(acked) - listed),
                        "p99_list_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
                        "median_list_ms": 1000 * statistics.median(latencies),
                    }
                )
            return result
        finally:
            if subscribers is not None and subscribers.poll() is None:
                subscribers.kill()
            server.send_signal(2)  # SIGINT: serve stops cleanly (a profile gets written)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()


def _serve_args(
    smtp_port: int, tmp: str, accounts: int, accounts_file: Path, web_port: int | None
) -> list[str]:
    web = ["--web", f"127.0.0.1:{web_port}"] if web_port is not None else []
    return [
        "serve",
        "--port",
        str(smtp_port),
        "--mailbox",
        str(Path(tmp) / "Maildir"),
        "--class",
        str(accounts),
        "--accounts-file",
        str(accounts_file),
        "--max-connections",
        str(accounts + 50),
        "--teacher-token",
        TOKEN,
        "-q",
        *web,
    ]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_send":
        port, path, messages = int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
        result = asyncio.run(send_all(port, read_accounts(path), messages))
        json.dump(result, sys.stdout)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_subscribe":
        asyncio.run(subscribe_all(sys.argv[2], json.loads(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--teachers",
        type=int,
        default=None,
        help="subscribers with the teacher's token (default: half of them); the rest are "
        "students, each signed in as one account",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    load_before = load_average()
    teachers = args.accounts // 2 if args.teachers is None else args.teachers
    rounds = []
    for n in range(args.rounds):
        order = (False, True) if n % 2 == 0 else (True, False)
        pair = {web: run(args.accounts, args.messages, web, teachers) for web in order}
        rounds.append({"off": pair[False], "on": pair[True]})
        off, on = pair[False], pair[True]
        print(f"round {n + 1}: web off {off['throughput']:.0f} msg/s, on {on['throughput']:.0f}")
    load_after = load_average()
    off_t = statistics.median(r["off"]["throughput"] for r in rounds)
    on_t = statistics.median(r["on"]["throughput"] for r in rounds)
    on = rounds[-1]["on"]
    worst = {
        k: max(r["on"][k] for r in rounds)
        for k in ("p99_event_ms", "p99_list_ms", "events_missing", "acked_not_listed")
    }
    print(
        f"accounts {args.accounts} x {args.messages} messages, {args.rounds} round(s); "
        f"subscribers: {teachers} teacher, {args.accounts - teachers} student"
    )
    print(f"web off: {off_t:.0f} msg/s; web on: {on_t:.0f} msg/s (medians)")
    print(f"ratio on/off: {on_t / off_t:.2f} (target >= 0.9)")
    cpu_off = statistics.median(r["off"]["server_cpu_sending_s"] for r in rounds)
    cpu_on = statistics.median(r["on"]["server_cpu_sending_s"] for r in rounds)
    cpu_subs = statistics.median(r["on"]["subscribers_cpu_sending_s"] for r in rounds)
    print(
        f"CPU s while sending (medians): server off {cpu_off:.2f}, on {cpu_on:.2f}; "
        f"subscribers {cpu_subs:.2f}"
    )
    print(
        f"p99 250 -> subscriber: {worst['p99_event_ms']:.0f} ms worst round "
        f"(last: p50 {on['p50_event_ms']:.0f}, max {on['max_event_ms']:.0f}) (target < 250)"
    )
    print(
        f"events missing: {worst['events_missing']} of {on['events_expected']}; "
        f"resyncs {on['resyncs']}; acked not listed: {worst['acked_not_listed']}"
    )
    print(
        f"GET /api/messages at {on['listed']} messages: p99 {worst['p99_list_ms']:.1f} ms, "
        f"median {on['median_list_ms']:.1f} ms (target p99 < 100)"
    )
    print("load average before", load_before, "after", load_after)
    if args.json:
        figures = {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "tree": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                cwd=BENCH,
            ).stdout.strip(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "accounts": args.accounts,
            "messages": args.messages,
            "teacher_streams": teachers,
            "load_before": load_before,
            "load_after": load_after,
            "throughput_off": off_t,
            "throughput_on": on_t,
            "ratio_on_off": on_t / off_t,
            "worst": worst,
            "rounds": rounds,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"classroom": figures}, indent=1) + "\n")


if __name__ == "__main__":
    main()
