"""The console loop, driven for real through prompt_toolkit pipe input against the sandbox."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from smtp_tutor.client.session import Target
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.sandbox import Mailbox, Sandbox, SandboxConfig
from tests.consoles import run_console, screen_text

T = TypeVar("T")


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


def with_sandbox(tmp_path: Path, body: Callable[[Sandbox], Awaitable[T]], **config: object) -> T:
    async def main() -> T:
        sandbox = Sandbox(SandboxConfig(port=0, mailbox=tmp_path / "Maildir", **config))  # type: ignore[arg-type]
        await sandbox.start()
        try:
            return await body(sandbox)
        finally:
            await sandbox.stop()

    return asyncio.run(main())


def session(tmp_path: Path, lines: list[str], **config: object) -> tuple[str, Mailbox]:
    """Type `lines` into a console on a fresh sandbox; the console must end with exit 0."""

    async def body(sandbox: Sandbox) -> tuple[str, Mailbox]:
        options = ConsoleOptions(color=False, toolbar=False, mailbox=sandbox.mailbox_path)
        code, out, _console = await run_console(Target(sandbox.host, sandbox.port), lines, options)
        assert code == 0
        return out, sandbox.mailbox()

    return with_sandbox(tmp_path, body, **config)


def test_raw_lines_go_out_as_typed_and_replies_come_back(tmp_path: Path) -> None:
    async def body(sandbox: Sandbox) -> str:
        options = ConsoleOptions(color=False, toolbar=True)
        lines = ["EHLO me.example", "NOOP", "QUIT"]
        _code, out, _ = await run_console(Target(sandbox.host, sandbox.port), lines, options)
        return out

    out = with_sandbox(tmp_path, body)
    text = screen_text(out)
    assert "plain  no AUTH  EHLO" in text  # the bottom toolbar was drawn
    assert "220 localhost" in text
    assert "250-PIPELINING" in text and "250 HELP" in text
    assert "221 2.0.0" in text
    assert "connection closed" in text and ":reconnect" in text
    assert " ms)" in text  # latency shown


def test_lines_starting_with_r_or_q_are_not_eaten(tmp_path: Path) -> None:
    out, _ = session(
        tmp_path,
        [
            "ehlo me.example",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "RSET",
            "quit",
        ],
    )
    text = screen_text(out)
    assert "250 2.1.5" in text  # RCPT really went out
    assert text.count("250 2.0.0") >= 1  # RSET answered
    assert "221" in text


def test_checker_warns_before_sending_but_still_sends(tmp_path: Path) -> None:
    out, _ = session(tmp_path, ["EHLO me.example", "RCPT TO:<b@example.com>", "QUIT"])
    text = screen_text(out)
    warning = text.index("RCPT before MAIL")
    refusal = text.index("503 5.5.1")
    assert warning < refusal  # the warning came first, then the server's refusal
    assert "↳ 503" in text  # and the explanation after the error


def test_auth_login_helper_encodes_and_hides_the_password(tmp_path: Path) -> None:
    out, _ = session(tmp_path, ["EHLO me", "AUTH LOGIN", "student", "secret", "QUIT"])
    text = screen_text(out)
    assert "decoded challenge: 'Username:'" in text
    assert base64.b64encode(b"student").decode() in text
    assert "235 2.7.0" in text
    assert "secret" not in text.replace("student / secret", "")
    assert base64.b64encode(b"secret").decode() not in text


def test_auth_plain_without_argument_asks_for_both(tmp_path: Path) -> None:
    out, _ = session(tmp_path, ["EHLO me", "AUTH PLAIN", "student", "secret", "QUIT"])
    text = screen_text(out)
    assert "235 2.7.0" in text
    assert base64.b64encode(b"\0student\0secret").decode() not in text


def test_auth_cram_md5(tmp_path: Path) -> None:
    out, _ = session(tmp_path, ["EHLO me", "AUTH CRAM-MD5", "student", "secret", "QUIT"])
    assert "235 2.7.0" in screen_text(out)


def test_wrong_password_is_explained(tmp_path: Path) -> None:
    out, _ = session(tmp_path, ["EHLO me", "AUTH LOGIN", "student", "wrong", "QUIT"])
    text = screen_text(out)
    assert "535 5.7.8" in text and "↳ 535" in text


def test_manual_mode_sends_auth_answers_as_typed(tmp_path: Path) -> None:
    user, password = (base64.b64encode(x).decode() for x in (b"student", b"secret"))
    out, _ = session(tmp_path, [":manual on", "EHLO me", "AUTH LOGIN", user, password, "QUIT"])
    assert "235 2.7.0" in screen_text(out)


def test_data_mode_dot_stuffs_and_the_message_arrives_intact(tmp_path: Path) -> None:
    body = [
        "Subject: =?UTF-8?B?5L2g5aW9?=",
        "From: a@example.com",
        "",
        ".leading dot",
        "..two dots",
        "你好，世界",
        "::colon line",
    ]
    out, mailbox = session(
        tmp_path,
        [
            "EHLO me",
            "MAIL FROM:<a@example.com> BODY=8BITMIME",
            "RCPT TO:<b@example.com>",
            "DATA",
            *body,
            ".",
            "QUIT",
        ],
    )
    text = screen_text(out)
    assert "dot-stuffed: sent as ..leading dot" in text
    assert "250 2.0.0" in text
    [stored] = mailbox.messages()
    expected = "\r\n".join([*body[:-1], ":colon line"]) + "\r\n"
    assert stored.raw == expected.encode()


def test_starttls_switches_in_place_and_reminds_to_ehlo(tmp_path: Path) -> None:
    out, _ = session(tmp_path, ["EHLO me", "STARTTLS", "EHLO me", "QUIT"])
    text = screen_text(out)
    assert "TLS active: TLSv1.3" in text or "TLS active: TLSv1.2" in text
    assert "self-signed" in text
    assert "say EHLO again" in text
    after = text[text.index("TLS active") :]
    assert "250-STARTTLS" not in after  # not offered again under TLS


def test_server_drop_leaves_the_console_running(tmp_path: Path) -> None:
    out, _ = session(
        tmp_path,
        [
            "EHLO me",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<drop@example.com>",
            "NOOP",
            ":reconnect",
            "NOOP",
            ":quit",
        ],
    )
    text = screen_text(out)
    assert "connection closed" in text
    assert "not connected" in text  # NOOP after the drop is refused locally, no traceback
    assert text.count("220 localhost") == 2  # :reconnect opened a new session


def test_console_commands(tmp_path: Path) -> None:
    out, _ = session(
        tmp_path,
        [
            ":help",
            ":explain 535",
            ":b64 student",
            ":unb64 c3R1ZGVudA==",
            ":unb64 !!",
            ":nope",
            ":quit",
        ],
    )
    text = screen_text(out)
    assert ":manual on|off" in text
    assert "535" in text and "5.7.8" not in text.split(":explain")[0]
    assert "c3R1ZGVudA==" in text and "student" in text
    assert "unknown console command :nope" in text


def test_chinese_explanations(tmp_path: Path) -> None:
    async def body(sandbox: Sandbox) -> str:
        options = ConsoleOptions(lang="zh", color=False)
        _code, out, _ = await run_console(
            Target(sandbox.host, sandbox.port), ["EHLO me", "RCPT TO:<x@y.z>", "QUIT"], options
        )
        return screen_text(out)

    text = with_sandbox(tmp_path, body)
    assert "请先发 MAIL FROM" in text or "MAIL 之前" in text


def test_connection_refused_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    errors = io.StringIO()
    code, out, _ = asyncio.run(run_console(Target("127.0.0.1", port), [], errors=errors))
    assert code == 3
    [line] = errors.getvalue().splitlines()
    assert "refused" in line and "Traceback" not in out


def test_paste_is_pipelined_and_each_reply_names_its_command(tmp_path: Path) -> None:
    paste = (
        "\x1b[200~MAIL FROM:<a@example.com>\rRCPT TO:<nobody@example.com>\r"
        "RCPT TO:<b@example.com>\rRSET\x1b[201~"
    )
    out, _ = session(tmp_path, ["EHLO me", paste, "QUIT"])
    text = screen_text(out)
    assert "as one group" in text
    assert "RCPT before MAIL" not in text  # checked as if MAIL in flight succeeds
    order = [
        text.index(s)
        for s in (
            "answers: MAIL FROM:<a@example.com>",
            "250 2.1.0",
            "answers: RCPT TO:<nobody@example.com>",
            "550 5.1.1",
            "answers: RCPT TO:<b@example.com>",
            "250 2.1.5",
            "answers: RSET",
        )
    ]
    assert order == sorted(order)


def test_paste_without_pipelining_goes_one_by_one(tmp_path: Path) -> None:
    paste = "\x1b[200~HELO me\rNOOP\rNOOP\x1b[201~"
    out, _ = session(tmp_path, [paste, "QUIT"])
    text = screen_text(out)
    assert "one by one" in text and text.count("250 2.0.0") >= 2


def test_headers_template_lint_and_mailbox(tmp_path: Path) -> None:
    out, mailbox = session(
        tmp_path,
        [
            "EHLO me",
            "MAIL FROM:<student@example.com> BODY=8BITMIME",
            "RCPT TO:<friend@example.com>",
            "DATA",
            ":headers 你好",
            *[""] * 9,
            "Hello, 世界",
            ".",
            ":mailbox",
            "QUIT",
        ],
    )
    text = screen_text(out)
    assert "header template" in text
    [stored] = mailbox.messages()
    message = stored.message
    assert message["Subject"] == "你好" and message["From"] == "student@example.com"
    assert message["Date"] and message["Message-ID"] and message["MIME-Version"] == "1.0"
    assert not stored.defects
    assert "before the final dot" not in text  # a complete message draws no lint
    assert "the email parser found no defects" in text and "Subject: 你好" in text


def test_non_ascii_subject_is_rewritten_only_by_fix(tmp_path: Path) -> None:
    out, mailbox = session(
        tmp_path,
        [
            "EHLO me",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "Subject: 你好",
            ":fix",
            "From: a@example.com",
            "",
            "body",
            ".",
            "QUIT",
        ],
    )
    text = screen_text(out)
    assert ":fix rewrites line 1 as: Subject: =?utf-8?b?5L2g5aW9?=" in text
    assert "line 1 rewritten: Subject: 你好  →  Subject: =?utf-8?b?5L2g5aW9?=" in text
    [stored] = mailbox.messages()
    assert stored.raw == b"Subject: =?utf-8?b?5L2g5aW9?=\r\nFrom: a@example.com\r\n\r\nbody\r\n"
    assert stored.message["Subject"] == "你好"


def test_an_offered_rewrite_never_takes_the_next_line(tmp_path: Path) -> None:
    """The seed's header block, typed line by line: every line reaches the server as typed."""
    typed = [
        "From: a@example.com",
        "To: b@example.com",
        "Subject:我是标题",
        "Content-Type: Text/html;",
        "charset=gb2312",
        "",
        "hello world",
    ]
    out, mailbox = session(
        tmp_path,
        [
            "HELO me",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            *typed,
            ".",
            "QUIT",
        ],
    )
    text = screen_text(out)
    assert ":fix rewrites line 3" in text and ":fix indents line 5" in text
    assert "held back, not sent yet" in text
    assert "[Y/n]" not in text  # nothing is asked
    [stored] = mailbox.messages()
    assert stored.raw == "".join(f"{line}\r\n" for line in typed).encode()
    lint = text[text.index("before the final dot") :]
    assert "Date" in lint and "Message-ID" in lint
    assert stored.defects  # and Python's parser indeed finds the defect


def test_send_releases_held_lines_as_typed_and_drop_forgets_them(tmp_path: Path) -> None:
    out, mailbox = session(
        tmp_path,
        [
            "HELO me",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "Subject: 再见",
            "X-Typo: oops",
            ":drop",
            "Subject: 你好",
            ":send",
            "",
            "body",
            ".",
            "QUIT",
        ],
    )
    text = screen_text(out)
    assert "dropped, never sent: Subject: 再见" in text
    assert "dropped, never sent: X-Typo: oops" in text
    assert "sending 1 held lines as typed" in text
    [stored] = mailbox.messages()
    assert stored.raw == "Subject: 你好\r\n\r\nbody\r\n".encode()


def test_confirm_on_warning_holds_a_line_until_send(tmp_path: Path) -> None:
    async def body(sandbox: Sandbox) -> str:
        options = ConsoleOptions(color=False, confirm_on_warning=True)
        _code, out, _ = await run_console(
            Target(sandbox.host, sandbox.port),
            [
                "EHLO me",
                "RCPT TO:<b@example.com>",
                "n",
                "NOOP",
                ":drop",
                "RCPT TO:<c@example.com>",
                ":send",
                "QUIT",
            ],
            options,
        )
        return screen_text(out)

    text = with_sandbox(tmp_path, body)
    assert "held back, not sent (confirm_on_warning is on)" in text
    # "n" and NOOP are lines for the server, typed after the held one: they wait behind it
    assert "held back behind a line waiting for :send or :drop: n" in text
    assert "dropped, never sent: RCPT TO:<b@example.com>" in text
    assert "dropped, never sent: NOOP" in text
    # the second RCPT is held, then sent by :send: the server's 503 answers it
    assert text.count("503 5.5.1") == 1
    assert "send it anyway?" not in text


def test_raw_view_shows_bytes_but_masks_the_password(tmp_path: Path) -> None:
    out, _ = session(tmp_path, [":raw on", "EHLO me", "AUTH LOGIN", "student", "secret", "QUIT"])
    text = screen_text(out)
    assert "C> EHLO me\\r\\n" in text and "S< 250-PIPELINING\\r\\n" in text
    assert "C> c3R1ZGVudA==\\r\\n" in text
    assert base64.b64encode(b"secret").decode() not in text


def test_hint_gives_the_long_explanation(tmp_path: Path) -> None:
    out, _ = session(tmp_path, ["EHLO me", ":hint", "QUIT"])
    assert "STARTTLS" in screen_text(out) and "handshake" in screen_text(out)


def test_the_whole_console_speaks_chinese(tmp_path: Path) -> None:
    async def body(sandbox: Sandbox) -> str:
        options = ConsoleOptions(lang="zh", color=False)
        lines = ["EHLO me", "AUTH LOGIN", "student", "secret", ":hint", ":help", "QUIT"]
        _code, out, _ = await run_console(Target(sandbox.host, sandbox.port), lines, options)
        return screen_text(out)

    text = with_sandbox(tmp_path, body)
    for expected in (
        "正在连接",
        "质询解码后",
        "请用明文输入",
        "控制台命令以冒号开头",
        "连接已关闭",
    ):
        assert expected in text


@pytest.mark.parametrize(
    "lines",
    [
        ["AUTH LOGIN", "student", "secret"],
        ["AUTH PLAIN", "student", "secret"],
        ["AUTH CRAM-MD5", "student", "secret"],
        ["AUTH PLAIN " + base64.b64encode(b"\0student\0secret").decode()],
        [
            ":manual on",
            "AUTH LOGIN",
            base64.b64encode(b"student").decode(),
            base64.b64encode(b"secret").decode(),
        ],
    ],
    ids=["login", "plain", "cram-md5", "plain-initial-response", "manual-login"],
)
def test_history_never_holds_a_secret(tmp_path: Path, lines: list[str]) -> None:
    history = tmp_path / "state" / "history"

    async def body(sandbox: Sandbox) -> str:
        options = ConsoleOptions(color=False, history_path=history)
        script = [
            "EHLO me",
            *lines,
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "Subject: secret plans",
            "",
            "the body",
            ".",
            "secret",
            "QUIT",
        ]
        _code, out, _ = await run_console(Target(sandbox.host, sandbox.port), script, options)
        return screen_text(out)

    text = with_sandbox(tmp_path, body)
    assert "235 2.7.0" in text
    stored = history.read_bytes()
    assert history.stat().st_mode & 0o777 == 0o600
    assert b"EHLO me" in stored and b"MAIL FROM:<a@example.com>" in stored
    forbidden = [
        b"secret",
        base64.b64encode(b"secret"),
        base64.b64encode(b"\0student\0secret"),
        b"the body",
        b"Subject",
    ]
    for needle in forbidden:
        assert needle not in stored, needle


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN", "CRAM-MD5"])
def test_saved_transcript_has_placeholders_not_secrets(
    tmp_path: Path, mechanism: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the notes checked below as one line each
    saved = tmp_path / "session.smtp"
    out, _ = session(
        tmp_path,
        [
            "EHLO me",
            "STARTTLS",
            "EHLO me",
            f"AUTH {mechanism}",
            "student",
            "secret",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "Subject: x",
            "",
            ".dot",
            ".",
            f":save {saved}",
            "QUIT",
        ],
    )
    assert f"transcript saved to {saved}" in screen_text(out)
    text = saved.read_text("utf-8")
    assert "@connect 127.0.0.1" in text and "@tls TLSv1." in text
    assert "C: EHLO me" in text and "S: 235 2.7.0" in text
    assert "C: ..dot" in text and "C: ." in text and "S: 250 2.0.0" in text
    for needle in (
        "secret",
        base64.b64encode(b"secret").decode(),
        base64.b64encode(b"\0student\0secret").decode(),
    ):
        assert needle not in text
    assert "{" in text  # the secret line became a placeholder


def test_transcript_option_writes_the_session_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "live.smtp"

    async def body(sandbox: Sandbox) -> str:
        options = ConsoleOptions(color=False, toolbar=False, transcript=path)
        lines = [
            "EHLO me",
            ":help",
            "AUTH PLAIN " + base64.b64encode(b"\0student\0secret").decode(),
        ]
        task = run_console(Target(sandbox.host, sandbox.port), lines, options)
        _code, out, _ = await task
        return out

    with_sandbox(tmp_path, body)
    text = path.read_text("utf-8")
    assert "C: EHLO me" in text and "S: 235" in text
    assert base64.b64encode(b"\0student\0secret").decode() not in text


def test_caps_explains_and_diffs_across_starttls(tmp_path: Path) -> None:
    out, _ = session(tmp_path, ["EHLO me", "STARTTLS", "EHLO me", ":caps", ":tls", "QUIT"])
    text = screen_text(out)
    caps = text[text.index("advertised (under TLS)") :]
    assert "SIZE 10485760" in caps and "AUTH PLAIN LOGIN CRAM-MD5" in caps
    assert "compared with the EHLO in clear text → under TLS" in caps
    assert "- STARTTLS" in caps  # no longer offered under TLS
    assert "certificate #0: " in text and "SNI sent:" in text


def test_hex_view_masks_the_password(tmp_path: Path) -> None:
    out, _ = session(tmp_path, [":hex on", "EHLO me", "AUTH PLAIN", "student", "secret", "QUIT"])
    text = screen_text(out)
    assert "C> 0000  45 48 4c 4f 20 6d 65 0d 0a" in text  # "EHLO me\r\n"
    assert base64.b64encode(b"\0student\0secret").decode()[:16] not in text.replace(" ", "")


def test_diagram_of_the_session(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    svg = tmp_path / "session.svg"
    out, _ = session(
        tmp_path, ["EHLO me", "AUTH PLAIN", "student", "secret", "NOOP", f":diagram {svg}", "QUIT"]
    )
    assert "diagram of this session written to" in screen_text(out)
    text = svg.read_text("utf-8")
    ET.fromstring(text)
    assert "EHLO me" in text and "NOOP" in text and "235" in text
    assert "secret" not in text.replace("student / secret", "")


def test_bdat_without_chunking_warns_and_goes_out_anyway(tmp_path: Path) -> None:
    out, mailbox = session(
        tmp_path,
        [
            "HELO me",  # no EHLO: nothing advertised, so no CHUNKING
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            ":bdat",
            "Subject: x",
            "",
            "hi",
            ".",
            "NOOP",
            "QUIT",
        ],
    )
    text = screen_text(out)
    assert "✗ BDAT is an ESMTP extension, and you greeted with HELO" in text  # a warning only
    assert "→ BDAT 18 LAST  (chunk 1 of 1)" in text
    assert "503 5.5.1 Error: BDAT is an extension: send EHLO, not HELO" in text
    assert "\n250 2.0.0 OK" in text  # the NOOP after it: the chunk was read, not run
    assert mailbox.latest() is None


def test_bdat_chunks_into_the_sandbox_store_the_message_exactly(tmp_path: Path) -> None:
    body = ["Subject: chunked", "", ".a dot that BDAT does not stuff", "你好 across a cut"]
    envelope = ["EHLO me", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>"]
    out, mailbox = session(tmp_path, [*envelope, ":bdat 7", *body, ".", "QUIT"])
    text = screen_text(out)
    message = "".join(f"{line}\r\n" for line in body).encode()
    chunks = -(-len(message) // 7)
    assert "did not advertise CHUNKING" not in text
    assert f"→ BDAT 7  (chunk 1 of {chunks})" in text
    assert text.count("octets received") == chunks - 1
    assert "Ok: stored as" in text
    latest = mailbox.latest()
    assert latest is not None and latest.raw == message


@pytest.mark.postfix
def test_bdat_chunks_deliver_through_postfix(tmp_path: Path, postfix: object) -> None:
    from tests.postfix import PostfixInstance

    assert isinstance(postfix, PostfixInstance)
    body = [
        "Subject: chunked",
        "Message-ID: <bdat@me.example>",
        "",
        ".a line with a dot",
        "and a longer line to make several chunks of twenty bytes",
    ]
    lines = [
        "EHLO me",
        f"MAIL FROM:<{postfix.address}>",
        f"RCPT TO:<{postfix.address}>",
        ":bdat 20",
        *body,
        ".",
        "QUIT",
    ]

    async def main() -> str:
        options = ConsoleOptions(color=False, toolbar=False)
        _code, out, _ = await run_console(Target(postfix.host, postfix.port), lines, options)
        return screen_text(out)

    text = asyncio.run(main())
    assert "(chunk 1 of " in text and " LAST  (chunk" in text
    assert "did not advertise CHUNKING" not in text
    raw = postfix.wait_for_message(containing=b"bdat@me.example")
    assert b"\n.a line with a dot\n" in raw  # no dot-stuffing with BDAT: the dot is data
    assert raw.rstrip(b"\n").endswith(b"several chunks of twenty bytes")
