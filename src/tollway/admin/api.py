"""The admin API under ``/api``: bearer-token auth, OpenAPI at ``/api/openapi.json``."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, Header

from tollway.admin.budgets import budget_routes
from tollway.admin.dashboard_api import dashboard_routes
from tollway.admin.entities import entity_routes
from tollway.admin.errors import AdminGuard, described, install_handlers
from tollway.admin.logs import log_routes
from tollway.admin.pricing import pricing_routes
from tollway.admin.providers import provider_routes
from tollway.admin.routing import routing_routes
from tollway.audit.admin import audit_routes
from tollway.errors import AuthenticationFailed
from tollway.mcp.admin import mcp_routes

if TYPE_CHECKING:
    from tollway.services import Services


def build_admin(services: Services) -> AdminGuard:
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
        responses=described(401, 413, 422),
    )

    install_handlers(app)
    # Every status each route really answers, in the one error shape (admin/errors.py).
    app.include_router(entity_routes(services), responses=described(400, 404))
    app.include_router(budget_routes(services), responses=described(404))
    app.include_router(provider_routes(services))
    app.include_router(log_routes(services), responses=described(404))
    app.include_router(pricing_routes(services), responses=described(404))
    app.include_router(dashboard_routes(services), responses=described(400, 404))
    app.include_router(mcp_routes(services), responses=described(400, 404))
    app.include_router(routing_routes(services), responses=described(404))
    app.include_router(audit_routes(services), responses=described(404))
    return AdminGuard(app, lambda: services.admin_token)
