"""Which models a key or provider config may call.

Entries: an exact name, ``*`` for everything, a shell glob such as ``claude-haiku-*``
(case-sensitive, ``*`` also matches ``/``), or ``regex:<pattern>`` (a full match). An empty
list allows nothing.

Names may be ``provider/model``. Every entry is tried against the whole name; an entry with
no ``/`` in it is also tried against the model part (after the first ``/``), so ``claude-*``
allows ``anthropic/claude-x`` while ``anthropic/claude-*`` does not allow ``openai/claude-x``.
A provider-qualified entry never matches a bare name: ``anthropic/claude-x`` does not allow
``claude-x``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class _Pattern:
    entry: str
    compiled: re.Pattern[str]
    bare: bool  # also tried against the model part of provider/model

    def matches(self, model: str, model_part: str | None) -> bool:
        if self.compiled.fullmatch(model) is not None:
            return True
        if not self.bare or model_part is None:
            return False
        return self.compiled.fullmatch(model_part) is not None


class ModelAllowlist:
    """Compiled allowlist entries: ``ModelAllowlist(["claude-haiku-*"]).allows(model)``."""

    __slots__ = ("_entries", "_everything", "_exact", "_exact_bare", "_patterns")

    def __init__(self, entries: Iterable[str]) -> None:
        self._entries = tuple(entries)
        self._everything = False
        exact: set[str] = set()
        patterns: list[_Pattern] = []
        for entry in self._entries:
            if entry == "*":
                self._everything = True
            elif entry.startswith("regex:"):
                patterns.append(_regex(entry))
            elif not entry:
                raise ValueError("model allowlist entries must not be empty")
            elif _GLOB_CHARS.intersection(entry):
                translated = re.compile(fnmatch.translate(entry))
                patterns.append(_Pattern(entry, translated, "/" not in entry))
            else:
                exact.add(entry)
        self._exact = frozenset(exact)
        self._exact_bare = frozenset(e for e in exact if "/" not in e)
        self._patterns = tuple(patterns)

    @property
    def entries(self) -> tuple[str, ...]:
        return self._entries

    def allows(self, model: str) -> bool:
        if self._everything or model in self._exact:
            return True
        provider, slash, rest = model.partition("/")
        model_part = rest if slash and provider else None
        if model_part is not None and model_part in self._exact_bare:
            return True
        return any(p.matches(model, model_part) for p in self._patterns)

    def describe(self) -> str:
        """What is allowed, in words, for error messages."""
        if self._everything:
            return "all models"
        if not self._entries:
            return "no models"
        parts = []
        for entry in self._entries:
            if entry.startswith("regex:"):
                parts.append(f"names matching the regular expression {entry[6:]}")
            elif _GLOB_CHARS.intersection(entry):
                parts.append(f"names matching {entry}")
            else:
                parts.append(entry)
        return "only " + ", ".join(dict.fromkeys(parts))

    def __repr__(self) -> str:
        return f"ModelAllowlist({list(self._entries)!r})"


def model_allowed(model: str, allowed: Sequence[str]) -> bool:
    """One-off check; build a `ModelAllowlist` once to check many names."""
    return ModelAllowlist(allowed).allows(model)


def _regex(entry: str) -> _Pattern:
    source = entry[len("regex:") :]
    try:
        compiled = re.compile(source)
    except re.error as exc:
        raise ValueError(
            f"invalid regular expression in model allowlist entry {entry!r}: {exc}"
        ) from exc
    return _Pattern(entry, compiled, "/" not in source)
