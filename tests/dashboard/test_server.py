"""``/ui`` in-process: log-in, session cookie, CSRF, log-out, static assets, the redirect
from ``/`` and the ``/api/dashboard`` reads, against a real store and the simulated provider."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from inprocess import ADMIN, Running, running
from tollway.dashboard.sessions import MAX_FAILURES, SessionStore

BODY = b'{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'


async def login(client: httpx.AsyncClient, token: str = ADMIN) -> str:
    """Logs in; returns the page's CSRF token."""
    r = await client.post("/ui/login", data={"token": token})
    assert r.status_code == 303 and r.headers["location"] == "/ui/", r.text
    page = await client.get("/ui/")
    assert page.status_code == 200
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@pytest.fixture
async def gw(tmp_path: Path) -> Running:
    async with running(tmp_path) as gw:
        yield gw  # type: ignore[misc]


async def test_cookie_flags_and_page_headers(gw: Running) -> None:
    r = await gw.client.post("/ui/login", data={"token": ADMIN})
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("tollway_session=")
    flags = {f.strip().split("=")[0].lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= flags
    assert "SameSite=Strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would not return
    page = await gw.client.get("/ui/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert "{{csrf}}" not in page.text


async def test_https_cookie_is_secure(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        client = httpx.AsyncClient(transport=gw.client._transport, base_url="https://gw")
        async with client:
            r = await client.post("/ui/login", data={"token": ADMIN})
        assert "; Secure" in r.headers["set-cookie"]


async def test_wrong_token_is_refused_and_says_why(gw: Running) -> None:
    r = await gw.client.post("/ui/login", data={"token": ADMIN + "x"})
    assert r.status_code == 401
    assert "not the admin token" in r.text and "set-cookie" not in r.headers
    r = await gw.client.post("/ui/login", content=b"\xff\xfe", headers={"content-type": "x"})
    assert r.status_code == 400
    r = await gw.client.post("/ui/login", content=b"token=" + b"a" * 5000)
    assert r.status_code == 400
    assert (await gw.client.get("/ui/")).headers["location"] == "/ui/login"
    assert (await gw.client.get("/ui/api/virtual-keys")).status_code == 401


async def test_failed_logins_lock_out_for_a_window() -> None:
    now = [0.0]
    store = SessionStore(clock=lambda: now[0])
    for _ in range(MAX_FAILURES):
        assert not store.locked_out("10.0.0.1")
        store.failed("10.0.0.1")
    assert store.locked_out("10.0.0.1")
    assert not store.locked_out("10.0.0.2")  # per address: others still log in
    now[0] += 61
    assert not store.locked_out("10.0.0.1")


async def test_lockout_through_the_form(gw: Running) -> None:
    for _ in range(MAX_FAILURES):
        r = await gw.client.post("/ui/login", data={"token": "guess"})
        assert r.status_code == 401
    r = await gw.client.post("/ui/login", data={"token": ADMIN})
    assert r.status_code == 429 and "wait a minute" in r.text and "set-cookie" not in r.headers


async def test_sessions_expire_and_follow_the_admin_token() -> None:
    now = [0.0]
    store = SessionStore(clock=lambda: now[0], idle_timeout_s=100, max_sessions=2)
    sid, _ = store.create("tok-a")
    assert store.get(sid, "tok-a") is not None
    assert store.get(sid, "tok-b") is None  # the token changed: the session is gone
    assert store.get(sid, "tok-a") is None
    sid, _ = store.create("tok-a")
    now[0] += 101
    assert store.get(sid, "tok-a") is None
    first, _ = store.create("t")
    store.create("t")
    store.create("t")
    assert len(store) == 2 and store.get(first, "t") is None  # oldest evicted past the cap


async def test_api_through_the_session_needs_the_csrf_token(gw: Running) -> None:
    csrf = await login(gw.client)
    assert (await gw.client.get("/ui/api/virtual-keys")).status_code == 200
    for headers in ({}, {"x-csrf-token": "wrong"}, {"x-csrf-token": ""}):
        r = await gw.client.post("/ui/api/virtual-keys", json={"name": "evil"}, headers=headers)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["type"] == "forbidden"
    r = await gw.client.post(
        "/ui/api/virtual-keys",
        json={"name": "evil"},
        headers={"x-csrf-token": csrf, "origin": "http://127.0.0.1:9999"},
    )
    assert r.status_code == 403 and "cross-origin" in r.text
    for origin in ("null", "http://gw.evil", "http://gw:80", "gw", "ftp://gw"):
        r = await gw.client.post("/ui/api/virtual-keys", json={"name": "evil"},
                                 headers={"x-csrf-token": csrf, "origin": origin})  # fmt: skip
        assert r.status_code == 403, origin
    listed = await gw.client.get("/api/virtual-keys", headers=gw.admin)
    assert [k["name"] for k in listed.json()] == []
    r = await gw.client.post(
        "/ui/api/virtual-keys",
        json={"name": "ok"},
        headers={"x-csrf-token": csrf, "origin": "https://gw"},  # TLS ended at a proxy
    )
    assert r.status_code == 201 and r.json()["key"].startswith("tw-")


async def test_the_browser_never_needs_the_admin_token(gw: Running) -> None:
    await login(gw.client)
    # A forged Authorization header is replaced, never passed on or needed.
    r = await gw.client.get("/ui/api/virtual-keys", headers={"authorization": "Bearer nope"})
    assert r.status_code == 200
    r = await gw.client.get("/ui/api/openapi.json")
    assert r.status_code == 200 and "/api/dashboard/overview" in r.json()["paths"]


async def test_logout_ends_the_session_on_the_server(gw: Running) -> None:
    csrf = await login(gw.client)
    sid = gw.client.cookies["tollway_session"]
    r = await gw.client.post("/ui/logout", data={"csrf": "wrong"})
    assert r.status_code == 403
    assert (await gw.client.get("/ui/api/teams")).status_code == 200
    r = await gw.client.post("/ui/logout", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert "Max-Age=0" in r.headers["set-cookie"]
    gw.client.cookies.set("tollway_session", sid, path="/ui")  # replay the old cookie
    assert (await gw.client.get("/ui/api/teams")).status_code == 401
    assert (await gw.client.get("/ui/")).status_code == 303


async def test_root_redirects_browsers_only(gw: Running) -> None:
    r = await gw.client.get("/", headers={"accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/"
    assert (await gw.client.get("/")).json() == {"service": "tollway"}
    assert (await gw.client.get("/", headers={"accept": "application/json"})).status_code == 200
    r = await gw.client.head("/", headers={"accept": "text/html"})
    assert r.status_code == 200 and r.content == b""


async def test_static_assets(gw: Running) -> None:
    r = await gw.client.get("/ui/static/js/main.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    etag = r.headers["etag"]
    again = await gw.client.get("/ui/static/js/main.js", headers={"if-none-match": etag})
    assert again.status_code == 304
    css = await gw.client.get("/ui/static/style.css")
    assert css.headers["content-type"].startswith("text/css")
    for bad in ("/ui/static/../server.py", "/ui/static/index.html", "/ui/static/nope.js",
                "/ui/static/%2e%2e/sessions.py"):  # fmt: skip
        assert (await gw.client.get(bad)).status_code == 404, bad
    # Every module the page imports is served (no CDN, nothing missing).
    main = r.text
    for name in re.findall(r'from "\./([^"]+)"', main):
        assert (await gw.client.get(f"/ui/static/js/{name}")).status_code == 200, name
    assert "http://" not in main and "https://" not in main


async def test_overview_budgets_and_sessions(gw: Running) -> None:
    secret = await gw.key("alice", budgets=[{"max_limit": 5, "reset_duration": "1d"}])
    doc = (await gw.client.get("/api/dashboard/overview", headers=gw.admin)).json()
    assert doc["first_run"] is True and doc["spend"]["today"]["requests"] == 0
    headers = {"x-api-key": secret, "x-claude-code-session-id": "s-1"}
    for _ in range(2):
        r = await gw.client.post("/v1/messages", content=BODY, headers=headers)
        assert r.status_code == 200, r.text
    await gw.services.writer.flush()
    logs = (await gw.client.get("/api/logs", headers=gw.admin)).json()["data"]
    spent = sum(Decimal(r["cost"]["total"]) for r in logs)
    assert spent > 0
    doc = (await gw.client.get("/api/dashboard/overview", headers=gw.admin)).json()
    assert doc["first_run"] is False
    assert Decimal(doc["spend"]["today"]["cost"]["total"]) == spent
    assert Decimal(doc["spend"]["month"]["cost"]["total"]) == spent
    assert doc["traffic_24h"]["requests"] == 2 and doc["traffic_24h"]["errors"] == 0
    assert doc["traffic_24h"]["latency_ms"]["p50"] is not None
    (key_series,) = doc["series"]["key"]
    assert key_series["name"] == "alice" and Decimal(key_series["cost"]) == spent
    assert key_series["requests"] == 2
    assert doc["top"]["key"][0]["name"] == "alice"
    (status,) = (await gw.client.get("/api/dashboard/budgets", headers=gw.admin)).json()
    assert status["can_request"] is True and status["blocked_because"] is None
    (budget,) = status["budgets"]
    assert Decimal(budget["spent"]) == spent and Decimal(budget["max_limit"]) == 5
    assert Decimal(budget["remaining"]) == 5 - spent and budget["resets_at"]
    (session,) = (await gw.client.get("/api/dashboard/sessions", headers=gw.admin)).json()["data"]
    assert session["session_id"] == "s-1" and session["requests"] == 2
    assert Decimal(session["cost"]) == spent and session["key_name"] == "alice"
    key_id = status["id"]
    await gw.client.delete(f"/api/virtual-keys/{key_id}", headers=gw.admin)
    (status,) = (await gw.client.get("/api/dashboard/budgets", headers=gw.admin)).json()
    assert status["can_request"] is False and "revoked" in status["blocked_because"]


async def test_exhausted_budget_means_cannot_request(gw: Running) -> None:
    secret = await gw.key("tiny", budgets=[{"max_limit": "0.01", "reset_duration": "1d"}])
    (status,) = (await gw.client.get("/api/dashboard/budgets", headers=gw.admin)).json()
    assert status["can_request"] is True
    budget = status["budgets"][0]
    start = datetime.fromisoformat(budget["window_start"])
    gw.services.admission.ledger.load(budget["budget_id"], start, Decimal("0.01"))
    (status,) = (await gw.client.get("/api/dashboard/budgets", headers=gw.admin)).json()
    assert status["can_request"] is False
    assert (
        status["blocked_because"].startswith("budget vk:")
        and "exhausted" in status["blocked_because"]
    )
    # The gateway agrees: the next request is refused for the budget.
    r = await gw.client.post("/v1/messages", content=BODY, headers={"x-api-key": secret})
    assert r.status_code == 402, r.text


async def test_provider_edit_keeps_the_secret(gw: Running) -> None:
    r = await gw.client.put(
        "/api/dashboard/providers/groq",
        json={"type": "openai", "base_url": "http://127.0.0.1:1/v1", "models": ["llama-x"],
              "keys": [{"name": "main", "value": "sk-groq-secret"}]},
        headers=gw.admin,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    r = await gw.client.put(
        "/api/dashboard/providers/groq",
        json={"type": "openai", "base_url": "http://127.0.0.1:2/v1", "models": ["llama-y"],
              "keys": [{"name": "main"}]},
        headers=gw.admin,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert "sk-groq-secret" not in r.text
    assert gw.services.config.providers["groq"].keys[0].value == "sk-groq-secret"
    assert gw.services.config.providers["groq"].base_url == "http://127.0.0.1:2/v1"
    r = await gw.client.put("/api/dashboard/providers/other", json={"keys": [{"name": "k"}]},
                            headers=gw.admin)  # fmt: skip
    assert r.status_code == 400 and "keys" in r.json()["error"]["message"]
    r = await gw.client.delete("/api/dashboard/providers/groq", headers=gw.admin)
    assert r.status_code == 200 and "groq" not in gw.services.config.providers
    assert (
        await gw.client.delete("/api/dashboard/providers/groq", headers=gw.admin)
    ).status_code == 404
