"""Where smtp-tutor keeps files, following the XDG base directory spec.

Every location can be moved with the usual XDG_* variables, so tests (and users with
unusual homes) point them at a temporary directory instead of the real home.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "smtp-tutor"


def _base(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable, "")
    # The spec says relative paths in these variables are invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def data_dir() -> Path:
    """Long-lived data: the sandbox certificate, the default sandbox Maildir."""
    return _base("XDG_DATA_HOME", ".local/share") / APP


def state_dir() -> Path:
    """State that survives restarts but is not precious: history, lesson progress."""
    return _base("XDG_STATE_HOME", ".local/state") / APP


def config_dir() -> Path:
    """The user's `config.toml`."""
    return _base("XDG_CONFIG_HOME", ".config") / APP


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only; secrets may live there."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def cache_dir() -> Path:
    """What can be rebuilt at any time: the parsed knowledge files (smtp_tutor/data)."""
    return _base("XDG_CACHE_HOME", ".cache") / APP
