"""Sequence diagrams of transcripts: valid SVG/HTML, the right colours and bands, no secrets.

The SVG is read back with ElementTree and checked element by element; one diagram is drawn
to PNG by cairosvg (a real renderer) to prove it draws something, not just parses.
"""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtp_tutor.cli import main
from smtp_tutor.core.transcript import TranscriptError, parse_transcript
from smtp_tutor.diagram.sequence import (
    COLOURS,
    DiagramError,
    DiagramWriteError,
    render_html,
    render_svg,
    write_diagram,
)

SVG = "{http://www.w3.org/2000/svg}"
PASSWORD = "s3cret-Pa55"

SESSION = """\
# smtp-tutor session with the sandbox
@connect 127.0.0.1 2525
@time 2.4ms
S: 220 localhost ESMTP smtp-tutor sandbox
C: EHLO client.example
@time 1.3ms
S: 250-localhost
S: 250-SIZE 33554432
S: 250-8BITMIME
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
@tls TLSv1.3 TLS_AES_256_GCM_SHA384
C: EHLO client.example
S: 250-localhost
S: 250 AUTH CRAM-MD5 LOGIN PLAIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: c3R1ZGVudA==
S: 334 UGFzc3dvcmQ6
C: {base64 password}
@time 12ms
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<student@example.org>
S: 250 2.1.0 Ok
C: RCPT TO:<nobody@example.org>
@time 0.9ms
S: 550 5.1.1 User unknown
C: RCPT TO:<teacher@example.org>
S: 250 2.1.5 Ok
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: From: <student@example.org>
C: To: <teacher@example.org>
C: Subject: =?UTF-8?B?5L2g5aW9?=
C:
C: 你好，世界！这是一封测试邮件。
C: ..this line starts with a dot
C: .
S: 250 2.0.0 Ok: queued as 4F2A1
C: QUIT
S: 221 2.0.0 Bye
@closed the session ended with QUIT (221)
"""


def session_svg() -> ET.Element:
    return ET.fromstring(render_svg(parse_transcript(SESSION, "session.smtp")))


def texts(root: ET.Element) -> list[str]:
    """What is drawn: each <text> element's whole content (tspans joined), tooltips excluded."""
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]


def groups(root: ET.Element, css: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if css in g.get("class", "").split()]


def arrow(root: ET.Element, code: str) -> ET.Element:
    found = [g for g in groups(root, "reply") if g.get("data-code") == code]
    assert len(found) == 1, f"one arrow for {code}, found {len(found)}"
    return found[0]


def arrow_y(group: ET.Element) -> float:
    line = group.find(f"{SVG}line")
    assert line is not None
    return float(line.get("y1", "nan"))


def band(root: ET.Element, kind: str) -> tuple[float, float]:
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("class") == f"band {kind}"]
    assert len(rects) == 1, f"one {kind} band, found {len(rects)}"
    top = float(rects[0].get("y", "nan"))
    return top, top + float(rects[0].get("height", "nan"))


# --------------------------------------------------------------------------- the SVG


def test_svg_is_valid_xml_and_draws_every_command_and_every_reply_code() -> None:
    script = parse_transcript(SESSION, "session.smtp")
    root = ET.fromstring(render_svg(script))
    assert root.tag == f"{SVG}svg"
    drawn = "\n".join(texts(root))
    commands = [send.text for send in script.sends if not send.data]
    assert len(commands) == 11
    for command in commands:
        assert command in drawn, command
    codes = [g.get("data-code") for g in groups(root, "reply")]
    assert codes == [f"{e.code:03d}" for e in script.expects]
    for expect in script.expects:
        assert any(text.startswith(f"{expect.code:03d}") for text in texts(root))
    # the EHLO reply is one arrow with one text line per reply line
    ehlo = groups(root, "reply")[1]
    ehlo_lines = [
        "".join(t.itertext()) for t in ehlo.iter(f"{SVG}text") if t.get("class") != "latency"
    ]
    assert ehlo_lines == ["250-localhost", "250-SIZE 33554432", "250-8BITMIME", "250 STARTTLS"]
    assert "session.smtp" in drawn


def test_the_tls_and_the_authenticated_stretch_are_shaded_and_labelled() -> None:
    root = session_svg()
    tls_top, tls_bottom = band(root, "tls")
    auth_top, auth_bottom = band(root, "auth")
    drawn = texts(root)
    assert "TLS TLSv1.3 TLS_AES_256_GCM_SHA384" in drawn
    assert "authenticated as student" in drawn
    # the STARTTLS reply is before the TLS band, the 235 before the auth band, inside TLS
    assert arrow_y(groups(root, "reply")[2]) < tls_top < arrow_y(arrow(root, "235")) < auth_top
    assert tls_top < auth_top < arrow_y(arrow(root, "550")) < auth_bottom <= tls_bottom
    assert arrow_y(arrow(root, "221")) < auth_bottom
    closed = [g for g in groups(root, "note") if "closed" in g.get("class", "")]
    assert len(closed) == 1
    assert "".join(closed[0].itertext()).endswith("the session ended with QUIT (221)")


def test_replies_are_coloured_by_class() -> None:
    root = session_svg()
    red = COLOURS["5xx"]
    bad = arrow(root, "550")
    assert "r5xx" in bad.get("class", "")
    line, head = bad.find(f"{SVG}line"), bad.find(f"{SVG}polygon")
    assert line is not None and head is not None
    assert line.get("stroke") == red
    assert head.get("fill") == red
    assert all(
        text.get("fill") == red
        for text in bad.iter(f"{SVG}text")
        if "latency" not in text.get("class", "")
    )
    ok = arrow(root, "235").find(f"{SVG}line")
    assert ok is not None and ok.get("stroke") == COLOURS["2xx"]
    go_on = arrow(root, "354").find(f"{SVG}line")
    assert go_on is not None and go_on.get("stroke") == COLOURS["3xx"]
    assert len({COLOURS[name] for name in ("2xx", "3xx", "4xx", "5xx", "malformed")}) == 5


def test_transient_malformed_and_any_replies_get_their_own_colours() -> None:
    script = parse_transcript(
        "C: RCPT TO:<greylist@example.org>\nS: 451 4.7.1 try later\n"
        "C: NOOP\nS: * garbage without a code\n"
        "C: NOOP\nS: 650 not a reply code\n"
        "C: RSET\nS: 4xx\n"
        "C: QUIT\nS: *\n"
    )
    root = ET.fromstring(render_svg(script))
    strokes = [
        (g.get("data-code"), g.find(f"{SVG}line").get("stroke")) for g in groups(root, "reply")
    ]  # type: ignore[union-attr]
    assert strokes == [
        ("451", COLOURS["4xx"]),
        ("*", COLOURS["malformed"]),
        ("650", COLOURS["malformed"]),
        ("4xx", COLOURS["4xx"]),
        ("*", COLOURS["any"]),
    ]


def test_latency_is_shown_beside_its_reply() -> None:
    root = session_svg()
    replies = {g.get("data-code"): g for g in reversed(groups(root, "reply"))}  # first of each
    for code, latency in (("220", "2.4ms"), ("250", "1.3ms"), ("235", "12ms"), ("550", "0.9ms")):
        shown = [t for t in replies[code].iter(f"{SVG}text") if t.get("class") == "latency"]
        assert ["".join(t.itertext()) for t in shown] == [latency]
    assert not [t for t in arrow(root, "221").iter(f"{SVG}text") if t.get("class") == "latency"]


def test_message_content_is_one_arrow_with_its_subject_and_the_text_in_the_tooltip() -> None:
    root = session_svg()
    messages = groups(root, "message")
    assert len(messages) == 1
    label = ["".join(t.itertext()) for t in messages[0].iter(f"{SVG}text")]
    assert label == ["message: 6 lines, Subject: 你好"]
    drawn = "\n".join(texts(root))
    assert "From: <student@example.org>" not in drawn  # content lines are not arrows
    tooltip = messages[0].findtext(f"{SVG}title") or ""
    assert "你好，世界！这是一封测试邮件。" in tooltip
    assert ".this line starts with a dot" in tooltip
    assert "..this line" not in tooltip  # shown as the recipient reads it, unstuffed
    # the commands around the message are arrows of their own
    arrows = [g for g in root.iter(f"{SVG}g") if "arrow" in g.get("class", "").split()]
    kinds = [g.get("data-code") or "".join(next(g.iter(f"{SVG}text")).itertext()) for g in arrows]
    index = kinds.index("DATA")
    assert kinds[index : index + 4] == ["DATA", "354", "message: 6 lines, Subject: 你好", "250"]


def test_a_message_without_subject_or_final_dot_says_so() -> None:
    script = parse_transcript(
        "C: DATA\nS: 354 go ahead\nC: From: <a@example.org>\nC:\nC: hi\nS: 451 4.3.0 broken\n"
    )
    root = ET.fromstring(render_svg(script))
    label = "".join(next(groups(root, "message")[0].iter(f"{SVG}text")).itertext())
    assert label == 'message: 3 lines, first: From: <a@example.org> (no final ".")'


def test_each_bdat_chunk_is_one_arrow_after_its_command() -> None:
    script = parse_transcript(
        "C: BDAT 20\nC: Subject: chunks repl\nS: 250 2.0.0 20 octets\n"
        'C: BDAT 9 LAST\nC: ayed\nC: {"\\n"}x\nS: 250 2.0.0 queued\n'
    )
    root = ET.fromstring(render_svg(script))
    arrows = [g for g in root.iter(f"{SVG}g") if "arrow" in g.get("class", "").split()]
    kinds = [g.get("data-code") or "".join(next(g.iter(f"{SVG}text")).itertext()) for g in arrows]
    assert kinds == [
        "BDAT 20",
        "chunk: 20 bytes, Subject: chunks repl",
        "250",
        "BDAT 9 LAST",
        "chunk: 9 bytes, first: ayed",
        "250",
    ]
    tooltip = groups(root, "message")[1].findtext(f"{SVG}title") or ""
    assert tooltip.startswith("lines 5-6: BDAT chunk data\nayed\n")


def test_placeholders_are_drawn_as_written_and_no_secret_appears() -> None:
    svg = render_svg(parse_transcript(SESSION))
    root = ET.fromstring(svg)
    placeholder = [
        span for span in root.iter(f"{SVG}tspan") if "".join(span.itertext()) == "{base64 password}"
    ]
    assert len(placeholder) == 1
    assert placeholder[0].get("font-style") == "italic"
    # a hand-written transcript with credentials in clear: they are masked on the drawing
    plain = base64.b64encode(f"\0student\0{PASSWORD}".encode()).decode()
    login = base64.b64encode(PASSWORD.encode()).decode()
    clear = (
        f"C: AUTH PLAIN {plain}\nS: 535 5.7.8 no\n"
        f"C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: c3R1ZGVudA==\nS: 334 UGFzc3dvcmQ6\n"
        f"C: {login}\nS: 235 2.7.0 ok\nC: MAIL FROM:<student@example.org>\nS: 250 ok\n"
        f"C: AUTH LOGIN\nS: 3xx\nC: c3R1ZGVudA==\nS: *\nC: {login}\nS: 2xx\n"
    )
    for output in (render_svg(parse_transcript(clear)), render_html(parse_transcript(clear))):
        for secret in (PASSWORD, plain, login):
            assert secret not in output
        root = ET.fromstring(output[output.index("<svg") : output.index("</svg>") + 6])
        drawn = texts(root)
        assert "AUTH PLAIN ********  (credential in clear, not shown)" in drawn
        assert "c3R1ZGVudA==" in drawn  # a user name is not a secret (as in transcripts)
        assert "authenticated as student" in drawn


def test_authenticated_as_comes_from_the_placeholder_or_the_decoded_user() -> None:
    cases = {
        'C: AUTH PLAIN {plain user="学生" password=password}\nS: 235 ok\n': "学生",
        "C: AUTH PLAIN {plain user password}\nS: 235 ok\n": "{user}",
        'C: AUTH CRAM-MD5\nS: 334 PDE+\nC: {cram-md5 user="bob" password=pw}\nS: 235 ok\n': "bob",
        "C: AUTH LOGIN c3R1ZGVudA==\nS: 334 UGFzc3dvcmQ6\nC: {base64 pw}\nS: 2xx\n": "student",
    }
    for text, user in cases.items():
        drawn = texts(ET.fromstring(render_svg(parse_transcript(text))))
        assert f"authenticated as {user}" in drawn, text
    failed = "C: AUTH PLAIN {plain user password}\nS: 535 no\nC: NOOP\nS: 250 ok\n"
    root = ET.fromstring(render_svg(parse_transcript(failed)))
    assert not [r for r in root.iter(f"{SVG}rect") if r.get("class") == "band auth"]


def test_implicit_tls_is_one_band_from_the_connection_named_by_the_handshake() -> None:
    script = parse_transcript(
        "@connect mail.example.org 465 tls\n@tls TLSv1.3 TLS_AES_128_GCM_SHA256\n"
        "S: 220 hi\nC: QUIT\nS: 221 bye\n@connect mail.example.org 25\nS: 220 again\n"
    )
    root = ET.fromstring(render_svg(script))
    top, bottom = band(root, "tls")
    assert "TLS TLSv1.3 TLS_AES_128_GCM_SHA256" in texts(root)
    again = groups(root, "reply")[2]
    assert again.get("data-code") == "220"
    assert top < arrow_y(arrow(root, "221")) < bottom < arrow_y(again)


def test_long_lines_are_cut_with_an_ellipsis_and_long_replies_folded() -> None:
    long_text = "Recipient address rejected: " + "very " * 40 + "long"
    ehlo = "".join(f"S: 250-EXT{n}\n" for n in range(11)) + "S: 250 LAST\n"
    script = parse_transcript(f"C: RCPT TO:<x@example.org>\nS: 550 {long_text}\nC: EHLO x\n{ehlo}")
    root = ET.fromstring(render_svg(script))
    bad = arrow(root, "550")
    shown = "".join(next(bad.iter(f"{SVG}text")).itertext())
    assert shown.endswith("…") and len(shown) < len(long_text)
    assert bad.get("data-truncated") == "true"
    assert f"550 {long_text}" in (bad.findtext(f"{SVG}title") or "")
    folded = ["".join(t.itertext()) for t in groups(root, "reply")[1].iter(f"{SVG}text")]
    assert len(folded) == 8
    assert folded[0] == "250-EXT0" and folded[-1] == "(+5 lines)"
    assert "250 LAST" in (groups(root, "reply")[1].findtext(f"{SVG}title") or "")


def test_wide_chinese_text_is_cut_by_its_width() -> None:
    script = parse_transcript("C: NOOP\nS: 250 " + "中" * 60 + "\n")
    shown = "".join(
        next(arrow(ET.fromstring(render_svg(script)), "250").iter(f"{SVG}text")).itertext()
    )
    assert shown.endswith("…")
    assert 30 < shown.count("中") < 45  # two cells each: about half of the ASCII limit


def test_an_empty_script_is_still_a_diagram() -> None:
    root = ET.fromstring(render_svg(parse_transcript("# nothing\n", "empty.smtp"), title="空"))
    assert "(nothing in this transcript)" in texts(root)
    assert "空" in texts(root)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(min_size=0, max_size=30).map(lambda s: "C: " + s),
            st.text(min_size=0, max_size=30).map(lambda s: "S: 250 " + s),
            st.sampled_from(["C: DATA", "S: 354 go", "C: .", "@tls", "@closed", "C: AUTH LOGIN"]),
            st.sampled_from(["C: BDAT 4", "C: BDAT 0 LAST", "C: BDAT 2 LAST", "C: ab"]),
            st.sampled_from(["S: 334 VXNlcm5hbWU6", "S: 235 ok", "@time 1ms", "S: * x"]),
            st.text(min_size=1, max_size=12).map(lambda s: f"@connect {s} 25"),
            st.text(max_size=20).map(lambda s: f"@closed {s}"),
            st.text(max_size=20).map(lambda s: f"@tls {s}"),
        ),
        max_size=20,
    )
)
def test_any_transcript_that_parses_draws_valid_xml(lines: list[str]) -> None:
    text = "\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines)
    try:
        script = parse_transcript(text)
    except TranscriptError:
        return
    ET.fromstring(render_svg(script))
    page = render_html(script)
    ET.fromstring(page[page.index("<svg") : page.index("</svg>") + 6])


def test_control_characters_and_lone_surrogates_are_drawn_as_escapes() -> None:
    script = parse_transcript(
        '@connect h\x01st 25\nC: NOOP {"\\x00\\x1b[31m\\udcff"} {{x}\nS: 250 \x01ok \u202e\n'
    )
    drawn = texts(ET.fromstring(render_svg(script)))
    assert "connect to h\\x01st:25" in drawn
    assert "h\\x01st:25" in drawn  # under "server"
    assert "NOOP \\0\\x1b[31m\\xff {x}" in drawn
    assert "250 \\x01ok \\u202e" in drawn


# --------------------------------------------------------------------------- HTML


class _StrictHTML(HTMLParser):
    """Fails on a closing tag that does not close the innermost open element."""

    VOID = frozenset({"meta", "link", "br", "hr", "img", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.seen: list[str] = []
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.data.append(data)


def test_html_is_a_well_formed_standalone_page_with_the_svg_and_a_legend() -> None:
    page = render_html(parse_transcript(SESSION, "lesson 3 <session>.smtp"), title="第三课")
    assert page.startswith("<!DOCTYPE html>")
    parser = _StrictHTML()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    assert {"html", "head", "meta", "title", "body", "svg", "ul"} <= set(parser.seen)
    assert '<meta charset="utf-8">' in page
    assert "lesson 3 &lt;session&gt;.smtp" in page
    text = "".join(parser.data)
    for word in ("2xx success", "5xx failed", "malformed reply", "TLS", "authenticated"):
        assert word in text
    assert "第三课" in text
    assert "Noto Sans CJK SC" in page and "WenQuanYi Micro Hei" in page
    assert "<script" not in page  # nothing runs: a page to share, not an application


# --------------------------------------------------------------------------- files and CLI


def test_write_diagram_chooses_the_format_by_suffix(tmp_path: Path) -> None:
    source = tmp_path / "session.smtp"
    source.write_text(SESSION, encoding="utf-8")
    write_diagram(source, tmp_path / "a.svg")
    write_diagram(source, tmp_path / "b.HTML")
    assert (tmp_path / "a.svg").read_text(encoding="utf-8").startswith("<svg")
    assert (tmp_path / "b.HTML").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.svg", "b.HTML", "session.smtp"]
    with pytest.raises(DiagramError, match=r"\.svg or \.html"):
        write_diagram(source, tmp_path / "c.png")
    with pytest.raises(DiagramError, match="cannot read"):
        write_diagram(tmp_path / "missing.smtp", tmp_path / "d.svg")
    (tmp_path / "latin1.smtp").write_bytes(b"C: caf\xe9\n")
    with pytest.raises(DiagramError, match="not UTF-8"):
        write_diagram(tmp_path / "latin1.smtp", tmp_path / "e.svg")
    with pytest.raises(DiagramWriteError, match="cannot write"):
        write_diagram(source, tmp_path / "no" / "such" / "dir.svg")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["diagram", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_writes_svg_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "session.smtp"
    source.write_text(SESSION, encoding="utf-8")
    for name in ("out.svg", "out.html"):
        status, out, err = run_cli(capsys, str(source), "-o", str(tmp_path / name))
        assert (status, err) == (0, "")
        assert name in out
        assert "{base64 password}" in (tmp_path / name).read_text(encoding="utf-8")


def test_cli_errors_are_one_line_with_exit_2_for_input_and_1_for_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "session.smtp"
    source.write_text(SESSION, encoding="utf-8")
    broken = tmp_path / "broken.smtp"
    broken.write_text("C: EHLO x\n@bogus\n", encoding="utf-8")
    cases = [
        ((str(tmp_path / "missing.smtp"), "-o", str(tmp_path / "x.svg")), 2, "cannot read"),
        ((str(broken), "-o", str(tmp_path / "x.svg")), 2, f"{broken}:2: unknown directive"),
        ((str(source), "-o", str(tmp_path / "x.png")), 2, ".svg or .html"),
        ((str(source), "-o", str(tmp_path / "nodir" / "x.svg")), 1, "cannot write"),
    ]
    for argv, expected, words in cases:
        status, out, err = run_cli(capsys, *argv)
        assert status == expected, argv
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("smtp-tutor diagram: "), err
        assert words in err
    directory = tmp_path / "taken.svg"
    directory.mkdir()
    status, _out, err = run_cli(capsys, str(source), "-o", str(directory))
    assert status == 1 and err.count("\n") == 1
    assert not list(tmp_path.glob(".taken.svg.*"))  # no temporary file left behind


def test_the_installed_command_draws_without_a_traceback(tmp_path: Path) -> None:
    source = tmp_path / "session.smtp"
    source.write_text(SESSION, encoding="utf-8")
    command = [sys.executable, "-m", "smtp_tutor", "diagram", str(source), "-o"]
    done = subprocess.run(
        [*command, str(tmp_path / "d.svg")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "d.svg").stat().st_size > 5000
    done = subprocess.run(
        [*command, str(tmp_path / "d.gif")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


# --------------------------------------------------------------------------- a real renderer


def _renderer() -> object:
    """cairosvg (pip, in the test extras; needs the system's libcairo2), or skip/fail."""
    try:
        import cairosvg
        from PIL import Image  # noqa: F401  (a dependency of cairosvg)
    except (ImportError, OSError) as exc:
        problem = (
            f"cairosvg cannot run ({exc.__class__.__name__}: {exc}); "
            "pip install cairosvg and apt-get install libcairo2 to draw diagrams to PNG"
        )
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{problem} (CI is set: failing instead of skipping)", pytrace=False)
        pytest.skip(problem)
    return cairosvg


def _rgb(colour: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})", colour)
    assert match is not None
    return (int(match.group(1), 16), int(match.group(2), 16), int(match.group(3), 16))


def test_a_real_renderer_draws_the_diagram(tmp_path: Path) -> None:
    cairosvg = _renderer()
    from PIL import Image

    svg = render_svg(parse_transcript(SESSION, "session.smtp"))
    png = cairosvg.svg2png(bytestring=svg.encode("utf-8"))  # type: ignore[attr-defined]
    (tmp_path / "session.png").write_bytes(png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 20_000
    image = Image.open(io.BytesIO(png)).convert("RGB")
    root = ET.fromstring(svg)
    assert image.size == (int(root.get("width", "0")), int(root.get("height", "0")))
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None
    counts = {rgb: count for count, rgb in colours}
    assert len(counts) > 50  # text is anti-aliased: many shades, not a blank page
    # the 5xx arrowhead, the 2xx arrowheads and both bands are painted in their colours
    bands = {r.get("class"): r.get("fill", "") for r in root.iter(f"{SVG}rect")}
    for colour, at_least in (
        (COLOURS["5xx"], 20),
        (COLOURS["2xx"], 100),
        (bands["band tls"], 10_000),
        (bands["band auth"], 10_000),
    ):
        assert counts.get(_rgb(colour), 0) >= at_least, colour
