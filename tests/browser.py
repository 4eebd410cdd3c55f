"""A real headless Chromium for the web view's tests (Debian's chromium + chromium-driver).

Selenium drives it through the system chromedriver given as its Service, so selenium's
own driver manager never tries to download anything. Without Chromium the tests skip
with the reason; with CI set they fail instead (.ci/install-chromium.sh installs it).
"""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.real_servers import skip_or_fail

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver",)


def _first(paths: tuple[str, ...], name: str) -> str | None:
    for path in paths:
        if Path(path).exists():
            return path
    return shutil.which(name)


def missing_requirements() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if _first(CHROMIUM, "chromium") is None:
        return "no Chromium (apt-get install chromium chromium-driver; .ci/install-chromium.sh)"
    if _first(CHROMEDRIVER, "chromedriver") is None:
        return "no chromedriver (apt-get install chromium-driver)"
    return None


def start_browser(tmp: Path) -> Any:
    skip_or_fail(missing_requirements())
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,1600",
        f"--user-data-dir={tmp}",
        "--no-first-run",
        "--disable-background-networking",
    ):
        options.add_argument(argument)
    options.binary_location = _first(CHROMIUM, "chromium") or ""
    service = Service(_first(CHROMEDRIVER, "chromedriver") or "")
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(20)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Chromium for a whole test module: starting one takes a second or two."""
    driver = start_browser(tmp_path_factory.mktemp("chromium"))
    try:
        yield driver
    finally:
        driver.quit()


class Witness:
    """An HTTP server on 127.0.0.1 that only records the paths asked of it.

    A script that must not run is told to fetch from here: an empty `paths` proves it did not.
    """

    def __init__(self) -> None:
        self.paths: list[str] = []
        witness = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                witness.paths.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Witness:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
