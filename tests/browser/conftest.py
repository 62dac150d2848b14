"""Browser tests: Debian's chromium driven by Playwright against a real studio server.

The browser is the system's (/usr/bin/chromium, from scripts/system-packages), never a download.
When it is missing the tests fail and say so: a CI run must not pass by skipping them.
"""
from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse"


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives headless Chromium against a running studio")


@dataclass
class LiveStudio:
    url: str
    app: object

    @property
    def store(self):
        return self.app.state.studio.store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _project(folder: Path) -> Path:
    for name in ("flows", "schemas"):
        shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("*.test.yaml"))
    shutil.copy(REPO / "flowdesk.yaml", folder / "flowdesk.yaml")
    return folder


@pytest.fixture
def live_studio(tmp_path):
    """The studio for a copy of the example project, served by uvicorn in a thread on a free port;
    every agent's password is PASSWORD.  The clock is a Monday morning, inside office hours."""
    import uvicorn

    from studio.app import create_app

    monday = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)
    app = create_app(_project(tmp_path / "project"), clock=lambda: monday)
    for name in app.state.studio.accounts.users:
        app.state.studio.accounts.set_password(name, PASSWORD)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the studio server did not start")
        time.sleep(0.02)
    try:
        yield LiveStudio(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# Per module, not per session: Playwright's sync API keeps an event loop running in the main thread
# while it is open, and the tests after the browser tests start event loops of their own.
@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/system-packages) to run the "
                    "browser tests; they are not skipped", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(locale="zh-CN")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def log_in(page, live_studio):
    """log_in(user, next) logs `page` in to the live studio and waits for the page `next`."""
    def log_in(user: str, next_: str = "/") -> None:
        page.goto(f"{live_studio.url}/login?next={next_}")
        page.fill("input[name=user]", user)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
    return log_in
