"""The history file: private file modes, and no credential or message line ever on disk."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from pathlib import Path

import pytest
from prompt_toolkit.history import ThreadedHistory

from smtp_tutor.console.history import (
    LineKind,
    SafeFileHistory,
    default_history_path,
    stateless_refusal,
)
from smtp_tutor.core.auth import cram_md5_response, plain_response, xoauth2_string
from smtp_tutor.core.dialogue import Dialogue
from smtp_tutor.core.redaction import SecretTracker
from smtp_tutor.core.replies import Reply, make_reply

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")

USER = "student@example.com"
PASSWORD = "Corr3ct-Horse-Battery"
TOKEN = "ya29.a0AfH6SMBx-very-secret-token"
CRAM_CHALLENGE = base64.b64encode(b"<1896.697170952@mx.example.com>").decode()

EHLO = make_reply(
    250, "mx.example.com", "PIPELINING", "SIZE 10240000", "8BITMIME", "DSN",
    "AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2", "XCLIENT NAME ADDR",
)  # fmt: skip


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


def load(history: SafeFileHistory) -> list[str]:
    async def collect() -> list[str]:
        return [s async for s in history.load()]

    return asyncio.run(collect())


class FakeConsole:
    """Types lines the way the console does: history first (on Enter), then the wire.

    Every line goes to the file history here, even AUTH answers and DATA lines that the real
    console reads through a history-less prompt: the history must refuse them on its own.
    """

    def __init__(self, history: SafeFileHistory, dialogue: Dialogue, tracker: SecretTracker):
        self.history, self.dialogue, self.tracker = history, dialogue, tracker

    def type(self, line: str, reply: Reply | None = None) -> None:
        self.history.append_string(line)
        for part in line.split("\n"):
            if self.dialogue.awaiting_auth_response:
                self.tracker.add_line(part)  # what the console does with a manual answer
            self.dialogue.send(part)
        if reply is not None:
            self.dialogue.receive(reply)


def new_session(
    path: Path | None = None,
) -> tuple[SafeFileHistory, Dialogue, SecretTracker, FakeConsole]:
    dialogue = Dialogue()
    tracker = SecretTracker()
    history = SafeFileHistory(path, tracker=tracker, dialogue=lambda: dialogue)
    dialogue.receive(make_reply(220, "mx.example.com ESMTP"))
    return history, dialogue, tracker, FakeConsole(history, dialogue, tracker)


# ------------------------------------------------------------------ file modes


@posix_only
def test_new_file_is_0600_in_a_0700_directory(state_home: Path) -> None:
    history = SafeFileHistory()
    assert history.path == state_home / "smtp-tutor" / "history" == default_history_path()
    assert history.path.exists()  # created before anything is typed
    assert stat.S_IMODE(history.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(history.path.parent.stat().st_mode) == 0o700
    history.append_string("EHLO client.example")
    assert stat.S_IMODE(history.path.stat().st_mode) == 0o600
    assert history.error is None


@posix_only
def test_an_existing_0644_file_is_tightened(state_home: Path) -> None:
    path = state_home / "smtp-tutor" / "history"
    path.parent.mkdir(parents=True)
    path.write_text("\n# old\n+NOOP\n")
    path.chmod(0o644)
    history = SafeFileHistory()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)  # loosened behind our back while the console runs
    history.append_string("RSET")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load(SafeFileHistory()) == ["RSET", "NOOP"]


@posix_only
def test_a_new_file_is_0600_even_with_a_permissive_umask(state_home: Path) -> None:
    old = os.umask(0)
    try:
        history = SafeFileHistory()
    finally:
        os.umask(old)
    assert stat.S_IMODE(history.path.stat().st_mode) == 0o600


def test_an_unwritable_location_records_the_error_and_never_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    history = SafeFileHistory(blocker / "history")
    assert isinstance(history.error, OSError)
    history.append_string("EHLO client.example")  # no exception
    assert load(history) == []


# ------------------------------------------------------------------ a whole session


def test_a_session_leaves_no_secret_and_no_message_line_on_disk(state_home: Path) -> None:
    history, dialogue, tracker, console = new_session()
    console.type("EHLO client.example", EHLO)

    # AUTH LOGIN by hand: base64 user, then base64 password, as continuation lines.
    console.type("AUTH LOGIN", make_reply(334, "VXNlcm5hbWU6"))
    console.type(b64(USER), make_reply(334, "UGFzc3dvcmQ6"))
    console.type(b64(PASSWORD), make_reply(535, "5.7.8 Authentication credentials invalid"))
    # AUTH PLAIN with an initial response.
    plain = plain_response(USER, PASSWORD)
    console.type(f"AUTH PLAIN {plain}", make_reply(535, "5.7.8 no"))
    # AUTH PLAIN, then the response as its own line.
    console.type("AUTH PLAIN", make_reply(334, ""))
    console.type(plain, make_reply(535, "5.7.8 no"))
    # CRAM-MD5.
    console.type("AUTH CRAM-MD5", make_reply(334, CRAM_CHALLENGE))
    cram = cram_md5_response(USER, PASSWORD, CRAM_CHALLENGE)
    console.type(cram, make_reply(535, "5.7.8 no"))
    # XOAUTH2, with and without an initial response.
    xoauth = xoauth2_string(USER, TOKEN)
    console.type(f"AUTH XOAUTH2 {xoauth}", make_reply(334, b64('{"status":"401"}')))
    console.type("", make_reply(535, "5.7.8 no"))
    console.type("AUTH XOAUTH2", make_reply(334, ""))
    console.type(xoauth, make_reply(235, "2.7.0 Authentication successful"))
    assert dialogue.authenticated
    # The console's AUTH helper would have told the tracker these.
    tracker.add_secret(PASSWORD, USER)
    tracker.add_secret(TOKEN, USER)

    console.type("MAIL FROM:<student@example.com> SIZE=120", make_reply(250, "2.1.0 Ok"))
    console.type("RCPT TO:<bob@example.org>", make_reply(250, "2.1.5 Ok"))
    console.type("DATA", make_reply(354, "go ahead"))
    for line in ["Subject: quarterly figures", "", "Dear Bob, the merger is on."]:
        console.type(line)
    console.type(".", make_reply(250, "2.0.0 queued"))

    # Mistakes at the smtp> prompt after the password was used.
    console.type(PASSWORD, make_reply(500, "5.5.2 unknown command"))
    console.type(b64(PASSWORD), make_reply(500, "5.5.2 unknown command"))
    console.type(f"NOOP {PASSWORD}", make_reply(250, "ok"))
    console.type(f"VRFY {b64(PASSWORD)}", make_reply(252, "maybe"))
    console.type(f":b64 \\0{USER}\\0{PASSWORD}")
    console.type("XCLIENT NAME=spike.example.com", make_reply(220, "ok"))
    # A pasted block: stored up to AUTH; the answers after it never are.
    console.type(f"RSET\nAUTH LOGIN\n{b64(USER)}\n{b64(PASSWORD)}")
    console.type("QUIT", make_reply(221, "bye"))

    data = history.path.read_bytes()
    forbidden = [
        PASSWORD,
        b64(PASSWORD),
        b64(PASSWORD).rstrip("="),
        b64(f"\0{USER}\0{PASSWORD}"),
        plain,
        cram,
        TOKEN,
        b64(TOKEN),
        xoauth,
        b64(USER),  # not a secret, but only ever typed as an AUTH answer
        "quarterly figures",
        "merger",
    ]
    for secret in forbidden:
        assert secret.encode() not in data, secret
    assert b"\\0" not in data

    stored = load(SafeFileHistory())  # a new console, a new instance
    assert stored == [
        "QUIT",
        "RSET\nAUTH LOGIN",
        "XCLIENT NAME=spike.example.com",
        "DATA",
        "RCPT TO:<bob@example.org>",
        "MAIL FROM:<student@example.com> SIZE=120",
        "AUTH XOAUTH2",
        "AUTH CRAM-MD5",
        "AUTH PLAIN",
        "AUTH LOGIN",
        "EHLO client.example",
    ]
    # Up-arrow in the running session shows the same: refused lines are not kept in memory.
    assert history.get_strings()[::-1] == stored


# ------------------------------------------------------------------ each layer alone


def test_nothing_typed_while_the_server_waits_for_an_auth_answer_is_stored(
    state_home: Path,
) -> None:
    history, dialogue, _, console = new_session()
    console.type("EHLO client.example", EHLO)
    console.type("AUTH LOGIN", make_reply(334, "VXNlcm5hbWU6"))
    assert dialogue.awaiting_auth_response
    assert history.refusal("NOOP") is not None  # even a harmless-looking answer
    history.append_string("NOOP")
    assert load(SafeFileHistory()) == ["AUTH LOGIN", "EHLO client.example"]


def test_data_lines_are_refused_even_when_they_look_like_commands(state_home: Path) -> None:
    _, dialogue, _, console = new_session()
    console.type("EHLO client.example", EHLO)
    console.type("MAIL FROM:<a@example.com>", make_reply(250, "ok"))
    console.type("RCPT TO:<b@example.org>", make_reply(250, "ok"))
    console.type("DATA", make_reply(354, "go"))
    assert dialogue.sending_data
    console.type("QUIT")  # message text, whatever it looks like
    console.type("MAIL FROM:<evil@example.com>")
    console.type(".", make_reply(250, "queued"))
    console.type("NOOP", make_reply(250, "ok"))
    assert load(SafeFileHistory())[:2] == ["NOOP", "DATA"]


def test_the_console_says_what_kind_of_line_is_being_read(state_home: Path) -> None:
    history = SafeFileHistory()
    for kind in (LineKind.CREDENTIAL, LineKind.AUTH_RESPONSE, LineKind.DATA):
        history.expect(kind)
        history.append_string("EHLO client.example")
        assert history.get_strings() == []
    history.expect(LineKind.CONSOLE)
    history.append_string(":help")
    history.expect(LineKind.COMMAND)
    history.append_string("NOOP")
    assert load(SafeFileHistory()) == ["NOOP", ":help"]


def test_tracked_secrets_are_refused_anywhere_in_a_line(state_home: Path) -> None:
    tracker = SecretTracker()
    history = SafeFileHistory(tracker=tracker)
    tracker.add_secret("hunter2", "bob")
    assert history.refusal("NOOP hunter2") is not None
    assert history.refusal("MAIL FROM:<hunter2@example.com>") is not None  # any substring
    assert history.refusal(f"NOOP {b64('hunter2')}") is not None
    assert history.refusal("NOOP hunter") is None
    tracker.add_line("dXNlcjpzZWNyZXQ=")
    assert history.refusal("VRFY dXNlcjpzZWNyZXQ=") is not None


def test_a_dialogue_that_cannot_be_read_means_refuse(state_home: Path) -> None:
    def broken() -> Dialogue:
        raise RuntimeError("no session")

    history = SafeFileHistory(dialogue=broken)
    history.append_string("NOOP")
    assert load(SafeFileHistory()) == []


@pytest.mark.parametrize(
    ("line", "refused"),
    [
        ("AUTH PLAIN AGFsaWNlAHNlY3JldA==", True),
        ("auth xoauth2 dXNlcj1h", True),
        ("AUTH PLAIN =", True),
        ("AUTH PLAIN", False),
        ("AUTH", False),
        (":b64 secret", True),
        (":UNB64 c2VjcmV0", True),
        (":explain 535", False),
        ("dXNlcjpzZWNyZXQ=", True),
        ("hunter2", True),
        ("QUIT", False),
        ("noop", False),
        ("   ", True),
    ],
)
def test_stateless_rules(line: str, refused: bool) -> None:
    assert (stateless_refusal(line) is not None) is refused


def test_unknown_verbs_are_stored_only_when_advertised(state_home: Path) -> None:
    history, _, _, console = new_session()
    assert history.refusal("XCLIENT NAME=x") is not None  # before EHLO: unknown
    console.type("EHLO client.example", EHLO)
    assert history.refusal("XCLIENT NAME=x") is None
    assert history.refusal("correct horse battery") is not None


def test_a_wrapper_calling_store_string_directly_is_filtered_too(state_home: Path) -> None:
    history = SafeFileHistory()
    history.store_string("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
    wrapped = ThreadedHistory(SafeFileHistory())
    wrapped.append_string(":b64 secret")
    wrapped.append_string("NOOP")
    assert b"secret" not in history.path.read_bytes()
    assert b"AGFsaWNl" not in history.path.read_bytes()
    assert load(SafeFileHistory()) == ["NOOP"]


def test_loading_skips_what_an_older_file_should_never_have_held(state_home: Path) -> None:
    path = default_history_path()
    path.parent.mkdir(parents=True)
    path.write_text(
        "\n# 1\n+EHLO client.example\n"
        "\n# 2\n+AUTH PLAIN AGFsaWNlAHNlY3JldA==\n"
        "\n# 3\n+:b64 secret\n"
        "\n# 4\n+MAIL FROM:<a@example.com>\n+AUTH PLAIN AGFsaWNlAHNlY3JldA==\n"
        "\n# 5\n+QUIT\n"
    )
    assert load(SafeFileHistory()) == ["QUIT", "EHLO client.example"]


def test_a_pasted_block_is_cut_after_data(state_home: Path) -> None:
    history, _, _, console = new_session()
    console.type("EHLO client.example", EHLO)
    # Message text that happens to start with a verb is still message text.
    console.type("MAIL FROM:<a@example.com>\nRCPT TO:<b@example.org>\nDATA\nQUIT the merger\n.")
    assert b"merger" not in history.path.read_bytes()
    assert load(SafeFileHistory())[0] == "MAIL FROM:<a@example.com>\nRCPT TO:<b@example.org>\nDATA"
