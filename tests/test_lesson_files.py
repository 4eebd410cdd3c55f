"""Every lesson file in the repository passes the engine's check."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtp_tutor.core.lessons import check_lesson_file, load_lesson

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`

LESSONS = sorted((Path(__file__).resolve().parent.parent / "lessons").glob("*.toml"))


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_file_has_no_problems(path: Path) -> None:
    assert [str(e) for e in check_lesson_file(path, builtin=True)] == []


def test_builtin_lessons_are_complete_and_numbered_once() -> None:
    lessons = [load_lesson(path, builtin=True) for path in LESSONS]
    for lesson in lessons:
        assert lesson.missing == (), lesson.path
        texts = [lesson.title, lesson.intro, *([lesson.outro] if lesson.outro else [])]
        for step in lesson.steps:
            texts += [step.explain, step.goal, step.success]
            assert set(step.hints) in (set(), {"en", "zh"}), (lesson.path, step.id)
        for text in texts:
            assert set(text.values) == {"en", "zh"}, lesson.path
    numbers = [lesson.number for lesson in lessons]
    assert len(numbers) == len(set(numbers)), sorted(numbers)
    ids = [lesson.id for lesson in lessons]
    assert len(ids) == len(set(ids)), sorted(ids)
    for lesson in lessons:  # the file name starts with the lesson's number: 01-greeting.toml
        assert lesson.path.name.startswith(f"{lesson.number:02d}-"), lesson.path.name


def test_a_source_checkout_finds_its_own_lessons_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the installed `smtp_tutor.lessons` mapping (tests run from a checkout against a
    non-editable install), the built-in lessons are the checkout's lessons/ folder."""
    from importlib import resources

    from smtp_tutor.core.lessons import loading

    def missing(name: str) -> object:
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(resources, "files", missing)
    folder = loading.builtin_lesson_dir()
    assert Path(str(folder)) == Path(__file__).resolve().parents[1] / "lessons"
