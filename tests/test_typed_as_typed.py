"""What the user types is what the server gets: typed ahead, pasted, or slow, in order.

The console is driven for real through prompt_toolkit pipe input, but unlike
`tests/consoles.run_console` (which types each line only when the console waits at a
prompt, like a patient student), these drivers type at a chosen pace — zero delay, or
0.3 s a line — whatever the console is doing: waiting for a slow reply, printing a note,
or showing a rewrite it could make. The sandbox's Maildir copy must then equal the typed
lines after un-stuffing, byte for byte, and the envelope must hold every recipient typed,
in order. The test that would have caught the lost lines of issue 14 is
`test_the_seed_headers_typed_line_by_line_arrive_as_typed` (and the property test below).
"""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.plain_text import PlainTextOutput

from smtp_tutor.client.session import Target
from smtp_tutor.console.app import Console, ConsoleOptions
from smtp_tutor.sandbox import SandboxConfig, StoredMessage, ThreadedSandbox
from tests.consoles import screen_text

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"
_senders = itertools.count(1)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSandbox]:
    home = tmp_path_factory.mktemp("typed")
    config = SandboxConfig(port=0, mailbox=home / "Maildir", slow_delay=0.3, greylist_delay=0)
    with ThreadedSandbox(config) as server:
        yield server


def type_at_pace(
    server: ThreadedSandbox,
    keys: list[str],
    delay: float = 0.0,
    options: ConsoleOptions | None = None,
    after: dict[int, str] | None = None,
) -> str:
    """Type each chunk of keys `delay` seconds apart, from the first prompt on; then Ctrl-D.

    `after` maps a chunk's index to text the person waits to see on screen before typing
    it (a question's prompt), however long a loaded machine takes to show it.
    """

    async def main() -> str:
        buffer = io.StringIO()
        with create_pipe_input() as pipe:
            console = Console(
                Target(server.host, server.port),
                options or ConsoleOptions(color=False, toolbar=False),
                input=pipe,
                output=PlainTextOutput(buffer),
            )
            task = asyncio.create_task(console.run())
            await asyncio.wait_for(console.waiting_for_input.wait(), 10)
            for index, chunk in enumerate(keys):
                if after and index in after:
                    async with asyncio.timeout(20):
                        while after[index] not in buffer.getvalue():
                            await asyncio.sleep(0.02)
                pipe.send_text(chunk)
                await asyncio.sleep(delay)
            pipe.send_text("\x04")  # Ctrl-D, typed ahead as well: handled after the rest
            code = await asyncio.wait_for(task, 60)
            assert code == 0
        return buffer.getvalue()

    return asyncio.run(main())


def typed(lines: list[str]) -> list[str]:
    return [line + "\r" for line in lines]


def stored_from(server: ThreadedSandbox, sender: str) -> StoredMessage:
    found = [m for m in server.mailbox().messages() if m.envelope.get("mail_from") == sender]
    assert len(found) == 1, f"{len(found)} messages from {sender}"
    return found[0]


def wire_of(lines: list[str]) -> bytes:
    """What the server must store for these typed message lines (`::` sends one colon)."""
    sent = [line[1:] if line.startswith("::") else line for line in lines]
    return "".join(f"{line}\r\n" for line in sent).encode()


def new_sender() -> str:
    return f"typist{next(_senders)}@example.com"


def envelope(sender: str, *recipients: str) -> list[str]:
    return ["EHLO me", f"MAIL FROM:<{sender}>", *(f"RCPT TO:<{r}>" for r in recipients)]


# The seed's header block (shared/seed/classic-smtp-tutorial.txt), with its mistakes.
SEED = [
    "From: student@example.com",
    "To: teacher@example.com",
    "Subject:我是标题",
    "Content-Type: Text/html;",
    "charset=gb2312",
    "",
    "hello world",
]


def test_the_seed_headers_typed_line_by_line_arrive_as_typed(sandbox: ThreadedSandbox) -> None:
    sender = new_sender()
    lines = [*envelope(sender, "friend@example.com"), "DATA", *SEED, ".", "QUIT"]
    out = type_at_pace(sandbox, typed(lines), delay=0.3)
    assert stored_from(sandbox, sender).raw == wire_of(SEED)
    text = screen_text(out)
    assert ":fix rewrites line 3" in text  # the offer is made, as a note
    assert "[Y/n]" not in text


def test_the_seed_headers_typed_at_zero_delay_arrive_as_typed(sandbox: ThreadedSandbox) -> None:
    sender = new_sender()
    lines = [*envelope(sender, "friend@example.com"), "DATA", *SEED, ".", "QUIT"]
    type_at_pace(sandbox, ["".join(typed(lines))])
    assert stored_from(sandbox, sender).raw == wire_of(SEED)


def test_the_seed_message_pasted_at_once_is_checked_once(sandbox: ThreadedSandbox) -> None:
    sender = new_sender()
    paste = PASTE_START + "\r".join(SEED) + PASTE_END + "\r"
    keys = [*typed([*envelope(sender, "friend@example.com"), "DATA"]), paste, ".\r", "QUIT\r"]
    out = type_at_pace(sandbox, keys, delay=0.2)
    assert stored_from(sandbox, sender).raw == wire_of(SEED)
    text = screen_text(out)
    assert text.count("the pasted lines were checked as one block") == 1
    assert ":fix rewrites line 3" in text


def test_fix_after_a_paste_rewrites_only_the_offered_lines(sandbox: ThreadedSandbox) -> None:
    sender = new_sender()
    paste = PASTE_START + "\r".join(SEED) + PASTE_END + "\r"
    keys = [*typed([*envelope(sender, "friend@example.com"), "DATA"]), paste]
    keys += typed([":fix", ".", "QUIT"])
    type_at_pace(sandbox, keys, delay=0.2)
    fixed = list(SEED)
    fixed[2] = "Subject: =?utf-8?b?5oiR5piv5qCH6aKY?="
    fixed[4] = " charset=gb2312"
    stored = stored_from(sandbox, sender)
    assert stored.raw == wire_of(fixed)
    assert stored.message["Subject"] == "我是标题"


def test_lines_typed_during_a_slow_reply_all_arrive_in_order(sandbox: ThreadedSandbox) -> None:
    sender = new_sender()
    recipients = ["slow@example.com", "a@example.com", "slow@example.org", "b@example.com"]
    body = ["Subject: slow", "", ".hidden", "last line"]
    lines = [*envelope(sender, *recipients), "DATA", *body, ".", "QUIT"]
    type_at_pace(sandbox, ["".join(typed(lines))])
    stored = stored_from(sandbox, sender)
    assert stored.envelope["rcpt_tos"] == recipients
    assert stored.raw == wire_of(body)


def test_hand_made_base64_typed_ahead_is_not_encoded_again(
    sandbox: ThreadedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed's AUTH LOGIN: base64 typed before the 334 is sent as typed, not re-encoded."""
    monkeypatch.setenv("COLUMNS", "300")  # the note checked below, unwrapped
    lines = ["EHLO me", "AUTH LOGIN", "c3R1ZGVudA==", "c2VjcmV0", "NOOP", "QUIT"]
    out = type_at_pace(sandbox, ["".join(typed(lines))])
    text = screen_text(out)
    assert "235 2.7.0" in text
    assert "the AUTH helper steps aside" in text
    assert "c2VjcmV0" not in text  # the password's base64 is still masked on screen


def test_the_auth_helper_still_answers_at_its_own_prompt(sandbox: ThreadedSandbox) -> None:
    """Typed as a person does: each answer after its question is on screen."""
    keys = typed(["EHLO me", "AUTH LOGIN", "student", "secret", "QUIT"])
    out = type_at_pace(sandbox, keys, 0.3, after={2: "username>", 3: "password>"})
    text = screen_text(out)
    assert "235 2.7.0" in text and "steps aside" not in text


# -- the property: any message, typed at zero delay, arrives as typed ---------------------

_text = st.text(
    alphabet=st.sampled_from(
        [*list("abcxyz ABC019-_=;<>@.,'\"!?()[]/"), "é", "ü", "你", "好", "标", "题", "。"]
    ),
    max_size=30,
)
_line = st.one_of(
    st.builds(lambda n, t: f"{n}:{t}", st.sampled_from(["Subject", "From", "X-Note", "To"]), _text),
    st.builds(lambda t: f"Subject: {t}", _text),
    st.builds(lambda t: "charset=" + t.replace(":", ""), _text),  # no colon: the seed's line
    st.just(""),
    st.builds(lambda t: "." + t, _text.filter(lambda t: t != "")),  # dot-stuffed
    st.builds(lambda t: "::" + t, _text),  # a line that really starts with a colon
    _text.filter(lambda t: not t.startswith((":", "."))),
)
_message = st.lists(_line, min_size=1, max_size=12).filter(lambda ls: "." not in ls)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(message=_message, slow=st.booleans(), paste=st.booleans())
def test_any_message_typed_ahead_arrives_as_typed(
    sandbox: ThreadedSandbox, message: list[str], slow: bool, paste: bool
) -> None:
    sender = new_sender()
    recipients = ["slow@example.com", "r@example.com"] if slow else ["r@example.com"]
    head = "".join(typed([*envelope(sender, *recipients), "DATA"]))
    # A pasted block's lines each end with a line break, as copied from a file; the
    # Enter after the paste accepts it (a trailing break ends the last line).
    body = "".join(typed(message))
    if paste:
        body = PASTE_START + body + PASTE_END + "\r"
    type_at_pace(sandbox, [head + body + ".\rQUIT\r"])
    stored = stored_from(sandbox, sender)
    assert stored.envelope["rcpt_tos"] == recipients
    assert stored.raw == wire_of(message)


def test_transcript_files_are_private(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    path = tmp_path / "session.smtp"
    options = ConsoleOptions(color=False, toolbar=False, transcript=path)
    type_at_pace(sandbox, typed(["EHLO me", "QUIT"]), options=options)
    assert path.stat().st_mode & 0o777 == 0o600
    assert "C: EHLO me" in path.read_text()
