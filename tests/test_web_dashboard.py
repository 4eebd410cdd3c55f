"""The teacher's dashboard: a row per student, lesson progress reported through the API."""

from __future__ import annotations

import json
import smtplib
from pathlib import Path

from tests.web import PASSWORDS, TIMEOUT, Classroom, classroom, credentials


def test_the_dashboard_shows_rows_errors_and_lesson_steps(tmp_path: Path) -> None:
    with classroom(tmp_path) as room:
        with smtplib.SMTP(room.sandbox.host, room.sandbox.port, timeout=TIMEOUT) as client:
            client.ehlo("x")
            client.login("alice", PASSWORDS["alice"])
            assert client.docmd("RCPT TO:<x@example.org>")[0] == 503
        report = {"lesson": "01-first-mail", "title": "First mail", "steps": 3}
        for step, passed in ((1, True), (2, True), (3, False)):
            reply = room.request(
                "POST",
                "/api/lessons/progress",
                auth=credentials("alice"),
                body=json.dumps({**report, "step": step, "passed": passed}).encode(),
                headers={"Content-Type": "application/json"},
            )
            assert reply.status == 200, reply.body
        data = room.get("/api/dashboard", "teacher").json()
        alice = next(row for row in data["students"] if row["name"] == "alice")
        assert alice["sessions"] == 1 and not alice["connected"]
        assert alice["last_error"].startswith("503")
        assert alice["explanation"]  # what the 503 means, from the knowledge base
        assert alice["lesson"] == "01-first-mail" and alice["step"] == 3
        (lesson,) = data["lessons"]
        assert [s["passed"] for s in lesson["steps"]] == [1, 1, 0]
        assert [s["working"] for s in lesson["steps"]] == [0, 0, 1]
        page = room.get("/dashboard", "teacher").body.decode()
        assert 'data-student="alice"' in page and "First mail · 3/3" in page
        assert room.get("/api/dashboard", "alice").status == 403
        forged = room.request(
            "POST",
            "/api/lessons/progress",
            auth="Bearer teacher-token-for-tests",
            body=json.dumps({**report, "step": 1, "passed": True}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert forged.status == 403  # progress is a student's own


def _report(room: Classroom, who: str, **extra: object) -> int:
    body = {"lesson": "greeting", "title": "1. Greeting", "steps": 4, "step": 1, "passed": False}
    reply = room.request(
        "POST",
        "/api/lessons/progress",
        auth=credentials(who),
        body=json.dumps({**body, **extra}).encode(),
        headers={"Content-Type": "application/json"},
    )
    return int(reply.status)


def _row(room: Classroom, name: str) -> dict[str, object]:
    data = room.get("/api/dashboard", "teacher").json()
    return next(row for row in data["students"] if row["name"] == name)


def test_a_lesson_runs_session_is_linked_to_the_student_by_its_port(tmp_path: Path) -> None:
    """`client_port`: the open session from the report's address on that port is theirs,
    unless someone else logged in on it; a closed one or a bad port is not taken."""
    with classroom(tmp_path) as room:
        with smtplib.SMTP(room.sandbox.host, room.sandbox.port, timeout=TIMEOUT) as plain:
            plain.ehlo("lesson.test")
            assert plain.docmd("NOPE")[0] == 500
            port = plain.sock.getsockname()[1]
            assert _row(room, "alice")["sessions"] == 0  # no AUTH: nobody's yet
            assert _report(room, "alice", client_port=port) == 200
            alice = _row(room, "alice")
            assert alice["connected"] and alice["sessions"] == 1
            assert str(alice["last_error"]).startswith("500") and alice["explanation"]
            assert alice["last_command"] == "NOPE"
            with smtplib.SMTP(room.sandbox.host, room.sandbox.port, timeout=TIMEOUT) as bobs:
                bobs.ehlo("bob.test")
                bobs.login("bob", PASSWORDS["bob"])
                bobs.docmd("RCPT TO:<x@example.org>")
                bob_port = bobs.sock.getsockname()[1]
                assert _report(room, "alice", client_port=bob_port) == 200
                assert _row(room, "alice")["sessions"] == 1  # bob's stays bob's
                assert _row(room, "bob")["sessions"] == 1
        for bad in ("1234", 0, 70000, True, 1.5):
            assert _report(room, "alice", client_port=bad) == 400
        assert _report(room, "bob", client_port=port) == 200  # closed now: not taken
        assert _row(room, "bob")["sessions"] == 1 and _row(room, "alice")["sessions"] == 1
