"""`smtp-tutor diagram` of a POP3 transcript: the states drawn, +OK green, -ERR red, no secret."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from smtp_tutor.core.pop3.transcript import parse_pop3_transcript
from smtp_tutor.diagram.sequence import COLOURS, render_html, render_svg, write_diagram

pytestmark = pytest.mark.pure

SESSION = """# protocol: pop3
@connect 127.0.0.1 110
S: +OK ready
C: CAPA
S: +OK
S: USER
S: STLS
S: .
C: STLS
S: +OK begin TLS
@tls TLSv1.3 TLS_AES_256_GCM_SHA384
C: USER student
S: +OK
C: PASS hunter2-in-clear
S: +OK logged in
C: RETR 1
S: +OK 40 octets
S: Subject: =?UTF-8?B?5L2g5aW9?=
S:
S: ..dot
S: .
C: DELE 9
S: -ERR no such message
C: QUIT
S: +OK bye
@closed done
"""


def test_the_states_tls_and_login_are_drawn_and_the_password_is_not() -> None:
    svg = render_svg(parse_pop3_transcript(SESSION, "s.pop3"))
    ET.fromstring(svg)  # well-formed XML
    assert "POP3 sequence diagram" in svg and "POP3 dialogue: s.pop3" in svg
    assert "AUTHORIZATION" in svg
    assert "TRANSACTION: logged in as student" in svg
    assert "UPDATE: the server removes what DELE marked" in svg
    assert 'class="band tls"' in svg and 'class="band auth"' in svg
    assert "hunter2" not in svg and "PASS ********" in svg
    assert "message: 3 lines, Subject: 你好" in svg  # a RETR'd message summarised
    assert f'stroke="{COLOURS["5xx"]}"' in svg  # -ERR in red
    assert f'stroke="{COLOURS["2xx"]}"' in svg  # +OK in green


def test_a_placeholder_is_drawn_as_written_and_html_works(tmp_path: Path) -> None:
    text = SESSION.replace("C: PASS hunter2-in-clear", "C: PASS {password}")
    page = render_html(parse_pop3_transcript(text, "s.pop3"))
    assert "{password}" in page and "hunter2" not in page
    source = tmp_path / "s.pop3"
    source.write_text(text, "utf-8")
    write_diagram(source, tmp_path / "s.svg")
    assert "TRANSACTION" in (tmp_path / "s.svg").read_text("utf-8")
