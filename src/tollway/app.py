"""Builds the ASGI app from parts. The hot path is routed by a dict, with no framework."""

from __future__ import annotations

from typing import Any

import msgspec

from tollway.audit.hook import PATH as HOOK_PATH
from tollway.audit.hook import handle_hook
from tollway.dashboard.server import wants_html
from tollway.errors import (
    AuthenticationFailed,
    EndpointNotFound,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
)
from tollway.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from tollway.pipeline.asgi import Receive, Scope, Send, respond
from tollway.services import Services
from tollway.surfaces import bedrock, gemini, vertex
from tollway.surfaces.anthropic import AnthropicSurface
from tollway.surfaces.base import PathMatcher, Route
from tollway.surfaces.dialects import ANTHROPIC_SURFACE, CHAT_SURFACE, RESPONSES_SURFACE
from tollway.surfaces.openai import OpenAIChatSurface
from tollway.surfaces.paths import misconfigured_base_url
from tollway.translate import bedrock as _bedrock_pair  # noqa: F401 (registers the pair)
from tollway.translate import vertex as _vertex_pair  # noqa: F401 (registers the pair)

_ANTHROPIC = ANTHROPIC_SURFACE
_CHAT = CHAT_SURFACE
_RESPONSES = RESPONSES_SURFACE
_MODEL_PREFIXES = ("/v1/models/", "/anthropic/v1/models/", "/openai/v1/models/")
_HEALTH = msgspec.json.encode({"status": "ok"})


def _routes() -> dict[str, Route]:
    routes: dict[str, Route] = {}
    for prefix in ("", "/anthropic"):
        routes[prefix + "/v1/messages"] = Route(_ANTHROPIC, "generate", "/v1/messages")
        routes[prefix + "/v1/messages/count_tokens"] = Route(
            _ANTHROPIC, "count_tokens", "/v1/messages/count_tokens"
        )
    for prefix in ("", "/openai"):
        routes[prefix + "/v1/chat/completions"] = Route(_CHAT, "generate", "/v1/chat/completions")
        routes[prefix + "/v1/responses"] = Route(_RESPONSES, "generate", "/v1/responses")
    return routes


class TollwayApp:
    """The ASGI callable: hot-path surfaces, ``/health``, ``/v1/models`` and ``/api``."""

    def __init__(self, services: Services, admin: Any, dashboard: Any = None) -> None:
        self.services = services
        self.admin = admin
        self.dashboard = dashboard
        self.routes = _routes()
        # Surfaces whose paths carry the model (tried in order when no exact route matches).
        self.matchers: list[PathMatcher] = [gemini.match, bedrock.match, vertex.match]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        route = self.routes.get(path)
        if route is None and self.matchers:
            route = self._match(path)
        if route is not None and route.kind in ("models", "model"):
            await self._gemini_models(scope, send, route)
        elif route is not None:
            if method != "POST":
                err = InvalidRequest(f"{path} takes POST, not {method}")
                await respond(send, 405, route.surface.error_body(err))
                return
            await self.services.gateway.handle(route, scope, receive, send)
        elif path.startswith("/api/") or path == "/api":
            await self.admin(scope, receive, send)
        elif self.dashboard is not None and (path == "/ui" or path.startswith("/ui/")):
            await self.dashboard(scope, receive, send)
        elif path == "/" and self.dashboard is not None and wants_html(scope):
            await respond(send, 303, b"", b"text/plain", [(b"location", b"/ui/")])
        elif path == HOOK_PATH:
            await handle_hook(self.services, scope, receive, send)
        elif path == "/mcp" or path.startswith("/mcp/"):
            await self.services.mcp.gateway(scope, receive, send)
        elif path == "/health":
            await respond(send, 200, _HEALTH)
        elif path == "/metrics":
            await respond(send, 200, self.services.metrics.render(), METRICS_CONTENT_TYPE)
        elif path == "/" and method in ("HEAD", "GET"):
            await respond(send, 200, b"" if method == "HEAD" else b'{"service":"tollway"}')
        elif path in ("/v1/models", "/anthropic/v1/models", "/openai/v1/models"):
            await self._models(scope, send, path)
        elif path.startswith(_MODEL_PREFIXES) and method == "GET":
            await self._models(scope, send, path, path.split("/v1/models/", 1)[1])
        else:
            await self._unknown(scope, send, path, method)

    def _match(self, path: str) -> Route | None:
        for matcher in self.matchers:
            route = matcher(path)
            if route is not None:
                return route
        return None

    async def _unknown(self, scope: Scope, send: Send, path: str, method: str) -> None:
        """404 in the caller's dialect, with the fix when the base URL looks doubled; logged."""
        surface = _ANTHROPIC if _wants_anthropic(scope, path) else _CHAT
        hint = misconfigured_base_url(path, surface.dialect, _host(scope))
        self.services.metrics.unknown_path(hint.kind if hint else "other")
        message = f"no such endpoint: {method} {path}"
        if hint is not None:
            message += f"; {hint.fix}"
        route = Route(surface, "unknown", path)
        await self.services.gateway.refuse(route, scope, send, EndpointNotFound(message))

    async def _models(self, scope: Scope, send: Send, path: str, one: str | None = None) -> None:
        anthropic = path.startswith("/anthropic") or (
            not path.startswith("/openai") and _wants_anthropic(scope, path)
        )
        surface = _ANTHROPIC if anthropic else _CHAT
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        try:
            key = self.services.gateway.authenticate(dict(headers), headers)
        except AuthenticationFailed as err:
            await _error(send, surface, err)
            return
        models = self.services.models_for(key)
        if one is None:
            await respond(send, 200, surface.models_body(models))
        elif one in models:
            await respond(send, 200, surface.model_body(one))
        else:
            await _error(send, surface, _no_model(one))

    async def _gemini_models(self, scope: Scope, send: Send, route: Route) -> None:
        """GET /v1beta/models and /v1beta/models/{model}, in Gemini's shape."""
        surface = gemini.GEMINI_SURFACE
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        try:
            if scope["method"] != "GET":
                raise InvalidRequest(f"{route.path} takes GET, not {scope['method']}")
            key = self.services.gateway.authenticate(dict(headers), headers)
        except GatewayError as err:
            await _error(send, surface, err)
            return
        models = self.services.models_for(key)
        one = route.model.removeprefix("models/") if route.model else None
        if one is None:
            await respond(send, 200, surface.models_body(models))
        elif one in models:
            await respond(send, 200, surface.model_body(one))
        else:
            await _error(send, surface, _no_model(one))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.services.start()
                except Exception as exc:  # outermost layer: report start-up failure
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.services.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _host(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"host":
            return str(value.decode("latin-1"))
    server = scope.get("server") or ("127.0.0.1", 8080)
    return f"{server[0]}:{server[1]}"


def _wants_anthropic(scope: Scope, path: str) -> bool:
    if path.startswith("/anthropic"):
        return True
    return any(name == b"anthropic-version" for name, _ in scope["headers"])


def _no_model(model: str) -> ModelNotFound:
    return ModelNotFound(
        f"model {model!r} is not available to this key; list them with GET /v1/models"
    )


async def _error(
    send: Send,
    surface: AnthropicSurface | OpenAIChatSurface | gemini.GeminiSurface,
    err: GatewayError,
) -> None:
    headers = [(k.encode(), v.encode()) for k, v in err.headers.items()]
    await respond(send, err.status, surface.error_body(err), headers=headers)


def build_app(services: Services) -> TollwayApp:
    from tollway.admin.api import build_admin
    from tollway.dashboard.server import DashboardApp

    admin = build_admin(services)
    return TollwayApp(services, admin, DashboardApp(services, admin))
