"""Where the console keeps the tracebacks it does not show: a private log file.

A bug must not cost the student the session, so the console catches it, says one line and
goes on; the traceback goes here (``$XDG_STATE_HOME/smtp-tutor/debug.log``, mode 0600) for
whoever files the bug, and on screen too with ``--debug``. Every line written passes the
session's secret tracker first, since an exception's message may quote a typed line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import traceback
from collections.abc import Callable
from pathlib import Path

from smtp_tutor.paths import ensure_private_dir, state_dir

#: The log is cut to its newest half when it grows past this many bytes.
MAX_BYTES = 1_000_000


def default_log_path() -> Path:
    return state_dir() / "debug.log"


def format_failure(error: BaseException, redact: Callable[[str], str] = str) -> str:
    """The traceback of `error`, every line redacted."""
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return "".join(redact(line) for line in lines)


def write_failure(
    error: BaseException,
    context: str,
    redact: Callable[[str], str] = str,
    path: Path | None = None,
) -> Path | None:
    """Append one failure to the log; the path written, or None if it could not be."""
    path = path or default_log_path()
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    entry = f"--- {stamp} {context}\n{format_failure(error, redact)}"
    try:
        ensure_private_dir(path.parent)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8", errors="replace") as log:
            with contextlib.suppress(OSError):
                os.fchmod(log.fileno(), 0o600)
            log.write(entry)
        _trim(path)
    except OSError:
        return None
    return path


def _trim(path: Path) -> None:
    """Keep the newest half of an over-long log, cut at an entry boundary."""
    if path.stat().st_size <= MAX_BYTES:
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    tail = text[len(text) // 2 :]
    start = tail.find("\n--- ")
    path.write_text(tail[start + 1 :] if start >= 0 else tail, encoding="utf-8")
