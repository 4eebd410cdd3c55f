"""The list of lessons with what the student has done: `smtp-tutor lessons` and `:lessons`."""

from __future__ import annotations

from collections.abc import Sequence

from smtp_tutor.console.progress import Progress
from smtp_tutor.core.catalogue import message
from smtp_tutor.core.lessons import Lesson


def lesson_list_text(lessons: Sequence[Lesson], progress: Progress, lang: str) -> str:
    """One line per lesson: ✓ finished, ▸ where you stopped, · not started."""
    current = progress.current()
    lines = [message("lessons_ui", "list_title", lang)]
    for lesson in lessons:
        title, _translated = lesson.title.get(lang)
        total = len(lesson.steps)
        if progress.completed(lesson.id):
            mark, state = "✓", message("lessons_ui", "list_done", lang)
        elif progress.step(lesson.id):
            mark = "▸"
            state = message(
                "lessons_ui", "list_stopped", lang, step=progress.step(lesson.id) + 1, total=total
            )
        else:
            mark, state = "·", message("lessons_ui", "list_steps", lang, total=total)
        if lesson.id == current and mark != "✓":
            mark = "▸"
        source = "" if lesson.builtin else f"  [{lesson.path}]"
        lines.append(f" {mark} {lesson.number:>2}. {title} ({lesson.id}) — {state}{source}")
    lines.append(message("lessons_ui", "list_footer", lang))
    return "\n".join(lines)
