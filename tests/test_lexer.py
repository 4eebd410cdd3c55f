"""The SMTP pygments lexer: reply classes, client commands, transcripts, message content."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename, get_lexer_for_mimetype
from pygments.token import (
    STANDARD_TYPES,
    Comment,
    Error,
    Generic,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
    _TokenType,
)

from smtp_tutor.lexer import (
    ANY_REPLY,
    ENHANCED,
    MALFORMED,
    REPLY_TOKENS,
    SMTPLexer,
    SMTPStyle,
    highlight_fragments,
    highlight_reply_fragments,
)

OK, MORE, LATER, NEVER = (REPLY_TOKENS[d] for d in "2345")
LEXER = SMTPLexer()

Pairs = list[tuple[_TokenType, str]]


def lex(text: str, stack: tuple[str, ...] = ("root",)) -> Pairs:
    """Every token, exactly as the lexer produced it (no pygments preprocessing)."""
    return [(token, value) for _pos, token, value in LEXER.get_tokens_unprocessed(text, stack)]


def visible(text: str) -> Pairs:
    """The tokens that carry something other than whitespace."""
    return [(token, value) for token, value in lex(text) if value.strip()]


def line_tokens(text: str, line: int) -> Pairs:
    """The non-whitespace tokens of one line (0-based) of `text`."""
    tokens: list[Pairs] = [[]]
    for token, value in lex(text):
        if value.strip():
            tokens[-1].append((token, value))
        tokens.extend([] for _ in range(value.count("\n")))
    return tokens[line]


# -- server replies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "token", "head"),
    [
        ("220 mail.example.com ESMTP", OK, "220 "),
        ("250-PIPELINING", OK, "250-"),
        ("250", OK, "250"),
        ("354 End data with <CR><LF>.<CR><LF>", MORE, "354 "),
        ("334 VXNlcm5hbWU6", MORE, "334 "),
        ("421 4.3.2 Service shutting down", LATER, "421 "),
        ("451-Try again", LATER, "451-"),
        ("550 5.1.1 <x>: User unknown", NEVER, "550 "),
        ("554 Transaction failed", NEVER, "554 "),
    ],
)
def test_reply_code_token_by_class(line: str, token: _TokenType, head: str) -> None:
    for text in (line + "\r\n", "S: " + line + "\n"):
        assert (token, head) in visible(text)
        assert MALFORMED not in {t for t, _ in visible(text)}


def test_reply_classes_are_distinct_token_types() -> None:
    types = {OK, MORE, LATER, NEVER, MALFORMED}
    assert len(types) == 5
    # Each is a standard type or a subtype of one, so every style knows how to colour it.
    assert all(any(t in standard for standard in STANDARD_TYPES) for t in types)


def test_enhanced_status_code_has_its_own_token() -> None:
    assert visible("550 5.1.1 <x>: User unknown\r\n") == [
        (NEVER, "550 "),
        (ENHANCED, "5.1.1"),
        (Text, "<x>: User unknown"),
    ]
    assert (ENHANCED, "2.0.0") in visible("S: 250 2.0.0\n")
    assert (ENHANCED, "4.7.0") in visible("450-4.7.0 greylisted\n")


def test_text_that_only_resembles_an_enhanced_code_is_text() -> None:
    for line in ("250 2.0.0x ok", "250 7.1.1 no", "250 2.0 ok", "250 x 2.0.0"):
        assert ENHANCED not in {t for t, _ in visible(line)}, line


@pytest.mark.parametrize(
    ("line", "head"),
    [
        ("600 x", "600"),
        ("25O bad", "25O"),
        ("199 early", "199"),
        ("260 second digit", "260"),
        ("2500 too long", "2500"),
        ("250x", "250x"),
        ("250_x", "250_x"),
    ],
)
def test_lines_that_look_like_replies_but_are_not_are_malformed(line: str, head: str) -> None:
    for text in (line + "\r\n", "S: " + line + "\n"):
        tokens = visible(text)
        assert (MALFORMED, head) in tokens
        assert not any(t in REPLY_TOKENS.values() for t, _ in tokens)


def test_transcript_server_line_without_a_code_is_malformed() -> None:
    assert visible("S: hello there\n") == [
        (Generic.Prompt, "S:"),
        (MALFORMED, "hello"),
        (Text, "there"),
    ]


def test_challenge_after_334_is_base64() -> None:
    assert visible("334 VXNlcm5hbWU6\r\n") == [(MORE, "334 "), (String.Other, "VXNlcm5hbWU6")]
    assert visible("334 go ahead\r\n") == [(MORE, "334 "), (Text, "go ahead")]


# -- client commands -----------------------------------------------------------------------


def test_ehlo_verb_and_domain() -> None:
    assert visible("EHLO client.example\r\n") == [(Keyword, "EHLO"), (String, "client.example")]
    assert visible("helo [127.0.0.1]\n") == [(Keyword, "helo"), (String, "[127.0.0.1]")]


def test_mail_from_with_address_and_parameters() -> None:
    assert visible("MAIL FROM:<a@b> SIZE=10 SMTPUTF8 BODY=8BITMIME\r\n") == [
        (Keyword, "MAIL"),
        (Keyword.Pseudo, "FROM:"),
        (Name.Label, "<a@b>"),
        (Name.Attribute, "SIZE"),
        (Operator, "="),
        (String, "10"),
        (Name.Attribute, "SMTPUTF8"),
        (Name.Attribute, "BODY"),
        (Operator, "="),
        (String, "8BITMIME"),
    ]


def test_rcpt_to_null_paths_lowercase_and_space_before_path() -> None:
    assert visible("rcpt to:<x@y> NOTIFY=SUCCESS,FAILURE\n") == [
        (Keyword, "rcpt"),
        (Keyword.Pseudo, "to:"),
        (Name.Label, "<x@y>"),
        (Name.Attribute, "NOTIFY"),
        (Operator, "="),
        (String, "SUCCESS,FAILURE"),
    ]
    assert visible("MAIL FROM:<>\n")[-1] == (Name.Label, "<>")
    assert visible("MAIL FROM: <a@b>\n")[-1] == (Name.Label, "<a@b>")
    assert visible("MAIL FROM:a@b\n")[-1] == (Name.Label, "a@b")


def test_auth_mechanism_and_initial_response() -> None:
    assert visible("AUTH PLAIN dGVzdA==\r\n") == [
        (Keyword, "AUTH"),
        (Name.Constant, "PLAIN"),
        (String.Other, "dGVzdA=="),
    ]
    assert visible("AUTH PLAIN =\n")[-1] == (String.Other, "=")
    assert visible("AUTH LOGIN\n") == [(Keyword, "AUTH"), (Name.Constant, "LOGIN")]
    # Not base64: shown as text, not dressed up as a blob.
    assert visible("AUTH PLAIN not*base64\n")[-1] == (Text, "not*base64")


def test_response_after_334_is_base64_even_when_it_spells_a_verb() -> None:
    # RFC 4954: after 334 the client's line IS the response; "QUIT" is valid base64.
    text = "AUTH LOGIN\r\n334 VXNlcm5hbWU6\r\nQUIT\r\n334 UGFzc3dvcmQ6\r\n*\r\nQUIT\r\n"
    assert line_tokens(text, 2) == [(String.Other, "QUIT")]
    assert line_tokens(text, 4) == [(Keyword, "*")]
    assert line_tokens(text, 5) == [(Keyword, "QUIT")]


def test_other_verbs_bdat_and_unknown_words() -> None:
    assert visible("QUIT\r\n") == [(Keyword, "QUIT")]
    assert visible("STARTTLS\n") == [(Keyword, "STARTTLS")]
    assert visible("VRFY <postmaster>\n") == [(Keyword, "VRFY"), (Name.Label, "<postmaster>")]
    assert visible("BDAT 86 LAST\n") == [
        (Keyword, "BDAT"),
        (Number.Integer, "86"),
        (Keyword.Pseudo, "LAST"),
    ]
    assert visible("XYZZY plugh\n") == [(Text, "XYZZY"), (Text, "plugh")]
    assert visible("DATAX\n") == [(Text, "DATAX")]


def test_bdat_chunk_lines_in_a_transcript_are_content_not_commands() -> None:
    text = (
        "C: BDAT 20\nC: DATA is a word here\nC: QUIT too\nS: 250 2.0.0 20 octets\n"
        "C: BDAT 0 LAST\nC: QUIT\nS: 221 bye\n"
    )
    assert line_tokens(text, 0) == [
        (Generic.Prompt, "C: "),
        (Keyword, "BDAT"),
        (Number.Integer, "20"),
    ]
    assert line_tokens(text, 1) == [(Generic.Prompt, "C: "), (Text, "DATA is a word here")]
    assert line_tokens(text, 2) == [(Generic.Prompt, "C: "), (Text, "QUIT too")]
    assert line_tokens(text, 3)[1][0] in REPLY_TOKENS.values()  # the reply ends the chunk
    assert line_tokens(text, 5) == [(Generic.Prompt, "C: "), (Keyword, "QUIT")]  # no chunk
    assert "".join(value for _token, value in lex(text)) == text


# -- transcripts ---------------------------------------------------------------------------


def test_transcript_prefixes_are_prompts() -> None:
    assert lex("C: EHLO me\nS: 250 ok\n") == [
        (Generic.Prompt, "C: "),
        (Keyword, "EHLO"),
        (Whitespace, " "),
        (String, "me"),
        (Whitespace, "\n"),
        (Generic.Prompt, "S:"),
        (Whitespace, " "),
        (OK, "250 "),
        (Text, "ok"),
        (Whitespace, "\n"),
    ]


def test_comments_and_directives() -> None:
    text = (
        "# greeting first\n"
        "@connect 127.0.0.1 2525\n"
        "@tls TLSv1.3 TLS_AES_256_GCM_SHA384\n"
        "@time 12ms\n"
        "@closed\n"
    )
    assert line_tokens(text, 0) == [(Comment.Single, "# greeting first")]
    assert line_tokens(text, 1) == [
        (Comment.Preproc, "@connect"),
        (Comment.PreprocFile, "127.0.0.1"),
        (Comment.PreprocFile, "2525"),
    ]
    assert line_tokens(text, 2) == [
        (Comment.Preproc, "@tls"),
        (Comment.PreprocFile, "TLSv1.3"),
        (Comment.PreprocFile, "TLS_AES_256_GCM_SHA384"),
    ]
    assert line_tokens(text, 3) == [(Comment.Preproc, "@time"), (Comment.PreprocFile, "12ms")]
    assert line_tokens(text, 4) == [(Comment.Preproc, "@closed")]


def test_placeholders_in_client_lines() -> None:
    text = (
        "C: AUTH PLAIN {credentials}\n"
        "C: MAIL FROM:<{sender}> SIZE={size}\n"
        "C: EHLO {host}\n"
        "S: 334 UGFzc3dvcmQ6\n"
        "C: {password}\n"
    )
    assert line_tokens(text, 0)[-1] == (Name.Variable, "{credentials}")
    assert line_tokens(text, 1)[3:] == [
        (Name.Label, "<"),
        (Name.Variable, "{sender}"),
        (Name.Label, ">"),
        (Name.Attribute, "SIZE"),
        (Operator, "="),
        (Name.Variable, "{size}"),
    ]
    assert line_tokens(text, 2)[-1] == (Name.Variable, "{host}")
    assert line_tokens(text, 4) == [(Generic.Prompt, "C: "), (Name.Variable, "{password}")]
    # Braces that are not a placeholder stay what they were.
    assert (Name.Variable, "{}") not in visible("C: NOOP {}\n")


def test_transcript_auth_response_is_base64() -> None:
    text = "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\n# the user name\nC: dXNlcg==\nC: NOOP\n"
    assert line_tokens(text, 3) == [(Generic.Prompt, "C: "), (String.Other, "dXNlcg==")]
    assert line_tokens(text, 4) == [(Generic.Prompt, "C: "), (Keyword, "NOOP")]


# -- message content between 354 and the lone dot -----------------------------------------

RAW_DATA = (
    "DATA\r\n"
    "354 End data with <CR><LF>.<CR><LF>\r\n"
    "Subject: hi\r\n"
    "X-Long: first\r\n"
    "  folded\r\n"
    "RCPT TO:<x>\r\n"
    "# not a comment\r\n"
    "Subject: in the body\r\n"
    "..leading dot\r\n"
    ".\r\n"
    "250 2.0.0 queued\r\n"
    "RCPT TO:<x>\r\n"
)


def test_raw_data_headers_body_and_end() -> None:
    assert line_tokens(RAW_DATA, 2) == [
        (Name.Tag, "Subject"),
        (Punctuation, ":"),
        (String, "hi"),
    ]
    assert line_tokens(RAW_DATA, 4) == [(String, "folded")]
    # The first line that is no header ends the header section.
    assert line_tokens(RAW_DATA, 5) == [(Text, "RCPT TO:<x>")]
    assert line_tokens(RAW_DATA, 6) == [(Text, "# not a comment")]
    assert line_tokens(RAW_DATA, 7) == [(Text, "Subject: in the body")]
    assert line_tokens(RAW_DATA, 8) == [(String.Escape, "."), (Text, ".leading dot")]
    assert line_tokens(RAW_DATA, 9) == [(Keyword, ".")]
    assert line_tokens(RAW_DATA, 10)[0] == (OK, "250 ")
    assert line_tokens(RAW_DATA, 11)[:2] == [(Keyword, "RCPT"), (Keyword.Pseudo, "TO:")]


def test_empty_line_ends_the_headers() -> None:
    text = "354 go\nSubject: hi\n\nSubject: body now\n.\n"
    assert line_tokens(text, 1)[0] == (Name.Tag, "Subject")
    assert line_tokens(text, 3) == [(Text, "Subject: body now")]
    assert line_tokens(text, 4) == [(Keyword, ".")]


def test_transcript_data_mode() -> None:
    text = (
        "C: DATA\n"
        "S: 354 go ahead\n"
        "C: Subject: {subject}\n"
        "# a comment inside the message\n"
        "C: RCPT TO:<x>\n"
        "C:\n"
        "C: Hello {name}.\n"
        "C: ..\n"
        "C: .\n"
        "S: 250 ok\n"
        "C: QUIT\n"
    )
    assert line_tokens(text, 2) == [
        (Generic.Prompt, "C: "),
        (Name.Tag, "Subject"),
        (Punctuation, ":"),
        (Name.Variable, "{subject}"),
    ]
    assert line_tokens(text, 3) == [(Comment.Single, "# a comment inside the message")]
    assert line_tokens(text, 4) == [(Generic.Prompt, "C: "), (Text, "RCPT TO:<x>")]
    assert line_tokens(text, 6) == [
        (Generic.Prompt, "C: "),
        (Text, "Hello "),
        (Name.Variable, "{name}"),
        (Text, "."),
    ]
    assert line_tokens(text, 7) == [(Generic.Prompt, "C: "), (String.Escape, "."), (Text, ".")]
    assert line_tokens(text, 8) == [(Generic.Prompt, "C: "), (Keyword, ".")]
    assert line_tokens(text, 9)[1] == (OK, "250 ")
    assert line_tokens(text, 10) == [(Generic.Prompt, "C: "), (Keyword, "QUIT")]


def test_transcript_data_mode_ends_at_a_server_line_or_a_closed_connection() -> None:
    text = "S: 354 go\nC: Subject: x\nS: 451 4.3.0 error\nC: QUIT\n"
    assert line_tokens(text, 2)[1] == (LATER, "451 ")
    assert line_tokens(text, 3)[1] == (Keyword, "QUIT")
    text = "S: 354 go\nC: body\n@closed\nC: QUIT\n"
    assert line_tokens(text, 2) == [(Comment.Preproc, "@closed")]
    assert line_tokens(text, 3)[1] == (Keyword, "QUIT")


def test_only_a_final_354_starts_message_content() -> None:
    # DATA refused: the next lines are still commands.
    text = "DATA\r\n554 5.5.1 No valid recipients\r\nRCPT TO:<x>\r\n"
    assert line_tokens(text, 2)[0] == (Keyword, "RCPT")
    # A 354 continuation line does not end the reply yet, so nothing changes until the last.
    text = "354-first\r\nRCPT TO:<x>\r\n"
    assert line_tokens(text, 1)[0] == (Keyword, "RCPT")


# -- never a dropped character --------------------------------------------------------------

SAMPLES = [
    "",
    "\n",
    "\r\n\r\n",
    "220 x",
    "250",
    "250-",
    "C:",
    "S:",
    "C: ",
    "@",
    "@x",
    "{",
    "{x}",
    "MAIL FROM:<",
    "MAIL FROM:<{a",
    "MAIL FROM:<a> SIZE=",
    "AUTH",
    "354 go\r\n",
    "354 go\r\nSubject",
    "354 go\r\n.",
    "S: 354\nC:",
    "S: 354\nC: X:",
    "S: 334\nC: ",
    "334 \r\n",
    "lone\rcarriage\rreturns\r",
    "tab\tand\x0bvertical\x0cfeed\x1c\x85\u2028\u3000",
    "250 \x00\x1b[31m red",
    RAW_DATA,
    "\ufeff220 bom",
    Path(__file__).read_text(encoding="utf-8"),
]


@pytest.mark.parametrize("text", SAMPLES)
def test_round_trip_samples(text: str) -> None:
    for stack in (("root",), ("replies",)):
        tokens = lex(text, stack)
        assert "".join(value for _t, value in tokens) == text
        assert Error not in {t for t, _ in tokens}


SNIPPETS = st.sampled_from(
    [
        "C: ",
        "S: ",
        "C:",
        "\r\n",
        "\n",
        "\r",
        " ",
        "\t",
        "250-",
        "250 ",
        "354 ",
        "334 ",
        "5.1.1 ",
        "600 ",
        "MAIL FROM:",
        "RCPT TO:",
        "<a@b>",
        "<",
        ">",
        "SIZE=",
        "AUTH PLAIN ",
        "dGVzdA==",
        "=",
        "*",
        ".",
        "..",
        "Subject: ",
        "#",
        "@connect ",
        "@closed",
        "{x}",
        "{",
        "}",
        "EHLO ",
        "DATA",
        "BDAT 1 LAST",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(SNIPPETS | st.text(max_size=8), max_size=40).map("".join))
def test_round_trip_arbitrary_text(text: str) -> None:
    for stack in (("root",), ("replies",)):
        tokens = lex(text, stack)
        assert "".join(value for _t, value in tokens) == text
        assert Error not in {t for t, _ in tokens}
        assert all(value for _t, value in tokens)


def test_get_tokens_keeps_text_with_pygments_preprocessing_off() -> None:
    text = "S: 220 x\nC: EHLO me\n\n"
    lexer = SMTPLexer(stripnl=False, ensurenl=False)
    assert "".join(value for _t, value in lexer.get_tokens(text)) == text


def test_long_line_lexes_quickly_enough_to_not_hang() -> None:
    # Regex backtracking would show as a hang here, not as a slow pass.
    text = "AUTH PLAIN " + "A" * 200_000 + "!\r\n" + "250 " + "x " * 100_000
    assert len("".join(value for _t, value in lex(text))) == len(text)


# -- registration, style, fragments --------------------------------------------------------


def test_found_through_the_entry_point() -> None:
    assert type(get_lexer_by_name("smtp")) is SMTPLexer
    assert type(get_lexer_by_name("smtp-transcript")) is SMTPLexer
    assert type(get_lexer_for_filename("session.smtp")) is SMTPLexer
    assert type(get_lexer_for_mimetype("text/x-smtp")) is SMTPLexer


def test_pygmentize_colours_a_file(tmp_path: Path) -> None:
    pygmentize = Path(sys.executable).with_name("pygmentize")
    if not pygmentize.exists():
        pytest.skip(f"no pygmentize next to {sys.executable}")
    source = tmp_path / "session.smtp"
    source.write_text("S: 220 ready\nC: EHLO me\nS: 550 5.1.1 no\n", encoding="utf-8")
    result = subprocess.run(
        [str(pygmentize), "-l", "smtp", "-f", "terminal", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b[" in result.stdout
    assert "EHLO" in result.stdout and "5.1.1" in result.stdout


#: A transcript with every reply class, the documented expectation forms and placeholders.
DOCUMENTED = (
    "@connect 127.0.0.1 2525\n"
    "S: 220\n"
    "C: EHLO client.example\n"
    "S: 250 /(?m)^AUTH .*PLAIN/\n"
    'C: AUTH PLAIN {plain user="student" password=password}\n'
    "S: 2xx\n"
    "C: AUTH LOGIN\n"
    "S: 334 VXNlcm5hbWU6\n"
    "C: {base64 user}\n"
    "S: 3XX\n"
    "C: {base64 password}\n"
    "S: 4xx\n"
    "C: RCPT TO:<nobody@example.org>\n"
    "S: 550 5.1.1 no\n"
    "C: NOOP {{literal}\n"
    "S: 600 broken\n"
    "C: QUIT\n"
    "S: *\n"
)


def _pygmentize(tmp_path: Path, *options: str, env: dict[str, str] | None = None) -> str:
    pygmentize = Path(sys.executable).with_name("pygmentize")
    if not pygmentize.exists():
        pytest.skip(f"no pygmentize next to {sys.executable}")
    source = tmp_path / "session.smtp"
    source.write_text(DOCUMENTED, encoding="utf-8")
    result = subprocess.run(
        [str(pygmentize), "-l", "smtp", *options, str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_documented_expectations_are_reply_classes_not_malformed() -> None:
    assert line_tokens(DOCUMENTED, 5) == [(Generic.Prompt, "S:"), (OK, "2xx")]
    assert line_tokens(DOCUMENTED, 9) == [(Generic.Prompt, "S:"), (MORE, "3XX")]
    assert line_tokens(DOCUMENTED, 11) == [(Generic.Prompt, "S:"), (LATER, "4xx")]
    assert line_tokens(DOCUMENTED, 17) == [(Generic.Prompt, "S:"), (ANY_REPLY, "*")]
    assert line_tokens(DOCUMENTED, 3) == [
        (Generic.Prompt, "S:"),
        (OK, "250 "),
        (String.Regex, "/(?m)^AUTH .*PLAIN/"),
    ]
    assert line_tokens("S: 250 \\/var/mail\n", 0) == [
        (Generic.Prompt, "S:"),
        (OK, "250 "),
        (String.Escape, "\\"),
        (Text, "/var/mail"),
    ]
    malformed = [value for token, value in lex(DOCUMENTED) if token is MALFORMED]
    assert malformed == ["600"]
    # Outside a transcript a class is no reply: the wire never carries "2xx".
    assert (MALFORMED, "2xx") in visible("2xx ok\r\n")


def test_every_placeholder_form_is_a_variable() -> None:
    for placeholder in (
        "{password}",
        "{base64 password}",
        '{plain user="student" password=password}',
        '{plain user = "st\\"u" password=password authzid="admin"}',
        "{cram-md5 user password}",
        '{"\\r\\n"}',
    ):
        text = f"C: AUTH PLAIN {placeholder}\nC: {placeholder}\nC: MAIL FROM:<{placeholder}>\n"
        for line in range(3):
            assert (Name.Variable, placeholder) in line_tokens(text, line), (placeholder, line)
        data = f"S: 354 go\nC: Subject: {placeholder}\nC:\nC: body {placeholder}\nC: .\n"
        assert sum(1 for t, v in lex(data) if (t, v) == (Name.Variable, placeholder)) == 2
    assert (String.Escape, "{{") in visible("C: NOOP {{literal}\n")
    assert Name.Variable not in {t for t, _v in visible("C: NOOP {{literal}\n")}
    assert Name.Variable not in {t for t, _v in visible("C: NOOP {plain user\n")}


def _terminal_colour(token: _TokenType) -> str:
    from pygments.formatters.terminal import TERMINAL_COLORS

    while token not in TERMINAL_COLORS:
        token = token.parent
    return TERMINAL_COLORS[token][0].strip("*_")


def test_pygmentize_terminal_colours_reply_classes_and_placeholders(tmp_path: Path) -> None:
    from pygments.console import codes

    def coloured(colour: str, text: str) -> str:
        return codes[colour] + text + codes["reset"]

    # No -f: pygmentize picks the plain terminal formatter for an 8-colour terminal.
    plain_term = {k: v for k, v in os.environ.items() if k != "COLORTERM"}
    out = _pygmentize(tmp_path, env={**plain_term, "TERM": "xterm"})
    assert out == _pygmentize(tmp_path, "-f", "terminal")
    expected = {OK: "green", LATER: "yellow", NEVER: "brightred", MORE: "magenta"}
    for token, colour in expected.items():
        assert _terminal_colour(token) == colour
    assert coloured("green", "250 ") in out and coloured("green", "2xx") in out
    assert coloured("yellow", "4xx") in out
    assert coloured("brightred", "550 ") in out
    assert codes["magenta"] in out.split("334 ")[0].rsplit("\n", 1)[-1]
    assert coloured("red", '{plain user="student" password=password}') in out
    assert coloured("red", "{base64 password}") in out
    assert coloured("blue", "*") in out
    assert "5.1.1" in out and codes["blue"] + "5.1.1" in out


def test_pygmentize_html_classes_have_colours_in_the_default_style(tmp_path: Path) -> None:
    # pygments 2.15 writes a double quote in text as &quot;, newer ones (2.21) as it is.
    out = _pygmentize(tmp_path, "-f", "html").replace("&quot;", '"')
    css = HtmlFormatter(style="default").get_style_defs(".highlight")
    for cls, text in (
        ("gi gi-ReplyOk", "250 "),
        ("gi gi-ReplyOk", "2xx"),
        ("gu gu-ReplyIntermediate", "334 "),
        ("gu gu-ReplyIntermediate", "3XX"),
        ("se se-ReplyTransient", "4xx"),
        ("gd gd-ReplyPermanent", "550 "),
        ("gr gr-ReplyMalformed", "600"),
        ("m m-Enhanced", "5.1.1"),
        ("nv", '{plain user="student" password=password}'),
        ("nv", "{base64 password}"),
        ("sr", "/(?m)^AUTH .*PLAIN/"),
        ("kp kp-AnyReply", "*"),
    ):
        assert f'<span class="{cls}">{text}</span>' in out, (cls, text)
        standard = cls.split()[0]
        assert f".highlight .{standard} {{ color: #" in css, standard
    colours = {
        standard: css.split(f".highlight .{standard} {{ color: ")[1][:7]
        for standard in ("gi", "gu", "se", "gd", "gr")
    }
    assert len(set(colours.values())) == 5, colours


def test_module_imports_no_prompt_toolkit() -> None:
    code = "import sys, smtp_tutor.lexer; print('prompt_toolkit' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


def test_style_colours_each_reply_class_differently() -> None:
    styles = [SMTPStyle.style_for_token(t) for t in (OK, MORE, LATER, NEVER, MALFORMED)]
    colours = [s["ansicolor"] or s["color"] for s in styles]
    assert all(colours)
    assert len(set(colours)) == 5
    assert SMTPStyle.style_for_token(ENHANCED)["ansicolor"] not in colours


def test_reply_fragments_use_prompt_toolkit_pygments_classes() -> None:
    fragments = highlight_reply_fragments("250-mx\r\n250 2.0.0 OK\r\nhello\r\n")
    assert "".join(text for _s, text in fragments) == "250-mx\n250 2.0.0 OK\nhello\n"
    assert ("class:pygments.generic.inserted.replyok", "250-") in fragments
    assert ("class:pygments.literal.number.enhanced", "2.0.0") in fragments
    # Server text only: a line without a code is a broken reply, never a command.
    assert ("class:pygments.generic.error.replymalformed", "hello") in fragments
    # After 354 the next server line is still a reply, not message content.
    fragments = highlight_reply_fragments("354 go\r\n250 ok\r\n")
    assert ("class:pygments.generic.inserted.replyok", "250 ") in fragments


def test_fragments_merge_neighbours_and_match_the_style() -> None:
    from prompt_toolkit.styles.pygments import style_from_pygments_cls

    fragments = highlight_fragments("C: EHLO me\nS: 421 4.3.2 bye\n")
    assert all(a[0] != b[0] for a, b in itertools.pairwise(fragments))
    assert all(text for _s, text in fragments)
    style = style_from_pygments_cls(SMTPStyle)
    attrs = {s: style.get_attrs_for_style_str(s) for s, _t in fragments}
    assert attrs["class:pygments.literal.string.escape.replytransient"].color == "ansiyellow"
    assert attrs["class:pygments.keyword"].bold
    assert fragments[0] == ("class:pygments.generic.prompt", "C: ")


def test_analyse_text_recognises_a_dialogue_modestly() -> None:
    assert SMTPLexer.analyse_text("220 mx ESMTP\r\nEHLO me\r\n") > 0
    assert SMTPLexer.analyse_text("S: 220 mx\nC: HELO me\n") > 0
    assert SMTPLexer.analyse_text("def f():\n    return 220\n") == 0


@pytest.mark.pure
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "220 mx.example ESMTP",
                    "250-PIPELINING",
                    "250 2.0.0 OK",
                    "334 VXNlcm5hbWU6",
                    "354 go ahead",
                    "421 4.3.2 bye",
                    "550 5.1.1 <a@b> unknown {x}",
                    "600 no such class",
                    "25O typo",
                    "",
                    "hello",
                ]
            ),
            st.text(alphabet="0123456789 -.abc{}<>/\\\r\t", max_size=30),
        ),
        max_size=8,
    )
)
def test_replies_highlight_as_the_whole_lexer_highlights_them(lines: list[str]) -> None:
    """The console's small reply lexer has the whole lexer's rules: the same fragments."""
    from smtp_tutor import lexer

    text = "\r\n".join(lines) + "\r\n"
    whole = lexer._fragments(text, ("replies",), lexer.SMTPLexer())
    assert highlight_reply_fragments(text) == whole


@pytest.mark.pure
def test_the_reply_lexer_holds_every_state_replies_can_reach() -> None:
    from smtp_tutor import lexer

    assert set(lexer._RepliesLexer.tokens) == {"replies", "reply-text", "challenge"}
    every = lexer.reachable_states(SMTPLexer.tokens, "root") | {"replies"}  # replies: a start
    assert every == set(SMTPLexer.tokens)  # the walk follows every kind of rule the lexer has
