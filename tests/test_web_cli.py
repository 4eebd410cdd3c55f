"""`smtp-tutor serve --web … --user … --class/--roster`: the real program in a subprocess."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import smtplib
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from smtp_tutor.sandbox import SandboxConfig
from smtp_tutor.web.app import WebView

TIMEOUT = 15


@dataclass
class Served:
    process: subprocess.Popen[str]
    lines: list[str]
    smtp_port: int
    web: str
    teacher: str


def _environment(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        XDG_DATA_HOME=str(tmp / "data"),
        XDG_STATE_HOME=str(tmp / "state"),
        XDG_CONFIG_HOME=str(tmp / "config"),
        LC_ALL="C.UTF-8",
        PYTHONUNBUFFERED="1",
    )
    env.pop("LANGUAGE", None)
    return env


def _serve(tmp: Path, *options: str) -> Served:
    command = [sys.executable, "-m", "smtp_tutor", "serve", "--port", "0", "--mailbox"]
    command += [str(tmp / "Maildir"), "--web", "127.0.0.1:0", *options]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_environment(tmp),
        cwd=tmp,
    )
    lines: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Press Ctrl+C"):
            break
    text = "\n".join(lines)
    smtp = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
    web = re.search(r"^Web view: (http://\S+/)", text, re.MULTILINE)
    teacher = re.search(r"^Teacher's view: (http://\S+)", text, re.MULTILINE)
    assert smtp and web and teacher, text
    return Served(process, lines, int(smtp[1]), web[1], teacher[1])


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[str]]]:
    running: list[subprocess.Popen[str]] = []
    yield running
    for process in running:
        process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()


def _get(url: str, auth: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": auth})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


def test_done_when_alice_and_bob_show_up_for_the_teacher_within_a_second(
    tmp_path: Path, stop: list[subprocess.Popen[str]]
) -> None:
    served = _serve(tmp_path, "--user", "alice:alice-PW-1", "--user", "bob:bob-PW-22")
    stop.append(served.process)
    token = served.teacher.split("token=", 1)[1]
    for name, password in (("alice", "alice-PW-1"), ("bob", "bob-PW-22")):
        with smtplib.SMTP("127.0.0.1", served.smtp_port, timeout=TIMEOUT) as client:
            client.login(name, password)
            client.sendmail(
                f"{name}@example.org", ["x@example.org"], f"Subject: {name}\r\n\r\nhi\r\n"
            )
    sent = time.monotonic()
    subjects: set[str] = set()
    while time.monotonic() - sent < 1.0 and subjects != {"alice", "bob"}:
        status, body = _get(served.web + "api/messages", f"Bearer {token}")
        assert status == 200
        subjects = {m["subject"] for m in json.loads(body)["messages"]}
    assert subjects == {"alice", "bob"}, "not listed for the teacher within a second"
    status, body = _get(served.web + "api/messages", _basic("alice", "alice-PW-1"))
    assert status == 200
    assert [m["subject"] for m in json.loads(body)["messages"]] == ["alice"]
    assert "alice-PW-1" not in "\n".join(served.lines)  # --user passwords are not printed


def test_class_and_roster_accounts_are_printed_once_and_written_0600(
    tmp_path: Path, stop: list[subprocess.Popen[str]]
) -> None:
    roster = tmp_path / "roster.txt"
    roster.write_text("# my class\nli.wei\nmaria\n\n", encoding="utf-8")
    served = _serve(
        tmp_path, "--class", "2", "--roster", str(roster), "--teacher-token", "t0ken-abc"
    )
    stop.append(served.process)
    sheet = tmp_path / "class-accounts.csv"
    assert stat.S_IMODE(sheet.stat().st_mode) == 0o600
    rows = list(csv.DictReader(sheet.open(encoding="utf-8")))
    names = [row["name"] for row in rows]
    assert names == ["li.wei", "maria", "student01", "student02"]
    printed = "\n".join(served.lines)
    for row in rows:
        assert re.search(rf"^  {re.escape(row['name'])} +{row['password']}$", printed, re.M)
    assert served.teacher.endswith("token=t0ken-abc")
    maria = next(row for row in rows if row["name"] == "maria")
    with smtplib.SMTP("127.0.0.1", served.smtp_port, timeout=TIMEOUT) as client:
        client.login("maria", maria["password"])  # the generated password works for SMTP
    status, _body = _get(served.web + "api/whoami", _basic("maria", maria["password"]))
    assert status == 200  # and for the web view


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--web", "nope"], "--web: 'nope' is not [HOST:]PORT"),
        (["--web", "8025", "--teacher-token", "short"], "at least 8 printable"),
        (["--roster", "/nonexistent/roster"], "cannot read the roster"),
    ],
)
def test_bad_classroom_options_are_one_line(
    tmp_path: Path, options: list[str], expected: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "smtp_tutor", "serve", "--port", "0", *options],
        capture_output=True,
        text=True,
        env=_environment(tmp_path),
        cwd=tmp_path,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # argparse: usage line + the error


def test_a_web_port_in_use_is_one_line(tmp_path: Path) -> None:
    busy = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket,time;s=socket.socket();s.bind(('127.0.0.1',0));"
            "s.listen();print(s.getsockname()[1],flush=True);time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert busy.stdout is not None
        port = busy.stdout.readline().strip()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "smtp_tutor",
                "serve",
                "--port",
                "0",
                "--mailbox",
                str(tmp_path / "M2"),
                "--web",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            env=_environment(tmp_path),
            timeout=TIMEOUT,
        )
    finally:
        busy.kill()
        busy.wait()
    assert result.returncode != 0
    assert f"cannot serve the web view on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.pure
def test_a_web_view_on_another_address_warns(tmp_path: Path) -> None:
    from smtp_tutor.sandbox import Sandbox

    sandbox = Sandbox(SandboxConfig(mailbox=tmp_path / "M"), record_sessions=True)
    assert not any("Warning" in line for line in WebView(sandbox, "127.0.0.1", 1).summary())
    lines = WebView(sandbox, "0.0.0.0", 8025, teacher_token="x" * 10).summary()
    assert any(line.startswith("Warning: the web view listens on 0.0.0.0") for line in lines)
