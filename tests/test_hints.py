"""Next-step hints: the right key for each state, and words for every key in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smtp_tutor.core.catalogue import load_catalogue
from smtp_tutor.core.dialogue import Dialogue
from smtp_tutor.core.hints import next_step
from smtp_tutor.core.replies import make_reply

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`


def drive(*steps: tuple[str, int, tuple[str, ...]]) -> Dialogue:
    d = Dialogue()
    d.receive(make_reply(220, "mail.example.com ESMTP"))
    for line, code, lines in steps:
        d.send(line)
        d.receive(make_reply(code, *(lines or ("ok",))))
    return d


EHLO = ("EHLO me", 250, ("mail.example.com", "STARTTLS", "AUTH PLAIN"))
PLAIN_EHLO = ("EHLO me", 250, ("x",))
MAIL = ("MAIL FROM:<a@b.c>", 250, ())
RCPT = ("RCPT TO:<d@e.f>", 250, ())


@pytest.mark.parametrize(
    ("dialogue", "expected"),
    [
        (Dialogue(), "awaiting_greeting"),
        (drive(), "ehlo"),
        (drive(EHLO), "starttls"),
        (drive(("EHLO me", 250, ("x", "AUTH PLAIN"))), "auth"),
        (drive(("EHLO me", 250, ("x",))), "mail"),
        (drive(("HELO me", 250, ("x",))), "mail_after_helo"),
        (drive(PLAIN_EHLO, MAIL), "rcpt"),
        (drive(PLAIN_EHLO, MAIL, RCPT), "rcpt_or_data"),
        (drive(("QUIT", 221, ("bye",))), "closed"),
    ],
)  # fmt: skip
def test_next_step(dialogue: Dialogue, expected: str) -> None:
    assert next_step(dialogue) == expected


def test_tls_and_auth_sequence() -> None:
    d = drive(EHLO, ("STARTTLS", 220, ("go",)))
    assert next_step(d) == "tls_pending"
    d.tls_established("TLSv1.3", "x")
    assert next_step(d) == "ehlo_again"
    d.send("EHLO me")
    d.receive(make_reply(250, "x", "AUTH PLAIN LOGIN"))
    assert next_step(d) == "auth"
    d.send("AUTH LOGIN")
    d.receive(make_reply(334, "VXNlcm5hbWU6"))
    assert next_step(d) == "auth_answer"
    assert next_step(d, manual=True) == "auth_manual"


def test_data_hints() -> None:
    d = drive(("EHLO me", 250, ("x",)), ("MAIL FROM:<a@b.c>", 250, ()),
              ("RCPT TO:<d@e.f>", 250, ()), ("DATA", 354, ("go",)))  # fmt: skip
    assert next_step(d) == "data"
    d.send(".")
    assert next_step(d) == "data_end_reply"


def test_service_refused_and_waiting() -> None:
    d = Dialogue()
    d.receive(make_reply(554, "go away"))
    assert next_step(d) == "service_refused"
    d = drive()
    d.send("NOOP")
    assert next_step(d) == "waiting"


def test_every_hint_has_short_and_long_in_both_languages() -> None:
    catalogue = load_catalogue("hints")
    source = Path(next_step.__code__.co_filename).read_text(encoding="utf-8")
    used = set(re.findall(r'"([a-z_]+)"', source)) - {"HELO"}
    assert used <= set(catalogue), used - set(catalogue)
    for key, entry in catalogue.items():
        for part in ("short", "long"):
            assert entry[part]["en"] and re.search(r"[\u4e00-\u9fff]", entry[part]["zh"]), key
