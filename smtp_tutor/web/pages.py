"""The web view's HTML: plain strings, every value escaped, no inline script or style.

The pages work without JavaScript (a reload shows new mail); /static/app.js only adds the
live list and the dashboard's refresh. What a message says is never put into these pages
unescaped: its HTML part is served on its own (app.py) into an `<iframe sandbox="">`.
The words come from data/web.toml in the reader's language.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

from smtp_tutor.core.catalogue import message
from smtp_tutor.web.access import Viewer

__all__ = ["page"]

RAW_SHOWN = 256 * 1024  # bytes of raw source put in the page


def _t(key: str, lang: str, /, **params: object) -> str:
    """A text of data/web.toml with its parameters filled in, escaped for HTML."""
    return html.escape(message("web", key, lang, **params))


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def page(
    lang: str,
    title: str,
    body: str,
    viewer: Viewer | None,
    *,
    kind: str = "plain",
    csrf: str = "",
) -> str:
    """The frame of every page: heading, navigation, who is signed in."""
    nav = ""
    if viewer is not None:
        links = [f'<a href="/?lang={lang}">{_t("nav_messages", lang)}</a>']
        links.append(f'<a href="/sessions?lang={lang}">{_t("nav_sessions", lang)}</a>')
        if viewer.teacher:
            links.append(f'<a href="/dashboard?lang={lang}">{_t("nav_dashboard", lang)}</a>')
        who = _t("teacher", lang) if viewer.teacher else _e(viewer.name)
        nav = (
            f'<nav>{" ".join(links)}<span class="who">{_t("signed_in_as", lang, name="")}'
            f"<b>{who}</b></span>"
            f'<form method="post" action="/logout" class="inline">'
            f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
            f'<button type="submit">{_t("sign_out", lang)}</button></form></nav>'
        )
    texts = {
        "live": message("web", "live", lang),
        "live_lost": message("web", "live_lost", lang),
        "no_subject": message("web", "no_subject", lang),
        "none": message("web", "none", lang),
    }
    return f"""<!DOCTYPE html>
<html lang="{"zh-CN" if lang == "zh" else "en"}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · {_t("title", lang)}</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head>
<body data-page="{_e(kind)}" data-lang="{_e(lang)}" data-texts="{_e(json.dumps(texts))}">
<header><a class="brand" href="/?lang={lang}">{_t("title", lang)}</a>{nav}</header>
<main>
{body}
</main>
</body>
</html>
"""


# Sign-in -------------------------------------------------------------------------------


def login(lang: str, failed: bool) -> str:
    problem = f'<p class="error" id="login-failed">{_t("login_failed", lang)}</p>' if failed else ""
    return f"""<h1>{_t("login_title", lang)}</h1>
<p>{_t("login_hint", lang)}</p>
{problem}
<form method="post" action="/login?lang={lang}" class="login">
<label>{_t("login_name", lang)}
 <input name="name" id="name" autocomplete="username" required></label>
<label>{_t("login_password", lang)} <input name="password" id="password" type="password"
 autocomplete="current-password" required></label>
<button type="submit" id="sign-in">{_t("login_submit", lang)}</button>
</form>"""


# The message list ------------------------------------------------------------------------


def _addresses(items: Iterable[Any]) -> str:
    return ", ".join(f"<{item}>" for item in items)


def message_row(summary: Mapping[str, Any], lang: str) -> str:
    env = summary["envelope"]
    defects = summary.get("defects") or []
    subject = summary.get("subject") or message("web", "no_subject", lang)
    return (
        f'<tr data-id="{_e(summary["id"])}">'
        f'<td class="time">{_e((summary.get("time") or "")[11:19])}</td>'
        f"<td>{_e(_addresses([env.get('mail_from') or '']))}</td>"
        f"<td>{_e(_addresses(env.get('rcpt_tos') or []))}</td>"
        f'<td><a href="/messages/{_e(summary["id"])}?lang={lang}">{_e(subject)}</a></td>'
        f"<td>{_e(env.get('auth_user') or '-')}</td>"
        f'<td class="num">{_e(summary.get("size"))}</td>'
        f'<td class="defects">{_e(len(defects) or "")}</td></tr>'
    )


def message_list(summaries: list[Mapping[str, Any]], lang: str, viewer: Viewer) -> str:
    intro = _t("list_intro_teacher" if viewer.teacher else "list_intro_student", lang)
    rows = "\n".join(message_row(s, lang) for s in summaries)
    empty = "" if summaries else f'<p id="empty">{_t("no_messages", lang)}</p>'
    heads = ("col_time", "col_from", "col_to", "col_subject", "col_user", "col_size", "col_defects")
    return f"""<h1>{_t("list_title", lang)} <span id="live" class="live"></span></h1>
<p>{intro}</p>
{empty}
<table id="messages" class="list">
<thead><tr>{"".join(f"<th>{_t(h, lang)}</th>" for h in heads)}</tr></thead>
<tbody>
{rows}
</tbody>
</table>"""


# One message -------------------------------------------------------------------------------


def _envelope(summary: Mapping[str, Any], lang: str) -> str:
    env = summary["envelope"]
    tls = env.get("tls")
    tls_text = (
        " ".join(str(tls.get(k) or "") for k in ("mode", "version", "cipher")).strip()
        if isinstance(tls, dict)
        else message("web", "tls_none", lang)
    )
    client = env.get("client") or {}
    accounts = summary.get("accounts") or []
    rows = [
        ("MAIL FROM", _addresses([env.get("mail_from") or ""])),
        ("RCPT TO", _addresses(env.get("rcpt_tos") or [])),
        (
            message("web", "auth_user", lang),
            env.get("auth_user") or message("web", "not_authenticated", lang),
        ),
        (message("web", "tls", lang), tls_text),
        (message("web", "client", lang), f"{client.get('address')}:{client.get('port')}"),
        (message("web", "helo", lang), env.get("helo") or ""),
        (message("web", "received", lang), summary.get("time") or ""),
        (
            message("web", "filed_to", lang),
            ", ".join(accounts) or message("web", "shared_mailbox", lang),
        ),
    ]
    cells = "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="envelope" id="envelope">{cells}</table>'


def _tree(node: Mapping[str, Any]) -> str:
    details = [node.get("type") or "?"]
    if node.get("charset"):
        details.append(f"charset={node['charset']}")
    if node.get("encoding"):
        details.append(str(node["encoding"]))
    if node.get("filename"):
        details.append(f"“{node['filename']}”")
    if node.get("size") is not None:
        details.append(f"{node['size']} B")
    children = "".join(_tree(child) for child in node.get("parts") or [])
    inner = f"<ul>{children}</ul>" if children else ""
    return f"<li><code>{_e(' · '.join(details))}</code>{inner}</li>"


def message_page(
    summary: Mapping[str, Any],
    headers: list[tuple[str, str]],
    text: str | None,
    has_html: bool,
    tree: Mapping[str, Any],
    raw: bytes,
    findings: list[Mapping[str, Any]],
    dialogue: str,
    lang: str,
) -> str:
    key = _e(summary["id"])
    header_rows = "\n".join(
        f"<tr><th>{_e(name)}</th><td>{_e(value)}</td></tr>" for name, value in headers
    )
    lint_items = (
        "\n".join(f'<li class="{_e(f["severity"])}">{_e(f["text"])}</li>' for f in findings)
        or f'<li class="ok">{_t("lint_none", lang)}</li>'
    )
    text_block = (
        f'<pre id="text-part">{_e(text)}</pre>'
        if text is not None
        else (f'<p class="dim">{_t("no_text", lang)}</p>')
    )
    html_block = (
        f'<p class="dim">{_t("html_note", lang)}</p>'
        f'<iframe id="html-part" sandbox="" referrerpolicy="no-referrer" '
        f'src="/messages/{key}/html" title="{_t("html_part", lang)}"></iframe>'
        if has_html
        else f'<p class="dim">{_t("no_html", lang)}</p>'
    )
    shown = raw[:RAW_SHOWN].decode("utf-8", "replace")
    cut = (
        f'<p class="dim">{_t("raw_truncated", lang, size=RAW_SHOWN)}</p>'
        if len(raw) > RAW_SHOWN
        else ""
    )
    subject = summary.get("subject") or message("web", "no_subject", lang)
    return f"""<h1 id="subject">{_e(subject)}</h1>
<section><h2>{_t("envelope", lang)}</h2>{_envelope(summary, lang)}</section>
<section><h2>{_t("lint", lang)}</h2><ul class="lint" id="lint">{lint_items}</ul></section>
<section><h2>{_t("dialogue", lang)}</h2>{dialogue}</section>
<section><h2>{_t("headers", lang)}</h2><table class="headers">{header_rows}</table></section>
<section><h2>{_t("text_part", lang)}</h2>{text_block}</section>
<section><h2>{_t("html_part", lang)}</h2>{html_block}</section>
<section><h2>{_t("mime_tree", lang)}</h2>
<ul class="tree" id="mime-tree">{_tree(tree)}</ul></section>
<section><h2>{_t("raw_source", lang)}</h2>
<p><a href="/api/messages/{key}/raw" download="{key}.eml">{_t("raw_download", lang)}</a></p>
{cut}<pre id="raw">{_e(shown)}</pre></section>"""


def dialogue(session_id: str, svg: str | None, lang: str) -> str:
    """The diagram (our own SVG: every text in it escaped by diagram/) and the download."""
    link = (
        f'<p><a id="transcript-link" href="/api/sessions/{_e(session_id)}/transcript" '
        f'download="session-{_e(session_id)}.smtp">{_t("download_transcript", lang)}</a>'
        f' · <a href="/sessions/{_e(session_id)}?lang={lang}">{_t("transcript", lang)}</a></p>'
    )
    figure = (
        f'<figure class="diagram" id="diagram">{svg}</figure>'
        if svg is not None
        else f'<p class="dim">{_t("dialogue_broken", lang)}</p>'
    )
    return link + figure


def note(key: str, lang: str) -> str:
    return f'<p class="dim" id="dialogue-note">{_t(key, lang)}</p>'


# Sessions --------------------------------------------------------------------------------


def session_row(summary: Mapping[str, Any], lang: str) -> str:
    state = _t("open_now" if summary.get("open") else "closed", lang)
    client = summary.get("client") or {}
    return (
        f'<tr data-id="{_e(summary["id"])}">'
        f'<td><a href="/sessions/{_e(summary["id"])}?lang={lang}">{_e(summary["id"])}</a></td>'
        f"<td>{_e((summary.get('started') or '')[11:19])}</td>"
        f"<td>{_e(client.get('address'))}:{_e(client.get('port'))}</td>"
        f"<td>{_e(summary.get('auth_user') or '-')}</td>"
        f"<td>{state}</td>"
        f'<td class="num">{_e(summary.get("commands"))}</td>'
        f'<td class="num">{_e(len(summary.get("messages") or []))}</td>'
        f"<td><code>{_e(summary.get('last_error') or '')}</code></td></tr>"
    )


def session_list(summaries: list[Mapping[str, Any]], lang: str) -> str:
    heads = (
        "col_session",
        "col_started",
        "client",
        "col_user",
        "col_state",
        "col_commands",
        "col_messages",
        "col_last_error",
    )
    rows = "\n".join(session_row(s, lang) for s in summaries)
    empty = "" if summaries else f"<p>{_t('no_sessions', lang)}</p>"
    return f"""<h1>{_t("sessions_title", lang)}</h1>
<p>{_t("sessions_intro", lang)}</p>
{empty}
<table id="sessions" class="list">
<thead><tr>{"".join(f"<th>{_t(h, lang)}</th>" for h in heads)}</tr></thead>
<tbody>
{rows}
</tbody>
</table>"""


def session_page(summary: Mapping[str, Any], svg: str | None, text: str, lang: str) -> str:
    return f"""<h1>{_t("session_title", lang, id=summary["id"])}</h1>
<table class="list"><tbody>{session_row(summary, lang)}</tbody></table>
{dialogue(str(summary["id"]), svg, lang)}
<h2>{_t("transcript", lang)}</h2>
<pre id="transcript">{_e(text)}</pre>"""


def error(status: int, key: str, lang: str) -> str:
    return f'<h1>{status}</h1><p class="error">{_t(key, lang)}</p>'
