"""The command line in the reader's language: argparse's own words, the help texts, the errors.

`--help` and usage errors come before anything else runs, so the language must be known
before the arguments are parsed: `argv_language` looks for `--lang X` / `--lang=X` in the
raw arguments, and otherwise takes the language the rest of the UI takes from the
environment (`language.language_from_env`: LANGUAGE, LC_ALL, LC_MESSAGES, LANG, as gettext
does). An unknown `--lang` value falls back to the environment, and argparse then says what
is wrong with it in that language.

Two kinds of text, both in `smtp_tutor/data/cli.toml`:

* our own messages (a usage error's frame, what a bad port number is told), keyed tables
  read with `message("cli", key, lang)`;
* argparse's own words ("usage: ", "the following arguments are required: %s") and every
  help text, description and group title of the parsers, in `[[text]]` pairs of `en` and
  `zh`, looked up by their English text the way gettext looks up a msgid. The English stays
  beside each option in the code, where it is edited; a test lists any text of the parsers
  that has no translation.

argparse looks its words up through the module-level `argparse._` (and `ngettext`) at the
moment it needs them; `argparse_words(lang)` points those at the catalogue while a parser
parses or formats, and puts them back after.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import functools
import os
import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping, Sequence

from smtp_tutor.core.catalogue import load_catalogue, message
from smtp_tutor.core.language import LANGUAGES, language_from_env, normalise_language

CATALOGUE = "cli"
_parsing = contextvars.ContextVar[str]("cli_parsing_language", default="en")


def argv_language(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """The language of `--lang` in `argv` if it names one we have, else the environment's."""
    for index, arg in enumerate(argv):
        if arg == "--":
            break
        value = None
        if arg == "--lang" and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith("--lang="):
            value = arg.split("=", 1)[1]
        if value is not None and known_language(value):
            return normalise_language(value)
    return language_from_env(environ)


def known_language(value: str) -> bool:
    """Whether we have texts in the language `value` names ('zh', 'zh_CN.UTF-8', 'en-GB')."""
    primary = value.strip().split(".")[0].split("@")[0].replace("_", "-").split("-")[0]
    return primary.lower() in LANGUAGES


@functools.cache
def _translations() -> dict[str, dict[str, str]]:
    """English text → {language: text}, from the [[text]] pairs."""
    pairs = load_catalogue(CATALOGUE).get("text", [])
    return {pair["en"]: pair for pair in pairs if isinstance(pair, dict) and "en" in pair}


def translate(text: str, lang: str | None) -> str:
    """`text` (argparse's or a help text, in English) in `lang`; unchanged if we have none."""
    language = normalise_language(lang)
    if language == "en" or not text:
        return text
    return _translations().get(text, {}).get(language) or text


def has_translation(text: str, lang: str) -> bool:
    return bool(_translations().get(text, {}).get(lang))


def parsing_language() -> str:
    """The language of the parser now parsing: for the words of an option's type check."""
    return _parsing.get()


def say_in(key: str, lang: str | None, /, **params: object) -> str:
    """One of our own messages (cli.toml) in `lang`."""
    return message(CATALOGUE, key, lang, **params)


def say(key: str, /, **params: object) -> str:
    """One of our own messages (cli.toml), in the language of the parser now parsing."""
    return message(CATALOGUE, key, parsing_language(), **params)


@contextlib.contextmanager
def argparse_words(lang: str) -> Iterator[None]:
    """argparse says its own words (and our type checks theirs) in `lang` meanwhile."""
    saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]
    token = _parsing.set(lang)

    def gettext(text: str) -> str:
        return translate(text, lang)

    def ngettext(singular: str, plural: str, n: int) -> str:
        return translate(singular if n == 1 else plural, lang)

    argparse._ = gettext  # type: ignore[attr-defined]
    argparse.ngettext = ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]
        _parsing.reset(token)


# A line may break at a space, and between two wide (CJK) characters; never before closing
# punctuation, which stays with what it closes. (Compiled when help is wrapped: its wide
# character range costs 3 ms to compile, which every start would pay.)
_units = functools.cache(lambda: re.compile(r"\s+|[^\s\u1100-\uffff]+|.", re.DOTALL))
_NO_BREAK_BEFORE = set("，。、；：！？）」』》〉”’)]}.,;:!?%")
_NO_BREAK_AFTER = tuple("（「『《〈“‘([{")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _is_wide(text: str) -> bool:
    return any(unicodedata.east_asian_width(ch) in "WF" for ch in text)


class _Columns(str):
    """A string whose len() is its width on screen: argparse indents the lines of a long
    usage by len(prefix), and "用法：" is three characters but six columns."""

    def __len__(self) -> int:
        return _width(self)


def wrap_wide(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` columns, counting a CJK character as two.

    argparse wraps with textwrap, which breaks only at spaces and counts characters, so a
    Chinese help text runs past the terminal in one line. This breaks between characters.
    """
    units: list[str] = []
    for unit in _units().findall(" ".join(text.split())):
        if units and not units[-1].isspace() and not unit.isspace():
            glued = unit in _NO_BREAK_BEFORE or units[-1].endswith(_NO_BREAK_AFTER)
        else:
            glued = False
        if glued:
            units[-1] += unit
        else:
            units.append(unit)
    lines: list[str] = []
    line = ""
    for unit in units:
        if unit.isspace():
            if line:
                line += " "
            continue
        if line and _width(line + unit) > width:
            lines.append(line.rstrip())
            line = ""
        line += unit
    if line.strip():
        lines.append(line.rstrip())
    return lines


@functools.cache
@functools.cache  # one class per base and language, not one per argument added
def translating_formatter(
    base: type[argparse.HelpFormatter], lang: str
) -> type[argparse.HelpFormatter]:
    """`base` (a HelpFormatter class) that writes every heading, text and help in `lang`."""

    class Translating(base):  # type: ignore[valid-type, misc]
        def start_section(self, heading: str | None) -> None:
            super().start_section(translate(heading, lang) if heading else heading)

        def add_text(self, text: str | None) -> None:
            super().add_text(translate(text, lang) if text else text)

        def add_usage(self, usage, actions, groups, prefix=None) -> None:  # type: ignore[no-untyped-def]
            if prefix is None:
                prefix = _Columns(translate("usage: ", lang))
            super().add_usage(usage, actions, groups, prefix)

        def _get_help_string(self, action: argparse.Action) -> str | None:
            text = super()._get_help_string(action)
            return translate(text, lang) if text else text

        def _split_lines(self, text: str, width: int) -> list[str]:
            return wrap_wide(text, width) if _is_wide(text) else super()._split_lines(text, width)

        def _fill_text(self, text: str, width: int, indent: str) -> str:
            if not _is_wide(text) or issubclass(base, argparse.RawDescriptionHelpFormatter):
                return super()._fill_text(text, width, indent)
            return "\n".join(indent + line for line in wrap_wide(text, width - len(indent)))

    Translating.__name__ = f"Translating{base.__name__}"
    return Translating


#: Exit statuses every subcommand shares (README: Exit codes).
EXIT_USAGE = 2
EXIT_CONNECTION = 3


def os_reason(error: OSError) -> str:
    """'Address already in use', not asyncio's "error while attempting to bind on ..."."""
    import socket

    if isinstance(error, socket.gaierror) or not error.errno or error.errno < 0:
        return error.strerror or str(error)
    return os.strerror(error.errno)


def start_failed(prog: str, error: OSError) -> int | None:
    """Say in one line why a sandbox did not start, if the web view's port or a file of
    its own (the certificate, the Maildir) is why; the exit code, or None for the caller's
    own case (its SMTP or POP3 socket)."""
    address = getattr(error, "address", None)  # the web view's port: WebBindError
    if address is not None:
        print(
            f"{prog}: cannot serve the web view on {address}: {os_reason(error)}", file=sys.stderr
        )
        return EXIT_CONNECTION
    if error.filename:
        print(f"{prog}: cannot use {error.filename}: {os_reason(error)}", file=sys.stderr)
        return 1
    return None
