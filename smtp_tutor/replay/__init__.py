"""`smtp-tutor replay`: a transcript's C: lines sent again, every S: expectation checked.

What lives here: `runner` (the plan, the groups, the checks, the report) and `link` (a
blocking socket in a worker thread: replay needs no concurrency). What it may import:
`smtp_tutor.core` and `smtp_tutor.client` — never the console or the CLI.
"""
