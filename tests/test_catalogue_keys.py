"""Every catalogue key the code names exists, in every language.

`message()` falls back to the raw key when an entry is missing (better than a crash in
class), so a missing entry shows up only as `reset_done` on somebody's screen. This test
reads the source instead: every call that names a catalogue and a key with literal strings —
`message("lessons_ui", "reset_done", …)`, `Said("tls", "expired", …)`, the console's
`say("key")`, the lesson runner's `_ui("key")`, the sandbox's `report("key")` (serve.toml),
the command line's `cli_text.say("key")` and `say_in("key", lang)` (cli.toml) —
must find a table with a non-empty text for each language. Keys built at run time (f-strings)
are left to the tests of their own catalogue.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smtp_tutor.core.catalogue import load_catalogue
from smtp_tutor.core.knowledge import LANGUAGES

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`

PACKAGE = Path(__file__).resolve().parents[1] / "smtp_tutor"

# Helpers that pass their first argument on as a key of one fixed catalogue:
# (function name, folder of the calling module) → catalogue.
KEY_HELPERS = {
    ("say", "console"): "console",  # Console.say and render.say
    ("_ui", "console"): "lessons_ui",  # LessonRunner._ui
    ("report", "sandbox"): "serve",  # SandboxHandler.report: serve prints the event
    ("say", "cli"): "cli",  # cli/text.say, in cli/main.py's option type checks
    ("say_in", "cli"): "cli",  # cli/text.say_in
    ("_usage", "cli"): "cli",  # cli/connect._usage
    ("_t", "web"): "web",  # web/pages._t and web/classroom._t: data/web.toml
    ("note", "console"): "pop3_console",  # Pop3Console.note and pop3_render.note
}


def _literal(node: ast.expr, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _module_constants(tree: ast.Module) -> dict[str, str]:
    """NAME = "text" at module level, plus the names modules import for catalogue names."""
    constants = {"UI": "lessons_ui"}  # core.lessons.UI, imported by the judge
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign) else None
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in node.targets:  # type: ignore[union-attr]
                if isinstance(target, ast.Name):
                    constants[target.id] = value.value
    return constants


def used_keys() -> Iterator[tuple[str, str, str]]:
    """(where, catalogue, key) for every call with a literal catalogue and key."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        constants = _module_constants(tree)
        folder = path.parent.name
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            if name in ("message", "Said") and len(node.args) >= 2:
                catalogue = _literal(node.args[0], constants)
                key = _literal(node.args[1], constants)
                if catalogue and key:
                    yield where, catalogue, key
            elif (name, folder) in KEY_HELPERS:
                key = _literal(node.args[0], {})
                if key:
                    yield where, KEY_HELPERS[name, folder], key


def _entry(catalogue: str, key: str) -> Any:
    entry: Any = load_catalogue(catalogue)
    for part in key.split("."):
        entry = entry.get(part) if isinstance(entry, dict) else None
    return entry


USED = sorted(set(used_keys()))


def test_the_scan_finds_the_calls() -> None:
    pairs = {(catalogue, key) for _where, catalogue, key in USED}
    assert len(pairs) > 100
    for expected in [
        ("lessons_ui", "reset_done"),
        ("lessons_ui", "step_header"),
        ("console", "connecting"),
        ("tls", "self_signed"),
        ("serve", "stored"),
        ("serve", "tls_failed"),
        ("cli", "usage_error"),
        ("cli", "not_a_port"),
        ("cli", "no_host"),
    ]:
        assert expected in pairs, expected


@pytest.mark.parametrize(("where", "catalogue", "key"), USED, ids=[f"{c}:{k}" for _w, c, k in USED])
def test_every_key_the_code_uses_exists_in_every_language(
    where: str, catalogue: str, key: str
) -> None:
    entry = _entry(catalogue, key)
    assert isinstance(entry, dict), f"{where}: no [{key}] in data/{catalogue}.toml"
    for lang in LANGUAGES:
        text = entry.get(lang)
        assert isinstance(text, str) and text.strip(), f"{where}: {catalogue}.{key} lacks {lang}"


def test_lessons_ui_keys_used_by_the_code_exist_in_both_languages() -> None:
    """The catalogue that printed a raw `reset_done`, checked as a whole."""
    keys = {key for _where, catalogue, key in USED if catalogue == "lessons_ui"}
    assert {"reset_done", "reset_one_done", "list_title", "answer_intro"} <= keys
    missing = sorted(
        f"{key}.{lang}"
        for key in keys
        for lang in LANGUAGES
        if not (isinstance(_entry("lessons_ui", key), dict) and _entry("lessons_ui", key).get(lang))
    )
    assert missing == []
