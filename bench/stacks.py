"""Read py-spy's collapsed stacks (``--format raw``): where the samples went.

    python -m bench.stacks profile.txt [--top 30]

Prints inclusive and self shares per frame (function, file:line stripped to file).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
from pathlib import Path
from typing import Any

# Leaf frames of threads that wait (py-spy cannot always tell they are idle).
IDLE_LEAVES = ("concurrent/futures/thread.py:81)", "threading.py:324)", "threading.py:320)")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def _frame(raw: str) -> str:
    m = _FRAME.match(raw.strip())
    if not m:
        return raw.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def analyse(text: str, top: int = 30) -> dict[str, Any]:
    inclusive: collections.Counter[str] = collections.Counter()
    self_: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    files: collections.Counter[str] = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[-1].endswith(IDLE_LEAVES):
            continue
        total += n
        threads[frames[0].strip()] += n
        names = [_frame(f) for f in frames[1:]] or [frames[0]]
        for name in set(names):
            inclusive[name] += n
        self_[names[-1]] += n
        leaf = names[-1]
        files[leaf[leaf.rfind("(") + 1 : -1] if leaf.endswith(")") else leaf] += n

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "threads": share(threads),
        "inclusive_pct": share(inclusive),
        "self_pct": share(self_),
        "self_by_file_pct": share(files),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("file", type=Path)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    result = analyse(args.file.read_text(), args.top)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"samples: {result['samples']}")
    for title in ("threads", "inclusive_pct", "self_pct", "self_by_file_pct"):
        print(f"\n{title}:")
        for name, pct in result[title]:
            print(f"  {pct:5.1f}%  {name}")


if __name__ == "__main__":
    main()
