"""schemathesis over ``/api/openapi.json`` against the real gateway (``tollway serve`` on
loopback): no 5xx, every status code and content type the API answers is declared, and
every answer matches its declared schema. Bounded for ``make test``: derandomised
(fixed seed), at most ``EXAMPLES`` cases per operation, a few hundred in all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import ADMIN_TOKEN, GatewayServer, start_gateway
from tollway.admin.api import build_admin
from tollway.config import parse_config
from tollway.services import Services
from tollway.storage import open_store
from upstream_mock import MockUpstream

EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    mock = MockUpstream().start()
    server = start_gateway(mock, Path(tmp_path_factory.mktemp("schemathesis")))
    try:
        yield server
    finally:
        server.stop()
        mock.stop()


def _document() -> dict[str, Any]:
    """The document the gateway serves, built from the same code without a server (the
    schema must exist when tests are collected; the test below checks they are equal)."""
    services = Services(parse_config("providers: {simulated: {}}"), open_store(":memory:"))
    doc: dict[str, Any] = build_admin(services).app.openapi()
    return doc


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_served_document_is_the_one_fuzzed(admin_server: GatewayServer) -> None:
    r = httpx.get(f"{admin_server.base_url}/api/openapi.json", timeout=10)
    assert r.status_code == 200 and r.json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_admin_api_matches_its_openapi_document(case: Any, admin_server: GatewayServer) -> None:
    case.call_and_validate(
        base_url=admin_server.base_url,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        checks=CHECKS,
        timeout=30,
    )
