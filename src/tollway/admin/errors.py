"""The admin API's one error shape, and the guard every admin request passes first.

Every error under ``/api`` is JSON of one shape, whatever raised it::

    {"error": {"type": "invalid_request_error",
               "message": "budgets.0.max_limit: must not be negative, got '-1'",
               "fields": [{"field": "budgets.0.max_limit", "message": "..."}]}}

``type`` is the error tree's kind (``authentication_error``, ``not_found_error``, ...);
``fields`` is present on 422s only, one entry per bad field (body fields by their path,
query and path parameters prefixed ``query.`` / ``path.``).

The guard checks the admin token, bounds the body and its JSON nesting before FastAPI
parses anything, so a deep or huge body is a 4xx and never reaches the recursion limit.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from tollway.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidField,
    InvalidRequest,
    PayloadTooLarge,
)
from tollway.pipeline.asgi import Receive, Scope, Send

MAX_ADMIN_BODY = 1024 * 1024
MAX_DEPTH = 32
_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
}


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    type: str
    message: str
    fields: list[FieldProblem] | None = None


class AdminError(BaseModel):
    """Every admin API error: ``{"error": {"type", "message", "fields"?}}``."""

    error: ErrorDetail


def described(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all in the one shape."""
    texts = {400: "Invalid request", 401: "Missing or wrong admin token", 404: "Not found",
             413: "Body too large", 422: "Invalid field (see error.fields)"}  # fmt: skip
    return {s: {"model": AdminError, "description": texts.get(s, "Error")} for s in statuses}


def error_response(
    status: int, kind: str, message: str, fields: Sequence[FieldProblem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:  # fmt: skip
    detail = ErrorDetail(type=kind, message=message, fields=list(fields) if fields else None)
    doc = AdminError(error=detail).model_dump(exclude_none=True)
    return JSONResponse(doc, status_code=status, headers=dict(headers or {}))


def gateway_error(exc: GatewayError) -> JSONResponse:
    fields = [FieldProblem(field=exc.field, message=exc.problem)] if isinstance(
        exc, InvalidField) else None  # fmt: skip
    return error_response(exc.status, exc.anthropic_type, exc.message, fields, exc.headers)


def field_name(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def problems(errors: Sequence[Any]) -> list[FieldProblem]:
    out = []
    for err in errors:
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(FieldProblem(field=field_name(err.get("loc", ())), message=msg))
    return out


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway(_request: Request, exc: GatewayError) -> JSONResponse:
        return gateway_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        found = problems(exc.errors()) or [FieldProblem(field="body", message="invalid")]
        message = "; ".join(f"{p.field}: {p.message}" for p in found[:5])
        return error_response(422, "invalid_request_error", message, found)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        kind = _TYPES.get(exc.status_code, "api_error")
        return error_response(exc.status_code, kind, str(exc.detail), headers=exc.headers)


def json_depth(body: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in a JSON text, strings skipped; stops past the
    limit so that a hostile body costs one pass at most."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


class AdminGuard:
    """ASGI wrapper: the token is checked, the body read (bounded) and its nesting checked
    before the FastAPI app sees the request."""

    def __init__(self, app: FastAPI, token: Any) -> None:
        self.app = app
        self._token = token  # a callable: the token may be set after the app is built

    def authorised(self, scope: Scope) -> bool:
        token: str = self._token()
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
        scheme, _, secret = given.partition(b" ")
        return (
            bool(token)
            and scheme.lower() == b"bearer"
            and hmac.compare_digest(secret.strip(), token.encode())
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ("/api/openapi.json", "/api/docs"):
            await self.app(scope, receive, send)
            return
        try:
            if not self.authorised(scope):
                raise AuthenticationFailed(
                    "admin API: send Authorization: Bearer <admin token> (TOLLWAY_ADMIN_TOKEN, "
                    "or the token printed at first start and stored beside the database)"
                )
            body = await _read(receive)
        except GatewayError as exc:
            await gateway_error(exc)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("the client went away before sending its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_ADMIN_BODY:
            raise PayloadTooLarge(f"admin API bodies are at most {MAX_ADMIN_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if body:
        if json_depth(body) > MAX_DEPTH:
            raise InvalidField("body", f"JSON nested too deep (more than {MAX_DEPTH} levels)")
        try:
            json.loads(body)
        except ValueError as exc:  # UnicodeDecodeError included
            raise InvalidField("body", f"not valid JSON: {exc}") from None
    return body
