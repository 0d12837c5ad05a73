"""Log-out and CSRF in the browser: a page on another loopback port (the same *site*, so
the SameSite cookie goes along) cannot change anything, and a logged-out cookie is dead."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from conftest import GatewayServer
from dashboard.conftest import log_in, shot

pytestmark = pytest.mark.timeout(120)


def attacker_page(target: str) -> bytes:
    """Forms that post to the gateway as soon as they load: a JSON-looking key creation
    (text/plain, the classic CSRF trick), and a log-out."""
    return f"""<!doctype html><html><body>
<form id="create" method="post" enctype="text/plain" action="{target}/ui/api/virtual-keys"
      target="f1"><input name='{{"name":"evil","x":"' value='"}}'></form>
<form id="logout" method="post" action="{target}/ui/logout" target="f2"></form>
<iframe name="f1" id="f1"></iframe><iframe name="f2" id="f2"></iframe>
<script>
document.getElementById("create").submit();
document.getElementById("logout").submit();
</script></body></html>""".encode()


@pytest.fixture
def attacker(gateway_server: GatewayServer) -> Iterator[str]:
    body = attacker_page(gateway_server.base_url)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def key_names(gw: GatewayServer) -> list[str]:
    resp = httpx.get(f"{gw.base_url}/api/virtual-keys", headers=gw.admin_headers())
    return sorted(k["name"] for k in resp.json())


def test_csrf_from_another_origin_changes_nothing(
    page: Page, context: BrowserContext, gateway_server: GatewayServer, attacker: str
) -> None:
    gw = gateway_server
    log_in(page, gw)
    before = key_names(gw)
    evil = context.new_page()
    with evil.expect_response(lambda r: r.url.endswith("/ui/api/virtual-keys")) as created:
        evil.goto(attacker)
    assert created.value.status == 403
    evil.wait_for_load_state("networkidle")
    shot(evil, "csrf-attacker")
    evil.close()
    assert key_names(gw) == before  # no key named "evil"
    # The session survived the forged log-out, and the real page still works.
    page.goto(gw.base_url + "/ui/#/keys")
    expect(page.locator("h1")).to_have_text("Virtual keys")
    expect(page.get_by_role("alert")).to_have_count(0)
    cookie = next(c for c in context.cookies() if c["name"] == "tollway_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    # The cookie alone is not enough to change anything: the CSRF token is.
    jar = {"tollway_session": cookie["value"]}
    r = httpx.post(f"{gw.base_url}/ui/api/virtual-keys", json={"name": "evil"}, cookies=jar)
    assert r.status_code == 403
    assert page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read it


def test_logout(page: Page, context: BrowserContext, gateway_server: GatewayServer) -> None:
    gw = gateway_server
    log_in(page, gw)
    sid = next(c["value"] for c in context.cookies() if c["name"] == "tollway_session")
    jar = {"tollway_session": sid}
    assert httpx.get(f"{gw.base_url}/ui/api/teams", cookies=jar).status_code == 200
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/ui/login")
    expect(page.get_by_label("Admin token")).to_be_visible()
    shot(page, "logged-out")
    assert not [c for c in context.cookies() if c["name"] == "tollway_session"]
    # The old cookie is dead on the server, not only forgotten by the browser.
    assert httpx.get(f"{gw.base_url}/ui/api/teams", cookies=jar).status_code == 401
    page.goto(gw.base_url + "/ui/#/keys")
    expect(page).to_have_url(re.compile(r"/ui/login(#/keys)?$"))  # a redirect keeps the hash
    # A wrong token is refused with a message beside the field.
    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_contain_text("not the admin token")
    shot(page, "login-refused")
