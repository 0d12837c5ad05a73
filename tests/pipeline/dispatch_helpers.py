"""Shared by the dispatch tests: two Anthropic-type providers on one loopback mock, told
apart by the provider key each request carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from upstream_mock import MockUpstream, RecordedRequest, Reply

P1, P2, B1 = "sk-primary-one", "sk-primary-two", "sk-backup-one"
MSG = {
    "model": "claude-haiku-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}


def config(mock: MockUpstream, routing: dict[str, Any] | None = None, **primary: Any) -> str:
    doc: dict[str, Any] = {
        "providers": {
            "primary": {"type": "anthropic", "base_url": mock.base_url,
                        "keys": [{"name": "one", "value": P1}, {"name": "two", "value": P2}],
                        **primary},
            "backup": {"type": "anthropic", "base_url": mock.base_url,
                       "keys": [{"name": "one", "value": B1}]},
        },
        "routing": routing or {"fallbacks": {"primary": ["backup"]}},
    }  # fmt: skip
    return yaml.safe_dump(doc, sort_keys=False)


def by_key(replies: dict[str, Callable[[RecordedRequest], Reply | None]]) -> Callable[
    [RecordedRequest], Reply | None
]:  # fmt: skip
    """A responder that answers by the request's provider key (default reply otherwise)."""

    def respond(req: RecordedRequest) -> Reply | None:
        make = replies.get(req.header("x-api-key") or "")
        return make(req) if make is not None else None

    return respond


def sent_with(mock: MockUpstream, secret: str) -> list[RecordedRequest]:
    return [r for r in mock.calls("/v1/messages", "POST") if r.header("x-api-key") == secret]
