"""Checking a lesson file: every problem at once, each at its line, in a teacher's terms.

tomllib only says whether a file is TOML, and stops at the first error. A teacher writing a
lesson needs every mistake in one pass, with the line it is on and what would be right, so
the checker walks the parsed file once, collecting problems while it builds the ``Lesson``.
What a step's table may hold beyond the common keys, and how its solution must look, is
asked of the step's kind (``kinds``); this module names no kind. Which protocol a lesson
and each step speak is checked against the kinds' own; a POP3 solution is then rehearsed on
the POP3 core's state table (``rehearsal``), so a command the state refuses is caught here.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from smtp_tutor.core.lessons.kinds import STEP_KINDS, StepKind, StepKinds
from smtp_tutor.core.lessons.model import (
    FORMAT,
    LANGUAGES,
    PROTOCOLS,
    Lesson,
    LessonError,
    Playback,
    SetupMail,
    Step,
    StepState,
    Text,
    show,
)
from smtp_tutor.core.lessons.rehearsal import Rehearsal

SCENARIO_KEYS: Mapping[str, type | tuple[type, ...]] = {
    "require_tls": bool,
    "require_auth": bool,
    "greylist_delay": (int, float),
    "slow_delay": (int, float),
    "max_recipients": int,
    "max_message_size": int,
    "idle_timeout": (int, float),
}
# The smallest value each number may take, as the sandbox's own validation requires.
_SCENARIO_MINIMUM = {
    "greylist_delay": (0, "0 or more"),
    "slow_delay": (0, "0 or more"),
    "max_recipients": (1, "1 or more"),
    "max_message_size": (1, "1 or more"),
    "idle_timeout": (1e-9, "more than 0"),
}

_ADDRESS = r"<[^<>@\s]+@[^<>@\s]+>"
MACROS: Mapping[str, str] = {
    "address": f"(?:{_ADDRESS})",
    "address_or_null": f"(?:<>|{_ADDRESS})",
    "name": r"(?:\[[^\[\]\s]+\]|[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)",
    "base64": r"(?:[A-Za-z0-9+/]+={0,2}|=)",
}
_MACRO = re.compile(r"\{(address_or_null|address|name|base64)\}")
_ANY_MACRO = re.compile(r"(?<!\\)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LESSON_ID = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_STEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8: printable ASCII except ':'
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

_LESSON_KEYS = (
    "format", "id", "number", "missing", "protocol", "title", "intro", "outro", "scenario",
    "setup", "playback", "steps",
)  # fmt: skip
_STEP_KEYS = (
    "id", "kind", "protocol", "explain", "goal", "send", "expect", "state", "hints", "success",
    "solution", "manual",
)  # fmt: skip
_STATE_FLAGS = ("tls", "authenticated", "delivered", "no_defects")
#: The state checks that look at the SMTP sandbox's mailbox: a POP3 step delivers nothing.
_MAILBOX_STATE = ("delivered", "headers", "no_defects")
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


# --- Where things are in the file -----------------------------------------------------------


class _Locator:
    """Line numbers of keys and table headers, because tomllib forgets them.

    Only run on text tomllib has accepted, so it can assume the syntax is valid. Keys are
    paths as tomllib nests them, with the element index for arrays of tables:
    ``("steps", 2, "send", "pattern")``.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str | int, ...], int] = {}
        with contextlib.suppress(ValueError, IndexError):  # tomllib accepted it: cannot happen
            self._scan(text)

    def line(self, keys: tuple[str | int, ...]) -> int:
        """The key's own line, else its first child's, else its nearest parent's, else 1."""
        while keys:
            if keys in self.lines:
                return self.lines[keys]
            size = len(keys)
            children = [n for k, n in self.lines.items() if k[:size] == keys]
            if children:
                return min(children)
            keys = keys[:-1]
        return 1

    def _scan(self, text: str) -> None:
        i, line, size = 0, 1, len(text)
        table: tuple[str | int, ...] = ()
        arrays: dict[tuple[str | int, ...], int] = {}
        while i < size:
            char = text[i]
            if char == "\n":
                line += 1
                i += 1
            elif char in " \t\r":
                i += 1
            elif char == "#":
                i = _line_end(text, i)
            elif char == "[":
                is_array = text.startswith("[[", i)
                keys, _ = _parse_key(text, i + (2 if is_array else 1))
                path: tuple[str | int, ...] = ()
                for key in keys[:-1]:
                    path = (*path, key)
                    if path in arrays:
                        path = (*path, arrays[path] - 1)
                path = (*path, keys[-1])
                if is_array:
                    arrays[path] = arrays.get(path, 0) + 1
                    path = (*path, arrays[path] - 1)
                table = path
                self.lines.setdefault(path, line)
                i = _line_end(text, i)
            else:
                keys, i = _parse_key(text, i)
                self.lines.setdefault((*table, *keys), line)
                i, line = _skip_value(text, text.index("=", i) + 1, line)


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _parse_key(text: str, i: int) -> tuple[tuple[str, ...], int]:
    """A dotted key starting at i: (parts, index after it)."""
    parts: list[str] = []
    while True:
        while text[i] in " \t":
            i += 1
        if text[i] == '"':
            end = i + 1
            while text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            raw = text[i : end + 1]
            try:
                parts.append(str(tomllib.loads(f"k = {raw}")["k"]))
            except tomllib.TOMLDecodeError:  # pragma: no cover - accepted by tomllib before
                parts.append(raw[1:-1])
            i = end + 1
        elif text[i] == "'":
            end = text.index("'", i + 1)
            parts.append(text[i + 1 : end])
            i = end + 1
        else:
            match = _BARE_KEY.match(text, i)
            if match is None:
                raise ValueError("not a key")
            parts.append(match.group())
            i = match.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        return tuple(parts), i


def _skip_value(text: str, i: int, line: int) -> tuple[int, int]:
    """Move past a value (strings, arrays and inline tables may span lines)."""
    depth, size = 0, len(text)
    while i < size:
        char = text[i]
        if char == "\n":
            line += 1
            i += 1
            if depth == 0:
                return i, line
        elif text.startswith('"""', i) or text.startswith("'''", i):
            quote, i = text[i : i + 3], i + 3
            while not text.startswith(quote, i):
                if text[i] == "\\" and quote == '"""':
                    line += text[i + 1] == "\n"
                    i += 2
                else:
                    line += text[i] == "\n"
                    i += 1
            i += 3
            while i < size and text[i] == quote[0]:  # up to two quotes may end the text
                i += 1
        elif char == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif char == "'":
            i = text.index("'", i + 1) + 1
        elif char == "#":
            i = _line_end(text, i)
        else:
            depth += (char in "[{") - (char in "]}")
            i += 1
    return i, line


# --- Checking and building ------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def expand_macros(pattern: str) -> str:
    """Replace {address}, {address_or_null}, {name} and {base64} with their regexes."""
    return _MACRO.sub(lambda m: MACROS[m.group(1)], pattern)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    with warnings.catch_warnings():  # "possible nested set" and the like: not the student's problem
        warnings.simplefilter("ignore")
        return re.compile(expand_macros(pattern), re.IGNORECASE)


class LessonChecker:
    """Walks the parsed TOML once, collecting every problem and building the lesson."""

    def __init__(self, path: Path, text: str, builtin: bool, kinds: StepKinds = STEP_KINDS) -> None:
        self.path = path
        self.builtin = builtin
        self.kinds = kinds
        self.where = _Locator(text)
        self.errors: list[LessonError] = []
        self.missing: set[str] = set()
        self.step_names: dict[int, str] = {}
        self.protocol = "smtp"  # the lesson's, the default of its steps

    def error(self, keys: tuple[str | int, ...], text: str) -> None:
        self.errors.append(LessonError(self.path, self.where.line(keys), text))

    def name(self, keys: tuple[str | int, ...]) -> str:
        """How a key is called in a message: `goal.zh`, or `step 2 ("noop"): goal.zh`."""
        if len(keys) >= 2 and keys[0] == "steps" and isinstance(keys[1], int):
            label = f"step {keys[1] + 1}"
            if keys[1] in self.step_names:
                label += f' ("{self.step_names[keys[1]]}")'
            rest = ".".join(str(k) for k in keys[2:])
            return f"{label}: {rest}" if rest else label
        return ".".join(str(k) for k in keys)

    def unknown_keys(
        self, keys: tuple[str | int, ...], table: dict[str, Any], known: Sequence[str]
    ) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                suggestion = f" (did you mean {close[0]!r}?)" if close else ""
                known_list = ", ".join(known)
                self.error(
                    (*keys, key),
                    f"{self.name((*keys, key))}: unknown key{suggestion}; known keys: {known_list}",
                )

    def table(self, keys: tuple[str | int, ...], value: object) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(keys, f"{self.name(keys)}: must be a table ({self.name(keys)}.KEY = ...)")
            return None
        return value

    def languages(self, keys: tuple[str | int, ...], value: dict[str, Any]) -> None:
        """Report every language the file should have but does not."""
        for language in LANGUAGES:
            if language in value or language in self.missing:
                continue
            where = self.name((*keys, language))
            if language == "en":
                self.error(keys, f"{where}: missing (English is always required)")
            elif self.builtin:
                self.error(keys, f"{where}: missing (built-in lessons are fully translated)")
            else:
                self.error(
                    keys, f'{where}: missing (write it, or declare missing = ["{language}"])'
                )

    def text(
        self, keys: tuple[str | int, ...], value: object, *, required: bool, one_line: bool = False
    ) -> Text | None:
        name = self.name(keys)
        leaf = ".".join(str(k) for k in keys if isinstance(k, str) and k != "steps")
        if value is None:
            if required:
                self.error(keys, f"{name}: missing; write {leaf}.en = ... and {leaf}.zh = ...")
            return None
        if not isinstance(value, dict):
            self.error(
                keys,
                f'{name}: needs one text per language: {leaf}.en = "..." and {leaf}.zh = "..."',
            )
            return None
        values: dict[str, str] = {}
        for language, text in value.items():
            where = self.name((*keys, language))
            if language not in LANGUAGES:
                self.error((*keys, language), f"{where}: unknown language (use en or zh)")
            elif not isinstance(text, str) or not text.strip():
                self.error((*keys, language), f"{where}: must be non-empty text")
            elif one_line and "\n" in text.strip():
                self.error((*keys, language), f"{where}: must be a single line")
            elif language == "zh" and not _CJK.search(text):
                self.error((*keys, language), f"{where}: contains no Chinese characters")
            else:
                values[language] = text.strip()
        self.languages(keys, value)
        return Text(values)

    def hints(self, keys: tuple[str | int, ...], value: object) -> dict[str, tuple[str, ...]]:
        name = self.name(keys)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(keys, f'{name}: write {name}.en = ["...", "..."] and {name}.zh = [...]')
            return {}
        hints: dict[str, tuple[str, ...]] = {}
        for language, items in value.items():
            where = self.name((*keys, language))
            if language not in LANGUAGES:
                self.error((*keys, language), f"{where}: unknown language (use en or zh)")
            elif (
                not isinstance(items, list)
                or not items
                or not all(isinstance(item, str) and item.strip() for item in items)
            ):
                self.error((*keys, language), f'{where}: must be a list of texts, ["...", "..."]')
            elif language == "zh" and not _CJK.search("".join(items)):
                self.error((*keys, language), f"{where}: contains no Chinese characters")
            else:
                hints[language] = tuple(item.strip() for item in items)
        self.languages(keys, value)
        if "en" in hints and "zh" in hints and len(hints["en"]) != len(hints["zh"]):
            self.error(
                (*keys, "zh"),
                f"{name}: {len(hints['en'])} English hints but {len(hints['zh'])} Chinese ones",
            )
        return hints

    # -- the lesson ----------------------------------------------------------------------

    def lesson(self, data: dict[str, Any]) -> Lesson | None:
        self.unknown_keys((), data, _LESSON_KEYS)
        fmt = data.get("format")
        if fmt is None:
            self.error(("format",), f"format: missing; the first line should be format = {FORMAT}")
        elif not _is_int(fmt) or fmt != FORMAT:
            self.error(
                ("format",),
                f"format: {show(fmt)} is not a format this smtp-tutor reads ({FORMAT})",
            )
        lesson_id = data.get("id")
        if lesson_id is None:
            self.error(("id",), 'id: missing; e.g. id = "greeting"')
        elif not isinstance(lesson_id, str) or not _LESSON_ID.fullmatch(lesson_id):
            self.error(
                ("id",), f'id: {show(lesson_id)} must be a lower-case slug like "first-mail"'
            )
        number = data.get("number")
        if number is None:
            self.error(("number",), "number: missing; e.g. number = 14")
        elif not _is_int(number) or number < 0:
            self.error(("number",), f"number: {show(number)} must be a whole number, 0 or more")
        self.read_missing(data.get("missing"))
        self.protocol = self.read_protocol(("protocol",), data.get("protocol"), "smtp")
        title = self.text(("title",), data.get("title"), required=True, one_line=True)
        intro = self.text(("intro",), data.get("intro"), required=True)
        outro = self.text(("outro",), data.get("outro"), required=False)
        scenario = self.scenario(data.get("scenario"))
        setup_mail = self.setup(data.get("setup"))
        playback = self.playback(data.get("playback"))
        steps = self.steps(data.get("steps"))
        self.rehearse(steps)
        if self.errors or title is None or intro is None:
            return None
        return Lesson(
            id=cast(str, lesson_id),
            number=cast(int, number),
            title=title,
            intro=intro,
            outro=outro,
            scenario=scenario,
            playback=playback,
            steps=steps,
            missing=tuple(sorted(self.missing)),
            path=self.path,
            builtin=self.builtin,
            id_line=self.where.line(("id",)),
            protocol=self.protocol,
            setup_mail=setup_mail,
        )

    def read_protocol(self, keys: tuple[str | int, ...], value: object, default: str) -> str:
        """A `protocol` key: one of the protocols some step kind speaks."""
        if value is None:
            return default
        known = [p for p in PROTOCOLS if p in self.kinds.protocols()]
        if not isinstance(value, str) or value.lower() not in known:
            names = ", ".join(f'"{p}"' for p in known)
            self.error(keys, f"{self.name(keys)}: {show(value)} is not a protocol ({names})")
            return default
        return value.lower()

    def setup(self, value: object) -> tuple[SetupMail, ...]:
        """`[[setup.mail]]`: messages filed to an account's mailbox before the lesson."""
        table = self.table(("setup",), value)
        if table is None:
            return ()
        self.unknown_keys(("setup",), table, ("mail",))
        mails = table.get("mail", [])
        if not isinstance(mails, list) or not all(isinstance(m, dict) for m in mails):
            self.error(
                ("setup", "mail"), "setup.mail: write each message as a [[setup.mail]] table"
            )
            return ()
        found: list[SetupMail] = []
        for index, mail in enumerate(mails):
            keys: tuple[str | int, ...] = ("setup", "mail", index)
            where = f"setup.mail {index + 1}"
            self.unknown_keys(keys, mail, ("account", "text"))
            account, text = mail.get("account"), mail.get("text")
            if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
                self.error((*keys, "account"), f'{where}: account must be a name, e.g. "student"')
            elif not isinstance(text, str) or "\n\n" not in text.strip().replace("\r", ""):
                self.error(
                    (*keys, "text"),
                    f"{where}: text must be a message: headers, an empty line and a body",
                )
            else:
                found.append(SetupMail(account, text.strip("\n") + "\n", self.where.line(keys)))
        return tuple(found)

    def rehearse(self, steps: Sequence[Step]) -> None:
        """Play the POP3 steps' solutions on paper, in order; report each refused line.

        Only a lesson without other problems is rehearsed: a step left out would make the
        lines after it look out of order.
        """
        if self.errors:
            return
        rehearsal = Rehearsal()
        for index, step in enumerate(steps):
            if step.protocol != "pop3" or step.kind_spec is None:
                continue
            keys: tuple[str | int, ...] = ("steps", index, "solution")
            for problem in step.kind_spec.rehearse(step, rehearsal):
                self.error(keys, f"{self.name(keys)}: {problem}")

    def read_missing(self, value: object) -> None:
        if value is None:
            return
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error(("missing",), 'missing: must be a list of languages, e.g. missing = ["zh"]')
            return
        for language in value:
            if language == "en":
                self.error(("missing",), "missing: English cannot be missing; every lesson has it")
            elif language not in LANGUAGES:
                self.error(("missing",), f"missing: unknown language {show(language)} (use zh)")
            else:
                self.missing.add(language)
        if self.missing and self.builtin:
            self.error(("missing",), "missing: built-in lessons must be fully translated")

    def scenario(self, value: object) -> dict[str, object]:
        table = self.table(("scenario",), value)
        if table is None:
            return {}
        self.unknown_keys(("scenario",), table, tuple(SCENARIO_KEYS))
        scenario: dict[str, object] = {}
        for key, item in table.items():
            wanted = SCENARIO_KEYS.get(key)
            if wanted is None:
                continue
            where = ("scenario", key)
            if wanted is bool:
                if not isinstance(item, bool):
                    self.error(where, f"scenario.{key}: must be true or false, not {show(item)}")
                    continue
            elif isinstance(item, bool) or not isinstance(item, wanted):
                kind = "a whole number" if wanted is int else "a number of seconds"
                self.error(where, f"scenario.{key}: must be {kind}, not {show(item)}")
                continue
            else:
                minimum, said = _SCENARIO_MINIMUM[key]
                if not math.isfinite(item) or item < minimum:
                    self.error(where, f"scenario.{key}: must be {said}, not {show(item)}")
                    continue
            scenario[key] = item
        return scenario

    def playback(self, value: object) -> Playback | None:
        table = self.table(("playback",), value)
        if table is None:
            return None
        self.unknown_keys(("playback",), table, ("transcript", "note"))
        transcript = table.get("transcript")
        if not isinstance(transcript, str) or not transcript.strip():
            self.error(
                ("playback", "transcript"),
                'playback.transcript: must be the dialogue, """S: 220 ..."""',
            )
            transcript = ""
        note = self.text(("playback", "note"), table.get("note"), required=False)
        return Playback(transcript.strip("\n"), note)

    # -- the steps -----------------------------------------------------------------------

    def steps(self, value: object) -> tuple[Step, ...]:
        if value is None:
            self.error(("steps",), "steps: a lesson needs at least one [[steps]] table")
            return ()
        if not isinstance(value, list) or not value or not all(isinstance(s, dict) for s in value):
            self.error(("steps",), "steps: write each step as a [[steps]] table")
            return ()
        for index, raw in enumerate(value):
            if isinstance(raw.get("id"), str):
                self.step_names[index] = raw["id"]
        seen: dict[str, int] = {}
        steps = [self.step(index, raw, seen) for index, raw in enumerate(value)]
        return tuple(step for step in steps if step is not None)

    def step(self, index: int, raw: dict[str, Any], seen: dict[str, int]) -> Step | None:
        keys: tuple[str | int, ...] = ("steps", index)
        before = len(self.errors)
        self.unknown_keys(keys, raw, (*_STEP_KEYS, *self.kinds.own_keys()))
        step_id = raw.get("id")
        if step_id is None:
            self.error(keys, f'{self.name(keys)}: id missing; e.g. id = "ehlo"')
        elif not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
            self.error((*keys, "id"), f"{self.name(keys)}: id {show(step_id)} must be one word")
        elif step_id in seen:
            self.error(
                (*keys, "id"),
                f"{self.name(keys)}: id {step_id!r} is already used by step {seen[step_id] + 1}",
            )
        else:
            seen[step_id] = index
        protocol = self.read_protocol((*keys, "protocol"), raw.get("protocol"), self.protocol)
        kind_name = raw.get("kind", self.kinds.default_for(protocol).name)
        if isinstance(kind_name, str) and kind_name in self.kinds:
            kind = self.kinds[kind_name]
            if kind.protocol != protocol:
                fitting = ", ".join(k.name for k in self.kinds.values() if k.protocol == protocol)
                self.error(
                    (*keys, "kind"),
                    f"{self.name((*keys, 'kind'))}: {kind.name} steps speak"
                    f" {kind.protocol.upper()} and this step speaks {protocol.upper()}"
                    f" (its kinds: {fitting})",
                )
        else:
            known = ", ".join(self.kinds)
            self.error(
                (*keys, "kind"),
                f"{self.name((*keys, 'kind'))}: {show(kind_name)} is not one of {known}",
            )
            kind = self.kinds.default_for(protocol)
        explain = self.text((*keys, "explain"), raw.get("explain"), required=True)
        goal = self.text((*keys, "goal"), raw.get("goal"), required=True, one_line=True)
        success = self.text((*keys, "success"), raw.get("success"), required=True)
        verbs, pattern = self.send(keys, kind, raw.get("send"))
        expect = self.expect(keys, kind, raw.get("expect"))
        state = self.state(keys, raw.get("state"), protocol)
        hints = self.hints((*keys, "hints"), raw.get("hints"))
        manual = raw.get("manual", False)
        if not isinstance(manual, bool):
            self.error((*keys, "manual"), f"{self.name((*keys, 'manual'))}: must be true or false")
            manual = False
        elif manual and not kind.takes_manual:
            manual_kinds = ", ".join(k.name for k in self.kinds.values() if k.takes_manual)
            self.error(
                (*keys, "manual"),
                f"{self.name((*keys, 'manual'))}: only {manual_kinds} steps have a manual mode",
            )
        extra = self.own_keys(keys, kind, raw)
        solution = self.solution(keys, kind, raw.get("solution"), verbs, pattern)
        if len(self.errors) > before or explain is None or goal is None or success is None:
            return None
        return Step(
            id=cast(str, step_id),
            kind=kind.name,
            explain=explain,
            goal=goal,
            verbs=verbs,
            pattern=pattern,
            expect=expect,
            state=state,
            hints=hints,
            success=success,
            solution=solution,
            manual=manual,
            line_no=self.where.line(keys),
            solution_line=self.where.line((*keys, "solution")),
            kind_spec=kind,
            extra=extra,
            protocol=protocol,
        )

    def own_keys(
        self, keys: tuple[str | int, ...], kind: StepKind, raw: dict[str, Any]
    ) -> dict[str, object]:
        """The keys only some kinds take: refused on other kinds, read by the step's own."""
        for key in self.kinds.own_keys():
            if key in raw and key not in kind.own_keys:
                takers = ", ".join(k.name for k in self.kinds.values() if key in k.own_keys)
                self.error((*keys, key), f"{self.name((*keys, key))}: only {takers} steps take it")

        def problem(key: str, text: str) -> None:
            self.error((*keys, key), f"{self.name((*keys, key))}: {text}")

        return kind.read_keys(raw, problem)

    def send(
        self, keys: tuple[str | int, ...], kind: StepKind, value: object
    ) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
        where = (*keys, "send")
        name = self.name(where)
        if not kind.takes_send:
            if value is not None:
                self.error(
                    where, f"{name}: {kind.name} steps have no send; expect and state check them"
                )
            return (), None
        table = self.table(where, value)
        verbs: tuple[str, ...] = ()
        pattern: re.Pattern[str] | None = None
        if table is not None:
            self.unknown_keys(where, table, ("verb", "pattern"))
            raw_verbs = table.get("verb")
            if isinstance(raw_verbs, str):
                raw_verbs = [raw_verbs]
            if raw_verbs is not None:
                if (
                    not isinstance(raw_verbs, list)
                    or not raw_verbs
                    or not all(isinstance(v, str) and len(v.split()) == 1 for v in raw_verbs)
                ):
                    self.error(
                        (*where, "verb"),
                        f'{name}.verb: must be a list of single words, e.g. ["MAIL"]',
                    )
                else:
                    verbs = tuple(v.strip().upper() for v in raw_verbs)
            raw_pattern = table.get("pattern")
            if raw_pattern is not None:
                pattern = self.pattern((*where, "pattern"), raw_pattern)
        if not verbs and pattern is None and "pattern" not in (table or {}):
            if kind.default_verbs:
                verbs = kind.default_verbs
            elif "verb" not in (table or {}):
                self.error(
                    where, f"{name}: give send.verb or send.pattern (what the student types)"
                )
        return verbs, pattern

    def pattern(self, keys: tuple[str | int, ...], value: object) -> re.Pattern[str] | None:
        name = self.name(keys)
        if not isinstance(value, str) or not value:
            self.error(keys, f"{name}: must be a regular expression in a string")
            return None
        unknown = sorted({m for m in _ANY_MACRO.findall(value) if m not in MACROS})
        if unknown:
            known = ", ".join("{" + m + "}" for m in MACROS)
            self.error(keys, f"{name}: unknown macro {{{unknown[0]}}} (known: {known})")
            return None
        try:
            return compile_pattern(value)
        except (re.error, RecursionError, OverflowError) as exc:
            detail = getattr(exc, "msg", str(exc))
            self.error(keys, f"{name}: not a valid regular expression: {detail}")
            return None

    def expect(self, keys: tuple[str | int, ...], kind: StepKind, value: object) -> tuple[str, ...]:
        where = (*keys, "expect")
        name = self.name(where)
        if value is None:
            self.error(keys, f'{name}: missing; e.g. expect.code = ["250"]')
            return ()
        table = self.table(where, value)
        if table is None:
            return ()
        self.unknown_keys(where, table, ("code",))
        codes = table.get("code")
        if isinstance(codes, str):
            codes = [codes]
        if not isinstance(codes, list) or not codes:
            self.error(
                (*where, "code"), f'{name}.code: must be a list of codes, e.g. ["250"] or ["2xx"]'
            )
            return ()
        good: list[str] = []
        for code in codes:
            item = kind.parse_expect(code)
            if item is not None:
                good.append(item)
            else:
                self.error((*where, "code"), f"{name}.code: {show(code)} is not {kind.expect_help}")
        return tuple(good)

    def state(self, keys: tuple[str | int, ...], value: object, protocol: str) -> StepState:
        where = (*keys, "state")
        table = self.table(where, value)
        if table is None:
            return StepState()
        self.unknown_keys(where, table, (*_STATE_FLAGS, "headers"))
        if protocol != "smtp":
            for key in _MAILBOX_STATE:
                if key in table:
                    self.error(
                        (*where, key),
                        f"{self.name((*where, key))}: only SMTP steps deliver mail to check",
                    )
        flags: dict[str, bool | None] = {}
        for flag in _STATE_FLAGS:
            item = table.get(flag)
            if item is not None and not isinstance(item, bool):
                self.error((*where, flag), f"{self.name((*where, flag))}: must be true or false")
                item = None
            flags[flag] = item
        headers = table.get("headers", [])
        if not isinstance(headers, list) or not all(
            isinstance(h, str) and _HEADER_NAME.fullmatch(h) for h in headers
        ):
            self.error(
                (*where, "headers"),
                f"{self.name((*where, 'headers'))}: must be a list of header names"
                ' like ["Date", "From"]',
            )
            headers = []
        return StepState(headers=tuple(headers), **flags)

    def solution(
        self,
        keys: tuple[str | int, ...],
        kind: StepKind,
        value: object,
        verbs: tuple[str, ...],
        pattern: re.Pattern[str] | None,
    ) -> tuple[str, ...]:
        where = (*keys, "solution")
        name = self.name(where)
        if value is None:
            self.error(keys, f'{name}: missing; list exactly what the student types, e.g. ["NOOP"]')
            return ()
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.error(where, f'{name}: must be a non-empty list of lines, e.g. ["NOOP"]')
            return ()
        if any("\n" in line or "\r" in line for line in value):
            self.error(where, f"{name}: each line must be its own list item")
            return ()
        for problem in kind.solution_problems(value, verbs, pattern):
            self.error(where, f"{name}: {problem}")
        return tuple(value)
