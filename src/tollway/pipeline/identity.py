"""Who is calling: the virtual key from any of the usual headers, and which client it is."""

from __future__ import annotations

from collections.abc import Iterable

# Header names that may carry the virtual key, in the order they are tried.
KEY_HEADERS = (b"x-api-key", b"authorization", b"api-key", b"x-goog-api-key")
SESSION_HEADERS = (b"x-claude-code-session-id", b"session-id")


def find_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in KEY_HEADERS and name not in found:
            found[name] = value
    for name in KEY_HEADERS:
        raw = found.get(name)
        if raw is None:
            continue
        text = raw.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer":
                continue
            text = token.strip()
        if text:
            return text
    return None


def detect_client(user_agent: str, headers: dict[bytes, bytes]) -> str:
    """claude-code, codex, gemini-cli, cursor or sdk, from the user agent and headers."""
    ua = user_agent.lower()
    if ua.startswith("claude-cli/") or b"x-claude-code-session-id" in headers:
        return "claude-code"
    if ua.startswith("codex") or b"originator" in headers:
        return "codex"
    if "geminicli" in ua or "gemini-cli" in ua:
        return "gemini-cli"
    if "cursor" in ua:
        return "cursor"
    return "sdk"
