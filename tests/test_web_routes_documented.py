"""docs/api.md names every route the web view serves, with its method, and no route it lacks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web

from smtp_tutor.web.app import WebView

pytestmark = pytest.mark.pure

API_MD = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def _served() -> set[tuple[str, str]]:
    app = web.Application()
    view = object.__new__(WebView)  # only its handlers are looked at: nothing starts
    view._routes(app)
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


def _documented() -> set[tuple[str, str]]:
    text = API_MD.read_text(encoding="utf-8")
    found = set()
    for cell in re.findall(r"^\| `([^|]+)` \|", text, flags=re.MULTILINE):
        for item in cell.split("`, `"):
            method, _space, path = item.strip("`").partition(" ")
            if method in ("GET", "POST"):
                found.add((method, re.sub(r"\[?\?.*\Z", "", path)))
    return found


def test_every_route_is_documented_and_every_documented_one_served() -> None:
    served, documented = _served(), _documented()
    assert len(served) >= 20
    assert served - documented == set(), "routes docs/api.md does not describe"
    assert documented - served == set(), "routes docs/api.md describes but nobody serves"
