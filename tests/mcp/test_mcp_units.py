"""The pure parts of the MCP gateway: names, access resolution, the catalog, back-off,
the config section and the printed Claude Code setup."""

from __future__ import annotations

import hashlib
import json
import shlex
from datetime import UTC, datetime

import mcp_types as types
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tollway.cli.main import main
from tollway.config import parse_config
from tollway.governance.entities import CustomerRecord, KeyRecord, TeamRecord
from tollway.mcp.access import resolve
from tollway.mcp.catalog import Listing, visible
from tollway.mcp.names import budget, exposed_name
from tollway.mcp.settings import AccessConfig, MCPConfig, MCPServerConfig
from tollway.mcp.upstream import backoff

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _key(name: str = "alice", team: str | None = None, customer: str | None = None) -> KeyRecord:
    return KeyRecord(id=f"vk_{name}", name=name, key_hash="h", key_hint="tw-...", team_id=team,
                     customer_id=customer, created_at=NOW, updated_at=NOW)  # fmt: skip


TEAM = TeamRecord(id="t_1", name="platform", customer_id="c_1", created_at=NOW, updated_at=NOW)
CUSTOMER = CustomerRecord(id="c_1", name="acme", created_at=NOW, updated_at=NOW)


def _access(**rules: dict[str, dict[str, list[str]]]) -> AccessConfig:
    return AccessConfig.model_validate(rules)


def test_names_fit_claude_codes_limit() -> None:
    assert budget("tollway") == 50 and budget("tollway-readonly") == 41
    assert exposed_name("files", "read", 50) == "files__read"
    dotted = exposed_name("files", "read.file", 50)
    digest = hashlib.sha256(b"files__read.file").hexdigest()[:8]
    assert dotted == f"files__read_file_{digest}"  # renamed, so never equal to read_file's
    long = exposed_name("files", "x" * 80, 50)
    assert len(long) == 50 and long.startswith("files__xxx")


@given(st.text(min_size=1, max_size=120), st.integers(min_value=10, max_value=64))
def test_names_are_valid_short_and_stable(tool: str, limit: int) -> None:
    name = exposed_name("srv", tool, limit)
    assert len(name) <= limit and name == exposed_name("srv", tool, limit)
    assert all(c.isascii() and (c.isalnum() or c in "_-") for c in name)


def test_deny_by_default_and_deny_wins() -> None:
    assert not resolve(_access(), {}, _key(), None, None).permits("files__read")
    access = _access(keys={"alice": {"allow": ["files__*"], "deny": ["files__delete*"]}})
    policy = resolve(access, {}, _key(), None, None)
    assert policy.permits("files__read") and not policy.permits("files__delete_all")
    assert not policy.permits("git__log")
    assert not resolve(access, {}, _key("bob"), None, None).permits("files__read")


def test_team_customer_and_groups_combine() -> None:
    groups = {"readonly": ["files__read*", "git__log"]}
    access = _access(teams={"platform": {"groups": ["readonly"]}},
                     customers={"acme": {"deny": ["git__*"]}},
                     keys={"alice": {"allow": ["db__query"]}})  # fmt: skip
    policy = resolve(access, groups, _key(team="t_1"), TEAM, CUSTOMER)
    assert policy.permits("files__read_file") and policy.permits("db__query")
    assert not policy.permits("git__log")  # the customer's deny wins over the team's group
    assert not policy.permits("files__write")


def test_unresolvable_permissions_fail_closed() -> None:
    access = _access(keys={"alice": {"allow": ["*"], "groups": ["gone"]}})
    policy = resolve(access, {}, _key(), None, None)
    assert policy.problem and "gone" in policy.problem and not policy.permits("files__read")
    everything = _access(keys={"alice": {"allow": ["*"]}})
    orphan = resolve(everything, {}, _key(team="t_missing"), None, None)
    assert orphan.problem and not orphan.permits("files__read")
    lost = resolve(everything, {}, _key(customer="c_missing"), None, None)
    assert lost.problem and not lost.permits("files__read")


def _tool(name: str) -> types.Tool:
    return types.Tool(name=name, description=f"does {name}", input_schema={"type": "object"})


def test_the_catalog_is_sorted_filtered_and_marks_dead_upstreams() -> None:
    access = _access(keys={"alice": {"allow": ["*"], "deny": ["b__drop"]}})
    policy = resolve(access, {}, _key(), None, None)
    listings = [Listing("b", [_tool("zeta"), _tool("drop"), _tool("alpha")], up=False,
                        why_down="ConnectError: refused"),
                Listing("a", [_tool("m")], up=True)]  # fmt: skip
    tools = visible(listings, policy, None, 50)
    assert [t.name for t in tools] == ["a__m", "b__alpha", "b__zeta"]
    assert tools[0].definition.description == "does m" and tools[0].up
    assert tools[1].definition.description == (
        "[unavailable: MCP server b is down (ConnectError: refused); the gateway is "
        "reconnecting] does alpha"
    )
    assert [t.name for t in visible(listings, policy, ("b__*",), 50)] == ["b__alpha", "b__zeta"]


def test_backoff_doubles_to_thirty_seconds() -> None:
    assert [backoff(n, lambda: 1.0) for n in (1, 2, 3, 4, 7, 20)] == [
        0.5, 1.0, 2.0, 4.0, 30.0, 30.0]  # fmt: skip
    assert backoff(3, lambda: 0.0) == 1.0  # jitter takes off at most half


def test_config_section_is_validated() -> None:
    config = parse_config("""
mcp:
  servers:
    files: {url: "http://127.0.0.1:9/mcp", price_per_call: "0.002"}
    git: {command: git-mcp, args: [--repo, .]}
  groups: {readonly: ["files__read*"]}
  access: {keys: {alice: {groups: [readonly]}}}
  rate_limit: {calls: 60, per: 1m}
""")
    assert config.mcp.servers["files"].transport == "http"
    assert config.mcp.servers["git"].transport == "stdio"
    assert str(config.mcp.servers["files"].price_per_call) == "0.002"
    with pytest.raises(ValidationError, match="unknown group"):
        MCPConfig.model_validate({"access": {"teams": {"t": {"groups": ["nope"]}}}})
    with pytest.raises(ValidationError, match="`url`"):
        MCPServerConfig.model_validate({"url": "http://x/mcp", "command": "y"})
    with pytest.raises(ValidationError, match="apply to `url` servers"):
        MCPServerConfig.model_validate({"command": "y", "bearer": "t"})
    with pytest.raises(ValidationError, match="MCP_UNSET_TOKEN is not set"):
        MCPServerConfig.model_validate({"url": "http://x/mcp", "bearer": "env.MCP_UNSET_TOKEN"})
    with pytest.raises(ValidationError, match="lower-case"):
        MCPConfig.model_validate({"servers": {"Files": {"command": "x"}}})


def test_claude_code_mcp_prints_the_command_and_the_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["claude-code", "mcp", "--key", "tw-abc", "--url", "http://gw:9000/"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert shlex.split(lines[1]) == [
        "claude", "mcp", "add", "--transport", "http", "tollway", "http://gw:9000/mcp",
        "--header", "Authorization: Bearer tw-abc"]  # fmt: skip
    start, end = out.index("{"), out.rindex("}") + 1
    assert json.loads(out[start:end]) == {"mcpServers": {"tollway": {
        "type": "http", "url": "http://gw:9000/mcp",
        "headers": {"Authorization": "Bearer ${TOLLWAY_KEY}"}}}}  # fmt: skip
    assert lines[-1] == "export TOLLWAY_KEY=tw-abc"
    assert main(["claude-code", "mcp", "--key", "tw-abc", "--group", "readonly"]) == 0
    grouped = capsys.readouterr().out.splitlines()[1]
    assert "tollway-readonly http://127.0.0.1:8080/mcp/readonly" in grouped
