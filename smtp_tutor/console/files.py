"""Private files the console writes: transcripts, and anything else that must not leak.

A transcript holds the addresses, the user names and the mail of a session, so every file
here is made mode 0600 whatever the umask, and a file that was there keeps no wider mode.
This is the I/O the sans-I/O core leaves to its callers: the recorder renders text, these
functions put it on disk.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TextIO


def write_private(path: str | os.PathLike[str], content: str) -> None:
    """Replace `path` with `content` atomically (a crash leaves the old file or the new)."""
    target = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def open_private(path: str | os.PathLike[str]) -> TextIO:
    """Open (create or empty) a file for writing as it happens, e.g. a live transcript."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "w", encoding="utf-8", newline="\n")
    except BaseException:
        os.close(fd)
        raise
