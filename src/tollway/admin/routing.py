"""Routing rules through the API (``/api/routing-rules``, stored and applied at once) and
``POST /api/routing/explain``. The config file's rules are shown, not changed here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from tollway.admin.ops import EntityOps
from tollway.pipeline.handler import Call
from tollway.routing.explain import body_for, explain
from tollway.surfaces.anthropic import AnthropicSurface
from tollway.surfaces.base import Route, Surface
from tollway.surfaces.openai import OpenAIChatSurface, OpenAIResponsesSurface

if TYPE_CHECKING:
    from tollway.services import Services

_SURFACES: dict[str, Surface] = {
    "anthropic": AnthropicSurface(),
    "openai_chat": OpenAIChatSurface(),
    "openai_responses": OpenAIResponsesSurface(),
}
_PATHS = {"anthropic": "/v1/messages", "openai_chat": "/v1/chat/completions",
          "openai_responses": "/v1/responses"}  # fmt: skip


class ExplainInput(BaseModel):
    """A request to explain: the key (name or id), the model as the client names it, the
    API it calls, its headers (``user-agent`` and session headers included) and its size
    (a body, or a number of tokens)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=300)
    api: Literal["anthropic", "openai_chat", "openai_responses"] = "anthropic"
    headers: dict[str, Annotated[str, Field(max_length=8192)]] = Field(
        default_factory=dict, max_length=100
    )
    tokens: int | None = Field(default=None, ge=0, le=10_000_000)
    body: dict[str, Any] | None = None


def _rules_doc(services: Services) -> dict[str, Any]:
    dump = [r.model_dump(mode="json", exclude_defaults=True) for r in services.stored_rules]
    config = services.config.routing
    return {
        "stored": dump,
        "config": [r.model_dump(mode="json", exclude_defaults=True) for r in config.rules],
        "tiers": dict(config.tiers),
        "aliases": dict(config.aliases),
        "order": [r.name for r in services.router.rules.rules],
    }


def routing_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["routing"])

    @router.get("/routing-rules")
    async def get_rules() -> dict[str, Any]:
        """The stored rules (this API's), the config file's, and the order they are tried."""
        return _rules_doc(services)

    @router.put("/routing-rules")
    async def put_rules(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Replace the stored rules: ``{"rules": [{"name", "scope", "priority", "when",
        "targets", "fallbacks"}, ...]}``; an invalid rule is refused with its field path."""
        rules = services.validate_rules(body)
        await services.replace_rules(rules)
        return _rules_doc(services)

    @router.post("/routing/explain")
    async def explain_route(body: Annotated[ExplainInput, Body()]) -> dict[str, Any]:
        """Which rule and target a request would get, and why; nothing is sent upstream."""
        key = await EntityOps(services.store).get("virtual_key", body.key)
        surface = _SURFACES[body.api]
        headers = {k.lower().encode("latin-1"): v.encode("latin-1")
                   for k, v in body.headers.items()}  # fmt: skip
        call = Call(id="explain", route=Route(surface, "generate", _PATHS[body.api]),
                    started=time.time(), t0=time.perf_counter(), headers=headers, key=key,
                    body=body_for(body.model, body.body, body.tokens))  # fmt: skip
        gateway = services.gateway
        call.session = gateway.session_of(headers)
        return explain(gateway, call, key, body.model, surface.dialect)

    return router
