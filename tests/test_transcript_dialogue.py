"""A transcript followed by a real `Dialogue`: what replay and the diagram read instead of
working SMTP state out themselves (issue 13, step 1)."""

from __future__ import annotations

import pytest

from smtp_tutor.core.dialogue import AUTH_RESPONSE, DATA_LINE, END_OF_DATA, GREETING, Phase
from smtp_tutor.core.transcript import Expect, Send, parse_transcript
from smtp_tutor.core.transcript_dialogue import TranscriptDialogue, stand_in_code
from smtp_tutor.diagram.sequence import render_svg
from smtp_tutor.replay.runner import _In, _plan


def _answers(text: str) -> list[str | None]:
    """The verb each S: line answers, as the dialogue pairs them."""
    follower = TranscriptDialogue()
    found: list[str | None] = []
    for item, event in follower.walk(parse_transcript(text)):
        if isinstance(item, Expect):
            answered = event.answered  # type: ignore[union-attr]
            found.append(answered.verb if answered is not None else None)
    return found


def _expect(code: str) -> Expect:
    (item,) = parse_transcript(f"S: {code}\n").items
    assert isinstance(item, Expect)
    return item


@pytest.mark.parametrize(
    ("code", "answering", "stand_in"),
    [
        ("250", "MAIL", 250),
        ("334", "AUTH", 334),
        ("3xx", "DATA", 354),
        ("3xx", "AUTH", 334),
        ("3xx", AUTH_RESPONSE, 334),
        ("2xx", "AUTH", 235),
        ("2xx", "QUIT", 221),
        ("2xx", GREETING, 220),
        ("3xx", "RCPT", 350),
        ("5xx", "MAIL", 550),
        ("4xx", None, 450),
        ("*", "AUTH", 334),
        ("*", AUTH_RESPONSE, 334),
        ("*", "DATA", 250),
        ("*", None, 250),
    ],
)
def test_stand_in_codes(code: str, answering: str | None, stand_in: int) -> None:
    assert stand_in_code(_expect(code), answering) == stand_in


def test_pipelined_replies_answer_the_oldest_command() -> None:
    text = (
        "S: 220 hi\nC: EHLO a\nS: 250 PIPELINING\n"
        "C: MAIL FROM:<a@b>\nC: RCPT TO:<c@d>\nC: DATA\nS: 250\nS: 250\nS: 354\n"
        "C: Subject: x\nC:\nC: .\nS: 250\nC: QUIT\nS: 221\n"
    )
    assert _answers(text) == [GREETING, "EHLO", "MAIL", "RCPT", "DATA", END_OF_DATA, "QUIT"]
    answers = [step.answers for step in _plan(parse_transcript(text)) if isinstance(step, _In)]
    assert answers == ["GREETING", "EHLO", "MAIL", "RCPT", "DATA", ".", "QUIT"]


def test_a_script_without_its_greeting_pairs_the_first_reply_with_the_first_command() -> None:
    assert _answers("C: EHLO a\nS: 250\nC: QUIT\nS: 221\n") == ["EHLO", "QUIT"]


def test_auth_answers_are_told_by_the_dialogue() -> None:
    text = (
        "S: 220\nC: EHLO a\nS: 250\nC: AUTH LOGIN\nS: 3xx\nC: YWxpY2U=\nS: *\n"
        "C: c2VjcmV0\nS: 2xx\nC: MAIL FROM:<a@b>\nS: 250\n"
    )
    follower = TranscriptDialogue()
    sent = [e.verb for i, e in follower.walk(parse_transcript(text)) if isinstance(i, Send)]
    assert sent == ["EHLO", "AUTH", AUTH_RESPONSE, AUTH_RESPONSE, "MAIL"]
    assert follower.dialogue.authenticated
    assert follower.dialogue.authenticated_user == "alice"
    answers = [step.answers for step in _plan(parse_transcript(text)) if isinstance(step, _In)]
    assert answers == ["GREETING", "EHLO", "AUTH", "AUTH", "AUTH", "MAIL"]


def test_message_text_and_the_final_dot() -> None:
    follower = TranscriptDialogue()
    text = "S: 220\nC: HELO a\nS: 250\nC: MAIL FROM:<>\nS: 250\nC: RCPT TO:<b>\nS: 250\n"
    text += "C: DATA\nS: 354\nC: QUIT\nC: ..\nC: .\nS: 250\n"
    sent = [e.verb for i, e in follower.walk(parse_transcript(text)) if isinstance(i, Send)]
    assert sent[-3:] == [DATA_LINE, DATA_LINE, END_OF_DATA]
    assert follower.dialogue.phase is Phase.READY


def test_directives_start_and_end_connections() -> None:
    text = (
        "@connect mx.example 465 tls\n@tls TLSv1.3 TLS_AES_128_GCM_SHA256\nS: 220\n"
        "C: EHLO a\nS: 250\n@closed\nS: 220 again\nC: STARTTLS\nS: 220\n@tls\nC: EHLO a\nS: 250\n"
    )
    assert _answers(text) == [GREETING, "EHLO", GREETING, "STARTTLS", "EHLO"]
    follower = TranscriptDialogue()
    for _ in follower.walk(parse_transcript(text)):
        pass
    assert follower.dialogue.tls_active
    assert follower.dialogue.phase is Phase.READY


def test_bdat_chunk_data_is_not_a_line_for_the_dialogue() -> None:
    text = "S: 220\nC: EHLO a\nS: 250\nC: MAIL FROM:<>\nS: 250\nC: RCPT TO:<b>\nS: 250\n"
    text += "C: BDAT 5 LAST\nC: abc\nS: 250\nC: QUIT\nS: 221\n"
    assert _answers(text)[-2:] == ["BDAT", "QUIT"]


def test_the_diagram_masks_what_the_dialogue_calls_an_auth_answer() -> None:
    # Pipelined: the 535 answers the first AUTH and the 334 the second, so the line after
    # the 334 is an answer (a secret in clear, masked) and the 235 authenticates.
    text = (
        "S: 220\nC: AUTH PLAIN AGFsaWNlAHNlY3JldA==\nC: AUTH LOGIN\nS: 535\nS: 334 UGFzc3dvcmQ6\n"
        "C: c2VjcmV0\nS: 235\n"
    )
    svg = render_svg(parse_transcript(text))
    assert "c2VjcmV0" not in svg
    assert "AGFsaWNlAHNlY3JldA" not in svg
    assert "authenticated" in svg
