"""Where a student stopped in each lesson, saved as a small JSON file after every step.

Losing progress is an annoyance, not a disaster, so nothing here raises into a lesson: a
corrupt file is moved aside (``lessons.json.corrupt``, for whoever wants to look) and the
student starts afresh with one line saying so; a failed save is reported the same way.

The file (mode 0600 in ``paths.state_dir()``)::

    {"version": 1, "current": "greeting",
     "lessons": {"greeting": {"step": 2, "done": ["ehlo", "noop"], "completed": false}}}
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from smtp_tutor import paths
from smtp_tutor.core.catalogue import Said, localize

FILE_NAME = "lessons.json"
VERSION = 1


def default_path() -> Path:
    return paths.state_dir() / FILE_NAME


class _Corrupt(ValueError):
    """The file parsed as JSON but is not a progress file."""


def _entry_from(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _Corrupt("entry is not an object")
    step, done, completed = raw.get("step", 0), raw.get("done", []), raw.get("completed", False)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _Corrupt("bad step")
    if not isinstance(done, list) or not all(isinstance(s, str) for s in done):
        raise _Corrupt("bad done list")
    if not isinstance(completed, bool):
        raise _Corrupt("bad completed flag")
    return {"step": step, "done": set(done), "completed": completed}


class Progress:
    """Saved lesson progress. `Progress(None)` keeps it in memory only (nothing is saved)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        # One line for the CLI to print: English, and a `Said`, so `localize` translates it.
        self.problem: str | None = None
        self._lessons: dict[str, dict[str, Any]] = {}
        self._current: str | None = None

    # -- loading and saving --------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None = None) -> Progress:
        """The saved progress; empty when there is none. Never raises."""
        progress = cls(Path(path) if path is not None else default_path())
        progress._read()
        return progress

    def _read(self) -> None:
        assert self.path is not None
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError:  # unreadable (or a directory in the way): it would break saving too
            self._set_aside()
            return
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise _Corrupt("not a progress file")
            lessons = data.get("lessons", {})
            current = data.get("current")
            if not isinstance(lessons, dict) or not (current is None or isinstance(current, str)):
                raise _Corrupt("bad lessons or current")
            entries = {str(key): _entry_from(value) for key, value in lessons.items()}
        except (ValueError, RecursionError):  # JSON, UTF-8 and _Corrupt errors are ValueErrors
            self._set_aside()
            return
        self._lessons, self._current = entries, current

    def _set_aside(self) -> None:
        assert self.path is not None
        backup = self.path.with_name(self.path.name + ".corrupt")
        try:
            os.replace(self.path, backup)
        except OSError as exc:
            self._report("progress_unreadable", error=exc.strerror or str(exc))
            return
        self._report("progress_corrupt", backup=str(backup))

    def _report(self, key: str, **params: str) -> None:
        self.problem = Said("lessons_ui", key, path=str(self.path), **params)

    def problem_text(self, lang: str) -> str | None:
        """The problem in the student's language, or None when all is well."""
        return None if self.problem is None else localize(self.problem, lang)

    def save(self) -> bool:
        """Write the file atomically (a crash leaves the old one); False and .problem if not."""
        if self.path is None:
            return True
        data = {
            "version": VERSION,
            "current": self._current,
            "lessons": {
                lesson_id: {
                    "step": entry["step"],
                    "done": sorted(entry["done"]),
                    "completed": entry["completed"],
                }
                for lesson_id, entry in sorted(self._lessons.items())
            },
        }
        try:
            paths.ensure_private_dir(self.path.parent)
            fd, temporary = tempfile.mkstemp(prefix=".lessons-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    json.dump(data, file, indent=2, ensure_ascii=False)
                    file.write("\n")
                os.chmod(temporary, 0o600)
                os.replace(temporary, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            self._report("progress_save_failed", error=exc.strerror or str(exc))
            return False
        return True

    # -- reading -------------------------------------------------------------------------

    def step(self, lesson_id: str) -> int:
        """Where the student stopped: the index of the next step to do (0 at first)."""
        entry = self._lessons.get(lesson_id)
        return entry["step"] if entry else 0

    def completed(self, lesson_id: str) -> bool:
        entry = self._lessons.get(lesson_id)
        return bool(entry and entry["completed"])

    def done_steps(self, lesson_id: str) -> set[str]:
        entry = self._lessons.get(lesson_id)
        return set(entry["done"]) if entry else set()

    def current(self) -> str | None:
        """The lesson to continue with: the last one worked on, unless it was finished."""
        if self._current is None or self.completed(self._current):
            return None
        return self._current

    # -- changing ------------------------------------------------------------------------

    def _entry(self, lesson_id: str) -> dict[str, Any]:
        return self._lessons.setdefault(lesson_id, {"step": 0, "done": set(), "completed": False})

    def mark_step(self, lesson_id: str, step_index: int, step_id: str) -> None:
        """Step `step_id` was passed; `step_index` is where to resume (the next step's index)."""
        entry = self._entry(lesson_id)
        entry["step"] = max(0, step_index)
        entry["done"].add(step_id)
        self._current = lesson_id
        self.save()

    def mark_completed(self, lesson_id: str) -> None:
        """The lesson was finished; opening it again starts from the first step."""
        entry = self._entry(lesson_id)
        entry["completed"] = True
        entry["step"] = 0
        self._current = lesson_id
        self.save()

    def set_position(self, lesson_id: str, step_index: int) -> None:
        """Move to a step without passing it (:back, :skip, :restart)."""
        self._entry(lesson_id)["step"] = max(0, step_index)
        self._current = lesson_id
        self.save()

    def reset(self, lesson_id: str | None = None) -> None:
        """Forget one lesson, or everything."""
        if lesson_id is None:
            self._lessons.clear()
            self._current = None
        else:
            self._lessons.pop(lesson_id, None)
            if self._current == lesson_id:
                self._current = None
        self.save()
