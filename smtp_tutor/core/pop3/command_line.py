"""What a POP3 client line says, and the bytes it puts on the wire (RFC 1939 §3, RFC 2449 §3).

Parsing is lenient on purpose, as for SMTP: it describes what a student typed, mistakes
included, so the checker can point at the mistake. Encoding is strict: a line holding CR or
LF would be two commands on the wire, so it is refused rather than sent.
"""

from __future__ import annotations

import re

from smtp_tutor.core.catalogue import Said
from smtp_tutor.core.command_line import wire_bytes
from smtp_tutor.core.records import record

#: Every command of RFC 1939, RFC 2449 (CAPA), RFC 2595 (STLS), RFC 5034 (AUTH), RFC 6856.
KNOWN_COMMANDS: tuple[str, ...] = (
    "USER", "PASS", "APOP", "AUTH", "STLS", "CAPA", "UTF8", "LANG",
    "STAT", "LIST", "UIDL", "TOP", "RETR", "DELE", "RSET", "NOOP", "QUIT",
)  # fmt: skip

#: Commands that take no argument (RFC 1939 §5–§6, RFC 2449 §5, RFC 2595 §4, RFC 6856 §3).
NO_ARGUMENT = frozenset({"STAT", "RSET", "NOOP", "QUIT", "STLS", "CAPA", "UTF8"})

#: Commands whose arguments are numbers, and how many they take: (fewest, most). The first
#: is a message number; TOP's second is how many lines of the body to send.
NUMBER_ARGUMENTS: dict[str, tuple[int, int]] = {
    "RETR": (1, 1),
    "DELE": (1, 1),
    "LIST": (0, 1),
    "UIDL": (0, 1),
    "TOP": (2, 2),
}

_LINE = re.compile(r"^\s*(\S*)(?:\s(.*))?$", re.DOTALL)


class LineError(ValueError):
    """A line that cannot go on the wire as one command (it holds CR or LF)."""


@record(frozen=True)
class Pop3Command:
    """One client line split into keyword and argument."""

    line: str
    keyword: str  # upper-cased first word; "" for an empty line
    argument: str  # everything after the first space, as typed: PASS keeps its spaces

    @property
    def args(self) -> tuple[str, ...]:
        return tuple(self.argument.split())

    @property
    def known(self) -> bool:
        return self.keyword in KNOWN_COMMANDS


def parse_command(line: str) -> Pop3Command:
    """Split a line into keyword and argument; never fails."""
    match = _LINE.match(line)
    assert match is not None  # the pattern accepts any text
    return Pop3Command(line=line, keyword=match.group(1).upper(), argument=match.group(2) or "")


def parse_number(text: str) -> int | None:
    """A message number or line count as RFC 1939 writes it (ASCII digits); None if not one."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


def encode_line(line: str) -> bytes:
    """The wire bytes of a command line: the project's one encoder, CRLF added, CR/LF refused."""
    if "\r" in line or "\n" in line:
        raise LineError(Said("pop3_checker", "control_characters"))
    return wire_bytes(line)
