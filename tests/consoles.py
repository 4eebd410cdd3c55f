"""Drive the real console through prompt_toolkit pipe input: see smtp_tutor.console.scripted."""

from smtp_tutor.console.scripted import run_console, screen_text

__all__ = ["run_console", "screen_text"]
