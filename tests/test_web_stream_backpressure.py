"""The live stream's back-pressure (resync, a stuck subscriber), on a real sandbox and web view.

A subscriber that stops reading while the class keeps working must not silently miss
events: once more than `STREAM_QUEUE` wait for it, they are replaced by one `resync` event
(the page fetches its list again) and the events after it follow as usual. The queue is
made small for the test, the subscriber's receive buffer too, and the events are real:
each refused SMTP command is a `session` event, numbered by the HELO name just before it
(the event's `helo` is set when HELO is answered; `last_command` runs ahead, as it is the
last line received of a pipelined batch).
"""

from __future__ import annotations

import http.client
import json
import re
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtp_tutor.web import app
from tests.web import TOKEN, Classroom, classroom

TIMEOUT = 20
COMMANDS = 3000
PAD = "x" * 150
_NUMBER = re.compile(r"n(\d+)-x+\Z")


@pytest.fixture
def room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Classroom]:
    monkeypatch.setattr(app, "STREAM_QUEUE", 16)
    with classroom(tmp_path) as room:
        yield room


def _slow_stream(room: Classroom) -> http.client.HTTPResponse:
    """GET /api/stream as the teacher on a socket with a small receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    sock.connect((room.web.host, room.web.port))
    connection = http.client.HTTPConnection(room.web.host, room.web.port, timeout=TIMEOUT)
    connection.sock = sock
    connection.request("GET", "/api/stream", headers={"Authorization": f"Bearer {TOKEN}"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    while response.readline().strip() != b": ready":
        pass
    return response


def _refused_commands(room: Classroom, count: int, batch: int = 100, paced: bool = False) -> None:
    """`count` times HELO nNNNNN then RCPT before MAIL, pipelined: each RCPT gets a 503.

    Paced: each batch waits for its replies (and a moment) before the next goes."""
    with socket.create_connection((room.sandbox.host, room.sandbox.port), TIMEOUT) as smtp:
        replies = smtp.makefile("rb")
        assert replies.readline().startswith(b"220")
        answered = [0]

        def read() -> None:
            while answered[0] < count:
                line = replies.readline()
                if not line:
                    return
                if line[:1] == b"5" and line[3:4] == b" ":
                    answered[0] += 1

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for start in range(0, count, batch):
            lines = "".join(
                f"HELO n{n:05d}-{PAD}\r\nRCPT TO:<someone@example.org>\r\n"
                for n in range(start, min(count, start + batch))
            )
            smtp.sendall(lines.encode("ascii"))
            while paced and answered[0] < min(count, start + batch) and reader.is_alive():
                time.sleep(0.005)
            if paced:
                time.sleep(0.01)
        reader.join(TIMEOUT)
        assert answered[0] == count
        smtp.sendall(b"QUIT\r\n")


def _events(response: http.client.HTTPResponse, last: int) -> list[tuple[str, int | None]]:
    """The events read until the one for command `last`: (name, its command's number)."""
    found: list[tuple[str, int | None]] = []
    name, deadline = "message", time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = response.readline().decode("utf-8").rstrip("\r\n")
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: ") :])
            number = _NUMBER.search(data.get("helo") or "")
            found.append((name, int(number[1]) if number else None))
            if number and int(number[1]) == last:
                return found
            name = "message"
    raise AssertionError(f"command {last} never came; {len(found)} events read")


def test_a_subscriber_that_falls_behind_gets_a_resync_and_then_the_newer_events(
    room: Classroom,
) -> None:
    response = _slow_stream(room)
    try:
        _refused_commands(room, COMMANDS)  # the subscriber reads nothing meanwhile
        events = _events(response, COMMANDS - 1)
    finally:
        response.close()
    names = [name for name, _n in events]
    assert "resync" in names, "the subscriber fell behind yet was never told to resync"
    numbers = [(name, n) for name, n in events if n is not None or name == "resync"]
    seen = [n for _name, n in numbers if n is not None]
    assert seen == sorted(seen), "events out of order"
    # Every event missed lies just before a resync: none is lost without one.
    previous, resynced = -1, False
    for name, number in numbers:
        if name == "resync":
            resynced = True
            continue
        assert number is not None
        assert number == previous + 1 or resynced, f"{previous} → {number} without a resync"
        previous, resynced = number, False
    assert previous == COMMANDS - 1
    assert len(seen) < COMMANDS  # it did fall behind: some were replaced by the resync


def test_a_subscriber_that_keeps_up_gets_every_event_and_no_resync(room: Classroom) -> None:
    response = _slow_stream(room)
    try:
        events: list[tuple[str, int | None]] = []
        reading = threading.Thread(target=lambda: events.extend(_events(response, 199)))
        reading.start()
        _refused_commands(room, 200, batch=4, paced=True)
        reading.join(TIMEOUT)
    finally:
        response.close()
    assert "resync" not in [name for name, _n in events]
    assert [n for _name, n in events if n is not None] == list(range(200))


def test_a_subscriber_that_reads_nothing_at_all_is_let_go(
    room: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its stream's task waits in a write that never ends: the connection is cut off.

    One session stores 700 messages; each `session` event lists the session's messages so
    far, so the events grow until every buffer between the web view and the subscriber is
    full and the queue overflows; once nothing has been written for `STUCK` seconds with a
    resync waiting, the next events let the subscriber go."""
    monkeypatch.setattr(app, "STUCK", 0.5)
    response = _slow_stream(room)
    try:
        assert room.web.subscribers == 1
        with smtplib.SMTP(room.sandbox.host, room.sandbox.port, timeout=TIMEOUT) as client:
            client.ehlo("stuck.test")
            for _ in range(700):
                client.sendmail("a@example.org", ["b@example.org"], b"Subject: s\r\n\r\nhi\r\n")
            time.sleep(1.0)  # nothing read for longer than STUCK
            for _ in range(40):
                client.docmd("RCPT TO:<b@example.org>")  # 503: more events for it
        deadline = time.monotonic() + TIMEOUT
        while room.web.subscribers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert room.web.subscribers == 0
        with pytest.raises((OSError, http.client.HTTPException)):  # cut off, not ended cleanly
            while response.read(65536):
                pass
    finally:
        response.close()
