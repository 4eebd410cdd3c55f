"""`smtp-tutor connect`: a console (or a scripted probe) on a real server.

Everything an administrator reaches for openssl s_client and swaks for: MX lookup, the
submission and implicit-TLS ports, the address family, SNI, certificate verification
against the system or a given CA, client certificates, a minimum TLS version, and
`--quit-after STAGE` for a non-interactive probe. Heavy imports stay inside functions.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

    from smtp_tutor.client.session import Target
    from smtp_tutor.console.app import ConsoleOptions

EXIT_USAGE = 2
EXIT_CONNECTION = 3
TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
STAGES = ("connect", "ehlo", "tls", "auth", "mail", "rcpt")


def add_arguments(connect: argparse.ArgumentParser, port_type: object, seconds: object) -> None:
    connect.add_argument("host", nargs="?", help="the server (or use --mx DOMAIN)")
    connect.add_argument(
        "port",
        nargs="?",
        type=port_type,
        default=None,
        help="25 by default; 587 is submission; 465 means TLS from the start "
        "(with --pop3: 110 by default, 995 means TLS from the start)",
    )
    connect.add_argument(
        "--pop3",
        action="store_true",
        help="speak POP3 instead of SMTP: fetch mail by hand (USER, PASS, STAT, RETR, QUIT)",
    )
    where = connect.add_argument_group("finding the server")
    where.add_argument(
        "--mx",
        metavar="DOMAIN",
        help="look up DOMAIN's MX records and connect to the first that answers",
    )
    where.add_argument(
        "--nameserver",
        metavar="HOST[:PORT]",
        help="ask this DNS server for --mx (default: the system's)",
    )
    where.add_argument(
        "--port",
        dest="port_option",
        type=port_type,
        metavar="PORT",
        help="the port (same as the positional PORT)",
    )
    family = where.add_mutually_exclusive_group()
    family.add_argument("-4", "--ipv4", action="store_true", help="IPv4 only")
    family.add_argument("-6", "--ipv6", action="store_true", help="IPv6 only")
    where.add_argument(
        "--source-address", metavar="ADDRESS", help="connect from this local address"
    )
    tls = connect.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true", help="TLS from the first byte (as on 465)")
    tls.add_argument("--sni", metavar="NAME", help="server name to send and to verify against")
    tls.add_argument(
        "--verify",
        action="store_true",
        help="refuse a certificate that does not verify (default: warn, go on)",
    )
    tls.add_argument(
        "--cafile",
        type=Path,
        metavar="FILE",
        help="trust the certificate authorities in FILE (PEM)",
    )
    tls.add_argument("--client-cert", type=Path, metavar="FILE", help="client certificate (PEM)")
    tls.add_argument(
        "--client-key",
        type=Path,
        metavar="FILE",
        help="its private key (PEM; default: in --client-cert)",
    )
    tls.add_argument(
        "--tls-min-version",
        choices=TLS_VERSIONS,
        metavar="VERSION",
        help="lowest TLS version to accept: 1.0, 1.1, 1.2 or 1.3",
    )
    probe = connect.add_argument_group("scripted probe (no console)")
    probe.add_argument(
        "--quit-after",
        choices=STAGES,
        metavar="STAGE",
        help="walk the dialogue up to STAGE (connect, ehlo, tls, auth, mail, "
        "rcpt), then QUIT; the exit code says how far it got",
    )
    probe.add_argument("--ehlo", metavar="NAME", help="the EHLO name (default: this host's)")
    probe.add_argument(
        "--auth-user",
        metavar="USER",
        help="for --quit-after auth; the password comes from SMTP_TUTOR_PASSWORD or a prompt",
    )
    probe.add_argument(
        "--from",
        dest="mail_from",
        default="",
        metavar="ADDRESS",
        help="MAIL FROM address for the probe (default: <>)",
    )
    probe.add_argument("--to", dest="rcpt_to", metavar="ADDRESS", help="RCPT TO address")
    connect.add_argument(
        "--timeout",
        type=seconds,
        default=30.0,
        metavar="S",
        help="seconds to wait for the connection and for each reply (30)",
    )


def run_connect(args: argparse.Namespace, options: ConsoleOptions) -> int:
    import asyncio

    if getattr(args, "pop3", False):
        return _run_pop3(args, options)
    port = args.port_option or args.port or 25
    if args.host and args.mx:
        return _usage("host_and_mx", options.lang)
    if not args.host and not args.mx:
        return _usage("no_host", options.lang)
    if args.client_key and not args.client_cert:
        return _usage("key_needs_cert", options.lang)
    try:
        context = _tls_context(args)
    except (OSError, ValueError) as error:
        print(f"smtp-tutor connect: TLS setup: {_reason(error)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        hosts = _hosts(args, port)
    except LookupError as error:
        print(f"smtp-tutor connect: {error}", file=sys.stderr)
        return EXIT_CONNECTION
    targets = [_target(args, host, name, port, context) for host, name in hosts]
    if args.quit_after:
        return asyncio.run(_probe(args, targets, options))
    from smtp_tutor.console.app import Console
    from smtp_tutor.console.switch import run_switching

    console = Console(targets[0], options)
    console.fallbacks = targets[1:]
    return asyncio.run(run_switching(console))


def _run_pop3(args: argparse.Namespace, options: ConsoleOptions) -> int:
    """`connect --pop3 HOST [PORT]`: the POP3 console; the TLS options apply as for SMTP."""
    import asyncio

    for option, given in (
        ("--mx", args.mx),
        ("--quit-after", args.quit_after),
        ("--ehlo", args.ehlo),
        ("--auth-user", args.auth_user),
        ("--to", args.rcpt_to),
    ):
        if given:
            return _usage("pop3_not_with", options.lang, option=option)
    if not args.host:
        return _usage("no_host", options.lang)
    if args.client_key and not args.client_cert:
        return _usage("key_needs_cert", options.lang)
    from smtp_tutor.client.pop3_session import POP3_PORT

    port = args.port_option or args.port or POP3_PORT
    try:
        context = _tls_context(args)
    except (OSError, ValueError) as error:
        print(f"smtp-tutor connect: TLS setup: {_reason(error)}", file=sys.stderr)
        return EXIT_USAGE
    from smtp_tutor.console.pop3_console import Pop3Console, default_pop3_history_path

    if options.history_path is not None:
        options.history_path = default_pop3_history_path()
    target = _target(args, args.host, None, port, context)
    from smtp_tutor.console.switch import run_switching

    return asyncio.run(run_switching(Pop3Console(target, options)))


def _usage(key: str, lang: str, **params: object) -> int:
    """A usage error argparse cannot see (options that exclude each other), as argparse's are."""
    from smtp_tutor.cli.text import say_in

    what = say_in(key, lang, **params)
    print(say_in("usage_error", lang, prog="smtp-tutor connect", message=what), file=sys.stderr)
    return EXIT_USAGE


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The context the TLS options ask for; None for none, which the connection makes itself
    when TLS starts - a plain session reaches its first prompt with no TLS set up."""
    if not (args.verify or args.cafile or args.tls_min_version or args.client_cert):
        return None
    import ssl

    from smtp_tutor.client.tls import client_context

    versions = {
        "1.0": ssl.TLSVersion.TLSv1,
        "1.1": ssl.TLSVersion.TLSv1_1,
        "1.2": ssl.TLSVersion.TLSv1_2,
        "1.3": ssl.TLSVersion.TLSv1_3,
    }
    minimum = versions[args.tls_min_version] if args.tls_min_version else None
    context = client_context(verify=args.verify, cafile=args.cafile, minimum_version=minimum)
    if args.client_cert:
        context.load_cert_chain(args.client_cert, args.client_key)
    return context


def _hosts(args: argparse.Namespace, port: int) -> list[tuple[str, str | None]]:
    """(address, name) to try in order: the host, or with --mx every address of every MX.

    The name is the MX host's: its certificate names it, not its address, so SNI and
    verification use it.
    """
    if not args.mx:
        return [(args.host, None)]
    from smtp_tutor.client.mx import MXLookupError, family_numbers, lookup_mx, make_resolver

    try:
        resolver = make_resolver(args.nameserver, timeout=args.timeout)
        found = lookup_mx(args.mx, resolver, family_numbers(args.ipv4, args.ipv6))
    except (MXLookupError, ValueError) as error:
        raise LookupError(str(error)) from None
    print(f"MX records for {args.mx}, by preference:")
    hosts: list[tuple[str, str | None]] = []
    for mx in found:
        label = "(no MX: the domain itself)" if mx.implicit else f"{mx.preference:>3}"
        addresses = ", ".join(mx.addresses) or "no address"
        print(f"  {label} {mx.name}  {addresses}")
        hosts += [(address, mx.name) for address in mx.addresses]
    if not hosts:
        raise LookupError(f"{args.mx}: none of its mail servers has an address")
    return hosts


def _target(
    args: argparse.Namespace,
    host: str,
    name: str | None,
    port: int,
    context: ssl.SSLContext | None,
) -> Target:
    from smtp_tutor.client.session import Target

    return Target(
        host=host,
        port=port,
        implicit_tls=True if args.tls else None,
        connect_timeout=args.timeout,
        reply_timeout=args.timeout,
        ssl_context=context,
        server_hostname=args.sni or name,
        cafile=args.cafile,
        family=_family(args),
        source_address=args.source_address,
    )


def _family(args: argparse.Namespace) -> int:
    """The address family -4 / -6 ask for; both or neither: any."""
    import socket

    if args.ipv4 and not args.ipv6:
        return socket.AF_INET
    if args.ipv6 and not args.ipv4:
        return socket.AF_INET6
    return socket.AF_UNSPEC


async def _probe(args: argparse.Namespace, targets: list[Target], options: ConsoleOptions) -> int:
    import socket

    from prompt_toolkit.shortcuts import print_formatted_text

    from smtp_tutor.console import render
    from smtp_tutor.console.files import open_private
    from smtp_tutor.console.probe import Probe, ProbePlan
    from smtp_tutor.core.recorder import TranscriptRecorder

    lang = options.lang

    password = os.environ.get("SMTP_TUTOR_PASSWORD")
    if args.auth_user and password is None and sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password for {args.auth_user}: ")
    plan = ProbePlan(
        quit_after=args.quit_after,
        ehlo=args.ehlo or socket.gethostname() or "smtp-tutor",
        user=args.auth_user,
        password=password,
        mail_from=args.mail_from,
        rcpt_to=args.rcpt_to,
        lang=lang,
    )
    style = render.console_style()

    def show(fragments: render.Fragments) -> None:
        print_formatted_text(
            render.as_text(fragments), end="", style=style, include_default_pygments_style=False
        )

    if options.transcript is None:
        return await Probe(targets, plan, show).run()
    # As the console's --transcript: written as it happens, so an interrupted probe keeps
    # what it saw; private (0600), as it may name users and addresses.
    recorder = TranscriptRecorder(timing=True)
    try:
        options.transcript.parent.mkdir(parents=True, exist_ok=True)
        file = open_private(options.transcript)
    except OSError as error:
        print(f"smtp-tutor: cannot write {options.transcript}: {_reason(error)}", file=sys.stderr)
        return 1
    with file:
        recorder.attach(file, format=options.transcript_format)  # type: ignore[arg-type]
        return await Probe(targets, plan, show, recorder).run()
