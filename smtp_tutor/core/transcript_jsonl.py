"""Reading a JSON Lines transcript back into the same `Script` the text format gives.

The console writes a session as JSON Lines with ``--format jsonl`` (docs/transcript.md, "JSON
Lines"); `smtp-tutor replay` and `smtp-tutor diagram` read either form. Theory of operation:

* Each record is turned into the lines the recorder writes for it in the text form (``C:
  line``, ``S: code text``, ``@connect``/``@tls``/``@time``/``@closed``), with the recorder's
  own helpers, and the text parser reads those: one grammar, so a JSONL transcript and the
  text transcript of the same session give the same items. Only the line numbers differ:
  here they are the JSONL records' lines, so replay and errors name the line of the file.
* A record carries a reply's latency whether or not the recorder was timing, so every reply
  with a latency gets its ``@time`` directive (the text form has them with timing on, as the
  console and ``connect`` record).
* A ``C`` record's ``line`` is the line in template form (a secret's placeholder), which is
  what replay needs; ``text``, ``bytes`` and ``t`` are not read.
* Anything malformed is one `TranscriptError`: ``file:line: why``.
* POP3 transcripts (``core/pop3/transcript.py``) reuse all of this but the S record's form.
"""

from __future__ import annotations

import math
import re

# The text form's own writing of a reply line, a directive word and a duration (the
# recorder writes with them too), so the two readings cannot drift apart.
from smtp_tutor.core.transcript import (
    Directive,
    Expect,
    Item,
    Script,
    Send,
    TranscriptError,
    directive_word,
    format_duration,
    parse_transcript,
    tls_directive,
    visible,
)

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    ServerRenderer = Callable[[dict[str, Any]], list[str]]

__all__ = ["at_record", "is_jsonl", "jsonl_text", "parse_jsonl", "parse_script", "record_field"]

_EVENTS = ("comment", "connect", "tls", "closed")


def is_jsonl(text: str) -> bool:
    """True when ``text`` is JSON Lines: its first non-blank character is ``{``.

    No text transcript line can start so (each starts with ``C:``, ``S:``, ``#`` or ``@``).
    """
    return text.removeprefix("\ufeff").lstrip().startswith("{")


def parse_script(text: str, source: str = "<transcript>") -> Script:
    """A transcript in either form, told apart by its content (not by the file's name)."""
    if is_jsonl(text):
        return parse_jsonl(text, source)
    return parse_transcript(text, source)


def parse_jsonl(text: str, source: str = "<transcript>") -> Script:
    """Read a JSON Lines transcript; `TranscriptError` names the record's line if it is bad."""
    rendered, origin = jsonl_text(text, source)
    try:
        script = parse_transcript(rendered, source)
    except TranscriptError as exc:
        raise at_record(exc, origin, source) from None
    return Script(source, tuple(_renumbered(item, origin) for item in script.items))


def jsonl_text(
    text: str, source: str = "<transcript>", server: ServerRenderer | None = None
) -> tuple[str, list[int]]:
    """The text transcript a JSONL one stands for, and for each of its lines the record's line.

    ``server`` renders an S record (the SMTP one by default; POP3 brings its own), so both
    protocols' JSONL transcripts are read by their text parser: one grammar each.
    """
    lines: list[str] = []
    origin: list[int] = []  # origin[i]: the JSONL line of text line i + 1
    for line_no, raw in enumerate(text.removeprefix("\ufeff").split("\n"), 1):
        if not raw.strip():
            continue
        try:
            rendered = _render(_record(raw), server or _server)
        except _Bad as exc:
            raise TranscriptError(str(exc), line_no, source) from None
        lines.extend(rendered)
        origin.extend([line_no] * len(rendered))
    return "".join(line + "\n" for line in lines), origin


def at_record(exc: TranscriptError, origin: list[int], source: str) -> TranscriptError:
    """The text parser's error, its line numbers turned into the JSONL records' lines."""
    where = origin[exc.line_no - 1] if 0 < exc.line_no <= len(origin) else exc.line_no
    message = re.sub(r"\bline (\d+)\b", lambda m: f"line {_at(origin, m)}", exc.message)
    return TranscriptError(message, where, source)


def record_field(record: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """``record[key]`` if it has the type ``kind``; else the reason, for the record's line."""
    try:
        return _field(record, key, kind, what)
    except _Bad as exc:
        raise ValueError(str(exc)) from None


class _Bad(Exception):
    """A record that cannot be read; the caller adds the line number."""


def _at(origin: list[int], match: re.Match[str]) -> int:
    number = int(match.group(1))
    return origin[number - 1] if 0 < number <= len(origin) else number


def _renumbered(item: Item, origin: list[int]) -> Item:
    line_no = origin[item.line_no - 1]
    if isinstance(item, Expect):
        return Expect(line_no, item.code, item.code_class, item.patterns, item.lines, line_no)
    if isinstance(item, Send):
        return Send(line_no, item.text, item.parts, item.data, item.chunk, item.chunk_ends)
    return Directive(line_no, item.name, item.args, item.rest)


def _json_text(value: object) -> str:
    import json

    return json.dumps(value)


def _record(raw: str) -> dict[str, Any]:
    import json  # a text script, the usual kind, never loads it

    try:
        record = json.loads(raw)
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        column = f" (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise _Bad(f"not a JSON record: {reason}{column}") from None
    except RecursionError:
        raise _Bad("not a JSON record: nested too deeply") from None
    if not isinstance(record, dict):
        raise _Bad(f"a JSONL transcript has one JSON object a line, not {type(record).__name__}")
    return record


def _field(record: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = record.get(key)
    # bool is an int to Python, never a code or a port here.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise _Bad(f"{what}: {key!r} must be {_names(kind)}, not {_json_name(value)}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a number", bool: "true or false", list: "a list"}
    names[type(None)] = "null"
    return " or ".join(names.get(k, k.__name__) for k in _kinds(kind))


def _json_name(value: object) -> str:
    if value is None:
        return "null (or missing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return {str: "a string", int: "a number", float: "a number", list: "a list"}.get(
        type(value), "an object"
    )


def _render(record: dict[str, Any], server: ServerRenderer) -> list[str]:
    """The text transcript's lines for one record, as the recorder writes them."""
    direction = record.get("dir")
    if direction == "C":
        return [_client(record)]
    if direction == "S":
        try:
            return server(record)
        except ValueError as exc:  # a protocol's own renderer says what is wrong
            raise _Bad(str(exc)) from None
    if direction == "event":
        return _event(record)
    raise _Bad(f'\'dir\' must be "C", "S" or "event", not {_json_text(direction)[:20]}')


def _client(record: dict[str, Any]) -> str:
    line = _field(record, "line", str, "a C record")
    if "\n" in line or "\r" in line:
        raise _Bad("a C record's 'line' holds a line break (the recorder writes it as {\"\\r\"})")
    return f"C: {line}"


def _server(record: dict[str, Any]) -> list[str]:
    code = _field(record, "code", (int, type(None)), "an S record")
    texts = _field(record, "lines", list, "an S record")
    if not all(isinstance(text, str) for text in texts):
        raise _Bad("an S record: 'lines' must be a list of strings")
    latency = record.get("latency")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int | float)):
        raise _Bad(f"an S record: 'latency' must be seconds or null, not {_json_name(latency)}")
    rendered = []
    if latency is not None and math.isfinite(latency):
        rendered.append(f"@time {format_duration(latency)}")
    shown_code = f"{code:03d}" if code is not None and 0 <= code <= 999 else "*"
    texts = texts or [""]
    for index, text in enumerate(texts):
        shown = visible(text)
        if shown.startswith(("/", "\\")):
            shown = "\\" + shown
        separator = "-" if index < len(texts) - 1 else " "
        rendered.append(f"S: {shown_code}{separator}{shown}".rstrip(" "))
    return rendered


def _event(record: dict[str, Any]) -> list[str]:
    event = record.get("event")
    if event == "comment":
        _field(record, "text", str, "a comment record")
        return []  # a comment is no item
    if event == "connect":
        host = _field(record, "host", str, "a connect record")
        port = _field(record, "port", int, "a connect record")
        tls = record.get("tls", False)
        if not isinstance(tls, bool):
            raise _Bad(f"a connect record: 'tls' must be true or false, not {_json_name(tls)}")
        return [f"@connect {directive_word(host)} {port}{' tls' if tls else ''}"]
    if event == "tls":
        version = _field(record, "version", (str, type(None)), "a tls record")
        cipher = _field(record, "cipher", (str, type(None)), "a tls record")
        return [tls_directive(version, cipher)]
    if event == "closed":
        reason = _field(record, "reason", (str, type(None)), "a closed record")
        return [f"@closed {' '.join(visible(reason or '').split())}".rstrip()]
    known = ", ".join(_EVENTS)
    raise _Bad(f"an event record's 'event' must be one of {known}, not {_json_text(event)[:20]}")
