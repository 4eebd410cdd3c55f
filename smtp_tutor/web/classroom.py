"""The teacher's dashboard: one row per student, and a picture of each lesson's steps.

A row says whether the student is connected now, their sessions and stored messages, the
last command and the last error reply with what it means (core/knowledge's `explain`),
and the lesson step they are on. Lesson steps come from `smtp-tutor lesson N --server
HOST:PORT --user NAME`, which reports each step's result to `POST /api/lessons/progress`
with the student's credentials; the picture shows, per lesson, how many passed each step
and how many are working on it (stuck), as bars drawn in HTML.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smtp_tutor.core.catalogue import message
from smtp_tutor.core.knowledge import explain
from smtp_tutor.sandbox.sessions import SessionLog, SessionRecord
from smtp_tutor.web.index import MessageIndex

__all__ = ["Classroom"]

MAX_LESSONS = 100  # distinct lessons remembered
MAX_STEPS = 200


@dataclass
class _Progress:
    lesson: str
    title: str
    steps: int
    step: int  # the step they are on (1-based), or steps + 1 when done
    passed: set[int] = field(default_factory=set)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _t(key: str, lang: str, /, **params: object) -> str:
    return html.escape(message("web", key, lang, **params))


class Classroom:
    def __init__(
        self, sessions: SessionLog, index: MessageIndex, accounts: Callable[[], Mapping[str, str]]
    ) -> None:
        self.sessions = sessions
        self.index = index
        self._accounts = accounts
        self._progress: dict[str, dict[str, _Progress]] = {}  # student → lesson → progress
        self._lessons: dict[str, tuple[str, int]] = {}  # lesson → (title, steps)
        self._current: dict[str, str] = {}  # student → the lesson they ran last
        # session id → student: sessions without AUTH that a lesson run said were its own
        self._linked: dict[str, str] = {}

    def seen(self, event: str, record: SessionRecord) -> None:
        """A session event: nothing to keep (the rows are computed from the log)."""

    # Lessons ----------------------------------------------------------------------------

    def progress(
        self, student: str, body: Mapping[str, Any], remote: str | None = None
    ) -> dict[str, Any]:
        """Take one report: {lesson, title, steps, step, passed[, client_port]}; ValueError
        if malformed. With `client_port`, the open session from `remote` (the report's own
        address) on that port, if it has no AUTH user or this one, counts as the student's:
        `lesson --server` does not log in over SMTP, yet its row shows its commands."""
        lesson, title = body.get("lesson"), body.get("title", "")
        port = body.get("client_port")
        if port is not None and (
            not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536
        ):
            raise ValueError("client_port")
        steps, step, passed = body.get("steps"), body.get("step"), body.get("passed")
        if not isinstance(lesson, str) or not 0 < len(lesson) <= 100:
            raise ValueError("lesson")
        if not isinstance(title, str) or len(title) > 200:
            raise ValueError("title")
        if not isinstance(steps, int) or not 0 < steps <= MAX_STEPS:
            raise ValueError("steps")
        if not isinstance(step, int) or not 1 <= step <= steps + 1:
            raise ValueError("step")
        if not isinstance(passed, bool):
            raise ValueError("passed")
        if lesson not in self._lessons and len(self._lessons) >= MAX_LESSONS:
            raise ValueError("too many lessons")
        self._lessons[lesson] = (title or lesson, steps)
        mine = self._progress.setdefault(student, {})
        record = mine.get(lesson)
        if record is None or record.steps != steps:
            record = mine[lesson] = _Progress(lesson, title or lesson, steps, step)
        if passed and step <= steps:
            record.passed.add(step)
            record.step = step + 1
        else:
            record.step = step
        self._current[student] = lesson
        if port is not None and remote is not None:
            self._link(student, remote, port)
        return {"student": student, "lesson": lesson, "step": record.step, "passed": passed}

    def _link(self, student: str, remote: str, port: int) -> None:
        for record in reversed(self.sessions.sessions()):
            if record.open and record.client == (remote, port):
                if record.auth_user in (None, student):
                    self._linked[record.id] = student
                break
        if len(self._linked) > 2 * len(self.sessions):  # forget sessions the log dropped
            self._linked = {k: v for k, v in self._linked.items() if self.sessions.get(k)}

    def student_of(self, record: SessionRecord) -> str | None:
        """Whose session it is: the AUTH user, else the student whose lesson run it is."""
        return record.auth_user or self._linked.get(record.id)

    # Rows -------------------------------------------------------------------------------

    def rows(self, lang: str) -> list[dict[str, Any]]:
        by_user: dict[str, list[SessionRecord]] = {}
        for record in self.sessions.sessions():
            student = self.student_of(record)
            if student is not None:
                by_user.setdefault(student, []).append(record)
        rows = []
        for name in sorted(self._accounts()):
            records = by_user.get(name, [])
            last_command = next((r.last_command for r in reversed(records) if r.last_command), None)
            last_error = next((r.last_error for r in reversed(records) if r.last_error), None)
            lesson = self._current.get(name)
            current = self._progress.get(name, {}).get(lesson) if lesson else None
            rows.append(
                {
                    "name": name,
                    "connected": any(r.open for r in records),
                    "sessions": len(records),
                    "messages": self.index.count_for(name),
                    "last_command": last_command,
                    "last_error": last_error,
                    "explanation": _explanation(last_error, lang),
                    "lesson": current.lesson if current else None,
                    "lesson_title": current.title if current else None,
                    "step": current.step if current else None,
                    "steps": current.steps if current else None,
                }
            )
        return rows

    def lessons(self) -> list[dict[str, Any]]:
        """Per lesson and step: how many passed it, and how many are on it now."""
        found = []
        for lesson, (title, steps) in self._lessons.items():
            passed = [0] * steps
            on = [0] * steps
            for mine in self._progress.values():
                record = mine.get(lesson)
                if record is None:
                    continue
                for step in record.passed:
                    if 1 <= step <= steps:
                        passed[step - 1] += 1
                if record.step <= steps and record.step not in record.passed:
                    on[record.step - 1] += 1
            found.append(
                {
                    "lesson": lesson,
                    "title": title,
                    "steps": [
                        {"step": i + 1, "passed": passed[i], "working": on[i]} for i in range(steps)
                    ],
                }
            )
        return found

    def data(self, lang: str = "en") -> dict[str, Any]:
        return {"students": self.rows(lang), "lessons": self.lessons()}

    # The page ---------------------------------------------------------------------------

    def page(self, lang: str, csrf: str) -> str:
        rows = self.rows(lang)
        heads = (
            "col_student",
            "col_connected",
            "col_sessions_n",
            "col_messages",
            "col_last_command",
            "col_last_error",
            "col_lesson",
            "col_actions",
        )
        body = "\n".join(self._row(row, lang, csrf) for row in rows)
        return f"""<h1>{_t("dashboard_title", lang)}</h1>
<p>{_t("dashboard_intro", lang)}</p>
<table id="students" class="list">
<thead><tr>{"".join(f"<th>{_t(h, lang)}</th>" for h in heads)}</tr></thead>
<tbody>
{body}
</tbody>
</table>
<form method="post" action="/mailbox/clear" class="inline">
<input type="hidden" name="csrf" value="{_e(csrf)}">
<button type="submit" id="clear-all">{_t("clear_all", lang)}</button></form>
<h2>{_t("lessons_title", lang)}</h2>
{self._lessons_html(lang)}"""

    def _row(self, row: Mapping[str, Any], lang: str, csrf: str) -> str:
        connected = _t("yes" if row["connected"] else "no", lang)
        lesson = ""
        if row["lesson"]:
            step, steps = row["step"], row["steps"]
            where = f"{step}/{steps}" if step <= steps else f"{steps}/{steps} ✓"
            lesson = f"{_e(row['lesson_title'])} · {_e(where)}"
        error = ""
        if row["last_error"]:
            error = f"<code>{_e(row['last_error'])}</code>"
            if row["explanation"]:
                error += f'<br><span class="dim">{_e(row["explanation"])}</span>'
        clear = (
            f'<form method="post" action="/mailbox/clear" class="inline">'
            f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
            f'<input type="hidden" name="account" value="{_e(row["name"])}">'
            f'<button type="submit">{_t("clear_mailbox", lang, name=row["name"])}</button></form>'
        )
        state = "on" if row["connected"] else "off"
        return (
            f'<tr data-student="{_e(row["name"])}"><td>{_e(row["name"])}</td>'
            f'<td class="{state}">{connected}</td>'
            f'<td class="num">{_e(row["sessions"])}</td><td class="num">{_e(row["messages"])}</td>'
            f"<td><code>{_e(row['last_command'] or '')}</code></td><td>{error}</td>"
            f'<td class="lesson">{lesson}</td><td>{clear}</td></tr>'
        )

    def _lessons_html(self, lang: str) -> str:
        lessons = self.lessons()
        if not lessons:
            return f'<p class="dim" id="no-lessons">{_t("no_lessons", lang)}</p>'
        students = max(1, len(self._accounts()))
        parts = []
        for lesson in lessons:
            bars = []
            for step in lesson["steps"]:
                done = 100 * step["passed"] // students
                working = 100 * step["working"] // students
                label = _t(
                    "step_passed",
                    lang,
                    step=step["step"],
                    passed=step["passed"],
                    stuck=step["working"],
                )
                bars.append(
                    f'<div class="bar-row" data-step="{step["step"]}">'
                    f'<span class="bar-label">{label}</span>'
                    f'<span class="bar"><span class="done w{done}"></span>'
                    f'<span class="working w{working}"></span></span></div>'
                )
            parts.append(
                f'<section class="lesson" data-lesson="{_e(lesson["lesson"])}">'
                f"<h3>{_e(lesson['title'])}</h3>{''.join(bars)}</section>"
            )
        return "\n".join(parts)


def _explanation(line: str | None, lang: str) -> str | None:
    if not line:
        return None
    try:
        found = explain(line, lang)
    except ValueError:
        return None
    info = found.enhanced if found.enhanced is not None and found.enhanced.standard else found.reply
    return info.title if info is not None else None
