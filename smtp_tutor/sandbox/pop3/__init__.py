"""The sandbox's POP3 server: the mail the SMTP side stored, fetched over POP3 on asyncio.

No Python library serves POP3 over asyncio well, so this one is ours, kept small on top of
the sans-I/O core (`smtp_tutor.core.pop3`: which commands each state accepts, the command
line parser, APOP digests). What it implements, and where it differs from Dovecot, is in
docs/pop3-sandbox.md.

Modules, one job each:
    maildrop  one session's view of an account's Maildir: numbers fixed at login, sizes,
              UIDL values, the wire form of a message, DELE marks, the lock, the UPDATE
    session   one connection: the three states, every command, STLS, AUTH, the limits
    server    Pop3Server: bind, count connections, hand out locks, stop

It may import the core, the support layer and the rest of the sandbox (storage, activity);
never the client, the console or the CLI.
"""

from smtp_tutor.sandbox.pop3.server import Pop3Limits, Pop3Server

__all__ = ["Pop3Limits", "Pop3Server"]
