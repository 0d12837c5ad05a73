"""Fail when the venv holds a package that constraints.txt does not pin at that version.

Run by the Makefile after every install, so a dependency added to pyproject.toml without
``make lock`` is caught on the first ``make test`` instead of drifting on a new machine.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

_IGNORED = {"tollway", "pip", "setuptools", "wheel"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(lock: str) -> int:
    pins: dict[str, str] = {}
    for line in Path(lock).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_norm(name)] = version.split(";", 1)[0].strip()
    problems = []
    for dist in metadata.distributions():
        name = _norm(dist.metadata["Name"])
        if name in _IGNORED:
            continue
        if name not in pins:
            problems.append(f"{name}=={dist.version} is installed but not pinned")
        elif pins[name] != dist.version:
            problems.append(f"{name} is {dist.version}, the lock pins {pins[name]}")
    if problems:
        print(f"{lock} is out of date; run `make lock`:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
