"""The command line: one module per subcommand; `main` builds the parser and dispatches.

What lives here: `main` (the parser, the sandbox console that plain `smtp-tutor` opens,
dispatch), `text` (the command line's words in the reader's language), and a module per
subcommand — `connect`, `serve`, `explain`, `replay`, `diagram`, `lesson`. What it may
import: everything below it; nothing imports the CLI but `__main__` and the entry point.
"""

from smtp_tutor.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
