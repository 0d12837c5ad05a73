"""Claude Code in Bedrock mode (``CLAUDE_CODE_USE_BEDROCK=1``) through Tollway's Bedrock
surface, served by a Bedrock provider: the loopback Bedrock fake checks every request's
SigV4 signature (recomputed with botocore), and the CLI reads Tollway's event stream."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients import installed
from cloud_fakes import AwsIdentity, BedrockFake
from conftest import GatewayServer, start_gateway
from upstream_mock import ANTHROPIC_USAGE, MockUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

RUN_TIMEOUT_S = 180
IDENT = AwsIdentity("AKIDTOLLWAYE2E", "e2e/SecretAccessKey+abc", "e2e-session-token")
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SMALL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture
def bedrock_fake() -> Iterator[BedrockFake]:
    with BedrockFake("us-east-1", [IDENT]) as fake:
        yield fake


def _config(fake: BedrockFake) -> dict[str, Any]:
    return {"providers": {"bedrock": {
        "base_url": fake.base_url, "region": "us-east-1", "inference_profile": "us",
        "keys": [{"name": "iam", "value": IDENT.secret_access_key,
                  "access_key_id": IDENT.access_key_id, "session_token": IDENT.session_token}],
    }}}  # fmt: skip


def _run(claude: Path, gateway: GatewayServer, vkey: str, home: Path) -> dict[str, Any]:
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
        "SHELL": "/bin/bash", "LANG": "C.UTF-8",
        "CLAUDE_CODE_USE_BEDROCK": "1", "ANTHROPIC_BEDROCK_BASE_URL": gateway.base_url,
        "AWS_BEARER_TOKEN_BEDROCK": vkey,  # the virtual key, as Bedrock's API key
        "AWS_REGION": "us-east-1", "ANTHROPIC_MODEL": MODEL,
        "ANTHROPIC_SMALL_FAST_MODEL": SMALL, "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
    }  # fmt: skip
    cmd = [str(claude), "-p", "say hi", "--output-format", "json"]
    try:
        done = subprocess.run(cmd, cwd=home, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"claude did not finish in {RUN_TIMEOUT_S} s\n{exc.stdout!r}\n{gateway.logs()}")
    detail = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}\n{gateway.logs()}"
    assert done.returncode == 0, detail
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _logged(gateway: GatewayServer, key: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=gateway.base_url, headers=gateway.admin_headers()) as c:
        while True:
            rows = c.get("/api/logs", params={"key": key, "limit": 100}).json()["data"]
            streamed = [r for r in rows if r["stream"] and r["status"] == 200]
            if streamed or time.monotonic() > deadline:
                return rows
            time.sleep(0.3)


def test_claude_code_in_bedrock_mode(
    bedrock_fake: BedrockFake, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    claude = installed("claude")
    gateway = start_gateway(mock_upstream, tmp_path / "gw", _config(bedrock_fake))
    try:
        created = gateway.create_key("bedrock-e2e", provider_configs=[{"provider": "bedrock"}])
        vkey = created["key"]
        result = _run(claude, gateway, vkey, tmp_path / "home")
        assert result.get("is_error") is False, (result, gateway.logs())
        assert bedrock_fake.text in result["result"]
        calls = bedrock_fake.requests
        streamed = [r for r in calls if r.raw_path.endswith("/invoke-with-response-stream")]
        assert streamed, [r.raw_path for r in calls]
        assert streamed[0].raw_path == (
            "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"
        )
        assert set(bedrock_fake.auth_seen) == {"sigv4"}  # every call signed, and verified
        assert all(vkey not in v for r in calls for _, v in r.headers)
        assert all(vkey.encode() not in r.body for r in calls)
        sent = streamed[0].json()
        assert sent["anthropic_version"] == "bedrock-2023-05-31" and "model" not in sent
        assert mock_upstream.calls("/v1/messages") == []  # nothing went to the Anthropic API
        rows = _logged(gateway, "bedrock-e2e")
        main = [r for r in rows if r["stream"] and r["status"] == 200]
        assert main, rows
        assert main[0]["surface"] == "bedrock" and main[0]["provider"] == "bedrock"
        assert main[0]["client"] == "claude-code"
        assert main[0]["requested_model"] == "claude-sonnet-4-5-20250929"
        tokens = main[0]["tokens"]
        assert (tokens["input"], tokens["output"]) == (
            ANTHROPIC_USAGE["input_tokens"],
            ANTHROPIC_USAGE["output_tokens"],
        )
    finally:
        gateway.stop()
