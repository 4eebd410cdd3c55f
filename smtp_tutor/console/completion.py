"""Tab completion for the console, computed from the live dialogue on every keystroke.

Completion runs while the student types, so it must never make them wait: everything here is
pure Python over small in-memory lists, nothing touches the network (the host name is read
once at construction) and every list is capped. It also must never put a secret on the
screen: while the server waits for an AUTH answer, nothing at all is offered.

What is offered follows the session, because that is what teaches: the verbs that are valid
now come first, parameters only appear once EHLO advertised the extension that defines them,
and addresses come from the MAIL and RCPT lines already sent.

Every word the completer shows is in the console's language: the verbs, their hints and the
MAIL/RCPT parameters come from the verb table (`data/verbs.toml`), the rest from
`data/completion.toml`.

What the server advertised is the server's text, so none of it can steer the terminal or the
typed line: a candidate whose text holds a character that is not printable (an AUTH mechanism
``X\\x1b]0;…\\x07``, a bidi override) is never offered, not even escaped — the escaped form
is not what the server advertised — and every description is shown escaped.
"""

from __future__ import annotations

import collections
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from smtp_tutor.core.catalogue import load_catalogue, message
from smtp_tutor.core.command_line import KNOWN_VERBS, parse_command, parse_path_argument
from smtp_tutor.core.dialogue import Capabilities
from smtp_tutor.core.patterns import LazyPattern
from smtp_tutor.core.safe_text import is_visible, visible
from smtp_tutor.core.verbs import Verb
from smtp_tutor.core.verbs import verb as verb_row

__all__ = [
    "COMMON_CODES",
    "HEADERS",
    "MAX_COMPLETIONS",
    "AddressBook",
    "DialogueView",
    "HeaderBlock",
    "SMTPCompleter",
    "common_codes",
    "console_commands",
    "headers",
]

#: No popup ever lists more than this: long lists are slow to draw and useless to read.
MAX_COMPLETIONS = 25


def console_commands(lang: str = "en") -> tuple[tuple[str, str], ...]:
    """Every console command with its one-line text, from data/help.toml (the one list)."""
    table = load_catalogue("help").get("commands", {})
    return tuple((f":{name}", message("help", f"commands.{name}.text", lang)) for name in table)


#: The catalogue of the completer's own words (data/completion.toml).
CATALOGUE = "completion"


def common_codes(lang: str = "en") -> tuple[tuple[str, str], ...]:
    """Reply codes worth explaining, for `:explain `, with a few words on each."""
    table = load_catalogue(CATALOGUE)["codes"]
    return tuple((code, message(CATALOGUE, f"codes.{code}", lang)) for code in table)


def headers(lang: str = "en") -> tuple[tuple[str, str], ...]:
    """Header fields for the top of a message: (text to insert, explanation). All occur once."""
    table = load_catalogue(CATALOGUE)["headers"]
    return tuple(
        (entry["insert"], message(CATALOGUE, f"headers.{name}", lang))
        for name, entry in table.items()
    )


#: The codes and header fields in English; a completer asks for its own language.
COMMON_CODES = common_codes()
HEADERS = headers()

_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender"})
_WHITESPACE = LazyPattern(r"\s")
_FIRST_WORD = LazyPattern(r"(\S+)\s+(.*)", re.DOTALL)


class DialogueView(Protocol):
    """What the completer reads from the session; `core.dialogue.Dialogue` provides it."""

    @property
    def capabilities(self) -> Capabilities | None: ...

    @property
    def sending_data(self) -> bool: ...

    @property
    def awaiting_auth_response(self) -> bool: ...

    def valid_verbs(self) -> list[str]: ...


class AddressBook:
    """Addresses from the MAIL FROM and RCPT TO lines sent so far, most recent first.

    Capped so a long scripted session cannot make completion slow; learning an address
    again moves it to the front.
    """

    def __init__(self, capacity: int = 50) -> None:
        self.capacity = max(1, capacity)
        self._addresses: collections.OrderedDict[str, str] = collections.OrderedDict()

    def learn(self, line: str) -> None:
        """Record the address of a MAIL/RCPT command line; any other line is ignored."""
        path = parse_path_argument(parse_command(line))
        if path is not None:
            self.add(path.path)

    def add(self, address: str) -> None:
        address = address.strip()
        if not address or _WHITESPACE.search(address) or "<" in address or ">" in address:
            return
        key = address.lower()
        self._addresses.pop(key, None)
        self._addresses[key] = address
        while len(self._addresses) > self.capacity:
            self._addresses.popitem(last=False)

    def __len__(self) -> int:
        return len(self._addresses)

    def __iter__(self) -> Iterator[str]:
        """Most recent first."""
        return reversed(self._addresses.values())

    def matching(self, prefix: str, limit: int = MAX_COMPLETIONS) -> list[str]:
        """Addresses starting with `prefix` (any case), most recent first, at most `limit`."""
        lowered = prefix.lower()
        found: list[str] = []
        for key in reversed(self._addresses):
            if key.startswith(lowered):
                found.append(self._addresses[key])
                if len(found) >= limit:
                    break
        return found


class HeaderBlock:
    """Whether the message being typed in DATA mode is still in its header block.

    The console feeds every DATA line it sends (as typed, before dot-stuffing). The block
    ends at the first empty line; a lone "." ends the message and opens a fresh block, and
    `reset` does the same after a reconnect. Header names seen are remembered so fields
    that may occur only once are not offered twice.
    """

    def __init__(self) -> None:
        self.open = True
        self._seen: set[str] = set()

    @property
    def seen(self) -> frozenset[str]:
        """Lower-cased names of the header fields typed in the current message."""
        return frozenset(self._seen)

    def reset(self) -> None:
        self.open = True
        self._seen.clear()

    def feed(self, line: str) -> None:
        if line == ".":
            self.reset()
            return
        if not self.open:
            return
        if not line.strip():
            self.open = False
            return
        name, colon, _ = line.partition(":")
        if colon and name and not name[0].isspace():
            self._seen.add(name.strip().lower())

    def __call__(self) -> bool:
        return self.open


def _case_like(word: str, model: str) -> str:
    """`word` in the case the student started with: lower case if they typed lower case."""
    letters = [c for c in model if c.isalpha()]
    if letters and all(c.islower() for c in letters):
        return word.lower()
    return word


class SMTPCompleter(Completer):
    """Completes SMTP commands, their arguments and console commands from live state.

    `dialogue` returns the current session's dialogue (None when not connected); it is
    called on every keystroke so a reconnect needs no new completer. `describe(keyword)`
    may return a (translated) explanation for an EHLO keyword or a SASL mechanism name;
    None, or any error, falls back to the built-in text. `lang` is the console's language:
    every hint is shown in it (English where a text lacks it).
    """

    def __init__(
        self,
        dialogue: Callable[[], DialogueView | None],
        commands: Sequence[tuple[str, str]] | None = None,
        *,
        addresses: AddressBook | None = None,
        header_block: HeaderBlock | None = None,
        describe: Callable[[str], str | None] | None = None,
        codes: Sequence[tuple[str, str]] | None = None,
        local_address: Callable[[], str | None] | None = None,
        hostname: str | None = None,
        limit: int = MAX_COMPLETIONS,
        lang: str = "en",
    ) -> None:
        self.dialogue = dialogue
        self.lang = lang
        self.commands = tuple(commands if commands is not None else console_commands(lang))
        self.addresses = addresses if addresses is not None else AddressBook()
        self.header_block = header_block if header_block is not None else HeaderBlock()
        self.describe = describe
        self.codes = tuple(codes if codes is not None else common_codes(lang))
        self.headers = headers(lang)
        self.local_address = local_address
        if hostname is None:
            try:
                hostname = socket.gethostname()  # no DNS: reads the kernel's name
            except OSError:
                hostname = ""
        self.hostname = hostname
        self.limit = max(1, limit)

    def _say(self, key: str, **params: object) -> str:
        return message(CATALOGUE, key, self.lang, **params)

    # -- prompt_toolkit entry point ----------------------------------------------------

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        try:
            completions = self.completions_for(document.current_line_before_cursor)
        except Exception:  # a completer bug must never break typing
            return []
        return completions

    def completions_for(self, text: str) -> list[Completion]:
        """Everything to offer for `text` (the line up to the cursor), at most `limit`."""
        dialogue = self.dialogue()
        if dialogue is not None and dialogue.awaiting_auth_response:
            return []  # the next line is a credential: never suggest anything
        if dialogue is not None and dialogue.sending_data:
            found = self._data(text)
        elif text.startswith(":"):
            found = self._console(text)
        else:
            found = self._smtp(text, dialogue)
        return list(_unique(_safe(found), self.limit))

    # -- SMTP commands -----------------------------------------------------------------

    def _smtp(self, text: str, dialogue: DialogueView | None) -> Iterator[Completion]:
        stripped = text.lstrip()
        if not _WHITESPACE.search(stripped):
            yield from self._verbs(stripped, dialogue)
            return
        verb_typed, rest = _split_first(stripped)
        verb = verb_typed.upper()
        row = verb_row(verb)
        caps = dialogue.capabilities if dialogue is not None else None
        if verb in ("EHLO", "HELO"):
            yield from self._hello(rest)
        elif verb == "AUTH":
            yield from self._mechanisms(rest, verb_typed, caps)
        elif row is not None and row.argument == "path":
            yield from self._path_command(row, verb_typed, rest, caps)
        elif verb in ("VRFY", "EXPN") and not _WHITESPACE.search(rest):
            for address in self.addresses.matching(rest, self.limit):
                yield Completion(address, -len(rest), display_meta=self._say("used_earlier"))

    def _verbs(self, typed: str, dialogue: DialogueView | None) -> Iterator[Completion]:
        valid = dialogue.valid_verbs() if dialogue is not None else list(KNOWN_VERBS)
        upper = typed.upper()
        for verb in [*valid, *(v for v in KNOWN_VERBS if v not in valid)]:
            if not verb.startswith(upper):
                continue
            row = verb_row(verb)
            meta = row.hint.in_language(self.lang) if row is not None else ""
            if verb not in valid:
                meta = self._say("not_now", hint=meta) if meta else self._say("not_valid_now")
            yield Completion(_case_like(verb, typed), -len(typed), display=verb, display_meta=meta)

    def _hello(self, rest: str) -> Iterator[Completion]:
        if _WHITESPACE.search(rest):
            return
        literal = _address_literal(self._local_address())
        candidates = [(literal, self._say("address_literal"))]
        if self.hostname:
            short = "." not in self.hostname
            candidates.append(
                (self.hostname, self._say("host_name_short" if short else "host_name"))
            )
        for value, meta in candidates:
            if value.lower().startswith(rest.lower()):
                yield Completion(value, -len(rest), display_meta=meta)

    def _local_address(self) -> str:
        if self.local_address is not None:
            try:
                address = self.local_address()
            except Exception:
                address = None
            if address:
                return address
        return "127.0.0.1"

    def _mechanisms(
        self, rest: str, verb_typed: str, caps: Capabilities | None
    ) -> Iterator[Completion]:
        if caps is None or _WHITESPACE.search(rest):
            return  # the second word would be an initial response: a secret
        for mechanism in caps.auth_mechanisms:
            if mechanism.startswith(rest.upper()):
                meta = self._describe(mechanism) or self._say("advertised")
                text = _case_like(mechanism, rest or verb_typed)
                yield Completion(text, -len(rest), display=mechanism, display_meta=meta)

    def _path_command(
        self, row: Verb, verb_typed: str, rest: str, caps: Capabilities | None
    ) -> Iterator[Completion]:
        keyword = f"{row.path_keyword}:<"
        if "<" not in rest:
            if keyword.startswith(rest.upper()):
                meta = row.path_hint.in_language(self.lang) if row.path_hint else ""
                text = _case_like(keyword, rest or verb_typed)
                yield Completion(text, -len(rest), display=keyword, display_meta=meta)
            return
        before, _, inside = rest.partition("<")
        if before.replace(" ", "").upper() != keyword[:-1]:
            return
        path, closed, after = inside.partition(">")
        if not closed:
            yield from self._addresses_in_path(row.name, path)
            return
        if not after[:1].isspace():
            return  # a parameter needs a space after ">"
        yield from self._parameters(row, verb_typed, after, caps)

    def _addresses_in_path(self, verb: str, partial: str) -> Iterator[Completion]:
        if _WHITESPACE.search(partial):
            return
        if verb == "MAIL" and not partial:
            yield Completion(">", 0, display="<>", display_meta=self._say("null_sender"))
        used = self._say("used_earlier")
        for address in self.addresses.matching(partial, self.limit):
            yield Completion(address + ">", -len(partial), display=address, display_meta=used)

    def _parameters(
        self, row: Verb, verb_typed: str, after: str, caps: Capabilities | None
    ) -> Iterator[Completion]:
        if caps is None:
            return
        words = after.split()
        current = "" if after[-1:].isspace() else words[-1]
        present = {w.partition("=")[0].upper() for w in words if w != current}
        if "=" in current:
            yield from self._parameter_values(row, current, caps)
            return
        for name, parameter in row.parameters.items():
            if name in present or not caps.has(parameter.extension):
                continue
            insert = parameter.insert
            if not insert.upper().startswith(current.upper()):
                continue
            meta = self._describe(parameter.extension) or parameter.hint.in_language(self.lang)
            if name == "SIZE" and caps.size_limit:
                meta = self._say("size_limit", hint=meta, limit=caps.size_limit)
            text = _case_like(insert, current or verb_typed)
            yield Completion(text, -len(current), display=insert, display_meta=meta)

    def _parameter_values(
        self, row: Verb, current: str, caps: Capabilities
    ) -> Iterator[Completion]:
        name, _, value = current.partition("=")
        parameter = row.parameters.get(name.upper())
        if parameter is None or not caps.has(parameter.extension):
            return
        for offer in parameter.offers:
            option = offer.value
            if option.startswith(value.upper()) and option != value.upper():
                text = _case_like(option, value or name)
                meta = offer.hint.in_language(self.lang)
                yield Completion(text, -len(value), display=option, display_meta=meta)

    def _describe(self, keyword: str) -> str | None:
        if self.describe is None:
            return None
        try:
            text = self.describe(keyword)
        except Exception:
            return None
        return text if isinstance(text, str) and text else None

    # -- console commands --------------------------------------------------------------

    def _console(self, text: str) -> Iterator[Completion]:
        if text.startswith("::"):
            return  # a raw line that starts with a colon
        if not _WHITESPACE.search(text):
            lowered = text.lower()
            for name, meta in self.commands:
                if name.lower().startswith(lowered):
                    yield Completion(name, -len(text), display_meta=meta)
            return
        name, rest = _split_first(text)
        name = name.lower()
        if _WHITESPACE.search(rest):
            return
        if name == ":explain":
            for code, meta in self.codes:
                if code.startswith(rest):
                    yield Completion(code, -len(rest), display_meta=meta)
        elif name in (":manual", ":raw"):
            for option in ("on", "off"):
                if option.startswith(rest.lower()):
                    meta = self._say("turn_on" if option == "on" else "turn_off")
                    yield Completion(option, -len(rest), display_meta=meta)

    # -- DATA mode ---------------------------------------------------------------------

    def _data(self, text: str) -> Iterator[Completion]:
        if not self.header_block.open or text[:1].isspace():
            return  # the body, or a folded header line
        name, colon, value = text.partition(":")
        if not colon:
            seen = self.header_block.seen
            for insert, meta in self.headers:
                field = insert.partition(":")[0]
                if field.lower() in seen or not field.lower().startswith(text.lower()):
                    continue
                yield Completion(insert, -len(text), display=field + ":", display_meta=meta)
            return
        yield from self._header_value(name.strip().lower(), value)

    def _header_value(self, name: str, value: str) -> Iterator[Completion]:
        lead = "" if value[:1].isspace() else " "
        typed = value.lstrip()
        if name in _ADDRESS_HEADERS:
            if "," in typed or ">" in typed or _WHITESPACE.search(typed):
                return
            used = self._say("used_earlier")
            for address in self.addresses.matching(typed.lstrip("<"), self.limit):
                yield Completion(
                    f"{lead}<{address}>", -len(typed), display=address, display_meta=used
                )
        elif name == "date" and not typed:
            import email.utils  # for the Date: and Message-ID: suggestions only

            now = email.utils.formatdate(localtime=True)
            yield Completion(lead + now, 0, display=now, display_meta=self._say("date_now"))
        elif name == "message-id" and not typed:
            import email.utils

            domain = self.hostname if "." in self.hostname else "smtp-tutor.invalid"
            msgid = email.utils.make_msgid(domain=domain)
            meta = self._say("fresh_message_id")
            yield Completion(lead + msgid, 0, display=msgid, display_meta=meta)


def _split_first(text: str) -> tuple[str, str]:
    """`"MAIL  FROM:<a>"` → `("MAIL", "FROM:<a>")`: the first word and the rest as typed."""
    match = _FIRST_WORD.match(text)
    if match is None:
        return text, ""
    return match.group(1), match.group(2)


def _address_literal(address: str) -> str:
    if ":" in address:
        return f"[IPv6:{address}]"
    return f"[{address}]"


def _safe(completions: Iterable[Completion]) -> Iterator[Completion]:
    """Only candidates that insert printable text; what they show, escaped."""
    for completion in completions:
        if not is_visible(completion.text):
            continue
        display, meta = completion.display_text, completion.display_meta_text
        if is_visible(display) and is_visible(meta):
            yield completion
        else:
            yield Completion(
                completion.text,
                completion.start_position,
                display=visible(display),
                display_meta=visible(meta),
                style=completion.style,
                selected_style=completion.selected_style,
            )


def _unique(completions: Iterable[Completion], limit: int) -> Iterator[Completion]:
    seen: set[str] = set()
    for completion in completions:
        if completion.text in seen:
            continue
        seen.add(completion.text)
        yield completion
        if len(seen) >= limit:
            return
