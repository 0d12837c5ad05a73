"""Print the requirements of ``litellm[proxy]`` with two pins forced (run in its venv).

LiteLLM 1.109.1 asks for ``certifi>=2026.10.19``, which the registry does not have, and
for a ``litellm-proxy-extras`` that does not match it; ``make bench-litellm`` installs
``litellm`` with ``--no-deps`` and these requirements beside it.
"""

from __future__ import annotations

import re
from importlib.metadata import requires

FORCED = {"certifi": "certifi<=2026.10.18", "litellm-proxy-extras": "litellm-proxy-extras==0.4.110"}


def main() -> None:
    for line in requires("litellm") or []:
        spec, _, marker = line.partition(";")
        marker = marker.strip()
        if "extra ==" in marker and "extra == 'proxy'" not in marker:
            continue
        marker = re.sub(r"\s*(and\s+)?extra == 'proxy'", "", marker).strip()
        marker = re.sub(r"^and\s+", "", marker)
        name = re.split(r"[\s<>=!\[~]", spec.strip(), maxsplit=1)[0].lower()
        spec = FORCED.get(name, spec.strip())
        print(f"{spec}; {marker}" if marker else spec)


if __name__ == "__main__":
    main()
