"""Where smtp-tutor keeps files, following the XDG base directory spec.

Every location can be moved with the usual XDG_* variables, so tests (and users with
unusual homes) point them at a temporary directory instead of the real home. The folders
are worked out with `os.path`: `cache_dir`, read on every start, imports no `pathlib`
(a one-message replay has no other use for it).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

APP = "smtp-tutor"


def _folder(variable: str, fallback: str) -> str:
    value = os.environ.get(variable, "")
    # The spec says relative paths in these variables are invalid and must be ignored.
    if not (value and os.path.isabs(value)):
        value = os.path.join(os.path.expanduser("~"), fallback)
    return os.path.join(value, APP)


def _path(folder: str) -> Path:
    from pathlib import Path

    return Path(folder)


def data_dir() -> Path:
    """Long-lived data: the sandbox certificate, the default sandbox Maildir."""
    return _path(_folder("XDG_DATA_HOME", ".local/share"))


def state_dir() -> Path:
    """State that survives restarts but is not precious: history, lesson progress."""
    return _path(_folder("XDG_STATE_HOME", ".local/state"))


def config_dir() -> Path:
    """The user's `config.toml`."""
    return _path(_folder("XDG_CONFIG_HOME", ".config"))


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only; secrets may live there."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def cache_dir() -> str:
    """What can be rebuilt at any time: the parsed knowledge files (smtp_tutor/data).

    Text, not a Path: its one reader joins it with `os.path` on every start.
    """
    return _folder("XDG_CACHE_HOME", ".cache")
