"""The client side of a real connection: sockets, TLS, a live session, MX lookup.

What lives here: `connection` (asyncio streams, STARTTLS in place, every byte observable),
`tls` (contexts, the handshake report, chain verification), `session` (a connection driven
by the core's `Dialogue`, for the console), `mx` (finding a domain's mail servers). What it
may import: `smtp_tutor.core` and `smtp_tutor.paths` — never the console, replay, the
sandbox or the CLI, which all build on it.
"""
