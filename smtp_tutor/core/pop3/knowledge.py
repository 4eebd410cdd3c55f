"""What POP3 responses, commands, states, extended codes and CAPA lines mean, in two languages.

The words live in ``data/pop3.toml`` so a teacher can correct a sentence without reading
Python. Nothing here is a second machinery: the file is read with the catalogue loader of
`core.catalogue`, results reuse the SMTP knowledge base's `CodeInfo` and `KeywordInfo`, the
data is checked with its validators, SASL mechanisms are explained from its keyword data,
and which states accept a command comes from the dialogue's table, not from the TOML.

* ``command_info("RETR", "zh")``, ``state_info``, ``status_info``, ``code_info("SYS/TEMP")``
  and ``capability_info("SASL PLAIN LOGIN")`` look one thing up; they never raise.
* ``explain_pop3(text)`` finds what a pasted response, command, code or CAPA line is about;
  ``format_pop3_explanation`` renders it for the CLI. Nothing to explain raises ValueError
  with a one-line message in the asked language.
* ``validate_pop3()`` lists every gap in the data; the tests require it to be empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from smtp_tutor.core import knowledge as kb
from smtp_tutor.core.auth import parse_challenge
from smtp_tutor.core.catalogue import load_catalogue, message
from smtp_tutor.core.knowledge import CodeInfo, KeywordInfo, normalise_language
from smtp_tutor.core.pop3.command_line import KNOWN_COMMANDS
from smtp_tutor.core.pop3.dialogue import VALID_IN, State, apop_timestamp
from smtp_tutor.core.pop3.responses import Expect, ResponseParser, Status

CATALOGUE = "pop3"

#: The extended codes and capabilities the data must explain (RFC 2449, 2595, 3206, 6856).
REQUIRED_CODES = ("IN-USE", "LOGIN-DELAY", "SYS", "SYS/TEMP", "SYS/PERM", "AUTH")
REQUIRED_CAPABILITIES = (
    *("TOP", "USER", "SASL", "RESP-CODES", "LOGIN-DELAY", "PIPELINING", "EXPIRE", "UIDL"),
    *("IMPLEMENTATION", "STLS", "AUTH-RESP-CODE", "UTF8", "LANG"),
)

_STATUS_KEYS = {Status.OK: "OK", Status.ERR: "ERR", Status.CONTINUE: "CONTINUE"}
_PREFIX = re.compile(r"^\s*(?:[SC]:\s?)?")
_STATUS_LINE = re.compile(r"^(?:\+OK|-ERR)(?=\s|$)|^\+(?: |$)", re.IGNORECASE)
_CODE_WORD = re.compile(
    r"^\[?([\x21-\x2e\x30-\x5c\x5e-\x7e]+(?:/[\x21-\x2e\x30-\x5c\x5e-\x7e]+)*)\]?$"
)


@dataclass(frozen=True)
class CommandInfo:
    """One command explained: what it does, where it is valid, its poplib call."""

    name: str
    syntax: str
    summary: str
    err: str  # what a -ERR to it usually means
    rfc: str
    poplib: str  # "" when poplib has no method for it
    states: tuple[str, ...]


@dataclass(frozen=True)
class StateInfo:
    """One state explained, with the commands the dialogue's table accepts in it."""

    name: str
    title: str
    meaning: str
    rfc: str
    commands: tuple[str, ...]


@dataclass(frozen=True)
class Pop3Explanation:
    """What `explain_pop3` found; ``text`` is the server's words after status and code."""

    query: str
    status: CodeInfo | None = None
    code: CodeInfo | None = None
    command: CommandInfo | None = None
    capability: KeywordInfo | None = None
    state: StateInfo | None = None
    text: str = ""
    notes: tuple[str, ...] = ()


# --- Look-ups ----------------------------------------------------------------------------


def _data() -> dict[str, Any]:
    return load_catalogue(CATALOGUE)


def _table(name: str) -> dict[str, Any]:
    value = _data().get(name)
    return value if isinstance(value, dict) else {}


def say(key: str, lang: str | None = "en", **values: object) -> str:
    """One sentence from pop3.toml's [messages] (or a dotted key elsewhere), filled in."""
    return message(CATALOGUE, key if "." in key else f"messages.{key}", lang, **values)


def command_info(name: str, lang: str | None = "en") -> CommandInfo | None:
    key = name.strip().upper() if isinstance(name, str) else ""
    entry = _table("commands").get(key)
    if not isinstance(entry, dict):
        return None
    lang = normalise_language(lang)
    states = tuple(state.value for state in State if state in VALID_IN.get(key, ()))
    return CommandInfo(
        name=key,
        syntax=str(entry.get("syntax", key)),
        summary=kb._text(entry.get("summary"), lang),
        err=kb._text(entry.get("err"), lang),
        rfc=str(entry.get("rfc", "")),
        poplib=str(entry.get("poplib", "")),
        states=states,
    )


def state_info(name: str, lang: str | None = "en") -> StateInfo | None:
    key = name.strip().upper() if isinstance(name, str) else ""
    entry = _table("states").get(key)
    if not isinstance(entry, dict):
        return None
    lang = normalise_language(lang)
    commands = tuple(c for c in KNOWN_COMMANDS if key in {s.value for s in VALID_IN.get(c, ())})
    return StateInfo(
        key, kb._text(entry.get("title"), lang), kb._text(entry.get("meaning"), lang),
        str(entry.get("rfc", "")), commands,
    )  # fmt: skip


def status_info(status: Status, lang: str | None = "en") -> CodeInfo:
    entry = _table("status").get(_STATUS_KEYS[status], {})
    lang = normalise_language(lang)
    rfc = "RFC 5034 §4" if status is Status.CONTINUE else "RFC 1939 §3"
    return CodeInfo(
        code=status.value,
        title=kb._text(entry.get("title"), lang),
        meaning=kb._text(entry.get("meaning"), lang),
        next_step=kb._text(entry.get("next"), lang),
        rfc=rfc,
    )


def code_info(code: str, lang: str | None = "en") -> CodeInfo | None:
    """An extended response code (with or without brackets); unknown ones are said so."""
    match = _CODE_WORD.match(code.strip()) if isinstance(code, str) else None
    if match is None:
        return None
    lang = normalise_language(lang)
    key = match.group(1).upper()
    codes = _table("codes")
    levels = key.split("/")
    ancestors = ["/".join(levels[:i]) for i in range(1, len(levels))]
    parts = tuple(
        f"[{a}] = {kb._text(codes[a].get('title'), lang)}" for a in ancestors if a in codes
    )
    entry = codes.get(key)
    if isinstance(entry, dict):
        return CodeInfo(
            key, kb._text(entry.get("title"), lang), kb._text(entry.get("meaning"), lang),
            kb._text(entry.get("next"), lang), str(entry.get("rfc", "")), parts=parts,
        )  # fmt: skip
    parent = next((a for a in reversed(ancestors) if a in codes), None)
    if parent is not None:  # [SYS/OTHER]: what [SYS] says, and that it is more precise
        known = codes[parent]
        space = "" if lang == "zh" else " "
        meaning = say("code_child", lang, code=key, parent=parent)
        meaning += space + kb._text(known.get("meaning"), lang)
        return CodeInfo(
            key, say("code_unknown_title", lang, code=key), meaning,
            kb._text(known.get("next"), lang), str(known.get("rfc", "")), False, parts=parts,
        )  # fmt: skip
    return CodeInfo(
        key, say("code_unknown_title", lang, code=key), say("code_unknown_meaning", lang),
        "", "RFC 2449 §3", False,
    )  # fmt: skip


def capability_info(line: str, lang: str | None = "en") -> KeywordInfo | None:
    """One CAPA line such as ``SASL PLAIN LOGIN``; unknown names get ``known=False``."""
    words = line.split() if isinstance(line, str) else []
    if not words:
        return None
    lang = normalise_language(lang)
    name, args = words[0].upper(), tuple(words[1:])
    entry = _table("capabilities").get(name)
    notes: list[str] = []
    if not isinstance(entry, dict):
        detail = say("args", lang, args=" ".join(args)) if args else ""
        unknown = say("capability_unknown", lang), say("capability_unknown_rfc", lang)
        return KeywordInfo(name, *unknown, args=args, detail=detail, known=False)
    template = kb._text(entry.get("with_args"), lang)
    if args:
        values = {"args": " ".join(args), "first": args[0]}
        notes.append(template.format_map(values) if template else say("args", lang, **values))
    if name == "SASL":  # the SMTP knowledge base already explains every SASL mechanism
        smtp = kb.load_knowledge()
        for mechanism in args:
            known = smtp.mechanism(mechanism, lang)
            notes.append(f"  {mechanism.upper()}: {known.summary if known else '?'}")
    return KeywordInfo(
        name=name,
        summary=kb._text(entry.get("summary"), lang),
        rfc=str(entry.get("rfc", "")),
        params=kb._text(entry.get("params"), lang),
        args=args,
        detail="\n".join(notes),
    )


# --- explain_pop3() ----------------------------------------------------------------------


def explain_pop3(
    query: str, lang: str | None = "en", command: str | None = None
) -> Pop3Explanation:
    """What a pasted POP3 line is about: a response, a command, a code, a CAPA line, a state.

    ``command`` names the command a response answered, for what its -ERR usually means.
    Raises ValueError (one line, in `lang`) when there is nothing POP3 in the text.
    """
    lang = normalise_language(lang)
    lines = [line for line in (query or "").splitlines() if line.strip()]
    if not isinstance(query, str) or not lines:
        raise ValueError(say("empty", lang))
    line = _PREFIX.sub("", lines[0], count=1).strip()
    if _STATUS_LINE.match(line):
        return _explain_response(query, line, lang, command)
    if line.startswith("[") and (info := code_info(line.split()[0], lang)) is not None:
        return Pop3Explanation(query, code=info, text=line[len(line.split()[0]) :].strip())
    word = line.split()[0]
    name = word.split("(")[0].split(".")[-1].rstrip("_").upper()  # poplib.pass_( → PASS
    found = Pop3Explanation(
        query,
        code=code_info(word, lang) if name in _table("codes") or "/" in word else None,
        command=command_info(name, lang),
        capability=capability_info(line, lang) if name in _table("capabilities") else None,
        state=state_info(name, lang),
    )
    if found.code or found.command or found.capability or found.state:
        return found
    if re.fullmatch(r"[2-5]\d\d", word):
        raise ValueError(say("smtp_reply", lang, code=word))
    raise ValueError(say("nothing_found", lang, query=kb._quote(query)))


def _explain_response(query: str, line: str, lang: str, command: str | None) -> Pop3Explanation:
    parser = ResponseParser()
    parser.expect(Expect.SASL)  # so that "+ challenge" is not flagged: it is what was pasted
    [response] = parser.feed(line.encode("utf-8", errors="replace") + b"\r\n")
    assert response.status is not None  # _STATUS_LINE matched
    notes: list[str] = []
    if response.is_continuation:
        notes.append(_challenge_note(response.text, lang))
    elif response.ok and (stamp := apop_timestamp(response.text)):
        notes.append(say("greeting_timestamp", lang, timestamp=stamp))
    info = command_info(command, lang) if command else None
    return Pop3Explanation(
        query,
        status=status_info(response.status, lang),
        code=code_info(response.code, lang) if response.code else None,
        command=info,
        text=response.message,
        notes=(*notes, *map(str, response.problems)),
    )


def _challenge_note(payload: str, lang: str) -> str:
    if not payload.strip():
        return say("challenge_empty", lang)
    challenge = parse_challenge(payload)
    if not challenge.valid:
        return say("challenge_not_base64", lang, error=challenge.error)
    return say("challenge_decoded", lang, text=repr(challenge.text))


# --- Rendering ---------------------------------------------------------------------------


def _label(name: str, lang: str) -> str:
    return message(CATALOGUE, f"labels.{name}", lang)


def _field(name: str, value: str, lang: str) -> list[str]:
    return kb._wrap(f"  {_label(name, lang)}{kb._PUNCT[lang][0]}", value, lang)


def _code_block(label: str, info: CodeInfo, shown: str, lang: str) -> list[str]:
    lines = [f"{_label(label, lang)} {shown}{kb._PUNCT[lang][0]}{info.title}"]
    lines += [f"    {part}" for part in info.parts]
    lines += _field("meaning", info.meaning, lang)
    if info.next_step:
        lines += _field("next", info.next_step, lang)
    return lines + _field("source", info.rfc, lang)


def format_pop3_explanation(exp: Pop3Explanation, lang: str | None = "en") -> str:
    """The text `smtp-tutor explain` prints for POP3: one block per thing found."""
    lang = normalise_language(lang)
    colon, comma, _, opening, closing = kb._PUNCT[lang]
    blocks: list[list[str]] = []
    if exp.status is not None:
        blocks.append(_code_block("status", exp.status, exp.status.code, lang))
    if exp.code is not None and exp.status is not None:  # a response's code, then its command
        blocks.append(_code_block("code", exp.code, f"[{exp.code.code}]", lang))
    if exp.command is not None:
        c = exp.command
        lines = [f"{_label('command', lang)} {c.name}{colon}{c.syntax}"]
        lines += _field("meaning", c.summary, lang)
        lines += _field("valid_in", comma.join(c.states), lang)
        lines += _field("after_err", c.err, lang)
        poplib = f"poplib.POP3.{c.poplib}" if c.poplib else say("poplib_none", lang)
        lines += _field("poplib", poplib, lang)
        lines += _field("source", c.rfc, lang)
        blocks.append(lines)
    if exp.capability is not None:
        k = exp.capability
        lines = [
            f"{_label('capability', lang)} {k.name}{opening}{k.rfc}{closing}{colon}{k.summary}"
        ]
        if k.params:
            lines += _field("params", k.params, lang)
        for index, detail in enumerate(k.detail.split("\n") if k.detail else ()):
            lines += _field("this_line", detail, lang) if index == 0 else [f"    {detail.strip()}"]
        blocks.append(lines)
    if exp.code is not None and exp.status is None:  # a bare word: the command first
        blocks.append(_code_block("code", exp.code, f"[{exp.code.code}]", lang))
    if exp.state is not None:
        s = exp.state
        lines = [f"{_label('state', lang)} {s.name}{colon}{s.title}"]
        lines += _field("meaning", s.meaning, lang)
        if s.commands:
            lines += _field("commands", " ".join(s.commands), lang)
        lines += _field("source", s.rfc, lang)
        blocks.append(lines)
    tail: list[str] = []
    if exp.text and exp.status is not None:
        tail += kb._wrap(f"{_label('server_text', lang)}{colon}", exp.text, lang, "  ")
    for note in exp.notes:
        tail += kb._wrap(f"{_label('note', lang)}{colon}", note, lang, "  ")
    if tail:
        blocks.append(tail)
    return "\n\n".join("\n".join(block) for block in blocks)


# --- Validation --------------------------------------------------------------------------

_LABELS = (
    *("status", "code", "command", "capability", "state", "meaning", "next", "valid_in"),
    *("commands", "poplib", "after_err", "params", "this_line", "source", "server_text", "note"),
)
_MESSAGES: dict[str, set[str]] = {
    "empty": set(),
    "nothing_found": {"query"},
    "smtp_reply": {"code"},
    "code_unknown_title": {"code"},
    "code_unknown_meaning": set(),
    "code_child": {"code", "parent"},
    "capability_unknown": set(),
    "capability_unknown_rfc": set(),
    "args": {"args"},
    "poplib_none": set(),
    "challenge_decoded": {"text"},
    "challenge_empty": set(),
    "challenge_not_base64": {"error"},
    "greeting_timestamp": {"timestamp"},
}
_AUTH_NOTES = ("cancel", "success", "failed", "cancelled", "malformed")


def validate_pop3_data(data: dict[str, Any]) -> list[str]:
    """Every problem in already-parsed pop3.toml data; an empty list means all is well."""
    problems: list[str] = []

    def table(name: str) -> dict[str, Any]:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    def complete(name: str, wanted: tuple[str, ...] | list[str], exact: bool = False) -> None:
        have = set(table(name))
        problems.extend(f"pop3.{name}.{key}: missing" for key in wanted if key not in have)
        if exact:
            problems.extend(f"pop3.{name}.{key}: unknown" for key in sorted(have - set(wanted)))

    text3 = ("title", "meaning", "next")
    complete("status", list(_STATUS_KEYS.values()), exact=True)
    for key, entry in table("status").items():
        kb._check_entry(problems, f"pop3.status.{key}", entry, text3)
    complete("states", [s.value for s in State], exact=True)
    for key, entry in table("states").items():
        kb._check_entry(problems, f"pop3.states.{key}", entry, ("title", "meaning"), plain=("rfc",))
    complete("commands", KNOWN_COMMANDS, exact=True)
    for key, entry in table("commands").items():
        where = f"pop3.commands.{key}"
        plain = ("syntax", "rfc", "poplib")
        kb._check_entry(problems, where, entry, ("summary", "err"), plain=plain)
        for name in plain:
            if isinstance(entry, dict) and not isinstance(entry.get(name), str):
                problems.append(f'{where}.{name}: missing (a string; poplib may be "")')
    complete("codes", REQUIRED_CODES)
    for key, entry in table("codes").items():
        if not _CODE_WORD.fullmatch(key) or key != key.upper():
            problems.append(f"pop3.codes.{key}: not an upper-case RFC 2449 response code")
        kb._check_entry(problems, f"pop3.codes.{key}", entry, text3, plain=("rfc",))
    complete("capabilities", REQUIRED_CAPABILITIES)
    for key, entry in table("capabilities").items():
        where = f"pop3.capabilities.{key}"
        kb._check_entry(problems, where, entry, ("summary",), ("params",), ("rfc", "with_args"))
        if isinstance(entry, dict) and "with_args" in entry:
            kb._check_text(problems, f"{where}.with_args", entry["with_args"], {"args", "first"})
    for name in ("states", "codes", "capabilities"):
        for key, entry in table(name).items():
            if isinstance(entry, dict) and "rfc" not in entry:
                problems.append(f"pop3.{name}.{key}.rfc: missing")
    for name, fields in (
        ("auth", {key: set() for key in _AUTH_NOTES}),
        ("labels", {key: set() for key in _LABELS}),
        ("messages", _MESSAGES),
    ):
        complete(name, list(fields), exact=True)
        for key, value in table(name).items():
            kb._check_text(problems, f"pop3.{name}.{key}", value, fields.get(key))
    return problems


def validate_pop3() -> list[str]:
    """Every problem in the shipped pop3.toml."""
    return validate_pop3_data(_data())
