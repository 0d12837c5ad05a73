from __future__ import annotations

import pytest

from tollway.config import load_config, parse_config, with_env_providers
from tollway.errors import ConfigError


def test_error_names_field_and_line() -> None:
    text = (
        "providers:\n  anthropic:\n    keys:\n"
        "      - name: a\n        value: x\n        weight: -1\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text, "gw.yaml")
    assert "gw.yaml:line 6: providers.anthropic.keys.0.weight" in str(err.value)


def test_bad_duration_is_explained() -> None:
    text = "virtual_keys:\n  - name: a\n    budgets: [{max_limit: 5, reset_duration: 1x}]\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert "line 3" in str(err.value) and "is not a duration" in str(err.value)


def test_unknown_provider_needs_type() -> None:
    with pytest.raises(ConfigError, match="needs a type"):
        parse_config("providers:\n  mylab: {base_url: 'http://127.0.0.1:1/v1'}\n")
    cfg = parse_config("providers:\n  mylab: {type: openai, base_url: 'http://127.0.0.1:1/v1'}\n")
    assert cfg.provider_type("mylab") == "openai"
    # A preset's name is its type.
    assert parse_config("providers:\n  groq: {}\n").provider_type("groq") == "groq"
    with pytest.raises(ConfigError, match="unknown provider type 'grok'"):
        parse_config("providers:\n  x: {type: grok}\n")


def test_env_secret_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "providers:\n  anthropic:\n    keys: [{value: env.TW_TEST_MISSING}]\n"
    monkeypatch.delenv("TW_TEST_MISSING", raising=False)
    with pytest.raises(ConfigError, match="TW_TEST_MISSING is not set"):
        parse_config(text)
    monkeypatch.setenv("TW_TEST_MISSING", "sk-1")
    assert parse_config(text).providers["anthropic"].keys[0].secret() == "sk-1"


def test_json_is_accepted() -> None:
    cfg = parse_config('{"providers": {"simulated": {}}, "logging": {"content": false}}')
    assert cfg.logging.content is False


def test_zero_config_is_simulated() -> None:
    cfg = with_env_providers(parse_config(""), {})
    assert list(cfg.providers) == ["simulated"]


def test_env_providers_are_picked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-a")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-o")
    cfg = load_config(None)
    assert sorted(cfg.providers) == ["anthropic", "openai"]
    assert cfg.providers["anthropic"].keys[0].secret() == "sk-a"


def test_missing_file_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config("/nonexistent/tollway.yaml", {})
