"""A transcript drawn as a sequence diagram (SVG or HTML): `smtp-tutor diagram`, `:diagram`.

What lives here: `sequence` (the arrows of a dialogue, then SVG/HTML). What it may import:
`smtp_tutor.core` — it reads transcripts and never opens a connection.
"""
