"""The sandbox's POP3 server against a real Dovecot: the same dialogues, compared through the core.

Every dialogue of tests/pop3_dovecot_sessions.txt (captured from Dovecot 2.3) and a few of
our own run against both servers, each on a fresh account holding the same two messages.
Both sides' bytes go through the core's `Dialogue` (the client a student uses), and per
command the two must agree on: +OK / -ERR / "+ " (continuation), whether the answer is
multiline, the message bytes of RETR and TOP, the numbers of STAT and LIST, the message
numbers UIDL lists, and the extended code where both give one. Everything else - the
texts - may differ.

Where the two servers differ on purpose, it is said once, in `KNOWN_DIFFERENCES` below
(and in docs/pop3-sandbox.md); the tests check those differences really are as described.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smtp_tutor.core.pop3.auth import apop_command
from smtp_tutor.core.pop3.dialogue import Dialogue, Outcome, State
from smtp_tutor.core.records import replace
from smtp_tutor.sandbox import SandboxConfig, ThreadedSandbox
from smtp_tutor.sandbox.pop3 import Pop3Limits
from tests.dovecot import PASSWORD, DovecotInstance, _running_dovecot
from tests.test_pop3_dovecot_transcript import FIRST_MESSAGE, sessions

pytestmark = pytest.mark.dovecot

TIMEOUT = 10
SECOND_MESSAGE = (
    b"From: other@example.com\r\nTo: student@example.com\r\nSubject: second\r\n"
    b"Message-ID: <2@example.com>\r\n\r\nA short one.\r\n"
)

#: Where the sandbox and Dovecot differ by design; each is checked by a test below.
KNOWN_DIFFERENCES = {
    "greeting": "the texts differ: '+OK Dovecot (Debian) ready. <…>' vs '+OK smtp-tutor "
    "sandbox POP3 ready <pid.random.time@hostname>'; both carry an APOP timestamp",
    "capa": "Dovecot lists CAPA itself as a capability; the sandbox lists IMPLEMENTATION "
    "smtp-tutor-sandbox instead; the rest (TOP UIDL RESP-CODES PIPELINING AUTH-RESP-CODE "
    "STLS USER SASL PLAIN LOGIN, and after login only the first five) is the same",
    "uidl": "the values differ: Dovecot's are UID+UIDVALIDITY in hex (000000016b107fcb), the "
    "sandbox's are the Maildir key; both are stable across sessions",
    "in-use": "a second session on a locked mailbox: Dovecot (pop3_lock_session = yes) makes "
    "its PASS wait for the lock (10 s, then -ERR [IN-USE]); the sandbox answers -ERR [IN-USE] "
    "at once and stays in AUTHORIZATION. Dovecot's default takes no lock at all",
    "bad-logins": "the sandbox closes the connection at the third failed login; Dovecot lets "
    "a client go on failing (its anvil penalty, off in the fixture, slows it down instead)",
    "argument-checks": "the sandbox refuses an argument to STAT/RSET/NOOP/CAPA/STLS with "
    "-ERR; Dovecot ignores it",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Step:
    """One command and how both servers answered it, as the core parsed it."""

    line: str
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass
class Run:
    greeting: Outcome
    steps: list[Step]


class Client:
    """A POP3 client built on the core's Dialogue: what smtp-tutor's console does, minus UI."""

    def __init__(self, host: str, port: int) -> None:
        self.sock: socket.socket = socket.create_connection((host, port), timeout=TIMEOUT)
        self.host = host
        self.dialogue = Dialogue()
        outcomes = self._until(lambda: self.dialogue.greeted)
        self.greeting = outcomes[0]

    def _until(self, done: object) -> list[Outcome]:
        outcomes: list[Outcome] = []
        while not done():  # type: ignore[operator]
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:  # closed with our line unread: the end, too
                data = b""
            if not data:
                outcomes += self.dialogue.receive_eof()
                break
            outcomes += self.dialogue.receive(data)
            for outcome in outcomes:
                if outcome.start_tls and not self.dialogue.tls_active:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE  # comparing answers, not certificates
                    self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
                    self.dialogue.tls_established(self.sock.version())
        return outcomes

    def group(self, lines: list[str]) -> list[Step]:
        """Send lines together (pipelined), then collect one answer per line."""
        steps = []
        for line in lines:
            sent = self.dialogue.send(line)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.sock.sendall(sent.wire)
            steps.append(Step(line))
        outcomes = self._until(lambda: not self.dialogue.in_flight)
        # A SASL exchange's "+ " belongs to the line that was answered.
        for step, outcome in zip(steps, outcomes, strict=False):
            step.outcomes.append(outcome)
        return steps

    def close(self) -> None:
        self.sock.close()


def substitute(line: str, user: str, greeting: str) -> str:
    """A transcript line for another account (the transcript's was student / s3cret)."""
    plain = b64(f"\0{user}\0{PASSWORD}".encode())
    replacements = {
        "AHN0dWRlbnQAczNjcmV0": plain,
        "c3R1ZGVudA==": b64(user.encode()),
        "czNjcmV0": b64(PASSWORD.encode()),
    }
    if line in replacements:
        return replacements[line]
    if re.fullmatch(r"APOP student [0-9a-f]{32}", line) and not line.endswith("0" * 32):
        return apop_command(user, PASSWORD, greeting)  # the digest is the greeting's
    return line.replace("student", user).replace("s3cret", PASSWORD)


def run(host: str, port: int, user: str, script: list[str]) -> Run:
    """The transcript's C: lines, grouped as they were sent (no S: between = pipelined)."""
    client = Client(host, port)
    groups: list[list[str]] = [[]]
    for entry in script:
        if entry.startswith("C:"):
            groups[-1].append(entry[3:])
        elif groups[-1]:
            groups.append([])
    steps: list[Step] = []
    try:
        for lines in filter(None, groups):
            greeting = client.greeting.response.text
            steps += client.group([substitute(line, user, greeting) for line in lines])
            if client.dialogue.state is State.CLOSED:
                break
    finally:
        client.close()
    return Run(client.greeting, steps)


def compare(dovecot: Run, sandbox: Run) -> list[str]:
    """Every difference that is not a known one, as a sentence."""
    problems: list[str] = []
    for name, run_ in (("Dovecot", dovecot), ("sandbox", sandbox)):
        if not run_.greeting.response.ok or run_.greeting.response.malformed:
            problems.append(f"{name}'s greeting: {run_.greeting.response.raw!r}")
    if len(dovecot.steps) != len(sandbox.steps):
        problems.append(f"{len(dovecot.steps)} answers from Dovecot, {len(sandbox.steps)} here")
    for theirs, ours in zip(dovecot.steps, sandbox.steps, strict=False):
        problems += compare_step(theirs, ours)
    return problems


def compare_step(theirs: Step, ours: Step) -> list[str]:
    if not theirs.outcomes or not ours.outcomes:
        return [f"{theirs.line!r}: no answer (Dovecot {theirs.outcomes}, sandbox {ours.outcomes})"]
    a, b = theirs.outcomes[0].response, ours.outcomes[0].response
    where = f"{theirs.line!r} (Dovecot {a.status_line!r}, sandbox {b.status_line!r})"
    if b.malformed:
        return [f"{where}: the sandbox's answer is malformed: {b.problems}"]
    if a.status != b.status:
        return [f"{where}: different status"]
    if a.multiline != b.multiline:
        return [f"{where}: one is multiline, the other not"]
    if a.code and b.code and a.code != b.code:
        return [f"{where}: extended codes differ"]
    verb = theirs.line.split(" ")[0].upper()
    problems = []
    if a.ok and verb in ("RETR", "TOP") and a.body != b.body:
        problems.append(f"{where}: message bytes differ: {a.body!r} vs {b.body!r}")
    if a.ok and verb == "STAT" and a.text.split()[:2] != b.text.split()[:2]:
        problems.append(f"{where}: STAT numbers differ")
    if a.ok and verb == "LIST" and (a.lines != b.lines or (not a.multiline and a.text != b.text)):
        problems.append(f"{where}: LIST differs: {a.lines} vs {b.lines}")
    if a.ok and verb == "UIDL":  # KNOWN_DIFFERENCES["uidl"]: the numbers only
        numbers = [[line.split()[0] for line in r.lines] or r.text.split()[:1] for r in (a, b)]
        if numbers[0] != numbers[1]:
            problems.append(f"{where}: UIDL lists other messages")
    capa = a.ok and verb == "CAPA"  # KNOWN_DIFFERENCES["capa"]
    if capa and set(a.lines) - {"CAPA"} != set(b.lines) - {"IMPLEMENTATION smtp-tutor-sandbox"}:
        problems.append(f"{where}: CAPA lists differ: {a.lines} vs {b.lines}")
    return problems


# Fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", name="apop_dovecot")
def apop_dovecot_fixture() -> Iterator[DovecotInstance]:
    """Dovecot as the transcript was captured: APOP too, so the greeting has a timestamp."""
    yield from _running_dovecot(extra_conf={"auth_mechanisms": "plain login apop"})


@dataclass
class Pair:
    dovecot: DovecotInstance
    sandbox: ThreadedSandbox
    user: str

    def run(self, script: list[str]) -> tuple[Run, Run]:
        pop3_port = self.sandbox.pop3_port
        assert pop3_port is not None
        theirs = run(self.dovecot.host, self.dovecot.port, self.user, script)
        ours = run("127.0.0.1", pop3_port, self.user, script)
        return theirs, ours


@pytest.fixture
def pair(
    apop_dovecot: DovecotInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Pair]:
    """A fresh account with the same two messages on Dovecot and on the sandbox."""
    for variable in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    account = apop_dovecot.add_account()
    config = SandboxConfig(
        mailbox=tmp_path / "Maildir", pop3_port=0, users={account.name: PASSWORD}
    )
    sandbox = ThreadedSandbox(config)
    sandbox.start()
    pop3 = sandbox.sandbox.pop3
    assert pop3 is not None
    pop3.limits = Pop3Limits(bad_login_delay=0.0)
    box = sandbox.sandbox.accounts.of(account.name)
    for message in (FIRST_MESSAGE, SECOND_MESSAGE):
        apop_dovecot.deliver(message, account.name)
        box.add(message, {})
        time.sleep(0.002)  # distinct delivery times keep the order on both sides
    try:
        yield Pair(apop_dovecot, sandbox, account.name)
    finally:
        sandbox.stop()


# Our own dialogues, in the transcript's notation ---------------------------------------------

OWN_DIALOGUES: dict[str, list[str]] = {
    "top_and_numbers": [
        "C: USER student", "S:", "C: PASS s3cret", "S:", "C: TOP 1 0", "S:", "C: TOP 1 2",
        "S:", "C: TOP 2 50", "S:", "C: TOP 3 0", "S:", "C: LIST 0", "S:", "C: UIDL 2", "S:",
        "C: UIDL 3", "S:", "C: RETR 2", "S:", "C: NOOP", "S:", "C: QUIT", "S:",
    ],
    "delete_and_commit": [
        "C: USER student", "S:", "C: PASS s3cret", "S:", "C: DELE 2", "S:", "C: LIST", "S:",
        "C: UIDL", "S:", "C: STAT", "S:", "C: DELE 2", "S:", "C: TOP 2 0", "S:", "C: QUIT",
        "S:",
    ],
    "after_login": [
        "C: CAPA", "S:", "C: USER student", "S:", "C: PASS s3cret", "S:", "C: APOP student x",
        "S:", "C: AUTH PLAIN", "S:", "C: STLS", "S:", "C: RETR 1", "S:", "C: QUIT", "S:",
    ],
    "stls_twice": [
        "C: STLS", "S:", "C: STLS", "S:", "C: USER student", "S:", "C: PASS s3cret", "S:",
        "C: STAT", "S:", "C: QUIT", "S:",
    ],
    "quit_before_login": ["C: USER student", "S:", "C: QUIT", "S:"],
    "pipelined_retr": [
        "C: USER student", "C: PASS s3cret", "C: RETR 1", "C: TOP 2 1", "C: QUIT", "S:",
    ],
}  # fmt: skip

TRANSCRIPT_DIALOGUES = sessions()


@pytest.mark.parametrize("name", sorted(TRANSCRIPT_DIALOGUES))
def test_the_transcript_dialogues_get_the_same_answers(pair: Pair, name: str) -> None:
    theirs, ours = pair.run(TRANSCRIPT_DIALOGUES[name])
    assert len(ours.steps) >= 2
    assert compare(theirs, ours) == []


@pytest.mark.parametrize("name", sorted(OWN_DIALOGUES))
def test_our_dialogues_get_the_same_answers(pair: Pair, name: str) -> None:
    theirs, ours = pair.run(OWN_DIALOGUES[name])
    assert compare(theirs, ours) == []


def test_deletions_are_committed_alike(pair: Pair) -> None:
    """DELE + QUIT on both, then a new session: the same message is gone on both."""
    pair.run(OWN_DIALOGUES["delete_and_commit"])
    check = ["C: USER student", "S:", "C: PASS s3cret", "S:", "C: STAT", "S:", "C: RETR 1",
             "S:", "C: QUIT", "S:"]  # fmt: skip
    theirs, ours = pair.run(check)
    assert compare(theirs, ours) == []
    assert ours.steps[2].outcomes[0].response.text.startswith("1 ")
    assert ours.steps[3].outcomes[0].response.body == FIRST_MESSAGE


def test_known_difference_greeting_and_capa(pair: Pair) -> None:
    theirs, ours = pair.run(["C: CAPA", "S:", "C: QUIT", "S:"])
    assert theirs.greeting.response.text.startswith("Dovecot (Debian) ready. <")
    assert ours.greeting.response.text.startswith("smtp-tutor sandbox POP3 ready <")
    their_capa, our_capa = (r.steps[0].outcomes[0].response.lines for r in (theirs, ours))
    assert "CAPA" in their_capa and "CAPA" not in our_capa
    assert "IMPLEMENTATION smtp-tutor-sandbox" in our_capa
    assert [x for x in their_capa if x != "CAPA"] == [
        x for x in our_capa if not x.startswith("IMPLEMENTATION")
    ]


def test_known_difference_in_use_dovecot_waits_the_sandbox_answers_at_once(
    apop_dovecot: DovecotInstance, pair: Pair
) -> None:
    locked = apop_dovecot.add_account(lock_session=True)
    pop3_port = pair.sandbox.pop3_port
    assert pop3_port is not None

    def second_pass_after_first(host: str, port: int, user: str) -> tuple[str, float]:
        first = Client(host, port)
        first.group([f"USER {user}"])
        assert first.group([f"PASS {PASSWORD}"])[0].outcomes[0].response.ok
        answer: list[tuple[str, float]] = []

        def second() -> None:
            client = Client(host, port)
            client.group([f"USER {user}"])
            started = time.monotonic()
            step = client.group([f"PASS {PASSWORD}"])[0]
            answer.append((step.outcomes[0].response.status_line, time.monotonic() - started))
            client.close()

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(1.5)
        first.group(["QUIT"])
        first.close()
        thread.join(TIMEOUT)
        return answer[0]

    theirs = second_pass_after_first(apop_dovecot.host, apop_dovecot.port, locked.name)
    assert theirs[0].startswith("+OK") and theirs[1] >= 1.0  # waited for the first QUIT
    ours = second_pass_after_first("127.0.0.1", pop3_port, pair.user)
    assert ours[0] == "-ERR [IN-USE] Mailbox is locked by another POP3 session."
    assert ours[1] < 1.0


def test_known_difference_bad_logins(pair: Pair) -> None:
    bad = []
    for password in ("no1", "no2", "no3"):
        bad += ["C: USER student", "S:", f"C: PASS {password}", "S:"]
    bad += ["C: NOOP", "S:"]
    theirs, ours = pair.run(bad)
    assert [s.outcomes[0].response.code for s in theirs.steps[1:6:2]] == ["AUTH"] * 3
    assert [s.outcomes[0].response.code for s in ours.steps[1:6:2]] == ["AUTH"] * 3
    assert theirs.steps[-1].outcomes[0].response.is_error  # NOOP before login: still there
    assert ours.steps[-1].outcomes == []  # closed at the third failure: NOOP unanswered


def test_known_difference_argument_checks(pair: Pair) -> None:
    theirs, ours = pair.run(["C: USER student", "S:", "C: PASS s3cret", "S:", "C: STAT x", "S:"])
    assert theirs.steps[2].outcomes[0].response.ok
    assert ours.steps[2].outcomes[0].response.status_line == "-ERR STAT takes no argument."


def test_every_known_difference_is_tested() -> None:
    assert set(KNOWN_DIFFERENCES) == {
        "greeting", "capa", "uidl", "in-use", "bad-logins", "argument-checks",
    }  # fmt: skip


def test_the_comparison_can_fail(pair: Pair) -> None:
    """A shifted answer list, or a changed message, is reported: compare() is not a no-op."""
    theirs, ours = pair.run(TRANSCRIPT_DIALOGUES["main"])
    assert compare(theirs, ours) == []
    assert compare(theirs, Run(ours.greeting, ours.steps[1:]))
    retr = next(i for i, step in enumerate(ours.steps) if step.line == "RETR 1")
    outcome = ours.steps[retr].outcomes[0]
    changed = replace(outcome.response, body=outcome.response.body + b"extra\r\n")
    steps = list(ours.steps)
    steps[retr] = Step("RETR 1", [replace(outcome, response=changed)])
    assert any("message bytes differ" in p for p in compare(theirs, Run(ours.greeting, steps)))
