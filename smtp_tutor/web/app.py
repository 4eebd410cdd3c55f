"""The web view: an aiohttp application on the sandbox's own event loop.

`WebView` is a companion of a `Sandbox` (sandbox/server.py): it starts once the SMTP port
is bound, in the same loop, and reads what the sandbox keeps - the recorded sessions
(sandbox/sessions.py), the shared Maildir and each account's (sandbox/accounts.py). No
thread, no second process, no lock: the session log is only touched in that loop.

Safety, for every request: bodies of at most `MAX_BODY` bytes, a per-address token
bucket (429 past it), a clean 4xx for anything unknown, malformed or not allowed (JSON
under /api/, a short page elsewhere) and never a traceback; every response carries a
Content-Security-Policy without inline script, `X-Content-Type-Options: nosniff`,
`Referrer-Policy: no-referrer` and `Cache-Control: no-store`. The access log is off:
the teacher's URL holds a token. docs/api.md describes the JSON API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from smtp_tutor.core.catalogue import message
from smtp_tutor.core.knowledge import normalise_language
from smtp_tutor.core.transcript import TranscriptError, parse_transcript
from smtp_tutor.diagram.sequence import render_svg
from smtp_tutor.sandbox.sessions import SessionRecord
from smtp_tutor.web import pages, views
from smtp_tutor.web.access import COOKIE, COOKIE_LIFETIME, Access, Viewer
from smtp_tutor.web.address import is_loopback, parse_address
from smtp_tutor.web.classroom import Classroom
from smtp_tutor.web.index import MessageIndex

if TYPE_CHECKING:
    from smtp_tutor.sandbox.server import Sandbox

__all__ = ["WebBindError", "WebView", "is_loopback", "parse_address"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8025
MAX_BODY = 64 * 1024  # bytes of a request body
RATE = 200.0  # requests per second per client address, sustained
BURST = 600.0  # and in a burst (a class behind one NAT address shares it)
MAX_STREAMS = 2000  # live-update subscribers at once
STREAM_QUEUE = 2048  # events waiting for one slow subscriber before it is told to resync
STUCK = 60.0  # seconds a subscriber may read nothing, with a resync pending, before it is let go
PING = 15.0  # seconds between keep-alive comments on the stream
#: Seconds a new message's event waits, so that the events of that time go to each subscriber
#: as one write of bytes joined once for all the teacher's streams.
FLUSH = 0.05
#: Seconds a session's changes (opened, auth, error, closed) are gathered: they go out as one
#: `session` event with its latest summary (the dashboard refreshes at most every 250 ms
#: anyway). A stored message is told by its own `message` event, which names its session.
SESSION_FLUSH = 0.2
LIST_LIMIT = 5000  # messages listed at most by one request
STATIC = {"app.js": "application/javascript", "app.css": "text/css"}

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
#: The message's own HTML: no script at all, nothing fetched, and a sandbox on top.
MESSAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox"
)


class WebBindError(OSError):
    """The web view's port could not be bound: says which address, unlike the SMTP port's."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        super().__init__(error.errno, error.strerror or str(error))
        self.address = f"{host}:{port}"


class _Buckets:
    """A token bucket per client address."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, who: str) -> bool:
        now = time.monotonic()
        tokens, then = self._buckets.get(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[who] = (tokens, now)
            return False
        self._buckets[who] = (tokens - 1, now)
        if len(self._buckets) > 10_000:  # forget the quiet ones
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
        return True


#: Sent instead of the events a subscriber had no room for: the page fetches its list again.
RESYNC = b"event: resync\ndata: {}\n\n"


class _Subscriber:
    """One live stream: the events waiting to be written, as bytes shared with the others.

    Offering is an append of bytes made once for every subscriber (`count` events joined);
    the stream's task writes whatever is waiting in one piece. Nothing is dropped silently:
    when more than `STREAM_QUEUE` events would wait, they are replaced by one `resync`
    event, and the events after it follow as usual.
    """

    __slots__ = (
        "closed",
        "count",
        "last_write",
        "resyncs",
        "transport",
        "viewer",
        "waiting",
        "wake",
    )

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer
        self.waiting: list[bytes] = []
        self.count = 0  # events waiting
        self.wake = asyncio.Event()
        self.closed = False
        self.resyncs = 0
        self.last_write = time.monotonic()
        self.transport: asyncio.BaseTransport | None = None  # to cut a stuck one off

    def offer(self, data: bytes, count: int = 1) -> None:
        waiting = self.waiting
        if waiting and self.count + count > STREAM_QUEUE:
            if waiting[0] is RESYNC and time.monotonic() - self.last_write > STUCK:
                self.close()  # reads nothing at all: let it go (it reconnects if alive)
                if self.transport is not None:  # its task waits in a write that never ends
                    self.transport.abort()
                return
            self.waiting = waiting = [RESYNC]
            self.count = 1
            self.resyncs += 1
        waiting.append(data)
        self.count += count
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()

    def take(self) -> bytes:
        waiting, self.waiting = self.waiting, []
        self.count = 0
        self.wake.clear()
        return b"".join(waiting)


class _Problem(Exception):
    """An error answer: status and the key of its words in web.toml."""

    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status, self.key = status, key


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebView:
    """The classroom web view of one sandbox (a `Companion`: start, stop, summary)."""

    def __init__(
        self,
        sandbox: Sandbox,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        teacher_token: str | None = None,
        rate: float = RATE,
        burst: float = BURST,
    ) -> None:
        if sandbox.sessions is None:
            raise ValueError("the web view needs a sandbox that records sessions")
        self.sandbox = sandbox
        self.sessions = sandbox.sessions
        self.host, self.port = host, port
        self.teacher_token = teacher_token or secrets.token_urlsafe(18)
        self.access = Access(lambda: sandbox.config.users, self.teacher_token)
        self.index = MessageIndex(sandbox.accounts.shared)
        self.classroom = Classroom(self.sessions, self.index, lambda: sandbox.config.users)
        self._buckets = _Buckets(rate, burst)
        self._teachers: set[_Subscriber] = set()  # the teacher's streams: see everything
        self._students: dict[str, set[_Subscriber]] = {}  # a student's streams, by name
        self.resyncs = 0  # resync events sent (of subscribers gone)
        #: Message events not yet offered: the bytes and the accounts that may see them.
        self._messages: list[tuple[bytes, tuple[str, ...]]] = []
        #: Sessions changed since their last event: the record and what happened, in order.
        self._changed: dict[str, tuple[SessionRecord, list[str]]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._runner: web.AppRunner | None = None
        self._static = {
            name: resources.files("smtp_tutor.web").joinpath("static", name).read_bytes()
            for name in STATIC
        }

    # Life -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def teacher_url(self) -> str:
        return f"{self.url}teacher?token={self.teacher_token}"

    async def start(self) -> None:
        self.index.load()
        self.sessions.listeners.append(self._on_session_event)
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        app.on_response_prepare.append(self._headers)
        self._routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=512)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise WebBindError(self.host, self.port, error) from error
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]
        # Bound to every address: each client is told the one it reached the sandbox on.
        wildcard = self.host in ("0.0.0.0", "::", "")
        advertised = f"http://{{local}}:{self.port}/" if wildcard else self.url
        self.sandbox.ehlo_keywords.append(f"XSMTPTUTOR-WEB {advertised}")

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        with contextlib.suppress(ValueError):
            self.sessions.listeners.remove(self._on_session_event)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._flush_messages()
        self._flush_sessions()
        for subscriber in self._all():
            subscriber.close()
        if runner is not None:
            await runner.cleanup()

    def summary(self) -> list[str]:
        lines = [
            f"Web view: {self.url} (students sign in with their SMTP AUTH name and password)",
            f"Teacher's view: {self.teacher_url}",
        ]
        if not is_loopback(self.host):
            lines.append(
                f"Warning: the web view listens on {self.host}, not only on this machine: "
                "anyone who can reach it may try to sign in."
            )
        return lines

    # Live updates -----------------------------------------------------------------------

    def _all(self) -> list[_Subscriber]:
        found = list(self._teachers)
        for streams in self._students.values():
            found.extend(streams)
        return found

    @property
    def subscribers(self) -> int:
        return len(self._teachers) + sum(len(s) for s in self._students.values())

    def _subscribe(self, subscriber: _Subscriber) -> None:
        viewer = subscriber.viewer
        if viewer.teacher:
            self._teachers.add(subscriber)
        elif viewer.name is not None:
            self._students.setdefault(viewer.name, set()).add(subscriber)

    def _unsubscribe(self, subscriber: _Subscriber) -> None:
        self.resyncs += subscriber.resyncs
        self._teachers.discard(subscriber)
        name = subscriber.viewer.name
        streams = self._students.get(name) if name is not None else None
        if streams is not None:
            streams.discard(subscriber)
            if not streams:
                del self._students[name]  # type: ignore[arg-type]

    def _send(self, data: bytes, students: Iterable[str | None]) -> None:
        """To every teacher stream and to the streams of `students`."""
        for subscriber in self._teachers:
            subscriber.offer(data)
        for name in students:
            for subscriber in self._students.get(name, ()) if name is not None else ():
                subscriber.offer(data)

    def _fan_out(self, pending: list[tuple[bytes, tuple[str | None, ...]]]) -> None:
        """Events to their subscribers: joined once for all the teacher's streams, once per
        student for theirs, and offered as one piece to each stream."""
        if self._teachers:
            batch = b"".join(data for data, _ in pending)
            for subscriber in self._teachers:
                subscriber.offer(batch, len(pending))
        students = self._students
        if not students:
            return
        theirs: dict[str, list[bytes]] = {}
        for data, names in pending:
            for name in names:
                if name is not None and name in students:
                    theirs.setdefault(name, []).append(data)
        for name, events in theirs.items():
            batch = b"".join(events)
            for subscriber in students[name]:
                subscriber.offer(batch, len(events))

    def _soon(self, which: str, delay: float, flush: Callable[[], None]) -> None:
        if which in self._timers:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # told outside the loop (never by the sandbox): at once
            flush()
            return
        self._timers[which] = loop.call_later(delay, flush)

    def _flush_messages(self) -> None:
        timer = self._timers.pop("messages", None)
        if timer is not None:
            timer.cancel()
        pending, self._messages = self._messages, []
        if pending:
            self._fan_out(pending)

    def _flush_sessions(self) -> None:
        timer = self._timers.pop("sessions", None)
        if timer is not None:
            timer.cancel()
        changed, self._changed = self._changed, {}
        if not changed:
            return
        self._fan_out(
            [
                (
                    _event("session", {"event": events[-1], "events": events, **record.summary()}),
                    (record.auth_user,),
                )
                for record, events in changed.values()
            ]
        )

    def _on_session_event(
        self, event: str, record: SessionRecord, fields: Mapping[str, Any]
    ) -> None:
        if event == "stored":
            entry = self.index.add(fields["key"], fields["envelope"], fields.get("raw"))
            if self._teachers or self._students:
                self._messages.append((entry.event(self.index.mailbox), tuple(entry.accounts)))
                self._soon("messages", FLUSH, self._flush_messages)
        self.classroom.seen(event, record)
        if event == "stored":  # told by the message's event, which names its session
            return
        if not self._teachers and record.auth_user not in self._students:
            return
        changed = self._changed.get(record.id)
        if changed is None:
            self._changed[record.id] = (record, [event])
        else:
            changed[1].append(event)
        self._soon("sessions", SESSION_FLUSH, self._flush_sessions)

    def tell(self, event: str, payload: Mapping[str, Any], teacher_only: bool = True) -> None:
        self._flush_messages()  # what happened before goes first
        data = _event(event, payload)
        self._send(data, () if teacher_only else list(self._students))

    # Plumbing ---------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        lang = _language(request)
        if not self._buckets.allow(request.remote or "?"):
            return self._error(request, 429, "error_too_many", lang)
        try:
            return await handler(request)
        except _Problem as problem:
            return self._error(request, problem.status, problem.key, lang)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            key = {404: "error_not_found", 401: "error_sign_in", 403: "error_forbidden"}
            return self._error(
                request, error.status, key.get(error.status, "error_bad_request"), lang
            )
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("web view error on %s", request.path)
            return self._error(request, 500, "error_bad_request", lang)

    def _error(self, request: web.Request, status: int, key: str, lang: str) -> web.Response:
        headers = {}
        if status == 401 and request.path.startswith("/api/"):
            headers["WWW-Authenticate"] = 'Basic realm="smtp-tutor", charset="UTF-8"'
        if request.path.startswith("/api/"):
            body = {"error": key.removeprefix("error_"), "message": message("web", key, lang)}
            return web.json_response(body, status=status, headers=headers)
        if status == 401:
            raise web.HTTPSeeOther(f"/login?lang={lang}")
        html = pages.page(lang, str(status), pages.error(status, key, lang), None)
        return web.Response(text=html, status=status, content_type="text/html", headers=headers)

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", PAGE_CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers.setdefault("Cache-Control", "no-store")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")

    def _viewer(self, request: web.Request) -> Viewer | None:
        viewer = self.access.from_cookie(request.cookies.get(COOKIE))
        if viewer is None:
            viewer = self.access.from_header(request.headers.get("Authorization"))
        return viewer

    def _require(self, request: web.Request, teacher: bool = False) -> Viewer:
        viewer = self._viewer(request)
        if viewer is None:
            raise _Problem(401, "error_sign_in")
        if teacher and not viewer.teacher:
            raise _Problem(403, "error_forbidden")
        return viewer

    def _same_origin(self, request: web.Request) -> None:
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
            raise _Problem(403, "error_csrf")

    def _routes(self, app: web.Application) -> None:
        add = app.router.add_route
        add("GET", "/", self.list_page)
        add("GET", "/login", self.login_page)
        add("POST", "/login", self.login)
        add("POST", "/logout", self.logout)
        add("GET", "/teacher", self.teacher)
        add("GET", "/messages/{id}", self.message_page)
        add("GET", "/messages/{id}/html", self.message_html)
        add("GET", "/sessions", self.sessions_page)
        add("GET", "/sessions/{id}", self.session_page)
        add("GET", "/dashboard", self.dashboard_page)
        add("GET", "/static/{name}", self.static)
        add("GET", "/api/whoami", self.api_whoami)
        add("GET", "/api/messages", self.api_messages)
        add("GET", "/api/messages/{id}", self.api_message)
        add("GET", "/api/messages/{id}/raw", self.api_raw)
        add("GET", "/api/sessions", self.api_sessions)
        add("GET", "/api/sessions/{id}", self.api_session)
        add("GET", "/api/sessions/{id}/transcript", self.api_transcript)
        add("GET", "/api/stream", self.api_stream)
        add("POST", "/api/mailbox/clear", self.api_clear)
        add("POST", "/mailbox/clear", self.form_clear)
        add("GET", "/api/dashboard", self.api_dashboard)
        add("POST", "/api/lessons/progress", self.api_progress)

    # Sign-in ----------------------------------------------------------------------------

    async def login_page(self, request: web.Request) -> web.Response:
        lang = _language(request)
        return _html(
            pages.page(lang, message("web", "login_title", lang), pages.login(lang, False), None)
        )

    async def login(self, request: web.Request) -> web.Response:
        self._same_origin(request)
        lang = _language(request)
        form = await request.post()
        name, password = form.get("name"), form.get("password")
        viewer = (
            self.access.student(name, password)
            if isinstance(name, str) and isinstance(password, str)
            else None
        )
        if viewer is None:
            html = pages.page(
                lang, message("web", "login_title", lang), pages.login(lang, True), None
            )
            return _html(html, status=401)
        return self._signed_in(viewer, f"/?lang={lang}")

    def _signed_in(self, viewer: Viewer, where: str) -> web.Response:
        response = web.Response(status=303, headers={"Location": where})
        response.set_cookie(
            COOKIE,
            self.access.sign_in(viewer),
            httponly=True,
            samesite="Strict",
            path="/",
            max_age=COOKIE_LIFETIME,
        )
        return response

    async def teacher(self, request: web.Request) -> web.Response:
        viewer = self.access.teacher(request.query.get("token", ""))
        if viewer is None:
            raise _Problem(403, "error_forbidden")
        return self._signed_in(viewer, f"/?lang={_language(request)}")

    async def logout(self, request: web.Request) -> web.Response:
        self._same_origin(request)
        form = await request.post()
        cookie = request.cookies.get(COOKIE)
        viewer = self.access.from_cookie(cookie)
        if viewer is not None and self.access.csrf_ok(viewer, _text(form.get("csrf"))):
            self.access.sign_out(cookie)
        response = web.Response(
            status=303, headers={"Location": f"/login?lang={_language(request)}"}
        )
        response.del_cookie(COOKIE, path="/")
        return response

    # Pages ------------------------------------------------------------------------------

    def _page(
        self, request: web.Request, viewer: Viewer, title: str, body: str, kind: str
    ) -> web.Response:
        lang = _language(request)
        return _html(pages.page(lang, title, body, viewer, kind=kind, csrf=viewer.csrf))

    async def list_page(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        lang = _language(request)
        summaries = [e.summary(self.index.mailbox) for e in self.index.visible(viewer, 500)]
        body = pages.message_list(summaries, lang, viewer)
        return self._page(request, viewer, message("web", "list_title", lang), body, "list")

    async def _stored(self, request: web.Request, viewer: Viewer) -> Any:
        entry = self.index.get(request.match_info["id"], viewer)
        if entry is None:
            raise _Problem(404, "error_not_found")
        try:
            stored = await asyncio.to_thread(self.index.mailbox.get, entry.key)
        except (KeyError, OSError) as error:
            raise _Problem(404, "error_not_found") from error
        return entry, stored

    async def message_page(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        lang = _language(request)
        entry, stored = await self._stored(request, viewer)
        summary = entry.summary(self.index.mailbox)

        def parts() -> tuple[Any, ...]:
            return (
                views.headers(stored),
                views.text_part(stored),
                views.html_part(stored) is not None,
                views.mime_tree(stored),
                views.lint(stored, lang),
            )

        headers, text, has_html, tree, findings = await asyncio.to_thread(parts)
        dialogue = self._dialogue(summary.get("session"), viewer, lang)
        body = pages.message_page(
            summary, headers, text, has_html, tree, stored.raw, findings, dialogue, lang
        )
        title = summary.get("subject") or message("web", "no_subject", lang)
        return self._page(request, viewer, title, body, "message")

    def _visible_session(self, session_id: object, viewer: Viewer) -> SessionRecord | None:
        record = self.sessions.get(session_id) if isinstance(session_id, str) else None
        if record is None:
            return None
        if viewer.teacher or (viewer.name is not None and record.auth_user == viewer.name):
            return record
        return None

    def _dialogue(self, session_id: object, viewer: Viewer, lang: str) -> str:
        if not isinstance(session_id, str) or self.sessions.get(session_id) is None:
            return pages.note("dialogue_none", lang)
        record = self._visible_session(session_id, viewer)
        if record is None:
            return pages.note("dialogue_hidden", lang)
        return pages.dialogue(record.id, self._svg(record), lang)

    def _svg(self, record: SessionRecord) -> str | None:
        text = self.sessions.transcript(record)
        try:
            script = parse_transcript(text, source=f"session {record.id}")
            return render_svg(script, title=f"session {record.id}")
        except (TranscriptError, ValueError):
            return None

    async def message_html(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        _entry, stored = await self._stored(request, viewer)
        part = await asyncio.to_thread(views.html_part, stored)
        if part is None:
            raise _Problem(404, "error_not_found")
        return web.Response(
            text=part,
            content_type="text/html",
            headers={"Content-Security-Policy": MESSAGE_CSP, "X-Frame-Options": "SAMEORIGIN"},
        )

    async def sessions_page(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        lang = _language(request)
        records = self._sessions_of(viewer)[:500]
        body = pages.session_list([r.summary() for r in records], lang)
        return self._page(request, viewer, message("web", "sessions_title", lang), body, "sessions")

    def _sessions_of(self, viewer: Viewer) -> list[SessionRecord]:
        records = (
            self.sessions.sessions()
            if viewer.teacher
            else list(self.sessions.of_user(viewer.name or ""))
        )
        return records[::-1]

    async def session_page(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        lang = _language(request)
        record = self._visible_session(request.match_info["id"], viewer)
        if record is None:
            raise _Problem(404, "error_not_found")
        body = pages.session_page(
            record.summary(), self._svg(record), self.sessions.transcript(record), lang
        )
        return self._page(
            request, viewer, message("web", "session_title", lang, id=record.id), body, "session"
        )

    async def dashboard_page(self, request: web.Request) -> web.Response:
        viewer = self._require(request, teacher=True)
        lang = _language(request)
        body = self.classroom.page(lang, viewer.csrf)
        return self._page(
            request, viewer, message("web", "dashboard_title", lang), body, "dashboard"
        )

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise _Problem(404, "error_not_found")
        return web.Response(
            body=self._static[name],
            content_type=STATIC[name],
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    # API --------------------------------------------------------------------------------

    async def api_whoami(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        return web.json_response({"teacher": viewer.teacher, "name": viewer.name})

    async def api_messages(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        limit = _limit(request.query.get("limit"))
        entries = self.index.visible(viewer, limit)
        total = len(self.index) if viewer.teacher else self.index.count_for(viewer.name or "")
        mailbox = self.index.mailbox
        listed = ",".join(e.json(mailbox) for e in entries)  # each encoded once, when stored
        return web.Response(
            text=f'{{"total": {total}, "messages": [{listed}]}}', content_type="application/json"
        )

    async def api_message(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        lang = _language(request)
        entry, stored = await self._stored(request, viewer)

        def detail() -> dict[str, Any]:
            return {
                **entry.summary(self.index.mailbox),
                "headers": [[name, value] for name, value in views.headers(stored)],
                "text": views.text_part(stored),
                "html": views.html_part(stored),
                "mime": views.mime_tree(stored),
                "lint": views.lint(stored, lang),
            }

        return _json(await asyncio.to_thread(detail))

    async def api_raw(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        entry, stored = await self._stored(request, viewer)
        return web.Response(
            body=stored.raw,
            content_type="message/rfc822",
            headers={"Content-Disposition": f'attachment; filename="{_filename(entry.key)}.eml"'},
        )

    async def api_sessions(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        limit = _limit(request.query.get("limit"))
        return _json({"sessions": [r.summary() for r in self._sessions_of(viewer)[:limit]]})

    async def api_session(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        record = self._visible_session(request.match_info["id"], viewer)
        if record is None:
            raise _Problem(404, "error_not_found")
        return _json({**record.summary(), "transcript": self.sessions.transcript(record)})

    async def api_transcript(self, request: web.Request) -> web.Response:
        viewer = self._require(request)
        record = self._visible_session(request.match_info["id"], viewer)
        if record is None:
            raise _Problem(404, "error_not_found")
        return web.Response(
            text=self.sessions.transcript(record),
            content_type="text/plain",
            headers={
                "Content-Disposition": f'attachment; filename="session-{_filename(record.id)}.smtp"'
            },
        )

    async def api_stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: `message` for each new message the viewer may see, `session`."""
        viewer = self._require(request)
        if self.subscribers >= MAX_STREAMS:
            raise _Problem(429, "error_too_many")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        subscriber = _Subscriber(viewer)
        subscriber.transport = request.transport
        self._subscribe(subscriber)
        try:
            await response.write(b"retry: 2000\n: ready\n\n")
            while not subscriber.closed:
                if not subscriber.waiting:
                    try:
                        async with asyncio.timeout(PING):
                            await subscriber.wake.wait()
                    except TimeoutError:
                        await response.write(b": ping\n\n")
                        continue
                data = subscriber.take()
                if data:
                    await response.write(data)
                    subscriber.last_write = time.monotonic()
        except (ConnectionError, RuntimeError):  # the subscriber went away
            pass
        finally:
            self._unsubscribe(subscriber)
        return response

    async def _clear(self, account: str | None) -> int:
        accounts = self.sandbox.accounts
        if account is not None and account not in accounts.names:
            raise _Problem(404, "error_not_found")

        def work() -> list[str]:
            removed: list[str] = []
            if account is not None:
                box = accounts.of(account)
                for key in box.keys():  # noqa: SIM118 (a Maildir, not a dict)
                    with contextlib.suppress(KeyError, OSError):
                        box.remove(key)
                        removed.append(key)
                return removed
            for key in accounts.shared.keys():  # noqa: SIM118
                with contextlib.suppress(KeyError, OSError):
                    accounts.shared.remove(key)
                    removed.append(key)
            for name in accounts.names:
                box = accounts.of(name)
                for key in box.keys():  # noqa: SIM118
                    with contextlib.suppress(KeyError, OSError):
                        box.remove(key)
            return removed

        removed = await asyncio.to_thread(work)
        for key in removed:
            self.index.forget(key, account)
        if account is None:
            for entry in list(self.index.visible(Viewer(teacher=True))):
                self.index.forget(entry.key)
        self.tell("cleared", {"account": account, "removed": len(removed)}, teacher_only=False)
        return len(removed)

    async def api_clear(self, request: web.Request) -> web.Response:
        """POST {"account": NAME} (or {} for every mailbox): the teacher only.

        With the teacher's cookie, the CSRF token must come in `X-CSRF-Token`; with
        `Authorization: Bearer` no browser sends it by itself, so none is needed.
        """
        viewer = self._require(request, teacher=True)
        self._same_origin(request)
        from_cookie = self.access.from_cookie(request.cookies.get(COOKIE)) is not None
        if from_cookie and not self.access.csrf_ok(viewer, request.headers.get("X-CSRF-Token")):
            raise _Problem(403, "error_csrf")
        body = await _json_body(request)
        account = body.get("account")
        if account is not None and not isinstance(account, str):
            raise _Problem(400, "error_bad_request")
        return _json({"removed": await self._clear(account)})

    async def form_clear(self, request: web.Request) -> web.Response:
        viewer = self._require(request, teacher=True)
        self._same_origin(request)
        form = await request.post()
        if not self.access.csrf_ok(viewer, _text(form.get("csrf"))):
            raise _Problem(403, "error_csrf")
        account = _text(form.get("account")) or None
        await self._clear(account)
        raise web.HTTPSeeOther(f"/dashboard?lang={_language(request)}")

    async def api_dashboard(self, request: web.Request) -> web.Response:
        self._require(request, teacher=True)
        return _json(self.classroom.data())

    async def api_progress(self, request: web.Request) -> web.Response:
        """A lesson run's step result, sent by `smtp-tutor lesson --server` with basic auth."""
        viewer = self._require(request)
        if viewer.teacher or viewer.name is None:
            raise _Problem(403, "error_forbidden")
        if request.content_type != "application/json":
            raise _Problem(415, "error_bad_request")
        body = await _json_body(request)
        try:
            update = self.classroom.progress(viewer.name, body, request.remote)
        except ValueError as error:
            raise _Problem(400, "error_bad_request") from error
        self.tell("progress", update)
        return _json({"ok": True})


# Helpers ---------------------------------------------------------------------------------


def _event(name: str, payload: Mapping[str, Any]) -> bytes:
    data = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    return f"event: {name}\ndata: {data}\n\n".encode("ascii")


def _language(request: web.Request) -> str:
    asked = request.query.get("lang")
    if asked:
        return normalise_language(asked)
    header = request.headers.get("Accept-Language", "")
    first = header.split(",", 1)[0].split(";", 1)[0].strip()
    return normalise_language(first or "en")


def _limit(text: str | None) -> int:
    if text is None:
        return LIST_LIMIT
    if not text.isdigit():
        raise _Problem(400, "error_bad_request")
    return max(1, min(int(text), LIST_LIMIT))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _filename(key: str) -> str:
    return "".join(ch if ch.isalnum() or ch in ".-_" else "_" for ch in key)[:100]


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


def _json(body: Any) -> web.Response:
    return web.json_response(body, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    if request.content_type != "application/json":
        raise _Problem(415, "error_bad_request")
    try:
        body = await request.json()
    except ValueError as error:
        raise _Problem(400, "error_bad_request") from error
    if not isinstance(body, dict):
        raise _Problem(400, "error_bad_request")
    return body
