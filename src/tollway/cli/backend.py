"""One interface for the CLI's state, over the admin API or the database directly.

Both answer with the admin API's JSON documents, so a command prints the same thing
whichever it reached. ``open_backend(target)`` picks one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from tollway.cli.context import Target
from tollway.errors import ConfigError, GatewayError, InvalidRequest, NotFound
from tollway.storage.queries import LogFilter

PATHS = {"virtual_key": "virtual-keys", "team": "teams", "customer": "customers"}
API_TIMEOUT_S = 30.0
Doc = dict[str, Any]


class Backend(Protocol):
    async def create(self, kind: str, fields: Doc) -> Doc: ...
    async def list_all(self, kind: str) -> list[Doc]: ...
    async def get(self, kind: str, ref: str) -> Doc: ...
    async def update(self, kind: str, ref: str, fields: Doc) -> Doc: ...
    async def delete(self, kind: str, ref: str) -> None: ...
    async def revoke(self, ref: str) -> Doc: ...
    async def rotate(self, ref: str) -> Doc: ...
    async def key_status(self, ref: str, model: str, body_bytes: int) -> Doc: ...
    async def budgets(self) -> list[Doc]: ...
    async def reset(self, budget_id: str, actor: str) -> Doc: ...
    async def top_up(self, budget_id: str, amount: Decimal, actor: str) -> Doc: ...
    async def usage(self, group_by: str, where: LogFilter) -> Doc: ...
    async def logs(self, where: LogFilter, limit: int) -> list[Doc]: ...
    async def sessions(self, key: str | None, limit: int) -> list[Doc]: ...
    async def session(self, session_id: str) -> Doc: ...
    async def audit_verify(self) -> Doc: ...
    async def audit_entries(self, since: int, limit: int) -> list[Doc]: ...
    async def audit_public_key(self) -> Doc: ...
    async def close(self) -> None: ...


def _params(where: LogFilter) -> dict[str, str]:
    from tollway.storage.queries import iso

    out = {"key": where.key} if where.key is not None else {}
    if where.since is not None:
        out["from"] = iso(where.since)
    if where.until is not None:
        out["to"] = iso(where.until)
    return out


def _message(resp: httpx.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if doc.get("detail"):
            return str(doc["detail"])
    return resp.text[:300]


class ApiBackend:
    """The admin API of a running gateway."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self._client = httpx.AsyncClient(
            base_url=url, timeout=API_TIMEOUT_S, headers={"Authorization": f"Bearer {token}"}
        )

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = await self._client.request(method, "/api" + path, **kw)
        except httpx.HTTPError as exc:
            raise ConfigError(f"cannot reach the gateway at {self.url}: {exc}") from None
        if resp.status_code == 401:
            raise ConfigError(f"the gateway at {self.url} refused the admin token")
        if resp.status_code == 404:
            raise NotFound(_message(resp))
        if resp.status_code >= 400:
            error = InvalidRequest if resp.status_code < 500 else GatewayError
            raise error(_message(resp))
        return resp.json() if resp.content else None

    @staticmethod
    def _ref(kind: str, ref: str) -> str:
        return f"/{PATHS[kind]}/{quote(ref, safe='')}"

    async def create(self, kind: str, fields: Doc) -> Doc:
        doc: Doc = await self._call("POST", f"/{PATHS[kind]}", json=fields)
        return doc

    async def list_all(self, kind: str) -> list[Doc]:
        docs: list[Doc] = await self._call("GET", f"/{PATHS[kind]}")
        return docs

    async def get(self, kind: str, ref: str) -> Doc:
        doc: Doc = await self._call("GET", self._ref(kind, ref))
        return doc

    async def update(self, kind: str, ref: str, fields: Doc) -> Doc:
        doc: Doc = await self._call("PATCH", self._ref(kind, ref), json=fields)
        return doc

    async def delete(self, kind: str, ref: str) -> None:
        await self._call("DELETE", self._ref(kind, ref))

    async def revoke(self, ref: str) -> Doc:
        doc: Doc = await self._call("DELETE", self._ref("virtual_key", ref))
        return doc

    async def rotate(self, ref: str) -> Doc:
        doc: Doc = await self._call("POST", self._ref("virtual_key", ref) + "/rotate")
        return doc

    async def key_status(self, ref: str, model: str, body_bytes: int) -> Doc:
        params = {"model": model, "body_bytes": str(body_bytes)}
        doc: Doc = await self._call("GET", self._ref("virtual_key", ref) + "/status",
                                    params=params)  # fmt: skip
        return doc

    async def budgets(self) -> list[Doc]:
        docs: list[Doc] = await self._call("GET", "/budgets")
        return docs

    async def reset(self, budget_id: str, actor: str) -> Doc:
        doc: Doc = await self._call("POST", f"/budgets/{budget_id}/reset", json={"actor": actor})
        return doc

    async def top_up(self, budget_id: str, amount: Decimal, actor: str) -> Doc:
        body = {"amount": str(amount), "actor": actor}
        doc: Doc = await self._call("POST", f"/budgets/{budget_id}/top-up", json=body)
        return doc

    async def usage(self, group_by: str, where: LogFilter) -> Doc:
        params = {"group_by": group_by, **_params(where)}
        doc: Doc = await self._call("GET", "/usage", params=params)
        return doc

    async def logs(self, where: LogFilter, limit: int) -> list[Doc]:
        params: dict[str, str | int] = {"limit": limit, **_params(where)}
        page: Doc = await self._call("GET", "/logs", params=params)
        docs: list[Doc] = page["data"]
        return docs

    async def sessions(self, key: str | None, limit: int) -> list[Doc]:
        params: dict[str, str | int] = {"limit": limit, **({"key": key} if key else {})}
        docs: list[Doc] = await self._call("GET", "/sessions", params=params)
        return docs

    async def session(self, session_id: str) -> Doc:
        doc: Doc = await self._call("GET", f"/sessions/{quote(session_id, safe='')}")
        return doc

    async def audit_verify(self) -> Doc:
        doc: Doc = await self._call("GET", "/audit/verify")
        return doc

    async def audit_entries(self, since: int, limit: int) -> list[Doc]:
        docs: list[Doc] = await self._call("GET", "/audit/entries",
                                           params={"since": since, "limit": limit})  # fmt: skip
        return docs

    async def audit_public_key(self) -> Doc:
        doc: Doc = await self._call("GET", "/audit/public-key")
        return doc

    async def close(self) -> None:
        await self._client.aclose()


async def open_backend(target: Target) -> Backend:
    if target.url:
        assert target.token is not None
        return ApiBackend(target.url, target.token)
    from tollway.cli.backend_db import DbBackend

    assert target.db is not None
    return await DbBackend.open(target.db)
