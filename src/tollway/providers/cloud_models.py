"""Model names on the clouds, both ways (no SDK imports: the surfaces use these too).

bedrock_id("claude-sonnet-4-5-20250929", {}, "us")
    -> "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
from_bedrock("us.anthropic.claude-opus-4-6-v1") -> "claude-opus-4-6"
vertex_id("claude-sonnet-4-5-20250929", {}) -> "claude-sonnet-4-5@20250929"
"""

from __future__ import annotations

import re

_DATED = re.compile(r"-(\d{8})$")
_VERSION = re.compile(r"-v\d+(:\d+)?$")
PROFILES = ("us.", "eu.", "apac.", "global.", "au.", "jp.", "us-gov.", "ca.")


def bedrock_id(model: str, model_map: dict[str, str], profile: str | None) -> str:
    """An Anthropic model name -> its Bedrock id; ids given as such pass unchanged.

    ``claude-sonnet-4-5-20250929`` -> ``anthropic.claude-sonnet-4-5-20250929-v1:0``,
    ``claude-opus-4-6`` -> ``anthropic.claude-opus-4-6-v1``, then the inference profile
    prefix (``us.``) when configured.
    """
    found = model_map.get(model)
    if found is not None:
        return found
    if model.startswith(("anthropic.", "arn:")) or model.startswith(PROFILES):
        return model
    bare = f"anthropic.{model}-v1:0" if _DATED.search(model) else f"anthropic.{model}-v1"
    return f"{profile}.{bare}" if profile else bare


def from_bedrock(bedrock_model: str) -> str:
    """A Bedrock model id or inference profile -> the Anthropic model name it serves."""
    name = bedrock_model.rsplit("/", 1)[-1]  # an inference-profile ARN ends in its id
    for prefix in PROFILES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return _VERSION.sub("", name.removeprefix("anthropic."))


def vertex_id(model: str, model_map: dict[str, str]) -> str:
    """``claude-sonnet-4-5-20250929`` -> ``claude-sonnet-4-5@20250929`` (Vertex's names)."""
    found = model_map.get(model)
    if found is not None:
        return found
    if "@" in model:
        return model
    return _DATED.sub(r"@\1", model)


def from_vertex(vertex_model: str) -> str:
    """``claude-sonnet-4-5@20250929`` -> ``claude-sonnet-4-5-20250929``."""
    return vertex_model.replace("@", "-", 1)
