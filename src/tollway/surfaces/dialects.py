"""Each dialect's surface, by dialect name: how it renders errors and ends a stream."""

from __future__ import annotations

from tollway.providers.base import ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES
from tollway.surfaces.anthropic import AnthropicSurface
from tollway.surfaces.base import Surface
from tollway.surfaces.gemini import GEMINI_SURFACE
from tollway.surfaces.openai import OpenAIChatSurface, OpenAIResponsesSurface

ANTHROPIC_SURFACE = AnthropicSurface()
CHAT_SURFACE = OpenAIChatSurface()
RESPONSES_SURFACE = OpenAIResponsesSurface()
SURFACES: dict[str, Surface] = {
    ANTHROPIC: ANTHROPIC_SURFACE,
    OPENAI_CHAT: CHAT_SURFACE,
    OPENAI_RESPONSES: RESPONSES_SURFACE,
    GEMINI: GEMINI_SURFACE,
}


def surface_for(dialect: str) -> Surface:
    return SURFACES[dialect]
