"""Command line: a thin argparse layer that picks a job and hands over to it.

Exit codes: 0 fine, 1 the job ran and reports failure, 2 bad usage, 3 connection or TLS
failure, 130 interrupted. Every error is one line on stderr; no traceback reaches a user.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
from collections.abc import Callable, Sequence

from smtp_tutor import __version__
from smtp_tutor.cli import text as cli_text
from smtp_tutor.cli.text import EXIT_CONNECTION, EXIT_USAGE, os_reason
from smtp_tutor.data import save_cache

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, NoReturn

    from smtp_tutor.console.app import ConsoleOptions
    from smtp_tutor.sandbox.process import SandboxProcess


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), not a usage dump; and help,
    usage and errors in the reader's language (`lang`, see cli/text.py).

    `lazy_epilog` builds the epilog only when help is shown: the trigger list reads a data
    file, and `--version` should not pay for that. `build_parser` makes a subclass per
    language, so every subcommand's parser shares its `lang`.
    """

    lazy_epilog: Callable[[], str] | None = None
    lang: str = "en"

    def error(self, message: str) -> NoReturn:
        line = cli_text.say_in("usage_error", self.lang, prog=self.prog, message=message)
        self.exit(EXIT_USAGE, line + "\n")

    def parse_known_args(self, *args: Any, **kwargs: Any) -> tuple[argparse.Namespace, list[str]]:
        with cli_text.argparse_words(self.lang):
            return super().parse_known_args(*args, **kwargs)

    def parse_args(self, *args: Any, **kwargs: Any) -> argparse.Namespace:  # type: ignore[override]
        with cli_text.argparse_words(self.lang):  # "unrecognized arguments" is said here
            return super().parse_args(*args, **kwargs)

    def format_help(self) -> str:
        if self.lazy_epilog is not None and self.epilog is None:
            self.epilog = self.lazy_epilog()
        with cli_text.argparse_words(self.lang):
            return super().format_help()

    def format_usage(self) -> str:
        with cli_text.argparse_words(self.lang):
            return super().format_usage()

    _adding = False  # within add_argument: the formatter only checks the metavar

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        self._adding = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._adding = False

    def add_subparsers(self, **kwargs: Any) -> Any:
        self._adding = True  # the formatter only makes the subcommands' prog: no help drawn
        try:
            return super().add_subparsers(**kwargs)
        finally:
            self._adding = False

    def _get_formatter(self) -> argparse.HelpFormatter:
        formatter = cli_text.translating_formatter(self.formatter_class, self.lang)
        if self._adding:  # no help is drawn: no need to ask the terminal (or import shutil)
            return formatter(prog=self.prog, width=80)
        return formatter(prog=self.prog)


def _add_transcript(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    parser.add_argument(
        "--transcript",
        type=_file_path,
        metavar="FILE",
        default=None if top else argparse.SUPPRESS,
        help="write the session to FILE as it happens (passwords become placeholders)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "jsonl"),
        default="text" if top else argparse.SUPPRESS,
        help="transcript format: text (RFC 5321 style, replayable) or jsonl (for tools)",
    )


def _add_lesson_dirs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        action="append",
        type=_file_path,
        default=[],
        metavar="PATH",
        help="also load lessons from this folder (repeatable)",
    )


def _add_common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # A subcommand's defaults would overwrite what was given before the subcommand
    # (`smtp-tutor --lang zh explain 535`), so only the top-level parser sets defaults.
    parser.add_argument(
        "--lang",
        type=_language_option,
        default=None if top else argparse.SUPPRESS,
        help="language of every text, help and errors too: en or zh "
        "(default: from LANGUAGE/LC_ALL/LANG)",
    )
    parser.add_argument(
        "--no-color",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="no colours (NO_COLOR works too)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="show the traceback of an internal error too (it is always kept in debug.log)",
    )


def _triggers_help() -> str:
    from smtp_tutor.sandbox.triggers import TRIGGERS_HELP

    return TRIGGERS_HELP


class _NeedFullParser(Exception):
    """A parser built for one subcommand met what only the whole command line can answer."""


def build_parser(
    lang: str | None = None, only: str | None = None, *, strict: bool = False
) -> argparse.ArgumentParser:
    """The whole command line; help and errors in `lang` (default: the environment's).

    With `only` (a subcommand's name, or "" for none) just that subcommand is added: the
    others' options are not built (the serve command's alone costs a data file and a
    module). `strict` makes a usage error raise `_NeedFullParser` instead of exiting, so
    `main` can parse again with the whole parser and say what it would have said.
    """
    from smtp_tutor.core.language import language_from_env

    attributes: dict[str, object] = {"lang": lang or language_from_env()}
    if strict:
        attributes["error"] = _raise_need_full_parser
    parser_class = type("_Parser", (_Parser,), attributes)
    # argparse names its groups and -h in its own words as it builds: ours, so it never asks
    # gettext (a search for .mo files per word, and the locale module) on every start.
    with cli_text.argparse_words(str(attributes["lang"])):
        parser = parser_class(
            prog="smtp-tutor",
            description="Type raw SMTP like telnet, with explanations, TLS and base64 done for "
            "you. With no command: start the embedded sandbox server and open a console on it.",
        )
        parser.add_argument("--version", action="version", version=f"smtp-tutor {__version__}")
        _add_transcript(parser, top=True)
        _add_common(parser, top=True)
        _add_web_option(parser)
        commands = parser.add_subparsers(
            dest="command", parser_class=parser_class, metavar="COMMAND"
        )
        for names, add in _COMMANDS:
            if only is None or only in names:
                add(commands)
    return parser


def _raise_need_full_parser(self: argparse.ArgumentParser, message: str) -> NoReturn:
    raise _NeedFullParser(message)


def _wants_help(argv: Sequence[str]) -> bool:
    """-h, --help, an abbreviation of it or a cluster with h (-qh): the whole parser shows it."""
    return any(arg.startswith("-") and "h" in arg for arg in argv if arg != "--")


def parse_command_line(argv: Sequence[str], lang: str) -> argparse.Namespace:
    """`argv` parsed as the whole parser would, building only the subcommand it names.

    A parser with fewer subcommands accepts no more than the whole one and reads what it
    accepts the same way, so its answer is kept; anything else (help, a usage error, a
    command it lacks) is parsed again by the whole parser, which says what it always said.
    """
    if not _wants_help(argv):
        named = next((arg for arg in argv if arg in _COMMAND_NAMES), "")
        try:
            return build_parser(lang, only=named, strict=True).parse_args(argv)
        except _NeedFullParser:
            pass
    return build_parser(lang).parse_args(argv)


def _add_connect_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    """`connect HOST`: a console on a real server; its options live in connect_cli."""
    connect = commands.add_parser(
        "connect",
        help="open a console on a real server",
        description="Open a console on HOST. Port 25 by default; 465 means TLS from the start.",
    )
    from smtp_tutor.cli.connect import add_arguments

    add_arguments(connect, _port, _seconds)
    _add_transcript(connect)
    _add_common(connect)


def _add_serve_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    """`serve`: the sandbox in the foreground, with its accounts, policies and limits."""
    serve = commands.add_parser(
        "serve",
        help="run the sandbox SMTP server in the foreground",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the sandbox: it accepts mail into a local Maildir and never relays.",
    )
    serve.lazy_epilog = _triggers_help
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=_port_or_zero, default=2525, help="port (2525; 0 = free)")
    serve.add_argument(
        "--mailbox",
        type=_file_path,
        default=None,
        metavar="DIR",
        help="Maildir to store messages in (default: in the data directory)",
    )
    serve.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="an extra account (repeatable); student:secret always exists",
    )
    serve.add_argument(
        "--require-tls", action="store_true", help="refuse AUTH and MAIL until STARTTLS"
    )
    serve.add_argument(
        "--require-auth", action="store_true", help="refuse MAIL until the client has done AUTH"
    )
    serve.add_argument(
        "--implicit-tls", action="store_true", help="TLS from the first byte (like port 465)"
    )
    serve.add_argument("--hostname", default="localhost", help="name in the greeting")
    serve.add_argument(
        "--max-size",
        type=_positive_int,
        default=10 * 1024 * 1024,
        metavar="BYTES",
        help="message size limit, advertised as SIZE (10 MiB)",
    )
    from smtp_tutor.sandbox.config import POP3_MIN_IDLE_TIMEOUT, SERVER_IDLE_TIMEOUT

    serve.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=SERVER_IDLE_TIMEOUT,  # a classroom's server; a student's own waits longer
        metavar="S",
        help=f"close an idle connection with 421 4.4.2 after S seconds ({SERVER_IDLE_TIMEOUT:g})",
    )
    serve.add_argument(
        "--max-connections",
        type=_positive_int,
        default=100,
        metavar="N",
        help="concurrent connections; the next one gets 421 4.7.0 (100)",
    )
    serve.add_argument(
        "--greylist-delay",
        type=_seconds,
        default=5.0,
        metavar="S",
        help="how long greylist@ addresses are refused (5)",
    )
    serve.add_argument(
        "--slow-delay",
        type=_seconds,
        default=5.0,
        metavar="S",
        help="how long slow@ addresses make the client wait (5)",
    )
    _add_classroom_options(serve)
    serve.add_argument(
        "--pop3",
        type=_pop3_address,
        default=None,
        metavar="[HOST:]PORT",
        help="also serve POP3 on PORT (0 = free; HOST: the --host one), one mailbox per account",
    )
    serve.add_argument(
        "--pop3-implicit-tls",
        action="store_true",
        help="POP3 with TLS from the first byte (POP3S, like port 995)",
    )
    serve.add_argument(
        "--pop3-idle-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="close an idle POP3 session after S seconds (the --idle-timeout, "
        f"but at least {POP3_MIN_IDLE_TIMEOUT:g}: RFC 1939's 10 minutes)",
    )
    serve.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no line per connection and per stored message",
    )
    _add_common(serve)


def _add_classroom_options(serve: argparse.ArgumentParser) -> None:
    """A whole class on one sandbox: accounts to hand out and the web view (cli/classroom.py)."""
    serve.add_argument(
        "--class",
        dest="class_size",
        type=_positive_int,
        default=None,
        metavar="N",
        help="N generated accounts student01…, printed once and written to --accounts-file",
    )
    serve.add_argument(
        "--roster",
        type=_file_path,
        default=None,
        metavar="FILE",
        help="an account for each name in FILE (one a line), passwords generated",
    )
    serve.add_argument(
        "--accounts-file",
        type=_file_path,
        default=None,
        metavar="CSV",
        help="where --class/--roster write name,password (class-accounts.csv, mode 0600)",
    )
    _add_web_option(serve)
    serve.add_argument(
        "--teacher-token",
        type=_teacher_token,
        default=None,
        metavar="TOKEN",
        help="the teacher's token for the web view (default: a new random one, printed)",
    )


def _add_web_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--web",
        type=_web_address,
        default=None,
        metavar="[HOST:]PORT",
        help="serve the web view of the sandbox (mail, dialogues, dashboard); host 127.0.0.1",
    )


def _web_address(text: str) -> tuple[str, int]:
    from smtp_tutor.web.address import parse_address

    try:
        return parse_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            cli_text.say("not_web_address", value=repr(text))
        ) from None


def _teacher_token(text: str) -> str:
    if len(text) < 8 or any(c.isspace() or not c.isprintable() for c in text):
        raise argparse.ArgumentTypeError(cli_text.say("bad_teacher_token"))
    return text


def _add_explain_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    """`explain CODE`: a reply code, an enhanced code or a whole reply line, explained."""
    explain = commands.add_parser(
        "explain",
        help='explain a reply code: 535, 5.7.8, "550 5.1.1 User unknown"',
        description="Explain an SMTP reply code, an enhanced status code, or a whole reply line.",
    )
    explain.add_argument("query", nargs="+")
    _add_common(explain)


def _add_lesson_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    """`lesson [ID]` and `lessons`: guided lessons, progress, and checking lesson files."""
    lesson = commands.add_parser(
        "lesson",
        help="start a guided lesson (no ID: continue where you stopped)",
        description="Start a guided lesson on the sandbox. Every line you type really goes to "
        "the server; each step is checked. Without ID, continue where you stopped.",
    )
    lesson.add_argument("id", nargs="?", help="lesson number or name, e.g. 1 or greeting")
    _add_lesson_dirs(lesson)
    lesson.add_argument(
        "--server",
        type=_server_address,
        metavar="HOST:PORT",
        help="run the lesson on a class sandbox (`smtp-tutor serve --web`) at HOST:PORT, its "
        "SMTP port, instead of a local one; each step's result goes to the teacher's dashboard",
    )
    lesson.add_argument(
        "--user",
        metavar="NAME",
        help="your name on the class sandbox (with --server); the password is asked for, or "
        "read from --password-file or SMTP_TUTOR_PASSWORD",
    )
    lesson.add_argument(
        "--password-file",
        type=_file_path,
        metavar="FILE",
        help="read the password from the first line of FILE (for scripts)",
    )
    _add_common(lesson)

    lessons = commands.add_parser(
        "lessons",
        help="list the lessons (✓ for finished ones), reset progress, check lesson files",
        description="List the lessons with your progress; --reset forgets it; --check "
        "validates lesson files and replays their solutions against the sandbox.",
    )
    _add_lesson_dirs(lessons)
    lessons.add_argument(
        "--reset",
        nargs="?",
        const="*",
        default=None,
        metavar="ID",
        help="forget progress of one lesson, or of all without ID",
    )
    lessons.add_argument(
        "--check",
        nargs="+",
        type=_file_path,
        default=None,
        metavar="PATH",
        help="validate lesson files (or folders of them) and replay their solutions",
    )
    _add_common(lessons)


def _add_diagram_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    """`diagram FILE -o OUT`: a transcript drawn as a sequence diagram."""
    diagram = commands.add_parser(
        "diagram",
        help="draw a transcript as a sequence diagram (SVG or HTML)",
        description="Draw a transcript (from --transcript or :save, text or JSON Lines) as a "
        "sequence diagram: replies coloured by class, the TLS and authenticated stretches "
        "shaded.",
    )
    diagram.add_argument(
        "file",
        type=_file_path,
        metavar="FILE",
        help="the transcript to draw, text or JSON Lines; - reads standard input",
    )
    diagram.add_argument(
        "-o",
        "--output",
        type=_file_path,
        required=True,
        metavar="OUT",
        help="where to write it: a .svg file, or a .html page with a legend; - writes the "
        "diagram to standard output",
    )
    diagram.add_argument(
        "--format",
        choices=("svg", "html"),
        default=None,
        help="SVG or an HTML page, whatever OUT's name (default: by OUT's suffix; svg for -)",
    )
    _add_common(diagram)


def _add_replay_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    """`replay FILE`: send a transcript again and check every reply."""
    replay = commands.add_parser(
        "replay",
        help="send a transcript's C: lines again and check every S: reply",
        description="Replay FILE, a transcript as :save or --transcript writes it, text or "
        "JSON Lines (docs/transcript.md); - reads it from standard input. Send its C: lines "
        "and check each S: reply in order, stopping at the first mismatch. "
        "Without --server: against an embedded sandbox on a free loopback port. Exit 0 every "
        "reply matched, 1 a mismatch (reported as FILE:LINE), 2 a usage or script error, "
        "3 a connection or TLS failure.",
    )
    replay.add_argument(
        "file", metavar="FILE", help="the transcript, text or JSON Lines; - reads standard input"
    )
    replay.add_argument(
        "--server",
        metavar="HOST[:PORT]",
        help="replay against this server (port 25; 465 means TLS); the script's @connect "
        "lines only inform, but a second @connect means: reconnect here",
    )
    tls = replay.add_mutually_exclusive_group()
    tls.add_argument("--tls", action="store_true", help="TLS from the first byte (as on 465)")
    tls.add_argument(
        "--starttls",
        action="store_true",
        help="for a script without STARTTLS: after the greeting send EHLO (with the script's "
        "EHLO name) and STARTTLS, do the TLS handshake, then run the script from its first "
        "C: line inside TLS (so its own EHLO follows); if that fails, exit 3. A script with "
        "its own STARTTLS runs unchanged",
    )
    replay.add_argument(
        "--verify",
        action="store_true",
        help="verify the certificate and stop on a bad one (exit 3); off by default. The "
        "embedded sandbox's own certificate is trusted",
    )
    replay.add_argument(
        "--cafile",
        type=_file_path,
        metavar="FILE",
        help="trust this CA certificate (implies --verify)",
    )
    replay.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a placeholder's variable (repeatable); else $SMTP_TUTOR_<NAME>, else a prompt",
    )
    replay.add_argument(
        "--step", action="store_true", help="show each command and wait for Enter to send it"
    )
    replay.add_argument("--delay", metavar="MS", help="pause MS milliseconds between commands")
    replay.add_argument(
        "--pipeline",
        action="store_true",
        help="send commands in groups when the server offers PIPELINING (RFC 2920)",
    )
    replay.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds to wait for the connection and for each reply (30)",
    )
    replay.add_argument(
        "--mailbox",
        type=_file_path,
        default=None,
        metavar="DIR",
        help="Maildir of the embedded sandbox (default: a temporary one)",
    )
    replay.add_argument(
        "-q", "--quiet", action="store_true", help="print only the summary or the report"
    )
    _add_common(replay)


# The type checks of options: what they say goes into argparse's "argument --port: …" line,
# in the language of the parser that is parsing (cli_text.say).


def _file_path(text: str) -> Path:
    """A FILE option's value: `pathlib` is imported when one is given, not to build a parser."""
    from pathlib import Path

    return Path(text)


def _port(text: str) -> int:
    value = _port_or_zero(text)
    if value == 0:
        raise argparse.ArgumentTypeError(cli_text.say("port_range", low=1))
    return value


def _port_or_zero(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(cli_text.say("not_a_port", value=repr(text))) from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(cli_text.say("port_range", low=0))
    return value


def _pop3_address(text: str) -> tuple[str | None, int]:
    """`--pop3 PORT` or `--pop3 HOST:PORT` (an IPv6 HOST in brackets: `[::1]:2110`)."""
    host, colon, port = text.rpartition(":")
    if colon and not host:
        raise argparse.ArgumentTypeError(cli_text.say("not_a_pop3_address", value=repr(text)))
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if colon and (not host or any(c.isspace() for c in host) or ("[" in host or "]" in host)):
        raise argparse.ArgumentTypeError(cli_text.say("not_a_pop3_address", value=repr(text)))
    return (host or None), _port_or_zero(port)


def _server_address(text: str) -> tuple[str, int]:
    """`lesson --server HOST:PORT` (an IPv6 HOST in brackets: `[::1]:2525`)."""
    host, colon, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or any(c.isspace() or c in "[]/" for c in host):
        raise argparse.ArgumentTypeError(cli_text.say("not_a_server_address", value=repr(text)))
    return host, _port(port)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(cli_text.say("not_a_number", value=repr(text))) from None
    if value < 1:
        raise argparse.ArgumentTypeError(cli_text.say("at_least_one"))
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(cli_text.say("not_seconds", value=repr(text))) from None
    if not math.isfinite(value) or value <= 0:  # float() also takes "nan" and "inf"
        raise argparse.ArgumentTypeError(cli_text.say("positive_seconds", value=repr(text)))
    return value


def _language_option(text: str) -> str:
    """An explicit --lang we have no texts for is a mistake, not a silent fall-back to English."""
    from smtp_tutor.core.language import LANGUAGES, normalise_language

    if not cli_text.known_language(text):
        choices = ", ".join(LANGUAGES)
        raise argparse.ArgumentTypeError(
            cli_text.say("unknown_language", value=repr(text), choices=choices)
        )
    return normalise_language(text)


_COMMANDS: tuple[tuple[tuple[str, ...], Callable[[Any], None]], ...] = (
    (("connect",), _add_connect_command),
    (("serve",), _add_serve_command),
    (("explain",), _add_explain_command),
    (("lesson", "lessons"), _add_lesson_commands),
    (("diagram",), _add_diagram_command),
    (("replay",), _add_replay_command),
)
_COMMAND_NAMES = frozenset(name for names, _ in _COMMANDS for name in names)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # --help and usage errors come before anything runs: find --lang in the raw arguments.
    args = parse_command_line(argv, cli_text.argv_language(argv))
    _tolerate_unprintable()
    try:
        status = _run(args)
        sys.stdout.flush()  # a reader that left shows up here, not at interpreter exit
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `smtp-tutor explain 550 | head -1`: the reader left early
        _discard_stdout()
        return 1
    finally:
        save_cache()  # the knowledge files parsed this time, for the next start (data/)
    return status


def _run(args: argparse.Namespace) -> int:
    if args.command == "explain":
        from smtp_tutor.cli.explain import run_explain

        return run_explain(args, _language(args))
    if args.command == "serve":
        from smtp_tutor.cli.serve import run_serve

        return run_serve(args, _language(args))
    if args.command == "connect":
        return _connect(args)
    if args.command == "lesson":
        from smtp_tutor.cli.lesson import run_lesson

        return run_lesson(args, _console_options(args))
    if args.command == "lessons":
        from smtp_tutor.cli.lesson import run_lessons

        return run_lessons(args, _language(args))
    if args.command == "diagram":
        from smtp_tutor.cli.diagram import run_diagram

        return run_diagram(args)
    if args.command == "replay":
        from smtp_tutor.cli.replay import run_replay

        return run_replay(args, _language(args))
    return _sandbox_console(args)


def _tolerate_unprintable() -> None:
    """Chinese text on an ASCII-only stdout, or a path that is not UTF-8: escape, don't crash."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout has no file descriptor (tests, embedding)
        pass


def _language(args: argparse.Namespace) -> str:
    from smtp_tutor.core.language import language_from_env

    return str(args.lang) if args.lang else language_from_env()


def _color(args: argparse.Namespace) -> bool:
    return not args.no_color and not os.environ.get("NO_COLOR")


def _console_options(args: argparse.Namespace, **extra: object) -> ConsoleOptions:
    """Settings for a console: config.toml first, then the command line and NO_COLOR on top."""
    from smtp_tutor.console.app import ConsoleOptions
    from smtp_tutor.console.config import config_path, load_config
    from smtp_tutor.core.catalogue import message
    from smtp_tutor.core.language import normalise_language
    from smtp_tutor.paths import state_dir

    config = load_config()
    if args.lang:
        lang = str(args.lang)
    elif config.language:
        lang = normalise_language(config.language)
    else:
        lang = _language(args)
    notices = [
        message("console", "config_problem", lang, path=config_path(), error=problem)
        for problem in config.problems
    ]
    return ConsoleOptions(
        lang=lang,
        color=_color(args),
        style=config.style,
        editing_mode=config.editing_mode,
        confirm_on_warning=config.confirm_on_warning,
        toolbar=config.toolbar,
        history_path=state_dir() / "history",
        transcript=args.transcript,
        transcript_format=args.format,
        notices=notices,
        debug=bool(getattr(args, "debug", False)),
        **extra,  # type: ignore[arg-type]
    )


def _connect(args: argparse.Namespace) -> int:
    from smtp_tutor.cli.connect import run_connect

    return run_connect(args, _console_options(args))


def _sandbox_console(args: argparse.Namespace) -> int:
    if getattr(args, "web", None) is None:
        # The sandbox starts in its own process first, and the console is built meanwhile
        # (sandbox/process.py); the web view lives in the sandbox's loop, so it keeps both
        # in this process.
        from smtp_tutor.sandbox.process import SandboxProcess

        try:
            child = SandboxProcess()
        except OSError as error:
            print(f"smtp-tutor: cannot start the sandbox: {os_reason(error)}", file=sys.stderr)
            return EXIT_CONNECTION
        try:
            import asyncio

            return asyncio.run(_run_sandbox_process_console(args, child))
        finally:
            child.kill()
    import asyncio

    return asyncio.run(_run_sandbox_console(args))


async def _run_sandbox_process_console(args: argparse.Namespace, child: SandboxProcess) -> int:
    from smtp_tutor.console.switch import run_on_sandbox
    from smtp_tutor.sandbox.process import SandboxStartError

    options = _console_options(args)
    try:
        child.wait_ready()
    except SandboxStartError as error:
        return _sandbox_start_failed(error)
    return await run_on_sandbox(child, options)


def _sandbox_start_failed(error: OSError) -> int:
    """Say why the sandbox did not start, in one line; the exit code."""
    code = cli_text.start_failed("smtp-tutor", error)
    if code is not None:
        return code
    print(f"smtp-tutor: cannot start the sandbox: {os_reason(error)}", file=sys.stderr)
    return EXIT_CONNECTION


async def _run_sandbox_console(args: argparse.Namespace) -> int:
    from smtp_tutor.console.switch import run_on_sandbox
    from smtp_tutor.sandbox import Sandbox, SandboxConfig

    web = getattr(args, "web", None)
    sandbox = Sandbox(SandboxConfig(port=0, pop3_port=0), record_sessions=web is not None)
    if web is not None:
        from smtp_tutor.cli.classroom import web_setup

        web_setup(web, None)(sandbox)
    try:
        await sandbox.start()
    except OSError as error:
        return _sandbox_start_failed(error)
    for companion in sandbox.companions:  # the web view: its address and the teacher's URL
        for line in companion.summary():
            print(line, flush=True)
    return await run_on_sandbox(sandbox, _console_options(args))
