"""Playwright driving Debian's chromium (``make browser-deps`` installs it); screenshots go
to tests/artifacts/ (git-ignored) so a run can be looked at afterwards."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from conftest import ADMIN_TOKEN, REPO, GatewayServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
ARTIFACTS = REPO / "tests" / "artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


# Module scope: sync Playwright runs an event loop of its own in this thread, which must be
# gone before pytest-asyncio's tests in other modules run theirs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=DESKTOP)
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.on("dialog", lambda d: d.accept())
    yield p
    # A script error or a CSP violation fails the test that caused it; an API answer of
    # 4xx the test provoked is logged by chromium as a failed load, and is not one.
    expected = re.compile(r"^Failed to load resource: .* status of 4\d\d")
    assert not [e for e in errors if not expected.match(e)], errors


def shot(page: Page, name: str, full: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    return path


def log_in(page: Page, gw: GatewayServer, token: str = ADMIN_TOKEN) -> None:
    page.goto(gw.base_url + "/")
    page.wait_for_url("**/ui/login")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/")
    page.locator("h1").first.wait_for()
