"""Which of our languages a reader gets: from a tag, a locale or the environment.

Apart from the knowledge base so that a command line that only needs to know its language
(`--version`, a usage error, `replay`) loads none of it. `smtp_tutor.core.knowledge`
re-exports these names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

LANGUAGES = ("en", "zh")


def _match_language(tag: str) -> str | None:
    """Map a locale or BCP 47 tag to a language we have, or None."""
    base = tag.strip().split(".")[0].split("@")[0].replace("_", "-").lower()
    primary = base.split("-")[0]
    return primary if primary in LANGUAGES else None


def normalise_language(tag: str | None) -> str:
    """'zh-CN', 'zh_TW.UTF-8', 'ZH' → 'zh'; anything we lack → 'en'.

    Only Simplified Chinese is written, so zh-TW readers get it rather than English.
    """
    if not tag:
        return "en"
    return _match_language(tag) or "en"


def language_from_env(environ: Mapping[str, str] | None = None) -> str:
    """Pick 'en' or 'zh' the way gettext does: LANGUAGE first, then LC_ALL, LC_MESSAGES, LANG.

    As in gettext, an explicit C/POSIX locale means English whatever LANGUAGE says.
    """
    env = os.environ if environ is None else environ
    locale = next((env[v] for v in ("LC_ALL", "LC_MESSAGES", "LANG") if env.get(v)), "")
    if locale.split(".")[0] in ("C", "POSIX"):
        return "en"
    for item in env.get("LANGUAGE", "").split(":"):
        if item and (found := _match_language(item)):
            return found
    return normalise_language(locale)
