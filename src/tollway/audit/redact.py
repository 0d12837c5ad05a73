"""Secrets taken out of the audit copy (never out of what is forwarded).

API keys (Anthropic, OpenAI, Google, AWS, GitHub, Slack), bearer tokens, Tollway virtual
keys, and ``KEY=value`` assignments whose name says secret become ``[REDACTED]``; the
shape around them stays, so a command is still readable: ``curl -H 'x-api-key:
[REDACTED]' ...``.
"""

from __future__ import annotations

import re
from typing import Any

MARK = "[REDACTED]"
_PATTERNS = [
    re.compile(p)
    for p in (
        r"sk-ant-[A-Za-z0-9_\-]{8,}",
        r"sk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{16,}",
        r"tw-[A-Za-z0-9_\-]{16,}",
        r"AIza[0-9A-Za-z_\-]{30,}",
        r"(?:AKIA|ASIA)[0-9A-Z]{16}",
        r"gh[pousr]_[A-Za-z0-9]{20,}",
        r"github_pat_[A-Za-z0-9_]{20,}",
        r"xox[abprs]-[A-Za-z0-9\-]{10,}",
        r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # a JWT
    )
]
# "Bearer <token>", "x-api-key: <v>", "API_KEY=<v>", "password: <v>" keep their name.
_NAMED = re.compile(
    r"(?i)(\bbearer\s+|\b(?:x-api-key|x-goog-api-key|api-key)\s*[:=]\s*['\"]?|"
    r"\b[A-Z0-9_]*(?:API_KEY|APIKEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)\s*[:=]\s*['\"]?)"
    r"([^\s'\"]{4,})"
)


def redact(text: str) -> str:
    if not text:
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(MARK, text)
    return _NAMED.sub(lambda m: m.group(1) + MARK if m.group(2) != MARK else m.group(0), text)


def redact_doc(doc: Any) -> Any:
    """Every string in a JSON-like document, redacted; keys are kept as they are."""
    if isinstance(doc, str):
        return redact(doc)
    if isinstance(doc, dict):
        return {k: redact_doc(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [redact_doc(v) for v in doc]
    return doc
