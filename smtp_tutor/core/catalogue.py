"""Words for findings and console messages, looked up in TOML catalogues by id and language.

Catalogues are package data (`smtp_tutor/data/<name>.toml`): a table per id with one string
per language. A missing translation falls back to English rather than failing in class.
"""

from __future__ import annotations

import functools

from smtp_tutor.core.language import normalise_language
from smtp_tutor.data import load_toml

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    from typing import Any


@functools.cache
def load_catalogue(name: str) -> dict[str, dict[str, Any]]:
    return load_toml(name)


class _Keep(dict[str, str]):
    """Leaves unknown `{placeholders}` visible instead of raising KeyError."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def message(catalogue: str, key: str, lang: str | None = "en", /, **params: object) -> str:
    """The text for `key` in `lang` (falling back to English), with placeholders filled.

    A dotted key walks into nested tables: `message("hints", "ehlo.short", "zh")`.
    """
    entry: Any = load_catalogue(catalogue)
    for part in key.split("."):
        entry = entry.get(part) if isinstance(entry, dict) else None
    if not isinstance(entry, dict):
        return key
    language = normalise_language(lang)
    template = entry.get(language) or entry.get("en") or key
    return str(template).format_map(_Keep({k: str(v) for k, v in params.items()}))


class Said(str):
    """A sentence that reads as English but remembers its catalogue entry.

    Core code returns these where a person will read the text (why a connection closed,
    what is wrong with a reply); a console in another language calls `localize` on them.
    """

    catalogue: str
    key: str
    params: dict[str, object]

    def __new__(cls, catalogue: str, key: str, /, **params: object) -> Said:
        self = super().__new__(cls, message(catalogue, key, "en", **params))
        self.catalogue, self.key, self.params = catalogue, key, params
        return self

    def __reduce__(self) -> tuple[object, ...]:
        return (_said, (self.catalogue, self.key, self.params))


def _said(catalogue: str, key: str, params: dict[str, object]) -> Said:
    return Said(catalogue, key, **params)


def localize(text: str, lang: str | None) -> str:
    """`text` in `lang` if it is a `Said`, else unchanged (text from the server, say)."""
    if isinstance(text, Said):
        return message(text.catalogue, text.key, lang, **text.params)
    return text
