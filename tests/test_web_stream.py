"""The live stream under a burst, over real SSE connections: events are gathered and written
in batches (message events every FLUSH seconds, a session's changes as one event), and still
every stored message reaches every stream entitled to it, once and in order."""

from __future__ import annotations

import http.client
import json
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smtp_tutor.web.access import Viewer
from smtp_tutor.web.app import RESYNC, STREAM_QUEUE, _Subscriber
from tests.web import PASSWORDS, TIMEOUT, Classroom, classroom, credentials, subject_message

Event = tuple[str, dict]


class Stream:
    """One `GET /api/stream`, read on a thread into (event, data) pairs."""

    def __init__(self, room: Classroom, who: str) -> None:
        self.events: list[Event] = []
        self.chunks = 0
        self._connection = http.client.HTTPConnection(room.web.host, room.web.port, timeout=TIMEOUT)
        self._connection.request("GET", "/api/stream", headers={"Authorization": credentials(who)})
        self._response = self._connection.getresponse()
        assert self._response.status == 200
        assert self._response.readline() == b"retry: 2000\n"  # subscribed
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        name = None
        try:
            while line := self._response.readline():
                text = line.decode().rstrip("\n")
                if text.startswith("event: "):
                    name = text[7:]
                elif text.startswith("data: ") and name is not None:
                    self.events.append((name, json.loads(text[6:])))
                    name = None
        except (OSError, ValueError, http.client.HTTPException):  # closed by the test
            pass

    def named(self, name: str) -> list[dict]:
        return [data for event, data in self.events if event == name]

    def wait(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not done() and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        if self._connection.sock is not None:  # wakes the reading thread at once
            self._connection.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(TIMEOUT)
        self._connection.close()


@pytest.fixture()
def room(tmp_path: Path) -> Iterator[Classroom]:
    with classroom(tmp_path) as room:
        yield room


def _burst(room: Classroom, user: str, count: int) -> None:
    """One session: AUTH, then `count` messages as fast as the sandbox takes them."""
    with smtplib.SMTP(room.sandbox.host, room.sandbox.port, timeout=TIMEOUT) as client:
        client.ehlo("student.test")
        client.login(user, PASSWORDS[user])
        for n in range(count):
            message = subject_message(f"{user} {n}")
            client.sendmail(f"{user}@example.org", ["x@example.org"], message)


def test_a_burst_reaches_every_stream_whole_and_in_order(room: Classroom) -> None:
    teacher, alice, bob = Stream(room, "teacher"), Stream(room, "alice"), Stream(room, "bob")
    try:
        senders = [
            threading.Thread(target=_burst, args=(room, user, 40))
            for user in ("alice", "bob", "alice", "bob")
        ]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(TIMEOUT * 3)
        stored = room.wait_for(160)[::-1]  # oldest first, as they were stored
        assert len(stored) == 160
        teacher.wait(lambda: len(teacher.named("message")) >= 160)
        alice.wait(lambda: len(alice.named("message")) >= 80)
        bob.wait(lambda: len(bob.named("message")) >= 80)
        time.sleep(0.3)  # anything extra (a duplicate) would arrive by now
        assert [m["id"] for m in teacher.named("message")] == [m["id"] for m in stored]
        for stream, user in ((alice, "alice"), (bob, "bob")):
            mine = [m["id"] for m in stored if m["envelope"]["auth_user"] == user]
            assert [m["id"] for m in stream.named("message")] == mine
        assert not any(event == "resync" for event, _ in teacher.events + alice.events)
    finally:
        for stream in (teacher, alice, bob):
            stream.close()


def test_a_session_is_told_per_change_not_per_message(room: Classroom) -> None:
    teacher, alice = Stream(room, "teacher"), Stream(room, "alice")
    try:
        _burst(room, "alice", 3)
        keys = [m["id"] for m in room.wait_for(3)][::-1]

        def closed(stream: Stream) -> bool:
            return any(not s["open"] for s in stream.named("session"))

        teacher.wait(lambda: closed(teacher))
        alice.wait(lambda: closed(alice))
        for stream in (teacher, alice):
            sessions = stream.named("session")
            changes = [event for s in sessions for event in s["events"]]
            assert "stored" not in changes  # each message was told by its own event
            assert changes[-1] == "closed" and sessions[-1]["event"] == "closed"
            assert sessions[-1]["messages"] == keys and sessions[-1]["auth_user"] == "alice"
            assert len(sessions) <= 3  # opened, auth, closed: gathered, never one per message
        assert "opened" in [e for s in teacher.named("session") for e in s["events"]]
        assert "auth" in [e for s in teacher.named("session") for e in s["events"]]
    finally:
        teacher.close()
        alice.close()


@pytest.mark.pure
def test_a_batch_counts_its_events_against_the_queue() -> None:
    subscriber = _Subscriber(Viewer(teacher=True))
    subscriber.offer(b"a" * 10, STREAM_QUEUE - 1)
    subscriber.offer(b"b", 1)
    assert subscriber.take() == b"a" * 10 + b"b" and subscriber.resyncs == 0
    subscriber.offer(b"a", STREAM_QUEUE)
    subscriber.offer(b"b", 1)  # one event too many waits: the page is told to fetch again
    assert subscriber.take() == RESYNC + b"b" and subscriber.resyncs == 1
    subscriber.offer(b"c", 2)
    assert subscriber.take() == b"c" and subscriber.count == 0
