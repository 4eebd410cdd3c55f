"""What a client line says: its verb, its argument, and for MAIL/RCPT the path and parameters.

Parsing is lenient on purpose — it describes what a student typed, mistakes included, so the
checker can point at the mistake instead of refusing to look.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from smtp_tutor.core.patterns import LazyPattern
from smtp_tutor.core.records import field, record
from smtp_tutor.core.verbs import verb as verb_row
from smtp_tutor.core.verbs import verbs

#: Verbs of RFC 5321 and of the common extensions, in the order a session uses them
#: (the tables of data/verbs.toml).
KNOWN_VERBS: tuple[str, ...] = tuple(verbs())

#: The verbs that take a path (MAIL FROM:<…>, RCPT TO:<…>) and the words before the colon.
_PATH_KEYWORDS = {name: row.path_keyword for name, row in verbs().items() if row.argument == "path"}


def _alternatives(words: Iterable[str]) -> str:
    """A regex alternation of `words`, longest first so that no word hides a longer one."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


_PATH_COMMAND = LazyPattern(
    rf"^(?P<verb>{_alternatives(_PATH_KEYWORDS)})(?P<space1>\s*)"
    rf"(?P<keyword>{_alternatives(_PATH_KEYWORDS.values())})?(?P<space2>\s*)"
    r"(?P<colon>:?)(?P<space3>\s*)(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)


def wire_bytes(line: str) -> bytes:
    """The bytes a line puts on the wire: UTF-8 plus CRLF — the one encoder of the project.

    A lone surrogate that stands for a byte the terminal could not decode
    (``surrogateescape``) goes out as that byte; any other surrogate, which no byte
    sequence can carry, becomes ``?`` rather than an exception that would lose the line.
    """
    try:
        return line.encode("utf-8", errors="surrogateescape") + b"\r\n"
    except UnicodeEncodeError:
        return line.encode("utf-8", errors="replace") + b"\r\n"


@record(frozen=True)
class Command:
    """One client command line, split into verb and argument."""

    line: str
    verb: str  # upper-cased first word; "" for an empty line
    argument: str  # everything after the first run of spaces, as typed

    @property
    def known(self) -> bool:
        return self.verb in KNOWN_VERBS


@record(frozen=True)
class PathArgument:
    """The argument of MAIL FROM / RCPT TO, with what is wrong in it."""

    keyword: str  # "FROM" or "TO" as typed, "" when missing
    path: str  # the address without brackets; "" for the null path <>
    bracketed: bool
    space_after_colon: bool
    space_before_colon: bool
    has_colon: bool
    parameters: dict[str, str | None] = field(default_factory=dict)
    unbalanced: bool = False


def parse_command(line: str) -> Command:
    """Split a line into verb and argument; never fails."""
    stripped = line.strip()
    verb, _, argument = stripped.partition(" ")
    return Command(line=line, verb=verb.upper(), argument=argument.strip())


def parse_path_argument(command: Command) -> PathArgument | None:
    """Pick apart `MAIL FROM:<a@b> SIZE=10`; None when the command takes no path."""
    row = verb_row(command.verb) if command.verb else None
    if row is None or row.argument != "path":
        return None
    match = _PATH_COMMAND.match(command.line.strip())
    if match is None:  # pragma: no cover - the pattern accepts any MAIL/RCPT line
        return None
    rest = match.group("rest")
    bracketed = rest.startswith("<")
    unbalanced = False
    if bracketed:
        end = rest.find(">")
        if end < 0:
            path, params_text, unbalanced = rest[1:], "", True
        else:
            path, params_text = rest[1:end], rest[end + 1 :]
    else:
        path, _, params_text = rest.partition(" ")
        unbalanced = path.endswith(">")
        path = path.rstrip(">")
    return PathArgument(
        keyword=match.group("keyword") or "",
        path=path.strip(),
        bracketed=bracketed,
        space_after_colon=bool(match.group("space3")) and bool(match.group("colon")),
        space_before_colon=bool(match.group("space2")) and bool(match.group("colon")),
        has_colon=bool(match.group("colon")),
        parameters=parse_parameters(params_text),
        unbalanced=unbalanced,
    )


def parse_parameters(text: str) -> dict[str, str | None]:
    """ESMTP parameters `KEY=value KEY2` → {"KEY": "value", "KEY2": None}; keys upper-cased."""
    params: dict[str, str | None] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        params[key.upper()] = value if sep else None
    return params


def is_valid_address(path: str) -> bool:
    """A rough RFC 5321 mailbox check: local@domain, or `postmaster`; good enough to hint."""
    if path.lower() == "postmaster":
        return True
    local, at, domain = path.rpartition("@")
    if not at or not local or not domain or " " in path:
        return False
    return len(local.encode()) <= 64 and len(domain.encode()) <= 255
