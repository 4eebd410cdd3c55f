"""The classroom under load: N accounts each connect, AUTH and send 5 messages, while N
subscribers listen on the web view's live stream.

    python bench/classroom.py [--accounts 200] [--messages 5]

Reports SMTP throughput with the web view off and on (target: on >= 0.9 x off), the p99
time from the final dot's 250 to the `message` event reaching a subscriber (< 250 ms),
the p99 of `GET /api/messages` with 1,000 stored messages (< 100 ms), and whether every
acknowledged message was stored and announced. Print `cat /proc/loadavg` beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smtp_tutor.sandbox import Sandbox, SandboxConfig
from smtp_tutor.web.app import WebView

TOKEN = "bench-teacher-token"


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line or line[3:4] != b"-":
            return line


async def student(
    host: str, port: int, name: str, password: str, count: int, acked: dict[str, float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    await _reply(reader)
    blob = base64.b64encode(f"\0{name}\0{password}".encode()).decode()
    for line in (f"EHLO {name}", f"AUTH PLAIN {blob}"):
        writer.write(line.encode() + b"\r\n")
        await _reply(reader)
    for n in range(count):
        subject = f"{name}-{n}"
        writer.write(
            f"MAIL FROM:<{name}@example.org>\r\nRCPT TO:<t@example.org>\r\nDATA\r\n".encode()
        )
        for _ in range(3):
            await _reply(reader)
        writer.write(f"Subject: {subject}\r\n\r\nbody\r\n.\r\n".encode())
        if (await _reply(reader)).startswith(b"250"):
            acked[subject] = time.perf_counter()
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


async def subscriber(
    session: aiohttp.ClientSession, url: str, auth: str, seen: dict[str, float], ready: list[int]
) -> None:
    async with session.get(url + "api/stream", headers={"Authorization": auth}) as response:
        ready.append(1)
        event = None
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "message":
                subject = json.loads(line[6:])["subject"]
                seen.setdefault(subject, time.perf_counter())


async def run(accounts: int, messages: int, web: bool) -> dict[str, float]:
    users = {f"s{n:03d}": f"pw-{n:03d}-xyz" for n in range(accounts)}
    with tempfile.TemporaryDirectory() as tmp:
        config = SandboxConfig(
            mailbox=Path(tmp) / "Maildir", users=users, max_connections=accounts + 50
        )
        sandbox = Sandbox(config, record_sessions=web)
        view = None
        if web:
            view = WebView(sandbox, "127.0.0.1", 0, teacher_token=TOKEN, rate=1e9, burst=1e9)
            sandbox.companions.append(view)
        await sandbox.start()
        acked: dict[str, float] = {}
        seen_by: list[dict[str, float]] = []
        tasks = []
        client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        try:
            if view is not None:
                ready: list[int] = []
                for n, (name, password) in enumerate(users.items()):
                    seen: dict[str, float] = {}
                    seen_by.append(seen)
                    # Half the subscribers are the teacher (sees all), half a student.
                    auth = (
                        f"Bearer {TOKEN}"
                        if n % 2 == 0
                        else "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()
                    )
                    tasks.append(
                        asyncio.create_task(subscriber(client, view.url, auth, seen, ready))
                    )
                while len(ready) < len(tasks):
                    await asyncio.sleep(0.01)
            start = time.perf_counter()
            await asyncio.gather(
                *(
                    student(sandbox.host, sandbox.port, u, p, messages, acked)
                    for u, p in users.items()
                )
            )
            elapsed = time.perf_counter() - start
            result = {"throughput": len(acked) / elapsed, "acked": float(len(acked))}
            stored = len(sandbox.accounts.shared.keys())
            result["stored"] = float(stored)
            if view is not None:
                await asyncio.sleep(1.0)
                delays = []
                missing = 0
                for n, seen in enumerate(seen_by):
                    name = list(users)[n]
                    wanted = (
                        acked
                        if n % 2 == 0
                        else {s: t for s, t in acked.items() if s.startswith(name + "-")}
                    )
                    for subject, at in wanted.items():
                        if subject in seen:
                            delays.append(seen[subject] - at)
                        else:
                            missing += 1
                delays.sort()
                result["p99_event_ms"] = (
                    1000 * delays[int(0.99 * (len(delays) - 1))] if delays else -1
                )
                result["events_missing"] = float(missing)
                latencies = []
                for _ in range(100):
                    t0 = time.perf_counter()
                    async with client.get(
                        view.url + "api/messages", headers={"Authorization": f"Bearer {TOKEN}"}
                    ) as response:
                        body = await response.json()
                    latencies.append(time.perf_counter() - t0)
                latencies.sort()
                result["listed"] = float(len(body["messages"]))
                result["p99_list_ms"] = 1000 * latencies[98]
                result["median_list_ms"] = 1000 * statistics.median(latencies)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.close()
            await sandbox.stop()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    args = parser.parse_args()
    off = asyncio.run(run(args.accounts, args.messages, web=False))
    on = asyncio.run(run(args.accounts, args.messages, web=True))
    print(f"accounts {args.accounts} x {args.messages} messages")
    for label, r in (("web off", off), ("web on ", on)):
        shown = f"{r['throughput']:.0f} msg/s, {r['acked']:.0f} acked, {r['stored']:.0f} stored"
        print(f"{label}: {shown}")
    print(f"ratio on/off: {on['throughput'] / off['throughput']:.2f} (target >= 0.9)")
    print(f"p99 250 -> subscriber: {on['p99_event_ms']:.0f} ms (target < 250)")
    print(f"events missing: {on['events_missing']:.0f}")
    print(
        f"GET /api/messages at {on['listed']:.0f} messages: p99 {on['p99_list_ms']:.1f} ms, "
        f"median {on['median_list_ms']:.1f} ms (target p99 < 100)"
    )
    print("loadavg:", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()
