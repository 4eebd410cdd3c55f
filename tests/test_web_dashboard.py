"""The teacher's dashboard: a row per student, lesson progress reported through the API."""

from __future__ import annotations

import json
import smtplib
from pathlib import Path

from tests.web import PASSWORDS, TIMEOUT, classroom, credentials


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
