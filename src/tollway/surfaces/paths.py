"""Unknown paths that are really a misconfigured base URL, and the fix to show.

Claude Code appends ``/v1/messages`` to ``ANTHROPIC_BASE_URL``; OpenAI clients append
``/chat/completions`` or ``/responses`` to a base URL that should end in ``/v1``. A base
URL with one ``/v1`` too many (or too few) makes every call a 404, which Claude Code then
reports as a model problem; the 404's message says what to change instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.providers.base import ANTHROPIC

_KNOWN_TAILS = ("/v1/messages", "/v1/messages/count_tokens", "/v1/chat/completions",
                "/v1/responses", "/v1/models")  # fmt: skip
_PREFIXES = ("/anthropic", "/openai")


@dataclass(frozen=True, slots=True)
class BaseUrlHint:
    kind: str  # a bounded metric label: doubled_v1, doubled_prefix, missing_v1, wrong_prefix
    fix: str


def _base_var(dialect: str) -> str:
    return "ANTHROPIC_BASE_URL" if dialect == ANTHROPIC else "your client's OpenAI base URL"


def misconfigured_base_url(path: str, dialect: str, host: str) -> BaseUrlHint | None:
    """What is wrong with the base URL that produced `path`, or None if nothing obvious."""
    for tail in _KNOWN_TAILS:
        if not path.endswith(tail) or path == tail:
            continue
        extra = path[: -len(tail)]
        fixed = _fixed_base(extra, dialect, host)
        if extra.endswith("/v1"):
            return BaseUrlHint(
                "doubled_v1",
                f"the base URL ends in {extra}, and the client adds /v1 itself: drop /v1 from "
                f"{_base_var(dialect)} (use {fixed})",
            )
        if extra in ("/anthropic/anthropic", "/openai/openai"):
            return BaseUrlHint(
                "doubled_prefix",
                f"{extra.split('/')[1]} appears twice: use {fixed} as the base URL",
            )
        if extra.rstrip("/") not in _PREFIXES:
            return BaseUrlHint(
                "wrong_prefix",
                f"Tollway serves {tail} at the root or under /anthropic or /openai, not under "
                f"{extra}: use {fixed} as the base URL",
            )
    for tail in ("/chat/completions", "/responses", "/models"):
        if path.endswith(tail) and not path.endswith("/v1" + tail):
            prefix = path[: -len(tail)]
            return BaseUrlHint(
                "missing_v1",
                f"OpenAI-style base URLs end in /v1: use http://{host}{prefix}/v1 "
                f"(the client then calls {prefix}/v1{tail})",
            )
    return None


def _fixed_base(extra: str, dialect: str, host: str) -> str:
    """The base URL that would have reached a real endpoint: Anthropic clients add
    ``/v1/...`` themselves, OpenAI clients only what follows ``/v1``."""
    keep = "/anthropic" if extra.startswith("/anthropic") else ""
    keep = "/openai" if extra.startswith("/openai") else keep
    return f"http://{host}{keep}{'' if dialect == ANTHROPIC else '/v1'}"
