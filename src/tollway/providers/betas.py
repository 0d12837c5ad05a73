"""Which ``anthropic-beta`` values and body fields a provider takes, and the body edits.

Bedrock and Vertex answer 400 to a beta they do not know ("Unexpected value(s) ... for
the anthropic-beta header") and to some body fields; Claude Code talking to the Anthropic
API sends betas neither knows. A provider's ``BetaPolicy`` drops those for that provider
only, and the caller logs what was dropped. Betas come from the ``anthropic-beta`` header
and from a body ``anthropic_beta`` list (Bedrock's place for them, which the Bedrock
client surface keeps); each provider puts the survivors where its wire wants them.

    policy = BetaPolicy.of(VERTEX_BETAS, pc.allow_betas, pc.drop_betas, pc.drop_fields)
    kept, dropped = policy.split(["claude-code-20250219", "effort-2025-11-24"])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import msgspec

from tollway.errors import InvalidRequest

_raw_doc = msgspec.json.Decoder(dict[str, msgspec.Raw])
_betas = msgspec.json.Decoder(list[str])
_encoder = msgspec.json.Encoder()

# Betas the clouds are known to accept (Claude Code's own Bedrock and Vertex modes send
# these; the rest are documented for Claude on that cloud). Everything else is dropped.
BEDROCK_BETAS = frozenset({
    "interleaved-thinking-2025-05-14", "tool-search-tool-2025-10-19",
    "context-1m-2025-08-07", "context-management-2025-06-27", "computer-use-2024-10-22",
    "computer-use-2025-01-24", "computer-use-2025-11-24", "token-efficient-tools-2025-02-19",
    "fine-grained-tool-streaming-2025-05-14", "output-128k-2025-02-19",
    "effort-2025-11-24", "tool-examples-2025-10-29", "compact-2026-01-12",
})  # fmt: skip
VERTEX_BETAS = frozenset({
    "claude-code-20250219", "interleaved-thinking-2025-05-14", "web-search-2025-03-05",
    "context-1m-2025-08-07", "context-management-2025-06-27", "computer-use-2024-10-22",
    "computer-use-2025-01-24", "computer-use-2025-11-24", "tool-search-tool-2025-10-19",
    "compact-2026-01-12",
})  # fmt: skip
# The same feature under another name: the Anthropic API's tool search beta is the clouds'
# tool-search-tool beta. Renamed before the accepted list is checked.
TO_CLOUD = {"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19"}
TO_ANTHROPIC = {v: k for k, v in TO_CLOUD.items()}
# Body fields that only work with a beta: dropped where the beta is not accepted.
# (beta, field, key within the field or None for the whole field)
LINKED_FIELDS = (
    ("effort-2025-11-24", "output_config", "effort"),
    ("context-management-2025-06-27", "context_management", None),
)


@dataclass(frozen=True, slots=True)
class BetaPolicy:
    """``allowed`` None: every beta passes (the Anthropic API) unless in ``drop``."""

    allowed: frozenset[str] | None = None
    drop: frozenset[str] = frozenset()
    drop_fields: tuple[str, ...] = ()
    renames: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        base: frozenset[str] | None,
        allow: Iterable[str] = (),
        drop: Iterable[str] = (),
        drop_fields: Iterable[str] = (),
        renames: Mapping[str, str] | None = None,
    ) -> BetaPolicy:
        allowed = None if base is None else base | frozenset(allow)
        if renames is None:
            renames = TO_ANTHROPIC if base is None else TO_CLOUD
        return cls(allowed, frozenset(drop), tuple(drop_fields), dict(renames))

    def accepts(self, beta: str) -> bool:
        return beta not in self.drop and (self.allowed is None or beta in self.allowed)

    def split(self, betas: Iterable[str]) -> tuple[list[str], list[str]]:
        kept: list[str] = []
        dropped: list[str] = []
        for beta in betas:
            beta = self.renames.get(beta, beta)
            if beta in kept or beta in dropped:
                continue
            (kept if self.accepts(beta) else dropped).append(beta)
        return kept, dropped

    @property
    def trivial(self) -> bool:
        """Nothing to do for betas in the header (renames apply to body-given ones too)."""
        return self.allowed is None and not self.drop and not self.drop_fields


def header_betas(headers: Iterable[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for name, value in headers:
        if name.lower() == "anthropic-beta":
            out.extend(b.strip() for b in value.split(",") if b.strip())
    return out


@dataclass(slots=True)
class BodyEdit:
    """An Anthropic body as top-level raw values: fields removed or set, the rest kept
    byte for byte. ``dropped`` names what was removed for the provider's sake."""

    doc: dict[str, msgspec.Raw]
    dropped: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes) -> BodyEdit:
        try:
            return cls(_raw_doc.decode(body))
        except (msgspec.DecodeError, RecursionError):
            raise InvalidRequest("the request body is not a JSON object") from None

    def pop_betas(self) -> list[str]:
        raw = self.doc.pop("anthropic_beta", None)
        if raw is None:
            return []
        try:
            return _betas.decode(raw)
        except msgspec.DecodeError:
            raise InvalidRequest("anthropic_beta must be a list of strings") from None

    def remove(self, *names: str) -> None:
        for name in names:
            self.doc.pop(name, None)

    def set(self, name: str, value: object) -> None:
        self.doc[name] = msgspec.Raw(_encoder.encode(value))

    def get(self, name: str) -> object:
        raw = self.doc.get(name)
        return None if raw is None else msgspec.json.decode(raw)

    def apply(self, policy: BetaPolicy, dropped_betas: list[str]) -> None:
        """Drop the policy's fields and those whose beta the provider does not take."""
        for name in policy.drop_fields:
            top, _, rest = name.partition(".")
            self._drop(top, rest or None)
        for beta, top, sub in LINKED_FIELDS:
            if not policy.accepts(beta) or beta in dropped_betas:
                self._drop(top, sub)

    def _drop(self, top: str, sub: str | None) -> None:
        if top not in self.doc:
            return
        if sub is None:
            del self.doc[top]
            self.dropped.append(top)
            return
        value = self.get(top)
        if isinstance(value, Mapping) and sub in value:
            rest = {k: v for k, v in value.items() if k != sub}
            if rest:
                self.set(top, rest)
            else:
                del self.doc[top]
            self.dropped.append(f"{top}.{sub}")

    def encode(self) -> bytes:
        return _encoder.encode(self.doc)
