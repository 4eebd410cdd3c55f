"""What each SMTP verb is, read from `data/verbs.toml`: one table a verb (iredis's lesson).

The facts about a verb — how it is typed, in which phases it may be sent, where its success
leads, which codes mean success, whether it ends a pipelined group, which EHLO keyword it
needs, its MAIL/RCPT parameters, its completion hint and description in every language —
are data, so a teacher can read them and an extension verb is one table. This module only
loads and checks them; the logic that reads them lives in the dialogue, the checker, the
completer, the history and the knowledge base.

* `verbs()` is every verb, in the file's order (the order a session uses them), read once.
* `verb("rcpt")` is one of them, or None.
* `parse_verbs(data)` builds the table from parsed TOML; a broken table raises
  `VerbTableError` naming the key (`verbs.toml: [XTUTOR].phases: 'redy' is not a phase …`).

Pure: the only I/O is reading package data (`smtp_tutor.data.load_toml`, cached).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType

from smtp_tutor.core.phases import Phase
from smtp_tutor.core.records import field, record
from smtp_tutor.data import load_toml

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    from typing import Any, Literal, NoReturn

    Argument = Literal["none", "any", "required", "path"]

__all__ = [
    "ARGUMENT_KINDS",
    "FOLLOWED_BY",
    "Offer",
    "Parameter",
    "Text",
    "Verb",
    "VerbTableError",
    "parse_verbs",
    "verb",
    "verbs",
]

DATA_FILE = "verbs.toml"

ARGUMENT_KINDS: tuple[str, ...] = ("none", "any", "required", "path")
FOLLOWED_BY: tuple[str, ...] = ("auth-answer", "message")

_NAME = re.compile(r"[A-Z][A-Z0-9-]*")
_KEYWORD = re.compile(r"[A-Z0-9][A-Z0-9-]*")  # 8BITMIME
_VERB_FIELDS = frozenset(
    {
        "syntax", "rfc", "argument", "missing_argument", "path_keyword", "path_hint",
        "phases", "success", "codes", "ends_group", "followed_by", "extension",
        "hint", "description", "parameters",
    }
)  # fmt: skip
_PARAMETER_FIELDS = frozenset(
    {"extension", "insert", "rfc", "values", "bad_value", "hint", "offers"}
)


class VerbTableError(ValueError):
    """`data/verbs.toml` is broken; the message names the key."""


@record(frozen=True)
class Text:
    """One text in every language of the file."""

    translations: Mapping[str, str]

    def in_language(self, lang: str | None) -> str:
        """The text in `lang`, else English."""
        return self.translations.get(lang or "en") or self.translations["en"]


@record(frozen=True)
class Offer:
    """A value completion offers after `NAME=`."""

    value: str
    hint: Text


@record(frozen=True)
class Parameter:
    """An ESMTP parameter of MAIL or RCPT and the EHLO keyword that defines it."""

    name: str
    extension: str
    insert: str
    rfc: str
    hint: Text
    values: tuple[str, ...] = ()  # the only values accepted; () = the checker does not look
    bad_value: str = ""  # the checker's finding for a value not in `values`
    offers: tuple[Offer, ...] = ()


@record(frozen=True)
class Verb:
    """One row of the verb table."""

    name: str
    syntax: str
    rfc: str
    argument: Argument
    phases: frozenset[Phase]
    codes: tuple[int, ...]
    ends_group: bool
    hint: Text
    description: Text
    success: Phase | None = None
    missing_argument: str = ""
    path_keyword: str = ""
    path_hint: Text | None = None
    followed_by: str = ""
    extension: str = ""
    parameters: Mapping[str, Parameter] = field(default_factory=lambda: MappingProxyType({}))


@functools.cache
def verbs() -> Mapping[str, Verb]:
    """Every verb of `data/verbs.toml`, by name, in the file's order; read and checked once."""
    try:
        data = load_toml(DATA_FILE.removesuffix(".toml"))
    except ValueError as error:  # tomllib.TOMLDecodeError
        raise VerbTableError(f"{DATA_FILE}: {error}") from None
    return parse_verbs(data)


def verb(name: str) -> Verb | None:
    """The row for `name` (any case), or None for a verb the table does not hold."""
    return verbs().get(name.upper())


# -- reading and checking ------------------------------------------------------------------


def parse_verbs(data: Mapping[str, Any], source: str = DATA_FILE) -> Mapping[str, Verb]:
    """The verb table from parsed TOML; raises `VerbTableError` naming the first broken key."""
    reader = _Reader(source, _languages(data, source))
    table: dict[str, Verb] = {}
    for name, entry in data.items():
        if name == "languages":
            continue
        if not _NAME.fullmatch(name):
            reader.fail(f"[{name}]", "a verb is written in capitals (EHLO, MAIL, X-FOO)")
        table[name] = reader.verb(name, reader.table(f"[{name}]", entry))
    if not table:
        reader.fail("", "no verb at all")
    return MappingProxyType(table)


def _languages(data: Mapping[str, Any], source: str) -> tuple[str, ...]:
    languages = data.get("languages")
    if (
        not isinstance(languages, list)
        or "en" not in languages
        or not all(isinstance(lang, str) and lang for lang in languages)
    ):
        raise VerbTableError(f'{source}: languages: a list of language codes with "en" in it')
    return tuple(languages)


class _Reader:
    """Reads one value at a time and says where, when something is wrong."""

    def __init__(self, source: str, languages: tuple[str, ...]) -> None:
        self.source = source
        self.languages = languages

    def fail(self, where: str, problem: str) -> NoReturn:
        raise VerbTableError(f"{self.source}: {where}: {problem}")

    def table(self, where: str, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, "must be a table")
        return value

    def string(self, where: str, value: Any, *, empty: bool = False) -> str:
        if not isinstance(value, str) or not (empty or value.strip()):
            self.fail(where, "must be a non-empty string")
        return value

    def keyword(self, where: str, value: Any) -> str:
        text = self.string(where, value)
        if not _KEYWORD.fullmatch(text):
            self.fail(where, f"{text!r} is not an EHLO keyword (capitals, digits and '-')")
        return text

    def text(self, where: str, value: Any) -> Text:
        entry = self.table(where, value)
        for lang in self.languages:
            self.string(f"{where}.{lang}", entry.get(lang))
        for lang in entry:
            if lang not in self.languages:
                self.fail(f"{where}.{lang}", f"not a language of this file {self.languages}")
        return Text(MappingProxyType(dict(entry)))

    def phase(self, where: str, value: Any) -> Phase:
        names = ", ".join(p.value for p in Phase)
        if not isinstance(value, str) or value not in Phase._value2member_map_:
            self.fail(where, f"{value!r} is not a phase ({names})")
        return Phase(value)

    def choice(self, where: str, value: Any, choices: tuple[str, ...]) -> str:
        if value not in choices:
            self.fail(where, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def strings(self, where: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail(where, "must be a list")
        return tuple(self.string(f"{where}[{i}]", item) for i, item in enumerate(value))

    def unknown(self, where: str, entry: Mapping[str, Any], known: frozenset[str]) -> None:
        for key in entry:
            if key not in known:
                self.fail(f"{where}.{key}", f"unknown field (known: {', '.join(sorted(known))})")

    def verb(self, name: str, entry: Mapping[str, Any]) -> Verb:
        at = f"[{name}]"
        self.unknown(at, entry, _VERB_FIELDS)
        argument: Argument = self.choice(  # type: ignore[assignment]
            f"{at}.argument", entry.get("argument"), ARGUMENT_KINDS
        )
        phases_value = entry.get("phases")
        if not isinstance(phases_value, list):
            self.fail(f"{at}.phases", "must be a list of phases (may be empty)")
        phases = [self.phase(f"{at}.phases[{i}]", p) for i, p in enumerate(phases_value)]
        codes_value = entry.get("codes")
        if not isinstance(codes_value, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) and 200 <= c <= 599 for c in codes_value
        ):
            self.fail(f"{at}.codes", "must be a list of reply codes (200-599; may be empty)")
        ends_group = entry.get("ends_group")
        if not isinstance(ends_group, bool):
            self.fail(f"{at}.ends_group", "must be true or false")
        fields: dict[str, Any] = {}
        if "success" in entry:
            fields["success"] = self.phase(f"{at}.success", entry["success"])
        if "missing_argument" in entry:
            if argument != "required":
                self.fail(f"{at}.missing_argument", 'only for argument = "required"')
            fields["missing_argument"] = self.string(
                f"{at}.missing_argument", entry["missing_argument"]
            )
        elif argument == "required":
            fields["missing_argument"] = "argument_required"
        if argument == "path":
            fields["path_keyword"] = self.keyword(f"{at}.path_keyword", entry.get("path_keyword"))
            fields["path_hint"] = self.text(f"{at}.path_hint", entry.get("path_hint"))
            parameters = self.table(f"{at}.parameters", entry.get("parameters", {}))
            fields["parameters"] = MappingProxyType(
                {
                    key: self.parameter(f"{at}.parameters.{key}", key, value)
                    for key, value in parameters.items()
                }
            )
        else:
            for key in ("path_keyword", "path_hint", "parameters"):
                if key in entry:
                    self.fail(f"{at}.{key}", 'only for argument = "path"')
        if "followed_by" in entry:
            fields["followed_by"] = self.choice(
                f"{at}.followed_by", entry["followed_by"], FOLLOWED_BY
            )
        if "extension" in entry:
            fields["extension"] = self.keyword(f"{at}.extension", entry["extension"])
        return Verb(
            name=name,
            syntax=self.string(f"{at}.syntax", entry.get("syntax")),
            rfc=self.string(f"{at}.rfc", entry.get("rfc")),
            argument=argument,
            phases=frozenset(phases),
            codes=tuple(codes_value),
            ends_group=ends_group,
            hint=self.text(f"{at}.hint", entry.get("hint")),
            description=self.text(f"{at}.description", entry.get("description")),
            **fields,
        )

    def parameter(self, where: str, name: str, value: Any) -> Parameter:
        entry = self.table(where, value)
        if not _NAME.fullmatch(name):
            self.fail(where, "a parameter is written in capitals (SIZE, MT-PRIORITY)")
        self.unknown(where, entry, _PARAMETER_FIELDS)
        values = self.strings(f"{where}.values", entry.get("values", []))
        if values and "bad_value" not in entry:
            self.fail(f"{where}.bad_value", "needed with `values`: the checker's finding id")
        if "bad_value" in entry and not values:
            self.fail(f"{where}.bad_value", "only with `values`")
        offers_value = entry.get("offers", [])
        if not isinstance(offers_value, list):
            self.fail(f"{where}.offers", "must be a list of { value, hint } tables")
        offers = []
        for i, offer in enumerate(offers_value):
            at = f"{where}.offers[{i}]"
            offer_entry = self.table(at, offer)
            self.unknown(at, offer_entry, frozenset({"value", "hint"}))
            offers.append(
                Offer(
                    self.string(f"{at}.value", offer_entry.get("value")),
                    self.text(f"{at}.hint", offer_entry.get("hint")),
                )
            )
        return Parameter(
            name=name,
            extension=self.keyword(f"{where}.extension", entry.get("extension")),
            insert=self.string(f"{where}.insert", entry.get("insert", f"{name}=")),
            rfc=self.string(f"{where}.rfc", entry.get("rfc")),
            hint=self.text(f"{where}.hint", entry.get("hint")),
            values=values,
            bad_value=self.string(f"{where}.bad_value", entry["bad_value"]) if values else "",
            offers=tuple(offers),
        )
