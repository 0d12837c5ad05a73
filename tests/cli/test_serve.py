from __future__ import annotations

from pathlib import Path

from tollway.cli.banner import Startup, banner
from tollway.cli.serve import first_key
from tollway.config import Config, with_env_providers


async def test_first_start_creates_one_key_shown_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    key = await first_key(url)
    assert key is not None and key.startswith("tw-")
    assert await first_key(url) is None  # never again, and never the same secret twice
    config = with_env_providers(Config(), {})
    text = banner(Startup("127.0.0.1", 8080, config, first_key=key))
    assert f"export ANTHROPIC_API_KEY={key}" in text and "simulated" in text
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:8080" in text
    assert "  dashboard: http://127.0.0.1:8080/ui (log in with the admin token)" in text
