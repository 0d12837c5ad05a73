"""Model limits: the context window and the most output tokens one response can carry.

Used only to bound a request's worst case, so every figure errs high: where a beta header
raises a limit (Sonnet 4.x's 1M context, Claude 3.7's 128k output), the raised figure is
the one kept. A model not in the table falls back to its family, then to ``UNKNOWN``
(an assumption, stated below). genai-prices carries context windows but no output maxima,
so this small table is Tollway's own, with its sources:

- Anthropic: https://docs.anthropic.com/en/docs/about-claude/models/overview
  (and /build-with-claude/context-windows for the 1M beta), checked 2026-12-01
- OpenAI: https://platform.openai.com/docs/models (each model's page), checked 2026-12-01
- Google: https://ai.google.dev/gemini-api/docs/models, checked 2026-12-01

    limits = model_limits("anthropic/claude-sonnet-4-5-20250929")
    limits.context_window, limits.max_output   # 1_000_000, 64_000
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_DATE_SUFFIX: Final = re.compile(r"[-@](?:\d{8}|\d{4}-\d{2}-\d{2})\Z", re.ASCII)


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """Tokens: the most prompt one sampling can read, and the most output it can write."""

    context_window: int
    max_output: int
    entry: str  # the table entry that matched, or "unknown"


# (name or family prefix ending in "*", context window, max output). Exact names first;
# then the longest matching prefix wins.
_TABLE: Final[tuple[tuple[str, int, int], ...]] = (
    ("claude-opus-4-8", 1_000_000, 128_000),
    ("claude-opus-4-7", 1_000_000, 128_000),
    ("claude-opus-4-6", 1_000_000, 128_000),
    ("claude-sonnet-4-6", 1_000_000, 128_000),
    ("claude-opus-4-5", 200_000, 64_000),
    ("claude-opus-4-1", 200_000, 32_000),
    ("claude-opus-4", 200_000, 32_000),
    ("claude-sonnet-4-5", 1_000_000, 64_000),  # 1M with the context-1m beta
    ("claude-sonnet-4", 1_000_000, 64_000),  # 1M with the context-1m beta
    ("claude-haiku-4-5", 200_000, 64_000),
    ("claude-3-7-sonnet", 200_000, 128_000),  # 128k with the output-128k beta
    ("claude-3-5-haiku", 200_000, 8_192),
    ("claude-3-haiku", 200_000, 4_096),
    ("claude-*", 1_000_000, 128_000),  # unpublished Claude ids: the family's largest
    ("gpt-5*", 400_000, 128_000),  # gpt-5, -mini, -nano, -codex, 5.1, 5.2 ...
    ("gpt-4.1*", 1_047_576, 32_768),
    ("gpt-4o-2024-05-13", 128_000, 4_096),
    ("gpt-4o*", 128_000, 16_384),
    ("o1*", 200_000, 100_000),
    ("o3*", 200_000, 100_000),
    ("o4*", 200_000, 100_000),
    ("codex-mini*", 200_000, 100_000),
    ("gemini-*", 1_048_576, 65_536),
)

UNKNOWN: Final = ModelLimits(2_000_000, 2_000_000, "unknown")
"""Assumption for a model the table does not know: the largest context window of any
current model (2M tokens), and output up to the whole of it."""


def model_limits(model: str) -> ModelLimits:
    """The limits of ``model`` (a ``provider/`` prefix and a release date are ignored)."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    names = [name]
    match = _DATE_SUFFIX.search(name)
    if match is not None:
        names.append(name[: match.start()])
    for candidate in names:
        for entry, context, output in _TABLE:
            if entry == candidate:
                return ModelLimits(context, output, entry)
    best: tuple[str, int, int] | None = None
    for entry, context, output in _TABLE:
        if entry.endswith("*") and name.startswith(entry[:-1]):
            if best is None or len(entry) > len(best[0]):
                best = (entry, context, output)
    if best is None:
        return UNKNOWN
    return ModelLimits(best[1], best[2], best[0])
