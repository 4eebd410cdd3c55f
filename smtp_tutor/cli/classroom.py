"""The classroom options: `serve --class/--roster/--web/--teacher-token`, and `--web` of the
plain command. Thin glue: the accounts come from sandbox/roster.py, the web view from web/."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smtp_tutor.sandbox import Sandbox

DEFAULT_ACCOUNTS_FILE = Path("class-accounts.csv")


def class_accounts(args: argparse.Namespace, taken: Mapping[str, str]) -> dict[str, str]:
    """The accounts `--class N` and `--roster FILE` ask for, written to the CSV; ValueError."""
    from smtp_tutor.sandbox.roster import generated_accounts, read_roster, write_accounts_csv

    accounts: dict[str, str] = {}
    if getattr(args, "roster", None) is not None:
        accounts.update(read_roster(args.roster))
        clash = sorted(set(accounts) & set(taken))
        if clash:
            raise ValueError(f"the roster names {clash[0]!r}, which --user gives already")
    if getattr(args, "class_size", None):
        accounts.update(generated_accounts(args.class_size, {*taken, *accounts}))
    if accounts:
        path = args.accounts_file or DEFAULT_ACCOUNTS_FILE
        try:
            write_accounts_csv(path, accounts)
        except OSError as error:
            raise ValueError(f"cannot write {path}: {error.strerror or error}") from error
    return accounts


def accounts_lines(accounts: Mapping[str, str], path: Path) -> list[str]:
    """What the teacher sees once: where the sheet is, then name and password per line."""
    width = max(len(name) for name in accounts)
    lines = [f"Class accounts ({len(accounts)}; also in {path}, readable only by you):"]
    lines += [f"  {name:<{width}}  {password}" for name, password in accounts.items()]
    return lines


def web_setup(address: tuple[str, int], teacher_token: str | None) -> Callable[[Sandbox], None]:
    """Adds the web view to a sandbox before it starts."""

    def setup(sandbox: Sandbox) -> None:
        from smtp_tutor.web.app import WebView

        host, port = address
        sandbox.companions.append(WebView(sandbox, host, port, teacher_token=teacher_token))

    return setup
