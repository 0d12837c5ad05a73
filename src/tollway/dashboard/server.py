"""The web dashboard at ``/ui``: log-in, static assets, and the admin API behind a cookie.

    /ui/login      GET the form; POST ``token=<admin token>`` sets the session cookie
    /ui/logout     POST (with the CSRF token) ends the session
    /ui/           the single page (hash routes: #/overview, #/logs, ...)
    /ui/static/*   the ES modules and CSS, from this package's data
    /ui/api/*      the admin API (``/api/*``) for a logged-in browser

The session cookie is HttpOnly and SameSite=Strict (Secure over https); the browser never
sees the admin token again. Every request that changes something must carry the session's
CSRF token in ``X-CSRF-Token`` (or the ``csrf`` form field), and a cross-origin ``Origin``
is refused outright: two ports on one host are the same *site*, so SameSite alone does
not stop a page on another local port from posting here.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import msgspec

from tollway.dashboard.sessions import IDLE_TIMEOUT_S, Session, SessionStore, digest
from tollway.errors import PayloadTooLarge
from tollway.pipeline.asgi import Receive, Scope, Send, read_body, respond

if TYPE_CHECKING:
    from tollway.services import Services

COOKIE = "tollway_session"
PREFIX = "/ui"
_LOGIN_BODY_LIMIT = 4096
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_TYPES = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".html": b"text/html; charset=utf-8",
}
_HTML = _TYPES[".html"]
_SECURITY = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


def _load_assets() -> dict[str, tuple[bytes, bytes, bytes]]:
    """``name -> (content type, body, etag)`` for every file under ``static/``."""
    assets: dict[str, tuple[bytes, bytes, bytes]] = {}
    root = resources.files("tollway.dashboard") / "static"

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            name = prefix + child.name
            if child.is_dir():
                walk(child, name + "/")
                continue
            kind = _TYPES.get("." + child.name.rpartition(".")[2])
            if kind is not None:
                body = child.read_bytes()
                etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
                assets[name] = (kind, body, etag)

    walk(root, "")
    return assets


def _cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope["headers"]:
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:
                continue
    return {k: m.value for k, m in jar.items()}


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def _same_origin(scope: Scope) -> bool:
    """No ``Origin`` (curl, an old browser) or one naming this host and port exactly.

    The scheme is not compared: behind a TLS-terminating proxy the browser says https while
    the gateway sees http, and one host and port never serve two schemes.
    """
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    host = _header(scope, b"host")
    scheme, sep, netloc = origin.partition("://")
    return bool(sep) and scheme in ("http", "https") and host is not None and netloc == host


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class DashboardApp:
    """ASGI app for everything under ``/ui``; ``admin`` is the admin API app."""

    def __init__(
        self, services: Services, admin: Any, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.services = services
        self.admin = admin
        self.sessions = SessionStore(clock)
        self.assets = _load_assets()

    def _token_digest(self) -> str:
        return digest(self.services.admin_token)

    def session(self, scope: Scope) -> tuple[str, Session] | None:
        sid = _cookies(scope).get(COOKIE)
        if not sid or not self.services.admin_token:
            return None
        session = self.sessions.get(sid, self._token_digest())
        return (sid, session) if session else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        rest = path[len(PREFIX) :]
        if rest.startswith("/api/"):
            await self._api(scope, receive, send, rest)
        elif rest.startswith("/static/") and method in ("GET", "HEAD"):
            await self._static(scope, send, rest[len("/static/") :])
        elif rest == "/login":
            if method == "POST":
                await self._login(scope, receive, send)
            else:
                await self._login_page(send, 200, "")
        elif rest == "/logout" and method == "POST":
            await self._logout(scope, receive, send)
        elif rest in ("", "/") and method in ("GET", "HEAD"):
            await self._index(scope, send)
        else:
            await _page(send, 404, b"<!doctype html><title>Not found</title><p>No such page.")

    async def _index(self, scope: Scope, send: Send) -> None:
        found = self.session(scope)
        if found is None:
            await _redirect(send, f"{PREFIX}/login")
            return
        _, session = found
        body = self.assets["index.html"][1].replace(b"{{csrf}}", session.csrf.encode())
        await _page(send, 200, body)

    async def _login_page(self, send: Send, status: int, error: str) -> None:
        text = html.escape(error)
        block = f'<p class="error" id="login-error" role="alert">{text}</p>' if error else ""
        body = self.assets["login.html"][1].replace(b"{{error}}", block.encode())
        await _page(send, status, body)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _same_origin(scope):
            await self._login_page(send, 403, "Log-in refused: the form came from another site.")
            return
        if self.sessions.locked_out(_client(scope)):
            await self._login_page(send, 429, "Too many failed log-ins; wait a minute.")
            return
        try:
            form = parse_qs((await read_body(receive, _LOGIN_BODY_LIMIT)).decode("utf-8"))
        except (PayloadTooLarge, UnicodeDecodeError):
            await self._login_page(send, 400, "The log-in form was not readable.")
            return
        given = (form.get("token") or [""])[0].strip()
        token = self.services.admin_token
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            self.sessions.failed(_client(scope))
            await self._login_page(
                send, 401, "That is not the admin token (TOLLWAY_ADMIN_TOKEN, or the token "
                "printed at first start and stored beside the database)."
            )  # fmt: skip
            return
        sid, _ = self.sessions.create(self._token_digest())
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = (
            f"{COOKIE}={sid}; Path={PREFIX}; HttpOnly; SameSite=Strict; "
            f"Max-Age={IDLE_TIMEOUT_S}{secure}"
        )
        await _redirect(send, f"{PREFIX}/", [(b"set-cookie", cookie.encode())])

    async def _logout(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.session(scope)
        try:
            form = parse_qs((await read_body(receive, _LOGIN_BODY_LIMIT)).decode("utf-8"))
        except (PayloadTooLarge, UnicodeDecodeError):
            form = {}
        given = (form.get("csrf") or [_header(scope, b"x-csrf-token") or ""])[0]
        if found is not None:
            sid, session = found
            if not _same_origin(scope) or not hmac.compare_digest(
                given.encode(), session.csrf.encode()
            ):
                await _json(send, 403, "forbidden", "log-out needs the page's CSRF token")
                return
            self.sessions.end(sid)
        clear = f"{COOKIE}=; Path={PREFIX}; HttpOnly; SameSite=Strict; Max-Age=0"
        await _redirect(send, f"{PREFIX}/login", [(b"set-cookie", clear.encode())])

    async def _static(self, scope: Scope, send: Send, name: str) -> None:
        asset = self.assets.get(name)
        if asset is None or name.endswith(".html"):
            await respond(send, 404, b"not found", b"text/plain")
            return
        kind, body, etag = asset
        headers = [(b"etag", etag), (b"cache-control", b"no-cache"),
                   (b"x-content-type-options", b"nosniff")]  # fmt: skip
        if _header(scope, b"if-none-match") == etag.decode():
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await respond(send, 200, b"" if scope["method"] == "HEAD" else body, kind, headers)

    async def _api(self, scope: Scope, receive: Receive, send: Send, rest: str) -> None:
        found = self.session(scope)
        if found is None:
            await _json(send, 401, "authentication_error", "log in at /ui/login")
            return
        _, session = found
        if scope["method"] not in _SAFE:
            given = _header(scope, b"x-csrf-token") or ""
            if not _same_origin(scope):
                await _json(send, 403, "forbidden", "cross-origin request refused")
                return
            if not hmac.compare_digest(given.encode(), session.csrf.encode()):
                await _json(send, 403, "forbidden", "missing or wrong X-CSRF-Token")
                return
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"cookie", b"authorization")]
        headers.append((b"authorization", b"Bearer " + self.services.admin_token.encode()))
        inner = dict(scope)
        inner.update(path=rest, raw_path=rest.encode(), headers=headers, root_path="")
        await self.admin(inner, receive, send)


async def _page(send: Send, status: int, body: bytes) -> None:
    await respond(send, status, body, _HTML, list(_SECURITY))


async def _redirect(
    send: Send, location: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"location", location.encode()), *_SECURITY, *(extra or [])]
    await respond(send, 303, b"", b"text/plain", headers)


async def _json(send: Send, status: int, kind: str, message: str) -> None:
    body = msgspec.json.encode({"error": {"type": kind, "message": message}})
    await respond(send, status, body, headers=[(b"cache-control", b"no-store")])


def wants_html(scope: Scope) -> bool:
    """A browser's navigation: ``GET`` whose ``Accept`` lists ``text/html``."""
    accept = _header(scope, b"accept") or ""
    return scope["method"] == "GET" and "text/html" in accept
