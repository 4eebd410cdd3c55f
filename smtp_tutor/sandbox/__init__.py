"""The embedded sandbox SMTP server: a local sink that stores mail and never relays it.

Modules, one job each:
    config    SandboxConfig and the demo account
    server    Sandbox (asyncio), ThreadedSandbox (own thread), serve_forever (`smtp-tutor serve`)
    protocol  the SMTP dialogue: aiosmtpd made consistent (enhanced codes, EHLO, HELP, 421s)
    handler   what to answer: accounts, address triggers, limits, storing the message
    triggers  the address-trigger list (data in smtp_tutor/data/sandbox_triggers.toml)
    replies   the enhanced status code policy
    certs     the cached self-signed certificate
    storage   the Maildir with an envelope JSON beside each message, and its reader
    activity  the events `serve` prints (connections, failed handshakes, stored mail), made safe
    pop3/     the POP3 server over the account mailboxes (docs/pop3-sandbox.md), on when
              `SandboxConfig.pop3_port` is set
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Importing aiosmtpd and cryptography costs a third of a second; `smtp-tutor --version`,
# `explain` and `serve --help` should not pay it. Names load on first use (PEP 562).
_WHERE = {
    "client_tls_context": "certs",
    "DEMO_PASSWORD": "config",
    "DEMO_USER": "config",
    "SandboxConfig": "config",
    "POP3_MIN_IDLE_TIMEOUT": "config",
    "SERVER_IDLE_TIMEOUT": "config",
    "STUDENT_IDLE_TIMEOUT": "config",
    "default_mailbox_dir": "config",
    "parse_accounts": "config",
    "Sandbox": "server",
    "ThreadedSandbox": "server",
    "serve_forever": "server",
    "Mailbox": "storage",
    "StoredMessage": "storage",
    "TRIGGERS_HELP": "triggers",
    "triggers_help": "triggers",
}

if TYPE_CHECKING:
    from smtp_tutor.sandbox.certs import client_tls_context
    from smtp_tutor.sandbox.config import (
        DEMO_PASSWORD,
        DEMO_USER,
        POP3_MIN_IDLE_TIMEOUT,
        SERVER_IDLE_TIMEOUT,
        STUDENT_IDLE_TIMEOUT,
        SandboxConfig,
        default_mailbox_dir,
        parse_accounts,
    )
    from smtp_tutor.sandbox.server import Sandbox, ThreadedSandbox, serve_forever
    from smtp_tutor.sandbox.storage import Mailbox, StoredMessage
    from smtp_tutor.sandbox.triggers import TRIGGERS_HELP, triggers_help


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEMO_PASSWORD",
    "DEMO_USER",
    "POP3_MIN_IDLE_TIMEOUT",
    "SERVER_IDLE_TIMEOUT",
    "STUDENT_IDLE_TIMEOUT",
    "TRIGGERS_HELP",
    "Mailbox",
    "Sandbox",
    "SandboxConfig",
    "StoredMessage",
    "ThreadedSandbox",
    "client_tls_context",
    "default_mailbox_dir",
    "parse_accounts",
    "serve_forever",
    "triggers_help",
]
