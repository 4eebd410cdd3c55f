"""Each account's own mailbox: mail is filed to its sender after AUTH and to the accounts
its recipients name, over real SMTP to a real sandbox; the shared Maildir keeps everything."""

from __future__ import annotations

import os
import smtplib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtp_tutor.sandbox import SandboxConfig, ThreadedSandbox
from smtp_tutor.sandbox.accounts import AccountMailboxes
from smtp_tutor.sandbox.storage import Mailbox

USERS = {"alice": "pw-a", "bob": "pw-b", "student": "secret"}
TIMEOUT = 10


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    return tmp_path


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[ThreadedSandbox]:
    with ThreadedSandbox(SandboxConfig(mailbox=tmp_path / "Maildir", users=dict(USERS))) as box:
        yield box


def send(
    sandbox: ThreadedSandbox, rcpts: list[str], *, user: str | None = None, subject: str = "hi"
) -> bytes:
    raw = f"Subject: {subject}\r\nFrom: x@example.com\r\n\r\nbody of {subject}\r\n".encode()
    with smtplib.SMTP(sandbox.host, sandbox.port, timeout=TIMEOUT) as client:
        client.ehlo("client.test")
        if user is not None:
            client.login(user, USERS[user])
        client.sendmail("x@example.com", rcpts, raw)
    return raw


def accounts(sandbox: ThreadedSandbox) -> AccountMailboxes:
    return sandbox.sandbox.accounts


def subjects(box: Mailbox) -> list[str]:
    return [str(m.message["Subject"]) for m in box.messages()]


def test_mail_sent_after_auth_is_filed_to_the_sender_and_kept_in_the_shared_maildir(
    sandbox: ThreadedSandbox,
) -> None:
    raw = send(sandbox, ["someone@elsewhere.example"], user="alice", subject="from alice")
    store = accounts(sandbox)
    [shared] = store.shared.messages()
    [filed] = store.of("alice").messages()
    assert filed.key == shared.key and filed.raw == shared.raw == raw
    assert filed.envelope["accounts"] == shared.envelope["accounts"] == ["alice"]
    assert filed.envelope["auth_user"] == "alice"
    assert store.of("bob").messages() == []


def test_recipients_that_name_accounts_get_the_message_whatever_the_case_or_domain(
    sandbox: ThreadedSandbox,
) -> None:
    send(sandbox, ["BOB@class.example", "carol@class.example", "student"], subject="to bob")
    store = accounts(sandbox)
    assert subjects(store.of("bob")) == ["to bob"]
    assert subjects(store.of("student")) == ["to bob"]
    assert subjects(store.of("alice")) == []
    assert store.shared.latest().envelope["accounts"] == ["bob", "student"]  # type: ignore[union-attr]


def test_mail_without_auth_to_no_account_stays_in_the_shared_mailbox_only(
    sandbox: ThreadedSandbox,
) -> None:
    send(sandbox, ["someone@example.com"], subject="unfiled")
    store = accounts(sandbox)
    assert subjects(store.shared) == ["unfiled"]
    assert store.shared.latest().envelope["accounts"] == []  # type: ignore[union-attr]
    assert all(store.of(name).keys() == [] for name in USERS)


def test_the_sender_is_filed_once_when_it_also_mails_itself(sandbox: ThreadedSandbox) -> None:
    send(sandbox, ["alice@class.example", "bob@class.example"], user="alice", subject="both")
    store = accounts(sandbox)
    assert store.shared.latest().envelope["accounts"] == ["alice", "bob"]  # type: ignore[union-attr]
    assert subjects(store.of("alice")) == subjects(store.of("bob")) == ["both"]


def test_removing_a_message_from_one_account_leaves_the_others_and_the_shared_copy(
    sandbox: ThreadedSandbox,
) -> None:
    raw = send(sandbox, ["bob@class.example"], user="alice", subject="shared file")
    store = accounts(sandbox)
    [key] = store.of("alice").keys()
    store.of("alice").remove(key)
    assert store.of("alice").keys() == []
    assert store.of("bob").get(key).raw == raw
    assert store.shared.get(key).raw == raw
    with pytest.raises(KeyError):
        store.of("alice").remove(key)


def test_an_account_mailbox_is_private_and_a_stranger_has_none(sandbox: ThreadedSandbox) -> None:
    send(sandbox, ["alice@x"], subject="p")
    store = accounts(sandbox)
    path = store.of("alice").path
    assert path == store.root / "accounts" / "alice"
    assert (path / "new").is_dir() and (path / "envelopes.jsonl").is_file()
    with pytest.raises(KeyError):
        store.of("mallory")
    assert os.stat(path).st_mode & 0o077 == 0  # a Maildir is 0700, as the shared one


@pytest.mark.pure
@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        ({"auth_user": "alice", "rcpt_tos": []}, ["alice"]),
        ({"auth_user": "mallory", "rcpt_tos": ["x@y"]}, []),
        ({"auth_user": None, "rcpt_tos": ["<Alice@Example.COM>", "bob"]}, ["alice", "bob"]),
        ({"auth_user": "bob", "rcpt_tos": ["alice@a", "alice@b", "bob@c"]}, ["bob", "alice"]),
        ({"rcpt_tos": ["alice.smith@x", "@alice", "xalice@y"]}, []),
        ({"rcpt_tos": ["teacher@school.example"]}, ["teacher@school.example"]),
        ({}, []),
    ],
)
def test_filed_to_names_the_sender_then_each_recipient_account_once(
    envelope: dict[str, object], expected: list[str], tmp_path: Path
) -> None:
    store = AccountMailboxes(tmp_path, ["alice", "bob", "teacher@school.example"])
    assert store.filed_to(envelope) == expected


def test_a_copy_stands_in_where_the_file_system_refuses_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AccountMailboxes(tmp_path / "Maildir", ["alice"])
    store.shared.create()
    envelope = {"auth_user": "alice", "rcpt_tos": [], "accounts": ["alice"]}
    key = store.shared.add(b"Subject: x\r\n\r\nbody\r\n", envelope)

    def refuse(source: str, target: str) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    store.file(key, envelope)
    copied = store.of("alice").get(key)
    assert copied.raw == b"Subject: x\r\n\r\nbody\r\n" and copied.envelope["accounts"] == ["alice"]
    assert os.stat(store.of("alice").path / "new" / key).st_mode & 0o777 == 0o600


def test_every_250_means_the_accounts_copy_is_there_even_under_concurrent_clients(
    sandbox: ThreadedSandbox,
) -> None:
    """The key in each 250 is in the sender's and the recipient's box when the 250 arrives."""
    store = accounts(sandbox)
    missing: list[str] = []

    def client(user: str, other: str) -> None:
        with smtplib.SMTP(sandbox.host, sandbox.port, timeout=TIMEOUT) as smtp:
            smtp.ehlo("client.test")
            smtp.login(user, USERS[user])
            for n in range(5):
                smtp.mail("x@example.com")
                smtp.rcpt(f"{other}@class.example")
                code, text = smtp.data(f"Subject: {user} {n}\r\n\r\nbody\r\n".encode())
                assert code == 250, text
                key = text.decode().split("stored as ")[1].split(";")[0]
                for name in (user, other):
                    if not (store.of(name).path / "new" / key).exists():
                        missing.append(f"{key} not in {name}'s box at the 250")

    threads = [
        threading.Thread(target=client, args=pair)
        for pair in [("alice", "bob"), ("bob", "alice"), ("student", "alice")] * 4
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert missing == []
    assert len(store.shared.keys()) == 60
    assert len(store.of("alice").keys()) == 20 + 20 + 20
    assert len(store.of("bob").keys()) == 20 + 20
    assert len(store.of("student").keys()) == 20
