"""Translation between dialects, as a pair (client dialect, upstream dialect).

A same-dialect exchange has no translator and is never re-serialised. Otherwise the
router asks ``pair(client, upstream)`` for one: ``request`` turns the client's body into
the upstream's (for the model the upstream should see), ``response`` and ``stream`` turn
the upstream's answer back, ``error`` renders an upstream error in the client's dialect
with the upstream's words kept. Usage is always metered on the upstream's bytes, before
they are translated. Every field a target cannot take is dropped for that target only
and named in ``dropped`` (recorded with the request).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tollway.sse import SSEEvent


class StreamTranslator(Protocol):
    def feed(self, event: SSEEvent) -> list[bytes]:
        """One upstream event in; the client-dialect bytes to send for it (maybe none)."""
        ...

    def close(self, complete: bool) -> list[bytes]:
        """The upstream stream ended (``complete``: after its final event); what to send."""
        ...


class Translator(Protocol):
    client: str
    upstream: str
    dropped: list[str]  # fields (JSON paths) the upstream could not take, for the record

    def request(self, body: bytes, model: str, stream: bool) -> bytes: ...

    def upstream_path(self, kind: str, model: str, stream: bool) -> str:
        """The upstream dialect's path for a ``generate`` or ``count_tokens`` call."""
        ...

    def response(self, body: bytes) -> bytes: ...

    def error(self, status: int, body: bytes) -> bytes: ...

    def content_type(self, stream: bool) -> bytes: ...

    def stream(self) -> StreamTranslator: ...


Factory = Callable[[], Translator]
_PAIRS: dict[tuple[str, str], Factory] = {}


def register(client: str, upstream: str, factory: Factory) -> None:
    _PAIRS[(client, upstream)] = factory


def pair(client: str, upstream: str) -> Translator | None:
    """A fresh translator for one request, or None when the pair is not supported."""
    factory = _PAIRS.get((client, upstream))
    return factory() if factory is not None else None


# Client headers that belong to one dialect's API; not sent to another dialect's upstream.
_DIALECT_HEADERS = {
    "anthropic": ("anthropic-",),
    "openai_chat": ("openai-",),
    "openai_responses": ("openai-",),
    "gemini": ("x-goog-",),
}
# What an upstream of that dialect needs when the client did not speak it.
_REQUIRED_HEADERS = {"anthropic": [("anthropic-version", "2023-06-01")]}


def upstream_headers(
    translator: Translator, headers: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The client's forwarded headers, less its own dialect's, plus the upstream's needs."""
    own = _DIALECT_HEADERS.get(translator.client, ())
    kept = [(k, v) for k, v in headers if not k.lower().startswith(own)]
    return kept + _REQUIRED_HEADERS.get(translator.upstream, [])


def supported(client: str, upstream: str) -> bool:
    return client == upstream or (client, upstream) in _PAIRS


def _builtin() -> None:
    from tollway.translate.pairs import register_all

    register_all()


_builtin()
