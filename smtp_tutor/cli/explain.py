"""`smtp-tutor explain CODE`: what a reply, an enhanced code or a keyword means, wrapped."""

from __future__ import annotations

import argparse
import sys

from smtp_tutor.cli.text import EXIT_USAGE


def run_explain(args: argparse.Namespace, lang: str) -> int:
    """Print the explanation wrapped to the terminal (COLUMNS or 80 when not on one)."""
    import shutil

    from smtp_tutor.console.wrap import wrap_text
    from smtp_tutor.core.knowledge import explain, format_explanation

    try:
        explanation = explain(" ".join(args.query), lang)
    except ValueError as error:
        print(f"smtp-tutor explain: {error}", file=sys.stderr)
        return EXIT_USAGE
    # shutil asks COLUMNS first, then the terminal standard output is, then falls back.
    columns = shutil.get_terminal_size((80, 24)).columns
    print(wrap_text(format_explanation(explanation, lang), columns, min_hang=4))
    return 0
