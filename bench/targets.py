"""What the harness starts: the mock upstream, Tollway (several ways), and LiteLLM's proxy.

Every server listens on 127.0.0.1 only. Tollway gets governance fully on: a virtual key
with two budgets, a per-agent-session budget, request/token/concurrency limits, request
logging with content (the default) and its Prometheus metrics (always on).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.payloads import ANTHROPIC_MODEL, OPENAI_MODEL, REPO
from bench.procs import Service

TOLLWAY = REPO / ".venv" / "bin" / "tollway"
TOOLS = REPO / "bench" / ".venv-tools" / "bin"
LITELLM = REPO / "bench" / ".venv-litellm" / "bin" / "litellm"
GATEWAY_CPU = 0  # the gateway's core; the mock and the load generators use the other
LOAD_CPU = 1
CLAUDE_CODE_MODEL = "claude-opus-4-8"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    """A place to send load: a service (None for direct-to-mock) and its port and key."""

    name: str
    port: int
    key: str
    service: Service | None


def mock(work: Path, gap_ms: float, events: int, tokens: int) -> Service:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "bench.mock",
        "--port",
        str(port),
        "--event-gap-ms",
        str(gap_ms),
        "--events",
        str(events),
        "--tokens",
        str(tokens),
    ]
    return Service("mock", cmd, port, "/health", work / "mock.log", cpu=LOAD_CPU, cwd=REPO)


def tollway_config(work: Path, mock_port: int) -> Path:
    path = work / "tollway.yaml"
    path.write_text(
        "providers:\n"
        "  anthropic:\n"
        f"    base_url: http://127.0.0.1:{mock_port}\n"
        "    keys: [{value: sk-mock-anthropic}]\n"
        "  openai:\n"
        f"    base_url: http://127.0.0.1:{mock_port}/v1\n"
        "    keys: [{value: sk-mock-openai}]\n"
        "logging:\n"
        "  content: true\n"
    )
    return path


def create_key(db: str) -> str:
    """A virtual key with budgets, a session budget and rate limits, via the CLI."""
    out = subprocess.run(
        [
            str(TOLLWAY),
            "keys",
            "create",
            "bench",
            "--db",
            db,
            "--budget",
            "1000000/1d",
            "--budget",
            "10000000/1M",
            "--session-budget",
            "1000000",
            "--rpm",
            "10000000",
            "--tpm",
            "100000000000",
            "--concurrency",
            "100000",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    doc = json.JSONDecoder().raw_decode(out.stdout.strip())[0]
    return str(doc["key"])


def tollway(work: Path, config: Path, db: str, name: str = "tollway") -> Service:
    """``tollway serve`` (uvicorn, uvloop, httptools, one process), pinned to one core."""
    port = free_port()
    cmd = [str(TOLLWAY), "serve", "--config", str(config), "--port", str(port), "--db", db]
    return Service(name, cmd, port, "/health", work / f"{name}.log", cpu=GATEWAY_CPU)


def tollway_factory(
    work: Path, config: Path, db: str, name: str, server: str, workers: int, pinned: bool
) -> Service:
    """The same app under granian or under uvicorn with ``workers`` processes."""
    port = free_port()
    env = {"TOLLWAY_BENCH_CONFIG": str(config), "TOLLWAY_BENCH_DB": db}
    if server == "granian":
        cmd = [
            str(TOOLS / "granian"),
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--log-level",
            "warning",
            "--no-ws",
            "bench.asgi_app:build",
        ]
    else:
        cmd = [
            str(TOOLS / "uvicorn"),
            "--factory",
            "bench.asgi_app:build",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    return Service(
        name,
        cmd,
        port,
        "/health",
        work / f"{name}.log",
        env=env,
        cpu=GATEWAY_CPU if pinned else None,
        cwd=REPO,
    )


def litellm_config(work: Path, mock_port: int) -> Path:
    base = f"http://127.0.0.1:{mock_port}"
    models = [
        (OPENAI_MODEL, f"openai/{OPENAI_MODEL}", f"{base}/v1", "sk-mock-openai"),
        (ANTHROPIC_MODEL, f"anthropic/{ANTHROPIC_MODEL}", base, "sk-mock-anthropic"),
        (CLAUDE_CODE_MODEL, f"anthropic/{CLAUDE_CODE_MODEL}", base, "sk-mock-anthropic"),
    ]
    doc = {
        "model_list": [
            {
                "model_name": name,
                "litellm_params": {"model": model, "api_base": api_base, "api_key": key},
            }
            for name, model, api_base, key in models
        ],
        "litellm_settings": {"telemetry": False},
    }
    path = work / "litellm.yaml"
    path.write_text(json.dumps(doc, indent=1))  # JSON is YAML
    return path


def litellm(work: Path, config: Path) -> Service:
    """LiteLLM's proxy, one worker, no database (so no virtual keys or budgets)."""
    port = free_port()
    cmd = [
        str(LITELLM),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    env = {"LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true", "LITELLM_LOG": "ERROR"}
    return Service(
        "litellm", cmd, port, "/health/liveliness", work / "litellm.log", env=env, cpu=GATEWAY_CPU
    )


def version_of(python_bin: Path, *modules: str) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    try:
        done = subprocess.run(
            [str(python_bin), "-c", code, *modules],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    result: dict[str, str] = json.loads(done.stdout)
    return result
