"""Shared pytest fixtures."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.postfix import PostfixInstance, missing_requirements

_CACHE_HOME = "XDG_CACHE_HOME"
_CACHE_KEY = pytest.StashKey[tuple[str | None, str]]()  # (the variable before, our folder)


def pytest_configure(config: pytest.Config) -> None:
    """The CLI saves parsed knowledge in the cache folder (smtp_tutor.data): give the run a
    private one, so no test - nor the programs the tests start - writes the user's own."""
    folder = tempfile.mkdtemp(prefix="smtp-tutor-test-cache-")
    config.stash[_CACHE_KEY] = (os.environ.get(_CACHE_HOME), folder)
    os.environ[_CACHE_HOME] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    before, folder = config.stash.get(_CACHE_KEY, (None, ""))
    if not folder:
        return
    if before is None:
        os.environ.pop(_CACHE_HOME, None)
    else:
        os.environ[_CACHE_HOME] = before
    shutil.rmtree(folder, ignore_errors=True)


def _require_postfix() -> None:
    """Skip without Postfix locally; fail under CI, so CI can never skip silently."""
    problem = missing_requirements()
    if problem is None:
        return
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{problem} (CI is set: failing instead of skipping)", pytrace=False)
    pytest.skip(problem)


def _running_postfix(*, tls_auth_only: bool) -> Iterator[PostfixInstance]:
    _require_postfix()
    instance = PostfixInstance(tls_auth_only=tls_auth_only)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def postfix() -> Iterator[PostfixInstance]:
    """Real Postfix on 127.0.0.1 offering AUTH before STARTTLS too (teaching set-up)."""
    yield from _running_postfix(tls_auth_only=False)


@pytest.fixture(scope="session")
def postfix_tls_only() -> Iterator[PostfixInstance]:
    """Real Postfix that, like production servers, hides AUTH until STARTTLS."""
    yield from _running_postfix(tls_auth_only=True)


@dataclass
class Outbound:
    """Every address a test's process connected to, and every host name it looked up."""

    connects: list[object] = field(default_factory=list)
    lookups: list[object] = field(default_factory=list)


@pytest.fixture
def outbound(monkeypatch: pytest.MonkeyPatch) -> Outbound:
    """Records the process's outgoing connections and name lookups: nothing may leave."""
    seen = Outbound()
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        seen.connects.append(address)
        real_connect(self, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        seen.lookups.append(host)
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


@pytest.fixture(autouse=True)
def _pure_tests_touch_no_network(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked `pure` that opens a socket or starts a process fails: the mark cannot lie.

    `pytest -m pure` runs the fast, socket-free tests (the sans-I/O core, pure renderers).
    An event loop's own self-pipe is a socketpair and stays allowed.
    """
    if request.node.get_closest_marker("pure") is None and not os.environ.get(
        "SMTP_TUTOR_PROBE_PURE"
    ):
        yield
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test marked pure opened a socket or started a process")

    with pytest.MonkeyPatch.context() as patch:
        for name in ("connect", "connect_ex", "bind"):
            patch.setattr(socket.socket, name, refuse)
        patch.setattr(subprocess.Popen, "__init__", refuse)
        yield
