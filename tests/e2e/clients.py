"""The real agent CLIs, installed from npm at the versions in tests/e2e/npm/package-lock.json.

``make test`` runs ``npm ci`` there before pytest; ``installed(name)`` also installs on
first use, so a single e2e test can be run on its own.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NPM_DIR = Path(__file__).resolve().parent / "npm"
BIN_DIR = NPM_DIR / "node_modules" / ".bin"
INSTALL_TIMEOUT_S = 600
VERSION_TIMEOUT_S = 60


def _works(binary: Path) -> bool:
    if not binary.exists():
        return False
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, timeout=VERSION_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def installed(name: str) -> Path:
    """The path of CLI ``name`` (claude, codex, gemini); fails the test if npm can't install it."""
    binary = BIN_DIR / name
    if _works(binary):
        return binary
    if shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the e2e tests (install Node.js 20+)")
    cmd = ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(NPM_DIR)]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} took over {INSTALL_TIMEOUT_S} s\n{exc.output}")
    if done.returncode != 0 or not _works(binary):
        pytest.fail(
            f"{' '.join(cmd)} failed (exit {done.returncode})\n"
            f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )
    return binary
