"""The sans-I/O POP3 core, beside the SMTP one: bytes and lines in, meanings out, no sockets.

Where each rule lives:

* `responses` — server bytes → `Response` objects (+OK / -ERR / "+ ", multiline bodies
  with byte-stuffing undone, RFC 2449 extended codes); never raises on what a server sends.
* `commands` — a typed line → keyword and argument; the one wire encoder, refusing CR/LF.
* `dialogue` — the states AUTHORIZATION, TRANSACTION, UPDATE as tables, and `Dialogue`,
  which pairs each response with the line it answers.
* `checker` — warnings before a line goes out, read from the same tables.
* `auth` — APOP digests and SASL AUTH on top of the SMTP `AuthExchange`.
* `redaction` — which lines carry secrets and how they look masked.
* `knowledge` — what everything means, in English and Chinese (`data/pop3*.toml`).
"""

from smtp_tutor.core.pop3.dialogue import Dialogue, Outcome, Sent, State
from smtp_tutor.core.pop3.responses import Expect, Response, ResponseParser, Status

__all__ = ["Dialogue", "Expect", "Outcome", "Response", "ResponseParser", "Sent", "State", "Status"]
