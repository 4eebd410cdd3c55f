"""Warnings about a POP3 line *before* it goes out: the mistakes a server would punish.

As for SMTP, the checker never blocks anything, it predicts. Its sequence rules are the
dialogue's own table (`VALID_IN`) seen through `projected_state`, so a pipelined line is
checked as if the lines before it succeed, and the checker cannot disagree with the state
machine. Each finding is an id with parameters; the words live in `data/pop3_checker.toml`
in English and Chinese, and `Finding.text(lang)` says them.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import itertools
from typing import ClassVar

from smtp_tutor.core import checker
from smtp_tutor.core.catalogue import message
from smtp_tutor.core.command_line import KNOWN_VERBS as SMTP_VERBS
from smtp_tutor.core.command_line import wire_bytes
from smtp_tutor.core.pop3.command_line import (
    KNOWN_COMMANDS,
    NO_ARGUMENT,
    NUMBER_ARGUMENTS,
    Pop3Command,
    parse_command,
    parse_number,
)
from smtp_tutor.core.pop3.dialogue import VALID_IN, Dialogue, State, ends_group

#: RFC 2449 §4: a command is at most 255 octets, CRLF included.
COMMAND_LIMIT = 255

#: The CAPA capability (RFC 2449 §6, RFC 2595 §4, RFC 6856) each command depends on.
NEEDS_CAPABILITY: dict[str, str] = {
    "USER": "USER",
    "AUTH": "SASL",
    "STLS": "STLS",
    "TOP": "TOP",
    "UIDL": "UIDL",
    "UTF8": "UTF8",
    "LANG": "LANG",
}

#: A way to write each command that takes arguments, for the findings' examples.
EXAMPLES: dict[str, str] = {
    "USER": "USER student",
    "PASS": "PASS secret",
    "APOP": "APOP student c4c9334bac560ecc979e58001b3e22fb",
    "AUTH": "AUTH PLAIN",
    "RETR": "RETR 1",
    "DELE": "DELE 1",
    "LIST": "LIST 1",
    "UIDL": "UIDL 1",
    "TOP": "TOP 1 10",
}


class Finding(checker.Finding):
    """One predicted problem: an id from `pop3_checker.toml`, a severity and parameters.

    The SMTP record's fields, equality and frozenness, inherited as they are (a record is
    not re-made by a subclass); only the catalogue differs."""

    catalogue: ClassVar[str] = "pop3_checker"

    def text(self, lang: str | None = "en") -> str:
        return message(self.catalogue, self.id, lang, **self.params)


def check(line: str, dialogue: Dialogue) -> list[Finding]:
    """Everything worth saying about `line` before it is sent in the current state."""
    if "\r" in line or "\n" in line:
        return [Finding("control_characters", "error")]
    if dialogue.state is State.CLOSED:
        return [Finding("closed", "error")]
    if dialogue.state is State.UPDATE:
        return [Finding("in_update", "error")]
    if dialogue.awaiting_auth_response:
        return _check_auth_response(line)
    findings: list[Finding] = []
    length = len(wire_bytes(line))
    if length > COMMAND_LIMIT:
        params = {"length": str(length), "limit": str(COMMAND_LIMIT)}
        findings.append(Finding("command_too_long", "error", params))
    command = parse_command(line)
    if not command.keyword:
        return [*findings, Finding("empty_line", "error")]
    findings += _check_timing(command, dialogue)
    if not command.known:
        return findings + _unknown(command, dialogue)
    findings += _check_arguments(command, dialogue)
    findings += _check_sequence(command, dialogue)
    findings += _check_capabilities(command, dialogue)
    return findings


def _check_timing(command: Pop3Command, dialogue: Dialogue) -> list[Finding]:
    if not dialogue.greeted:
        return [Finding("before_greeting", "warning")]
    if dialogue.service_refused and command.keyword != "QUIT":
        return [Finding("service_refused", "warning")]
    in_flight = dialogue.in_flight
    if not in_flight:
        return []
    waiting = next((sent.verb for sent in in_flight if ends_group(sent.verb)), None)
    if waiting is not None:
        return [Finding("wait_for_answer", "warning", {"verb": waiting})]
    caps = dialogue.capabilities
    if caps is None or not caps.has("PIPELINING"):
        return [Finding("not_pipelining", "warning", {"count": str(len(in_flight))})]
    return []


def _unknown(command: Pop3Command, dialogue: Dialogue) -> list[Finding]:
    verb = command.keyword
    if verb in SMTP_VERBS:
        return [Finding("smtp_command", "error", {"verb": verb})]
    close = difflib.get_close_matches(verb, KNOWN_COMMANDS, n=3, cutoff=0.6)
    if close:  # of the close ones, one valid now, then the longest shared start: RETT → RETR
        hint = max(close, key=lambda c: (dialogue.allowed(c), _shared_start(c, verb)))
        return [Finding("unknown_command_suggest", "error", {"verb": verb, "hint": hint})]
    return [Finding("unknown_command", "error", {"verb": verb})]


def _shared_start(a: str, b: str) -> int:
    """How many first letters two words share."""
    same = itertools.takewhile(lambda pair: pair[0] == pair[1], zip(a, b, strict=False))
    return sum(1 for _ in same)


def _check_arguments(command: Pop3Command, dialogue: Dialogue) -> list[Finding]:
    verb, args = command.keyword, command.args
    example = {"verb": verb, "example": EXAMPLES.get(verb, verb)}
    if verb in NO_ARGUMENT:
        return [Finding("no_argument_expected", "error", {"verb": verb})] if args else []
    if verb in ("USER", "PASS") and not command.argument.strip():
        return [Finding("argument_required", "error", example)]
    if verb == "APOP":
        return _check_apop(args, example)
    if verb == "AUTH":
        if not args:
            return [Finding("auth_lists", "info")]
        return [Finding("too_many_arguments", "error", example)] if len(args) > 2 else []
    if verb in NUMBER_ARGUMENTS:
        return _check_message_numbers(command, dialogue, example)
    return []


def _check_apop(args: tuple[str, ...], example: dict[str, str]) -> list[Finding]:
    if len(args) != 2:
        return [Finding("apop_arguments", "error", example)]
    digest = args[1]
    if len(digest) != 32 or any(c not in "0123456789abcdef" for c in digest):
        return [Finding("apop_digest_format", "warning", {"digest_length": str(len(digest))})]
    return []


def _check_message_numbers(
    command: Pop3Command, dialogue: Dialogue, example: dict[str, str]
) -> list[Finding]:
    verb, args = command.keyword, command.args
    fewest, most = NUMBER_ARGUMENTS[verb]
    if len(args) < fewest:
        rule = "top_arguments" if verb == "TOP" else "message_number_required"
        return [Finding(rule, "error", example)]
    if len(args) > most:
        return [Finding("too_many_arguments", "error", example)]
    findings: list[Finding] = []
    if verb == "TOP" and parse_number(args[1]) is None:
        findings.append(Finding("bad_line_count", "error", {"value": args[1]}))
    if not args:
        return findings
    number = parse_number(args[0])
    params = {"verb": verb, "value": args[0]}
    if number is None:
        return [Finding("bad_message_number", "error", params), *findings]
    if number == 0:
        return [Finding("message_number_zero", "error", params), *findings]
    params["number"] = str(number)
    if number in _projected_deleted(dialogue):
        rule = "already_marked" if verb == "DELE" else "deleted_message"
        findings.insert(0, Finding(rule, "error", params))
    elif dialogue.last_number is not None and number > dialogue.last_number:
        params["count"] = str(dialogue.last_number)
        findings.insert(0, Finding("no_such_message", "warning", params))
    return findings


def _projected_deleted(dialogue: Dialogue) -> set[int]:
    """Messages marked once every line in flight succeeds (a pipelined DELE counts)."""
    deleted = set(dialogue.deleted)
    for sent in dialogue.in_flight:
        args = sent.command.args if sent.command else ()
        if sent.verb == "DELE" and args and (number := parse_number(args[0])):
            deleted.add(number)
        elif sent.verb == "RSET":
            deleted.clear()
    return deleted


def _check_sequence(command: Pop3Command, dialogue: Dialogue) -> list[Finding]:
    verb = command.keyword
    state = dialogue.projected_state
    if dialogue.allowed(verb):
        if verb == "PASS" and dialogue.projected_user is None:
            return [Finding("pass_before_user", "error")]
        if verb == "USER" and dialogue.projected_user is not None:
            return [Finding("user_again", "info", {"user": dialogue.projected_user})]
        if verb == "STLS" and dialogue.tls_active:
            return [Finding("stls_twice", "error")]
        if verb in ("PASS", "AUTH") and not dialogue.tls_active:
            mechanism = command.args[0].upper() if verb == "AUTH" and command.args else ""
            if verb == "PASS" or mechanism in ("PLAIN", "LOGIN"):
                return [Finding("password_in_clear", "info", {"verb": verb})]
        return []
    if state is State.AUTHORIZATION and State.TRANSACTION in VALID_IN[verb]:
        return [Finding("needs_login", "error", {"verb": verb})]
    if state is State.TRANSACTION and verb == "STLS":
        return [Finding("stls_after_login", "error")]
    if state is State.TRANSACTION and verb in ("USER", "PASS", "APOP", "AUTH"):
        return [Finding("already_logged_in", "error", {"verb": verb})]
    return [Finding("out_of_state", "error", {"verb": verb, "state": state.value})]


def _check_capabilities(command: Pop3Command, dialogue: Dialogue) -> list[Finding]:
    verb = command.keyword
    if not dialogue.allowed(verb):
        return []
    if verb == "APOP" and dialogue.greeted and dialogue.apop_timestamp is None:
        return [Finding("apop_not_offered", "warning")]
    caps = dialogue.capabilities
    needed = NEEDS_CAPABILITY.get(verb)
    if caps is None or needed is None or (verb == "AUTH" and not command.args):
        return []
    if verb == "STLS" and dialogue.tls_active:
        return []
    if not caps.has(needed):
        return [Finding("not_advertised", "warning", {"verb": verb, "capability": needed})]
    if verb == "AUTH":
        mechanism = command.args[0].upper()
        if mechanism not in caps.sasl_mechanisms:
            params = {"mechanism": mechanism, "advertised": " ".join(caps.sasl_mechanisms)}
            return [Finding("mechanism_not_advertised", "warning", params)]
    return []


def _check_auth_response(line: str) -> list[Finding]:
    if line.strip() == "*":
        return [Finding("auth_cancel", "info")]
    try:
        base64.b64decode(line.strip(), validate=True)
    except (binascii.Error, ValueError):
        return [Finding("auth_response_not_base64", "warning")]
    return []
