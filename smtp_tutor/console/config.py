"""The console's settings: `config.toml` in the XDG config directory, then the command line.

A broken or unknown setting never stops the console: it is reported in one line and the
default is used, so a typo in a config file cannot lock a student out of class.
"""

from __future__ import annotations

from pathlib import Path

from smtp_tutor.core.records import field, fields, record
from smtp_tutor.paths import config_dir

EDITING_MODES = ("emacs", "vi")


@record
class ConsoleConfig:
    language: str | None = None  # None: follow the environment (LANG, …)
    style: str = "default"  # a pygments style name
    editing_mode: str = "emacs"
    confirm_on_warning: bool = False
    toolbar: bool = True
    problems: list[str] = field(default_factory=list)


def config_path() -> Path:
    return config_dir() / "config.toml"


def load_config(path: Path | None = None) -> ConsoleConfig:
    """Read the settings; a missing file gives the defaults, a bad one the defaults + problems."""
    path = path or config_path()
    config = ConsoleConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return config
    except (OSError, UnicodeDecodeError) as error:
        config.problems.append(str(error).splitlines()[0])
        return config
    import tomllib  # only for a config file that exists: most consoles have none

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        config.problems.append(str(error).splitlines()[0])
        return config
    known = set(fields(ConsoleConfig)) - {"problems"}
    for key, value in data.items():
        if key not in known:
            config.problems.append(f"unknown setting {key!r}")
            continue
        problem = _check(key, value)
        if problem:
            config.problems.append(problem)
            continue
        setattr(config, key, value)
    return config


def _check(key: str, value: object) -> str | None:
    if key in ("confirm_on_warning", "toolbar"):
        return None if isinstance(value, bool) else f"{key} must be true or false"
    if not isinstance(value, str):
        return f"{key} must be a string"
    if key == "editing_mode" and value not in EDITING_MODES:
        return f"editing_mode must be one of {', '.join(EDITING_MODES)}"
    if key == "language":
        from smtp_tutor.core.language import normalise_language

        if normalise_language(value) == "en" and not value.lower().startswith(("en", "c")):
            return f"language {value!r} is not available: use en or zh"
    if key == "style":
        from pygments.styles import get_all_styles

        if value not in set(get_all_styles()):
            return f"style {value!r} is not a pygments style"
    return None
