"""The provider catalog and registry: every type's defaults, and what each builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tollway.config import Config, parse_config
from tollway.providers.anthropic import AnthropicProvider, FoundryProvider
from tollway.providers.base import (
    ANTHROPIC,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    KeyChoice,
    UpstreamRequest,
)
from tollway.providers.catalog import PROVIDER_TYPES, SPECS
from tollway.providers.openai import OpenAIProvider
from tollway.providers.registry import default_registry
from tollway.services import build_providers
from upstream_mock import MockUpstream

PRESETS = {
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "mistral": ("https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "deepseek": ("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "xai": ("https://api.x.ai/v1", "XAI_API_KEY"),
    "together": ("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "fireworks": ("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    "cerebras": ("https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    "ollama": ("http://localhost:11434/v1", None),
    "vllm": ("http://localhost:8000/v1", "VLLM_API_KEY"),
}


def test_every_catalog_family_has_a_builder() -> None:
    assert set(default_registry().families()) == {s.family for s in SPECS.values()}
    assert set(PROVIDER_TYPES) == {"anthropic", "openai", "bedrock", "vertex", "azure_openai",
                                   "azure_foundry", "gemini", "simulated", *PRESETS}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(PRESETS))
def test_presets_defaults(kind: str) -> None:
    spec = SPECS[kind]
    assert (spec.base_url, spec.key_env) == PRESETS[kind]
    assert spec.family == "openai" and OPENAI_CHAT in spec.dialects
    built = build_providers(Config.model_validate({"providers": {kind: {}}}))[kind]
    assert isinstance(built, OpenAIProvider) and built.base_url == PRESETS[kind][0]
    assert built.dialects == spec.dialects


def test_cloud_defaults_follow_the_region() -> None:
    assert SPECS["bedrock"].base_url_for("eu-central-1") == (
        "https://bedrock-runtime.eu-central-1.amazonaws.com"
    )
    assert SPECS["vertex"].base_url_for("us-east5") == "https://us-east5-aiplatform.googleapis.com"
    assert SPECS["vertex"].base_url_for(None) == "https://aiplatform.googleapis.com"
    assert SPECS["bedrock"].key_env == "AWS_BEARER_TOKEN_BEDROCK"
    assert SPECS["bedrock"].dialects == SPECS["vertex"].dialects == frozenset({ANTHROPIC})


async def test_a_preset_sends_bearer_to_its_base_url() -> None:
    with MockUpstream() as mock:
        cfg = Config.model_validate(
            {
                "providers": {
                    "groq": {
                        "base_url": mock.base_url + "/openai/v1",
                        "keys": [{"value": "gsk_test"}],
                    }
                }
            }
        )
        p = build_providers(cfg)["groq"]
        body = b'{"model":"llama-3.3-70b-versatile","messages":[]}'
        req = UpstreamRequest(dialect=OPENAI_CHAT, method="POST", path="/v1/chat/completions",
                              query=b"", headers=[], body=body, stream=False,
                              model="llama-3.3-70b-versatile")  # fmt: skip
        resp = await p.send(req, p.keys[0])
        assert resp.status == 200
        resp.close()
        await p.close()
        (seen,) = mock.requests
        assert seen.path == "/openai/v1/chat/completions"
        assert seen.header("authorization") == "Bearer gsk_test"


def test_keyless_local_servers_get_a_blank_key() -> None:
    built = build_providers(Config.model_validate({"providers": {"ollama": {}}}))["ollama"]
    assert built.keys == [KeyChoice("none", "")]
    assert OPENAI_RESPONSES not in built.dialects


def test_cloud_configs_and_their_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_AKID", "AKIDEXAMPLE")
    monkeypatch.setenv("TW_SECRET", "s3cr3t")
    sa = tmp_path / "sa.json"
    sa.write_text(json.dumps({"type": "service_account"}))
    cfg = parse_config(
        "providers:\n"
        "  bedrock:\n    region: eu-west-1\n    inference_profile: eu\n"
        "    keys: [{name: aws, value: env.TW_SECRET, access_key_id: env.TW_AKID}]\n"
        "  vertex:\n    project: proj-1\n    region: us-east5\n"
        f"    credentials_file: {sa}\n"
        "  foundry:\n    type: azure_foundry\n"
        "    base_url: https://res.services.ai.azure.com/anthropic\n    keys: [{value: k}]\n"
        "  anthropic:\n    drop_betas: [fast-mode-2026-02-01]\n    keys: [{value: sk-ant-1}]\n"
    )
    built = build_providers(cfg)
    bedrock = built["bedrock"]
    assert bedrock.base_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"  # type: ignore[attr-defined]
    assert bedrock._aws[bedrock.keys[0]].access_key_id == "AKIDEXAMPLE"  # type: ignore[attr-defined]
    assert built["vertex"].keys[0].name == "credentials_file"
    assert isinstance(built["foundry"], FoundryProvider)
    assert isinstance(built["anthropic"], AnthropicProvider)
    assert not built["anthropic"].policy.accepts("fast-mode-2026-02-01")
    with pytest.raises(Exception, match="needs a project"):
        parse_config("providers:\n  vertex: {region: us-east5}\n")
    with pytest.raises(Exception, match="needs a base_url"):
        parse_config("providers:\n  azure_openai: {keys: [{value: k}]}\n")
    with pytest.raises(Exception, match="is not an anthropic-beta value"):
        parse_config("providers:\n  anthropic: {drop_betas: ['Bad Beta']}\n")
