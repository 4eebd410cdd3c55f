"""The web view's JSON API and pages over real sockets: isolation, safety, hostile requests."""

from __future__ import annotations

import base64
import http.client
import json
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtp_tutor.core.transcript import parse_transcript
from smtp_tutor.web.app import PAGE_CSP, is_loopback, parse_address
from tests.web import PASSWORDS, TIMEOUT, TOKEN, Classroom, classroom, form, subject_message


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classroom]:
    """alice mails bob, bob mails carol (no account), an anonymous client mails dave."""
    with classroom(tmp_path_factory.mktemp("web")) as room:
        room.send("alice", "alice@example.org", ["bob@example.org"], subject_message("from alice"))
        room.send("bob", "bob@example.org", ["carol@example.org"], subject_message("from bob"))
        room.send(None, "anon@example.org", ["dave@example.org"], subject_message("anonymous"))
        assert len(room.wait_for(3)) == 3
        yield room


def _subjects(room: Classroom, who: str) -> set[str]:
    return {m["subject"] for m in room.get("/api/messages", who).json()["messages"]}


def test_each_student_lists_only_their_own_mail_and_the_teacher_all(room: Classroom) -> None:
    assert _subjects(room, "alice") == {"from alice"}
    assert _subjects(room, "bob") == {"from alice", "from bob"}  # bob received alice's
    assert _subjects(room, "teacher") == {"from alice", "from bob", "anonymous"}
    listed = room.get("/api/messages", "alice").json()["messages"][0]
    assert listed["envelope"]["mail_from"] == "alice@example.org"
    assert listed["envelope"]["rcpt_tos"] == ["bob@example.org"]
    assert listed["envelope"]["auth_user"] == "alice"
    assert listed["envelope"]["client"]["address"] == "127.0.0.1"
    assert listed["size"] > 0 and listed["defects"] == [] and listed["time"]


def test_another_students_message_and_session_are_404(room: Classroom) -> None:
    teacher = {m["subject"]: m for m in room.get("/api/messages", "teacher").json()["messages"]}
    bobs = teacher["from bob"]
    for path in (
        f"/api/messages/{bobs['id']}",
        f"/api/messages/{bobs['id']}/raw",
        f"/messages/{bobs['id']}",
        f"/api/sessions/{bobs['session']}",
        f"/api/sessions/{bobs['session']}/transcript",
        f"/sessions/{bobs['session']}",
    ):
        reply = room.get(path, "alice")
        assert reply.status == 404, path
        assert b"from bob" not in reply.body and b"bob@example.org" not in reply.body
    assert room.get(f"/api/messages/{bobs['id']}", "bob").status == 200
    assert room.get(f"/api/messages/{teacher['anonymous']['id']}", "bob").status == 404


def test_a_message_in_detail_and_raw(room: Classroom) -> None:
    mine = room.get("/api/messages", "alice").json()["messages"][0]
    detail = room.get(f"/api/messages/{mine['id']}", "alice").json()
    assert ["Subject", "from alice"] in detail["headers"]
    assert detail["text"].strip() == "hello"
    assert detail["mime"]["type"] == "text/plain"
    assert {f["id"] for f in detail["lint"]} >= {"missing_date"}
    raw = room.get(f"/api/messages/{mine['id']}/raw", "alice")
    assert raw.body == subject_message("from alice")
    assert raw.headers["Content-Type"].startswith("message/rfc822")


def test_sessions_are_the_students_own_and_download_as_a_transcript(room: Classroom) -> None:
    sessions = room.get("/api/sessions", "alice").json()["sessions"]
    assert {s["auth_user"] for s in sessions} == {"alice"}
    everyone = room.get("/api/sessions", "teacher").json()["sessions"]
    assert {s["auth_user"] for s in everyone} == {"alice", "bob", None}
    session = room.get(f"/api/sessions/{sessions[0]['id']}", "alice").json()
    text = session["transcript"]
    download = room.get(f"/api/sessions/{sessions[0]['id']}/transcript", "alice")
    assert download.body.decode() == text
    assert "attachment" in download.headers["Content-Disposition"]
    for secret in PASSWORDS.values():
        assert secret not in text
        assert base64.b64encode(secret.encode()).decode().rstrip("=") not in text
    assert "C: mail FROM:<alice@example.org>" in text
    assert parse_transcript(text).items


def test_signing_in_is_required_and_wrong_credentials_fail(room: Classroom) -> None:
    reply = room.get("/api/messages")
    assert reply.status == 401 and "Basic" in reply.headers["WWW-Authenticate"]
    bad = "Basic " + base64.b64encode(b"alice:wrong").decode()
    assert room.request("GET", "/api/messages", auth=bad).status == 401
    assert room.request("GET", "/api/messages", auth="Bearer nope").status == 401
    assert room.request("GET", "/api/messages", auth="Basic %%%").status == 401
    assert room.get("/").status == 303  # a page sends a browser to the sign-in form
    assert room.get("/dashboard", "alice").status == 403


def test_the_login_form_and_the_teacher_url_give_cookies(room: Classroom) -> None:
    failed = room.request(
        "POST",
        "/login",
        body=form({"name": "alice", "password": "nope"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert failed.status == 401 and b'id="login-failed"' in failed.body
    ok = room.request(
        "POST",
        "/login",
        body=form({"name": "alice", "password": PASSWORDS["alice"]}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert ok.status == 303
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    value = cookie.split(";", 1)[0]
    page = room.get("/", headers={"Cookie": value})
    assert page.status == 200 and b"from alice" in page.body and b"from bob" not in page.body
    assert PASSWORDS["alice"].encode() not in page.body
    assert room.get(f"/teacher?token={TOKEN}x").status == 403
    teacher = room.get(f"/teacher?token={TOKEN}")
    assert teacher.status == 303 and teacher.headers["Location"].startswith("/")
    teacher_cookie = teacher.headers["Set-Cookie"].split(";", 1)[0]
    listing = room.get("/", headers={"Cookie": teacher_cookie})
    assert b"anonymous" in listing.body and TOKEN.encode() not in listing.body


def test_every_response_carries_the_security_headers(room: Classroom) -> None:
    mine = room.get("/api/messages", "alice").json()["messages"][0]
    for path in ("/login", "/", f"/messages/{mine['id']}", "/api/messages", "/nowhere"):
        reply = room.get(path, "alice")
        assert reply.headers["X-Content-Type-Options"] == "nosniff", path
        assert reply.headers["Content-Security-Policy"] == PAGE_CSP, path
        assert "'unsafe-inline'" not in PAGE_CSP.split("script-src", 1)[1].split(";", 1)[0]
    page = room.get(f"/messages/{mine['id']}", "alice").body.decode()
    assert "<script>" not in page and "<script src=" in page  # no inline script


def test_hostile_requests_get_a_clean_4xx(room: Classroom) -> None:
    for path in (
        "/api/messages/..%2F..%2Fetc%2Fpasswd",
        "/api/messages/../../etc/passwd",
        "/static/..%2Fapp.py",
        "/static/app.py",
        "/api/sessions/%00",
        "/messages/" + "x" * 5000,
    ):
        reply = room.get(path, "alice")
        assert 400 <= reply.status < 500, (path, reply.status)
        assert b"Traceback" not in reply.body
    assert room.get("/api/messages?limit=lots", "alice").status == 400
    assert room.request("DELETE", "/api/messages", auth=_auth("alice")).status == 405
    huge = room.request(
        "POST",
        "/api/lessons/progress",
        auth=_auth("alice"),
        body=b"{" + b" " * 200_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert huge.status == 413
    for body in (b"not json", b"[1, 2]", b'{"lesson": 3}'):
        reply = room.request(
            "POST",
            "/api/lessons/progress",
            auth=_auth("alice"),
            body=body,
            headers={"Content-Type": "application/json"},
        )
        assert reply.status == 400, body
        assert reply.json()["error"] == "bad_request"
    # A request line that is not HTTP at all: a 400, and the server lives on.
    with socket.create_connection((room.web.host, room.web.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"\x16\x03\x01 hello\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.")
    assert room.get("/api/whoami", "alice").json() == {"teacher": False, "name": "alice"}


def _auth(who: str) -> str:
    return "Basic " + base64.b64encode(f"{who}:{PASSWORDS[who]}".encode()).decode()


def test_the_html_part_is_served_alone_under_a_sandboxing_policy(room: Classroom) -> None:
    room.send(
        "alice",
        "alice@example.org",
        ["alice@example.org"],
        subject_message("with html", html="<p>hi</p><script>alert(1)</script>"),
    )
    found = {m["subject"]: m for m in room.wait_for(2, "alice")}
    key = found["with html"]["id"]
    page = room.get(f"/messages/{key}", "alice").body.decode()
    assert (
        f'<iframe id="html-part" sandbox="" referrerpolicy="no-referrer" src="/messages/{key}/html"'
        in page
    )
    assert "<script>alert(1)" not in page  # the message's HTML never enters our page…
    assert "&lt;script&gt;alert(1)" in page  # …but its source is shown, escaped
    framed = room.get(f"/messages/{key}/html", "alice")
    policy = framed.headers["Content-Security-Policy"]
    assert "sandbox" in policy and "script-src" not in policy and "default-src 'none'" in policy
    assert room.get(f"/messages/{key}/html", "bob").status == 404


def test_the_sandbox_advertises_the_web_view_in_ehlo(room: Classroom) -> None:
    with smtplib.SMTP(room.sandbox.host, room.sandbox.port, timeout=TIMEOUT) as client:
        client.ehlo("x")
        assert client.esmtp_features["xsmtptutor-web"] == room.web.url


def test_pages_speak_chinese_when_asked(room: Classroom) -> None:
    page = room.get("/?lang=zh", "alice").body.decode()
    assert "邮件" in page and 'lang="zh-CN"' in page
    accept = room.get("/", "alice", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).body.decode()
    assert "邮件" in accept
    teacher = room.get("/dashboard?lang=zh", "teacher").body.decode()
    assert "全班" in teacher


def test_the_stream_sends_a_students_new_mail_to_them_only(room: Classroom) -> None:
    events: dict[str, list[dict]] = {"alice": [], "teacher": []}
    ready = threading.Barrier(3, timeout=TIMEOUT)

    def listen(who: str) -> None:
        connection = http.client.HTTPConnection(room.web.host, room.web.port, timeout=TIMEOUT)
        connection.request("GET", "/api/stream", headers={"Authorization": _who(who)})
        response = connection.getresponse()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        response.readline()  # "retry:" arrives first: subscribed
        ready.wait()
        name = None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            line = response.readline().decode().strip()
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "message":
                events[who].append(json.loads(line[6:]))
                if any(e["subject"] == "stream alice" for e in events[who]):
                    break
        connection.close()

    threads = [threading.Thread(target=listen, args=(who,)) for who in events]
    for thread in threads:
        thread.start()
    ready.wait()
    room.send("bob", "bob@example.org", ["carol@example.org"], subject_message("stream bob"))
    room.send("alice", "alice@example.org", ["carol@example.org"], subject_message("stream alice"))
    for thread in threads:
        thread.join(TIMEOUT * 2)
    assert [e["subject"] for e in events["alice"]] == ["stream alice"]
    assert [e["subject"] for e in events["teacher"]] == ["stream bob", "stream alice"]


def _who(who: str) -> str:
    return f"Bearer {TOKEN}" if who == "teacher" else _auth(who)


def test_the_teacher_clears_a_mailbox_with_csrf_protection(tmp_path: Path) -> None:
    with classroom(tmp_path) as room:
        room.send("alice", "alice@example.org", ["x@example.org"], subject_message("one"))
        room.send("bob", "bob@example.org", ["x@example.org"], subject_message("two"))
        room.wait_for(2)
        json_headers = {"Content-Type": "application/json"}
        body = json.dumps({"account": "alice"}).encode()
        as_student = room.request(
            "POST", "/api/mailbox/clear", auth=_auth("alice"), body=body, headers=json_headers
        )
        assert as_student.status == 403
        teacher = room.get(f"/teacher?token={TOKEN}").headers["Set-Cookie"].split(";", 1)[0]
        no_csrf = room.request(
            "POST", "/api/mailbox/clear", body=body, headers={**json_headers, "Cookie": teacher}
        )
        assert no_csrf.status == 403
        forged = room.request(
            "POST",
            "/mailbox/clear",
            body=form({"account": "alice", "csrf": "guess"}),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": teacher},
        )
        assert forged.status == 403
        assert _count(room, "alice") == 1
        done = room.request(
            "POST", "/api/mailbox/clear", auth=f"Bearer {TOKEN}", body=body, headers=json_headers
        )
        assert done.status == 200 and done.json() == {"removed": 1}
        assert _count(room, "alice") == 0 and _count(room, "bob") == 1
        assert room.sandbox.sandbox.accounts.of("alice").keys() == []
        assert len(room.sandbox.sandbox.accounts.shared.keys()) == 2  # the shared copy stays
        everything = room.request(
            "POST", "/api/mailbox/clear", auth=f"Bearer {TOKEN}", body=b"{}", headers=json_headers
        )
        assert everything.json() == {"removed": 2}
        assert room.get("/api/messages", "teacher").json()["messages"] == []


def _count(room: Classroom, who: str) -> int:
    return len(room.get("/api/messages", who).json()["messages"])


def test_requests_over_the_rate_get_429(tmp_path: Path) -> None:
    with classroom(tmp_path, rate=0.5, burst=3) as room:
        statuses = [room.get("/api/whoami", "alice").status for _ in range(6)]
        assert statuses[:3] == [200, 200, 200]
        assert statuses[-1] == 429


@pytest.mark.pure
def test_web_addresses_parse() -> None:
    assert parse_address("8025") == ("127.0.0.1", 8025)
    assert parse_address("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_address("[::1]:8025") == ("::1", 8025)
    for bad in ("", "host:", "host:port", "99999", "[::1]8025"):
        with pytest.raises(ValueError):
            parse_address(bad)
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
