"""One example sender throughout: what the checker warns, what an explanation says, what the
header template fills in. A student told `MAIL FROM:<you@example.com>` by one line and
`<you@example.org>` by the next has to wonder which one is right."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from smtp_tutor.core.message_lint import PLACEHOLDER_FROM

pytestmark = pytest.mark.pure  # no socket, no process: `pytest -m pure`

SENDER = re.compile(r"MAIL FROM: ?<([^<>]*@[^<>]*)>")


def test_every_example_sender_in_the_data_files_is_the_same() -> None:
    data = resources.files("smtp_tutor.data")
    found: dict[str, set[str]] = {}
    for item in data.iterdir():
        if item.name.endswith(".toml"):
            for address in SENDER.findall(item.read_text("utf-8")):
                if not address.endswith("@…"):  # a sandbox trigger (spam@…), not an example
                    found.setdefault(address, set()).add(item.name)
    assert set(found) == {PLACEHOLDER_FROM}, found
    assert {"checker.toml", "replies.toml", "enhanced.toml", "hints.toml"} <= found[
        PLACEHOLDER_FROM
    ]


def test_the_example_is_one_nobody_owns() -> None:
    assert PLACEHOLDER_FROM == "you@example.com"  # RFC 2606: example.com is reserved
