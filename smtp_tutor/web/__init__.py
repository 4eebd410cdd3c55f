"""The classroom's web view of the sandbox: live mailboxes, the dialogues, the teacher's dashboard.

A services-layer package: it may import `sandbox`, `diagram`, `core` and the support layer
(and aiohttp), never the console or the CLI. Modules, one job each:
    app        WebView: the aiohttp application on the sandbox's loop, routes, limits, headers
    access     who is asking: students (SMTP AUTH name and password), the teacher (a token)
    index      the messages in memory, and who may see each
    views      one message taken apart: headers, text and HTML parts, MIME tree, lint
    pages      the HTML, every value escaped; texts from data/web.toml
    classroom  the dashboard: a row per student, each lesson's steps
    static/    app.js and app.css, hand-written, served as they are
"""
