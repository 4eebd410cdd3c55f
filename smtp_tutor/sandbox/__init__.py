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
"""

from smtp_tutor.sandbox.certs import client_tls_context
from smtp_tutor.sandbox.config import (
    DEMO_PASSWORD,
    DEMO_USER,
    SandboxConfig,
    default_mailbox_dir,
    parse_accounts,
)
from smtp_tutor.sandbox.server import Sandbox, ThreadedSandbox, serve_forever
from smtp_tutor.sandbox.storage import Mailbox, StoredMessage
from smtp_tutor.sandbox.triggers import TRIGGERS_HELP, triggers_help

__all__ = [
    "DEMO_PASSWORD",
    "DEMO_USER",
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
