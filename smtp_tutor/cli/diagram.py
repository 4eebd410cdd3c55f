"""`smtp-tutor diagram FILE -o OUT`: thin glue around `smtp_tutor.diagram.sequence.write_diagram`.

Only the exit codes live here: the user's input is wrong (2) or the output could not be
written (1); each problem is one line on stderr. ``-`` as FILE reads standard input, as OUT
writes the diagram to standard output (then nothing else goes there).
"""

from __future__ import annotations

import argparse
import sys

from smtp_tutor.diagram.sequence import STDIO, write_diagram

__all__ = ["run_diagram"]

EXIT_USAGE = 2


def run_diagram(args: argparse.Namespace) -> int:
    try:
        write_diagram(args.file, args.output, kind=args.format)
    except BrokenPipeError:
        raise  # `diagram x -o - | head`: smtp_tutor.cli handles a reader that left
    except ValueError as error:  # DiagramError, or TranscriptError with file:line
        print(f"smtp-tutor diagram: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # DiagramWriteError: the output file
        print(f"smtp-tutor diagram: {error}", file=sys.stderr)
        return 1
    if str(args.output) != STDIO:
        print(f"smtp-tutor diagram: wrote {args.output}")
    return 0
