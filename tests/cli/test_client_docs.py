"""The README's client setup blocks are exactly what `tollway CLIENT env|config` prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tollway.cli.clients import CLIENTS, KEY_PLACEHOLDER, Setup
from tollway.cli.context import DEFAULT_URL

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"<!-- tollway (\S+) (\S+) -->\n```\w*\n(.*?)\n```", re.S)


def documented() -> dict[tuple[str, str], str]:
    return {(c, a): text for c, a, text in BLOCK.findall(README.read_text(encoding="utf-8"))}


def test_every_client_command_is_documented() -> None:
    commands = {(c, a) for c, (_label, actions) in CLIENTS.items() for a in actions}
    assert set(documented()) == commands - {("curl", "env")}  # curl env: two exports, in prose


@pytest.mark.parametrize("command", sorted(documented()), ids="-".join)
def test_the_readme_block_is_the_command_output(command: tuple[str, str]) -> None:
    client, action = command
    render = CLIENTS[client][1][action][1]
    assert documented()[command] == render(Setup(url=DEFAULT_URL, key=KEY_PLACEHOLDER))
