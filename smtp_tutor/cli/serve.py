"""`smtp-tutor serve`: the sandbox in the foreground for a class, one line per event."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from smtp_tutor.cli.text import EXIT_CONNECTION, EXIT_USAGE, os_reason, start_failed


def run_serve(args: argparse.Namespace, lang: str) -> int:
    import asyncio

    from smtp_tutor.cli.classroom import accounts_lines, class_accounts, web_setup
    from smtp_tutor.core.catalogue import Said
    from smtp_tutor.sandbox import SandboxConfig, parse_accounts, serve_forever

    try:
        users = {**SandboxConfig().users, **parse_accounts(args.user)}
        generated = class_accounts(args, users)  # --class, --roster: written to a CSV
        users.update(generated)
        config = SandboxConfig(
            host=args.host,
            port=args.port,
            mailbox=args.mailbox,
            users=users,
            require_tls=args.require_tls,
            require_auth=args.require_auth,
            implicit_tls=args.implicit_tls,
            hostname=args.hostname,
            max_message_size=args.max_size,
            idle_timeout=args.idle_timeout,
            max_connections=args.max_connections,
            greylist_delay=args.greylist_delay,
            slow_delay=args.slow_delay,
            pop3_port=args.pop3[1] if args.pop3 else None,
            pop3_host=args.pop3[0] if args.pop3 else None,
            pop3_implicit_tls=args.pop3_implicit_tls,
            pop3_idle_timeout=args.pop3_idle_timeout,
        )
        if args.pop3_implicit_tls and args.pop3 is None:
            raise ValueError(Said("serve", "pop3_tls_without_pop3"))
        config.validate()
    except ValueError as error:
        from smtp_tutor.core.catalogue import localize

        what = localize(error.args[0], lang) if error.args else str(error)
        print(f"smtp-tutor serve: {what}", file=sys.stderr)
        return EXIT_USAGE
    report = None if args.quiet else activity_printer(lang)
    if generated:
        for line in accounts_lines(generated, args.accounts_file or Path("class-accounts.csv")):
            print(line, flush=True)
    web = getattr(args, "web", None)
    setup = web_setup(web, args.teacher_token) if web is not None else None
    try:
        asyncio.run(
            serve_forever(
                config,
                lambda text: print(text, flush=True),
                report,
                record_sessions=web is not None,
                setup=setup,
            )
        )
    except OSError as error:
        code = start_failed("smtp-tutor serve", error)
        if code is not None:
            return code
        where = f"{args.host}:{args.port}"
        from smtp_tutor.sandbox.pop3.server import Pop3BindError

        if isinstance(error, Pop3BindError):
            where = f"{error.host}:{error.port} (POP3)"
        print(f"smtp-tutor serve: cannot listen on {where}: {os_reason(error)}", file=sys.stderr)
        return EXIT_CONNECTION
    return 0


def activity_printer(lang: str) -> Callable[[str, Mapping[str, str]], None]:
    """`serve`'s line per connection and message, in the reader's language, with the time."""
    import time

    from smtp_tutor.core.catalogue import message

    def report(event: str, fields: Mapping[str, str]) -> None:
        print(message("serve", event, lang, time=time.strftime("%H:%M:%S"), **fields), flush=True)

    return report
