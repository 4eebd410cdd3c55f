"""Warnings about a line *before* it goes out: the mistakes a server would punish.

The checker never blocks anything — raw stays raw — it only predicts. Its sequence rules are
the dialogue's own tables, so the checker cannot disagree with the state machine; what a verb
takes as argument, the EHLO keyword it needs and its MAIL/RCPT parameters come from the same
verb table (`data/verbs.toml`). Each finding is an id with parameters; the words live in
`data/checker.toml`, in every language.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from smtp_tutor.core.command_line import (
    KNOWN_VERBS,
    Command,
    PathArgument,
    is_valid_address,
    parse_command,
    parse_path_argument,
)
from smtp_tutor.core.dialogue import ALLOWED_PHASES, Capabilities, Dialogue, Phase
from smtp_tutor.core.records import field, record
from smtp_tutor.core.verbs import Verb, verb

Severity = Literal["error", "warning", "info"]

#: RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
COMMAND_LINE_LIMIT = 512
#: RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including CRLF.
TEXT_LINE_LIMIT = 1000


@record(frozen=True)
class Finding:
    """One predicted problem with a line: an id from `checker.toml` and its parameters."""

    id: str
    severity: Severity
    params: dict[str, str] = field(default_factory=dict)


def check(line: str, dialogue: Dialogue) -> list[Finding]:
    """Everything worth saying about `line` before it is sent in the current state."""
    findings: list[Finding] = []
    if "\r" in line or "\n" in line:
        findings.append(Finding("control_characters", "error"))
    if dialogue.phase is Phase.CLOSED:
        return [*findings, Finding("closed", "error")]
    if dialogue.sending_data:
        return findings + _check_data_line(line)
    if dialogue.awaiting_auth_response:
        return findings + _check_auth_response(line, dialogue)
    length = len(line.encode("utf-8")) + 2
    if length > COMMAND_LINE_LIMIT:
        findings.append(
            Finding("command_too_long", "error", {"length": str(length), "limit": "512"})
        )
    command = parse_command(line)
    if not command.verb:
        return [*findings, Finding("empty_line", "error")]
    if dialogue.phase is Phase.AWAITING_GREETING:
        findings.append(Finding("before_greeting", "warning"))
    elif dialogue.service_refused and command.verb != "QUIT":
        findings.append(Finding("service_refused", "warning"))
    if dialogue.in_flight and not _pipelining_ok(dialogue):
        findings.append(
            Finding("not_pipelining", "warning", {"count": str(len(dialogue.in_flight))})
        )
    row = verb(command.verb)
    if row is None:
        return findings + _unknown_verb(command)
    findings += _check_arguments(command, row, dialogue)
    if dialogue.phase is not Phase.AWAITING_GREETING:
        findings += _check_sequence(command, dialogue)
    findings += _check_extensions(command, row, dialogue)
    return findings


def _pipelining_ok(dialogue: Dialogue) -> bool:
    caps = dialogue.capabilities
    return caps is not None and caps.has("PIPELINING")


def _unknown_verb(command: Command) -> list[Finding]:
    import difflib  # ~2 ms to import: when a verb is mistyped, not on every start

    close = difflib.get_close_matches(command.verb, KNOWN_VERBS, n=1, cutoff=0.6)
    if close:
        return [Finding("unknown_verb_suggest", "error", {"verb": command.verb, "hint": close[0]})]
    return [Finding("unknown_verb", "error", {"verb": command.verb})]


def _check_arguments(command: Command, row: Verb, dialogue: Dialogue) -> list[Finding]:
    verb, argument = command.verb, command.argument
    if row.argument == "none" and argument:
        return [Finding("no_argument_expected", "error", {"verb": verb})]
    if row.argument == "required" and not argument:
        return [Finding(row.missing_argument, "error", {"verb": verb})]
    if verb in ("EHLO", "HELO"):
        server = _server_name(dialogue)
        if server and argument.split()[0].lower() == server.lower():
            return [Finding("hello_server_name", "warning", {"name": argument.split()[0]})]
        return []
    path = parse_path_argument(command)
    return _check_path(command, row, path) if path is not None else []


def _server_name(dialogue: Dialogue) -> str:
    greeting = dialogue.greeting
    if greeting is None or not greeting.lines or not greeting.lines[0].split():
        return ""
    return greeting.lines[0].split()[0]


def _check_path(command: Command, row: Verb, path: PathArgument) -> list[Finding]:
    expected = row.path_keyword
    example = f"{command.verb} {expected}:<{path.path or 'user@example.com'}>"
    params = {"verb": command.verb, "keyword": expected, "example": example}
    if path.keyword.upper() != expected:
        return [Finding("path_keyword_missing", "error", params)]
    if not path.has_colon:
        return [Finding("path_colon_missing", "error", params)]
    findings: list[Finding] = []
    if path.space_before_colon or path.space_after_colon:
        findings.append(Finding("path_space", "warning", params))
    if path.unbalanced:
        findings.append(Finding("path_unbalanced", "error", params))
    elif not path.bracketed:
        findings.append(Finding("path_no_brackets", "error", params))
    if command.verb == "RCPT" and not path.path:
        findings.append(Finding("rcpt_null_path", "error", params))
    elif path.path and not is_valid_address(path.path):
        findings.append(Finding("path_invalid_address", "warning", {**params, "path": path.path}))
    return findings


def _check_sequence(command: Command, dialogue: Dialogue) -> list[Finding]:
    verb = command.verb
    if dialogue.allowed(verb):
        if verb == "AUTH" and dialogue.authenticated:
            return [Finding("auth_twice", "error")]
        if verb == "STARTTLS" and dialogue.tls_active:
            return [Finding("starttls_twice", "error")]
        return []
    phase = dialogue.projected_phase
    if phase is Phase.GREETED and Phase.READY in ALLOWED_PHASES.get(verb, frozenset()):
        return [Finding("needs_hello", "error", {"verb": verb})]
    if verb == "RCPT":
        return [Finding("rcpt_before_mail", "error")]
    if verb in ("DATA", "BDAT"):
        rule = "data_before_mail" if phase is Phase.READY else "data_before_rcpt"
        return [Finding(rule, "error", {"verb": verb})]
    if verb == "MAIL" and phase in (Phase.MAIL, Phase.RCPT):
        return [Finding("nested_mail", "error")]
    if verb in ("AUTH", "STARTTLS") and phase in (Phase.MAIL, Phase.RCPT):
        return [Finding("in_transaction", "error", {"verb": verb})]
    return [Finding("out_of_sequence", "error", {"verb": verb, "phase": dialogue.phase_label})]


def _check_extensions(command: Command, row: Verb, dialogue: Dialogue) -> list[Finding]:
    caps = dialogue.capabilities
    if caps is None or dialogue.phase in (Phase.AWAITING_GREETING, Phase.GREETED):
        return []
    verb, keyword = command.verb, row.extension
    if keyword and dialogue.said_hello == "HELO":
        return [Finding("extension_after_helo", "error", {"verb": verb})]
    if verb == "AUTH":
        return _check_auth(command, dialogue, caps)
    if verb == "STARTTLS" and dialogue.tls_active:
        return []  # after TLS the server stops advertising it: `starttls_twice` says why
    if keyword and not caps.has(keyword):
        return [Finding("not_advertised", "warning", {"keyword": keyword})]
    if row.argument == "path":
        return _check_parameters(command, row, caps, _transaction_smtputf8(dialogue))
    return []


def _check_auth(command: Command, dialogue: Dialogue, caps: Capabilities) -> list[Finding]:
    if dialogue.authenticated or not command.argument:
        return []
    findings: list[Finding] = []
    mechanism = command.argument.split()[0].upper()
    if not caps.has("AUTH"):
        rule = "auth_hidden_before_tls" if caps.has("STARTTLS") else "not_advertised"
        findings.append(Finding(rule, "warning", {"keyword": "AUTH"}))
    elif mechanism not in caps.auth_mechanisms:
        advertised = " ".join(caps.auth_mechanisms)
        params = {"mechanism": mechanism, "advertised": advertised}
        findings.append(Finding("mechanism_not_advertised", "warning", params))
    if not dialogue.tls_active and mechanism in ("PLAIN", "LOGIN", "XOAUTH2"):
        findings.append(Finding("auth_in_clear", "info", {"mechanism": mechanism}))
    return findings


def _transaction_smtputf8(dialogue: Dialogue) -> bool:
    """Whether the open (or pipelined) MAIL FROM asked for SMTPUTF8, which covers every RCPT."""
    if "SMTPUTF8" in dialogue.mail_parameters:
        return True
    for sent in dialogue.in_flight:
        path = parse_path_argument(sent.command) if sent.command is not None else None
        if path is not None and sent.verb == "MAIL" and "SMTPUTF8" in path.parameters:
            return True
    return False


def _check_parameters(
    command: Command, row: Verb, caps: Capabilities, transaction_smtputf8: bool = False
) -> list[Finding]:
    path = parse_path_argument(command)
    if path is None:
        return []
    findings: list[Finding] = []
    for name, value in path.parameters.items():
        parameter = row.parameters.get(name)
        if parameter is None:
            findings.append(Finding("unknown_parameter", "warning", {"parameter": name}))
        elif not caps.has(parameter.extension):
            params = {"parameter": name, "keyword": parameter.extension}
            findings.append(Finding("parameter_not_advertised", "warning", params))
        elif name == "SIZE":
            findings += _check_size(value, caps)
        elif parameter.values and value and value.upper() not in parameter.values:
            findings.append(Finding(parameter.bad_value, "error", {"value": value}))
    utf8_asked = "SMTPUTF8" in path.parameters or (command.verb == "RCPT" and transaction_smtputf8)
    if not path.path.isascii() and not utf8_asked:
        rule = "smtputf8_parameter" if caps.has("SMTPUTF8") else "smtputf8_unavailable"
        findings.append(Finding(rule, "warning", {"path": path.path}))
    return findings


def _check_size(value: str | None, caps: Capabilities) -> list[Finding]:
    if not value or not value.isdigit():
        return [Finding("bad_size_value", "error", {"value": value or ""})]
    limit = caps.size_limit
    if limit is not None and int(value) > limit:
        return [Finding("size_over_limit", "warning", {"size": value, "limit": str(limit)})]
    return []


def _check_data_line(line: str) -> list[Finding]:
    length = len(line.encode("utf-8")) + 2
    if length > TEXT_LINE_LIMIT:
        return [Finding("data_line_too_long", "error", {"length": str(length)})]
    return []


def _check_auth_response(line: str, dialogue: Dialogue) -> list[Finding]:
    if line == "*":
        return [Finding("auth_cancel", "info")]
    try:
        base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        return [Finding("auth_response_not_base64", "warning")]
    return []
