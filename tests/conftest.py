"""Shared fixtures: the mock upstream and the real gateway run as a subprocess.

``gateway_server`` writes a config whose providers point at ``mock_upstream``; a test adds
config by parametrising ``gateway_extra_config`` (YAML text or a dict, deep-merged)::

    @pytest.mark.parametrize("gateway_extra_config", ["gateway: {max_body_bytes: 1000}"])
    def test_small_bodies(gateway_server): ...

or starts gateways of its own with ``gateway_factory(extra_config)``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml
from hypothesis import settings

from upstream_mock import MockUpstream

# CI runs property tests with a fixed seed and no per-example deadline: a red CI must mean
# a real regression, not a new random draw or a slow moment on a shared machine.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


ADMIN_TOKEN = "tw-admin-test-token-0123456789abcdef"
ANTHROPIC_UPSTREAM_KEY = "sk-ant-upstream-secret"
OPENAI_UPSTREAM_KEY = "sk-openai-upstream-secret"
# A gateway starts in 1-3 s on a quiet machine; on a loaded 2-core one (agents, xdist)
# importing it alone took 8 s and start-up up to 30 s, so tests wait this long for /health.
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def gateway_config(mock: MockUpstream, extra: str | Mapping[str, Any] | None = None) -> str:
    """The YAML the gateway gets: both providers on the mock, plus ``extra`` merged in."""
    config: dict[str, Any] = {
        "providers": {
            "anthropic": {
                "base_url": mock.base_url,
                "keys": [{"name": "main", "value": ANTHROPIC_UPSTREAM_KEY, "weight": 1}],
            },
            "openai": {
                "base_url": mock.base_url + "/v1",
                "keys": [{"name": "main", "value": OPENAI_UPSTREAM_KEY}],
            },
        }
    }
    if isinstance(extra, str):
        extra = yaml.safe_load(extra) or {}
    if extra:
        config = _merge(config, extra)
    return yaml.safe_dump(config, sort_keys=False)


@dataclass
class GatewayServer:
    """A running ``tollway serve``; ``create_key()`` makes a virtual key over the admin API."""

    base_url: str
    admin_token: str
    process: subprocess.Popen[bytes]
    log_path: Path
    config_path: Path
    _log: IO[bytes] = field(repr=False)

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def create_key(
        self,
        name: str = "test-key",
        provider_configs: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """POST /api/virtual-keys; the 201 JSON, with "id" and "key"."""
        payload: dict[str, Any] = {"name": name, **extra}
        if provider_configs is not None:
            payload["provider_configs"] = provider_configs
        with httpx.Client(timeout=10) as client:
            resp = client.post(
                f"{self.base_url}/api/virtual-keys", json=payload, headers=self.admin_headers()
            )
        assert resp.status_code == 201, (
            f"creating a virtual key: {resp.status_code} {resp.text}\n{self.logs()}"
        )
        created: dict[str, Any] = resp.json()
        assert created.get("key") and created.get("id"), created
        return created

    def key(self, name: str = "test-key") -> str:
        """A fresh virtual key's secret."""
        return str(self.create_key(name)["key"])

    def logs(self) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "--- gateway output ---\n" + text[-8000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        self._log.close()


def start_gateway(
    mock: MockUpstream,
    workdir: Path,
    extra_config: str | Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> GatewayServer:
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "tollway.yaml"
    config_path.write_text(gateway_config(mock, extra_config), encoding="utf-8")
    port = free_port()
    child_env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL"}
    }
    child_env.update({"TOLLWAY_ADMIN_TOKEN": ADMIN_TOKEN, "PYTHONUNBUFFERED": "1",
                      "XDG_STATE_HOME": str(workdir / "state")})  # fmt: skip
    child_env.update(env or {})
    cmd = [
        sys.executable,
        "-m",
        "tollway",
        "serve",
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        f"sqlite:///{workdir / 't.db'}",
    ]
    log_path = workdir / "gateway.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        cmd,
        cwd=workdir,
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=preexec_fn,  # e.g. lower RLIMIT_NOFILE for a file-descriptor flood
    )
    server = GatewayServer(
        base_url=f"http://127.0.0.1:{port}",
        admin_token=ADMIN_TOKEN,
        process=process,
        log_path=log_path,
        config_path=config_path,
        _log=log,
    )
    try:
        _wait_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_healthy(server: GatewayServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer"
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(
                    f"the gateway exited with {server.process.returncode} before it was "
                    f"healthy\n{server.logs()}",
                    pytrace=False,
                )
            try:
                resp = client.get(f"{server.base_url}/health")
                if resp.status_code == 200 and resp.json() == {"status": "ok"}:
                    return
                last = f"{resp.status_code} {resp.text[:200]}"
            except (httpx.TransportError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.1)
    pytest.fail(
        f"the gateway was not healthy within {STARTUP_TIMEOUT_S} s (last: {last})\n{server.logs()}",
        pytrace=False,
    )


@pytest.fixture
def mock_upstream() -> Iterator[MockUpstream]:
    mock = MockUpstream().start()
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture
def gateway_extra_config() -> str | Mapping[str, Any] | None:
    """Extra config for ``gateway_server``; parametrise this fixture to change it."""
    return None


@pytest.fixture
def gateway_factory(
    mock_upstream: MockUpstream, tmp_path: Path
) -> Iterator[Callable[..., GatewayServer]]:
    started: list[GatewayServer] = []

    def start(
        extra_config: str | Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> GatewayServer:
        workdir = tmp_path / f"gw{len(started)}"
        server = start_gateway(mock_upstream, workdir, extra_config, env, preexec_fn)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def gateway_server(
    gateway_factory: Callable[..., GatewayServer],
    gateway_extra_config: str | Mapping[str, Any] | None,
) -> GatewayServer:
    return gateway_factory(gateway_extra_config)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (``CI`` set) a skipped test is a failure: nothing may pass by not running."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, which counts as a failure: {reason}"
