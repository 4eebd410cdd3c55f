"""Guided lessons: read and check lesson files, and judge whether a step is done.

The lesson format is documented for teachers in ``lessons/README.md``; this module is its
only reader. It is pure: no sockets, no asyncio, no prompt_toolkit. The console runner owns
the session, and after each reply hands ``verdict`` an ``Observation`` of what happened.

How to think about it:

* ``load_lesson(path)`` turns one TOML file into a frozen ``Lesson``, or raises the first
  ``LessonError``; ``check_lesson_file(path)`` lists *every* problem, each with the line it is
  on, because a teacher fixing a file wants the whole list at once.
* A step is passed when the line matches ``send``, the reply code matches ``expect`` and the
  session matches ``state``. Checks are by code or class only, never by reply text.
* The engine's own words (verdict reasons, answer labels, list headings) live in
  ``smtp_tutor/data/lessons_ui.toml``; lesson texts live in the lesson file.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, cast

from smtp_tutor.core.knowledge import normalise_language
from smtp_tutor.core.messages import message

LANGUAGES = ("en", "zh")
#: Languages to try, in order, for a reader of each language ``normalise_language`` gives:
#: zh-TW, zh-HK and zh-Hant readers get the Simplified text, then English; anyone else English.
LANG_FALLBACK: Mapping[str, tuple[str, ...]] = {"en": ("en",), "zh": ("zh", "en")}
KINDS = ("command", "auth", "message")
FORMAT = 1
UI = "lessons_ui"  # the message catalogue smtp_tutor/data/lessons_ui.toml

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
_CODE = re.compile(r"[2-5][0-9][0-9]")
_CLASS = re.compile(r"[2-5]xx", re.IGNORECASE)
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8: printable ASCII except ':'
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_EXPLORING = frozenset({"NOOP", "HELP", "RSET"})

_LESSON_KEYS = (
    "format", "id", "number", "missing", "title", "intro", "outro", "scenario", "playback",
    "steps",
)  # fmt: skip
_STEP_KEYS = (
    "id", "kind", "explain", "goal", "send", "expect", "state", "hints", "success", "solution",
    "manual",
)  # fmt: skip
_STATE_FLAGS = ("tls", "authenticated", "delivered", "no_defects")


# --- The lesson, as the runner sees it ------------------------------------------------------


def language_chain(lang: str | None) -> tuple[str, ...]:
    """The languages to try for a reader of `lang`, best first."""
    return LANG_FALLBACK[normalise_language(lang)]


@dataclass(frozen=True)
class Text:
    """One text in every language it was written in."""

    values: Mapping[str, str]

    def get(self, lang: str | None) -> tuple[str, bool]:
        """(text, translated): False when the reader's language was missing and we fell back."""
        for position, language in enumerate(language_chain(lang)):
            value = self.values.get(language)
            if value:
                return value, position == 0
        return "", False


@dataclass(frozen=True)
class StepState:
    """Checks on the session after the reply; None means "not checked"."""

    tls: bool | None = None
    authenticated: bool | None = None
    delivered: bool | None = None
    headers: tuple[str, ...] = ()
    no_defects: bool | None = None


@dataclass(frozen=True)
class Step:
    id: str
    kind: Literal["command", "auth", "message"]
    explain: Text
    goal: Text
    verbs: tuple[str, ...]  # upper case; empty: any verb
    pattern: re.Pattern[str] | None  # macros expanded, case-insensitive, whole line
    expect: tuple[str, ...]  # "250", "2xx", ...
    state: StepState
    hints: Mapping[str, tuple[str, ...]]
    success: Text
    solution: tuple[str, ...]
    manual: bool
    line_no: int  # the line of its [[steps]] header


@dataclass(frozen=True)
class Playback:
    transcript: str
    note: Text | None


@dataclass(frozen=True)
class Lesson:
    id: str
    number: int
    title: Text
    intro: Text
    outro: Text | None
    scenario: Mapping[str, object]  # keyword arguments for SandboxConfig
    playback: Playback | None
    steps: tuple[Step, ...]
    missing: tuple[str, ...]
    path: Path
    builtin: bool
    id_line: int = 1


class LessonError(ValueError):
    """One problem in a lesson file, printed as `path:line: message` like a compiler's."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = " ".join(str(message).split())  # always one line
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


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


def _show(value: object) -> str:
    """A value quoted for a one-line message, cut if long."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def expand_macros(pattern: str) -> str:
    """Replace {address}, {address_or_null}, {name} and {base64} with their regexes."""
    return _MACRO.sub(lambda m: MACROS[m.group(1)], pattern)


def _compile(pattern: str) -> re.Pattern[str]:
    with warnings.catch_warnings():  # "possible nested set" and the like: not the student's problem
        warnings.simplefilter("ignore")
        return re.compile(expand_macros(pattern), re.IGNORECASE)


class _Checker:
    """Walks the parsed TOML once, collecting every problem and building the lesson."""

    def __init__(self, path: Path, text: str, builtin: bool) -> None:
        self.path = path
        self.builtin = builtin
        self.where = _Locator(text)
        self.errors: list[LessonError] = []
        self.missing: set[str] = set()
        self.step_names: dict[int, str] = {}

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
                f"format: {_show(fmt)} is not a format this smtp-tutor reads ({FORMAT})",
            )
        lesson_id = data.get("id")
        if lesson_id is None:
            self.error(("id",), 'id: missing; e.g. id = "greeting"')
        elif not isinstance(lesson_id, str) or not _LESSON_ID.fullmatch(lesson_id):
            self.error(
                ("id",), f'id: {_show(lesson_id)} must be a lower-case slug like "first-mail"'
            )
        number = data.get("number")
        if number is None:
            self.error(("number",), "number: missing; e.g. number = 14")
        elif not _is_int(number) or number < 0:
            self.error(("number",), f"number: {_show(number)} must be a whole number, 0 or more")
        self.read_missing(data.get("missing"))
        title = self.text(("title",), data.get("title"), required=True, one_line=True)
        intro = self.text(("intro",), data.get("intro"), required=True)
        outro = self.text(("outro",), data.get("outro"), required=False)
        scenario = self.scenario(data.get("scenario"))
        playback = self.playback(data.get("playback"))
        steps = self.steps(data.get("steps"))
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
        )

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
                self.error(("missing",), f"missing: unknown language {_show(language)} (use zh)")
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
                    self.error(where, f"scenario.{key}: must be true or false, not {_show(item)}")
                    continue
            elif isinstance(item, bool) or not isinstance(item, wanted):
                kind = "a whole number" if wanted is int else "a number of seconds"
                self.error(where, f"scenario.{key}: must be {kind}, not {_show(item)}")
                continue
            else:
                minimum, said = _SCENARIO_MINIMUM[key]
                if not math.isfinite(item) or item < minimum:
                    self.error(where, f"scenario.{key}: must be {said}, not {_show(item)}")
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
        self.unknown_keys(keys, raw, _STEP_KEYS)
        step_id = raw.get("id")
        if step_id is None:
            self.error(keys, f'{self.name(keys)}: id missing; e.g. id = "ehlo"')
        elif not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
            self.error((*keys, "id"), f"{self.name(keys)}: id {_show(step_id)} must be one word")
        elif step_id in seen:
            self.error(
                (*keys, "id"),
                f"{self.name(keys)}: id {step_id!r} is already used by step {seen[step_id] + 1}",
            )
        else:
            seen[step_id] = index
        kind = raw.get("kind", "command")
        if kind not in KINDS:
            self.error(
                (*keys, "kind"),
                f"{self.name((*keys, 'kind'))}: {_show(kind)} is not one of {', '.join(KINDS)}",
            )
            kind = "command"
        explain = self.text((*keys, "explain"), raw.get("explain"), required=True)
        goal = self.text((*keys, "goal"), raw.get("goal"), required=True, one_line=True)
        success = self.text((*keys, "success"), raw.get("success"), required=True)
        verbs, pattern = self.send(keys, kind, raw.get("send"))
        expect = self.expect(keys, raw.get("expect"))
        state = self.state(keys, raw.get("state"))
        hints = self.hints((*keys, "hints"), raw.get("hints"))
        manual = raw.get("manual", False)
        if not isinstance(manual, bool):
            self.error((*keys, "manual"), f"{self.name((*keys, 'manual'))}: must be true or false")
            manual = False
        elif manual and kind != "auth":
            self.error(
                (*keys, "manual"),
                f"{self.name((*keys, 'manual'))}: only auth steps have a manual mode",
            )
        solution = self.solution(keys, kind, raw.get("solution"), verbs, pattern)
        if len(self.errors) > before or explain is None or goal is None or success is None:
            return None
        return Step(
            id=cast(str, step_id),
            kind=cast(Literal["command", "auth", "message"], kind),
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
        )

    def send(
        self, keys: tuple[str | int, ...], kind: str, value: object
    ) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
        where = (*keys, "send")
        name = self.name(where)
        if kind == "message":
            if value is not None:
                self.error(
                    where, f"{name}: message steps have no send; expect and state check them"
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
            if kind == "auth":
                verbs = ("AUTH",)
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
            return _compile(value)
        except (re.error, RecursionError, OverflowError) as exc:
            detail = getattr(exc, "msg", str(exc))
            self.error(keys, f"{name}: not a valid regular expression: {detail}")
            return None

    def expect(self, keys: tuple[str | int, ...], value: object) -> tuple[str, ...]:
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
            if isinstance(code, str) and (_CODE.fullmatch(code) or _CLASS.fullmatch(code)):
                good.append(code.lower())
            else:
                self.error(
                    (*where, "code"),
                    f'{name}.code: {_show(code)} is not a reply code ("250") or a class ("2xx")',
                )
        return tuple(good)

    def state(self, keys: tuple[str | int, ...], value: object) -> StepState:
        where = (*keys, "state")
        table = self.table(where, value)
        if table is None:
            return StepState()
        self.unknown_keys(where, table, (*_STATE_FLAGS, "headers"))
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
        kind: str,
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
        if kind == "message":
            if value[-1] != ".":
                self.error(where, f'{name}: a message ends with the line "."')
        elif not value[0].strip():
            self.error(where, f"{name}: the first line is empty")
        elif not _send_matches(verbs, pattern, value[0]):
            self.error(where, f"{name}: {_show(value[0])} does not match this step's send")
        return tuple(value)


def _parse_error(path: Path, text: str, exc: Exception) -> LessonError:
    """A TOML syntax error at its line, in the teacher's terms."""
    detail = str(exc)
    line = 1
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", detail)
    if found:
        line = int(found.group(1))
        detail = f"{detail[: found.start()]} (column {found.group(2)})"
    elif detail.endswith("(at end of document)"):
        line = text.count("\n") + (0 if text.endswith("\n") else 1) or 1
        detail = detail.removesuffix("(at end of document)").strip() + " at the end of the file"
    return LessonError(path, line, f"TOML syntax: {detail}")


def _check(source: Path | Traversable, builtin: bool) -> tuple[Lesson | None, list[LessonError]]:
    path = Path(str(source))
    try:
        raw = source.read_bytes()
    except OSError as exc:
        return None, [LessonError(path, 1, f"cannot read the file: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8-sig")  # a BOM from Windows Notepad is fine
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [LessonError(path, line, "not UTF-8 text; save the file as UTF-8")]
    try:
        data = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError
        return None, [_parse_error(path, text, exc)]
    checker = _Checker(path, text, builtin)
    try:
        lesson = checker.lesson(data)
    except Exception as exc:  # a bug here must not stop the other lessons loading
        error = LessonError(path, 1, f"could not check this file ({type(exc).__name__}: {exc})")
        return None, [error]
    errors = sorted(checker.errors, key=lambda e: e.line)  # stable: same line keeps order
    return (lesson if not errors else None), errors


def _is_builtin_path(path: Path) -> bool:
    root = builtin_lesson_dir()
    try:
        return isinstance(root, Path) and path.resolve().parent == root.resolve()
    except OSError:
        return False


def check_lesson_file(path: Path, *, builtin: bool | None = None) -> list[LessonError]:
    """Every problem in one lesson file, ordered by line; [] when it is fine. Never raises.

    `builtin` adds the built-in rules (no `missing`); None decides by the file's folder.
    """
    path = Path(path)
    if builtin is None:
        builtin = _is_builtin_path(path)
    return _check(path, builtin)[1]


def load_lesson(path: Path, *, builtin: bool = False) -> Lesson:
    """The lesson in `path`; raises the first LessonError (by line) when it has problems."""
    lesson, errors = _check(Path(path), builtin)
    if errors:
        raise errors[0]
    assert lesson is not None
    return lesson


def builtin_lesson_dir() -> Traversable:
    """The folder of the lessons that ship with smtp-tutor (a real Path in a normal install).

    An installed package maps the top-level `lessons/` folder to `smtp_tutor.lessons`; code
    imported straight from a source checkout (tests run from the repository root) has no such
    package, so the checkout's own `lessons/` folder is used.
    """
    try:
        return resources.files("smtp_tutor.lessons")
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[2] / "lessons"
        if not checkout.is_dir():
            raise
        return checkout


def _lesson_files(folder: Path | Traversable) -> list[Path | Traversable]:
    return sorted(
        (f for f in folder.iterdir() if f.name.endswith(".toml") and f.is_file()),
        key=lambda f: f.name,
    )


def load_lessons(extra_dirs: Sequence[Path] = ()) -> tuple[list[Lesson], list[LessonError]]:
    """The built-in lessons plus a teacher's (folders or single files), and every problem.

    A broken file is reported and skipped; it never stops the others. An extra lesson whose
    id is already taken loses to the one loaded first (built-ins are loaded first).
    """
    errors: list[LessonError] = []
    sources: list[tuple[Path | Traversable, bool]] = []
    root = builtin_lesson_dir()
    try:
        sources += [(f, True) for f in _lesson_files(root)]
    except OSError as exc:
        errors.append(LessonError(Path(str(root)), 1, f"cannot list the lessons: {exc}"))
    root_path = Path(str(root)).resolve() if isinstance(root, Path) else None
    for extra in extra_dirs:
        where = Path(extra).expanduser()
        try:
            if where.is_dir():
                if where.resolve() != root_path:  # the built-in folder given again
                    sources += [(f, False) for f in _lesson_files(where)]
            elif where.is_file():
                sources.append((where, False))
            else:
                errors.append(LessonError(where, 1, "no such lesson file or folder"))
        except OSError as exc:
            errors.append(LessonError(where, 1, f"cannot read: {exc.strerror or exc}"))
    lessons: dict[str, Lesson] = {}
    for source, builtin in sources:
        lesson, problems = _check(source, builtin)
        errors += problems
        if lesson is None:
            continue
        if lesson.id in lessons:
            first = lessons[lesson.id].path
            text = f"lesson id {lesson.id!r} is already used by {first}; this file was not loaded"
            errors.append(LessonError(lesson.path, lesson.id_line, text))
            continue
        lessons[lesson.id] = lesson
    return sorted(lessons.values(), key=lambda x: (x.number, x.id)), errors


def find_lesson(lessons: Sequence[Lesson], key: str) -> Lesson | None:
    """By id ("greeting"), by number ("1", "01") or by file stem ("01-greeting")."""
    wanted = key.strip().lower()
    for lesson in lessons:
        if lesson.id == wanted:
            return lesson
    if wanted.isascii() and wanted.isdigit():
        numbered = [lesson for lesson in lessons if lesson.number == int(wanted)]
        if numbered:
            return sorted(numbered, key=lambda x: not x.builtin)[0]
    for lesson in lessons:
        if lesson.path.stem.lower() == wanted:
            return lesson
    return None


# --- Judging a step -------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """What happened when the student did something during a step; built by the runner."""

    line: str  # the command line sent (auth: the AUTH line; message: "")
    code: int | None  # the reply code that decides the step
    tls: bool = False
    authenticated: bool = False
    delivered: bool = False  # a new message was stored in the sandbox during this step
    headers: frozenset[str] = frozenset()  # lower-case header names of that message
    defects: int = 0  # defects Python's email parser found in it


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""  # an id under [reason] in lessons_ui.toml; "" when ok
    params: Mapping[str, str] = field(default_factory=dict)


def _verb(line: str) -> str:
    words = line.split(None, 1)
    return words[0].upper() if words else ""


def _send_matches(verbs: Sequence[str], pattern: re.Pattern[str] | None, line: str) -> bool:
    if verbs and _verb(line) not in verbs:
        return False
    return pattern is None or pattern.fullmatch(line.strip()) is not None


def matches_send(step: Step, line: str) -> bool:
    """The verb is one of the step's (if given) and the pattern matches the line (if given)."""
    return _send_matches(step.verbs, step.pattern, line)


def is_for_step(step: Step, line: str) -> bool:
    """False for a line the runner should let through unjudged: blank, or NOOP/HELP/RSET
    when the step does not ask for them (students explore)."""
    verb = _verb(line)
    if not verb:
        return False
    if verb not in _EXPLORING or verb in step.verbs:
        return True
    return not step.verbs and step.pattern is not None and matches_send(step, line)


def code_matches(expect: Sequence[str], code: int | None) -> bool:
    """Whether `code` is one of the codes ("250") or classes ("2xx") in `expect`."""
    if code is None or isinstance(code, bool):
        return False
    if not expect:
        return True
    for item in expect:
        text = str(item).strip().lower()
        if _CLASS.fullmatch(text) and code // 100 == int(text[0]):
            return True
        if _CODE.fullmatch(text) and int(text) == code:
            return True
    return False


def verdict(step: Step, obs: Observation) -> Verdict:
    """Whether the step is done; if not, the first reason why (the runner adds the goal)."""
    if step.kind == "message":
        if obs.line.strip():
            return Verdict(False, "wrong_command")
    elif not matches_send(step, obs.line):
        return Verdict(False, "wrong_command")
    if not code_matches(step.expect, obs.code):
        got = "—" if obs.code is None else str(obs.code)
        return Verdict(False, "wrong_code", {"got": got, "want": ", ".join(step.expect)})
    state = step.state
    for wanted, actual, missing, unwanted in (
        (state.tls, obs.tls, "not_tls", "tls_unexpected"),
        (state.authenticated, obs.authenticated, "not_authenticated", "authenticated_unexpected"),
        (state.delivered, obs.delivered, "not_delivered", "delivered_unexpected"),
    ):
        if wanted is not None and wanted != actual:
            return Verdict(False, missing if wanted else unwanted)
    if state.headers or state.no_defects is not None:
        if not obs.delivered:
            return Verdict(False, "not_delivered")
        present = {h.lower() for h in obs.headers}
        for header in state.headers:
            if header.lower() not in present:
                return Verdict(False, "missing_header", {"header": header})
        if state.no_defects and obs.defects:
            return Verdict(False, "defects", {"count": str(obs.defects)})
        if state.no_defects is False and not obs.defects:
            return Verdict(False, "defects_expected")
    return Verdict(True)


def render_reason(result: Verdict, lang: str) -> str:
    """The reason in words; "" for a passed step."""
    if result.ok:
        return ""
    return message(UI, f"reason.{result.reason}", lang, **result.params)


def _hints(step: Step, lang: str) -> tuple[tuple[str, ...], bool]:
    for position, language in enumerate(language_chain(lang)):
        if step.hints.get(language):
            return step.hints[language], position == 0
    return (), True


def format_solution(step: Step, lang: str) -> str:
    """The step's answer, laid out as what to type at the console's prompts."""
    lines = [message(UI, "answer_intro", lang)]
    for number, line in enumerate(step.solution):
        if number == 1 and step.kind == "auth" and not step.manual:
            lines.append("  " + message(UI, "answer_auth_prompts", lang))
        lines.append("    " + (line if line else message(UI, "answer_empty_line", lang)))
    return "\n".join(lines)


def hint_text(step: Step, level: int, lang: str) -> tuple[str, int]:
    """(text, next level): the step's hints in order, then its goal, then the full answer.

    The last level repeats. A text that fell back to English carries the "not translated"
    note already, as the runner's other texts do.
    """
    hints, hints_translated = _hints(step, lang)
    goal, goal_translated = step.goal.get(lang)
    levels = [(hint, hints_translated) for hint in hints]
    levels += [(goal, goal_translated), (format_solution(step, lang), True)]
    last = len(levels) - 1
    level = min(max(level, 0), last)
    text, translated = levels[level]
    if not translated:
        text = f"{message(UI, 'not_translated', lang)}\n{text}"
    return text, min(level + 1, last)
