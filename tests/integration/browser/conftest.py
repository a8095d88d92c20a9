"""Browser fixtures: the real app served over HTTP on a free port (against the tests'
PostgreSQL, Redis and worker), Debian's Chromium driven by Playwright, axe-core (from the
npm registry, `npm ci` in this folder) run inside each page, and screenshots saved as test
artefacts in `test-artifacts/browser/` (or `$LDIS_TEST_ARTIFACTS/browser/`).

Nothing here downloads a browser: Playwright launches the Chromium at `$CHROMIUM_PATH`
(default /usr/bin/chromium, Debian's package), with the flags this machine's closed
network needs. A missing browser or axe-core fails the tests with the command that
installs it; they are never skipped."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.settings import PROJECT_ROOT
from tests.integration.conftest import People
from tests.integration.webpages import PASSWORD, Web, make_web

HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("LDIS_TEST_ARTIFACTS", PROJECT_ROOT / "test-artifacts")) / "browser"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    # The machine's network is closed: without these Chromium keeps dialling Google.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# axe-core impacts that fail a page; "moderate" and "minor" are reported, not failed.
FAILING_IMPACTS = ("serious", "critical")


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[str]:
    """The app over real HTTP, threaded as a browser needs (it fetches pages in parallel)."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install Debian's (`apt-get install chromium`, as "
            "`make test` does) or set CHROMIUM_PATH",
            pytrace=False,
        )
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(
            f"axe-core is not installed: run `npm ci --prefix {HERE.relative_to(PROJECT_ROOT)}` "
            "(as `make test` does)",
            pytrace=False,
        )
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@dataclass
class Visitor:
    """One person's browser window: their own cookies, screenshots numbered per test."""

    name: str
    context: BrowserContext
    page: Page
    base: str
    shots: Shots
    email: str = ""

    def go(self, path: str) -> Page:
        response = self.page.goto(self.base + path)
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        return self.page

    def shot(self, step: str) -> Path:
        return self.shots.take(self.page, f"{self.name}-{step}")


@dataclass
class Shots:
    folder: Path
    taken: list[Path] = field(default_factory=list)

    def take(self, page: Page, step: str) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        path = self.folder / f"{len(self.taken) + 1:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


class Browsers:
    """Open a window per person; panel members log in with their password and the code
    their authenticator app shows, typed into the two-factor page like anyone would."""

    def __init__(self, chromium: Browser, base: str, web: Web, shots: Shots) -> None:
        self.chromium, self.base, self.web, self.shots = chromium, base, web, shots
        self.opened: list[BrowserContext] = []

    def window(self, name: str, *, phone: bool = False) -> Visitor:
        options: dict[str, Any] = {"base_url": self.base, "bypass_csp": True}
        if phone:
            options |= {"viewport": {"width": 360, "height": 740}, "is_mobile": True}
        else:
            options |= {"viewport": {"width": 1280, "height": 900}}
        # bypass_csp: our pages allow no scripts at all, and axe-core is one we inject.
        context = self.chromium.new_context(**options)
        context.set_default_timeout(15_000)
        self.opened.append(context)
        return Visitor(name, context, context.new_page(), self.base, self.shots)

    def person(self, name: str, *roles: Role) -> Visitor:
        visitor = self.window(name)
        visitor.email = self.web.user(name, *roles)
        page = visitor.go("/login")
        page.get_by_label("E-mail address").fill(visitor.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        if page.url.endswith("/login/two-factor"):
            page.get_by_label("Code", exact=True).fill(self.web.apps.code(visitor.email))
            page.get_by_role("button", name="Continue").click()
        assert "/login" not in page.url, f"{name} could not log in: {page.url}"
        return visitor

    def code(self, visitor: Visitor) -> str:
        return self.web.apps.code(visitor.email)

    def close(self) -> None:
        for context in self.opened:
            context.close()


@pytest.fixture
def web(app: Flask, container: Container, client: FlaskClient, people: People) -> Web:
    return make_web(app, container, client, people)


@pytest.fixture
def shots(artifacts: Path, request: pytest.FixtureRequest) -> Shots:
    folder = artifacts / re.sub(r"[^A-Za-z0-9_]+", "-", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    return Shots(folder)


@pytest.fixture
def browsers(chromium: Browser, live_server: str, web: Web, shots: Shots) -> Iterator[Browsers]:
    opened = Browsers(chromium, live_server, web, shots)
    yield opened
    opened.close()


def axe_violations(page: Page, source: str) -> list[dict[str, Any]]:
    """Run axe-core in the page (WCAG 2.1 A and AA rules, best practices); the violations
    that fail a page, each with the nodes it found."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=source)
    result: dict[str, Any] = page.evaluate(
        """async () => await window.axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
            resultTypes: ['violations'],
        })"""
    )
    return [v for v in result["violations"] if v.get("impact") in FAILING_IMPACTS]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        targets = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return "\n".join(lines)
