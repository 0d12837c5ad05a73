"""The admin API under ``/api``: bearer-token auth, OpenAPI at ``/api/openapi.json``."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse

from tollway.admin.budgets import budget_routes
from tollway.admin.dashboard_api import dashboard_routes
from tollway.admin.entities import entity_routes
from tollway.admin.logs import log_routes
from tollway.admin.pricing import pricing_routes
from tollway.admin.providers import provider_routes
from tollway.errors import AuthenticationFailed, GatewayError

if TYPE_CHECKING:
    from tollway.services import Services


def build_admin(services: Services) -> FastAPI:
    def require_admin(authorization: Annotated[str | None, Header()] = None) -> str:
        token = services.admin_token
        scheme, _, given = (authorization or "").partition(" ")
        if (
            not token
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(given.strip().encode(), token.encode())
        ):
            raise AuthenticationFailed(
                "admin API: send Authorization: Bearer <admin token> (TOLLWAY_ADMIN_TOKEN, "
                "or the token printed at first start and stored beside the database)"
            )
        return "admin"

    app = FastAPI(
        title="Tollway admin API",
        version="0.1.0",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        dependencies=[Depends(require_admin)],
    )

    @app.exception_handler(GatewayError)
    async def _gateway_error(_request: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(
            {"error": {"type": exc.anthropic_type, "message": exc.message}},
            status_code=exc.status,
            headers=exc.headers,
        )

    app.include_router(entity_routes(services))
    app.include_router(budget_routes(services))
    app.include_router(provider_routes(services))
    app.include_router(log_routes(services))
    app.include_router(pricing_routes(services))
    app.include_router(dashboard_routes(services))
    return app
