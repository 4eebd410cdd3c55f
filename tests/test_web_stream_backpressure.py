"""The live stream's back-pressure (resync, a stuck subscriber), on a real sandbox and web view.

A subscriber that stops reading while the class keeps working must not silently miss
events: once more than `STREAM_QUEUE` wait for it, they are replaced by one `resync` event
(the page fetches its list again) and the events after it follow as usual. The queue is
made small for the test, and so are the buffers between the web view and the subscriber
(its receive buffer, and the web view's send buffer of that one connection), so that a
class's burst fills them. The events are real: each message stored by one of several
SMTP sessions at once is a `message` event (gathered for `FLUSH` seconds, but one event
a message); their order is the order the messages were stored, as /api/messages lists them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
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


@pytest.fixture
def room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Classroom]:
    monkeypatch.setattr(app, "STREAM_QUEUE", 16)
    with classroom(tmp_path) as room:
        yield room


def _slow_stream(room: Classroom) -> tuple[http.client.HTTPResponse, socket.socket]:
    """GET /api/stream as the teacher with small buffers on both ends of its connection."""
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
    # Loopback's send buffer grows to megabytes: fixed small, a burst of a few hundred
    # events fills it (the web view's own transport still buffers 64 KiB above it).
    (subscriber,) = room.web._teachers
    assert subscriber.transport is not None
    server_side = subscriber.transport.get_extra_info("socket")
    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return response, sock


def _class_sends(room: Classroom, sessions: int, each: int, pause: float = 0.0) -> None:
    """`sessions` SMTP sessions at once, each storing `each` messages (`pause` between)."""

    def one(session: int) -> None:
        with smtplib.SMTP(room.sandbox.host, room.sandbox.port, timeout=TIMEOUT) as client:
            client.ehlo(f"student{session}.test")
            for n in range(each):
                message = f"Subject: s{session} n{n}\r\n\r\nhi\r\n".encode()
                client.sendmail("a@example.org", ["b@example.org"], message)
                time.sleep(pause)

    threads = [threading.Thread(target=one, args=(s,)) for s in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 3)
    assert not any(thread.is_alive() for thread in threads)


def _stored(room: Classroom, count: int) -> list[str]:
    """The ids of the `count` messages stored, oldest first."""
    ids = [m["id"] for m in room.wait_for(count)][::-1]
    assert len(ids) == count
    return ids


def _events(
    response: http.client.HTTPResponse, sock: socket.socket, last: str, quiet: float = 1.0
) -> list[tuple[str, str | None]]:
    """The events read until the message `last`'s - or, if a `resync` came after the last
    message read, until nothing more comes for `quiet` s: the session events that follow
    the class's last message may overflow the queue again, and then the resync stands for
    it (the page fetches the list). (name, the message's id or None) each."""
    found: list[tuple[str, str | None]] = []
    name, deadline = "message", time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        told = [n for n, _key in found if n in ("message", "resync")]
        resynced = bool(told) and told[-1] == "resync"
        sock.settimeout(quiet if resynced else TIMEOUT)
        try:
            raw = response.readline()
        except TimeoutError:
            if resynced:
                return found
            raise
        if not raw:
            break
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: ") :])
            found.append((name, data["id"] if name == "message" else None))
            if name == "message" and data["id"] == last:
                return found
            name = "message"
    raise AssertionError(f"message {last} never came, nor a resync after it; {len(found)} read")


def test_a_subscriber_that_falls_behind_gets_a_resync_and_then_the_newer_events(
    room: Classroom,
) -> None:
    response, sock = _slow_stream(room)
    try:
        _class_sends(room, sessions=8, each=150)  # the subscriber reads nothing meanwhile
        stored = _stored(room, 1200)
        events = _events(response, sock, stored[-1])
    finally:
        response.close()
    assert "resync" in [name for name, _id in events], "fell behind, never told to resync"
    position = {key: n for n, key in enumerate(stored)}
    told = [(name, position[key] if key else None) for name, key in events]
    told = [(name, n) for name, n in told if name in ("message", "resync")]
    seen = [n for _name, n in told if n is not None]
    assert seen == sorted(seen) and len(seen) == len(set(seen)), "out of order or twice"
    # Every message missed lies just before a resync: none is lost without one.
    previous, resynced = -1, False
    for name, number in told:
        if name == "resync":
            resynced = True
            continue
        assert number is not None
        assert number == previous + 1 or resynced, f"{previous} → {number} without a resync"
        previous, resynced = number, False
    # It caught up: the last message came, or a resync after every message it was told.
    assert previous == len(stored) - 1 or told[-1][0] == "resync"
    assert len(seen) < len(stored)  # it did fall behind: some were replaced by the resync


def test_a_subscriber_that_keeps_up_gets_every_event_and_no_resync(room: Classroom) -> None:
    response, sock = _slow_stream(room)
    events: list[tuple[str, str | None]] = []
    reading = threading.Thread(target=_read_all, args=(response, events))
    reading.start()
    try:
        _class_sends(room, sessions=4, each=50, pause=0.03)  # ~130 messages a second
        stored = _stored(room, 200)
        deadline = time.monotonic() + TIMEOUT
        while (stored[-1] not in [key for _name, key in events]) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sock.shutdown(socket.SHUT_RDWR)  # the reading thread sees the end at once
        reading.join(TIMEOUT)
        response.close()
    assert "resync" not in [name for name, _id in events]
    assert [key for name, key in events if name == "message"] == stored


def _read_all(response: http.client.HTTPResponse, events: list[tuple[str, str | None]]) -> None:
    """Reads events as they come, until the stream ends."""
    name = "message"
    with contextlib.suppress(OSError, http.client.HTTPException):
        while raw := response.readline():
            line = raw.decode("utf-8").rstrip("\r\n")
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
                events.append((name, data["id"] if name == "message" else None))
                name = "message"


def test_a_subscriber_that_reads_nothing_at_all_is_let_go(
    room: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its stream's task waits in a write that never ends: the connection is cut off.

    A burst fills every buffer between the web view and the subscriber and the queue
    overflows (a resync waits); once nothing has been written for `STUCK` seconds, the
    next overflow lets the subscriber go: its connection is aborted."""
    monkeypatch.setattr(app, "STUCK", 0.5)
    response, _sock = _slow_stream(room)
    try:
        assert room.web.subscribers == 1
        _class_sends(room, sessions=4, each=100)
        time.sleep(1.0)  # nothing read for longer than STUCK
        _class_sends(room, sessions=1, each=40)  # 40 more events: the queue overflows again
        deadline = time.monotonic() + TIMEOUT
        while room.web.subscribers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert room.web.subscribers == 0
        with pytest.raises((OSError, http.client.HTTPException)):  # cut off, not ended cleanly
            while response.read(65536):
                pass
    finally:
        response.close()
