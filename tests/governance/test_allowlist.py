from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway.governance.allowlist import ModelAllowlist, model_allowed

names = st.text(alphabet="abcxyz-.:/0123456789AB", min_size=1, max_size=20)


@pytest.mark.parametrize(
    ("model", "allowed", "expected"),
    [
        ("claude-haiku-4-5", ["claude-haiku-4-5"], True),
        ("claude-haiku-4-5", ["claude-haiku-4"], False),
        ("anything/at-all", ["*"], True),
        ("claude-haiku-4-5", [], False),
        ("claude-haiku-4-5", ["claude-haiku-*"], True),
        ("claude-sonnet-4-5", ["claude-haiku-*"], False),
        ("Claude-haiku-4-5", ["claude-haiku-*"], False),  # globs are case-sensitive
        ("claude-haiku-4", ["claude-haiku-?"], True),
        ("gpt-4o-mini", ["regex:gpt-4o(-mini)?"], True),
        ("gpt-4o-mini-x", ["regex:gpt-4o(-mini)?"], False),  # a full match
        ("anthropic/claude-x", ["anthropic/claude-*"], True),
        ("openai/claude-x", ["anthropic/claude-*"], False),
        ("anthropic/claude-x", ["claude-*"], True),  # bare entry: the model part
        ("anthropic/claude-x", ["claude-x"], True),
        ("claude-x", ["anthropic/claude-x"], False),  # a qualified entry needs the provider
        ("anthropic/claude-x", ["regex:claude-.*"], True),
        ("anthropic/claude-x", ["regex:openai/.*"], False),
        ("/claude-x", ["claude-x"], False),  # no provider, no model part
        ("gpt-4o", ["claude-*", "regex:gpt-.*"], True),
    ],
)
def test_model_allowed(model: str, allowed: list[str], expected: bool) -> None:
    assert model_allowed(model, allowed) is expected


def test_invalid_regex_names_the_pattern() -> None:
    with pytest.raises(ValueError, match=r"regex:gpt-\(4"):
        ModelAllowlist(["claude-*", "regex:gpt-(4"])
    with pytest.raises(ValueError, match="empty"):
        ModelAllowlist([""])


def test_describe() -> None:
    assert ModelAllowlist(["claude-*", "*"]).describe() == "all models"
    assert ModelAllowlist([]).describe() == "no models"
    assert ModelAllowlist(["gpt-4o", "claude-haiku-*", "regex:o[0-9]+"]).describe() == (
        "only gpt-4o, names matching claude-haiku-*, names matching the regular expression o[0-9]+"
    )
    assert repr(ModelAllowlist(["a"])) == "ModelAllowlist(['a'])"


@given(names)
def test_star_allows_everything_and_empty_nothing(model: str) -> None:
    assert ModelAllowlist(["*"]).allows(model)
    assert not ModelAllowlist([]).allows(model)


@given(names, st.lists(names, max_size=4))
def test_an_exact_entry_allows_itself(model: str, others: list[str]) -> None:
    assert ModelAllowlist([*others, model]).allows(model)


@given(st.sampled_from(["anthropic", "openai"]), names.filter(lambda n: "/" not in n))
def test_bare_entries_allow_any_provider(provider: str, model: str) -> None:
    allowlist = ModelAllowlist([model])
    assert allowlist.allows(f"{provider}/{model}")
    assert not ModelAllowlist([f"{provider}/{model}"]).allows(model)


@given(names, st.text(alphabet="abc-*?/", min_size=1, max_size=8).filter(lambda g: "*" in g))
def test_globs_agree_with_fnmatchcase_on_whole_names(model: str, glob: str) -> None:
    if glob == "*":
        return
    expected = fnmatch.fnmatchcase(model, glob)
    provider, slash, part = model.partition("/")
    if "/" not in glob and slash and provider:
        expected = expected or fnmatch.fnmatchcase(part, glob)
    assert ModelAllowlist([glob]).allows(model) is expected
