"""What SMTP replies, enhanced status codes and EHLO keywords mean, in English and Chinese.

The knowledge itself lives in TOML files in ``smtp_tutor/data`` so a teacher can correct a
sentence without reading Python; this module only loads it, answers look-ups and renders
plain text. It is pure: no sockets, no asyncio, no prompt_toolkit; the only I/O is reading
the package data (`smtp_tutor.data.load_toml`: cached, and it works from a zip too).

How to think about it:

* ``load_knowledge()`` reads the files once and returns a ``KnowledgeBase``.
* ``KnowledgeBase.reply("550", "zh", command="RCPT")`` → a ``CodeInfo`` (title, meaning,
  what to do next, RFC), using the per-command wording when the data has one. Codes
  not in the data fall back to what their digits mean, and say so (``standard=False``).
* ``KnowledgeBase.enhanced("5.1.1")`` works the same way for RFC 3463 codes.
* ``explain(text)`` finds the codes in a pasted reply line and ``format_explanation``
  renders the result for the CLI. Bad input raises ``ValueError`` with a one-line message.
* ``validate()`` lists every gap in the data (a missing Chinese text, a typo in a field
  name); the tests require it to be empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

# Their home is smtp_tutor.core.language; `knowledge.language_from_env` and co. still work.
from smtp_tutor.core.language import LANGUAGES, language_from_env, normalise_language  # noqa: F401
from smtp_tutor.core.records import record, replace
from smtp_tutor.data import load_toml

DATA_PACKAGE = "smtp_tutor.data"
DATA_FILES = ("replies.toml", "enhanced.toml", "keywords.toml", "explain.toml")


@cache
def contexts() -> frozenset[str]:
    """Commands a reply may be explained "after": every verb of data/verbs.toml, the banner
    (GREETING), the end of DATA (DOT), and commands the tutor explains but does not check
    (LMTP's LHLO, BURL, Postfix's XCLIENT and XFORWARD). Read on first use, not on import."""
    from smtp_tutor.core.verbs import verbs

    return frozenset({*verbs(), "GREETING", "DOT", "LHLO", "BURL", "XCLIENT", "XFORWARD"})


def __getattr__(name: str) -> object:
    if name == "CONTEXTS":  # the constant it was: `knowledge.CONTEXTS`
        return contexts()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_CONTEXT_FALLBACK = {"HELO": ("EHLO",), "LHLO": ("EHLO",)}
_COMMAND_ALIASES = {
    ".": "DOT",
    "END-OF-DATA": "DOT",
    "EOM": "DOT",
    "CONNECT": "GREETING",
    "BANNER": "GREETING",
}

# --- Language: smtp_tutor.core.language (re-exported here) --------------------------


def normalise_command(command: str | None) -> str | None:
    """'rcpt to:<a@b>' → 'RCPT'; '.' → 'DOT'; '' or None → None."""
    if not command or not command.strip():
        return None
    word = command.strip().split()[0].upper()
    word = word.split(":")[0] or word
    return _COMMAND_ALIASES.get(word, word)


# --- Results ---------------------------------------------------------------------------


@record(frozen=True)
class CodeInfo:
    """One reply or enhanced code explained in one language.

    ``standard`` is False when the code is not in the data and only its digits were read;
    ``context`` names the command whose specific wording was used; ``parts`` reads the
    code digit by digit; ``related`` lists codes that usually come with it.
    """

    code: str
    title: str
    meaning: str
    next_step: str
    rfc: str
    standard: bool = True
    context: str | None = None
    parts: tuple[str, ...] = ()
    related: tuple[str, ...] = ()


@record(frozen=True)
class KeywordInfo:
    """An EHLO keyword (or SASL mechanism); ``args``/``detail`` describe one advertised line."""

    name: str
    summary: str
    rfc: str
    params: str = ""
    args: tuple[str, ...] = ()
    detail: str = ""
    known: bool = True


@record(frozen=True)
class Explanation:
    """What ``explain()`` found in a query; ``text`` is the human-readable rest of the line."""

    query: str
    reply: CodeInfo | None
    enhanced: CodeInfo | None
    text: str
    notes: tuple[str, ...] = ()
    keyword: KeywordInfo | None = None


# --- Loading and validation ------------------------------------------------------------


def _read_data() -> dict[str, dict[str, Any]]:
    """Read the TOML files of the package data (from the cache when it is current)."""
    data: dict[str, dict[str, Any]] = {}
    for name in DATA_FILES:
        try:
            data[name.removesuffix(".toml")] = load_toml(name.removesuffix(".toml"))
        except ValueError as exc:  # tomllib.TOMLDecodeError
            raise ValueError(f"{DATA_PACKAGE}/{name}: {exc}") from exc
    return data


# Compiled by validate() alone: its wide range costs 3 ms to compile, at every start.
_cjk = cache(lambda: re.compile(r"[\u3400-\u9fff\uf900-\ufaff]"))
_FIELD = re.compile(r"\{(\w+)\}")


def _check_text(problems: list[str], where: str, value: Any, fields: set[str] | None) -> None:
    """One bilingual field: a table with non-empty en and zh, Chinese really Chinese."""
    if not isinstance(value, dict):
        problems.append(f"{where}: must be a table with .en and .zh")
        return
    for lang in LANGUAGES:
        text = value.get(lang)
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}.{lang}: missing or empty")
    for extra in sorted(set(value) - set(LANGUAGES)):
        problems.append(f"{where}.{extra}: unknown language")
    en, zh = value.get("en"), value.get("zh")
    if isinstance(zh, str) and zh.strip() and not _cjk().search(zh):
        problems.append(f"{where}.zh: contains no Chinese characters")
    if isinstance(en, str) and isinstance(zh, str):
        en_fields, zh_fields = set(_FIELD.findall(en)), set(_FIELD.findall(zh))
        if en_fields != zh_fields:
            problems.append(f"{where}: placeholders differ between en and zh")
        if fields is not None and not en_fields <= fields:
            problems.append(f"{where}: unknown placeholder {sorted(en_fields - fields)}")


def _check_entry(
    problems: list[str],
    where: str,
    entry: Any,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    plain: tuple[str, ...] = (),
) -> None:
    """A table of bilingual fields (+ plain fields such as rfc) with nothing misspelt."""
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a table")
        return
    for name in required:
        if name not in entry:
            problems.append(f"{where}.{name}: missing")
    for name in (*required, *optional):
        if name in entry:
            _check_text(problems, f"{where}.{name}", entry[name], None)
    for name in sorted(set(entry) - {*required, *optional, *plain}):
        problems.append(f"{where}.{name}: unknown field")
    rfc = entry.get("rfc")
    if "rfc" in plain and "rfc" in entry and (not isinstance(rfc, str) or not rfc.strip()):
        problems.append(f"{where}.rfc: must be a non-empty string")


_REPLY_KEY = re.compile(r"[2-5][0-9][0-9]")
_ENHANCED_KEY = re.compile(r"X\.[0-9]{1,3}\.[0-9]{1,3}")
_KEYWORD_KEY = re.compile(r"[A-Z0-9][A-Z0-9-]*")
_SEEN_ENHANCED = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")
_TEXT = ("title", "meaning", "next")


def _check_seen_with(problems: list[str], where: str, value: Any, pattern: re.Pattern[str]) -> None:
    if not isinstance(value, list) or not all(
        isinstance(v, str) and pattern.fullmatch(v) for v in value
    ):
        problems.append(f"{where}.seen_with: must be a list of codes like {pattern.pattern}")


def _table(value: Any) -> dict[str, Any]:
    """A TOML table, or {} when a hand edit put something else there."""
    return value if isinstance(value, dict) else {}


def validate_data(data: Mapping[str, Any]) -> list[str]:
    """Every problem in already-parsed data (keys as in DATA_FILES without .toml)."""
    problems: list[str] = []
    replies = _table(data.get("replies"))
    for digit in "2345":
        entry = _table(replies.get("class")).get(digit)
        _check_entry(problems, f"replies.class.{digit}", entry, _TEXT)
    for digit in "012345":
        entry = _table(replies.get("category")).get(digit)
        _check_entry(problems, f"replies.category.{digit}", entry, ("title", "meaning"))
    for code, entry in _table(replies.get("codes")).items():
        where = f"replies.codes.{code}"
        if not _REPLY_KEY.fullmatch(code):
            problems.append(f"{where}: not a reply code (three digits, first 2-5)")
        _check_entry(problems, where, entry, _TEXT, plain=("rfc", "seen_with", "after"))
        if isinstance(entry, dict):
            if "rfc" not in entry:
                problems.append(f"{where}.rfc: missing")
            if "seen_with" in entry:
                _check_seen_with(problems, where, entry["seen_with"], _SEEN_ENHANCED)
            for command, override in _table(entry.get("after")).items():
                at = f"{where}.after.{command}"
                if command not in contexts():
                    known = ", ".join(sorted(contexts()))
                    problems.append(f"{at}: unknown command (known: {known})")
                _check_entry(problems, at, override, (), _TEXT, plain=("rfc",))
                if isinstance(override, dict) and not override:
                    problems.append(f"{at}: empty")

    enhanced = _table(data.get("enhanced"))
    for digit in "245":
        entry = _table(enhanced.get("class")).get(digit)
        _check_entry(problems, f"enhanced.class.{digit}", entry, _TEXT)
    for digit in "01234567":
        entry = _table(enhanced.get("subject")).get(digit)
        _check_entry(problems, f"enhanced.subject.{digit}", entry, ("title", "meaning"))
    for code, entry in _table(enhanced.get("detail")).items():
        where = f"enhanced.detail.{code}"
        if not _ENHANCED_KEY.fullmatch(code) or code.split(".")[1] not in "01234567":
            problems.append(f"{where}: not a detail like X.1.1 with subject 0-7")
        _check_entry(problems, where, entry, _TEXT, plain=("rfc", "seen_with", "class"))
        if isinstance(entry, dict):
            if "rfc" not in entry:
                problems.append(f"{where}.rfc: missing")
            if "seen_with" in entry:
                _check_seen_with(problems, where, entry["seen_with"], _REPLY_KEY)
            for digit, override in _table(entry.get("class")).items():
                if digit not in ("2", "4", "5"):
                    problems.append(f"{where}.class.{digit}: class must be 2, 4 or 5")
                _check_entry(problems, f"{where}.class.{digit}", override, (), _TEXT)

    keywords = _table(data.get("keywords"))
    templates = ("with_args", "without_args", "zero")
    for name, entry in _table(keywords.get("keywords")).items():
        where = f"keywords.keywords.{name}"
        if not _KEYWORD_KEY.fullmatch(name):
            problems.append(f"{where}: keyword names are upper case letters, digits and '-'")
        _check_entry(problems, where, entry, ("summary",), ("params",), plain=("rfc", *templates))
        if not isinstance(entry, dict):
            continue
        for name_ in templates:
            if name_ in entry:
                _check_text(problems, f"{where}.{name_}", entry[name_], {"args", "first", "human"})
        if "rfc" not in entry:
            problems.append(f"{where}.rfc: missing")
    for name, entry in _table(keywords.get("mechanisms")).items():
        where = f"keywords.mechanisms.{name}"
        _check_entry(problems, where, entry, ("summary",), plain=("rfc",))
        if isinstance(entry, dict) and "rfc" not in entry:
            problems.append(f"{where}.rfc: missing")

    wording = _table(data.get("explain"))
    for table, names in _WORDING.items():
        for name, fields in names.items():
            value = _table(wording.get(table)).get(name)
            if value is None:
                problems.append(f"explain.{table}.{name}: missing")
            else:
                _check_text(problems, f"explain.{table}.{name}", value, fields)
    return problems


# The wording explain.toml must provide, with the placeholders each may use.
_WORDING: dict[str, dict[str, set[str]]] = {
    "labels": {
        name: set()
        for name in (
            *("reply", "enhanced", "keyword", "digits", "meaning", "next", "seen_with"),
            *("source", "server_text", "note", "params", "this_line"),
        )
    },
    "contexts": {"command": {"command"}, "GREETING": set(), "DOT": set()},
    "messages": {
        "empty": set(),
        "no_code": {"query"},
        "bad_first_digit": {"code"},
        "mismatch": {"reply", "enhanced"},
        "enhanced_on_3xx": {"enhanced"},
        "reply_unknown_title": {"class_title"},
        "reply_unknown_meaning": {"class_meaning", "digit", "category_meaning"},
        "reply_unknown_meaning_nocat": {"class_meaning", "digit"},
        "enhanced_unknown_detail_title": {"detail"},
        "enhanced_unknown_subject_title": {"subject"},
        "keyword_unknown": set(),
        "keyword_unknown_rfc": set(),
        "keyword_args": {"args"},
        "auth_equals": set(),
        "mechanism_unknown": set(),
    },
}


def validate() -> list[str]:
    """Every problem in the shipped data files; an empty list means all is well."""
    return validate_data(_read_data())


# --- Look-ups --------------------------------------------------------------------------


def _text(field: Any, lang: str) -> str:
    """The field in `lang`, else English, else '' (so a gap never breaks the console)."""
    if isinstance(field, dict):
        value = field.get(lang) or field.get("en") or ""
        return value if isinstance(value, str) else ""
    return ""


def _human_size(octets: int) -> str:
    size, unit = float(octets), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    number = f"{size:.1f}".rstrip("0").rstrip(".")
    return f"{number} {unit}"


def _reply_key(code: int | str) -> str | None:
    if isinstance(code, bool):
        return None
    text = str(code).strip()
    return text if _REPLY_KEY.fullmatch(text) else None


_ENHANCED = re.compile(r"([245Xx])\.(\d{1,3})\.(\d{1,3})", re.ASCII)


class KnowledgeBase:
    """Look-ups over the parsed data; every method takes a language tag and never raises."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._replies: dict[str, Any] = dict(data.get("replies", {}))
        self._enhanced: dict[str, Any] = dict(data.get("enhanced", {}))
        self._keywords: dict[str, Any] = dict(data.get("keywords", {}).get("keywords", {}))
        self._mechanisms: dict[str, Any] = dict(data.get("keywords", {}).get("mechanisms", {}))
        self._wording: dict[str, Any] = dict(data.get("explain", {}))

    # Wording ---------------------------------------------------------------------------

    def say(self, table: str, name: str, lang: str = "en", **values: object) -> str:
        """One sentence from explain.toml, filled in; the CLI and console may reuse them."""
        template = _text(self._wording.get(table, {}).get(name), normalise_language(lang))
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            return template

    def context_name(self, context: str, lang: str = "en") -> str:
        """'RCPT' → 'after RCPT'; 'GREETING' → 'as the greeting'."""
        if context in ("GREETING", "DOT"):
            return self.say("contexts", context, lang)
        return self.say("contexts", "command", lang, command=context)

    # Reply codes -----------------------------------------------------------------------

    def reply_codes(self) -> list[str]:
        return sorted(self._replies.get("codes", {}))

    def reply(
        self, code: int | str, lang: str = "en", command: str | None = None
    ) -> CodeInfo | None:
        """Explain a three-digit reply; None only if it cannot be an SMTP reply at all."""
        key = _reply_key(code)
        if key is None:
            return None
        lang = normalise_language(lang)
        klass = self._replies.get("class", {}).get(key[0], {})
        category = self._replies.get("category", {}).get(key[1])
        parts = [f"{key[0]}xx = {_text(klass.get('title'), lang)}"]
        if category:
            parts.append(f"x{key[1]}x = {_text(category.get('title'), lang)}")
        entry = self._replies.get("codes", {}).get(key)
        if entry is None:
            return self._unknown_reply(key, klass, category, tuple(parts), lang)
        info = CodeInfo(
            code=key,
            title=_text(entry.get("title"), lang),
            meaning=_text(entry.get("meaning"), lang),
            next_step=_text(entry.get("next"), lang),
            rfc=str(entry.get("rfc", "")),
            parts=tuple(parts),
            related=tuple(entry.get("seen_with", ())),
        )
        context = normalise_command(command)
        if context is None:
            return info
        after = entry.get("after", {})
        for candidate in (context, *_CONTEXT_FALLBACK.get(context, ())):
            if candidate in after:
                return self._override(info, after[candidate], lang, context=candidate)
        return info

    def _unknown_reply(
        self, key: str, klass: Mapping[str, Any], category: Any, parts: tuple[str, ...], lang: str
    ) -> CodeInfo:
        """A code missing from the data (e.g. 599), read by its first two digits."""
        values = {
            "class_title": _text(klass.get("title"), lang),
            "class_meaning": _text(klass.get("meaning"), lang),
            "digit": key[1],
            "category_meaning": _text(_table(category).get("meaning"), lang),
        }
        message = "reply_unknown_meaning" if category else "reply_unknown_meaning_nocat"
        return CodeInfo(
            code=key,
            title=self.say("messages", "reply_unknown_title", lang, **values),
            meaning=self.say("messages", message, lang, **values),
            next_step=_text(klass.get("next"), lang),
            rfc="RFC 5321 §4.2.1",
            standard=False,
            parts=parts,
        )

    @staticmethod
    def _override(info: CodeInfo, table: Mapping[str, Any], lang: str, **extra: Any) -> CodeInfo:
        changes: dict[str, Any] = dict(extra)
        for field, attr in (("title", "title"), ("meaning", "meaning"), ("next", "next_step")):
            if field in table:
                changes[attr] = _text(table[field], lang)
        if "rfc" in table:
            changes["rfc"] = str(table["rfc"])
        return replace(info, **changes)

    # Enhanced status codes -------------------------------------------------------------

    def enhanced_codes(self) -> list[str]:
        def order(code: str) -> tuple[int, int]:
            _, subject, detail = code.split(".")
            return int(subject), int(detail)

        return sorted(self._enhanced.get("detail", {}), key=order)

    def enhanced(self, code: str, lang: str = "en") -> CodeInfo | None:
        """Explain class.subject.detail (class 2/4/5, or X for the class-free registry entry)."""
        match = _ENHANCED.fullmatch(code.strip()) if isinstance(code, str) else None
        if match is None:
            return None
        lang = normalise_language(lang)
        klass_digit = match.group(1).upper()
        subject, detail = int(match.group(2)), int(match.group(3))
        normal = f"{klass_digit}.{subject}.{detail}"
        klass = self._enhanced.get("class", {}).get(klass_digit)
        subj = self._enhanced.get("subject", {}).get(str(subject))
        parts: list[str] = []
        if klass:
            parts.append(f"{klass_digit}.x.x = {_text(klass.get('title'), lang)}")
        if subj:
            parts.append(f"x.{subject}.x = {_text(subj.get('title'), lang)}")
        entry = self._enhanced.get("detail", {}).get(f"X.{subject}.{detail}")
        if entry is not None:
            info = CodeInfo(
                code=normal,
                title=_text(entry.get("title"), lang),
                meaning=_text(entry.get("meaning"), lang),
                next_step=_text(entry.get("next"), lang),
                rfc=str(entry.get("rfc", "")),
                parts=tuple(parts),
                related=tuple(  # only replies of the same class: 2.6.0 is never seen with 554
                    r for r in entry.get("seen_with", ()) if klass_digit in ("X", r[:1])
                ),
            )
            override = entry.get("class", {}).get(klass_digit)
            return self._override(info, override, lang) if override else info
        if klass is None:  # "X.9.9": nothing at all to go on
            return None
        klass_meaning = _text(klass.get("meaning"), lang)
        if subj:
            title = self.say(
                "messages", "enhanced_unknown_detail_title", lang, code=normal, detail=detail
            )
            space = "" if lang == "zh" else " "
            meaning = f"{klass_meaning}{space}{_text(subj.get('meaning'), lang)}"
        else:
            title = self.say(
                "messages", "enhanced_unknown_subject_title", lang, code=normal, subject=subject
            )
            meaning = klass_meaning
        next_step = _text(klass.get("next"), lang)
        return CodeInfo(normal, title, meaning, next_step, "RFC 3463 §2", False, None, tuple(parts))

    # EHLO keywords ---------------------------------------------------------------------

    def keywords(self) -> list[str]:
        return sorted(self._keywords)

    def mechanisms(self) -> list[str]:
        return sorted(self._mechanisms)

    def keyword(self, name: str, lang: str = "en") -> KeywordInfo | None:
        """The keyword's entry (case-insensitive), without any advertised parameters."""
        key = name.strip().upper() if isinstance(name, str) else ""
        entry = self._keywords.get(key)
        if entry is None:
            return None
        lang = normalise_language(lang)
        return KeywordInfo(
            name=key,
            summary=_text(entry.get("summary"), lang),
            rfc=str(entry.get("rfc", "")),
            params=_text(entry.get("params"), lang),
        )

    def mechanism(self, name: str, lang: str = "en") -> KeywordInfo | None:
        key = name.strip().upper() if isinstance(name, str) else ""
        entry = self._mechanisms.get(key)
        if entry is None:
            return None
        lang = normalise_language(lang)
        return KeywordInfo(key, _text(entry.get("summary"), lang), str(entry.get("rfc", "")))

    def ehlo_line(self, line: str, lang: str = "en") -> KeywordInfo | None:
        """Explain one advertised line such as '250-SIZE 10240000' or 'AUTH PLAIN LOGIN'.

        Unknown keywords still get an answer (``known=False``); None only for an empty line.
        """
        lang = normalise_language(lang)
        body = re.sub(r"^\s*250[ -]", "", line).strip()
        if not body:
            return None
        first, *args = body.split()
        name, equals, glued = first.partition("=")
        name = name.upper()
        notes: list[str] = []
        if equals:  # "AUTH=PLAIN LOGIN", the pre-standard form old Outlook needed
            args = [a for a in (glued, *args) if a]
            if name == "AUTH":
                notes.append(self.say("messages", "auth_equals", lang))
        info = self.keyword(name, lang)
        if info is None:
            info = KeywordInfo(
                name=name,
                summary=self.say("messages", "keyword_unknown", lang),
                rfc=self.say("messages", "keyword_unknown_rfc", lang),
                known=False,
            )
        detail = self._describe_args(name, args, lang)
        if detail:
            notes.insert(0, detail)
        if name == "AUTH":
            for mech in args:
                known = self.mechanism(mech, lang)
                summary = (
                    known.summary if known else self.say("messages", "mechanism_unknown", lang)
                )
                notes.append(f"  {mech.upper()}: {summary}")
        return replace(info, args=tuple(args), detail="\n".join(notes))

    def _describe_args(self, name: str, args: list[str], lang: str) -> str:
        entry = self._keywords.get(name, {})
        values: dict[str, str] = {"args": " ".join(args), "first": args[0] if args else ""}
        number = int(args[0]) if args and re.fullmatch(r"[0-9]{1,30}", args[0]) else None
        if number is not None:
            values["human"] = _human_size(number)
        if not args:
            template = _text(entry.get("without_args"), lang)
        elif number == 0 and "zero" in entry:
            template = _text(entry.get("zero"), lang)
        else:
            template = _text(entry.get("with_args"), lang)
        if template:
            try:
                return template.format_map(values)
            except (KeyError, IndexError, ValueError):
                pass  # e.g. {human} for a SIZE that is not a number: say it plainly below
        if args:
            return self.say("messages", "keyword_args", lang, args=values["args"])
        return ""


@cache
def load_knowledge() -> KnowledgeBase:
    """The knowledge base, read once per process."""
    return KnowledgeBase(_read_data())


# --- explain() -------------------------------------------------------------------------

# A line may start with transcript or DSN decoration: "S: ", "<~ ", "Diagnostic-Code: smtp; ".
_PREFIX = r"^[\s<>~*|-]*(?:[A-Za-z][\w-]*\s*[:;]\s*)*"
_LINE_REPLY = re.compile(_PREFIX + r"(\d{3})(?=[ \t-]|$)[ \t-]?", re.ASCII)
_LINE_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\w|\.\d)\s*", re.ASCII)
_LINE_ENHANCED_ONLY = re.compile(_PREFIX + r"([245])\.(\d{1,3})\.(\d{1,3})(?!\w|\.\d)\s*", re.ASCII)
_ANY_ENHANCED = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\w|\.\d)", re.ASCII)


# Full-width digits, dot, hyphen and space, as typed with a Chinese input method.
_FULL_WIDTH = {0xFF10 + i: ord("0") + i for i in range(10)} | {
    0xFF0E: ".",
    0x3002: ".",
    0xFF0D: "-",
    0x3000: " ",
}


def _quote(query: str) -> str:
    """The user's text, made safe for a one-line error message."""
    flat = "".join(c if c.isprintable() else " " for c in " ".join(query.split()))
    return '"' + (flat if len(flat) <= 60 else flat[:57] + "...") + '"'


def _parse_line(line: str) -> tuple[str | None, str | None, str] | None:
    """(reply, enhanced, rest) when the line starts with a code, else None."""
    match = _LINE_REPLY.match(line)
    if match:
        reply, rest = match.group(1), line[match.end() :]
        enhanced = _LINE_ENHANCED.match(rest)
        if enhanced:
            return reply, ".".join(enhanced.groups()), rest[enhanced.end() :].strip()
        return reply, None, rest.strip()
    match = _LINE_ENHANCED_ONLY.match(line)
    if match:
        return None, ".".join(match.groups()), line[match.end() :].strip()
    return None


def explain(query: str, lang: str = "en", command: str | None = None) -> Explanation:
    """Find the reply code, enhanced code and text in a pasted line (or multi-line reply).

    Accepts "535", "5.7.8", "550 5.1.1 User unknown", "550-5.1.1 ...", "  250 OK",
    "Diagnostic-Code: smtp; 550 5.1.1 ...", a bare EHLO keyword or "250-SIZE 1000".
    Raises ValueError (one line, in `lang`) when there is nothing to explain.
    """
    kb = load_knowledge()
    lang = normalise_language(lang)
    if not isinstance(query, str) or not query.strip():
        raise ValueError(kb.say("messages", "empty", lang))
    original, query = query, query.translate(_FULL_WIDTH)  # a Chinese IME types ５５０
    lines = [line for line in query.splitlines() if line.strip()]
    found: tuple[str | None, str | None, str] | None = None
    rest_lines: list[str] = []
    for index, line in enumerate(lines):
        found = _parse_line(line)
        if found:
            rest_lines = lines[index + 1 :]
            break
    if found is None:
        words = query.split()
        if len(lines) == 1 and kb.keyword(words[0].partition("=")[0], lang):
            keyword = kb.ehlo_line(query, lang)
            return Explanation(original, None, None, query.strip(), (), keyword)
        match = _ANY_ENHANCED.search(query)
        if match is None:
            raise ValueError(kb.say("messages", "no_code", lang, query=_quote(original)))
        found = (None, ".".join(match.groups()), query[match.end() :].strip())
    reply_code, enhanced_code, text = found
    if reply_code is not None and reply_code[0] not in "2345":
        raise ValueError(kb.say("messages", "bad_first_digit", lang, code=reply_code))
    texts = [text] if text else []
    for line in rest_lines:  # continuation lines of the same reply: "550-5.1.1 ..."
        more = _parse_line(line)
        if more and reply_code and more[0] == reply_code and more[2]:
            texts.append(more[2])
    text = " ".join(texts)

    keyword = None
    if reply_code == "250" and enhanced_code is None and text:
        first = text.split()[0].partition("=")[0]
        if kb.keyword(first, lang):
            keyword = kb.ehlo_line(text, lang)
            command = command or "EHLO"
    reply = kb.reply(reply_code, lang, command) if reply_code else None
    enhanced = kb.enhanced(enhanced_code, lang) if enhanced_code else None
    notes: list[str] = []
    if reply_code and enhanced_code:
        if reply_code[0] == "3":
            notes.append(kb.say("messages", "enhanced_on_3xx", lang, enhanced=enhanced_code))
        elif reply_code[0] != enhanced_code[0]:
            notes.append(
                kb.say("messages", "mismatch", lang, reply=reply_code, enhanced=enhanced_code)
            )
    return Explanation(original, reply, enhanced, text, tuple(notes), keyword)


# --- Rendering -------------------------------------------------------------------------

# Punctuation per language: colon, list separator, brackets.
_PUNCT = {"en": (": ", ", ", "; ", " (", ")"), "zh": ("：", "、", "；", "（", "）")}


def _wrap(head: str, value: str, lang: str, indent: str = "    ") -> list[str]:
    """One line per field: the caller wraps to the width it knows (`console.wrap`)."""
    return [head + value]


def _field(kb: KnowledgeBase, label: str, value: str, lang: str) -> list[str]:
    """'  Meaning: ...' as wrapped lines."""
    return _wrap(f"  {kb.say('labels', label, lang)}{_PUNCT[lang][0]}", value, lang)


def format_code(info: CodeInfo, lang: str = "en", label: str = "reply") -> str:
    """Plain multi-line text for one CodeInfo; label is 'reply' or 'enhanced'."""
    kb = load_knowledge()
    lang = normalise_language(lang)
    colon, comma, semi, opening, closing = _PUNCT[lang]
    head = f"{kb.say('labels', label, lang)} {info.code}"
    if info.context:
        head += f"{opening}{kb.context_name(info.context, lang)}{closing}"
    lines = [f"{head}{colon}{info.title}"]
    if info.parts:
        lines += _field(kb, "digits", semi.join(info.parts), lang)
    lines += _field(kb, "meaning", info.meaning, lang)
    lines += _field(kb, "next", info.next_step, lang)
    if info.related:
        lines += _field(kb, "seen_with", comma.join(info.related), lang)
    if info.rfc:
        lines += _field(kb, "source", info.rfc, lang)
    return "\n".join(lines)


def format_keyword(info: KeywordInfo, lang: str = "en") -> str:
    """Plain multi-line text for an EHLO keyword, with the advertised line explained."""
    kb = load_knowledge()
    lang = normalise_language(lang)
    colon, _, _, opening, closing = _PUNCT[lang]
    title = f"{kb.say('labels', 'keyword', lang)} {info.name}{opening}{info.rfc}{closing}"
    lines = [f"{title}{colon}{info.summary}"]
    if info.params:
        lines += _field(kb, "params", info.params, lang)
    if info.detail:
        first, *more = info.detail.split("\n")
        lines += _field(kb, "this_line", first, lang)
        for line in more:  # AUTH mechanisms are indented under the line itself
            indent = "    " if line.startswith("  ") else "  "
            lines += _wrap(indent, line.strip(), lang, indent + "  ")
    return "\n".join(lines)


def format_explanation(exp: Explanation, lang: str = "en") -> str:
    """The text `smtp-tutor explain` prints: one block per code, then server text and notes."""
    kb = load_knowledge()
    lang = normalise_language(lang)
    blocks: list[str] = []
    if exp.reply:
        blocks.append(format_code(exp.reply, lang, "reply"))
    if exp.enhanced:
        blocks.append(format_code(exp.enhanced, lang, "enhanced"))
    if exp.keyword:
        blocks.append(format_keyword(exp.keyword, lang))
    tail: list[str] = []
    colon = _PUNCT[lang][0]
    if exp.text and (exp.reply or exp.enhanced):
        tail += _wrap(f"{kb.say('labels', 'server_text', lang)}{colon}", exp.text, lang, "  ")
    for note in exp.notes:
        tail += _wrap(f"{kb.say('labels', 'note', lang)}{colon}", note, lang, "  ")
    if tail:
        blocks.append("\n".join(tail))
    return "\n\n".join(blocks)
