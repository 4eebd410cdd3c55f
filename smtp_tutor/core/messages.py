"""Words for findings and console messages, looked up in TOML catalogues by id and language.

Catalogues are package data (`smtp_tutor/data/<name>.toml`): a table per id with one string
per language. A missing translation falls back to English rather than failing in class.
"""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Any

from smtp_tutor.core.knowledge import normalise_language


@functools.cache
def load_catalogue(name: str) -> dict[str, dict[str, Any]]:
    text = resources.files("smtp_tutor.data").joinpath(f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


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
